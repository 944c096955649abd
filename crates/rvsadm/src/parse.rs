//! ipvsadm's command line, parsed into a [`Command`] without side effects.
//!
//! Hand-written rather than clap: ipvsadm's grammar (popt) has a command that
//! is itself an option (`-A`, `-L`), option bundles (`-Lnc`), an optional
//! argument (`-p [timeout]`, taken only when the next word does not start
//! with `-`), positional arguments for one command only (`--set tcp tcpfin
//! udp`), a per-command table of legal and compulsory options, and `-b`,
//! whose meaning depends on the command: `--sched-flags FLAGS` on `-A`/`-E`
//! (upstream ipvsadm 1.31) but DPVS's `--fullnat` (no argument) on `-a`/`-e`.
//! Error messages follow ipvsadm's wording.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use rvs_api::{
    DEFAULT_PERSISTENCE_TIMEOUT, DEFAULT_SCHEDULER, Family, Forward, LocalAddr, MAX_TIMEOUT,
    Persistence, Protocol, RealServer, Request, SCHED_FLAGS, SCHEDULERS, Service, ServiceKey,
    Timeouts,
};

/// How listings are printed (ipvsadm's `FMT_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// `-n`: numeric addresses and ports.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--exact`: no K/M/G scaling.
    pub exact: bool,
    /// `--nosort`.
    pub nosort: bool,
}

/// What to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListWhat {
    /// Services (all or one).
    Services(Option<ServiceKey>),
    /// Connection entries (`-c`).
    Connections,
    /// Timeouts (`--timeout`).
    Timeouts,
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A change, sent as is.
    Change(Request),
    /// `-L`/`-l`.
    List(ListWhat, Format),
    /// `-S`.
    Save(Format),
    /// `-R`: changes read from stdin.
    Restore,
    /// `--get-laddr`.
    GetLaddr(Option<ServiceKey>),
    /// `-h`.
    Help,
    /// `-v`.
    Version,
}

/// A command-line error (ipvsadm exits 2 on these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Set,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Help,
    Version,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Set => "set",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::AddLaddr => "add-laddr",
            Cmd::DelLaddr => "del-laddr",
            Cmd::GetLaddr => "get-laddr",
            Cmd::Help => "help",
            Cmd::Version => "version",
        }
    }
}

/// Options (ipvsadm's `OPT_*`; the name is the one its messages use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Timeout,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Exact,
    Ops,
    SchedFlags,
    Laddr,
    Ifname,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Service => "service-address",
            Opt::Scheduler => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Netmask => "netmask",
            Opt::Server => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Timeout => "timeout",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::PersistentConn => "persistent-conn",
            Opt::NoSort => "nosort",
            Opt::Exact => "exact",
            Opt::Ops => "ops",
            Opt::SchedFlags => "sched-flags",
            Opt::Laddr => "laddr",
            Opt::Ifname => "ifname",
        }
    }
}

/// Legality of an option with a command (ipvsadm's `commands_v_options`):
/// `+` compulsory, `1` one of the exclusive group, ` ` optional; absent
/// options are illegal.
fn legality(cmd: Cmd) -> &'static [(Opt, char)] {
    use Opt::*;
    match cmd {
        Cmd::Add | Cmd::Edit => &[
            (Service, '+'),
            (Scheduler, ' '),
            (Persistent, ' '),
            (Netmask, ' '),
            (Ops, ' '),
            (SchedFlags, ' '),
        ],
        Cmd::Del => &[(Service, '+')],
        Cmd::List => &[
            (Numeric, ' '),
            (Connection, '1'),
            (Service, '1'),
            (Timeout, '1'),
            (Stats, ' '),
            (Rate, ' '),
            (Thresholds, ' '),
            (PersistentConn, ' '),
            (NoSort, ' '),
            (Exact, ' '),
        ],
        Cmd::AddDest | Cmd::EditDest => &[
            (Service, '+'),
            (Server, '+'),
            (Forward, ' '),
            (Weight, ' '),
            (UThreshold, ' '),
            (LThreshold, ' '),
        ],
        Cmd::DelDest => &[(Service, '+'), (Server, '+')],
        Cmd::Save => &[(Numeric, ' ')],
        Cmd::Zero => &[(Service, ' ')],
        Cmd::AddLaddr | Cmd::DelLaddr => &[(Service, '+'), (Laddr, '+'), (Ifname, ' ')],
        Cmd::GetLaddr => &[(Service, ' '), (Numeric, ' ')],
        Cmd::Flush | Cmd::Set | Cmd::Restore | Cmd::Help | Cmd::Version => &[],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arity {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy)]
