//! What a run did: counts for coverage reports and tests, kept by the
//! cluster and the checker as they see it happen.

use tq_core::node::Event;

/// What a run did, for coverage reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Actions applied.
    pub actions: u32,
    /// Crashes of a running sled.
    pub crashes: u32,
    /// Restarts of a crashed sled.
    pub restarts: u32,
    /// Secrets returned by `load_rack_secret`.
    pub secrets_loaded: u32,
    /// Times a sled's disk first showed it expunged.
    pub expunged: u32,
    /// `Committed` events handed out by nodes.
    pub committed_events: u32,
    /// `ShareComputed` events.
    pub shares_computed: u32,
    /// `ReadyToCommit` events.
    pub ready_to_commit: u32,
}

impl RunStats {
    pub(crate) fn count_event(&mut self, event: &Event) {
        let counter = match event {
            Event::Committed(_) => &mut self.committed_events,
            Event::ShareComputed(_) => &mut self.shares_computed,
            Event::ReadyToCommit { .. } => &mut self.ready_to_commit,
            _ => return,
        };
        *counter = counter.saturating_add(1);
    }
}
