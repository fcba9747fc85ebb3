//! Checking Nexus's coordination requests against a node, once: a
//! [`Validated`] request is the only thing a coordination starts from, and
//! only the functions here make one.

use crate::api::{
    ExpungedAt, LrtqUpgradeError, LrtqUpgradeMsg, RackMismatch, ReconfigureError, ReconfigureMsg,
};
use crate::ids::{Epoch, RackId, Threshold};
use crate::limits::{MAX_MEMBERS, MIN_MEMBERS};
use crate::member_set::MemberSet;
use crate::node::coordinator::Coordinator;
use crate::node::ctx::NodeCtx;
use crate::persistent::PersistentState;

/// A request that passed every check of PROTOCOL.md section 6 against the
/// node it was made to. Borrowed: the coordinator copies what it keeps
/// into its own slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Validated<'a> {
    pub(crate) rack_id: RackId,
    pub(crate) epoch: Epoch,
    pub(crate) members: &'a MemberSet,
    pub(crate) threshold: Threshold,
    pub(crate) kind: RequestKind,
}

/// Which coordination a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) enum RequestKind {
    /// A reconfiguration after the commit of `last_committed` (`None` on a
    /// fresh rack).
    Reconfigure { last_committed: Option<Epoch> },
    /// The upgrade of an LRTQ rack.
    LrtqUpgrade,
}

/// What validating a reconfiguration request found.
pub(crate) enum Reconfigure<'a> {
    /// A new coordination to start.
    Start(Validated<'a>),
    /// The same request is already running.
    Repeat,
}

/// Checks a reconfiguration request against the node's state and its
/// running coordination (`running`), in PROTOCOL.md's order.
pub(crate) fn reconfigure<'a>(
    ctx: &NodeCtx,
    running: Option<&Coordinator>,
    computing_share: Option<Epoch>,
    msg: &'a ReconfigureMsg,
) -> Result<Reconfigure<'a>, ReconfigureError> {
    let state = ctx.state();
    if let Some(expunged) = expunged(state) {
        return Err(ReconfigureError::Expunged(expunged));
    }
    if let Some(mismatch) = rack_mismatch(state, msg.rack_id) {
        return Err(ReconfigureError::RackIdMismatch(mismatch));
    }
    if state.lrtq().is_some() && state.latest_committed_epoch().is_none() {
        return Err(ReconfigureError::MustUpgradeFromLrtq);
    }
    if let Some(upgrade) = running.filter(|c| c.is_lrtq_upgrade()) {
        return Err(ReconfigureError::LrtqUpgradeInProgress(upgrade.epoch));
    }
    if !msg.members.contains(ctx.id()) {
        return Err(ReconfigureError::NotAMember);
    }
    check_sizes(&msg.members, msg.threshold).map_err(|size| match size {
        SizeError::MemberCount(n) => ReconfigureError::MemberCount(n),
        SizeError::Threshold { threshold, members } => {
            ReconfigureError::ThresholdTooLarge { threshold, members }
        }
    })?;
    let committed = state.latest_committed_epoch();
    if msg.last_committed_epoch != committed {
        return Err(ReconfigureError::LastCommittedEpochMismatch {
            node: committed,
            request: msg.last_committed_epoch,
        });
    }
    if let Some(running) = running {
        if running.epoch > msg.epoch {
            return Err(ReconfigureError::NewerCoordinationRunning(running.epoch));
        }
        if running.epoch == msg.epoch {
            return if running.is_same_request(msg) {
                Ok(Reconfigure::Repeat)
            } else {
                Err(ReconfigureError::DifferentRequestRunning(msg.epoch))
            };
        }
    }
    if let Some(latest) = state.latest_epoch().filter(|&e| e >= msg.epoch) {
        return Err(ReconfigureError::EpochNotNewer { latest });
    }
    if let Some(epoch) = computing_share {
        return Err(ReconfigureError::ComputingShare(epoch));
    }
    Ok(Reconfigure::Start(Validated {
        rack_id: msg.rack_id,
        epoch: msg.epoch,
        members: &msg.members,
        threshold: msg.threshold,
        kind: RequestKind::Reconfigure {
            last_committed: msg.last_committed_epoch,
        },
    }))
}

