//! TODO: tcp (being written).
