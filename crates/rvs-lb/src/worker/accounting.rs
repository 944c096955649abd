//! Keeping the per-server connection counts the schedulers read (active,
//! inactive, overloaded) in step with the connection table.

use crate::config::Config;
use crate::conn::{Conn, Time};
use crate::fwd::{ConnData, FLAG_ACTIVE, FLAG_PERSISTENT};

use super::ServiceState;
use super::Templates;

/// Moves a connection between the active and inactive counts of its real
/// server after a state change.
pub(super) fn update_activity(services: &mut [ServiceState], data: &mut ConnData) {
    let active = data.state.is_active();
    let was = data.flags & FLAG_ACTIVE != 0;
    if active == was {
        return;
    }
    if active {
        data.flags |= FLAG_ACTIVE;
    } else {
        data.flags &= !FLAG_ACTIVE;
    }
    let Some(f) = services
        .get_mut(data.service as usize)
        .and_then(|s| s.facts.get_mut(data.dest as usize))
    else {
        return;
    };
    if active {
        f.inactive = f.inactive.saturating_sub(1);
        f.active += 1;
    } else {
        f.active = f.active.saturating_sub(1);
        f.inactive += 1;
    }
}

/// Uncounts a connection that is gone: at its service and real server
/// (whose overload may end with it) and at its persistence template.
pub(super) fn forget(
    services: &mut [ServiceState],
    config: &Config,
    templates: &mut Templates,
    now: Time,
    conn: &Conn<ConnData>,
) {
    let data = &conn.data;
    if data.flags & FLAG_PERSISTENT != 0 {
        templates.release(config, conn.client_key(), data.service, now);
    }
    let Some(s) = services.get_mut(data.service as usize) else {
        return;
    };
    s.conns = s.conns.saturating_sub(1);
    if let Some(f) = s.facts.get_mut(data.dest as usize) {
        if data.flags & FLAG_ACTIVE != 0 {
            f.active = f.active.saturating_sub(1);
        } else {
            f.inactive = f.inactive.saturating_sub(1);
        }
    }
    if let Some(d) = config
        .service(data.service as usize)
        .and_then(|c| c.spec.dests.get(data.dest as usize))
    {
        refresh_availability(s, data.dest as usize, d.upper_threshold, d.lower_threshold);
    }
}

/// IPVS's overload rule: a server at or above its upper threshold takes no
/// new connections until it falls below the lower threshold (or 3/4 of the
/// upper one when no lower threshold is set: `4·conns < 3·upper`).
pub(super) fn refresh_availability(state: &mut ServiceState, dest: usize, upper: u32, lower: u32) {
    let Some(f) = state.facts.get_mut(dest) else {
        return;
    };
    if upper == 0 {
        f.available = true;
        return;
    }
    let conns = f.active.saturating_add(f.inactive);
    let below_resume = if lower > 0 {
        conns < lower
    } else {
        u64::from(conns) * 4 < u64::from(upper) * 3
    };
    if conns >= upper {
        f.available = false;
    } else if below_resume {
        f.available = true;
    }
}
