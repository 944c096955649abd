//! The API over HTTP/JSON, for tools that speak HTTP rather than the unix
//! socket's line protocol. Off by default:
//!
//! ```toml
//! [api]
//! http_listen = "127.0.0.1:9470"        # loopback only; "" or absent: off
//! http_token_file = "/etc/rvs/api.token" # clients send `Authorization: Bearer <token>`
//! ```
//!
//! - `POST /v1/request`: the body is one [`rvs_api::Request`] as JSON, the
//!   answer one [`rvs_api::Response`]: the same handler as the unix
//!   socket's (validated whole, applied all or nothing, logged with who
//!   asked). The status follows the answer: 200 `ok`; 400 `bad_request`
//!   and `invalid`; 404 `not_found`; 409 `exists`; 500 `internal`.
//! - `GET /openapi.json`: the OpenAPI 3.0 description (`openapi.json` in
//!   the crate).
//!
//! Every request needs the token (compared in constant time), else 401 and
//! nothing happens. The address must be a loopback one (127.0.0.0/8,
//! `::1`): anything else is refused at start, as is a missing or empty
//! token file. One connection at a time on one thread (the metrics
//! endpoint's approach: no async runtime), `Connection: close`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rvs_api::{ApiError, ErrorCode, Request, Response};

use super::{ServerShared, describe};
use crate::httpd::{self, ServerThread};

/// The OpenAPI 3.0 description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The largest body accepted (as the socket's longest line).
pub const MAX_BODY: usize = rvs_api::MAX_LINE;

/// `[api] http_listen`: `None` (absent or `""`) is off; otherwise a
/// loopback `ADDR:PORT`.
pub fn parse_listen(v: Option<&str>) -> Result<Option<SocketAddr>, String> {
    let s = match v.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(s) => s,
    };
    let addr: SocketAddr = s.parse().map_err(|_| {
        format!(
            "`{s}` is not an ADDR:PORT (e.g. \"127.0.0.1:9470\", \"[::1]:9470\"; \"\" turns it off)"
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the HTTP API only listens on 127.0.0.0/8 or ::1 \
             (put a proxy in front of it to reach it from elsewhere)"
        ));
    }
    Ok(Some(addr))
}

/// Checks `[api] http_listen` and `http_token_file` together (the
/// configuration's own check): `(field, reason)` on error.
pub fn check(s: &crate::config::ApiSection) -> Result<(), (&'static str, String)> {
    let listen = parse_listen(s.http_listen.as_deref()).map_err(|r| ("api.http_listen", r))?;
    if listen.is_some()
        && s.http_token_file
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
    {
        return Err((
            "api.http_token_file",
            "required with http_listen: requests must carry its token".into(),
        ));
    }
    Ok(())
}

/// Reads the token: the file's contents without surrounding whitespace,
/// not empty.
pub fn read_token(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{}: the token file is empty", path.display()));
    }
    if let Ok(m) = std::fs::metadata(path)
        && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the API token file is readable by others than its owner");
    }
    Ok(t.as_bytes().to_vec())
}

/// Equality that takes the same time wherever the first difference is
/// (only the length shows).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

/// The running endpoint.
pub(super) struct Endpoint {
    addr: SocketAddr,
    thread: ServerThread,
}

impl Endpoint {
    /// Listens on `listen` (checked again: loopback only) with the token
    /// from `token_file`.
    pub(super) fn start(
        listen: &str,
        token_file: Option<&Path>,
        s: &Arc<ServerShared>,
    ) -> Result<Option<Endpoint>, String> {
        let Some(addr) = parse_listen(Some(listen)).map_err(|r| format!("api.http_listen: {r}"))?
        else {
            return Ok(None);
        };
        let token_file = token_file.ok_or_else(|| {
            "api.http_token_file: required with http_listen: requests must carry its token"
                .to_string()
        })?;
        let token = read_token(token_file).map_err(|r| format!("api.http_token_file: {r}"))?;
        let l = TcpListener::bind(addr).map_err(|e| format!("api.http_listen {addr}: {e}"))?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let s = Arc::clone(s);
        let thread = ServerThread::spawn("rvs-api-http", move |st| serve(&l, &s, &token, st))
            .map_err(|e| format!("HTTP API thread: {e}"))?;
        tracing::info!(listen = %addr, "HTTP API listening (POST /v1/request, GET /openapi.json)");
        Ok(Some(Endpoint { addr, thread }))
    }

    /// Where it listens.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread (within one poll period).
    pub(super) fn stop(mut self) {
        self.thread.halt();
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .finish()
    }
}

fn serve(l: &TcpListener, s: &ServerShared, token: &[u8], stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) && !s.stop.load(Ordering::Acquire) {
        let Some((c, peer)) = httpd::accept(l) else {
            continue;
        };
        if let Err(e) = answer(c, peer, s, token) {
            tracing::debug!(%peer, "HTTP API client: {e}");
        }
    }
}

/// A parsed request head.
struct Head {
    method: String,
    path: String,
    content_length: Option<usize>,
    bearer: Option<Vec<u8>>,
}

fn parse_head(head: &[u8]) -> Head {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut h = Head {
        method,
        path,
        content_length: None,
        bearer: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            h.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("authorization") {
            let mut p = value.splitn(2, ' ');
            if p.next().is_some_and(|s| s.eq_ignore_ascii_case("bearer")) {
                h.bearer = Some(p.next().unwrap_or("").trim().as_bytes().to_vec());
            }
        }
    }
    h
}

