//! The README's main job. Until the daemon lands this builds the project and
//! runs the wire self-check: it decodes captured frames and performs the
//! FullNAT rewrite the balancer does on every packet, verifying checksums
//! against full recomputation.

use anyhow::Result;

use crate::run::cargo;

pub(crate) fn run() -> Result<()> {
    crate::setup::run()?;
    cargo(&["build", "--workspace", "--release", "--locked"])?;
    cargo(&[
        "run",
        "--release",
        "--locked",
        "-p",
        "rvs-wire",
        "--example",
        "selfcheck",
    ])
}
