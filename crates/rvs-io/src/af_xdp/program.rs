//! The XDP program (`bpf/redirect.c`, compiled by `build.rs`): loaded and
//! attached with aya, one per interface, shared by the sockets of all its
//! queues through its XSKMAP.
//!
//! Attachment goes through a bpf_link where the kernel has them (it does
//! here), so a run that dies for any reason loses its program with its last
//! file descriptor. A program can still outlive its run: attached through
//! netlink (older kernels, or by hand with `ip link set ... xdp`), or a
//! link another process still holds. So [`XdpProgram::attach`] first looks
//! at what the interface runs: an rvs program (recognised by its name) is
//! detached, anything else is an error, since it belongs to someone else.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;

use aya::Ebpf;
use aya::maps::{MapData, XskMap};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{Xdp, XdpMode};

use super::netlink;
use super::socket::XskSocket;

/// The compiled XDP program (an ELF object for the BPF target).
pub static PROGRAM_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/redirect.bpf.o"));

/// The program's name in the kernel: how a stale rvs program is recognised.
/// Must match the function name in `bpf/redirect.c`.
pub const PROGRAM_NAME: &str = "rvs_xsk_redir";

const MAP_NAME: &str = "rvs_xsks";

/// Where the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Native (driver) mode where the driver has it, generic otherwise.
    #[default]
    Auto,
    /// Native (driver) mode or fail.
    Native,
    /// Generic (SKB) mode: works on every device, copies every frame.
    Generic,
}

/// The mode a program was attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    /// In the driver.
    Native,
    /// In the generic (SKB) path.
    Generic,
}

/// The XDP redirect program attached to one interface. Detached on drop.
pub struct XdpProgram {
    ebpf: Ebpf,
    xsks: XskMap<MapData>,
    link: Option<XdpLinkId>,
    ifindex: u32,
    mode: AttachedMode,
    cleaned: usize,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .field("attached", &self.link.is_some())
            .finish_non_exhaustive()
    }
}

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(err(format!("interface {name}"), io::Error::last_os_error()));
    }
    Ok(idx)
}

/// Detaches every rvs XDP program from `ifindex` (a leftover of an earlier
/// run); returns how many. Fails if a program that is not rvs's is
/// attached.
pub fn clean_stale(ifindex: u32) -> io::Result<usize> {
    let mut cleaned = 0;
    // What this namespace's interface runs (netlink answers in the caller's
    // namespace; bpf_link ifindexes alone would match interfaces of other
    // namespaces too, so links are matched by program id as well).
    for a in netlink::attached(ifindex).map_err(|e| err("query XDP programs", e))? {
        let name = netlink::program_name(a.prog_id).unwrap_or_default();
        if name != PROGRAM_NAME {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "interface index {ifindex} runs another XDP program (id {}, name {name:?}); \
                     rvs will not replace it",
                    a.prog_id
                ),
            ));
        }
        let links: Vec<_> = netlink::xdp_links(ifindex)
            .map_err(|e| err("list XDP links", e))?
            .into_iter()
            .filter(|l| l.prog_id == a.prog_id)
            .collect();
        if links.is_empty() {
            netlink::detach_netlink(ifindex, a.mode_flags)
                .map_err(|e| err(format!("detach stale rvs XDP program {}", a.prog_id), e))?;
        }
        for link in links {
            netlink::detach_link(link.link_id)
                .map_err(|e| err(format!("detach stale rvs XDP link {}", link.link_id), e))?;
        }
        cleaned += 1;
    }
    Ok(cleaned)
}

impl XdpProgram {
    /// Loads the program and attaches it to interface `name` (in the calling
    /// thread's network namespace), after removing any rvs program an
    /// earlier run left there.
    pub fn attach(name: &str, mode: AttachMode) -> io::Result<Self> {
        let ifindex = ifindex(name)?;
        let cleaned = clean_stale(ifindex)?;
        let mut ebpf = Ebpf::load(PROGRAM_OBJECT).map_err(|e| err("load the XDP object", e))?;
        let map = ebpf
            .take_map(MAP_NAME)
            .ok_or_else(|| io::Error::other("the XDP object has no XSKMAP"))?;
        let xsks = XskMap::try_from(map).map_err(|e| err("XSKMAP", e))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| io::Error::other("the XDP object has no program"))?
            .try_into()
            .map_err(|e| err("XDP program", e))?;
        prog.load().map_err(|e| err("load the XDP program", e))?;
        let attach = |prog: &mut Xdp, m: XdpMode| {
            prog.attach_to_if_index(ifindex, m)
                .map_err(|e| err(format!("attach XDP ({m:?} mode) to {name}"), e))
        };
        let (link, mode) = match mode {
            AttachMode::Native => (attach(prog, XdpMode::Driver)?, AttachedMode::Native),
            AttachMode::Generic => (attach(prog, XdpMode::Skb)?, AttachedMode::Generic),
            AttachMode::Auto => match attach(prog, XdpMode::Driver) {
                Ok(l) => (l, AttachedMode::Native),
                Err(_) => (attach(prog, XdpMode::Skb)?, AttachedMode::Generic),
            },
        };
        Ok(XdpProgram {
            ebpf,
            xsks,
            link: Some(link),
            ifindex,
            mode,
            cleaned,
        })
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode the program runs in.
    pub fn mode(&self) -> AttachedMode {
        self.mode
    }

    /// How many stale rvs programs [`attach`](Self::attach) removed first.
    pub fn stale_cleaned(&self) -> usize {
        self.cleaned
    }

    /// Sends frames arriving on `socket`'s queue to `socket`. The kernel
    /// drops the entry itself when the socket closes.
    pub fn register(&mut self, socket: &XskSocket) -> io::Result<()> {
        self.xsks
            .set(socket.queue(), socket.as_raw_fd(), 0)
            .map_err(|e| err(format!("XSKMAP entry for queue {}", socket.queue()), e))
    }

    /// Stops redirecting queue `queue` (its frames go to the kernel).
    pub fn unregister(&mut self, queue: u32) -> io::Result<()> {
        self.xsks
            .unset(queue)
            .map_err(|e| err(format!("XSKMAP entry for queue {queue}"), e))
    }

    /// Detaches the program now (drop does the same, ignoring errors).
    pub fn detach(mut self) -> io::Result<()> {
        self.detach_inner()
    }

    fn detach_inner(&mut self) -> io::Result<()> {
        let Some(link) = self.link.take() else {
            return Ok(());
        };
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| io::Error::other("the XDP object has no program"))?
            .try_into()
            .map_err(|e| err("XDP program", e))?;
        prog.detach(link).map_err(|e| err("detach XDP", e))
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        let _ = self.detach_inner();
    }
}
