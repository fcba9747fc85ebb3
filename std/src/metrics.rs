//! Every counter of a node, in the Prometheus text exposition format
//! (version 0.0.4, [`CONTENT_TYPE`]), rendered by one function: [`render`].
//!
//! A [`Snapshot`] (from [`crate::handle::NodeHandle::metrics`]) holds the
//! core's counters, the network's, the ledger's, the audit log's and the
//! node layer's own;
//! `render` writes each as one metric family with a stable name, `HELP` and
//! `TYPE`, through the `prometheus-client` crate's encoder (which appends
//! the counters' `_total` and escapes label values). Families that follow
//! a list (the core's counters, [`Bound::ALL`], [`HandshakeRefusal::ALL`]...) are
//! written from the list, so a counter added to it needs no change here. Labels: `event` (the core counter's stable name), `peer` (the
//! peer's platform id as `part:serial`, or `other` for peers past
//! [`crate::net::MAX_TRACKED_PEERS`]), `direction` (`in`/`out`), `reason`
//! (a refusal's or a close's stable label), `copy` (0 or 1), `outcome`,
//! `bound`, `disk` (a configured disk's name, at most
//! [`crate::disks::MAX_DISKS`] of them), `state`. Epochs are gauge values (`tq_node_latest_committed_epoch`...),
//! not labels, so the number of series stays bounded. Nothing secret is in
//! a snapshot.
//!
//! | family | type | labels |
//! |---|---|---|
//! | `tq_node_events_total` | counter | `event` |
//! | `tq_node_alarms` | gauge | |
//! | `tq_node_latest_committed_epoch`, `tq_node_secret_loaded_epoch`, `tq_node_coordinating_epoch` | gauge (absent if none) | |
//! | `tq_node_state_stored` | gauge (0/1) | |
//! | `tq_node_store_failures_total` | counter | |
//! | `tq_node_store_failing_attempts` | gauge | |
//! | `tq_node_busy_total` | counter | `bound` |
//! | `tq_node_sends_dropped_total` | counter | `reason` |
//! | `tq_node_undecodable_disconnects_total` | counter | |
//! | `tq_node_secret_waiters` | gauge | |
//! | `tq_proxy_forwarded_total` | counter | `outcome` |
//! | `tq_proxy_served_total`, `tq_proxy_bad_frames_total`, `tq_proxy_late_answers_total` | counter | |
//! | `tq_proxy_in_flight` | gauge | |
//! | `tq_api_connections_refused_total` | counter | `reason` (`tls_handshake`, `idle_timeout`, `bad_head`: the API front door's, [`ApiConnectionRefusal`]) |
//! | `tq_ledger_generation` | gauge | |
//! | `tq_ledger_writes_total` | counter | `outcome` (`both`, `degraded`, `failed`) |
//! | `tq_ledger_write_retries_total` | counter | |
//! | `tq_ledger_copy_write_failures_total`, `tq_ledger_copy_found_bad_total`, `tq_ledger_copy_repairs_total`, `tq_ledger_copy_repair_failures_total` | counter | `copy` |
//! | `tq_ledger_degraded` | gauge (0/1) | |
//! | `tq_audit_records_total`, `tq_audit_flushes_total`, `tq_audit_append_failures_total`, `tq_audit_rotations_total`, `tq_audit_shares_withheld_total` | counter | |
//! | `tq_audit_copy_failures_total`, `tq_audit_copy_repairs_total` | counter | `copy` |
//! | `tq_net_accepted_total`, `tq_net_handshakes_total` | counter | |
//! | `tq_net_handshakes_refused_total` | counter | `reason` |
//! | `tq_net_reference_reload_failures_total` | counter | |
//! | `tq_net_connected_peers` | gauge | |
//! | `tq_net_peer_frames_total`, `tq_net_peer_bytes_total`, `tq_net_peer_keepalives_total` | counter | `peer`, `direction` |
//! | `tq_net_peer_connects_total`, `tq_net_peer_reconnects_total`, `tq_net_peer_dials_total`, `tq_net_peer_dial_failures_total`, `tq_net_peer_queue_full_total` | counter | `peer` |
//! | `tq_net_peer_closes_total` | counter | `peer`, `reason` |
//! | `tq_disk_state` | gauge (0/1) | `disk`, `state` |
//! | `tq_disk_wrapped_epoch` | gauge (absent until read) | `disk` |
//! | `tq_disk_unlock_attempts_total`, `tq_disk_unlock_failures_total`, `tq_disk_rewraps_total`, `tq_disk_rewrap_failures_total`, `tq_disk_wrappings_refused_total`, `tq_disk_bad_key_copies_total`, `tq_disk_degraded_writes_total` | counter | `disk` |

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tq_core::ids::{Epoch, PlatformId};
use tq_core::node::Counters;

