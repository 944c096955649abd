//! The metric families, built at scrape time from the workers' latest
//! published counters (summed over workers where the family has no
//! `worker` label) and the configuration snapshot in force.
//!
//! Names follow the Prometheus conventions: `rvs_` prefix, counters end in
//! `_total`, units in the name (`_bytes`). Labels:
//! - `service`: the virtual service as ipvsadm names it, `TCP 10.0.0.100:80`
//!   (`TCP [2001:db8::1]:80`, `FWM 7`); `server`: a real server,
//!   `10.0.1.2:80`; `direction`: `in` (client → server) or `out`;
//! - `worker`: the worker index; `port`: the interface name; `reason`:
//!   a drop reason's stable name (`rvs_lb::stats::DropReason::as_str`).
//!
//! | family | type | labels |
//! |---|---|---|
//! | `rvs_service_connections_total` | counter | service |
//! | `rvs_service_packets_total`, `rvs_service_bytes_total` | counter | service, direction |
//! | `rvs_service_active_connections`, `rvs_service_inactive_connections` | gauge | service |
//! | `rvs_real_server_connections_total` | counter | service, server |
//! | `rvs_real_server_packets_total`, `rvs_real_server_bytes_total` | counter | service, server, direction |
//! | `rvs_real_server_active_connections`, `rvs_real_server_inactive_connections` | gauge | service, server |
//! | `rvs_real_server_weight` | gauge | service, server |
//! | `rvs_worker_rx_packets_total`, `rvs_worker_tx_packets_total`, `rvs_worker_rx_bursts_total` | counter | worker |
//! | `rvs_worker_busy_polls_total`, `rvs_worker_idle_waits_total` | counter | worker |
//! | `rvs_worker_drops_total` | counter | worker, reason |
//! | `rvs_worker_tx_ring_full_total` | counter | worker |
//! | `rvs_worker_redirected_packets_total`, `rvs_worker_redirect_received_packets_total`, `rvs_worker_redirect_ring_full_total`, `rvs_worker_redirect_undeliverable_total`, `rvs_worker_kernel_handoff_packets_total`, `rvs_worker_neighbour_copies_total` | counter | worker |
//! | `rvs_worker_connections` | gauge | worker |
//! | `rvs_worker_config_generation` | gauge | worker |
//! | `rvs_stack_forwarded_packets_total`, `rvs_stack_to_kernel_packets_total`, `rvs_stack_from_kernel_packets_total` | counter | worker |
//! | `rvs_stack_neighbour_messages_total` | counter | worker, message |
//! | `rvs_stack_icmp_sent_total` | counter | worker, type |
//! | `rvs_stack_tx_queue_full_total`, `rvs_stack_neighbour_requests_limited_total` | counter | worker |
//! | `rvs_port_rx_packets_total`, `rvs_port_tx_packets_total`, `rvs_port_rx_bytes_total`, `rvs_port_tx_bytes_total` | counter | port, worker |
//! | `rvs_port_rx_bursts_total`, `rvs_port_tx_ring_full_total`, `rvs_port_rx_no_buffer_total`, `rvs_port_tx_dropped_total` | counter | port, worker |
//! | `rvs_tap_rx_packets_total`, `rvs_tap_tx_packets_total`, `rvs_tap_rx_bytes_total`, `rvs_tap_tx_bytes_total` | counter | port, tap |
//! | `rvs_fullnat_toa_segments_total` | counter | worker, result (`added`, `skipped`) |
//! | `rvs_fullnat_uoa_datagrams_total` | counter | worker, result |
//! | `rvs_fullnat_timestamps_removed_total` | counter | worker |
//! | `rvs_workers`, `rvs_services` | gauge | |
//! | `rvs_build_info` | info | version |
//! | `rvs_port_info` | info | port, backend, tap |
//!
//! `rvs_port_*` are the I/O backend's own counters (what the queue
//! received and sent); `rvs_worker_rx/tx_packets_total` are their sums
//! over the worker's ports. Drops add the three layers that count them
//! (the worker loop, the balancer and the stack), which never count the
//! same packet twice.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use rvs_lb::stats::{DropReason, TrafficStats};

