//! PING_CHECK: an ICMP (or ICMPv6) echo request is answered within
//! `connect_timeout`.
//!
//! The socket is an unprivileged ICMP datagram socket where the system
//! allows one (`net.ipv4.ping_group_range`), else a raw socket (root).
//! Either way it is connected to the target, so the kernel only hands us
//! ICMP from that address; a reply counts if it is an echo reply with our
//! sequence number and our random token in its data (a datagram socket's
//! kernel rewrites the identifier, a raw socket sees every process's
//! replies: the token is what makes a reply ours).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

use rvs_wire::{checksum::checksum, icmpv4, icmpv6};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::{Pass, spec::CheckSpec};

/// Length of the ICMP echo header (type, code, checksum, id, sequence).
const HEADER: usize = 8;

/// Sequence numbers, shared by every ping checker of the process.
static SEQ: AtomicU16 = AtomicU16::new(0);

/// An open ICMP socket and whether received IPv4 packets carry their IP
/// header (raw sockets do).
struct IcmpSocket {
    fd: AsyncFd<Socket>,
    ip_header: bool,
}

fn open(target: IpAddr, bind: Option<SocketAddr>) -> Result<IcmpSocket, String> {
    let (domain, proto) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let (sock, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(_) => (
            Socket::new(domain, Type::RAW, Some(proto))
                .map_err(|e| format!("ICMP socket (datagram or raw): {e}"))?,
            true,
        ),
    };
    sock.set_nonblocking(true)
        .map_err(|e| format!("ICMP socket: {e}"))?;
    if let Some(b) = bind {
        let b = SocketAddr::new(b.ip(), 0);
        sock.bind(&b.into()).map_err(|e| format!("bind {b}: {e}"))?;
    }
    sock.connect(&SocketAddr::new(target, 0).into())
        .map_err(|e| format!("connect {target}: {e}"))?;
    // SAFETY: the socket owns its descriptor, which stays open and the
    // same for as long as the AsyncFd holds the socket.
    let fd = unsafe { AsyncFd::register(sock) }
        .map_err(|e| format!("ICMP socket: {}", e.into_parts().1))?;
    Ok(IcmpSocket {
        fd,
        ip_header: raw && target.is_ipv4(),
    })
}

