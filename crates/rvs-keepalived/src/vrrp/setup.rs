//! One instance's configuration with everything it refers to resolved:
//! the version in force, its `track_script`s with their weights, the
//! gratuitous ARP settings (instance, else global). Built from the
//! whole [`Config`] so an instance task never looks outside its own
//! [`Setup`], and compared on reload to decide what changes.

use std::net::IpAddr;
use std::time::Duration;

use crate::conf::model::{Config, VrrpInstance, VrrpScript};

use super::packet::Version;

/// An instance, resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Setup {
    /// The instance as configured.
    pub inst: VrrpInstance,
    /// Version in force.
    pub version: Version,
    /// Tracked scripts with the weight in force.
    pub scripts: Vec<(VrrpScript, i32)>,
    /// Gratuitous ARPs per burst.
    pub garp_repeat: u32,
    /// Delay of the second burst (zero: none).
    pub garp_delay: Duration,
    /// While MASTER, announce again this often (`garp_master_refresh`).
    pub garp_refresh: Option<Duration>,
    /// Gratuitous ARPs per refresh.
    pub garp_refresh_repeat: u32,
    /// `vrrp_startup_delay`.
    pub startup_delay: Duration,
    /// `vrrp_skip_check_adv_addr`.
    pub skip_check_adv_addr: bool,
}

/// What cannot change under a running instance (its socket and
/// identity on the wire): a change restarts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    interface: String,
    vrid: u8,
    version: Version,
    v6: bool,
    src: Option<IpAddr>,
    unicast: bool,
}

impl Setup {
    /// Every instance of `cfg`; a `track_script` naming no `vrrp_script`
    /// is left out with a warning (keepalived does the same).
    pub(crate) fn all(cfg: &Config) -> Vec<Setup> {
        cfg.vrrp_instances
            .iter()
            .map(|inst| Setup::of(cfg, inst))
            .collect()
    }

    fn of(cfg: &Config, inst: &VrrpInstance) -> Setup {
        let g = &cfg.global;
        let mut version = Version::from_number(inst.version)
            .or_else(|| Version::from_number(g.vrrp_version))
            .unwrap_or(Version::V2);
        let s = Setup {
            inst: inst.clone(),
            version,
            scripts: Vec::new(),
            garp_repeat: 0,
            garp_delay: Duration::ZERO,
            garp_refresh: None,
            garp_refresh_repeat: 1,
            startup_delay: g.vrrp_startup_delay,
            skip_check_adv_addr: g.vrrp_skip_check_adv_addr,
        };
        if s.v6() && version == Version::V2 {
            tracing::warn!(
                "{}: vrrp_instance {}: IPv6 needs VRRP version 3; using version 3",
                inst.loc,
                inst.name
            );
            version = Version::V3;
        }
        let scripts = inst
            .track_scripts
            .iter()
            .filter_map(|t| {
                let found = cfg.vrrp_scripts.iter().find(|s| s.name == t.name);
                if found.is_none() {
                    tracing::warn!(
                        "{}: vrrp_instance {}: track_script {} is not a vrrp_script; ignored",
                        inst.loc,
                        inst.name,
                        t.name
                    );
                }
                found.map(|s| (s.clone(), t.weight.unwrap_or(s.weight)))
            })
            .collect();
        Setup {
            version,
            scripts,
            garp_repeat: inst.garp_master_repeat.unwrap_or(g.garp_master_repeat),
            garp_delay: inst.garp_master_delay.unwrap_or(g.garp_master_delay),
            garp_refresh: inst
                .garp_master_refresh
                .or(g.garp_master_refresh)
                .filter(|d| !d.is_zero()),
            garp_refresh_repeat: inst
                .garp_master_refresh_repeat
                .unwrap_or(g.garp_master_refresh_repeat),
            ..s
        }
    }

    /// The instance's name.
    pub(crate) fn name(&self) -> &str {
        &self.inst.name
    }

    /// IPv6 ([`VrrpInstance::is_v6`]).
    pub(crate) fn v6(&self) -> bool {
        self.inst.is_v6()
    }

    /// The VIPs adverts carry: the instance's family only.
    pub(crate) fn advertised(&self) -> Vec<IpAddr> {
        let v6 = self.v6();
        self.inst
            .vips
            .iter()
            .map(|v| v.addr)
            .filter(|a| a.is_ipv6() == v6)
            .collect()
    }

    /// See [`Identity`].
    pub(crate) fn identity(&self) -> Identity {
        Identity {
            interface: self.inst.interface.clone(),
            vrid: self.inst.vrid,
            version: self.version,
            v6: self.v6(),
            src: self.inst.src_ip,
            unicast: !self.inst.unicast_peers.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn setup(text: &str) -> Setup {
        let (cfg, _) = crate::conf::parse_str(text, Path::new("k.conf")).expect("config");
        Setup::all(&cfg).remove(0)
    }

    #[test]
    fn family_follows_the_file() {
        let head = "vrrp_instance V {\n interface eth0\n virtual_router_id 5\n";
        let v6 = setup(&format!("{head} virtual_ipaddress {{\n fd00::1\n }}\n}}\n"));
        assert!(v6.v6());
        assert_eq!(v6.version, Version::V3, "IPv6 needs v3");
        let v4 = setup(&format!(
            "{head} virtual_ipaddress {{\n 10.0.0.1\n }}\n}}\n"
        ));
        assert!(!v4.v6());
        // No VIPs: the source address decides, as the parser decided.
        let src6 = setup(&format!("{head} mcast_src_ip fe80::1\n}}\n"));
        assert!(src6.v6());
        let peer6 = setup(&format!("{head} unicast_peer {{\n fd00::2\n }}\n}}\n"));
        assert!(peer6.v6());
    }

    #[test]
    fn garp_refresh_from_global_defs_or_the_instance() {
        let inst = "vrrp_instance V {\n interface eth0\n virtual_router_id 5\n";
        let none = setup(&format!("{inst}}}\n"));
        assert_eq!((none.garp_refresh, none.garp_refresh_repeat), (None, 1));
        let global = setup(&format!(
            "global_defs {{\n vrrp_garp_master_refresh 60\n \
             vrrp_garp_master_refresh_repeat 2\n}}\n{inst}}}\n"
        ));
        assert_eq!(global.garp_refresh, Some(Duration::from_secs(60)));
        assert_eq!(global.garp_refresh_repeat, 2);
        // The instance's own settings win; 0 turns the refresh off.
        let own = setup(&format!(
            "global_defs {{\n vrrp_garp_master_refresh 60\n}}\n\
             {inst} garp_master_refresh 0\n garp_master_refresh_repeat 3\n}}\n"
        ));
        assert_eq!((own.garp_refresh, own.garp_refresh_repeat), (None, 3));
        let own = setup(&format!("{inst} garp_master_refresh 5\n}}\n"));
        assert_eq!(own.garp_refresh, Some(Duration::from_secs(5)));
    }
}
