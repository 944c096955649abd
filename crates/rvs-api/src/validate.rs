//! Checks of a request's values on their own (no configuration needed), with
//! the field name an error carries. rvsd runs them before anything else;
//! clients may run them first to fail without a round trip.

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
