//! keepalived.conf: reading the file into the typed [`model`].
//!
//! Three steps, each in its own file: `lexer` turns text into tokens
//! with their file and line (comments `#` and `!`, quoted strings,
//! braces); `tree` builds the nested blocks and expands `include`
//! (globs, relative to the including file); `build` gives the blocks
//! their meaning, with keepalived's defaults, warnings for keywords it
//! does not act on, and an error with file:line for anything it cannot
//! use. An error means nothing is applied.

mod build;
mod lexer;
pub mod model;
mod tree;

use std::path::Path;

pub use model::{ConfError, Config, Warning};

/// Reads and interprets `path` (and what it includes).
pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), ConfError> {
    let mut ctx = build::Ctx::default();
    let nodes = tree::load_file(path, &mut ctx.warnings)?;
    finish(&nodes, ctx)
}

/// Interprets `text` as the content of a file named `name` (`include`s
/// are relative to `name`'s directory). For tests and `-t`-style checks
/// of text that is not on disk.
pub fn parse_str(text: &str, name: &Path) -> Result<(Config, Vec<Warning>), ConfError> {
    let mut ctx = build::Ctx::default();
    let nodes = tree::load_str(text, name, &mut ctx.warnings)?;
    finish(&nodes, ctx)
}

fn finish(nodes: &[tree::Node], mut ctx: build::Ctx) -> Result<(Config, Vec<Warning>), ConfError> {
    let cfg = build::build(nodes, &mut ctx)?;
    Ok((cfg, ctx.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::CheckKind;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config, ConfError> {
        parse_str(text, Path::new("k.conf")).map(|(c, _)| c)
    }

    #[test]
    fn zero_intervals_and_limits() {
        // A check every 0 s, or within 0 s, is refused where it is written.
        for (text, line) in [
            ("virtual_server 10.0.0.1 80 {\n delay_loop 0\n}\n", 2),
            (
                "virtual_server 10.0.0.1 80 {\n real_server 10.1.0.1 80 {\n  TCP_CHECK {\n   connect_timeout 0\n  }\n }\n}\n",
                4,
            ),
            (
                "virtual_server 10.0.0.1 80 {\n real_server 10.1.0.1 80 {\n  delay_loop 0.0\n }\n}\n",
                3,
            ),
            ("vrrp_script s {\n script true\n interval 0\n}\n", 3),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.loc.line, line, "{text}: {e}");
            assert!(e.message.contains("more than 0"), "{e}");
        }
        // A time limit of 0 means the default, as in keepalived.
        let c = parse(
            "virtual_server 10.0.0.1 80 {\n real_server 10.1.0.1 80 {\n  MISC_CHECK {\n   misc_path true\n   misc_timeout 0\n  }\n }\n}\nvrrp_script s {\n script true\n timeout 0\n}\n",
        )
        .unwrap();
        let kind = &c.virtual_servers[0].real_servers[0].checkers[0].kind;
        assert!(matches!(kind, CheckKind::Misc { timeout: None, .. }));
        assert_eq!(c.vrrp_scripts[0].timeout, None);
        assert_eq!(c.vrrp_scripts[0].interval, Duration::from_secs(1));
    }

    #[test]
    fn a_master_or_owner_always_preempts() {
        let inst = |head: &str| {
            format!(
                "vrrp_instance V {{\n interface eth0\n virtual_router_id 5\n{head}\n nopreempt\n preempt_delay 10\n}}\n"
            )
        };
        let (c, w) = parse_str(&inst(" state MASTER"), Path::new("k.conf")).unwrap();
        let v = &c.vrrp_instances[0];
        assert!(!v.nopreempt && v.preempt_delay.is_zero());
        let lines: Vec<u32> = w.iter().map(|w| w.loc.line).collect();
        assert_eq!(lines, [5, 6], "{w:?}");
        assert!(w[0].message.contains("state MASTER"), "{}", w[0]);

        // The owner keeps its preempt_delay (keepalived drops only
        // nopreempt there).
        let (c, w) = parse_str(&inst(" priority 255"), Path::new("k.conf")).unwrap();
        let v = &c.vrrp_instances[0];
        assert!(!v.nopreempt);
        assert_eq!(v.preempt_delay, Duration::from_secs(10));
        assert_eq!(w.len(), 1, "{w:?}");

        // A BACKUP keeps both.
        let (c, w) = parse_str(&inst(" state BACKUP"), Path::new("k.conf")).unwrap();
        assert!(c.vrrp_instances[0].nopreempt && w.is_empty(), "{w:?}");
    }
}
