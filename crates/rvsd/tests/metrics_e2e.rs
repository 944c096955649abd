//! rvsd's Prometheus endpoint end to end (run as root): the usual topology
//! (client, lb, two backends on veths; rvsd on AF_XDP in generic mode)
//! with a FullNAT TCP service (rr, TOA in the SYN) and `[metrics] listen` on the lb
//! namespace's loopback.
//!
//! `curl` in the client asks VIP:80 `REQUESTS` times (a new connection
//! each), one more connection is held open, and a few UDP datagrams go to
//! a port no service has. Then `curl` in the lb namespace scrapes
//! `/metrics` and the reference OpenMetrics parser (python3's
//! `prometheus_client.openmetrics.parser`, strict: it refuses a counter
//! sample without `_total`, a missing `# EOF`, a duplicate family...) reads
//! it. The test checks the names (the `rvs_` prefix, HELP and TYPE for every
//! family, `_total` on counters, units in the name) and that the counters
//! match the traffic: connections per service and per real server against
//! what the backends counted, the open connection in the active gauges,
//! packets and bytes in and out against the client interface's own
//! counters, the port counters, TOA, and the drops against the datagrams
//! sent.
//!
//! Also: an address set in the file that cannot be listened on stops rvsd
//! at start (exit 1, naming `metrics.listen`), `listen = ""` serves
//! nothing; and a scan of the packet path's sources for logging.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::harness::{HttpServer, Rvsd, TempFile, Topo};
use common::{Netns, TIMEOUT};
use serde_json::Value;

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";
const LISTEN: &str = "127.0.0.1:9469";
const REQUESTS: u64 = 12;
const DATAGRAMS: u64 = 5;
const SERVICE: &str = "TCP 10.0.0.100:80";

/// The reference parser: reads the exposition in the file `argv[1]` and
/// prints its families as JSON (or fails with the parser's error).
const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    out.append({"name": f.name, "type": f.type, "unit": f.unit,
                "help": f.documentation,
                "samples": [[s.name, s.labels, s.value] for s in f.samples]})
print(json.dumps(out))
"#;

fn any(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], port))
}

/// One parsed family.
#[derive(Debug)]
struct Family {
    kind: String,
    unit: String,
    help: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// A scrape: the raw text and the families the parser returned.
struct Scrape {
    text: String,
    families: BTreeMap<String, Family>,
}

impl Scrape {
    /// Sum of the samples named `name` whose labels include `want`.
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> u64 {
        let mut total = 0.0;
        let mut found = false;
        for f in self.families.values() {
            for (n, labels, v) in &f.samples {
                if n == name
                    && want
                        .iter()
                        .all(|(k, x)| labels.get(*k).map(String::as_str) == Some(*x))
                {
                    total += v;
                    found = true;
                }
            }
        }
        assert!(found, "no sample {name} {want:?} in\n{}", self.text);
        total as u64
    }

