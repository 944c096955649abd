//! The rvs control-plane API, shared by rvsd and every tool (rvsadm, rvsip,
//! rvs-keepalived). Plain data: nothing here depends on the data plane.
//!
//! # Protocol
//!
//! rvsd listens on a unix stream socket, by default [`DEFAULT_SOCKET`]
//! (`/run/rvs/rvsd.sock`, mode 0600); tools take `--socket PATH` or the
//! environment variable [`SOCKET_ENV`] (`RVS_SOCKET`).
//!
//! Framing is newline-delimited JSON: the client writes one [`Request`]
//! serialised as a single line of JSON terminated by `\n` (JSON strings escape
//! control characters, so a message never contains a raw newline), and rvsd
//! answers with one [`Response`] line. A connection may carry any number of
//! requests; they are answered in order, one response per request, and the
//! client sends the next only after reading the previous answer. A line
//! longer than [`MAX_LINE`] bytes or one that does not parse ends the session
//! with a `bad_request` error. Examples:
//!
//! ```text
//! → {"op":"delete_service","service":{"addr":{"protocol":"tcp","addr":"10.0.0.1","port":80}}}
//! ← {"error":{"code":"not_found","field":"service","reason":"service not defined"}}
//! → {"op":"get_timeouts"}
//! ← {"ok":{"kind":"timeouts","timeouts":{"tcp":900,"tcp_fin":120,"udp":300}}}
//! ```
//!
//! Every change is validated whole before anything is applied ([`validate`]
//! holds the checks that need no configuration); a failed request changes
//! nothing and its [`ApiError`] names the field (a path into the request) and
//! the reason. [`Request::Batch`] applies several changes all or nothing.

mod client;
#[cfg(feature = "fake")]
pub mod fake;
mod net;
mod types;
pub mod validate;

pub use client::{
    Client, ClientError, DEFAULT_SOCKET, MAX_LINE, SOCKET_ENV, TIMEOUT, read_message, socket_path,
    write_message,
};
pub use net::{
    IfAddr, Link, LinkStats, Neigh, NeighEntry, Route, RouteEntry, format_mac, parse_mac,
};
pub use types::*;

#[cfg(test)]
mod tests;
