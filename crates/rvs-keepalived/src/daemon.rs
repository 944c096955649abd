//! The process: configuration, pid file, logging, fork, the runtime, and
//! signals.
//!
//! The configuration is read before anything else; a refused file stops
//! here with its file:line and nothing applied. Then (unless `-n`) the
//! process forks into the background like keepalived, writes its pid file
//! (refusing to start when it names a live process), and runs the two
//! parts — `lvs::run` (checkers and rvsd's table) and
//! `vrrp::run` — as tasks of one tokio runtime, each with its
//! `Control` channel:
//! - SIGHUP: the file is read again; if it is refused the running
//!   configuration stays (and the error is logged), else both parts get
//!   `Control::Reload` and keep the state of what did not change;
//! - SIGUSR1: both parts' state, as one JSON document, is written
//!   atomically to the dump file;
//! - SIGTERM/SIGINT: `Control::Shutdown`; the parts undo what they must
//!   (VIPs released with a priority-0 advert) and return, then the pid
//!   file is removed.
//!
//! A part returns only when told to stop. One that ends on its own (a
//! bug: a panic, which tokio would otherwise keep to the task, and
//! stderr is /dev/null once forked) is logged, the other is stopped
//! cleanly, and the process exits with an error, so that its supervisor
//! (systemd's `Restart=on-failure`) starts it afresh rather than leave
//! it checking without VRRP or the reverse.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use crate::conf::{self, ConfError, Config};
use crate::control::Control;
use crate::rvsd::Rvsd;

/// Which parts run (keepalived's `-P` / `-C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// Checkers and VRRP.
    Both,
    /// VRRP only.
    Vrrp,
    /// Checkers (and rvsd's virtual servers) only.
    Checkers,
}

/// How the process was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// keepalived.conf.
    pub file: PathBuf,
    /// The pid file.
    pub pid_file: PathBuf,
    /// Where SIGUSR1 writes the state.
    pub dump_file: PathBuf,
    /// rvsd's API socket.
    pub rvsd_socket: PathBuf,
    /// Which parts run.
    pub parts: Parts,
    /// `-n`: no fork.
    pub foreground: bool,
    /// `-l`: log to stderr, not syslog.
    pub log_console: bool,
    /// `-D`: debug-level logs.
    pub log_detail: bool,
}

