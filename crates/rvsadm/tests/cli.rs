//! The rvsadm binary end to end against the fake rvsd from rvs-api.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;
use rvs_api::fake::{FakeServer, Model};
use rvs_api::*;

fn rvsadm(server: &FakeServer, args: &str, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
        .args(args.split_whitespace())
        .env(SOCKET_ENV, server.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(server: &FakeServer, args: &str) -> String {
    let out = rvsadm(server, args, "");
    assert!(
        out.status.success(),
        "{args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a failing command: returns (exit code, the single stderr line).
fn fails(server: &FakeServer, args: &str) -> (i32, String) {
    let out = rvsadm(server, args, "");
    assert!(!out.status.success(), "{args} succeeded");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args}: {err:?}");
    (out.status.code().unwrap(), err.trim_end().to_string())
}

#[test]
fn list_numeric_through_the_api() {
    let server = FakeServer::start(fixture()).unwrap();
    let got = ok(&server, "-L -n");
    // Same expected text as tests/format.rs (ipvsadm 1.31 print_title /
    // print_service_entry formats).
    assert!(got.starts_with(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
    ));
    assert!(
        got.contains("\n  -> 192.168.1.12:8080            FullNat 1      3          2         \n")
    );
    assert_eq!(server.requests(), [Request::ListServices { service: None }]);

    let got = ok(&server, "-Ln --stats -t 10.0.0.1:80");
    assert!(
        got.starts_with("Prot LocalAddress:Port               Conns"),
        "{got}"
    );
    let got = ok(&server, "-L -n -c");
    assert!(got.contains(
        "TCP 14:59  ESTABLISHED 203.0.113.9:51000  10.0.0.1:80        192.168.1.2:8080\n"
    ));
    assert_eq!(
        ok(&server, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    assert_eq!(ok(&server, "--set 0 60 0"), "");
    assert_eq!(
        ok(&server, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 60 300\n"
    );
    assert!(ok(&server, "-G").starts_with("VIP:VPORT "));
}

#[test]
fn changes_reach_the_daemon_and_save_restore_round_trips() {
    let server = FakeServer::start(Model::default()).unwrap();
    for cmd in [
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -b -w 5 -x 100 -y 10",
        "-a -t 10.0.0.1:80 -r 192.168.1.3:8080 -m",
        "-e -t 10.0.0.1:80 -r 192.168.1.3:8080 -m -w 0",
        "--add-laddr -t 10.0.0.1:80 -z 192.168.100.1 -F dpdk0",
        "-A -u [2001:db8::1]:53 -s sh -p 120 -M 64 -b sh-port",
        "-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -J",
        "-A -f 9 -s mh -b mh-fallback",
        "-a -f 9 -r 10.9.9.9 -i",
        "-E -t 10.0.0.1:80 -s wrr -p",
    ] {
        ok(&server, cmd);
    }
    let model = server.model();
    assert_eq!(model.services.len(), 3);
    let web = &model.services[0];
    assert_eq!(web.service.scheduler, "wrr");
    assert_eq!(web.service.persistence.unwrap().timeout, 360);
    assert_eq!(web.real_servers[0].server.forward, Forward::Fullnat);
    assert_eq!(web.real_servers[1].server.weight, 0);

    let saved = ok(&server, "-S -n");
    assert!(
        saved.starts_with("-A -t 10.0.0.1:80 -s wrr -p 360\n"),
        "{saved}"
    );

    let other = FakeServer::start(Model::default()).unwrap();
    let out = rvsadm(&other, "-R", &saved);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(other.requests().len(), 1, "one all-or-nothing batch");
    assert_eq!(ok(&other, "-S -n"), saved);
    let configs = |m: &Model| {
        let mut v: Vec<_> = m
            .services
            .iter()
            .map(|s| {
                let mut rs: Vec<_> = s.real_servers.iter().map(|r| r.server).collect();
                rs.sort_by_key(|r| (r.addr, r.port));
                (s.service.clone(), rs, s.local_addrs.clone())
            })
            .collect();
        v.sort_by_key(|(s, ..)| s.key.sort_key());
        v
    };
    assert_eq!(configs(&other.model()), configs(&server.model()));

    ok(&server, "-d -t 10.0.0.1:80 -r 192.168.1.3:8080");
    ok(&server, "-D -f 9");
    ok(&server, "-Z");
    ok(&server, "-C");
    assert!(server.model().services.is_empty());
}

#[test]
fn bad_command_lines_send_nothing() {
    let server = FakeServer::start(fixture()).unwrap();
    for (args, want) in [
        (
            "-A -t 10.0.0.9:80 -s nosuch",
            "rvsadm: unknown scheduler `nosuch'",
        ),
        (
            "-A -t 10.0.0.300:80",
            "rvsadm: illegal virtual server address[:port] specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1:port",
            "rvsadm: illegal real server address[:port] specified",
        ),
        (
            "-a -r 10.1.1.1:80",
            "rvsadm: You need to supply the 'service-address' option",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -w -1",
            "rvsadm: illegal weight specified",
        ),
        ("--set 1 2 x", "rvsadm: invalid timeout value `x' specified"),
        ("", "rvsadm: Try `rvsadm -h'"),
    ] {
        let (code, line) = fails(&server, args);
        assert_eq!(code, 2, "{args}");
        assert!(line.starts_with(want), "{args}: {line}");
    }
    // A bad line anywhere in -R input: nothing is sent.
    let out = rvsadm(
        &server,
        "-R",
        "-C\n-A -t 10.0.0.5:80 -s rr\n-a -t 10.0.0.5:80 -r bad\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "rvsadm: line 3: illegal real server address[:port] specified\n"
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(server.model(), fixture());
}

#[test]
fn daemon_refusals_are_one_line_and_change_nothing() {
    let server = FakeServer::start(fixture()).unwrap();
    let (code, line) = fails(&server, "-A -t 10.0.0.1:80 -s rr");
    assert_eq!(
        (code, line.as_str()),
        (1, "rvsadm: service: service already exists")
    );
    let (code, line) = fails(&server, "-D -t 10.0.0.2:80");
    assert_eq!(
        (code, line.as_str()),
        (1, "rvsadm: service: service not defined")
    );
    let (code, line) = fails(&server, "-d -t 10.0.0.1:80 -r 10.7.7.7:8080");
    assert_eq!(
        (code, line.as_str()),
        (1, "rvsadm: addr: destination not defined")
    );
    let (_, line) = fails(&server, "-L -n -t 10.0.0.2:80");
    assert_eq!(line, "rvsadm: service: service not defined");
    // A restore that fails half way through changes nothing either.
    let out = rvsadm(
        &server,
        "-R",
        "-C\n-A -t 10.0.0.5:80 -s rr\n-d -t 10.0.0.6:80 -r 10.1.1.1\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "rvsadm: requests[2].service: service not defined\n"
    );
    assert_eq!(server.model(), fixture());
}

#[test]
fn socket_option_and_unreachable_daemon() {
    let server = FakeServer::start(fixture()).unwrap();
    // --socket wins over RVS_SOCKET.
    let out = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
        .args([
            "--socket",
            server.path().to_str().unwrap(),
            "-L",
            "--timeout",
        ])
        .env(SOCKET_ENV, "/nonexistent/rvsd.sock")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
        .args(["-L", "-n"])
        .env(SOCKET_ENV, "/nonexistent/rvsd.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.starts_with("rvsadm: cannot reach rvsd at /nonexistent/rvsd.sock"),
        "{err}"
    );
}
