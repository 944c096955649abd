//! Connection states as IPVS keeps them, their timeouts, and the TCP state
//! machine that moves between them.
//!
//! IPVS does not track TCP precisely (no sequence numbers, no window): it
//! watches the flags of each segment and which side sent it, and moves through
//! a small table of states whose only job is to pick a sensible idle timeout
//! (short while half-open or closing, long while established) and to tell the
//! least-connection schedulers which connections are *active*. rvs follows the
//! same rules so that `ipvsadm -Lnc` listings, `--set` timeouts and lc/wlc
//! behaviour match what operators know from LVS.
//!
//! # The transition rules
//! A segment is classified by its most significant flag, in the order RST,
//! SYN, FIN, ACK (a SYN-ACK counts as SYN, a FIN-ACK as FIN). A segment with
//! none of the four moves the connection to CLOSE, as in IPVS.
//!
//! Which table applies depends on the side ([`Side`]): `Input` for a packet
//! from the client, `Output` for one from the real server, and `InputOnly` for
//! a client packet on a connection whose replies bypass us (DR, TUN), where a
//! client FIN must be read as the client closing after the server (FIN_WAIT)
//! rather than first (CLOSE_WAIT), because the server's half is never seen.
//!
//! The facts are those of Linux's `net/netfilter/ipvs/ip_vs_proto_tcp.c`
//! (normal, not `secure_tcp`, tables), restated per state in
//! [`TcpState::next`].

use core::time::Duration;
pub use rvs_wire::tcp::TcpFlags;

use super::table::Direction;

/// A TCP connection's state, as IPVS names and keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum TcpState {
    /// Created, no segment classified yet.
    #[default]
    None = 0,
    /// Handshake completed; data flowing.
    Established = 1,
    /// A SYN was seen from the real server's side.
    SynSent = 2,
    /// A SYN was seen from the client.
    SynRecv = 3,
    /// The real server (or, with input only, the client) sent FIN first.
    FinWait = 4,
    /// Both sides have sent FIN.
    TimeWait = 5,
    /// Reset, or closed.
    Close = 6,
    /// The client sent FIN first.
    CloseWait = 7,
    /// Waiting for the last ACK.
    LastAck = 8,
    /// Listening (used by IPVS for FTP data connection templates).
    Listen = 9,
    /// SYN-ACK seen (used by IPVS's `secure_tcp` tables).
    SynAck = 10,
}

impl TcpState {
    /// Every state, in IPVS's numbering order.
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The name `ipvsadm -Lnc` prints in its `state` column.
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts as *active* for the lc/wlc
    /// schedulers (`ActiveConn` in `ipvsadm -Ln`); every other state counts
    /// as inactive (`InActConn`). In IPVS only ESTABLISHED is active.
    pub const fn is_active(self) -> bool {
        matches!(self, TcpState::Established)
    }

