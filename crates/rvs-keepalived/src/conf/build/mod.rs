//! Statements → the typed [`Config`]: keepalived's meaning of each
//! keyword, its defaults, and the checks that make a file usable as a
//! whole (references between blocks, duplicates).
//!
//! One file per part of keepalived.conf: [`global`] (`global_defs`),
//! [`lvs`] (`virtual_server`, `real_server`), [`check`] (the checkers),
//! [`groups`] (`virtual_server_group`, `local_address_group`), [`vrrp`]
//! (`vrrp_script`, `vrrp_instance`, `vrrp_sync_group`), [`refs`] (what
//! must agree across blocks); [`values`] reads single values and
//! [`ignored`] lists keepalived's keywords rvs does not act on.
//!
//! The first refusal stops the build (nothing is applied); warnings are
//! collected in [`Ctx`].

mod check;
mod global;
mod groups;
mod ignored;
mod lvs;
mod refs;
mod values;
mod vrrp;

use super::lexer::Token;
use super::model::{Config, Loc, Warning};
use super::tree::Node;
use values::Res;

/// What the build collects besides the model.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    /// Warnings so far, in file order.
    pub(crate) warnings: Vec<Warning>,
    /// Names used before their definition may have been read, checked by
    /// [`refs::check`] once the whole file is.
    pub(crate) refs: Vec<Ref>,
}

/// What a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    /// `track_script` → `vrrp_script`.
    VrrpScript,
    /// `virtual_server group` → `virtual_server_group`.
    VsGroup,
    /// `laddr_group_name` → `local_address_group`.
    LaddrGroup,
    /// A sync group's member → `vrrp_instance`.
    SyncMember,
}

/// One use of a name.
#[derive(Debug, Clone)]
pub(crate) struct Ref {
    /// What it names.
    pub(crate) kind: RefKind,
    /// The name.
    pub(crate) name: String,
    /// Where it is used.
    pub(crate) loc: Loc,
}

impl Ctx {
    /// Records a warning.
    pub(crate) fn warn(&mut self, loc: &Loc, message: impl Into<String>) {
        self.warnings.push(Warning {
            loc: loc.clone(),
            message: message.into(),
        });
    }

    /// Records the use of a name, resolved by [`refs::check`].
    pub(crate) fn refer(&mut self, kind: RefKind, t: &Token) {
        self.refs.push(Ref {
            kind,
            name: t.text.clone(),
            loc: t.loc.clone(),
        });
    }

    /// Records that `what` is not acted on.
    pub(crate) fn ignored_at(&mut self, loc: &Loc, what: &str) {
        self.warn(
            loc,
            format!("{what} is not supported by rvs-keepalived: ignored"),
        );
    }

    /// A keyword the block does not act on: "not supported" if it is one
    /// of keepalived's (`known`), else "unknown".
    pub(crate) fn other(&mut self, node: &Node, known: &[&str]) {
        if known.contains(&node.name()) {
            self.ignored_at(node.loc(), &format!("`{}`", node.name()));
        } else {
            self.warn(
                node.loc(),
                format!("unknown keyword `{}`: ignored", node.name()),
            );
        }
    }
}

/// Builds the configuration from the top-level statements.
pub(crate) fn build(nodes: &[Node], ctx: &mut Ctx) -> Res<Config> {
    let mut cfg = Config::default();
    let mut pending = Vec::new();
    for n in nodes {
        match n.name() {
            "global_defs" => global::global_defs(ctx, n, &mut cfg.global)?,
            "virtual_server" => cfg.virtual_servers.push(lvs::virtual_server(ctx, n)?),
            "virtual_server_group" => cfg.vs_groups.push(groups::vs_group(n)?),
            "local_address_group" => cfg.laddr_groups.push(groups::laddr_group(n)?),
            "vrrp_script" | "vrrp_track_script" => {
                cfg.vrrp_scripts.push(vrrp::script_block(ctx, n)?)
            }
            "vrrp_instance" => {
                let (inst, p) = vrrp::instance(ctx, n)?;
                cfg.vrrp_instances.push(inst);
                pending.push(p);
            }
            "vrrp_sync_group" => cfg.sync_groups.push(vrrp::sync_group(ctx, n)?),
            _ => ctx.other(n, ignored::TOP),
        }
    }
    vrrp::finish(ctx, &mut cfg, &pending)?;
    refs::check(ctx, &cfg)?;
    Ok(cfg)
}
