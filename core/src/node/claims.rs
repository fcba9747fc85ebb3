//! What a node's own state says of a peer's claim (PROTOCOL.md section 6).
//!
//! A peer is an authenticated sled, and the protocol believes two of its
//! statements: `Expunged(e)` ("you are not a member of committed epoch
//! `e`") and `CommitAdvance(config)` ("this newer configuration
//! committed"). Before acting on either, the node checks it against what it
//! stores; these functions are those checks, in the spec's order, and the
//! node calls them (so a test harness that must tell a claim the node
//! ignores from one it acts on asks the node's own rule, not a copy).

use core::cmp::Ordering;

use crate::api::Counter;
use crate::api::PrepareAndCommitOutcome;
use crate::config::Configuration;
use crate::ids::{Epoch, PlatformId};
use crate::node::peer::AdvanceRefused;
use crate::persistent::PersistentState;

/// Why node `me`, storing `state`, ignores `Expunged(epoch)` from `from`
/// (the counter it counts it under), or `None` if it acts on it: older
/// than the latest configuration it knows (stale), or proven false by a
/// configuration of `epoch` it stores (it is a member of it, or `from` is
/// not: only a member that committed `epoch` can truthfully say it).
pub fn expunged_ignored(
    state: &PersistentState,
    me: &PlatformId,
    from: &PlatformId,
    epoch: Epoch,
) -> Option<Counter> {
    if state.latest_epoch().is_some_and(|latest| epoch < latest) {
        return Some(Counter::WrongEpoch);
    }
    let disproved = state
        .get(epoch)
        .is_some_and(|stored| stored.config.is_member(me) || !stored.config.is_member(from));
    disproved.then_some(Counter::FalseClaim)
}

/// Why node `me`, storing `state`, ignores `CommitAdvance(config)` from
/// `from` (the counter it counts it under), or `None` if it acts on it
/// (commits it, or stores it and computes its share): `me` is not a member
/// of it; its epoch is not newer than the latest commit here (a stale
/// claim, or, with another configuration than the one committed here, a
/// false one: no alarm, since this node's state is intact); `from` is not a
/// member of it (only a member that committed it can send it).
pub fn commit_advance_ignored(
    state: &PersistentState,
    me: &PlatformId,
    from: &PlatformId,
    config: &Configuration,
) -> Option<Counter> {
    match settled_by_commits(state, me, config) {
        Err(refused) => Some(refused.counter()),
        // Already committed here: stale, like an older epoch.
        Ok(Some(_)) => Some(Counter::WrongEpoch),
        Ok(None) if !config.is_member(from) => Some(Counter::FalseClaim),
        Ok(None) => None,
    }
}

/// The first checks of a committed configuration (`CommitAdvance` or
/// `prepare_and_commit`): node `me` must be a member of it, and its epoch
/// newer than the latest commit here. `Some(AlreadyCommitted)` when it is
/// the configuration committed here; `None` when it is newer.
pub(crate) fn settled_by_commits(
    state: &PersistentState,
    me: &PlatformId,
    config: &Configuration,
) -> Result<Option<PrepareAndCommitOutcome>, AdvanceRefused> {
    if !config.is_member(me) {
        return Err(AdvanceRefused::NotAMember);
    }
    let Some(latest) = state.latest_committed() else {
        return Ok(None);
    };
    match config.epoch().cmp(&latest.config.epoch()) {
        Ordering::Greater => Ok(None),
        Ordering::Equal if latest.config == *config => {
            Ok(Some(PrepareAndCommitOutcome::AlreadyCommitted))
        }
        Ordering::Equal => Err(AdvanceRefused::ConflictsWithCommitted),
        Ordering::Less => Err(AdvanceRefused::NewerCommitted {
            latest: latest.config.epoch(),
        }),
    }
}
