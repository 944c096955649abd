//! Reading one value: the shape of a statement (how many arguments,
//! block or not) and the types keepalived's keywords take (addresses,
//! ports, bounded integers, timers in decimal seconds, booleans, hex
//! strings, netmasks, script command lines and the user to run them
//! as). Every refusal names the token's file:line and says what was
//! expected.

use std::net::IpAddr;
use std::time::Duration;

use super::super::lexer::Token;
use super::super::model::{ConfError, LbKind, Script};
use super::super::tree::{Node, err};
use super::Ctx;

/// Result of reading configuration values.
pub(crate) type Res<T> = Result<T, ConfError>;

impl Node {
    /// The arguments of a statement that takes `min..=max` of them and no
    /// block.
    pub(crate) fn args_n(&self, min: usize, max: usize) -> Res<&[Token]> {
        if self.block.is_some() {
            return Err(err(self.loc(), format!("`{}` takes no block", self.name())));
        }
        let n = self.args.len();
        if n < min {
            let what = if min == 1 {
                "an argument".to_string()
            } else {
                format!("{min} arguments")
            };
            return Err(err(self.loc(), format!("`{}` needs {what}", self.name())));
        }
        if n > max {
            let extra = &self.args[max];
            return Err(err(
                &extra.loc,
                format!("`{}`: unexpected argument `{}`", self.name(), extra.text),
            ));
        }
        Ok(&self.args)
    }

    /// The one argument of a statement that takes exactly one.
    pub(crate) fn arg1(&self) -> Res<&Token> {
        Ok(&self.args_n(1, 1)?[0])
    }

    /// The block of a statement that must have one, and no more than
    /// `max_args` arguments.
    pub(crate) fn block(&self, max_args: usize) -> Res<&[Node]> {
        let Some(b) = &self.block else {
            return Err(err(
                self.loc(),
                format!("`{}` needs a block {{ }}", self.name()),
            ));
        };
        if let Some(extra) = self.args.get(max_args) {
            return Err(err(
                &extra.loc,
                format!("`{}`: unexpected argument `{}`", self.name(), extra.text),
            ));
        }
        Ok(b)
    }

    /// A flag: alone it means true; keepalived also takes an explicit
    /// boolean (`true|on|yes` / `false|off|no`).
    pub(crate) fn flag(&self) -> Res<bool> {
        match self.args_n(0, 1)?.first() {
            None => Ok(true),
            Some(t) => match t.text.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" => Ok(true),
                "false" | "off" | "no" => Ok(false),
                _ => Err(err(
                    &t.loc,
                    format!("`{}`: `{}` is not a boolean", self.name(), t.text),
                )),
            },
        }
    }
}

/// An IPv4 or IPv6 address.
pub(crate) fn ip(t: &Token) -> Res<IpAddr> {
    t.text
        .parse()
        .map_err(|_| err(&t.loc, format!("`{}` is not an IP address", t.text)))
}

/// A port, 0..=65535.
pub(crate) fn port(t: &Token) -> Res<u16> {
    let n = int(t, "port", 0, 65535)?;
    u16::try_from(n).map_err(|_| err(&t.loc, "port out of range"))
}

/// An integer within `lo..=hi`; `what` names it in the error.
pub(crate) fn int(t: &Token, what: &str, lo: i64, hi: i64) -> Res<i64> {
    let n: i64 = t
        .text
        .parse()
        .map_err(|_| err(&t.loc, format!("{what}: `{}` is not an integer", t.text)))?;
    if n < lo || n > hi {
        return Err(err(
            &t.loc,
            format!("{what} {n} is out of range {lo}..={hi}"),
        ));
    }
    Ok(n)
}

/// A non-negative integer that fits `u32`.
pub(crate) fn uint(t: &Token, what: &str) -> Res<u32> {
    let n = int(t, what, 0, i64::from(u32::MAX))?;
    u32::try_from(n).map_err(|_| err(&t.loc, format!("{what} out of range")))
}

/// The single argument of `node` as a non-negative integer.
pub(crate) fn uint_arg(node: &Node) -> Res<u32> {
    uint(node.arg1()?, &format!("`{}`", node.name()))
}

/// The largest timer accepted, in seconds (a year: anything longer is a
/// typo).
const MAX_TIMER_SECS: u64 = 365 * 86_400;

