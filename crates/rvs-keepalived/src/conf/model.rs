//! The typed configuration: what a keepalived.conf means, after parsing.
//!
//! This is the contract between the parser ([`super::load`]) and the parts
//! that act on it (health checks, LVS sync, VRRP): they never see the
//! file's text. Defaults are keepalived's own (keepalived.conf(5)), filled
//! in by the parser, so a field here is always the value in force.
//! Every block keeps where it was written ([`Loc`]) for messages.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Where something was written: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Loc {
    /// The file (as opened, after `include` expansion).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Config {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// `virtual_server` blocks, in file order.
    pub virtual_servers: Vec<VirtualServer>,
    /// `virtual_server_group` blocks.
    pub vs_groups: Vec<VsGroup>,
    /// `local_address_group` blocks (DPVS).
    pub laddr_groups: Vec<LaddrGroup>,
    /// `vrrp_script` blocks.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `vrrp_sync_group` blocks.
    pub sync_groups: Vec<SyncGroup>,
}

/// `global_defs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    /// `router_id` (default: the host name).
    pub router_id: Option<String>,
    /// `vrrp_version` (default 2).
    pub vrrp_version: u8,
    /// `vrrp_garp_master_delay` (default 5 s): a second burst of gratuitous
    /// ARPs this long after becoming MASTER (0: none).
    pub garp_master_delay: Duration,
    /// `vrrp_garp_master_repeat` (default 5): gratuitous ARPs per burst.
    pub garp_master_repeat: u32,
    /// `vrrp_garp_master_refresh` (default 0: none): while MASTER,
    /// gratuitous ARPs again at this interval.
    pub garp_master_refresh: Option<Duration>,
    /// `vrrp_garp_master_refresh_repeat` (default 1): ARPs per refresh.
    pub garp_master_refresh_repeat: u32,
    /// `vrrp_startup_delay` (default 0).
    pub vrrp_startup_delay: Duration,
    /// `script_user` (`USER [GROUP]`) for scripts, if set.
    pub script_user: Option<String>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `vrrp_skip_check_adv_addr`.
    pub vrrp_skip_check_adv_addr: bool,
    /// `vrrp_strict`.
    pub vrrp_strict: bool,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            vrrp_version: 2,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: None,
            garp_master_refresh_repeat: 1,
            vrrp_startup_delay: Duration::ZERO,
            script_user: None,
            enable_script_security: false,
            vrrp_skip_check_adv_addr: false,
            vrrp_strict: false,
        }
    }
}

/// Transport protocol of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Protocol {
    /// `TCP` (the default).
    Tcp,
    /// `UDP`.
    Udp,
}

/// `lb_kind` / `lvs_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum LbKind {
    /// `NAT` (the default, as in keepalived).
    Nat,
    /// `DR`.
    Dr,
    /// `TUN`.
    Tun,
    /// `FNAT` / `FULLNAT` (DPVS).
    FullNat,
    /// `SNAT` (DPVS).
    Snat,
}

/// How a virtual server is identified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum VsAddr {
    /// `virtual_server IP PORT`.
    Addr {
        /// The VIP.
        ip: IpAddr,
        /// The port (0: all ports).
        port: u16,
    },
    /// `virtual_server fwmark N`.
    Fwmark {
        /// The mark.
        mark: u32,
        /// IPv6 (`virtual_server fwmark N` with `family inet6`, or
        /// `ip_family inet6`).
        v6: bool,
    },
    /// `virtual_server group NAME`: every entry of that
    /// `virtual_server_group`.
    Group(String),
}

/// One member of a `virtual_server_group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VsGroupEntry {
    /// `IP PORT`, or a range `IP-LAST PORT` expanded to every address.
    Addr {
        /// The VIP.
        ip: IpAddr,
        /// The port.
        port: u16,
    },
    /// `fwmark N`.
    Fwmark(u32),
}

/// `virtual_server_group NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VsGroup {
    /// The name.
    pub name: String,
    /// Members, ranges expanded.
    pub entries: Vec<VsGroupEntry>,
    /// Where.
    pub loc: Loc,
}

/// `local_address_group NAME { IP [dev]; IP-range [dev] }` (DPVS).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaddrGroup {
    /// The name.
    pub name: String,
    /// Addresses (ranges expanded) with the port named after each, if any.
    pub addrs: Vec<(IpAddr, Option<String>)>,
    /// Where.
    pub loc: Loc,
}

