//! The virtual servers at run time: their health state, their checker
//! tasks, and what has been applied to rvsd for each of their services.
//!
//! The manager is owned by one task ([`super::run`]); checker tasks only
//! send it events, so the state needs no locks. After a burst of events it
//! syncs every touched virtual server once. A virtual server whose last
//! sync failed (rvsd down, restarted, or changed behind our back) is
//! marked for a full reconcile, retried until it succeeds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rvs_api::{LocalAddr, Request, Service, ServiceKey};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::state::{Action, CheckState, QuorumConf, RsState, Sorry, VsState};
use super::sync::{self, Table};
use super::translate;
use crate::check::CheckSpec;
use crate::check::retry::Start;
use crate::check::runner::{CheckerTask, Event};
use crate::conf::model::{Config, RealServer, Script, VirtualServer};
use crate::rvsd::Rvsd;

/// How long scripts run at shutdown may take (keepalived: one second).
const SHUTDOWN_SCRIPT_LIMIT: Duration = Duration::from_secs(1);

/// One service of a virtual server, as applied to rvsd.
#[derive(Debug)]
pub(super) struct KeyRun {
    /// The service as it should be.
    pub(super) service: Service,
    /// Whether we added it to rvsd (then we remove it at exit).
    pub(super) created: bool,
    /// What rvsd holds for it after our last successful change (`None`:
    /// unknown, a full reconcile is due).
    pub(super) applied: Option<Table>,
}

/// A virtual server at run time.
#[derive(Debug)]
pub(super) struct VsRun {
    /// Its configuration.
    pub(super) conf: VirtualServer,
    /// Its name in logs.
    pub(super) name: String,
    /// Its services.
    pub(super) keys: Vec<KeyRun>,
    /// Its local addresses (FullNAT/SNAT).
    pub(super) laddrs: Vec<LocalAddr>,
    /// Its health.
    pub(super) state: VsState,
    /// Its last sync failure, while it lasts.
    trouble: Trouble,
}

impl VsRun {
    fn same_vs(&self, vs: &VirtualServer) -> bool {
        self.conf.addr == vs.addr && self.conf.protocol == vs.protocol
    }

    fn needs_reconcile(&self) -> bool {
        self.keys.iter().any(|k| k.applied.is_none())
    }

    fn forget_applied(&mut self) {
        for k in &mut self.keys {
            k.applied = None;
        }
    }
}

/// What a reload has not carried over (yet): checker tasks and services.
#[derive(Debug)]
struct Leftovers {
    tasks: HashMap<u64, CheckerTask>,
    keys: Vec<KeyRun>,
}

/// Everything the LVS side runs.
#[derive(Debug)]
pub(super) struct Manager {
    rvsd: Rvsd,
    /// Virtual servers in configuration order.
    pub(super) vss: Vec<VsRun>,
    /// Checker tasks by id.
    pub(super) tasks: HashMap<u64, CheckerTask>,
    tx: UnboundedSender<Event>,
    rx: UnboundedReceiver<Event>,
    next_id: u64,
    /// Why rvsd cannot be listed, while it cannot.
    list_trouble: Trouble,
}

impl Manager {
    pub(super) fn new(rvsd: Rvsd) -> Manager {
        let (tx, rx) = unbounded_channel();
        Manager {
            rvsd,
            vss: Vec::new(),
            tasks: HashMap::new(),
            tx,
            rx,
            next_id: 1,
            list_trouble: Trouble::default(),
        }
    }