use super::Static;
use crate::shared::{Shared, WorkerStats};

type Labels = Vec<(&'static str, String)>;

/// A per-port counter family: name, help, unit, value.
type PortFamily<'a> = (
    &'a str,
    &'a str,
    Option<&'a Unit>,
    &'a dyn Fn(&crate::shared::PortStats) -> u64,
);

/// A registry whose only collector is [`Families`].
pub fn registry(shared: Arc<Shared>, info: Static) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Families { shared, info }));
    r
}

/// Builds every family from the shared state at each scrape.
#[derive(Debug)]
pub struct Families {
    shared: Arc<Shared>,
    info: Static,
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (l, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&l)?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (l, v) in rows {
        ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(m.encode_family(&l)?)?;
    }
    Ok(())
}

/// A gauge without labels.
fn gauge1(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(m)
}

fn info(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = Labels>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Info)?;
    for l in rows {
        m.encode_info(&l)?;
    }
    Ok(())
}

/// Per-worker rows of one number.
fn per_worker(
    stats: &[Arc<WorkerStats>],
    f: impl Fn(&WorkerStats) -> u64,
) -> impl Iterator<Item = (Labels, u64)> {
    stats
        .iter()
        .map(move |s| (vec![("worker", s.worker.to_string())], f(s)))
        .collect::<Vec<_>>()
        .into_iter()
}

/// A service's or real server's traffic and connections, summed over
/// workers.
#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    stats: TrafficStats,
    active: u64,
    inactive: u64,
    weight: u64,
}

/// Per service and per real server, in configuration order (services
/// only a lagging worker still has come after).
#[derive(Debug, Default)]
struct Services {
    order: Vec<String>,
    svc: BTreeMap<String, Sum>,
    dests: Vec<(String, String)>,
    dest: BTreeMap<(String, String), Sum>,
}

impl Services {
    fn service(&mut self, key: String) -> &mut Sum {
        if !self.svc.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.svc.entry(key).or_default()
    }

    fn dest(&mut self, svc: &str, server: String) -> &mut Sum {
        let k = (svc.to_string(), server);
        if !self.dest.contains_key(&k) {
            self.dests.push(k.clone());
        }
        self.dest.entry(k).or_default()
    }

    fn gather(shared: &Shared, stats: &[Arc<WorkerStats>]) -> Services {
        let mut out = Services::default();
        let (lb, _) = shared.snapshots.load();
        for s in lb.services() {
            let key = s.spec.key.to_string();
            out.service(key.clone());
            for d in &s.spec.dests {
                out.dest(&key, SocketAddr::new(d.addr, d.port).to_string())
                    .weight = u64::from(d.weight);
            }
        }
        for w in stats {
            let Some(sc) = &w.services else { continue };
            for s in &sc.services {
                let Some(k) = s.key else { continue };
                let key = k.to_string();
                let t = out.service(key.clone());
                t.stats += s.stats;
                let (mut a, mut i) = (0u64, 0u64);
                for d in &s.dests {
                    a += u64::from(d.active);
                    i += u64::from(d.inactive);
                    let x = out.dest(&key, SocketAddr::new(d.addr, d.port).to_string());
                    x.stats += d.stats;
                    x.active += u64::from(d.active);
                    x.inactive += u64::from(d.inactive);
                }
                let t = out.service(key);
                t.active += a;
                t.inactive += i;
            }
        }
        out
    }

    fn svc_rows(&self, f: impl Fn(&Sum) -> u64) -> Vec<(Labels, u64)> {
        self.order
            .iter()
            .map(|k| {
                let v = self.svc.get(k).map_or(0, &f);
                (vec![("service", k.clone())], v)
            })
            .collect()
    }

    fn svc_dir_rows(&self, f: impl Fn(&TrafficStats) -> (u64, u64)) -> Vec<(Labels, u64)> {
        let mut rows = Vec::new();
        for k in &self.order {
            let (i, o) = self.svc.get(k).map_or((0, 0), |s| f(&s.stats));
            for (dir, v) in [("in", i), ("out", o)] {
                rows.push((
                    vec![("service", k.clone()), ("direction", dir.to_string())],
                    v,
                ));
            }
        }
        rows
    }