enum Tok {
    Cmd(Cmd),
    Opt(Opt),
    /// `-t`, `-u`, `--sctp-service`, `-f`.
    Svc(Option<Protocol>),
    Fwd(Forward),
    Ipv6,
}

/// Maps a short or long option to what it is; `-b` depends on the command.
fn lookup(name: &str, cmd: Option<Cmd>) -> Option<(Tok, Arity)> {
    use Arity::*;
    let dest_cmd = matches!(cmd, Some(Cmd::AddDest | Cmd::EditDest | Cmd::DelDest));
    Some(match name {
        "A" | "add-service" => (Tok::Cmd(Cmd::Add), None),
        "E" | "edit-service" => (Tok::Cmd(Cmd::Edit), None),
        "D" | "delete-service" => (Tok::Cmd(Cmd::Del), None),
        "C" | "clear" => (Tok::Cmd(Cmd::Flush), None),
        "L" | "l" | "list" => (Tok::Cmd(Cmd::List), None),
        "Z" | "zero" => (Tok::Cmd(Cmd::Zero), None),
        "a" | "add-server" => (Tok::Cmd(Cmd::AddDest), None),
        "e" | "edit-server" => (Tok::Cmd(Cmd::EditDest), None),
        "d" | "delete-server" => (Tok::Cmd(Cmd::DelDest), None),
        "set" => (Tok::Cmd(Cmd::Set), None),
        "h" | "help" => (Tok::Cmd(Cmd::Help), None),
        "v" | "version" => (Tok::Cmd(Cmd::Version), None),
        "R" | "restore" => (Tok::Cmd(Cmd::Restore), None),
        "S" | "save" => (Tok::Cmd(Cmd::Save), None),
        "P" | "add-laddr" => (Tok::Cmd(Cmd::AddLaddr), None),
        "Q" | "del-laddr" => (Tok::Cmd(Cmd::DelLaddr), None),
        "G" | "get-laddr" => (Tok::Cmd(Cmd::GetLaddr), None),
        "t" | "tcp-service" => (Tok::Svc(Some(Protocol::Tcp)), Required),
        "u" | "udp-service" => (Tok::Svc(Some(Protocol::Udp)), Required),
        "sctp-service" => (Tok::Svc(Some(Protocol::Sctp)), Required),
        "f" | "fwmark-service" => (Tok::Svc(Option::None), Required),
        "s" | "scheduler" => (Tok::Opt(Opt::Scheduler), Required),
        "p" | "persistent" => (Tok::Opt(Opt::Persistent), Optional),
        "M" | "netmask" => (Tok::Opt(Opt::Netmask), Required),
        "r" | "real-server" => (Tok::Opt(Opt::Server), Required),
        "m" | "masquerading" => (Tok::Fwd(Forward::Masq), None),
        "i" | "ipip" => (Tok::Fwd(Forward::Tunnel), None),
        "g" | "gatewaying" => (Tok::Fwd(Forward::Route), None),
        "fullnat" => (Tok::Fwd(Forward::Fullnat), None),
        "J" | "snat" => (Tok::Fwd(Forward::Snat), None),
        "b" if dest_cmd => (Tok::Fwd(Forward::Fullnat), None),
        "b" | "sched-flags" => (Tok::Opt(Opt::SchedFlags), Required),
        "w" | "weight" => (Tok::Opt(Opt::Weight), Required),
        "x" | "u-threshold" => (Tok::Opt(Opt::UThreshold), Required),
        "y" | "l-threshold" => (Tok::Opt(Opt::LThreshold), Required),
        "n" | "numeric" => (Tok::Opt(Opt::Numeric), None),
        "c" | "connection" => (Tok::Opt(Opt::Connection), None),
        "timeout" => (Tok::Opt(Opt::Timeout), None),
        "stats" => (Tok::Opt(Opt::Stats), None),
        "rate" => (Tok::Opt(Opt::Rate), None),
        "thresholds" => (Tok::Opt(Opt::Thresholds), None),
        "persistent-conn" => (Tok::Opt(Opt::PersistentConn), None),
        "nosort" => (Tok::Opt(Opt::NoSort), None),
        "X" | "exact" => (Tok::Opt(Opt::Exact), None),
        "6" | "ipv6" => (Tok::Ipv6, None),
        "o" | "ops" => (Tok::Opt(Opt::Ops), None),
        "z" | "laddr" => (Tok::Opt(Opt::Laddr), Required),
        "F" | "ifname" => (Tok::Opt(Opt::Ifname), Required),
        _ => return Option::None,
    })
}

