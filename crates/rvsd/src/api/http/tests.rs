use std::net::IpAddr;
use std::time::Duration;

use rvs_api::{
    Connection, Family, Forward, IfAddr, Link, LocalAddr, LocalAddrEntry, Neigh, NeighEntry,
    Persistence, Protocol, RealServer, RealServerEntry, Reply, Route, RouteEntry, Service,
    ServiceEntry, ServiceKey, ServiceLaddrs, ServiceList, Timeouts,
};
use serde_json::Value;

use super::*;
use crate::api::{ApiConfig, Server};

#[test]
fn listen_must_be_loopback() {
    assert_eq!(parse_listen(None), Ok(None));
    assert_eq!(parse_listen(Some(" ")), Ok(None));
    assert_eq!(
        parse_listen(Some("127.0.0.1:9470"))
            .unwrap()
            .unwrap()
            .to_string(),
        "127.0.0.1:9470"
    );
    assert!(parse_listen(Some("127.1.2.3:1")).unwrap().is_some());
    assert!(parse_listen(Some("[::1]:9470")).unwrap().is_some());
    for bad in [
        "0.0.0.0:9470",
        "10.0.0.1:80",
        "[::]:1",
        "[::ffff:127.0.0.1]:1",
    ] {
        let e = parse_listen(Some(bad)).unwrap_err();
        assert!(e.contains("is not a loopback address"), "{bad}: {e}");
    }
    assert!(
        parse_listen(Some("localhost:1"))
            .unwrap_err()
            .contains("not an ADDR:PORT")
    );
    let sec = |l: &str, t: Option<&str>| crate::config::ApiSection {
        http_listen: Some(l.into()),
        http_token_file: t.map(str::to_string),
        ..Default::default()
    };
    assert_eq!(check(&sec("", None)), Ok(()));
    assert_eq!(check(&sec("127.0.0.1:1", Some("/t"))), Ok(()));
    assert_eq!(
        check(&sec("127.0.0.1:1", None)).unwrap_err().0,
        "api.http_token_file"
    );
    assert_eq!(
        check(&sec("192.0.2.1:1", Some("/t"))).unwrap_err().0,
        "api.http_listen"
    );
}

#[test]
fn constant_time_eq() {
    assert!(ct_eq(b"secret", b"secret"));
    assert!(!ct_eq(b"secret", b"secreT"));
    assert!(!ct_eq(b"secret", b"secret2"));
    assert!(!ct_eq(b"", b"x"));
}

