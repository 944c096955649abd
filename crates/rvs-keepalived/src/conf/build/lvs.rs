//! `virtual_server` and its `real_server`s.
//!
//! keepalived lets a virtual server set defaults for its real servers
//! (`inhibit_on_failure`, `weight`, and the checker timers `retry`,
//! `connect_timeout`, `delay_before_retry`, `warmup`) and a real server
//! set them for its checkers, wherever in the block they are written; so
//! each block's own settings are read first, then its children, and the
//! model receives the values in force.

use std::net::IpAddr;

use super::super::model::{LbKind, Protocol, RealServer, VirtualServer, VsAddr};
use super::super::tree::{Node, err};
use super::check::{self, CheckDefaults};
use super::values::{
    Res, int, ip, lb_kind, notify_script, port, positive_duration_arg, prefix_or_mask, string_arg,
    uint, uint_arg,
};
use super::{Ctx, RefKind, ignored};

/// Scheduler names ipvsadm knows (`-s`), plus DPVS's `conhash`.
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
    "conhash",
];

/// Scheduler flags (ipvsadm `-b` names).
const SCHED_FLAGS: &[&str] = &[
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-port",
    "sh-fallback",
    "mh-port",
    "mh-fallback",
];

/// Persistence without a value (ipvsadm's default, 6 minutes).
const DEFAULT_PERSISTENCE: u32 = 360;

/// The longest persistence ipvsadm accepts (31 days).
const MAX_PERSISTENCE: i64 = 31 * 86_400;

/// Reads `virtual_server ... { }`.
pub(crate) fn virtual_server(ctx: &mut Ctx, node: &Node) -> Res<VirtualServer> {
    let addr = vs_addr(ctx, node)?;
    let mut vs = VirtualServer::new(addr, node.loc().clone());
    let mut defaults = CheckDefaults::default();
    let mut weight = 1;
    let mut family: Option<(bool, &Node)> = None;
    let mut granularity: Option<&Node> = None;
    let body = node.block(3)?;
    for n in body {
        if defaults.read(n)? {
            continue;
        }
        match n.name() {
            "real_server" => {}
            "delay_loop" => vs.delay_loop = positive_duration_arg(n)?,
            "lb_algo" | "lvs_sched" => vs.scheduler = scheduler(ctx, n)?,
            "lb_kind" | "lvs_method" => vs.kind = lb_kind(ctx, n)?,
            "persistence_timeout" => vs.persistence_timeout = persistence(n)?,
            "persistence_granularity" => {
                vs.persistence_granularity = Some(prefix_or_mask(n.arg1()?)?);
                granularity = Some(n);
            }
            "protocol" => vs.protocol = protocol(n)?,
            "ops" => vs.ops = n.flag()?,
            "quorum" => vs.quorum = uint_arg(n)?,
            "hysteresis" => vs.hysteresis = uint_arg(n)?,
            "quorum_up" => vs.quorum_up = notify_script(ctx, n)?,
            "quorum_down" => vs.quorum_down = notify_script(ctx, n)?,
            "alpha" => vs.alpha = n.flag()?,
            "omega" => vs.omega = n.flag()?,
            "inhibit_on_failure" => vs.inhibit_on_failure = n.flag()?,
            "sorry_server" => vs.sorry_server = Some(sorry_server(n, &vs.addr)?),
            "sorry_server_inhibit" => vs.sorry_server_inhibit = n.flag()?,
            "sorry_server_lvs_method" => vs.sorry_server_kind = Some(lb_kind(ctx, n)?),
            "laddr_group_name" | "local_address_group" => {
                ctx.refer(RefKind::LaddrGroup, n.arg1()?);
                vs.laddr_group = Some(string_arg(n)?);
            }
            "virtualhost" => vs.virtualhost = Some(string_arg(n)?),
            "weight" => weight = weight_arg(n)?,
            "ip_family" => family = Some((ip_family(n)?, n)),
            "hashed" => ctx.ignored_at(n.loc(), "`hashed`"),
            f if SCHED_FLAGS.contains(&f) => {
                n.args_n(0, 0)?;
                if !vs.sched_flags.iter().any(|x| x == f) {
                    vs.sched_flags.push(f.to_string());
                }
            }
            _ => ctx.other(n, ignored::VIRTUAL_SERVER),
        }
    }
    apply_family(&mut vs, family)?;
    check_granularity(&vs, granularity)?;
    if matches!(vs.kind, LbKind::FullNat | LbKind::Snat) && vs.laddr_group.is_none() {
        ctx.warn(
            node.loc(),
            "FNAT/SNAT virtual_server without `laddr_group_name`: no local address is given to rvsd for it",
        );
    }
    let rs_defaults = RsDefaults {
        weight,
        inhibit: vs.inhibit_on_failure,
        port: match vs.addr {
            VsAddr::Addr { port, .. } => port,
            _ => 0,
        },
        check: defaults,
    };
    for n in body.iter().filter(|n| n.name() == "real_server") {
        let rs = real_server(ctx, n, &rs_defaults, vs.virtualhost.as_deref())?;
        if let Some(dup) = vs
            .real_servers
            .iter()
            .find(|r| r.ip == rs.ip && r.port == rs.port)
        {
            return Err(err(
                n.loc(),
                format!(
                    "real_server {} {} is already defined at {}",
                    rs.ip, rs.port, dup.loc
                ),
            ));
        }
        vs.real_servers.push(rs);
    }
    Ok(vs)
}