/// Checks an LRTQ upgrade request against the node's state and its running
/// coordination.
pub(crate) fn lrtq_upgrade<'a>(
    ctx: &NodeCtx,
    running: Option<&Coordinator>,
    msg: &'a LrtqUpgradeMsg,
) -> Result<Validated<'a>, LrtqUpgradeError> {
    let state = ctx.state();
    if let Some(expunged) = expunged(state) {
        return Err(LrtqUpgradeError::Expunged(expunged));
    }
    let lrtq = state.lrtq().ok_or(LrtqUpgradeError::NoLrtqData)?;
    if lrtq.rack_id != msg.rack_id {
        return Err(LrtqUpgradeError::RackIdMismatch(RackMismatch {
            expected: lrtq.rack_id,
            got: msg.rack_id,
        }));
    }
    if let Some(epoch) = state.latest_committed_epoch() {
        return Err(LrtqUpgradeError::AlreadyCommitted(epoch));
    }
    if !msg.members.contains(ctx.id()) {
        return Err(LrtqUpgradeError::NotAMember);
    }
    check_sizes(&msg.members, msg.threshold).map_err(|size| match size {
        SizeError::MemberCount(n) => LrtqUpgradeError::MemberCount(n),
        SizeError::Threshold { threshold, members } => {
            LrtqUpgradeError::ThresholdTooLarge { threshold, members }
        }
    })?;
    if usize::from(lrtq.threshold) > msg.members.len() {
        return Err(LrtqUpgradeError::LrtqThresholdAboveMembers {
            lrtq_threshold: lrtq.threshold,
            members: msg.members.len(),
        });
    }
    if msg.epoch < Epoch(2) {
        return Err(LrtqUpgradeError::EpochTooSmall(msg.epoch));
    }
    let latest_seen = state.latest_epoch().max(running.map(|c| c.epoch));
    if let Some(latest) = latest_seen.filter(|&e| e >= msg.epoch) {
        return Err(LrtqUpgradeError::EpochNotNewer { latest });
    }
    Ok(Validated {
        rack_id: msg.rack_id,
        epoch: msg.epoch,
        members: &msg.members,
        threshold: msg.threshold,
        kind: RequestKind::LrtqUpgrade,
    })
}

/// The expungement recorded in `state`, as an error's context.
pub(crate) fn expunged(state: &PersistentState) -> Option<ExpungedAt> {
    state.expunged().map(|e| ExpungedAt {
        epoch: e.epoch,
        from: e.from.clone(),
    })
}

/// The mismatch, if this node knows its rack and `got` is another.
pub(crate) fn rack_mismatch(state: &PersistentState, got: RackId) -> Option<RackMismatch> {
    rack_id(state)
        .filter(|&expected| expected != got)
        .map(|expected| RackMismatch { expected, got })
}

/// The rack this node belongs to, once it knows.
pub(crate) fn rack_id(state: &PersistentState) -> Option<RackId> {
    state
        .fields()
        .configs
        .last()
        .map(|stored| stored.config.rack_id())
        .or_else(|| state.lrtq().map(|lrtq| lrtq.rack_id))
}

enum SizeError {
    MemberCount(usize),
    Threshold {
        threshold: Threshold,
        members: usize,
    },
}

fn check_sizes(members: &MemberSet, threshold: Threshold) -> Result<(), SizeError> {
    let count = members.len();
    if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&count) {
        return Err(SizeError::MemberCount(count));
    }
    if !threshold.fits_member_count(count) {
        return Err(SizeError::Threshold {
            threshold,
            members: count,
        });
    }
    Ok(())
}
