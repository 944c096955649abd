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
    rewrite::rewrite_keys(
        packet.data_mut(),
        info,
        (&info.key.src, info.key.src_port),
        (&reply.src, reply.src_port),
    )?;
    Ok(None)
}

/// Server → client: source becomes the VIP.
pub(super) fn to_client(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
) -> Xmit {
    let client = conn.client_key();
    rewrite::rewrite_keys(
        packet.data_mut(),
        info,
        (&client.dst, client.dst_port),
        (&info.key.dst, info.key.dst_port),
    )?;
    Ok(None)
}
