//! Checks of a request's values on their own (no configuration needed), with
//! the field name an error carries. rvsd runs them before anything else;
//! clients may run them first to fail without a round trip.

use std::net::IpAddr;

use crate::net::{IfAddr, Neigh, Route, parse_mac};
use crate::types::{
    ApiError, ErrorCode, Family, Forward, MAX_TIMEOUT, Protocol, RealServer, Request, SCHED_FLAGS,
    SCHEDULERS, Service, ServiceKey, Timeouts, family_of,
};

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Invalid, field, reason)
}

/// Checks a service key (`field` is its path in the request).
pub fn service_key(key: &ServiceKey, field: &str) -> Result<(), ApiError> {
    match *key {
        ServiceKey::Addr { protocol, .. } => match protocol {
            Protocol::Tcp | Protocol::Udp | Protocol::Sctp => Ok(()),
            Protocol::Icmp | Protocol::Icmpv6 => Err(invalid(
                &format!("{field}.protocol"),
                "a virtual service is tcp, udp or sctp",
            )),
        },
        ServiceKey::Fwmark { mark: 0, .. } => Err(invalid(
            &format!("{field}.mark"),
            "a firewall mark is 1 or more",
        )),
        ServiceKey::Fwmark { .. } => Ok(()),
    }
}

