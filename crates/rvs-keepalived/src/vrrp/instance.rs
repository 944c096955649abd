//! One `vrrp_instance` as a task: the [`Machine`] fed by its socket, its
//! timers and its trackers, its actions carried out (adverts sent, VIPs
//! added and announced or removed, notify scripts run, the sync group
//! told), orders from [`super::run`] obeyed (reload, dump, sync-group
//! orders, stop).
//!
//! Until its interface exists the instance stays in INIT and retries
//! every second (a TAP appears when rvsd starts); so it does while its
//! IPv6 source is still tentative (a TAP's link-local goes through
//! duplicate address detection for a second or so after it comes up).

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::accept::{self, Arrival, Expect, Reject, Verdict};
use super::iface::Iface;
use super::machine::{Action, Machine, Params, State};
use super::packet::{self, AUTH_NONE, AUTH_PASS, Advert, Path, password_bytes};
use super::setup::Setup;
use super::socket::{self, Received, VrrpSocket};
use super::track::{self, Item, Report, Status, Tracking};
use super::vips::{self, Place, PlacedVip};
use crate::conf::model::{Auth, InitialState};
use crate::rvsd::Rvsd;

/// An order to an instance.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// New settings (same [`super::setup::Identity`]).
    Reload(Box<Setup>),
    /// Answer with the state as JSON.
    Dump(oneshot::Sender<serde_json::Value>),
    /// Sync group: move to MASTER or BACKUP.
    Follow(State),
    /// Sync group: another member is (or no longer is) faulty.
    GroupFault(bool),
    /// Stop (priority-0 advert and VIPs removed if MASTER).
    Shutdown,
}

/// What an instance tells the sync groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The instance.
    pub name: String,
    /// Its state now.
    pub state: State,
    /// Faulty by its own tracking (not by its group).
    pub own_fault: bool,
}

/// Counters of the dump.
#[derive(Debug, Default)]
struct Stats {
    sent: u64,
    received: u64,
    other_vrid: u64,
    rejected: BTreeMap<&'static str, u64>,
    send_errors: u64,
}

/// How often a MASTER checks that rvsd still holds its VIPs.
const VIP_RECHECK: Duration = Duration::from_secs(2);

/// A running instance.
struct Inst {
    setup: Setup,
    rvsd: Rvsd,
    events: mpsc::Sender<Event>,
    place: Place,
    iface: Iface,
    src: IpAddr,
    machine: Machine,
    expect: Expect,
    tracking: Tracking,
    trackers: Vec<JoinHandle<()>>,
    track_tx: mpsc::Sender<Report>,
    vips: Vec<PlacedVip>,
    garp: Option<JoinHandle<()>>,
    stats: Stats,
    start_at: Instant,
    started: bool,
    own_fault: bool,
}

/// Runs one instance until [`Cmd::Shutdown`] (or its sender is gone).
pub(crate) async fn run(
    mut setup: Setup,
    rvsd: Rvsd,
    mut cmds: mpsc::Receiver<Cmd>,
    events: mpsc::Sender<Event>,
) {
    let (track_tx, mut track_rx) = mpsc::channel(64);
    let mut logged = String::new();
    let (mut inst, sock) = loop {
        match Inst::open(&setup, &rvsd, &events, &track_tx).await {
            Ok(x) => break x,
            Err(e) => {
                let msg = format!("({}) cannot start: {e:#}; retrying", setup.name());
                if msg != logged {
                    tracing::error!("{msg}");
                    logged = msg;
                }
            }
        }
        let wait = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                cmd = cmds.recv() => match cmd {
                    None | Some(Cmd::Shutdown) => return,
                    Some(Cmd::Reload(s)) => setup = *s,
                    Some(Cmd::Dump(tx)) => {
                        let _ = tx.send(json!({
                            "name": setup.name(), "state": State::Init.name(),
                            "error": logged,
                        }));
                    }
                    Some(Cmd::Follow(_) | Cmd::GroupFault(_)) => {}
                },
            }
        }
    };
    tracing::info!(
        "({}) on {} ({}), vrid {}, {:?}, from {}",
        inst.setup.name(),
        inst.place.kernel_if(),
        inst.place
            .port()
            .map_or("kernel interface".to_string(), |p| format!("rvsd port {p}")),
        inst.setup.inst.vrid,
        inst.setup.version,
        inst.src
    );
    // While MASTER, rvsd is asked every few seconds whether it still
    // holds the VIPs (an operator's `rvsip addr del`, an rvsd that lost
    // them): what is missing is added back and announced.
    let mut recheck = tokio::time::interval(VIP_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = if inst.started {
            inst.machine.deadline()
        } else if inst.effect().pending {
            None
        } else {
            Some(inst.start_at)
        };
        let sleep = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = sock.recv() => inst.on_packet(&sock, r).await,
            _ = sleep => inst.on_time(&sock).await,
            Some(rep) = track_rx.recv() => inst.on_track(&sock, rep).await,
            _ = recheck.tick() => inst.restore_vips().await,
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Shutdown) => {
                    inst.stop(&sock).await;
                    return;
                }
                Some(Cmd::Reload(s)) => inst.reload(&sock, *s).await,
                Some(Cmd::Dump(tx)) => {
                    let _ = tx.send(inst.dump());
                }
                Some(Cmd::Follow(st)) => {
                    let acts = inst.machine.follow(Instant::now(), st);
                    inst.act(&sock, acts).await;
                }
                Some(Cmd::GroupFault(f)) => {
                    let acts = inst.machine.set_group_fault(Instant::now(), f);
                    inst.act(&sock, acts).await;
                }
            },
        }
    }
}

