//! rvs-keepalived: what keepalived does beside LVS, done for rvs.
//!
//! It reads an existing keepalived.conf ([`conf`]), health-checks the real
//! servers of every `virtual_server` (`check`) and keeps rvsd's table in
//! line with the results (`lvs`), and runs VRRP (`vrrp`) so that two
//! or more rvs nodes share their VIPs, interoperating with the real
//! keepalived. Everything it changes in rvsd goes through rvsd's API
//! (`rvsd`), exactly as `rvsadm` and `rvsip` would.
//!
//! The process is one tokio runtime: checks are tasks, so thousands of
//! real servers are checked concurrently without a thread each
//! ([`daemon`] wires the parts together, handles SIGHUP and SIGUSR1).

pub(crate) mod check;
pub mod conf;
pub(crate) mod control;
pub mod daemon;
pub(crate) mod logging;
pub(crate) mod lvs;
pub(crate) mod notify;
pub(crate) mod rvsd;
pub(crate) mod vrrp;