    /// The state after a segment with `flags` arrives from `side`.
    pub fn next(self, side: Side, flags: TcpFlags) -> TcpState {
        use TcpState::{
            Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA,
            Listen as LI, SynRecv as SR, SynSent as SS, TimeWait as TW,
        };
        // The common case first: an established connection's plain ACK
        // (data or not) keeps it established from every side.
        if matches!(self, ES)
            && flags & (TcpFlags::RST | TcpFlags::SYN | TcpFlags::FIN | TcpFlags::ACK)
                == TcpFlags::ACK
        {
            return ES;
        }
        let Some(event) = event(flags) else {
            return CL;
        };
        // For the current state: the next state for [SYN, FIN, ACK, RST],
        // for a client packet (input), a server packet (output), and a
        // client packet when server packets are never seen (input only).
        let (input, output, input_only): ([TcpState; 4], [TcpState; 4], [TcpState; 4]) = match self
        {
            TcpState::None => ([SR, CL, ES, CL], [SS, TW, ES, CL], [SR, CL, ES, CL]),
            TcpState::Established => ([ES, CW, ES, CL], [ES, FW, ES, CL], [ES, FW, ES, CL]),
            TcpState::SynSent => ([ES, SS, SS, CL], [SS, SS, SS, SS], [ES, SS, SS, CL]),
            TcpState::SynRecv => ([SR, TW, ES, SR], [SR, TW, ES, CL], [SR, TW, ES, SR]),
            TcpState::FinWait => ([SR, TW, FW, CL], [SS, FW, FW, CL], [SR, FW, FW, CL]),
            TcpState::TimeWait => ([SR, TW, TW, CL], [SS, TW, TW, TW], [SR, TW, TW, CL]),
            TcpState::Close => ([SR, CL, CL, CL], [SS, CL, CL, CL], [SR, CL, CL, CL]),
            TcpState::CloseWait => ([SR, CW, CW, CL], [SS, TW, CW, CL], [SR, CW, CW, CL]),
            TcpState::LastAck => ([SR, LA, CL, LA], [SS, LA, LA, CL], [SR, LA, CL, LA]),
            TcpState::Listen => ([SR, LI, LI, LI], [LI, LI, ES, CL], [SR, LI, LI, LI]),
            TcpState::SynAck => ([SR, TW, ES, SR], [SR, TW, ES, CL], [SR, TW, ES, CL]),
        };
        let row = match side {
            Side::Input => input,
            Side::Output => output,
            Side::InputOnly => input_only,
        };
        let [syn, fin, ack, rst] = row;
        match event {
            Event::Syn => syn,
            Event::Fin => fin,
            Event::Ack => ack,
            Event::Rst => rst,
        }
    }
}

impl core::fmt::Display for TcpState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad(self.name())
    }
}

/// Which side a segment came from, as the state tables see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// From the client, on a connection whose replies pass through us (NAT,
    /// FullNAT, SNAT).
    Input,
    /// From the real server.
    Output,
    /// From the client, on a connection whose replies bypass us (DR, TUN).
    InputOnly,
}

impl Side {
    /// The side of a packet found under `dir` on a connection that does
    /// (`replies_seen`) or does not (DR, TUN) see the server's packets.
    ///
    /// As IPVS does, a server packet on a connection believed to be input
    /// only is still read as `Output`; the caller may then treat the
    /// connection as seeing both sides from then on.
    pub const fn of(dir: Direction, replies_seen: bool) -> Side {
        match (dir, replies_seen) {
            (Direction::FromServer, _) => Side::Output,
            (Direction::FromClient, true) => Side::Input,
            (Direction::FromClient, false) => Side::InputOnly,
        }
    }
}

/// The state machine's event for a segment's flags, by precedence RST,
/// SYN, FIN, ACK; `None` if it carries none of them.
const fn event(flags: TcpFlags) -> Option<Event> {
    if flags.contains(TcpFlags::RST) {
        Some(Event::Rst)
    } else if flags.contains(TcpFlags::SYN) {
        Some(Event::Syn)
    } else if flags.contains(TcpFlags::FIN) {
        Some(Event::Fin)
    } else if flags.contains(TcpFlags::ACK) {
        Some(Event::Ack)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Syn,
    Fin,
    Ack,
    Rst,
}

/// The protocol state of any connection: the TCP state machine, or the single
/// state UDP and ICMP connections have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// A TCP connection.
    Tcp(TcpState),
    /// A UDP connection (IPVS has one UDP state, printed `UDP`).
    Udp,
    /// An ICMP (echo) connection.
    Icmp,
}

impl ConnState {
    /// The initial state of a new connection of IP protocol `proto`
    /// (`rvs_wire::ip_proto`), or `None` for a protocol without one.
    pub const fn initial(proto: u8) -> Option<ConnState> {
        match proto {
            6 => Some(ConnState::Tcp(TcpState::None)),
            17 => Some(ConnState::Udp),
            1 | 58 => Some(ConnState::Icmp),
            _ => None,
        }
    }