struct Fixture {
    server: Option<Server>,
    token_file: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        use rvs_lb::config::Config;
        use rvs_lb::stack::StackConfig;
        let token_file = std::env::temp_dir().join(format!(
            "rvsd-http-test-{}-{:?}.token",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&token_file, "s3cret-token\n").unwrap();
        let lb = Arc::new(Config::build(Vec::new(), Default::default()).unwrap());
        let shared = Arc::new(crate::shared::Shared::new(
            1,
            lb,
            Arc::new(StackConfig::default()),
        ));
        let cfg = ApiConfig {
            socket: None,
            explicit: false,
            state: None,
            http_listen: Some("127.0.0.1:0".into()),
            http_token_file: Some(token_file.clone()),
        };
        let server = Server::start(
            &cfg,
            shared,
            Vec::new(),
            rvs_lb::conn::Timeouts::default(),
            Arc::new(StackConfig::default()),
            4096,
        )
        .unwrap();
        Fixture {
            server: Some(server),
            token_file,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().http_addr().unwrap()
    }

    /// Sends `method path` with `auth` and `body`; returns (status, body).
    fn ask(&self, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
        let mut c = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        write!(
            c,
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        (status, body.to_string())
    }

    fn post(&self, req: &str) -> (u16, Response) {
        let (st, body) = self.ask("POST", "/v1/request", Some("Bearer s3cret-token"), req);
        (st, serde_json::from_str(&body).unwrap())
    }

    fn services(&self) -> usize {
        match self.post(r#"{"op":"list_services"}"#) {
            (200, Response::Ok(Reply::Services { list })) => list.services.len(),
            other => panic!("{other:?}"),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        let _ = std::fs::remove_file(&self.token_file);
    }
}

const ADD: &str = r#"{"op":"add_service","service":{"key":{"addr":{"protocol":"tcp","addr":"10.0.0.100","port":80}},"scheduler":"rr"}}"#;

#[test]
fn token_required_and_nothing_changes_without_it() {
    let f = Fixture::new();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-toke"),
        Some("Bearer s3cret-tokeN"),
        Some("Bearer s3cret-token2"),
        Some("Basic s3cret-token"),
        Some("Bearer"),
    ] {
        let (st, body) = f.ask("POST", "/v1/request", auth, ADD);
        assert_eq!(st, 401, "{auth:?}: {body}");
        let r: Response = serde_json::from_str(&body).unwrap();
        assert!(
            matches!(r, Response::Error(ref e) if e.field == "Authorization"),
            "{r:?}"
        );
        assert_eq!(f.ask("GET", "/openapi.json", auth, "").0, 401);
    }
    assert_eq!(
        f.services(),
        0,
        "a refused request changed the configuration"
    );
    // The scheme's name in any case, the token exact.
    let (st, _) = f.ask("POST", "/v1/request", Some("bearer s3cret-token"), ADD);
    assert_eq!(st, 200);
    assert_eq!(f.services(), 1);
}

#[test]
fn requests_have_the_sockets_semantics() {
    let f = Fixture::new();
    assert_eq!(f.post(ADD), (200, Response::Ok(Reply::Done)));
    // Duplicate: 409, exists.
    let (st, r) = f.post(ADD);
    assert_eq!(st, 409, "{r:?}");
    // Invalid value: 400 naming the field, nothing changed.
    let (st, r) = f.post(
        r#"{"op":"add_service","service":{"key":{"addr":{"protocol":"tcp","addr":"10.0.0.101","port":80}},"scheduler":"nope"}}"#,
    );
    assert_eq!(st, 400);
    let Response::Error(e) = r else { panic!() };
    assert_eq!(
        (e.code, e.field.as_str()),
        (ErrorCode::Invalid, "service.scheduler")
    );
    // A batch is all or nothing; the error names the index.
    let (st, r) = f.post(
        r#"{"op":"batch","requests":[
            {"op":"add_service","service":{"key":{"addr":{"protocol":"tcp","addr":"10.0.0.102","port":80}},"scheduler":"rr"}},
            {"op":"add_real_server","service":{"addr":{"protocol":"tcp","addr":"10.0.0.102","port":80}},
             "server":{"addr":"10.0.1.2","port":80,"forward":"masq","weight":70000}}]}"#,
    );
    assert_eq!(st, 400, "{r:?}");
    let Response::Error(e) = r else { panic!() };
    assert_eq!(e.field, "requests[1].server.weight");
    // Not found: 404.
    let (st, _) = f.post(
        r#"{"op":"delete_service","service":{"addr":{"protocol":"udp","addr":"10.0.0.100","port":53}}}"#,
    );
    assert_eq!(st, 404);
    assert_eq!(f.services(), 1);
    // Unreadable bodies: 400 bad_request, with the path when there is one.
    let (st, r) = f.post(r#"{"op":"add_service","service":{"key":{"addr":{"protocol":"tcp","addr":"10.0.0.103","port":80}}}}"#);
    assert_eq!(st, 400);
    let Response::Error(e) = r else { panic!() };
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.reason.contains("scheduler"), "{e:?}");
    let (st, r) = f.post(r#"{"op":"add_real_server","service":{"addr":{"protocol":"tcp","addr":"10.0.0.100","port":80}},"server":{"addr":"not-an-ip","port":80,"forward":"masq","weight":1}}"#);
    assert_eq!(st, 400);
    let Response::Error(e) = r else { panic!() };
    // (serde's internally tagged requests do not keep the path of a
    // value that fails to parse: the reason says what is wrong.)
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.reason.contains("invalid IP address"), "{e:?}");
    for junk in ["", "{", r#"{"op":"nope"}"#, r#"{"op":"clear"} x"#] {
        let (st, r) = f.post(junk);
        assert_eq!(st, 400, "{junk}");
        assert!(matches!(r, Response::Error(ref e) if e.code == ErrorCode::BadRequest));
    }
    assert_eq!(f.services(), 1);
    // Other paths and methods.
    let tok = Some("Bearer s3cret-token");
    assert_eq!(f.ask("GET", "/v1/request", tok, "").0, 405);
    assert_eq!(f.ask("GET", "/v2", tok, "").0, 404);
    // The same listing the socket gives.
    let (st, r) = f.post(r#"{"op":"get_timeouts"}"#);
    assert_eq!(st, 200);
    assert!(matches!(r, Response::Ok(Reply::Timeouts { .. })));
    // Stops: the port closes.
    let addr = f.addr();
    drop(f);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

// --- The OpenAPI description against what serde writes. ---

/// A small validator for the subset of OpenAPI 3.0 schemas openapi.json
/// uses: $ref, oneOf (exactly one), anyOf, allOf, type, nullable,
/// required, properties, items, enum, minimum, maximum.
fn validate(root: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        let s = &root["components"]["schemas"][name];
        assert!(!s.is_null(), "dangling $ref {r}");
        return validate(root, s, v, at);
    }
    if v.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return Ok(());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(root, s, v, at)?;
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(|s| validate(root, s, v, at).is_ok())
    {
        return Err(format!("{at}: matches none of anyOf"));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let errs: Vec<String> = one
            .iter()
            .filter_map(|s| validate(root, s, v, at).err())
            .collect();
        if one.len() - errs.len() != 1 {
            return Err(format!(
                "{at}: matches {} of oneOf: {errs:?}",
                one.len() - errs.len()
            ));
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => panic!("type {t}"),
        };
        if !ok {
            return Err(format!("{at}: {v} is not {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} not in {e:?}"));
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_i64), v.as_i64())
        && x < min
    {
        return Err(format!("{at}: {x} < {min}"));
    }
    if let (Some(max), Some(x)) = (schema.get("maximum").and_then(Value::as_u64), v.as_u64())
        && x > max
    {
        return Err(format!("{at}: {x} > {max}"));
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req {
            let r = r.as_str().unwrap();
            if v.get(r).is_none() {
                return Err(format!("{at}: `{r}` missing"));
            }
        }
    }
    if let (Some(props), Some(o)) = (
        schema.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for (k, val) in o {
            match props.get(k) {
                Some(s) => validate(root, s, val, &format!("{at}.{k}"))?,
                // serde ignores unknown fields, but what it writes must
                // all be described.
                None => return Err(format!("{at}: `{k}` not in the schema")),
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            validate(root, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn samples() -> (Vec<Request>, Vec<Response>) {
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("10.0.0.100"),
        port: 80,
    };
    let fwm = ServiceKey::Fwmark {
        mark: 7,
        family: Family::Ipv6,
    };
    let svc = Service {
        key,
        scheduler: "wrr".into(),
        flags: vec!["flag-1".into()],
        persistence: Some(Persistence {
            timeout: 360,
            netmask: 24,
        }),
        one_packet: false,
    };
    let plain = Service {
        key: fwm,
        scheduler: "rr".into(),
        flags: vec![],
        persistence: None,
        one_packet: true,
    };
    let rs = RealServer {
        addr: ip("fd00:1::2"),
        port: 8080,
        forward: Forward::Fullnat,
        weight: 3,
        upper_threshold: 10,
        lower_threshold: 0,
    };
    let laddr = LocalAddr {
        addr: ip("10.0.9.1"),
        ifname: Some("eth1".into()),
    };
    let ifa = IfAddr {
        addr: ip("10.0.0.1"),
        prefix_len: 24,
        dev: "eth0".into(),
    };
    let route = Route {
        prefix: ip("0.0.0.0"),
        prefix_len: 0,
        via: Some(ip("10.0.0.254")),
        dev: None,
    };
    let neigh = Neigh {
        addr: ip("10.0.0.9"),
        lladdr: Some("02:00:00:00:00:09".into()),
        dev: "eth0".into(),
    };
    let t = Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    };
    let changes = vec![
        Request::AddService {
            service: svc.clone(),
        },
        Request::EditService { service: plain },
        Request::DeleteService { service: fwm },
        Request::AddRealServer {
            service: key,
            server: rs,
        },
        Request::EditRealServer {
            service: key,
            server: rs,
        },
        Request::DeleteRealServer {
            service: key,
            addr: ip("10.0.1.2"),
            port: 80,
        },
        Request::Clear,
        Request::Zero { service: None },
        Request::Zero { service: Some(key) },
        Request::SetTimeouts { timeouts: t },
        Request::AddLaddr {
            service: key,
            laddr: laddr.clone(),
        },
        Request::DelLaddr {
            service: key,
            laddr: LocalAddr {
                addr: ip("10.0.9.2"),
                ifname: None,
            },
        },
        Request::AddAddr { addr: ifa.clone() },
        Request::DelAddr { addr: ifa.clone() },
        Request::AddRoute {
            route: route.clone(),
        },
        Request::DelRoute {
            route: Route {
                prefix: ip("10.9.0.0"),
                prefix_len: 16,
                via: None,
                dev: Some("eth0".into()),
            },
        },
        Request::AddNeigh {
            neigh: neigh.clone(),
        },
        Request::DelNeigh {
            neigh: Neigh {
                lladdr: None,
                ..neigh
            },
        },
    ];
    let mut requests = changes.clone();
    requests.extend([
        Request::Batch { requests: changes },
        Request::ListServices { service: None },
        Request::ListServices { service: Some(key) },
        Request::ListConnections,
        Request::GetTimeouts,
        Request::GetLaddrs { service: Some(fwm) },
        Request::ListLinks,
        Request::ListAddrs {
            dev: Some("eth0".into()),
        },
        Request::ListRoutes,
        Request::ListNeighs { dev: None },
    ]);
    let entry = ServiceEntry {
        service: svc,
        stats: Default::default(),
        rates: Default::default(),
        real_servers: vec![RealServerEntry {
            server: rs,
            active_conns: 1,
            inactive_conns: 2,
            persist_conns: 0,
            stats: Default::default(),
            rates: Default::default(),
        }],
        local_addrs: vec![LocalAddrEntry {
            laddr: laddr.clone(),
            port_conflicts: 0,
            conns: 1,
        }],
    };
    let replies = vec![
        Reply::Done,
        Reply::Services {
            list: ServiceList {
                table_size: 4096,
                services: vec![entry],
            },
        },
        Reply::Connections {
            connections: vec![Connection {
                protocol: Protocol::Tcp,
                expire_secs: 899,
                state: "ESTABLISHED".into(),
                client: "10.0.0.2:40000".parse().unwrap(),
                virtual_addr: "10.0.0.100:80".parse().unwrap(),
                local: Some("10.0.9.1:5000".parse().unwrap()),
                destination: "[fd00:1::2]:8080".parse().unwrap(),
            }],
        },
        Reply::Timeouts { timeouts: t },
        Reply::Laddrs {
            services: vec![ServiceLaddrs {
                service: key,
                laddrs: vec![],
            }],
        },
        Reply::Links {
            links: vec![Link {
                id: 0,
                name: "eth0".into(),
                mtu: 1500,
                mac: "02:00:00:00:00:01".into(),
                state: "UP".into(),
                backend: "af_xdp (native)".into(),
                queues: 2,
                tap: None,
                stats: Default::default(),
            }],
        },
        Reply::Addrs { addrs: vec![ifa] },
        Reply::Routes {
            routes: vec![RouteEntry {
                route,
                src: None,
                mtu: 1500,
                connected: false,
            }],
        },
        Reply::Neighs {
            neighs: vec![NeighEntry {
                addr: ip("10.0.0.9"),
                lladdr: None,
                state: "INCOMPLETE".into(),
                dev: "eth0".into(),
                worker: 1,
                permanent: false,
            }],
        },
    ];
    let mut responses: Vec<Response> = replies.into_iter().map(Response::Ok).collect();
    responses.push(Response::Error(ApiError::new(
        ErrorCode::Invalid,
        "server.weight",
        "too big",
    )));
    (requests, responses)
}

#[test]
fn openapi_describes_what_serde_writes() {
    let root: Value = serde_json::from_str(OPENAPI).unwrap();
    assert!(root["openapi"].as_str().unwrap().starts_with("3.0."));
    let req_schema = &root["paths"]["/v1/request"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let resp_schema = &root["components"]["schemas"]["Response"];
    let (requests, responses) = samples();
    // Every request kind is exercised.
    let ops: std::collections::BTreeSet<String> = requests
        .iter()
        .map(|r| {
            serde_json::to_value(r).unwrap()["op"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mapping = root["components"]["schemas"]["Request"]["discriminator"]["mapping"]
        .as_object()
        .unwrap();
    assert_eq!(
        ops,
        mapping.keys().cloned().collect(),
        "the schema's request kinds are serde's"
    );
    for r in &requests {
        let v = serde_json::to_value(r).unwrap();
        validate(&root, req_schema, &v, "request").unwrap_or_else(|e| panic!("{v}: {e}"));
    }
    for r in &responses {
        let v = serde_json::to_value(r).unwrap();
        validate(&root, resp_schema, &v, "response").unwrap_or_else(|e| panic!("{v}: {e}"));
    }
    // The schema's required fields are what serde needs: a request
    // missing one does not parse, and the validator refuses it too.
    let v = serde_json::to_value(&requests[3]).unwrap();
    for field in ["service", "server"] {
        let mut w = v.clone();
        w.as_object_mut().unwrap().remove(field);
        assert!(serde_json::from_value::<Request>(w.clone()).is_err());
        assert!(
            validate(&root, req_schema, &w, "request").is_err(),
            "{field}"
        );
    }
    for field in ["addr", "port", "forward", "weight"] {
        let mut w = v.clone();
        w["server"].as_object_mut().unwrap().remove(field);
        assert!(
            serde_json::from_value::<Request>(w.clone()).is_err(),
            "{field}"
        );
        assert!(
            validate(&root, req_schema, &w, "request").is_err(),
            "{field}"
        );
    }
    // And the optional ones really are: dropping them still parses.
    for field in ["upper_threshold", "lower_threshold"] {
        let mut w = v.clone();
        w["server"].as_object_mut().unwrap().remove(field);
        assert!(
            serde_json::from_value::<Request>(w.clone()).is_ok(),
            "{field}"
        );
        validate(&root, req_schema, &w, "request").unwrap();
    }
    // Wrong values are refused by both.
    let bad = serde_json::json!({"op": "add_service", "service": {"key": {"addr": {"protocol": "tcpx", "addr": "10.0.0.1", "port": 80}}, "scheduler": "rr"}});
    assert!(serde_json::from_value::<Request>(bad.clone()).is_err());
    assert!(validate(&root, req_schema, &bad, "request").is_err());
}

/// The same check with a reference JSON Schema implementation, when
/// python3-jsonschema is there (nullable turned into a null type).
#[test]
fn openapi_with_python_jsonschema() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("python3 jsonschema not available: skipped");
        return;
    }
    let (requests, responses) = samples();
    let dir = std::env::temp_dir().join(format!("rvsd-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("openapi.json"), OPENAPI).unwrap();
    std::fs::write(
        dir.join("requests.json"),
        serde_json::to_string(&requests).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("responses.json"),
        serde_json::to_string(&responses).unwrap(),
    )
    .unwrap();
    let script = r##"
import json, sys, jsonschema
d = sys.argv[1]
doc = json.load(open(d + "/openapi.json"))
def fix(s):
    if isinstance(s, dict):
        s = {k: fix(v) for k, v in s.items() if k not in ("discriminator", "example")}
        if s.pop("nullable", False):
            s = {"anyOf": [s, {"type": "null"}]}
        if "$ref" in s:
            s["$ref"] = s["$ref"].replace("#/components/schemas/", "#/definitions/")
        return s
    if isinstance(s, list):
        return [fix(x) for x in s]
    return s
defs = fix(doc["components"]["schemas"])
for name, file in (("Request", "requests.json"), ("Response", "responses.json")):
    schema = {"definitions": defs, "$ref": "#/definitions/" + name}
    v = jsonschema.Draft7Validator(schema)
    for x in json.load(open(d + "/" + file)):
        errs = list(v.iter_errors(x))
        assert not errs, (x, [e.message for e in errs])
    bad = {"op": "add_real_server", "service": {"addr": {"protocol": "tcp", "addr": "10.0.0.1", "port": 80}}, "server": {"addr": "10.0.1.2", "port": 80, "weight": 1}}
    if name == "Request":
        assert list(v.iter_errors(bad)), "missing forward accepted"
print("ok")
"##;
    let out = std::process::Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