/// A timer: seconds, with up to 6 decimals (`1`, `0.5`, `2.25`).
pub(crate) fn duration(t: &Token) -> Res<Duration> {
    let bad = || {
        err(
            &t.loc,
            format!("`{}` is not a duration in seconds (e.g. 3 or 0.5)", t.text),
        )
    };
    let (int_part, frac) = match t.text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t.text.as_str(), ""),
    };
    if (int_part.is_empty() && frac.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
    {
        return Err(bad());
    }
    let secs: u64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| bad())?
    };
    if secs > MAX_TIMER_SECS {
        return Err(err(
            &t.loc,
            format!(
                "duration {} is too long (at most {MAX_TIMER_SECS} s)",
                t.text
            ),
        ));
    }
    let micros: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    Ok(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

/// The single argument of `node` as a timer.
pub(crate) fn duration_arg(node: &Node) -> Res<Duration> {
    duration(node.arg1()?)
}

/// The single argument of `node` as a timer that must not be zero (an
/// interval or a time limit of nothing: keepalived refuses it too).
pub(crate) fn positive_duration_arg(node: &Node) -> Res<Duration> {
    let d = duration_arg(node)?;
    if d.is_zero() {
        return Err(err(
            node.loc(),
            format!("`{}` must be more than 0", node.name()),
        ));
    }
    Ok(d)
}

/// The single argument of `node` as an optional time limit: 0 means
/// "the default" (keepalived's meaning for `misc_timeout` and a
/// `vrrp_script`'s `timeout`).
pub(crate) fn limit_arg(node: &Node) -> Res<Option<Duration>> {
    Ok(Some(duration_arg(node)?).filter(|d| !d.is_zero()))
}

/// The single argument of `node` as a string.
pub(crate) fn string_arg(node: &Node) -> Res<String> {
    Ok(node.arg1()?.text.clone())
}

/// keepalived's free-format hex string: every token is read two digits
/// at a time, a lone last digit being the low nibble (`Ab12f 3` →
/// `ab 12 0f 03`).
pub(crate) fn hex(tokens: &[Token]) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    for t in tokens {
        let digits: Vec<u8> = t
            .text
            .chars()
            .map(|c| {
                c.to_digit(16)
                    .and_then(|d| u8::try_from(d).ok())
                    .ok_or_else(|| err(&t.loc, format!("`{c}` is not a hex digit in `{}`", t.text)))
            })
            .collect::<Res<_>>()?;
        for pair in digits.chunks(2) {
            out.push(match pair {
                [hi, lo] => hi << 4 | lo,
                [lo] => *lo,
                _ => 0,
            });
        }
    }
    Ok(out)
}

/// A prefix length, written as a netmask (`255.255.255.0`) or a number
/// (`24`, IPv6 `64`).
pub(crate) fn prefix_or_mask(t: &Token) -> Res<u8> {
    if let Ok(n) = t.text.parse::<u8>()
        && n <= 128
    {
        return Ok(n);
    }
    let bad = || {
        err(
            &t.loc,
            format!("`{}` is not a netmask or a prefix length", t.text),
        )
    };
    let bits: u128 = match t.text.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(err(
            &t.loc,
            format!("netmask `{}` is not contiguous", t.text),
        ));
    }
    u8::try_from(ones).map_err(|_| bad())
}

/// `lb_kind` / `lvs_method` and their DPVS spellings, any case.
pub(crate) fn lb_kind(ctx: &mut Ctx, node: &Node) -> Res<LbKind> {
    let args = node.args_n(1, 6)?;
    let t = &args[0];
    let kind = match t.text.to_ascii_uppercase().as_str() {
        "NAT" => LbKind::Nat,
        "DR" => LbKind::Dr,
        "TUN" => LbKind::Tun,
        "FNAT" | "FULLNAT" => LbKind::FullNat,
        "SNAT" => LbKind::Snat,
        _ => {
            return Err(err(
                &t.loc,
                format!(
                    "`{}`: unknown forwarding method `{}` (NAT, DR, TUN, FNAT, SNAT)",
                    node.name(),
                    t.text
                ),
            ));
        }
    };
    if let Some(extra) = args.get(1) {
        // keepalived: `TUN type {ipip|gue port N|gre} [csum options]`.
        let ipip = kind == LbKind::Tun
            && extra.text == "type"
            && args.get(2).is_some_and(|a| a.text == "ipip");
        if !ipip {
            return Err(err(
                &extra.loc,
                format!(
                    "`{}`: `{}` is not supported by rvs-keepalived (only plain ipip tunnels)",
                    node.name(),
                    extra.text
                ),
            ));
        }
        if let Some(flags) = args.get(3) {
            ctx.ignored_at(&flags.loc, &format!("tunnel option `{}`", flags.text));
        }
    }
    Ok(kind)
}

