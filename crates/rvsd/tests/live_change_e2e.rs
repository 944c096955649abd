//! rvsd end to end: the service changes under load (run as root).
//!
//! FullNAT to four HTTP backends (b4 outside the service at first).
//! `wrk` runs against the VIP for a bounded time while the configuration
//! file is edited and rvsd reloads it (SIGHUP): b4 is added, b2 set to
//! weight 0 (quiescent), b3 removed (without expiry: its established
//! connections keep flowing, as in LVS). Twice:
//! - keep-alive: zero failed requests; the connections opened before the
//!   change keep their backends, the removed b3 included;
//! - `Connection: close` (a new connection per request): zero failed
//!   requests, and after the change new connections go to b1 and b4
//!   and b4 mostly; then, from client ports rvs has never seen, exactly
//!   b1 and b4 in turn.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use common::harness::{
    ChangeRun, HttpServer, Rvsd, TempFile, Topo, check_close_run_and_stop, check_keepalive_run,
    sysctl, wrk_with_change, wrr_service,
};

const VIP: &str = "10.0.0.100";
/// How long each wrk run lasts, and when the change comes.
const RUN_SECS: u64 = 5;
const CHANGE_AFTER: Duration = Duration::from_secs(2);

/// The service with `(backend number, weight)` as real servers.
fn service(reals: &[(u8, u32)]) -> String {
    wrr_service(VIP, reals)
}

/// Runs wrk (with `extra` arguments) for RUN_SECS; after CHANGE_AFTER,
/// writes `after` into `path` and reloads. Returns wrk's summary and the
/// backends' request counts just before the change, just after it (once
/// connections opened before it are done) and at the end.
fn run_with_change(
    t: &Topo,
    rvsd: &mut Rvsd,
    path: &TempFile,
    after: &str,
    servers: &[HttpServer],
    extra: &[&str],
) -> ChangeRun {
    wrk_with_change(t, VIP, (RUN_SECS, CHANGE_AFTER), servers, extra, || {
        std::fs::write(&path.0, after).unwrap();
        rvsd.reload();
    })
}

#[test]
fn live_change_under_load() {
    let t = Topo::new(4, false);
    // rvs does not yet reschedule a SYN that meets one of its connections
    // in TIME_WAIT/CLOSE (IPVS's conn_reuse_mode): such a SYN goes on to
    // the connection's old server, removed or quiescent. At wrk's rate the
    // client's ports wrap around within seconds (Linux picks them with
    // small random steps), so under load some connections after the
    // change still reach b2 and b3. The exact new spread is checked after
    // the runs from client ports rvs has never seen.
    sysctl(&t.client, "net/ipv4/ip_local_port_range", "20000 65535");
    let any = SocketAddr::from(([0, 0, 0, 0], 80));
    let servers: Vec<HttpServer> = t
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| HttpServer::start(b, &format!("b{}", i + 1), any))
        .collect();
    let head = t.config_head("af_xdp");
    let before = head.clone() + &service(&[(1, 1), (2, 1), (3, 1)]);
    let after = head + &service(&[(1, 1), (2, 0), (4, 1)]);
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &before);
    t.warm_up(&mut rvsd, false);

    // Keep-alive: the 8 connections are spread over b1..b3 before the
    // change and stay where they are.
    let run = run_with_change(&t, &mut rvsd, &path, &after, &servers, &[]);
    check_keepalive_run(&mut rvsd, run);

    // Back to the first configuration, then the same change with a new
    // connection per request.
    std::fs::write(&path.0, &before).unwrap();
    rvsd.reload();
    thread::sleep(Duration::from_millis(200));
    let run = run_with_change(
        &t,
        &mut rvsd,
        &path,
        &after,
        &servers,
        &["-H", "Connection: close"],
    );
    check_close_run_and_stop(&t, VIP, &mut rvsd, &servers, run);
}