/// The status of an answer.
fn status_of(r: &Response) -> &'static str {
    match r {
        Response::Ok(_) => "200 OK",
        Response::Error(e) => match e.code {
            ErrorCode::Invalid | ErrorCode::BadRequest => "400 Bad Request",
            ErrorCode::NotFound => "404 Not Found",
            ErrorCode::Exists => "409 Conflict",
            ErrorCode::Internal => "500 Internal Server Error",
        },
    }
}

fn error_body(code: ErrorCode, field: &str, reason: impl Into<String>) -> Vec<u8> {
    json(&Response::Error(ApiError::new(code, field, reason)))
}

fn json(r: &Response) -> Vec<u8> {
    let mut v = serde_json::to_vec(r).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Reads one request and answers it; the connection closes.
fn answer(mut c: TcpStream, peer: SocketAddr, s: &ServerShared, token: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let end = match httpd::read_head(&mut c, &mut buf)? {
        httpd::Head::End(end) => end,
        httpd::Head::TooLarge => {
            return respond(&mut c, "431 Request Header Fields Too Large", &[], &[]);
        }
        httpd::Head::Closed => return Ok(()),
    };
    let head = parse_head(buf.get(..end).unwrap_or_default());
    let authorised = head.bearer.as_deref().is_some_and(|b| ct_eq(b, token));
    if !authorised {
        tracing::info!(%peer, method = %head.method, path = %head.path, "HTTP API: refused, no or wrong token");
        // Read the body we will not use: closing a socket with unread data
        // makes the kernel reset the connection, and the client could lose
        // the 401 before reading it.
        discard_body(&mut c, buf.len().saturating_sub(end), head.content_length);
        let body = error_body(
            ErrorCode::BadRequest,
            "Authorization",
            "a bearer token is required (Authorization: Bearer <token>)",
        );
        return respond(
            &mut c,
            "401 Unauthorized",
            &body,
            &["WWW-Authenticate: Bearer realm=\"rvsd\""],
        );
    }
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/openapi.json") => respond(&mut c, "200 OK", OPENAPI.as_bytes(), &[]),
        ("POST", "/v1/request") => {
            let Some(len) = head.content_length else {
                let body = error_body(ErrorCode::BadRequest, "", "Content-Length is required");
                return respond(&mut c, "411 Length Required", &body, &[]);
            };
            if len > MAX_BODY {
                let body = error_body(
                    ErrorCode::BadRequest,
                    "",
                    format!("the body is longer than {MAX_BODY} bytes"),
                );
                return respond(&mut c, "413 Content Too Large", &body, &[]);
            }
            let mut body = buf.split_off(end);
            if body.len() < len {
                let mut rest = vec![0u8; len - body.len()];
                c.read_exact(&mut rest)?;
                body.extend_from_slice(&rest);
            }
            body.truncate(len);
            let resp = request(s, peer, &body);
            respond(&mut c, status_of(&resp), &json(&resp), &[])
        }
        (_, "/openapi.json" | "/v1/request") => {
            let body = error_body(
                ErrorCode::BadRequest,
                "",
                "POST /v1/request or GET /openapi.json",
            );
            respond(
                &mut c,
                "405 Method Not Allowed",
                &body,
                &["Allow: GET, POST"],
            )
        }
        _ => {
            let body = error_body(
                ErrorCode::NotFound,
                "",
                "POST /v1/request or GET /openapi.json",
            );
            respond(&mut c, "404 Not Found", &body, &[])
        }
    }
}

/// Parses and handles one request body, logging changes as the socket's
/// sessions do.
fn request(s: &ServerShared, peer: SocketAddr, body: &[u8]) -> Response {
    let mut de = serde_json::Deserializer::from_slice(body);
    let req: Request = match serde_path_to_error::deserialize(&mut de) {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            return Response::Error(ApiError::new(
                ErrorCode::BadRequest,
                field,
                e.into_inner().to_string(),
            ));
        }
    };
    if let Err(e) = de.end() {
        return Response::Error(ApiError::new(ErrorCode::BadRequest, "", e.to_string()));
    }
    let result = s.handle(&req);
    if req.is_change() || matches!(req, Request::Batch { .. }) {
        match &result {
            Ok(_) => tracing::info!(
                via = "http",
                %peer,
                change = %describe(&req),
                "configuration changed"
            ),
            Err(e) => tracing::info!(
                via = "http",
                %peer,
                change = %describe(&req),
                error = %e,
                "change refused, configuration unchanged"
            ),
        }
    }
    Response::from(result)
}

/// Reads and drops what remains of a request body (at most [`MAX_BODY`]
/// bytes; errors and the read timeout end it early).
fn discard_body(c: &mut TcpStream, already: usize, len: Option<usize>) {
    let mut left = len.unwrap_or(0).min(MAX_BODY).saturating_sub(already);
    let mut scratch = [0u8; 4096];
    while left > 0 {
        let want = left.min(scratch.len());
        match c.read(scratch.get_mut(..want).unwrap_or_default()) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn respond(c: &mut TcpStream, status: &str, body: &[u8], extra: &[&str]) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes())?;
    c.write_all(body)?;
    c.flush()
}

/// Where the endpoint of `cfg` would read its token (for the daemon's
/// start-up message).
pub fn token_path(s: &crate::config::ApiSection) -> Option<PathBuf> {
    s.http_token_file
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests;
