//! Fuzz target: the ARP parser takes any bytes without panicking, rejects
//! only with `Truncated`/`Unsupported`, and what it accepts re-emits to the
//! same 28 bytes; the reply built from an accepted request parses back with
//! sender and target swapped.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/arp/corpus/`, which holds ARP bodies — the
//! Ethernet payload); `cargo xtask fuzz` runs it longer.

use rvs_wire::Error;
use rvs_wire::arp::{ArpOperation, ArpPacket, ArpRepr, FRAME_LEN, HEADER_LEN};
use rvs_wire::ethernet::{EthernetFrame, MacAddr};

#[test]
fn fuzz_arp() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let p = match ArpPacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                assert!(matches!(e, Error::Truncated | Error::Unsupported), "{e:?}");
                return;
            }
        };
        let repr = ArpRepr::parse(&p);
        assert_eq!(p.trailer(), &bytes[HEADER_LEN..]);
        let mut out = [0u8; HEADER_LEN];
        assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
        assert_eq!(&out[..], &bytes[..HEADER_LEN]);

        let ours = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
        match repr.reply(ours) {
            None => assert_eq!(repr.operation, ArpOperation::Reply),
            Some(reply) => {
                let mut frame = [0u8; FRAME_LEN];
                assert_eq!(reply.emit_frame(&mut frame), Ok(FRAME_LEN));
                let eth = EthernetFrame::parse(&frame[..]).expect("full frame");
                assert_eq!(eth.dst(), repr.sender_mac);
                assert_eq!(eth.src(), ours);
                let back = ArpRepr::parse(&ArpPacket::parse(eth.payload()).expect("valid"));
                assert_eq!(back, reply);
                assert_eq!(
                    (back.target_mac, back.target_ip),
                    (repr.sender_mac, repr.sender_ip)
                );
                assert_eq!(back.sender_ip, repr.target_ip);
            }
        }

        // The mutable view is as safe as the read-only one.
        let mut owned = bytes.to_vec();
        let mut m = ArpPacket::parse(&mut owned[..]).expect("same bytes");
        m.set_operation(ArpOperation::Reply);
        assert_eq!(m.operation(), ArpOperation::Reply);
    });
}
