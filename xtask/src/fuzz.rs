//! Runs every bolero fuzz target (`crates/*/tests/fuzz_*.rs`) for a bounded
//! time each, in an optimised build that keeps debug assertions and overflow
//! checks, so arithmetic overflow counts as a crash. Seed corpora live beside
//! the targets in `tests/__fuzz__/<name>/corpus/`.

use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{self as sh, cargo_bin};

pub(crate) fn run(seconds_per_target: u64, verbose: bool) -> Result<()> {
    let mut args = vec![
        "test".to_owned(),
        "--profile".to_owned(),
        "fuzz".to_owned(),
        "--locked".to_owned(),
    ];
    for (krate, target) in targets()? {
        args.extend(["-p".to_owned(), krate, "--test".to_owned(), target]);
    }
    if verbose {
        args.extend(["--".to_owned(), "--nocapture".to_owned()]);
    }
    sh::run(
        Command::new(cargo_bin())
            .args(&args)
            .env(
                "BOLERO_RANDOM_TEST_TIME_MS",
                (seconds_per_target * 1000).to_string(),
            )
            .env("BOLERO_RANDOM_ITERATIONS", u64::MAX.to_string()),
    )
}

/// (crate, test target) for every `crates/<crate>/tests/fuzz_*.rs`.
fn targets() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for krate in std::fs::read_dir("crates").context("reading crates/")? {
        let krate = krate?;
        let tests = krate.path().join("tests");
        let Ok(entries) = std::fs::read_dir(&tests) else {
            continue;
        };
        for e in entries {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".rs")
                && stem.starts_with("fuzz_")
            {
                out.push((
                    krate.file_name().to_string_lossy().into_owned(),
                    stem.to_owned(),
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}