/// The head of `virtual_server`: `IP [PORT]`, `fwmark N`, `group NAME`.
fn vs_addr(ctx: &mut Ctx, node: &Node) -> Res<VsAddr> {
    let first = node.args.first().ok_or_else(|| {
        err(
            node.loc(),
            "`virtual_server` needs an address, `fwmark N` or `group NAME`",
        )
    })?;
    let second = || {
        node.args.get(1).ok_or_else(|| {
            err(
                node.loc(),
                format!("`virtual_server {}` needs a value", first.text),
            )
        })
    };
    match first.text.as_str() {
        "fwmark" => {
            let t = second()?;
            let mark = uint(t, "fwmark")?;
            if mark == 0 {
                return Err(err(&t.loc, "fwmark must not be 0"));
            }
            Ok(VsAddr::Fwmark { mark, v6: false })
        }
        "group" => {
            let t = second()?;
            ctx.refer(RefKind::VsGroup, t);
            Ok(VsAddr::Group(t.text.clone()))
        }
        _ => Ok(VsAddr::Addr {
            ip: ip(first)?,
            port: node.args.get(1).map(port).transpose()?.unwrap_or(0),
        }),
    }
}

/// `lb_algo NAME`.
fn scheduler(ctx: &mut Ctx, n: &Node) -> Res<String> {
    let t = n.arg1()?;
    let name = t.text.to_ascii_lowercase();
    if !SCHEDULERS.contains(&name.as_str()) {
        return Err(err(
            &t.loc,
            format!(
                "unknown scheduler `{}` (one of {})",
                t.text,
                SCHEDULERS.join(" ")
            ),
        ));
    }
    if !rvs_api::SCHEDULERS.contains(&name.as_str()) {
        ctx.warn(
            &t.loc,
            format!(
                "scheduler `{name}` is not implemented by rvs: rvsd will refuse this virtual_server"
            ),
        );
    }
    Ok(name)
}

/// `persistence_timeout [SECONDS]`; 0 means none.
fn persistence(n: &Node) -> Res<Option<u32>> {
    let Some(t) = n.args_n(0, 1)?.first() else {
        return Ok(Some(DEFAULT_PERSISTENCE));
    };
    let secs = int(t, "persistence_timeout", 0, MAX_PERSISTENCE)?;
    Ok(u32::try_from(secs).ok().filter(|s| *s > 0))
}

/// `protocol TCP|UDP`.
fn protocol(n: &Node) -> Res<Protocol> {
    let t = n.arg1()?;
    match t.text.to_ascii_uppercase().as_str() {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Err(err(&t.loc, "protocol SCTP is not supported by rvs")),
        _ => Err(err(
            &t.loc,
            format!("unknown protocol `{}` (TCP or UDP)", t.text),
        )),
    }
}

/// `sorry_server IP [PORT]` (the port defaults to the virtual server's).
fn sorry_server(n: &Node, vs: &VsAddr) -> Res<(IpAddr, u16)> {
    let args = n.args_n(1, 2)?;
    let default = match vs {
        VsAddr::Addr { port, .. } => *port,
        _ => 0,
    };
    Ok((
        ip(&args[0])?,
        args.get(1).map(port).transpose()?.unwrap_or(default),
    ))
}

