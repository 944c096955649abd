//! What the probes' tests share: a spec aimed at an address with short
//! limits, and tiny in-process servers on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::CheckSpec;
use crate::conf::model::CheckKind;

/// A spec for `kind` against `target`: 1 s limit, no retry, 1 s loop.
pub(crate) fn spec(kind: CheckKind, target: SocketAddr) -> CheckSpec {
    CheckSpec {
        kind,
        target,
        bind: None,
        connect_timeout: Duration::from_secs(1),
        retry: 0,
        delay_before_retry: Duration::from_millis(100),
        delay_loop: Duration::from_secs(1),
        warmup: None,
        host: target.to_string(),
    }
}

/// Reads one request head, reports it on `seen`, writes `answer`, closes.
pub(crate) async fn answer_http<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    answer: &'static [u8],
    seen: UnboundedSender<String>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = seen.send(String::from_utf8_lossy(&head).into_owned());
    let _ = s.write_all(answer).await;
    let _ = s.shutdown().await;
}

/// A self-signed P-256 certificate (CN rvs-keepalived-test) and its key,
/// for the SSL_GET tests' server.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBkjCCATmgAwIBAgIUQS2R/DHodd0t9/YEGVMKYZXskiwwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTcnZzLWtlZXBhbGl2ZWQtdGVzdDAgFw0yNjExMjIwMzExMTNa
GA8yMTI2MTAyOTAzMTExM1owHjEcMBoGA1UEAwwTcnZzLWtlZXBhbGl2ZWQtdGVz
dDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEcjiFGJVduF8BwJcmzKEdMQ0/bv
Dl/GK7TefYMT9AfbFNt5Mtz5kU3HRrKzPKDmrOL1WY1AcbOgl7SumW8aOnujUzBR
MB0GA1UdDgQWBBTewFT0ZA9SNZOonZgn8x8b3SjWojAfBgNVHSMEGDAWgBTewFT0
ZA9SNZOonZgn8x8b3SjWojAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cA
MEQCIECLocgZAi3QvjU9BrWB6xSGhgo4YeZg0y0CAnhTz6efAiBWHuqm31MG0dNr
XX3iUb4+kfVgZOSHc0Gc6aekdWHYdQ==
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAAKI2UbXdby2YvGc
vX0LM+PshxEZMSNxEy1iNdFbP46hRANCAARHI4hRiVXbhfAcCXJsyhHTENP27w5f
xiu03n2DE/QH2xTbeTLc+ZFNx0ayszyg5qzi9VmNQHGzoJe0rplvGjp7
-----END PRIVATE KEY-----
";

/// A TLS server on loopback answering `answer` to every request; request
/// heads arrive on the returned channel.
pub(crate) async fn tls_server(answer: &'static [u8]) -> (SocketAddr, UnboundedReceiver<String>) {
    let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).expect("test certificate");
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).expect("test key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("address");
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(s) = acceptor.accept(s).await {
                    answer_http(s, answer, tx).await;
                }
            });
        }
    });
    (addr, rx)
}

/// An address in [`in_blackhole_ns`]'s namespace that nothing answers
/// (nobody on its link has it: ARP goes unanswered).
pub(crate) const BLACKHOLE: &str = "10.9.0.2";

/// Runs `f` on a tokio runtime inside a fresh network namespace holding
/// only `lo` and a veth pair (10.9.0.1/24 on one end, nothing on the
/// other), so "no answer" does not depend on the host's network.
pub(crate) fn in_blackhole_ns<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let ns = rvs_netns::Netns::new("kachk");
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "d0"]);
    ns.ip(&["link", "set", "d0", "up"]);
    ns.ip(&["link", "set", "d1", "up"]);
    ns.run(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    });
}