/// `virtual_server ... { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    /// What it is.
    pub addr: VsAddr,
    /// `delay_loop` (default 60 s): check interval for its checkers
    /// unless a checker sets its own.
    pub delay_loop: Duration,
    /// `lb_algo` / `lvs_sched` (default `wlc`), an ipvsadm scheduler name.
    pub scheduler: String,
    /// Scheduler flags: `flag-1/2/3`, `sh-port`, `sh-fallback`,
    /// `mh-port`, `mh-fallback` (ipvsadm `-b` names).
    pub sched_flags: Vec<String>,
    /// `lb_kind` / `lvs_method`.
    pub kind: LbKind,
    /// `persistence_timeout`.
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity` as a prefix length.
    pub persistence_granularity: Option<u8>,
    /// `protocol`.
    pub protocol: Protocol,
    /// `ops` (one-packet scheduling).
    pub ops: bool,
    /// `quorum` (default 1): the sum of the weights of live real servers
    /// below which the sorry server takes over.
    pub quorum: u32,
    /// `hysteresis` (default 0).
    pub hysteresis: u32,
    /// `quorum_up` script.
    pub quorum_up: Option<Script>,
    /// `quorum_down` script.
    pub quorum_down: Option<Script>,
    /// `alpha`: real servers start as down until their first check passes.
    pub alpha: bool,
    /// `omega`: run notify_down scripts (and quorum_down) on shutdown/removal.
    pub omega: bool,
    /// `inhibit_on_failure` at virtual-server level: the default for its
    /// real servers.
    pub inhibit_on_failure: bool,
    /// `sorry_server IP PORT`.
    pub sorry_server: Option<(IpAddr, u16)>,
    /// `sorry_server_inhibit`: keep the sorry server in the table with
    /// weight 0 while the quorum holds (instead of removing it).
    pub sorry_server_inhibit: bool,
    /// `sorry_server_lvs_method`.
    pub sorry_server_kind: Option<LbKind>,
    /// `laddr_group_name` / `local_address_group` (FNAT/SNAT).
    pub laddr_group: Option<String>,
    /// `virtualhost` (default Host header for HTTP_GET/SSL_GET).
    pub virtualhost: Option<String>,
    /// Real servers, in file order.
    pub real_servers: Vec<RealServer>,
    /// Where.
    pub loc: Loc,
}

/// `real_server IP PORT { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    /// Its address.
    pub ip: IpAddr,
    /// Its port.
    pub port: u16,
    /// `weight` (default 1, or the virtual server's `weight`).
    pub weight: u32,
    /// `lvs_method` at real-server level (else the virtual server's).
    pub kind: Option<LbKind>,
    /// `inhibit_on_failure`: on failure set weight 0 instead of removing
    /// (its own setting, else the virtual server's).
    pub inhibit_on_failure: bool,
    /// `uthreshold`.
    pub upper_threshold: u32,
    /// `lthreshold`.
    pub lower_threshold: u32,
    /// `notify_up` script.
    pub notify_up: Option<Script>,
    /// `notify_down` script.
    pub notify_down: Option<Script>,
    /// `delay_loop` at real-server level.
    pub delay_loop: Option<Duration>,
    /// Its checkers; a real server without any is always up.
    pub checkers: Vec<Checker>,
    /// Where.
    pub loc: Loc,
}

