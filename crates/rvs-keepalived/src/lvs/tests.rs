//! The LVS side against rvs_api's fake rvsd: what the table holds as real
//! servers pass and fail their checks, across reloads and at shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_api::fake::{FakeServer, Model};
use rvs_api::{Forward, Request, ServiceEntry, ServiceKey};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::fixtures::{checker, real, vs};
use crate::conf::model::{CheckKind, Config, LbKind, RealServer, Script, VirtualServer};
use crate::control::Control;
use crate::rvsd::Rvsd;

const VIP: &str = "10.0.0.1:80";

fn key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: rvs_api::Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    }
}

/// A loopback port that accepts connections while the returned task runs.
async fn listener() -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    (addr, task)
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A real server at `addr` with a fast TCP_CHECK (no retry).
fn checked(addr: SocketAddr) -> RealServer {
    let mut c = checker(CheckKind::Tcp);
    c.common.connect_timeout = Duration::from_millis(500);
    c.common.retry = 0;
    c.common.warmup = Some(Duration::ZERO);
    real(&addr.to_string(), vec![c])
}

/// A NAT virtual server checked every 100 ms.
fn nat_vs(reals: Vec<RealServer>) -> VirtualServer {
    let mut v = vs(VIP, reals);
    v.kind = LbKind::Nat;
    v.scheduler = "rr".into();
    v.delay_loop = Duration::from_millis(100);
    v
}

fn config(vss: Vec<VirtualServer>) -> Arc<Config> {
    Arc::new(Config {
        virtual_servers: vss,
        ..Config::default()
    })
}

struct Running {
    fake: FakeServer,
    ctl: mpsc::Sender<Control>,
    task: JoinHandle<()>,
}

impl Running {
    fn start_with(model: Model, cfg: Arc<Config>) -> Running {
        let fake = FakeServer::start(model).unwrap();
        let (ctl, rx) = mpsc::channel(4);
        let task = tokio::spawn(super::run(cfg, Rvsd::new(fake.path()), rx));
        Running { fake, ctl, task }
    }

    fn start(cfg: Arc<Config>) -> Running {
        Running::start_with(Model::default(), cfg)
    }

    fn entry(&self) -> Option<ServiceEntry> {
        self.fake
            .model()
            .services
            .into_iter()
            .find(|s| s.service.key == key())
    }

    /// (address, weight) of every real server of the service, sorted.
    fn reals(&self) -> Option<Vec<(SocketAddr, u32)>> {
        let mut v: Vec<_> = self
            .entry()?
            .real_servers
            .iter()
            .map(|r| {
                (
                    SocketAddr::new(r.server.addr, r.server.port),
                    r.server.weight,
                )
            })
            .collect();
        v.sort();
        Some(v)
    }

    /// Waits (at most 5 s) until the real servers are `want`.
    async fn wait_reals(&self, want: &[(SocketAddr, u32)]) {
        let mut want = want.to_vec();
        want.sort();
        let t = Instant::now();
        loop {
            let have = self.reals();
            if have.as_deref() == Some(&want[..]) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "real servers {have:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn dump(&self) -> serde_json::Value {
        let (tx, rx) = oneshot::channel();
        self.ctl.send(Control::Dump(tx)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap()
    }

    async fn stop(self) -> FakeServer {
        self.ctl.send(Control::Shutdown).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("run returns after Shutdown")
            .unwrap();
        self.fake
    }
}

#[tokio::test]
async fn failing_real_server_leaves_and_returns() {
    let (up, _t) = listener().await;
    let down = closed_port();
    let r = Running::start(config(vec![nat_vs(vec![checked(up), checked(down)])]));
    // Not alpha: both start in the table, the dead one leaves.
    r.wait_reals(&[(up, 1)]).await;
    let e = r.entry().unwrap();
    assert_eq!(e.service.scheduler, "rr");
    assert_eq!(e.real_servers[0].server.forward, Forward::Masq);
    let added = r.fake.requests().iter().any(|q| match q {
        Request::Batch { requests } => requests.iter().any(
            |q| matches!(q, Request::AddRealServer { server, .. } if server.port == down.port()),
        ),
        _ => false,
    });
    assert!(
        added,
        "the second real server started up: {:?}",
        r.fake.requests()
    );

    // It comes back when its port listens.
    let l = TcpListener::bind(down).await.unwrap();
    let _t2 = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    r.wait_reals(&[(up, 1), (down, 1)]).await;

    let d = r.dump().await;
    let v = &d["virtual_servers"][0];
    assert_eq!(v["name"], "TCP 10.0.0.1:80");
    assert_eq!(v["quorum_up"], true);
    assert_eq!(v["services"][0]["created"], true);
    let rs = v["real_servers"].as_array().unwrap();
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| r["state"] == "up"));
    let c = &rs[1]["checkers"][0];
    assert_eq!(c["kind"], "TCP_CHECK");
    assert!(c["stats"]["failures"].as_u64().unwrap() >= 1);
    assert!(
        c["stats"]["last_error"]
            .as_str()
            .unwrap()
            .contains("refused")
    );