/// The command line of a script statement: its first argument (quoted
/// if it has spaces), which must not be empty.
fn command(node: &Node, args: &[Token]) -> Res<String> {
    let cmd = args[0].text.trim();
    if cmd.is_empty() {
        return Err(err(
            &args[0].loc,
            format!("`{}`: empty command", node.name()),
        ));
    }
    Ok(cmd.to_string())
}

/// The command line of `misc_path` or a `vrrp_script`'s `script`: their
/// user is set with the block's own `user`, so words after the command
/// are ignored (warned), as keepalived ignores them.
pub(crate) fn script(ctx: &mut Ctx, node: &Node) -> Res<String> {
    let args = node.args_n(1, 3)?;
    if let Some(extra) = args.get(1) {
        ctx.warn(
            &extra.loc,
            format!(
                "`{}`: `{}` after the command is ignored (a user is set with `user`)",
                node.name(),
                extra.text
            ),
        );
    }
    command(node, args)
}

/// A notify-type script (`notify_up`, `notify_master`, `quorum_up`, ...):
/// the command line, then an optional `USER [GROUP]` to run it as. As
/// keepalived does, a user or group that does not exist disables the
/// script (None), with a warning at its line.
pub(crate) fn notify_script(ctx: &mut Ctx, node: &Node) -> Res<Option<Script>> {
    let args = node.args_n(1, 3)?;
    let cmd = command(node, args)?;
    let user = args.get(1..).filter(|u| !u.is_empty()).map(join_words);
    if let Some(u) = &user
        && let Err(e) = crate::notify::check_user(u)
    {
        ctx.warn(
            &args[1].loc,
            format!("`{}`: {e}: the script is disabled", node.name()),
        );
        return Ok(None);
    }
    Ok(Some(Script { cmd, user }))
}

/// The `USER [GROUP]` of a `user` statement (`vrrp_script`, MISC_CHECK),
/// written as the model keeps it: the words joined by a space.
pub(crate) fn user_arg(node: &Node) -> Res<String> {
    Ok(join_words(node.args_n(1, 2)?))
}

/// Tokens' texts joined by single spaces.
fn join_words(words: &[Token]) -> String {
    words
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Token {
        Token::word(s)
    }

    #[test]
    fn durations() {
        assert_eq!(duration(&tok("3")).unwrap(), Duration::from_secs(3));
        assert_eq!(duration(&tok("0.5")).unwrap(), Duration::from_millis(500));
        assert_eq!(duration(&tok(".25")).unwrap(), Duration::from_millis(250));
        assert_eq!(duration(&tok("2.")).unwrap(), Duration::from_secs(2));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "1.2.3",
            "0.0000001",
            "abc",
            "99999999999",
        ] {
            assert!(duration(&tok(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_is_free_format() {
        let toks: Vec<Token> = "Ab12f 3 456 546443123".split(' ').map(tok).collect();
        assert_eq!(
            hex(&toks).unwrap(),
            vec![
                0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03
            ]
        );
        assert!(hex(&[tok("0g")]).is_err());
    }

    #[test]
    fn masks_and_prefixes() {
        assert_eq!(prefix_or_mask(&tok("255.255.255.0")).unwrap(), 24);
        assert_eq!(prefix_or_mask(&tok("255.255.255.255")).unwrap(), 32);
        assert_eq!(prefix_or_mask(&tok("0.0.0.0")).unwrap(), 0);
        assert_eq!(prefix_or_mask(&tok("64")).unwrap(), 64);
        assert_eq!(prefix_or_mask(&tok("ffff:ffff::")).unwrap(), 32);
        assert!(prefix_or_mask(&tok("255.0.255.0")).is_err());
        assert!(prefix_or_mask(&tok("129")).is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(port(&tok("65535")).unwrap(), 65535);
        assert!(port(&tok("65536")).is_err());
        assert!(port(&tok("-1")).is_err());
        assert!(port(&tok("http")).is_err());
    }
}
