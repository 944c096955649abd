//! The keepalived.conf corpus (tests/conf/): each file, written in
//! keepalived's documented syntax, parses to the model written out here
//! in full (whole-struct equality), with exactly the warnings listed.
//! The expected values restate keepalived's defaults independently of the
//! parser, so a changed default shows up as a failure here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rvs_keepalived::conf::model::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conf")
}

/// Loads a corpus file; returns its path too.
fn load(name: &str) -> (PathBuf, Config, Vec<(PathBuf, u32, String)>) {
    let path = dir().join(name);
    let (cfg, warnings) = rvs_keepalived::conf::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let w = warnings
        .into_iter()
        .map(|w| (w.loc.file, w.loc.line, w.message))
        .collect();
    (path, cfg, w)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(file: &Path, line: u32) -> Loc {
    Loc {
        file: file.to_path_buf(),
        line,
    }
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

/// A notify-type script run as the default script user.
fn sc(cmd: &str) -> Option<Script> {
    sc_as(cmd, None)
}

/// A notify-type script with its `USER [GROUP]`.
fn sc_as(cmd: &str, user: Option<&str>) -> Option<Script> {
    Some(Script {
        cmd: cmd.into(),
        user: user.map(str::to_string),
    })
}

/// A virtual server with keepalived's defaults.
fn vs(addr: VsAddr, loc: Loc) -> VirtualServer {
    VirtualServer {
        addr,
        delay_loop: secs(60),
        scheduler: "wlc".into(),
        sched_flags: vec![],
        kind: LbKind::Nat,
        persistence_timeout: None,
        persistence_granularity: None,
        protocol: Protocol::Tcp,
        ops: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        alpha: false,
        omega: false,
        inhibit_on_failure: false,
        sorry_server: None,
        sorry_server_inhibit: false,
        sorry_server_kind: None,
        laddr_group: None,
        virtualhost: None,
        real_servers: vec![],
        loc,
    }
}

fn vip(a: &str, port: u16) -> VsAddr {
    VsAddr::Addr { ip: ip(a), port }
}

/// A real server with keepalived's defaults.
fn rs(a: &str, port: u16, loc: Loc) -> RealServer {
    RealServer {
        ip: ip(a),
        port,
        weight: 1,
        kind: None,
        inhibit_on_failure: false,
        upper_threshold: 0,
        lower_threshold: 0,
        notify_up: None,
        notify_down: None,
        delay_loop: None,
        checkers: vec![],
        loc,
    }
}

/// Checker options with keepalived's defaults (`http`: HTTP_GET/SSL_GET).
fn common(loc: Loc, http: bool) -> CheckCommon {
    CheckCommon {
        connect_ip: None,
        connect_port: None,
        bindto: None,
        bind_port: None,
        connect_timeout: secs(5),
        retry: 1,
        delay_before_retry: secs(if http { 3 } else { 1 }),
        warmup: None,
        delay_loop: None,
        loc,
    }
}

fn url(path: &str) -> Url {
    Url {
        path: path.into(),
        digest: None,
        status_codes: vec![],
        virtualhost: None,
    }
}

fn http(tls: bool, urls: Vec<Url>, virtualhost: Option<String>, common: CheckCommon) -> Checker {
    Checker {
        kind: CheckKind::Http {
            tls,
            urls,
            virtualhost,
        },
        common,
    }
}

/// A VRRP instance with keepalived's defaults.
fn inst(name: &str, iface: &str, vrid: u8, loc: Loc) -> VrrpInstance {
    VrrpInstance {
        name: name.into(),
        initial_state: InitialState::Backup,
        interface: iface.into(),
        vrid,
        priority: 100,
        advert_int: secs(1),
        version: 2,
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        auth: Auth::None,
        vips: vec![],
        vips_excluded: vec![],
        src_ip: None,
        unicast_peers: vec![],
        track_interfaces: vec![],
        track_scripts: vec![],
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        loc,
    }
}

fn addr(a: &str, len: u8, dev: Option<&str>) -> VirtualIp {
    VirtualIp {
        addr: ip(a),
        prefix_len: len,
        dev: dev.map(str::to_string),
    }
}

fn warned(file: &Path, line: u32, msg: &str) -> (PathBuf, u32, String) {
    (file.to_path_buf(), line, msg.to_string())
}

fn ignored(file: &Path, line: u32, what: &str) -> (PathBuf, u32, String) {
    warned(
        file,
        line,
        &format!("{what} is not supported by rvs-keepalived: ignored"),
    )
}

#[test]
fn lvs_nat_http() {
    let (f, cfg, w) = load("lvs_nat_http.conf");
    let l = |n| at(&f, n);
    let mut web1 = rs("10.10.1.11", 80, l(25));
    web1.weight = 3;
    web1.inhibit_on_failure = true;
    web1.notify_up = sc("/usr/local/bin/rs-notify up 11");
    web1.notify_down = sc_as("/usr/local/bin/rs-notify down 11", Some("daemon daemon"));
    web1.checkers = vec![http(
        false,
        vec![
            Url {
                digest: s("9b3a0c85a887a256d6939da88aabd8cd"),
                ..url("/health")
            },
            Url {
                status_codes: vec![200, 201, 202, 204],
                ..url("/status?full")
            },
        ],
        None,
        CheckCommon {
            connect_timeout: secs(3),
            retry: 3,
            delay_before_retry: secs(2),
            ..common(l(30), true)
        },
    )];
    let mut web2 = rs("10.10.1.12", 80, l(44));
    web2.checkers = vec![Checker {
        kind: CheckKind::Tcp,
        common: CheckCommon {
            connect_port: Some(8080),
            connect_timeout: secs(2),
            ..common(l(46), false)
        },
    }];
    let want = Config {
        global: GlobalDefs {
            router_id: s("lb-nat-1"),
            ..GlobalDefs::default()
        },
        virtual_servers: vec![VirtualServer {
            delay_loop: secs(6),
            scheduler: "wrr".into(),
            persistence_timeout: Some(300),
            persistence_granularity: Some(24),
            quorum: 2,
            hysteresis: 1,
            quorum_up: sc("/usr/local/bin/vs-up web"),
            quorum_down: sc_as("/usr/local/bin/vs-down", Some("nobody")),
            sorry_server: Some((ip("10.10.1.250"), 8080)),
            sorry_server_inhibit: true,
            alpha: true,
            real_servers: vec![web1, web2],
            ..vs(vip("10.10.0.100", 80), l(10))
        }],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(
        w,
        vec![
            ignored(&f, 4, "`notification_email`"),
            ignored(&f, 7, "`smtp_server`"),
        ]
    );
}

#[test]
fn lvs_dr_ssl_inherits_checker_timers() {
    let (f, cfg, w) = load("lvs_dr_ssl.conf");
    let l = |n| at(&f, n);
    // Timers set on the virtual server reach every checker.
    let inherited = |line| CheckCommon {
        retry: 2,
        connect_timeout: secs(4),
        warmup: Some(secs(5)),
        ..common(l(line), true)
    };
    let mut a = rs("198.51.100.21", 443, l(14));
    a.inhibit_on_failure = true;
    a.checkers = vec![http(
        true,
        vec![Url {
            status_codes: vec![200],
            ..url("/")
        }],
        s("www.example.com"),
        inherited(15),
    )];
    let mut b = rs("198.51.100.22", 8443, l(22));
    b.weight = 5;
    b.checkers = vec![http(
        true,
        vec![Url {
            virtualhost: s("ping.example.com"),
            ..url("/ping")
        }],
        s("api.example.com"),
        CheckCommon {
            retry: 4,
            bindto: Some(ip("203.0.113.2")),
            bind_port: Some(40000),
            delay_loop: Some(secs(3)),
            ..inherited(27)
        },
    )];
    let want = Config {
        virtual_servers: vec![VirtualServer {
            delay_loop: secs(10),
            scheduler: "lc".into(),
            kind: LbKind::Dr,
            virtualhost: s("www.example.com"),
            inhibit_on_failure: true,
            real_servers: vec![a, b],
            ..vs(vip("203.0.113.10", 443), l(3))
        }],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(
        w,
        vec![ignored(
            &f,
            36,
            "`SMTP_CHECK` (the real server is not checked by it)"
        )]
    );
    let c = &cfg.virtual_servers[0].real_servers[1].checkers[0];
    let (vs0, rs1) = (
        &cfg.virtual_servers[0],
        &cfg.virtual_servers[0].real_servers[1],
    );
    assert_eq!(c.delay_loop(rs1, vs0), secs(3));
}

#[test]
fn fwmark_and_groups() {
    let (f, cfg, w) = load("fwmark_group.conf");
    let l = |n| at(&f, n);
    let group = VsGroup {
        name: "web_vips".into(),
        entries: vec![
            VsGroupEntry::Addr {
                ip: ip("192.168.50.10"),
                port: 80,
            },
            VsGroupEntry::Addr {
                ip: ip("192.168.50.11"),
                port: 80,
            },
            VsGroupEntry::Addr {
                ip: ip("192.168.50.12"),
                port: 80,
            },
            VsGroupEntry::Addr {
                ip: ip("192.168.50.20"),
                port: 8080,
            },
            VsGroupEntry::Fwmark(3),
        ],
        loc: l(3),
    };
    let mut pinged = rs("192.168.60.1", 80, l(14));
    pinged.checkers = vec![Checker {
        kind: CheckKind::Ping,
        common: CheckCommon {
            retry: 2,
            ..common(l(15), false)
        },
    }];
    let mut misc = rs("2001:db8:60::1", 0, l(26));
    misc.checkers = vec![Checker {
        kind: CheckKind::Misc {
            path: "/usr/local/bin/check-app --host 2001:db8:60::1".into(),
            timeout: Some(secs(4)),
            dynamic: true,
            user: s("nobody nogroup"),
        },
        common: CheckCommon {
            retry: 0,
            ..common(l(27), false)
        },
    }];
    let mut dns = rs("192.168.60.53", 53, l(42));
    dns.checkers = vec![
        Checker {
            kind: CheckKind::Udp {
                payload: vec![0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0],
                require_reply: Some(vec![0x00, 0x01, 0x81]),
            },
            common: common(l(43), false),
        },
        Checker {
            kind: CheckKind::Udp {
                payload: vec![],
                require_reply: Some(vec![]),
            },
            common: CheckCommon {
                connect_port: Some(5353),
                ..common(l(47), false)
            },
        },
    ];
    let want = Config {
        vs_groups: vec![group],
        virtual_servers: vec![
            VirtualServer {
                scheduler: "sh".into(),
                sched_flags: vec!["sh-port".into(), "sh-fallback".into()],
                kind: LbKind::Dr,
                real_servers: vec![pinged],
                ..vs(VsAddr::Group("web_vips".into()), l(9))
            },
            VirtualServer {
                scheduler: "rr".into(),
                kind: LbKind::Tun,
                persistence_granularity: Some(64),
                real_servers: vec![misc],
                ..vs(VsAddr::Fwmark { mark: 7, v6: true }, l(21))
            },
            VirtualServer {
                protocol: Protocol::Udp,
                ops: true,
                scheduler: "mh".into(),
                sched_flags: vec!["mh-port".into()],
                real_servers: vec![dns],
                ..vs(vip("192.168.50.53", 53), l(36))
            },
        ],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(w, vec![]);
}

#[test]
fn dpvs_fullnat_with_local_address_group() {
    let (f, cfg, w) = load("dpvs_fnat.conf");
    let l = |n| at(&f, n);
    let on = |a: &str, dev: Option<&str>| (ip(a), dev.map(str::to_string));
    let mut r2 = rs("192.168.100.2", 80, l(19));
    r2.weight = 100;
    r2.checkers = vec![Checker {
        kind: CheckKind::Tcp,
        common: CheckCommon {
            connect_timeout: secs(1),
            ..common(l(22), false)
        },
    }];
    let mut r3 = rs("192.168.100.3", 80, l(29));
    r3.weight = 100;
    let want = Config {
        laddr_groups: vec![LaddrGroup {
            name: "laddr_g1".into(),
            addrs: vec![
                on("192.168.100.200", Some("dpdk0")),
                on("192.168.100.201", Some("dpdk1")),
                on("192.168.100.202", Some("dpdk1")),
                on("192.168.100.210", None),
            ],
            loc: l(3),
        }],
        virtual_servers: vec![
            VirtualServer {
                delay_loop: secs(3),
                scheduler: "conhash".into(),
                kind: LbKind::FullNat,
                laddr_group: s("laddr_g1"),
                real_servers: vec![r2, r3],
                ..vs(vip("10.0.0.100", 80), l(10))
            },
            VirtualServer {
                scheduler: "rr".into(),
                kind: LbKind::Snat,
                real_servers: vec![rs("192.168.100.4", 80, l(35))],
                ..vs(vip("10.0.0.101", 80), l(32))
            },
        ],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(
        w,
        vec![
            ignored(&f, 17, "`syn_proxy`"),
            warned(
                &f,
                32,
                "FNAT/SNAT virtual_server without `laddr_group_name`: no local address is given to rvsd for it"
            ),
        ]
    );
}

#[test]
fn vrrp_master_with_scripts_and_sync_group() {
    let (f, cfg, w) = load("vrrp_master.conf");
    let l = |n| at(&f, n);
    let ext = VrrpInstance {
        initial_state: InitialState::Master,
        priority: 150,
        auth: Auth::Pass(b"s3cret".to_vec()),
        vips: vec![
            addr("192.0.2.100", 24, Some("eth0")),
            addr("192.0.2.101", 32, None),
        ],
        vips_excluded: vec![addr("192.0.2.200", 32, None)],
        track_interfaces: vec![
            TrackInterface {
                name: "eth1".into(),
                weight: 0,
            },
            TrackInterface {
                name: "eth2".into(),
                weight: -10,
            },
        ],
        track_scripts: vec![
            TrackScript {
                name: "chk_rvsd".into(),
                weight: None,
            },
            TrackScript {
                name: "chk_disk".into(),
                weight: Some(-5),
            },
        ],
        notify_master: sc_as("/usr/local/bin/notify master", Some("nobody")),
        notify_backup: sc("/usr/local/bin/notify-backup"),
        notify_fault: sc("/usr/local/bin/notify-fault"),
        notify_stop: sc("/usr/local/bin/notify-stop"),
        notify: sc_as("/usr/local/bin/notify-all", Some("daemon :")),
        ..inst("VI_EXT", "eth0", 51, l(33))
    };
    let int = VrrpInstance {
        initial_state: InitialState::Master,
        priority: 150,
        vips: vec![addr("10.1.0.1", 16, None)],
        ..inst("VI_INT", "eth1", 52, l(66))
    };
    let want = Config {
        global: GlobalDefs {
            router_id: s("node-a"),
            garp_master_delay: secs(2),
            garp_master_repeat: 3,
            enable_script_security: true,
            script_user: s("keepalived_script"),
            ..GlobalDefs::default()
        },
        vrrp_scripts: vec![
            VrrpScript {
                name: "chk_rvsd".into(),
                script: "/usr/bin/pgrep -x rvsd".into(),
                interval: secs(2),
                timeout: Some(secs(1)),
                weight: -20,
                rise: 3,
                fall: 2,
                user: None,
                loc: l(10),
            },
            VrrpScript {
                name: "chk_disk".into(),
                script: "/usr/local/bin/chk-disk".into(),
                interval: secs(1),
                timeout: None,
                weight: 0,
                rise: 1,
                fall: 1,
                user: None,
                loc: l(19),
            },
        ],
        sync_groups: vec![SyncGroup {
            name: "VG_1".into(),
            members: vec!["VI_EXT".into(), "VI_INT".into()],
            notify_master: sc_as("/usr/local/bin/vg-notify master", Some("nobody nogroup")),
            notify_backup: sc("/usr/local/bin/vg-backup"),
            notify_fault: sc("/usr/local/bin/vg-fault"),
            notify: None,
            loc: l(23),
        }],
        vrrp_instances: vec![ext, int],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(
        w,
        vec![
            ignored(&f, 44, "virtual address option `label`"),
            ignored(&f, 63, "`smtp_alert`"),
            ignored(&f, 74, "`dont_track_primary`"),
        ]
    );
}

#[test]
fn vrrp_backup_nopreempt_and_truncated_password() {
    let (f, cfg, w) = load("vrrp_backup.conf");
    let l = |n| at(&f, n);
    let want = Config {
        vrrp_instances: vec![VrrpInstance {
            nopreempt: true,
            preempt_delay: secs(30),
            garp_master_delay: Some(secs(1)),
            garp_master_repeat: Some(2),
            auth: Auth::Pass(b"longpass".to_vec()),
            vips: vec![
                addr("192.0.2.100", 24, Some("eth0")),
                addr("192.0.2.101", 32, None),
            ],
            ..inst("VI_EXT", "eth0", 51, l(2))
        }],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(
        w,
        vec![warned(
            &f,
            13,
            "auth_pass is longer than 8 characters: truncated"
        )]
    );
}

#[test]
fn vrrp_unicast_peers() {
    let (f, cfg, w) = load("vrrp_unicast.conf");
    let l = |n| at(&f, n);
    let want = Config {
        vrrp_instances: vec![VrrpInstance {
            priority: 120,
            src_ip: Some(ip("172.16.0.1")),
            unicast_peers: vec![ip("172.16.0.2"), ip("172.16.0.3")],
            vips: vec![addr("172.16.0.100", 24, None)],
            // The other family cannot be in IPv4 adverts: keepalived keeps
            // it as an excluded address.
            vips_excluded: vec![addr("2001:db8::100", 64, None)],
            ..inst("VI_U", "ens3", 7, l(2))
        }],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(
        w,
        vec![
            ignored(&f, 15, "`accept`"),
            warned(
                &f,
                2,
                "vrrp_instance VI_U: 2001:db8::100 is not of the instance's address family: treated as virtual_ipaddress_excluded"
            ),
        ]
    );
}

#[test]
fn vrrp3_ipv6_and_ipv6_virtual_server() {
    let (f, cfg, w) = load("vrrp3_ipv6.conf");
    let l = |n| at(&f, n);
    let mut backend = rs("2001:db8:2::1", 8080, l(37));
    backend.checkers = vec![http(false, vec![url("/")], None, common(l(38), true))];
    let want = Config {
        global: GlobalDefs {
            vrrp_version: 3,
            vrrp_startup_delay: Duration::from_millis(1500),
            ..GlobalDefs::default()
        },
        vrrp_instances: vec![
            VrrpInstance {
                priority: 200,
                version: 3,
                advert_int: Duration::from_millis(500),
                src_ip: Some(ip("fe80::1")),
                vips: vec![
                    addr("2001:db8:1::10", 64, Some("eth0")),
                    addr("fe80::10", 64, None),
                ],
                ..inst("VI6", "eth0", 60, l(8))
            },
            // Same vrid on the same interface: allowed, the family differs.
            VrrpInstance {
                advert_int: secs(2),
                vips: vec![addr("192.0.2.60", 32, None)],
                ..inst("VI4", "eth0", 60, l(22))
            },
        ],
        virtual_servers: vec![VirtualServer {
            persistence_timeout: Some(360),
            persistence_granularity: Some(48),
            real_servers: vec![backend],
            ..vs(vip("2001:db8:1::10", 80), l(32))
        }],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(w, vec![ignored(&f, 19, "`native_ipv6`")]);
}

#[test]
fn include_globs_nested_and_missing() {
    let (f, cfg, w) = load("include/main.conf");
    let vs_file = dir().join("include/conf.d/10-vs.conf");
    let vrrp_file = dir().join("include/conf.d/20-vrrp.conf");
    let mut backend = rs("10.20.1.1", 443, at(&vs_file, 3));
    backend.checkers = vec![Checker {
        kind: CheckKind::Tcp,
        common: common(at(&vs_file, 4), false),
    }];
    let want = Config {
        global: GlobalDefs {
            router_id: s("node-inc"),
            ..GlobalDefs::default()
        },
        virtual_servers: vec![VirtualServer {
            scheduler: "rr".into(),
            real_servers: vec![backend],
            ..vs(vip("10.20.0.1", 443), at(&vs_file, 1))
        }],
        vrrp_instances: vec![VrrpInstance {
            vips: vec![addr("10.20.0.1", 32, None)],
            ..inst("VI_INC", "eth0", 9, at(&vrrp_file, 1))
        }],
        ..Config::default()
    };
    assert_eq!(cfg, want);
    assert_eq!(
        w,
        vec![warned(&f, 6, "include `missing/*.conf` matches no file")]
    );
}

#[test]
fn unknown_and_unsupported_keywords_are_warned_not_dropped() {
    let text = "global_defs {\n    lvs_id LB1\n    routr_id typo\n}\nvirtual_server 10.0.0.1 80 {\n    lb_algo lblc\n    foo bar\n    real_server 10.0.1.1 80 {\n        DNS_CHECK {\n        }\n    }\n}\nvrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    garp_lower_prio_repeat 2\n    authentication {\n        auth_type AH\n        auth_pass x\n    }\n}\n";
    let f = Path::new("w.conf");
    let (cfg, w) = rvs_keepalived::conf::parse_str(text, f).unwrap();
    let w: Vec<_> = w
        .into_iter()
        .map(|w| (w.loc.file, w.loc.line, w.message))
        .collect();
    assert_eq!(
        w,
        vec![
            ignored(f, 2, "`lvs_id`"),
            warned(f, 3, "unknown keyword `routr_id`: ignored"),
            warned(
                f,
                6,
                "scheduler `lblc` is not implemented by rvs: rvsd will refuse this virtual_server"
            ),
            warned(f, 7, "unknown keyword `foo`: ignored"),
            ignored(f, 9, "`DNS_CHECK` (the real server is not checked by it)"),
            ignored(f, 16, "`garp_lower_prio_repeat`"),
            ignored(f, 18, "`auth_type AH`"),
        ]
    );
    // What was recognised still took effect; what was not changed nothing.
    assert_eq!(cfg.global, GlobalDefs::default());
    assert_eq!(cfg.virtual_servers[0].scheduler, "lblc");
    assert!(cfg.virtual_servers[0].real_servers[0].checkers.is_empty());
    assert_eq!(cfg.vrrp_instances[0].auth, Auth::Ah(b"x".to_vec()));
}

#[test]
fn notify_scripts_take_a_user_and_an_unknown_one_disables_them() {
    let text = "vrrp_instance V {
    interface eth0
    virtual_router_id 5
    notify_master \"/x.sh\" nobody
    notify_backup \"/y.sh arg\" no-such-user-rvs
    notify_fault /z.sh nobody no-such-group-rvs
    notify_stop /s.sh root :daemon
}
virtual_server 10.0.0.1 80 {
    real_server 10.0.1.1 80 {
        notify_up /up.sh nobody
        MISC_CHECK {
            misc_path \"/chk.sh\" nobody
        }
    }
}
";
    let f = Path::new("u.conf");
    let (cfg, w) = rvs_keepalived::conf::parse_str(text, f).unwrap();
    let v = &cfg.vrrp_instances[0];
    assert_eq!(v.notify_master, sc_as("/x.sh", Some("nobody")));
    assert_eq!(v.notify_stop, sc_as("/s.sh", Some("root :daemon")));
    // keepalived: "Invalid user/group for notify script ... - ignoring".
    assert_eq!((&v.notify_backup, &v.notify_fault), (&None, &None));
    let rs = &cfg.virtual_servers[0].real_servers[0];
    assert_eq!(rs.notify_up, sc_as("/up.sh", Some("nobody")));
    // A MISC_CHECK's user is its `user`: the word after misc_path is not.
    assert!(
        matches!(&rs.checkers[0].kind, CheckKind::Misc { path, user: None, .. } if path == "/chk.sh")
    );
    let w: Vec<_> = w
        .into_iter()
        .map(|w| (w.loc.file, w.loc.line, w.message))
        .collect();
    assert_eq!(
        w,
        vec![
            warned(
                f,
                5,
                "`notify_backup`: user `no-such-user-rvs` does not exist: the script is disabled"
            ),
            warned(
                f,
                6,
                "`notify_fault`: group `no-such-group-rvs` does not exist: the script is disabled"
            ),
            warned(
                f,
                13,
                "`misc_path`: `nobody` after the command is ignored (a user is set with `user`)"
            ),
        ]
    );
}
