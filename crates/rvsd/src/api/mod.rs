//! The control API: rvsd serves the `rvs_api` protocol (newline-delimited
//! JSON over a unix socket, see the `rvs_api` crate documentation) so that
//! `rvsadm` and other tools change and list the running configuration.
//!
//! # Threads and data flow
//! The data plane stays synchronous and lock-free. The API runs on plain
//! threads beside it: one accepting connections on the socket (`[api]
//! socket`, default `/run/rvs/rvsd.sock`, mode 0600, parent directory
//! created, removed on shutdown), one per client session, and the rate
//! estimator.
//!
//! - **Changes**: a request is validated on its own
//!   (`rvs_api::validate`), then applied to a scratch copy of the desired
//!   configuration ([`state::Desired`]); the copy is built into the
//!   balancer's `Config` (every check the balancer has), and only if all of
//!   that succeeds is the copy kept, the state file written and the new
//!   snapshot published to the workers (the same path as SIGHUP: an
//!   `arc-swap` store and a generation bump; workers adopt it between
//!   bursts, established connections untouched). A batch (`rvsadm -R`) is
//!   applied whole to one scratch copy and built once at its end, so its
//!   order does not matter (`-S` prints real servers before local
//!   addresses). Changes are serialised by one mutex held only by API
//!   threads. Deleting a real server keeps its connections flowing until
//!   they end (IPVS's `expire_nodest_conn` off).
//! - **Listings**: workers publish their per-service counters with their
//!   other counters every `STATS_PERIOD_MS` ([`counters::ServiceCounters`]);
//!   listings sum them over the workers (active/inactive connections,
//!   traffic) minus the baselines taken by `-Z`. Rates come from the
//!   estimator thread, which samples the sums every [`RATE_PERIOD`] and
//!   smooths them as IPVS's estimator does (weight 1/4). Connection
//!   listings ask each worker for a copy of its table, which it makes at
//!   its next timer tick ([`counters::ConnDump`]).
//! - **Save and restore**: with `[api] state = PATH`, the running
//!   configuration (services, real servers, local addresses, timeouts) is
//!   written to PATH as JSON after every change (a temporary file renamed
//!   over it), and at start, if PATH exists, it replaces the configuration
//!   file's services and timeouts. SIGHUP re-applies the file's services
//!   (an explicit operator action) and saves them.
//! - **Logs**: one `tracing` line per change with the peer's uid and pid
//!   (SO_PEERCRED) and what changed.

pub mod counters;
pub mod http;
pub mod stack;
pub mod state;

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rvs_api::{
    ApiError, Connection, ErrorCode, LocalAddrEntry, Rates, RealServerEntry, Reply, Request,
    Response, ServiceEntry, ServiceLaddrs, ServiceList, Stats, read_message, write_message,
};
use rvs_lb::config::{ServiceKey, ServiceSpec};
use rvs_lb::conn::Timeouts;
use rvs_lb::stack::StackConfig;
use rvs_lb::stats::TrafficStats;

use crate::shared::Shared;
use state::{Desired, key_to_api, key_to_lb, protocol_of, timeouts_to_api};

/// How often the estimator samples the counters (as IPVS's, 2 s).
pub const RATE_PERIOD: Duration = Duration::from_secs(2);

/// How long a connection listing waits for the workers.
const CONN_WAIT: Duration = Duration::from_secs(2);

/// How long an idle client session is kept.
const SESSION_IDLE: Duration = Duration::from_secs(60);

/// The API settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The socket (`None`: the API is off).
    pub socket: Option<PathBuf>,
    /// Whether the socket path was given explicitly (an explicit socket in
    /// use by a live rvsd is an error; the default one is only a warning).
    pub explicit: bool,
    /// The state file.
    pub state: Option<PathBuf>,
    /// `[api] http_listen` (see [`http`]; `None` or `""`: off).
    pub http_listen: Option<String>,
    /// `[api] http_token_file`.
    pub http_token_file: Option<PathBuf>,
}

impl ApiConfig {
    /// From the file's `[api]` section.
    pub fn from_section(s: &crate::config::ApiSection) -> ApiConfig {
        let socket = match s.socket.as_deref() {
            Some("") => None,
            Some(p) => Some(PathBuf::from(p)),
            None => Some(PathBuf::from(rvs_api::DEFAULT_SOCKET)),
        };
        ApiConfig {
            socket,
            explicit: s.socket.is_some(),
            state: s
                .state
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            http_listen: s.http_listen.clone(),
            http_token_file: http::token_path(s),
        }
    }
}

