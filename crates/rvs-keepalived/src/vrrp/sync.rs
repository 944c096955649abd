//! `vrrp_sync_group`: instances that move together, as keepalived moves
//! them (typically the outside and inside VIPs of one router):
//! - a member turning MASTER takes every other member to MASTER;
//! - a member going from MASTER to BACKUP takes the others to BACKUP;
//! - a member faulty by its own tracking holds every other member in
//!   FAULT until it recovers.
//!
//! [`Groups`] is the bookkeeping, without I/O: fed the members' state
//! changes ([`Event`]), it answers with the orders to give
//! ([`Order`]) and the group's own state changes (for its notify
//! scripts). A reload keeps what members reported: an instance that
//! keeps running reports again only when its state changes.

use std::collections::BTreeMap;

use super::instance::Event;
use super::machine::State;
use crate::conf::model::SyncGroup;

/// An order to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Move to this state.
    Follow(State),
    /// Another member is faulty (or none is any more).
    GroupFault(bool),
}

#[derive(Debug, Clone, Copy)]
struct Member {
    state: State,
    own_fault: bool,
    /// The GroupFault last ordered.
    held: bool,
    /// A Follow ordered and not yet reported done.
    ordered: Option<State>,
}

/// What an event leads to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Orders to members, by instance name.
    pub orders: Vec<(String, Order)>,
    /// The group (by index) whose state changed, and to what.
    pub group_state: Option<(usize, State)>,
}

/// Every sync group's members and state.
#[derive(Debug)]
pub(crate) struct Groups {
    groups: Vec<SyncGroup>,
    members: BTreeMap<String, Member>,
    states: Vec<State>,
}

impl Groups {
    /// The groups of a configuration.
    pub(crate) fn new(groups: &[SyncGroup]) -> Groups {
        let mut members = BTreeMap::new();
        for g in groups {
            for m in &g.members {
                members.insert(
                    m.clone(),
                    Member {
                        state: State::Init,
                        own_fault: false,
                        held: false,
                        ordered: None,
                    },
                );
            }
        }
        Groups {
            states: vec![State::Init; groups.len()],
            groups: groups.to_vec(),
            members,
        }
    }

    /// The groups after a reload: what is known of the members still
    /// configured whose instance keeps running (`kept`), and of the groups
    /// still configured, is kept.
    pub(crate) fn reloaded(self, groups: &[SyncGroup], kept: &[String]) -> Groups {
        let mut new = Groups::new(groups);
        for (name, m) in &mut new.members {
            if let Some(old) = self.members.get(name)
                && kept.contains(name)
            {
                *m = *old;
            }
        }
        for (g, state) in new.groups.iter().zip(&mut new.states) {
            if let Some(i) = self.groups.iter().position(|o| o.name == g.name) {
                *state = self.states[i];
            }
        }
        new
    }

    /// Group `i`.
    pub(crate) fn group(&self, i: usize) -> Option<&SyncGroup> {
        self.groups.get(i)
    }

    /// A member's state changed (or its own fault did).
    pub(crate) fn on_event(&mut self, ev: &Event) -> Outcome {
        let mut out = Outcome::default();
        let Some(gi) = self
            .groups
            .iter()
            .position(|g| g.members.contains(&ev.name))
        else {
            return out;
        };
        let Some(m) = self.members.get_mut(&ev.name) else {
            return out;
        };
        let prev = m.state;
        m.state = ev.state;
        m.own_fault = ev.own_fault;
        m.ordered = None;
        let names = self.groups[gi].members.clone();
        let others = || names.iter().filter(|n| **n != ev.name);
        for n in others() {
            let faulty_other = names
                .iter()
                .filter(|o| *o != n)
                .any(|o| self.members.get(o).is_some_and(|x| x.own_fault));
            if let Some(x) = self.members.get_mut(n)
                && x.held != faulty_other
            {
                x.held = faulty_other;
                out.orders
                    .push((n.clone(), Order::GroupFault(faulty_other)));
            }
        }
        let follow = match (prev, ev.state) {
            (p, State::Master) if p != State::Master => Some(State::Master),
            (State::Master, State::Backup) => Some(State::Backup),
            _ => None,
        };
        if let Some(to) = follow {
            for n in others() {
                if let Some(x) = self.members.get_mut(n)
                    && x.state != to
                    && x.ordered != Some(to)
                {
                    x.ordered = Some(to);
                    out.orders.push((n.clone(), Order::Follow(to)));
                }
            }
        }
        let states: Vec<State> = names
            .iter()
            .filter_map(|n| self.members.get(n).map(|x| x.state))
            .collect();
        let gs = if states.contains(&State::Fault) {
            State::Fault
        } else if states.iter().all(|s| *s == State::Master) {
            State::Master
        } else if states.iter().all(|s| *s == State::Stop) {
            State::Stop
        } else if states.contains(&State::Init) {
            State::Init
        } else {
            State::Backup
        };
        if gs != self.states[gi] {
            self.states[gi] = gs;
            out.group_state = Some((gi, gs));
        }
        out
    }

