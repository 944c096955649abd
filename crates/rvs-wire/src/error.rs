//! The one error type every parser and builder in this crate returns.
//!
//! Errors are small `Copy` values so the packet path can count them by kind
//! (a drop reason) without allocating or formatting.

use core::fmt;

/// Why a packet could not be parsed or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field claims.
    Truncated,
    /// A version field holds an unexpected value (e.g. IPv4 header with version 6).
    BadVersion,
    /// A header-length field is below the minimum or beyond the buffer.
    BadHeaderLength,
    /// A total/payload length field is inconsistent with the buffer or header.
    BadLength,
    /// An option or extension header is malformed (bad length, runs past the end).
    BadOption,
    /// A checksum does not verify.
    BadChecksum,
    /// The value is well-formed but not something this crate handles
    /// (e.g. an ARP for a non-Ethernet hardware type).
    Unsupported,
    /// A builder was given a buffer too small for what it must write.
    BufferTooSmall,
}

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// A short, stable, lower-case name suitable for a counter label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadHeaderLength => "bad_header_length",
            Error::BadLength => "bad_length",
            Error::BadOption => "bad_option",
            Error::BadChecksum => "bad_checksum",
            Error::Unsupported => "unsupported",
            Error::BufferTooSmall => "buffer_too_small",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}

impl<S, D> From<zerocopy::SizeError<S, D>> for Error {
    fn from(_: zerocopy::SizeError<S, D>) -> Self {
        Error::Truncated
    }
}
