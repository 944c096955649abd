use std::ffi::OsString;
use std::io::Cursor;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp80() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("10.0.0.1"),
        port: 80,
    }
}

fn svc(sched: &str) -> Service {
    Service {
        key: tcp80(),
        scheduler: sched.into(),
        flags: vec![],
        persistence: None,
        one_packet: false,
    }
}

fn rs(addr: &str, weight: u32) -> RealServer {
    RealServer {
        addr: ip(addr),
        port: 8080,
        forward: Forward::Fullnat,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

#[test]
fn wire_examples_in_the_crate_docs_hold() {
    let req = Request::DeleteService { service: tcp80() };
    assert_eq!(
        serde_json::to_string(&req).unwrap(),
        r#"{"op":"delete_service","service":{"addr":{"protocol":"tcp","addr":"10.0.0.1","port":80}}}"#
    );
    let resp = Response::Error(ApiError::new(
        ErrorCode::NotFound,
        "service",
        "service not defined",
    ));
    assert_eq!(
        serde_json::to_string(&resp).unwrap(),
        r#"{"error":{"code":"not_found","field":"service","reason":"service not defined"}}"#
    );
    assert_eq!(
        serde_json::to_string(&Request::GetTimeouts).unwrap(),
        r#"{"op":"get_timeouts"}"#
    );
    let resp = Response::Ok(Reply::Timeouts {
        timeouts: Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        },
    });
    assert_eq!(
        serde_json::to_string(&resp).unwrap(),
        r#"{"ok":{"kind":"timeouts","timeouts":{"tcp":900,"tcp_fin":120,"udp":300}}}"#
    );
}

#[test]
fn framing_round_trip_many_messages_one_line_each() {
    let mut s = svc("rr");
    s.flags = vec!["a\nb".into()]; // a newline inside a string stays escaped
    let reqs = vec![
        Request::AddService { service: s },
        Request::Clear,
        Request::AddRealServer {
            service: tcp80(),
            server: rs("192.168.1.2", 3),
        },
    ];
    let mut buf = Vec::new();
    for r in &reqs {
        write_message(&mut buf, r).unwrap();
    }
    assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), reqs.len());
    let mut cur = Cursor::new(buf);
    for r in &reqs {
        let got: Request = read_message(&mut cur).unwrap().unwrap();
        assert_eq!(&got, r);
    }
    assert!(read_message::<_, Request>(&mut cur).unwrap().is_none());
}

#[test]
fn unterminated_or_garbage_lines_are_invalid_data() {
    let mut cur = Cursor::new(br#"{"op":"clear"}"#.to_vec());
    let e = read_message::<_, Request>(&mut cur).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    let mut cur = Cursor::new(b"{\"op\":\"nope\"}\n".to_vec());
    let e = read_message::<_, Request>(&mut cur).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn socket_path_precedence() {
    let env = Some(OsString::from("/tmp/env.sock"));
    assert_eq!(
        socket_path(Some(Path::new("/x.sock")), env.clone()),
        PathBuf::from("/x.sock")
    );
    assert_eq!(socket_path(None, env), PathBuf::from("/tmp/env.sock"));
    assert_eq!(
        socket_path(None, Some(OsString::new())),
        PathBuf::from(DEFAULT_SOCKET)
    );
    assert_eq!(socket_path(None, None), PathBuf::from("/run/rvs/rvsd.sock"));
}

#[test]
fn validation_names_the_field() {
    let e = validate::request(&Request::AddService {
        service: svc("bogus"),
    })
    .unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (ErrorCode::Invalid, "service.scheduler")
    );

    let mut s = svc("rr");
    s.flags = vec!["sh-port".into()];
    let e = validate::service(&s, "service").unwrap_err();
    assert_eq!(e.field, "service.flags");
    assert!(e.reason.contains("incompatible"), "{e}");

    let mut s = svc("rr");
    s.key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("10.0.0.1"),
        port: 0,
    };
    assert_eq!(
        validate::service(&s, "service").unwrap_err().field,
        "service.key.port"
    );
    s.persistence = Some(Persistence {
        timeout: 300,
        netmask: 24,
    });
    validate::service(&s, "service").unwrap();
    s.persistence = Some(Persistence {
        timeout: 300,
        netmask: 33,
    });
    assert_eq!(
        validate::service(&s, "service").unwrap_err().field,
        "service.persistence.netmask"
    );

    let e = validate::real_server(&tcp80(), &rs("10.1.1.1", 65536), "server").unwrap_err();
    assert_eq!(e.field, "server.weight");
    let e = validate::real_server(&tcp80(), &rs("2001:db8::1", 1), "server").unwrap_err();
    assert_eq!(e.field, "server.addr");
    let mut tun = rs("2001:db8::1", 1);
    tun.forward = Forward::Tunnel;
    validate::real_server(&tcp80(), &tun, "server").unwrap();

    let e = validate::request(&Request::Batch {
        requests: vec![
            Request::Clear,
            Request::AddRealServer {
                service: tcp80(),
                server: rs("10.1.1.1", 70000),
            },
        ],
    })
    .unwrap_err();
    assert_eq!(e.field, "requests[1].server.weight");
}

