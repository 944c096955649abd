//! VRRP v2 and v3 (RFC 3768, RFC 5798), IPv4 and IPv6, multicast and
//! unicast, interoperable with keepalived (checked against Debian's
//! keepalived 2.2.7 on the wire).
//!
//! # Where VRRP travels
//!
//! Through the kernel, on rvsd's TAP for the port (DPVS's KNI model):
//! rvsd hands the kernel everything its balancer does not handle,
//! multicast included, so adverts to 224.0.0.18 / ff02::12 arrive on the
//! TAP, and what the kernel writes to the TAP leaves the port with the
//! port's MAC. An instance opens a raw IP socket (protocol 112) bound to
//! that TAP ([`socket`]); the TAP carries the same IPv4 address as rvsd's
//! interface address, which is the adverts' source (or `unicast_src_ip` /
//! `mcast_src_ip`; the link-local address for IPv6).
//!
//! `interface` in a `vrrp_instance` may name the TAP or the rvsd port
//! (rvsd's `ListLinks` maps one to the other); a name rvsd does not know
//! is taken as a plain kernel interface, so rvs-keepalived also runs
//! VRRP without rvsd ([`vips`]).
//!
//! # VIPs
//!
//! On MASTER each VIP is added to rvsd (`AddAddr` on the port; rvsd then
//! answers ARP / ND for it and sends one gratuitous ARP / unsolicited NA
//! itself), or with `ip addr add` to a plain kernel interface. Then
//! rvs-keepalived sends `garp_master_repeat` gratuitous ARPs (IPv6:
//! unsolicited NAs) per VIP on the interface (the TAP: rvsd forwards a
//! gratuitous ARP for an address it owns), and as many again after
//! `garp_master_delay` ([`announce`]), then, with
//! `garp_master_refresh`, `garp_master_refresh_repeat` of them at that
//! interval for as long as it stays MASTER. While MASTER, an instance asks
//! rvsd every 2 s whether it still holds the VIPs and adds back (and
//! announces) any that are gone (an `rvsip addr del` by hand, an rvsd
//! that lost them). On leaving MASTER (BACKUP,
//! FAULT, stop) the VIPs are removed (`DelAddr` / `ip addr del`).
//!
//! # Parts
//!
//! [`packet`] (the bytes), [`accept`] (which adverts an instance acts
//! on, as keepalived decides), [`machine`] (the state machine, without
//! I/O), [`track`] (scripts and interfaces moving priority or forcing
//! FAULT), [`socket`], [`iface`], [`vips`], [`announce`] (the I/O),
//! [`setup`] (an instance's resolved configuration), [`instance`] (one
//! task per instance), [`sync`] (sync groups). [`run`] starts the
//! instances, relays sync-group orders, reloads and dumps.
//!
//! # Reload
//!
//! An instance whose interface, vrid, version, family, source or
//! unicast-ness is unchanged keeps its state and takes the rest (priority,
//! VIPs, timers, preemption, tracking, scripts) in place; one where these
//! changed is stopped and started anew; a removed one stops as on
//! shutdown (priority-0 advert if MASTER, VIPs removed).

pub(crate) mod accept;
pub(crate) mod announce;
pub(crate) mod iface;
pub(crate) mod instance;
pub(crate) mod machine;
pub(crate) mod packet;
pub(crate) mod setup;
pub(crate) mod socket;
pub(crate) mod sync;
pub(crate) mod track;
pub(crate) mod vips;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::conf::model::Config;
use crate::control::Control;
use crate::rvsd::Rvsd;
use instance::{Cmd, Event};
use setup::Setup;
use sync::{Groups, Order};

/// A running instance task.
struct Running {
    setup: Setup,
    tx: mpsc::Sender<Cmd>,
    task: JoinHandle<()>,
}

/// The instances and what they share.
struct Vrrp {
    rvsd: Rvsd,
    events: mpsc::Sender<Event>,
    running: BTreeMap<String, Running>,
    groups: Groups,
}

