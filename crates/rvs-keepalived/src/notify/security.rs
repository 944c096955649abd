//! keepalived's `enable_script_security` rule: a script that runs as root
//! must not be changeable by anyone else. The file and every directory on
//! the way to it must be owned by root, and none of them writable by a
//! non-root group or by others — except a directory with the sticky bit
//! (like /tmp), where others cannot replace a root-owned entry. Both the
//! path as written (its symlinks included) and the path it resolves to are
//! checked, since changing either would change what runs.
//!
//! A command line is run by `/bin/sh -c`; the file checked is its program
//! (the first word), looked up in PATH when it has no `/`, as keepalived
//! does for its scripts.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The PATH used when the daemon has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The file a command line runs: its first word (quotes removed), found in
/// PATH when it has no `/`. None when it names nothing on disk (a shell
/// builtin such as `exit` or `test`, or a missing file).
pub(crate) fn program(line: &str) -> Option<PathBuf> {
    let word = first_word(line)?;
    if word.contains('/') {
        let p = PathBuf::from(&word);
        return p.symlink_metadata().is_ok().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(&word))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The first shell word of `line`, with simple quoting undone.
fn first_word(line: &str) -> Option<String> {
    let line = line.trim_start();
    let mut chars = line.chars();
    let word: String = match chars.next()? {
        q @ ('\'' | '"') => chars.take_while(|c| *c != q).collect(),
        _ => line
            .chars()
            .take_while(|c| !c.is_whitespace() && !";&|<>()".contains(*c))
            .collect(),
    };
    (!word.is_empty()).then_some(word)
}

/// Whether running `file` gives root rights even to a non-root user: it
/// is set-user-id or set-group-id root (keepalived guards those too).
pub(crate) fn grants_root(file: &Path) -> bool {
    file.metadata().is_ok_and(|m| {
        let mode = m.mode();
        (m.uid() == 0 && mode & 0o4100 == 0o4100) || (m.gid() == 0 && mode & 0o2010 == 0o2010)
    })
}

/// Ok if neither `file` nor a directory leading to it can be changed by a
/// non-root user; else what can, for the log.
pub(crate) fn check(file: &Path) -> Result<(), String> {
    let written = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join(file)
    };
    walk(&written)?;
    let real = written
        .canonicalize()
        .map_err(|e| format!("{}: {e}", written.display()))?;
    if real != written {
        walk(&real)?;
    }
    Ok(())
}

/// Checks every prefix of the absolute `path`, from `/` to the file,
/// without following symlinks.
fn walk(path: &Path) -> Result<(), String> {
    let mut parts: Vec<&Path> = path.ancestors().collect();
    parts.reverse();
    let last = parts.len() - 1;
    for (i, p) in parts.into_iter().enumerate() {
        let m = p
            .symlink_metadata()
            .map_err(|e| format!("{}: {e}", p.display()))?;
        safe(p, &m, i == last)?;
    }
    Ok(())
}

/// One path element: root-owned, of the right type, not writable by a
/// non-root group or others (sticky directories excepted).
fn safe(p: &Path, m: &Metadata, is_file: bool) -> Result<(), String> {
    let t = m.file_type();
    let right_type = t.is_symlink() || if is_file { t.is_file() } else { t.is_dir() };
    if !right_type {
        let want = if is_file { "a file" } else { "a directory" };
        return Err(format!("{} is not {want}", p.display()));
    }
    if m.uid() != 0 {
        return Err(format!(
            "{} is owned by uid {}, not root",
            p.display(),
            m.uid()
        ));
    }
    let mode = m.mode();
    let guarded = t.is_file() || (t.is_dir() && mode & 0o1000 == 0);
    if guarded && m.gid() != 0 && mode & 0o020 != 0 {
        return Err(format!("{} is writable by group {}", p.display(), m.gid()));
    }
    if guarded && mode & 0o002 != 0 {
        return Err(format!("{} is writable by everyone", p.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A fresh directory under /tmp (root-owned and sticky).
    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rvs-ka-sec-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir(&d).unwrap();
        chmod(&d, 0o755);
        d
    }

    #[test]
    fn first_words_and_path_search() {
        assert_eq!(first_word("  /a/b c").as_deref(), Some("/a/b"));
        assert_eq!(first_word("'/a b/c' x").as_deref(), Some("/a b/c"));
        assert_eq!(first_word("id -u>/x").as_deref(), Some("id"));
        assert_eq!(first_word("   "), None);
        let id = program("id -u > /dev/null").unwrap();
        assert!(id.ends_with("id") && id.is_absolute(), "{id:?}");
        assert_eq!(program("exit 0"), None);
        assert_eq!(program("/no/such/script arg"), None);
    }

    #[test]
    fn writable_scripts_and_directories_are_unsafe() {
        let d = scratch("w");
        let s = d.join("s.sh");
        fs::write(&s, "#!/bin/sh\nexit 0\n").unwrap();
        chmod(&s, 0o755);
        assert_eq!(check(&s), Ok(()));
        // World-writable file.
        chmod(&s, 0o777);
        assert!(check(&s).unwrap_err().contains("writable by everyone"));
        // Group-writable by a non-root group.
        chmod(&s, 0o775);
        std::os::unix::fs::chown(&s, None, Some(65534)).unwrap();
        assert!(check(&s).unwrap_err().contains("writable by group 65534"));
        std::os::unix::fs::chown(&s, None, Some(0)).unwrap();
        assert_eq!(check(&s), Ok(()), "group root may write");
        // A world-writable directory without the sticky bit on the way.
        chmod(&d, 0o777);
        let e = check(&s).unwrap_err();
        assert!(e.contains(&format!("{} is writable", d.display())), "{e}");
        chmod(&d, 0o1777);
        assert_eq!(check(&s), Ok(()), "sticky directory");
        chmod(&d, 0o755);
        // Owned by someone else.
        std::os::unix::fs::chown(&s, Some(65534), None).unwrap();
        assert!(check(&s).unwrap_err().contains("owned by uid 65534"));
        std::os::unix::fs::chown(&s, Some(0), None).unwrap();
        // A symlink is judged by both its own path and its target's.
        let t = scratch("t");
        chmod(&t, 0o777);
        let target = t.join("real.sh");
        fs::write(&target, "#!/bin/sh\n").unwrap();
        chmod(&target, 0o755);
        let link = d.join("link.sh");
        symlink(&target, &link).unwrap();
        assert!(check(&link).unwrap_err().contains(&t.display().to_string()));
        chmod(&t, 0o755);
        assert_eq!(check(&link), Ok(()));
        // A directory where the file should be.
        assert!(check(&d).unwrap_err().contains("is not a file"));
        fs::remove_dir_all(&d).unwrap();
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn setuid_root_programs_grant_root() {
        let d = scratch("suid");
        let s = d.join("s");
        fs::write(&s, "").unwrap();
        chmod(&s, 0o755);
        assert!(!grants_root(&s));
        chmod(&s, 0o4755);
        assert!(grants_root(&s));
        chmod(&s, 0o2755);
        assert!(grants_root(&s));
        fs::remove_dir_all(&d).unwrap();
    }
}