/// Settings every checker has (keepalived's "connection" options).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckCommon {
    /// `connect_ip` (default: the real server's address).
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` (default: the real server's port).
    pub connect_port: Option<u16>,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port.
    pub bind_port: Option<u16>,
    /// `connect_timeout` (default 5 s; inherited like `retry`).
    pub connect_timeout: Duration,
    /// `retry` / `nb_get_retry`: failures in a row, after the first,
    /// before the server is declared down (default 1; 0 for MISC_CHECK;
    /// "retry 0" means one failure is enough). Inherited from the real
    /// or virtual server's `retry` when the checker has none.
    pub retry: u32,
    /// `delay_before_retry` (default 3 s for HTTP_GET/SSL_GET, 1 s
    /// otherwise; inherited like `retry`).
    pub delay_before_retry: Duration,
    /// `warmup`: a random delay up to this before the first check
    /// (inherited like `retry`). None: keepalived's default, up to the
    /// check's delay_loop.
    pub warmup: Option<Duration>,
    /// `delay_loop` at checker level (else real server's, else virtual
    /// server's).
    pub delay_loop: Option<Duration>,
    /// Where.
    pub loc: Loc,
}

/// One `url { }` of HTTP_GET/SSL_GET.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    /// `path`.
    pub path: String,
    /// `digest`: MD5 of the body as 32 lowercase hex digits.
    pub digest: Option<String>,
    /// `status_code`: accepted codes (ranges expanded). Empty: 200–299.
    pub status_codes: Vec<u16>,
    /// `virtualhost` for this URL.
    pub virtualhost: Option<String>,
}

/// The kinds of check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CheckKind {
    /// `TCP_CHECK`: a connection is accepted.
    Tcp,
    /// `HTTP_GET` (tls false) or `SSL_GET` (tls true).
    Http {
        /// SSL_GET.
        tls: bool,
        /// The URLs: every one must pass.
        urls: Vec<Url>,
        /// `virtualhost` at checker level, else the real server's, else
        /// the virtual server's.
        virtualhost: Option<String>,
    },
    /// `UDP_CHECK`: a datagram is sent; no ICMP error (and, with
    /// `require_reply`, a reply) means up.
    Udp {
        /// `payload` bytes (hex in the file).
        payload: Vec<u8>,
        /// `require_reply`: the hex reply expected, or any reply if empty.
        require_reply: Option<Vec<u8>>,
    },
    /// `MISC_CHECK`: a script; exit 0 is up.
    Misc {
        /// `misc_path`: the command line.
        path: String,
        /// `misc_timeout` (default: delay_loop).
        timeout: Option<Duration>,
        /// `misc_dynamic`: exit 2..=255 sets weight to code − 2.
        dynamic: bool,
        /// `user`.
        user: Option<String>,
    },
    /// `PING_CHECK`: an ICMP echo is answered.
    Ping,
}

/// A checker on a real server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    /// What it checks.
    pub kind: CheckKind,
    /// Its connection settings.
    pub common: CheckCommon,
}

/// `authentication { auth_type ...; auth_pass ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Auth {
    /// None (the default).
    None,
    /// `auth_type PASS`: up to 8 bytes, VRRPv2 only.
    Pass(Vec<u8>),
    /// `auth_type AH`: parsed, refused for use (warned).
    Ah(Vec<u8>),
}

/// The state an instance starts in (`state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InitialState {
    /// `MASTER`: keepalived treats it as a hint; priority decides.
    Master,
    /// `BACKUP` (default).
    Backup,
}

/// A virtual address (`virtual_ipaddress { ... }` line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualIp {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length (default /32 or /128).
    pub prefix_len: u8,
    /// `dev NAME` (default: the instance's interface).
    pub dev: Option<String>,
}

/// A tracked script in `track_script { NAME [weight N] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackScript {
    /// The `vrrp_script` name.
    pub name: String,
    /// Overrides the script's weight.
    pub weight: Option<i32>,
}

/// A tracked interface in `track_interface { NAME [weight N] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    /// The interface.
    pub name: String,
    /// 0: down means FAULT; else added to the priority while down
    /// (negative) or up (positive).
    pub weight: i32,
}

/// `vrrp_script NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    /// The name.
    pub name: String,
    /// `script`: the command line.
    pub script: String,
    /// `interval` (default 1 s).
    pub interval: Duration,
    /// `timeout` (default: interval).
    pub timeout: Option<Duration>,
    /// `weight` (default 0: failure means FAULT).
    pub weight: i32,
    /// `rise` (default 1).
    pub rise: u32,
    /// `fall` (default 1).
    pub fall: u32,
    /// `user`.
    pub user: Option<String>,
    /// Where.
    pub loc: Loc,
}

/// A notify-type script (`notify_master`, `notify_up`, `quorum_up`, ...):
/// `KEYWORD "COMMAND LINE" [USER [GROUP]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    /// The command line, run under `/bin/sh -c`.
    pub cmd: String,
    /// `USER [GROUP]` to run it as, written like a `vrrp_script`'s
    /// `user`; None: the default script user (`script_user`, ...).
    pub user: Option<String>,
}

