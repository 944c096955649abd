//! TODO: ipv4 (being written).
