//! TCP_CHECK: the real server accepts a connection within
//! `connect_timeout`. The connection helper here is also the first step of
//! HTTP_GET and SSL_GET.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::{Pass, spec::CheckSpec};

/// Connects to `target` from `bind` (if set) within `timeout`.
pub(crate) async fn connect(
    target: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(b) = bind {
        // A fixed source port is reused every delay_loop while the last
        // connection may still be in TIME_WAIT.
        sock.set_reuseaddr(true)
            .map_err(|e| format!("SO_REUSEADDR: {e}"))?;
        sock.bind(b).map_err(|e| format!("bind {b}: {e}"))?;
    }
    match tokio::time::timeout(timeout, sock.connect(target)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("connect {target}: {e}")),
        Err(_) => Err(format!("connect {target}: timed out after {timeout:?}")),
    }
}

/// One TCP_CHECK attempt.
pub(crate) async fn check(spec: &CheckSpec) -> Result<Pass, String> {
    let s = connect(spec.target, spec.bind, spec.connect_timeout).await?;
    // Dropping the stream closes it with a FIN, as keepalived does.
    drop(s);
    Ok(Pass::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::spec;
    use crate::conf::model::CheckKind;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn accepted_refused_and_timed_out() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap();
        let s = spec(CheckKind::Tcp, open);
        assert!(check(&s).await.is_ok());
        let (_, peer) = l.accept().await.unwrap();
        assert!(peer.ip().is_loopback());

        drop(l);
        let e = check(&s).await.unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }

    #[test]
    fn unanswered_syn_times_out() {
        crate::check::testutil::in_blackhole_ns(|| async {
            let target = format!("{}:80", crate::check::testutil::BLACKHOLE);
            let mut s = spec(CheckKind::Tcp, target.parse().unwrap());
            s.connect_timeout = Duration::from_millis(200);
            let t = std::time::Instant::now();
            let e = check(&s).await.unwrap_err();
            assert!(e.contains("timed out"), "{e}");
            assert!(t.elapsed() < Duration::from_secs(2));
        });
    }

    #[tokio::test]
    async fn bindto_and_bind_port() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut s = spec(CheckKind::Tcp, l.local_addr().unwrap());
        // Find a free source port first.
        let free = std::net::TcpListener::bind("127.0.0.2:0")
            .unwrap()
            .local_addr()
            .unwrap();
        s.bind = Some(free);
        check(&s).await.unwrap();
        let (_, peer) = l.accept().await.unwrap();
        assert_eq!(peer, free);
    }
}
