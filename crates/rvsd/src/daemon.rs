//! Start-up and shutdown: what the configuration asks for, made real.
//!
//! [`start`] checks the environment against the configuration (interfaces
//! exist, cores exist), reads MACs and MTUs the file leaves out, attaches
//! the XDP program of each AF_XDP port, opens one queue per worker and port
//! (AF_PACKET sockets join one fanout group per port; AF_XDP worker `k`
//! binds queue `k`), creates the TAP devices (served by worker 0) and starts
//! the workers. [`Running::stop`] stops the workers (their sockets and TAP
//! devices close with them: the TAPs disappear) and then detaches the XDP
//! programs.
//!
//! Several workers on one port: every worker gets the same local-port
//! steering (`crate::steering::choose`: the port partition, or the NIC's
//! RSS where the driver exposes it), and the rings between workers
//! (`crate::redirect`) carry a reply that reached a worker other than its
//! connection's owner to the owner, and kernel-bound frames to worker 0,
//! which serves the TAPs. AF_XDP worker `k` binds queue `k` of every
//! AF_XDP port, so such a port needs as many queues as workers (veth: `ip
//! link add … numtxqueues N numrxqueues N`).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use rvs_io::af_packet::{AfPacketConfig, AfPacketIo};
use rvs_io::af_xdp::{AttachMode, XdpProgram, XskConfig, XskSocket, ifindex};
use rvs_io::membership::AllMulticast;
use rvs_io::tap::{TapConfig, TapIo};
use rvs_lb::config::{Config, ConfigError};
use rvs_lb::fwd::FwdContext;
use rvs_lb::stack::{Node, StackConfig};
use rvs_lb::worker::{Worker, WorkerOptions};

use crate::config::{Backend, Daemon, MacAddr, StackSpec, XdpMode, parse_mac, stack_config};
use crate::dataplane::{PortIo, WorkerCtx};
use crate::shared::{Shared, WorkerStats};

/// Why the daemon could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration does not fit this machine (exit code 2).
    Config(ConfigError),
    /// A system call failed (exit code 1).
    Io(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Io(e) => f.write_str(e),
        }
    }
}

/// The running data plane.
#[derive(Debug)]
pub struct Running {
    /// Shared state (snapshots, counters, stop flag).
    pub shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    programs: Vec<XdpProgram>,
    /// Every port in all-multicast mode (the kernel's groups are joined on
    /// the TAPs, not on the ports: VRRP adverts must still get in).
    _all_multicast: Vec<AllMulticast>,
    /// The ports as resolved (MAC, MTU).
    pub ports: Vec<ResolvedPort>,
    /// TAP device names created.
    pub taps: Vec<String>,
    api: Option<crate::api::Server>,
    metrics: Option<crate::metrics::Server>,
}

/// A port with its MAC and MTU known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPort {
    /// Interface.
    pub name: String,
    /// MAC.
    pub mac: MacAddr,
    /// MTU.
    pub mtu: u16,
    /// Backend.
    pub backend: Backend,
    /// How the XDP program was attached (AF_XDP).
    pub xdp: Option<String>,
}

