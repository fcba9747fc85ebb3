//! Which of a node's counters a healthy rack leaves at zero.
//!
//! [`readings`] lists every counter of a [`Snapshot`] as a [`Reading`]:
//! a stable name (`layer: counter`), its count, and whether it is an
//! anomaly. The core's counters carry their kind in their declaration
//! ([`tq_core::node::CounterKind`]); the host's are classified here, each
//! kind of refusal or close by an exhaustive match, so a new one cannot be
//! left unclassified. Normal counters are the churn of a live rack (a peer
//! that restarts, a call to a sled that is down); anomalies are what a
//! healthy rack never does (a bad certificate, a frame that does not
//! decode, a bound hit, a ledger write that failed).

use tq_core::node::Counters;

use crate::audit::AuditStats;
use crate::handle::Bound;
use crate::ledger::LedgerStats;
use crate::metrics::Snapshot;
use crate::net::{CloseReason, HandshakeRefusal, NetStats, PeerStats};
use crate::node::stats::{ApiConnectionRefusal, ProxyOutcome, ShimStats};

/// One counter of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// `layer: counter`, e.g. `core: late_share`, `ledger: writes_failed`.
    pub name: String,
    /// Its count.
    pub count: u64,
    /// Whether a healthy rack leaves it at zero.
    pub anomaly: bool,
}

fn reading(layer: &str, counter: &str, count: u64, anomaly: bool) -> Reading {
    Reading {
        name: format!("{layer}: {counter}"),
        count,
        anomaly,
    }
}

/// Every counter of `snapshot` (zero or not), in a fixed order.
pub fn readings(snapshot: &Snapshot) -> Vec<Reading> {
    let mut all = core_readings(&snapshot.counters);
    all.extend(shim_readings(&snapshot.shim));
    all.extend(ledger_readings(&snapshot.ledger));
    all.extend(audit_readings(&snapshot.audit));
    all.extend(net_readings(&snapshot.net));
    all.extend(disk_readings(&snapshot.disks));
    all
}

/// Unlocking and re-wrapping are the normal work; every failure, refused
/// wrapping, bad key file copy or half-written key file is not.
fn disk_readings(disks: &[crate::disks::DiskReport]) -> Vec<Reading> {
    let sum = |field: fn(&crate::disks::DiskStats) -> u64| {
        disks.iter().map(|d| field(&d.stats)).sum::<u64>()
    };
    vec![
        reading("disk", "unlock_attempts", sum(|s| s.unlock_attempts), false),
        reading("disk", "rewraps", sum(|s| s.rewraps), false),
        reading("disk", "unlock_failures", sum(|s| s.unlock_failures), true),
        reading("disk", "rewrap_failures", sum(|s| s.rewrap_failures), true),
        reading(
            "disk",
            "wrappings_refused",
            sum(|s| s.wrappings_refused),
            true,
        ),
        reading("disk", "bad_key_copies", sum(|s| s.bad_copies), true),
        reading("disk", "degraded_writes", sum(|s| s.degraded_writes), true),
    ]
}

/// The core's counters alone (what a sled's status reports).
pub fn core_readings(counters: &Counters) -> Vec<Reading> {
    counters
        .iter()
        .map(|(counter, count)| {
            reading(
                "core",
                counter.name(),
                u64::from(count),
                counter.is_anomaly(),
            )
        })
        .collect()
}

/// A bound that was hit means the node could not keep up: never in a
/// healthy rack.
fn shim_readings(shim: &ShimStats) -> Vec<Reading> {
    let mut all: Vec<Reading> = Bound::ALL
        .iter()
        .zip(shim.busy)
        .map(|(bound, count)| reading("node", &format!("busy_{}", bound.label()), count, true))
        .collect();
    // A proxied call to a sled that is down ends unanswered: normal.
    all.extend(
        ProxyOutcome::ALL
            .iter()
            .zip(shim.proxied)
            .map(|(outcome, count)| {
                reading(
                    "proxy",
                    &format!("forwarded_{}", outcome.label()),
                    count,
                    false,
                )
            }),
    );
    all.extend([
        reading("proxy", "served", shim.proxy_served, false),
        reading("proxy", "bad_frames", shim.proxy_bad_frames, true),
        reading("proxy", "late_answers", shim.proxy_late_answers, false),
        reading(
            "node",
            "sends_not_connected",
            shim.sends_not_connected,
            false,
        ),
        reading("node", "sends_busy", shim.sends_busy, true),
        reading("node", "store_failures", shim.store_failures, true),
        reading(
            "node",
            "undecodable_disconnects",
            shim.undecodable_disconnects,
            true,
        ),
    ]);
    // Nexus and the operator's tools speak TLS and send their request at
    // once: a refused API connection is never theirs.
    all.extend(
        ApiConnectionRefusal::ALL
            .iter()
            .zip(shim.api_connections_refused)
            .map(|(reason, count)| {
                let anomaly = match reason {
                    ApiConnectionRefusal::TlsHandshake
                    | ApiConnectionRefusal::IdleTimeout
                    | ApiConnectionRefusal::BadHead => true,
                };
                reading(
                    "api",
                    &format!("refused_{}", reason.label()),
                    count,
                    anomaly,
                )
            }),
    );
    all
}

