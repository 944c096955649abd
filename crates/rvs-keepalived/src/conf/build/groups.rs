//! Named address sets referred to by virtual servers:
//! `virtual_server_group` (the VIPs a `virtual_server group NAME` stands
//! for) and DPVS's `local_address_group` (the local addresses of a
//! FullNAT/SNAT service). Both accept keepalived's address ranges
//! `A.B.C.D-E` (last IPv4 byte) and `x::y-z` (last IPv6 group, hex),
//! expanded here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::super::lexer::Token;
use super::super::model::{LaddrGroup, VsGroup, VsGroupEntry};
use super::super::tree::{Node, err};
use super::values::{Res, int, port, uint};

/// The most addresses one range may expand to.
const MAX_RANGE: usize = 65_536;

/// Reads `virtual_server_group NAME { IP[-END] [PORT] | fwmark N }`.
pub(crate) fn vs_group(node: &Node) -> Res<VsGroup> {
    let name = group_name(node)?;
    let mut entries = Vec::new();
    for n in node.block(1)? {
        if n.name() == "fwmark" {
            let args = n.args_n(1, 2)?;
            if let Some(f) = args.get(1)
                && f.text != "inet"
                && f.text != "inet6"
            {
                return Err(err(&f.loc, format!("`{}` is not inet or inet6", f.text)));
            }
            let mark = uint(&args[0], "fwmark")?;
            if mark == 0 {
                return Err(err(&args[0].loc, "fwmark must not be 0"));
            }
            entries.push(VsGroupEntry::Fwmark(mark));
            continue;
        }
        let port = n.args_n(0, 1)?.first().map(port).transpose()?.unwrap_or(0);
        for ip in range(&n.keyword)? {
            entries.push(VsGroupEntry::Addr { ip, port });
        }
    }
    Ok(VsGroup {
        name,
        entries,
        loc: node.loc().clone(),
    })
}

/// Reads `local_address_group NAME { IP[-END] [DEV] ... }`: entries are
/// read as a flat sequence (DPVS files put one or several per line), each
/// address optionally followed by the port it lives on.
pub(crate) fn laddr_group(node: &Node) -> Res<LaddrGroup> {
    let name = group_name(node)?;
    let mut addrs: Vec<(IpAddr, Option<String>)> = Vec::new();
    for n in node.block(1)? {
        if n.block.is_some() {
            return Err(err(n.loc(), "a `local_address_group` entry takes no block"));
        }
        let mut last: Option<usize> = None;
        for t in std::iter::once(&n.keyword).chain(&n.args) {
            if looks_like_address(&t.text) {
                let before = addrs.len();
                addrs.extend(range(t)?.into_iter().map(|ip| (ip, None)));
                last = Some(before);
                continue;
            }
            let Some(start) = last.take() else {
                return Err(err(
                    &t.loc,
                    format!("`{}` is not an address (expected `IP[-END] [DEV]`)", t.text),
                ));
            };
            for a in &mut addrs[start..] {
                a.1 = Some(t.text.clone());
            }
        }
    }
    Ok(LaddrGroup {
        name,
        addrs,
        loc: node.loc().clone(),
    })
}

/// The one name after a group keyword.
fn group_name(node: &Node) -> Res<String> {
    match node.args.first() {
        Some(t) => Ok(t.text.clone()),
        None => Err(err(node.loc(), format!("`{}` needs a name", node.name()))),
    }
}

/// Whether a token is meant as an address (or range) rather than a name.
fn looks_like_address(s: &str) -> bool {
    let head = s.split('-').next().unwrap_or(s);
    head.parse::<IpAddr>().is_ok()
        || s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// `IP` or `IP-END`, expanded.
pub(crate) fn range(t: &Token) -> Res<Vec<IpAddr>> {
    let bad = || {
        err(
            &t.loc,
            format!("`{}` is not an address or address range", t.text),
        )
    };
    let Some((base, end)) = t.text.split_once('-') else {
        return Ok(vec![t.text.parse().map_err(|_| bad())?]);
    };
    let base: IpAddr = base.parse().map_err(|_| bad())?;
    let end_tok = Token {
        text: end.to_string(),
        ..t.clone()
    };
    let ips: Vec<IpAddr> = match base {
        IpAddr::V4(a) => {
            let o = a.octets();
            let last = int(&end_tok, "range end", i64::from(o[3]), 255)?;
            (o[3]..=u8::try_from(last).map_err(|_| bad())?)
                .map(|x| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], x)))
                .collect()
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            let last = u16::from_str_radix(end, 16).map_err(|_| bad())?;
            if last < s[7] {
                return Err(err(
                    &t.loc,
                    format!("range `{}` ends before it starts", t.text),
                ));
            }
            (s[7]..=last)
                .map(|x| {
                    let mut g = s;
                    g[7] = x;
                    IpAddr::V6(Ipv6Addr::from(g))
                })
                .collect()
        }
    };
    if ips.len() > MAX_RANGE {
        return Err(err(&t.loc, "address range too large"));
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Token {
        Token::word(s)
    }

    #[test]
    fn ranges() {
        let r = range(&tok("10.0.0.8-10")).unwrap();
        let want: Vec<IpAddr> = ["10.0.0.8", "10.0.0.9", "10.0.0.10"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(r, want);
        assert_eq!(range(&tok("2001:db8::e-10")).unwrap().len(), 3);
        assert!(range(&tok("10.0.0.8-7")).is_err());
        assert!(range(&tok("10.0.0.8-256")).is_err());
        assert!(range(&tok("10.0.0-8")).is_err());
    }
}
