//! ipvsadm command lines parsed into API requests (rules from ipvsadm 1.31's
//! `parse_options`, `process_options`, `generic_opt_check` and
//! `commands_v_options`; DPVS's `-b`/`-J`/`-P`/`-Q`/`-G`/`-z`/`-F`).

mod common;

use common::*;
use rvs_api::*;
use rvsadm::parse::parse;
use rvsadm::{Command, Format, ListWhat, PortNames};

fn p(line: &str) -> Result<Command, String> {
    let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    parse(&args, &PortNames::parse("http 80/tcp\ndomain 53/udp\n")).map_err(|e| e.0)
}

fn change(line: &str) -> Request {
    match p(line) {
        Ok(Command::Change(r)) => r,
        other => panic!("{line}: {other:?}"),
    }
}

fn err(line: &str) -> String {
    p(line).expect_err(line)
}

#[test]
fn add_service_defaults_and_options() {
    let Request::AddService { service } = change("-A -t 10.0.0.1:80") else {
        panic!()
    };
    assert_eq!(service.scheduler, "wlc");
    assert_eq!(service.persistence, None);

    let Request::AddService { service } =
        change("-A -t 10.0.0.1:http -s sh -p -M 255.255.0.0 -b sh-port,sh-fallback")
    else {
        panic!()
    };
    assert_eq!(service.key, key(Protocol::Tcp, "10.0.0.1", 80));
    assert_eq!(
        service.persistence,
        Some(Persistence {
            timeout: 360,
            netmask: 16
        })
    );
    assert_eq!(service.flags, ["sh-port", "sh-fallback"]);

    // -p takes the next word as its value unless it starts with '-'.
    let Request::EditService { service } = change("-E -u [2001:db8::1]:53 -p 600 -M 64 -o") else {
        panic!()
    };
    assert_eq!(
        service.persistence,
        Some(Persistence {
            timeout: 600,
            netmask: 64
        })
    );
    assert!(service.one_packet);

    let Request::AddService { service } = change("-A -f 7 -6 -s rr") else {
        panic!()
    };
    assert_eq!(
        service.key,
        ServiceKey::Fwmark {
            mark: 7,
            family: Family::Ipv6
        }
    );
    // Long forms and --opt=value.
    let Request::AddService { service } =
        change("--add-service --tcp-service=10.0.0.1:80 --scheduler rr --persistent=30")
    else {
        panic!()
    };
    assert_eq!(service.scheduler, "rr");
    assert_eq!(service.persistence.unwrap().timeout, 30);
}

#[test]
fn b_means_sched_flags_on_services_and_fullnat_on_real_servers() {
    let Request::AddService { service } = change("-A -t 10.0.0.1:80 -s rr -b flag-1") else {
        panic!()
    };
    assert_eq!(service.flags, ["flag-1"]);
    let Request::AddRealServer { server, .. } =
        change("-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -b -w 3")
    else {
        panic!()
    };
    assert_eq!(server.forward, Forward::Fullnat);
    assert_eq!(server.weight, 3);
    for (flag, fwd) in [
        ("-m", Forward::Masq),
        ("-g", Forward::Route),
        ("-i", Forward::Tunnel),
        ("--fullnat", Forward::Fullnat),
        ("-J", Forward::Snat),
        ("--snat", Forward::Snat),
        ("", Forward::Route),
    ] {
        let Request::AddRealServer { server, .. } =
            change(&format!("-a -t 10.0.0.1:80 -r 192.168.1.2:8080 {flag}"))
        else {
            panic!()
        };
        assert_eq!(server.forward, fwd, "{flag}");
    }
}

#[test]
fn real_server_ports_follow_ipvsadm() {
    // No port: the service's port.
    let Request::AddRealServer { server, .. } = change("-a -t 10.0.0.1:80 -r 192.168.1.2 -m")
    else {
        panic!()
    };
    assert_eq!((server.port, server.weight), (80, 1));
    // Route and tunnel keep the service's port whatever is given.
    let Request::AddRealServer { server, .. } = change("-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -g")
    else {
        panic!()
    };
    assert_eq!(server.port, 80);
    let Request::EditRealServer { server, .. } =
        change("-e -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 0 -x 100 -y 50")
    else {
        panic!()
    };
    assert_eq!(
        (
            server.port,
            server.weight,
            server.upper_threshold,
            server.lower_threshold
        ),
        (8080, 0, 100, 50)
    );
    // ... but not on delete (process_options forces it for add/edit only).
    assert_eq!(
        change("-d -t 10.0.0.1:80 -r 192.168.1.2:8080 "),
        Request::DeleteRealServer {
            service: key(Protocol::Tcp, "10.0.0.1", 80),
            addr: ip("192.168.1.2"),
            port: 8080,
        }
    );
}

