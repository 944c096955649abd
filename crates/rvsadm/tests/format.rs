//! rvsadm's rendering against ipvsadm's formats.
//!
//! Every expected string below was produced by evaluating ipvsadm 1.31's own
//! printf formats (ipvsadm.c at github.com/cezarsa/ipvsadm, the v1.31 release
//! plus one fwmark fix) on the fixture's values with a printf-compatible
//! formatter, not by rvsadm. The formats followed, by function:
//! * `list_all`: `"IP Virtual Server version %d.%d.%d (size=%d)\n"`.
//! * `print_title`: plain `"Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"`;
//!   `--stats`/`--rate`: `"%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"`;
//!   `--thresholds`: `"%-33s %-10s %-10s %-10s %-10s\n..."`; `--persistent-conn`: `"%-33s %-9s %-11s %-10s %-10s\n..."`.
//! * `print_service_entry`: service name `"%-4s %s"` (protocol, addr:port), `"FWM  %u"`;
//!   plain line `"%s %s"` + `" (flags)"` + `" persistent %u"` + `" mask %s"` (inet_ntoa for IPv4, `%i` for IPv6);
//!   real servers `"  -> %-28s %-7s %-6d %-10u %-10u\n"` (trailing padding kept);
//!   `--stats`: `"%-33s"` / `"  -> %-28s"` then five `print_largenum`;
//!   `--rate` real servers: `"  -> %-28s %8llu %8llu %8llu"` (cps, pps unscaled) then two `print_largenum`;
//!   `-S` (`FMT_RULE`): `"-A %s -s %s"`, `" -p %u"`, `" -M %s"`, `" -b "` flags, `"-a %s -r %s %s -w %d\n"`.
//! * `print_largenum`: `"%9llu"` below 100 million, then `"%8lluK"` (/1e3) below 1e9,
//!   `"%8lluM"` (/1e6) below 1e11, `"%8lluG"` (/1e9) below 1e14, else `"%8lluT"` (/1e12);
//!   `--exact`: `"%*llu"` with width 9, or digits + 1 above 8 digits.
//! * `print_sched_flags`: `sh-fallback,sh-port` for sh, `mh-*` for mh, else `flag-N`.
//! * `list_conn`/`print_conn`: `"IPVS connection entries\n"`, `"pro expire %-11s %-18s %-18s %s\n"`,
//!   lines `"%-3s %-6s %-11s %-18s %-18s %s\n"` with expire `"%02d:%02d"` (minutes, seconds).
//! * `list_timeout`: `"Timeout (tcp tcpfin udp): %d %d %d\n"`.
//! * libipvs `ipvs_cmp_services` (fwmark, family, protocol, address, port) and
//!   `ipvs_cmp_dests` (address, port) for the order.
//! * DPVS tools/ipvsadm/ipvsadm.c `list_laddrs_print_*`: `"%-20s %-8s %-20s %-10s %-10s\n"`,
//!   `"%-20s %-8u \n"`, `"%-20s %-8s %-20s %-10lu %-10u\n"`.

mod common;

use common::*;
use rvs_api::ServiceList;
use rvsadm::render;
use rvsadm::{Format, PortNames};

fn all() -> ServiceList {
    let m = fixture();
    ServiceList {
        table_size: m.table_size,
        services: m.services,
    }
}

fn numeric() -> Format {
    Format {
        numeric: true,
        ..Format::default()
    }
}

#[test]
fn list_numeric_matches_ipvsadm() {
    let got = render::list_all(&all(), numeric(), &PortNames::default());
    let want = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:80 rr\n  -> 192.168.1.2:8080             Masq    10     0          0         \n  -> 192.168.1.12:8080            FullNat 1      3          2         \nUDP  10.0.0.1:53 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0\n  -> 10.1.0.1:53                  Route   1      0          7         \nTCP  [2001:db8::1]:443 mh persistent 360 mask 64\n  -> [2001:db8::10]:443           Tunnel  65535  1          0         \nFWM  7 wlc\n";
    assert_eq!(got, want);
}

#[test]
fn nosort_keeps_the_daemons_order() {
    let f = Format {
        nosort: true,
        ..numeric()
    };
    let got = render::list_all(&all(), f, &PortNames::default());
    let first = got.lines().nth(3).unwrap();
    assert_eq!(first, "FWM  7 wlc");
}

#[test]
fn stats_scaled_matches_ipvsadm() {
    let f = Format {
        stats: true,
        ..numeric()
    };
    let got = render::list_one(&web_only().services[0], f, &PortNames::default());
    let want = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80                         5  123456K 99999999     123G     500T\n  -> 192.168.1.2:8080                1000M  100000K        0   99999M     100T\n  -> 192.168.1.12:8080                   0        0        0        0        0\n";
    assert_eq!(got, want);
}

