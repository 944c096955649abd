//! Who a script runs as: keepalived's `USER [[:]GROUP]` (global
//! `script_user`, a `vrrp_script`'s or a MISC_CHECK's `user`), resolved
//! through the system's user and group databases (getpwnam_r and
//! getgrnam_r, so NSS sources work as for keepalived), and the switch made
//! in the forked child before it runs the script.
//!
//! As in keepalived: without a group the user's own group is used; a
//! group written with a leading `:` (or a lone `:`) also gives the child
//! the user's supplementary groups, otherwise it has none, so a script
//! never keeps root's.

use std::ffi::{CStr, CString};
use std::io;

use tokio::process::Command;

/// An identity to run a script as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunAs {
    /// How the configuration named it, for messages.
    pub(crate) name: String,
    /// The user id.
    pub(crate) uid: libc::uid_t,
    /// The group id.
    pub(crate) gid: libc::gid_t,
    /// Supplementary groups of the child.
    pub(crate) groups: Vec<libc::gid_t>,
}

impl RunAs {
    /// The daemon's own identity (what a script runs as when no user is
    /// chosen and `keepalived_script` does not exist).
    pub(crate) fn ours() -> RunAs {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        RunAs {
            name: format!("uid {uid}"),
            uid,
            gid,
            groups: Vec::new(),
        }
    }

    /// Resolves `USER [[:]GROUP]`.
    pub(crate) fn resolve(spec: &str) -> Result<RunAs, String> {
        let mut words = spec.split_whitespace();
        let user = words.next().ok_or("no user named")?;
        let group = words.next();
        if let Some(extra) = words.next() {
            return Err(format!("`{extra}`: only a user and a group may be given"));
        }
        let (uid, user_gid) = lookup_user(user)?;
        let (group, supplementary) = match group {
            Some(g) => match g.strip_prefix(':') {
                Some("") => (None, true),
                Some(g) => (Some(g), true),
                None => (Some(g), false),
            },
            None => (None, false),
        };
        let gid = match group {
            Some(g) => lookup_group(g)?,
            None => user_gid,
        };
        let groups = if supplementary {
            group_list(user, user_gid)?
        } else {
            Vec::new()
        };
        Ok(RunAs {
            name: spec.split_whitespace().collect::<Vec<_>>().join(" "),
            uid,
            gid,
            groups,
        })
    }

    /// Runs as root (user or group): what keepalived guards with
    /// `enable_script_security`.
    pub(crate) fn is_root(&self) -> bool {
        self.uid == 0 || self.gid == 0
    }

    /// Makes `cmd`'s child take this identity before it runs anything:
    /// group first, then supplementary groups, then user (after which
    /// the others could no longer be changed). Nothing is done when it
    /// is already the daemon's with no supplementary groups to set.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        let ours = RunAs::ours();
        if self.uid == ours.uid && self.gid == ours.gid && self.groups.is_empty() {
            return;
        }
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        let switch = move || -> io::Result<()> {
            // SAFETY: plain system calls in the forked child; `groups`
            // was allocated before the fork and outlives the calls.
            unsafe {
                if libc::setgid(gid) != 0
                    || libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe system calls
        // and allocates nothing.
        unsafe {
            cmd.pre_exec(switch);
        }
    }
}

/// A first buffer size for the *_r lookups (grown on ERANGE).
fn initial_buffer() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_GETPW_R_SIZE_MAX) };
    usize::try_from(n).ok().filter(|n| *n > 0).unwrap_or(1024)
}

/// Calls a getXXnam_r-style `f(buf, len)` with a buffer grown until it
/// fits; Ok(true) if found.
fn with_buffer(mut f: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, bool)) -> io::Result<bool> {
    let mut buf = vec![0 as libc::c_char; initial_buffer()];
    loop {
        match f(&mut buf) {
            (0, found) => return Ok(found),
            (libc::ERANGE, _) if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            (e, _) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

fn c_name(name: &str) -> Result<CString, String> {
    CString::new(name).map_err(|_| format!("`{name}`: not a valid name"))
}

/// A user's id and primary group.
fn lookup_user(name: &str) -> Result<(libc::uid_t, libc::gid_t), String> {
    let c = c_name(name)?;
    // SAFETY: a zeroed passwd is a valid out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let found = with_buffer(|buf| {
        // SAFETY: every pointer is valid for the call; `buf`'s length is
        // passed with it.
        let r = unsafe {
            libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out)
        };
        (r, !out.is_null())
    })
    .map_err(|e| format!("user `{name}`: {e}"))?;
    if !found {
        return Err(format!("user `{name}` does not exist"));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

/// A group's id.
fn lookup_group(name: &str) -> Result<libc::gid_t, String> {
    let c = c_name(name)?;
    // SAFETY: a zeroed group is a valid out-parameter.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::group = std::ptr::null_mut();
    let found = with_buffer(|buf| {
        // SAFETY: as for getpwnam_r.
        let r = unsafe {
            libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut out)
        };
        (r, !out.is_null())
    })
    .map_err(|e| format!("group `{name}`: {e}"))?;
    if !found {
        return Err(format!("group `{name}` does not exist"));
    }
    Ok(grp.gr_gid)
}

/// The groups `user` belongs to (its primary group `gid` included).
fn group_list(user: &str, gid: libc::gid_t) -> Result<Vec<libc::gid_t>, String> {
    let c: CString = c_name(user)?;
    let name: &CStr = &c;
    let mut groups = vec![0 as libc::gid_t; 32];
    for _ in 0..4 {
        let mut n = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `groups` holds `n` entries; getgrouplist writes at most
        // that many and updates `n`.
        let r = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        let n = usize::try_from(n).unwrap_or(0);
        if r >= 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        groups.resize(n.max(groups.len() * 2), 0);
    }
    Err(format!("user `{user}`: too many supplementary groups"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_like_keepalived() {
        let nobody = RunAs::resolve("nobody").unwrap();
        assert_eq!((nobody.uid, nobody.gid), (65534, 65534));
        assert!(nobody.groups.is_empty());
        assert!(!nobody.is_root());
        let g = RunAs::resolve("nobody  root").unwrap();
        assert_eq!((g.uid, g.gid, g.name.as_str()), (65534, 0, "nobody root"));
        assert!(g.is_root());
        // `:` adds the user's supplementary groups (its own at least).
        let sup = RunAs::resolve("nobody :").unwrap();
        assert_eq!(sup.gid, 65534);
        assert!(sup.groups.contains(&65534), "{:?}", sup.groups);
        let sup = RunAs::resolve("root :daemon").unwrap();
        assert_eq!((sup.uid, sup.gid), (0, 1));
        assert!(sup.groups.contains(&0));
        for (bad, why) in [
            ("no-such-user-rvs", "does not exist"),
            ("nobody no-such-group-rvs", "does not exist"),
            ("nobody nogroup extra", "only a user and a group"),
            ("", "no user"),
        ] {
            let e = RunAs::resolve(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
