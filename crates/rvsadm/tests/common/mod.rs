//! Shared fixture: a configuration with every forwarding method, both
//! families, a firewall-mark service, persistence, scheduler flags, counters
//! and rates that hit each K/M/G/T scaling step, and connection entries.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;

use rvs_api::fake::Model;
use rvs_api::*;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn key(protocol: Protocol, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        addr: ip(addr),
        port,
    }
}

pub fn rs(addr: &str, port: u16, forward: Forward, weight: u32) -> RealServerEntry {
    RealServerEntry {
        server: RealServer {
            addr: ip(addr),
            port,
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        },
        active_conns: 0,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

pub fn service(key: ServiceKey, sched: &str) -> ServiceEntry {
    ServiceEntry {
        service: Service {
            key,
            scheduler: sched.into(),
            flags: vec![],
            persistence: None,
            one_packet: false,
        },
        stats: Stats::default(),
        rates: Rates::default(),
        real_servers: vec![],
        local_addrs: vec![],
    }
}

/// Services deliberately out of ipvsadm's order (rvsadm must sort them).
pub fn fixture() -> Model {
    let mut web = service(key(Protocol::Tcp, "10.0.0.1", 80), "rr");
    let mut a = rs("192.168.1.12", 8080, Forward::Fullnat, 1);
    a.active_conns = 3;
    a.inactive_conns = 2;
    let mut b = rs("192.168.1.2", 8080, Forward::Masq, 10);
    b.persist_conns = 4;
    b.server.upper_threshold = 100;
    b.server.lower_threshold = 10;
    b.stats = Stats {
        conns: 1_000_000_000,
        in_packets: 100_000_000,
        out_packets: 0,
        in_bytes: 99_999_999_999,
        out_bytes: 100_000_000_000_000,
    };
    b.rates = Rates {
        cps: 123_456_789,
        in_pps: 2,
        out_pps: 3,
        in_bps: 4_000_000_000,
        out_bps: 5,
    };
    web.real_servers = vec![a, b];
    web.stats = Stats {
        conns: 5,
        in_packets: 123_456_789,
        out_packets: 99_999_999,
        in_bytes: 123_456_789_012,
        out_bytes: 500_000_000_000_000,
    };
    web.rates = Rates {
        cps: 123_456_789,
        in_pps: 2,
        out_pps: 3,
        in_bps: 4_000_000_000,
        out_bps: 5,
    };
    web.local_addrs = vec![
        LocalAddrEntry {
            laddr: LocalAddr {
                addr: ip("192.168.100.1"),
                ifname: Some("dpdk0".into()),
            },
            port_conflicts: 3,
            conns: 40,
        },
        LocalAddrEntry {
            laddr: LocalAddr {
                addr: ip("192.168.100.2"),
                ifname: None,
            },
            port_conflicts: 0,
            conns: 0,
        },
    ];

    let mut dns = service(key(Protocol::Udp, "10.0.0.1", 53), "sh");
    dns.service.flags = vec!["sh-fallback".into(), "sh-port".into()];
    dns.service.persistence = Some(Persistence {
        timeout: 300,
        netmask: 24,
    });
    let mut d = rs("10.1.0.1", 53, Forward::Route, 1);
    d.inactive_conns = 7;
    dns.real_servers = vec![d];

    let mut v6 = service(key(Protocol::Tcp, "2001:db8::1", 443), "mh");
    v6.service.persistence = Some(Persistence {
        timeout: 360,
        netmask: 64,
    });
    let mut t = rs("2001:db8::10", 443, Forward::Tunnel, 65535);
    t.active_conns = 1;
    v6.real_servers = vec![t];

    let fwm = service(
        ServiceKey::Fwmark {
            mark: 7,
            family: Family::Ipv4,
        },
        "wlc",
    );

    Model {
        services: vec![fwm, v6, dns, web],
        connections: vec![
            Connection {
                protocol: Protocol::Tcp,
                expire_secs: 899,
                state: "ESTABLISHED".into(),
                client: "203.0.113.9:51000".parse().unwrap(),
                virtual_addr: "10.0.0.1:80".parse().unwrap(),
                local: Some("192.168.100.1:1025".parse().unwrap()),
                destination: "192.168.1.2:8080".parse().unwrap(),
            },
            Connection {
                protocol: Protocol::Udp,
                expire_secs: 5,
                state: "UDP".into(),
                client: "[2001:db8::99]:5353".parse().unwrap(),
                virtual_addr: "[2001:db8::1]:53".parse().unwrap(),
                local: None,
                destination: "[2001:db8::10]:53".parse().unwrap(),
            },
        ],
        timeouts: Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        },
        table_size: 4096,
        ..Model::default()
    }
}

/// Only the first service (TCP 10.0.0.1:80).
pub fn web_only() -> ServiceList {
    let m = fixture();
    ServiceList {
        table_size: 4096,
        services: m
            .services
            .into_iter()
            .filter(|s| s.service.key == key(Protocol::Tcp, "10.0.0.1", 80))
            .collect(),
    }
}