    /// The name `ipvsadm -Lnc` prints in its `state` column.
    pub const fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
            ConnState::Icmp => "ICMP",
        }
    }

    /// Whether the connection counts as active (`ActiveConn`) rather than
    /// inactive (`InActConn`) for lc/wlc and `ipvsadm -Ln`. IPVS binds every
    /// new connection as inactive and only TCP's move to ESTABLISHED makes
    /// one active, so UDP and ICMP connections, which never change state,
    /// are always inactive.
    pub const fn is_active(self) -> bool {
        match self {
            ConnState::Tcp(s) => s.is_active(),
            ConnState::Udp | ConnState::Icmp => false,
        }
    }
}

impl core::fmt::Display for ConnState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad(self.name())
    }
}

/// Idle timeouts per state: the IPVS defaults, with overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [Duration; 11],
    udp: Duration,
    icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::IPVS
    }
}

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

impl Timeouts {
    /// The IPVS defaults: ESTABLISHED 15 min, SYN_SENT 2 min, SYN_RECV 1 min,
    /// FIN_WAIT 2 min, TIME_WAIT 2 min, CLOSE 10 s, CLOSE_WAIT 60 s,
    /// LAST_ACK 30 s, LISTEN 2 min, SYNACK 2 min, NONE 2 s; UDP 5 min;
    /// ICMP 1 min.
    pub const IPVS: Timeouts = Timeouts {
        // In TcpState order.
        tcp: [
            Duration::from_secs(2),
            mins(15),
            mins(2),
            mins(1),
            mins(2),
            mins(2),
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(30),
            mins(2),
            mins(2),
        ],
        udp: mins(5),
        icmp: mins(1),
    };

    /// The timeout of TCP state `s`.
    pub fn tcp(&self, s: TcpState) -> Duration {
        self.tcp.get(s as usize).copied().unwrap_or(Duration::ZERO)
    }

    /// Sets the timeout of TCP state `s`.
    pub fn set_tcp(&mut self, s: TcpState, d: Duration) {
        if let Some(t) = self.tcp.get_mut(s as usize) {
            *t = d;
        }
    }

    /// The UDP timeout.
    pub fn udp(&self) -> Duration {
        self.udp
    }

    /// Sets the UDP timeout.
    pub fn set_udp(&mut self, d: Duration) {
        self.udp = d;
    }

    /// The ICMP timeout.
    pub fn icmp(&self) -> Duration {
        self.icmp
    }

    /// Sets the ICMP timeout.
    pub fn set_icmp(&mut self, d: Duration) {
        self.icmp = d;
    }

    /// The timeout of a connection in `state`.
    pub fn of(&self, state: ConnState) -> Duration {
        match state {
            ConnState::Tcp(s) => self.tcp(s),
            ConnState::Udp => self.udp,
            ConnState::Icmp => self.icmp,
        }
    }

    /// `ipvsadm --set tcp tcpfin udp`: `tcp` is the ESTABLISHED timeout,
    /// `tcpfin` the FIN_WAIT one; a zero leaves that value unchanged.
    pub fn set_ipvsadm(&mut self, tcp: Duration, tcpfin: Duration, udp: Duration) {
        if !tcp.is_zero() {
            self.set_tcp(TcpState::Established, tcp);
        }
        if !tcpfin.is_zero() {
            self.set_tcp(TcpState::FinWait, tcpfin);
        }
        if !udp.is_zero() {
            self.udp = udp;
        }
    }