use crate::audit::AuditStats;
use crate::disks::{DiskReport, DiskState, DiskStats};
use crate::handle::Bound;
use crate::ledger::{CopyStats, LedgerStats, LedgerStatus};
use crate::net::{CloseReason, HandshakeRefusal, NetStats, PeerStats};
use crate::node::report::StorageHealth;
use crate::node::stats::{ApiConnectionRefusal, ProxyOutcome, ShimStats};

/// Every counter of one node at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The sled.
    pub sled: PlatformId,
    /// The core's counters.
    pub counters: Counters,
    /// Alarms raised.
    pub alarms: usize,
    /// The latest committed epoch.
    pub latest_committed: Option<Epoch>,
    /// The epoch whose secret is loaded.
    pub secret_loaded: Option<Epoch>,
    /// The epoch being coordinated.
    pub coordinating: Option<Epoch>,
    /// Whether the state is stored.
    pub storage: StorageHealth,
    /// The ledger copies' health.
    pub ledger_status: LedgerStatus,
    /// The ledger's counters.
    pub ledger: LedgerStats,
    /// The network's counters.
    pub net: NetStats,
    /// Peers connected now.
    pub connected: usize,
    /// The node layer's counters.
    pub shim: ShimStats,
    /// Proxied calls waiting for their answer.
    pub proxied_in_flight: usize,
    /// Callers waiting for the latest secret.
    pub secret_waiters: usize,
    /// The disks the key manager handles ([`crate::disks`]).
    pub disks: Vec<DiskReport>,
    /// The audit log's counters.
    pub audit: AuditStats,
}

/// The content type of [`render`]'s text: the Prometheus text format,
/// version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Writes `snapshot` in the Prometheus text format (version 0.0.4).
pub fn render(snapshot: &Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot.clone())));
    let mut text = String::new();
    // The only errors are the writer's, and writing to a String cannot
    // fail.
    let _ = prometheus_text::encode(&mut text, &registry);
    text
}

/// A snapshot, written out by the registry on each encode. The families
/// are constant ones (`ConstCounter`, `ConstGauge`): the values are the
/// snapshot's, read once, not live metrics the node updates.
#[derive(Debug)]
struct SnapshotCollector(Snapshot);

impl Collector for SnapshotCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let mut out = Families(encoder);
        node_families(&mut out, &self.0)?;
        ledger_families(&mut out, &self.0.ledger, self.0.ledger_status)?;
        audit_families(&mut out, &self.0.audit)?;
        net_families(&mut out, &self.0.net, self.0.connected)?;
        disk_families(&mut out, &self.0.disks)
    }
}

/// A metric family read from one field of a stats struct: name, help, the
/// field.
type FieldFamily<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// One label: name and value.
type Label<'a> = (&'static str, &'a str);