    // Shutdown removes the service it created.
    let fake = r.stop().await;
    assert!(fake.model().services.is_empty());
}

#[tokio::test]
async fn alpha_and_inhibit() {
    let (up, _t) = listener().await;
    let down = closed_port();
    let mut v = nat_vs(vec![checked(up), checked(down)]);
    v.alpha = true;
    v.delay_loop = Duration::from_millis(300);
    let r = Running::start(config(vec![v]));
    r.wait_reals(&[(up, 1)]).await;
    // The dead one was never added.
    assert!(
        !r.fake
            .requests()
            .iter()
            .any(|q| format!("{q:?}").contains(&format!("port: {}", down.port())))
    );
    r.stop().await;

    let mut v = nat_vs(vec![checked(up), checked(down)]);
    v.real_servers[1].inhibit_on_failure = true;
    v.real_servers[0].weight = 3;
    let r = Running::start(config(vec![v]));
    r.wait_reals(&[(up, 3), (down, 0)]).await;
    r.stop().await;
}

#[tokio::test]
async fn sorry_server_when_all_fail() {
    let down1 = closed_port();
    let down2 = closed_port();
    let mut v = nat_vs(vec![checked(down1), checked(down2)]);
    v.sorry_server = Some(("10.9.0.1".parse().unwrap(), 8080));
    let r = Running::start(config(vec![v]));
    let sorry: SocketAddr = "10.9.0.1:8080".parse().unwrap();
    r.wait_reals(&[(sorry, 1)]).await;
    let d = r.dump().await;
    assert_eq!(d["virtual_servers"][0]["sorry_active"], true);
    assert_eq!(d["virtual_servers"][0]["quorum_up"], false);

    // One real server back: the sorry server leaves.
    let l = TcpListener::bind(down1).await.unwrap();
    let _t = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    r.wait_reals(&[(down1, 1)]).await;
    r.stop().await;
}

