//! `cargo xtask`: the project's chores in Rust, so they run the same on a
//! developer's machine and in CI (the pattern rust-analyzer uses).
//!
//! - `setup`: install the Debian packages and cargo tools the project needs;
//! - `test`: everything CI checks, in order (this is the README's test command);
//! - `demo`: the README's main job;
//! - `fuzz`: run every fuzz target for longer than the test smoke run;
//! - `bench`: the micro-benchmarks, then instructions per packet under
//!   callgrind when valgrind is installed;
//! - `callgrind`: only the instructions-per-packet count.

mod bench_e2e;
mod callgrind;
mod demo;
mod fuzz;
mod run;
mod setup;
mod test;

use anyhow::{Result, bail};

const USAGE: &str =
    "usage: cargo xtask <setup|test|demo|fuzz [SECONDS]|bench|bench-e2e [FILTER]|callgrind>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = run::workspace_root()?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("test") => test::run(),
        Some("demo") => demo::run(),
        Some("fuzz") => {
            let secs = match args.get(1) {
                Some(s) => s.parse()?,
                None => 60,
            };
            fuzz::run(secs, true)
        }
        Some("bench") => {
            run::cargo(&["bench", "-p", "rvs-wire"])?;
            run::cargo(&["bench", "-p", "rvs-lb", "--bench", "pipeline"])?;
            callgrind::run()
        }
        Some("callgrind") => callgrind::run(),
        Some("bench-e2e") => bench_e2e::run(args.get(1).map(String::as_str)),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}
