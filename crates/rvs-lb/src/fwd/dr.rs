//! Direct routing: the packet is not changed at all; it is handed to the
//! real server's MAC on the shared segment (the stack resolves the MAC for
//! the next hop), and the server, which holds the VIP on a loopback with
//! ARP suppressed, answers the client directly.

use crate::conn::Conn;

use super::{ConnData, Verdict};

/// Client → server: next hop is the real server itself.
pub(super) fn to_server(conn: &Conn<ConnData>) -> Verdict {
    Verdict::Forward {
        next_hop: Some(conn.reply_key().src_ip()),
    }
}
