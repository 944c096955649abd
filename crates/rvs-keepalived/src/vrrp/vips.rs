//! Where an instance's interface is, and where its VIPs go on MASTER.
//!
//! An `interface` (or a VIP's `dev`) names rvsd's port, the port's TAP,
//! or neither ([`resolve`]):
//! - rvsd's port or its TAP ([`Place::Rvsd`]): VRRP travels on the TAP;
//!   a VIP is added to rvsd with `AddAddr` on the port (rvsd answers ARP
//!   / ND for it and sends a gratuitous ARP / unsolicited NA) and removed
//!   with `DelAddr`;
//! - anything else ([`Place::Kernel`]), also when there is no rvsd (its
//!   socket does not exist): a plain kernel interface, the VIP added and
//!   removed with `ip addr` (IPv6 without DAD, so it is usable at once).
//!
//! An rvsd whose socket exists but does not answer (restarting, still
//! starting) is an error the instance retries, not a reason to take a
//! port's name for a kernel interface: in AF_PACKET mode the port is one,
//! and VRRP would settle on it, past rvsd, for good.
//!
//! Adding what is there already, or removing what is not, is not an
//! error (a restart after a crash finds its old VIPs).

use std::net::IpAddr;
use std::time::Duration;

use rvs_api::{IfAddr, Reply, Request};

use crate::conf::model::VirtualIp;
use crate::rvsd::Rvsd;

/// Where a configured interface name lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// rvsd's port, whose kernel side is the TAP.
    Rvsd {
        /// The port.
        port: String,
        /// Its TAP.
        tap: String,
    },
    /// A kernel interface rvsd does not know.
    Kernel(String),
}

impl Place {
    /// The kernel interface VRRP and announcements use.
    pub(crate) fn kernel_if(&self) -> &str {
        match self {
            Place::Rvsd { tap, .. } => tap,
            Place::Kernel(name) => name,
        }
    }

    /// rvsd's port, if any.
    pub(crate) fn port(&self) -> Option<&str> {
        match self {
            Place::Rvsd { port, .. } => Some(port),
            Place::Kernel(_) => None,
        }
    }
}

/// Finds where `name` lives: rvsd's ports first (by port name, then by
/// TAP name), else the kernel. A port without a TAP cannot carry VRRP:
/// an error; so is an rvsd that exists but does not answer.
pub(crate) async fn resolve(rvsd: &Rvsd, name: &str) -> anyhow::Result<Place> {
    if !rvsd.socket().exists() {
        tracing::info!(
            "no rvsd at {}: {name} is taken as a kernel interface",
            rvsd.socket().display()
        );
        return Ok(Place::Kernel(name.to_string()));
    }
    let links = match rvsd.call(Request::ListLinks).await? {
        Reply::Links { links } => links,
        other => anyhow::bail!("rvsd answered ListLinks with {other:?}"),
    };
    for l in &links {
        if l.name == name {
            let Some(tap) = &l.tap else {
                anyhow::bail!(
                    "rvsd port {name} has no TAP (tap = \"...\" in rvsd's [[port]]): VRRP cannot reach it"
                );
            };
            return Ok(Place::Rvsd {
                port: l.name.clone(),
                tap: tap.clone(),
            });
        }
        if l.tap.as_deref() == Some(name) {
            return Ok(Place::Rvsd {
                port: l.name.clone(),
                tap: name.to_string(),
            });
        }
    }
    Ok(Place::Kernel(name.to_string()))
}

/// A VIP and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlacedVip {
    /// The address.
    pub vip: VirtualIp,
    /// Its interface.
    pub place: Place,
}

impl PlacedVip {
    fn ifaddr(&self, port: &str) -> IfAddr {
        IfAddr {
            addr: self.vip.addr,
            prefix_len: self.vip.prefix_len,
            dev: port.to_string(),
        }
    }

