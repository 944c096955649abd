//! `global_defs`: the few global settings that change what rvs-keepalived
//! does (router id, VRRP version and gratuitous ARP timing, script
//! policy); keepalived's many others (mail, SNMP, process tuning, ...)
//! are warned as ignored.

use super::super::model::GlobalDefs;
use super::super::tree::{Node, err};
use super::values::{Res, duration_arg, int, string_arg, uint_arg};
use super::{Ctx, ignored};

/// Applies a `global_defs { }` block (there may be several; later
/// settings win, as in keepalived).
pub(crate) fn global_defs(ctx: &mut Ctx, node: &Node, g: &mut GlobalDefs) -> Res<()> {
    for n in node.block(0)? {
        match n.name() {
            "router_id" => g.router_id = Some(string_arg(n)?),
            "vrrp_version" => g.vrrp_version = vrrp_version(n)?,
            "vrrp_garp_master_delay" => g.garp_master_delay = duration_arg(n)?,
            "vrrp_garp_master_repeat" => g.garp_master_repeat = uint_arg(n)?,
            "vrrp_garp_master_refresh" => {
                g.garp_master_refresh = Some(duration_arg(n)?).filter(|d| !d.is_zero());
            }
            "vrrp_garp_master_refresh_repeat" => g.garp_master_refresh_repeat = uint_arg(n)?,
            "vrrp_startup_delay" => g.vrrp_startup_delay = duration_arg(n)?,
            "script_user" => {
                let args = n.args_n(1, 2)?;
                let names: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
                g.script_user = Some(names.join(" "));
            }
            "enable_script_security" => g.enable_script_security = n.flag()?,
            "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr = n.flag()?,
            "vrrp_strict" => g.vrrp_strict = n.flag()?,
            _ => ctx.other(n, ignored::GLOBAL),
        }
    }
    Ok(())
}

/// `vrrp_version 2|3` (also used by `version` in an instance).
pub(crate) fn vrrp_version(n: &Node) -> Res<u8> {
    let t = n.arg1()?;
    match int(t, "VRRP version", 2, 3)? {
        2 => Ok(2),
        3 => Ok(3),
        _ => Err(err(&t.loc, "VRRP version must be 2 or 3")),
    }
}