/// Replaces `services` and `timeouts` (the file's) with the state file's,
/// if there is one. Called before anything starts.
pub fn restore(
    cfg: &ApiConfig,
    services: &mut Vec<ServiceSpec>,
    timeouts: &mut Timeouts,
) -> Result<bool, String> {
    let Some(path) = &cfg.state else {
        return Ok(false);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut d = Desired::new(std::mem::take(services), *timeouts);
    let r = d.restore(&text);
    *services = d.services.iter().map(|e| e.spec.clone()).collect();
    *timeouts = d.timeouts;
    r.map(|()| true)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A real server: address and port.
type DestKey = (IpAddr, u16);

/// Counters summed over the workers: per service, its traffic and per real
/// server its traffic, active and inactive connections.
type Totals = HashMap<ServiceKey, (TrafficStats, HashMap<DestKey, (TrafficStats, u32, u32)>)>;

/// Rate estimates of a service and of its real servers.
type ServiceRates = (RateEst, HashMap<DestKey, RateEst>);

#[derive(Debug, Default)]
struct Estimates {
    last: Option<(Instant, Totals)>,
    rates: HashMap<ServiceKey, ServiceRates>,
}

/// Smoothed rates, scaled by 2^10 as IPVS keeps them.
#[derive(Debug, Default, Clone, Copy)]
struct RateEst([u64; 5]);

impl RateEst {
    fn update(&mut self, delta: &TrafficStats, secs: f64) {
        let v = [
            delta.conns,
            delta.in_pkts,
            delta.out_pkts,
            delta.in_bytes,
            delta.out_bytes,
        ];
        for (avg, d) in self.0.iter_mut().zip(v) {
            let rate = ((d as f64 / secs) * 1024.0) as i128;
            let a = *avg as i128;
            *avg = u64::try_from(a + (rate - a) / 4).unwrap_or(0);
        }
    }

    fn rates(&self) -> Rates {
        let r = |i: usize| (self.0.get(i).copied().unwrap_or(0) + 512) >> 10;
        Rates {
            cps: r(0),
            in_pps: r(1),
            out_pps: r(2),
            in_bps: r(3),
            out_bps: r(4),
        }
    }
}

struct Inner {
    desired: Desired,
    stack: Arc<StackConfig>,
    /// `-Z` baselines.
    zero: Totals,
}

struct ServerShared {
    shared: Arc<Shared>,
    inner: Mutex<Inner>,
    est: Mutex<Estimates>,
    state: Option<PathBuf>,
    table_size: u32,
    stop: AtomicBool,
    /// The ports' backend labels, by index (for `rvsip link show`).
    backends: Mutex<Vec<stack::PortLabel>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running API server.
pub struct Server {
    s: Arc<ServerShared>,
    path: Option<PathBuf>,
    threads: Vec<JoinHandle<()>>,
    http: Option<http::Endpoint>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("path", &self.path).finish()
    }
}

fn bind(path: &Path, explicit: bool) -> io::Result<Option<UnixListener>> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    if UnixStream::connect(path).is_ok() {
        let msg = format!("{} is in use by another rvsd", path.display());
        if explicit {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, msg));
        }
        tracing::warn!("{msg}: the API is off (set [api] socket)");
        return Ok(None);
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(l))
}

