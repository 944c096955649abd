//! Micro-benchmarks of what the balancer does on every packet: parse an
//! Ethernet/IPv4/TCP frame, and rewrite both addresses and ports (FullNAT)
//! with incremental checksum updates. A full recomputation is measured beside
//! it for scale. `cargo xtask bench` runs them; figures go in closing notes.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rvs_wire::ethernet::{self, EthernetFrame};
use rvs_wire::ipv4::Ipv4Packet;
use rvs_wire::tcp::TcpPacket;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const REAL: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);

/// A 64-byte-payload TCP data segment from CLIENT:40000 to VIP:80 with
/// timestamps, built by etherparse (an independent builder).
fn frame() -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 1_000_000, 64240)
        .ack(2_000_000)
        .psh()
        .options(&[etherparse::TcpOptionElement::Timestamp(1, 2)])
        .unwrap();
    let payload = [0x61u8; 64];
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, &payload).unwrap();
    out
}

/// Parses the frame down to the TCP ports; returns them so nothing is
/// optimised away.
#[inline(never)]
fn parse(frame: &[u8]) -> Option<(u16, u16)> {
    let eth = EthernetFrame::parse(frame).ok()?;
    if eth.ethertype() != ethernet::ethertype::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::parse(eth.payload()).ok()?;
    let tcp = TcpPacket::parse(ip.payload()).ok()?;
    Some((tcp.src_port(), tcp.dst_port()))
}

/// The FullNAT rewrite of a client→VIP segment into LOCAL→REAL, with
/// incremental checksums (IPv4 header and TCP, pseudo-header included).
#[inline(never)]
fn fullnat_incremental(frame: &mut [u8], lport: u16, rport: u16) -> Option<()> {
    let (_, l3) = frame.split_at_mut_checked(ethernet::HEADER_LEN)?;
    let mut ip = Ipv4Packet::parse(l3).ok()?;
    let (hdr, l4) = ip.split_mut();
    let (old_src, old_dst) = (hdr.src(), hdr.dst());
    hdr.set_src(LOCAL);
    hdr.set_dst(REAL);
    let mut tcp = TcpPacket::parse(l4).ok()?;
    tcp.set_src_port(lport);
    tcp.set_dst_port(rport);
    tcp.update_checksum_for_addr_change_v4(old_src, LOCAL);
    tcp.update_checksum_for_addr_change_v4(old_dst, REAL);
    Some(())
}

/// The same rewrite with both checksums recomputed from scratch.
#[inline(never)]
fn fullnat_full(frame: &mut [u8], lport: u16, rport: u16) -> Option<()> {
    let (_, l3) = frame.split_at_mut_checked(ethernet::HEADER_LEN)?;
    let mut ip = Ipv4Packet::parse(l3).ok()?;
    ip.set_src(LOCAL);
    ip.set_dst(REAL);
    ip.fill_checksum();
    let (_, l4) = ip.split_mut();
    let mut tcp = TcpPacket::parse(l4).ok()?;
    tcp.set_src_port(lport);
    tcp.set_dst_port(rport);
    tcp.fill_checksum_v4(LOCAL, REAL);
    Some(())
}

fn benches(c: &mut Criterion) {
    let original = frame();
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_eth_ipv4_tcp", |b| {
        b.iter(|| parse(black_box(&original)))
    });
    let mut buf = original.clone();
    g.bench_function("fullnat_rewrite_incremental", |b| {
        b.iter(|| fullnat_incremental(black_box(&mut buf), 1025, 8080))
    });
    let mut buf = original.clone();
    g.bench_function("fullnat_rewrite_full_checksum", |b| {
        b.iter(|| fullnat_full(black_box(&mut buf), 1025, 8080))
    });
    g.finish();
}

/// The benchmarked functions must produce valid packets, or their speed
/// means nothing: checked once before measuring.
fn check() {
    let original = frame();
    assert_eq!(parse(&original), Some((40000, 80)));
    let mut a = original.clone();
    let mut b = original.clone();
    fullnat_incremental(&mut a, 1025, 8080).unwrap();
    fullnat_full(&mut b, 1025, 8080).unwrap();
    assert_eq!(a, b, "incremental and full checksums differ");
    let ip = Ipv4Packet::parse(&a[14..]).unwrap();
    ip.verify_checksum().unwrap();
    let tcp = TcpPacket::parse(ip.payload()).unwrap();
    tcp.verify_checksum_v4(LOCAL, REAL).unwrap();
}

fn checked(c: &mut Criterion) {
    check();
    benches(c);
}

criterion_group!(wire, checked);
criterion_main!(wire);