/// Port names from a services(5) file, both ways.
#[derive(Debug, Clone, Default)]
pub struct PortNames {
    by_name: HashMap<(String, &'static str), u16>,
    by_port: HashMap<(u16, &'static str), String>,
}

fn proto_key(p: Protocol) -> Option<&'static str> {
    match p {
        Protocol::Tcp => Some("tcp"),
        Protocol::Udp => Some("udp"),
        Protocol::Sctp => Some("sctp"),
        Protocol::Icmp | Protocol::Icmpv6 => None,
    }
}

impl PortNames {
    /// Parses services(5) text (`name port/proto aliases... # comment`).
    pub fn parse(text: &str) -> PortNames {
        let mut n = PortNames::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(pp)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let proto = match proto {
                "tcp" => "tcp",
                "udp" => "udp",
                "sctp" => "sctp",
                _ => continue,
            };
            n.by_port
                .entry((port, proto))
                .or_insert_with(|| name.to_string());
            for alias in std::iter::once(name).chain(words) {
                n.by_name.entry((alias.to_string(), proto)).or_insert(port);
            }
        }
        n
    }

    /// The system's (`/etc/services`), empty if unreadable.
    pub fn system() -> PortNames {
        std::fs::read_to_string("/etc/services")
            .map(|t| PortNames::parse(&t))
            .unwrap_or_default()
    }

    /// The port a service name stands for.
    pub fn port(&self, name: &str, proto: Protocol) -> Option<u16> {
        let p = proto_key(proto)?;
        self.by_name.get(&(name.to_string(), p)).copied()
    }

    /// The name of a port, if it has one.
    pub fn name(&self, port: u16, proto: Protocol) -> Option<&str> {
        let p = proto_key(proto)?;
        self.by_port.get(&(port, p)).map(String::as_str)
    }
}

/// Parses `addr[:port]`, `[v6addr]:port` or a bare IPv6 address the way
/// ipvsadm's `parse_service` does; a host name is resolved to its first IPv4
/// address. Returns the address and the port if one was given.
pub fn parse_addr_port(
    s: &str,
    proto: Protocol,
    names: &PortNames,
) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']')?;
        (h, Some(p.strip_prefix(':')?))
    } else if s.parse::<std::net::Ipv6Addr>().is_ok() {
        (s, None)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let addr: IpAddr = match host.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) if !s.starts_with('[') => resolve_v4(host)?,
        Err(_) => return None,
    };
    if s.starts_with('[') && addr.is_ipv4() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(match p.parse::<u16>() {
            Ok(n) if !p.starts_with('+') => n,
            _ => names.port(p, proto)?,
        }),
    };
    Some((addr, port))
}

