use super::*;

const GOOD: &str = r#"
[daemon]
workers = 2
cores = [0, 1]
tick_ms = 5

[[port]]
name = "eth0"
backend = "af_xdp"
xdp_mode = "generic"
mac = "02:00:00:00:00:01"
mtu = 1500
tap = "rvs-eth0"

[[port]]
name = "eth1"
backend = "af_packet"
kni = "rvs-eth1"

[[addr]]
addr = "10.0.0.1/24"
port = "eth0"

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"
port = "eth0"

[[route]]
prefix = "10.1.0.7/16"
port = "eth1"

[[neighbour]]
addr = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "eth0"

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"
toa = "syn"
laddrs = ["10.1.0.1", "10.1.0.2"]
[[service.real]]
addr = "10.1.0.10"
mode = "fullnat"
[[service.real]]
addr = "10.1.0.11"
port = 8080
weight = 3
mode = "fullnat"
upper_threshold = 100
lower_threshold = 50

[[service]]
proto = "udp"
vip = "10.0.0.100"
port = 53
scheduler = "sh"
sched_flags = "sh-port"
persistence = { timeout = 60, prefix = 24 }
uoa = true
[[service.real]]
addr = "10.1.0.10"
mode = "dr"

[[service]]
proto = "icmp"
vip = "10.0.0.100"
laddrs = ["10.1.0.3"]
[[service.real]]
addr = "10.1.0.12"
mode = "tun-gre"
[service.timeouts]
icmp = 5

[timeouts]
tcp = 600
udp = 30
"#;

#[test]
fn announce_vips_false_leaves_vips_to_vrrp() {
    assert!(!load(GOOD).unwrap().stack.explicit_vips);
    let text = GOOD.replace("[daemon]\n", "[daemon]\nannounce_vips = false\n");
    assert_ne!(text, GOOD);
    assert!(load(&text).unwrap().stack.explicit_vips);
}

