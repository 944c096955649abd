//! HTTP_GET and SSL_GET: every configured URL is fetched with an HTTP/1.0
//! GET, and passes if its status code is accepted (`status_code`, by
//! default any 2xx) and, when a `digest` is set, the MD5 of its body (as
//! keepalived's `genhash` prints it: 32 lowercase hex digits) matches.
//!
//! Each URL is its own connection, and connecting, the TLS handshake, the
//! request and reading the whole answer must all fit in
//! `connect_timeout`: a server that accepts but never answers fails.

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Pass, spec::CheckSpec, tcp, tls};
use crate::conf::model::Url;

/// The largest answer read (a health page is small; a digest of
/// something larger is not a health check).
const MAX_ANSWER: u64 = 16 << 20;

/// One HTTP_GET (`tls` false) or SSL_GET attempt over every URL.
pub(crate) async fn check(spec: &CheckSpec, tls: bool, urls: &[Url]) -> Result<Pass, String> {
    if urls.is_empty() {
        // Nothing to fetch: a connection (and handshake) is all there is.
        let attempt = async {
            let s = tcp::connect(spec.target, spec.bind, spec.connect_timeout).await?;
            if tls {
                tls::handshake(s, &spec.host).await?;
            }
            Ok(Pass::default())
        };
        return within(spec.connect_timeout, attempt).await;
    }
    for url in urls {
        check_url(spec, tls, url)
            .await
            .map_err(|e| format!("{}: {e}", url.path))?;
    }
    Ok(Pass::default())
}

async fn check_url(spec: &CheckSpec, tls: bool, url: &Url) -> Result<(), String> {
    let host = url.virtualhost.as_deref().unwrap_or(&spec.host);
    let limit = spec.connect_timeout;
    let attempt = async {
        let tcp = tcp::connect(spec.target, spec.bind, limit).await?;
        let raw = if tls {
            fetch(tls::handshake(tcp, host).await?, &url.path, host).await?
        } else {
            fetch(tcp, &url.path, host).await?
        };
        verify(&parse(&raw)?, url)
    };
    within(limit, attempt).await
}

/// `attempt`, given up after `limit`.
async fn within<T>(
    limit: std::time::Duration,
    attempt: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, attempt)
        .await
        .map_err(|_| format!("no complete answer within {limit:?}"))?
}

/// Sends the request and reads the answer to its end.
async fn fetch<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    path: &str,
    host: &str,
) -> Result<Vec<u8>, String> {
    let req = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: rvs-keepalived\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    s.flush()
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut raw = Vec::new();
    let mut limited = (&mut s).take(MAX_ANSWER + 1);
    match limited.read_to_end(&mut raw).await {
        Ok(_) => {}
        // Many servers close a TLS connection without close_notify; what
        // was read is the whole answer all the same (HTTP/1.0 ends at
        // the connection's end).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(format!("reading the answer: {e}")),
    }
    if raw.len() as u64 > MAX_ANSWER {
        return Err(format!("answer larger than {MAX_ANSWER} bytes"));
    }
    Ok(raw)
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The status code.
    pub status: u16,
    /// The body (everything after the header).
    pub body: Vec<u8>,
}

