//! Messages from peers (PROTOCOL.md section 6, "Peer messages").
//!
//! Each handler returns the [`Counter`] of a refusal as its error, and
//! [`Node::handle`] counts it: one place maps refusals to counters, and
//! each refusal is counted once.

use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;

use super::{Alarm, Node, NodeCtx};
use crate::api::{Counter, PrepareAndCommitOutcome};
use crate::config::Configuration;
use crate::crypto::{LrtqShare, Share, compute_share};
use crate::ids::{Epoch, PlatformId, RackId};
use crate::log;
use crate::messages::{Body, PeerMsg, PeerMsgRef, QueuedBody, QueuedShare};
use crate::node::claims;
use crate::node::collector::{Added, Asking, ShareCollector};
use crate::node::events::Event;
use crate::node::validate::rack_id;
use crate::persistent::StateError;
use crate::wire::{self, WireError};

/// Why a committed configuration (`CommitAdvance` or
/// `prepare_and_commit`) was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdvanceRefused {
    /// This node is not a member of it.
    NotAMember,
    /// A newer epoch is committed here.
    NewerCommitted { latest: Epoch },
    /// A different configuration is committed here for its epoch (no
    /// alarm: this node's state is intact, and proves the claim false).
    ConflictsWithCommitted,
    /// A different configuration is stored, uncommitted, for its epoch
    /// (alarm raised).
    Mismatched,
    /// This node coordinates an epoch newer than it.
    CoordinatingNewer(Epoch),
    /// No slot to store it (never expected; counted as `config_dropped`).
    StoreFull,
    /// An invariant of this code broke.
    Internal,
}

impl AdvanceRefused {
    /// The counter of this refusal, for a `CommitAdvance`.
    pub(super) fn counter(self) -> Counter {
        match self {
            Self::NotAMember => Counter::NotAMember,
            Self::NewerCommitted { .. } => Counter::WrongEpoch,
            Self::ConflictsWithCommitted => Counter::FalseClaim,
            Self::Mismatched => Counter::ConflictingConfiguration,
            Self::CoordinatingNewer(_) => Counter::Unexpected,
            Self::StoreFull => Counter::ConfigDropped,
            Self::Internal => Counter::Internal,
        }
    }
}

