//! A tiny in-process rvsd stand-in for tests of API clients: a unix socket
//! served by a thread, answering from a small configuration [`Model`] with the
//! errors rvsd gives (validation, absent, duplicate), all-or-nothing batches,
//! and a log of every request received.

use std::io::{self, BufReader};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::client::{read_message, write_message};
use crate::net::{IfAddr, Link, NeighEntry, Route, RouteEntry};
use crate::types::{
    ApiError, Connection, ErrorCode, LocalAddrEntry, Reply, Request, Response, ServiceEntry,
    ServiceKey, ServiceLaddrs, ServiceList, Stats, Timeouts,
};
use crate::validate;

/// The configuration and observed state a fake rvsd answers from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Services (with counters a test may preset).
    pub services: Vec<ServiceEntry>,
    /// Connection entries returned by `ListConnections`.
    pub connections: Vec<Connection>,
    /// Protocol timeouts.
    pub timeouts: Timeouts,
    /// Connection table size reported in listings.
    pub table_size: u32,
    /// Ports (`ListLinks`); addresses, routes and neighbours must name one
    /// of them.
    pub links: Vec<Link>,
    /// Interface addresses.
    pub addrs: Vec<IfAddr>,
    /// Static routes (listed as they are, `connected: false`).
    pub routes: Vec<Route>,
    /// Neighbour entries (static ones are added and removed by requests).
    pub neighs: Vec<NeighEntry>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            services: Vec::new(),
            connections: Vec::new(),
            timeouts: Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            },
            table_size: 4096,
            links: Vec::new(),
            addrs: Vec::new(),
            routes: Vec::new(),
            neighs: Vec::new(),
        }
    }
}

fn not_found(field: &str, what: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, field, format!("{what} not defined"))
}

fn exists(field: &str, what: &str) -> ApiError {
    ApiError::new(ErrorCode::Exists, field, format!("{what} already exists"))
}

