//! Installs what the project needs on a Debian 12 machine: Debian packages
//! (only the missing ones) and cargo tools. Idempotent, so `test` and `demo`
//! call it first and a fresh machine needs nothing else.

use std::process::Command;

use anyhow::Result;

use crate::run::{self as sh, cargo, have};

/// Debian packages the build, tests and demo use.
const DEBIAN_PACKAGES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "iproute2",
    "iputils-ping",
    "tcpdump",
    "valgrind",
    // The AF_XDP backend's XDP program: compiled by crates/rvs-io/build.rs.
    "clang",
    "libbpf-dev",
    // rvsd's end-to-end tests: curl as the client, ethtool to turn veth
    // offloads off.
    "curl",
    "ethtool",
    // rvsd's mode, live-change and bad-input end-to-end tests: a UDP
    // client, an HTTP load generator, ARP probes.
    "socat",
    "wrk",
    "iputils-arping",
    // The demo's HTTP backends (one nginx per backend namespace, started
    // with a configuration of the demo's own).
    "nginx",
    // `cargo xtask bench-e2e`: the UDP generator (trafgen), dpdk-testpmd
    // (in dpdk-dev on Debian 12), nftables and HAProxy as peers.
    "netsniff-ng",
    "dpdk",
    "dpdk-dev",
    "nftables",
    "haproxy",
    // rvsd's metrics test reads /metrics with the reference OpenMetrics
    // parser; the HTTP API test checks its OpenAPI schema with jsonschema.
    "python3-prometheus-client",
    "python3-jsonschema",
    // rvs-keepalived's interoperability tests run Debian's keepalived as
    // the VRRP peer.
    "keepalived",
    // contrib/systemd's units are checked with systemd-analyze verify.
    "systemd",
];

/// cargo-deny checks licences, advisories, bans and sources.
const CARGO_DENY_VERSION: &str = "0.20.2";

pub(crate) fn run() -> Result<()> {
    install_debian_packages()?;
    if !have("cargo-deny") {
        cargo(&[
            "install",
            "--locked",
            "cargo-deny",
            "--version",
            CARGO_DENY_VERSION,
        ])?;
    }
    Ok(())
}

fn install_debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| !debian_package_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        sh::run(&mut cmd)
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)
}

fn debian_package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}