    /// The label values of `label` among the samples named `name`.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .families
            .values()
            .flat_map(|f| &f.samples)
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, l, _)| l.get(label).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// `curl` in `ns` for `/metrics`; checks the status and content type and
/// parses the body with the reference parser.
fn scrape(ns: &Netns, rvsd: &mut Rvsd) -> Scrape {
    let out = ns
        .exec(
            &[
                "curl",
                "-sS",
                "--max-time",
                "3",
                "-i",
                &format!("http://{LISTEN}/metrics"),
            ],
            TIMEOUT,
        )
        .expect("curl /metrics");
    if !out.status.success() {
        rvsd.fail(&format!(
            "scrape failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let raw = String::from_utf8(out.stdout).expect("utf-8 exposition");
    let (head, text) = raw.split_once("\r\n\r\n").expect("HTTP head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.lines().any(|l| l.eq_ignore_ascii_case(
            "content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
        )),
        "{head}"
    );
    let file = TempFile::new("metrics");
    std::fs::write(&file.0, text).unwrap();
    let parsed = common::run_with_timeout(
        Command::new("/usr/bin/python3").args(["-c", PARSER, &file.0]),
        TIMEOUT,
    )
    .expect("python3");
    assert!(
        parsed.status.success(),
        "the OpenMetrics parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let json: Value = serde_json::from_slice(&parsed.stdout).expect("parser output");
    let mut families = BTreeMap::new();
    for f in json.as_array().expect("families") {
        let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
        let samples = f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let labels = x[1]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                (
                    x[0].as_str().unwrap().to_string(),
                    labels,
                    x[2].as_f64().unwrap(),
                )
            })
            .collect();
        let fam = Family {
            kind: s("type"),
            unit: s("unit"),
            help: s("help"),
            samples,
        };
        assert!(
            families.insert(s("name"), fam).is_none(),
            "family {} twice",
            s("name")
        );
    }
    Scrape {
        text: text.to_string(),
        families,
    }
}

/// Prometheus naming conventions, family by family.
fn check_names(s: &Scrape) {
    assert!(s.families.len() >= 40, "{} families", s.families.len());
    for (name, f) in &s.families {
        assert!(name.starts_with("rvs_"), "{name}: no rvs_ prefix");
        assert!(!f.help.is_empty(), "{name}: no HELP");
        assert!(
            s.text.contains(&format!("\n# HELP {name} ")) || s.text.starts_with("# HELP"),
            "{name}: no HELP line"
        );
        assert!(
            s.text.contains(&format!("\n# TYPE {name} {}\n", f.kind))
                || s.text.starts_with(&format!("# TYPE {name} ")),
            "{name}: no TYPE line"
        );
        assert!(
            ["counter", "gauge", "info"].contains(&f.kind.as_str()),
            "{name}: type {}",
            f.kind
        );
        if !f.unit.is_empty() {
            assert!(
                name.ends_with(&format!("_{}", f.unit)),
                "{name}: unit {}",
                f.unit
            );
        }
        if name.contains("bytes") {
            assert_eq!(f.unit, "bytes", "{name}: bytes without the unit");
        }
        for (n, _, v) in &f.samples {
            match f.kind.as_str() {
                "counter" => {
                    assert_eq!(n, &format!("{name}_total"), "counter sample {n}");
                    assert!(*v >= 0.0, "{n} = {v}");
                }
                "info" => assert_eq!(n, &format!("{name}_info")),
                _ => {
                    assert_eq!(n, name);
                    assert!(!n.ends_with("_total"), "gauge {n} named like a counter");
                }
            }
        }
    }
    for (name, kind) in [
        ("rvs_service_connections", "counter"),
        ("rvs_service_packets", "counter"),
        ("rvs_service_bytes", "counter"),
        ("rvs_service_active_connections", "gauge"),
        ("rvs_service_inactive_connections", "gauge"),
        ("rvs_real_server_connections", "counter"),
        ("rvs_real_server_packets", "counter"),
        ("rvs_real_server_bytes", "counter"),
        ("rvs_real_server_active_connections", "gauge"),
        ("rvs_real_server_inactive_connections", "gauge"),
        ("rvs_worker_rx_packets", "counter"),
        ("rvs_worker_tx_packets", "counter"),
        ("rvs_worker_rx_bursts", "counter"),
        ("rvs_worker_drops", "counter"),
        ("rvs_worker_tx_ring_full", "counter"),
        ("rvs_worker_redirected_packets", "counter"),
        ("rvs_worker_redirect_ring_full", "counter"),
        ("rvs_worker_connections", "gauge"),
        ("rvs_port_rx_packets", "counter"),
        ("rvs_port_tx_bytes", "counter"),
        ("rvs_fullnat_toa_segments", "counter"),
        ("rvs_fullnat_uoa_datagrams", "counter"),
    ] {
        let f = s
            .families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name}"));
        assert_eq!(f.kind, kind, "{name}");
    }
}

/// An interface's counters inside a namespace.
fn link_stats(ns: &Netns, dev: &str) -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    for k in ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes"] {
        let out = ns
            .exec(
                &["cat", &format!("/sys/class/net/{dev}/statistics/{k}")],
                TIMEOUT,
            )
            .expect("cat");
        let v = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        m.insert(k, v);
    }
    m
}

/// Scrapes until two scrapes a stats period apart agree on `name` (the
/// workers publish every 500 ms): the counters have settled.
fn settled(ns: &Netns, rvsd: &mut Rvsd, names: &[(&str, &[(&str, &str)])]) -> Scrape {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = scrape(ns, rvsd);
    loop {
        thread::sleep(Duration::from_millis(700));
        let s = scrape(ns, rvsd);
        if names.iter().all(|(n, l)| s.sum(n, l) == last.sum(n, l)) {
            return s;
        }
        assert!(Instant::now() < deadline, "counters never settled");
        last = s;
    }
}