#[test]
fn list_forms() {
    let n = Format {
        numeric: true,
        ..Format::default()
    };
    assert_eq!(p("-L -n"), Ok(Command::List(ListWhat::Services(None), n)));
    assert_eq!(p("-Ln"), Ok(Command::List(ListWhat::Services(None), n)));
    assert_eq!(p("-l -n"), Ok(Command::List(ListWhat::Services(None), n)));
    assert_eq!(p("-Lnc"), Ok(Command::List(ListWhat::Connections, n)));
    assert_eq!(
        p("-L --timeout"),
        Ok(Command::List(ListWhat::Timeouts, Format::default()))
    );
    assert_eq!(
        p("-L -n --stats --exact"),
        Ok(Command::List(
            ListWhat::Services(None),
            Format {
                stats: true,
                exact: true,
                ..n
            }
        ))
    );
    assert_eq!(
        p("-L -t 10.0.0.1:80 --rate -n"),
        Ok(Command::List(
            ListWhat::Services(Some(key(Protocol::Tcp, "10.0.0.1", 80))),
            Format { rate: true, ..n }
        ))
    );
    assert_eq!(p("-S -n"), Ok(Command::Save(n)));
    assert_eq!(p("-R"), Ok(Command::Restore));
}

#[test]
fn other_commands() {
    assert_eq!(change("-C"), Request::Clear);
    assert_eq!(change("-Z"), Request::Zero { service: None });
    assert_eq!(
        change("--set 900 120 300"),
        Request::SetTimeouts {
            timeouts: Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }
        }
    );
    assert_eq!(
        change("--add-laddr -t 10.0.0.1:80 -z 192.168.100.1 -F dpdk0"),
        Request::AddLaddr {
            service: key(Protocol::Tcp, "10.0.0.1", 80),
            laddr: LocalAddr {
                addr: ip("192.168.100.1"),
                ifname: Some("dpdk0".into())
            }
        }
    );
    assert!(matches!(
        change("-Q -t 10.0.0.1:80 -z 192.168.100.1"),
        Request::DelLaddr { .. }
    ));
    assert_eq!(p("-G"), Ok(Command::GetLaddr(None)));
    assert_eq!(
        p("--get-laddr -t 10.0.0.1:80"),
        Ok(Command::GetLaddr(Some(key(Protocol::Tcp, "10.0.0.1", 80))))
    );
}

#[test]
fn errors_in_ipvsadm_words() {
    let cases = [
        (
            "-A -t 10.0.0.1:80 -s bogus",
            "unknown scheduler `bogus' (rvs has: rr wrr lc wlc sed nq sh dh mh conhash fo)",
        ),
        (
            "-A -t 10.0.0.300:80",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t 10.0.0.1:99999",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t 10.0.0.1:nosuchport",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t 80",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -s rr",
            "You need to supply the 'service-address' option for the 'add-service' command",
        ),
        (
            "-a -t 10.0.0.1:80",
            "You need to supply the 'real-server' option for the 'add-server' command",
        ),
        (
            "-a -t 10.0.0.1:80 -r 1.2.3.4:80x",
            "illegal real server address[:port] specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 1.2.3.4 -w 70000",
            "illegal weight specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 2001:db8::5 -m",
            "Different address family is allowed only for tunneling servers",
        ),
        (
            "-A -t 10.0.0.1:0",
            "Zero port specified for non-persistent service",
        ),
        (
            "-A -t 10.0.0.1:80 -o",
            "One-Packet Scheduling is only for UDP virtual services",
        ),
        (
            "-A -t 10.0.0.1:80 -s rr -b sh-port",
            "incompatible scheduler flag `sh-port'",
        ),
        ("-A -t 10.0.0.1:80 -b nope", "invalid scheduler flag `nope'"),
        (
            "-A -t 10.0.0.1:80 -p 0",
            "invalid timeout value `0' specified",
        ),
        (
            "-A -t 10.0.0.1:80 -p -M 255.0.255.0",
            "illegal virtual server persistent mask specified",
        ),
        (
            "-A -t 10.0.0.1:80 -w 3",
            "Illegal 'weight' option with the 'add-service' command",
        ),
        (
            "-D -t 10.0.0.1:80 -s rr",
            "Illegal 'scheduler' option with the 'delete-service' command",
        ),
        (
            "-A -t 10.0.0.1:80 -t 10.0.0.2:80",
            "multiple 'service-address' options specified",
        ),
        ("-A -D -t 10.0.0.1:80", "multiple commands specified"),
        (
            "-L -c --timeout",
            "The option 'timeout' conflicts with the 'connection' option in the 'list' command",
        ),
        ("-L -c --stats", "options conflicts in the list command"),
        ("--set 1 2", "--set option requires 3 timeout values"),
        ("-C extra", "unexpected argument extra"),
        (
            "-f 0 -A",
            "Try `rvsadm -h' or 'rvsadm --help' for more information.",
        ),
        ("-A -f 0", "invalid fwmark value `0' specified"),
        ("-A -t 10.0.0.1:80 -6", "-6 used before -f"),
        ("-A -t 10.0.0.1:80 -q", "invalid option `-q'"),
        ("-P -t 10.0.0.1:80 -z 10.0.0.5:80", "illegal local address"),
    ];
    for (line, want) in cases {
        assert_eq!(err(line), want, "{line}");
    }
}
