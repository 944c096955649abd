//! Network namespaces and veth pairs for end-to-end tests (run as root):
//! the shared helpers of the `rvs-netns` test-support crate.
#![allow(unused_imports)]

pub(crate) use rvs_netns::*;
