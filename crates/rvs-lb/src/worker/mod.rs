//! One worker's balancer: the per-packet pipeline and everything it owns.
//!
//! A [`Worker`] is instantiated once per worker thread and owns its
//! connection table, scheduler states, local-port chooser and counters
//! outright; all it shares is the read-only [`Config`] snapshot. The daemon
//! calls [`Worker::process`] for each packet of a burst and
//! [`Worker::expire`] between bursts; tests do the same with a simulated
//! clock.
//!
//! The pipeline for one packet:
//! 1. [`classify`]: parse once; malformed input is dropped and counted.
//! 2. Connection lookup by the packet's own 5-tuple, which finds the entry
//!    from either side. A hit is touched (lazy timer), its TCP state
//!    advanced, and the packet rewritten by its forwarding mode.
//! 3. Otherwise, a virtual service lookup; a packet for no service is
//!    [`Verdict::Pass`]ed to the stack. A packet that may start a connection
//!    (TCP SYN, any UDP, echo request) is scheduled to a real server, given a
//!    local endpoint (FullNAT), entered in the table and forwarded.

mod accounting;
mod apply;
#[cfg(test)]
mod burst_tests;
mod icmp_error;
mod listing;
mod persist;
mod schedule;

use accounting::{forget, refresh_availability, update_activity};

pub use listing::ConnEntry;
pub use persist::{Template, Templates};

use core::time::Duration;
use std::sync::Arc;

use crate::classify::{L4, PacketInfo, classify};
use crate::config::{Config, ForwardMode, ServiceKey};
use crate::conn::{ConnId, ConnState, ConnTable, Direction, LookupHint, Side, TcpFlags, Time};
use crate::fwd::FLAG_ONE_PACKET;
use crate::fwd::{self, ConnData, FLAG_ACTIVE, FullNatCounters, FwdContext, Verdict};
use crate::laddr::{LocalPorts, Steering};
use crate::packet::Packet;
use crate::sched::{SchedState, ServerFacts};
use crate::stats::{DropCounters, DropReason, TrafficStats};

/// The most packets [`Worker::process_burst`] prefetches for at a time
/// (longer bursts are taken in chunks of this size).
pub const MAX_BURST: usize = 32;

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// This worker's index among the workers.
    pub id: u16,
    /// Connection table capacity.
    pub conn_capacity: u32,
    /// Seed of the connection table's hash.
    pub hash_seed: u64,
    /// How replies reach the worker that owns their connection.
    pub steering: Steering,
    /// What forwarding needs to know (path MTU).
    pub fwd: FwdContext,
    /// Capacity of the persistence-template table.
    pub template_capacity: u32,
    /// Drop a persistence template whose real server became quiescent
    /// (weight 0), as IPVS's `expire_quiescent_template` sysctl; by default
    /// persistent clients keep reaching it while their template lives.
    pub expire_quiescent_template: bool,
    /// How long an entry of a one-packet-scheduled datagram keeps mapping
    /// the server's replies back (FullNAT, NAT, SNAT).
    pub one_packet_window: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            id: 0,
            conn_capacity: 1 << 20,
            hash_seed: 0x5256_535f_6c62_0001,
            steering: Steering::Any,
            fwd: FwdContext::default(),
            template_capacity: 1 << 16,
            expire_quiescent_template: false,
            one_packet_window: Duration::from_secs(2),
        }
    }
}

/// Per-worker state of one virtual service.
#[derive(Debug, Clone)]
pub struct ServiceState {
    /// The scheduler's per-worker part.
    sched: SchedState,
    /// What the scheduler sees of each real server.
    pub facts: Vec<ServerFacts>,
    /// Traffic of the service.
    pub stats: TrafficStats,
    /// Traffic of each real server.
    pub dest_stats: Vec<TrafficStats>,
    /// Connections of the service in this worker's table.
    pub conns: u32,
}

/// One worker's balancer.
#[derive(Debug)]
pub struct Worker {
    config: Arc<Config>,
    services: Vec<ServiceState>,
    conns: ConnTable<ConnData>,
    templates: Templates,
    /// The latest time seen (for work done outside `process`/`expire`).
    clock: Time,
    expire_quiescent_template: bool,
    one_packet_window: Duration,
    locals: LocalPorts,
    drops: DropCounters,
    fwd: FwdContext,
    fullnat: FullNatCounters,
}