/// Runs every `vrrp_instance` of `cfg` until [`Control::Shutdown`].
pub(crate) async fn run(cfg: Arc<Config>, rvsd: Rvsd, mut ctl: mpsc::Receiver<Control>) {
    let (events, mut ev_rx) = mpsc::channel(256);
    let mut v = Vrrp {
        rvsd,
        events,
        running: BTreeMap::new(),
        groups: Groups::new(&cfg.sync_groups),
    };
    for s in Setup::all(&cfg) {
        v.start(s);
    }
    loop {
        tokio::select! {
            c = ctl.recv() => match c {
                None | Some(Control::Shutdown) => {
                    let names: Vec<String> = v.running.keys().cloned().collect();
                    v.stop(names).await;
                    return;
                }
                Some(Control::Reload(cfg)) => v.reload(&cfg).await,
                Some(Control::Dump(tx)) => {
                    let doc = v.dump().await;
                    let _ = tx.send(doc);
                }
            },
            Some(ev) = ev_rx.recv() => v.on_event(&ev).await,
        }
    }
}

impl Vrrp {
    fn start(&mut self, s: Setup) {
        let name = s.name().to_string();
        if self.running.contains_key(&name) {
            tracing::warn!("vrrp_instance {name} defined twice; the first one is used");
            return;
        }
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(instance::run(
            s.clone(),
            self.rvsd.clone(),
            rx,
            self.events.clone(),
        ));
        self.running.insert(name, Running { setup: s, tx, task });
    }

    /// Stops the named instances, all at once, waiting (bounded) for each.
    async fn stop(&mut self, names: Vec<String>) {
        let mut tasks = Vec::new();
        for n in names {
            if let Some(r) = self.running.remove(&n) {
                let _ = r.tx.send(Cmd::Shutdown).await;
                tasks.push((n, r.task));
            }
        }
        for (n, mut t) in tasks {
            if tokio::time::timeout(Duration::from_secs(10), &mut t)
                .await
                .is_err()
            {
                tracing::warn!("({n}) did not stop in time; aborted");
                t.abort();
            }
        }
    }

    async fn reload(&mut self, cfg: &Config) {
        let new: Vec<Setup> = Setup::all(cfg);
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|n| !new.iter().any(|s| s.name() == n.as_str()))
            .cloned()
            .collect();
        self.stop(gone).await;
        let restart: Vec<String> = new
            .iter()
            .filter(|s| {
                self.running
                    .get(s.name())
                    .is_some_and(|r| r.setup.identity() != s.identity())
            })
            .map(|s| s.name().to_string())
            .collect();
        self.stop(restart).await;
        // What the sync groups know of the instances that keep running
        // holds; the others start afresh.
        let kept: Vec<String> = self.running.keys().cloned().collect();
        let groups = std::mem::replace(&mut self.groups, Groups::new(&[]));
        self.groups = groups.reloaded(&cfg.sync_groups, &kept);
        for s in new {
            match self.running.get_mut(s.name()) {
                Some(r) if r.setup != s => {
                    r.setup = s.clone();
                    let _ = r.tx.send(Cmd::Reload(Box::new(s))).await;
                }
                Some(_) => {}
                None => self.start(s),
            }
        }
    }

    async fn dump(&self) -> serde_json::Value {
        let mut out = Vec::new();
        for (name, r) in &self.running {
            let (tx, rx) = oneshot::channel();
            if r.tx.send(Cmd::Dump(tx)).await.is_err() {
                continue;
            }
            match tokio::time::timeout(Duration::from_secs(5), rx).await {
                Ok(Ok(v)) => out.push(v),
                _ => out.push(serde_json::json!({"name": name, "error": "no answer"})),
            }
        }
        serde_json::json!({"instances": out, "sync_groups": self.groups.dump()})
    }

    async fn on_event(&mut self, ev: &Event) {
        let o = self.groups.on_event(ev);
        for (name, order) in o.orders {
            let cmd = match order {
                Order::Follow(s) => Cmd::Follow(s),
                Order::GroupFault(f) => Cmd::GroupFault(f),
            };
            if let Some(r) = self.running.get(&name) {
                let _ = r.tx.send(cmd).await;
            }
        }
        if let Some((gi, st)) = o.group_state
            && let Some(g) = self.groups.group(gi)
        {
            tracing::info!("(sync group {}) Entering {} STATE", g.name, st.name());
            let script = match st {
                machine::State::Master => &g.notify_master,
                machine::State::Backup => &g.notify_backup,
                machine::State::Fault => &g.notify_fault,
                _ => &None,
            };
            if let Some(s) = script {
                crate::notify::spawn(s, &[]);
            }
            if let Some(s) = &g.notify {
                crate::notify::spawn(s, &["GROUP", &g.name, st.name(), "0"]);
            }
        }
    }
}
