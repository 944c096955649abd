//! Connection table: being written.
