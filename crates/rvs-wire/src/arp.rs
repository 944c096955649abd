//! TODO: arp (being written).
