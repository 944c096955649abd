//! Malformed keepalived.conf variants: each is refused, and the error
//! names the exact file and line of the fault (and says what it is).
//! Plus a property: no input makes the parser panic, and every error
//! points at a line inside the file.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rvs_keepalived::conf::{ConfError, parse_str};

/// Parses `text` as `bad.conf` and returns its error.
fn refuse(text: &str) -> ConfError {
    match parse_str(text, Path::new("bad.conf")) {
        Ok((cfg, w)) => panic!("accepted:\n{text}\n{cfg:#?}\n{w:#?}"),
        Err(e) => e,
    }
}

/// One malformed variant: its text, the line the error must name and a
/// piece of the message.
struct Case {
    text: &'static str,
    line: u32,
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        text: "vrrp_script s {\n    script \"/bin/true\n}\n",
        line: 2,
        says: "unterminated quoted string",
    },
    Case {
        text: "global_defs {\n}\nvirtual_server 10.0.0.1 80 {\n    lb_algo rr\n",
        line: 3,
        says: "never closed",
    },
    Case {
        text: "global_defs {\n    router_id a\n}\n}\n",
        line: 4,
        says: "closes no block",
    },
    Case {
        text: "global_defs {\n}\n\n{ router_id a }\n",
        line: 4,
        says: "without a keyword",
    },
    Case {
        text: "! web\nvirtual_server 10.0.0.300 80 {\n}\n",
        line: 2,
        says: "`10.0.0.300` is not an IP address",
    },
    Case {
        text: "virtual_server 10.0.0.1 65536 {\n}\n",
        line: 1,
        says: "out of range",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 http {\n    }\n}\n",
        line: 2,
        says: "not an integer",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    lb_kind MAGIC\n}\n",
        line: 2,
        says: "unknown forwarding method `MAGIC`",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    delay_loop 5\n    lb_algo fastest\n}\n",
        line: 3,
        says: "unknown scheduler `fastest`",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    protocol SCTP\n}\n",
        line: 2,
        says: "SCTP is not supported by rvs",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    delay_loop soon\n}\n",
        line: 2,
        says: "not a duration",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    persistence_granularity 255.0.255.0\n}\n",
        line: 2,
        says: "not contiguous",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        HTTP_GET {\n            url {\n                path /\n                digest 12345\n            }\n        }\n    }\n}\n",
        line: 6,
        says: "not an MD5 sum",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        HTTP_GET {\n            url {\n                path /\n                status_code 200 2xx\n            }\n        }\n    }\n}\n",
        line: 6,
        says: "not an integer",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        HTTP_GET {\n            url {\n                digest 9b3a0c85a887a256d6939da88aabd8cd\n            }\n        }\n    }\n}\n",
        line: 4,
        says: "`url` needs a `path`",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        MISC_CHECK {\n            misc_timeout 3\n        }\n    }\n}\n",
        line: 3,
        says: "needs `misc_path`",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n    }\n    real_server 10.0.1.1 80 {\n    }\n}\n",
        line: 4,
        says: "already defined at bad.conf:2",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n}\nvirtual_server 10.0.0.1 80 {\n}\n",
        line: 3,
        says: "already defined at bad.conf:1",
    },
    Case {
        text: "virtual_server group nowhere {\n}\n",
        line: 1,
        says: "virtual_server_group `nowhere` is not defined",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    lb_kind FNAT\n    laddr_group_name lg\n}\n",
        line: 3,
        says: "local_address_group `lg` is not defined",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    priority 0\n}\n",
        line: 4,
        says: "priority 0 is out of range 1..=255",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    priority 256\n}\n",
        line: 4,
        says: "priority 256 is out of range",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 256\n}\n",
        line: 3,
        says: "virtual_router_id 256 is out of range",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 0\n}\n",
        line: 3,
        says: "virtual_router_id 0 is out of range",
    },
    Case {
        text: "\nvrrp_instance V {\n    virtual_router_id 5\n}\n",
        line: 2,
        says: "`interface` is required",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n}\n",
        line: 1,
        says: "`virtual_router_id` is required",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    track_script {\n        chk_gone\n    }\n}\n",
        line: 5,
        says: "vrrp_script `chk_gone` is not defined",
    },
    Case {
        text: "vrrp_sync_group G {\n    group {\n        V\n        W\n    }\n}\nvrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n}\n",
        line: 4,
        says: "vrrp_instance `W` is not defined",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n}\nvrrp_instance V {\n    interface eth1\n    virtual_router_id 6\n}\n",
        line: 5,
        says: "vrrp_instance V is already defined at bad.conf:1",
    },
    Case {
        text: "vrrp_instance A {\n    interface eth0\n    virtual_router_id 5\n}\nvrrp_instance B {\n    interface eth0\n    virtual_router_id 5\n}\n",
        line: 5,
        says: "virtual_router_id 5 on eth0 is already used by A",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    advert_int 300\n}\n",
        line: 4,
        says: "advert_int 300 s is out of range",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    virtual_ipaddress {\n        10.0.0.1/33\n    }\n}\n",
        line: 5,
        says: "bad prefix length",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    virtual_ipaddress {\n        10.0.0.1/24 device eth0\n    }\n}\n",
        line: 5,
        says: "unknown virtual address option `device`",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    authentication {\n        auth_type MD5\n        auth_pass x\n    }\n}\n",
        line: 5,
        says: "auth_type `MD5` is not PASS or AH",
    },
    Case {
        text: "vrrp_script s {\n    script /bin/true\n    weight -10 reverse\n}\n",
        line: 3,
        says: "`weight ... reverse` is not supported",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    unicast_src_ip 10.0.0.1\n    unicast_peer {\n        2001:db8::2\n    }\n}\n",
        line: 1,
        says: "not of the instance's address family",
    },
    Case {
        text: "vrrp_sync_group A {\n    group {\n        V\n    }\n}\nvrrp_sync_group B {\n    group {\n        V\n    }\n}\nvrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n}\n",
        line: 8,
        says: "already in a sync group at bad.conf:3",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    state LEADER\n    virtual_router_id 5\n}\n",
        line: 3,
        says: "state `LEADER` is not MASTER or BACKUP",
    },
    Case {
        text: "global_defs {\n    vrrp_version 4\n}\n",
        line: 2,
        says: "VRRP version 4 is out of range",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    ip_family inet6\n}\n",
        line: 2,
        says: "ip_family does not match",
    },
    Case {
        text: "global_defs {\n    router_id\n}\n",
        line: 2,
        says: "`router_id` needs an argument",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    quorum 1 2\n}\n",
        line: 2,
        says: "unexpected argument `2`",
    },
    Case {
        text: "vrrp_instance V {\n    interface eth0\n    virtual_router_id 5\n    notify_master /x.sh nobody nogroup extra\n}\n",
        line: 4,
        says: "`notify_master`: unexpected argument `extra`",
    },
    Case {
        text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        notify_up \"\" nobody\n    }\n}\n",
        line: 3,
        says: "`notify_up`: empty command",
    },
    Case {
        text: "include\n",
        line: 1,
        says: "`include` takes exactly one",
    },
];

