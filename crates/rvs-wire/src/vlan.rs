//! TODO: vlan (being written).