fn node_families(out: &mut Families, s: &Snapshot) -> fmt::Result {
    out.counters(
        "tq_node_events",
        "Occurrences the node counts, by kind (refused peer messages, dropped messages, bounds hit).",
        s.counters
            .iter()
            .map(|(counter, count)| ([("event", counter.name())], u64::from(count))),
    )?;
    out.gauge(
        "tq_node_alarms",
        "Alarms raised (invariant violations).",
        s.alarms as u64,
    )?;
    for (name, help, epoch) in [
        (
            "tq_node_latest_committed_epoch",
            "The latest committed epoch.",
            s.latest_committed,
        ),
        (
            "tq_node_secret_loaded_epoch",
            "The epoch whose rack secret is loaded.",
            s.secret_loaded,
        ),
        (
            "tq_node_coordinating_epoch",
            "The epoch this node coordinates.",
            s.coordinating,
        ),
    ] {
        out.gauges(name, help, epoch.map(|epoch| ([] as [Label; 0], epoch.0)))?;
    }
    let (stored, attempts) = match s.storage {
        StorageHealth::Stored => (1, 0),
        StorageHealth::Failing { attempts } => (0, u64::from(attempts)),
    };
    out.gauge(
        "tq_node_state_stored",
        "1 if the node's state is in the ledger; 0 while no copy takes it (nothing is sent).",
        stored,
    )?;
    out.counter(
        "tq_node_store_failures",
        "State writes that reached no ledger copy.",
        s.shim.store_failures,
    )?;
    out.gauge(
        "tq_node_store_failing_attempts",
        "Failed state writes in a row.",
        attempts,
    )?;
    out.counters(
        "tq_node_busy",
        "Calls refused because a bounded queue or table was full.",
        Bound::ALL
            .iter()
            .zip(s.shim.busy)
            .map(|(bound, count)| ([("bound", bound.label())], count)),
    )?;
    out.counters(
        "tq_node_sends_dropped",
        "Core messages not sent (re-sent on reconnection).",
        [
            ([("reason", "not_connected")], s.shim.sends_not_connected),
            ([("reason", "queue_full")], s.shim.sends_busy),
        ],
    )?;
    out.counter(
        "tq_node_undecodable_disconnects",
        "Connections dropped because the core could not decode a frame.",
        s.shim.undecodable_disconnects,
    )?;
    out.gauge(
        "tq_node_secret_waiters",
        "Callers waiting for the latest rack secret.",
        s.secret_waiters as u64,
    )?;
    out.counters(
        "tq_proxy_forwarded",
        "Proxied calls forwarded from this node, by outcome.",
        ProxyOutcome::ALL
            .iter()
            .zip(s.shim.proxied)
            .map(|(outcome, count)| ([("outcome", outcome.label())], count)),
    )?;
    out.counter(
        "tq_proxy_served",
        "Proxied calls run here for another sled's caller.",
        s.shim.proxy_served,
    )?;
    out.counter(
        "tq_proxy_bad_frames",
        "Proxy frames that did not decode.",
        s.shim.proxy_bad_frames,
    )?;
    out.counter(
        "tq_proxy_late_answers",
        "Proxy answers for no call in flight.",
        s.shim.proxy_late_answers,
    )?;
    out.gauge(
        "tq_proxy_in_flight",
        "Proxied calls waiting for their answer.",
        s.proxied_in_flight as u64,
    )?;
    out.counters(
        "tq_api_connections_refused",
        "API connections closed before any request reached the API, by reason.",
        ApiConnectionRefusal::ALL
            .iter()
            .zip(s.shim.api_connections_refused)
            .map(|(reason, count)| ([("reason", reason.label())], count)),
    )
}

fn disk_families(out: &mut Families, disks: &[DiskReport]) -> fmt::Result {
    out.gauges(
        "tq_disk_state",
        "1 for each disk's state (locked, unlocking, unlocked, failed), 0 for the others.",
        disks.iter().flat_map(|disk| {
            DiskState::LABELS.iter().map(|&state| {
                (
                    [("disk", disk.name.as_str()), ("state", state)],
                    u64::from(disk.state.label() == state),
                )
            })
        }),
    )?;
    out.gauges(
        "tq_disk_wrapped_epoch",
        "The epoch of each disk's newest key wrapping on disk.",
        disks.iter().filter_map(|disk| {
            disk.wrapped_epoch
                .map(|epoch| ([("disk", disk.name.as_str())], epoch.0))
        }),
    )?;
    let families: [FieldFamily<DiskStats, u64>; 7] = [
        (
            "tq_disk_unlock_attempts",
            "Attempts to unlock each disk.",
            |s| s.unlock_attempts,
        ),
        (
            "tq_disk_unlock_failures",
            "Unlock attempts that failed.",
            |s| s.unlock_failures,
        ),
        (
            "tq_disk_rewraps",
            "Re-wraps of each disk's key under a newer epoch.",
            |s| s.rewraps,
        ),
        (
            "tq_disk_rewrap_failures",
            "Re-wraps that reached no key file copy.",
            |s| s.rewrap_failures,
        ),
        (
            "tq_disk_wrappings_refused",
            "Key wrappings that did not open under their epoch's secret.",
            |s| s.wrappings_refused,
        ),
        (
            "tq_disk_bad_key_copies",
            "Key file copies found corrupt or unreadable.",
            |s| s.bad_copies,
        ),
        (
            "tq_disk_degraded_writes",
            "Key file writes that reached one copy only.",
            |s| s.degraded_writes,
        ),
    ];
    for (name, help, field) in families {
        out.counters(
            name,
            help,
            disks
                .iter()
                .map(|disk| ([("disk", disk.name.as_str())], field(&disk.stats))),
        )?;
    }
    Ok(())
}