impl Model {
    fn find(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.service.key == *key)
    }

    fn entry(&mut self, key: &ServiceKey) -> Result<&mut ServiceEntry, ApiError> {
        match self.find(key) {
            Some(i) => self
                .services
                .get_mut(i)
                .ok_or_else(|| not_found("service", "service")),
            None => Err(not_found("service", "service")),
        }
    }

    /// Applies a request as rvsd would: validated first, and on error the
    /// model is unchanged.
    pub fn apply(&mut self, req: &Request) -> Result<Reply, ApiError> {
        validate::request(req)?;
        match req {
            Request::Batch { requests } => {
                let mut scratch = self.clone();
                for (i, r) in requests.iter().enumerate() {
                    scratch.apply(r).map_err(|e| ApiError {
                        field: format!("requests[{i}].{}", e.field),
                        ..e
                    })?;
                }
                *self = scratch;
                Ok(Reply::Done)
            }
            _ => self.apply_one(req),
        }
    }

    fn apply_one(&mut self, req: &Request) -> Result<Reply, ApiError> {
        match req {
            Request::AddService { service } => {
                if self.find(&service.key).is_some() {
                    return Err(exists("service", "service"));
                }
                self.services.push(ServiceEntry {
                    service: service.clone(),
                    stats: Stats::default(),
                    rates: Default::default(),
                    real_servers: Vec::new(),
                    local_addrs: Vec::new(),
                });
            }
            Request::EditService { service } => {
                self.entry(&service.key)?.service = service.clone();
            }
            Request::DeleteService { service } => {
                let i = self
                    .find(service)
                    .ok_or_else(|| not_found("service", "service"))?;
                self.services.remove(i);
            }
            Request::AddRealServer { service, server } => {
                let e = self.entry(service)?;
                if e.real_servers
                    .iter()
                    .any(|r| r.server.addr == server.addr && r.server.port == server.port)
                {
                    return Err(exists("server", "destination"));
                }
                e.real_servers.push(crate::types::RealServerEntry {
                    server: *server,
                    active_conns: 0,
                    inactive_conns: 0,
                    persist_conns: 0,
                    stats: Stats::default(),
                    rates: Default::default(),
                });
            }
            Request::EditRealServer { service, server } => {
                let e = self.entry(service)?;
                let r = e
                    .real_servers
                    .iter_mut()
                    .find(|r| r.server.addr == server.addr && r.server.port == server.port)
                    .ok_or_else(|| not_found("server", "destination"))?;
                r.server = *server;
            }
            Request::DeleteRealServer {
                service,
                addr,
                port,
            } => {
                let e = self.entry(service)?;
                let i = e
                    .real_servers
                    .iter()
                    .position(|r| r.server.addr == *addr && r.server.port == *port)
                    .ok_or_else(|| not_found("addr", "destination"))?;
                e.real_servers.remove(i);
            }
            Request::Clear => self.services.clear(),
            Request::Zero { service } => {
                let zero = |e: &mut ServiceEntry| {
                    e.stats = Stats::default();
                    for r in &mut e.real_servers {
                        r.stats = Stats::default();
                    }
                };
                match service {
                    Some(k) => zero(self.entry(k)?),
                    None => self.services.iter_mut().for_each(zero),
                }
            }
            Request::ListServices { service } => {
                let services = match service {
                    Some(k) => vec![self.entry(k)?.clone()],
                    None => self.services.clone(),
                };
                return Ok(Reply::Services {
                    list: ServiceList {
                        table_size: self.table_size,
                        services,
                    },
                });
            }
            Request::ListConnections => {
                return Ok(Reply::Connections {
                    connections: self.connections.clone(),
                });
            }
            Request::SetTimeouts { timeouts } => {
                let t = &mut self.timeouts;
                for (old, new) in [
                    (&mut t.tcp, timeouts.tcp),
                    (&mut t.tcp_fin, timeouts.tcp_fin),
                    (&mut t.udp, timeouts.udp),
                ] {
                    if new != 0 {
                        *old = new;
                    }
                }
            }
            Request::GetTimeouts => {
                return Ok(Reply::Timeouts {
                    timeouts: self.timeouts,
                });
            }
            Request::AddLaddr { service, laddr } => {
                let e = self.entry(service)?;
                if e.local_addrs.iter().any(|l| l.laddr.addr == laddr.addr) {
                    return Err(exists("laddr", "local address"));
                }
                e.local_addrs.push(LocalAddrEntry {
                    laddr: laddr.clone(),
                    port_conflicts: 0,
                    conns: 0,
                });
            }
            Request::DelLaddr { service, laddr } => {
                let e = self.entry(service)?;
                let i = e
                    .local_addrs
                    .iter()
                    .position(|l| l.laddr.addr == laddr.addr)
                    .ok_or_else(|| not_found("laddr", "local address"))?;
                e.local_addrs.remove(i);
            }
            Request::GetLaddrs { service } => {
                let list = |e: &ServiceEntry| ServiceLaddrs {
                    service: e.service.key,
                    laddrs: e.local_addrs.clone(),
                };
                let services = match service {
                    Some(k) => vec![list(self.entry(k)?)],
                    None => self.services.iter().map(list).collect(),
                };
                return Ok(Reply::Laddrs { services });
            }
            Request::Batch { .. } => {
                return Err(ApiError::new(ErrorCode::Invalid, "", "batches do not nest"));
            }
            _ => return self.apply_net(req),
        }
        Ok(Reply::Done)
    }

    fn link(&self, dev: &str, field: &str) -> Result<&Link, ApiError> {
        self.links
            .iter()
            .find(|l| l.name == dev)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, field, format!("no port `{dev}'")))
    }

    fn apply_net(&mut self, req: &Request) -> Result<Reply, ApiError> {
        match req {
            Request::ListLinks => {
                return Ok(Reply::Links {
                    links: self.links.clone(),
                });
            }
            Request::ListAddrs { dev } => {
                if let Some(d) = dev {
                    self.link(d, "dev")?;
                }
                let addrs = self
                    .addrs
                    .iter()
                    .filter(|a| dev.as_ref().is_none_or(|d| *d == a.dev))
                    .cloned()
                    .collect();
                return Ok(Reply::Addrs { addrs });
            }
            Request::ListRoutes => {
                let routes = self
                    .routes
                    .iter()
                    .map(|r| RouteEntry {
                        route: r.clone(),
                        src: None,
                        mtu: r
                            .dev
                            .as_ref()
                            .and_then(|d| self.link(d, "").ok())
                            .map_or(1500, |l| l.mtu),
                        connected: false,
                    })
                    .collect();
                return Ok(Reply::Routes { routes });
            }
            Request::ListNeighs { dev } => {
                if let Some(d) = dev {
                    self.link(d, "dev")?;
                }
                let neighs = self
                    .neighs
                    .iter()
                    .filter(|n| dev.as_ref().is_none_or(|d| *d == n.dev))
                    .cloned()
                    .collect();
                return Ok(Reply::Neighs { neighs });
            }
            Request::AddAddr { addr } => {
                self.link(&addr.dev, "addr.dev")?;
                if self.addrs.iter().any(|a| a.addr == addr.addr) {
                    return Err(exists("addr", "address"));
                }
                self.addrs.push(addr.clone());
            }
            Request::DelAddr { addr } => {
                self.link(&addr.dev, "addr.dev")?;
                let i = self
                    .addrs
                    .iter()
                    .position(|a| a == addr)
                    .ok_or_else(|| not_found("addr", "address"))?;
                self.addrs.remove(i);
            }
            Request::AddRoute { route } => {
                if let Some(d) = &route.dev {
                    self.link(d, "route.dev")?;
                }
                if self
                    .routes
                    .iter()
                    .any(|r| r.prefix == route.prefix && r.prefix_len == route.prefix_len)
                {
                    return Err(exists("route", "route"));
                }
                self.routes.push(route.clone());
            }
            Request::DelRoute { route } => {
                let i = self
                    .routes
                    .iter()
                    .position(|r| r.prefix == route.prefix && r.prefix_len == route.prefix_len)
                    .ok_or_else(|| not_found("route", "route"))?;
                self.routes.remove(i);
            }
            Request::AddNeigh { neigh } => {
                self.link(&neigh.dev, "neigh.dev")?;
                if self
                    .neighs
                    .iter()
                    .any(|n| n.permanent && n.addr == neigh.addr && n.dev == neigh.dev)
                {
                    return Err(exists("neigh", "neighbour"));
                }
                self.neighs.push(NeighEntry {
                    addr: neigh.addr,
                    lladdr: neigh.lladdr.clone(),
                    state: "PERMANENT".into(),
                    dev: neigh.dev.clone(),
                    worker: 0,
                    permanent: true,
                });
            }
            Request::DelNeigh { neigh } => {
                self.link(&neigh.dev, "neigh.dev")?;
                let before = self.neighs.len();
                self.neighs
                    .retain(|n| !(n.permanent && n.addr == neigh.addr && n.dev == neigh.dev));
                if self.neighs.len() == before {
                    return Err(not_found("neigh", "static neighbour"));
                }
            }
            _ => return Err(ApiError::new(ErrorCode::Invalid, "", "not supported")),
        }
        Ok(Reply::Done)
    }
}

