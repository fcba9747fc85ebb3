//! The calls Nexus makes on sleds and the answers it gets back.

use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, CoordinatorStatusRef, LrtqUpgradeMsg,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId};
use tq_core::limits::MAX_MEMBERS;
use tq_core::member_set::MemberSubset;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};

/// Names one call, to report its answer with. Unique within one machine
/// (a restored machine starts over: it has no calls in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// The node method a call invokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub enum Method {
    /// `coordinate_reconfiguration`.
    Reconfigure,
    /// `coordinate_upgrade_from_lrtq`.
    UpgradeFromLrtq,
    /// `coordinator_status`.
    CoordinatorStatus,
    /// `commit_configuration`.
    Commit,
    /// `prepare_and_commit`.
    PrepareAndCommit,
}

impl Method {
    /// The node method's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reconfigure => "coordinate_reconfiguration",
            Self::UpgradeFromLrtq => "coordinate_upgrade_from_lrtq",
            Self::CoordinatorStatus => "coordinator_status",
            Self::Commit => "commit_configuration",
            Self::PrepareAndCommit => "prepare_and_commit",
        }
    }

    /// Whether the call goes to the coordinator of the pending epoch
    /// (starting it, or polling it), rather than to a member of the latest
    /// commit (telling it of the commit).
    pub const fn is_for_coordinator(self) -> bool {
        matches!(
            self,
            Self::Reconfigure | Self::UpgradeFromLrtq | Self::CoordinatorStatus
        )
    }
}

/// A call to make: the node method on sled `to`, with its request. The
/// large requests are references into the machine's own state.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// Report the answer with this.
    pub id: CallId,
    /// The sled to call.
    pub to: &'a PlatformId,
    /// The method and its request.
    pub kind: CallKind<'a>,
}

/// A node method and its request.
#[derive(Clone, Copy, Debug)]
pub enum CallKind<'a> {
    /// `coordinate_reconfiguration(msg)`.
    Reconfigure(&'a ReconfigureMsg),
    /// `coordinate_upgrade_from_lrtq(msg)`.
    UpgradeFromLrtq(&'a LrtqUpgradeMsg),
    /// `coordinator_status()`.
    CoordinatorStatus,
    /// `commit_configuration(request)`.
    Commit(CommitRequest),
    /// `prepare_and_commit(config)`.
    PrepareAndCommit(&'a Configuration),
}

impl CallKind<'_> {
    /// The method.
    pub const fn method(&self) -> Method {
        match self {
            Self::Reconfigure(_) => Method::Reconfigure,
            Self::UpgradeFromLrtq(_) => Method::UpgradeFromLrtq,
            Self::CoordinatorStatus => Method::CoordinatorStatus,
            Self::Commit(_) => Method::Commit,
            Self::PrepareAndCommit(_) => Method::PrepareAndCommit,
        }
    }
}

/// What came back from a call: the node's own result, or
/// [`Answer::Unreachable`].
#[derive(Clone, Debug)]
pub enum Answer<'a> {
    /// From `coordinate_reconfiguration`.
    Reconfigure(Result<ReconfigureOutcome, ReconfigureError>),
    /// From `coordinate_upgrade_from_lrtq`.
    UpgradeFromLrtq(Result<(), LrtqUpgradeError>),
    /// From `coordinator_status`, borrowed (see [`status_ref`] for an
    /// owned, decoded one).
    CoordinatorStatus(Option<CoordinatorStatusRef<'a>>),
    /// From `commit_configuration`.
    Commit(Result<CommitOutcome, CommitError>),
    /// From `prepare_and_commit`.
    PrepareAndCommit(Result<PrepareAndCommitOutcome, PrepareAndCommitError>),
    /// The sled is down, the network failed, or no answer came within the
    /// caller's timeout.
    Unreachable,
}

impl Answer<'_> {
    /// The method this answers, `None` for [`Answer::Unreachable`].
    pub const fn method(&self) -> Option<Method> {
        Some(match self {
            Self::Reconfigure(_) => Method::Reconfigure,
            Self::UpgradeFromLrtq(_) => Method::UpgradeFromLrtq,
            Self::CoordinatorStatus(_) => Method::CoordinatorStatus,
            Self::Commit(_) => Method::Commit,
            Self::PrepareAndCommit(_) => Method::PrepareAndCommit,
            Self::Unreachable => return None,
        })
    }
}

/// A decoded coordinator status, borrowed as [`Answer::CoordinatorStatus`]
/// takes it.
pub fn status_ref(status: &CoordinatorStatus) -> CoordinatorStatusRef<'_> {
    CoordinatorStatusRef {
        epoch: status.epoch,
        phase: status.phase,
        acked: MemberSubset::all(status.acked.as_slice()),
        config: status.config.as_ref(),
    }
}

/// Most calls in flight at once: one to the coordinator, one to each
/// member of the latest commit.
pub(crate) const MAX_IN_FLIGHT: usize = 1 + MAX_MEMBERS;

/// A call handed out and not answered yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InFlight {
    pub(crate) id: CallId,
    /// The callee's place in the roster.
    pub(crate) to: u8,
    pub(crate) method: Method,
    /// The epoch the call is about.
    pub(crate) epoch: Epoch,
}

/// The calls in flight.
#[derive(Debug, Default)]
#[cfg_attr(feature = "model", derive(Clone))]
pub(crate) struct Calls {
    next_id: u64,
    in_flight: heapless::Vec<InFlight, MAX_IN_FLIGHT, u8>,
}

impl Calls {
    /// Records a new call; `None` if the table is full (never: at most one
    /// call per channel and callee is made).
    pub(crate) fn add(&mut self, to: u8, method: Method, epoch: Epoch) -> Option<CallId> {
        let id = CallId(self.next_id);
        self.in_flight
            .push(InFlight {
                id,
                to,
                method,
                epoch,
            })
            .ok()?;
        self.next_id = self.next_id.wrapping_add(1);
        Some(id)
    }

    pub(crate) fn get(&self, id: CallId) -> Option<&InFlight> {
        self.in_flight.iter().find(|c| c.id == id)
    }

    /// Takes the call `id` out of the table, if it is in flight.
    pub(crate) fn take(&mut self, id: CallId) -> Option<InFlight> {
        let at = self.in_flight.iter().position(|c| c.id == id)?;
        Some(self.in_flight.swap_remove(at))
    }

    /// Whether a coordinator call is in flight.
    pub(crate) fn coordinator_busy(&self) -> bool {
        self.in_flight.iter().any(|c| c.method.is_for_coordinator())
    }

    /// Whether a member call to `to` is in flight.
    pub(crate) fn member_busy(&self, to: u8) -> bool {
        self.in_flight
            .iter()
            .any(|c| c.to == to && !c.method.is_for_coordinator())
    }

    /// Forgets the coordinator call in flight (its epoch was abandoned):
    /// its answer will be ignored.
    pub(crate) fn forget_coordinator_call(&mut self) {
        self.in_flight.retain(|c| !c.method.is_for_coordinator());
    }

    pub(crate) fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// The calls in flight, without their ids (see `crate::fingerprint`).
    #[cfg(feature = "model")]
    pub(crate) fn fingerprint<H: core::hash::Hasher>(&self, h: &mut H) {
        use core::hash::Hash;
        self.in_flight.len().hash(h);
        for call in &self.in_flight {
            (call.to, call.method, call.epoch).hash(h);
        }
    }
}
