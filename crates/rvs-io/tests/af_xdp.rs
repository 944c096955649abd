//! AF_XDP end to end, with real traffic between two network namespaces:
//!
//! ```text
//!  ns "peer" (kernel)            ns "xdp" (rvs)
//!  va 10.77.x.1/24  <== veth ==>  vb  XDP program + AF_XDP socket, queue 0
//! ```
//!
//! UDP datagrams the peer's kernel sends arrive through `rx_burst` byte for
//! byte; frames built and sent with `tx_burst` reach a UDP socket in the
//! peer; the program is gone after drop, and a stale one is cleaned at the
//! next start. Needs root (network namespaces, BPF).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rvs_io::af_xdp::{
    AttachMode, AttachedMode, PROGRAM_OBJECT, XdpProgram, XskConfig, XskSocket, ZeroCopy,
    clean_stale, ifindex,
};
use rvs_io::{Frame, PacketIo, frame_bytes};

const WAIT: Duration = Duration::from_secs(5);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair; deleted on drop (the veth goes
/// with them).
struct Net {
    peer_ns: String,
    xdp_ns: String,
    va: String,
    vb: String,
    subnet: u8,
    va_mac: [u8; 6],
    vb_mac: [u8; 6],
}

impl Net {
    fn new() -> Net {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{n}", pid % 100_000);
        let net = Net {
            peer_ns: format!("rvsxp-{pid}-{n}"),
            xdp_ns: format!("rvsxx-{pid}-{n}"),
            va: format!("xa{tag}"),
            vb: format!("xb{tag}"),
            subnet: 10 + (n % 200) as u8,
            va_mac: [0x02, 0x52, 0x56, 0, 0, n as u8],
            vb_mac: [0x02, 0x52, 0x56, 0, 1, n as u8],
        };
        ip(&["netns", "add", &net.peer_ns]);
        ip(&["netns", "add", &net.xdp_ns]);
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        ip(&[
            "link",
            "add",
            &net.va,
            "address",
            &mac(net.va_mac),
            "netns",
            &net.peer_ns,
            "type",
            "veth",
            "peer",
            "name",
            &net.vb,
            "address",
            &mac(net.vb_mac),
            "netns",
            &net.xdp_ns,
        ]);
        let p = &net.peer_ns;
        ip(&[
            "-n",
            p,
            "addr",
            "add",
            &format!("{}/24", net.peer_ip()),
            "dev",
            &net.va,
        ]);
        ip(&["-n", p, "link", "set", &net.va, "up"]);
        ip(&["-n", p, "link", "set", "lo", "up"]);
        // Nobody answers ARP on the AF_XDP side: a static neighbour.
        ip(&[
            "-n",
            p,
            "neigh",
            "add",
            &net.xdp_ip().to_string(),
            "lladdr",
            &mac(net.vb_mac),
            "dev",
            &net.va,
        ]);
        ip(&["-n", &net.xdp_ns, "link", "set", &net.vb, "up"]);
        net
    }

    fn peer_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 1)
    }

    fn xdp_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 2)
    }

    /// `ip link show` of the AF_XDP end.
    fn vb_link(&self) -> String {
        ip(&["-n", &self.xdp_ns, "link", "show", "dev", &self.vb])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.peer_ns, &self.xdp_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

fn open_socket(vb: &str) -> XskSocket {
    let cfg = XskConfig {
        frame_count: 256,
        ring_size: 128,
        ..XskConfig::default()
    };
    XskSocket::open(ifindex(vb).expect("ifindex"), &cfg).expect("open AF_XDP socket")
}

/// Polls `rx_burst` until a UDP frame to `port` arrives (other frames are
/// freed), or `WAIT` passes.
fn receive_udp(sock: &mut XskSocket, port: u16) -> Option<Vec<u8>> {
    let deadline = Instant::now() + WAIT;
    let mut frames = [Frame::default(); 32];
    while Instant::now() < deadline {
        let n = sock.rx_burst(&mut frames).expect("rx_burst");
        let mut found = None;
        for f in &frames[..n] {
            let bytes = frame_bytes(sock, f).to_vec();
            let is_ours = bytes.len() >= 42
                && bytes[12..14] == [0x08, 0x00]
                && bytes[23] == 17
                && bytes[36..38] == port.to_be_bytes();
            if is_ours && found.is_none() {
                found = Some(bytes);
            }
            sock.free(*f);
        }
        if found.is_some() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Sends a datagram from the peer namespace every 100 ms until stopped or
/// `WAIT` passes.
struct Spray {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Spray {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn spray(net: &Net, port: u16, payload: &'static [u8]) -> Spray {
    let (ns, src, dst) = (net.peer_ns.clone(), net.peer_ip(), net.xdp_ip());
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        in_ns(&ns, move || {
            let s = UdpSocket::bind(SocketAddrV4::new(src, 40000)).expect("bind peer");
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline && !flag.load(Ordering::Relaxed) {
                let _ = s.send_to(payload, SocketAddrV4::new(dst, port));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    });
    Spray {
        stop,
        thread: Some(thread),
    }
}

fn check_received(net: &Net, got: &[u8], port: u16, payload: &[u8]) {
    assert_eq!(got.len(), 14 + 20 + 8 + payload.len(), "frame length");
    assert_eq!(got[0..6], net.vb_mac, "destination MAC");
    assert_eq!(got[6..12], net.va_mac, "source MAC");
    assert_eq!(got[12..14], [0x08, 0x00], "ethertype");
    assert_eq!(got[14], 0x45, "IPv4, no options");
    assert_eq!(got[26..30], net.peer_ip().octets(), "source IP");
    assert_eq!(got[30..34], net.xdp_ip().octets(), "destination IP");
    assert_eq!(got[34..36], 40000u16.to_be_bytes(), "source port");
    assert_eq!(got[36..38], port.to_be_bytes(), "destination port");
    assert_eq!(&got[42..], payload, "payload");
}

/// Builds an Ethernet/IPv4/UDP frame from the AF_XDP side to the peer.
fn udp_frame(net: &Net, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&net.va_mac);
    f.extend_from_slice(&net.vb_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&total.to_be_bytes());
    iph[8] = 64;
    iph[9] = 17;
    iph[12..16].copy_from_slice(&net.xdp_ip().octets());
    iph[16..20].copy_from_slice(&net.peer_ip().octets());
    let mut sum: u32 = iph
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    iph[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    f.extend_from_slice(payload);
    f
}

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (network namespaces, BPF)");
            return;
        }
    };
}

#[test]
fn generic_mode_receives_and_transmits_real_udp() {
    need_root!();
    let net = Net::new();
    let vb = net.vb.clone();
    let peer_ns = net.peer_ns.clone();
    let (peer_ip, xdp_ip) = (net.peer_ip(), net.xdp_ip());
    let frame = udp_frame(&net, 5555, 7777, b"from AF_XDP tx_burst");

    // The receiver in the peer namespace, bound before anything is sent.
    let receiver = std::thread::spawn(move || {
        in_ns(&peer_ns, move || {
            let s = UdpSocket::bind(SocketAddrV4::new(peer_ip, 7777)).expect("bind receiver");
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = [0u8; 256];
            let (n, from) = s
                .recv_from(&mut buf)
                .expect("datagram from tx_burst within 5 s");
            (buf[..n].to_vec(), from)
        })
    });
    let sprayer = spray(&net, 9999, b"hello AF_XDP");

    let (got, stats, free_before, free_after, link_attached) = in_ns(&net.xdp_ns.clone(), {
        let vb = vb.clone();
        move || {
            let mut prog = XdpProgram::attach(&vb, AttachMode::Generic).expect("attach");
            assert_eq!(prog.mode(), AttachedMode::Generic);
            let mut sock = open_socket(&vb);
            assert!(!sock.is_zero_copy(), "veth has no zero-copy");
            prog.register(&sock).expect("register");
            let link = ip(&["link", "show", "dev", &vb]);
            let got = receive_udp(&mut sock, 9999).expect("UDP frame via rx_burst within 5 s");

            let free_before = sock.free_frames();
            let mut f = sock.alloc().expect("alloc");
            let start = usize::from(f.start);
            sock.buffer(&f)[start..start + frame.len()].copy_from_slice(&frame);
            f.len = frame.len() as u16;
            assert_eq!(sock.tx_burst(&[f]).expect("tx_burst"), 1);
            // The frame comes back through the completion ring.
            let deadline = Instant::now() + WAIT;
            while sock.free_frames() < free_before && Instant::now() < deadline {
                let _ = sock.tx_burst(&[]);
                std::thread::sleep(Duration::from_millis(5));
            }
            (got, sock.stats(), free_before, sock.free_frames(), link)
        }
    });
    check_received(&net, &got, 9999, b"hello AF_XDP");
    assert!(link_attached.contains("xdpgeneric"), "{link_attached}");
    let (payload, from) = receiver.join().unwrap();
    assert_eq!(payload, b"from AF_XDP tx_burst");
    assert_eq!(from, SocketAddrV4::new(xdp_ip, 5555).into());
    assert_eq!(stats.tx_frames, 1);
    assert!(stats.rx_frames >= 1 && stats.rx_bursts >= 1);
    assert_eq!(free_after, free_before, "transmitted frame not reclaimed");
    drop(sprayer);
    // Dropped with the thread: no XDP program may remain.
    let link = net.vb_link();
    assert!(!link.contains("xdp"), "program left after drop: {link}");
}

#[test]
fn native_mode_delivers_when_the_peer_runs_xdp() {
    need_root!();
    let net = Net::new();
    // veth native XDP on vb sees frames from va only when va is set up for
    // XDP too: an rvs program with no socket on va passes everything.
    let va = net.va.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let peer_ns = net.peer_ns.clone();
    let peer_prog = std::thread::spawn(move || {
        in_ns(&peer_ns, move || {
            let prog = XdpProgram::attach(&va, AttachMode::Native).expect("attach on peer");
            ready_tx.send(prog.mode()).unwrap();
            let _ = rx.recv_timeout(Duration::from_secs(30));
            drop(prog);
        })
    });
    assert_eq!(ready_rx.recv_timeout(WAIT).unwrap(), AttachedMode::Native);
    let sprayer = spray(&net, 9998, b"native");
    let vb = net.vb.clone();
    let (mode, got, link) = in_ns(&net.xdp_ns.clone(), move || {
        let mut prog = XdpProgram::attach(&vb, AttachMode::Auto).expect("attach");
        let mut sock = open_socket(&vb);
        prog.register(&sock).expect("register");
        let link = ip(&["link", "show", "dev", &vb]);
        (prog.mode(), receive_udp(&mut sock, 9998), link)
    });
    tx.send(()).unwrap();
    peer_prog.join().unwrap();
    drop(sprayer);
    assert_eq!(mode, AttachedMode::Native, "veth has native XDP");
    assert!(link.contains("xdp ") || link.contains("prog/xdp"), "{link}");
    check_received(
        &net,
        &got.expect("UDP frame in native mode"),
        9998,
        b"native",
    );
    assert!(!net.vb_link().contains("xdp"));
}

#[test]
fn stale_programs_are_cleaned_at_start() {
    need_root!();
    let net = Net::new();
    let vb = net.vb.clone();
    let obj = std::env::temp_dir().join(format!("rvs-xdp-{}.o", std::process::id()));
    std::fs::write(&obj, PROGRAM_OBJECT).unwrap();
    let obj_path = obj.to_string_lossy().into_owned();
    let xdp_ns = net.xdp_ns.clone();
    let result = in_ns(&xdp_ns, move || {
        // 1. A run that leaked its program (its link is still held).
        let leaked = XdpProgram::attach(&vb, AttachMode::Generic).expect("attach");
        std::mem::forget(leaked);
        let after_leak = ip(&["link", "show", "dev", &vb]);
        let prog = XdpProgram::attach(&vb, AttachMode::Generic).expect("attach over stale");
        let cleaned_link = prog.stale_cleaned();
        drop(prog);
        let after_drop = ip(&["link", "show", "dev", &vb]);

        // 2. A program attached through netlink (no link: it survives its
        //    process), as `ip` or an older kernel leaves it.
        ip(&[
            "link",
            "set",
            "dev",
            &vb,
            "xdpgeneric",
            "obj",
            &obj_path,
            "sec",
            "xdp",
        ]);
        let after_ip = ip(&["link", "show", "dev", &vb]);
        let cleaned_nl = clean_stale(ifindex(&vb).unwrap()).expect("clean");
        let after_clean = ip(&["link", "show", "dev", &vb]);
        (
            after_leak,
            cleaned_link,
            after_drop,
            after_ip,
            cleaned_nl,
            after_clean,
        )
    });
    let _ = std::fs::remove_file(&obj);
    let (after_leak, cleaned_link, after_drop, after_ip, cleaned_nl, after_clean) = result;
    assert!(after_leak.contains("xdpgeneric"), "{after_leak}");
    assert_eq!(cleaned_link, 1, "the leaked link was not detached");
    assert!(!after_drop.contains("xdp"), "{after_drop}");
    assert!(after_ip.contains("xdpgeneric"), "{after_ip}");
    assert_eq!(cleaned_nl, 1);
    assert!(!after_clean.contains("xdp"), "{after_clean}");
}

#[test]
fn a_second_start_takes_over_and_a_foreign_program_is_left_alone() {
    need_root!();
    let net = Net::new();
    let vb = net.vb.clone();
    // Another application's program: ours under another name (same length,
    // so the ELF stays valid), attached with `ip`.
    let obj = std::env::temp_dir().join(format!("rvs-xdp-foreign-{}.o", std::process::id()));
    std::fs::write(
        &obj,
        replace_all(PROGRAM_OBJECT, b"rvs_xsk_redir", b"foreign_redir"),
    )
    .unwrap();
    let obj_path = obj.to_string_lossy().into_owned();
    let (cleaned, err, still_there) = in_ns(&net.xdp_ns.clone(), move || {
        // Our own program, still live, is replaced by a second start.
        let first = XdpProgram::attach(&vb, AttachMode::Generic).expect("attach");
        let second = XdpProgram::attach(&vb, AttachMode::Generic).expect("second attach");
        let cleaned = second.stale_cleaned();
        drop(second);
        drop(first);
        ip(&[
            "link",
            "set",
            "dev",
            &vb,
            "xdpgeneric",
            "obj",
            &obj_path,
            "sec",
            "xdp",
        ]);
        let err = XdpProgram::attach(&vb, AttachMode::Generic).map(|_| ());
        let still_there = ip(&["link", "show", "dev", &vb]);
        ip(&["link", "set", "dev", &vb, "xdpgeneric", "off"]);
        (cleaned, err, still_there)
    });
    let _ = std::fs::remove_file(&obj);
    assert_eq!(cleaned, 1);
    let err = err.expect_err("a foreign program was replaced");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("foreign_redir"), "{err}");
    assert!(still_there.contains("xdpgeneric"), "{still_there}");
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = hay.to_vec();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            n += 1;
        }
        i += 1;
    }
    assert!(n > 0, "program name not in the object");
    out
}