fn resolve_v4(host: &str) -> Option<IpAddr> {
    if host.is_empty() || host.contains(':') {
        return None;
    }
    (host, 0)
        .to_socket_addrs()
        .ok()?
        .map(|sa| sa.ip())
        .find(IpAddr::is_ipv4)
}

/// ipvsadm's `string_to_number`: decimal within `min..=max`.
fn number(s: &str, min: u64, max: u64) -> Option<u64> {
    let n: i64 = s.parse().ok()?;
    u64::try_from(n).ok().filter(|n| (min..=max).contains(n))
}

fn timeout(s: &str, min: u32) -> Result<u32, ParseError> {
    match number(s, u64::from(min), u64::from(MAX_TIMEOUT)) {
        Some(n) => Ok(n as u32),
        None => fail(format!("invalid timeout value `{s}' specified")),
    }
}

/// A dotted IPv4 netmask to its prefix length (rvs takes contiguous masks).
fn v4_mask_prefix(s: &str) -> Option<u8> {
    let m: Ipv4Addr = s.parse().ok()?;
    let bits = u32::from(m);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

#[derive(Debug, Default)]
struct Raw {
    cmd: Option<Cmd>,
    seen: Vec<Opt>,
    service: Option<(Option<Protocol>, String)>,
    ipv6: bool,
    scheduler: Option<String>,
    persistent: Option<Option<String>>,
    netmask: Option<String>,
    server: Option<String>,
    forward: Option<Forward>,
    weight: Option<String>,
    upper: Option<String>,
    lower: Option<String>,
    sched_flags: Option<String>,
    laddr: Option<String>,
    ifname: Option<String>,
    format: Format,
    positional: Vec<String>,
}

impl Raw {
    fn set(&mut self, opt: Opt) -> Result<(), ParseError> {
        if self.seen.contains(&opt) {
            return fail(format!("multiple '{}' options specified", opt.name()));
        }
        self.seen.push(opt);
        Ok(())
    }

    fn take(&mut self, tok: Tok, arg: Option<String>) -> Result<(), ParseError> {
        let arg_or_empty = || arg.clone().unwrap_or_default();
        match tok {
            Tok::Cmd(c) => {
                if self.cmd.is_some() {
                    return fail("multiple commands specified");
                }
                self.cmd = Some(c);
            }
            Tok::Svc(p) => {
                self.set(Opt::Service)?;
                self.service = Some((p, arg_or_empty()));
            }
            Tok::Fwd(f) => {
                self.set(Opt::Forward)?;
                self.forward = Some(f);
            }
            Tok::Ipv6 => {
                if !matches!(self.service, Some((None, _))) {
                    return fail("-6 used before -f");
                }
                self.ipv6 = true;
            }
            Tok::Opt(o) => {
                self.set(o)?;
                let f = &mut self.format;
                match o {
                    Opt::Scheduler => self.scheduler = arg,
                    Opt::Persistent => self.persistent = Some(arg),
                    Opt::Netmask => self.netmask = arg,
                    Opt::Server => self.server = arg,
                    Opt::Weight => self.weight = arg,
                    Opt::UThreshold => self.upper = arg,
                    Opt::LThreshold => self.lower = arg,
                    Opt::SchedFlags => self.sched_flags = arg,
                    Opt::Laddr => self.laddr = arg,
                    Opt::Ifname => self.ifname = arg,
                    Opt::Numeric => f.numeric = true,
                    Opt::Stats => f.stats = true,
                    Opt::Rate => f.rate = true,
                    Opt::Thresholds => f.thresholds = true,
                    Opt::PersistentConn => f.persistent_conn = true,
                    Opt::NoSort => f.nosort = true,
                    Opt::Exact => f.exact = true,
                    Opt::Connection | Opt::Timeout | Opt::Ops | Opt::Forward | Opt::Service => {}
                }
            }
        }
        Ok(())
    }
}

const TRY_HELP: &str = "Try `rvsadm -h' or 'rvsadm --help' for more information.";

/// Splits `args` (without the program name) popt-style into options.
fn tokenize(args: &[String]) -> Result<Raw, ParseError> {
    let mut raw = Raw::default();
    let mut i = 0;
    let next_value = |i: &mut usize, arity: Arity| -> Option<String> {
        let v = args.get(*i + 1)?;
        if arity == Arity::Optional && v.starts_with('-') {
            return None;
        }
        *i += 1;
        Some(v.clone())
    };
    while let Some(a) = args.get(i) {
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if name == "sort" {
                i += 1;
                continue;
            }
            let Some((tok, arity)) = lookup(name, raw.cmd) else {
                return fail(format!("invalid option `{a}'"));
            };
            if raw.cmd.is_none() && !matches!(tok, Tok::Cmd(_)) {
                return fail(TRY_HELP);
            }
            let arg = match (arity, inline) {
                (Arity::None, Some(_)) => return fail(format!("option `--{name}' takes no value")),
                (Arity::None, None) => None,
                (_, Some(v)) => Some(v),
                (ar, None) => {
                    let v = next_value(&mut i, ar);
                    if ar == Arity::Required && v.is_none() {
                        return fail(format!("option `--{name}' needs a value"));
                    }
                    v
                }
            };
            raw.take(tok, arg)?;
        } else if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a.chars().skip(1).collect();
            let mut j = 0;
            while let Some(c) = chars.get(j) {
                let name = c.to_string();
                let Some((tok, arity)) = lookup(&name, raw.cmd) else {
                    return fail(format!("invalid option `-{c}'"));
                };
                if raw.cmd.is_none() && !matches!(tok, Tok::Cmd(_)) {
                    return fail(TRY_HELP);
                }
                let rest: String = chars.get(j + 1..).unwrap_or(&[]).iter().collect();
                let arg = match arity {
                    Arity::None => None,
                    _ if !rest.is_empty() => {
                        j = chars.len();
                        Some(rest)
                    }
                    ar => {
                        let v = next_value(&mut i, ar);
                        if ar == Arity::Required && v.is_none() {
                            return fail(format!("option `-{c}' needs a value"));
                        }
                        v
                    }
                };
                raw.take(tok, arg)?;
                j += 1;
            }
        } else {
            if raw.cmd.is_none() {
                return fail(TRY_HELP);
            }
            raw.positional.push(a.clone());
        }
        i += 1;
    }
    Ok(raw)
}

