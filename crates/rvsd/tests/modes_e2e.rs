//! rvsd end to end in every forwarding mode (run as root), each case in
//! fresh namespaces (conntrack and neighbour state never leak between
//! cases):
//! - FullNAT UDP: `socat` from the client through VIP:5353 to two UDP echo
//!   servers; every datagram answered, rr spread, backends see the local
//!   address.
//! - NAT: the backends' default route points at rvs; `curl` answered by
//!   both backends, which see the client's own address.
//! - DR (AF_PACKET, and AF_XDP in generic mode): a router, rvs and two
//!   backends on one macvlan segment, the client behind the router; the
//!   backends hold the VIP on `lo` with ARP suppressed and answer the
//!   router directly (a capture at the router sees the replies come from
//!   the backends' MACs, never from rvs's). The client is not on the
//!   segment itself: a macvlan's checksum offload cannot be turned off,
//!   so its frames would reach rvs with unfinished checksums.
//! - TUN: the kernel here has no IPIP module: a capture at the backend
//!   shows the IPIP packet (outer local address → backend, inner client →
//!   VIP:80), and a user-space decapsulator (raw IPIP socket → TUN device
//!   holding the VIP) lets the backend's kernel answer a real request.
//! - ping and ARP for the VIP and rvs's own address answered with rvs's
//!   MAC.
//!
//! Every case also checks rvsd's counters from its shutdown log lines.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::harness::{
    API_OFF, Capture, HttpServer, Rvsd, Segment, TempFile, Topo, Tun, UdpEcho, curl, mac,
    offloads_off, set_rcvtimeo, sysctl,
};
use common::{Netns, TIMEOUT, Veth, mac_str};

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";

fn any(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], port))
}

/// A `[[service]]` with one `[[service.real]]` per `(addr, mode)`.
fn service(proto: &str, port: u16, extra: &str, reals: &[(&str, &str)]) -> String {
    let mut s = format!(
        "[[service]]\nproto = \"{proto}\"\nvip = \"{VIP}\"\nport = {port}\nscheduler = \"rr\"\n{extra}\n"
    );
    for (addr, mode) in reals {
        s.push_str(&format!(
            "[[service.real]]\naddr = \"{addr}\"\nmode = \"{mode}\"\n"
        ));
    }
    s.push('\n');
    s
}

#[test]
fn fullnat_udp() {
    let t = Topo::new(2, false);
    let _s1 = UdpEcho::start(&t.backends[0], "b1", any(5353));
    let _s2 = UdpEcho::start(&t.backends[1], "b2", any(5353));
    let config = t.config_head("af_xdp")
        + &service(
            "udp",
            5353,
            &format!("laddrs = [\"{LADDR}\"]"),
            &[("10.0.1.2", "fullnat"), ("10.0.2.2", "fullnat")],
        );
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &config);
    // rvs drops a packet whose next hop is not resolved yet (it does not
    // queue it): the backends talk to their gateway first, so rvs knows
    // them (TCP would recover by retransmitting; one datagram would not).
    t.warm_up(&mut rvsd, false);

    let mut seen = Vec::new();
    for i in 0..4 {
        // A new socat, a new source port: a new connection each time.
        let cmd = format!("echo hello{i} | socat -t 0.5 - UDP4:{VIP}:5353");
        let out = t.client.exec(&["sh", "-c", &cmd], TIMEOUT).expect("socat");
        let reply = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !(out.status.success() && reply.ends_with(&format!(" {LADDR} hello{i}"))) {
            rvsd.fail(&format!(
                "datagram {i}: reply {reply:?}, stderr {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        seen.push(reply);
    }
    let b1 = seen.iter().filter(|s| s.starts_with("b1 ")).count();
    let b2 = seen.iter().filter(|s| s.starts_with("b2 ")).count();
    assert_eq!((b1, b2), (2, 2), "rr over two backends: {seen:?}");

    let c = rvsd.stop();
    assert!(c.get("forwarded") >= 8, "{}", c.log);
    assert_eq!(c.get("connections"), 4, "{}", c.log);
}

#[test]
fn nat_tcp() {
    let t = Topo::new(2, false);
    let s1 = HttpServer::start(&t.backends[0], "b1", any(80));
    let s2 = HttpServer::start(&t.backends[1], "b2", any(80));
    let config = t.config_head("af_xdp")
        + &service("tcp", 80, "", &[("10.0.1.2", "nat"), ("10.0.2.2", "nat")]);
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &config);
    t.warm_up(&mut rvsd, false);

    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(curl(&t.client, &format!("http://{VIP}/"), &[], &mut rvsd));
    }
    // The backends see the client itself (masquerade keeps the source).
    let b1 = seen.iter().filter(|s| *s == "b1 10.0.0.2").count();
    let b2 = seen.iter().filter(|s| *s == "b2 10.0.0.2").count();
    assert_eq!((b1, b2), (3, 3), "{seen:?}");
    assert_eq!(s1.count() + s2.count(), 6);

    let c = rvsd.stop();
    // Both directions go through rvs: at least SYN, ACK, request, FIN,
    // ACK each way... at least 4 frames per direction and request.
    assert!(c.get("forwarded") >= 6 * 8, "{}", c.log);
}