impl Worker {
    /// A worker with an empty configuration.
    pub fn new(options: WorkerOptions) -> Self {
        Worker {
            config: Arc::new(Config::default()),
            services: Vec::new(),
            conns: ConnTable::new(options.conn_capacity, options.hash_seed),
            templates: Templates::new(options.template_capacity, options.hash_seed),
            clock: Time::ZERO,
            expire_quiescent_template: options.expire_quiescent_template,
            one_packet_window: options.one_packet_window,
            locals: LocalPorts::new(options.id, options.steering),
            drops: DropCounters::default(),
            fwd: options.fwd,
            fullnat: FullNatCounters::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Per-service state, parallel to `config().services()`.
    pub fn services(&self) -> &[ServiceState] {
        &self.services
    }

    /// Drop counters.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// What FullNAT's client-address extras (TOA, UOA) did.
    pub fn fullnat_counters(&self) -> &FullNatCounters {
        &self.fullnat
    }

    /// The persistence templates (for listings).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The connection table (for listings such as `ipvsadm -Lnc`).
    pub fn conns(&self) -> &ConnTable<ConnData> {
        &self.conns
    }

    /// Removes connections that have been idle past their timeout; at most
    /// `budget` entries are examined. Returns how many were removed.
    pub fn expire(&mut self, now: Time, budget: usize) -> usize {
        let mut n = 0;
        self.clock = now;
        let (services, config, templates) = (&mut self.services, &self.config, &mut self.templates);
        self.conns.expire(now, budget, |_, conn| {
            n += 1;
            forget(services, config, templates, now, &conn);
        });
        self.templates.expire(now, budget);
        n
    }

    /// Runs a burst of packets through the balancer: the verdict of
    /// `packets[i]` goes to `verdicts[i]`, its firewall mark is `marks[i]`
    /// (0 where `marks` is shorter). Processes
    /// `min(packets.len(), verdicts.len())` packets, each exactly as
    /// [`process`](Self::process) would, in order.
    ///
    /// Up to [`MAX_BURST`] packets at a time are first classified and their
    /// keys hashed, then the table's index lines and entries for them are
    /// prefetched, and only then is each packet processed: the cache misses
    /// of a whole burst overlap instead of each packet waiting for its own
    /// (ARCHITECTURE.md §8).
    pub fn process_burst(
        &mut self,
        packets: &mut [Packet<'_>],
        marks: &[u32],
        now: Time,
        verdicts: &mut [Verdict],
    ) {
        let n = packets.len().min(verdicts.len());
        let chunks = packets
            .get_mut(..n)
            .unwrap_or_default()
            .chunks_mut(MAX_BURST);
        let mut verdicts = verdicts.iter_mut();
        let mut marks = marks.iter();
        for chunk in chunks {
            let mut parsed = [Err(DropReason::Malformed); MAX_BURST];
            let mut hashes = [0u64; MAX_BURST];
            let mut hints = [LookupHint::NONE; MAX_BURST];
            // 1. Classify and hash; fetch the index lines.
            for ((p, info), hash) in chunk.iter().zip(&mut parsed).zip(&mut hashes) {
                *info = classify(p.data());
                if let Ok(i) = info
                    && matches!(i.l4, L4::Tcp(_) | L4::Udp | L4::Echo { .. })
                {
                    *hash = self.conns.hash(&i.key);
                    self.conns.prefetch_index(*hash);
                }
            }
            // 2. Fetch the entries the (now cached) index lines point at.
            for ((info, &hash), hint) in parsed.iter().zip(&hashes).zip(&mut hints) {
                if info.is_ok() {
                    *hint = self.conns.prefetch_entry_hinted(hash);
                }
            }
            // 3. Process.
            let per_packet = parsed.into_iter().zip(hashes).zip(hints);
            for (p, ((info, hash), hint)) in chunk.iter_mut().zip(per_packet) {
                let Some(verdict) = verdicts.next() else {
                    return;
                };
                let mark = marks.next().copied().unwrap_or(0);
                *verdict = self.process_parsed(p, info, Some((hash, hint)), mark, now);
            }
        }
    }

    /// Runs one packet through the balancer. `mark` is the packet's firewall
    /// mark (0: none); `now` the worker's clock.
    pub fn process(&mut self, packet: &mut Packet<'_>, mark: u32, now: Time) -> Verdict {
        let parsed = classify(packet.data());
        self.process_parsed(packet, parsed, None, mark, now)
    }

    /// The pipeline after classification; `hash` is the table's hash of the
    /// packet's key and the lookup hint found while prefetching, when the
    /// caller computed them already.
    #[inline(always)]
    fn process_parsed(
        &mut self,
        packet: &mut Packet<'_>,
        parsed: Result<PacketInfo, DropReason>,
        hash: Option<(u64, LookupHint)>,
        mark: u32,
        now: Time,
    ) -> Verdict {
        let info = match parsed {
            Ok(info) => info,
            Err(reason) => return self.drop(reason),
        };
        match info.l4 {
            L4::IcmpError => return self.icmp_error(packet, &info, now),
            L4::Other => return Verdict::Pass,
            _ => {}
        }
        let config = &self.config;
        let (hash, hint) = hash.unwrap_or_else(|| (self.conns.hash(&info.key), LookupHint::NONE));
        if let Some((id, dir, conn)) = self.conns.lookup_hinted_mut(&info.key, hash, hint) {
            if dir == Direction::FromClient && conn.data.flags & FLAG_ONE_PACKET != 0 {
                return self.one_packet_again(id, packet, mark, now);
            }
            if dir == Direction::FromClient && starts_over(conn.data.state, info.l4) {
                // IPVS's conn_reuse_mode: a new SYN on a connection that is
                // closing or closed (the client reused its port) is a new
                // connection, scheduled afresh.
                self.remove_conn(id);
                return self.process_parsed(packet, Ok(info), None, mark, now);
            }
            conn.touch(now);
            let data = &mut conn.data;
            if let (ConnState::Tcp(state), L4::Tcp(flags)) = (data.state, info.l4) {
                let side = Side::of(dir, data.mode.sees_replies());
                let next = state.next(side, flags);
                if next != state {
                    data.state = ConnState::Tcp(next);
                    let timeout = config.timeouts_for(data.service as usize).of(data.state);
                    update_activity(&mut self.services, data);
                    // The wheel may have to move the entry earlier.
                    self.conns.set_timeout(id, timeout);
                    return self.forward_existing(packet, &info, id, dir);
                }
            }
            // No state change (most packets): forward with the entry in
            // hand, no second slab access.
            return forward_conn(
                &mut self.services,
                &mut self.drops,
                &self.fwd,
                &mut self.fullnat,
                packet,
                &info,
                conn,
                dir,
            );
        }
        let Some(service) = self.config.lookup(&info, mark) else {
            return Verdict::Pass;
        };
        match info.l4 {
            L4::Tcp(flags) if !flags.contains(TcpFlags::SYN) || flags.contains(TcpFlags::RST) => {
                return self.drop(DropReason::NoConnection);
            }
            L4::Echo { request: false, .. } => return self.drop(DropReason::NoConnection),
            _ => {}
        }
        match self.new_connection(&info, service, now) {
            Ok(id) => self.forward_existing(packet, &info, id, Direction::FromClient),
            Err(reason) => self.drop(reason),
        }
    }

    fn forward_existing(
        &mut self,
        packet: &mut Packet<'_>,
        info: &PacketInfo,
        id: ConnId,
        dir: Direction,
    ) -> Verdict {
        // By slab position: the packet's one hash lookup was done already.
        let Some(conn) = self.conns.get_mut(id) else {
            return self.drop(DropReason::NoConnection);
        };
        forward_conn(
            &mut self.services,
            &mut self.drops,
            &self.fwd,
            &mut self.fullnat,
            packet,
            info,
            conn,
            dir,
        )
    }

    /// Schedules a new flow of `service` and enters it in the table.
    fn new_connection(
        &mut self,
        info: &PacketInfo,
        service: usize,
        now: Time,
    ) -> Result<ConnId, DropReason> {
        let config = Arc::clone(&self.config);
        let svc = config.service(service).ok_or(DropReason::NoService)?;
        {
            let state = self.services.get(service).ok_or(DropReason::NoService)?;
            if svc.spec.conn_limit > 0 && state.conns >= svc.spec.conn_limit {
                return Err(DropReason::ConnLimit);
            }
        }
        let pick = self.schedule(service, info, now)?;
        let dest_idx = pick.dest;
        let dest = svc
            .spec
            .dests
            .get(dest_idx)
            .ok_or(DropReason::NoRealServer)?;
        let port = schedule::dest_port(&svc.spec, dest, info);
        // Echo flows keep their identifier as the "port" on the server side.
        let port = match info.l4 {
            L4::Echo { ident, .. } if dest.mode != ForwardMode::FullNat => ident,
            _ => port,
        };
        // The far end of the connection and the local addresses to use:
        // FullNAT talks to the real server from a local address; SNAT keeps
        // the destination and takes its "real server" as the source address.
        let (remote, laddrs) = match dest.mode {
            ForwardMode::Snat => (
                (info.key.dst_ip(), info.key.dst_port),
                core::slice::from_ref(&dest.addr),
            ),
            _ => ((dest.addr, port), svc.spec.laddrs.as_slice()),
        };
        let local = match dest.mode {
            ForwardMode::FullNat | ForwardMode::Snat => Some(
                self.locals
                    .allocate(
                        laddrs,
                        fwd::server_proto(info.proto, remote.0),
                        remote,
                        &self.conns,
                    )
                    .ok_or(DropReason::LocalPortsExhausted)?,
            ),
            _ => None,
        };
        let reply = fwd::reply_key(dest.mode, &info.key, remote, local);
        let reply = match info.l4 {
            // An echo reply carries the identifier as its destination port.
            L4::Echo { .. } => crate::flow::FlowKey {
                src_port: 0,
                dst_port: reply.dst_port,
                ..reply
            },
            _ => reply,
        };
        let mut conn_state = ConnState::initial(info.proto).ok_or(DropReason::Unsupported)?;
        if let (ConnState::Tcp(s), L4::Tcp(flags)) = (conn_state, info.l4) {
            let side = Side::of(Direction::FromClient, dest.mode.sees_replies());
            conn_state = ConnState::Tcp(s.next(side, flags));
        }
        let data = ConnData {
            service: service as u32,
            dest: dest_idx as u32,
            mode: dest.mode,
            state: conn_state,
            flags: fwd::initial_flags(dest.mode, info.l4, &svc.spec),
            nat64: fwd::translates(&info.key, &reply),
            tun_src: match dest.mode {
                ForwardMode::Tun(_) => svc
                    .spec
                    .laddrs
                    .iter()
                    .find(|l| l.is_ipv6() == dest.addr.is_ipv6())
                    .map(|&l| crate::flow::to_v6(l))
                    .ok_or(DropReason::Unsupported)?,
                _ => core::net::Ipv6Addr::UNSPECIFIED,
            },
        };
        let timeout = self.config.timeouts_for(service).of(conn_state);
        let id = self
            .conns
            .insert(info.key, reply, data, now, timeout)
            .map_err(|e| match e {
                crate::conn::InsertError::Full => DropReason::ConnTableFull,
                _ => DropReason::NoConnection,
            })?;
        let state = self
            .services
            .get_mut(service)
            .ok_or(DropReason::NoService)?;
        state.conns += 1;
        state.stats.conns += 1;
        if let Some(ds) = state.dest_stats.get_mut(dest_idx) {
            ds.conns += 1;
        }
        if let Some(f) = state.facts.get_mut(dest_idx) {
            if conn_state.is_active() {
                f.active += 1;
            } else {
                f.inactive += 1;
            }
        }
        if conn_state.is_active()
            && let Some(c) = self.conns.get_mut(id)
        {
            c.data.flags |= FLAG_ACTIVE;
        }
        refresh_availability(state, dest_idx, dest.upper_threshold, dest.lower_threshold);
        self.bind_new(id, &pick, &svc.spec);
        Ok(id)
    }

    fn drop(&mut self, reason: DropReason) -> Verdict {
        self.drops.count(reason);
        Verdict::Drop(reason)
    }

    /// Removes one connection (e.g. `ipvsadm` deleting it); false if absent.
    pub fn remove_conn(&mut self, id: ConnId) -> bool {
        match self.conns.remove(id) {
            Some(conn) => {
                let now = self.clock;
                forget(
                    &mut self.services,
                    &self.config,
                    &mut self.templates,
                    now,
                    &conn,
                );
                true
            }
            None => false,
        }
    }

    /// The service key of connection data, for listings.
    pub fn service_key(&self, data: &ConnData) -> Option<ServiceKey> {
        self.config
            .service(data.service as usize)
            .map(|s| s.spec.key)
    }
}

/// Rewrites a packet of connection `conn` that came from `dir` and counts
/// it (the worker's fields passed apart, so the entry can stay borrowed
/// from the table).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_conn(
    services: &mut [ServiceState],
    drops: &mut DropCounters,
    ctx: &FwdContext,
    fullnat: &mut FullNatCounters,
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut crate::conn::Conn<ConnData>,
    dir: Direction,
) -> Verdict {
    let len = info.ip_len;
    let (s, d) = (conn.data.service as usize, conn.data.dest as usize);
    let verdict = match dir {
        Direction::FromClient => fwd::to_server(packet, info, conn, ctx, fullnat),
        Direction::FromServer => fwd::to_client(packet, info, conn),
    };
    if let Some(st) = services.get_mut(s) {
        let count = |t: &mut TrafficStats| match dir {
            Direction::FromClient => t.count_in(len),
            Direction::FromServer => t.count_out(len),
        };
        count(&mut st.stats);
        if let Some(ds) = st.dest_stats.get_mut(d) {
            count(ds);
        }
    }
    if let Verdict::Drop(reason) = verdict {
        drops.count(reason);
    }
    verdict
}

/// Whether a client packet on an existing connection starts a new one: a
/// SYN without ACK while the old connection is in TIME_WAIT or CLOSE.
fn starts_over(state: ConnState, l4: L4) -> bool {
    let L4::Tcp(flags) = l4 else {
        return false;
    };
    flags.contains(TcpFlags::SYN)
        && !flags.contains(TcpFlags::ACK)
        && matches!(
            state,
            ConnState::Tcp(crate::conn::TcpState::TimeWait | crate::conn::TcpState::Close)
        )
}