impl Node {
    /// Decodes and handles bytes from `from`; bytes that do not decode are
    /// counted (`undecodable`, or `unsupported_version` for a newer peer's
    /// format).
    pub fn handle_bytes<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        bytes: &[u8],
    ) {
        // A message without a configuration (all but two kinds) is decoded
        // into a small one, so the 4 KiB of a full message is not held on
        // the stack while it is handled; the rest, and anything the small
        // decode refuses, go through the full decode, which decides.
        let mut msg = wire::empty_small_peer_msg();
        match wire::decode_small_peer_msg_into(bytes, &mut msg) {
            Ok(()) => self.handle_ref(ctx, rng, from, msg.as_peer_msg_ref()),
            Err(WireError::UnsupportedVersion(_)) => ctx.count(Counter::UnsupportedVersion),
            Err(_) => self.handle_bytes_with_config(ctx, rng, from, bytes),
        }
    }

    /// [`Self::handle_bytes`] for a message that may carry a configuration.
    /// Out of line: the message (about 4 KiB) exists once, in this frame,
    /// decoded in place, while it is handled.
    #[inline(never)]
    fn handle_bytes_with_config<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        bytes: &[u8],
    ) {
        let mut msg = wire::empty_peer_msg();
        match wire::decode_peer_msg_into(bytes, &mut msg) {
            Ok(()) => self.handle(ctx, rng, from, &msg),
            Err(WireError::UnsupportedVersion(_)) => ctx.count(Counter::UnsupportedVersion),
            Err(_) => ctx.count(Counter::Undecodable),
        }
    }

    /// Handles a message from `from`. Anything refused is counted.
    pub fn handle<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        msg: &PeerMsg,
    ) {
        self.handle_ref(ctx, rng, from, msg.as_ref());
    }

    /// [`Self::handle`] of a borrowed message.
    fn handle_ref<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        msg: PeerMsgRef<'_>,
    ) {
        if let Err(counter) = self.handle_msg(ctx, rng, from, msg) {
            ctx.count(counter);
        }
    }

    fn handle_msg<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        msg: PeerMsgRef<'_>,
    ) -> Result<(), Counter> {
        if ctx.state().expunged().is_some() {
            return Err(Counter::WhileExpunged);
        }
        if rack_id(ctx.state()).is_some_and(|r| r != msg.rack_id) {
            return Err(Counter::WrongRackId);
        }
        log::debug!("{} from {}", msg.body.kind(), from);
        match msg.body {
            Body::Prepare {
                config,
                share,
                last_committed,
            } => self.on_prepare(ctx, from, msg.rack_id, config, share, last_committed),
            Body::PrepareAck(epoch) => self.on_prepare_ack(ctx, from, epoch),
            Body::GetShare(epoch) => on_get_share(ctx, from, epoch),
            Body::Share { epoch, share } => self.on_share(ctx, rng, from, epoch, share),
            Body::GetLrtqShare => on_get_lrtq_share(ctx, from),
            Body::LrtqShare(share) => {
                let for_coordinator = match &mut self.coordinator {
                    Some(c) => c.on_lrtq_share(ctx, rng, from, share),
                    None => Err(NOT_WANTED),
                };
                let for_loader = self.loader.on_lrtq_share(ctx, share);
                better(for_coordinator, for_loader).map_err(|counter| match counter {
                    NOT_WANTED => unwanted_lrtq_share(ctx, share),
                    other => other,
                })
            }
            Body::Expunged(epoch) => self.on_expunged(ctx, from, epoch),
            Body::CommitAdvance(config) => self.on_commit_advance(ctx, from, msg.rack_id, config),
        }
    }

    fn on_prepare(
        &mut self,
        ctx: &mut NodeCtx,
        from: &PlatformId,
        rack: RackId,
        config: &Configuration,
        share: &Share,
        last_committed: Option<Epoch>,
    ) -> Result<(), Counter> {
        let epoch = config.epoch();
        if ctx.state().is_committed(epoch) {
            return Err(Counter::WrongEpoch);
        }
        // A newer configuration is known: Nexus started it after deciding
        // this one, so this prepare is stale.
        if ctx
            .state()
            .latest_epoch()
            .is_some_and(|latest| latest > epoch)
        {
            // Planted bug (test-only, see `crate::planted`): the stale
            // prepare is acked, though nothing of it is stored.
            #[cfg(feature = "planted-bug-ack-stale-prepare")]
            ctx.reply(from, QueuedBody::PrepareAck(epoch));
            return Err(Counter::WrongEpoch);
        }
        let digest = config.share_digest(ctx.id()).ok_or(Counter::NotAMember)?;
        let fits = config.rack_id() == rack
            && config.coordinator() == from
            && last_committed.is_none_or(|c| c < epoch)
            && bool::from(share.digest().ct_eq(digest));
        if !fits {
            return Err(Counter::InvalidPrepare);
        }
        if let Some(committed) = last_committed {
            self.learn_committed(ctx, committed);
        }
        self.supersede(ctx, epoch, last_committed);
        store_config(ctx, config, Some(share))?;
        if self.coordinator.as_ref().is_some_and(|c| c.epoch < epoch) {
            log::info!("stopped coordinating: prepared newer epoch {}", epoch);
            self.coordinator = None;
        }
        ctx.reply(from, QueuedBody::PrepareAck(epoch));
        Ok(())
    }

    /// A coordinator said Nexus committed `epoch`: commit it here too if it
    /// is prepared here (nothing else can be: Nexus commits only prepared
    /// epochs, and this node may simply have missed the commit message).
    fn learn_committed(&mut self, ctx: &mut NodeCtx, epoch: Epoch) {
        let prepared = !ctx.state().is_committed(epoch)
            && ctx
                .state()
                .get(epoch)
                .is_some_and(|stored| stored.share.is_some());
        if prepared {
            self.commit(ctx, epoch);
        }
    }

    /// Drops what a configuration of `epoch` makes obsolete: every stored
    /// uncommitted configuration older than it, except `keep` (the epoch
    /// Nexus committed last, which this node may still be computing its
    /// share of). Older ones were either abandoned by Nexus or superseded by
    /// a commit, so dropping them loses nothing; this is what keeps the
    /// store within `MAX_STORED_CONFIGS` without ever guessing.
    fn supersede(&mut self, ctx: &mut NodeCtx, epoch: Epoch, keep: Option<Epoch>) {
        let obsolete = |e: Epoch| e < epoch && Some(e) != keep;
        ctx.state_mut().drop_uncommitted(obsolete);
        if self
            .share_computer
            .as_ref()
            .is_some_and(|c| obsolete(c.epoch()))
        {
            self.share_computer = None;
        }
    }

    fn on_prepare_ack(
        &mut self,
        ctx: &mut NodeCtx,
        from: &PlatformId,
        epoch: Epoch,
    ) -> Result<(), Counter> {
        let Some(coordinator) = self.coordinator.as_mut() else {
            return Err(unwanted_prepare_ack(ctx, from, epoch));
        };
        // Planted bug (test-only, see `crate::planted`): an ack of any
        // epoch counts for the running coordination.
        let checks_epoch = cfg!(not(feature = "planted-bug-ack-any-epoch"));
        if checks_epoch && coordinator.epoch != epoch {
            return Err(Counter::WrongEpoch);
        }
        coordinator.on_prepare_ack(ctx, from)
    }

    fn on_share<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<(), Counter> {
        // Every collector that wants this epoch gets the share; the message
        // counts as refused only if none of them took it.
        let mut outcome = Err(NOT_WANTED);
        if let Some(coordinator) = &mut self.coordinator {
            outcome = better(outcome, coordinator.on_share(ctx, rng, from, epoch, share));
        }
        if self.share_computer.is_some() {
            outcome = better(outcome, self.on_share_for_computer(ctx, from, epoch, share));
        }
        match better(outcome, self.loader.on_share(ctx, from, epoch, share)) {
            Err(NOT_WANTED) => Err(unwanted_share(ctx, from, epoch, share)),
            other => other,
        }
    }

    /// Out of line: computing a share holds interpolation tables, which
    /// must not sit in the frame every message is handled from.
    #[inline(never)]
    fn on_share_for_computer(
        &mut self,
        ctx: &mut NodeCtx,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<(), Counter> {
        let computer = self.share_computer.as_mut().ok_or(NOT_WANTED)?;
        if computer.offer(ctx.state(), from, epoch, share)? != Added::Complete {
            return Ok(());
        }
        let computed = ctx.state().get(epoch).and_then(|stored| {
            let x = stored.config.x_coordinate(ctx.id())?;
            let own = compute_share(computer.shares(), x).ok()?;
            let digest = stored.config.share_digest(ctx.id())?;
            bool::from(own.matches(digest)).then_some(own)
        });
        self.share_computer = None;
        let Some(own) = computed else {
            ctx.raise_alarm(Alarm::ShareComputationFailed(epoch));
            return Ok(());
        };
        log::info!("computed own share of epoch {}", epoch);
        // The coordinator's `Prepare` may have brought the share while it
        // was computed (it reached this node late); both match the digest,
        // so the stored one stands and only the commit is left.
        let prepared = ctx.state().get(epoch).is_some_and(|s| s.share.is_some());
        if !prepared {
            if !ctx.state_mut().set_share(epoch, &own) {
                return Err(Counter::Internal);
            }
            ctx.emit(Event::ShareComputed(epoch));
        }
        self.commit(ctx, epoch);
        Ok(())
    }

    fn on_expunged(
        &mut self,
        ctx: &mut NodeCtx,
        from: &PlatformId,
        epoch: Epoch,
    ) -> Result<(), Counter> {
        if let Some(counter) = claims::expunged_ignored(ctx.state(), ctx.id(), from, epoch) {
            return Err(counter);
        }
        log::warning!("expunged at epoch {} by {}", epoch, from);
        ctx.state_mut().set_expunged(epoch, from);
        ctx.emit(Event::Expunged {
            epoch,
            from: from.clone(),
        });
        self.coordinator = None;
        self.share_computer = None;
        self.loader.clear();
        ctx.clear_outgoing();
        Ok(())
    }

    /// `CommitAdvance(config)` from `from`, checked in the order of
    /// PROTOCOL.md section 6: what this node's own commits settle first
    /// (so a stale claim never reaches the checks that can raise an alarm),
    /// then the sender.
    fn on_commit_advance(
        &mut self,
        ctx: &mut NodeCtx,
        from: &PlatformId,
        rack: RackId,
        config: &Configuration,
    ) -> Result<(), Counter> {
        if config.rack_id() != rack {
            return Err(Counter::WrongRackId);
        }
        if let Some(counter) = claims::commit_advance_ignored(ctx.state(), ctx.id(), from, config) {
            return Err(counter);
        }
        self.take_committed(ctx, config)
            .map(drop)
            .map_err(AdvanceRefused::counter)
    }

    /// Takes a configuration Nexus committed (`prepare_and_commit`; a
    /// `CommitAdvance` checks its sender between the two steps): commits
    /// it if prepared, else stores it and starts computing this node's
    /// share of it.
    pub(super) fn advance(
        &mut self,
        ctx: &mut NodeCtx,
        config: &Configuration,
    ) -> Result<PrepareAndCommitOutcome, AdvanceRefused> {
        if let Some(outcome) = claims::settled_by_commits(ctx.state(), ctx.id(), config)? {
            return Ok(outcome);
        }
        self.take_committed(ctx, config)
    }

    /// The part of [`Self::advance`] after [`claims::settled_by_commits`]: `config`
    /// is newer than every commit here.
    fn take_committed(
        &mut self,
        ctx: &mut NodeCtx,
        config: &Configuration,
    ) -> Result<PrepareAndCommitOutcome, AdvanceRefused> {
        let epoch = config.epoch();
        let stored = ctx.state().get(epoch);
        if stored.is_some_and(|stored| stored.config != *config) {
            ctx.raise_alarm(Alarm::MismatchedConfigurations(epoch));
            return Err(AdvanceRefused::Mismatched);
        }
        if stored.is_some_and(|stored| stored.share.is_some()) {
            self.commit(ctx, epoch);
            return Ok(PrepareAndCommitOutcome::Committed);
        }
        if let Some(running) = self.coordinator.as_ref().filter(|c| c.epoch > epoch) {
            // Nexus starts a coordination only after the commit it names;
            // starting a computation here would break invariant 4.
            return Err(AdvanceRefused::CoordinatingNewer(running.epoch));
        }
        if self.computing_share().is_some_and(|e| e >= epoch) {
            // Already on it (or on a newer commit, which supersedes it).
            return Ok(PrepareAndCommitOutcome::ComputingShare);
        }
        // Nexus committed `config`: older uncommitted ones are obsolete.
        self.supersede(ctx, epoch, None);
        store_config(ctx, config, None).map_err(|counter| match counter {
            Counter::ConfigDropped => AdvanceRefused::StoreFull,
            _ => AdvanceRefused::Internal,
        })?;
        self.coordinator = None;
        log::info!("computing own share of epoch {}", epoch);
        self.share_computer = ShareCollector::start(ctx, epoch, Asking::Everyone);
        if self.share_computer.is_none() {
            return Err(AdvanceRefused::Internal);
        }
        Ok(PrepareAndCommitOutcome::ComputingShare)
    }
}

