//! The small blocking HTTP/1.1 server under the HTTP API
//! ([`crate::api`]) and the metrics endpoint ([`crate::metrics`]): one
//! thread, one connection at a time (no async runtime), the accept polled
//! so that a stop flag ends the thread within one poll period, and a
//! request head read within bounds of size and time.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the accept loop sleeps between looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);
/// How long one client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head read (more: 431).
const MAX_HEAD: usize = 16 * 1024;

/// A server thread and its stop flag; stopped (and joined) on drop.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Spawns a thread named `name` running `serve` with the stop flag.
    pub(crate) fn spawn(
        name: &str,
        serve: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> io::Result<ServerThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || serve(&s))?;
        Ok(ServerThread {
            stop,
            thread: Some(thread),
        })
    }

    /// Sets the stop flag and joins the thread (within one poll period).
    pub(crate) fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Waits up to one poll period for a connection on `l`; the client's
/// read and write timeouts are set.
pub(crate) fn accept(l: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    let mut pfd = libc::pollfd {
        fd: l.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(POLL.as_millis()).unwrap_or(200);
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    if r <= 0 {
        return None;
    }
    let (c, peer) = l.accept().ok()?;
    c.set_read_timeout(Some(CLIENT_TIMEOUT)).ok()?;
    c.set_write_timeout(Some(CLIENT_TIMEOUT)).ok()?;
    Some((c, peer))
}

/// What reading a request head gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// The head is complete: it ends at this offset of the buffer (after
    /// the blank line); the body, if any, starts there.
    End(usize),
    /// The client closed the connection before the head was complete.
    Closed,
    /// The head is longer than 16 KiB.
    TooLarge,
}

/// Reads from `c` into `buf` until the end of a request head: a blank
/// line, CRLF CRLF (or LF LF).
pub(crate) fn read_head(c: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Head> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head_end(buf) {
            return Ok(Head::End(end));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        let n = c.read(&mut chunk)?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Where the head in `buf` ends, if it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::head_end;

    #[test]
    fn head_ends() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b""), None);
    }
}
