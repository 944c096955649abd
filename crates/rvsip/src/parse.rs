//! dpip's command line: `rvsip [OPTIONS] OBJECT [COMMAND [ARGS]]`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use rvs_api::{IfAddr, Neigh, Request, Route};

/// A command line that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// `link show [DEV]`, with `-s` the counters.
    Links {
        /// Only this port.
        dev: Option<String>,
        /// `-s`.
        stats: bool,
    },
    /// `addr show [dev DEV]`.
    Addrs(Option<String>),
    /// `route show`.
    Routes,
    /// `neigh show [dev DEV]`.
    Neighs(Option<String>),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Usage text.
    Help,
    /// A listing; `family` filters by `-4`/`-6`.
    Show {
        /// What.
        what: Show,
        /// `-4` or `-6`: only that family.
        family: Option<u8>,
    },
    /// A change.
    Change(Request),
}

/// The options before the object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-s`/`--stats`.
    pub stats: bool,
    /// `-4`/`-6`.
    pub family: Option<u8>,
    /// `--socket PATH`.
    pub socket: Option<PathBuf>,
}

fn err<T>(m: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(m.into()))
}

/// Splits the global options off (anywhere before the object, and `-s`
/// anywhere, as `dpip link show -s` is common).
pub fn options(args: &[String]) -> Result<(Options, Vec<String>), ParseError> {
    let mut o = Options::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-s" | "-stats" | "--stats" => o.stats = true,
            "-4" => o.family = Some(4),
            "-6" => o.family = Some(6),
            "-v" | "--verbose" => {}
            "--socket" => match it.next() {
                Some(p) => o.socket = Some(PathBuf::from(p)),
                None => return err("option `--socket' needs a value"),
            },
            s if s.starts_with("--socket=") => {
                o.socket = Some(PathBuf::from(s.trim_start_matches("--socket=")));
            }
            _ => rest.push(a.clone()),
        }
    }
    Ok((o, rest))
}

fn addr(s: &str, what: &str) -> Result<IpAddr, ParseError> {
    s.parse()
        .map_err(|_| ParseError(format!("invalid {what} `{s}'")))
}

/// `ADDR[/LEN]`; without a length, a host (32/128), as dpip.
fn prefix(s: &str) -> Result<(IpAddr, u8), ParseError> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(
                l.parse::<u8>()
                    .map_err(|_| ParseError(format!("invalid prefix length in `{s}'")))?,
            ),
        ),
        None => (s, None),
    };
    let a = addr(a, "address")?;
    let len = len.unwrap_or(if a.is_ipv4() { 32 } else { 128 });
    Ok((a, len))
}

/// The words after the command: `KEY VALUE` pairs and one bare word.
struct Words {
    bare: Option<String>,
    pairs: Vec<(String, String)>,
}

fn words(args: &[String], keys: &[&str]) -> Result<Words, ParseError> {
    let mut w = Words {
        bare: None,
        pairs: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if keys.contains(&a.as_str()) {
            match it.next() {
                Some(v) => {
                    if w.pairs.iter().any(|(k, _)| k == a) {
                        return err(format!("`{a}' given twice"));
                    }
                    w.pairs.push((a.clone(), v.clone()));
                }
                None => return err(format!("`{a}' needs a value")),
            }
        } else if w.bare.is_none() {
            w.bare = Some(a.clone());
        } else {
            return err(format!("unexpected argument `{a}'"));
        }
    }
    Ok(w)
}

impl Words {
    fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    fn dev(&self) -> Result<String, ParseError> {
        self.get("dev")
            .map(str::to_string)
            .ok_or_else(|| ParseError("no device specified (dev DEV)".into()))
    }

    fn no_bare(&self) -> Result<(), ParseError> {
        match &self.bare {
            Some(b) => err(format!("unexpected argument `{b}'")),
            None => Ok(()),
        }
    }
}

fn is(word: &str, full: &str, min: usize) -> bool {
    word.len() >= min && full.starts_with(word)
}