/// `GetShare(epoch)` from `from`.
fn on_get_share(ctx: &mut NodeCtx, from: &PlatformId, epoch: Epoch) -> Result<(), Counter> {
    if answer_if_behind(ctx, from, epoch) {
        return Ok(());
    }
    let stored = ctx.state().get(epoch).ok_or(Counter::CannotAnswer)?;
    if !stored.config.is_member(from) {
        ctx.reply(from, QueuedBody::Expunged(epoch));
        return Ok(());
    }
    if stored.share.is_none() {
        return Err(Counter::CannotAnswer);
    }
    ctx.reply(
        from,
        QueuedBody::Share {
            epoch,
            share: QueuedShare::Own(epoch),
        },
    );
    Ok(())
}

/// `GetLrtqShare` from `from`.
fn on_get_lrtq_share(ctx: &mut NodeCtx, from: &PlatformId) -> Result<(), Counter> {
    if ctx.state().latest_committed_epoch().is_some() {
        // LRTQ shares are only for a rack not yet upgraded (its upgrade,
        // its secret loads); after a commit the asker is behind.
        tell_behind(ctx, from);
        return Ok(());
    }
    if ctx.state().lrtq().is_none() {
        return Err(Counter::CannotAnswer);
    }
    ctx.reply(from, QueuedBody::LrtqShare(()));
    Ok(())
}