/// Healthy drives take every write; a copy found bad at open is the trace
/// of an earlier failure. A repair or a retry is the recovery, counted by
/// its cause.
fn ledger_readings(ledger: &LedgerStats) -> Vec<Reading> {
    let copies =
        |field: fn(&crate::ledger::CopyStats) -> u64| ledger.copies.iter().map(field).sum::<u64>();
    vec![
        reading("ledger", "writes_degraded", ledger.writes_degraded, true),
        reading("ledger", "writes_failed", ledger.writes_failed, true),
        reading("ledger", "write_retries", ledger.write_retries, false),
        reading(
            "ledger",
            "copy_write_failures",
            copies(|c| c.write_failures),
            true,
        ),
        reading("ledger", "copy_found_bad", copies(|c| c.found_bad), true),
        reading("ledger", "copy_repairs", copies(|c| c.repairs), false),
        reading(
            "ledger",
            "copy_repair_failures",
            copies(|c| c.repair_failures),
            true,
        ),
    ]
}

/// The audit log is written on every drive write; a failure is the
/// drives', and a share withheld for it a refusal. Records, rotations and
/// a repair after a crash are its normal life.
fn audit_readings(audit: &AuditStats) -> Vec<Reading> {
    vec![
        reading("audit", "records", audit.records, false),
        reading("audit", "flushes", audit.flushes, false),
        reading("audit", "rotations", audit.rotations, false),
        reading("audit", "append_failures", audit.append_failures, true),
        reading("audit", "shares_withheld", audit.shares_withheld, true),
        reading(
            "audit",
            "copy_failures",
            audit.copy_failures.iter().sum(),
            true,
        ),
        reading(
            "audit",
            "copy_repairs",
            audit.copy_repairs.iter().sum(),
            false,
        ),
    ]
}

fn net_readings(net: &NetStats) -> Vec<Reading> {
    let mut all: Vec<Reading> = HandshakeRefusal::ALL
        .iter()
        .map(|&reason| {
            reading(
                "net",
                &format!("handshake_refused_{}", reason.label()),
                net.refused(reason),
                reason.is_anomaly(),
            )
        })
        .collect();
    let peers: Vec<&PeerStats> = net
        .peers
        .values()
        .chain(std::iter::once(&net.other_peers))
        .collect();
    let sum = |field: fn(&PeerStats) -> u64| peers.iter().map(|p| field(p)).sum::<u64>();
    all.extend(CloseReason::ALL.iter().map(|&reason| {
        let count = peers.iter().map(|p| p.closes(reason)).sum();
        reading(
            "net",
            &format!("closed_{}", reason.label()),
            count,
            reason.is_anomaly(),
        )
    }));
    all.extend([
        // A peer that is down or restarting is dialed in vain.
        reading("net", "dial_failures", sum(|p| p.dial_failures), false),
        reading("net", "queue_full", sum(|p| p.queue_full), true),
        reading(
            "net",
            "reference_reload_failures",
            net.reference_reload_failures,
            true,
        ),
    ]);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let snapshot = Snapshot {
            sled: tq_core::ids::PlatformId::new("p", "1").unwrap(),
            counters: Counters::new(),
            alarms: 0,
            latest_committed: None,
            secret_loaded: None,
            coordinating: None,
            storage: crate::node::report::StorageHealth::Stored,
            ledger_status: crate::ledger::LedgerStatus::Healthy,
            ledger: LedgerStats::default(),
            audit: AuditStats::default(),
            net: NetStats::default(),
            connected: 0,
            shim: ShimStats::default(),
            proxied_in_flight: 0,
            secret_waiters: 0,
            disks: Vec::new(),
        };
        let all = readings(&snapshot);
        let mut names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(all.iter().any(|r| r.anomaly) && all.iter().any(|r| !r.anomaly));
    }
}
