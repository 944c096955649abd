//! Where log lines go: stderr with `-l` (keepalived's `--log-console`),
//! else syslog (daemon facility, ident `rvs-keepalived`), as keepalived
//! logs, each line with the syslog priority of its level (so `journalctl
//! -p warning` finds the failures). `-D` adds debug-level detail;
//! `RUST_LOG` overrides both.

use std::ffi::CString;
use std::io::{self, Write};

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber.
pub(crate) fn init(console: bool, detail: bool) {
    let default = if detail { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if console {
        let _ = builder.with_writer(io::stderr).try_init();
    } else {
        // SAFETY: openlog keeps the ident pointer; a static C string lives
        // for the whole process.
        unsafe { libc::openlog(c"rvs-keepalived".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
        let _ = builder
            .with_ansi(false)
            .without_time()
            .with_writer(Syslog)
            .try_init();
    }
}

/// Hands each formatted event to syslog(3).
#[derive(Debug, Clone, Copy)]
struct Syslog;

/// One event's text and syslog priority, sent when the formatter is
/// done with it.
#[derive(Debug)]
struct SyslogLine {
    text: Vec<u8>,
    priority: libc::c_int,
}

/// The syslog priority of a tracing level.
fn priority(level: &Level) -> libc::c_int {
    match *level {
        Level::ERROR => libc::LOG_ERR,
        Level::WARN => libc::LOG_WARNING,
        Level::INFO => libc::LOG_INFO,
        Level::DEBUG | Level::TRACE => libc::LOG_DEBUG,
    }
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text: Vec<u8> = self.text.iter().copied().filter(|&b| b != 0).collect();
        let text = String::from_utf8_lossy(&text);
        let Ok(line) = CString::new(text.trim_end()) else {
            return;
        };
        // SAFETY: a "%s" format with one valid C string.
        unsafe { libc::syslog(self.priority, c"%s".as_ptr(), line.as_ptr()) };
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            text: Vec::new(),
            priority: libc::LOG_INFO,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        SyslogLine {
            text: Vec::new(),
            priority: priority(meta.level()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(&Level::ERROR), libc::LOG_ERR);
        assert_eq!(priority(&Level::WARN), libc::LOG_WARNING);
        assert_eq!(priority(&Level::INFO), libc::LOG_INFO);
        assert_eq!(priority(&Level::DEBUG), libc::LOG_DEBUG);
    }
}