fn expect_of(s: &Setup) -> Expect {
    let (auth_type, auth_data) = match &s.inst.auth {
        Auth::Pass(p) if s.version == packet::Version::V2 => (AUTH_PASS, password_bytes(p)),
        _ => (AUTH_NONE, [0; 8]),
    };
    Expect {
        version: s.version,
        vrid: s.inst.vrid,
        auth_type,
        auth_data,
        interval_cs: interval_cs(s.inst.advert_int),
        vips: s.advertised(),
        unicast: !s.inst.unicast_peers.is_empty(),
    }
}

fn interval_cs(d: Duration) -> u16 {
    u16::try_from(d.as_millis() / 10).unwrap_or(u16::MAX).max(1)
}

fn params_of(s: &Setup, own_addr: IpAddr) -> Params {
    Params {
        version: s.version,
        adver_int: s.inst.advert_int,
        nopreempt: s.inst.nopreempt,
        preempt_delay: s.inst.preempt_delay,
        start_as_master: s.inst.initial_state == InitialState::Master,
        own_addr,
    }
}

/// The tracked items of `s` on kernel interface `kif`: its scripts, its
/// track_interfaces, and its own interface (weight 0, as keepalived).
fn tracking_of(s: &Setup, kif: &str) -> Tracking {
    let mut items: Vec<Item> = s
        .scripts
        .iter()
        .map(|(sc, w)| Item {
            label: format!("script {}", sc.name),
            weight: *w,
            status: Status::Init,
        })
        .collect();
    let ifs = std::iter::once((kif.to_string(), 0)).chain(
        s.inst
            .track_interfaces
            .iter()
            .map(|t| (t.name.clone(), t.weight)),
    );
    items.extend(ifs.map(|(n, w)| Item {
        label: format!("interface {n}"),
        weight: w,
        status: Status::Init,
    }));
    Tracking { items }
}

