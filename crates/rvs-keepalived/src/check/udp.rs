//! UDP_CHECK: a datagram with the configured payload goes to the real
//! server from a connected socket, so that an ICMP port unreachable comes
//! back as ECONNREFUSED on the socket.
//!
//! Without `require_reply`, no error within `connect_timeout` means up
//! (UDP services need not answer). With it, a reply must arrive in time
//! and match: as keepalived compares, the first `min(reply length,
//! expected length)` bytes must equal the expected bytes (an empty
//! expectation accepts any reply).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::{Pass, spec::CheckSpec};

/// One UDP_CHECK attempt.
pub(crate) async fn check(
    spec: &CheckSpec,
    payload: &[u8],
    require_reply: Option<&[u8]>,
) -> Result<Pass, String> {
    let t = spec.target;
    let local = spec.bind.unwrap_or_else(|| {
        let ip = if t.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        SocketAddr::new(ip, 0)
    });
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("bind {local}: {e}"))?;
    sock.connect(t)
        .await
        .map_err(|e| format!("connect {t}: {e}"))?;
    sock.send(payload)
        .await
        .map_err(|e| format!("send to {t}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(spec.connect_timeout, sock.recv(&mut buf)).await {
        Err(_) if require_reply.is_none() => Ok(Pass::default()),
        Err(_) => Err(no_reply(spec.connect_timeout)),
        Ok(Err(e)) => Err(format!("{t}: {e}")),
        Ok(Ok(n)) => match require_reply {
            Some(want) if !matches(&buf[..n], want) => Err(format!(
                "{t}: reply {:02x?} does not match",
                &buf[..n.min(32)]
            )),
            _ => Ok(Pass::default()),
        },
    }
}

fn no_reply(limit: Duration) -> String {
    format!("no reply within {limit:?}")
}

/// keepalived's comparison: the common prefix must be equal.
fn matches(got: &[u8], want: &[u8]) -> bool {
    let n = got.len().min(want.len());
    got[..n] == want[..n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::spec;
    use crate::conf::model::CheckKind;

    fn kind() -> CheckKind {
        CheckKind::Udp {
            payload: vec![],
            require_reply: None,
        }
    }

    /// An echo server prefixing `tag` to every datagram.
    async fn echo(tag: &'static [u8]) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let mut out = tag.to_vec();
                out.extend_from_slice(&buf[..n]);
                let _ = s.send_to(&out, from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn listener_silent_closed_and_replies() {
        let mut s = spec(kind(), echo(b"OK").await);
        s.connect_timeout = Duration::from_millis(300);
        // A reply is not required: any non-error passes.
        check(&s, b"ping", None).await.unwrap();
        check(&s, b"ping", Some(b"OKping")).await.unwrap();
        check(&s, b"ping", Some(b"OK")).await.unwrap();
        check(&s, b"ping", Some(b"")).await.unwrap();
        let e = check(&s, b"ping", Some(b"KO")).await.unwrap_err();
        assert!(e.contains("does not match"), "{e}");

        // Nothing listens: the port unreachable refuses.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut c = spec(kind(), closed);
        c.connect_timeout = Duration::from_millis(300);
        let e = check(&c, b"x", None).await.unwrap_err();
        assert!(e.contains("refused"), "{e}");

        // A socket that never answers: up without require_reply, down with.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut q = spec(kind(), silent.local_addr().unwrap());
        q.connect_timeout = Duration::from_millis(200);
        check(&q, b"x", None).await.unwrap();
        let e = check(&q, b"x", Some(b"")).await.unwrap_err();
        assert!(e.contains("no reply"), "{e}");
    }
}
