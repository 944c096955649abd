//! Where an instance's interface is, and where its VIPs go on MASTER.
//!
//! An `interface` (or a VIP's `dev`) names rvsd's port, the port's TAP,
//! or neither ([`resolve`]):
//! - rvsd's port or its TAP ([`Place::Rvsd`]): VRRP travels on the TAP;
//!   a VIP is added to rvsd with `AddAddr` on the port (rvsd answers ARP
//!   / ND for it and sends a gratuitous ARP / unsolicited NA) and removed
//!   with `DelAddr`;
//! - anything else ([`Place::Kernel`]), also when rvsd is not running: a
//!   plain kernel interface, the VIP added and removed with `ip addr`
//!   (IPv6 without DAD, so it is usable at once).
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
pub enum Place {
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
    pub fn kernel_if(&self) -> &str {
        match self {
            Place::Rvsd { tap, .. } => tap,
            Place::Kernel(name) => name,
        }
    }

    /// rvsd's port, if any.
    pub fn port(&self) -> Option<&str> {
        match self {
            Place::Rvsd { port, .. } => Some(port),
            Place::Kernel(_) => None,
        }
    }
}

/// Finds where `name` lives: rvsd's ports first (by port name, then by
/// TAP name), else the kernel. A port without a TAP cannot carry VRRP:
/// an error.
pub async fn resolve(rvsd: &Rvsd, name: &str) -> anyhow::Result<Place> {
    let links = match rvsd.call(Request::ListLinks).await {
        Ok(Reply::Links { links }) => links,
        Ok(other) => anyhow::bail!("rvsd answered ListLinks with {other:?}"),
        Err(e) => {
            tracing::debug!("{e}; {name} is taken as a kernel interface");
            return Ok(Place::Kernel(name.to_string()));
        }
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
pub struct PlacedVip {
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
    pub async fn add(&self, rvsd: &Rvsd) -> anyhow::Result<()> {
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

    /// Removes it.
    pub async fn del(&self, rvsd: &Rvsd) -> anyhow::Result<()> {
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
    match rvsd
        .call(Request::ListAddrs {
            dev: Some(a.dev.clone()),
        })
        .await
    {
        Ok(Reply::Addrs { addrs }) => addrs.iter().any(|x| x.addr == a.addr),
        _ => false,
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
