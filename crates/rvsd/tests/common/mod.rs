//! Network namespaces and veth pairs for end-to-end tests (run as root):
//! the shared helpers of the `rvs-netns` test-support crate, and the rvsd
//! harness.
#![allow(dead_code, unused_imports)]

pub(crate) mod harness;
pub(crate) mod keepalived;

pub(crate) use rvs_netns::*;