fn sysfs(name: &str, what: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/{what}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The stack's configuration with the ports' resolved MACs and MTUs.
pub fn resolved_stack(
    stack: &StackSpec,
    ports: &[ResolvedPort],
) -> Result<StackConfig, StartError> {
    let pm: Vec<(MacAddr, u16)> = ports.iter().map(|p| (p.mac, p.mtu)).collect();
    stack_config(stack, &pm).map_err(StartError::Config)
}

/// Resolves the ports' MACs and MTUs against the interfaces.
pub fn resolve_ports(stack: &StackSpec) -> Result<Vec<ResolvedPort>, StartError> {
    let mut out = Vec::new();
    for (i, p) in stack.ports.iter().enumerate() {
        let Some(sys_mac) = sysfs(&p.name, "address") else {
            return Err(StartError::Config(ConfigError::new(
                format!("port[{i}].name"),
                format!("no interface `{}` in this network namespace", p.name),
            )));
        };
        let mac = match p.mac {
            Some(m) => m,
            None => parse_mac(&sys_mac).map_err(|e| {
                StartError::Config(ConfigError::new(
                    format!("port[{i}].mac"),
                    format!("the interface's MAC {e}"),
                ))
            })?,
        };
        let mtu = p
            .mtu
            .or_else(|| sysfs(&p.name, "mtu").and_then(|m| m.parse().ok()))
            .unwrap_or(1500);
        out.push(ResolvedPort {
            name: p.name.clone(),
            mac,
            mtu,
            backend: p.backend,
            xdp: None,
        });
    }
    Ok(out)
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> StartError {
    move |e| StartError::Io(format!("{what}: {e}"))
}

/// Starts the data plane.
pub fn start(mut d: Daemon) -> Result<Running, StartError> {
    let api_cfg = crate::api::ApiConfig::from_section(&d.api);
    let mut timeouts = d.lb.timeouts;
    if crate::api::restore(&api_cfg, &mut d.services, &mut timeouts).map_err(StartError::Io)? {
        d.lb = Config::build(d.services.clone(), timeouts).map_err(StartError::Config)?;
        tracing::info!(
            services = d.services.len(),
            "configuration restored from the state file"
        );
    }
    let api_services = d.services.clone();
    if crate::api::stack::restore(&api_cfg, &mut d.stack).map_err(StartError::Io)? {
        tracing::info!(
            addrs = d.stack.addrs.len(),
            routes = d.stack.routes.len(),
            "stack restored from the state file"
        );
    }
    let mut ports = resolve_ports(&d.stack)?;
    let workers = d.daemon.workers;
    let cores = match &d.daemon.cores {
        Some(c) => {
            let have: Vec<usize> = core_affinity::get_core_ids()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.id)
                .collect();
            for (i, c) in c.iter().enumerate() {
                if !have.contains(c) {
                    return Err(StartError::Config(ConfigError::new(
                        format!("daemon.cores[{i}]"),
                        format!("core {c} is not available here (available: {have:?})"),
                    )));
                }
            }
            c.iter().copied().map(Some).collect()
        }
        None => vec![None; usize::from(workers)],
    };
    let stack_cfg = Arc::new(resolved_stack(&d.stack, &ports)?);
    let lb = Arc::new(d.lb);
    let shared = Arc::new(Shared::new(workers, lb.clone(), stack_cfg.clone()));
    let api = crate::api::Server::start(
        &api_cfg,
        shared.clone(),
        api_services,
        timeouts,
        stack_cfg.clone(),
        d.daemon.conn_capacity,
    )
    .map_err(|e| StartError::Io(e.to_string()))?;

    // XDP programs, one per AF_XDP port.
    let mut programs: Vec<Option<XdpProgram>> = Vec::new();
    for (spec, rp) in d.stack.ports.iter().zip(ports.iter_mut()) {
        if spec.backend != Backend::AfXdp {
            programs.push(None);
            continue;
        }
        let mode = match spec.xdp_mode {
            XdpMode::Auto => AttachMode::Auto,
            XdpMode::Native => AttachMode::Native,
            XdpMode::Generic => AttachMode::Generic,
        };
        let prog = XdpProgram::attach(&spec.name, mode)
            .map_err(io_err(format!("attaching XDP to {}", spec.name)))?;
        rp.xdp = Some(format!("{:?}", prog.mode()).to_lowercase());
        programs.push(Some(prog));
    }
    let mut all_multicast = Vec::new();
    for spec in &d.stack.ports {
        let idx = ifindex(&spec.name).map_err(io_err(spec.name.clone()))?;
        all_multicast.push(
            AllMulticast::enable(idx)
                .map_err(io_err(format!("all-multicast mode on {}", spec.name)))?,
        );
    }
    // One queue per worker and port.
    let mut queues: Vec<Vec<PortIo>> = Vec::new();
    let fanout_base = (std::process::id() & 0x3fff) as u16;
    for w in 0..workers {
        let mut qs = Vec::new();
        for (i, spec) in d.stack.ports.iter().enumerate() {
            let io = match spec.backend {
                Backend::AfPacket => {
                    let cfg = AfPacketConfig {
                        fanout_group: (workers > 1)
                            .then(|| fanout_base.wrapping_add(u16::try_from(i).unwrap_or(0))),
                        // A configured MAC other than the interface's needs
                        // promiscuous mode to be received.
                        promiscuous: spec.mac.is_some(),
                        ..AfPacketConfig::default()
                    };
                    PortIo::AfPacket(
                        AfPacketIo::open_by_name(&spec.name, &cfg)
                            .map_err(io_err(format!("AF_PACKET socket on {}", spec.name)))?,
                    )
                }
                Backend::AfXdp => {
                    let idx = ifindex(&spec.name).map_err(io_err(spec.name.clone()))?;
                    let sock = XskSocket::open(
                        idx,
                        &XskConfig {
                            queue: u32::from(w),
                            ..XskConfig::default()
                        },
                    )
                    .map_err(io_err(format!("AF_XDP socket on {} queue {w}", spec.name)))?;
                    if let Some(Some(prog)) = programs.get_mut(i) {
                        prog.register(&sock)
                            .map_err(io_err(format!("registering the socket of {}", spec.name)))?;
                    }
                    PortIo::AfXdp(sock)
                }
            };
            qs.push(io);
        }
        queues.push(qs);
    }
    // TAP devices (worker 0).
    let mut taps: Vec<Option<TapIo>> = Vec::new();
    let mut tap_names = Vec::new();
    for (spec, rp) in d.stack.ports.iter().zip(&ports) {
        match &spec.tap {
            Some(name) => {
                let tap = TapIo::create(&TapConfig {
                    name: name.clone(),
                    mac: Some(rp.mac),
                    mtu: Some(u32::from(rp.mtu)),
                    ..TapConfig::default()
                })
                .map_err(io_err(format!("creating TAP {name}")))?;
                tap_names.push(tap.name().to_string());
                taps.push(Some(tap));
            }
            None => taps.push(None),
        }
    }
    let mtu = ports.iter().map(|p| p.mtu).min().unwrap_or(1500);
    // Several workers: how replies find their owner.
    let choice = crate::steering::choose(
        workers,
        &d.stack
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.backend == Backend::AfXdp))
            .collect::<Vec<_>>(),
    );
    if workers > 1 {
        tracing::info!(
            workers,
            steering = crate::steering::label(&choice.steering),
            why = %choice.reason,
            "reply steering"
        );
        let nat = lb.services().iter().any(|s| {
            s.spec
                .dests
                .iter()
                .any(|d| d.mode == rvs_lb::config::ForwardMode::Nat)
        });
        if nat {
            tracing::warn!(
                workers,
                "NAT (masquerade) replies carry no owner (they are addressed to the client): \
                 with several workers a reply that reaches another worker is not balanced; \
                 use FullNAT or one worker for NAT services"
            );
        }
    }
    let metrics = match d.metrics {
        Some(listen) => crate::metrics::Server::start(
            listen,
            shared.clone(),
            crate::metrics::Static::of(&ports, &d.stack),
        )
        .map_err(StartError::Io)?,
        None => None,
    };
    let mut peers = crate::redirect::peers(workers, &choice.steering, 0)
        .map_err(io_err("inter-worker wake-up eventfd".into()))?
        .into_iter();
    api.set_backends(
        ports
            .iter()
            .zip(&d.stack.ports)
            .map(|(p, spec)| crate::api::stack::PortLabel {
                backend: match (p.backend, &p.xdp) {
                    (Backend::AfXdp, Some(m)) => format!("af_xdp ({m})"),
                    (Backend::AfXdp, None) => "af_xdp".to_string(),
                    (Backend::AfPacket, _) => "af_packet".to_string(),
                },
                tap: spec.tap.clone(),
            })
            .collect(),
    );
    let epoch = Instant::now();
    let mut handles = Vec::new();
    for (w, qs) in queues.into_iter().enumerate() {
        let id = u16::try_from(w).unwrap_or(u16::MAX);
        let mut worker = Worker::new(WorkerOptions {
            id,
            conn_capacity: d.daemon.conn_capacity,
            fwd: FwdContext { mtu },
            steering: choice.steering.clone(),
            ..WorkerOptions::default()
        });
        worker.apply(lb.clone(), false);
        let node = Node::new(worker, stack_cfg.clone());
        let ctx = WorkerCtx {
            id,
            node,
            ports: qs,
            taps: if w == 0 {
                std::mem::take(&mut taps)
            } else {
                Vec::new()
            },
            tick: d.daemon.tick,
            epoch,
            shared: shared.clone(),
            peers: peers.next().flatten(),
        };
        let core = cores.get(w).copied().flatten();
        let h = std::thread::Builder::new()
            .name(format!("rvs-worker-{w}"))
            .spawn(move || {
                if let Some(c) = core
                    && !core_affinity::set_for_current(core_affinity::CoreId { id: c })
                {
                    tracing::warn!(worker = w, core = c, "could not pin the worker");
                }
                ctx.run();
            })
            .map_err(io_err(format!("starting worker {w}")))?;
        handles.push(h);
    }
    Ok(Running {
        shared,
        workers: handles,
        programs: programs.into_iter().flatten().collect(),
        _all_multicast: all_multicast,
        ports,
        taps: tap_names,
        api: Some(api),
        metrics,
    })
}

