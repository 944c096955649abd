//! `vrrp_script`, `vrrp_instance` and `vrrp_sync_group`.
//!
//! An instance's settings that depend on others (its VRRP version may
//! come from `global_defs`, written anywhere; the advert interval's
//! rules depend on the version; authentication exists only in v2; the
//! address family is the first address's) are settled in [`finish`],
//! once the whole file is read.

use std::net::IpAddr;
use std::time::Duration;

use super::super::lexer::Token;
use super::super::model::{
    Auth, Config, InitialState, SyncGroup, TrackInterface, TrackScript, VirtualIp, VrrpInstance,
    VrrpScript,
};
use super::super::tree::{Node, err};
use super::global::vrrp_version;
use super::values::{
    Res, duration_arg, int, ip, limit_arg, notify_script, positive_duration_arg, script,
    string_arg, uint_arg, user_arg,
};
use super::{Ctx, RefKind, ignored};

/// The longest VRRPv2 password (longer ones are truncated, as keepalived
/// does).
const MAX_PASS: usize = 8;

/// What [`finish`] still needs of an instance.
#[derive(Debug)]
pub(crate) struct Pending {
    /// `version` written in the instance.
    version: Option<u8>,
    /// The `advert_int` statement, if any.
    advert: Option<Node>,
    /// The `authentication` statement, if any.
    auth: Option<Node>,
}

/// Reads `vrrp_script NAME { }`.
pub(crate) fn script_block(ctx: &mut Ctx, node: &Node) -> Res<VrrpScript> {
    let name = block_name(node)?;
    let mut s = VrrpScript {
        name,
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        rise: 1,
        fall: 1,
        user: None,
        loc: node.loc().clone(),
    };
    for n in node.block(1)? {
        match n.name() {
            "script" => s.script = script(ctx, n)?,
            "interval" => s.interval = positive_duration_arg(n)?,
            "timeout" => s.timeout = limit_arg(n)?,
            "weight" => s.weight = weight(n, 0, -253, 253)?,
            "rise" => s.rise = at_least_one(n)?,
            "fall" => s.fall = at_least_one(n)?,
            "user" => s.user = Some(user_arg(n)?),
            _ => ctx.other(n, ignored::VRRP_SCRIPT),
        }
    }
    if s.script.is_empty() {
        return Err(err(node.loc(), "`vrrp_script` needs `script`"));
    }
    Ok(s)
}