/// An echo request: `seq`, our `token` as data; the checksum is filled in
/// for IPv4 (the kernel computes ICMPv6's).
fn echo_request(v6: bool, id: u16, seq: u16, token: &[u8; 8]) -> Vec<u8> {
    let mut p = vec![0u8; HEADER];
    p[0] = if v6 {
        icmpv6::msg_type::ECHO_REQUEST
    } else {
        icmpv4::msg_type::ECHO_REQUEST
    };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(token);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `pkt` (from the socket, IPv4 header stripped) is the reply to
/// our request `seq` with `token`.
fn is_our_reply(v6: bool, pkt: &[u8], seq: u16, token: &[u8; 8]) -> bool {
    let reply = if v6 {
        icmpv6::msg_type::ECHO_REPLY
    } else {
        icmpv4::msg_type::ECHO_REPLY
    };
    pkt.len() >= HEADER + token.len()
        && pkt[0] == reply
        && pkt[1] == 0
        && pkt[6..8] == seq.to_be_bytes()
        && pkt[HEADER..HEADER + token.len()] == token[..]
}

/// Strips the IPv4 header a raw socket delivers.
fn strip_ipv4(pkt: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    pkt.get(ihl..)
}

/// One PING_CHECK attempt.
pub(crate) async fn check(spec: &CheckSpec) -> Result<Pass, String> {
    let target = spec.target.ip();
    let v6 = target.is_ipv6();
    let sock = open(target, spec.bind)?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let token: [u8; 8] = super::runner::random_u64().to_be_bytes();
    let id = std::process::id() as u16;
    let req = echo_request(v6, id, seq, &token);
    let deadline = Instant::now() + spec.connect_timeout;
    let sent = tokio::time::timeout_at(deadline, async {
        loop {
            let mut g = sock.fd.writable().await?;
            if let Ok(r) = g.try_io(|s| s.get_ref().write(&req)) {
                return r;
            }
        }
    })
    .await;
    match sent {
        Err(_) => return Err(format!("could not send to {target} in time")),
        Ok(Err(e)) => return Err(format!("echo request to {target}: {e}")),
        Ok(Ok(_)) => {}
    }
    let mut buf = vec![0u8; 2048];
    let got = tokio::time::timeout_at(deadline, async {
        loop {
            let mut g = sock.fd.readable().await?;
            let n = match g.try_io(|s| s.get_ref().read(&mut buf)) {
                Ok(r) => r?,
                Err(_would_block) => continue,
            };
            let pkt = if sock.ip_header {
                strip_ipv4(&buf[..n]).unwrap_or_default()
            } else {
                &buf[..n]
            };
            if is_our_reply(v6, pkt, seq, &token) {
                return Ok::<(), std::io::Error>(());
            }
        }
    })
    .await;
    match got {
        Ok(Ok(())) => Ok(Pass::default()),
        Ok(Err(e)) => Err(format!("{target}: {e}")),
        Err(_) => Err(format!(
            "no echo reply from {target} within {:?}",
            spec.connect_timeout
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::spec;
    use crate::conf::model::CheckKind;
    use std::time::Duration;

    #[test]
    fn request_and_reply_shapes() {
        let tok = *b"ABCDEFGH";
        let r = echo_request(false, 0x1234, 7, &tok);
        assert_eq!(r.len(), 16);
        assert_eq!(r[0], 8);
        assert_eq!(checksum(&r), 0, "a filled-in checksum sums to zero");
        let mut reply = r.clone();
        reply[0] = 0;
        assert!(is_our_reply(false, &reply, 7, &tok));
        assert!(!is_our_reply(false, &reply, 8, &tok));
        assert!(!is_our_reply(false, &reply, 7, b"ABCDEFGX"));
        assert!(!is_our_reply(false, &r, 7, &tok), "a request is no reply");
        let r6 = echo_request(true, 1, 2, &tok);
        assert_eq!(r6[0], 128);
        let mut reply6 = r6.clone();
        reply6[0] = 129;
        assert!(is_our_reply(true, &reply6, 2, &tok));
        let mut with_ip = vec![0x45u8];
        with_ip.extend_from_slice(&[0; 19]);
        with_ip.extend_from_slice(&reply);
        assert_eq!(strip_ipv4(&with_ip), Some(&reply[..]));
    }

    #[tokio::test]
    async fn ping_loopback() {
        let s = spec(CheckKind::Ping, "127.0.0.1:0".parse().unwrap());
        check(&s).await.unwrap();
        // Many at once from one process: each finds its own reply.
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let s = s.clone();
            all.spawn(async move { check(&s).await });
        }
        while let Some(r) = all.join_next().await {
            r.unwrap().unwrap();
        }
        if std::net::UdpSocket::bind("[::1]:0").is_ok() {
            let s6 = spec(CheckKind::Ping, "[::1]:0".parse().unwrap());
            check(&s6).await.unwrap();
        }
    }

    #[test]
    fn unanswered_ping_fails_in_time() {
        crate::check::testutil::in_blackhole_ns(|| async {
            let target = format!("{}:0", crate::check::testutil::BLACKHOLE);
            let mut s = spec(CheckKind::Ping, target.parse().unwrap());
            s.connect_timeout = Duration::from_millis(300);
            let t = std::time::Instant::now();
            let e = check(&s).await.unwrap_err();
            assert!(e.contains("no echo reply"), "{e}");
            assert!(t.elapsed() < Duration::from_secs(2));
            // Loopback in the same namespace answers.
            check(&spec(CheckKind::Ping, "127.0.0.1:0".parse().unwrap()))
                .await
                .unwrap();
        });
    }
}