#[test]
fn metrics_match_the_traffic() {
    let t = Topo::new(2, false);
    t.lb.ip(&["link", "set", "lo", "up"]);
    let s1 = HttpServer::start(&t.backends[0], "b1", any(80));
    let s2 = HttpServer::start(&t.backends[1], "b2", any(80));
    let client_dev = t.c.a.name.clone();
    let lb_port = t.c.b.name.clone();
    let config = t.config_head("af_xdp")
        + &format!(
            "[metrics]\nlisten = \"{LISTEN}\"\n\n\
             [[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = 80\nscheduler = \"rr\"\n\
             toa = \"syn\"\nladdrs = [\"{LADDR}\"]\n\
             [[service.real]]\naddr = \"10.0.1.2\"\nmode = \"fullnat\"\n\
             [[service.real]]\naddr = \"10.0.2.2\"\nmode = \"fullnat\"\n"
        );
    let before_start = link_stats(&t.client, &client_dev);
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &config);
    assert!(
        rvsd.log().contains("metrics listening"),
        "no metrics line:\n{}",
        rvsd.log()
    );
    t.warm_up(&mut rvsd, false);

    // Before any traffic: the service and both real servers are listed,
    // at zero.
    let s0 = scrape(&t.lb, &mut rvsd);
    check_names(&s0);
    assert_eq!(
        s0.sum("rvs_service_connections_total", &[("service", SERVICE)]),
        0
    );
    assert_eq!(
        s0.label_values("rvs_real_server_connections_total", "server"),
        ["10.0.1.2:80", "10.0.2.2:80"]
    );
    assert_eq!(
        s0.sum("rvs_real_server_weight", &[("server", "10.0.1.2:80")]),
        1
    );

    // The traffic: REQUESTS connections by curl, one held open, and
    // datagrams to a port no service has.
    let before = link_stats(&t.client, &client_dev);
    for i in 0..REQUESTS {
        let out = t
            .client
            .exec(
                &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")],
                TIMEOUT,
            )
            .expect("curl");
        if !out.status.success() {
            rvsd.fail(&format!(
                "request {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let mut held = t.client.run(|| {
        let mut c = TcpStream::connect_timeout(&SocketAddr::from(([10, 0, 0, 100], 80)), TIMEOUT)
            .expect("connect to the VIP");
        c.set_read_timeout(Some(TIMEOUT)).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n").unwrap();
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).expect("keep-alive answer");
        assert!(buf[..n].starts_with(b"HTTP/1."), "answer");
        c
    });
    t.client.run(|| {
        let u = UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..DATAGRAMS {
            u.send_to(b"nobody", "10.0.0.100:9").unwrap();
        }
    });
    // Let the closed connections' last segments pass, then read the
    // client's interface and the settled metrics.
    thread::sleep(Duration::from_millis(300));
    let in_total: (&str, &[(&str, &str)]) = (
        "rvs_service_packets_total",
        &[("service", SERVICE), ("direction", "in")],
    );
    let out_total: (&str, &[(&str, &str)]) = (
        "rvs_service_packets_total",
        &[("service", SERVICE), ("direction", "out")],
    );
    let s = settled(&t.lb, &mut rvsd, &[in_total, out_total]);
    let after = link_stats(&t.client, &client_dev);
    check_names(&s);
    let d = |k: &str| after[k] - before[k];

    // Connections: per service, per real server, and what the backends
    // counted (one request per connection).
    let conns = REQUESTS + 1;
    assert_eq!(
        s.sum("rvs_service_connections_total", &[("service", SERVICE)]),
        conns,
        "{}",
        s.text
    );
    let c1 = s.sum(
        "rvs_real_server_connections_total",
        &[("server", "10.0.1.2:80")],
    );
    let c2 = s.sum(
        "rvs_real_server_connections_total",
        &[("server", "10.0.2.2:80")],
    );
    assert_eq!(c1 + c2, conns);
    assert_eq!(
        (c1, c2),
        (s1.count(), s2.count()),
        "rr, as the backends saw it"
    );
    assert!(c1.abs_diff(c2) <= 1, "rr spread {c1}/{c2}");
    // The held connection is the one active connection, at one server.
    assert_eq!(
        s.sum("rvs_service_active_connections", &[("service", SERVICE)]),
        1,
        "{}",
        s.text
    );
    assert_eq!(s.sum("rvs_real_server_active_connections", &[]), 1);
    let inactive = s.sum("rvs_service_inactive_connections", &[("service", SERVICE)]);
    assert_eq!(s.sum("rvs_real_server_inactive_connections", &[]), inactive);
    assert!(
        s.sum("rvs_worker_connections", &[]) > inactive,
        "the table holds the active and the closing connections"
    );

    // Packets and bytes, against the client's interface: every packet the
    // client sent to the VIP is a service packet in; the rest is ARP and
    // the datagrams (dropped, counted below).
    let (pin, pout) = (
        s.sum(in_total.0, in_total.1),
        s.sum(out_total.0, out_total.1),
    );
    let (tx, rx) = (d("tx_packets"), d("rx_packets"));
    assert!(
        pin + DATAGRAMS <= tx && tx <= pin + DATAGRAMS + 4,
        "service packets in {pin}, client sent {tx}"
    );
    assert!(
        pout <= rx && rx <= pout + 4,
        "service packets out {pout}, client received {rx}"
    );
    // At least SYN, ACK, request, FIN, ACK each way per connection.
    assert!(pin >= 4 * REQUESTS && pout >= 4 * REQUESTS, "{pin}/{pout}");
    // Bytes are IP packets: the client's frames less 14 bytes of Ethernet
    // (plus what ARP and the datagrams account for).
    let bin = s.sum(
        "rvs_service_bytes_total",
        &[("service", SERVICE), ("direction", "in")],
    );
    let bout = s.sum(
        "rvs_service_bytes_total",
        &[("service", SERVICE), ("direction", "out")],
    );
    let ip_tx = d("tx_bytes") - 14 * tx;
    let ip_rx = d("rx_bytes") - 14 * rx;
    let datagram_bytes = DATAGRAMS * (20 + 8 + 6);
    assert!(
        bin + datagram_bytes <= ip_tx && ip_tx <= bin + datagram_bytes + 4 * 28,
        "service bytes in {bin}, client sent {ip_tx} bytes of IP"
    );
    assert!(
        bout <= ip_rx && ip_rx <= bout + 4 * 28,
        "service bytes out {bout}, client received {ip_rx} bytes of IP"
    );
    // Per real server, the same traffic split.
    for dir in ["in", "out"] {
        assert_eq!(
            s.sum("rvs_real_server_packets_total", &[("direction", dir)]),
            s.sum("rvs_service_packets_total", &[("direction", dir)]),
            "{dir}"
        );
        assert_eq!(
            s.sum("rvs_real_server_bytes_total", &[("direction", dir)]),
            s.sum("rvs_service_bytes_total", &[("direction", dir)]),
            "{dir}"
        );
    }

    // The port facing the client received everything the client sent since
    // rvsd started (nothing else is on that wire) and at least the
    // service's packets in; the worker's totals cover both directions.
    let port_rx = s.sum("rvs_port_rx_packets_total", &[("port", &lb_port)]);
    let client_tx_since_start = after["tx_packets"] - before_start["tx_packets"];
    assert!(
        pin + DATAGRAMS <= port_rx && port_rx <= client_tx_since_start,
        "port rx {port_rx}, client sent {client_tx_since_start} since rvsd started"
    );
    let port_tx = s.sum("rvs_port_tx_packets_total", &[("port", &lb_port)]);
    assert!(port_tx >= pout, "port tx {port_tx} < service out {pout}");
    assert!(s.sum("rvs_port_rx_bytes_total", &[("port", &lb_port)]) >= bin);
    let worker_rx = s.sum("rvs_worker_rx_packets_total", &[("worker", "0")]);
    // Each service packet crosses rvs once: in from the client's port, out
    // from a backend's.
    assert!(
        worker_rx >= pin + pout + DATAGRAMS,
        "worker rx {worker_rx}, service {pin} + {pout}"
    );
    let worker_tx = s.sum("rvs_worker_tx_packets_total", &[("worker", "0")]);
    assert!(worker_tx >= pin + pout, "worker tx {worker_tx}");
    assert!(s.sum("rvs_worker_rx_bursts_total", &[]) >= 1);
    assert_eq!(
        worker_rx,
        s.sum("rvs_port_rx_packets_total", &[("worker", "0")])
    );

    // FullNAT's TOA: one option per connection (in its SYN).
    assert_eq!(
        s.sum("rvs_fullnat_toa_segments_total", &[("result", "added")]),
        conns,
        "{}",
        s.text
    );
    assert_eq!(
        s.sum("rvs_fullnat_toa_segments_total", &[("result", "skipped")]),
        0
    );

    // Drops: every reason listed. The datagrams match no service: the
    // stack passes them to the kernel, and with no TAP on the port the
    // worker drops them as unsupported.
    let reasons = s.label_values("rvs_worker_drops_total", "reason");
    assert_eq!(reasons.len(), 17, "{reasons:?}");
    for r in [
        "no_service",
        "malformed",
        "conn_table_full",
        "neighbour_pending",
    ] {
        assert!(reasons.iter().any(|x| x == r), "no reason {r}");
    }
    assert_eq!(
        s.sum("rvs_worker_drops_total", &[("reason", "unsupported")]),
        DATAGRAMS,
        "{}",
        s.text
    );
    assert_eq!(
        s.sum("rvs_worker_drops_total", &[]),
        DATAGRAMS,
        "{}",
        s.text
    );
    assert_eq!(s.sum("rvs_worker_tx_ring_full_total", &[]), 0);
    assert_eq!(s.sum("rvs_workers", &[]), 1);

    // The held connection closes: no active connection is left.
    held.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = held.read_to_end(&mut rest);
    drop(held);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        thread::sleep(Duration::from_millis(300));
        let s = scrape(&t.lb, &mut rvsd);
        if s.sum("rvs_service_active_connections", &[("service", SERVICE)]) == 0 {
            assert_eq!(
                s.sum("rvs_service_connections_total", &[("service", SERVICE)]),
                conns
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the held connection stays active"
        );
    }
    rvsd.stop();
}

