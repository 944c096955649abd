//! The one test command (README, `.ci/run`): formatting, lints, every test
//! (unit, property, known-answer, fuzz smoke), and dependency hygiene.

use std::process::Command;

use anyhow::Result;

use crate::run::{cargo, cargo_bin};

/// Seconds each fuzz target runs in the smoke run.
const FUZZ_SMOKE_SECONDS: u64 = 10;

pub(crate) fn run() -> Result<()> {
    crate::setup::run()?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--all-targets", "--locked"])?;
    cargo(&["test", "--workspace", "--doc", "--locked"])?;
    crate::fuzz::run(FUZZ_SMOKE_SECONDS, false)?;
    dependency_hygiene()
}

/// `cargo deny`: licences, bans (duplicate versions), sources, advisories.
/// The advisory database comes from the network. Where it cannot be fetched
/// the check runs offline against a copy already on the machine, and only
/// when there is none is it reported as skipped: a build must not fail for a
/// reason outside the code, but a known advisory must.
fn dependency_hygiene() -> Result<()> {
    cargo(&["deny", "--locked", "check", "licenses", "bans", "sources"])?;
    let fetched = Command::new(cargo_bin())
        .args(["deny", "--locked", "fetch", "db"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if fetched {
        return cargo(&["deny", "--locked", "check", "advisories"]);
    }
    if local_advisory_db_present() {
        eprintln!("cargo deny: advisory database unreachable, checking against the local copy");
        return cargo(&["deny", "--offline", "check", "advisories"]);
    }
    eprintln!("cargo deny advisories: SKIPPED (advisory database unreachable, no local copy)");
    Ok(())
}

fn local_advisory_db_present() -> bool {
    let Some(home) = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
    else {
        return false;
    };
    std::fs::read_dir(home.join("advisory-dbs"))
        .map(|mut d| d.any(|e| e.is_ok_and(|e| e.path().join("crates").is_dir())))
        .unwrap_or(false)
}
