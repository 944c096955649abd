//! Choosing the real server for a new flow: persistence, then the service's
//! scheduler; and the scheduling policies around a new connection
//! (one-packet scheduling, port-0 services, templates after a
//! configuration change).
//!
//! # Persistence
//! See [`super::persist`]: a persistent service first looks for the
//! template of the client's network; a valid one decides the server, and
//! otherwise the scheduler picks and a template is created (or re-pointed,
//! if its server was removed). A full template table refuses the new flow
//! (counted as [`DropReason::ConnTableFull`]; IPVS's templates live in its
//! connection table and fail the same way).
//!
//! # One-packet scheduling (`ipvsadm -o`, UDP)
//! Every datagram is scheduled on its own. IPVS and DPVS create the
//! connection, forward the one packet and free it at once (never entering
//! it in the table), so replies through NAT/FullNAT find nothing. rvs keeps
//! a short-lived entry instead, flagged
//! [`FLAG_ONE_PACKET`](crate::fwd::FLAG_ONE_PACKET), whose only job is the
//! reply direction:
//! - forwarding modes that never see replies (DR, TUN): the entry's timeout
//!   is zero, so the next [`Worker::expire`] removes it;
//! - modes that see replies (FullNAT, NAT, SNAT): the entry lives
//!   [`WorkerOptions::one_packet_window`](super::WorkerOptions) after its
//!   last packet, so the server's answer is mapped back to the client;
//! - in both cases the client's *next* datagram that finds such an entry
//!   removes it and is scheduled anew, as a new connection. An answer to an
//!   earlier datagram of the same client port that arrives after that is
//!   no longer mapped (it meets no connection and goes to the stack): the
//!   documented price of scheduling each datagram independently.
//!
//! # Scheduler keys
//! The schedulers read what they hash from the flow key (`sh`/`mh` with
//! the port flag hash the source port too; `dh` the destination). No extra
//! key is extracted from payloads yet: `conhash` configured to hash an
//! extra key (e.g. a QUIC connection id) gets `None` and falls back to the
//! source address, as its docs state.

use core::time::Duration;

use rvs_wire::ip_proto;

use crate::classify::PacketInfo;
use crate::config::{DestSpec, Service, ServiceKey, ServiceSpec};
use crate::conn::{ConnId, Time};
use crate::fwd::{FLAG_ONE_PACKET, FLAG_PERSISTENT, Verdict};
use crate::packet::Packet;
use crate::stats::DropReason;

use super::persist::{self, Template};
use super::{ServiceState, Worker};

/// The scheduling decision for a new flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pick {
    /// Index of the real server in the service.
    pub dest: usize,
    /// The persistence template that placed it, to be bound to the new
    /// connection once it exists.
    pub template: Option<ConnId>,
}

impl Worker {
    /// The real server of `service` a new flow goes to.
    pub(super) fn schedule(
        &mut self,
        service: usize,
        info: &PacketInfo,
        now: Time,
    ) -> Result<Pick, DropReason> {
        self.clock = now;
        let svc = self.config.service(service).ok_or(DropReason::NoService)?;
        let state = self
            .services
            .get_mut(service)
            .ok_or(DropReason::NoService)?;
        let Some(p) = svc.spec.persistence else {
            return Ok(Pick {
                dest: run_scheduler(svc, state, info)?,
                template: None,
            });
        };
        let key = persist::template_key(&svc.spec.key, p.prefix_len, &info.key);
        if let Some((id, t)) = self.templates.lookup_mut(&key) {
            t.touch(now);
            if !persist::still_valid(t.data.dest, &state.facts, self.expire_quiescent_template) {
                t.data.dest = run_scheduler(svc, state, info)? as u32;
            }
            return Ok(Pick {
                dest: t.data.dest as usize,
                template: Some(id),
            });
        }
        let dest = run_scheduler(svc, state, info)?;
        let template = Template {
            service: service as u32,
            dest: dest as u32,
            conns: 0,
        };
        let id = self
            .templates
            .create(key, template, now, p.timeout)
            .map_err(|_| DropReason::ConnTableFull)?;
        Ok(Pick {
            dest,
            template: Some(id),
        })
    }

    /// After connection `id` was entered for `pick`: binds it to its
    /// template and applies one-packet scheduling.
    pub(super) fn bind_new(&mut self, id: ConnId, pick: &Pick, spec: &ServiceSpec) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(t) = pick.template {
            conn.data.flags |= FLAG_PERSISTENT;
            self.templates.bind(t);
        }
        if spec.one_packet && conn.client_key().proto == ip_proto::UDP {
            conn.data.flags |= FLAG_ONE_PACKET;
            let window = if conn.data.mode.sees_replies() {
                self.one_packet_window
            } else {
                Duration::ZERO
            };
            self.conns.set_timeout(id, window);
        }
    }

    /// A client datagram met the entry `id` of an earlier one-packet
    /// datagram: the entry goes and the datagram is scheduled anew.
    pub(super) fn one_packet_again(
        &mut self,
        id: ConnId,
        packet: &mut Packet<'_>,
        mark: u32,
        now: Time,
    ) -> Verdict {
        self.clock = now;
        self.remove_conn(id);
        // The entry is gone, so this runs the new-flow path (once).
        self.process(packet, mark, now)
    }

    /// Templates after a configuration change (see
    /// [`persist::Templates::apply`]); connections whose template was
    /// dropped are no longer counted by any.
    pub(super) fn persist_apply(
        &mut self,
        old: &crate::config::Config,
        remap: &[Option<(u32, Vec<u32>)>],
    ) {
        if !self.templates.apply(old, &self.config, remap) {
            return;
        }
        let mut kept = vec![false; self.config.services().len()];
        for (oi, m) in remap.iter().enumerate() {
            if let Some((ni, _)) = m
                && persist::same_netmask(old, oi, &self.config, *ni as usize)
                && let Some(k) = kept.get_mut(*ni as usize)
            {
                *k = true;
            }
        }
        self.conns.for_each_data_mut(|_, d| {
            if d.flags & FLAG_PERSISTENT != 0
                && !kept.get(d.service as usize).copied().unwrap_or(false)
            {
                d.flags &= !FLAG_PERSISTENT;
            }
        });
    }
}

/// The service's scheduler, over the servers' current facts.
fn run_scheduler(
    svc: &Service,
    state: &mut ServiceState,
    info: &PacketInfo,
) -> Result<usize, DropReason> {
    svc.scheduler
        .pick(&mut state.sched, &info.key, None, &state.facts)
        .ok_or(DropReason::NoRealServer)
}

/// The real server's port for a new flow: a port-0 ("all ports") TCP/UDP
/// service forwards to the client's destination port (IPVS and DPVS do so
/// whatever port the real server was given); otherwise the server's port,
/// or the client's destination port when that is 0.
pub(super) fn dest_port(spec: &ServiceSpec, dest: &DestSpec, info: &PacketInfo) -> u16 {
    match spec.key {
        ServiceKey::Addr {
            proto: ip_proto::TCP | ip_proto::UDP,
            port: 0,
            ..
        } => info.key.dst_port,
        _ if dest.port == 0 => info.key.dst_port,
        _ => dest.port,
    }
}