/// Parses the command line after the options.
pub fn parse(args: &[String], opts: &Options) -> Result<Command, ParseError> {
    let Some(object) = args.first() else {
        return Ok(Command::Help);
    };
    let cmd = args.get(1).map_or("show", String::as_str);
    let rest = args.get(2..).unwrap_or_default();
    let o = object.as_str();
    if matches!(o, "help" | "-h" | "--help") || cmd == "help" {
        return Ok(Command::Help);
    }
    let show = |what| {
        Ok(Command::Show {
            what,
            family: opts.family,
        })
    };
    if is(o, "link", 1) {
        return match cmd {
            c if is(c, "show", 1) || c == "list" => {
                let w = words(rest, &[])?;
                show(Show::Links {
                    dev: w.bare,
                    stats: opts.stats,
                })
            }
            c => err(format!("link: unknown command `{c}' (show)")),
        };
    }
    if is(o, "address", 1) {
        let w = words(rest, &["dev"])?;
        return match cmd {
            c if is(c, "show", 1) || c == "list" => {
                w.no_bare()?;
                show(Show::Addrs(w.get("dev").map(str::to_string)))
            }
            "add" | "del" | "delete" => {
                let Some(p) = &w.bare else {
                    return err("missing IFADDR (ADDR/LEN)");
                };
                let (a, len) = prefix(p)?;
                let addr = IfAddr {
                    addr: a,
                    prefix_len: len,
                    dev: w.dev()?,
                };
                Ok(Command::Change(if cmd == "add" {
                    Request::AddAddr { addr }
                } else {
                    Request::DelAddr { addr }
                }))
            }
            c => err(format!("addr: unknown command `{c}' (show, add, del)")),
        };
    }
    if is(o, "route", 1) {
        let w = words(rest, &["dev", "via"])?;
        return match cmd {
            c if is(c, "show", 1) || c == "list" => {
                w.no_bare()?;
                show(Show::Routes)
            }
            "add" | "del" | "delete" => {
                let via = w.get("via").map(|v| addr(v, "gateway")).transpose()?;
                let (p, len) = match w.bare.as_deref() {
                    None => return err("missing prefix (PREFIX/LEN or default)"),
                    Some("default") => {
                        let six = opts.family == Some(6) || via.is_some_and(|v| v.is_ipv6());
                        let any: IpAddr = if six {
                            IpAddr::from([0u16; 8])
                        } else {
                            IpAddr::from([0u8; 4])
                        };
                        (any, 0)
                    }
                    Some(s) => prefix(s)?,
                };
                let route = Route {
                    prefix: p,
                    prefix_len: len,
                    via,
                    dev: w.get("dev").map(str::to_string),
                };
                Ok(Command::Change(if cmd == "add" {
                    Request::AddRoute { route }
                } else {
                    Request::DelRoute { route }
                }))
            }
            c => err(format!("route: unknown command `{c}' (show, add, del)")),
        };
    }
    if is(o, "neighbour", 1) || is(o, "neighbor", 1) {
        let w = words(rest, &["dev", "lladdr"])?;
        return match cmd {
            c if is(c, "show", 1) || c == "list" => {
                w.no_bare()?;
                show(Show::Neighs(w.get("dev").map(str::to_string)))
            }
            "add" | "del" | "delete" => {
                let Some(a) = &w.bare else {
                    return err("missing ip address");
                };
                let neigh = Neigh {
                    addr: addr(a, "IP address")?,
                    lladdr: w.get("lladdr").map(str::to_string),
                    dev: w.dev()?,
                };
                Ok(Command::Change(if cmd == "add" {
                    Request::AddNeigh { neigh }
                } else {
                    Request::DelNeigh { neigh }
                }))
            }
            c => err(format!("neigh: unknown command `{c}' (show, add, del)")),
        };
    }
    err(format!(
        "unknown object `{o}' (link, addr, route, neigh; try `rvsip help')"
    ))
}
