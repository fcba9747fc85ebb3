//! Which forgeries a run injects: what an authenticated sled may say and
//! the protocol believes is injected only when it is true or the receiver
//! is bound to ignore it. Whether the receiver ignores a claim is the
//! core's own rule (`tq_core::node::claims`), asked here of the receiver's
//! state before the message, not restated.

use tq_core::ids::Epoch;
use tq_core::messages::{Body, PeerMsg};
use tq_core::node::claims;
use tq_core::wire;
use tq_harness::Cluster;
use tq_harness::network::Message;

/// What to do with a forgery, judged from the receiver's state before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not injected: a statement the protocol believes from an
    /// authenticated sled, and a lie here (see [`judge`]).
    Skip,
    /// Injected; the run must stay safe and live.
    Inject,
    /// Injected; the run must stay safe, but the forger undermined what
    /// liveness rests on, so the final liveness check is waived (see
    /// [`judge`]).
    InjectWaivingLiveness,
}

/// Judges `bytes` from sled `from` to sled `to`, made from the real message
/// `original` if any.
///
/// Injected: anything the receiver must cope with on its own (undecodable
/// bytes, another rack, shares, which are checked against digests, a
/// `Prepare` not from the coordinator or with a share that does not match)
/// and anything true.
///
/// Skipped, because an authenticated sled may say it and the protocol
/// believes it: a `PrepareAck` to the coordinator of that epoch, an
/// `Expunged` the receiver would act on, a `CommitAdvance` or a
/// coordinator's `Prepare` carrying the receiver's share, unless its
/// configuration (and a `Prepare`'s last committed epoch) is the real one
/// the original message carried, and a message from a sled to itself (no
/// channel does that).
///
/// Injected but waiving liveness:
/// - a valid LRTQ share sent by a sled other than the one that sent it:
///   LRTQ shares are not bound to sleds (spares exist), so the upgrade
///   coordinator takes it as the forger's, then refuses the owner's (same
///   digest) and the forger's own (one per sled), and may never gather
///   its threshold;
/// - a share request whose honest answer is `Expunged` for a committed
///   epoch: true, so safe, but the asker has expunged itself, and Nexus
///   may still add it. If the epoch is not known to be committed, the
///   request is skipped (the answer would expunge the asker for an epoch
///   that may never commit; honest sleds ask only for committed epochs
///   they are members of).
pub fn judge<const N: usize>(
    cluster: &Cluster<N>,
    from: usize,
    to: usize,
    bytes: &[u8],
    original: Option<Message<'_>>,
) -> Verdict {
    if from == to {
        return Verdict::Skip;
    }
    let Ok(msg) = wire::decode_peer_msg(bytes) else {
        return Verdict::Inject;
    };
    let (Some(from_id), Some(to_id)) = (cluster.id(from), cluster.id(to)) else {
        return Verdict::Skip;
    };
    let Some(running) = cluster.sled(to).and_then(|s| s.running()) else {
        return Verdict::Skip;
    };
    let state = running.ctx.persistent_state();
    if state.expunged().is_some() {
        return Verdict::Inject;
    }
    let rack = state
        .fields()
        .configs
        .last()
        .map(|stored| stored.config.rack_id())
        .or_else(|| state.lrtq().map(|lrtq| lrtq.rack_id));
    if rack.is_some_and(|rack| rack != msg.rack_id) {
        return Verdict::Inject;
    }
    let original: Option<PeerMsg> = original.and_then(|o| wire::decode_peer_msg(o.bytes).ok());
    let original_commit = || match original.as_ref().map(|o| &o.body) {
        Some(Body::CommitAdvance(config)) => Some(config.clone()),
        _ => None,
    };
    let original_prepare = || match original.as_ref().map(|o| &o.body) {
        Some(Body::Prepare {
            config,
            last_committed,
            ..
        }) => Some((config.clone(), *last_committed)),
        _ => None,
    };
    let inject_if = |ok: bool| if ok { Verdict::Inject } else { Verdict::Skip };
    // The epoch a share request would be answered with `Expunged` for.
    let expunges_asker = |epoch: Option<Epoch>| {
        let latest = state.latest_committed();
        match (epoch, latest) {
            (_, Some(latest))
                if epoch.is_none_or(|e| latest.config.epoch() > e)
                    && !latest.config.is_member(from_id) =>
            {
                Some(latest.config.epoch())
            }
            (Some(e), _) if state.latest_committed_epoch().is_none_or(|c| c <= e) => state
                .get(e)
                .filter(|stored| !stored.config.is_member(from_id))
                .map(|_| e),
            _ => None,
        }
    };
    let answer_request = |epoch: Option<Epoch>| match expunges_asker(epoch) {
        None => Verdict::Inject,
        Some(e) if state.is_committed(e) || cluster.nexus().committed_members(e).is_some() => {
            Verdict::InjectWaivingLiveness
        }
        Some(_) => Verdict::Skip,
    };
    match &msg.body {
        Body::Share { .. } => Verdict::Inject,
        // A valid LRTQ share is the same value whoever relays it, and the
        // coordinator de-duplicates by digest: no relay can cost it a share.
        Body::LrtqShare(_) => Verdict::Inject,
        Body::GetShare(epoch) => answer_request(Some(*epoch)),
        Body::GetLrtqShare => answer_request(None),
        Body::Prepare {
            config,
            share,
            last_committed,
        } => {
            let for_receiver = config.coordinator() == from_id
                && config
                    .share_digest(to_id)
                    .is_some_and(|digest| bool::from(share.matches(digest)));
            let real = original_prepare()
                .is_some_and(|(real, real_last)| real == *config && real_last == *last_committed);
            inject_if(!for_receiver || real)
        }
        // What the receiver ignores by its own rules (the core's, asked of
        // its state), and the real configuration the original carried.
        Body::CommitAdvance(config) => inject_if(
            claims::commit_advance_ignored(state, to_id, from_id, config).is_some()
                || original_commit().as_ref() == Some(config),
        ),
        Body::Expunged(epoch) => {
            inject_if(claims::expunged_ignored(state, to_id, from_id, *epoch).is_some())
        }
        Body::PrepareAck(epoch) => inject_if(running.node.coordinating() != Some(*epoch)),
    }
}
