//! TODO: ipip (being written).
