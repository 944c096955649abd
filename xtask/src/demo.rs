//! The README's main job, `cargo xtask demo` (`./x demo`): rvs balancing
//! real HTTP traffic, live, in network namespaces on this machine.
//!
//! 1. Installs what it needs (`setup`), builds everything (release) and runs
//!    the quick wire self-check.
//! 2. Builds the lab: namespaces `client`, `lb`, `b1`, `b2`, `b3`, one veth
//!    pair from `lb` to each; three nginx servers, one per backend
//!    namespace, each answering with its own name and the source address it
//!    saw; rvsd in `lb` on AF_XDP (generic mode: veth has no zero-copy)
//!    with a FullNAT TCP service `10.0.0.100:80`, weighted round robin 3:2:1,
//!    TOA on.
//! 3. Sends real traffic from `client`: one curl asking for URL after URL,
//!    a new connection each (`Connection: close`), and prints a line a
//!    second with the answers per backend (as the client counted them, and
//!    rvsd's own per-real-server connection counters when its API answers).
//! 4. A live change: rewrites the configuration with b3 at weight 0 and
//!    sends SIGHUP; the curl keeps running and b3's share drops to 0 with no
//!    failed request. Then 3 s of `wrk` (short connections) at full speed,
//!    counted by each nginx.
//! 5. Stops rvsd (SIGTERM: its counters, XDP detached) and removes
//!    everything it created: also on error and on Ctrl-C (guards; every
//!    process it started is stopped by its process id).
//! 6. Act two, high availability (`ha`): two rvs nodes, each rvsd (AF_PACKET
//!    with a TAP) and rvs-keepalived with a keepalived.conf (printed), share
//!    the VIP by VRRP on one macvlan segment with the client and three nginx
//!    backends checked by HTTP_GET. Under a curl every 100 ms, the MASTER
//!    is killed and the BACKUP takes over (takeover time and the client's
//!    gap measured), then a backend stops and comes back, following the
//!    health checks in rvsd's table; cleaned up the same way.

mod ha;
mod lab;
pub(crate) mod sys;

use anyhow::Result;

use crate::run::cargo;

pub(crate) fn run() -> Result<()> {
    crate::setup::run()?;
    cargo(&["build", "--workspace", "--release", "--locked"])?;
    // The quick first step: the FullNAT rewrite on captured frames.
    cargo(&[
        "run",
        "--quiet",
        "--release",
        "--locked",
        "-p",
        "rvs-wire",
        "--example",
        "selfcheck",
    ])?;
    lab::run()?;
    ha::run()
}
