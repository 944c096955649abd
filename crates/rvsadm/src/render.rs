//! ipvsadm's output, field for field, from API data. Every format here follows
//! ipvsadm 1.31's `ipvsadm.c` (functions named in each doc comment); the local
//! address listing follows DPVS's `tools/ipvsadm/ipvsadm.c`.
//!
//! One deliberate difference: without `-n`, ipvsadm resolves addresses to
//! host names; rvsadm names ports from `/etc/services` as ipvsadm does but
//! prints addresses numerically (no reverse DNS from a control tool).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use rvs_api::{
    Connection, Family, LocalAddrEntry, Protocol, RealServerEntry, ServiceEntry, ServiceKey,
    ServiceLaddrs, ServiceList, Timeouts,
};

use crate::parse::{Format, PortNames};

/// The IPVS version rvs reports in the listing header, for parsers that
/// check it.
pub const IPVS_VERSION: &str = "1.2.1";

/// `addrport_to_anyname`: `a.b.c.d:port` or `[v6]:port`, the port named
/// unless numeric.
pub fn addr_port(
    addr: IpAddr,
    port: u16,
    proto: Protocol,
    format: Format,
    names: &PortNames,
) -> String {
    let port = match (format.numeric, names.name(port, proto)) {
        (false, Some(name)) => name.to_string(),
        _ => port.to_string(),
    };
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// `print_largenum`: right-aligned in 9 columns; unless exact, scaled to
/// K/M/G/T (thousands, millions, ...) from 100 million up.
pub fn largenum(out: &mut String, i: u64, exact: bool) {
    if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>width$}");
    } else if i < 100_000_000 {
        let _ = write!(out, "{i:>9}");
    } else if i < 1_000_000_000 {
        let _ = write!(out, "{:>8}K", i / 1_000);
    } else if i < 100_000_000_000 {
        let _ = write!(out, "{:>8}M", i / 1_000_000);
    } else if i < 100_000_000_000_000 {
        let _ = write!(out, "{:>8}G", i / 1_000_000_000);
    } else {
        let _ = write!(out, "{:>8}T", i / 1_000_000_000_000);
    }
}

/// Scheduler flag bits as IPVS stores them (`flag-1` and `sh-fallback` and
/// `mh-fallback` share a bit, and so on).
fn flag_bits(flags: &[String]) -> u8 {
    flags.iter().fold(0, |b, f| {
        b | match f.as_str() {
            "flag-1" | "sh-fallback" | "mh-fallback" => 1,
            "flag-2" | "sh-port" | "mh-port" => 2,
            "flag-3" => 4,
            _ => 0,
        }
    })
}

/// `print_sched_flags`: the names by scheduler, comma separated.
fn sched_flags(sched: &str, bits: u8) -> String {
    let names: &[(u8, &str)] = match sched {
        "sh" => &[(1, "sh-fallback"), (2, "sh-port")],
        "mh" => &[(1, "mh-fallback"), (2, "mh-port")],
        _ => &[(1, "flag-1"), (2, "flag-2"), (4, "flag-3")],
    };
    names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn protocol_of(key: &ServiceKey) -> Protocol {
    match *key {
        ServiceKey::Addr { protocol, .. } => protocol,
        ServiceKey::Fwmark { .. } => Protocol::Tcp,
    }
}

/// The persistence mask as ipvsadm prints it, if not the per-address one:
/// dotted for IPv4 (`inet_ntoa`), a prefix length for IPv6.
fn mask_text(family: Family, prefix: u8) -> Option<String> {
    match family {
        Family::Ipv4 if prefix < 32 => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(Ipv4Addr::from(bits).to_string())
        }
        Family::Ipv6 if prefix < 128 => Some(prefix.to_string()),
        _ => None,
    }
}