#[tokio::test]
async fn reload_keeps_health_and_applies_changes() {
    let (a, _ta) = listener().await;
    let (b, _tb) = listener().await;
    let down = closed_port();
    let no_check = real("10.1.0.9:80", vec![]);
    let v1 = nat_vs(vec![checked(a), checked(down), no_check.clone()]);
    let r = Running::start(config(vec![v1]));
    let nc: SocketAddr = "10.1.0.9:80".parse().unwrap();
    r.wait_reals(&[(a, 1), (nc, 1)]).await;
    let before = r.dump().await;
    let id_a = before["virtual_servers"][0]["real_servers"][0]["checkers"][0]["id"].clone();
    let checks_a =
        before["virtual_servers"][0]["real_servers"][0]["checkers"][0]["stats"]["checks"]
            .as_u64()
            .unwrap();
    let n_requests = r.fake.requests().len();

    // Reload: `a` unchanged, `down` unchanged (stays down, no re-add), the
    // checkless one removed, `b` new, scheduler changed.
    let mut v2 = nat_vs(vec![checked(a), checked(down), checked(b)]);
    v2.scheduler = "wrr".into();
    r.ctl.send(Control::Reload(config(vec![v2]))).await.unwrap();
    r.wait_reals(&[(a, 1), (b, 1)]).await;
    assert_eq!(r.entry().unwrap().service.scheduler, "wrr");

    let after = r.dump().await;
    let ca = &after["virtual_servers"][0]["real_servers"][0]["checkers"][0];
    assert_eq!(ca["id"], id_a, "the unchanged checker task keeps running");
    assert!(ca["stats"]["checks"].as_u64().unwrap() >= checks_a);
    assert_eq!(
        after["virtual_servers"][0]["real_servers"][1]["state"],
        "down"
    );

    let since: Vec<Request> = r.fake.requests()[n_requests..].to_vec();
    let flat: Vec<&Request> = since
        .iter()
        .flat_map(|q| match q {
            Request::Batch { requests } => requests.iter().collect(),
            q => vec![q],
        })
        .collect();
    for q in &flat {
        match q {
            Request::AddRealServer { server, .. } => {
                assert_eq!(server.port, b.port(), "only the new one is added: {flat:?}")
            }
            Request::DeleteRealServer { addr, .. } => {
                assert_eq!(*addr, IpAddr::from([10, 1, 0, 9]), "{flat:?}")
            }
            Request::EditService { .. } | Request::ListServices { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    // Reload without the virtual server: it is deleted.
    r.ctl.send(Control::Reload(config(vec![]))).await.unwrap();
    let t = Instant::now();
    while r.entry().is_some() {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        r.dump().await["virtual_servers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    r.stop().await;
}

#[tokio::test]
async fn existing_service_is_adopted_not_deleted_and_rvsd_loss_is_repaired() {
    let (a, _ta) = listener().await;
    // rvsd already has the service with another scheduler and a stray real
    // server.
    let mut model = Model::default();
    let mut pre = Model::default();
    pre.apply(&Request::AddService {
        service: rvs_api::Service {
            key: key(),
            scheduler: "wlc".into(),
            flags: vec![],
            persistence: None,
            one_packet: false,
        },
    })
    .unwrap();
    pre.apply(&Request::AddRealServer {
        service: key(),
        server: rvs_api::RealServer {
            addr: "10.1.0.50".parse().unwrap(),
            port: 80,
            forward: Forward::Masq,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        },
    })
    .unwrap();
    model.services = pre.services;
    let down = closed_port();
    let r = Running::start_with(model, config(vec![nat_vs(vec![checked(a), checked(down)])]));
    r.wait_reals(&[(a, 1)]).await;
    assert_eq!(r.entry().unwrap().service.scheduler, "rr");
    assert_eq!(
        r.dump().await["virtual_servers"][0]["services"][0]["created"],
        false
    );

    // rvsd loses its table (a restart): the next failed change leads to a
    // full reconcile that restores it.
    r.fake.set_model(Model::default());
    let l = TcpListener::bind(down).await.unwrap();
    let _t = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    r.wait_reals(&[(a, 1), (down, 1)]).await;

    // At exit a service it did not create stays (now it did create it,
    // after the loss, so it goes).
    let fake = r.stop().await;
    assert!(fake.model().services.is_empty());
}

#[tokio::test]
async fn rvsd_restart_with_steady_health_is_repaired() {
    let (a, _ta) = listener().await;
    let r = Running::start(config(vec![nat_vs(vec![checked(a)])]));
    r.wait_reals(&[(a, 1)]).await;
    // rvsd restarts empty while every check keeps passing: no checker
    // event will come, the periodic verification must notice.
    r.fake.set_model(Model::default());
    assert!(r.entry().is_none());
    let t = Instant::now();
    r.wait_reals(&[(a, 1)]).await;
    assert!(t.elapsed() <= super::VERIFY + Duration::from_secs(2));
    assert_eq!(r.entry().unwrap().service.scheduler, "rr");
    // A table in line costs one listing per period, no change.
    let before = r.fake.requests().len();
    tokio::time::sleep(super::VERIFY + Duration::from_millis(500)).await;
    let after = r.fake.requests();
    assert!(
        after[before..]
            .iter()
            .all(|q| matches!(q, Request::ListServices { .. })),
        "{:?}",
        &after[before..]
    );
    let fake = r.stop().await;
    assert!(fake.model().services.is_empty());
}

#[tokio::test]
async fn rvsd_unreachable_at_start_is_retried() {
    let (a, _ta) = listener().await;
    let dir = std::env::temp_dir().join(format!("rvs-ka-lvs-{}", std::process::id()));
    let (ctl, rx) = mpsc::channel(4);
    let sock = dir.with_extension("sock");
    let task = tokio::spawn(super::run(
        config(vec![nat_vs(vec![checked(a)])]),
        Rvsd::new(&sock),
        rx,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // rvsd appears later on that path.
    let fake = FakeServer::start(Model::default()).unwrap();
    std::os::unix::fs::symlink(fake.path(), &sock).unwrap();
    let t = Instant::now();
    while !fake
        .model()
        .services
        .iter()
        .any(|s| s.real_servers.len() == 1)
    {
        assert!(t.elapsed() < Duration::from_secs(5), "not reconciled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ctl.send(Control::Shutdown).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_file(&sock);
    assert!(fake.model().services.is_empty());
}

#[tokio::test]
async fn notify_and_quorum_scripts_run_on_transitions() {
    let port = closed_port();
    let log = std::env::temp_dir().join(format!("rvs-ka-notify-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let say = |what: &str| {
        Some(Script {
            cmd: format!("echo {what} >> {}", log.display()),
            user: None,
        })
    };
    let mut rs = checked(port);
    rs.notify_up = say("rs-up");
    rs.notify_down = say("rs-down");
    let mut v = nat_vs(vec![rs]);
    v.quorum_up = say("quorum-up");
    v.quorum_down = say("quorum-down");
    let r = Running::start(config(vec![v]));
    let lines = || {
        let mut l: Vec<String> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        l.sort();
        l
    };
    async fn wait_lines(lines: impl Fn() -> Vec<String>, want: &[&str]) {
        let t = Instant::now();
        while lines() != want {
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", lines());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    wait_lines(lines, &["quorum-down", "rs-down"]).await;
    let l = TcpListener::bind(port).await.unwrap();
    let _t = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    wait_lines(lines, &["quorum-down", "quorum-up", "rs-down", "rs-up"]).await;
    r.stop().await;
    let _ = std::fs::remove_file(&log);
}
