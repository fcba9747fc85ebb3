//! Every counter of a node, in the Prometheus text exposition format
//! (version 0.0.4), rendered by one function: [`render`].
//!
//! A [`Snapshot`] (from [`crate::handle::NodeHandle::metrics`]) holds the
//! core's counters, the network's, the ledger's and the node layer's own;
//! `render` writes each as one metric family with a stable name, `HELP` and
//! `TYPE`. Labels: `event` (the core counter's stable name), `peer` (the
//! peer's platform id as `part:serial`, or `other` for peers past
//! [`crate::net::MAX_TRACKED_PEERS`]), `direction` (`in`/`out`), `reason`
//! (a refusal's or a close's stable label), `copy` (0 or 1), `outcome`,
//! `bound`. Epochs are gauge values (`tq_node_latest_committed_epoch`...),
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
//! | `tq_ledger_generation` | gauge | |
//! | `tq_ledger_writes_total` | counter | `outcome` (`both`, `degraded`, `failed`) |
//! | `tq_ledger_write_retries_total` | counter | |
//! | `tq_ledger_copy_write_failures_total`, `tq_ledger_copy_found_bad_total`, `tq_ledger_copy_repairs_total`, `tq_ledger_copy_repair_failures_total` | counter | `copy` |
//! | `tq_ledger_degraded` | gauge (0/1) | |
//! | `tq_net_accepted_total`, `tq_net_handshakes_total` | counter | |
//! | `tq_net_handshakes_refused_total` | counter | `reason` |
//! | `tq_net_connected_peers` | gauge | |
//! | `tq_net_peer_frames_total`, `tq_net_peer_bytes_total`, `tq_net_peer_keepalives_total` | counter | `peer`, `direction` |
//! | `tq_net_peer_connects_total`, `tq_net_peer_reconnects_total`, `tq_net_peer_dials_total`, `tq_net_peer_dial_failures_total`, `tq_net_peer_queue_full_total` | counter | `peer` |
//! | `tq_net_peer_closes_total` | counter | `peer`, `reason` |

use std::fmt::Write as _;

use tq_core::ids::{Epoch, PlatformId};
use tq_core::node::Counters;

use crate::handle::Bound;
use crate::ledger::{LedgerStats, LedgerStatus};
use crate::net::{CloseReason, NetStats, PeerStats, Refusal};
use crate::node::report::StorageHealth;
use crate::node::stats::{ProxyOutcome, ShimCounts};

/// A metric family read from one field of a stats struct: name, help, the
/// field.
type FieldFamily<T, V> = (&'static str, &'static str, fn(&T) -> V);

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
    pub shim: ShimCounts,
    /// Proxied calls waiting for their answer.
    pub proxied_in_flight: usize,
    /// Callers waiting for the latest secret.
    pub secret_waiters: usize,
}

/// Writes `snapshot` in the Prometheus text format.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = Out(String::new());
    node_families(&mut out, snapshot);
    ledger_families(&mut out, &snapshot.ledger, snapshot.ledger_status);
    net_families(&mut out, &snapshot.net, snapshot.connected);
    out.0
}

fn node_families(out: &mut Out, s: &Snapshot) {
    out.family(
        "tq_node_events_total",
        "counter",
        "Occurrences the node counts, by kind (refused peer messages, dropped messages, bounds hit).",
    );
    for (counter, count) in s.counters.iter() {
        out.sample(
            "tq_node_events_total",
            &[("event", counter.name())],
            u64::from(count),
        );
    }
    out.gauge(
        "tq_node_alarms",
        "Alarms raised (invariant violations).",
        s.alarms as u64,
    );
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
        out.family(name, "gauge", help);
        if let Some(epoch) = epoch {
            out.sample(name, &[], epoch.0);
        }
    }
    let (stored, attempts) = match s.storage {
        StorageHealth::Stored => (1, 0),
        StorageHealth::Failing { attempts } => (0, u64::from(attempts)),
    };
    out.gauge(
        "tq_node_state_stored",
        "1 if the node's state is in the ledger; 0 while no copy takes it (nothing is sent).",
        stored,
    );
    out.counter(
        "tq_node_store_failures_total",
        "State writes that reached no ledger copy.",
        s.shim.store_failures,
    );
    out.gauge(
        "tq_node_store_failing_attempts",
        "Failed state writes in a row.",
        attempts,
    );
    out.family(
        "tq_node_busy_total",
        "counter",
        "Calls refused because a bounded queue or table was full.",
    );
    for (bound, count) in Bound::ALL.iter().zip(s.shim.busy) {
        out.sample("tq_node_busy_total", &[("bound", bound.label())], count);
    }
    out.family(
        "tq_node_sends_dropped_total",
        "counter",
        "Core messages not sent (re-sent on reconnection).",
    );
    out.sample(
        "tq_node_sends_dropped_total",
        &[("reason", "not_connected")],
        s.shim.sends_not_connected,
    );
    out.sample(
        "tq_node_sends_dropped_total",
        &[("reason", "queue_full")],
        s.shim.sends_busy,
    );
    out.counter(
        "tq_node_undecodable_disconnects_total",
        "Connections dropped because the core could not decode a frame.",
        s.shim.undecodable_disconnects,
    );
    out.gauge(
        "tq_node_secret_waiters",
        "Callers waiting for the latest rack secret.",
        s.secret_waiters as u64,
    );
    out.family(
        "tq_proxy_forwarded_total",
        "counter",
        "Proxied calls forwarded from this node, by outcome.",
    );
    for (outcome, count) in ProxyOutcome::ALL.iter().zip(s.shim.proxied) {
        out.sample(
            "tq_proxy_forwarded_total",
            &[("outcome", outcome.label())],
            count,
        );
    }
    out.counter(
        "tq_proxy_served_total",
        "Proxied calls run here for another sled's caller.",
        s.shim.proxy_served,
    );
    out.counter(
        "tq_proxy_bad_frames_total",
        "Proxy frames that did not decode.",
        s.shim.proxy_bad_frames,
    );
    out.counter(
        "tq_proxy_late_answers_total",
        "Proxy answers for no call in flight.",
        s.shim.proxy_late_answers,
    );
    out.gauge(
        "tq_proxy_in_flight",
        "Proxied calls waiting for their answer.",
        s.proxied_in_flight as u64,
    );
}

