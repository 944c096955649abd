//! The client's traffic in act two, and the line a second that shows it.
//!
//! A request leaves every 100 ms whatever happened to the ones before (a
//! dead balancer must not slow the loop down, or the takeover gap could
//! not be measured): each is its own curl, its own connection, bounded by
//! `--max-time 1`. Each is recorded with when it started and ended, the
//! backend that answered and the balancer it came through: nginx answers
//! with the source address it saw, which is the balancer's FullNAT local
//! address.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::super::sys::{self, Netns, check_interrupted};
use super::{BACKENDS, LBS, VIP};

/// One request every `PERIOD`.
const PERIOD: Duration = Duration::from_millis(100);

/// One request of the loop; times in seconds since the loop started.
#[derive(Debug, Clone)]
pub(super) struct Req {
    pub(super) start: f64,
    pub(super) end: f64,
    /// HTTP 200 with a body.
    pub(super) ok: bool,
    /// The backend that answered (index into [`BACKENDS`]).
    pub(super) backend: Option<usize>,
    /// The balancer it came through (index into [`LBS`]).
    pub(super) lb: Option<usize>,
}

/// The running loop; stopped (and its requests waited for) on drop.
#[derive(Debug)]
pub(super) struct Load {
    t0: Instant,
    stop: Arc<AtomicBool>,
    reqs: Arc<Mutex<Vec<Req>>>,
    sender: Option<JoinHandle<()>>,
    /// The next second to print a line for.
    next_line: u32,
}

/// One curl from `client`: `(ok, backend, lb)`.
fn request(client: &str) -> (bool, Option<usize>, Option<usize>) {
    let out = sys::output(
        Command::new("ip").args([
            "netns",
            "exec",
            client,
            "curl",
            "-sS",
            "--max-time",
            "1",
            "-w",
            " %{http_code}",
            &format!("http://{VIP}/"),
        ]),
        Duration::from_secs(3),
    );
    let Ok(out) = out else {
        return (false, None, None);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    let ok = out.status.success() && words.len() == 3 && words[2] == "200";
    if !ok {
        return (false, None, None);
    }
    (
        true,
        BACKENDS.iter().position(|b| b.0 == words[0]),
        LBS.iter().position(|l| l.laddr == words[1]),
    )
}

impl Load {
    /// Starts the loop in the namespace `client`.
    pub(super) fn start(client: &Netns) -> Load {
        let t0 = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let (stop2, reqs2, ns) = (stop.clone(), reqs.clone(), client.name.clone());
        let sender = thread::spawn(move || {
            let mut inflight: Vec<JoinHandle<()>> = Vec::new();
            let mut k = 0u32;
            while !stop2.load(Ordering::Relaxed) {
                let due = t0 + PERIOD * k;
                let now = Instant::now();
                if due > now {
                    thread::sleep((due - now).min(Duration::from_millis(20)));
                    continue;
                }
                // Late (a busy machine): the next one now, none skipped
                // in a burst.
                k = k.max((now - t0).as_millis() as u32 / PERIOD.as_millis() as u32) + 1;
                let (reqs, ns) = (reqs2.clone(), ns.clone());
                inflight.push(thread::spawn(move || {
                    let start = t0.elapsed().as_secs_f64();
                    let (ok, backend, lb) = request(&ns);
                    let end = t0.elapsed().as_secs_f64();
                    if let Ok(mut r) = reqs.lock() {
                        r.push(Req {
                            start,
                            end,
                            ok,
                            backend,
                            lb,
                        });
                    }
                }));
                inflight.retain(|h| !h.is_finished());
            }
            for h in inflight {
                let _ = h.join();
            }
        });
        Load {
            t0,
            stop,
            reqs,
            sender: Some(sender),
            next_line: 1,
        }
    }

    /// Seconds since the loop started.
    pub(super) fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// The requests that have ended so far.
    pub(super) fn requests(&self) -> Vec<Req> {
        self.reqs.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The table's header.
    pub(super) fn header() {
        let mut h = String::from("   time |   ok failed |");
        for (b, _) in BACKENDS {
            h += &format!(" {b:>4}");
        }
        h += " |";
        for l in &LBS {
            h += &format!(" {:>4}", l.name);
        }
        println!("{h}");
    }

    /// Prints the line of every second that has passed (the requests
    /// that ended in it), just after the second so that the last of them
    /// are in.
    fn tick(&mut self) {
        while self.now() >= f64::from(self.next_line) + 0.02 {
            let s = f64::from(self.next_line);
            let reqs = self.requests();
            let in_second = reqs.iter().filter(|r| r.end >= s - 1.0 && r.end < s);
            let (mut ok, mut failed) = (0, 0);
            let mut per_b = [0u32; BACKENDS.len()];
            let mut per_lb = [0u32; LBS.len()];
            for r in in_second {
                if r.ok {
                    ok += 1;
                } else {
                    failed += 1;
                }
                if let Some(b) = r.backend {
                    per_b[b] += 1;
                }
                if let Some(l) = r.lb {
                    per_lb[l] += 1;
                }
            }
            let mut l = format!("   {:>2} s | {ok:>4} {failed:>6} |", self.next_line);
            for n in per_b {
                l += &format!(" {n:>4}");
            }
            l += " |";
            for n in per_lb {
                l += &format!(" {n:>4}");
            }
            println!("{l}");
            self.next_line += 1;
        }
    }

    /// Keeps printing its lines for `d` (and a few ms).
    pub(super) fn run_for(&mut self, d: Duration) -> Result<()> {
        // A little over `d`, so that the line of the second it ends on
        // is out before what comes next.
        let end = Instant::now() + d + Duration::from_millis(40);
        self.wait_for(d + Duration::from_secs(1), |_| Instant::now() >= end)?;
        Ok(())
    }

    /// Polls `cond` every 20 ms, printing the lines meanwhile: when it
    /// first held (seconds since the loop started), or None after
    /// `limit`.
    pub(super) fn wait_for(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&Load) -> bool,
    ) -> Result<Option<f64>> {
        let deadline = Instant::now() + limit;
        loop {
            check_interrupted()?;
            self.tick();
            if self.sender.as_ref().is_some_and(JoinHandle::is_finished) {
                bail!("the client's request loop stopped");
            }
            if cond(self) {
                return Ok(Some(self.now()));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the loop and waits for the requests in flight: every
    /// request, in the order they ended.
    pub(super) fn stop(&mut self) -> Vec<Req> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sender.take() {
            let _ = h.join();
        }
        self.requests()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop();
    }
}
