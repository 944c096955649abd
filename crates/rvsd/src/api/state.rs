//! The desired configuration the API changes, its conversion to and from
//! the `rvs_api` types, and the state file.
//!
//! The services are kept as the balancer's own [`ServiceSpec`]s (so that
//! what the file says and the API cannot express — TOA, UOA, connection
//! limits, per-service timeouts, GRE tunnels, SNAT match services —
//! survives API changes), with the scheduler-flag words as the operator
//! spelled them and the `-F` interface names of local addresses, so that
//! `rvsadm -S` prints back what was given.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rvs_api::{
    ApiError, ErrorCode, Family, Forward, LocalAddr, Persistence as ApiPersistence, Protocol,
    RealServer, Request, Service, ServiceKey as ApiKey, Timeouts as ApiTimeouts,
};
use rvs_lb::config::{
    Config, ConfigError, DestSpec, ForwardMode, Persistence, ServiceKey, ServiceSpec, TunnelKind,
};
use rvs_lb::conn::{TcpState, Timeouts};
use rvs_lb::sched::{SchedConfig, SchedFlags, SchedulerKind};
use serde::{Deserialize, Serialize};

/// One service of the desired configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The balancer's spec.
    pub spec: ServiceSpec,
    /// Scheduler flags as given (`-b`).
    pub flags: Vec<String>,
    /// Interface names of local addresses (`-F`).
    pub ifnames: HashMap<IpAddr, String>,
}

/// The desired configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Services, in the order they were added.
    pub services: Vec<Entry>,
    /// Protocol timeouts.
    pub timeouts: Timeouts,
    /// The stack as `rvsip` left it, once it changed it (saved in the state
    /// file; `None`: the configuration file's stack rules).
    pub stack: Option<super::stack::SavedStack>,
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Invalid, field, reason)
}
fn not_found(field: &str, what: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, field, format!("{what} not defined"))
}
fn exists(field: &str, what: &str) -> ApiError {
    ApiError::new(ErrorCode::Exists, field, format!("{what} already exists"))
}

/// An API service key as the balancer's.
pub fn key_to_lb(k: &ApiKey, field: &str) -> Result<ServiceKey, ApiError> {
    match *k {
        ApiKey::Addr {
            protocol,
            addr,
            port,
        } => match protocol {
            Protocol::Tcp => Ok(ServiceKey::tcp(addr, port)),
            Protocol::Udp => Ok(ServiceKey::udp(addr, port)),
            _ => Err(invalid(
                &format!("{field}.protocol"),
                format!(
                    "{} virtual services are not supported by rvs",
                    protocol.name()
                ),
            )),
        },
        ApiKey::Fwmark { mark, family } => Ok(ServiceKey::Fwmark {
            mark,
            v6: family == Family::Ipv6,
        }),
    }
}

/// The balancer's service key as the API's (`None` for SNAT match services,
/// which the API does not express).
pub fn key_to_api(k: &ServiceKey) -> Option<ApiKey> {
    match *k {
        ServiceKey::Addr { proto, port, .. } => Some(ApiKey::Addr {
            protocol: match proto {
                rvs_wire::ip_proto::TCP => Protocol::Tcp,
                rvs_wire::ip_proto::UDP => Protocol::Udp,
                rvs_wire::ip_proto::ICMP => Protocol::Icmp,
                rvs_wire::ip_proto::ICMPV6 => Protocol::Icmpv6,
                _ => return None,
            },
            addr: k.addr()?,
            port,
        }),
        ServiceKey::Fwmark { mark, v6 } => Some(ApiKey::Fwmark {
            mark,
            family: if v6 { Family::Ipv6 } else { Family::Ipv4 },
        }),
        ServiceKey::Match { .. } => None,
    }
}