#[test]
fn dr_tcp_af_packet() {
    dr("backend = \"af_packet\"");
}

/// AF_XDP on a macvlan: generic mode (macvlan has no native XDP).
#[test]
fn dr_tcp_af_xdp_generic() {
    dr("backend = \"af_xdp\"\nxdp_mode = \"generic\"");
}

fn dr(backend: &str) {
    // The segment: a router (the client's gateway), rvs and two backends.
    // The client sits behind the router on a veth: a macvlan hands its
    // neighbours frames with unfinished checksums (its checksum offload
    // cannot be turned off), which rvs's AF_PACKET port would pass on as
    // they are; what the router forwards is complete.
    let seg = Segment::new();
    let client = Netns::new("cl");
    let router = Netns::new("rt");
    let lb = Netns::new("lb");
    let b1 = Netns::new("b1");
    let b2 = Netns::new("b2");
    for ns in [&client, &router, &lb, &b1, &b2] {
        ns.disable_ipv6();
    }
    let cv = Veth::new(&client, mac(0x20, 1), &router, mac(0x20, 2));
    offloads_off(&client, &cv.a.name);
    offloads_off(&router, &cv.b.name);
    client.ip(&["addr", "add", "10.1.0.2/24", "dev", &cv.a.name]);
    client.ip(&["route", "add", "default", "via", "10.1.0.1"]);
    router.ip(&["addr", "add", "10.1.0.1/24", "dev", &cv.b.name]);
    let r_if = seg.attach(&router, mac(0x10, 1));
    router.ip(&["addr", "add", "10.0.0.254/24", "dev", &r_if]);
    sysctl(&router, "net/ipv4/ip_forward", "1");
    let lb_if = seg.attach(&lb, mac(0x10, 2));
    let b_macs = [mac(0x11, 1), mac(0x12, 1)];
    let mut servers = Vec::new();
    for (i, (b, m)) in [&b1, &b2].into_iter().zip(b_macs).enumerate() {
        let dev = seg.attach(b, m);
        b.ip(&["addr", "add", &format!("10.0.0.1{}/24", i + 1), "dev", &dev]);
        b.ip(&["route", "add", "default", "via", "10.0.0.254"]);
        // The VIP on lo, never announced nor answered for.
        b.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        sysctl(b, "net/ipv4/conf/all/arp_ignore", "1");
        sysctl(b, "net/ipv4/conf/all/arp_announce", "2");
        servers.push(HttpServer::start(b, &format!("b{}", i + 1), any(80)));
    }
    let config = String::from(API_OFF)
        + &format!(
            "[daemon]\nworkers = 1\ntick_ms = 10\n\n[[port]]\nname = \"{lb_if}\"\n{backend}\n\n\
         [[addr]]\naddr = \"10.0.0.1/24\"\nport = \"{lb_if}\"\n\n\
         [[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"10.0.0.254\"\nport = \"{lb_if}\"\n\n"
        )
        + &service("tcp", 80, "", &[("10.0.0.11", "dr"), ("10.0.0.12", "dr")]);
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&lb, &path, &config);

    let cap = Capture::start(&router, &r_if);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(curl(&client, &format!("http://{VIP}/"), &[], &mut rvsd));
    }
    let frames = cap.finish();
    let b1n = seen.iter().filter(|s| *s == "b1 10.1.0.2").count();
    let b2n = seen.iter().filter(|s| *s == "b2 10.1.0.2").count();
    assert_eq!((b1n, b2n), (2, 2), "{seen:?}");
    // Every frame from the VIP reached the router straight from a
    // backend's MAC, and every frame to the VIP went to rvs's MAC.
    let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
    let ipv4 = |f: &&Vec<u8>| f.len() >= 34 && f[12..14] == [8, 0];
    let from_vip: Vec<[u8; 6]> = frames
        .iter()
        .filter(ipv4)
        .filter(|f| f[26..30] == vip.octets())
        .map(|f| f[6..12].try_into().unwrap())
        .collect();
    assert!(
        from_vip.len() >= 4 * 2,
        "{} replies captured",
        from_vip.len()
    );
    for m in &from_vip {
        assert!(
            b_macs.contains(m),
            "a reply from the VIP came from {}, not a backend",
            mac_str(*m)
        );
    }
    let to_vip = frames
        .iter()
        .filter(ipv4)
        .filter(|f| f[30..34] == vip.octets());
    for f in to_vip {
        assert_eq!(f[0..6], mac(0x10, 2), "a frame to the VIP not sent to rvs");
    }
    let neigh = router.exec(&["ip", "neigh", "show", VIP], TIMEOUT).unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(neigh.contains(&mac_str(mac(0x10, 2))), "{neigh}");

    let c = rvsd.stop();
    assert!(c.get("forwarded") >= 4 * 4, "{}", c.log);
    assert!(c.get("arp_replies") >= 1, "{}", c.log);
    drop(servers);
}