/// Reads `vrrp_instance NAME { }`.
pub(crate) fn instance(ctx: &mut Ctx, node: &Node) -> Res<(VrrpInstance, Pending)> {
    let name = block_name(node)?;
    let mut v = VrrpInstance {
        name,
        initial_state: InitialState::Backup,
        interface: String::new(),
        vrid: 0,
        priority: 100,
        advert_int: Duration::from_secs(1),
        version: 0,
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        auth: Auth::None,
        vips: Vec::new(),
        vips_excluded: Vec::new(),
        src_ip: None,
        unicast_peers: Vec::new(),
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        loc: node.loc().clone(),
    };
    let mut p = Pending {
        version: None,
        advert: None,
        auth: None,
    };
    let mut preempt_at: Vec<&Node> = Vec::new();
    for n in node.block(1)? {
        match n.name() {
            "state" => v.initial_state = state(n)?,
            "interface" => v.interface = string_arg(n)?,
            "virtual_router_id" => v.vrid = byte(n, "virtual_router_id", 1)?,
            "priority" => v.priority = byte(n, "priority", 1)?,
            "advert_int" => {
                v.advert_int = duration_arg(n)?;
                p.advert = Some(n.clone());
            }
            "version" => p.version = Some(vrrp_version(n)?),
            "nopreempt" => {
                v.nopreempt = n.flag()?;
                preempt_at.push(n);
            }
            "preempt" => v.nopreempt = !n.flag()?,
            "preempt_delay" => {
                v.preempt_delay = bounded(n, 1000)?;
                preempt_at.push(n);
            }
            "authentication" => {
                v.auth = auth(ctx, n)?;
                p.auth = Some(n.clone());
            }
            "virtual_ipaddress" => v.vips.extend(vips(ctx, n)?),
            "virtual_ipaddress_excluded" => v.vips_excluded.extend(vips(ctx, n)?),
            "unicast_src_ip" | "mcast_src_ip" => v.src_ip = Some(ip(n.arg1()?)?),
            "unicast_peer" => v.unicast_peers.extend(peers(ctx, n)?),
            "track_interface" => v.track_interfaces.extend(track_interfaces(n)?),
            "track_script" => v.track_scripts.extend(track_scripts(ctx, n)?),
            "notify_master" => v.notify_master = notify_script(ctx, n)?,
            "notify_backup" => v.notify_backup = notify_script(ctx, n)?,
            "notify_fault" => v.notify_fault = notify_script(ctx, n)?,
            "notify_stop" => v.notify_stop = notify_script(ctx, n)?,
            "notify" => v.notify = notify_script(ctx, n)?,
            "garp_master_delay" => v.garp_master_delay = Some(duration_arg(n)?),
            "garp_master_repeat" => v.garp_master_repeat = Some(uint_arg(n)?),
            "garp_master_refresh" => v.garp_master_refresh = Some(duration_arg(n)?),
            "garp_master_refresh_repeat" => {
                v.garp_master_refresh_repeat = Some(uint_arg(n)?);
            }
            _ => ctx.other(n, ignored::VRRP_INSTANCE),
        }
    }
    if v.interface.is_empty() {
        return Err(err(
            node.loc(),
            format!("vrrp_instance {}: `interface` is required", v.name),
        ));
    }
    if v.vrid == 0 {
        return Err(err(
            node.loc(),
            format!("vrrp_instance {}: `virtual_router_id` is required", v.name),
        ));
    }
    split_families(ctx, &mut v)?;
    preemption_rules(ctx, &mut v, &preempt_at);
    Ok((v, p))
}

/// keepalived's rules, so a file behaves here as it did there: an
/// instance that owns the address (priority 255) or starts as MASTER
/// always preempts, so its `nopreempt` is dropped with a warning (`state
/// MASTER` with `nopreempt` is a common slip), and so is the
/// `preempt_delay` of one that starts as MASTER.
fn preemption_rules(ctx: &mut Ctx, v: &mut VrrpInstance, at: &[&Node]) {
    let owner = v.priority == u8::MAX;
    let master = v.initial_state == InitialState::Master;
    for n in at {
        let why = match n.name() {
            "nopreempt" if v.nopreempt && owner => "priority 255 (the address owner)",
            "nopreempt" if v.nopreempt && master => "`state MASTER`",
            "preempt_delay" if !v.preempt_delay.is_zero() && master => "`state MASTER`",
            _ => continue,
        };
        if n.name() == "nopreempt" {
            v.nopreempt = false;
        } else {
            v.preempt_delay = Duration::ZERO;
        }
        ctx.warn(
            n.loc(),
            format!(
                "`{}` does not work with {why} (as in keepalived): ignored",
                n.name()
            ),
        );
    }
}

/// Reads `vrrp_sync_group NAME { group { ... } notify_* }`.
pub(crate) fn sync_group(ctx: &mut Ctx, node: &Node) -> Res<SyncGroup> {
    let mut g = SyncGroup {
        name: block_name(node)?,
        members: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify: None,
        loc: node.loc().clone(),
    };
    let mut seen_group = false;
    for n in node.block(1)? {
        match n.name() {
            "group" => {
                seen_group = true;
                for line in n.block(0)? {
                    if line.block.is_some() {
                        return Err(err(line.loc(), "a sync group member takes no block"));
                    }
                    for t in std::iter::once(&line.keyword).chain(&line.args) {
                        ctx.refer(RefKind::SyncMember, t);
                        g.members.push(t.text.clone());
                    }
                }
            }
            "notify_master" => g.notify_master = notify_script(ctx, n)?,
            "notify_backup" => g.notify_backup = notify_script(ctx, n)?,
            "notify_fault" => g.notify_fault = notify_script(ctx, n)?,
            "notify" => g.notify = notify_script(ctx, n)?,
            _ => ctx.other(n, ignored::SYNC_GROUP),
        }
    }
    if !seen_group {
        return Err(err(
            node.loc(),
            format!("vrrp_sync_group {}: `group` is required", g.name),
        ));
    }
    Ok(g)
}

