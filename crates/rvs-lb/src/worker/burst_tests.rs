//! `process_burst` against `process`: the same packets through two workers
//! built alike give the same verdicts, bytes and state.

use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use etherparse::PacketBuilder;

use super::*;
use crate::config::{DestSpec, ServiceSpec};
use crate::conn::Timeouts;
use crate::sched::SchedulerKind;

fn worker() -> Worker {
    let mut specs = Vec::new();
    for (i, mode) in [ForwardMode::FullNat, ForwardMode::Nat, ForwardMode::Dr]
        .into_iter()
        .enumerate()
    {
        let vip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8));
        let mut s = ServiceSpec::new(ServiceKey::tcp(vip, 80), SchedulerKind::Rr);
        s.laddrs = vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))];
        s.dests = (0..3)
            .map(|r| {
                let a = IpAddr::V4(Ipv4Addr::new(10, 1, i as u8, 1 + r));
                DestSpec::new(a, if mode == ForwardMode::Dr { 0 } else { 8080 }, mode)
            })
            .collect();
        specs.push(s);
    }
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(
        Arc::new(Config::build(specs, Timeouts::default()).unwrap()),
        false,
    );
    w
}

fn tcp(src: ([u8; 4], u16), dst: ([u8; 4], u16), syn: bool, fin: bool) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, 7, 1000);
    let b = if syn { b.syn() } else { b.ack(9) };
    let b = if fin { b.fin() } else { b };
    let mut v = Vec::new();
    b.write(&mut v, b"data").unwrap();
    v
}

/// A burst longer than `MAX_BURST` mixing new flows, packets of flows
/// opened earlier in the same burst, their closing, malformed input, a
/// packet for no service and packets of no connection.
fn packets() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for k in 0..12u16 {
        let client = ([198, 51, 100, k as u8], 1000 + k);
        let vip = ([192, 0, 2, 1 + (k % 3) as u8], 80);
        v.push(tcp(client, vip, true, false));
        v.push(tcp(client, vip, false, false));
        if k % 4 == 0 {
            v.push(tcp(client, vip, false, true));
        }
    }
    v.push(vec![0x45, 0, 0]);
    v.push(tcp(
        ([198, 51, 100, 200], 5),
        ([192, 0, 2, 9], 80),
        true,
        false,
    ));
    v.push(tcp(
        ([198, 51, 100, 201], 5),
        ([192, 0, 2, 1], 80),
        false,
        false,
    ));
    let mut bad = tcp(([198, 51, 100, 202], 5), ([192, 0, 2, 1], 80), true, false);
    bad[8] ^= 1;
    v.push(bad);
    for k in 0..12u16 {
        let client = ([198, 51, 100, k as u8], 1000 + k);
        let vip = ([192, 0, 2, 1 + (k % 3) as u8], 80);
        v.push(tcp(client, vip, false, false));
    }
    v
}

const HEADROOM: usize = 64;

fn buffers(pkts: &[Vec<u8>]) -> Vec<[u8; 256]> {
    pkts.iter()
        .map(|p| {
            let mut b = [0u8; 256];
            b[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
            b
        })
        .collect()
}

#[test]
fn a_burst_is_the_same_as_one_packet_at_a_time() {
    let pkts = packets();
    assert!(pkts.len() > MAX_BURST + 10);
    let now = Time::from_secs(3);
    let marks: Vec<u32> = (0..pkts.len() as u32).collect();

    let mut one = worker();
    let mut one_bufs = buffers(&pkts);
    let mut one_out = Vec::new();
    for (i, (buf, p)) in one_bufs.iter_mut().zip(&pkts).enumerate() {
        let mut packet = Packet::new(buf, HEADROOM, p.len()).unwrap();
        let v = one.process(&mut packet, marks[i], now);
        one_out.push((v, packet.data().to_vec()));
    }

    let mut burst = worker();
    let mut bufs = buffers(&pkts);
    let mut packets: Vec<Packet<'_>> = bufs
        .iter_mut()
        .zip(&pkts)
        .map(|(b, p)| Packet::new(b, HEADROOM, p.len()).unwrap())
        .collect();
    let mut verdicts = vec![Verdict::Pass; pkts.len()];
    burst.process_burst(&mut packets, &marks, now, &mut verdicts);
    let burst_out: Vec<_> = verdicts
        .iter()
        .zip(&packets)
        .map(|(&v, p)| (v, p.data().to_vec()))
        .collect();

    assert_eq!(burst_out, one_out);
    assert!(
        one_out
            .iter()
            .any(|(v, _)| matches!(v, Verdict::Forward { .. }))
    );
    assert!(one_out.iter().any(|(v, _)| matches!(v, Verdict::Drop(_))));
    assert!(one_out.iter().any(|(v, _)| *v == Verdict::Pass));
    assert_eq!(burst.drops(), one.drops());
    assert_eq!(burst.conns().len(), one.conns().len());
    let conns = |w: &Worker| {
        w.conns()
            .iter()
            .map(|(id, c)| (id, c.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(conns(&burst), conns(&one));
    let stats = |w: &Worker| {
        w.services()
            .iter()
            .map(|s| (s.stats, s.conns, s.dest_stats.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(stats(&burst), stats(&one));
}

#[test]
fn fewer_verdict_slots_process_fewer_packets() {
    let pkts = packets();
    let mut w = worker();
    let mut bufs = buffers(&pkts);
    let mut packets: Vec<Packet<'_>> = bufs
        .iter_mut()
        .zip(&pkts)
        .map(|(b, p)| Packet::new(b, HEADROOM, p.len()).unwrap())
        .collect();
    // Two SYNs and the first data segment: only the first SYN runs.
    let mut verdicts = [Verdict::Pass; 1];
    w.process_burst(&mut packets, &[], Time::ZERO, &mut verdicts);
    assert!(matches!(verdicts[0], Verdict::Forward { .. }));
    assert_eq!(w.conns().len(), 1);
    assert_eq!(packets[1].data(), &pkts[1][..], "not processed");
}
