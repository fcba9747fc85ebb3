//! Refusals in the audit log: every interval, one record of what the sled
//! refused or dropped since the previous record, by kind and count
//! ([`AuditEvent::Refusals`]).
//!
//! Each refusal is counted where it happens: the core's counters (peer
//! messages refused or dropped, bounds hit, Nexus requests refused before
//! any MAC work), the peer network's refused handshakes and the
//! connections it dropped for what a peer sent, the node layer's full
//! queues and bad proxy frames, the API front door's closed connections,
//! and the disk key manager's refused wrappings. A record for each would
//! let whoever can reach a port write to both drives as fast as it can
//! connect; a record per interval, holding how much each count grew,
//! keeps every refusal in the log at a bounded cost. The counts of the
//! interval in which the process dies are not recorded: its counters die
//! with it.
//!
//! Nexus requests refused after authentication and secrets refused have
//! records of their own ([`AuditEvent::NexusRequest`],
//! [`AuditEvent::SecretLoad`]); they are counted here too only where a
//! counter of the core counts them.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::{MissedTickBehavior, interval};
use tq_core::node::Counters;

use crate::handle::{Bound, NodeHandle};
use crate::metrics::Snapshot;
use crate::net::{CloseReason, HandshakeRefusal, NetStats};
use crate::node::stats::ApiConnectionRefusal;

use super::AuditEvent;

/// Counts by kind (`family.reason`), in a stable order.
pub type Tally = BTreeMap<String, u64>;

/// How often the growth is recorded unless configured otherwise.
pub const DEFAULT_REFUSAL_RECORD_INTERVAL: Duration = Duration::from_secs(10);

/// Why a connection was dropped that says something about what the peer
/// sent; the other reasons (timeouts, closes, shutdown) are the network's
/// ordinary life, counted in the metrics only.
const REFUSING_CLOSES: [CloseReason; 5] = [
    CloseReason::Oversize,
    CloseReason::BadHeader,
    CloseReason::WrongRack,
    CloseReason::Undecodable,
    CloseReason::Unattested,
];

/// Every refusal count of `snapshot`, cumulative, by kind. Kinds that
/// never happened are left out.
pub fn tally(snapshot: &Snapshot) -> Tally {
    let mut tally = core_tally(&snapshot.counters);
    add_net(&mut tally, &snapshot.net);
    let shim = &snapshot.shim;
    for (bound, count) in Bound::ALL.iter().zip(shim.busy) {
        add(&mut tally, "busy", bound.label(), count);
    }
    for (reason, count) in ApiConnectionRefusal::ALL
        .iter()
        .zip(shim.api_connections_refused)
    {
        add(&mut tally, "api_connection", reason.label(), count);
    }
    add(&mut tally, "proxy", "bad_frame", shim.proxy_bad_frames);
    for disk in &snapshot.disks {
        let refused = disk.stats.wrappings_refused;
        add(&mut tally, "disk_wrapping_refused", &disk.name, refused);
    }
    tally
}

/// The core's part: each counter as `node.<name>`
/// ([`Counter::name`](tq_core::node::Counter::name)). Kinds at zero are
/// left out.
pub fn core_tally(counters: &Counters) -> Tally {
    let mut tally = Tally::new();
    for (counter, count) in counters.iter() {
        add(&mut tally, "node", counter.name(), u64::from(count));
    }
    tally
}

/// The peer network's part: refused handshakes, and connections dropped
/// for what the peer sent (all peers summed).
fn add_net(tally: &mut Tally, net: &NetStats) {
    for reason in HandshakeRefusal::ALL {
        add(tally, "handshake", reason.label(), net.refused(reason));
    }
    for peer in net.peers.values().chain([&net.other_peers]) {
        for reason in REFUSING_CLOSES {
            add(tally, "peer_dropped", reason.label(), peer.closes(reason));
        }
    }
}

fn add(tally: &mut Tally, family: &str, reason: &str, count: u64) {
    if count > 0 {
        *tally.entry(format!("{family}.{reason}")).or_default() += count;
    }
}

/// How much each count grew from `before` to `now`; kinds that did not
/// grow are left out.
pub fn growth(before: &Tally, now: &Tally) -> Tally {
    now.iter()
        .filter_map(|(kind, count)| {
            let grew = count.saturating_sub(before.get(kind).copied().unwrap_or(0));
            (grew > 0).then(|| (kind.clone(), grew))
        })
        .collect()
}

/// Until the node stops, every `every` records how much the refusal counts
/// grew since the last record (nothing if none grew). The counts start at
/// zero with the process, so the first record covers everything since the
/// start.
pub(crate) async fn record_refusals(handle: NodeHandle, every: Duration) {
    let mut tick = interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is immediate.
    tick.tick().await;
    let mut recorded = Tally::new();
    loop {
        tick.tick().await;
        let Ok(snapshot) = handle.metrics().await else {
            return;
        };
        let now = tally(&snapshot);
        let counts = growth(&recorded, &now);
        if counts.is_empty() {
            continue;
        }
        if handle.audit(AuditEvent::Refusals { counts }).await.is_err() {
            return;
        }
        recorded = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> Tally {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn growth_holds_only_what_grew_and_by_how_much() {
        let before = counts(&[("handshake.protocol", 3), ("node.undecodable", 1)]);
        let now = counts(&[
            ("handshake.protocol", 10),
            ("node.undecodable", 1),
            ("busy.api_queue", 2),
        ]);
        assert_eq!(
            growth(&before, &now),
            counts(&[("busy.api_queue", 2), ("handshake.protocol", 7)])
        );
        assert!(growth(&now, &now).is_empty());
    }

    #[test]
    fn refused_handshakes_and_peers_dropped_for_what_they_sent_are_tallied() {
        let mut net = NetStats::default();
        net.refused[HandshakeRefusal::UnknownIssuer as usize] = 2;
        let mut peer = crate::net::PeerStats::default();
        peer.closes[CloseReason::WrongRack as usize] = 1;
        peer.closes[CloseReason::Inactivity as usize] = 5;
        net.other_peers = peer;
        let mut tally = Tally::new();
        add_net(&mut tally, &net);
        assert_eq!(
            tally,
            counts(&[
                ("handshake.unknown_issuer", 2),
                ("peer_dropped.wrong_rack", 1)
            ])
        );
    }
}