    fn dest_rows(&self, f: impl Fn(&Sum) -> u64) -> Vec<(Labels, u64)> {
        self.dests
            .iter()
            .map(|k| {
                let v = self.dest.get(k).map_or(0, &f);
                (vec![("service", k.0.clone()), ("server", k.1.clone())], v)
            })
            .collect()
    }

    fn dest_dir_rows(&self, f: impl Fn(&TrafficStats) -> (u64, u64)) -> Vec<(Labels, u64)> {
        let mut rows = Vec::new();
        for k in &self.dests {
            let (i, o) = self.dest.get(k).map_or((0, 0), |s| f(&s.stats));
            for (dir, v) in [("in", i), ("out", o)] {
                rows.push((
                    vec![
                        ("service", k.0.clone()),
                        ("server", k.1.clone()),
                        ("direction", dir.to_string()),
                    ],
                    v,
                ));
            }
        }
        rows
    }
}

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let stats: Vec<Arc<WorkerStats>> =
            self.shared.stats.iter().map(|s| s.load_full()).collect();
        let e = &mut enc;
        let sv = Services::gather(&self.shared, &stats);
        let pkts = |t: &TrafficStats| (t.in_pkts, t.out_pkts);
        let bytes = |t: &TrafficStats| (t.in_bytes, t.out_bytes);

        // Virtual services.
        counter(
            e,
            "rvs_service_connections",
            "Connections scheduled by the virtual service (new connections).",
            None,
            sv.svc_rows(|s| s.stats.conns),
        )?;
        counter(
            e,
            "rvs_service_packets",
            "Packets of the virtual service's connections; direction in is client to server.",
            None,
            sv.svc_dir_rows(pkts),
        )?;
        counter(
            e,
            "rvs_service",
            "Bytes (IP packets, headers included) of the virtual service's connections.",
            Some(&Unit::Bytes),
            sv.svc_dir_rows(bytes),
        )?;
        gauge(
            e,
            "rvs_service_active_connections",
            "Active connections of the virtual service (TCP established; ipvsadm ActiveConn).",
            sv.svc_rows(|s| s.active),
        )?;
        gauge(
            e,
            "rvs_service_inactive_connections",
            "Inactive connections of the virtual service (ipvsadm InActConn).",
            sv.svc_rows(|s| s.inactive),
        )?;

        // Real servers.
        counter(
            e,
            "rvs_real_server_connections",
            "Connections scheduled to the real server.",
            None,
            sv.dest_rows(|s| s.stats.conns),
        )?;
        counter(
            e,
            "rvs_real_server_packets",
            "Packets of the real server's connections; direction in is client to server.",
            None,
            sv.dest_dir_rows(pkts),
        )?;
        counter(
            e,
            "rvs_real_server",
            "Bytes (IP packets, headers included) of the real server's connections.",
            Some(&Unit::Bytes),
            sv.dest_dir_rows(bytes),
        )?;
        gauge(
            e,
            "rvs_real_server_active_connections",
            "Active connections of the real server.",
            sv.dest_rows(|s| s.active),
        )?;
        gauge(
            e,
            "rvs_real_server_inactive_connections",
            "Inactive connections of the real server.",
            sv.dest_rows(|s| s.inactive),
        )?;
        gauge(
            e,
            "rvs_real_server_weight",
            "The real server's weight in the configuration in force (0: quiesced).",
            sv.dest_rows(|s| s.weight),
        )?;

        // Workers.
        let io_sum = |s: &WorkerStats, f: fn(&rvs_io::IoStats) -> u64| {
            s.ports.iter().map(|p| f(&p.io)).sum::<u64>()
        };
        counter(
            e,
            "rvs_worker_rx_packets",
            "Frames the worker received, all ports.",
            None,
            per_worker(&stats, |s| io_sum(s, |i| i.rx_frames)),
        )?;
        counter(
            e,
            "rvs_worker_tx_packets",
            "Frames the worker transmitted, all ports.",
            None,
            per_worker(&stats, |s| io_sum(s, |i| i.tx_frames)),
        )?;
        counter(
            e,
            "rvs_worker_rx_bursts",
            "Receive bursts that returned at least one frame, all ports.",
            None,
            per_worker(&stats, |s| io_sum(s, |i| i.rx_bursts)),
        )?;
        counter(
            e,
            "rvs_worker_busy_polls",
            "Rounds of the worker loop that found work.",
            None,
            per_worker(&stats, |s| s.busy_polls),
        )?;
        counter(
            e,
            "rvs_worker_idle_waits",
            "Times the worker slept in poll(2) for lack of work.",
            None,
            per_worker(&stats, |s| s.idle_waits),
        )?;
        let mut drops = Vec::new();
        for s in &stats {
            let all = s.lb_drops + s.drops + s.stack.drops;
            for r in DropReason::ALL {
                drops.push((
                    vec![
                        ("worker", s.worker.to_string()),
                        ("reason", r.as_str().to_string()),
                    ],
                    all.get(r),
                ));
            }
        }
        counter(
            e,
            "rvs_worker_drops",
            "Packets dropped, by reason (worker loop, balancer and stack together).",
            None,
            drops,
        )?;
        counter(
            e,
            "rvs_worker_tx_ring_full",
            "Frames freed because a port's TX ring did not take them.",
            None,
            per_worker(&stats, |s| s.ports.iter().map(|p| p.tx_dropped).sum()),
        )?;
        counter(
            e,
            "rvs_worker_redirected_packets",
            "Frames received for a connection another worker owns and passed to it.",
            None,
            per_worker(&stats, |s| s.redirect.redirected),
        )?;
        counter(
            e,
            "rvs_worker_redirect_received_packets",
            "Frames taken from other workers' rings.",
            None,
            per_worker(&stats, |s| s.redirect.received),
        )?;
        counter(
            e,
            "rvs_worker_redirect_ring_full",
            "Frames dropped because the ring to another worker was full.",
            None,
            per_worker(&stats, |s| s.redirect.ring_full),
        )?;
        counter(
            e,
            "rvs_worker_redirect_undeliverable",
            "Frames taken from a ring that could not be placed (no buffer, unknown port).",
            None,
            per_worker(&stats, |s| s.redirect.undeliverable),
        )?;
        counter(
            e,
            "rvs_worker_kernel_handoff_packets",
            "Frames for the kernel passed to the worker that serves the TAP devices.",
            None,
            per_worker(&stats, |s| s.redirect.to_tap_owner),
        )?;
        counter(
            e,
            "rvs_worker_neighbour_copies",
            "Neighbour answers copied to the other workers.",
            None,
            per_worker(&stats, |s| s.redirect.learn_copies),
        )?;
        gauge(
            e,
            "rvs_worker_connections",
            "Connections in the worker's table.",
            per_worker(&stats, |s| s.connections),
        )?;
        gauge(
            e,
            "rvs_worker_config_generation",
            "Configuration generation the worker runs (all equal once a change is adopted).",
            per_worker(&stats, |s| s.generation),
        )?;

        // The stack.
        counter(
            e,
            "rvs_stack_forwarded_packets",
            "Packets forwarded (balanced or routed).",
            None,
            per_worker(&stats, |s| s.stack.forwarded),
        )?;
        counter(
            e,
            "rvs_stack_to_kernel_packets",
            "Packets handed to the kernel (exception path).",
            None,
            per_worker(&stats, |s| s.stack.to_kernel),
        )?;
        counter(
            e,
            "rvs_stack_from_kernel_packets",
            "Frames the kernel sent out through rvs.",
            None,
            per_worker(&stats, |s| s.stack.from_kernel),
        )?;
        let mut nm = Vec::new();
        for s in &stats {
            let c = &s.stack;
            for (m, v) in [
                ("arp_reply_sent", c.arp_replies_sent),
                ("arp_learned", c.arp_learned),
                ("arp_ignored", c.arp_ignored),
                ("arp_request_sent", c.arp_requests_sent),
                ("garp_sent", c.garp_sent),
                ("na_sent", c.na_sent),
                ("nd_learned", c.nd_learned),
                ("nd_ignored", c.nd_ignored),
                ("ns_sent", c.ns_sent),
                ("unsolicited_na_sent", c.unsolicited_na_sent),
            ] {
                nm.push((
                    vec![("worker", s.worker.to_string()), ("message", m.to_string())],
                    v,
                ));
            }
        }
        counter(
            e,
            "rvs_stack_neighbour_messages",
            "ARP and neighbour discovery messages sent, learnt from or ignored.",
            None,
            nm,
        )?;
        let mut icmp = Vec::new();
        for s in &stats {
            for (t, v) in [
                ("echo_reply", s.stack.echo_replies),
                ("time_exceeded", s.stack.time_exceeded_sent),
            ] {
                icmp.push((
                    vec![("worker", s.worker.to_string()), ("type", t.to_string())],
                    v,
                ));
            }
        }
        counter(
            e,
            "rvs_stack_icmp_sent",
            "ICMP messages rvs sent itself.",
            None,
            icmp,
        )?;
        counter(
            e,
            "rvs_stack_tx_queue_full",
            "Generated frames not queued because the queue was full.",
            None,
            per_worker(&stats, |s| s.stack.tx_queue_full),
        )?;
        counter(
            e,
            "rvs_stack_neighbour_requests_limited",
            "Neighbour requests not sent because one went out lately (rate limit).",
            None,
            per_worker(&stats, |s| s.stack.neighbour_requests_limited),
        )?;

        // Ports (the I/O backend's counters, per worker queue).
        let port_rows = |f: &dyn Fn(&crate::shared::PortStats) -> u64| {
            let mut rows = Vec::new();
            for s in &stats {
                for (i, p) in s.ports.iter().enumerate() {
                    rows.push((
                        vec![
                            ("port", self.port_name(i)),
                            ("worker", s.worker.to_string()),
                        ],
                        f(p),
                    ));
                }
            }
            rows
        };
        let port_counters: [PortFamily; 8] = [
            (
                "rvs_port_rx_packets",
                "Frames the port's queue received.",
                None,
                &|p| p.io.rx_frames,
            ),
            (
                "rvs_port_tx_packets",
                "Frames the port's queue transmitted.",
                None,
                &|p| p.io.tx_frames,
            ),
            (
                "rvs_port_rx",
                "Bytes the port's queue received (Ethernet frames).",
                Some(&Unit::Bytes),
                &|p| p.io.rx_bytes,
            ),
            (
                "rvs_port_tx",
                "Bytes the port's queue transmitted (Ethernet frames).",
                Some(&Unit::Bytes),
                &|p| p.io.tx_bytes,
            ),
            (
                "rvs_port_rx_bursts",
                "Receive bursts that returned at least one frame.",
                None,
                &|p| p.io.rx_bursts,
            ),
            (
                "rvs_port_tx_ring_full",
                "Frames the backend could not take for transmission (ring full).",
                None,
                &|p| p.io.tx_ring_full,
            ),
            (
                "rvs_port_rx_no_buffer",
                "Frames dropped on receive because no buffer was free.",
                None,
                &|p| p.io.rx_no_buffer,
            ),
            (
                "rvs_port_tx_dropped",
                "Frames the worker freed because the TX ring did not take them.",
                None,
                &|p| p.tx_dropped,
            ),
        ];
        for (name, help, unit, f) in port_counters {
            counter(e, name, help, unit, port_rows(f))?;
        }
        let tap_rows = |f: fn(&rvs_io::IoStats) -> u64| {
            let mut rows = Vec::new();
            for s in &stats {
                for (i, p) in s.ports.iter().enumerate() {
                    if let Some(t) = &p.tap {
                        rows.push((
                            vec![
                                ("port", self.port_name(i)),
                                (
                                    "tap",
                                    self.info.taps.get(i).cloned().flatten().unwrap_or_default(),
                                ),
                            ],
                            f(t),
                        ));
                    }
                }
            }
            rows
        };
        counter(
            e,
            "rvs_tap_rx_packets",
            "Frames the kernel sent out of the port's TAP device (into rvs).",
            None,
            tap_rows(|t| t.rx_frames),
        )?;
        counter(
            e,
            "rvs_tap_tx_packets",
            "Frames rvs passed to the kernel through the port's TAP device.",
            None,
            tap_rows(|t| t.tx_frames),
        )?;
        counter(
            e,
            "rvs_tap_rx",
            "Bytes the kernel sent out of the TAP device.",
            Some(&Unit::Bytes),
            tap_rows(|t| t.rx_bytes),
        )?;
        counter(
            e,
            "rvs_tap_tx",
            "Bytes rvs passed to the kernel through the TAP device.",
            Some(&Unit::Bytes),
            tap_rows(|t| t.tx_bytes),
        )?;

        // FullNAT's client-address extras.
        let result_rows = |f: fn(&WorkerStats) -> (u64, u64)| {
            let mut rows = Vec::new();
            for s in &stats {
                let (a, k) = f(s);
                for (r, v) in [("added", a), ("skipped", k)] {
                    rows.push((
                        vec![("worker", s.worker.to_string()), ("result", r.to_string())],
                        v,
                    ));
                }
            }
            rows
        };
        counter(
            e,
            "rvs_fullnat_toa_segments",
            "FullNAT TCP segments that got the client-address (TOA) option, or should have and could not.",
            None,
            result_rows(|s| (s.fullnat.toa_added, s.fullnat.toa_skipped)),
        )?;
        counter(
            e,
            "rvs_fullnat_uoa_datagrams",
            "FullNAT UDP datagrams sent with the client-address (UOA) header, or without it when they should have had it.",
            None,
            result_rows(|s| (s.fullnat.uoa_added, s.fullnat.uoa_skipped)),
        )?;
        counter(
            e,
            "rvs_fullnat_timestamps_removed",
            "Client SYNs whose TCP timestamps option was replaced by NOPs (room for TOA).",
            None,
            per_worker(&stats, |s| s.fullnat.timestamps_removed),
        )?;

        // The daemon.
        gauge1(e, "rvs_workers", "Worker threads.", stats.len() as u64)?;
        gauge1(
            e,
            "rvs_services",
            "Virtual services in the configuration in force.",
            sv.order.len() as u64,
        )?;
        info(
            e,
            "rvs_build",
            "rvsd's version.",
            [vec![("version", env!("CARGO_PKG_VERSION").to_string())]],
        )?;
        info(
            e,
            "rvs_port",
            "The ports: interface, I/O backend and TAP device.",
            (0..self.info.ports.len()).map(|i| {
                vec![
                    ("port", self.port_name(i)),
                    (
                        "backend",
                        self.info.backends.get(i).cloned().unwrap_or_default(),
                    ),
                    (
                        "tap",
                        self.info.taps.get(i).cloned().flatten().unwrap_or_default(),
                    ),
                ]
            }),
        )?;
        Ok(())
    }
}

