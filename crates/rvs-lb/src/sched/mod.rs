//! Schedulers: being written.