    /// Waits for the next checker event.
    pub(super) async fn next_event(&mut self) -> Event {
        // The manager holds a sender, so the channel never closes.
        match self.rx.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// Adopts `cfg`: at start, or on reload keeping the health and checker
    /// tasks of what is unchanged. Then reconciles rvsd.
    pub(super) async fn configure(&mut self, cfg: Arc<Config>) {
        let mut old_vss = std::mem::take(&mut self.vss);
        let mut left = Leftovers {
            tasks: std::mem::take(&mut self.tasks),
            keys: Vec::new(),
        };
        for vs in &cfg.virtual_servers {
            let name = translate::vs_name(vs);
            let (keys, laddrs) = match (
                translate::service_keys(vs, &cfg),
                translate::local_addrs(vs, &cfg),
            ) {
                (Ok(k), Ok(l)) => (k, l),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!("virtual_server {name} ({}): {e}; skipped", vs.loc);
                    continue;
                }
            };
            let old = old_vss
                .iter()
                .position(|o| o.same_vs(vs))
                .map(|i| old_vss.swap_remove(i));
            let run = self.build(vs, name, keys, laddrs, old, &mut left);
            self.vss.push(run);
        }
        for old in old_vss {
            tracing::info!("virtual server {} removed", old.name);
            notify_removed(&old, |_| false);
            left.keys.extend(old.keys);
        }
        // Checkers left over are no longer configured: dropping them stops
        // them.
        drop(left.tasks);
        for k in left.keys {
            self.remove_key(k.service.key, k.created, k.applied.as_ref())
                .await;
        }
        for v in &mut self.vss {
            v.forget_applied();
        }
        self.reconcile().await;
    }

    /// The run-time state of `vs`, carrying over `old`'s health, checker
    /// tasks and services where the configuration is unchanged.
    fn build(
        &mut self,
        vs: &VirtualServer,
        name: String,
        keys: Vec<ServiceKey>,
        laddrs: Vec<LocalAddr>,
        old: Option<VsRun>,
        left: &mut Leftovers,
    ) -> VsRun {
        let rss = vs
            .real_servers
            .iter()
            .map(|rs| {
                let old_rs = old
                    .as_ref()
                    .and_then(|o| o.state.rs.iter().find(|r| r.key() == (rs.ip, rs.port)));
                let checks = self.checks_for(rs, vs, old_rs, &mut left.tasks);
                let inhibit = rs.inhibit_on_failure || vs.inhibit_on_failure;
                RsState::new(translate::real_server(rs, vs), inhibit, checks)
            })
            .collect();
        if let Some(o) = &old {
            notify_removed(o, |k| vs.real_servers.iter().any(|n| (n.ip, n.port) == k));
        }
        let sorry = translate::sorry_server(vs).map(|dest| Sorry {
            dest,
            inhibit: vs.sorry_server_inhibit,
        });
        let conf = QuorumConf {
            quorum: vs.quorum,
            hysteresis: vs.hysteresis,
        };
        let previous = old.as_ref().map(|o| o.state.quorum_up());
        let (state, actions) = VsState::start(rss, sorry, conf, previous);
        let old_keys = old.map(|o| o.keys).unwrap_or_default();
        let run = VsRun {
            conf: vs.clone(),
            name,
            keys: carry_keys(vs, keys, old_keys, &mut left.keys),
            laddrs,
            state,
            trouble: Trouble::default(),
        };
        perform(&run, &actions);
        run
    }