#[test]
fn stats_exact_matches_ipvsadm() {
    let f = Format {
        stats: true,
        exact: true,
        ..numeric()
    };
    let got = render::list_one(&web_only().services[0], f, &PortNames::default());
    let want = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80                         5 123456789 99999999 123456789012 500000000000000\n  -> 192.168.1.2:8080             1000000000 100000000        0 99999999999 100000000000000\n  -> 192.168.1.12:8080                   0        0        0        0        0\n";
    assert_eq!(got, want);
}

#[test]
fn rate_matches_ipvsadm() {
    let f = Format {
        rate: true,
        ..numeric()
    };
    let got = render::list_one(&web_only().services[0], f, &PortNames::default());
    let want = "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80                   123456K        2        3    4000M        5\n  -> 192.168.1.2:8080             123456789        2        3    4000M        5\n  -> 192.168.1.12:8080                   0        0        0        0        0\n";
    assert_eq!(got, want);
}

#[test]
fn thresholds_and_persistent_conn_match_ipvsadm() {
    let e = &web_only().services[0];
    let f = Format {
        thresholds: true,
        ..numeric()
    };
    assert_eq!(
        render::list_one(e, f, &PortNames::default()),
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 rr\n  -> 192.168.1.2:8080             100        10         0          0         \n  -> 192.168.1.12:8080            0          0          3          2         \n"
    );
    let f = Format {
        persistent_conn: true,
        ..numeric()
    };
    assert_eq!(
        render::list_one(e, f, &PortNames::default()),
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 rr\n  -> 192.168.1.2:8080             10        4           0          0         \n  -> 192.168.1.12:8080            1         0           3          2         \n"
    );
}

#[test]
fn without_n_ports_are_named_from_services_file() {
    let names = PortNames::parse(
        "# comment\nhttp 80/tcp www # WorldWideWeb\nwebcache 8080/tcp http-alt\ndomain 53/udp\n",
    );
    let got = render::list_one(&web_only().services[0], Format::default(), &names);
    let want = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:http rr\n  -> 192.168.1.2:webcache         Masq    10     0          0         \n  -> 192.168.1.12:webcache        FullNat 1      3          2         \n";
    assert_eq!(got, want);
    // -n keeps numbers even when a name exists.
    assert!(
        render::list_one(&web_only().services[0], numeric(), &names).contains("10.0.0.1:80 rr")
    );
}

#[test]
fn save_matches_ipvsadm_rules() {
    let got = render::save(&all(), numeric(), &PortNames::default());
    let want = "\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 10 -x 100 -y 10
-a -t 10.0.0.1:80 -r 192.168.1.12:8080 -b -w 1
-P -t 10.0.0.1:80 -z 192.168.100.1 -F dpdk0
-P -t 10.0.0.1:80 -z 192.168.100.2
-A -u 10.0.0.1:53 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port
-a -u 10.0.0.1:53 -r 10.1.0.1:53 -g -w 1
-A -t [2001:db8::1]:443 -s mh -p 360 -M 64
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -i -w 65535
-A -f 7 -s wlc
";
    assert_eq!(got, want);
}

#[test]
fn connections_match_ipvsadm() {
    let got = render::connections(&fixture().connections, numeric(), &PortNames::default());
    let want = "IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14:59  ESTABLISHED 203.0.113.9:51000  10.0.0.1:80        192.168.1.2:8080\nUDP 00:05  UDP         [2001:db8::99]:5353 [2001:db8::1]:53   [2001:db8::10]:53\n";
    assert_eq!(got, want);
}

#[test]
fn timeouts_match_ipvsadm() {
    assert_eq!(
        render::timeouts(&fixture().timeouts),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
}

#[test]
fn laddrs_match_dpvs() {
    let l = web_only();
    let e = &l.services[0];
    let got = render::laddrs(&[rvs_api::ServiceLaddrs {
        service: e.service.key,
        laddrs: e.local_addrs.clone(),
    }]);
    let want = "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n10.0.0.1:80          2        \n                              192.168.100.1        3          40        \n                              192.168.100.2        0          0         \n";
    assert_eq!(got, want);
}

#[test]
fn largenum_boundaries() {
    let cases: [(u64, &str); 10] = [
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_000_000_000, "    1000M"),
        (99_999_999_999, "   99999M"),
        (100_000_000_000, "     100G"),
        (99_999_999_999_999, "   99999G"),
        (100_000_000_000_000, "     100T"),
        (u64::MAX, "18446744T"),
    ];
    for (v, want) in cases {
        let mut s = String::new();
        render::largenum(&mut s, v, false);
        assert_eq!(s, want, "{v}");
    }
    let mut s = String::new();
    render::largenum(&mut s, 12_345_678, true);
    assert_eq!(s, " 12345678");
    s.clear();
    render::largenum(&mut s, 123_456_789, true);
    assert_eq!(s, " 123456789");
}