#[test]
fn good_config_builds_the_right_specs() {
    let d = load(GOOD).unwrap();
    assert_eq!(d.daemon.workers, 2);
    assert_eq!(d.daemon.cores, Some(vec![0, 1]));
    assert_eq!(d.daemon.tick, Duration::from_millis(5));
    assert_eq!(d.stack.ports.len(), 2);
    assert_eq!(d.stack.ports[0].mac, Some([2, 0, 0, 0, 0, 1]));
    assert_eq!(d.stack.ports[0].xdp_mode, XdpMode::Generic);
    assert_eq!(d.stack.ports[1].tap.as_deref(), Some("rvs-eth1"));
    assert_eq!(d.stack.ports[1].backend, Backend::AfPacket);
    assert_eq!(
        d.stack.addrs,
        vec![AddrSpec {
            addr: "10.0.0.1".parse().unwrap(),
            prefix_len: 24,
            port: 0
        }]
    );
    assert_eq!(
        d.stack.routes[0].gateway,
        Some("10.0.0.254".parse().unwrap())
    );
    // The network is masked.
    assert_eq!(
        d.stack.routes[1].prefix,
        "10.1.0.0".parse::<IpAddr>().unwrap()
    );
    assert_eq!(d.stack.routes[1].port, 1);
    assert_eq!(d.stack.neighbours[0].1, [2, 0, 0, 0, 0, 0xfe]);

    let vip: IpAddr = "10.0.0.100".parse().unwrap();
    let mut tcp = ServiceSpec::new(ServiceKey::tcp(vip, 80), SchedulerKind::Rr);
    tcp.toa = ToaMode::Syn;
    tcp.laddrs = vec!["10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap()];
    tcp.dests = vec![
        DestSpec::new("10.1.0.10".parse().unwrap(), 80, ForwardMode::FullNat),
        DestSpec {
            upper_threshold: 100,
            lower_threshold: 50,
            ..DestSpec::new("10.1.0.11".parse().unwrap(), 8080, ForwardMode::FullNat).weight(3)
        },
    ];
    let mut udp = ServiceSpec::new(
        ServiceKey::udp(vip, 53),
        SchedConfig {
            flags: SchedFlags::parse(SchedulerKind::Sh, "sh-port").unwrap(),
            ..SchedConfig::new(SchedulerKind::Sh)
        },
    );
    udp.persistence = Some(Persistence {
        timeout: Duration::from_secs(60),
        prefix_len: 24,
    });
    udp.uoa = true;
    udp.dests = vec![DestSpec::new(
        "10.1.0.10".parse().unwrap(),
        53,
        ForwardMode::Dr,
    )];
    let mut icmp = ServiceSpec::new(
        ServiceKey::Addr {
            proto: rvs_wire::ip_proto::ICMP,
            addr: rvs_lb::flow::to_v6(vip),
            port: 0,
        },
        SchedulerKind::Rr,
    );
    icmp.laddrs = vec!["10.1.0.3".parse().unwrap()];
    icmp.dests = vec![DestSpec::new(
        "10.1.0.12".parse().unwrap(),
        0,
        ForwardMode::Tun(TunnelKind::Gre),
    )];
    let mut t = Timeouts::default();
    t.set_icmp(Duration::from_secs(5));
    icmp.timeouts = Some(t);
    assert_eq!(d.services, vec![tcp, udp, icmp]);
    assert_eq!(d.lb.services().len(), 3);
    assert_eq!(
        d.lb.timeouts.tcp(TcpState::Established),
        Duration::from_secs(600)
    );
    assert_eq!(d.lb.timeouts.udp(), Duration::from_secs(30));
    assert_eq!(d.lb.timeouts.icmp(), Duration::from_secs(60));
}

const PORT: &str = "[[port]]\nname = \"eth0\"\nbackend = \"af_packet\"\n";

/// A minimal valid file plus `extra`.
fn with(extra: &str) -> String {
    format!("{PORT}{extra}")
}

const SVC: &str = "[[service]]\nproto = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n";

#[test]
fn bad_configs_name_the_key_and_what_was_expected() {
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "port: no [[port]]: expected at least one"),
        (
            with("[daemon]\nworkerz = 2\n"),
            "daemon.workerz: unknown field `workerz`, expected one of `workers`, `cores`, `tick_ms`, `conn_capacity`, `announce_vips` (line 5)",
        ),
        (
            with("[daemon]\nworkers = \"two\"\n"),
            "daemon.workers: invalid type: string \"two\", expected u16 (line 5)",
        ),
        (
            with("[daemon]\nworkers = 0\n"),
            "daemon.workers: 0 workers: expected 1 to 256",
        ),
        (
            with("[daemon]\nworkers = 2\ncores = [1]\n"),
            "daemon.cores: 1 cores for 2 workers: expected one core per worker",
        ),
        (
            with("[daemon]\nworkers = 2\ncores = [1, 1]\n"),
            "daemon.cores[1]: core 1 is given to two workers",
        ),
        (
            with("[daemon]\ntick_ms = 0\n"),
            "daemon.tick_ms: 0: expected 1 to 1000 milliseconds",
        ),
        (
            "[[port]]\nname = \"eth0\"\nbackend = \"dpdk\"\n".into(),
            "port[0].backend: unknown variant `dpdk`, expected `af_xdp` or `af_packet` (line 3)",
        ),
        (
            "[[port]]\nname = \"eth0\"\n".into(),
            "port[0]: missing field `backend` (line 1)",
        ),
        (
            with("xdp_mode = \"native\"\n"),
            "port[0].xdp_mode: only for backend = \"af_xdp\"",
        ),
        (
            "[[port]]\nname = \"eth0\"\nbackend = \"af_xdp\"\nxdp_mode = \"fast\"\n".into(),
            "port[0].xdp_mode: unknown variant `fast`, expected one of `auto`, `native`, `generic` (line 4)",
        ),
        (
            with("mac = \"02:00:00:00:01\"\n"),
            "port[0].mac: `02:00:00:00:01`: expected a MAC address such as 02:00:00:00:00:01",
        ),
        (
            with("mac = \"01:00:5e:00:00:01\"\n"),
            "port[0].mac: `01:00:5e:00:00:01`: expected a unicast MAC address",
        ),
        (with("mtu = 20\n"), "port[0].mtu: 20: expected 1280 to 9000"),
        (
            format!("{PORT}{PORT}"),
            "port[1].name: interface `eth0` is configured twice",
        ),
        (
            with("tap = \"eth0\"\n"),
            "port[0].tap: interface `eth0` is used twice",
        ),
        (
            with("[[addr]]\naddr = \"10.0.0.1\"\nport = \"eth0\"\n"),
            "addr[0].addr: `10.0.0.1`: expected address/prefix-length such as 10.0.0.1/24",
        ),
        (
            with("[[addr]]\naddr = \"10.0.0.1/33\"\nport = \"eth0\"\n"),
            "addr[0].addr: `10.0.0.1/33`: prefix length 33 exceeds 32",
        ),
        (
            with("[[addr]]\naddr = \"10.0.0.1/24\"\nport = \"eth9\"\n"),
            "addr[0].port: no port named `eth9` (expected one of the [[port]] names: `eth0`)",
        ),
        (
            with("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"fe80::1\"\nport = \"eth0\"\n"),
            "route[0].via: fe80::1 is not of the family of 0.0.0.0/0",
        ),
        (
            with("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"10.0.0.300\"\nport = \"eth0\"\n"),
            "route[0].via: invalid IP address syntax (line 6)",
        ),
        (
            with("[[neighbour]]\naddr = \"10.0.0.2\"\nmac = \"zz\"\nport = \"eth0\"\n"),
            "neighbour[0].mac: `zz`: expected a MAC address such as 02:00:00:00:00:01",
        ),
        (
            with("[[service]]\nproto = \"sctp\"\nvip = \"10.0.0.100\"\n"),
            "service[0].proto: unknown variant `sctp`, expected one of `tcp`, `udp`, `icmp` (line 5)",
        ),
        (
            with(&format!("{SVC}scheduler = \"maglev\"\n")),
            "service[0].scheduler: unknown scheduler `maglev` (expected one of: rr, wrr, lc, wlc, sed, nq, sh, dh, mh, conhash, fo)",
        ),
        (
            with(&format!(
                "{SVC}scheduler = \"sh\"\nsched_flags = \"mh-port\"\n"
            )),
            "service[0].sched_flags: scheduler flag `mh-port` does not apply to this scheduler",
        ),
        (
            with(&format!("{SVC}toa = \"ack\"\n")),
            "service[0].toa: unknown variant `ack`, expected one of `off`, `first-data`, `syn` (line 8)",
        ),
        (
            with(&format!(
                "{SVC}[[service.real]]\naddr = \"10.1.0.1\"\nmode = \"fullnat\"\n"
            )),
            "service[0].real[0].mode: FullNat to 10.1.0.1 needs a local address of its family (add one with --add-laddr)",
        ),
        (
            with(&format!(
                "{SVC}[[service.real]]\naddr = \"10.1.0.1\"\nmode = \"masq\"\n"
            )),
            "service[0].real[0].mode: unknown variant `masq`, expected one of `fullnat`, `nat`, `dr`, `tun`, `tun-gre`, `snat` (line 10)",
        ),
        (
            with(&format!(
                "{SVC}[[service.real]]\naddr = \"10.1.0.1\"\nmode = \"nat\"\nweight = 4294967295\n"
            )),
            "service[0].real[0].weight: 4294967295 is above the maximum 2147483647",
        ),
        (
            with(&format!(
                "{SVC}[[service.real]]\naddr = \"10.1.0.1\"\nmode = \"nat\"\nwieght = 1\n"
            )),
            "service[0].real[0].wieght: unknown field `wieght`, expected one of `addr`, `port`, `weight`, `mode`, `upper_threshold`, `lower_threshold` (line 11)",
        ),
        (
            with(&format!(
                "{SVC}[[service.real]]\naddr = \"10.1.0.1\"\nmode = \"dr\"\nport = 81\n"
            )),
            "service[0].real[0].port: Route mode cannot change the port (81 ≠ 80): packets reach the server unchanged",
        ),
        (
            with("[[service]]\nproto = \"tcp\"\nvip = \"0.0.0.0\"\nport = 80\n"),
            "service[0].vip: 0.0.0.0 is not a unicast address",
        ),
        (
            with("[[service]]\nproto = \"tcp\"\nvip = \"10.0.0.100\"\n"),
            "service[0].port: port 0 (all ports) is only allowed with persistence (-p)",
        ),
        (
            with(&format!(
                "{SVC}persistence = {{ timeout = 300, prefix = 40 }}\n"
            )),
            "service[0].persistence.prefix: prefix length 40 exceeds 32",
        ),
        (
            with(&format!("{SVC}laddrs = [\"10.1.0.1\", \"10.1.0.1\"]\n")),
            "service[0].laddrs[1]: local address 10.1.0.1 appears twice",
        ),
        (
            with(&format!("{SVC}{SVC}")),
            "service[1]: duplicate virtual service TCP 10.0.0.100:80",
        ),
        (
            with(&format!("{SVC}[service.timeouts]\ntcp = 0\n")),
            "service[0].timeouts.tcp: 0: expected 1 to 2678400 seconds (31 days)",
        ),
        (
            with("[timeouts]\nudp = 0\n"),
            "timeouts.udp: 0: expected 1 to 2678400 seconds (31 days)",
        ),
        (
            with("[timeouts]\nsctp = 5\n"),
            "timeouts.sctp: unknown field `sctp`, expected one of `tcp`, `tcp_fin`, `udp`, `icmp` (line 5)",
        ),
        (
            with("[bogus]\n"),
            "bogus: unknown field `bogus`, expected one of `daemon`, `port`, `addr`, `route`, `neighbour`, `service`, `timeouts`, `api`, `metrics` (line 4)",
        ),
        (
            with("[daemon\n"),
            "syntax: unclosed table, expected `]` (line 4)",
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in &cases {
        match load(text) {
            Ok(_) => failures.push(format!("accepted:\n{text}")),
            Err(e) => {
                let got = e.to_string();
                if !got.starts_with(want) {
                    failures.push(format!("{text}\n  want: {want}\n  got:  {got}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn stack_field_paths_are_translated() {
    let t = |f: &str| translate_stack(ConfigError::new(f, "x")).field;
    assert_eq!(t("ports[1].mtu"), "port[1].mtu");
    assert_eq!(t("addrs[0].prefix_len"), "addr[0].addr");
    assert_eq!(t("routes[2].gateway"), "route[2].via");
    assert_eq!(t("routes[2].prefix_len"), "route[2].prefix");
    assert_eq!(t("static_neighbours[0].mac"), "neighbour[0].mac");
    // A stack check the file's own checks leave to the stack.
    let e = load(&with(
        "[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"10.0.0.1\"\nport = \"eth0\"\n[[route]]\nprefix = \"10.0.0.0/8\"\nport = \"eth0\"\n",
    ))
    .unwrap_err();
    assert!(e.field.starts_with("route[1]"), "{e}");
}

#[test]
fn balancer_field_paths_are_translated() {
    let t = |f: &str| translate(ConfigError::new(f, "x")).field;
    assert_eq!(t("services[2].dests[0].addr"), "service[2].real[0].addr");
    assert_eq!(t("services[2].addr"), "service[2].vip");
    assert_eq!(t("services[0].protocol"), "service[0].proto");
    assert_eq!(
        t("services[0].persistence.netmask"),
        "service[0].persistence.prefix"
    );
    assert_eq!(t("services[1].dests"), "service[1].real");
}