impl Inst {
    async fn open(
        setup: &Setup,
        rvsd: &Rvsd,
        events: &mpsc::Sender<Event>,
        track_tx: &mpsc::Sender<Report>,
    ) -> anyhow::Result<(Inst, VrrpSocket)> {
        let place = vips::resolve(rvsd, &setup.inst.interface).await?;
        let iface = Iface::lookup(place.kernel_if())?;
        let v6 = setup.v6();
        let src = setup
            .inst
            .src_ip
            .or_else(|| iface.source(v6))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no {} address to send adverts from",
                    iface.name,
                    if v6 { "IPv6 link-local" } else { "IPv4" }
                )
            })?;
        if let IpAddr::V6(a) = src {
            socket::check_source(iface.index, a)?;
        }
        let multicast = setup.inst.unicast_peers.is_empty();
        let sock = VrrpSocket::open(&iface.name, iface.index, v6, multicast)?;
        let vips = place_vips(rvsd, setup, &place).await?;
        let tracking = tracking_of(setup, &iface.name);
        let base = setup.inst.priority;
        let mut inst = Inst {
            setup: setup.clone(),
            rvsd: rvsd.clone(),
            events: events.clone(),
            expect: expect_of(setup),
            machine: Machine::new(params_of(setup, src), tracking.effect(base).priority),
            place,
            iface,
            src,
            tracking,
            trackers: Vec::new(),
            track_tx: track_tx.clone(),
            vips,
            garp: None,
            stats: Stats::default(),
            start_at: Instant::now() + setup.startup_delay,
            started: false,
            own_fault: false,
        };
        inst.spawn_trackers();
        Ok((inst, sock))
    }

    fn name(&self) -> &str {
        self.setup.name()
    }

    fn spawn_trackers(&mut self) {
        for t in self.trackers.drain(..) {
            t.abort();
        }
        let n = self.setup.scripts.len();
        for (i, (sc, _)) in self.setup.scripts.iter().enumerate() {
            self.trackers
                .push(track::spawn_script(i, sc.clone(), self.track_tx.clone()));
        }
        for (j, it) in self.tracking.items.iter().enumerate().skip(n) {
            let name = it.label.trim_start_matches("interface ").to_string();
            self.trackers
                .push(track::spawn_interface(j, name, self.track_tx.clone()));
        }
    }

    fn effect(&self) -> track::Effect {
        self.tracking.effect(self.setup.inst.priority)
    }

    async fn on_time(&mut self, sock: &VrrpSocket) {
        let now = Instant::now();
        if !self.started {
            if now >= self.start_at && !self.effect().pending {
                self.started = true;
                // As keepalived at start: VIPs left by an earlier run (a
                // crash) go, so only a MASTER ever holds them.
                self.release_vips().await;
                let e = self.effect();
                self.own_fault = e.fault;
                let _ = self.machine.set_fault(now, e.fault);
                let acts = self.machine.start(now);
                self.act(sock, acts).await;
            }
            return;
        }
        let acts = self.machine.tick(now);
        self.act(sock, acts).await;
    }

    async fn on_track(&mut self, sock: &VrrpSocket, (i, st): Report) {
        if !self.tracking.set(i, st) {
            return;
        }
        let e = self.effect();
        if e.priority != self.machine.priority() {
            tracing::info!(
                "({}) effective priority {} -> {}",
                self.name(),
                self.machine.priority(),
                e.priority
            );
            self.machine.set_priority(e.priority);
        }
        if !self.started {
            return;
        }
        let acts = self.machine.set_fault(Instant::now(), e.fault);
        let changed_state = acts.iter().any(|a| matches!(a, Action::Changed(_)));
        if e.fault != self.own_fault {
            self.own_fault = e.fault;
            if !changed_state {
                self.tell_group().await;
            }
        }
        self.act(sock, acts).await;
    }

    async fn on_packet(&mut self, sock: &VrrpSocket, r: io::Result<Received>) {
        let rx = match r {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!("({}) receive: {e}", self.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        };
        if rx.src == self.src {
            return;
        }
        let path = Path {
            src: rx.src,
            dst: rx.dst,
        };
        let advert = match packet::decode(&rx.payload, &path) {
            Ok(a) => a,
            Err(e) => return self.reject(Reject::Decode(e), rx.src),
        };
        let how = Arrival {
            ttl: rx.ttl,
            multicast: rx.dst.is_multicast(),
            check_addrs: !self.setup.skip_check_adv_addr
                || self.machine.master_addr() != Some(rx.src),
        };
        match accept::check(&advert, &how, &self.expect) {
            Verdict::OtherVrid => self.stats.other_vrid += 1,
            Verdict::Reject(r) => self.reject(r, rx.src),
            Verdict::Accept => {
                self.stats.received += 1;
                if !self.started {
                    return;
                }
                let acts =
                    self.machine
                        .advert(Instant::now(), rx.src, advert.priority, advert.interval());
                self.act(sock, acts).await;
            }
        }
    }

    fn reject(&mut self, r: Reject, from: IpAddr) {
        *self.stats.rejected.entry(r.reason()).or_default() += 1;
        tracing::info!("({}) advert from {from} refused: {r}", self.name());
    }

    async fn act(&mut self, sock: &VrrpSocket, acts: Vec<Action>) {
        for a in acts {
            match a {
                Action::Send(prio) => self.send_advert(sock, prio).await,
                Action::TakeVips => self.take_vips().await,
                Action::ReleaseVips => self.release_vips().await,
                Action::Changed(st) => self.changed(st).await,
            }
        }
    }

    async fn send_advert(&mut self, sock: &VrrpSocket, priority: u8) {
        let e = &self.expect;
        let advert = Advert {
            version: e.version,
            vrid: e.vrid,
            priority,
            interval_cs: e.interval_cs,
            addrs: e.vips.clone(),
            auth_type: e.auth_type,
            auth_data: e.auth_data,
        };
        let v6 = self.src.is_ipv6();
        let dsts: Vec<IpAddr> = if self.setup.inst.unicast_peers.is_empty() {
            vec![socket::group(v6)]
        } else {
            self.setup
                .inst
                .unicast_peers
                .iter()
                .copied()
                .filter(|p| p.is_ipv6() == v6)
                .collect()
        };
        for dst in dsts {
            let bytes = advert.encode(&Path { src: self.src, dst });
            match sock.send(self.src, dst, &bytes).await {
                Ok(()) => self.stats.sent += 1,
                Err(e) => {
                    self.stats.send_errors += 1;
                    tracing::warn!("({}) advert to {dst}: {e}", self.name());
                }
            }
        }
    }

    /// Adds back (and announces) VIPs rvsd lost while this instance is
    /// MASTER.
    async fn restore_vips(&mut self) {
        if self.machine.state() != State::Master {
            return;
        }
        let mut restored = false;
        for v in &self.vips {
            if v.missing_from_rvsd(&self.rvsd).await {
                match v.add(&self.rvsd).await {
                    Ok(()) => {
                        tracing::warn!(
                            "({}) {} was gone from rvsd while MASTER: added back",
                            self.setup.name(),
                            v.vip.addr
                        );
                        restored = true;
                    }
                    Err(e) => {
                        tracing::error!("({}) adding {}: {e:#}", self.setup.name(), v.vip.addr)
                    }
                }
            }
        }
        if restored {
            self.announce();
        }
    }

    async fn take_vips(&mut self) {
        for v in &self.vips {
            if let Err(e) = v.add(&self.rvsd).await {
                tracing::error!("({}) adding {}: {e:#}", self.setup.name(), v.vip.addr);
            }
        }
        self.announce();
    }

    /// Gratuitous ARPs / unsolicited NAs: a burst now and one after the
    /// delay, each of `garp_repeat` copies, then `garp_refresh_repeat`
    /// copies every `garp_refresh` while MASTER.
    fn announce(&mut self) {
        if let Some(g) = self.garp.take() {
            g.abort();
        }
        let mut by_if: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for v in &self.vips {
            by_if
                .entry(v.place.kernel_if().to_string())
                .or_default()
                .push(v.vip.addr);
        }
        let mut sends = Vec::new();
        for (name, addrs) in by_if {
            match Iface::lookup(&name) {
                Ok(i) => sends.push((
                    i.index,
                    super::announce::frames(i.mac, i.link_local, &addrs),
                )),
                Err(e) => tracing::warn!("({}) announce on {name}: {e}", self.name()),
            }
        }
        let (repeat, delay) = (self.setup.garp_repeat.max(1), self.setup.garp_delay);
        let refresh = self
            .setup
            .garp_refresh
            .map(|every| (every, self.setup.garp_refresh_repeat.max(1)));
        let name = self.name().to_string();
        self.garp = Some(tokio::spawn(async move {
            let burst = |repeat: u32| {
                for (idx, frames) in &sends {
                    for _ in 0..repeat {
                        if let Err(e) = super::announce::send(*idx, frames) {
                            tracing::warn!("({name}) gratuitous ARP/NA: {e}");
                            return;
                        }
                    }
                }
            };
            burst(repeat);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
                burst(repeat);
            }
            // `garp_master_refresh`: until the task is aborted (leaving
            // MASTER, or a new announcement).
            if let Some((every, n)) = refresh {
                loop {
                    tokio::time::sleep(every).await;
                    burst(n);
                }
            }
        }));
    }

    async fn release_vips(&mut self) {
        if let Some(g) = self.garp.take() {
            g.abort();
        }
        for v in &self.vips {
            if let Err(e) = v.del(&self.rvsd).await {
                tracing::error!("({}) removing {}: {e:#}", self.setup.name(), v.vip.addr);
            }
        }
    }

    async fn changed(&mut self, st: State) {
        tracing::info!("({}) Entering {} STATE", self.name(), st.name());
        let i = &self.setup.inst;
        let script = match st {
            State::Master => &i.notify_master,
            State::Backup => &i.notify_backup,
            State::Fault => &i.notify_fault,
            State::Stop => &i.notify_stop,
            State::Init => &None,
        };
        if let Some(s) = script {
            crate::notify::spawn(s, &[]);
        }
        if let Some(s) = &i.notify {
            let prio = self.machine.priority().to_string();
            crate::notify::spawn(s, &["INSTANCE", &i.name, st.name(), &prio]);
        }
        self.tell_group().await;
    }

    async fn tell_group(&self) {
        let _ = self
            .events
            .send(Event {
                name: self.name().to_string(),
                state: self.machine.state(),
                own_fault: self.own_fault,
            })
            .await;
    }

    async fn stop(&mut self, sock: &VrrpSocket) {
        for t in self.trackers.drain(..) {
            t.abort();
        }
        let acts = self.machine.stop();
        self.act(sock, acts).await;
    }

    async fn reload(&mut self, sock: &VrrpSocket, new: Setup) {
        if new == self.setup {
            return;
        }
        let master = self.machine.state() == State::Master;
        let new_vips = match place_vips(&self.rvsd, &new, &self.place).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("({}) reload: {e:#}; VIPs unchanged", self.name());
                self.vips.clone()
            }
        };
        if master {
            for v in self.vips.iter().filter(|v| !new_vips.contains(v)) {
                if let Err(e) = v.del(&self.rvsd).await {
                    tracing::error!("({}) removing {}: {e:#}", self.name(), v.vip.addr);
                }
            }
            for v in new_vips.iter().filter(|v| !self.vips.contains(v)) {
                if let Err(e) = v.add(&self.rvsd).await {
                    tracing::error!("({}) adding {}: {e:#}", self.name(), v.vip.addr);
                }
            }
        }
        let tracks_changed = new.scripts != self.setup.scripts
            || new.inst.track_interfaces != self.setup.inst.track_interfaces;
        self.vips = new_vips;
        self.expect = expect_of(&new);
        self.machine.set_params(params_of(&new, self.src));
        self.setup = new;
        if tracks_changed {
            self.tracking = tracking_of(&self.setup, &self.iface.name);
            self.spawn_trackers();
        }
        let e = self.effect();
        self.machine.set_priority(e.priority);
        tracing::info!("({}) reloaded, priority {}", self.name(), e.priority);
        if master && self.machine.state() == State::Master {
            // Tell the segment at once (new VIPs, new priority).
            let prio = self.machine.priority();
            self.send_advert(sock, prio).await;
            self.announce();
        }
    }

    fn dump(&self) -> serde_json::Value {
        let m = &self.machine;
        json!({
            "name": self.name(),
            "state": m.state().name(),
            "priority": m.priority(),
            "base_priority": self.setup.inst.priority,
            "vrid": self.setup.inst.vrid,
            "version": self.setup.version,
            "interface": self.place.kernel_if(),
            "rvsd_port": self.place.port(),
            "source": self.src,
            "master": m.master_addr(),
            "master_priority": m.master_priority(),
            "master_adver_int_ms": m.master_adver_int().as_millis(),
            "transitions": m.transitions(),
            "adverts_sent": self.stats.sent,
            "adverts_received": self.stats.received,
            "adverts_other_vrid": self.stats.other_vrid,
            "adverts_rejected": self.stats.rejected,
            "send_errors": self.stats.send_errors,
            "vips": self.vips.iter().map(|v| format!("{}/{}", v.vip.addr, v.vip.prefix_len)).collect::<Vec<_>>(),
            "tracking": self.tracking.items,
        })
    }
}

/// Every VIP (advertised and excluded) with where it goes: its own
/// `dev`, else the instance's interface.
async fn place_vips(rvsd: &Rvsd, s: &Setup, default: &Place) -> anyhow::Result<Vec<PlacedVip>> {
    let mut out = Vec::new();
    for v in s.inst.vips.iter().chain(&s.inst.vips_excluded) {
        let place = match &v.dev {
            Some(d) if d != &s.inst.interface => vips::resolve(rvsd, d).await?,
            _ => default.clone(),
        };
        out.push(PlacedVip {
            vip: v.clone(),
            place,
        });
    }
    Ok(out)
}
