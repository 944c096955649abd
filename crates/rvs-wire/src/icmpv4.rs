//! TODO: icmpv4 (being written).