    /// Adds it.
    pub(crate) async fn add(&self, rvsd: &Rvsd) -> anyhow::Result<()> {
        match &self.place {
            Place::Rvsd { port, .. } => {
                let a = self.ifaddr(port);
                let r = rvsd.call(Request::AddAddr { addr: a.clone() }).await;
                match r {
                    Ok(_) => Ok(()),
                    Err(_) if rvsd_has(rvsd, &a).await => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Place::Kernel(dev) => ip_addr("add", &self.vip, dev).await,
        }
    }

    /// Whether rvsd was asked and does not list it (false for a kernel
    /// interface, and when rvsd cannot be asked: nothing to restore then).
    pub(crate) async fn missing_from_rvsd(&self, rvsd: &Rvsd) -> bool {
        let Place::Rvsd { port, .. } = &self.place else {
            return false;
        };
        rvsd_lists(rvsd, &self.ifaddr(port)).await == Some(false)
    }

    /// Removes it.
    pub(crate) async fn del(&self, rvsd: &Rvsd) -> anyhow::Result<()> {
        match &self.place {
            Place::Rvsd { port, .. } => {
                let a = self.ifaddr(port);
                if !rvsd_has(rvsd, &a).await {
                    return Ok(());
                }
                rvsd.call(Request::DelAddr { addr: a }).await.map(|_| ())
            }
            Place::Kernel(dev) => ip_addr("del", &self.vip, dev).await,
        }
    }
}

/// Whether rvsd lists `a` (false when it cannot be asked).
async fn rvsd_has(rvsd: &Rvsd, a: &IfAddr) -> bool {
    rvsd_lists(rvsd, a).await == Some(true)
}

/// Whether rvsd lists `a`; `None` when it cannot be asked.
async fn rvsd_lists(rvsd: &Rvsd, a: &IfAddr) -> Option<bool> {
    match rvsd
        .call(Request::ListAddrs {
            dev: Some(a.dev.clone()),
        })
        .await
    {
        Ok(Reply::Addrs { addrs }) => Some(addrs.iter().any(|x| x.addr == a.addr)),
        _ => None,
    }
}

/// `ip addr add|del VIP/LEN dev DEV` (bounded in time).
async fn ip_addr(op: &str, vip: &VirtualIp, dev: &str) -> anyhow::Result<()> {
    let cidr = format!("{}/{}", vip.addr, vip.prefix_len);
    let mut cmd = tokio::process::Command::new("ip");
    cmd.args(["addr", op, &cidr, "dev", dev]);
    if op == "add" && matches!(vip.addr, IpAddr::V6(_)) {
        cmd.arg("nodad");
    }
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(5), cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("ip addr {op} {cidr} dev {dev}: timed out"))??;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // Already there / not there: the state we want.
    if (op == "add" && err.contains("File exists"))
        || (op == "del" && err.contains("Cannot assign requested address"))
    {
        return Ok(());
    }
    anyhow::bail!("ip addr {op} {cidr} dev {dev}: {}", err.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_api::Link;
    use rvs_api::fake::{FakeServer, Model};

    fn link(name: &str, tap: Option<&str>) -> Link {
        Link {
            id: 0,
            name: name.into(),
            mtu: 1500,
            mac: "02:00:00:00:00:01".into(),
            state: "UP".into(),
            backend: "af_packet".into(),
            queues: 1,
            tap: tap.map(str::to_string),
            stats: Default::default(),
        }
    }

    #[tokio::test]
    async fn ports_taps_kernel_and_a_silent_rvsd() {
        let model = Model {
            links: vec![link("eth1", Some("rvs0")), link("eth2", None)],
            ..Model::default()
        };
        let fake = FakeServer::start(model).expect("fake rvsd");
        let rvsd = Rvsd::new(fake.path());
        let port = Place::Rvsd {
            port: "eth1".into(),
            tap: "rvs0".into(),
        };
        assert_eq!(resolve(&rvsd, "eth1").await.unwrap(), port);
        assert_eq!(resolve(&rvsd, "rvs0").await.unwrap(), port);
        let e = resolve(&rvsd, "eth2").await.unwrap_err();
        assert!(e.to_string().contains("no TAP"), "{e}");
        assert_eq!(
            resolve(&rvsd, "lo").await.unwrap(),
            Place::Kernel("lo".into())
        );

        // No rvsd on this host: kernel interfaces.
        let dir = std::env::temp_dir().join(format!("rvs-ka-vips-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let none = Rvsd::new(&dir.join("none.sock"));
        assert_eq!(
            resolve(&none, "eth1").await.unwrap(),
            Place::Kernel("eth1".into())
        );
        // rvsd's socket left by a process that is gone (a restart): not a
        // kernel interface, an error to retry.
        let stale = dir.join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
        let e = resolve(&Rvsd::new(&stale), "eth1").await.unwrap_err();
        assert!(e.to_string().contains("stale.sock"), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
