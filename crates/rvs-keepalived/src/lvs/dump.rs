//! The state dump (SIGUSR1): every virtual server and real server with its
//! health, its checkers' results and counts, and whether rvsd is in line.

use serde_json::{Value, json};

use super::manager::{Manager, VsRun};

/// The whole LVS side as JSON.
pub(super) fn dump(m: &Manager) -> Value {
    json!({ "virtual_servers": m.vss.iter().map(|v| vs(m, v)).collect::<Vec<_>>() })
}

fn updown(up: bool) -> &'static str {
    if up { "up" } else { "down" }
}

fn vs(m: &Manager, v: &VsRun) -> Value {
    let rss: Vec<Value> = v
        .state
        .rs
        .iter()
        .map(|r| {
            let checkers: Vec<Value> = r
                .checks
                .iter()
                .map(|c| {
                    let mut o = json!({ "id": c.id, "state": updown(c.up), "weight": c.weight });
                    if let Some(t) = m.tasks.get(&c.id) {
                        o["kind"] = json!(t.spec.kind_name());
                        o["target"] = json!(t.spec.target.to_string());
                        o["delay_loop_ms"] = json!(t.spec.delay_loop.as_millis() as u64);
                        o["stats"] = json!(t.stats());
                    }
                    o
                })
                .collect();
            json!({
                "addr": std::net::SocketAddr::new(r.dest.addr, r.dest.port).to_string(),
                "state": updown(r.alive()),
                "weight": r.weight(),
                "configured_weight": r.dest.weight,
                "inhibit_on_failure": r.inhibit,
                "checkers": checkers,
            })
        })
        .collect();
    json!({
        "name": v.name,
        "loc": v.conf.loc.to_string(),
        "services": v.keys.iter().map(|k| json!({
            "key": k.service.key.to_string(),
            "created": k.created,
            "in_line": k.applied.is_some(),
        })).collect::<Vec<_>>(),
        "quorum": v.conf.quorum,
        "hysteresis": v.conf.hysteresis,
        "quorum_up": v.state.quorum_up(),
        "weight_sum": v.state.weight_sum(),
        "sorry_server": v.state.sorry.as_ref().map(|s| std::net::SocketAddr::new(s.dest.addr, s.dest.port).to_string()),
        "sorry_active": v.state.sorry_active(),
        "real_servers": rss,
    })
}