    /// Group states as JSON for the dump.
    pub(crate) fn dump(&self) -> serde_json::Value {
        self.groups
            .iter()
            .zip(&self.states)
            .map(|(g, s)| serde_json::json!({"name": g.name, "state": s.name(), "members": g.members}))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Groups {
        Groups::new(&[SyncGroup {
            name: "G".into(),
            members: vec!["A".into(), "B".into(), "C".into()],
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify: None,
            loc: Default::default(),
        }])
    }

    fn ev(name: &str, state: State, own_fault: bool) -> Event {
        Event {
            name: name.into(),
            state,
            own_fault,
        }
    }

    fn orders(o: Outcome) -> Vec<(String, Order)> {
        o.orders
    }

    #[test]
    fn master_and_backup_spread() {
        let mut g = groups();
        for n in ["A", "B", "C"] {
            g.on_event(&ev(n, State::Backup, false));
        }
        let o = g.on_event(&ev("A", State::Master, false));
        assert_eq!(
            o.orders,
            vec![
                ("B".into(), Order::Follow(State::Master)),
                ("C".into(), Order::Follow(State::Master))
            ]
        );
        assert_eq!(o.group_state, None);
        // The followers report; nothing more is ordered.
        assert!(orders(g.on_event(&ev("B", State::Master, false))).is_empty());
        let o = g.on_event(&ev("C", State::Master, false));
        assert!(o.orders.is_empty());
        assert_eq!(o.group_state, Some((0, State::Master)));
        // One falls back: all do.
        let o = g.on_event(&ev("B", State::Backup, false));
        assert_eq!(
            o.orders,
            vec![
                ("A".into(), Order::Follow(State::Backup)),
                ("C".into(), Order::Follow(State::Backup))
            ]
        );
        assert_eq!(o.group_state, Some((0, State::Backup)));
    }

    #[test]
    fn a_fault_holds_the_others() {
        let mut g = groups();
        for n in ["A", "B", "C"] {
            g.on_event(&ev(n, State::Backup, false));
        }
        let o = g.on_event(&ev("B", State::Fault, true));
        assert_eq!(
            o.orders,
            vec![
                ("A".into(), Order::GroupFault(true)),
                ("C".into(), Order::GroupFault(true))
            ]
        );
        assert_eq!(o.group_state, Some((0, State::Fault)));
        // Held members report FAULT, not their own: no new orders.
        assert!(orders(g.on_event(&ev("A", State::Fault, false))).is_empty());
        // Recovery releases them.
        let o = g.on_event(&ev("B", State::Backup, false));
        assert_eq!(
            o.orders,
            vec![
                ("A".into(), Order::GroupFault(false)),
                ("C".into(), Order::GroupFault(false))
            ]
        );
    }

    #[test]
    fn a_reload_keeps_what_the_members_reported() {
        let mut g = groups();
        for n in ["A", "B", "C"] {
            g.on_event(&ev(n, State::Master, false));
        }
        // SIGHUP with the same groups: the instances keep running and
        // report nothing until their state changes.
        let all: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let mut g = g.reloaded(&groups().groups, &all);
        assert_eq!(g.dump()[0]["state"], "MASTER");
        let o = g.on_event(&ev("A", State::Backup, false));
        assert_eq!(
            o.orders,
            vec![
                ("B".into(), Order::Follow(State::Backup)),
                ("C".into(), Order::Follow(State::Backup))
            ]
        );
        assert_eq!(o.group_state, Some((0, State::Backup)));
        // A member added by the reload starts unknown.
        let mut more = groups().groups;
        more[0].members.push("D".into());
        let g = g.reloaded(&more, &all[..2]);
        assert_eq!(g.dump()[0]["state"], "BACKUP");
        assert_eq!(g.members["D"].state, State::Init);
        // So does one a reload restarted (C).
        assert_eq!(g.members["C"].state, State::Init);
        assert_eq!(g.members["A"].state, State::Backup);
    }

    #[test]
    fn instances_outside_groups_are_ignored() {
        let mut g = groups();
        assert_eq!(
            g.on_event(&ev("X", State::Master, false)),
            Outcome::default()
        );
    }
}
