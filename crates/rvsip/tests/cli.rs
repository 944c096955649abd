//! The rvsip binary against the fake rvsd from rvs-api: the requests it
//! sends, dpip's output layouts, and refusals (exit code, one line,
//! nothing sent or nothing changed).

use std::net::IpAddr;
use std::process::{Command, Output};

use rvs_api::fake::{FakeServer, Model};
use rvs_api::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn model() -> Model {
    Model {
        links: vec![Link {
            id: 0,
            name: "eth0".into(),
            mtu: 1500,
            mac: "02:52:56:53:00:02".into(),
            state: "UP".into(),
            backend: "af_xdp (native)".into(),
            queues: 2,
            tap: None,
            stats: LinkStats {
                rx_packets: 10,
                rx_bytes: 1000,
                rx_errors: 0,
                rx_dropped: 1,
                tx_packets: 9,
                tx_bytes: 900,
                tx_errors: 2,
                tx_dropped: 3,
            },
        }],
        neighs: vec![NeighEntry {
            addr: ip("10.0.0.2"),
            lladdr: Some("02:52:56:53:00:01".into()),
            state: "REACHABLE".into(),
            dev: "eth0".into(),
            worker: 1,
            permanent: false,
        }],
        ..Model::default()
    }
}

fn rvsip(server: &FakeServer, args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvsip"))
        .args(args.split_whitespace())
        .env(SOCKET_ENV, server.path())
        .output()
        .unwrap()
}

fn ok(server: &FakeServer, args: &str) -> String {
    let out = rvsip(server, args);
    assert!(
        out.status.success(),
        "{args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).unwrap()
}

/// A failing command: (exit code, its one stderr line); the model is
/// unchanged.
fn fails(server: &FakeServer, args: &str) -> (i32, String) {
    let before = server.model();
    let out = rvsip(server, args);
    assert!(!out.status.success(), "{args} succeeded");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args}: {err:?}");
    assert_eq!(server.model(), before, "{args} changed the model");
    (out.status.code().unwrap(), err.trim_end().to_string())
}

#[test]
fn changes_send_the_requests() {
    let server = FakeServer::start(model()).unwrap();
    ok(&server, "addr add 10.0.0.100/32 dev eth0");
    ok(&server, "addr add 10.0.0.1/24 dev eth0");
    ok(&server, "-6 addr add fd00::1 dev eth0");
    ok(&server, "route add 172.16.0.0/16 via 10.0.0.254 dev eth0");
    ok(&server, "route add default via 10.0.0.1");
    ok(
        &server,
        "neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev eth0",
    );
    ok(&server, "addr del 10.0.0.100/32 dev eth0");
    ok(&server, "route del 172.16.0.0/16");
    ok(&server, "neigh del 10.0.0.9 dev eth0");
    let reqs = server.requests();
    assert_eq!(
        reqs[0],
        Request::AddAddr {
            addr: IfAddr {
                addr: ip("10.0.0.100"),
                prefix_len: 32,
                dev: "eth0".into()
            }
        }
    );
    // No length: a host, as dpip.
    assert_eq!(
        reqs[2],
        Request::AddAddr {
            addr: IfAddr {
                addr: ip("fd00::1"),
                prefix_len: 128,
                dev: "eth0".into()
            }
        }
    );
    assert_eq!(
        reqs[3],
        Request::AddRoute {
            route: Route {
                prefix: ip("172.16.0.0"),
                prefix_len: 16,
                via: Some(ip("10.0.0.254")),
                dev: Some("eth0".into())
            }
        }
    );
    assert_eq!(
        reqs[4],
        Request::AddRoute {
            route: Route {
                prefix: ip("0.0.0.0"),
                prefix_len: 0,
                via: Some(ip("10.0.0.1")),
                dev: None
            }
        }
    );
    assert_eq!(
        reqs[5],
        Request::AddNeigh {
            neigh: Neigh {
                addr: ip("10.0.0.9"),
                lladdr: Some("02:00:00:00:00:09".into()),
                dev: "eth0".into()
            }
        }
    );
    assert_eq!(
        reqs[7],
        Request::DelRoute {
            route: Route {
                prefix: ip("172.16.0.0"),
                prefix_len: 16,
                via: None,
                dev: None
            }
        }
    );
    let m = server.model();
    assert_eq!(m.addrs.len(), 2);
    assert_eq!(m.routes.len(), 1);
    assert!(m.neighs.iter().all(|n| !n.permanent));
}

