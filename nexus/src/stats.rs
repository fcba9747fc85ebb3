//! What the machine did, for operators and coverage reports.

/// Counters since the machine was made or restored. Saturating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NexusStats {
    /// Reconfigurations started (restarts after an abandon included).
    pub started: u32,
    /// Epochs committed.
    pub committed: u32,
    /// Pending epochs abandoned (when told, or automatically).
    pub abandoned: u32,
    /// Of those, abandoned automatically.
    pub abandoned_automatically: u32,
    /// Automatic abandonments due but held: no member that may coordinate
    /// the pending epoch is one the caller reaches
    /// ([`crate::TimedOut::Held`]).
    pub abandon_held: u32,
    /// LRTQ upgrades committed.
    pub upgrades: u32,
    /// Commits confirmed by members.
    pub member_commits: u32,
    /// `prepare_and_commit` calls made.
    pub prepare_and_commits: u32,
    /// Sleds removed from the membership by a started reconfiguration.
    pub removals: u32,
    /// Sleds added to the membership by a started reconfiguration.
    pub additions: u32,
    /// Calls handed out.
    pub calls: u32,
    /// Calls answered [`crate::Answer::Unreachable`].
    pub unreachable: u32,
    /// Answers that refused what Nexus had every right to ask
    /// ([`crate::Reaction::Refused`]).
    pub refused: u32,
    /// Answers to no call in flight (ignored).
    pub ignored: u32,
}

pub(crate) fn bump(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}