/// `listen` set in the file must work, or rvsd does not start; `""`
/// serves nothing.
#[test]
fn listen_set_in_the_file() {
    let t = Topo::new(1, false);
    t.lb.ip(&["link", "set", "lo", "up"]);
    let head = t.config_head("af_packet");
    // An address no interface of the namespace has.
    let bad = head.clone() + "[metrics]\nlisten = \"192.0.2.1:9469\"\n";
    let path = TempFile::new("toml");
    std::fs::write(&path.0, &bad).unwrap();
    let out =
        t.lb.exec(
            &[env!("CARGO_BIN_EXE_rvsd"), "--config", &path.0],
            Duration::from_secs(10),
        )
        .expect("rvsd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("metrics.listen 192.0.2.1:9469"), "{err}");

    let off = head + "[metrics]\nlisten = \"\"\n";
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &off);
    let out =
        t.lb.exec(
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                &format!("http://{LISTEN}/metrics"),
            ],
            TIMEOUT,
        )
        .expect("curl");
    assert!(!out.status.success(), "something answered on {LISTEN}");
    assert!(!rvsd.log().contains("metrics listening"), "{}", rvsd.log());
    rvsd.stop();
}

/// The packet path never logs: no logging in the balancer, the I/O
/// backends or rvsd's worker loop, steering and rings (they count instead:
/// drops by reason, ring full, neighbour requests limited). A log line
/// added there must be rate-limited and this test adjusted knowingly.
#[test]
fn packet_path_does_not_log() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut files = Vec::new();
    let mut dirs = vec![format!("{root}/rvs-lb/src"), format!("{root}/rvs-io/src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p.to_string_lossy().into_owned());
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    for f in ["dataplane.rs", "steering.rs", "redirect.rs"] {
        files.push(format!("{root}/rvsd/src/{f}").into());
    }
    assert!(files.len() > 20, "{files:?}");
    let macros = [
        "tracing::",
        "log::",
        "println!",
        "eprintln!",
        "print!",
        "eprint!",
        "dbg!",
        "info!(",
        "warn!(",
        "error!(",
        "debug!(",
        "trace!(",
    ];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Test modules may print.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            for m in macros {
                assert!(
                    !l.contains(m),
                    "{}:{}: `{m}` on the packet path: {l}",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}
