//! The seed corpus of the stateful targets: inputs that reach commits.

use tq_harness::DEFAULT_SLEDS;

use super::input::{Layout, Racks, Reader};
use super::run::run;

/// Seeds for the cluster target: for each of a few racks (fresh and LRTQ,
/// from 3 sleds to a whole rack of 32), the random input of
/// [`SEED_CANDIDATES`] tried
/// whose run went furthest (most commits, then most secrets loaded, then
/// most forgeries injected). Deterministic; every seed runs clean.
///
/// # Panics
///
/// If a candidate finds a violation: that is a finding to fix first.
pub fn seeds() -> Vec<crate::samples::Seed> {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};
    const RACKS: [(&str, bool, usize, usize); 9] = [
        ("fresh_3", false, 3, 3),
        ("fresh_5_of_6", false, 6, 5),
        ("fresh_8", false, 8, 8),
        ("lrtq_4", true, 4, 4),
        ("lrtq_5_of_7", true, 7, 5),
        ("lrtq_8", true, 8, 8),
        ("fresh_12_of_13", false, 13, 12),
        ("lrtq_17", true, 17, 17),
        ("lrtq_32", true, 32, 32),
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let mut seeds = Vec::new();
    for (name, lrtq, sleds, members) in RACKS {
        let mut best: Option<((u32, u32, u32), Vec<u8>)> = None;
        for _ in 0..SEED_CANDIDATES {
            let layout = Layout {
                lrtq,
                sleds,
                members,
                seed: u64::from(rng.next_u32() as u8),
            };
            let mut input = layout.header();
            let mut body = vec![0u8; SEED_LEN];
            rng.fill_bytes(&mut body);
            input.extend_from_slice(&body);
            let stats = match run(&input) {
                Ok(stats) => stats,
                Err(violation) => panic!("seed candidate {input:?} finds {violation:?}"),
            };
            let score = (stats.committed, stats.harness.secrets_loaded, stats.forged);
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, input));
            }
        }
        if let Some((_, input)) = best {
            seeds.push((name, input));
        }
    }
    seeds
}

/// Seeds for the `cluster_safety` target: the `cluster` seeds of racks of
/// up to 8 sleds, whose header both targets read alike.
pub fn safety_seeds(cluster_seeds: &[crate::samples::Seed]) -> Vec<crate::samples::Seed> {
    cluster_seeds
        .iter()
        .filter(|(_, input)| {
            let layout = Layout::read(&mut Reader(input), Racks::Whole);
            layout.sleds <= DEFAULT_SLEDS
                && Layout::read(&mut Reader(input), Racks::Small) == layout
        })
        .cloned()
        .collect()
}

/// Random inputs tried per seed.
pub const SEED_CANDIDATES: usize = 64;

/// Bytes of steps in a seed.
pub const SEED_LEN: usize = 600;