#[test]
fn every_variant_is_refused_at_its_line() {
    assert!(CASES.len() >= 20);
    for c in CASES {
        let e = refuse(c.text);
        assert_eq!(
            (e.loc.file.as_path(), e.loc.line),
            (Path::new("bad.conf"), c.line),
            "wrong place for:\n{}\n{e}",
            c.text
        );
        assert!(
            e.message.contains(c.says),
            "`{}` does not say `{}` for:\n{}",
            e.message,
            c.says,
            c.text
        );
    }
}

/// A directory of files for the include cases, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("rvs-ka-conf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn error_in_an_included_file_names_that_file() {
    let d = TempDir::new("inc-err");
    let main = d.write("main.conf", "global_defs {\n}\ninclude part.conf\n");
    let part = d.write(
        "part.conf",
        "\n\nvirtual_server 10.0.0.1 80 {\n    lb_algo nope\n}\n",
    );
    let e = rvs_keepalived::conf::load(&main).unwrap_err();
    assert_eq!((e.loc.file, e.loc.line), (part, 4), "{}", e.message);
}

#[test]
fn include_cycle_is_refused_at_the_include() {
    let d = TempDir::new("cycle");
    let a = d.write("a.conf", "include b.conf\n");
    let b = d.write("b.conf", "global_defs {\n}\ninclude a.conf\n");
    let e = rvs_keepalived::conf::load(&a).unwrap_err();
    assert_eq!((e.loc.file, e.loc.line), (b, 3));
    assert!(e.message.contains("include cycle"), "{}", e.message);
}

