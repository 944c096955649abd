//! Instructions per packet, counted by callgrind: a figure that does not
//! move with the machine's load, unlike nanoseconds on shared cores.
//!
//! The `rvs-lb` pipeline benchmark binary has a mode
//! (`--callgrind KIND N`) that sets up a worker, processes `N` packets of
//! one kind and exits. Running it for two values of `N` and dividing the
//! difference in instructions by the difference in packets cancels the
//! setup (configuration, table, handshakes) and process start-up, leaving
//! the cost of one packet — its 46-byte copy into the receive buffer
//! included.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run::{cargo_bin, have};

/// Packet kinds the benchmark binary knows (its `Kind::name`s).
const KINDS: [&str; 6] = [
    "fullnat_established",
    "fullnat_reply",
    "syn_new_connection",
    "nat_established",
    "dr_established",
    "tun_established",
];

/// The two packet counts (multiples of the burst size, at most the
/// binary's pool of fresh SYNs).
const N1: u64 = 1024;
const N2: u64 = 5120;

pub(crate) fn run() -> Result<()> {
    if !have("valgrind") {
        eprintln!("valgrind not found: skipping the instructions-per-packet count");
        return Ok(());
    }
    let exe = bench_executable()?;
    let out_dir = PathBuf::from("target/callgrind");
    std::fs::create_dir_all(&out_dir)?;
    let mut rows = Vec::new();
    for kind in KINDS {
        let a = instructions(&exe, &out_dir, kind, N1)?;
        let b = instructions(&exe, &out_dir, kind, N2)?;
        let per = b.saturating_sub(a) as f64 / (N2 - N1) as f64;
        rows.push((kind, a, b, per));
    }
    println!();
    println!(
        "instructions per packet (callgrind, ({N2} packets − {N1} packets) / {})",
        N2 - N1
    );
    println!(
        "{:<22} {:>14} {:>14} {:>12}",
        "kind", "Ir @N1", "Ir @N2", "Ir/packet"
    );
    for (kind, a, b, per) in rows {
        println!("{kind:<22} {a:>14} {b:>14} {per:>12.1}");
    }
    Ok(())
}

/// Builds the benchmark binary and returns its path (from cargo's JSON
/// messages: the `executable` of the `pipeline` bench target).
fn bench_executable() -> Result<PathBuf> {
    let out = Command::new(cargo_bin())
        .args([
            "bench",
            "-p",
            "rvs-lb",
            "--bench",
            "pipeline",
            "--no-run",
            "--message-format=json",
        ])
        .output()
        .context("building the pipeline benchmark")?;
    if !out.status.success() {
        bail!(
            "building the pipeline benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter(|l| l.contains("\"name\":\"pipeline\"") && l.contains("\"bench\""))
        .find_map(|l| {
            let (_, rest) = l.split_once("\"executable\":\"")?;
            let (path, _) = rest.split_once('"')?;
            Some(PathBuf::from(path))
        })
        .context("no executable for the pipeline benchmark in cargo's output")
}

/// Instructions executed by the binary processing `n` packets of `kind`.
fn instructions(exe: &Path, out_dir: &Path, kind: &str, n: u64) -> Result<u64> {
    let file = out_dir.join(format!("{kind}-{n}.out"));
    let n_arg = n.to_string();
    eprintln!(
        "$ valgrind --tool=callgrind {} --callgrind {kind} {n}",
        exe.display()
    );
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .args(["--callgrind", kind, &n_arg])
        .output()
        .context("running valgrind")?;
    if !out.status.success() {
        bail!(
            "valgrind on {kind} {n} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no instruction total in {}", file.display()))
}
