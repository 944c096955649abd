//! NAT (masquerading): C→V becomes C→R and R→C becomes V→C. The client's
//! address reaches the server unchanged; the server's default route must
//! point back through rvs so that its replies can be rewritten.

use crate::classify::PacketInfo;
use crate::conn::Conn;
use crate::packet::Packet;

use super::{ConnData, Xmit, rewrite};

/// Client → server: destination becomes the real server.
pub(super) fn to_server(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
) -> Xmit {
    let reply = conn.reply_key();
    let client = (info.key.src_ip(), info.key.src_port);
    let server = (reply.src_ip(), reply.src_port);
    rewrite::rewrite(packet.data_mut(), info, client, server)?;
    Ok(None)
}

/// Server → client: source becomes the VIP.
pub(super) fn to_client(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
) -> Xmit {
    let client = conn.client_key();
    let vip = (client.dst_ip(), client.dst_port);
    let c = (info.key.dst_ip(), info.key.dst_port);
    rewrite::rewrite(packet.data_mut(), info, vip, c)?;
    Ok(None)
}
