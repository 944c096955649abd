//! rvsd end to end, FullNAT (run as root): namespaces `client`, `lb` and
//! two backends, one veth pair from the client to the lb and one from the
//! lb to each backend (three ports). rvsd runs in `lb` as a child process
//! with a generated configuration; each backend runs a tiny HTTP server
//! (a thread inside its namespace) that answers with its name and the
//! address it saw the connection come from. `curl` in the client asks
//! VIP:80 `REQUESTS` times: every request must be answered, both backends
//! must answer (rr), and they must see the local address as the source.
//! The exception path is checked too: the lb's interface address also
//! lives on the TAP of the client port in the lb namespace's kernel, where
//! a server listens on a port no service has; the client reaches it
//! through rvsd (and the node itself answers the client's ping). Then SIGTERM: rvsd exits 0, its TAP is gone and
//! no XDP program is left on the ports.
//!
//! Offloads: the client and backends send with checksum offload off (a
//! veth peer otherwise hands over frames with unfinished checksums).

mod common;

use std::process::Command;
use std::thread;
use std::time::Duration;

use common::harness::{API_OFF, OneShotServer as Server, Rvsd, TempFile, Topo, rr_fullnat_service};
use common::{TIMEOUT, unique};

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";
const REQUESTS: usize = 10;

fn run(backend: &str) {
    let topo = Topo::new(2, false);
    let (client, lb) = (&topo.client, &topo.lb);
    let _s1 = Server::start(&topo.backends[0], "b1", 80);
    let _s2 = Server::start(&topo.backends[1], "b2", 80);

    let tap = unique("tp");
    let xdp = if backend == "af_xdp" {
        "xdp_mode = \"generic\"\n"
    } else {
        ""
    };
    let config = String::from(API_OFF)
        + "[daemon]\nworkers = 1\ntick_ms = 10\n\n"
        + &topo.ports_config(backend, xdp, Some(&tap))
        + &rr_fullnat_service(VIP, LADDR);
    let path = TempFile::new("toml");
    std::fs::write(&path.0, &config).unwrap();

    // --check accepts it.
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--config", &path.0, "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut rvsd = Rvsd::start(lb, &path.0);
    // The exception path: the lb's client-side address on the TAP.
    lb.ip(&["addr", "add", "10.0.0.1/24", "dev", &tap]);

    let mut seen = Vec::new();
    for i in 0..REQUESTS {
        let out = client
            .exec(
                &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")],
                TIMEOUT,
            )
            .expect("curl");
        assert!(
            out.status.success(),
            "request {i} failed: {}\nrvsd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            rvsd.log()
        );
        seen.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let b1_count = seen.iter().filter(|s| s.starts_with("b1 ")).count();
    let b2_count = seen.iter().filter(|s| s.starts_with("b2 ")).count();
    assert_eq!(b1_count + b2_count, REQUESTS, "{seen:?}");
    assert_eq!(b1_count, REQUESTS / 2, "rr alternates: {seen:?}");
    for s in &seen {
        assert!(
            s.ends_with(&format!(" {LADDR}")),
            "backend saw {s}, not the laddr"
        );
    }

    // A new snapshot through SIGHUP: b2 quiescent (weight 0), so every new
    // connection goes to b1.
    let quiesced = config.replacen(
        "addr = \"10.0.2.2\"\nmode = \"fullnat\"",
        "addr = \"10.0.2.2\"\nmode = \"fullnat\"\nweight = 0",
        1,
    );
    assert_ne!(quiesced, config);
    std::fs::write(&path.0, &quiesced).unwrap();
    rvsd.reload();
    thread::sleep(Duration::from_millis(100));
    for _ in 0..4 {
        let out = client
            .exec(
                &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")],
                TIMEOUT,
            )
            .expect("curl");
        assert!(out.status.success(), "after reload: {}", rvsd.log());
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.starts_with("b1 "), "b2 is quiescent, got {body}");
    }

    // The node answers ping for its own address.
    let ping = client
        .exec(&["ping", "-c", "1", "-W", "2", "10.0.0.1"], TIMEOUT)
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping 10.0.0.1: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&ping.stdout),
        rvsd.log()
    );
    // The exception path: TCP to the lb's own address and a port no service
    // has goes to the kernel behind the TAP, whose server answers; its
    // reply comes back out of the TAP and through rvsd.
    let _kernel_server = Server::start(lb, "lb-kernel", 8080);
    let out = client
        .exec(
            &["curl", "-sS", "--max-time", "3", "http://10.0.0.1:8080/"],
            TIMEOUT,
        )
        .expect("curl");
    assert!(
        out.status.success(),
        "through the TAP: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        rvsd.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "lb-kernel 10.0.0.2"
    );

    // Graceful shutdown: exit 0, TAP removed, XDP detached.
    let code = rvsd.terminate();
    assert_eq!(code, Some(0), "rvsd exit; log:\n{}", rvsd.log());
    let log = rvsd.log();
    assert!(log.contains("rvsd stopped"), "{log}");
    // The counters published at shutdown show both paths were used.
    let counter = |name: &str| -> u64 {
        log.split(&format!("{name}="))
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(counter("to_kernel") > 0, "{log}");
    assert!(counter("from_kernel") > 0, "{log}");
    assert!(counter("forwarded") >= 4 * REQUESTS as u64, "{log}");
    let links = lb.exec(&["ip", "link", "show"], TIMEOUT).unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains(&tap), "TAP still there:\n{links}");
    assert!(!links.contains("xdp"), "XDP program left:\n{links}");
}

#[test]
fn fullnat_af_packet() {
    run("af_packet");
}

#[test]
fn fullnat_af_xdp_generic() {
    run("af_xdp");
}