fn ledger_families(out: &mut Out, ledger: &LedgerStats, status: LedgerStatus) {
    out.gauge(
        "tq_ledger_generation",
        "The ledger generation on disk.",
        ledger.generation,
    );
    out.family(
        "tq_ledger_writes_total",
        "counter",
        "Ledger writes, by how many copies they reached.",
    );
    for (outcome, count) in [
        ("both", ledger.writes_both),
        ("degraded", ledger.writes_degraded),
        ("failed", ledger.writes_failed),
    ] {
        out.sample("tq_ledger_writes_total", &[("outcome", outcome)], count);
    }
    out.counter(
        "tq_ledger_write_retries_total",
        "Ledger write retries.",
        ledger.write_retries,
    );
    let copy_families: [FieldFamily<crate::ledger::CopyStats, u64>; 4] = [
        (
            "tq_ledger_copy_write_failures_total",
            "Writes (repairs included) that failed on this copy.",
            |c| c.write_failures,
        ),
        (
            "tq_ledger_copy_found_bad_total",
            "Times open found this copy absent, corrupt, stale or unreadable.",
            |c| c.found_bad,
        ),
        (
            "tq_ledger_copy_repairs_total",
            "Times this copy was rewritten from the other at open.",
            |c| c.repairs,
        ),
        (
            "tq_ledger_copy_repair_failures_total",
            "Times such a rewrite failed.",
            |c| c.repair_failures,
        ),
    ];
    for (name, help, field) in copy_families {
        out.family(name, "counter", help);
        for (copy, stats) in ledger.copies.iter().enumerate() {
            out.sample(name, &[("copy", &copy.to_string())], field(stats));
        }
    }
    out.gauge(
        "tq_ledger_degraded",
        "1 if a ledger copy is behind the other.",
        u64::from(matches!(status, LedgerStatus::Degraded { .. })),
    );
}

fn net_families(out: &mut Out, net: &NetStats, connected: usize) {
    out.counter(
        "tq_net_accepted_total",
        "TCP connections accepted.",
        net.accepted,
    );
    out.counter(
        "tq_net_handshakes_total",
        "TLS handshakes completed.",
        net.handshakes,
    );
    out.family(
        "tq_net_handshakes_refused_total",
        "counter",
        "TLS handshakes refused, by reason.",
    );
    for reason in Refusal::ALL {
        out.sample(
            "tq_net_handshakes_refused_total",
            &[("reason", reason.label())],
            net.refused(reason),
        );
    }
    out.gauge(
        "tq_net_connected_peers",
        "Peers with an established connection.",
        connected as u64,
    );
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
            "tq_net_peer_frames_total",
            "Message frames per peer (keep-alives excluded).",
            |p| (p.frames_in, p.frames_out),
        ),
        (
            "tq_net_peer_bytes_total",
            "Bytes per peer, length prefixes and keep-alives included.",
            |p| (p.bytes_in, p.bytes_out),
        ),
        (
            "tq_net_peer_keepalives_total",
            "Keep-alives per peer.",
            |p| (p.pings_in, p.pings_out),
        ),
    ];
    for (name, help, field) in directional {
        out.family(name, "counter", help);
        for (peer, stats) in &peers {
            let (received, sent) = field(stats);
            out.sample(name, &[("peer", peer), ("direction", "in")], received);
            out.sample(name, &[("peer", peer), ("direction", "out")], sent);
        }
    }
    let plain: [FieldFamily<PeerStats, u64>; 5] = [
        (
            "tq_net_peer_connects_total",
            "Connections established per peer.",
            |p| p.connects,
        ),
        (
            "tq_net_peer_reconnects_total",
            "Connections established after the first, per peer.",
            |p| p.reconnects,
        ),
        ("tq_net_peer_dials_total", "Dials per peer.", |p| p.dials),
        (
            "tq_net_peer_dial_failures_total",
            "Dials that reached no established connection, per peer.",
            |p| p.dial_failures,
        ),
        (
            "tq_net_peer_queue_full_total",
            "Frames dropped because the peer's write queue was full.",
            |p| p.queue_full,
        ),
    ];
    for (name, help, field) in plain {
        out.family(name, "counter", help);
        for (peer, stats) in &peers {
            out.sample(name, &[("peer", peer)], field(stats));
        }
    }
    out.family(
        "tq_net_peer_closes_total",
        "counter",
        "Connections that ended, per peer and reason.",
    );
    for (peer, stats) in &peers {
        for reason in CloseReason::ALL {
            out.sample(
                "tq_net_peer_closes_total",
                &[("peer", peer), ("reason", reason.label())],
                stats.closes(reason),
            );
        }
    }
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(label);
                self.0.push_str("=\"");
                escape_into(&mut self.0, value);
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }
}

/// A label value as the text format spells it: `\`, `"` and newline
/// escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_into(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }
}