#[test]
fn include_depth_is_limited() {
    let d = TempDir::new("depth");
    // f0 includes f1 ... f9: f8 is the deepest allowed (depth 8), its
    // include of f9 is refused.
    for i in 0..10 {
        d.write(
            &format!("f{i}.conf"),
            &format!("\ninclude f{}.conf\n", i + 1),
        );
    }
    let e = rvs_keepalived::conf::load(&d.0.join("f0.conf")).unwrap_err();
    assert_eq!((e.loc.file, e.loc.line), (d.0.join("f8.conf"), 2));
    assert!(e.message.contains("nested more than 8"), "{}", e.message);
}

#[test]
fn unbalanced_included_file_is_refused_in_that_file() {
    let d = TempDir::new("unbalanced");
    let main = d.write("main.conf", "include sub/*.conf\n");
    std::fs::create_dir(d.0.join("sub")).unwrap();
    let sub = d.write("sub/x.conf", "vrrp_instance V {\n    interface eth0\n");
    let e = rvs_keepalived::conf::load(&main).unwrap_err();
    assert_eq!((e.loc.file, e.loc.line), (sub, 1));
}

#[test]
fn missing_file_is_an_error() {
    let e = rvs_keepalived::conf::load(Path::new("/nonexistent/keepalived.conf")).unwrap_err();
    assert!(e.message.contains("cannot read"), "{}", e.message);
}

/// Words that make up plausible and implausible keepalived.conf text
/// (no `include`: generated text must not read the machine's files).
const WORDS: &[&str] = &[
    "{",
    "}",
    "\n",
    "\n",
    "\n",
    "\"",
    "#",
    "!",
    "global_defs",
    "router_id",
    "virtual_server",
    "real_server",
    "virtual_server_group",
    "local_address_group",
    "laddr_group_name",
    "fwmark",
    "group",
    "10.0.0.1",
    "10.0.0.1-5",
    "2001:db8::1",
    "fe80::1/64",
    "80",
    "0",
    "65536",
    "-1",
    "0.5",
    "lb_algo",
    "rr",
    "lb_kind",
    "FNAT",
    "NAT",
    "protocol",
    "UDP",
    "persistence_timeout",
    "persistence_granularity",
    "255.255.255.0",
    "sorry_server",
    "HTTP_GET",
    "SSL_GET",
    "url",
    "path",
    "/",
    "digest",
    "status_code",
    "200-299",
    "TCP_CHECK",
    "UDP_CHECK",
    "payload",
    "require_reply",
    "0a1",
    "MISC_CHECK",
    "misc_path",
    "PING_CHECK",
    "retry",
    "weight",
    "vrrp_instance",
    "VI",
    "interface",
    "eth0",
    "virtual_router_id",
    "5",
    "255",
    "priority",
    "advert_int",
    "version",
    "3",
    "authentication",
    "auth_type",
    "PASS",
    "auth_pass",
    "virtual_ipaddress",
    "dev",
    "unicast_peer",
    "track_script",
    "track_interface",
    "vrrp_script",
    "chk",
    "script",
    "vrrp_sync_group",
    "nopreempt",
    "x",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..120).prop_map(|ws| {
        let mut s = String::new();
        for w in ws {
            s.push_str(w);
            if w != "\n" {
                s.push(' ');
            }
        }
        s
    })
}

/// The error's line must be inside the text (1..=its line count).
fn check_line(text: &str, r: Result<(), ConfError>) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        let lines = u32::try_from(text.lines().count()).unwrap().max(1);
        prop_assert_eq!(e.loc.file.as_path(), Path::new("p.conf"));
        prop_assert!(
            (1..=lines).contains(&e.loc.line),
            "line {} outside 1..={lines}: {}",
            e.loc.line,
            e.message
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics_and_errors_point_inside(text in soup()) {
        let r = parse_str(&text, Path::new("p.conf")).map(|_| ());
        check_line(&text, r)?;
    }

    // Any characters but `i`, so that no `include` reads the machine's files.
    #[test]
    fn arbitrary_text_never_panics(text in "[^i]{0,400}") {
        let r = parse_str(&text, Path::new("p.conf")).map(|_| ());
        check_line(&text, r)?;
    }
}