#[derive(Debug, Default)]
struct Shared {
    model: Mutex<Model>,
    log: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fake rvsd listening on a unix socket in the temporary directory; stops
/// and removes its socket when dropped.
#[derive(Debug)]
pub struct FakeServer {
    path: PathBuf,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a fake serving `model`.
    pub fn start(model: Model) -> io::Result<FakeServer> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "rvs-fake-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        let shared = Arc::new(Shared {
            model: Mutex::new(model),
            ..Shared::default()
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("rvs-fake".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.stop.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // One client at a time is enough for tests; errors end
                        // that client's session only.
                        let _ = serve(&s, stream);
                    }
                }
            })?;
        Ok(FakeServer {
            path,
            shared,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of the model now.
    pub fn model(&self) -> Model {
        lock(&self.shared.model).clone()
    }

    /// Replaces the model.
    pub fn set_model(&self, model: Model) {
        *lock(&self.shared.model) = model;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).clone()
    }
}

fn serve(shared: &Shared, stream: UnixStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let req = match read_message::<_, Request>(&mut reader) {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let resp = Response::Error(ApiError::new(ErrorCode::BadRequest, "", e.to_string()));
                return write_message(&mut writer, &resp);
            }
            Err(e) => return Err(e),
        };
        lock(&shared.log).push(req.clone());
        let resp = Response::from(lock(&shared.model).apply(&req));
        write_message(&mut writer, &resp)?;
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Wake the accept loop so that it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
