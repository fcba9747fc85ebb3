//! State fingerprints and the RNG seeds derived from them.
//!
//! A state's fingerprint is a 128-bit SipHash-1-3 of everything
//! [`Cluster::fingerprint`] feeds it: two states collide with probability
//! about 2^-128, so at 10^9 states the chance of merging two different
//! ones is below 10^-20.
//!
//! Randomness is a function of the state: before each step every running
//! sled's RNG is reseeded from that sled's own fingerprint and the step.
//! So a step taken from one state always does the same thing (which makes
//! the fingerprint, which leaves the RNGs out, a complete description),
//! and two interleavings that bring a sled to the same state with the same
//! input draw the same secret, so their states meet instead of differing
//! by random bytes. Each sled and state still draws its own values: the
//! model explores no more coincidences of secrets than a real rack has.

use std::hash::{Hash, Hasher};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use siphasher::sip128::{Hasher128, SipHasher13};
use tq_harness::Violation;

use crate::Cluster;

use crate::step::Step;

/// A state's fingerprint.
pub type Fingerprint = u128;

/// SipHash keys, one pair per use, so a fingerprint, a seed and a message
/// key never coincide by construction ("tq-model", "state"; "tq-rng").
const STATE_KEY: (u64, u64) = (0x7471_2d6d_6f64_656c, 0x0073_7461_7465);
const RNG_KEY: u64 = 0x7471_2d72_6e67;
/// The key of message names ([`crate::step::Msg`]): "msg".
pub(crate) const MESSAGE_KEY: (u64, u64) = (0x006d_7367, 0);

/// The fingerprint of `cluster`.
pub fn of(cluster: &Cluster) -> Fingerprint {
    let mut h = SipHasher13::new_with_keys(STATE_KEY.0, STATE_KEY.1);
    cluster.fingerprint(&mut h);
    h.finish128().as_u128()
}

/// Reseeds the RNG of every running sled that `step` may make draw
/// randomness from its own fingerprint and `step`. Only a delivery (to its
/// receiver) and Nexus's calls (to a coordinator) hand a node its RNG; a
/// sled not reseeded draws nothing in this step, and is reseeded before
/// any step that may make it draw, so RNG states never need hashing.
pub(crate) fn reseed(cluster: &mut Cluster, step: &Step) -> Result<(), Violation> {
    let draws = |index: usize| match step {
        Step::Deliver(msg) => usize::from(msg.to) == index,
        Step::Start { .. } | Step::Poll | Step::Abandon(_) => true,
        Step::Drop(_)
        | Step::Duplicate(_)
        | Step::Crash(_)
        | Step::Restart(_)
        | Step::Reconnect(..)
        | Step::Commit(_)
        | Step::Load(_) => false,
    };
    for index in 0..cluster.sled_count() {
        if !draws(index) || !cluster.sled(index).is_some_and(|s| s.is_up()) {
            continue;
        }
        let mut seed = [0u8; 32];
        for (half, chunk) in seed.chunks_mut(16).enumerate() {
            let mut h = SipHasher13::new_with_keys(RNG_KEY, half as u64);
            index.hash(&mut h);
            cluster.sled_fingerprint(index, &mut h);
            step.hash(&mut h);
            chunk.copy_from_slice(&h.finish128().as_u128().to_le_bytes());
        }
        cluster.call(index, |_, _, rng, _| *rng = ChaCha20Rng::from_seed(seed))?;
    }
    Ok(())
}

/// A hasher for fingerprints as keys: they are uniformly random already.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}