/// `print_title` for the chosen format (nothing for `-S`).
pub fn title(format: Format) -> String {
    if format.stats {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format.rate {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format.thresholds {
        format!(
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format.persistent_conn {
        format!(
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_string()
    }
}

/// The service's name in listings (`print_service_entry`): `TCP  a:p`
/// (protocol left-aligned in 4), cut to 33 characters for IPv4, or
/// `FWM  mark [IPv6]`.
fn list_name(key: &ServiceKey, format: Format, names: &PortNames) -> String {
    match *key {
        ServiceKey::Fwmark { mark, family } => match family {
            Family::Ipv4 => format!("FWM  {mark}"),
            Family::Ipv6 => format!("FWM  {mark} IPv6"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let mut s = format!(
                "{:<4} {}",
                protocol.name(),
                addr_port(addr, port, protocol, format, names)
            );
            if addr.is_ipv4() {
                s.truncate(33);
            }
            s
        }
    }
}

/// The service's name in `-S` rules: `-t a:p`, `-u a:p`,
/// `--sctp-service a:p`, `-f mark [-6]`.
fn rule_name(key: &ServiceKey, format: Format, names: &PortNames) -> String {
    match *key {
        ServiceKey::Fwmark { mark, family } => match family {
            Family::Ipv4 => format!("-f {mark}"),
            Family::Ipv6 => format!("-f {mark} -6"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let opt = match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
                Protocol::Icmp | Protocol::Icmpv6 => "--xxx-service",
            };
            format!("{opt} {}", addr_port(addr, port, protocol, format, names))
        }
    }
}

fn sorted_servers(e: &ServiceEntry, format: Format) -> Vec<&RealServerEntry> {
    let mut v: Vec<&RealServerEntry> = e.real_servers.iter().collect();
    if !format.nosort {
        // libipvs ipvs_cmp_dests: address, then port.
        v.sort_by_key(|r| (r.server.addr, r.server.port));
    }
    v
}

/// One service and its real servers in a listing format
/// (`print_service_entry` without `FMT_RULE`).
pub fn service_entry(out: &mut String, e: &ServiceEntry, format: Format, names: &PortNames) {
    let svc = &e.service;
    let proto = protocol_of(&svc.key);
    let name = list_name(&svc.key, format, names);
    if format.stats {
        let _ = write!(out, "{name:<33}");
        for v in [
            e.stats.conns,
            e.stats.in_packets,
            e.stats.out_packets,
            e.stats.in_bytes,
            e.stats.out_bytes,
        ] {
            largenum(out, v, format.exact);
        }
    } else if format.rate {
        let _ = write!(out, "{name:<33}");
        for v in [
            e.rates.cps,
            e.rates.in_pps,
            e.rates.out_pps,
            e.rates.in_bps,
            e.rates.out_bps,
        ] {
            largenum(out, v, format.exact);
        }
    } else {
        let _ = write!(out, "{name} {}", svc.scheduler);
        let bits = flag_bits(&svc.flags);
        if bits != 0 {
            let _ = write!(out, " ({})", sched_flags(&svc.scheduler, bits));
        }
        if let Some(p) = svc.persistence {
            let _ = write!(out, " persistent {}", p.timeout);
            if let Some(m) = mask_text(svc.key.family(), p.netmask) {
                let _ = write!(out, " mask {m}");
            }
        }
        if svc.one_packet {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    for r in sorted_servers(e, format) {
        let s = &r.server;
        let mut dname = addr_port(s.addr, s.port, proto, format, names);
        if s.addr.is_ipv4() {
            dname.truncate(28);
        }
        if format.stats {
            let _ = write!(out, "  -> {dname:<28}");
            for v in [
                r.stats.conns,
                r.stats.in_packets,
                r.stats.out_packets,
                r.stats.in_bytes,
                r.stats.out_bytes,
            ] {
                largenum(out, v, format.exact);
            }
            out.push('\n');
        } else if format.rate {
            // cps and pps unscaled, bytes per second scaled.
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                r.rates.cps, r.rates.in_pps, r.rates.out_pps
            );
            largenum(out, r.rates.in_bps, format.exact);
            largenum(out, r.rates.out_bps, format.exact);
            out.push('\n');
        } else if format.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                s.upper_threshold, s.lower_threshold, r.active_conns, r.inactive_conns
            );
        } else if format.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                s.weight, r.persist_conns, r.active_conns, r.inactive_conns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                s.forward.name(),
                s.weight,
                r.active_conns,
                r.inactive_conns
            );
        }
    }
}

fn sorted_services(list: &ServiceList, format: Format) -> Vec<&ServiceEntry> {
    let mut v: Vec<&ServiceEntry> = list.services.iter().collect();
    if !format.nosort {
        v.sort_by_key(|e| e.service.key.sort_key());
    }
    v
}

/// `-L` of everything (`list_all`): header, title, services.
pub fn list_all(list: &ServiceList, format: Format, names: &PortNames) -> String {
    let mut out = format!(
        "IP Virtual Server version {IPVS_VERSION} (size={})\n",
        list.table_size
    );
    out.push_str(&title(format));
    for e in sorted_services(list, format) {
        service_entry(&mut out, e, format, names);
    }
    out
}

/// `-L` of one service (`list_service`): title and the service, no header.
pub fn list_one(e: &ServiceEntry, format: Format, names: &PortNames) -> String {
    let mut out = title(format);
    service_entry(&mut out, e, format, names);
    out
}

/// `-S` (`print_service_entry` with `FMT_RULE`): `-A` and `-a` lines that
/// `-R` reads back. Extensions beyond ipvsadm, printed only when set so that
/// a restore reproduces the configuration: `-x`/`-y` thresholds on `-a`
/// lines, and DPVS's `-P ... -z laddr [-F ifname]` local address lines.
pub fn save(list: &ServiceList, format: Format, names: &PortNames) -> String {
    let mut out = String::new();
    for e in sorted_services(list, format) {
        let svc = &e.service;
        let name = rule_name(&svc.key, format, names);
        let _ = write!(out, "-A {name} -s {}", svc.scheduler);
        if let Some(p) = svc.persistence {
            let _ = write!(out, " -p {}", p.timeout);
            if let Some(m) = mask_text(svc.key.family(), p.netmask) {
                let _ = write!(out, " -M {m}");
            }
        }
        if svc.one_packet {
            out.push_str(" -o");
        }
        let bits = flag_bits(&svc.flags);
        if bits != 0 {
            let _ = write!(out, " -b {}", sched_flags(&svc.scheduler, bits));
        }
        out.push('\n');
        let proto = protocol_of(&svc.key);
        for r in sorted_servers(e, format) {
            let s = &r.server;
            let _ = write!(
                out,
                "-a {name} -r {} {} -w {}",
                addr_port(s.addr, s.port, proto, format, names),
                s.forward.switch(),
                s.weight
            );
            if s.upper_threshold != 0 {
                let _ = write!(out, " -x {}", s.upper_threshold);
            }
            if s.lower_threshold != 0 {
                let _ = write!(out, " -y {}", s.lower_threshold);
            }
            out.push('\n');
        }
        for l in &e.local_addrs {
            let _ = write!(out, "-P {name} -z {}", l.laddr.addr);
            if let Some(ifname) = &l.laddr.ifname {
                let _ = write!(out, " -F {ifname}");
            }
            out.push('\n');
        }
    }
    out
}

/// `-L -c` (`list_conn`, `print_conn`): header, then one line per entry with
/// the expiry as `mm:ss`.
pub fn connections(conns: &[Connection], format: Format, names: &PortNames) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = writeln!(
        out,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    for c in conns {
        let expire = format!("{:02}:{:02}", c.expire_secs / 60, c.expire_secs % 60);
        let a = |s: std::net::SocketAddr| addr_port(s.ip(), s.port(), c.protocol, format, names);
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            c.protocol.name(),
            expire,
            c.state,
            a(c.client),
            a(c.virtual_addr),
            a(c.destination)
        );
    }
    out
}

/// `--timeout` (`list_timeout`).
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

/// `--get-laddr` as DPVS prints it (`list_laddrs_print_title`,
/// `list_laddrs_print_service`, `list_laddrs_print_laddr`): the title once,
/// then per service its `VIP:VPORT` and count, then one line per address.
pub fn laddrs(services: &[ServiceLaddrs]) -> String {
    let mut out = String::new();
    for (i, s) in services.iter().enumerate() {
        if i == 0 {
            let _ = writeln!(
                out,
                "{:<20} {:<8} {:<20} {:<10} {:<10}",
                "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS"
            );
        }
        let vname = match s.service {
            ServiceKey::Addr { addr, port, .. } => match addr {
                IpAddr::V4(a) => format!("{a}:{port}"),
                IpAddr::V6(a) => format!("[{a}]:{port}"),
            },
            ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
        };
        let _ = writeln!(out, "{vname:<20} {:<8} ", s.laddrs.len());
        for LocalAddrEntry {
            laddr,
            port_conflicts,
            conns,
        } in &s.laddrs
        {
            let _ = writeln!(
                out,
                "{:<20} {:<8} {:<20} {:<10} {:<10}",
                "",
                "",
                laddr.addr.to_string(),
                port_conflicts,
                conns
            );
        }
    }
    out
}
