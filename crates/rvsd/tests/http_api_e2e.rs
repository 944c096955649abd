//! rvsd's HTTP/JSON API end to end (run as root): rvsd in the lb
//! namespace with its unix socket and `[api] http_listen` on loopback;
//! curl inside the namespace is the HTTP client, the built `rvsadm` the
//! socket's.
//!
//! - no or a wrong bearer token: 401, and `rvsadm -L -n` unchanged;
//! - `GET /openapi.json` with the token: the OpenAPI 3.0 document;
//! - a FullNAT service, its local address and real server added in one
//!   HTTP batch: listed by `rvsadm -L -n` over the socket, and the client's
//!   curl through the VIP answered by the backend;
//! - an invalid request: 400 with the field at fault, nothing changed;
//! - a non-loopback `http_listen`: rvsd refuses to start, naming the key.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::harness::{API_OFF, HttpServer, Rvsd, TempFile, Topo, curl, sibling_bin};
use common::{TIMEOUT, run_with_timeout, unique};

const VIP: &str = "10.0.0.100";
const TOKEN: &str = "e2e-token-0123456789abcdef";

fn rvsadm_list(bin: &PathBuf, socket: &str) -> String {
    let out = run_with_timeout(
        Command::new(bin)
            .args(["-L", "-n"])
            .env("RVS_SOCKET", socket),
        TIMEOUT,
    )
    .expect("rvsadm");
    assert!(
        out.status.success(),
        "rvsadm -L -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `curl` in the lb namespace: (status, body).
fn http(
    t: &Topo,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec![
        "curl",
        "-sS",
        "--max-time",
        "5",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ];
    if let Some(a) = &auth {
        args.extend(["-H", a.as_str()]);
    }
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    args.push(url);
    let out = t.lb.exec(&args, Duration::from_secs(10)).expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {url}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_string())
}

#[test]
fn http_api_drives_rvsd() {
    let t = Topo::new(1, false);
    let _b1 = HttpServer::start(&t.backends[0], "b1", SocketAddr::from(([0, 0, 0, 0], 80)));
    let tag = unique("http");
    let socket = format!("/tmp/rvs-e2e-{tag}.sock");
    let token = TempFile::new("token");
    std::fs::write(&token.0, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(
        &token.0,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let listen = "127.0.0.1:19470";
    let api = format!(
        "[api]\nsocket = \"{socket}\"\nhttp_listen = \"{listen}\"\nhttp_token_file = \"{}\"\n\n",
        token.0
    );
    let config = t.config_head("af_packet").replacen(API_OFF, &api, 1);
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &config);
    t.warm_up(&mut rvsd, false);
    let adm = sibling_bin("rvsadm");
    let empty = rvsadm_list(&adm, &socket);
    assert_eq!(empty.lines().count(), 3, "{empty}");
    let url = format!("http://{listen}/v1/request");
    let batch = format!(
        r#"{{"op":"batch","requests":[
        {{"op":"add_service","service":{{"key":{{"addr":{{"protocol":"tcp","addr":"{VIP}","port":80}}}},"scheduler":"rr"}}}},
        {{"op":"add_laddr","service":{{"addr":{{"protocol":"tcp","addr":"{VIP}","port":80}}}},"laddr":{{"addr":"10.0.9.1"}}}},
        {{"op":"add_real_server","service":{{"addr":{{"protocol":"tcp","addr":"{VIP}","port":80}}}},
          "server":{{"addr":"10.0.1.2","port":80,"forward":"fullnat","weight":1}}}}]}}"#
    );

    // Without the token, or with a wrong one: 401 and nothing changed.
    for tok in [None, Some("wrong"), Some("e2e-token-0123456789abcdeF")] {
        let (code, body) = http(&t, "POST", &url, tok, Some(&batch));
        if code != 401 {
            rvsd.fail(&format!("token {tok:?}: {code} {body}"));
        }
        let (code, _) = http(
            &t,
            "GET",
            &format!("http://{listen}/openapi.json"),
            tok,
            None,
        );
        assert_eq!(code, 401);
    }
    assert_eq!(
        rvsadm_list(&adm, &socket),
        empty,
        "a refused request changed the configuration"
    );

    // The description.
    let (code, body) = http(
        &t,
        "GET",
        &format!("http://{listen}/openapi.json"),
        Some(TOKEN),
        None,
    );
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("openapi.json is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
    assert!(doc["paths"]["/v1/request"]["post"].is_object());

    // The batch over HTTP: visible over the socket, and traffic flows.
    let (code, body) = http(&t, "POST", &url, Some(TOKEN), Some(&batch));
    if code != 200 || body.trim() != r#"{"ok":{"kind":"done"}}"# {
        rvsd.fail(&format!("batch: {code} {body}"));
    }
    let listed = rvsadm_list(&adm, &socket);
    assert!(
        listed.contains(&format!("TCP  {VIP}:80 rr"))
            && listed.lines().any(|l| {
                l.split_whitespace().take(4).collect::<Vec<_>>()
                    == ["->", "10.0.1.2:80", "FullNat", "1"]
            }),
        "{listed}"
    );
    let got = curl(&t.client, &format!("http://{VIP}/"), &[], &mut rvsd);
    assert!(got.starts_with("b1"), "{got}");
    assert!(
        rvsd.log().contains("configuration changed") && rvsd.log().contains("via=\"http\""),
        "the change is logged with where it came from:\n{}",
        rvsd.log()
    );

    // Invalid: 400 naming the field; nothing changed.
    let bad = format!(
        r#"{{"op":"edit_real_server","service":{{"addr":{{"protocol":"tcp","addr":"{VIP}","port":80}}}},
          "server":{{"addr":"10.0.1.2","port":80,"forward":"fullnat","weight":70000}}}}"#
    );
    let (code, body) = http(&t, "POST", &url, Some(TOKEN), Some(&bad));
    assert_eq!(code, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid", "{body}");
    assert_eq!(v["error"]["field"], "server.weight", "{body}");
    let (code, body) = http(
        &t,
        "POST",
        &url,
        Some(TOKEN),
        Some(r#"{"op":"add_service"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(rvsadm_list(&adm, &socket), listed);
    rvsd.stop();

    // A non-loopback address is refused at start, naming the key.
    let outside = config.replace(listen, "10.0.0.1:19470");
    std::fs::write(&path.0, &outside).unwrap();
    let out =
        t.lb.exec(&[env!("CARGO_BIN_EXE_rvsd"), "--config", &path.0], TIMEOUT)
            .expect("rvsd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("api.http_listen: 10.0.0.1:19470 is not a loopback address"),
        "{err}"
    );
    // Without a token file, neither.
    let no_token = config.replace(&format!("http_token_file = \"{}\"\n", token.0), "");
    std::fs::write(&path.0, &no_token).unwrap();
    let out =
        t.lb.exec(&[env!("CARGO_BIN_EXE_rvsd"), "--config", &path.0], TIMEOUT)
            .expect("rvsd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("api.http_token_file"));
}
