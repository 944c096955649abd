//! `rvsd --config FILE [--check]`: the rvs daemon.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT) or a successful
//! `--check`; 2 for a configuration error (printed to stderr as
//! `rvsd: FILE: key.path: what was expected`; nothing is started); 1 when
//! the system refuses something (a socket, an XDP attach). SIGHUP re-reads
//! the file and publishes the new services, addresses and routes to the
//! workers (ports need a restart).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use rvsd::config::{self, Daemon};
use rvsd::daemon::{self, StartError};
use rvsd::shared::WorkerStats;

/// The rvs load balancer daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn load(path: &PathBuf) -> Result<Daemon, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    config::load(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn summary(stats: &[Arc<WorkerStats>]) {
    for s in stats {
        let (rx, tx) = s
            .ports
            .iter()
            .fold((0, 0), |(r, t), p| (r + p.io.rx_frames, t + p.io.tx_frames));
        tracing::info!(
            worker = s.worker,
            rx,
            tx,
            connections = s.connections,
            lb_drops = s.lb_drops.total(),
            stack_drops = s.stack.drops.total(),
            io_drops = s.drops.total(),
            arp_replies = s.stack.arp_replies_sent,
            echo_replies = s.stack.echo_replies,
            to_kernel = s.stack.to_kernel,
            from_kernel = s.stack.from_kernel,
            forwarded = s.stack.forwarded,
            "worker counters"
        );
        if s.redirect != rvsd::redirect::RedirectStats::default() {
            let r = &s.redirect;
            tracing::info!(
                worker = s.worker,
                redirected = r.redirected,
                from_peers = r.received,
                learn_copies = r.learn_copies,
                to_tap_owner = r.to_tap_owner,
                ring_full = r.ring_full,
                undeliverable = r.undeliverable,
                "worker redirects"
            );
        }
        for (r, n) in s
            .drops
            .iter()
            .chain(s.lb_drops.iter())
            .chain(s.stack.drops.iter())
        {
            if n > 0 {
                tracing::info!(worker = s.worker, reason = r.as_str(), n, "drops");
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let d = match load(&args.config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rvsd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!(
            "{}: ok ({} ports, {} services)",
            args.config.display(),
            d.stack.ports.len(),
            d.lb.services().len()
        );
        return ExitCode::SUCCESS;
    }
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(flag)) {
            eprintln!("rvsd: signal {sig}: {e}");
            return ExitCode::from(1);
        }
    }
    let owned = daemon::owned_addresses(&d);
    let (workers, services) = (d.daemon.workers, d.lb.services().len());
    let cores = d.daemon.cores.clone();
    let running = match daemon::start(d) {
        Ok(r) => r,
        Err(StartError::Config(e)) => {
            eprintln!("rvsd: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
        Err(StartError::Io(e)) => {
            eprintln!("rvsd: {e}");
            return ExitCode::from(1);
        }
    };
    let ports: Vec<String> = running
        .ports
        .iter()
        .map(|p| {
            let mac = p
                .mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            match &p.xdp {
                Some(m) => format!(
                    "{} ({:?}, xdp {m}, {mac}, mtu {})",
                    p.name, p.backend, p.mtu
                ),
                None => format!("{} ({:?}, {mac}, mtu {})", p.name, p.backend, p.mtu),
            }
        })
        .collect();
    tracing::info!(
        workers,
        cores = ?cores,
        ports = ?ports,
        taps = ?running.taps,
        services,
        addresses = ?owned,
        "rvsd started"
    );
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if hup.swap(false, Ordering::Relaxed) {
            match load(&args.config).map_err(|e| e.to_string()).and_then(|d| {
                let n = d.lb.services().len();
                running.reload(d).map(|()| n).map_err(|e| e.to_string())
            }) {
                Ok(n) => tracing::info!(services = n, "configuration reloaded"),
                Err(e) => tracing::error!("reload refused, configuration unchanged: {e}"),
            }
        }
    }
    tracing::info!("stopping");
    let stats = running.stop();
    summary(&stats);
    tracing::info!("rvsd stopped");
    ExitCode::SUCCESS
}
