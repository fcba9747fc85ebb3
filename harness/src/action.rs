//! One step of a cluster run.
//!
//! Every value is valid: indices are taken modulo the current sizes (sleds,
//! messages in flight, members), and an action that makes no sense right now
//! (deliver with nothing in flight, restart a sled that is up, start a
//! reconfiguration while one is pending) does nothing. So a fuzzer's bytes
//! ([`Action::from_bytes`]) or a seeded RNG ([`Action::random`]) can produce
//! actions freely. Each Nexus action first moves Nexus's clock one step (see
//! [`crate::nexus`]); [`Action::Settle`] moves it one step per round.

use rand_core::Rng;

/// How a new configuration's members differ from the current ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
pub enum Change {
    /// Add the n-th sled that was never a member (none left: same members).
    Add(u8),
    /// Remove the n-th member (not below the minimum: same members).
    Remove(u8),
    /// Same members, new secret.
    Same,
}

/// One step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Action {
    /// Deliver the n-th message in flight.
    Deliver(u8),
    /// Deliver every message in flight, oldest first (a calm moment).
    DeliverAll,
    /// Put a copy of the n-th message in flight.
    Duplicate(u8),
    /// Lose the n-th message in flight.
    Drop(u8),
    /// Plug the link between two sleds.
    Connect(u8, u8),
    /// Unplug the link between two sleds.
    Disconnect(u8, u8),
    /// Crash a sled: it keeps only its disk.
    Crash(u8),
    /// Boot a crashed sled from its disk.
    Restart(u8),
    /// Nexus starts a reconfiguration (the LRTQ upgrade while the rack is
    /// still on LRTQ).
    Reconfigure {
        /// Members of the new configuration.
        change: Change,
        /// Which eligible member coordinates.
        coordinator: u8,
        /// Picks the threshold in `2..members`.
        threshold: u8,
    },
    /// Nexus polls the coordinator (retrying the start if needed) and
    /// commits once enough members acked.
    NexusPoll,
    /// Nexus sends the latest commit to the n-th member that has not
    /// confirmed it (and `prepare_and_commit` if it did not prepare).
    NexusCommit(u8),
    /// Nexus abandons the pending epoch and starts a higher one with
    /// another coordinator (the n-th eligible one).
    NexusAbandon(u8),
    /// A sled loads the rack secret of a committed epoch: the latest one
    /// Nexus committed, or `back` commits before it.
    LoadSecret {
        /// The sled.
        sled: u8,
        /// How many commits back from Nexus's latest.
        back: u8,
    },
    /// A sled drops its cached secrets.
    ClearSecrets(u8),
    /// A quiet stretch of time in which Nexus gets its work done if it can
    /// ([`crate::Cluster::settle`]): crashed sleds boot again, then rounds
    /// of delivering everything in flight and one Nexus step; cut links
    /// stay cut. Not read from bytes
    /// ([`Action::from_bytes`] keeps the fuzz targets' input format); the
    /// property test draws it so that a case goes through many
    /// reconfigurations.
    Settle,
}

impl Action {
    /// Reads one action from the front of `bytes`, consuming what it used.
    /// `None` once `bytes` is empty. Missing trailing bytes read as zero.
    /// The first byte picks the kind with weights that keep a run moving
    /// (about 40% deliveries, frequent Nexus steps, rarer crashes).
    pub fn from_bytes(bytes: &mut &[u8]) -> Option<Self> {
        let (&tag, rest) = bytes.split_first()?;
        *bytes = rest;
        let mut next = || {
            let (&b, rest) = bytes.split_first().unwrap_or((&0, &[]));
            *bytes = rest;
            b
        };
        Some(match tag {
            0..=95 => Self::Deliver(next()),
            96..=99 => Self::DeliverAll,
            100..=107 => Self::Duplicate(next()),
            108..=115 => Self::Drop(next()),
            116..=125 => Self::Connect(next(), next()),
            126..=133 => Self::Disconnect(next(), next()),
            134..=139 => Self::Crash(next()),
            140..=149 => Self::Restart(next()),
            150..=163 => {
                let change = match next() % 3 {
                    0 => Change::Add(next()),
                    1 => Change::Remove(next()),
                    _ => Change::Same,
                };
                Self::Reconfigure {
                    change,
                    coordinator: next(),
                    threshold: next(),
                }
            }
            164..=191 => Self::NexusPoll,
            192..=221 => Self::NexusCommit(next()),
            222..=227 => Self::NexusAbandon(next()),
            228..=247 => Self::LoadSecret {
                sled: next(),
                back: next(),
            },
            _ => Self::ClearSecrets(next()),
        })
    }

    /// One action drawn from `rng` (through [`Action::from_bytes`]).
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut buf = [0u8; 6];
        rng.fill_bytes(&mut buf);
        let mut bytes: &[u8] = &buf;
        Self::from_bytes(&mut bytes).unwrap_or(Self::NexusPoll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_decodes_and_short_input_reads_zeros() {
        for tag in 0..=255u8 {
            let buf = [tag];
            let mut bytes: &[u8] = &buf;
            assert!(Action::from_bytes(&mut bytes).is_some());
            assert!(bytes.is_empty());
        }
        let mut empty: &[u8] = &[];
        assert_eq!(Action::from_bytes(&mut empty), None);
        let mut bytes: &[u8] = &[5, 9, 200, 3];
        assert_eq!(Action::from_bytes(&mut bytes), Some(Action::Deliver(9)));
        assert_eq!(Action::from_bytes(&mut bytes), Some(Action::NexusCommit(3)));
        assert_eq!(Action::from_bytes(&mut bytes), None);
    }
}