/// Parses a command line (without the program name).
pub fn parse(args: &[String], names: &PortNames) -> Result<Command, ParseError> {
    let raw = tokenize(args)?;
    let Some(cmd) = raw.cmd else {
        return fail(TRY_HELP);
    };
    // ipvsadm's generic_opt_check: illegal, compulsory and exclusive options.
    let table = legality(cmd);
    let mut exclusive: Option<Opt> = None;
    for &opt in &raw.seen {
        match table.iter().find(|(o, _)| *o == opt) {
            None => {
                return fail(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt.name(),
                    cmd.name()
                ));
            }
            Some((_, '1')) => {
                if let Some(last) = exclusive {
                    return fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        opt.name(),
                        last.name(),
                        cmd.name()
                    ));
                }
                exclusive = Some(opt);
            }
            Some(_) => {}
        }
    }
    for (opt, how) in table {
        if *how == '+' && !raw.seen.contains(opt) {
            return fail(format!(
                "You need to supply the '{}' option for the '{}' command",
                opt.name(),
                cmd.name()
            ));
        }
    }
    if cmd == Cmd::Set && raw.positional.len() < 3 {
        return fail("--set option requires 3 timeout values");
    }
    let expected_positional = if cmd == Cmd::Set { 3 } else { 0 };
    if let Some(extra) = raw.positional.get(expected_positional) {
        return fail(format!("unexpected argument {extra}"));
    }

    let key = match &raw.service {
        Some((proto, s)) => Some(service_key(*proto, s, raw.ipv6, names)?),
        None => None,
    };
    let need_key = || key.ok_or_else(|| ParseError("no service-address".into()));
    Ok(match cmd {
        Cmd::Help => Command::Help,
        Cmd::Version => Command::Version,
        Cmd::Flush => Command::Change(Request::Clear),
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save(raw.format),
        Cmd::Zero => Command::Change(Request::Zero { service: key }),
        Cmd::Set => {
            let t = |i: usize| timeout(raw.positional.get(i).map_or("", String::as_str), 0);
            Command::Change(Request::SetTimeouts {
                timeouts: Timeouts {
                    tcp: t(0)?,
                    tcp_fin: t(1)?,
                    udp: t(2)?,
                },
            })
        }
        Cmd::List => {
            let f = raw.format;
            let what = if raw.seen.contains(&Opt::Connection) {
                ListWhat::Connections
            } else if raw.seen.contains(&Opt::Timeout) {
                ListWhat::Timeouts
            } else {
                ListWhat::Services(key)
            };
            if matches!(what, ListWhat::Connections | ListWhat::Timeouts)
                && (f.stats || f.rate || f.thresholds)
                || what == ListWhat::Timeouts && f.persistent_conn
            {
                return fail("options conflicts in the list command");
            }
            Command::List(what, f)
        }
        Cmd::Add | Cmd::Edit => {
            let service = build_service(&raw, need_key()?)?;
            Command::Change(if cmd == Cmd::Add {
                Request::AddService { service }
            } else {
                Request::EditService { service }
            })
        }
        Cmd::Del => Command::Change(Request::DeleteService {
            service: need_key()?,
        }),
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let service = need_key()?;
            let server = build_server(&raw, &service, cmd != Cmd::DelDest, names)?;
            Command::Change(match cmd {
                Cmd::AddDest => Request::AddRealServer { service, server },
                Cmd::EditDest => Request::EditRealServer { service, server },
                _ => Request::DeleteRealServer {
                    service,
                    addr: server.addr,
                    port: server.port,
                },
            })
        }
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let service = need_key()?;
            let text = raw.laddr.as_deref().unwrap_or("");
            let addr = match parse_addr_port(text, Protocol::Tcp, names) {
                Some((a, None)) => a,
                _ => return fail("illegal local address"),
            };
            let laddr = LocalAddr {
                addr,
                ifname: raw.ifname.clone(),
            };
            Command::Change(if cmd == Cmd::AddLaddr {
                Request::AddLaddr { service, laddr }
            } else {
                Request::DelLaddr { service, laddr }
            })
        }
        Cmd::GetLaddr => Command::GetLaddr(key),
    })
}