/// If a later epoch than `epoch` is committed, tells `from` so (`Expunged`
/// for a non-member of it, else `CommitAdvance`) and returns true.
fn answer_if_behind(ctx: &mut NodeCtx, from: &PlatformId, epoch: Epoch) -> bool {
    let behind = ctx
        .state()
        .latest_committed_epoch()
        .is_some_and(|latest| latest > epoch);
    if behind {
        tell_behind(ctx, from);
    }
    behind
}

/// Tells `from` about the latest commit: `Expunged` if it is not a member,
/// else `CommitAdvance`.
fn tell_behind(ctx: &mut NodeCtx, from: &PlatformId) {
    let Some(latest) = ctx.state().latest_committed() else {
        return;
    };
    let epoch = latest.config.epoch();
    if latest.config.is_member(from) {
        ctx.reply(from, QueuedBody::CommitAdvance(epoch));
    } else {
        ctx.reply(from, QueuedBody::Expunged(epoch));
    }
}

/// Stores a configuration (with this node's share, if given) unless it is
/// already stored so, raising the alarm on a mismatch.
fn store_config(
    ctx: &mut NodeCtx,
    config: &Configuration,
    share: Option<&Share>,
) -> Result<(), Counter> {
    let epoch = config.epoch();
    match ctx.state_mut().store(config, share) {
        Ok(_) => Ok(()),
        Err(StateError::MismatchedConfiguration) => {
            ctx.raise_alarm(Alarm::MismatchedConfigurations(epoch));
            Err(Counter::ConflictingConfiguration)
        }
        Err(StateError::Full) => Err(Counter::ConfigDropped),
        Err(_) => Err(Counter::WrongEpoch),
    }
}