    /// The `(tcp, tcpfin, udp)` triple `ipvsadm -L --timeout` shows.
    pub fn ipvsadm(&self) -> (Duration, Duration, Duration) {
        (
            self.tcp(TcpState::Established),
            self.tcp(TcpState::FinWait),
            self.udp,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::*;

    const SYN: TcpFlags = TcpFlags::SYN;
    const ACK: TcpFlags = TcpFlags::ACK;
    const FIN: TcpFlags = TcpFlags::FIN;
    const RST: TcpFlags = TcpFlags::RST;
    const PSH: TcpFlags = TcpFlags::PSH;

    /// Feeds `steps` (side, flags, expected state after) from `start`.
    fn walk(start: TcpState, steps: &[(Side, TcpFlags, TcpState)]) {
        let mut s = start;
        for (i, &(side, flags, want)) in steps.iter().enumerate() {
            let next = s.next(side, flags);
            assert_eq!(next, want, "step {i}: {s} + {side:?} {flags:?}");
            s = next;
        }
    }

    #[test]
    fn nat_handshake_data_client_closes_first() {
        use Side::{Input as C, Output as S};
        walk(
            None,
            &[
                (C, SYN, SynRecv),
                (S, SYN | ACK, SynRecv),
                (C, ACK, Established),
                (C, PSH | ACK, Established),
                (S, PSH | ACK, Established),
                (C, FIN | ACK, CloseWait),
                (S, ACK, CloseWait),
                (S, FIN | ACK, TimeWait),
                (C, ACK, TimeWait),
            ],
        );
    }

    #[test]
    fn nat_server_closes_first() {
        use Side::{Input as C, Output as S};
        walk(
            Established,
            &[
                (S, FIN | ACK, FinWait),
                (C, ACK, FinWait),
                (C, FIN | ACK, TimeWait),
                (S, ACK, TimeWait),
            ],
        );
    }

    #[test]
    fn dr_input_only() {
        use Side::InputOnly as C;
        walk(
            None,
            &[
                (C, SYN, SynRecv),
                (C, ACK, Established),
                (C, PSH | ACK, Established),
                // The client's FIN: the server's half is unseen, so FIN_WAIT.
                (C, FIN | ACK, FinWait),
                (C, ACK, FinWait),
                (C, RST, Close),
            ],
        );
    }

    #[test]
    fn rst_handling() {
        // Either side resets an established connection.
        assert_eq!(Established.next(Side::Input, RST), Close);
        assert_eq!(Established.next(Side::Output, RST | ACK), Close);
        assert_eq!(Established.next(Side::InputOnly, RST), Close);
        // A client RST during the handshake leaves SYN_RECV (and its short
        // timeout) in place; the server refusing the connection closes it.
        assert_eq!(SynRecv.next(Side::Input, RST), SynRecv);
        assert_eq!(SynRecv.next(Side::Output, RST | ACK), Close);
        // RST takes precedence over every other flag.
        assert_eq!(None.next(Side::Input, SYN | RST), Close);
        // TIME_WAIT ignores a server RST but not a client one.
        assert_eq!(TimeWait.next(Side::Output, RST), TimeWait);
        assert_eq!(TimeWait.next(Side::Input, RST), Close);
    }

    #[test]
    fn flag_precedence_and_no_flags() {
        // SYN-ACK is a SYN, FIN-ACK is a FIN.
        assert_eq!(None.next(Side::Output, SYN | ACK), SynSent);
        assert_eq!(Established.next(Side::Input, FIN | ACK), CloseWait);
        // A segment with none of the four flags closes, as in IPVS.
        assert_eq!(Established.next(Side::Input, PSH), Close);
        assert_eq!(Established.next(Side::Input, TcpFlags::NONE), Close);
    }

    #[test]
    fn selected_cells() {
        use Side::{Input as I, InputOnly as O1, Output as O};
        let cells = [
            // (from, side, flags, to)
            (SynSent, I, SYN, Established),
            (SynSent, O, RST, SynSent),
            (SynSent, I, RST, Close),
            (Listen, O, ACK, Established),
            (Listen, O, SYN, Listen),
            (Listen, I, ACK, Listen),
            (LastAck, I, ACK, Close),
            (LastAck, O, ACK, LastAck),
            (LastAck, I, RST, LastAck),
            (LastAck, O, RST, Close),
            (CloseWait, O, FIN, TimeWait),
            (CloseWait, I, FIN, CloseWait),
            (SynAck, I, ACK, Established),
            (SynAck, I, RST, SynRecv),
            (SynAck, O1, RST, Close),
            (SynAck, O, SYN, SynRecv),
            (FinWait, O, SYN, SynSent),
            (FinWait, I, FIN, TimeWait),
            (FinWait, O1, FIN, FinWait),
            (None, O, FIN, TimeWait),
            (None, O, SYN, SynSent),
            (None, I, ACK, Established),
            (None, O1, FIN, Close),
            (SynRecv, O1, RST, SynRecv),
            (SynRecv, O, FIN, TimeWait),
            (TimeWait, O, SYN, SynSent),
            (Close, O, ACK, Close),
        ];
        for (from, side, flags, to) in cells {
            assert_eq!(from.next(side, flags), to, "{from} + {side:?} {flags:?}");
        }
    }

    #[test]
    fn a_new_syn_reopens_a_closed_or_closing_connection() {
        for s in [Close, TimeWait, FinWait, CloseWait, LastAck] {
            assert_eq!(s.next(Side::Input, SYN), SynRecv, "{s}");
        }
    }

    #[test]
    fn only_established_is_active() {
        for s in TcpState::ALL {
            assert_eq!(s.is_active(), s == Established, "{s}");
            assert_eq!(ConnState::Tcp(s).is_active(), s == Established);
        }
        assert!(!ConnState::Udp.is_active());
        assert!(!ConnState::Icmp.is_active());
    }

    #[test]
    fn names_as_ipvsadm_prints_them() {
        let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "NONE",
                "ESTABLISHED",
                "SYN_SENT",
                "SYN_RECV",
                "FIN_WAIT",
                "TIME_WAIT",
                "CLOSE",
                "CLOSE_WAIT",
                "LAST_ACK",
                "LISTEN",
                "SYNACK"
            ]
        );
        assert_eq!(ConnState::Udp.to_string(), "UDP");
        assert_eq!(ConnState::Icmp.name(), "ICMP");
        assert_eq!(format!("{:<12}|", ConnState::Tcp(SynRecv)), "SYN_RECV    |");
        assert_eq!(ConnState::initial(6), Some(ConnState::Tcp(None)));
        assert_eq!(ConnState::initial(17), Some(ConnState::Udp));
        assert_eq!(ConnState::initial(47), Option::None);
    }