/// What the decapsulator saw: outer packets (IP header onwards).
type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// Reads IPIP packets from a raw socket in `ns` and writes their inner
/// packets into `tun`, until `stop`.
fn decapsulator(
    ns: &Netns,
    tun: std::fs::File,
    stop: Arc<AtomicBool>,
    seen: Seen,
) -> thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = ns.spawn(move || {
        // SAFETY: plain socket(2), owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_IPIP) };
        assert!(
            fd >= 0,
            "raw IPIP socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        set_rcvtimeo(&fd, Duration::from_millis(50));
        tx.send(()).unwrap();
        let mut tun = tun;
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: recv into a buffer we own, of its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else { continue };
            let pkt = &buf[..n];
            if n < 40 || pkt[9] != 4 {
                continue;
            }
            seen.lock().unwrap().push(pkt.to_vec());
            let ihl = usize::from(pkt[0] & 0xf) * 4;
            let _ = tun.write_all(&pkt[ihl..]);
        }
    });
    rx.recv_timeout(TIMEOUT).expect("decapsulator ready");
    h
}

#[test]
fn tun_tcp() {
    let t = Topo::new(1, false);
    let b = &t.backends[0];
    let tun = Tun::new(b);
    b.ip(&["addr", "add", &format!("{VIP}/32"), "dev", &tun.name]);
    sysctl(b, "net/ipv4/conf/all/rp_filter", "0");
    sysctl(b, &format!("net/ipv4/conf/{}/rp_filter", tun.name), "0");
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let dec = decapsulator(b, tun.file.try_clone().unwrap(), stop.clone(), seen.clone());
    let server = HttpServer::start(b, "b1", any(80));
    let config = t.config_head("af_xdp")
        + &service(
            "tcp",
            80,
            &format!("laddrs = [\"{LADDR}\"]"),
            &[("10.0.1.2", "tun")],
        );
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &config);
    t.warm_up(&mut rvsd, false);

    let cap = Capture::start(b, &t.v[0].a.name);
    let mut seen_bodies = Vec::new();
    for _ in 0..3 {
        seen_bodies.push(curl(&t.client, &format!("http://{VIP}/"), &[], &mut rvsd));
    }
    let frames = cap.finish();
    stop.store(true, Ordering::Relaxed);
    dec.join().unwrap();
    // The backend's kernel answered, seeing the client's own address.
    assert_eq!(seen_bodies, vec!["b1 10.0.0.2"; 3]);
    assert_eq!(server.count(), 3);

    // The capture at the backend: IPIP from the local address to the
    // backend, around the client's packet to VIP:80, unchanged.
    let laddr: std::net::Ipv4Addr = LADDR.parse().unwrap();
    let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
    let ipip: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f.len() >= 14 + 40 && f[12..14] == [8, 0] && f[14 + 9] == 4)
        .collect();
    assert!(ipip.len() >= 3 * 4, "{} IPIP frames captured", ipip.len());
    for f in &ipip {
        let outer = &f[14..];
        assert_eq!(outer[0], 0x45, "outer version/IHL");
        assert_eq!(outer[12..16], laddr.octets(), "outer source");
        assert_eq!(outer[16..20], [10, 0, 1, 2], "outer destination");
        let inner = &outer[20..];
        assert_eq!(inner[0] >> 4, 4, "inner IPv4");
        assert_eq!(inner[9], 6, "inner TCP");
        assert_eq!(inner[12..16], [10, 0, 0, 2], "inner source: the client");
        assert_eq!(inner[16..20], vip.octets(), "inner destination: the VIP");
        let ihl = usize::from(inner[0] & 0xf) * 4;
        assert_eq!(inner[ihl + 2..ihl + 4], [0, 80], "inner port");
        assert_eq!(
            u16::from_be_bytes([outer[2], outer[3]]) as usize,
            20 + u16::from_be_bytes([inner[2], inner[3]]) as usize,
            "outer length"
        );
    }
    assert!(seen.lock().unwrap().len() >= ipip.len().min(3 * 4));

    let c = rvsd.stop();
    assert!(c.get("forwarded") >= 3 * 4, "{}", c.log);
}

