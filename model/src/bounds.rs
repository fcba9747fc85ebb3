//! The bound of one exploration: the rack, how deep, how many epochs, and
//! which kinds of steps.

/// How the rack starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// New sleds: Nexus's first reconfiguration makes the first secret
    /// (epoch 1).
    Fresh,
    /// An LRTQ rack (every member holds LRTQ share data): the first
    /// reconfiguration is the upgrade (epoch 2).
    Lrtq,
    /// A fresh rack after its first configuration: Nexus committed epoch 1,
    /// every member confirmed it, nothing is in flight. The next
    /// reconfiguration (epoch 2) collects the old secret's shares,
    /// re-encrypts it and prepares: the path a fresh start reaches only
    /// past the bounds an exhaustive search can afford.
    Committed,
    /// An LRTQ rack after its upgrade (epoch 2 committed and confirmed,
    /// nothing in flight); the next reconfiguration is epoch 3.
    Upgraded,
}

impl Start {
    /// Whether the rack holds LRTQ share data.
    pub fn is_lrtq(self) -> bool {
        matches!(self, Self::Lrtq | Self::Upgraded)
    }

    /// The epoch of the first reconfiguration Nexus starts from here.
    pub fn first_epoch(self) -> u64 {
        match self {
            Self::Fresh => 1,
            Self::Lrtq | Self::Committed => 2,
            Self::Upgraded => 3,
        }
    }
}

/// When the liveness check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// From every state explored.
    Every,
    /// From every `n`-th state explored (in the order found), the first
    /// included.
    EveryNth(u64),
    /// Never.
    Off,
}

impl Liveness {
    /// Whether the `index`-th state explored is checked.
    pub fn checks(self, index: u64) -> bool {
        match self {
            Self::Every => true,
            Self::EveryNth(n) => n != 0 && index.is_multiple_of(n),
            Self::Off => false,
        }
    }
}

/// The bound of one exploration. Everything here is a property of the
/// state, not of the path to it, so "each state once" stays exact: a state
/// found again by a longer path has nothing new to offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Sleds in the rack.
    pub sleds: usize,
    /// Of those, the first `members` are members at the start (the LRTQ
    /// sleds on an LRTQ rack); the others are spares Nexus may add.
    pub members: usize,
    /// How the rack starts.
    pub start: Start,
    /// Most steps from the start (breadth-first: every state within this
    /// many steps is explored, by a shortest path).
    pub max_depth: usize,
    /// Nexus starts no epoch above this (by a start or an abandon); a
    /// state Nexus took above it on its own (an automatic abandon) is
    /// checked but not explored further.
    pub max_epoch: u64,
    /// Most copies of one message in flight (a duplicate is offered below
    /// this).
    pub max_copies: usize,
    /// Most messages in flight for a duplicate to be offered.
    pub max_in_flight: usize,
    /// Most sleds down at once (a crash is offered below this).
    pub max_down: usize,
    /// Whether connection resets are steps.
    pub reconnects: bool,
    /// Whether loading the rack secret is a step.
    pub loads: bool,
    /// When the liveness check runs.
    pub liveness: Liveness,
    /// The harness's seed (its restarts draw RNG seeds from it).
    pub seed: u64,
}

impl Bounds {
    /// A rack of `sleds` sleds, all members, starting as `start`, explored
    /// `max_depth` steps deep through two epochs of reconfiguration, with
    /// every kind of step and the liveness check from every state.
    pub fn new(sleds: usize, start: Start, max_depth: usize) -> Self {
        let first_epoch = start.first_epoch();
        Self {
            sleds,
            members: sleds,
            start,
            max_depth,
            max_epoch: first_epoch + 1,
            max_copies: 2,
            max_in_flight: 16,
            max_down: 1,
            reconnects: true,
            loads: true,
            liveness: Liveness::Every,
            seed: 1,
        }
    }
}