/// `vrrp_instance NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    /// The name.
    pub name: String,
    /// `state`.
    pub initial_state: InitialState,
    /// `interface`: the kernel interface VRRP is sent and received on
    /// (rvsd's TAP for the port, or the port's name: see the VRRP docs).
    pub interface: String,
    /// `virtual_router_id`, 1..=255.
    pub vrid: u8,
    /// `priority`, 1..=255 (default 100).
    pub priority: u8,
    /// `advert_int` (default 1 s; v3 allows centiseconds).
    pub advert_int: Duration,
    /// `version` (else global `vrrp_version`).
    pub version: u8,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay` (default 0).
    pub preempt_delay: Duration,
    /// `authentication`.
    pub auth: Auth,
    /// `virtual_ipaddress`.
    pub vips: Vec<VirtualIp>,
    /// `virtual_ipaddress_excluded` (not in adverts).
    pub vips_excluded: Vec<VirtualIp>,
    /// `unicast_src_ip` / `mcast_src_ip`.
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer { ... }`: empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// `track_interface`.
    pub track_interfaces: Vec<TrackInterface>,
    /// `track_script`.
    pub track_scripts: Vec<TrackScript>,
    /// `notify_master`.
    pub notify_master: Option<Script>,
    /// `notify_backup`.
    pub notify_backup: Option<Script>,
    /// `notify_fault`.
    pub notify_fault: Option<Script>,
    /// `notify_stop`.
    pub notify_stop: Option<Script>,
    /// `notify`: called with `INSTANCE name STATE priority`.
    pub notify: Option<Script>,
    /// `garp_master_delay` (else global).
    pub garp_master_delay: Option<Duration>,
    /// `garp_master_repeat` (else global).
    pub garp_master_repeat: Option<u32>,
    /// `garp_master_refresh` (else global; zero: none).
    pub garp_master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat` (else global).
    pub garp_master_refresh_repeat: Option<u32>,
    /// Where.
    pub loc: Loc,
}

/// `vrrp_sync_group NAME { group { ... } ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    /// The name.
    pub name: String,
    /// Member instance names.
    pub members: Vec<String>,
    /// `notify_master`.
    pub notify_master: Option<Script>,
    /// `notify_backup`.
    pub notify_backup: Option<Script>,
    /// `notify_fault`.
    pub notify_fault: Option<Script>,
    /// `notify`.
    pub notify: Option<Script>,
    /// Where.
    pub loc: Loc,
}

/// A warning: something in the file that is accepted but not acted on
/// (an unknown or unsupported keyword), with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Where.
    pub loc: Loc,
    /// What.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: warning: {}", self.loc, self.message)
    }
}

/// A refusal: the file cannot be used; nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfError {
    /// Where.
    pub loc: Loc,
    /// What.
    pub message: String,
}

impl std::fmt::Display for ConfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

impl std::error::Error for ConfError {}

impl VirtualServer {
    /// A virtual server with keepalived's defaults and no real servers.
    pub fn new(addr: VsAddr, loc: Loc) -> VirtualServer {
        VirtualServer {
            addr,
            delay_loop: Duration::from_secs(60),
            scheduler: "wlc".into(),
            sched_flags: Vec::new(),
            kind: LbKind::Nat,
            persistence_timeout: None,
            persistence_granularity: None,
            protocol: Protocol::Tcp,
            ops: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            alpha: false,
            omega: false,
            inhibit_on_failure: false,
            sorry_server: None,
            sorry_server_inhibit: false,
            sorry_server_kind: None,
            laddr_group: None,
            virtualhost: None,
            real_servers: Vec::new(),
            loc,
        }
    }
}

impl RealServer {
    /// `real_server IP PORT` with keepalived's defaults (weight 1, the
    /// virtual server's method, no thresholds, scripts or checkers).
    pub fn new(ip: IpAddr, port: u16, loc: Loc) -> RealServer {
        RealServer {
            ip,
            port,
            weight: 1,
            kind: None,
            inhibit_on_failure: false,
            upper_threshold: 0,
            lower_threshold: 0,
            notify_up: None,
            notify_down: None,
            delay_loop: None,
            checkers: Vec::new(),
            loc,
        }
    }

    /// The kind in force: its own, else the virtual server's.
    pub fn kind_in(&self, vs: &VirtualServer) -> LbKind {
        self.kind.unwrap_or(vs.kind)
    }
}

impl VrrpInstance {
    /// Whether the instance is IPv6 (its adverts, its peers): its first
    /// virtual address's family, else its source's, else its first
    /// peer's; IPv4 when none is given.
    pub fn is_v6(&self) -> bool {
        self.vips
            .first()
            .map(|a| a.addr)
            .or(self.src_ip)
            .or(self.unicast_peers.first().copied())
            .is_some_and(|a| a.is_ipv6())
    }
}

impl CheckCommon {
    /// A checker's connection settings with keepalived's defaults for
    /// most kinds (HTTP_GET/SSL_GET wait 3 s before a retry, MISC_CHECK
    /// has no retry: their readers adjust).
    pub fn new(loc: Loc) -> CheckCommon {
        CheckCommon {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            connect_timeout: Duration::from_secs(5),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            warmup: None,
            delay_loop: None,
            loc,
        }
    }
}

impl Checker {
    /// The check interval in force for this checker.
    pub fn delay_loop(&self, rs: &RealServer, vs: &VirtualServer) -> Duration {
        self.common
            .delay_loop
            .or(rs.delay_loop)
            .unwrap_or(vs.delay_loop)
    }
}
