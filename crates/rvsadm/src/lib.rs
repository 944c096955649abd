//! rvsadm: ipvsadm's command line and output, over the rvs API.
//!
//! [`parse`] turns a command line into a [`Command`] and [`render`] turns API
//! data into ipvsadm's text; both are pure. [`run`] ties them to a client:
//! nothing is sent unless the whole command line parsed.
//!
//! Exit codes: 0 success, 1 rvsd refused or could not be reached, 2 a bad
//! command line (as ipvsadm's `fail(2, ...)`). Errors are one line on stderr.

pub mod parse;
pub mod render;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use rvs_api::{Client, ClientError, Reply, Request, ServiceList};

pub use parse::{Command, Format, ListWhat, ParseError, PortNames};

const USAGE: &str = "\
Usage:
  rvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags]
  rvsadm -D virtual-service
  rvsadm -C
  rvsadm -R
  rvsadm -S [-n]
  rvsadm -a|e virtual-service -r server-address [-g|i|m|b|J] [-w weight] [-x upper] [-y lower]
  rvsadm -d virtual-service -r server-address
  rvsadm -L|l [virtual-service] [-n] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [--nosort]
  rvsadm -L|l -c [-n]
  rvsadm -L|l --timeout
  rvsadm -Z [virtual-service]
  rvsadm --set tcp tcpfin udp
  rvsadm --add-laddr|-P virtual-service -z local-address [-F ifname]
  rvsadm --del-laddr|-Q virtual-service -z local-address
  rvsadm --get-laddr|-G [virtual-service]
  rvsadm -h

virtual-service:
  -t|u|--sctp-service service-address   service-address is host[:port]
  -f fwmark [-6]                        fwmark is an integer greater than zero

Forwarding (on -a/-e): -g route (default), -i tunnel, -m masquerading,
  -b|--fullnat FullNAT, -J|--snat SNAT.  On -A/-E, -b is --sched-flags.

rvsd is reached at --socket PATH, else $RVS_SOCKET, else /run/rvs/rvsd.sock.
";

/// Splits off rvsadm's own `--socket PATH` (anywhere on the line).
fn take_socket(args: &[String]) -> Result<(Vec<String>, Option<PathBuf>), ParseError> {
    let mut rest = Vec::new();
    let mut socket = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(p) = a.strip_prefix("--socket=") {
            socket = Some(PathBuf::from(p));
        } else if a == "--socket" {
            match it.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => return Err(ParseError("option `--socket' needs a value".into())),
            }
        } else {
            rest.push(a.clone());
        }
    }
    Ok((rest, socket))
}

/// Splits a `-R` input line like ipvsadm's `config_stream_read`: words
/// separated by blanks, the words `ipvsadm`/`rvsadm` skipped, `#` to the end
/// of the line a comment.
pub fn restore_words(line: &str) -> Vec<String> {
    line.split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter(|w| *w != "ipvsadm" && *w != "rvsadm")
        .map(str::to_string)
        .collect()
}

/// Parses `-R` input into one all-or-nothing batch of changes.
pub fn parse_restore(input: &str, names: &PortNames) -> Result<Request, ParseError> {
    let mut requests = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let words = restore_words(line);
        if words.is_empty() {
            continue;
        }
        match parse::parse(&words, names) {
            Ok(Command::Change(r)) => requests.push(r),
            Ok(_) => {
                return Err(ParseError(format!(
                    "line {}: only changes can be restored",
                    n + 1
                )));
            }
            Err(e) => return Err(ParseError(format!("line {}: {e}", n + 1))),
        }
    }
    Ok(Request::Batch { requests })
}

enum Failure {
    Usage(String),
    Api(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Api(e.to_string())
    }
}

fn unexpected(reply: &Reply) -> Failure {
    Failure::Api(format!("unexpected answer from rvsd: {reply:?}"))
}

fn services(client: &mut Client, req: Request) -> Result<ServiceList, Failure> {
    match client.call(&req)? {
        Reply::Services { list } => Ok(list),
        other => Err(unexpected(&other)),
    }
}

/// Runs one rvsadm invocation; returns the exit code.
pub fn run(
    args: &[String],
    env_socket: Option<OsString>,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match run_inner(args, env_socket, stdin, out) {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => {
            let _ = writeln!(err, "rvsadm: {m}");
            2
        }
        Err(Failure::Api(m)) => {
            let _ = writeln!(err, "rvsadm: {m}");
            1
        }
    }
}

fn run_inner(
    args: &[String],
    env_socket: Option<OsString>,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let (args, socket) = take_socket(args).map_err(|e| Failure::Usage(e.0))?;
    let names = PortNames::system();
    let command = parse::parse(&args, &names).map_err(|e| Failure::Usage(e.0))?;
    // Local checks first, so that a bad value sends nothing.
    let request = match command {
        Command::Help => return write_out(out, USAGE),
        Command::Version => {
            return write_out(
                out,
                &format!(
                    "rvsadm v{} (ipvsadm v1.31 command line and output, rvs API)\n",
                    env!("CARGO_PKG_VERSION")
                ),
            );
        }
        Command::Restore => {
            let mut input = String::new();
            stdin
                .read_to_string(&mut input)
                .map_err(|e| Failure::Api(format!("reading stdin: {e}")))?;
            let batch = parse_restore(&input, &names).map_err(|e| Failure::Usage(e.0))?;
            rvs_api::validate::request(&batch).map_err(|e| Failure::Usage(e.to_string()))?;
            Some(batch)
        }
        Command::Change(ref r) => {
            rvs_api::validate::request(r).map_err(|e| Failure::Usage(e.to_string()))?;
            Some(r.clone())
        }
        _ => None,
    };
    let path = rvs_api::socket_path(socket.as_deref(), env_socket);
    let mut client = Client::connect(&path).map_err(|e| Failure::Api(e.to_string()))?;
    if let Some(req) = request {
        return match client.call(&req)? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        };
    }
    let text = match command {
        Command::List(ListWhat::Services(None), f) => render::list_all(
            &services(&mut client, Request::ListServices { service: None })?,
            f,
            &names,
        ),
        Command::List(ListWhat::Services(Some(k)), f) => {
            let list = services(&mut client, Request::ListServices { service: Some(k) })?;
            match list.services.first() {
                Some(e) => render::list_one(e, f, &names),
                None => return Err(Failure::Api("service: service not defined".into())),
            }
        }
        Command::List(ListWhat::Connections, f) => match client.call(&Request::ListConnections)? {
            Reply::Connections { connections } => render::connections(&connections, f, &names),
            other => return Err(unexpected(&other)),
        },
        Command::List(ListWhat::Timeouts, _) => match client.call(&Request::GetTimeouts)? {
            Reply::Timeouts { timeouts } => render::timeouts(&timeouts),
            other => return Err(unexpected(&other)),
        },
        Command::Save(f) => render::save(
            &services(&mut client, Request::ListServices { service: None })?,
            f,
            &names,
        ),
        Command::GetLaddr(k) => match client.call(&Request::GetLaddrs { service: k })? {
            Reply::Laddrs { services } => render::laddrs(&services),
            other => return Err(unexpected(&other)),
        },
        Command::Change(_) | Command::Restore | Command::Help | Command::Version => String::new(),
    };
    write_out(out, &text)
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Api(format!("writing output: {e}")))
}
