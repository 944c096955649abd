//! TODO: gre (being written).
