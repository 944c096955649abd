//! The Prometheus endpoint: `GET /metrics` in the OpenMetrics text format
//! (which Prometheus scrapes natively), served by a small blocking HTTP
//! server on its own thread.
//!
//! Nothing here touches the packet path. Workers publish a copy of their
//! counters every `STATS_PERIOD_MS` (`crate::shared`); a scrape loads the
//! latest copy of each worker (one `arc-swap` load each), sums what is
//! per service and per real server, and encodes everything with
//! `prometheus-client` (a [`Collector`](prometheus_client::collector::Collector)
//! that builds the families at scrape time: [`collect::Families`]). A scrape
//! therefore sees counters at most one stats period old.
//!
//! Counters are the workers' own monotonic counters (`rvsadm -Z` does not
//! reset them: it only moves the API's baselines); rates are left to
//! PromQL's `rate()`. The families are listed in [`collect`].
//!
//! ```toml
//! [metrics]
//! listen = "127.0.0.1:9469"   # the default; "" turns the endpoint off
//! ```
//!
//! The endpoint has no authentication: keep it on loopback (the default)
//! or a management network. With the default address, a failure to listen
//! (no loopback in the namespace, the port taken) is logged and rvsd runs
//! without metrics; an address set in the file must work or rvsd does not
//! start. The address is read at start (a reload does not move it).

pub mod collect;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::httpd::{self, Head, ServerThread};
use crate::shared::Shared;

/// The default address of the endpoint.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9469";

/// The `Content-Type` of an OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where the endpoint listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// The address.
    pub addr: SocketAddr,
    /// Whether the file set it (a failure to listen is then fatal).
    pub explicit: bool,
}

impl Listen {
    /// `[metrics] listen`: absent means the default, `""` means off.
    pub fn parse(v: Option<&str>) -> Result<Option<Listen>, String> {
        match v.map(str::trim) {
            None => Ok(Some(Listen {
                addr: DEFAULT_LISTEN.parse().map_err(|_| "bad default".to_string())?,
                explicit: false,
            })),
            Some("") => Ok(None),
            Some(s) => s
                .parse()
                .map(|addr| {
                    Some(Listen {
                        addr,
                        explicit: true,
                    })
                })
                .map_err(|_| {
                    format!(
                        "`{s}` is not an ADDR:PORT (e.g. \"{DEFAULT_LISTEN}\", \"[::1]:9469\"; \"\" turns metrics off)"
                    )
                }),
        }
    }
}

/// The running endpoint; stopped by [`Server::stop`] or on drop.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    thread: ServerThread,
}

/// What a scrape needs besides the workers' counters.
#[derive(Debug, Clone, Default)]
pub struct Static {
    /// Port names, by port id.
    pub ports: Vec<String>,
    /// The backend of each port (`af_xdp`, `af_packet`).
    pub backends: Vec<String>,
    /// TAP device of each port.
    pub taps: Vec<Option<String>>,
}

impl Static {
    /// From the resolved ports and the port specs (their TAP devices).
    pub fn of(ports: &[crate::daemon::ResolvedPort], stack: &crate::config::StackSpec) -> Static {
        Static {
            ports: ports.iter().map(|p| p.name.clone()).collect(),
            backends: ports
                .iter()
                .map(|p| match (p.backend, &p.xdp) {
                    (crate::config::Backend::AfPacket, _) => "af_packet".to_string(),
                    (crate::config::Backend::AfXdp, Some(m)) => format!("af_xdp_{m}"),
                    (crate::config::Backend::AfXdp, None) => "af_xdp".to_string(),
                })
                .collect(),
            taps: stack.ports.iter().map(|p| p.tap.clone()).collect(),
        }
    }
}

