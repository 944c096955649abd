//! FullNAT: C→V becomes L→R, and R→L becomes V→C. Both addresses and
//! ports are rewritten, so real servers need no special setup and replies
//! return to rvs by plain routing to the local address.

use crate::classify::PacketInfo;
use crate::conn::Conn;
use crate::packet::Packet;

use super::{ConnData, Xmit, nat64, rewrite};

/// Client → server: source becomes the local endpoint, destination the
/// real server (both from the reply key).
pub(super) fn to_server(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
) -> Xmit {
    if nat64::translates(info, conn) {
        return nat64::to_server(packet, info, conn);
    }
    let reply = conn.reply_key();
    let local = (reply.dst_ip(), reply.dst_port);
    let server = (reply.src_ip(), reply.src_port);
    rewrite::rewrite(packet.data_mut(), info, local, server)?;
    Ok(None)
}

/// Server → client: source becomes the VIP, destination the client (both
/// from the client key).
pub(super) fn to_client(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
) -> Xmit {
    if nat64::translates(info, conn) {
        return nat64::to_client(packet, info, conn);
    }
    let client = conn.client_key();
    let vip = (client.dst_ip(), client.dst_port);
    let c = (client.src_ip(), client.src_port);
    rewrite::rewrite(packet.data_mut(), info, vip, c)?;
    Ok(None)
}
