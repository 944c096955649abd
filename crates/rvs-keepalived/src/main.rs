//! `rvs-keepalived`: keepalived's command line, for rvs.
//!
//! The options are keepalived's (`-f`, `-t`, `-n`, `-l`, `-D`, `-p`, `-P`,
//! `-C`), plus `--rvsd-socket`. Exit codes: 0 after a clean stop or a
//! passing `--config-test`; 1 when the configuration is refused (printed
//! as `FILE:LINE: what`; nothing is applied); 2 for a bad command line;
//! 3 when it cannot start (pid file held by a running instance, fork); 4
//! when a part (checkers or VRRP) stopped on its own while running.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rvs_keepalived::conf;
use rvs_keepalived::daemon::{self, Options, Parts};

/// keepalived for rvs: health checks and VRRP, driving rvsd.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file.
    #[arg(
        short = 'f',
        long = "use-file",
        value_name = "FILE",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    file: PathBuf,
    /// Check the configuration and exit (0 if valid; else FILE:LINE and 1).
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// Stay in the foreground.
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// Log to the console (stderr) instead of syslog.
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Detailed log messages.
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Pid file.
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "FILE",
        default_value = "/run/rvs-keepalived.pid"
    )]
    pid: PathBuf,
    /// Run only VRRP.
    #[arg(short = 'P', long = "vrrp", conflicts_with = "check")]
    vrrp: bool,
    /// Run only the health checkers and LVS synchronisation.
    #[arg(short = 'C', long = "check")]
    check: bool,
    /// rvsd's API socket (default: $RVS_SOCKET, else /run/rvs/rvsd.sock).
    #[arg(long = "rvsd-socket", value_name = "PATH")]
    rvsd_socket: Option<PathBuf>,
    /// Where SIGUSR1 writes the state dump (JSON).
    #[arg(
        long = "dump-file",
        value_name = "FILE",
        default_value = "/tmp/rvs-keepalived.json"
    )]
    dump_file: PathBuf,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if args.config_test {
        return match conf::load(&args.file) {
            Ok((_, warnings)) => {
                for w in &warnings {
                    eprintln!("{w}");
                }
                eprintln!("{}: configuration OK", args.file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    let parts = match (args.vrrp, args.check) {
        (true, _) => Parts::Vrrp,
        (_, true) => Parts::Checkers,
        _ => Parts::Both,
    };
    let opts = Options {
        file: args.file,
        pid_file: args.pid,
        dump_file: args.dump_file,
        rvsd_socket: rvs_api::socket_path(
            args.rvsd_socket.as_deref(),
            std::env::var_os(rvs_api::SOCKET_ENV),
        ),
        parts,
        foreground: args.dont_fork,
        log_console: args.log_console,
        log_detail: args.log_detail,
    };
    match daemon::main(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(daemon::Error::Config(e)) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
        Err(daemon::Error::Start(e)) => {
            eprintln!("rvs-keepalived: {e}");
            ExitCode::from(3)
        }
        Err(daemon::Error::Failed(e)) => {
            eprintln!("rvs-keepalived: {e}");
            ExitCode::from(4)
        }
    }
}