/// Settles what depends on the whole file: each instance's version,
/// advert interval and authentication, then names and virtual router ids
/// that must be unique.
pub(crate) fn finish(ctx: &mut Ctx, cfg: &mut Config, pending: &[Pending]) -> Res<()> {
    let global = cfg.global.vrrp_version;
    for (v, p) in cfg.vrrp_instances.iter_mut().zip(pending) {
        v.version = p.version.unwrap_or(global);
        if let Some(n) = &p.advert {
            v.advert_int = advert_int(ctx, n, v.advert_int, v.version)?;
        }
        if let Some(n) = &p.auth
            && v.version == 3
            && v.auth != Auth::None
        {
            ctx.warn(
                n.loc(),
                "`authentication` does not exist in VRRP version 3: ignored",
            );
            v.auth = Auth::None;
        }
    }
    for (i, v) in cfg.vrrp_instances.iter().enumerate() {
        for w in &cfg.vrrp_instances[..i] {
            if w.name == v.name {
                return Err(err(
                    &v.loc,
                    format!("vrrp_instance {} is already defined at {}", v.name, w.loc),
                ));
            }
            if w.vrid == v.vrid && w.interface == v.interface && w.is_v6() == v.is_v6() {
                return Err(err(
                    &v.loc,
                    format!(
                        "vrrp_instance {}: virtual_router_id {} on {} is already used by {} at {}",
                        v.name, v.vrid, v.interface, w.name, w.loc
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The name after `vrrp_instance` / `vrrp_script` / `vrrp_sync_group`.
fn block_name(node: &Node) -> Res<String> {
    match node.args.first() {
        Some(t) => Ok(t.text.clone()),
        None => Err(err(node.loc(), format!("`{}` needs a name", node.name()))),
    }
}

/// `state MASTER|BACKUP`.
fn state(n: &Node) -> Res<InitialState> {
    let t = n.arg1()?;
    match t.text.to_ascii_uppercase().as_str() {
        "MASTER" => Ok(InitialState::Master),
        "BACKUP" => Ok(InitialState::Backup),
        _ => Err(err(
            &t.loc,
            format!("state `{}` is not MASTER or BACKUP", t.text),
        )),
    }
}

/// A one-byte setting in `lo..=255`.
fn byte(n: &Node, what: &str, lo: i64) -> Res<u8> {
    let t = n.arg1()?;
    let v = int(t, what, lo, 255)?;
    u8::try_from(v).map_err(|_| err(&t.loc, format!("{what} out of range")))
}

/// A timer of at most `max_secs`.
fn bounded(n: &Node, max_secs: u64) -> Res<Duration> {
    let d = duration_arg(n)?;
    if d > Duration::from_secs(max_secs) {
        return Err(err(
            n.loc(),
            format!("`{}` is longer than {max_secs} s", n.name()),
        ));
    }
    Ok(d)
}

/// `rise` / `fall`: at least 1.
fn at_least_one(n: &Node) -> Res<u32> {
    let v = uint_arg(n)?;
    if v == 0 {
        return Err(err(n.loc(), format!("`{}` must be at least 1", n.name())));
    }
    Ok(v)
}

/// The weight in `args[at]` within `lo..=hi`; `reverse` after it is
/// refused (it inverts the meaning and rvs does not implement it).
fn weight(n: &Node, at: usize, lo: i64, hi: i64) -> Res<i32> {
    let args = &n.args;
    let t = args
        .get(at)
        .ok_or_else(|| err(n.loc(), "`weight` needs a value"))?;
    if let Some(extra) = args.get(at + 1) {
        let msg = if extra.text == "reverse" {
            "`weight ... reverse` is not supported by rvs-keepalived".to_string()
        } else {
            format!("unexpected argument `{}`", extra.text)
        };
        return Err(err(&extra.loc, msg));
    }
    let w = int(t, "weight", lo, hi)?;
    i32::try_from(w).map_err(|_| err(&t.loc, "weight out of range"))
}

/// The advert interval: whole seconds 1..=255 in v2 (a fraction is
/// rounded, with a warning, as keepalived does), centiseconds up to 40.95 s
/// in v3.
fn advert_int(ctx: &mut Ctx, n: &Node, d: Duration, version: u8) -> Res<Duration> {
    let (lo, hi) = if version == 2 {
        (Duration::from_secs(1), Duration::from_secs(255))
    } else {
        (Duration::from_millis(10), Duration::from_millis(40_950))
    };
    let unit = if version == 2 { 1000 } else { 10 };
    let ms = d.as_millis();
    let rounded = ((ms + unit / 2) / unit * unit).max(unit);
    let r = Duration::from_millis(u64::try_from(rounded).unwrap_or(u64::MAX));
    if r < lo || r > hi {
        return Err(err(
            n.loc(),
            format!(
                "advert_int {} s is out of range {}..={} s for VRRP version {version}",
                d.as_secs_f64(),
                lo.as_secs_f64(),
                hi.as_secs_f64()
            ),
        ));
    }
    if r != d {
        ctx.warn(
            n.loc(),
            format!(
                "advert_int {} s is not a multiple of {} s in VRRP version {version}: rounded to {} s",
                d.as_secs_f64(),
                Duration::from_millis(u64::try_from(unit).unwrap_or(1)).as_secs_f64(),
                r.as_secs_f64()
            ),
        );
    }
    Ok(r)
}

/// `authentication { auth_type PASS|AH; auth_pass SECRET }`.
fn auth(ctx: &mut Ctx, node: &Node) -> Res<Auth> {
    let mut kind: Option<&Token> = None;
    let mut pass: Option<&Token> = None;
    for n in node.block(0)? {
        match n.name() {
            "auth_type" => kind = Some(n.arg1()?),
            "auth_pass" => pass = Some(n.arg1()?),
            _ => ctx.other(n, &[]),
        }
    }
    let Some(kind) = kind else {
        return Err(err(node.loc(), "`authentication` needs `auth_type`"));
    };
    let mut secret = pass.map(|p| p.text.as_bytes().to_vec()).unwrap_or_default();
    if secret.len() > MAX_PASS {
        if let Some(p) = pass {
            ctx.warn(
                &p.loc,
                format!("auth_pass is longer than {MAX_PASS} characters: truncated"),
            );
        }
        secret.truncate(MAX_PASS);
    }
    match kind.text.to_ascii_uppercase().as_str() {
        "PASS" => {
            if pass.is_none() {
                return Err(err(node.loc(), "`auth_type PASS` needs `auth_pass`"));
            }
            Ok(Auth::Pass(secret))
        }
        "AH" => {
            ctx.ignored_at(&kind.loc, "`auth_type AH`");
            Ok(Auth::Ah(secret))
        }
        _ => Err(err(
            &kind.loc,
            format!("auth_type `{}` is not PASS or AH", kind.text),
        )),
    }
}

/// `virtual_ipaddress { IP[/LEN] [dev X] [label L] [brd B] [scope S] ... }`.
fn vips(ctx: &mut Ctx, node: &Node) -> Res<Vec<VirtualIp>> {
    let mut out = Vec::new();
    for line in node.block(0)? {
        if line.block.is_some() {
            return Err(err(line.loc(), "a virtual address takes no block"));
        }
        let mut vip = address_prefix(&line.keyword)?;
        let mut args = line.args.iter();
        while let Some(opt) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| err(&opt.loc, format!("`{}` needs a value", opt.text)))
            };
            match opt.text.as_str() {
                "dev" => vip.dev = Some(value()?.text.clone()),
                "label" | "brd" | "broadcast" | "scope" | "preferred_lft" | "track_group" => {
                    value()?;
                    ctx.ignored_at(&opt.loc, &format!("virtual address option `{}`", opt.text));
                }
                "no_track" | "home" | "-nodad" | "nodad" | "noprefixroute" | "autojoin" => {
                    ctx.ignored_at(&opt.loc, &format!("virtual address option `{}`", opt.text));
                }
                _ => {
                    return Err(err(
                        &opt.loc,
                        format!("unknown virtual address option `{}`", opt.text),
                    ));
                }
            }
        }
        out.push(vip);
    }
    Ok(out)
}

/// `IP` or `IP/LEN`.
fn address_prefix(t: &Token) -> Res<VirtualIp> {
    let (a, len) = match t.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t.text.as_str(), None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| err(&t.loc, format!("`{}` is not an IP address", t.text)))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| err(&t.loc, format!("`{}`: bad prefix length", t.text)))?,
    };
    Ok(VirtualIp {
        addr,
        prefix_len,
        dev: None,
    })
}

/// `unicast_peer { IP [min_ttl N] [max_ttl N] }`.
fn peers(ctx: &mut Ctx, node: &Node) -> Res<Vec<IpAddr>> {
    let mut out = Vec::new();
    for line in node.block(0)? {
        out.push(ip(&line.keyword)?);
        if let Some(opt) = line.args.first() {
            ctx.ignored_at(&opt.loc, &format!("unicast_peer option `{}`", opt.text));
        }
    }
    Ok(out)
}

/// `track_interface { NAME [weight N] }`.
fn track_interfaces(node: &Node) -> Res<Vec<TrackInterface>> {
    let mut out = Vec::new();
    for line in node.block(0)? {
        let weight = match line.args.first() {
            None => 0,
            Some(t) if t.text == "weight" => weight(line, 1, -254, 254)?,
            Some(t) => return Err(err(&t.loc, format!("unexpected argument `{}`", t.text))),
        };
        out.push(TrackInterface {
            name: line.name().to_string(),
            weight,
        });
    }
    Ok(out)
}

/// `track_script { NAME [weight N] }`.
fn track_scripts(ctx: &mut Ctx, node: &Node) -> Res<Vec<TrackScript>> {
    let mut out = Vec::new();
    for line in node.block(0)? {
        let weight = match line.args.first() {
            None => None,
            Some(t) if t.text == "weight" => Some(weight(line, 1, -253, 253)?),
            Some(t) => return Err(err(&t.loc, format!("unexpected argument `{}`", t.text))),
        };
        ctx.refer(RefKind::VrrpScript, &line.keyword);
        out.push(TrackScript {
            name: line.name().to_string(),
            weight,
        });
    }
    Ok(out)
}

/// keepalived's rule: adverts carry one family; virtual addresses of the
/// other are moved to the excluded list (warned). Source and peers must
/// match the family.
fn split_families(ctx: &mut Ctx, v: &mut VrrpInstance) -> Res<()> {
    let v6 = v.is_v6();
    let (keep, moved): (Vec<VirtualIp>, Vec<VirtualIp>) =
        v.vips.drain(..).partition(|a| a.addr.is_ipv6() == v6);
    v.vips = keep;
    for a in moved {
        ctx.warn(
            &v.loc,
            format!(
                "vrrp_instance {}: {} is not of the instance's address family: treated as virtual_ipaddress_excluded",
                v.name, a.addr
            ),
        );
        v.vips_excluded.push(a);
    }
    let other = v
        .src_ip
        .iter()
        .chain(&v.unicast_peers)
        .find(|a| a.is_ipv6() != v6);
    if let Some(a) = other {
        return Err(err(
            &v.loc,
            format!(
                "vrrp_instance {}: {a} is not of the instance's address family",
                v.name
            ),
        ));
    }
    Ok(())
}