impl Server {
    /// Listens on `listen` and serves scrapes from a thread. A failure to
    /// listen is an error if the address was set in the file; with the
    /// default address it is logged and `Ok(None)` returned.
    pub fn start(
        listen: Listen,
        shared: Arc<Shared>,
        info: Static,
    ) -> Result<Option<Server>, String> {
        let l = match TcpListener::bind(listen.addr) {
            Ok(l) => l,
            Err(e) if !listen.explicit => {
                tracing::warn!(
                    listen = %listen.addr,
                    "metrics: cannot listen on the default address ({e}): metrics off \
                     (set [metrics] listen, or \"\" to silence this)"
                );
                return Ok(None);
            }
            Err(e) => return Err(format!("metrics.listen {}: {e}", listen.addr)),
        };
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        if !addr.ip().is_loopback() {
            tracing::warn!(listen = %addr, "metrics served beyond loopback, without authentication");
        }
        let registry = collect::registry(shared, info);
        let thread = ServerThread::spawn("rvs-metrics", move |s| serve(&l, &registry, s))
            .map_err(|e| format!("metrics thread: {e}"))?;
        tracing::info!(listen = %addr, "metrics listening (GET /metrics)");
        Ok(Some(Server { addr, thread }))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread (within one poll period).
    pub fn stop(mut self) {
        self.thread.halt();
    }
}

fn serve(l: &TcpListener, registry: &prometheus_client::registry::Registry, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Some((c, _)) = httpd::accept(l) else {
            continue;
        };
        // One client at a time: scrapes are rare and short. Errors are the
        // client's (gone, too slow) and only end its connection.
        if let Err(e) = answer(c, registry) {
            tracing::debug!("metrics client: {e}");
        }
    }
}

/// Reads one request (its head) and answers it; the connection closes.
fn answer(mut c: TcpStream, registry: &prometheus_client::registry::Registry) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    // A client gone before the end of its head gets what it sent answered.
    if httpd::read_head(&mut c, &mut head)? == Head::TooLarge {
        return respond(
            &mut c,
            "431 Request Header Fields Too Large",
            "text/plain",
            b"",
            false,
        );
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    let (status, ctype, body): (&str, &str, std::borrow::Cow<'_, [u8]>) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let mut body = String::with_capacity(32 * 1024);
            prometheus_client::encoding::text::encode(&mut body, registry)
                .map_err(|_| io::Error::other("encoding the metrics"))?;
            ("200 OK", CONTENT_TYPE, body.into_bytes().into())
        }
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/html; charset=utf-8",
            b"<html><body><a href=\"/metrics\">/metrics</a></body></html>\n"[..].into(),
        ),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", b"not found\n"[..].into()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            b"GET /metrics\n"[..].into(),
        ),
    };
    respond(&mut c, status, ctype, &body, head_only)
}

/// Writes the answer; `head_only` (HEAD) sends the head alone, with the
/// body's length.
fn respond(
    c: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes())?;
    if !head_only {
        c.write_all(body)?;
    }
    c.flush()
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

    use super::*;

    #[test]
    fn listen_values() {
        let d = Listen::parse(None).unwrap().unwrap();
        assert_eq!(d.addr.to_string(), DEFAULT_LISTEN);
        assert!(!d.explicit);
        assert_eq!(Listen::parse(Some("")).unwrap(), None);
        let v6 = Listen::parse(Some("[::1]:9000")).unwrap().unwrap();
        assert_eq!(v6.addr.to_string(), "[::1]:9000");
        assert!(v6.explicit);
        let e = Listen::parse(Some("localhost")).unwrap_err();
        assert!(e.contains("not an ADDR:PORT"), "{e}");
    }

    fn ask(addr: SocketAddr, req: &str) -> String {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    /// GET, HEAD, an unknown path and an unknown method; the thread stops.
    #[test]
    fn serves_http() {
        use rvs_lb::config::Config;
        use rvs_lb::stack::StackConfig;
        let lb = Arc::new(Config::build(Vec::new(), Default::default()).unwrap());
        let shared = Arc::new(Shared::new(1, lb, Arc::new(StackConfig::default())));
        let listen = Listen::parse(Some("127.0.0.1:0")).unwrap().unwrap();
        let s = Server::start(listen, shared, Static::default())
            .unwrap()
            .unwrap();
        let get = ask(s.addr(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let (head, body) = get.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains(CONTENT_TYPE), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(
            body.contains("# TYPE rvs_workers gauge\nrvs_workers 1\n"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"));
        let h = ask(s.addr(), "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            h.starts_with("HTTP/1.1 200 OK") && h.ends_with("\r\n\r\n"),
            "{h}"
        );
        assert!(!h.contains("Content-Length: 0"), "{h}");
        assert!(ask(s.addr(), "GET /x HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(s.addr(), "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let addr = s.addr();
        s.stop();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    }
}