/// What a collector (the coordinator's, the share computer, the loader)
/// returns for a share it is not collecting: the handler then decides
/// whether the share is late or unexplained ([`unwanted_share`],
/// [`unwanted_lrtq_share`]). Never counted as such.
pub(crate) const NOT_WANTED: Counter = Counter::Unexpected;

/// Of two outcomes for one share offered to several collectors, the one to
/// report: success wins, then the more specific refusal.
fn better(a: Result<(), Counter>, b: Result<(), Counter>) -> Result<(), Counter> {
    match (a, b) {
        (Ok(()), _) | (_, Ok(())) => Ok(()),
        (Err(NOT_WANTED), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    }
}

/// Why a share no collection here wanted is refused. A collection ends
/// with its first `K` shares while every member it asked answers, so a
/// share of a stored configuration that matches its sender's digest is
/// late (normal); one that does not match is forged; one of an epoch this
/// node never stored is unexplained.
fn unwanted_share(ctx: &NodeCtx, from: &PlatformId, epoch: Epoch, share: &Share) -> Counter {
    let state = ctx.state();
    let Some(stored) = state.get(epoch) else {
        // An older configuration may have been dropped since it was asked.
        let superseded = state.latest_epoch().is_some_and(|latest| latest > epoch);
        return if superseded {
            Counter::WrongEpoch
        } else {
            Counter::Unexpected
        };
    };
    match stored.config.share_digest(from) {
        None => Counter::FromNonMember,
        Some(digest) if !bool::from(share.digest().ct_eq(digest)) => Counter::InvalidShareDigest,
        Some(_) => Counter::LateShare,
    }
}

/// Why a prepare ack is refused when this node coordinates nothing: late
/// (normal) if this node coordinated that epoch's configuration and the
/// sender is one of its members (Nexus commits before every ack is in, and
/// a restart ends the coordination), else unexplained.
fn unwanted_prepare_ack(ctx: &NodeCtx, from: &PlatformId, epoch: Epoch) -> Counter {
    let state = ctx.state();
    let Some(stored) = state.get(epoch) else {
        // An abandoned epoch's configuration is dropped once a newer one
        // is known.
        let superseded = state.latest_epoch().is_some_and(|latest| latest > epoch);
        return if superseded {
            Counter::WrongEpoch
        } else {
            Counter::Unexpected
        };
    };
    if stored.config.coordinator() != ctx.id() {
        Counter::Unexpected
    } else if !stored.config.is_member(from) {
        Counter::FromNonMember
    } else {
        Counter::LatePrepareAck
    }
}

/// Why an LRTQ share is refused when nothing here (an upgrade, a secret
/// load) collects them: one of this rack's genuine LRTQ shares is late (a
/// collection needs only the LRTQ threshold of them, and its holder sends
/// it only to a sled that asked); any other is forged or unexplained.
fn unwanted_lrtq_share(ctx: &NodeCtx, share: &LrtqShare) -> Counter {
    match ctx.state().lrtq() {
        Some(lrtq) if lrtq.is_known_digest(&share.digest()) => Counter::LateLrtqShare,
        Some(_) => Counter::UnknownLrtqShareDigest,
        None => Counter::Unexpected,
    }
}