fn audit_families(out: &mut Families, audit: &AuditStats) -> fmt::Result {
    out.counter(
        "tq_audit_records",
        "Audit records written (to at least one copy).",
        audit.records,
    )?;
    out.counter(
        "tq_audit_flushes",
        "Audit appends that flushed the drives (each a batch of records).",
        audit.flushes,
    )?;
    out.counter(
        "tq_audit_append_failures",
        "Audit appends that reached no copy.",
        audit.append_failures,
    )?;
    out.counter(
        "tq_audit_rotations",
        "Audit log segments opened by rotation.",
        audit.rotations,
    )?;
    out.counter(
        "tq_audit_shares_withheld",
        "Messages holding a share not sent because their audit record reached no copy.",
        audit.shares_withheld,
    )?;
    let per_copy = |stats: &[u64; crate::audit::AUDIT_COPIES]| -> Vec<([(&str, String); 1], u64)> {
        stats
            .iter()
            .enumerate()
            .map(|(copy, count)| ([("copy", copy.to_string())], *count))
            .collect()
    };
    out.counters(
        "tq_audit_copy_failures",
        "Audit writes that failed on this copy (left until the next open repairs it).",
        per_copy(&audit.copy_failures),
    )?;
    out.counters(
        "tq_audit_copy_repairs",
        "Times this audit log copy was rewritten from the other at open.",
        per_copy(&audit.copy_repairs),
    )
}

fn ledger_families(out: &mut Families, ledger: &LedgerStats, status: LedgerStatus) -> fmt::Result {
    out.gauge(
        "tq_ledger_generation",
        "The ledger generation on disk.",
        ledger.generation,
    )?;
    out.counters(
        "tq_ledger_writes",
        "Ledger writes, by how many copies they reached.",
        [
            ([("outcome", "both")], ledger.writes_both),
            ([("outcome", "degraded")], ledger.writes_degraded),
            ([("outcome", "failed")], ledger.writes_failed),
        ],
    )?;
    out.counter(
        "tq_ledger_write_retries",
        "Ledger write retries.",
        ledger.write_retries,
    )?;
    let copy_families: [FieldFamily<CopyStats, u64>; 4] = [
        (
            "tq_ledger_copy_write_failures",
            "Writes (repairs included) that failed on this copy.",
            |c| c.write_failures,
        ),
        (
            "tq_ledger_copy_found_bad",
            "Times open found this copy absent, corrupt, stale or unreadable.",
            |c| c.found_bad,
        ),
        (
            "tq_ledger_copy_repairs",
            "Times this copy was rewritten from the other at open.",
            |c| c.repairs,
        ),
        (
            "tq_ledger_copy_repair_failures",
            "Times such a rewrite failed.",
            |c| c.repair_failures,
        ),
    ];
    let copies: Vec<(String, &CopyStats)> = ledger
        .copies
        .iter()
        .enumerate()
        .map(|(copy, stats)| (copy.to_string(), stats))
        .collect();
    for (name, help, field) in copy_families {
        out.counters(
            name,
            help,
            copies
                .iter()
                .map(|(copy, stats)| ([("copy", copy.as_str())], field(stats))),
        )?;
    }
    out.gauge(
        "tq_ledger_degraded",
        "1 if a ledger copy is behind the other.",
        u64::from(matches!(status, LedgerStatus::Degraded { .. })),
    )
}