/// Checks a service's configuration (`field` is its path in the request).
pub fn service(svc: &Service, field: &str) -> Result<(), ApiError> {
    service_key(&svc.key, &format!("{field}.key"))?;
    if !SCHEDULERS.contains(&svc.scheduler.as_str()) {
        return Err(invalid(
            &format!("{field}.scheduler"),
            format!(
                "unknown scheduler `{}' (known: {})",
                svc.scheduler,
                SCHEDULERS.join(", ")
            ),
        ));
    }
    for flag in &svc.flags {
        let f = flag.as_str();
        if !SCHED_FLAGS.contains(&f) {
            return Err(invalid(
                &format!("{field}.flags"),
                format!("invalid scheduler flag `{f}'"),
            ));
        }
        let needs = if f.starts_with("sh-") {
            Some("sh")
        } else if f.starts_with("mh-") {
            Some("mh")
        } else {
            None
        };
        if needs.is_some_and(|s| s != svc.scheduler) {
            return Err(invalid(
                &format!("{field}.flags"),
                format!("incompatible scheduler flag `{f}'"),
            ));
        }
    }
    let max_mask = match svc.key.family() {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    if let Some(p) = svc.persistence {
        if p.timeout == 0 || p.timeout > MAX_TIMEOUT {
            return Err(invalid(
                &format!("{field}.persistence.timeout"),
                format!("a persistence timeout is 1..={MAX_TIMEOUT} seconds"),
            ));
        }
        if p.netmask == 0 || p.netmask > max_mask {
            return Err(invalid(
                &format!("{field}.persistence.netmask"),
                format!("a persistence netmask is a prefix length 1..={max_mask}"),
            ));
        }
    }
    if let ServiceKey::Addr { protocol, port, .. } = svc.key {
        if port == 0 && svc.persistence.is_none() {
            return Err(invalid(
                &format!("{field}.key.port"),
                "zero port specified for non-persistent service",
            ));
        }
        if svc.one_packet && protocol != Protocol::Udp {
            return Err(invalid(
                &format!("{field}.one_packet"),
                "one-packet scheduling is only for UDP virtual services",
            ));
        }
    }
    Ok(())
}

/// Checks a real server against its service's key.
pub fn real_server(key: &ServiceKey, rs: &RealServer, field: &str) -> Result<(), ApiError> {
    if rs.weight > 65535 {
        return Err(invalid(&format!("{field}.weight"), "a weight is 0..=65535"));
    }
    if rs.upper_threshold > i32::MAX as u32 || rs.lower_threshold > i32::MAX as u32 {
        return Err(invalid(
            &format!("{field}.upper_threshold"),
            "a threshold is 0..=2147483647",
        ));
    }
    if let ServiceKey::Addr { addr, .. } = *key
        && family_of(addr) != family_of(rs.addr)
        && rs.forward != Forward::Tunnel
    {
        return Err(invalid(
            &format!("{field}.addr"),
            "different address family is allowed only for tunneling servers",
        ));
    }
    Ok(())
}

/// Checks timeouts for a set request.
pub fn timeouts(t: &Timeouts, field: &str) -> Result<(), ApiError> {
    for (name, v) in [("tcp", t.tcp), ("tcp_fin", t.tcp_fin), ("udp", t.udp)] {
        if v > MAX_TIMEOUT {
            return Err(invalid(
                &format!("{field}.{name}"),
                format!("a timeout is 0..={MAX_TIMEOUT} seconds"),
            ));
        }
    }
    Ok(())
}

/// Checks every value of a request on its own.
pub fn request(req: &Request) -> Result<(), ApiError> {
    match req {
        Request::AddService { service: s } | Request::EditService { service: s } => {
            service(s, "service")
        }
        Request::DeleteService { service: k }
        | Request::DeleteRealServer { service: k, .. }
        | Request::AddLaddr { service: k, .. }
        | Request::DelLaddr { service: k, .. } => service_key(k, "service"),
        Request::AddRealServer { service: k, server }
        | Request::EditRealServer { service: k, server } => {
            service_key(k, "service")?;
            real_server(k, server, "server")
        }
        Request::Zero { service: k }
        | Request::ListServices { service: k }
        | Request::GetLaddrs { service: k } => match k {
            Some(k) => service_key(k, "service"),
            None => Ok(()),
        },
        Request::SetTimeouts { timeouts: t } => timeouts(t, "timeouts"),
        Request::Clear | Request::ListConnections | Request::GetTimeouts => Ok(()),
        Request::AddAddr { addr } | Request::DelAddr { addr } => if_addr(addr, "addr"),
        Request::AddRoute { route: r } => {
            route(r, "route")?;
            if r.dev.is_none() && r.via.is_none() {
                return Err(invalid(
                    "route.dev",
                    "a route names its port (dev) or a gateway (via)",
                ));
            }
            Ok(())
        }
        Request::DelRoute { route: r } => route(r, "route"),
        Request::AddNeigh { neigh: n } => {
            neigh(n, "neigh")?;
            if n.lladdr.is_none() {
                return Err(invalid(
                    "neigh.lladdr",
                    "a static neighbour needs its MAC (lladdr)",
                ));
            }
            Ok(())
        }
        Request::DelNeigh { neigh: n } => neigh(n, "neigh"),
        Request::ListAddrs { dev } | Request::ListNeighs { dev } => match dev {
            Some(d) => dev_name(d, "dev"),
            None => Ok(()),
        },
        Request::ListLinks | Request::ListRoutes => Ok(()),
        Request::Batch { requests } => {
            for (i, r) in requests.iter().enumerate() {
                if !r.is_change() {
                    return Err(invalid(
                        &format!("requests[{i}]"),
                        "only changes may be batched",
                    ));
                }
                request(r).map_err(|e| ApiError {
                    field: format!("requests[{i}].{}", e.field),
                    ..e
                })?;
            }
            Ok(())
        }
    }
}

fn max_prefix(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with the bits after `len` cleared.
pub fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// Why `a` cannot be a host's address, if it cannot.
fn not_unicast(a: IpAddr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.is_loopback() {
        Some("a loopback address")
    } else if matches!(a, IpAddr::V4(v) if v.is_broadcast()) {
        Some("the broadcast address")
    } else {
        None
    }
}

fn dev_name(d: &str, field: &str) -> Result<(), ApiError> {
    if d.is_empty() {
        return Err(invalid(field, "a port name (dev) is needed"));
    }
    Ok(())
}

fn prefix_len(a: IpAddr, len: u8, field: &str) -> Result<(), ApiError> {
    let max = max_prefix(a);
    if len > max {
        return Err(invalid(
            field,
            format!("a prefix length is 0..={max} for {a}, not {len}"),
        ));
    }
    Ok(())
}

/// Checks an interface address.
pub fn if_addr(a: &IfAddr, field: &str) -> Result<(), ApiError> {
    if let Some(what) = not_unicast(a.addr) {
        return Err(invalid(
            &format!("{field}.addr"),
            format!("an interface address is unicast, not {what}"),
        ));
    }
    prefix_len(a.addr, a.prefix_len, &format!("{field}.prefix_len"))?;
    dev_name(&a.dev, &format!("{field}.dev"))
}

/// Checks a route.
pub fn route(r: &Route, field: &str) -> Result<(), ApiError> {
    prefix_len(r.prefix, r.prefix_len, &format!("{field}.prefix_len"))?;
    let net = network(r.prefix, r.prefix_len);
    if net != r.prefix {
        return Err(invalid(
            &format!("{field}.prefix"),
            format!(
                "{}/{} has host bits set (the network is {net}/{})",
                r.prefix, r.prefix_len, r.prefix_len
            ),
        ));
    }
    if let Some(v) = r.via {
        if v.is_ipv4() != r.prefix.is_ipv4() {
            return Err(invalid(
                &format!("{field}.via"),
                format!("the gateway {v} is not of the prefix's family"),
            ));
        }
        if let Some(what) = not_unicast(v) {
            return Err(invalid(
                &format!("{field}.via"),
                format!("a gateway is unicast, not {what}"),
            ));
        }
    }
    if let Some(d) = &r.dev {
        dev_name(d, &format!("{field}.dev"))?;
    }
    Ok(())
}

/// Checks a neighbour (its MAC, if given, must be a unicast MAC).
pub fn neigh(n: &Neigh, field: &str) -> Result<(), ApiError> {
    if let Some(what) = not_unicast(n.addr) {
        return Err(invalid(
            &format!("{field}.addr"),
            format!("a neighbour's address is unicast, not {what}"),
        ));
    }
    if let Some(m) = &n.lladdr {
        match parse_mac(m) {
            None => {
                return Err(invalid(
                    &format!("{field}.lladdr"),
                    format!("`{m}' is not a MAC address (aa:bb:cc:dd:ee:ff)"),
                ));
            }
            Some(b) if b[0] & 1 == 1 || b == [0; 6] => {
                return Err(invalid(
                    &format!("{field}.lladdr"),
                    format!("a neighbour's MAC is unicast and not zero, not {m}"),
                ));
            }
            Some(_) => {}
        }
    }
    dev_name(&n.dev, &format!("{field}.dev"))
}
