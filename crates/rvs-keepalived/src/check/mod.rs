//! Health checkers.