#[test]
fn ping_and_arp() {
    let t = Topo::new(1, false);
    let config = t.config_head("af_xdp")
        + &service(
            "tcp",
            80,
            &format!("laddrs = [\"{LADDR}\"]"),
            &[("10.0.1.2", "fullnat")],
        );
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &config);
    let rvs_mac = mac_str(mac(0, 2));
    let dev = t.c.a.name.clone();
    for addr in [VIP, "10.0.0.1"] {
        let out = t
            .client
            .exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", addr], TIMEOUT)
            .unwrap();
        assert!(
            out.status.success(),
            "ping {addr}: {}\nrvsd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            rvsd.log()
        );
        let neigh = t
            .client
            .exec(&["ip", "neigh", "show", addr, "dev", &dev], TIMEOUT)
            .unwrap();
        let neigh = String::from_utf8_lossy(&neigh.stdout);
        assert!(neigh.contains(&rvs_mac), "ip neigh {addr}: {neigh}");
        let out = t
            .client
            .exec(&["arping", "-c", "2", "-w", "3", "-I", &dev, addr], TIMEOUT)
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(
            out.status.success() && text.contains(&rvs_mac),
            "arping {addr}: {text}\nrvsd log:\n{}",
            rvsd.log()
        );
    }
    // An address rvs does not own is not answered.
    let out = t
        .client
        .exec(
            &["arping", "-c", "1", "-w", "1", "-I", &dev, "10.0.0.77"],
            TIMEOUT,
        )
        .unwrap();
    assert!(!out.status.success(), "arping for nobody answered");

    let c = rvsd.stop();
    assert!(c.get("echo_replies") >= 4, "{}", c.log);
    assert!(c.get("arp_replies") >= 4, "{}", c.log);
}