/// Splits a raw answer into status code and body.
pub(crate) fn parse(raw: &[u8]) -> Result<Answer, String> {
    if raw.is_empty() {
        return Err("empty answer".into());
    }
    let (head, body) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => return Err("answer without a complete header".into()),
        },
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("not an HTTP status line: {:?}", line.trim_end()))?;
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The MD5 of `data` as 32 lowercase hex digits (keepalived's genhash).
pub(crate) fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `a` passes `url`'s tests.
pub(crate) fn verify(a: &Answer, url: &Url) -> Result<(), String> {
    let ok = if url.status_codes.is_empty() {
        (200..300).contains(&a.status)
    } else {
        url.status_codes.contains(&a.status)
    };
    if !ok {
        return Err(format!("status {}", a.status));
    }
    if let Some(want) = &url.digest {
        let got = md5_hex(&a.body);
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!("digest {got}, expected {want}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::{self, spec};
    use crate::conf::model::CheckKind;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::net::TcpListener;

    fn url(path: &str) -> Url {
        Url {
            path: path.into(),
            digest: None,
            status_codes: vec![],
            virtualhost: None,
        }
    }

    #[test]
    fn parse_and_verify() {
        let a = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.body, b"hello");
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        let mut u = url("/");
        assert!(verify(&a, &u).is_ok());
        u.digest = Some("5D41402ABC4B2A76B9719D911017C592".into());
        assert!(verify(&a, &u).is_ok());
        u.digest = Some("00000000000000000000000000000000".into());
        assert!(verify(&a, &u).unwrap_err().contains("5d41402a"));
        u.digest = None;
        u.status_codes = vec![301, 302];
        assert_eq!(verify(&a, &u).unwrap_err(), "status 200");
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.0 200 OK\r\n").is_err());
        assert!(parse(b"").is_err());
    }

    proptest::proptest! {
        /// Whatever a server sends after a plausible start, reading it is
        /// an answer or a refusal.
        #[test]
        fn any_answer_is_read_without_panic(
            head in proptest::sample::select(vec!["", "HTTP/1.0 ", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 500"]),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let raw = [head.as_bytes(), &tail].concat();
            if let Ok(a) = parse(&raw) {
                let mut u = url("/");
                u.digest = Some(md5_hex(b""));
                let _ = verify(&a, &u);
            }
        }
    }

    /// Serves `answer` to every request on loopback, sending the request
    /// head it read to `seen`.
    async fn server(
        answer: &'static [u8],
    ) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let tx = tx.clone();
                tokio::spawn(testutil::answer_http(s, answer, tx));
            }
        });
        (addr, rx)
    }

    fn http(urls: Vec<Url>) -> CheckKind {
        CheckKind::Http {
            tls: false,
            urls,
            virtualhost: None,
        }
    }

    #[tokio::test]
    async fn status_and_digest_over_http() {
        let (ok, mut seen) = server(b"HTTP/1.0 200 OK\r\n\r\nhealthy\n").await;
        let (bad, _) =
            server(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n").await;
        let s = spec(http(vec![url("/health")]), ok);
        check(&s, false, &[url("/health")]).await.unwrap();
        let head = seen.recv().await.unwrap();
        assert!(head.starts_with("GET /health HTTP/1.0\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nHost: {ok}\r\n")), "{head}");

        let e = check(&spec(http(vec![]), bad), false, &[url("/")])
            .await
            .unwrap_err();
        assert_eq!(e, "/: status 500");
        let mut u = url("/");
        u.status_codes = vec![500];
        check(&spec(http(vec![]), bad), false, &[u]).await.unwrap();

        // Digest right, digest wrong; the URL's own virtualhost.
        let mut u = url("/d");
        u.digest = Some(md5_hex(b"healthy\n"));
        u.virtualhost = Some("www.example.com".into());
        check(&s, false, std::slice::from_ref(&u)).await.unwrap();
        let head = seen.recv().await.unwrap();
        assert!(head.contains("\r\nHost: www.example.com\r\n"), "{head}");
        u.digest = Some(md5_hex(b"sick\n"));
        let e = check(&s, false, &[u]).await.unwrap_err();
        assert!(e.contains("digest"), "{e}");
        // Every URL must pass.
        let e = check(
            &spec(http(vec![]), ok),
            false,
            &[url("/a"), {
                let mut u = url("/b");
                u.status_codes = vec![204];
                u
            }],
        )
        .await
        .unwrap_err();
        assert!(e.starts_with("/b: status 200"), "{e}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // Accepts (the kernel does, from its backlog) but never answers.
        let mut s = spec(http(vec![]), addr);
        s.connect_timeout = Duration::from_millis(300);
        let t = std::time::Instant::now();
        let e = check(&s, false, &[url("/")]).await.unwrap_err();
        assert!(e.contains("within"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(l);
        let e = check(&s, false, &[url("/")]).await.unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }

    #[tokio::test]
    async fn no_url_is_a_bounded_handshake() {
        // Accepts (from the kernel's backlog) but never speaks TLS.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kind = CheckKind::Http {
            tls: true,
            urls: vec![],
            virtualhost: None,
        };
        let mut s = spec(kind, l.local_addr().unwrap());
        s.connect_timeout = Duration::from_millis(300);
        let r = tokio::time::timeout(Duration::from_secs(3), check(&s, true, &[])).await;
        let e = r.expect("bounded by connect_timeout").unwrap_err();
        assert!(e.contains("within"), "{e}");
    }

    #[tokio::test]
    async fn ssl_get() {
        let (addr, mut seen) = testutil::tls_server(b"HTTP/1.0 200 OK\r\n\r\nsecure").await;
        let kind = CheckKind::Http {
            tls: true,
            urls: vec![],
            virtualhost: None,
        };
        let mut u = url("/tls");
        u.digest = Some(md5_hex(b"secure"));
        check(&spec(kind.clone(), addr), true, &[u.clone()])
            .await
            .unwrap();
        assert!(seen.recv().await.unwrap().starts_with("GET /tls HTTP/1.0"));
        u.digest = Some(md5_hex(b"other"));
        assert!(check(&spec(kind.clone(), addr), true, &[u]).await.is_err());
        // SSL_GET against a plain HTTP server fails (it waits for a
        // request head the ClientHello is not, until the limit).
        let (plain, _) = server(b"HTTP/1.0 200 OK\r\n\r\n").await;
        let mut s = spec(kind, plain);
        s.connect_timeout = Duration::from_millis(300);
        assert!(check(&s, true, &[url("/")]).await.is_err());
    }
}