/// Why the process stopped with an error.
#[derive(Debug)]
pub enum Error {
    /// The configuration was refused.
    Config(ConfError),
    /// The process could not start.
    Start(String),
    /// A part stopped while running.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "{e}"),
            Error::Start(e) | Error::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// Runs until SIGTERM/SIGINT.
pub fn main(opts: Options) -> Result<(), Error> {
    let (cfg, warnings) = conf::load(&opts.file).map_err(Error::Config)?;
    if !opts.foreground {
        daemonize().map_err(|e| Error::Start(format!("fork: {e}")))?;
    }
    crate::logging::init(opts.log_console, opts.log_detail);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    crate::notify::configure(&cfg.global);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rvs-keepalived")
        .build()
        .map_err(|e| Error::Start(format!("runtime: {e}")))?;
    rt.block_on(run(opts, Arc::new(cfg)))
}

/// A part's task and its control channel.
struct Running {
    name: &'static str,
    ctl: mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<()>,
}

async fn run(opts: Options, cfg: Arc<Config>) -> Result<(), Error> {
    // Signals are caught from here on; only then does the pid file tell
    // the world the process is ready for them.
    let sig = |k| signal(k).map_err(|e| Error::Start(format!("signal handler: {e}")));
    let mut hup = sig(SignalKind::hangup())?;
    let mut usr1 = sig(SignalKind::user_defined1())?;
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let _pid = PidFile::create(&opts.pid_file).map_err(Error::Start)?;
    let rvsd = Rvsd::new(&opts.rvsd_socket);
    let mut parts = Vec::new();
    if opts.parts != Parts::Vrrp {
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(crate::lvs::run(cfg.clone(), rvsd.clone(), rx));
        parts.push(Running {
            name: "lvs",
            ctl: tx,
            task,
        });
    }
    if opts.parts != Parts::Checkers {
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(crate::vrrp::run(cfg.clone(), rvsd.clone(), rx));
        parts.push(Running {
            name: "vrrp",
            ctl: tx,
            task,
        });
    }
    tracing::info!(
        "started: {} ({} virtual servers, {} VRRP instances), rvsd at {}",
        opts.file.display(),
        cfg.virtual_servers.len(),
        cfg.vrrp_instances.len(),
        opts.rvsd_socket.display()
    );
    let mut failed = None;
    loop {
        tokio::select! {
            name = first_ended(&mut parts) => {
                tracing::error!("{name} stopped unexpectedly; stopping everything");
                failed = Some(name);
                break;
            }
            _ = hup.recv() => reload(&opts.file, &parts).await,
            _ = usr1.recv() => {
                if let Err(e) = dump(&opts.dump_file, &parts).await {
                    tracing::warn!("state dump to {}: {e}", opts.dump_file.display());
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping");
    // A task that has ended must not be polled again.
    parts.retain(|p| !p.task.is_finished());
    for p in &parts {
        let _ = p.ctl.send(Control::Shutdown).await;
    }
    for p in parts {
        if tokio::time::timeout(Duration::from_secs(10), p.task)
            .await
            .is_err()
        {
            tracing::warn!("{} did not stop within 10 s", p.name);
        }
    }
    tracing::info!("stopped");
    match failed {
        Some(name) => Err(Error::Failed(format!("{name} stopped unexpectedly"))),
        None => Ok(()),
    }
}

/// Waits until one part's task ends (it should not before it is told
/// to) and names it.
async fn first_ended(parts: &mut [Running]) -> &'static str {
    std::future::poll_fn(|cx| {
        for p in parts.iter_mut() {
            if std::pin::Pin::new(&mut p.task).poll(cx).is_ready() {
                return std::task::Poll::Ready(p.name);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// SIGHUP: a refused file changes nothing.
async fn reload(file: &Path, parts: &[Running]) {
    match conf::load(file) {
        Ok((cfg, warnings)) => {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            tracing::info!("reloading {}", file.display());
            crate::notify::configure(&cfg.global);
            let cfg = Arc::new(cfg);
            for p in parts {
                let _ = p.ctl.send(Control::Reload(cfg.clone())).await;
            }
        }
        Err(e) => tracing::error!("reload refused, running configuration kept: {e}"),
    }
}

/// SIGUSR1: every part's state, written whole or not at all.
async fn dump(path: &Path, parts: &[Running]) -> io::Result<()> {
    let mut doc = serde_json::Map::new();
    for p in parts {
        let (tx, rx) = oneshot::channel();
        if p.ctl.send(Control::Dump(tx)).await.is_err() {
            continue;
        }
        if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_secs(5), rx).await {
            doc.insert(p.name.to_string(), v);
        }
    }
    let text = serde_json::to_vec_pretty(&serde_json::Value::Object(doc))?;
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, path).await?;
    tracing::info!("state written to {}", path.display());
    Ok(())
}

/// Forks into the background: the parent exits, the child leaves the
/// terminal's session and points its standard descriptors at /dev/null.
fn daemonize() -> io::Result<()> {
    // SAFETY: called before any thread exists (the runtime starts after),
    // so the child is a full copy of a single-threaded process.
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: plain system calls on our own process and descriptors.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

/// The pid file, removed on drop.
#[derive(Debug)]
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &Path) -> Result<PidFile, String> {
        if let Ok(old) = std::fs::read_to_string(path)
            && let Ok(pid) = old.trim().parse::<i32>()
            // SAFETY: signal 0 only checks that the process exists.
            && pid > 0
            && unsafe { libc::kill(pid, 0) } == 0
        {
            return Err(format!("{}: already running as pid {pid}", path.display()));
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &'static str, task: tokio::task::JoinHandle<()>) -> Running {
        let (ctl, _) = mpsc::channel(1);
        Running { name, ctl, task }
    }

    #[tokio::test]
    async fn a_part_that_ends_is_noticed() {
        let mut parts = vec![
            part("lvs", tokio::spawn(std::future::pending())),
            part(
                "vrrp",
                tokio::spawn(async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    panic!("a bug");
                }),
            ),
        ];
        let name = tokio::time::timeout(Duration::from_secs(5), first_ended(&mut parts))
            .await
            .expect("noticed");
        assert_eq!(name, "vrrp");
        parts.retain(|p| !p.task.is_finished());
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, "lvs");
    }
}
