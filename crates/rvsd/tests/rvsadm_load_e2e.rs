//! rvsd end to end: the service changes under load through rvsadm (run
//! as root) — the live-change test of `live_change_e2e` (which reloads the
//! file with SIGHUP) with every change made by the built `rvsadm` over
//! rvsd's API socket, as an operator would with ipvsadm.
//!
//! FullNAT to four HTTP backends (b4 outside the service at first).
//! `wrk` runs against the VIP for a bounded time while `rvsadm -a` adds b4,
//! `rvsadm -e -w 0` quiesces b2 and `rvsadm -d` removes b3 (its
//! established connections keep flowing, as in LVS). Twice:
//! - keep-alive: zero failed requests (non-2xx or socket errors); the
//!   connections opened before the change keep their backends, the
//!   removed b3 included;
//! - `Connection: close` (a new connection per request): zero failed
//!   requests, and after the change b1 and b4 take most new connections;
//!   then, from client ports rvs has never seen, exactly b1 and b4 in
//!   turn. `rvsadm -L -n` lists what was asked.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::harness::{
    API_OFF, ChangeRun, HttpServer, Rvsd, TempFile, Topo, check_close_run_and_stop,
    check_keepalive_run, live_change_servers, sibling_bin, wrk_with_change, wrr_service,
};
use common::{TIMEOUT, run_with_timeout, unique};

const VIP: &str = "10.0.0.100";
/// How long each wrk run lasts, and when the change comes.
const RUN_SECS: u64 = 5;
const CHANGE_AFTER: Duration = Duration::from_secs(2);

/// The service with `(backend number, weight)` as real servers.
fn service(reals: &[(u8, u32)]) -> String {
    wrr_service(VIP, reals)
}

/// rvsadm on rvsd's socket.
struct Adm {
    bin: PathBuf,
    socket: String,
}

impl Adm {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = run_with_timeout(
            Command::new(&self.bin)
                .args(args)
                .env("RVS_SOCKET", &self.socket),
            TIMEOUT,
        )
        .map_err(|e| format!("rvsadm {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "rvsadm {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The real servers of the service as `-L -n` lists them: (address,
    /// weight).
    fn reals(&self) -> Result<Vec<(String, u32)>, String> {
        let out = self.run(&["-L", "-n"])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f.as_slice() {
                    ["->", addr, "FullNat", w, ..] => Some((addr.to_string(), w.parse().ok()?)),
                    _ => None,
                }
            })
            .collect())
    }

    /// The change, as three commands: b4 added, b2 quiesced, b3 removed.
    fn change(&self) -> Result<(), String> {
        let svc = format!("{VIP}:80");
        self.run(&["-a", "-t", &svc, "-r", "10.0.4.2:80", "-b", "-w", "1"])?;
        self.run(&["-e", "-t", &svc, "-r", "10.0.2.2:80", "-b", "-w", "0"])?;
        self.run(&["-d", "-t", &svc, "-r", "10.0.3.2:80"])?;
        let got = self.reals()?;
        let want: Vec<(String, u32)> = [("10.0.1.2:80", 1), ("10.0.2.2:80", 0), ("10.0.4.2:80", 1)]
            .iter()
            .map(|(a, w)| (a.to_string(), *w))
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        if sorted != want {
            return Err(format!("after the change rvsadm -L -n lists {got:?}"));
        }
        Ok(())
    }

    /// Back to b1, b2, b3 at weight 1.
    fn undo(&self) -> Result<(), String> {
        let svc = format!("{VIP}:80");
        self.run(&["-d", "-t", &svc, "-r", "10.0.4.2:80"])?;
        self.run(&["-e", "-t", &svc, "-r", "10.0.2.2:80", "-b", "-w", "1"])?;
        self.run(&["-a", "-t", &svc, "-r", "10.0.3.2:80", "-b", "-w", "1"])?;
        Ok(())
    }
}

/// Runs wrk (with `extra` arguments) for RUN_SECS; after CHANGE_AFTER,
/// makes the change with rvsadm. Returns wrk's summary and the
/// backends' request counts just before the change, just after it (once
/// connections opened before it are done) and at the end.
fn run_with_change(
    t: &Topo,
    rvsd: &mut Rvsd,
    adm: &Adm,
    servers: &[HttpServer],
    extra: &[&str],
) -> ChangeRun {
    wrk_with_change(t, VIP, (RUN_SECS, CHANGE_AFTER), servers, extra, || {
        if let Err(e) = adm.change() {
            rvsd.fail(&e);
        }
    })
}

#[test]
fn rvsadm_change_under_load() {
    let t = Topo::new(4, false);
    // The client's ports for the runs under load: see
    // `live_change_servers`.
    let servers = live_change_servers(&t);
    let socket = format!("/tmp/rvs-e2e-{}.sock", unique("ld"));
    let api = format!("[api]\nsocket = \"{socket}\"\n\n");
    let head = t.config_head("af_xdp").replacen(API_OFF, &api, 1);
    let before = head + &service(&[(1, 1), (2, 1), (3, 1)]);
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &before);
    let _sock = TempFile(socket.clone());
    t.warm_up(&mut rvsd, false);
    let adm = Adm {
        bin: sibling_bin("rvsadm"),
        socket,
    };

    // Keep-alive: the 8 connections are spread over b1..b3 before the
    // change and stay where they are.
    let run = run_with_change(&t, &mut rvsd, &adm, &servers, &[]);
    check_keepalive_run(&mut rvsd, run);

    // Back to the first configuration, then the same change with a new
    // connection per request.
    if let Err(e) = adm.undo() {
        rvsd.fail(&e);
    }
    thread::sleep(Duration::from_millis(200));
    let run = run_with_change(&t, &mut rvsd, &adm, &servers, &["-H", "Connection: close"]);
    check_close_run_and_stop(&t, VIP, &mut rvsd, &servers, run);
}