#[test]
fn listings_in_dpip_layouts() {
    let server = FakeServer::start(model()).unwrap();
    assert_eq!(
        ok(&server, "link show"),
        "1: eth0: backend af_xdp (native) mtu 1500 rx-queue 2 tx-queue 2\n    UP\n    addr 02:52:56:53:00:02\n"
    );
    let s = ok(&server, "-s link show eth0");
    assert_eq!(
        s.lines().skip(3).collect::<Vec<_>>(),
        [
            "    ipackets            opackets            ibytes              obytes              ",
            "    10                  9                   1000                900                 ",
            "    ierrors             oerrors             idropped            odropped            ",
            "    0                   2                   1                   3                   ",
        ]
    );
    assert_eq!(ok(&server, "link show -s"), s);
    ok(&server, "addr add 10.0.0.1/24 dev eth0");
    ok(&server, "addr add fd00::1/64 dev eth0");
    assert_eq!(
        ok(&server, "addr show"),
        "inet 10.0.0.1/24 scope global eth0\n    valid_lft forever preferred_lft forever\n\
         inet6 fd00::1/64 scope global eth0\n    valid_lft forever preferred_lft forever\n"
    );
    assert_eq!(
        ok(&server, "-6 addr show dev eth0"),
        "inet6 fd00::1/64 scope global eth0\n    valid_lft forever preferred_lft forever\n"
    );
    ok(&server, "route add 172.16.0.0/16 via 10.0.0.254 dev eth0");
    ok(&server, "route add 192.168.0.0/24 dev eth0");
    assert_eq!(
        ok(&server, "route show"),
        "inet 172.16.0.0/16 via 10.0.0.254 src 0.0.0.0 dev eth0 mtu 1500 tos 0 scope global metric 0 proto static \n\
         inet 192.168.0.0/24 via 0.0.0.0 src 0.0.0.0 dev eth0 mtu 1500 tos 0 scope link metric 0 proto static onlink \n"
    );
    ok(
        &server,
        "neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev eth0",
    );
    let n = ok(&server, "neigh show");
    let lines: Vec<&str> = n.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "ip: {:<48} mac: 02:52:56:53:00:01   state: REACHABLE     dev: eth0  core: 1  ",
            "10.0.0.2"
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "ip: {:<48} mac: 02:00:00:00:00:09   state: PERMANENT     dev: eth0  core: 0  static",
            "10.0.0.9"
        )
    );
    assert_eq!(ok(&server, "neigh show dev eth0"), n);
}

#[test]
fn refusals_are_one_line_and_change_nothing() {
    let server = FakeServer::start(model()).unwrap();
    ok(&server, "addr add 10.0.0.1/24 dev eth0");
    let sent = server.requests().len();
    // Caught before anything is sent: exit 2.
    for (args, says) in [
        ("addr add 10.0.0.1/33 dev eth0", "addr.prefix_len"),
        ("addr add 10.0.0.x/24 dev eth0", "invalid address"),
        ("addr add 10.0.0.5/24", "no device specified"),
        (
            "route add 10.9.0.1/24 via 10.0.0.3",
            "route.prefix: 10.9.0.1/24 has host bits",
        ),
        ("route add 10.9.0.0/24", "route.dev"),
        ("route add 10.9.0.0/24 via fd00::3", "route.via"),
        ("neigh add 10.0.0.9 lladdr zz dev eth0", "neigh.lladdr"),
        ("neigh add 10.0.0.9 dev eth0", "neigh.lladdr"),
        ("bogus show", "unknown object"),
        ("addr frob", "unknown command"),
    ] {
        let (code, line) = fails(&server, args);
        assert_eq!(code, 2, "{args}: {line}");
        assert!(line.starts_with("rvsip: "), "{line}");
        assert!(line.contains(says), "{args}: {line:?} lacks {says:?}");
    }
    assert_eq!(server.requests().len(), sent, "a refused line was sent");
    // Refused by rvsd: exit 1.
    for (args, says) in [
        ("addr add 10.0.0.5/24 dev nosuch", "addr.dev"),
        ("addr add 10.0.0.1/24 dev eth0", "exists"),
        ("addr del 10.0.0.9/24 dev eth0", "not defined"),
        ("route del 10.7.0.0/24", "not defined"),
        ("neigh del 10.0.0.9 dev eth0", "not defined"),
        ("addr show dev nosuch", "no port"),
    ] {
        let (code, line) = fails(&server, args);
        assert_eq!(code, 1, "{args}: {line}");
        assert!(line.contains(says), "{args}: {line:?} lacks {says:?}");
    }
}

#[test]
fn help_and_unreachable() {
    let server = FakeServer::start(model()).unwrap();
    assert!(ok(&server, "help").contains("rvsip addr { add | del } ADDR[/PLEN] dev DEV"));
    let out = Command::new(env!("CARGO_BIN_EXE_rvsip"))
        .args(["--socket", "/nonexistent/rvsd.sock", "addr", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("cannot reach rvsd"), "{err}");
}
