//! Configuration errors: which field, and why.

use core::fmt;

/// A configuration that cannot be built. `field` is a path such as
/// `services[2].dests[0].weight`; `reason` says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path with `services[i]`.
    pub(crate) fn in_service(mut self, i: usize) -> Self {
        self.field = if self.field.is_empty() {
            format!("services[{i}]")
        } else {
            format!("services[{i}].{}", self.field)
        };
        self
    }

    /// Prefixes the field path with `dests[i]`.
    pub(crate) fn in_dest(mut self, i: usize) -> Self {
        self.field = format!("dests[{i}].{}", self.field);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}
