//! Listing connections, for `ipvsadm -L -n -c` and the API.

use core::net::IpAddr;
use core::time::Duration;

use crate::config::ForwardMode;
use crate::conn::{ConnState, Time};

use super::Worker;

/// One connection as an operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnEntry {
    /// IP protocol.
    pub proto: u8,
    /// State name as `ipvsadm -Lnc` prints it (`ESTABLISHED`, `UDP`, …).
    pub state: &'static str,
    /// Time left before it expires if idle.
    pub expires: Duration,
    /// The client's address and port.
    pub client: (IpAddr, u16),
    /// The address and port the client talks to (VIP, or the outside
    /// destination for SNAT).
    pub virtual_addr: (IpAddr, u16),
    /// FullNAT/SNAT: the local address and port rvs uses.
    pub local: Option<(IpAddr, u16)>,
    /// The real server (the outside destination for SNAT).
    pub dest: (IpAddr, u16),
    /// Forwarding mode.
    pub mode: ForwardMode,
}

impl Worker {
    /// Every connection of this worker, as of `now` (a control-plane walk
    /// of the whole table).
    pub fn connections(&self, now: Time) -> impl Iterator<Item = ConnEntry> + '_ {
        self.conns.iter().map(move |(_, c)| {
            let client = c.client_key();
            let reply = c.reply_key();
            let local = matches!(c.data.mode, ForwardMode::FullNat | ForwardMode::Snat)
                .then(|| (reply.dst_ip(), reply.dst_port));
            ConnEntry {
                proto: client.proto,
                state: match c.data.state {
                    ConnState::Tcp(s) => s.name(),
                    other => other.name(),
                },
                expires: c.expires_in(now),
                client: (client.src_ip(), client.src_port),
                virtual_addr: (client.dst_ip(), client.dst_port),
                local,
                dest: (reply.src_ip(), reply.src_port),
                mode: c.data.mode,
            }
        })
    }
}
