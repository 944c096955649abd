//! The rvs daemon: reads the configuration file, starts one pinned worker
//! thread per core, each polling its packet I/O queues and driving its own
//! balancer, and passes what is not balanced to the host kernel through a
//! TAP device (ARCHITECTURE.md §1, §2).
//!
//! - [`config`]: the TOML file, its validation and the key-path errors.
//! - [`shared`]: what the control side shares with the workers: the
//!   configuration snapshots (published through `arc-swap` with a
//!   generation counter) and the workers' published counters.
//! - [`dataplane`]: the worker loop around each worker's
//!   `rvs_lb::stack::Node` (the balancer and the stack).
//! - [`steering`] and [`redirect`]: several workers on one port — which
//!   worker owns a reply, and the rings that pass frames between workers.
//! - [`daemon`]: start-up (ports, TAP devices, XDP programs), and shutdown.
//! - [`api`]: the control socket `rvsadm` talks to.
//! - [`metrics`]: the Prometheus endpoint (`GET /metrics`).

pub mod api;
pub mod config;
pub mod daemon;
pub mod dataplane;
mod httpd;
pub mod metrics;
pub mod redirect;
pub mod shared;
pub mod steering;