/// The protocol of a connection's IP protocol number.
pub fn protocol_of(proto: u8) -> Protocol {
    match proto {
        rvs_wire::ip_proto::UDP => Protocol::Udp,
        rvs_wire::ip_proto::ICMP => Protocol::Icmp,
        rvs_wire::ip_proto::ICMPV6 => Protocol::Icmpv6,
        132 => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

fn mode_to_lb(f: Forward, old: Option<ForwardMode>) -> ForwardMode {
    match f {
        Forward::Masq => ForwardMode::Nat,
        Forward::Route => ForwardMode::Dr,
        // A GRE tunnel from the file stays GRE when edited through the API.
        Forward::Tunnel => match old {
            Some(ForwardMode::Tun(k)) => ForwardMode::Tun(k),
            _ => ForwardMode::Tun(TunnelKind::Ipip),
        },
        Forward::Fullnat => ForwardMode::FullNat,
        Forward::Snat => ForwardMode::Snat,
    }
}

fn mode_to_api(m: ForwardMode) -> Forward {
    match m {
        ForwardMode::Nat => Forward::Masq,
        ForwardMode::Dr => Forward::Route,
        ForwardMode::Tun(_) => Forward::Tunnel,
        ForwardMode::FullNat => Forward::Fullnat,
        ForwardMode::Snat => Forward::Snat,
    }
}

/// The words of a flag set, for services that came from the file.
fn flag_words(kind: SchedulerKind, f: SchedFlags) -> Vec<String> {
    let (fallback, port) = match kind {
        SchedulerKind::Sh => ("sh-fallback", "sh-port"),
        SchedulerKind::Mh => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let mut v = Vec::new();
    if f.fallback {
        v.push(fallback.to_string());
    }
    if f.port {
        v.push(port.to_string());
    }
    if f.flag3 {
        v.push("flag-3".to_string());
    }
    v
}

fn sched_of(svc: &Service) -> Result<SchedConfig, ApiError> {
    let kind: SchedulerKind = svc
        .scheduler
        .parse()
        .map_err(|e: rvs_lb::sched::ParseError| invalid("service.scheduler", e.to_string()))?;
    let mut sched = SchedConfig::new(kind);
    if !svc.flags.is_empty() {
        sched.flags = SchedFlags::parse(kind, &svc.flags.join(","))
            .map_err(|e| invalid("service.flags", e.to_string()))?;
    }
    Ok(sched)
}

fn apply_service_fields(spec: &mut ServiceSpec, svc: &Service) -> Result<(), ApiError> {
    spec.sched = sched_of(svc)?;
    spec.persistence = svc.persistence.map(|p| Persistence {
        timeout: Duration::from_secs(u64::from(p.timeout)),
        prefix_len: p.netmask,
    });
    spec.one_packet = svc.one_packet;
    Ok(())
}

fn dest_of(rs: &RealServer, old: Option<ForwardMode>) -> DestSpec {
    let mut d = DestSpec::new(rs.addr, rs.port, mode_to_lb(rs.forward, old)).weight(rs.weight);
    d.upper_threshold = rs.upper_threshold;
    d.lower_threshold = rs.lower_threshold;
    d
}

impl Entry {
    /// A service entry from the file (flags spelled from the parsed set).
    pub fn from_spec(spec: ServiceSpec) -> Entry {
        Entry {
            flags: flag_words(spec.sched.kind, spec.sched.flags),
            spec,
            ifnames: HashMap::new(),
        }
    }

    /// As the API's service (`None` for SNAT match services).
    pub fn service(&self) -> Option<Service> {
        Some(Service {
            key: key_to_api(&self.spec.key)?,
            scheduler: self.spec.sched.kind.as_str().to_string(),
            flags: self.flags.clone(),
            persistence: self.spec.persistence.map(|p| ApiPersistence {
                timeout: u32::try_from(p.timeout.as_secs()).unwrap_or(u32::MAX),
                netmask: p.prefix_len,
            }),
            one_packet: self.spec.one_packet,
        })
    }

    /// Its real servers as the API's.
    pub fn real_servers(&self) -> Vec<RealServer> {
        self.spec
            .dests
            .iter()
            .map(|d| RealServer {
                addr: d.addr,
                port: d.port,
                forward: mode_to_api(d.mode),
                weight: d.weight,
                upper_threshold: d.upper_threshold,
                lower_threshold: d.lower_threshold,
            })
            .collect()
    }

    /// Its local addresses as the API's.
    pub fn laddrs(&self) -> Vec<LocalAddr> {
        self.spec
            .laddrs
            .iter()
            .map(|a| LocalAddr {
                addr: *a,
                ifname: self.ifnames.get(a).cloned(),
            })
            .collect()
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The API's view of protocol timeouts.
pub fn timeouts_to_api(t: &Timeouts) -> ApiTimeouts {
    ApiTimeouts {
        tcp: secs(t.tcp(TcpState::Established)),
        tcp_fin: secs(t.tcp(TcpState::FinWait)),
        udp: secs(t.udp()),
    }
}

impl Desired {
    /// From the daemon's services and timeouts.
    pub fn new(services: Vec<ServiceSpec>, timeouts: Timeouts) -> Desired {
        Desired {
            services: services.into_iter().map(Entry::from_spec).collect(),
            timeouts,
            stack: None,
        }
    }

    /// The position of a service.
    pub fn find(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|e| e.spec.key == *key)
    }

    fn entry(&mut self, k: &ApiKey) -> Result<&mut Entry, ApiError> {
        let key = key_to_lb(k, "service")?;
        let i = self
            .find(&key)
            .ok_or_else(|| not_found("service", "service"))?;
        self.services
            .get_mut(i)
            .ok_or_else(|| not_found("service", "service"))
    }

    /// Applies one change (not a batch). Checks presence and absence; the
    /// balancer's own checks run on the whole result ([`Desired::build`]).
    pub fn apply(&mut self, req: &Request) -> Result<(), ApiError> {
        match req {
            Request::AddService { service } => {
                let key = key_to_lb(&service.key, "service.key")?;
                if self.find(&key).is_some() {
                    return Err(exists("service", "service"));
                }
                let mut spec = ServiceSpec::new(key, sched_of(service)?);
                apply_service_fields(&mut spec, service)?;
                self.services.push(Entry {
                    spec,
                    flags: service.flags.clone(),
                    ifnames: HashMap::new(),
                });
            }
            Request::EditService { service } => {
                let e = self.entry(&service.key)?;
                apply_service_fields(&mut e.spec, service)?;
                e.flags = service.flags.clone();
            }
            Request::DeleteService { service } => {
                let key = key_to_lb(service, "service")?;
                let i = self
                    .find(&key)
                    .ok_or_else(|| not_found("service", "service"))?;
                self.services.remove(i);
            }
            Request::AddRealServer { service, server } => {
                let e = self.entry(service)?;
                if e.spec
                    .dests
                    .iter()
                    .any(|d| d.addr == server.addr && d.port == server.port)
                {
                    return Err(exists("server", "destination"));
                }
                e.spec.dests.push(dest_of(server, None));
            }
            Request::EditRealServer { service, server } => {
                let e = self.entry(service)?;
                let d = e
                    .spec
                    .dests
                    .iter_mut()
                    .find(|d| d.addr == server.addr && d.port == server.port)
                    .ok_or_else(|| not_found("server", "destination"))?;
                *d = dest_of(server, Some(d.mode));
            }
            Request::DeleteRealServer {
                service,
                addr,
                port,
            } => {
                let e = self.entry(service)?;
                let i = e
                    .spec
                    .dests
                    .iter()
                    .position(|d| d.addr == *addr && d.port == *port)
                    .ok_or_else(|| not_found("addr", "destination"))?;
                e.spec.dests.remove(i);
            }
            Request::Clear => self.services.clear(),
            Request::SetTimeouts { timeouts } => {
                let d = |s: u32| Duration::from_secs(u64::from(s));
                if timeouts.tcp != 0 {
                    self.timeouts
                        .set_tcp(TcpState::Established, d(timeouts.tcp));
                }
                if timeouts.tcp_fin != 0 {
                    self.timeouts
                        .set_tcp(TcpState::FinWait, d(timeouts.tcp_fin));
                }
                if timeouts.udp != 0 {
                    self.timeouts.set_udp(d(timeouts.udp));
                }
            }
            Request::AddLaddr { service, laddr } => {
                let e = self.entry(service)?;
                if e.spec.laddrs.contains(&laddr.addr) {
                    return Err(exists("laddr", "local address"));
                }
                e.spec.laddrs.push(laddr.addr);
                if let Some(n) = &laddr.ifname {
                    e.ifnames.insert(laddr.addr, n.clone());
                }
            }
            Request::DelLaddr { service, laddr } => {
                let e = self.entry(service)?;
                let i = e
                    .spec
                    .laddrs
                    .iter()
                    .position(|a| *a == laddr.addr)
                    .ok_or_else(|| not_found("laddr", "local address"))?;
                e.spec.laddrs.remove(i);
                e.ifnames.remove(&laddr.addr);
            }
            Request::Batch { .. } => {
                return Err(invalid("", "batches do not nest"));
            }
            // Zero and the queries change nothing here.
            Request::Zero { .. }
            | Request::ListServices { .. }
            | Request::ListConnections
            | Request::GetTimeouts
            | Request::GetLaddrs { .. } => {}
            // The stack's requests are applied to the stack configuration
            // (`super::stack`), never here.
            Request::ListLinks
            | Request::AddAddr { .. }
            | Request::DelAddr { .. }
            | Request::ListAddrs { .. }
            | Request::AddRoute { .. }
            | Request::DelRoute { .. }
            | Request::ListRoutes
            | Request::AddNeigh { .. }
            | Request::DelNeigh { .. }
            | Request::ListNeighs { .. } => {}
        }
        Ok(())
    }

    /// Builds the balancer's configuration; its errors (`services[i]...`)
    /// are turned into API errors naming the service and field.
    pub fn build(&self) -> Result<Config, ApiError> {
        let specs: Vec<ServiceSpec> = self.services.iter().map(|e| e.spec.clone()).collect();
        Config::build(specs, self.timeouts).map_err(|e| self.translate(e))
    }

    fn translate(&self, e: ConfigError) -> ApiError {
        let mut field = String::new();
        let mut about = String::new();
        let mut segs = e.field.split('.').peekable();
        if let Some(first) = segs.peek()
            && let Some(i) = first
                .strip_prefix("services[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|i| i.parse::<usize>().ok())
        {
            segs.next();
            if let Some(s) = self.services.get(i) {
                about = format!("{}: ", s.spec.key);
            }
            field = match segs.next() {
                Some(d) if d.starts_with("dests[") => {
                    let rest: Vec<&str> = segs.collect();
                    if rest.is_empty() {
                        "server".to_string()
                    } else {
                        format!("server.{}", rest.join("."))
                    }
                }
                Some(l) if l.starts_with("laddrs") => "laddr".to_string(),
                Some(f) => {
                    let rest: Vec<&str> = std::iter::once(f).chain(segs).collect();
                    format!("service.{}", rest.join("."))
                }
                None => "service".to_string(),
            };
        } else if !e.field.is_empty() {
            field = e.field.clone();
        }
        invalid(&field, format!("{about}{}", e.reason))
    }
}

/// The state file's contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Saved {
    version: u32,
    timeouts: ApiTimeouts,
    #[serde(default)]
    icmp_timeout: Option<u32>,
    services: Vec<SavedService>,
    /// Addresses, routes and neighbours set through `rvsip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stack: Option<super::stack::SavedStack>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct SavedService {
    service: Service,
    #[serde(default)]
    real_servers: Vec<RealServer>,
    #[serde(default)]
    laddrs: Vec<LocalAddr>,
    /// What only the configuration file can set.
    #[serde(default)]
    toa: Option<String>,
    #[serde(default)]
    uoa: bool,
    #[serde(default)]
    conn_limit: u32,
    /// Real servers on GRE tunnels.
    #[serde(default)]
    gre: Vec<(IpAddr, u16)>,
}

impl Desired {
    /// The state file's text (JSON). SNAT match services and per-service
    /// timeouts come from the configuration file only and are not saved.
    pub fn to_json(&self) -> String {
        let saved = Saved {
            version: 1,
            timeouts: timeouts_to_api(&self.timeouts),
            icmp_timeout: Some(secs(self.timeouts.icmp())),
            services: self
                .services
                .iter()
                .filter_map(|e| {
                    Some(SavedService {
                        service: e.service()?,
                        real_servers: e.real_servers(),
                        laddrs: e.laddrs(),
                        toa: Some(format!("{:?}", e.spec.toa)),
                        uoa: e.spec.uoa,
                        conn_limit: e.spec.conn_limit,
                        gre: e
                            .spec
                            .dests
                            .iter()
                            .filter(|d| d.mode == ForwardMode::Tun(TunnelKind::Gre))
                            .map(|d| (d.addr, d.port))
                            .collect(),
                    })
                })
                .collect(),
            stack: self.stack.clone(),
        };
        let mut s = serde_json::to_string_pretty(&saved).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Replaces the API-expressible services and the timeouts with those of
    /// a state file's text; SNAT match services of `self` are kept.
    pub fn restore(&mut self, text: &str) -> Result<(), String> {
        let saved: Saved = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut d = Desired {
            services: self
                .services
                .iter()
                .filter(|e| matches!(e.spec.key, ServiceKey::Match { .. }))
                .cloned()
                .collect(),
            timeouts: self.timeouts,
            stack: saved.stack.clone(),
        };
        let mut reqs = vec![Request::SetTimeouts {
            timeouts: saved.timeouts,
        }];
        for s in &saved.services {
            reqs.push(Request::AddService {
                service: s.service.clone(),
            });
            for l in &s.laddrs {
                reqs.push(Request::AddLaddr {
                    service: s.service.key,
                    laddr: l.clone(),
                });
            }
            for r in &s.real_servers {
                reqs.push(Request::AddRealServer {
                    service: s.service.key,
                    server: *r,
                });
            }
        }
        for (i, r) in reqs.iter().enumerate() {
            rvs_api::validate::request(r)
                .and_then(|()| d.apply(r))
                .map_err(|e| format!("entry {i}: {e}"))?;
        }
        if let Some(icmp) = saved.icmp_timeout.filter(|&s| s > 0) {
            d.timeouts.set_icmp(Duration::from_secs(u64::from(icmp)));
        }
        for s in &saved.services {
            let Ok(key) = key_to_lb(&s.service.key, "service") else {
                continue;
            };
            let Some(e) = d.find(&key).and_then(|i| d.services.get_mut(i)) else {
                continue;
            };
            e.spec.toa = match s.toa.as_deref() {
                Some("Off") => rvs_lb::config::ToaMode::Off,
                Some("Syn") => rvs_lb::config::ToaMode::Syn,
                Some("FirstData") => rvs_lb::config::ToaMode::FirstData,
                _ => e.spec.toa,
            };
            e.spec.uoa = s.uoa;
            e.spec.conn_limit = s.conn_limit;
            for dest in &mut e.spec.dests {
                if s.gre.contains(&(dest.addr, dest.port)) {
                    dest.mode = ForwardMode::Tun(TunnelKind::Gre);
                }
            }
        }
        d.build().map_err(|e| e.to_string())?;
        *self = d;
        Ok(())
    }

    /// Writes the state file atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}
