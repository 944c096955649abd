//! rvsd end to end, FullNAT with TOA (run as root): a client, the lb and
//! one backend ([`Topo`]), rvsd on AF_XDP (generic mode) with a FullNAT
//! service `toa = "first-data"`. An AF_PACKET capture on the backend's
//! interface records every frame while curl asks VIP:80 from client
//! ports the test chooses (`--local-port`). For every connection seen at
//! the backend: the source is rvs's local address, no SYN carries the
//! TOA option, and the first segment carrying data carries it (kind 254,
//! length 8: the client's port, then its IPv4 address) with exactly the
//! client's port and address. Every client port appears in exactly one
//! connection.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use common::harness::{API_OFF, Capture, OneShotServer, Rvsd, TempFile, Topo, curl};

const VIP: &str = "10.0.0.100";
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const CLIENT_PORTS: [u16; 4] = [41001, 41002, 41003, 41004];

/// A TCP segment from an Ethernet frame (IPv4 only).
#[derive(Debug)]
struct Seg {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    syn: bool,
    ack: bool,
    payload: usize,
    /// The TOA option (kind 254): its length and body.
    toa: Option<(u8, Vec<u8>)>,
}

fn parse(frame: &[u8]) -> Option<Seg> {
    let be16 = |b: &[u8], at: usize| Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]));
    let ip4 = |b: &[u8], at: usize| -> Option<Ipv4Addr> {
        let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(o))
    };
    if be16(frame, 12)? != 0x0800 {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?);
    if *ip.get(9)? != 6 {
        return None;
    }
    let tcp = ip.get(ihl..total)?;
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    let mut toa = None;
    let mut opts = tcp.get(20..doff)?;
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = &opts[1..],
            _ => {
                let l = usize::from(*opts.get(1)?);
                if l < 2 {
                    break;
                }
                let o = opts.get(..l)?;
                if kind == 254 {
                    toa = Some((o[1], o[2..].to_vec()));
                }
                opts = opts.get(l..)?;
            }
        }
    }
    Some(Seg {
        src: ip4(ip, 12)?,
        dst: ip4(ip, 16)?,
        sport: be16(tcp, 0)?,
        dport: be16(tcp, 2)?,
        syn: flags & 0x02 != 0,
        ack: flags & 0x10 != 0,
        payload: tcp.len() - doff,
        toa,
    })
}

#[test]
fn toa_first_data_af_xdp_generic() {
    let topo = Topo::new(1, false);
    let b1 = &topo.backends[0];
    let _server = OneShotServer::start(b1, "b1", 80);
    let config = String::from(API_OFF)
        + "[daemon]\nworkers = 1\ntick_ms = 10\n\n"
        + &topo.ports_config("af_xdp", "xdp_mode = \"generic\"\n", None)
        + &format!(
            "[[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = 80\nscheduler = \"rr\"\n\
             toa = \"first-data\"\nladdrs = [\"{LADDR}\"]\n\
             [[service.real]]\naddr = \"{BACKEND}\"\nmode = \"fullnat\"\n"
        );
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&topo.lb, &path, &config);
    topo.warm_up(&mut rvsd, false);

    let capture = Capture::start(b1, &topo.v[0].a.name);
    for port in CLIENT_PORTS {
        let body = curl(
            &topo.client,
            &format!("http://{VIP}/"),
            &["--local-port", &port.to_string()],
            &mut rvsd,
        );
        assert_eq!(body, format!("b1 {LADDR}"), "client port {port}");
    }
    let frames = capture.finish();

    // Segments towards the backend's server, by connection (rvs's source
    // address and port), in capture order.
    let mut conns: BTreeMap<(Ipv4Addr, u16), Vec<Seg>> = BTreeMap::new();
    for s in frames.iter().filter_map(|f| parse(f)) {
        if s.dst == BACKEND && s.dport == 80 {
            conns.entry((s.src, s.sport)).or_default().push(s);
        }
    }
    let mut report = String::new();
    let mut clients = Vec::new();
    for ((src, sport), segs) in &conns {
        if *src != LADDR {
            report += &format!("connection from {src}:{sport}, not the laddr {LADDR}\n");
        }
        for s in segs.iter().filter(|s| s.syn) {
            if s.toa.is_some() {
                report += &format!("{src}:{sport}: SYN carries TOA in first-data mode: {s:?}\n");
            }
        }
        let Some(first) = segs.iter().find(|s| s.payload > 0) else {
            report += &format!("{src}:{sport}: no data segment: {segs:?}\n");
            continue;
        };
        match &first.toa {
            Some((8, body)) if body.len() == 6 => {
                let port = u16::from_be_bytes([body[0], body[1]]);
                let addr = Ipv4Addr::new(body[2], body[3], body[4], body[5]);
                if addr != CLIENT {
                    report += &format!("{src}:{sport}: TOA address {addr}, not {CLIENT}\n");
                }
                clients.push(port);
            }
            other => {
                report += &format!(
                    "{src}:{sport}: first data segment has TOA {other:?}, \
                     not kind 254 length 8: {first:?}\n"
                );
            }
        }
        // The handshake's final ACK (the first non-SYN segment) carries
        // it too or leaves it to the first data segment; either way at
        // most one TOA before data.
        let before_data = segs
            .iter()
            .take_while(|s| s.payload == 0)
            .filter(|s| !s.syn && s.ack && s.toa.is_some())
            .count();
        if before_data > 1 {
            report += &format!("{src}:{sport}: TOA on {before_data} empty ACKs\n");
        }
    }
    clients.sort_unstable();
    if clients != CLIENT_PORTS {
        report += &format!(
            "client ports in TOA {clients:?}, expected {CLIENT_PORTS:?} \
             ({} connections seen)\n",
            conns.len()
        );
    }
    if !report.is_empty() {
        rvsd.fail(&format!("{report}({} frames captured)", frames.len()));
    }
    let c = rvsd.stop();
    assert!(
        c.get("forwarded") >= 4 * CLIENT_PORTS.len() as u64,
        "{}",
        c.log
    );
}
