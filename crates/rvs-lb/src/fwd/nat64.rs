//! NAT64 in FullNAT: an IPv6 VIP balanced to IPv4 real servers.
//!
//! (Being written: for now mixed-family packets are dropped as before.)

use crate::classify::{Family, PacketInfo};
use crate::conn::Conn;
use crate::packet::Packet;
use crate::stats::DropReason;

use super::{ConnData, Xmit};

/// True if the connection's client and real server are of different
/// families: its packets are translated, not just rewritten.
pub(super) fn translates(_info: &PacketInfo, conn: &Conn<ConnData>) -> bool {
    Family::of(conn.client_key().src_ip()) != Family::of(conn.reply_key().src_ip())
}

/// Client (IPv6) → server (IPv4).
pub(super) fn to_server(
    _packet: &mut Packet<'_>,
    _info: &PacketInfo,
    _conn: &mut Conn<ConnData>,
) -> Xmit {
    Err(DropReason::Unsupported)
}

/// Server (IPv4) → client (IPv6).
pub(super) fn to_client(
    _packet: &mut Packet<'_>,
    _info: &PacketInfo,
    _conn: &mut Conn<ConnData>,
) -> Xmit {
    Err(DropReason::Unsupported)
}