#[test]
fn zero_copy_required_fails_on_veth_and_bad_configs_are_refused() {
    need_root!();
    let net = Net::new();
    let vb = net.vb.clone();
    let (zc, bad_ring, bad_frame) = in_ns(&net.xdp_ns.clone(), move || {
        let _prog = XdpProgram::attach(&vb, AttachMode::Generic).expect("attach");
        let idx = ifindex(&vb).unwrap();
        let zc = XskSocket::open(
            idx,
            &XskConfig {
                zero_copy: ZeroCopy::Require,
                ..XskConfig::default()
            },
        )
        .map(|_| ());
        let bad_ring = XskSocket::open(
            idx,
            &XskConfig {
                ring_size: 100,
                ..XskConfig::default()
            },
        )
        .map(|_| ());
        let bad_frame = XskSocket::open(
            idx,
            &XskConfig {
                frame_size: 3000,
                ..XskConfig::default()
            },
        )
        .map(|_| ());
        (zc, bad_ring, bad_frame)
    });
    assert!(zc.is_err(), "veth cannot do zero-copy");
    assert!(bad_ring.unwrap_err().to_string().contains("power of two"));
    assert!(bad_frame.unwrap_err().to_string().contains("2048 or 4096"));
}

#[test]
fn receive_recycles_frames_through_the_fill_ring() {
    need_root!();
    let net = Net::new();
    let (ns, src, dst) = (net.peer_ns.clone(), net.peer_ip(), net.xdp_ip());
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    // 600 datagrams: more than the socket's 256 UMEM frames, so receiving
    // them all needs freed frames to go back to the fill ring.
    let sender = std::thread::spawn(move || {
        in_ns(&ns, move || {
            go_rx.recv_timeout(WAIT).expect("receiver ready");
            let s = UdpSocket::bind(SocketAddrV4::new(src, 40000)).expect("bind peer");
            for i in 0..600u32 {
                let _ = s.send_to(&i.to_be_bytes(), SocketAddrV4::new(dst, 9997));
                if i % 16 == 15 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    });
    let vb = net.vb.clone();
    let (count, free_end, stats) = in_ns(&net.xdp_ns.clone(), move || {
        let mut prog = XdpProgram::attach(&vb, AttachMode::Generic).expect("attach");
        let mut sock = open_socket(&vb);
        prog.register(&sock).expect("register");
        let free_start = sock.free_frames();
        go_tx.send(()).unwrap();
        let mut frames = [Frame::default(); 64];
        let mut count = 0;
        let deadline = Instant::now() + WAIT;
        while count < 600 && Instant::now() < deadline {
            let n = sock.rx_burst(&mut frames).expect("rx_burst");
            for f in &frames[..n] {
                let b = frame_bytes(&mut sock, f);
                if b.len() >= 42 && b[36..38] == 9997u16.to_be_bytes() {
                    count += 1;
                }
                sock.free(*f);
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // No frame leaked: the fill ring is full again and the rest free.
        let _ = sock.rx_burst(&mut frames);
        (count, (free_start, sock.free_frames()), sock.stats())
    });
    sender.join().unwrap();
    assert!(count >= 550, "received only {count} of 600 datagrams");
    assert!(stats.rx_frames >= count as u64);
    assert_eq!(free_end.0, free_end.1, "frames leaked");
}
