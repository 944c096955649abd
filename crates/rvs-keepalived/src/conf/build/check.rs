//! The checkers of a real server: `TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `UDP_CHECK`, `MISC_CHECK`, `PING_CHECK`, their common connection
//! options, and the timer defaults they inherit from their real and
//! virtual server. keepalived's other checkers (SMTP, DNS, BFD, FILE) are
//! warned and dropped: the real server is then not checked by them.

use std::time::Duration;

use super::super::lexer::Token;
use super::super::model::{CheckCommon, CheckKind, Checker, Url};
use super::super::tree::{Node, err};
use super::values::{
    Res, duration_arg, hex, int, ip, limit_arg, port, positive_duration_arg, script, string_arg,
    uint_arg, user_arg,
};
use super::{Ctx, ignored};

/// Checker kinds rvs-keepalived runs.
const KINDS: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "UDP_CHECK",
    "MISC_CHECK",
    "PING_CHECK",
];

/// Whether `name` opens a checker block (run or not).
pub(crate) fn is_checker(name: &str) -> bool {
    KINDS.contains(&name) || ignored::CHECKER_KINDS.contains(&name)
}

/// Checker timers set on a virtual or real server for its checkers.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckDefaults {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
}

impl CheckDefaults {
    /// Takes `n` if it is one of the inherited timers; true if it was.
    pub(crate) fn read(&mut self, n: &Node) -> Res<bool> {
        match n.name() {
            "connect_timeout" => self.connect_timeout = Some(positive_duration_arg(n)?),
            "retry" => self.retry = Some(uint_arg(n)?),
            "delay_before_retry" => self.delay_before_retry = Some(duration_arg(n)?),
            "warmup" => self.warmup = Some(duration_arg(n)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Reads a checker block; `None` for a kind rvs does not run (warned).
/// `virtualhost` is the real or virtual server's default Host.
pub(crate) fn checker(
    ctx: &mut Ctx,
    node: &Node,
    inherited: &CheckDefaults,
    virtualhost: Option<&str>,
) -> Res<Option<Checker>> {
    let name = node.name();
    if !KINDS.contains(&name) {
        ctx.ignored_at(
            node.loc(),
            &format!("`{name}` (the real server is not checked by it)"),
        );
        return Ok(None);
    }
    if let Some(extra) = node.args.first() {
        return Err(err(
            &extra.loc,
            format!("`{name}`: unexpected argument `{}`", extra.text),
        ));
    }
    let body = node.block.as_deref().unwrap_or(&[]);
    let http = matches!(name, "HTTP_GET" | "SSL_GET");
    let mut own = CheckDefaults::default();
    let mut common = CheckCommon::new(node.loc().clone());
    if http {
        common.delay_before_retry = Duration::from_secs(3);
    }
    let mut kind = match name {
        "HTTP_GET" | "SSL_GET" => CheckKind::Http {
            tls: name == "SSL_GET",
            urls: Vec::new(),
            virtualhost: virtualhost.map(str::to_string),
        },
        "UDP_CHECK" => CheckKind::Udp {
            payload: Vec::new(),
            require_reply: None,
        },
        "MISC_CHECK" => {
            common.retry = 0;
            CheckKind::Misc {
                path: String::new(),
                timeout: None,
                dynamic: false,
                user: None,
            }
        }
        "PING_CHECK" => CheckKind::Ping,
        _ => CheckKind::Tcp,
    };
    for n in body {
        if own.read(n)? || common_option(n, &mut common, &mut own)? || specific(ctx, n, &mut kind)?
        {
            continue;
        }
        ctx.other(n, ignored::CHECKER);
    }
    common.connect_timeout = own
        .connect_timeout
        .or(inherited.connect_timeout)
        .unwrap_or(common.connect_timeout);
    common.retry = own.retry.or(inherited.retry).unwrap_or(common.retry);
    common.delay_before_retry = own
        .delay_before_retry
        .or(inherited.delay_before_retry)
        .unwrap_or(common.delay_before_retry);
    common.warmup = own.warmup.or(inherited.warmup);
    match &kind {
        CheckKind::Http { urls, .. } if urls.is_empty() => {
            ctx.warn(node.loc(), format!("`{name}` without any `url`: ignored"));
            return Ok(None);
        }
        CheckKind::Misc { path, .. } if path.is_empty() => {
            return Err(err(node.loc(), "`MISC_CHECK` needs `misc_path`"));
        }
        _ => {}
    }
    Ok(Some(Checker { kind, common }))
}

/// The connection options every checker has; true if `n` was one.
fn common_option(n: &Node, c: &mut CheckCommon, own: &mut CheckDefaults) -> Res<bool> {
    match n.name() {
        "connect_ip" => c.connect_ip = Some(ip(n.arg1()?)?),
        "connect_port" => c.connect_port = Some(port(n.arg1()?)?),
        "bindto" => c.bindto = Some(ip(n.arg1()?)?),
        "bind_port" => c.bind_port = Some(port(n.arg1()?)?),
        // keepalived's old spelling of `retry` for HTTP_GET/SSL_GET.
        "nb_get_retry" => own.retry = Some(uint_arg(n)?),
        "delay_loop" => c.delay_loop = Some(positive_duration_arg(n)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The options of one kind of checker; true if `n` was one.
fn specific(ctx: &mut Ctx, n: &Node, kind: &mut CheckKind) -> Res<bool> {
    match (kind, n.name()) {
        (CheckKind::Http { urls, .. }, "url") => urls.push(url(ctx, n)?),
        (CheckKind::Http { virtualhost, .. }, "virtualhost") => *virtualhost = Some(string_arg(n)?),
        (CheckKind::Udp { payload, .. }, "payload") => *payload = hex(n.args_n(1, usize::MAX)?)?,
        (CheckKind::Udp { require_reply, .. }, "require_reply") => {
            let args = n.args_n(0, usize::MAX)?;
            if let Some(t) = args.iter().find(|t| t.text.contains(['x', 'X'])) {
                return Err(err(
                    &t.loc,
                    "wildcard nibbles (x) in `require_reply` are not supported by rvs-keepalived",
                ));
            }
            *require_reply = Some(hex(args)?);
        }
        (CheckKind::Misc { path, .. }, "misc_path") => *path = script(ctx, n)?,
        (CheckKind::Misc { timeout, .. }, "misc_timeout") => *timeout = limit_arg(n)?,
        (CheckKind::Misc { dynamic, .. }, "misc_dynamic") => *dynamic = n.flag()?,
        (CheckKind::Misc { user, .. }, "user") => *user = Some(user_arg(n)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `url { path; digest; status_code; virtualhost }`.
fn url(ctx: &mut Ctx, node: &Node) -> Res<Url> {
    let mut u = Url {
        path: String::new(),
        digest: None,
        status_codes: Vec::new(),
        virtualhost: None,
    };
    for n in node.block(0)? {
        match n.name() {
            "path" => u.path = string_arg(n)?,
            "digest" => u.digest = Some(digest(n.arg1()?)?),
            "status_code" => {
                for t in n.args_n(1, usize::MAX)? {
                    for code in status_codes(t)? {
                        if !u.status_codes.contains(&code) {
                            u.status_codes.push(code);
                        }
                    }
                }
            }
            "virtualhost" => u.virtualhost = Some(string_arg(n)?),
            _ => ctx.other(n, ignored::URL),
        }
    }
    if u.path.is_empty() {
        return Err(err(node.loc(), "`url` needs a `path`"));
    }
    Ok(u)
}

/// An MD5 digest: 32 hex digits, kept in lowercase.
fn digest(t: &Token) -> Res<String> {
    if t.text.len() != 32 || !t.text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            &t.loc,
            format!("digest `{}` is not an MD5 sum (32 hex digits)", t.text),
        ));
    }
    Ok(t.text.to_ascii_lowercase())
}

/// `200` or `200-299`.
fn status_codes(t: &Token) -> Res<Vec<u16>> {
    let code = |s: &str| -> Res<u16> {
        let tok = Token {
            text: s.to_string(),
            ..t.clone()
        };
        let n = int(&tok, "HTTP status code", 100, 599)?;
        u16::try_from(n).map_err(|_| err(&t.loc, "status code out of range"))
    };
    match t.text.split_once('-') {
        None => Ok(vec![code(&t.text)?]),
        Some((a, b)) => {
            let (lo, hi) = (code(a)?, code(b)?);
            if lo > hi {
                return Err(err(
                    &t.loc,
                    format!("status code range `{}` is empty", t.text),
                ));
            }
            Ok((lo..=hi).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::build::values::duration;

    fn tok(s: &str) -> Token {
        Token::word(s)
    }

    #[test]
    fn status_code_ranges() {
        assert_eq!(status_codes(&tok("200")).unwrap(), vec![200]);
        assert_eq!(status_codes(&tok("301-303")).unwrap(), vec![301, 302, 303]);
        assert!(status_codes(&tok("303-301")).is_err());
        assert!(status_codes(&tok("99")).is_err());
        assert!(status_codes(&tok("2xx")).is_err());
    }

    #[test]
    fn digests() {
        assert_eq!(
            digest(&tok("9B3A0C85A887A256D6939DA88AABD8CD")).unwrap(),
            "9b3a0c85a887a256d6939da88aabd8cd"
        );
        assert!(digest(&tok("9b3a")).is_err());
    }

    #[test]
    fn timers_from_duration_helper() {
        assert_eq!(duration(&tok("1.5")).unwrap(), Duration::from_millis(1500));
    }
}
