//! The cluster: the simulated world (sleds, network, Nexus) and the
//! checker watching it, driven one [`crate::Action`] at a time.
//!
//! Its files: this one, the world and what can be read of it; `drive`,
//! actions and node calls; `nexus_steps`, Nexus's commands and calls;
//! `liveness`, the end-of-run check; `model` (feature `model`), copies and
//! fingerprints for the model checker. The invariants themselves are
//! the `checker` module's, which owns its memory and only reads the world.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_core::persistent::{LrtqShareData, PersistentState};

use crate::checker::{Checker, Compare, World};
use crate::invariants::{SetupError, Violation};
use crate::network::Network;
use crate::nexus::SimNexus;
use crate::sled::{DiskSummary, Sled, platform_id};
use crate::stats::RunStats;
use crate::{DEFAULT_SLEDS, MAX_SLEDS};

mod drive;
mod liveness;
#[cfg(feature = "model")]
mod model;
mod nexus_steps;

pub use drive::CallProbe;

/// How the rack starts.
#[derive(Clone, Copy, Debug)]
pub enum RackStart<'a> {
    /// New sleds with nothing on disk; Nexus's first reconfiguration makes
    /// the first secret.
    Fresh,
    /// An LRTQ rack: sled `i` holds `data[i]` (the first `data.len()` sleds
    /// are the LRTQ members) and `secret` is the LRTQ rack secret, which
    /// every load of epoch 1 must return.
    Lrtq {
        /// Per-sled LRTQ share data.
        data: &'a [LrtqShareData],
        /// The LRTQ secret (as the new protocol's epoch-1 secret).
        secret: &'a RackSecret,
    },
}

/// How a sled's driver misbehaves, to test that the checker catches it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub enum DriverFault {
    /// It stores, then acknowledges, as the contract says.
    #[default]
    None,
    /// It acknowledges every write without making it: the node then sends
    /// from state that is not on the disk.
    AcknowledgeWithoutStoring,
}

/// A simulated rack of up to `SLEDS` sleds (at most [`MAX_SLEDS`]; see
/// the crate doc for why the capacity is a parameter).
pub struct Cluster<const SLEDS: usize = DEFAULT_SLEDS> {
    pub(crate) rack_id: RackId,
    pub(crate) ids: heapless::Vec<PlatformId, SLEDS>,
    pub(crate) sleds: heapless::Vec<Sled, SLEDS>,
    pub(crate) network: Network,
    pub(crate) nexus: SimNexus,
    pub(crate) checker: Checker<SLEDS>,
    rng: ChaCha20Rng,
    pub(crate) stats: RunStats,
    probe: CallProbe,
    faults: [DriverFault; SLEDS],
}

