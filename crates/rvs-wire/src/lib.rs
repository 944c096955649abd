//! Packet formats for rvs: zero-copy views over byte slices and builders that
//! write headers into caller-provided buffers.
//!
//! # Shape of every format module
//! Each protocol lives in one file and follows the same pattern:
//! - a `#[repr(C)]` header struct derived with `zerocopy`, whose fields are
//!   network-order integers. Casting a slice to it checks the length once; after
//!   that no field access can panic or read out of bounds.
//! - a view `Foo<B>` generic over the byte slice `B` (`&[u8]` to read,
//!   `&mut [u8]` to rewrite in place). `Foo::parse(bytes)` validates everything
//!   the accessors rely on (lengths, header length fields, version) and returns
//!   a typed [`Error`] otherwise. Checksums are *not* verified by `parse`: the
//!   balancer forwards packets whose checksum it only updates incrementally, so
//!   verification is a separate `verify_checksum` call.
//! - a `FooRepr` plain value with `emit` into a `&mut [u8]`, used to build
//!   packets (ICMP replies, ARP, encapsulation headers, test frames) and to
//!   round-trip in property tests.
//!
//! Nothing here allocates, does I/O or knows about load balancing. The crate
//! denies `unwrap`, `expect`, `panic!` and slice indexing outside tests: the
//! packet path must never panic on any input.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod gre;
mod icmp_common;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipip;
pub mod ipv4;
pub mod ipv6;
pub mod partial_checksum;
pub mod tcp;
pub mod udp;
pub mod vlan;

pub use error::{Error, Result};

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") that rvs
/// handles. Also used as IPv6 "next header" values.
pub mod ip_proto {
    /// IPv6 hop-by-hop options extension header.
    pub const HOPOPT: u8 = 0;
    /// Internet Control Message Protocol (IPv4).
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated in IP (IPIP, RFC 2003).
    pub const IPIP: u8 = 4;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IP (RFC 2473 when outer is IPv6, RFC 4213 for v4).
    pub const IPV6: u8 = 41;
    /// IPv6 routing extension header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment extension header.
    pub const IPV6_FRAG: u8 = 44;
    /// Generic Routing Encapsulation (RFC 2784/2890).
    pub const GRE: u8 = 47;
    /// IPv6 Encapsulating Security Payload (not walked: it ends the chain).
    pub const ESP: u8 = 50;
    /// IPv6 Authentication Header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options extension header.
    pub const IPV6_OPTS: u8 = 60;
    /// DPVS's UOA "opp" protocol carrying a UDP client's address.
    pub const UOA_OPP: u8 = 248;
}