impl Families {
    fn port_name(&self, i: usize) -> String {
        self.info
            .ports
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("port{i}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::counters::{DestCounters, ServiceCounters, SvcCounters};
    use crate::shared::PortStats;
    use rvs_lb::config::{Config, ServiceKey};
    use rvs_lb::stack::StackConfig;

    fn traffic(conns: u64, pkts: u64) -> TrafficStats {
        TrafficStats {
            conns,
            in_pkts: pkts,
            out_pkts: pkts + 1,
            in_bytes: pkts * 100,
            out_bytes: pkts * 1000,
        }
    }

    /// Every metric the Grafana dashboard (`contrib/grafana/rvs.json`)
    /// queries is one this endpoint exposes, and its queries balance their
    /// brackets.
    #[test]
    fn dashboard_queries_exposed_names() {
        let dash = include_str!("../../../../contrib/grafana/rvs.json");
        let lb = Arc::new(Config::build(Vec::new(), Default::default()).unwrap());
        let shared = Arc::new(Shared::new(1, lb, Arc::new(StackConfig::default())));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry(shared, Static::default()))
            .unwrap();
        // Sample names by family type (families without samples count).
        let exposed: std::collections::BTreeSet<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|t| t.split_once(' '))
            .map(|(n, k)| match k {
                "counter" => format!("{n}_total"),
                "info" => format!("{n}_info"),
                _ => n.to_string(),
            })
            .collect();
        let mut used = 0;
        for line in dash.lines() {
            let l = line.trim();
            let Some(expr) = l
                .strip_prefix("\"expr\": \"")
                .or_else(|| l.strip_prefix("\"definition\": \""))
            else {
                continue;
            };
            for (a, b) in [('(', ')'), ('{', '}'), ('[', ']')] {
                assert_eq!(expr.matches(a).count(), expr.matches(b).count(), "{expr}");
            }
            let mut rest = expr;
            while let Some(i) = rest.find("rvs_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exposed.contains(name.as_str()),
                    "dashboard queries {name}, not exposed"
                );
                used += 1;
                rest = &rest[i + name.len()..];
            }
        }
        assert!(used > 40, "{used} queries");
    }

    /// Two workers' counters summed per service and real server; every
    /// family once, counters ending in `_total`, HELP and TYPE present.
    #[test]
    fn sums_workers_and_names_families() {
        let lb = Arc::new(Config::build(Vec::new(), Default::default()).unwrap());
        let shared = Arc::new(Shared::new(2, lb, Arc::new(StackConfig::default())));
        let key = ServiceKey::Addr {
            proto: 6,
            addr: std::net::Ipv4Addr::new(10, 0, 0, 100).to_ipv6_mapped(),
            port: 80,
        };
        for w in 0..2u16 {
            let mut s = WorkerStats {
                worker: w,
                ports: vec![PortStats::default()],
                services: Some(Arc::new(ServiceCounters {
                    services: vec![SvcCounters {
                        key: Some(key),
                        stats: traffic(3, 10),
                        dests: vec![DestCounters {
                            addr: "10.0.1.2".parse().unwrap(),
                            port: 80,
                            stats: traffic(3, 10),
                            active: 1,
                            inactive: 2,
                        }],
                    }],
                })),
                ..WorkerStats::default()
            };
            s.lb_drops.count(DropReason::NoService);
            s.stack.drops.count(DropReason::NoService);
            s.fullnat.toa_added = 5;
            shared.stats[usize::from(w)].store(Arc::new(s));
        }
        let r = registry(
            shared,
            Static {
                ports: vec!["eth0".into()],
                backends: vec!["af_xdp".into()],
                taps: vec![None],
            },
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        let has = |l: &str| assert!(out.lines().any(|x| x == l), "no `{l}` in\n{out}");
        has("rvs_service_connections_total{service=\"TCP 10.0.0.100:80\"} 6");
        has("rvs_service_bytes_total{service=\"TCP 10.0.0.100:80\",direction=\"out\"} 20000");
        has("rvs_service_active_connections{service=\"TCP 10.0.0.100:80\"} 2");
        has(
            "rvs_real_server_inactive_connections{service=\"TCP 10.0.0.100:80\",server=\"10.0.1.2:80\"} 4",
        );
        has(
            "rvs_real_server_packets_total{service=\"TCP 10.0.0.100:80\",server=\"10.0.1.2:80\",direction=\"in\"} 20",
        );
        has("rvs_worker_drops_total{worker=\"1\",reason=\"no_service\"} 2");
        has("rvs_fullnat_toa_segments_total{worker=\"0\",result=\"added\"} 5");
        has("rvs_port_info{port=\"eth0\",backend=\"af_xdp\",tap=\"\"} 1");
        assert!(out.ends_with("# EOF\n"));
        // Each family declared once; counters' samples end in _total.
        let mut types = BTreeMap::new();
        for l in out.lines() {
            if let Some(t) = l.strip_prefix("# TYPE ") {
                let (n, k) = t.split_once(' ').unwrap();
                assert!(
                    types.insert(n.to_string(), k.to_string()).is_none(),
                    "{n} twice"
                );
                assert!(out.contains(&format!("# HELP {n} ")), "no HELP for {n}");
            }
        }
        for l in out.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let fam = types
                .iter()
                .find(|(n, _)| {
                    name == n.as_str()
                        || name.strip_suffix("_total") == Some(n.as_str())
                        || name.strip_suffix("_info") == Some(n.as_str())
                })
                .unwrap_or_else(|| panic!("{name}: no family"));
            if fam.1 == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
    }
}
