//! The wire self-check (`cargo xtask demo` until the daemon lands).
//!
//! Builds frames with an independent implementation (etherparse), decodes
//! them with rvs-wire, applies the rewrites the balancer performs on every
//! packet (FullNAT addresses and ports, TOA insertion, MSS clamp, ICMP echo
//! reply, an ICMP "fragmentation needed" quoting the segment) using
//! incremental checksums only, and checks every result against a full
//! recomputation by the independent implementation. Exits non-zero on any
//! mismatch.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use rvs_wire::ethernet::{self, EthernetFrame};
use rvs_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use rvs_wire::ipv4::{Ipv4Packet, Ipv4Repr};
use rvs_wire::tcp::{TcpPacket, Toa, insert_toa};
use rvs_wire::{checksum, ip_proto};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const REAL: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);

type Check = Result<String, String>;

/// A named check.
type NamedCheck = (&'static str, fn() -> Check);

fn main() -> ExitCode {
    let checks: [NamedCheck; 4] = [
        ("decode Ethernet/IPv4/TCP SYN", decode_syn),
        ("FullNAT rewrite + TOA + MSS clamp", fullnat_syn),
        ("ICMP echo request → reply in place", echo_reply),
        ("ICMP frag-needed quoting a TCP segment", frag_needed),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        match check() {
            Ok(detail) => println!("ok    {name}: {detail}"),
            Err(why) => {
                failed += 1;
                println!("FAIL  {name}: {why}");
            }
        }
    }
    println!("{} passed, {failed} failed", checks.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A SYN with the options a Linux client sends, built by etherparse.
fn syn_frame() -> Vec<u8> {
    use etherparse::TcpOptionElement::*;
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 0x1234_5678, 64240)
        .syn()
        .options(&[
            MaximumSegmentSize(1460),
            SelectiveAcknowledgementPermitted,
            Timestamp(0x0102_0304, 0),
            Noop,
            WindowScale(7),
        ])
        .expect("options fit");
    let mut out = Vec::new();
    b.write(&mut out, &[]).expect("write to a Vec");
    out
}

fn err<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

fn decode_syn() -> Check {
    let frame = syn_frame();
    let eth = EthernetFrame::parse(&frame[..]).map_err(err("ethernet"))?;
    let ip = Ipv4Packet::parse(eth.payload()).map_err(err("ipv4"))?;
    ip.verify_checksum().map_err(err("ipv4 checksum"))?;
    let tcp = TcpPacket::parse(ip.payload()).map_err(err("tcp"))?;
    tcp.verify_checksum_v4(ip.src(), ip.dst())
        .map_err(err("tcp checksum"))?;
    if tcp.mss() != Some(1460) {
        return Err(format!("MSS {:?}, expected 1460", tcp.mss()));
    }
    let opts: Vec<String> = tcp
        .options()
        .map(|o| {
            o.map(|o| format!("{o:?}"))
                .unwrap_or_else(|e| e.to_string())
        })
        .collect();
    Ok(format!(
        "{} > {}: IP {}.{} > {}.{}: Flags [{}], seq {}, win {}, options [{}]",
        eth.src(),
        eth.dst(),
        ip.src(),
        tcp.src_port(),
        ip.dst(),
        tcp.dst_port(),
        tcp.flags(),
        tcp.seq(),
        tcp.window(),
        opts.join(", ")
    ))
}

fn fullnat_syn() -> Check {
    let mut buf = syn_frame();
    let frame_len = buf.len();
    buf.resize(frame_len + 64, 0); // tailroom for TOA
    let l3 = ethernet::HEADER_LEN;
    let ip_hl;
    {
        let mut ip = Ipv4Packet::parse(&mut buf[l3..frame_len]).map_err(err("ipv4"))?;
        ip_hl = ip.header_len();
        let (hdr, l4) = ip.split_mut();
        hdr.set_src(LOCAL);
        hdr.set_dst(REAL);
        let mut tcp = TcpPacket::parse(l4).map_err(err("tcp"))?;
        tcp.set_src_port(1025);
        tcp.set_dst_port(8080);
        tcp.update_checksum_for_addr_change_v4(CLIENT, LOCAL);
        tcp.update_checksum_for_addr_change_v4(VIP, REAL);
        tcp.clamp_mss(1452);
        tcp.replace_timestamps_with_nops();
    }
    let l4 = l3 + ip_hl;
    let seg_len = frame_len - l4;
    let toa = Toa {
        port: 40000,
        addr: IpAddr::V4(CLIENT),
    };
    let new_seg = insert_toa(&mut buf[l4..], seg_len, &toa).map_err(err("insert TOA"))?;
    let new_total = u16::try_from(ip_hl + new_seg).map_err(err("length"))?;
    {
        let mut ip = Ipv4Packet::parse(&mut buf[l3..]).map_err(err("ipv4"))?;
        ip.header_mut().set_total_len(new_total);
    }
    buf.truncate(l4 + new_seg);

    // Independent verification: etherparse recomputes both checksums.
    let sliced = SlicedPacket::from_ethernet(&buf).map_err(err("etherparse"))?;
    let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else {
        return Err("etherparse: not IPv4".into());
    };
    let iph = ip.header().to_header();
    if iph.header_checksum != iph.calc_header_checksum() {
        return Err("IPv4 header checksum wrong after rewrite".into());
    }
    let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
        return Err("etherparse: not TCP".into());
    };
    let want = tcp
        .to_header()
        .calc_checksum_ipv4(&iph, tcp.payload())
        .map_err(err("checksum"))?;
    if tcp.checksum() != want {
        return Err(format!(
            "TCP checksum {:#06x}, full recomputation {want:#06x}",
            tcp.checksum()
        ));
    }
    let ours = TcpPacket::parse(&buf[l4..]).map_err(err("tcp"))?;
    if ours.toa() != Some(toa) || ours.mss() != Some(1452) {
        return Err(format!("TOA {:?} MSS {:?}", ours.toa(), ours.mss()));
    }
    Ok(format!(
        "{}:{} → {}:{} became {LOCAL}:1025 → {REAL}:8080, TOA {}:{}, MSS 1452, checksums verified",
        CLIENT, 40000, VIP, 80, CLIENT, 40000
    ))
}

fn echo_reply() -> Check {
    let b = PacketBuilder::ipv4(CLIENT.octets(), VIP.octets(), 64).icmpv4_echo_request(7, 1);
    let mut pkt = Vec::new();
    b.write(&mut pkt, b"rvs-selfcheck-payload")
        .map_err(err("build"))?;
    {
        let mut ip = Ipv4Packet::parse(&mut pkt[..]).map_err(err("ipv4"))?;
        let (hdr, l4) = ip.split_mut();
        hdr.set_src(VIP);
        hdr.set_dst(CLIENT);
        let mut icmp = Icmpv4Packet::parse(l4).map_err(err("icmp"))?;
        icmp.make_echo_reply().map_err(err("echo reply"))?;
    }
    let sliced = SlicedPacket::from_ip(&pkt).map_err(err("etherparse"))?;
    let Some(TransportSlice::Icmpv4(icmp)) = sliced.transport else {
        return Err("etherparse: not ICMP".into());
    };
    let want = icmp.header().icmp_type.calc_checksum(icmp.payload());
    if icmp.checksum() != want {
        return Err(format!(
            "checksum {:#06x} want {want:#06x}",
            icmp.checksum()
        ));
    }
    match icmp.icmp_type() {
        etherparse::Icmpv4Type::EchoReply(h) if h.id == 7 && h.seq == 1 => {
            Ok("reply id 7 seq 1, checksum verified".into())
        }
        other => Err(format!("got {other:?}")),
    }
}

fn frag_needed() -> Check {
    let frame = syn_frame();
    let offending = &frame[ethernet::HEADER_LEN..];
    let icmp = Icmpv4Repr::frag_needed(1400, offending);
    let mut out = [0u8; 600];
    let icmp_len = icmp.emit(&mut out[20..]).map_err(err("emit icmp"))?;
    let ip = Ipv4Repr::new(
        VIP,
        CLIENT,
        ip_proto::ICMP,
        u16::try_from(icmp_len).map_err(err("len"))?,
    );
    ip.emit(&mut out).map_err(err("emit ipv4"))?;
    let total = 20 + icmp_len;
    let parsed = Ipv4Packet::parse(&out[..total]).map_err(err("ipv4"))?;
    parsed.verify_checksum().map_err(err("ipv4 checksum"))?;
    let msg = Icmpv4Packet::parse(parsed.payload()).map_err(err("icmp"))?;
    if checksum::checksum(parsed.payload()) != 0 {
        return Err("ICMP checksum does not verify".into());
    }
    let (quoted, l4) = msg.quoted_ipv4().map_err(err("quoted"))?;
    let ports = (
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
    );
    if quoted.src() != CLIENT || quoted.dst() != VIP || ports != (40000, 80) {
        return Err(format!(
            "quoted {} → {} {ports:?}",
            quoted.src(),
            quoted.dst()
        ));
    }
    Ok(format!(
        "type 3 code 4 mtu {:?}, quotes {}:{} → {}:{}",
        msg.next_hop_mtu(),
        quoted.src(),
        ports.0,
        quoted.dst(),
        ports.1
    ))
}
