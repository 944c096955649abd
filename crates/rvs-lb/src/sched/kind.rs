//! Scheduler names and flags as `ipvsadm` spells them.
//!
//! `ipvsadm -s <name>` picks the scheduler and `-b <flags>` (upstream's
//! `--sched-flags`) sets a comma-separated list of flags. The parse errors
//! are small `Copy` values that keep (a prefix of) the offending word so
//! they can say what was wrong without allocating.

use core::fmt;
use core::str::FromStr;

/// Which scheduling algorithm a service uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// Round robin over available servers.
    Rr,
    /// Smooth weighted round robin (nginx's interleaving).
    Wrr,
    /// Least connections (IPVS overhead `active * 256 + inactive`).
    Lc,
    /// Weighted least connections: least overhead / weight.
    Wlc,
    /// Shortest expected delay: least `(active + 1) / weight`.
    Sed,
    /// Never queue: an idle server if there is one, else as `sed`.
    Nq,
    /// Source hashing.
    Sh,
    /// Destination hashing.
    Dh,
    /// Maglev hashing.
    Mh,
    /// Consistent hashing on a ring with virtual nodes.
    Conhash,
    /// Weighted failover: the available server with the highest weight.
    Fo,
}

impl SchedulerKind {
    /// Every scheduler, in the order the error message lists them.
    pub const ALL: [SchedulerKind; 11] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Sh,
        SchedulerKind::Dh,
        SchedulerKind::Mh,
        SchedulerKind::Conhash,
        SchedulerKind::Fo,
    ];

    /// The name `ipvsadm -s` uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Dh => "dh",
            SchedulerKind::Mh => "mh",
            SchedulerKind::Conhash => "conhash",
            SchedulerKind::Fo => "fo",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedulerKind {
    type Err = ParseError;

    /// Parses an `ipvsadm -s` name. Names are case-sensitive, as in ipvsadm
    /// (which passes them to the kernel's scheduler lookup unchanged).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        SchedulerKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseError::new(ParseErrorKind::UnknownScheduler, s))
    }
}

/// Scheduler flags (`ipvsadm -b`). Only `sh` and `mh` read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedFlags {
    /// `sh-fallback` / `mh-fallback` (`flag-1`): when the hashed server is
    /// unavailable, pick another available one instead of dropping.
    pub fallback: bool,
    /// `sh-port` / `mh-port` (`flag-2`): hash the source port as well as the
    /// source address.
    pub port: bool,
    /// `flag-3`: accepted and kept for compatibility; no scheduler uses it.
    pub flag3: bool,
}

impl SchedFlags {
    /// No flags.
    pub const NONE: SchedFlags = SchedFlags {
        fallback: false,
        port: false,
        flag3: false,
    };

    /// Parses a comma-separated `ipvsadm -b` list for scheduler `kind`.
    ///
    /// As in ipvsadm, `sh-*` names are only accepted with `sh` and `mh-*`
    /// names only with `mh`; the generic `flag-1..3` go with any scheduler.
    /// Empty items (`"a,,b"`, trailing comma) are rejected.
    pub fn parse(kind: SchedulerKind, list: &str) -> Result<SchedFlags, ParseError> {
        let mut flags = SchedFlags::NONE;
        for word in list.split(',') {
            let (needs, fallback, port, flag3) = match word {
                "sh-fallback" => (Some(SchedulerKind::Sh), true, false, false),
                "sh-port" => (Some(SchedulerKind::Sh), false, true, false),
                "mh-fallback" => (Some(SchedulerKind::Mh), true, false, false),
                "mh-port" => (Some(SchedulerKind::Mh), false, true, false),
                "flag-1" => (None, true, false, false),
                "flag-2" => (None, false, true, false),
                "flag-3" => (None, false, false, true),
                _ => return Err(ParseError::new(ParseErrorKind::UnknownFlag, word)),
            };
            if needs.is_some_and(|k| k != kind) {
                return Err(ParseError::new(ParseErrorKind::IncompatibleFlag, word));
            }
            flags.fallback |= fallback;
            flags.port |= port;
            flags.flag3 |= flag3;
        }
        Ok(flags)
    }
}

