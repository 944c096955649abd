//! rvsip: DPVS's `dpip` for rvs, over the rvs API — ports (`link show
//! [-s]`), interface addresses (`addr add|del|show`), static routes
//! (`route add|del|show`) and neighbours (`neigh add|del|show`).
//!
//! [`parse`] turns a command line into a [`Command`] and [`render`] turns
//! API data into dpip's text; both are pure. [`run`] ties them to a client:
//! nothing is sent unless the whole command line parsed and its values
//! passed the API's own checks.
//!
//! Exit codes: 0 success, 1 rvsd refused or could not be reached, 2 a bad
//! command line. Errors are one line on stderr.

pub mod parse;
pub mod render;

use std::ffi::OsString;
use std::io::Write;

use rvs_api::{Client, ClientError, Reply, Request};

pub use parse::{Command, Options, ParseError, Show};

const USAGE: &str = "\
Usage:
    rvsip [OPTIONS] OBJECT { COMMAND | help }
OBJECT := { link | addr | route | neigh }
OPTIONS := { -s[tats] | -4 | -6 | --socket PATH }

    rvsip [-s] link show [ DEV ]
    rvsip addr show [ dev DEV ]
    rvsip addr { add | del } ADDR[/PLEN] dev DEV
    rvsip route show
    rvsip route { add | del } { PREFIX[/PLEN] | default } [ via ADDR ] [ dev DEV ]
    rvsip neigh show [ dev DEV ]
    rvsip neigh add ADDR lladdr LLADDR dev DEV
    rvsip neigh del ADDR dev DEV

Examples:
    rvsip addr add 10.0.0.100/32 dev eth0
    rvsip route add 172.16.0.0/16 via 10.0.0.254 dev eth0
    rvsip route add default via 10.0.0.1
    rvsip neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev eth0
    rvsip -s link show

rvsd is reached at --socket PATH, else $RVS_SOCKET, else /run/rvs/rvsd.sock.
";

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

/// Runs one rvsip invocation; returns the exit code.
pub fn run(
    args: &[String],
    env_socket: Option<OsString>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match run_inner(args, env_socket, out) {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => {
            let _ = writeln!(err, "rvsip: {m}");
            2
        }
        Err(Failure::Api(m)) => {
            let _ = writeln!(err, "rvsip: {m}");
            1
        }
    }
}

fn run_inner(
    args: &[String],
    env_socket: Option<OsString>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let (opts, rest) = parse::options(args).map_err(|e| Failure::Usage(e.0))?;
    let command = parse::parse(&rest, &opts).map_err(|e| Failure::Usage(e.0))?;
    if let Command::Change(r) = &command {
        rvs_api::validate::request(r).map_err(|e| Failure::Usage(e.to_string()))?;
    }
    if command == Command::Help {
        return write_out(out, USAGE);
    }
    let path = rvs_api::socket_path(opts.socket.as_deref(), env_socket);
    let mut client = Client::connect(&path).map_err(|e| Failure::Api(e.to_string()))?;
    let text = match command {
        Command::Help => String::new(),
        Command::Change(req) => {
            return match client.call(&req)? {
                Reply::Done => Ok(()),
                other => Err(unexpected(&other)),
            };
        }
        Command::Show { what, family } => match what {
            Show::Links { dev, stats } => match client.call(&Request::ListLinks)? {
                Reply::Links { mut links } => {
                    if let Some(d) = &dev {
                        links.retain(|l| l.name == *d);
                        if links.is_empty() {
                            return Err(Failure::Api(format!("dev: unknown dev `{d}'")));
                        }
                    }
                    render::links(&links, stats)
                }
                other => return Err(unexpected(&other)),
            },
            Show::Addrs(dev) => match client.call(&Request::ListAddrs { dev })? {
                Reply::Addrs { addrs } => render::addrs(&addrs, family),
                other => return Err(unexpected(&other)),
            },
            Show::Routes => match client.call(&Request::ListRoutes)? {
                Reply::Routes { routes } => render::routes(&routes, family),
                other => return Err(unexpected(&other)),
            },
            Show::Neighs(dev) => match client.call(&Request::ListNeighs { dev })? {
                Reply::Neighs { neighs } => render::neighs(&neighs, family),
                other => return Err(unexpected(&other)),
            },
        },
    };
    write_out(out, &text)
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Api(format!("writing output: {e}")))
}