    /// The checkers of real server `rs`: those of `old` whose resolved
    /// spec is unchanged keep their task and verdict (taken from
    /// `tasks`); the others start, up unless `alpha`, as fresh checkers
    /// unless they join a real server that is alive (see
    /// [`Start`]).
    fn checks_for(
        &mut self,
        rs: &RealServer,
        vs: &VirtualServer,
        old: Option<&RsState>,
        tasks: &mut HashMap<u64, CheckerTask>,
    ) -> Vec<CheckState> {
        let mut old_checks: Vec<CheckState> = old.map(|r| r.checks.clone()).unwrap_or_default();
        let mut checks = Vec::with_capacity(rs.checkers.len());
        for c in &rs.checkers {
            let spec = CheckSpec::new(c, rs, vs);
            let kept = old_checks
                .iter()
                .position(|oc| tasks.get(&oc.id).is_some_and(|t| *t.spec == spec))
                .map(|i| old_checks.swap_remove(i));
            if let Some(oc) = kept
                && let Some(t) = tasks.remove(&oc.id)
            {
                self.tasks.insert(oc.id, t);
                checks.push(oc);
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let start = match old {
                Some(r) if r.alive() => Start::Joining,
                _ => Start::Fresh { up: !vs.alpha },
            };
            let task = CheckerTask::spawn(id, spec, start, self.tx.clone());
            checks.push(CheckState {
                id,
                up: task.stats().up,
                weight: None,
            });
            self.tasks.insert(id, task);
        }
        checks
    }

    /// Takes one checker event and any others already queued, then syncs
    /// what they changed.
    pub(super) async fn on_events(&mut self, first: Event) {
        let mut touched = vec![false; self.vss.len()];
        let mut ev = Some(first);
        while let Some(e) = ev {
            if let Some(i) = self.vss.iter().position(|v| v.state.has_check(e.id)) {
                let v = &mut self.vss[i];
                let actions = v.state.on_check(e.id, e.up, e.weight, e.first_down);
                perform(v, &actions);
                touched[i] = true;
            }
            ev = self.rx.try_recv().ok();
        }
        for (i, t) in touched.into_iter().enumerate() {
            if t {
                self.sync_one(i).await;
            }
        }
        if self.vss.iter().any(VsRun::needs_reconcile) {
            self.reconcile().await;
        }
    }

    /// Applies the difference between what was applied and what is wanted
    /// for virtual server `i`.
    async fn sync_one(&mut self, i: usize) {
        let v = &mut self.vss[i];
        if v.needs_reconcile() {
            return;
        }
        let dests = v.state.desired();
        let mut reqs = Vec::new();
        let mut wants = Vec::with_capacity(v.keys.len());
        for k in &v.keys {
            let want = sync::table(&k.service.key, dests.iter().copied());
            if let Some(a) = &k.applied {
                reqs.extend(sync::diff(&k.service.key, a, &want));
            }
            wants.push(want);
        }
        match sync::apply(&self.rvsd, reqs).await {
            Ok(()) => {
                for (k, w) in v.keys.iter_mut().zip(wants) {
                    k.applied = Some(w);
                }
            }
            Err(e) => {
                v.trouble.fail(&v.name, &format!("{e:#}"));
                v.forget_applied();
            }
        }
    }

    /// Compares everything with rvsd's listing and repairs what differs
    /// (rvsd restarted, or its table was changed behind our back).
    pub(super) async fn verify(&mut self) {
        for v in &mut self.vss {
            v.forget_applied();
        }
        self.reconcile().await;
    }

    /// Brings every virtual server that needs it in line with rvsd's
    /// listing. Those that fail stay marked and are retried later.
    pub(super) async fn reconcile(&mut self) {
        if !self.vss.iter().any(VsRun::needs_reconcile) {
            return;
        }
        let have = match sync::list(&self.rvsd).await {
            Ok(h) => h,
            Err(e) => {
                let e = format!("{e:#}");
                self.list_trouble.fail("listing rvsd's services", &e);
                return;
            }
        };
        self.list_trouble.clear("listing rvsd's services");
        for v in self.vss.iter_mut().filter(|v| v.needs_reconcile()) {
            let dests = v.state.desired();
            let mut reqs = Vec::new();
            let mut wants = Vec::with_capacity(v.keys.len());
            let mut absent = Vec::with_capacity(v.keys.len());
            for k in &v.keys {
                let want = sync::table(&k.service.key, dests.iter().copied());
                let entry = have.iter().find(|e| e.service.key == k.service.key);
                reqs.extend(sync::plan(&k.service, &v.laddrs, &want, entry));
                absent.push(entry.is_none());
                wants.push(want);
            }
            let changes = reqs.len();
            match sync::apply(&self.rvsd, reqs).await {
                Ok(()) => {
                    for ((k, w), a) in v.keys.iter_mut().zip(wants).zip(absent) {
                        k.applied = Some(w);
                        k.created |= a;
                    }
                    if changes > 0 {
                        tracing::info!("{}: in line with rvsd ({changes} changes)", v.name);
                    }
                    v.trouble.clear(&v.name);
                }
                Err(e) => v.trouble.fail(&v.name, &format!("{e:#}")),
            }
        }
    }

    /// Removes service `key` we no longer configure: the whole service if
    /// we created it, else only the destinations we put there.
    async fn remove_key(&self, key: ServiceKey, created: bool, applied: Option<&Table>) {
        let reqs = if created {
            vec![Request::DeleteService { service: key }]
        } else {
            applied
                .map(|a| sync::diff(&key, a, &Table::new()))
                .unwrap_or_default()
        };
        if let Err(e) = sync::apply(&self.rvsd, reqs).await {
            tracing::warn!("removing {key}: {e}");
        }
    }

    /// Stops every checker and removes the services we created; with
    /// `omega`, runs the down scripts first.
    pub(super) async fn shutdown(&mut self) {
        self.tasks.clear();
        let mut scripts = Vec::new();
        for v in self.vss.iter().filter(|v| v.conf.omega) {
            for (r, c) in v.state.rs.iter().zip(&v.conf.real_servers) {
                if r.alive() {
                    scripts.extend(c.notify_down.clone());
                }
            }
            if v.state.quorum_up() {
                scripts.extend(v.conf.quorum_down.clone());
            }
        }
        let mut running = tokio::task::JoinSet::new();
        for s in scripts {
            running.spawn(async move { crate::notify::run(&s, &[], SHUTDOWN_SCRIPT_LIMIT).await });
        }
        while running.join_next().await.is_some() {}
        for v in std::mem::take(&mut self.vss) {
            for k in v.keys {
                if k.created {
                    self.remove_key(k.service.key, true, None).await;
                }
            }
        }
    }
}

/// The services of `vs`: those `old` had keep what we know of them (who
/// created them, what was applied); the old ones no longer wanted go to
/// `gone`.
fn carry_keys(
    vs: &VirtualServer,
    keys: Vec<ServiceKey>,
    mut old: Vec<KeyRun>,
    gone: &mut Vec<KeyRun>,
) -> Vec<KeyRun> {
    let kept = keys
        .into_iter()
        .map(|key| {
            let service = translate::service(vs, key);
            match old.iter().position(|k| k.service.key == key) {
                Some(i) => KeyRun {
                    service,
                    ..old.swap_remove(i)
                },
                None => KeyRun {
                    service,
                    created: false,
                    applied: None,
                },
            }
        })
        .collect();
    gone.extend(old);
    kept
}

/// Runs notify_down for the alive real servers of `old` that `still`
/// does not keep (keepalived does when a reload removes them).
fn notify_removed(old: &VsRun, still: impl Fn((IpAddr, u16)) -> bool) {
    for (r, c) in old.state.rs.iter().zip(&old.conf.real_servers) {
        if r.alive() && !still(r.key()) {
            run_script(c.notify_down.as_ref());
        }
    }
}

/// Logs what happened to virtual server `v` and runs its scripts.
fn perform(v: &VsRun, actions: &[Action]) {
    for a in actions {
        match *a {
            Action::RsUp(i) | Action::RsDown(i) => {
                let up = matches!(a, Action::RsUp(_));
                let Some(rs) = v.conf.real_servers.get(i) else {
                    continue;
                };
                tracing::info!(
                    "{}: real server {} {}",
                    v.name,
                    std::net::SocketAddr::new(rs.ip, rs.port),
                    if up { "up" } else { "down" }
                );
                run_script(if up { &rs.notify_up } else { &rs.notify_down }.as_ref());
            }
            Action::QuorumUp => {
                tracing::info!(
                    "{}: quorum gained (weight {})",
                    v.name,
                    v.state.weight_sum()
                );
                run_script(v.conf.quorum_up.as_ref());
            }
            Action::QuorumDown => {
                tracing::warn!("{}: quorum lost (weight {})", v.name, v.state.weight_sum());
                run_script(v.conf.quorum_down.as_ref());
            }
        }
    }
}

/// Starts a notify script, if one is configured, as its user.
fn run_script(script: Option<&Script>) {
    if let Some(s) = script {
        crate::notify::spawn(s, &[]);
    }
}

/// A failure that repeats every retry while rvsd is down or refuses a
/// change: logged when it starts or changes, and its end once, rather
/// than every second.
#[derive(Debug, Default)]
struct Trouble(Option<String>);

impl Trouble {
    /// `what` failed with `error`; it will be retried.
    fn fail(&mut self, what: &str, error: &str) {
        if self.0.as_deref() != Some(error) {
            tracing::warn!("{what}: {error}; will retry");
            self.0 = Some(error.to_string());
        }
    }

    /// `what` succeeded.
    fn clear(&mut self, what: &str) {
        if self.0.take().is_some() {
            tracing::info!("{what}: works again");
        }
    }
}