/// What was wrong with a scheduler name or flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// Not one of the scheduler names.
    UnknownScheduler,
    /// Not one of the flag names.
    UnknownFlag,
    /// A flag that belongs to another scheduler (e.g. `mh-port` with `sh`).
    IncompatibleFlag,
}

/// A scheduler name or flag that could not be parsed. Keeps up to 24 bytes
/// of the offending word for the message.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseError {
    kind: ParseErrorKind,
    word: [u8; 24],
    len: u8,
    truncated: bool,
}

impl ParseError {
    fn new(kind: ParseErrorKind, word: &str) -> Self {
        let mut len = word.len().min(24);
        while !word.is_char_boundary(len) {
            len = len.saturating_sub(1);
        }
        let mut buf = [0u8; 24];
        if let (Some(dst), Some(src)) = (buf.get_mut(..len), word.as_bytes().get(..len)) {
            dst.copy_from_slice(src);
        }
        ParseError {
            kind,
            word: buf,
            len: u8::try_from(len).unwrap_or(0),
            truncated: len < word.len(),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The offending word (possibly cut short).
    pub fn word(&self) -> &str {
        self.word
            .get(..usize::from(self.len))
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Debug for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseError")
            .field("kind", &self.kind)
            .field("word", &self.word())
            .finish()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dots = if self.truncated { "..." } else { "" };
        match self.kind {
            ParseErrorKind::UnknownScheduler => {
                write!(
                    f,
                    "unknown scheduler `{}{dots}` (expected one of:",
                    self.word()
                )?;
                for (i, k) in SchedulerKind::ALL.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{k}")?;
                }
                f.write_str(")")
            }
            ParseErrorKind::UnknownFlag => write!(
                f,
                "unknown scheduler flag `{}{dots}` (expected sh-fallback, sh-port, \
                 mh-fallback, mh-port, flag-1, flag-2 or flag-3)",
                self.word()
            ),
            ParseErrorKind::IncompatibleFlag => write!(
                f,
                "scheduler flag `{}{dots}` does not apply to this scheduler",
                self.word()
            ),
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in SchedulerKind::ALL {
            assert_eq!(k.to_string().parse::<SchedulerKind>(), Ok(k));
        }
        assert_eq!("mh".parse(), Ok(SchedulerKind::Mh));
        assert_eq!("conhash".parse(), Ok(SchedulerKind::Conhash));
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let e = "maglev".parse::<SchedulerKind>().unwrap_err();
        assert_eq!(e.kind(), ParseErrorKind::UnknownScheduler);
        assert_eq!(e.word(), "maglev");
        assert_eq!(
            e.to_string(),
            "unknown scheduler `maglev` (expected one of: rr, wrr, lc, wlc, sed, nq, sh, \
             dh, mh, conhash, fo)"
        );
        for bad in ["", "RR", " rr", "rr ", "wrr2"] {
            assert!(bad.parse::<SchedulerKind>().is_err(), "{bad:?}");
        }
        // Long and multi-byte words are cut on a character boundary.
        let long = "é".repeat(20);
        let e = long.parse::<SchedulerKind>().unwrap_err();
        assert_eq!(e.word(), "é".repeat(12));
        assert!(e.to_string().contains("...`"));
    }

    #[test]
    fn flags_parse_like_ipvsadm() {
        let f = SchedFlags::parse(SchedulerKind::Sh, "sh-fallback,sh-port").unwrap();
        assert!(f.fallback && f.port && !f.flag3);
        let f = SchedFlags::parse(SchedulerKind::Mh, "mh-port").unwrap();
        assert!(!f.fallback && f.port);
        let f = SchedFlags::parse(SchedulerKind::Rr, "flag-1,flag-3").unwrap();
        assert!(f.fallback && !f.port && f.flag3);
        let e = SchedFlags::parse(SchedulerKind::Sh, "mh-port").unwrap_err();
        assert_eq!(e.kind(), ParseErrorKind::IncompatibleFlag);
        assert_eq!(e.word(), "mh-port");
        let e = SchedFlags::parse(SchedulerKind::Sh, "sh-port,").unwrap_err();
        assert_eq!(e.kind(), ParseErrorKind::UnknownFlag);
        let e = SchedFlags::parse(SchedulerKind::Sh, "sh-Port").unwrap_err();
        assert_eq!(e.kind(), ParseErrorKind::UnknownFlag);
    }
}
