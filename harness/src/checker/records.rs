//! What the checker remembers across steps: the first encoding seen of each
//! epoch's configuration, and the first secret loaded for each epoch.
//! Both are bounded; when full, the lowest epoch is forgotten and counted.

use subtle::ConstantTimeEq;
use tq_core::config::Configuration;
use tq_core::crypto::RackSecret;
use tq_core::ids::Epoch;
use tq_core::messages::{Body, Envelope, PeerMsgRef};
use tq_core::wire::{self, WireError};

use crate::network::MAX_MSG_LEN;

/// One configuration's encoding, as a `CommitAdvance` message.
type MsgBytes = heapless::Vec<u8, MAX_MSG_LEN>;

/// Most epochs whose configuration and secret are remembered.
pub const MAX_TRACKED_EPOCHS: usize = 32;

/// What a comparison with the record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// First time for this epoch: recorded.
    New,
    /// Same as recorded.
    Same,
    /// Different from what was recorded.
    Different,
}

/// One encoding per epoch (the configuration wrapped in a `CommitAdvance`
/// message, so the wire's own encoding is what is compared).
#[derive(Debug, Default)]
pub(crate) struct ConfigRecord {
    entries: heapless::Vec<(Epoch, MsgBytes), MAX_TRACKED_EPOCHS>,
    forgotten: u32,
}

impl ConfigRecord {
    pub(crate) fn observe(&mut self, config: &Configuration) -> Result<Seen, WireError> {
        let mut buf = [0u8; MAX_MSG_LEN];
        let msg: PeerMsgRef<'_> = Envelope {
            rack_id: config.rack_id(),
            body: Body::CommitAdvance(config),
        };
        let bytes = wire::encode_peer_msg(&msg, &mut buf)?;
        let epoch = config.epoch();
        if let Some((_, known)) = self.entries.iter().find(|(e, _)| *e == epoch) {
            return Ok(if known.as_slice() == bytes {
                Seen::Same
            } else {
                Seen::Different
            });
        }
        let bytes = MsgBytes::from_slice(bytes).map_err(|_| WireError::BufferTooSmall)?;
        if self.entries.is_full() {
            forget_lowest(&mut self.entries);
            self.forgotten = self.forgotten.saturating_add(1);
        }
        // Cannot fail after making room; a failure only loses a record.
        let _ = self.entries.push((epoch, bytes));
        Ok(Seen::New)
    }
}

/// The first secret loaded for each epoch.
#[derive(Debug, Default)]
#[cfg_attr(feature = "model", derive(Clone))]
pub(crate) struct SecretRecord {
    entries: heapless::Vec<(Epoch, RackSecret), MAX_TRACKED_EPOCHS>,
    forgotten: u32,
}

impl SecretRecord {
    pub(crate) fn observe(&mut self, epoch: Epoch, secret: &RackSecret) -> Seen {
        if let Some((_, known)) = self.entries.iter().find(|(e, _)| *e == epoch) {
            return if bool::from(known.ct_eq(secret)) {
                Seen::Same
            } else {
                Seen::Different
            };
        }
        if self.entries.is_full() {
            forget_lowest(&mut self.entries);
            self.forgotten = self.forgotten.saturating_add(1);
        }
        let _ = self.entries.push((epoch, secret.clone()));
        Seen::New
    }

    /// Epochs with a recorded secret.
    pub(crate) fn epochs(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.entries.iter().map(|(e, _)| *e)
    }
}

/// Copies the encodings, not the capacity around them.
#[cfg(feature = "model")]
impl Clone for ConfigRecord {
    fn clone(&self) -> Self {
        let mut copy = Self::default();
        copy.clone_from(self);
        copy
    }

    fn clone_from(&mut self, source: &Self) {
        self.entries.clear();
        for (epoch, bytes) in &source.entries {
            // Same capacity: cannot fail.
            let _ = self.entries.push((*epoch, MsgBytes::new()));
            if let Some((_, copy)) = self.entries.last_mut() {
                let _ = copy.extend_from_slice(bytes);
            }
        }
        self.forgotten = source.forgotten;
    }
}

/// The record as a map from epoch to what was first seen (the count of
/// forgotten entries is a statistic).
#[cfg(feature = "model")]
impl core::hash::Hash for ConfigRecord {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        hash_by_epoch(&self.entries, h);
    }
}

/// As for [`ConfigRecord`]; each secret through its digest.
#[cfg(feature = "model")]
impl core::hash::Hash for SecretRecord {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        hash_by_epoch(&self.entries, h);
    }
}

/// Hashes the entries in epoch order, whatever order they were kept in.
#[cfg(feature = "model")]
fn hash_by_epoch<T: core::hash::Hash, const N: usize, H: core::hash::Hasher>(
    entries: &heapless::Vec<(Epoch, T), N>,
    h: &mut H,
) {
    use core::hash::Hash;
    let mut sorted: heapless::Vec<&(Epoch, T), N> = entries.iter().collect();
    sorted.sort_unstable_by_key(|(epoch, _)| *epoch);
    sorted.hash(h);
}

fn forget_lowest<T, const N: usize>(entries: &mut heapless::Vec<(Epoch, T), N>) {
    let lowest = entries
        .iter()
        .enumerate()
        .min_by_key(|(_, (e, _))| *e)
        .map(|(i, _)| i);
    if let Some(i) = lowest {
        entries.swap_remove(i);
    }
}
