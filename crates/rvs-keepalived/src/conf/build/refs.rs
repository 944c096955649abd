//! What must agree across blocks: every name used is defined
//! (`track_script`, `virtual_server group`, `laddr_group_name`, sync
//! group members), definitions are unique, an instance belongs to one
//! sync group at most, and no virtual server is defined twice.

use super::super::model::{Config, Loc, VsAddr};
use super::super::tree::err;
use super::values::Res;
use super::{Ctx, RefKind};

/// Checks the whole configuration.
pub(crate) fn check(ctx: &Ctx, cfg: &Config) -> Res<()> {
    unique(
        "vrrp_script",
        cfg.vrrp_scripts.iter().map(|s| (&s.name, &s.loc)),
    )?;
    unique(
        "virtual_server_group",
        cfg.vs_groups.iter().map(|g| (&g.name, &g.loc)),
    )?;
    unique(
        "local_address_group",
        cfg.laddr_groups.iter().map(|g| (&g.name, &g.loc)),
    )?;
    unique(
        "vrrp_sync_group",
        cfg.sync_groups.iter().map(|g| (&g.name, &g.loc)),
    )?;
    for r in &ctx.refs {
        let (defined, what) = match r.kind {
            RefKind::VrrpScript => (
                cfg.vrrp_scripts.iter().any(|s| s.name == r.name),
                "vrrp_script",
            ),
            RefKind::VsGroup => (
                cfg.vs_groups.iter().any(|g| g.name == r.name),
                "virtual_server_group",
            ),
            RefKind::LaddrGroup => (
                cfg.laddr_groups.iter().any(|g| g.name == r.name),
                "local_address_group",
            ),
            RefKind::SyncMember => (
                cfg.vrrp_instances.iter().any(|v| v.name == r.name),
                "vrrp_instance",
            ),
        };
        if !defined {
            return Err(err(&r.loc, format!("{what} `{}` is not defined", r.name)));
        }
    }
    let members = ctx.refs.iter().filter(|r| r.kind == RefKind::SyncMember);
    for (i, r) in members.clone().enumerate() {
        if let Some(first) = members.clone().take(i).find(|m| m.name == r.name) {
            return Err(err(
                &r.loc,
                format!(
                    "vrrp_instance `{}` is already in a sync group at {}",
                    r.name, first.loc
                ),
            ));
        }
    }
    for (i, vs) in cfg.virtual_servers.iter().enumerate() {
        let same = cfg.virtual_servers[..i].iter().find(|w| {
            w.addr == vs.addr
                && (w.protocol == vs.protocol || !matches!(vs.addr, VsAddr::Addr { .. }))
        });
        if let Some(w) = same {
            return Err(err(
                &vs.loc,
                format!("this virtual_server is already defined at {}", w.loc),
            ));
        }
    }
    Ok(())
}

/// Names defined twice: an error at the second definition.
fn unique<'a>(what: &str, defs: impl Iterator<Item = (&'a String, &'a Loc)> + Clone) -> Res<()> {
    for (i, (name, loc)) in defs.clone().enumerate() {
        if let Some((_, first)) = defs.clone().take(i).find(|(n, _)| *n == name) {
            return Err(err(
                loc,
                format!("{what} `{name}` is already defined at {first}"),
            ));
        }
    }
    Ok(())
}