fn net_families(out: &mut Families, net: &NetStats, connected: usize) -> fmt::Result {
    out.counter("tq_net_accepted", "TCP connections accepted.", net.accepted)?;
    out.counter(
        "tq_net_handshakes",
        "TLS handshakes completed.",
        net.handshakes,
    )?;
    out.counters(
        "tq_net_handshakes_refused",
        "TLS handshakes refused, by reason.",
        HandshakeRefusal::ALL
            .into_iter()
            .map(|reason| ([("reason", reason.label())], net.refused(reason))),
    )?;
    out.counter(
        "tq_net_reference_reload_failures",
        "Re-reads of the reference measurements file that failed (the last good one kept).",
        net.reference_reload_failures,
    )?;
    out.gauge(
        "tq_net_connected_peers",
        "Peers with an established connection.",
        connected as u64,
    )?;
    let mut peers: Vec<(String, PeerStats)> = net
        .peers
        .iter()
        .map(|(id, stats)| (id.to_string(), *stats))
        .collect();
    if net.other_peers != PeerStats::default() {
        peers.push(("other".to_owned(), net.other_peers));
    }
    let directional: [FieldFamily<PeerStats, (u64, u64)>; 3] = [
        (
            "tq_net_peer_frames",
            "Message frames per peer (keep-alives excluded).",
            |p| (p.frames_in, p.frames_out),
        ),
        (
            "tq_net_peer_bytes",
            "Bytes per peer, length prefixes and keep-alives included.",
            |p| (p.bytes_in, p.bytes_out),
        ),
        ("tq_net_peer_keepalives", "Keep-alives per peer.", |p| {
            (p.pings_in, p.pings_out)
        }),
    ];
    for (name, help, field) in directional {
        out.counters(
            name,
            help,
            peers.iter().flat_map(|(peer, stats)| {
                let (received, sent) = field(stats);
                [
                    ([("peer", peer.as_str()), ("direction", "in")], received),
                    ([("peer", peer.as_str()), ("direction", "out")], sent),
                ]
            }),
        )?;
    }
    let plain: [FieldFamily<PeerStats, u64>; 5] = [
        (
            "tq_net_peer_connects",
            "Connections established per peer.",
            |p| p.connects,
        ),
        (
            "tq_net_peer_reconnects",
            "Connections established after the first, per peer.",
            |p| p.reconnects,
        ),
        ("tq_net_peer_dials", "Dials per peer.", |p| p.dials),
        (
            "tq_net_peer_dial_failures",
            "Dials that reached no established connection, per peer.",
            |p| p.dial_failures,
        ),
        (
            "tq_net_peer_queue_full",
            "Frames dropped because the peer's write queue was full.",
            |p| p.queue_full,
        ),
    ];
    for (name, help, field) in plain {
        out.counters(
            name,
            help,
            peers
                .iter()
                .map(|(peer, stats)| ([("peer", peer.as_str())], field(stats))),
        )?;
    }
    out.counters(
        "tq_net_peer_closes",
        "Connections that ended, per peer and reason.",
        peers.iter().flat_map(|(peer, stats)| {
            CloseReason::ALL.into_iter().map(move |reason| {
                (
                    [("peer", peer.as_str()), ("reason", reason.label())],
                    stats.closes(reason),
                )
            })
        }),
    )
}

/// Metric families written through prometheus-client's encoder. Counter
/// names are given without `_total`: the encoder appends it (to the
/// `HELP`/`TYPE` lines and the samples alike).
struct Families<'a>(DescriptorEncoder<'a>);

impl Families<'_> {
    /// A counter family with one sample per label set.
    fn counters<L: EncodeLabelSet>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, u64)>,
    ) -> fmt::Result {
        let samples = samples.into_iter().map(|(l, v)| (l, ConstCounter::new(v)));
        self.family(name, help, MetricType::Counter, samples)
    }

    /// A gauge family with one sample per label set (none: `HELP` and
    /// `TYPE` only).
    fn gauges<L: EncodeLabelSet>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, u64)>,
    ) -> fmt::Result {
        let samples = samples.into_iter().map(|(l, v)| (l, ConstGauge::new(v)));
        self.family(name, help, MetricType::Gauge, samples)
    }

    /// A family of `metric_type`, one sample per label set; the type is
    /// given, not read off a sample, since a family may have none.
    fn family<L: EncodeLabelSet, M: EncodeMetric>(
        &mut self,
        name: &str,
        help: &str,
        metric_type: MetricType,
        samples: impl IntoIterator<Item = (L, M)>,
    ) -> fmt::Result {
        let mut family = self.0.encode_descriptor(name, help, None, metric_type)?;
        for (labels, metric) in samples {
            metric.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// A counter without labels.
    fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        let counter = ConstCounter::new(value);
        counter.encode(
            self.0
                .encode_descriptor(name, help, None, counter.metric_type())?,
        )
    }

    /// A gauge without labels.
    fn gauge(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        let gauge = ConstGauge::new(value);
        gauge.encode(
            self.0
                .encode_descriptor(name, help, None, gauge.metric_type())?,
        )
    }
}