impl Server {
    /// Starts serving `cfg.socket` for the running data plane.
    pub fn start(
        cfg: &ApiConfig,
        shared: Arc<Shared>,
        services: Vec<ServiceSpec>,
        timeouts: Timeouts,
        stack: Arc<StackConfig>,
        table_size: u32,
    ) -> io::Result<Server> {
        let mut desired = Desired::new(services, timeouts);
        // A stack restored from the state file stays saved there.
        if cfg.state.as_deref().is_some_and(stack::saved_in) {
            desired.stack = Some(stack::SavedStack::of(&stack));
        }
        let s = Arc::new(ServerShared {
            shared,
            inner: Mutex::new(Inner {
                desired,
                stack,
                zero: Totals::new(),
            }),
            est: Mutex::new(Estimates::default()),
            state: cfg.state.clone(),
            table_size,
            stop: AtomicBool::new(false),
            backends: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        let mut path = None;
        if let Some(p) = &cfg.socket
            && let Some(listener) = bind(p, cfg.explicit)
                .map_err(|e| io::Error::new(e.kind(), format!("API socket {}: {e}", p.display())))?
        {
            path = Some(p.clone());
            let s2 = Arc::clone(&s);
            threads.push(
                std::thread::Builder::new()
                    .name("rvs-api".into())
                    .spawn(move || accept_loop(&s2, &listener))?,
            );
            tracing::info!(socket = %p.display(), "API listening");
        }
        let http = match cfg.http_listen.as_deref() {
            Some(l) => http::Endpoint::start(l, cfg.http_token_file.as_deref(), &s)
                .map_err(io::Error::other)?,
            None => None,
        };
        let s2 = Arc::clone(&s);
        threads.push(
            std::thread::Builder::new()
                .name("rvs-estimator".into())
                .spawn(move || estimator(&s2))?,
        );
        // Save what runs now (restored or from the file).
        if let Some(st) = &s.state
            && let Err(e) = lock(&s.inner).desired.save(st)
        {
            tracing::warn!(state = %st.display(), "cannot save the configuration: {e}");
        }
        Ok(Server {
            s,
            path,
            threads,
            http,
        })
    }

    /// SIGHUP: the file's services, timeouts and stack replace the running
    /// ones.
    pub fn replace(
        &self,
        services: Vec<ServiceSpec>,
        timeouts: Timeouts,
        stack: Arc<StackConfig>,
    ) -> Result<(), String> {
        let mut inner = lock(&self.s.inner);
        let d = Desired::new(services, timeouts);
        let cfg = d.build().map_err(|e| e.to_string())?;
        inner.desired = d;
        inner.stack = Arc::clone(&stack);
        self.s.shared.snapshots.publish(Arc::new(cfg), stack);
        self.s.save(&inner.desired);
        Ok(())
    }

    /// Tells the API the ports' backends (`af_xdp (native)`) and TAPs, by
    /// port index, for `rvsip link show` and rvs-keepalived.
    pub fn set_backends(&self, backends: Vec<stack::PortLabel>) {
        *lock(&self.s.backends) = backends;
    }

    /// Where the HTTP API listens, if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(http::Endpoint::addr)
    }

    /// Stops the threads and removes the socket.
    pub fn stop(mut self) {
        self.s.stop.store(true, Ordering::Release);
        if let Some(h) = self.http.take() {
            h.stop();
        }
        if let Some(p) = &self.path {
            let _ = UnixStream::connect(p);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn accept_loop(s: &Arc<ServerShared>, listener: &UnixListener) {
    for stream in listener.incoming() {
        if s.stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let s = Arc::clone(s);
        let _ = std::thread::Builder::new()
            .name("rvs-api-session".into())
            .spawn(move || {
                let _ = session(&s, stream);
            });
    }
}

fn estimator(s: &ServerShared) {
    let mut next = Instant::now();
    while !s.stop.load(Ordering::Acquire) {
        if Instant::now() >= next {
            next += RATE_PERIOD;
            let totals = s.totals();
            let now = Instant::now();
            let mut est = lock(&s.est);
            if let Some((then, last)) = est.last.take() {
                let secs = now.duration_since(then).as_secs_f64().max(0.001);
                let mut rates = HashMap::new();
                for (k, (st, dests)) in &totals {
                    let (mut se, mut de) = est.rates.remove(k).unwrap_or_default();
                    let old = last.get(k);
                    se.update(&sub(st, old.map(|o| &o.0)), secs);
                    let mut new_de = HashMap::new();
                    for (dk, (dst, _, _)) in dests {
                        let mut e = de.remove(dk).unwrap_or_default();
                        let od = old.and_then(|o| o.1.get(dk)).map(|o| &o.0);
                        e.update(&sub(dst, od), secs);
                        new_de.insert(*dk, e);
                    }
                    rates.insert(*k, (se, new_de));
                }
                est.rates = rates;
            }
            est.last = Some((now, totals));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `a - b`, counter by counter (never below zero).
fn sub(a: &TrafficStats, b: Option<&TrafficStats>) -> TrafficStats {
    let Some(b) = b else { return *a };
    TrafficStats {
        conns: a.conns.saturating_sub(b.conns),
        in_pkts: a.in_pkts.saturating_sub(b.in_pkts),
        out_pkts: a.out_pkts.saturating_sub(b.out_pkts),
        in_bytes: a.in_bytes.saturating_sub(b.in_bytes),
        out_bytes: a.out_bytes.saturating_sub(b.out_bytes),
    }
}

fn api_stats(t: &TrafficStats) -> Stats {
    Stats {
        conns: t.conns,
        in_packets: t.in_pkts,
        out_packets: t.out_pkts,
        in_bytes: t.in_bytes,
        out_bytes: t.out_bytes,
    }
}

fn peer(stream: &UnixStream) -> (Option<u32>, Option<i32>) {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable ucred and `len` its size; the
    // descriptor is an open unix socket for the duration of the call.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    if r == 0 {
        (Some(cred.uid), Some(cred.pid))
    } else {
        (None, None)
    }
}

fn session(s: &ServerShared, stream: UnixStream) -> io::Result<()> {
    let (uid, pid) = peer(&stream);
    stream.set_read_timeout(Some(SESSION_IDLE))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let req = match read_message::<_, Request>(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let resp = Response::Error(ApiError::new(ErrorCode::BadRequest, "", e.to_string()));
                return write_message(&mut writer, &resp);
            }
            Err(e) => return Err(e),
        };
        let result = s.handle(&req);
        if req.is_change() || matches!(req, Request::Batch { .. }) {
            match &result {
                Ok(_) => tracing::info!(
                    uid,
                    pid,
                    change = %describe(&req),
                    "configuration changed"
                ),
                Err(e) => tracing::info!(
                    uid,
                    pid,
                    change = %describe(&req),
                    error = %e,
                    "change refused, configuration unchanged"
                ),
            }
        }
        write_message(&mut writer, &Response::from(result))?;
    }
}

/// One line saying what a change does.
pub fn describe(req: &Request) -> String {
    let rs = |a: &IpAddr, p: u16| SocketAddr::new(*a, p).to_string();
    if let Some(d) = stack::describe(req) {
        return d;
    }
    match req {
        Request::AddService { service } => format!(
            "add service {} scheduler {}{}",
            service.key,
            service.scheduler,
            service
                .persistence
                .map(|p| format!(" persistent {}s/{}", p.timeout, p.netmask))
                .unwrap_or_default()
        ),
        Request::EditService { service } => {
            format!(
                "edit service {} scheduler {}",
                service.key, service.scheduler
            )
        }
        Request::DeleteService { service } => format!("delete service {service}"),
        Request::AddRealServer { service, server } => format!(
            "add real server {} {} weight {} to {service}",
            rs(&server.addr, server.port),
            server.forward.name(),
            server.weight
        ),
        Request::EditRealServer { service, server } => format!(
            "edit real server {} {} weight {} of {service}",
            rs(&server.addr, server.port),
            server.forward.name(),
            server.weight
        ),
        Request::DeleteRealServer {
            service,
            addr,
            port,
        } => format!("delete real server {} of {service}", rs(addr, *port)),
        Request::Clear => "clear all services".into(),
        Request::Zero { service: Some(k) } => format!("zero counters of {k}"),
        Request::Zero { service: None } => "zero all counters".into(),
        Request::SetTimeouts { timeouts: t } => format!(
            "set timeouts tcp {} tcpfin {} udp {}",
            t.tcp, t.tcp_fin, t.udp
        ),
        Request::AddLaddr { service, laddr } => {
            format!("add local address {} to {service}", laddr.addr)
        }
        Request::DelLaddr { service, laddr } => {
            format!("delete local address {} of {service}", laddr.addr)
        }
        Request::Batch { requests } => {
            let v: Vec<String> = requests.iter().map(describe).collect();
            format!("batch of {}: {}", requests.len(), v.join("; "))
        }
        other => format!("{other:?}"),
    }
}

impl ServerShared {
    fn save(&self, d: &Desired) {
        if let Some(st) = &self.state
            && let Err(e) = d.save(st)
        {
            tracing::error!(state = %st.display(), "cannot save the configuration: {e}");
        }
    }

    /// The workers' counters summed per service and real server.
    fn totals(&self) -> Totals {
        let mut t = Totals::new();
        for w in &self.shared.stats {
            let ws = w.load();
            let Some(sc) = &ws.services else { continue };
            for svc in &sc.services {
                let Some(key) = svc.key else { continue };
                let e = t.entry(key).or_default();
                e.0 += svc.stats;
                for d in &svc.dests {
                    let de = e.1.entry((d.addr, d.port)).or_default();
                    de.0 += d.stats;
                    de.1 += d.active;
                    de.2 += d.inactive;
                }
            }
        }
        t
    }

    fn handle(&self, req: &Request) -> Result<Reply, ApiError> {
        rvs_api::validate::request(req)?;
        match req {
            Request::ListServices { service } => self.list(service.as_ref()),
            Request::ListConnections => Ok(self.connections()),
            Request::GetTimeouts => Ok(Reply::Timeouts {
                timeouts: timeouts_to_api(&lock(&self.inner).desired.timeouts),
            }),
            Request::GetLaddrs { service } => self.laddrs(service.as_ref()),
            Request::Zero { service } => self.zero(service.as_ref()),
            Request::ListLinks => {
                let st = Arc::clone(&lock(&self.inner).stack);
                let backends = lock(&self.backends).clone();
                Ok(Reply::Links {
                    links: stack::links(&st, &self.shared, &backends),
                })
            }
            Request::ListAddrs { dev } => {
                let st = Arc::clone(&lock(&self.inner).stack);
                let port = dev
                    .as_deref()
                    .map(|d| stack::port_id(&st, d, "dev"))
                    .transpose()?;
                Ok(Reply::Addrs {
                    addrs: stack::addrs(&st, port),
                })
            }
            Request::ListRoutes => Ok(Reply::Routes {
                routes: stack::routes(&lock(&self.inner).stack),
            }),
            Request::ListNeighs { dev } => {
                let st = Arc::clone(&lock(&self.inner).stack);
                let port = dev
                    .as_deref()
                    .map(|d| stack::port_id(&st, d, "dev"))
                    .transpose()?;
                Ok(Reply::Neighs {
                    neighs: stack::neighs(&st, &self.shared.neighs, port),
                })
            }
            _ => self.change(req),
        }
    }

    fn change(&self, req: &Request) -> Result<Reply, ApiError> {
        let mut inner = lock(&self.inner);
        let mut scratch = inner.desired.clone();
        // Stack changes go to a copy of the stack, the others to the
        // balancer's desired state; what either touches is rebuilt.
        let mut new_stack: Option<StackConfig> = None;
        let mut lb_changed = false;
        let mut one = |r: &Request, scratch: &mut Desired| -> Result<(), ApiError> {
            if r.is_stack_change() {
                let st = new_stack.get_or_insert_with(|| (*inner.stack).clone());
                stack::apply(st, r)
            } else {
                lb_changed = true;
                scratch.apply(r)
            }
        };
        match req {
            Request::Batch { requests } => {
                for (i, r) in requests.iter().enumerate() {
                    one(r, &mut scratch).map_err(|e| ApiError {
                        field: format!("requests[{i}].{}", e.field),
                        ..e
                    })?;
                }
            }
            _ => one(req, &mut scratch)?,
        }
        let cfg = if lb_changed {
            Arc::new(scratch.build()?)
        } else {
            self.shared.snapshots.load().0
        };
        let stack_cfg = match new_stack {
            Some(st) => {
                stack::check(&st)?;
                scratch.stack = Some(stack::SavedStack::of(&st));
                Arc::new(st)
            }
            None => Arc::clone(&inner.stack),
        };
        // Baselines of what is gone go with it.
        let keep: Vec<ServiceKey> = scratch.services.iter().map(|e| e.spec.key).collect();
        inner.zero.retain(|k, _| keep.contains(k));
        inner.desired = scratch;
        inner.stack = Arc::clone(&stack_cfg);
        self.shared.snapshots.publish(cfg, stack_cfg);
        self.save(&inner.desired);
        Ok(Reply::Done)
    }

    fn zero(&self, service: Option<&rvs_api::ServiceKey>) -> Result<Reply, ApiError> {
        let totals = self.totals();
        let mut inner = lock(&self.inner);
        let keys: Vec<ServiceKey> = match service {
            Some(k) => {
                let key = key_to_lb(k, "service")?;
                if inner.desired.find(&key).is_none() {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        "service",
                        "service not defined",
                    ));
                }
                vec![key]
            }
            None => inner.desired.services.iter().map(|e| e.spec.key).collect(),
        };
        for k in keys {
            match totals.get(&k) {
                Some(t) => {
                    inner.zero.insert(k, t.clone());
                }
                None => {
                    inner.zero.remove(&k);
                }
            }
        }
        Ok(Reply::Done)
    }

    fn list(&self, which: Option<&rvs_api::ServiceKey>) -> Result<Reply, ApiError> {
        let totals = self.totals();
        let inner = lock(&self.inner);
        let est = lock(&self.est);
        let want = which.map(|k| key_to_lb(k, "service")).transpose()?;
        if let Some(k) = &want
            && inner.desired.find(k).is_none()
        {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "service",
                "service not defined",
            ));
        }
        let mut services = Vec::new();
        for e in &inner.desired.services {
            if want.is_some_and(|k| k != e.spec.key) {
                continue;
            }
            let Some(service) = e.service() else { continue };
            let tot = totals.get(&e.spec.key);
            let base = inner.zero.get(&e.spec.key);
            let rates = est.rates.get(&e.spec.key);
            let real_servers = e
                .real_servers()
                .into_iter()
                .map(|server| {
                    let dk = (server.addr, server.port);
                    let t = tot.and_then(|t| t.1.get(&dk));
                    let b = base.and_then(|b| b.1.get(&dk)).map(|b| &b.0);
                    RealServerEntry {
                        server,
                        active_conns: t.map_or(0, |t| t.1),
                        inactive_conns: t.map_or(0, |t| t.2),
                        persist_conns: 0,
                        stats: t.map_or_else(Stats::default, |t| api_stats(&sub(&t.0, b))),
                        rates: rates
                            .and_then(|r| r.1.get(&dk))
                            .map_or_else(Rates::default, RateEst::rates),
                    }
                })
                .collect();
            services.push(ServiceEntry {
                service,
                stats: tot.map_or_else(Stats::default, |t| {
                    api_stats(&sub(&t.0, base.map(|b| &b.0)))
                }),
                rates: rates.map_or_else(Rates::default, |r| r.0.rates()),
                real_servers,
                local_addrs: e
                    .laddrs()
                    .into_iter()
                    .map(|laddr| LocalAddrEntry {
                        laddr,
                        port_conflicts: 0,
                        conns: 0,
                    })
                    .collect(),
            });
        }
        Ok(Reply::Services {
            list: ServiceList {
                table_size: self.table_size,
                services,
            },
        })
    }