impl<const SLEDS: usize> core::fmt::Debug for Cluster<SLEDS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Cluster")
            .field("rack_id", &self.rack_id)
            .field("nexus", &self.nexus)
            .field("network", self.network.stats())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<const SLEDS: usize> Cluster<SLEDS> {
    /// Most sleds this cluster holds.
    pub const CAPACITY: usize = SLEDS;

    /// A rack of `sled_count` sleds (at most `SLEDS`), all up and all connected. The first
    /// `members` are the rack's members (for an LRTQ rack: the LRTQ sleds,
    /// `data.len()` of them); the others are spares Nexus may add. Every
    /// random choice of the run derives from `seed`.
    pub fn new(
        seed: u64,
        rack_id: RackId,
        sled_count: usize,
        members: usize,
        start: RackStart<'_>,
    ) -> Result<Self, Violation> {
        let lrtq_count = match start {
            RackStart::Fresh => 0,
            RackStart::Lrtq { data, .. } => data.len(),
        };
        const {
            assert!(
                SLEDS <= MAX_SLEDS,
                "member sets are bit masks over the sleds"
            )
        };
        if !(tq_core::limits::MIN_MEMBERS..=sled_count).contains(&members) || sled_count > SLEDS {
            return Err(Violation::Setup(SetupError::Sizes));
        }
        if lrtq_count != 0 && lrtq_count != members {
            return Err(Violation::Setup(SetupError::LrtqData));
        }
        let mut ids = heapless::Vec::<PlatformId, SLEDS>::new();
        for index in 0..sled_count {
            let id = platform_id(index).ok_or(Violation::Setup(SetupError::Sizes))?;
            ids.push(id)
                .map_err(|_| Violation::Setup(SetupError::Sizes))?;
        }
        let nexus = SimNexus::new(seed, rack_id, &ids, members, lrtq_count != 0)?;
        let mut cluster = Self {
            rack_id,
            ids,
            sleds: heapless::Vec::new(),
            network: Network::new(sled_count),
            nexus,
            checker: Checker::new(),
            rng: ChaCha20Rng::seed_from_u64(seed),
            stats: RunStats::default(),
            probe: drive::run_call,
            faults: [DriverFault::None; SLEDS],
        };
        for index in 0..sled_count {
            let id = cluster
                .ids
                .get(index)
                .cloned()
                .ok_or(Violation::Setup(SetupError::Sizes))?;
            let state = match start {
                RackStart::Lrtq { data, .. } => match data.get(index) {
                    Some(lrtq) => PersistentState::with_lrtq(lrtq.clone()),
                    None => PersistentState::new(),
                },
                RackStart::Fresh => PersistentState::new(),
            };
            let key = cluster
                .nexus
                .sled_key(index)
                .cloned()
                .ok_or(Violation::Setup(SetupError::Sizes))?;
            let sled =
                Sled::new(id, &state, key).map_err(|e| Violation::Setup(SetupError::Disk(e)))?;
            cluster
                .sleds
                .push(sled)
                .map_err(|_| Violation::Setup(SetupError::Sizes))?;
        }
        if let RackStart::Lrtq { secret, .. } = start {
            cluster.checker.know_secret(Epoch(1), secret);
        }
        for index in 0..sled_count {
            cluster.restart(index)?;
        }
        for a in 0..sled_count {
            for b in a + 1..sled_count {
                cluster.connect(a, b)?;
            }
        }
        cluster.check()?;
        Ok(cluster)
    }

    // ---- reading ----

    /// The rack id.
    pub fn rack_id(&self) -> RackId {
        self.rack_id
    }

    /// Number of sleds.
    pub fn sled_count(&self) -> usize {
        self.sleds.len()
    }

    /// Sled `index`.
    pub fn sled(&self, index: usize) -> Option<&Sled> {
        self.sleds.get(index)
    }

    /// The id of sled `index`.
    pub fn id(&self, index: usize) -> Option<&PlatformId> {
        self.ids.get(index)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The Nexus model.
    pub fn nexus(&self) -> &SimNexus {
        &self.nexus
    }

    /// What the run did so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// Epochs for which a secret was loaded (or, for epoch 1 of an LRTQ
    /// rack, given).
    pub fn epochs_with_secret(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.checker.epochs_with_secret()
    }

    // ---- checking ----

    /// The checker, the world it reads, and the run's counts it keeps.
    pub(crate) fn checking(&mut self) -> (&mut Checker<SLEDS>, World<'_>, &mut RunStats) {
        let world = World {
            ids: &self.ids,
            sleds: &self.sleds,
            nexus: &self.nexus,
        };
        (&mut self.checker, world, &mut self.stats)
    }

    /// Checks every safety invariant (see [`crate::invariants`]).
    pub fn check(&mut self) -> Result<(), Violation> {
        let (checker, world, stats) = self.checking();
        checker.check(world, stats)
    }

    /// Compares every running sled's state with its disk, whether or not
    /// anything changed since the last comparison: the end of a run calls
    /// it.
    pub fn check_every_state_stored(&mut self) -> Result<(), Violation> {
        let (checker, world, _) = self.checking();
        for index in 0..world.sleds.len() {
            checker.check_stored(world, index, Compare::Always)?;
        }
        Ok(())
    }

    /// The decoded summary of sled `index`'s disk (cached per disk write).
    pub fn disk_summary(&mut self, index: usize) -> Result<DiskSummary, Violation> {
        let (checker, world, stats) = self.checking();
        checker.summary(world, stats, index).cloned()
    }
}