fn service_key(
    proto: Option<Protocol>,
    s: &str,
    ipv6: bool,
    names: &PortNames,
) -> Result<ServiceKey, ParseError> {
    match proto {
        None => match number(s, 1, u64::from(u32::MAX)) {
            Some(mark) => Ok(ServiceKey::Fwmark {
                mark: mark as u32,
                family: if ipv6 { Family::Ipv6 } else { Family::Ipv4 },
            }),
            None => fail(format!("invalid fwmark value `{s}' specified")),
        },
        Some(protocol) => match parse_addr_port(s, protocol, names) {
            Some((addr, port)) => Ok(ServiceKey::Addr {
                protocol,
                addr,
                port: port.unwrap_or(0),
            }),
            None => fail("illegal virtual server address[:port] specified"),
        },
    }
}

fn build_service(raw: &Raw, key: ServiceKey) -> Result<Service, ParseError> {
    let scheduler = raw
        .scheduler
        .clone()
        .unwrap_or_else(|| DEFAULT_SCHEDULER.to_string());
    if !SCHEDULERS.contains(&scheduler.as_str()) {
        return fail(format!(
            "unknown scheduler `{scheduler}' (rvs has: {})",
            SCHEDULERS.join(" ")
        ));
    }
    let v6 = key.family() == Family::Ipv6;
    let netmask = match &raw.netmask {
        None => {
            if v6 {
                128
            } else {
                32
            }
        }
        Some(m) if v6 => match number(m, 1, 128) {
            Some(n) => n as u8,
            None => return fail("illegal ipv6 netmask specified"),
        },
        Some(m) => match v4_mask_prefix(m) {
            Some(n) if n > 0 => n,
            _ => return fail("illegal virtual server persistent mask specified"),
        },
    };
    let persistence = match &raw.persistent {
        None => None,
        Some(t) => Some(Persistence {
            timeout: match t {
                Some(t) => timeout(t, 1)?,
                None => DEFAULT_PERSISTENCE_TIMEOUT,
            },
            netmask,
        }),
    };
    let mut flags = Vec::new();
    if let Some(arg) = &raw.sched_flags {
        for flag in arg.split(',').filter(|f| !f.is_empty()) {
            if !SCHED_FLAGS.contains(&flag) {
                return fail(format!("invalid scheduler flag `{flag}'"));
            }
            let needs = flag.split_once('-').map(|(p, _)| p);
            if matches!(needs, Some("sh" | "mh")) && needs != Some(scheduler.as_str()) {
                return fail(format!("incompatible scheduler flag `{flag}'"));
            }
            if !flags.iter().any(|f: &String| f == flag) {
                flags.push(flag.to_string());
            }
        }
    }
    let service = Service {
        key,
        scheduler,
        flags,
        persistence,
        one_packet: raw.seen.contains(&Opt::Ops),
    };
    if let ServiceKey::Addr { protocol, port, .. } = key {
        if port == 0 && service.persistence.is_none() {
            return fail("Zero port specified for non-persistent service");
        }
        if service.one_packet && protocol != Protocol::Udp {
            return fail("One-Packet Scheduling is only for UDP virtual services");
        }
    }
    Ok(service)
}

