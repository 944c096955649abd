//! The sans-IO balancer core of rvs.
//!
//! Given a frame and the time, decide what happens to it and produce the
//! frame(s) to send. There are no sockets, threads or wall clock in here: the
//! daemon instantiates one core per worker and feeds it bursts; tests feed it
//! bytes and a simulated clock and assert the bytes that come out
//! (ARCHITECTURE.md §2, §5).
//!
//! The packet path must never panic: the crate denies `unwrap`, `expect`,
//! `panic!` and slice indexing outside tests.
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

pub mod classify;
pub mod config;
pub mod conn;
pub mod flow;
pub mod fwd;
pub mod laddr;
pub mod packet;
pub mod rss;
pub mod sched;
pub mod stack;
pub mod stats;
pub mod worker;