/// A real-server weight (ipvsadm: 0..=65535).
fn weight_arg(n: &Node) -> Res<u32> {
    let w = int(n.arg1()?, "weight", 0, 65535)?;
    u32::try_from(w).map_err(|_| err(n.loc(), "weight out of range"))
}

/// `ip_family inet|inet6`: true for IPv6.
fn ip_family(n: &Node) -> Res<bool> {
    let t = n.arg1()?;
    match t.text.as_str() {
        "inet" => Ok(false),
        "inet6" => Ok(true),
        _ => Err(err(&t.loc, format!("`{}` is not inet or inet6", t.text))),
    }
}

/// Applies `ip_family`: a fwmark service's family; an address must agree.
fn apply_family(vs: &mut VirtualServer, family: Option<(bool, &Node)>) -> Res<()> {
    let Some((v6, n)) = family else {
        return Ok(());
    };
    match &mut vs.addr {
        VsAddr::Fwmark { v6: f, .. } => *f = v6,
        VsAddr::Addr { ip, .. } if ip.is_ipv6() != v6 => {
            return Err(err(
                n.loc(),
                format!("ip_family does not match the address {ip}"),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// A persistence prefix must fit the service's family.
fn check_granularity(vs: &VirtualServer, n: Option<&Node>) -> Res<()> {
    let (Some(p), Some(n)) = (vs.persistence_granularity, n) else {
        return Ok(());
    };
    let v6 = match vs.addr {
        VsAddr::Addr { ip, .. } => ip.is_ipv6(),
        VsAddr::Fwmark { v6, .. } => v6,
        VsAddr::Group(_) => return Ok(()),
    };
    if !v6 && p > 32 {
        return Err(err(
            n.loc(),
            format!("persistence_granularity /{p} is longer than an IPv4 address"),
        ));
    }
    Ok(())
}

/// What a virtual server hands down to its real servers.
#[derive(Debug)]
struct RsDefaults {
    weight: u32,
    inhibit: bool,
    port: u16,
    check: CheckDefaults,
}

/// Reads `real_server IP [PORT] { }` (the block may be absent: a real
/// server without checkers).
fn real_server(
    ctx: &mut Ctx,
    node: &Node,
    d: &RsDefaults,
    vs_virtualhost: Option<&str>,
) -> Res<RealServer> {
    if node.args.is_empty() {
        return Err(err(node.loc(), "`real_server` needs an address"));
    }
    if let Some(extra) = node.args.get(2) {
        return Err(err(
            &extra.loc,
            format!("`real_server`: unexpected argument `{}`", extra.text),
        ));
    }
    let mut rs = RealServer {
        weight: d.weight,
        inhibit_on_failure: d.inhibit,
        ..RealServer::new(
            ip(&node.args[0])?,
            node.args.get(1).map(port).transpose()?.unwrap_or(d.port),
            node.loc().clone(),
        )
    };
    let body = node.block.as_deref().unwrap_or(&[]);
    let mut defaults = d.check.clone();
    let mut virtualhost = vs_virtualhost.map(str::to_string);
    for n in body {
        if defaults.read(n)? || check::is_checker(n.name()) {
            continue;
        }
        match n.name() {
            "weight" => rs.weight = weight_arg(n)?,
            "lvs_method" | "lb_kind" => rs.kind = Some(lb_kind(ctx, n)?),
            "inhibit_on_failure" => rs.inhibit_on_failure = n.flag()?,
            "uthreshold" => rs.upper_threshold = uint_arg(n)?,
            "lthreshold" => rs.lower_threshold = uint_arg(n)?,
            "notify_up" => rs.notify_up = notify_script(ctx, n)?,
            "notify_down" => rs.notify_down = notify_script(ctx, n)?,
            "delay_loop" => rs.delay_loop = Some(positive_duration_arg(n)?),
            "virtualhost" => virtualhost = Some(string_arg(n)?),
            _ => ctx.other(n, ignored::REAL_SERVER),
        }
    }
    for n in body.iter().filter(|n| check::is_checker(n.name())) {
        if let Some(c) = check::checker(ctx, n, &defaults, virtualhost.as_deref())? {
            rs.checkers.push(c);
        }
    }
    Ok(rs)
}