fn build_server(
    raw: &Raw,
    key: &ServiceKey,
    adding: bool,
    names: &PortNames,
) -> Result<RealServer, ParseError> {
    let (proto, vport) = match *key {
        ServiceKey::Addr { protocol, port, .. } => (protocol, port),
        ServiceKey::Fwmark { .. } => (Protocol::Tcp, 0),
    };
    let text = raw.server.as_deref().unwrap_or("");
    let Some((addr, port)) = parse_addr_port(text, proto, names) else {
        return fail("illegal real server address[:port] specified");
    };
    let forward = raw.forward.unwrap_or(Forward::Route);
    let mut port = port.unwrap_or(vport);
    // As ipvsadm (add and edit only): route and tunnel keep the service's port.
    if adding
        && matches!(key, ServiceKey::Addr { .. })
        && matches!(forward, Forward::Route | Forward::Tunnel)
    {
        port = vport;
    }
    let num = |v: &Option<String>, max: u64, what: &str| -> Result<u32, ParseError> {
        match v {
            None => Ok(0),
            Some(s) => match number(s, 0, max) {
                Some(n) => Ok(n as u32),
                None => fail(format!("illegal {what} specified")),
            },
        }
    };
    let weight = match raw.weight {
        None => 1,
        Some(_) => num(&raw.weight, 65535, "weight")?,
    };
    let server = RealServer {
        addr,
        port,
        forward,
        weight,
        upper_threshold: num(&raw.upper, i32::MAX as u64, "u_threshold")?,
        lower_threshold: num(&raw.lower, i32::MAX as u64, "l_threshold")?,
    };
    if key.family() != rvs_api::family_of(addr) && forward != Forward::Tunnel {
        return fail("Different address family is allowed only for tunneling servers");
    }
    Ok(server)
}
