//! Tunnelling: the client's packet is encapsulated (IPIP or GRE) in an
//! outer header from a local address to the real server, which
//! decapsulates it and answers the client directly.

use crate::classify::PacketInfo;
use crate::config::TunnelKind;
use crate::conn::Conn;
use crate::packet::Packet;
use crate::stats::DropReason;

use super::{ConnData, FwdContext, Xmit};

/// Client → server: encapsulate towards the real server.
pub(super) fn to_server(
    _packet: &mut Packet<'_>,
    _info: &PacketInfo,
    _conn: &mut Conn<ConnData>,
    _kind: TunnelKind,
    _ctx: &FwdContext,
) -> Xmit {
    Err(DropReason::Unsupported)
}