    fn laddrs(&self, which: Option<&rvs_api::ServiceKey>) -> Result<Reply, ApiError> {
        let inner = lock(&self.inner);
        let want = which.map(|k| key_to_lb(k, "service")).transpose()?;
        if let Some(k) = &want
            && inner.desired.find(k).is_none()
        {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "service",
                "service not defined",
            ));
        }
        let services = inner
            .desired
            .services
            .iter()
            .filter(|e| want.is_none_or(|k| k == e.spec.key))
            .filter_map(|e| {
                Some(ServiceLaddrs {
                    service: key_to_api(&e.spec.key)?,
                    laddrs: e
                        .laddrs()
                        .into_iter()
                        .map(|laddr| LocalAddrEntry {
                            laddr,
                            port_conflicts: 0,
                            conns: 0,
                        })
                        .collect(),
                })
            })
            .collect();
        Ok(Reply::Laddrs { services })
    }

    fn connections(&self) -> Reply {
        let sa = |(a, p): (IpAddr, u16)| SocketAddr::new(a, p);
        let connections = self
            .shared
            .conns
            .collect(CONN_WAIT)
            .into_iter()
            .map(|c| Connection {
                protocol: protocol_of(c.proto),
                expire_secs: u32::try_from(c.expires.as_secs()).unwrap_or(u32::MAX),
                state: c.state.to_string(),
                client: sa(c.client),
                virtual_addr: sa(c.virtual_addr),
                local: c.local.map(sa),
                destination: sa(c.dest),
            })
            .collect();
        Reply::Connections { connections }
    }
}