#[test]
fn services_sort_as_ipvsadm_lists_them() {
    let mut keys = [
        ServiceKey::Fwmark {
            mark: 2,
            family: Family::Ipv4,
        },
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip("10.0.0.1"),
            port: 53,
        },
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("2001:db8::1"),
            port: 80,
        },
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("10.0.0.2"),
            port: 80,
        },
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("10.0.0.2"),
            port: 22,
        },
    ];
    keys.sort_by_key(|k| k.sort_key());
    let shown: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        shown,
        [
            "TCP 10.0.0.2:22",
            "TCP 10.0.0.2:80",
            "UDP 10.0.0.1:53",
            "TCP [2001:db8::1]:80",
            "FWM 2",
        ]
    );
}

#[cfg(feature = "fake")]
mod with_fake {
    use super::*;
    use crate::fake::{FakeServer, Model};

    #[test]
    fn client_against_fake_server() {
        let server = FakeServer::start(Model::default()).unwrap();
        let mut c = Client::connect(server.path()).unwrap();
        assert_eq!(
            c.call(&Request::AddService {
                service: svc("wrr")
            })
            .unwrap(),
            Reply::Done
        );
        let e = match c.call(&Request::AddService {
            service: svc("wrr"),
        }) {
            Err(ClientError::Api(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e.code, ErrorCode::Exists);
        c.call(&Request::AddRealServer {
            service: tcp80(),
            server: rs("192.168.1.2", 5),
        })
        .unwrap();
        let Reply::Services { list } = c.call(&Request::ListServices { service: None }).unwrap()
        else {
            panic!()
        };
        assert_eq!(list.services.len(), 1);
        assert_eq!(list.services[0].real_servers[0].server.weight, 5);
        assert_eq!(server.requests().len(), 4);
    }

    #[test]
    fn failed_batch_changes_nothing() {
        let server = FakeServer::start(Model::default()).unwrap();
        let mut c = Client::connect(server.path()).unwrap();
        let r = c.call(&Request::Batch {
            requests: vec![
                Request::AddService { service: svc("rr") },
                Request::DeleteRealServer {
                    service: tcp80(),
                    addr: ip("1.2.3.4"),
                    port: 80,
                },
            ],
        });
        match r {
            Err(ClientError::Api(e)) => {
                assert_eq!(e.code, ErrorCode::NotFound);
                assert_eq!(e.field, "requests[1].addr");
            }
            other => panic!("{other:?}"),
        }
        assert!(server.model().services.is_empty());
    }

    #[test]
    fn garbage_gets_bad_request() {
        use std::io::{BufReader, Write};
        let server = FakeServer::start(Model::default()).unwrap();
        let mut s = std::os::unix::net::UnixStream::connect(server.path()).unwrap();
        s.write_all(b"not json\n").unwrap();
        let resp: Response = read_message(&mut BufReader::new(s)).unwrap().unwrap();
        assert!(
            matches!(
                resp,
                Response::Error(ApiError {
                    code: ErrorCode::BadRequest,
                    ..
                })
            ),
            "{resp:?}"
        );
    }
}
