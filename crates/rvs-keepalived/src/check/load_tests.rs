//! Thousands of checkers on one runtime keep their delay_loop.
//!
//! 2000 TCP_CHECKs, each every second, against 100 loopback listeners in
//! the process, for several seconds: every checker must have run about
//! once a second, none may have failed, and every attempt must have
//! started close to when it was due. The lateness figures are printed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::retry::Start;
use super::runner::CheckerTask;
use super::testutil::spec;
use crate::conf::model::CheckKind;

const CHECKERS: usize = 2000;
const LISTENERS: usize = 100;
const RUN: Duration = Duration::from_secs(6);
/// The bound on any attempt's lateness: a tenth of the delay_loop (the
/// machine running the tests is small and shared).
const MAX_LATE: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_checks_keep_their_cadence() {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for _ in 0..LISTENERS {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(l.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        });
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tasks: Vec<CheckerTask> = (0..CHECKERS)
        .map(|i| {
            let mut s = spec(CheckKind::Tcp, addrs[i % LISTENERS]);
            s.delay_loop = Duration::from_secs(1);
            s.connect_timeout = Duration::from_secs(1);
            CheckerTask::spawn(i as u64, s, Start::Fresh { up: true }, tx.clone())
        })
        .collect();
    tokio::time::sleep(RUN).await;
    let stats: Vec<_> = tasks.iter().map(CheckerTask::stats).collect();
    drop(tasks);

    let checks: u64 = stats.iter().map(|s| s.checks).sum();
    let failures: u64 = stats.iter().map(|s| s.failures).sum();
    let min_checks = stats.iter().map(|s| s.checks).min().unwrap_or(0);
    let max_late = stats.iter().map(|s| s.max_lateness_us).max().unwrap_or(0);
    let mean_late = stats.iter().map(|s| s.total_lateness_us).sum::<u64>() / checks.max(1);
    println!(
        "{CHECKERS} TCP checkers, delay_loop 1 s, {RUN:?}: {checks} checks ({:.0}/s), \
         {failures} failures, fewest per checker {min_checks}, lateness max {:.1} ms, mean {:.2} ms",
        checks as f64 / RUN.as_secs_f64(),
        max_late as f64 / 1000.0,
        mean_late as f64 / 1000.0,
    );
    assert_eq!(failures, 0, "{:?}", stats.iter().find(|s| s.failures > 0));
    assert!(rx.try_recv().is_err(), "no verdict changed");
    // The first check comes within 1 s of the start, then one a second.
    assert!(
        min_checks >= RUN.as_secs() - 1,
        "a checker fell behind: {min_checks} checks"
    );
    assert!(
        max_late <= MAX_LATE.as_micros() as u64,
        "an attempt started {max_late} us late"
    );
}