impl Running {
    /// Publishes a new configuration (services, addresses, routes,
    /// neighbours). Ports cannot change while running.
    pub fn reload(&self, d: Daemon) -> Result<(), StartError> {
        let names: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
        let new: Vec<&str> = d.stack.ports.iter().map(|p| p.name.as_str()).collect();
        if names != new {
            return Err(StartError::Config(ConfigError::new(
                "port",
                "ports cannot change while running: restart rvsd",
            )));
        }
        let cfg = resolved_stack(&d.stack, &self.ports)?;
        if let Some(api) = &self.api {
            return api
                .replace(d.services, d.lb.timeouts, Arc::new(cfg))
                .map_err(StartError::Io);
        }
        self.shared.snapshots.publish(Arc::new(d.lb), Arc::new(cfg));
        Ok(())
    }

    /// The latest counters of every worker.
    pub fn stats(&self) -> Vec<Arc<WorkerStats>> {
        self.shared.stats.iter().map(|s| s.load_full()).collect()
    }

    /// Stops the workers, removes the TAP devices and detaches the XDP
    /// programs.
    pub fn stop(mut self) -> Vec<Arc<WorkerStats>> {
        if let Some(api) = self.api.take() {
            api.stop();
        }
        if let Some(m) = self.metrics.take() {
            m.stop();
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        for h in self.workers {
            let _ = h.join();
        }
        let stats = self.shared.stats.iter().map(|s| s.load_full()).collect();
        for p in self.programs {
            let _ = p.detach();
        }
        stats
    }
}

/// The addresses a configuration owns (for the start-up line).
pub fn owned_addresses(d: &Daemon) -> Vec<IpAddr> {
    let lb: &Config = &d.lb;
    let mut v: Vec<IpAddr> = d.stack.addrs.iter().map(|a| a.addr).collect();
    for s in lb.services() {
        v.extend(s.spec.key.addr());
        v.extend(s.spec.laddrs.iter().copied());
    }
    v.sort();
    v.dedup();
    v
}