    #[test]
    fn ipvs_default_timeouts() {
        let t = Timeouts::default();
        let secs = |s: TcpState| t.tcp(s).as_secs();
        assert_eq!(secs(None), 2);
        assert_eq!(secs(Established), 900);
        assert_eq!(secs(SynSent), 120);
        assert_eq!(secs(SynRecv), 60);
        assert_eq!(secs(FinWait), 120);
        assert_eq!(secs(TimeWait), 120);
        assert_eq!(secs(Close), 10);
        assert_eq!(secs(CloseWait), 60);
        assert_eq!(secs(LastAck), 30);
        assert_eq!(secs(Listen), 120);
        assert_eq!(secs(SynAck), 120);
        assert_eq!(t.udp().as_secs(), 300);
        assert_eq!(t.icmp().as_secs(), 60);
        assert_eq!(t.of(ConnState::Udp).as_secs(), 300);
        assert_eq!(t.of(ConnState::Tcp(Close)).as_secs(), 10);
    }

    #[test]
    fn ipvsadm_set_overrides() {
        let mut t = Timeouts::default();
        let s = Duration::from_secs;
        t.set_ipvsadm(s(7200), Duration::ZERO, s(30));
        assert_eq!(t.ipvsadm(), (s(7200), s(120), s(30)));
        t.set_ipvsadm(Duration::ZERO, s(5), Duration::ZERO);
        assert_eq!(t.ipvsadm(), (s(7200), s(5), s(30)));
        // Only those three change.
        assert_eq!(t.tcp(TimeWait), s(120));
        t.set_tcp(Close, s(3));
        assert_eq!(t.of(ConnState::Tcp(Close)), s(3));
    }

    #[test]
    fn side_of_packet() {
        assert_eq!(Side::of(Direction::FromClient, true), Side::Input);
        assert_eq!(Side::of(Direction::FromClient, false), Side::InputOnly);
        assert_eq!(Side::of(Direction::FromServer, false), Side::Output);
    }
}
