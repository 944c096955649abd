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

use std::thread;
use std::time::Duration;

use common::harness::{
    ChangeRun, HttpServer, Rvsd, TempFile, Topo, check_close_run_and_stop, check_keepalive_run,
    live_change_servers, wrk_with_change, wrr_service,
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
    // The client's ports for the runs under load: see
    // `live_change_servers`.
    let servers = live_change_servers(&t);
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
