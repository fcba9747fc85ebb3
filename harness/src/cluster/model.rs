//! What a model checker needs of a cluster (feature `model`): copying it
//! cheaply ([`Clone::clone_from`]) and its fingerprint. Two
//! clusters that hash alike answer every future action alike, and the
//! checker judges them alike, provided each sled's RNG is reseeded before
//! an action from what is hashed (the RNGs are left out: `tq-model`
//! reseeds them).
//!
//! Hashed: each sled's disk, whether it is up, its node and its context
//! (secrets and shares through a digest only: tq-core's `model` feature);
//! the plugged links; the messages in flight as a multiset (sorted, since
//! an action picks a message by what it is, not where it sits); Nexus, with
//! time relative to its clock (tq-nexus's `model` feature); the checker's
//! memory (the first configuration and secret seen for each epoch, what
//! each coordinator counted at the last check) and the driver faults.
//! Left out: the RNGs, counters and statistics, the disk summaries (read
//! again from the disks), when each sled's state and disk were last found
//! equal (it only spares a comparison that would pass), and what one step
//! leaves for the next check only (the last ack delivered).
//!
//! One caveat: [`Cluster::deliver_all`] (and so the liveness check) takes
//! messages oldest first, an order the fingerprint does not see; a checker
//! that merges two clusters by fingerprint runs the liveness check in the
//! order of the one it kept.

use core::hash::{Hash, Hasher};

use super::Cluster;
use crate::network::{MAX_IN_FLIGHT, Message};

impl<const SLEDS: usize> Cluster<SLEDS> {
    /// Feeds everything that decides this cluster's future to `h`.
    pub fn fingerprint<H: Hasher>(&self, h: &mut H) {
        let Self {
            rack_id,
            ids,
            sleds,
            network,
            nexus,
            checker,
            rng: _,
            stats: _,
            probe: _,
            faults,
        } = self;
        (rack_id, ids).hash(h);
        sleds.len().hash(h);
        for index in 0..sleds.len() {
            self.sled_fingerprint(index, h);
        }
        for a in 0..sleds.len() {
            for b in a + 1..sleds.len() {
                network.is_plugged(a, b).hash(h);
            }
        }
        let mut in_flight: heapless::Vec<Message<'_>, MAX_IN_FLIGHT> =
            network.in_flight().collect();
        in_flight.sort_unstable_by(|x, y| message_key(x).cmp(&message_key(y)));
        in_flight.len().hash(h);
        for msg in &in_flight {
            message_key(msg).hash(h);
        }
        nexus.machine().fingerprint(nexus.now(), h);
        checker.fingerprint(h);
        faults.hash(h);
    }

    /// Feeds sled `index`'s disk and, if it is up, its node and context
    /// (not its RNG) to `h`.
    pub fn sled_fingerprint<H: Hasher>(&self, index: usize, h: &mut H) {
        let Some(sled) = self.sleds.get(index) else {
            return;
        };
        sled.disk().hash(h);
        match sled.running() {
            Some(running) => {
                true.hash(h);
                running.node.hash(h);
                running.ctx.hash(h);
            }
            None => false.hash(h),
        }
    }
}

/// A message as the multiset of messages in flight sees it.
fn message_key<'a>(msg: &Message<'a>) -> (u8, u8, &'a [u8]) {
    (msg.from, msg.to, msg.bytes)
}

/// Copies a cluster; [`Clone::clone_from`] copies into an existing one
/// without moving whole sleds or networks around (a model checker copies
/// many: a cluster is mostly capacity a small rack does not use, and its
/// network alone is a 128 KiB arena).
impl<const SLEDS: usize> Clone for Cluster<SLEDS> {
    fn clone(&self) -> Self {
        Self {
            rack_id: self.rack_id,
            ids: self.ids.clone(),
            sleds: self.sleds.clone(),
            network: self.network.clone(),
            nexus: self.nexus.clone(),
            checker: self.checker.clone(),
            rng: self.rng.clone(),
            stats: self.stats,
            probe: self.probe,
            faults: self.faults,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let Self {
            rack_id,
            ids,
            sleds,
            network,
            nexus,
            checker,
            rng,
            stats,
            probe,
            faults,
        } = self;
        *rack_id = source.rack_id;
        ids.clone_from(&source.ids);
        if sleds.len() == source.sleds.len() {
            for (to, from) in sleds.iter_mut().zip(&source.sleds) {
                to.clone_from(from);
            }
        } else {
            sleds.clone_from(&source.sleds);
        }
        network.clone_from(&source.network);
        nexus.clone_from(&source.nexus);
        checker.clone_from(&source.checker);
        rng.clone_from(&source.rng);
        *stats = source.stats;
        *probe = source.probe;
        *faults = source.faults;
    }
}
