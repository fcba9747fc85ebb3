//! The trust quorum node: the protocol state machine of PROTOCOL.md
//! section 6.
//!
//! A [`Node`] holds only in-memory protocol state (a running coordination,
//! a share computation, the secret loader). Everything else lives in the
//! caller-owned [`NodeCtx`], passed to every call.
//!
//! # How a caller drives a node
//!
//! At boot, make the context where it will live (static memory on a
//! small stack) with [`NodeCtx::new`], which starts from an empty state,
//! and fill that state in place: [`NodeCtx::restore_state`] from storage,
//! or, if storage holds no state, [`NodeCtx::restore_lrtq`] from the LRTQ
//! ledger (a new sled with neither starts empty). Then for each event:
//!
//! 1. Call one input method: a Nexus-facing call
//!    ([`Node::coordinate_reconfiguration`], [`Node::commit_configuration`],
//!    ...), a connection event ([`Node::on_connect`],
//!    [`Node::on_disconnect`]), or a peer message ([`Node::handle`] /
//!    [`Node::handle_bytes`]).
//! 2. If [`NodeCtx::take_state_changed`] says so, store
//!    [`NodeCtx::persistent_state`] durably. **Before step 3**: an ack must
//!    never leave for state a crash could lose.
//! 3. Drain [`Node::next_message`] and send each message to its peer.
//!
//! Nothing in here waits or retries on a timer; a peer that reconnects is
//! sent again what it still needs.

mod alarms;
mod collector;
mod coordinator;
mod counters;
mod ctx;
mod errors;
mod loader;
#[cfg(test)]
mod tests;

pub use alarms::Alarm;
pub use coordinator::CoordinatorPhase;
pub use counters::{Counters, EVENT_COUNT, Event};
pub use ctx::{NodeCtx, RestoreLrtqError};
pub use errors::{
    CommitError, LoadSecretError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError,
};

use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;

use crate::config::Configuration;
use crate::crypto::{RackSecret, Share, compute_share};
use crate::ids::{Epoch, PlatformId, RackId, Threshold};
use crate::log;
use crate::messages::{
    Body, Envelope, LrtqUpgradeMsg, MemberSet, PeerMsg, PeerMsgRef, ReconfigureMsg,
};
use crate::persistent::PersistentState;
use crate::wire;
use collector::{Added, ShareCollector};
use coordinator::{Coordinator, PrepareFailed};
use ctx::Outgoing;
use loader::SecretLoader;

/// What Nexus sees of a running coordination.
#[derive(Debug)]
pub struct CoordinatorStatus<'a> {
    /// The epoch being coordinated.
    pub epoch: Epoch,
    /// Where it stands.
    pub phase: CoordinatorPhase,
    /// Members that acked the prepare (this node included), once preparing.
    pub acked: &'a [PlatformId],
    /// The new configuration, once it exists.
    pub config: Option<&'a Configuration>,
}

/// The in-memory state of one trust quorum node.
#[derive(Debug, Default)]
pub struct Node {
    coordinator: Option<Coordinator>,
    /// Shares being collected to compute this node's own share of a
    /// configuration it learned of only after it committed.
    share_computer: Option<ShareCollector>,
    loader: SecretLoader,
}

impl Node {
    /// A node with nothing in progress (after boot, or after a crash: the
    /// persistent state in the context is all that survives).
    pub fn new() -> Self {
        Self::default()
    }

    // ---- Nexus-facing calls ----

    /// Starts coordinating the reconfiguration `msg` describes.
    pub fn coordinate_reconfiguration<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        msg: &ReconfigureMsg,
    ) -> Result<(), ReconfigureError> {
        let state = ctx.state();
        if state.expunged().is_some() {
            return Err(ReconfigureError::Expunged);
        }
        if rack_id(state).is_some_and(|r| r != msg.rack_id) {
            return Err(ReconfigureError::RackIdMismatch);
        }
        if state.lrtq().is_some() && state.latest_committed_epoch().is_none() {
            return Err(ReconfigureError::MustUpgradeFromLrtq);
        }
        if self
            .coordinator
            .as_ref()
            .is_some_and(Coordinator::is_lrtq_upgrade)
        {
            return Err(ReconfigureError::LrtqUpgradeInProgress);
        }
        if !msg.members.contains(ctx.id()) {
            return Err(ReconfigureError::NotAMember);
        }
        check_sizes(&msg.members, msg.threshold).map_err(|size| match size {
            SizeError::MemberCount => ReconfigureError::MemberCount,
            SizeError::Threshold => ReconfigureError::ThresholdTooLarge,
        })?;
        let committed = state.latest_committed_epoch();
        if msg.last_committed_epoch != committed {
            return Err(ReconfigureError::LastCommittedEpochMismatch {
                node: committed,
                request: msg.last_committed_epoch,
            });
        }
        if let Some(running) = &self.coordinator {
            if running.epoch > msg.epoch {
                return Err(ReconfigureError::NewerCoordinationRunning(running.epoch));
            }
            if running.epoch == msg.epoch {
                return if running.is_same_request(msg) {
                    Ok(())
                } else {
                    Err(ReconfigureError::DifferentRequestRunning)
                };
            }
        }
        if let Some(latest) = state.latest_epoch().filter(|&e| e >= msg.epoch) {
            return Err(ReconfigureError::EpochNotNewer { latest });
        }
        if self.share_computer.is_some() {
            return Err(ReconfigureError::ComputingShare);
        }
        log::info!("coordinating epoch {}", msg.epoch);
        self.coordinator = None;
        match Coordinator::start_reconfiguration(&mut self.coordinator, ctx, msg) {
            Ok(()) => Ok(()),
            Err(PrepareFailed::Rng) => Err(ReconfigureError::Rng(crate::crypto::RngError)),
            Err(PrepareFailed::Internal) => Err(ReconfigureError::Internal),
        }
    }

    /// Starts coordinating the upgrade of this LRTQ rack.
    pub fn coordinate_upgrade_from_lrtq<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        msg: &LrtqUpgradeMsg,
    ) -> Result<(), LrtqUpgradeError> {
        let state = ctx.state();
        if state.expunged().is_some() {
            return Err(LrtqUpgradeError::Expunged);
        }
        let lrtq = state.lrtq().ok_or(LrtqUpgradeError::NoLrtqData)?;
        if lrtq.rack_id != msg.rack_id {
            return Err(LrtqUpgradeError::RackIdMismatch);
        }
        if state.latest_committed_epoch().is_some() {
            return Err(LrtqUpgradeError::AlreadyCommitted);
        }
        if !msg.members.contains(ctx.id()) {
            return Err(LrtqUpgradeError::NotAMember);
        }
        check_sizes(&msg.members, msg.threshold).map_err(|size| match size {
            SizeError::MemberCount => LrtqUpgradeError::MemberCount,
            SizeError::Threshold => LrtqUpgradeError::ThresholdTooLarge,
        })?;
        if msg.epoch < Epoch(2) {
            return Err(LrtqUpgradeError::EpochTooSmall);
        }
        let latest_seen = state
            .latest_epoch()
            .max(self.coordinator.as_ref().map(|c| c.epoch));
        if let Some(latest) = latest_seen.filter(|&e| e >= msg.epoch) {
            return Err(LrtqUpgradeError::EpochNotNewer { latest });
        }
        log::info!("coordinating the LRTQ upgrade at epoch {}", msg.epoch);
        Coordinator::start_lrtq_upgrade(&mut self.coordinator, ctx, msg);
        Ok(())
    }

    /// The running coordination, as Nexus polls it.
    pub fn coordinator_status<'a, R: TryCryptoRng>(
        &'a self,
        ctx: &'a NodeCtx<R>,
    ) -> Option<CoordinatorStatus<'a>> {
        let coordinator = self.coordinator.as_ref()?;
        let phase = coordinator.phase();
        let config = match phase {
            CoordinatorPhase::Preparing => ctx
                .persistent_state()
                .get(coordinator.epoch)
                .map(|stored| &stored.config),
            _ => None,
        };
        Some(CoordinatorStatus {
            epoch: coordinator.epoch,
            phase,
            acked: coordinator.acked(),
            config,
        })
    }

    /// Nexus committed `epoch`.
    pub fn commit_configuration<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        rack: RackId,
        epoch: Epoch,
    ) -> Result<(), CommitError> {
        let state = ctx.state();
        if state.expunged().is_some() {
            return Err(CommitError::Expunged);
        }
        if rack_id(state).is_some_and(|r| r != rack) {
            return Err(CommitError::RackIdMismatch);
        }
        if state.is_committed(epoch) {
            return Ok(());
        }
        if state.get(epoch).is_none_or(|stored| stored.share.is_none()) {
            return Err(CommitError::NotPrepared(epoch));
        }
        self.commit(ctx, epoch);
        Ok(())
    }

    /// Nexus hands the committed `config` to a node that missed its prepare.
    pub fn prepare_and_commit<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        config: &Configuration,
    ) -> Result<(), PrepareAndCommitError> {
        let state = ctx.state();
        if state.expunged().is_some() {
            return Err(PrepareAndCommitError::Expunged);
        }
        if rack_id(state).is_some_and(|r| r != config.rack_id()) {
            return Err(PrepareAndCommitError::RackIdMismatch);
        }
        self.on_commit_advance(ctx, config);
        Ok(())
    }

    /// The secret of committed `epoch`; `Ok(None)` means "not yet": shares
    /// are being collected, call again after messages arrive.
    pub fn load_rack_secret<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        epoch: Epoch,
    ) -> Result<Option<RackSecret>, LoadSecretError> {
        if ctx.state().expunged().is_some() {
            return Err(LoadSecretError::Expunged);
        }
        self.loader.load(ctx, epoch)
    }

    /// Drops every cached secret and stops collecting shares for loading.
    pub fn clear_secrets(&mut self) {
        self.loader.clear();
    }

    // ---- connection events ----

    /// `peer` connected: re-send whatever this node still needs from it.
    pub fn on_connect<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>, peer: &PlatformId) {
        if !ctx.add_connection(peer) || ctx.state().expunged().is_some() {
            return;
        }
        if let Some(coordinator) = &self.coordinator {
            coordinator.on_connect(ctx, peer);
        }
        if let Some(computer) = &self.share_computer {
            computer.on_connect(ctx, peer);
        }
        self.loader.on_connect(ctx, peer);
    }

    /// `peer` disconnected.
    pub fn on_disconnect<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>, peer: &PlatformId) {
        ctx.remove_connection(peer);
    }

    // ---- peer messages ----

    /// Decodes and handles bytes from `from`; undecodable bytes are counted.
    pub fn handle_bytes<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        bytes: &[u8],
    ) {
        // Decoded in place: the message (about 4 KiB with a configuration)
        // exists once, in this frame, while it is handled.
        let mut msg = wire::empty_peer_msg();
        match wire::decode_peer_msg_into(bytes, &mut msg) {
            Ok(()) => self.handle(ctx, from, &msg),
            Err(_) => ctx.count(Event::Undecodable),
        }
    }

    /// Handles a message from `from`. Anything refused is counted.
    pub fn handle<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        msg: &PeerMsg,
    ) {
        self.handle_msg(ctx, from, msg.as_ref());
    }

    /// [`Node::handle`] on a message that borrows its parts.
    fn handle_msg<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        msg: PeerMsgRef<'_>,
    ) {
        if ctx.state().expunged().is_some() {
            ctx.count(Event::WhileExpunged);
            return;
        }
        if rack_id(ctx.state()).is_some_and(|r| r != msg.rack_id) {
            ctx.count(Event::WrongRackId);
            return;
        }
        log::debug!("{} from {}", msg.body.kind(), from);
        let outcome = match msg.body {
            Body::Prepare {
                config,
                share,
                last_committed,
            } => self.on_prepare(ctx, from, msg.rack_id, config, share, last_committed),
            Body::PrepareAck(epoch) => self.on_prepare_ack(ctx, from, epoch),
            Body::GetShare(epoch) => on_get_share(ctx, from, epoch),
            Body::Share { epoch, share } => self.on_share(ctx, from, epoch, share),
            Body::GetLrtqShare => on_get_lrtq_share(ctx, from),
            Body::LrtqShare(share) => match &mut self.coordinator {
                Some(c) => c.on_lrtq_share(ctx, from, share),
                None => Err(Event::Unexpected),
            },
            Body::Expunged(epoch) => self.on_expunged(ctx, from, epoch),
            Body::CommitAdvance(config) => {
                if config.rack_id() == msg.rack_id {
                    self.on_commit_advance(ctx, config);
                    Ok(())
                } else {
                    Err(Event::WrongRackId)
                }
            }
        };
        if let Err(event) = outcome {
            ctx.count(event);
        }
    }

    // ---- outputs ----

    /// The next message to send, with its receiver. Call until `None` after
    /// every input call, once the persistent state is stored.
    pub fn next_message<'a, R: TryCryptoRng>(
        &'a self,
        ctx: &'a mut NodeCtx<R>,
    ) -> Option<(PlatformId, PeerMsgRef<'a>)> {
        // Skipping a stale message counts it, which needs `ctx` mutably, so
        // the loop only checks; the message is built again (a few lookups)
        // once `ctx` is borrowed shared for the returned lifetime.
        let (to, outgoing) = loop {
            let (to, outgoing) = ctx.pop_outgoing()?;
            if self.materialize(ctx.state(), &to, outgoing).is_some() {
                break (to, outgoing);
            }
            ctx.count(Event::OutgoingStale);
        };
        let ctx: &'a NodeCtx<R> = ctx;
        let msg = self.materialize(ctx.state(), &to, outgoing)?;
        Some((to, msg))
    }

    /// The epoch this node is coordinating, if any.
    pub fn coordinating(&self) -> Option<Epoch> {
        self.coordinator.as_ref().map(|c| c.epoch)
    }

    /// The epoch whose configuration this node is computing its share of.
    pub fn computing_share(&self) -> Option<Epoch> {
        self.share_computer.as_ref().map(ShareCollector::epoch)
    }

    /// The epoch whose secret is being collected for loading.
    pub fn loading(&self) -> Option<Epoch> {
        self.loader.collecting_epoch()
    }

    // ---- handlers ----

    fn on_prepare<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        rack: RackId,
        config: &Configuration,
        share: &Share,
        last_committed: Option<Epoch>,
    ) -> Result<(), Event> {
        let epoch = config.epoch();
        if ctx.state().is_committed(epoch) {
            return Err(Event::WrongEpoch);
        }
        // A newer configuration is known: Nexus started it after deciding
        // this one, so this prepare is stale.
        if ctx
            .state()
            .latest_epoch()
            .is_some_and(|latest| latest > epoch)
        {
            return Err(Event::WrongEpoch);
        }
        let digest = config.share_digest(ctx.id()).ok_or(Event::FromNonMember)?;
        let fits = config.rack_id() == rack
            && config.coordinator() == from
            && last_committed.is_none_or(|c| c < epoch)
            && bool::from(share.digest().ct_eq(digest));
        if !fits {
            return Err(Event::InvalidPrepare);
        }
        if let Some(committed) = last_committed {
            self.learn_committed(ctx, committed);
        }
        self.supersede(ctx, epoch, last_committed);
        self.store_config(ctx, config, Some(share))?;
        if self.coordinator.as_ref().is_some_and(|c| c.epoch < epoch) {
            log::info!("stopped coordinating: prepared newer epoch {}", epoch);
            self.coordinator = None;
        }
        ctx.reply(from, Outgoing::PrepareAck(epoch));
        Ok(())
    }

    /// A coordinator said Nexus committed `epoch`: commit it here too if it
    /// is prepared here (nothing else can be: Nexus commits only prepared
    /// epochs, and this node may simply have missed the commit message).
    fn learn_committed<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>, epoch: Epoch) {
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
    fn supersede<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        epoch: Epoch,
        keep: Option<Epoch>,
    ) {
        let obsolete = |e: Epoch| e < epoch && Some(e) != keep;
        let any = ctx.state().fields().configs.iter().any(|stored| {
            let e = stored.config.epoch();
            obsolete(e) && !ctx.state().is_committed(e)
        });
        if any {
            ctx.update_state(|state| state.drop_uncommitted(obsolete));
        }
        if self
            .share_computer
            .as_ref()
            .is_some_and(|c| obsolete(c.epoch()))
        {
            self.share_computer = None;
        }
    }

    fn on_prepare_ack<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        epoch: Epoch,
    ) -> Result<(), Event> {
        let coordinator = self.coordinator.as_mut().ok_or(Event::Unexpected)?;
        if coordinator.epoch != epoch {
            return Err(Event::WrongEpoch);
        }
        let config = ctx
            .state()
            .get(epoch)
            .map(|stored| &stored.config)
            .ok_or(Event::Unexpected)?;
        coordinator.on_prepare_ack(config, from)
    }

    fn on_share<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<(), Event> {
        // Every collector that wants this epoch gets the share; the message
        // counts as refused only if none of them took it.
        let mut outcome = Err(Event::Unexpected);
        if let Some(coordinator) = &mut self.coordinator {
            outcome = better(outcome, coordinator.on_share(ctx, from, epoch, share));
        }
        if self.share_computer.is_some() {
            outcome = better(outcome, self.on_share_for_computer(ctx, from, epoch, share));
        }
        outcome = better(outcome, self.loader.on_share(ctx, from, epoch, share));
        outcome
    }

    /// Out of line: computing a share holds interpolation tables, which
    /// must not sit in the frame every message is handled from.
    #[inline(never)]
    fn on_share_for_computer<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<(), Event> {
        let computer = self.share_computer.as_mut().ok_or(Event::Unexpected)?;
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
        ctx.update_state(|state| state.set_share(epoch, &own));
        self.commit(ctx, epoch);
        Ok(())
    }

    fn on_expunged<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        epoch: Epoch,
    ) -> Result<(), Event> {
        if ctx
            .state()
            .latest_epoch()
            .is_some_and(|latest| epoch < latest)
        {
            return Err(Event::WrongEpoch);
        }
        log::warning!("expunged at epoch {} by {}", epoch, from);
        ctx.update_state(|state| state.set_expunged(epoch, from));
        self.coordinator = None;
        self.share_computer = None;
        self.loader.clear();
        ctx.clear_outgoing();
        Ok(())
    }

    /// `CommitAdvance(config)` or `prepare_and_commit(config)`.
    fn on_commit_advance<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>, config: &Configuration) {
        let epoch = config.epoch();
        if !config.is_member(ctx.id()) {
            ctx.count(Event::FromNonMember);
            return;
        }
        if ctx.state().is_committed(epoch) {
            ctx.count(Event::WrongEpoch);
            return;
        }
        let prepared = ctx
            .state()
            .get(epoch)
            .is_some_and(|stored| stored.share.is_some() && stored.config == *config);
        if prepared {
            self.commit(ctx, epoch);
            return;
        }
        let mismatched = ctx
            .state()
            .get(epoch)
            .is_some_and(|stored| stored.config != *config);
        if mismatched {
            ctx.raise_alarm(Alarm::MismatchedConfigurations(epoch));
            return;
        }
        // Nexus committed `config`: older uncommitted ones are obsolete.
        self.supersede(ctx, epoch, None);
        if let Err(event) = self.store_config(ctx, config, None) {
            ctx.count(event);
            return;
        }
        if self.coordinator.as_ref().is_some_and(|c| c.epoch <= epoch) {
            self.coordinator = None;
        }
        if self.coordinator.is_some() {
            // Coordinating a newer epoch than one just committed cannot
            // happen (Nexus starts a coordination only after the commit it
            // names); keep invariant 4 by not starting a computation.
            ctx.count(Event::Unexpected);
            return;
        }
        if self
            .share_computer
            .as_ref()
            .is_some_and(|c| c.epoch() >= epoch)
        {
            return;
        }
        log::info!("computing own share of epoch {}", epoch);
        self.share_computer = ShareCollector::start(ctx, epoch);
    }

    /// Stores a configuration, raising the alarm on a mismatch.
    fn store_config<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        config: &Configuration,
        share: Option<&Share>,
    ) -> Result<(), Event> {
        let epoch = config.epoch();
        let already = ctx.state().get(epoch).is_some_and(|stored| {
            stored.config == *config && (share.is_none() || stored.share.is_some())
        });
        if already {
            return Ok(());
        }
        match ctx.update_state(|state| state.store(config, share)) {
            Ok(_) => Ok(()),
            Err(crate::persistent::StateError::MismatchedConfiguration) => {
                ctx.raise_alarm(Alarm::MismatchedConfigurations(epoch));
                Err(Event::InvalidPrepare)
            }
            Err(crate::persistent::StateError::Full) => {
                ctx.count(Event::ConfigDropped);
                Err(Event::WrongEpoch)
            }
            Err(_) => Err(Event::WrongEpoch),
        }
    }

    /// Records the commit of a prepared `epoch` and stops what it ends.
    fn commit<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>, epoch: Epoch) {
        if !ctx.update_state(|state| state.commit(epoch)) {
            ctx.raise_alarm(Alarm::CommittedConfigurationLost(epoch));
            return;
        }
        log::info!("committed epoch {}", epoch);
        if self.coordinator.as_ref().is_some_and(|c| c.epoch <= epoch) {
            self.coordinator = None;
        }
        if self
            .share_computer
            .as_ref()
            .is_some_and(|c| c.epoch() <= epoch)
        {
            self.share_computer = None;
        }
    }

    /// Builds the message an [`Outgoing`] stands for, if what it refers to
    /// still exists.
    fn materialize<'a>(
        &'a self,
        state: &'a PersistentState,
        to: &PlatformId,
        outgoing: Outgoing,
    ) -> Option<PeerMsgRef<'a>> {
        let body = match outgoing {
            Outgoing::Prepare(epoch) => {
                let config = &state.get(epoch)?.config;
                let coordinator = self.coordinator.as_ref()?;
                Body::Prepare {
                    config,
                    share: coordinator.share_for(config, to)?,
                    last_committed: coordinator.request.last_committed(),
                }
            }
            Outgoing::PrepareAck(epoch) => Body::PrepareAck(epoch),
            Outgoing::GetShare(epoch) => Body::GetShare(epoch),
            Outgoing::Share(epoch) => Body::Share {
                epoch,
                share: state.get(epoch)?.share.as_ref()?,
            },
            Outgoing::GetLrtqShare => Body::GetLrtqShare,
            Outgoing::LrtqShare => Body::LrtqShare(&state.lrtq()?.share),
            Outgoing::Expunged(epoch) => Body::Expunged(epoch),
            Outgoing::CommitAdvance(epoch) => Body::CommitAdvance(&state.get(epoch)?.config),
        };
        Some(Envelope {
            rack_id: rack_id(state)?,
            body,
        })
    }
}

/// `GetShare(epoch)` from `from`.
fn on_get_share<R: TryCryptoRng>(
    ctx: &mut NodeCtx<R>,
    from: &PlatformId,
    epoch: Epoch,
) -> Result<(), Event> {
    if answer_if_behind(ctx, from, epoch) {
        return Ok(());
    }
    let stored = ctx.state().get(epoch).ok_or(Event::CannotAnswer)?;
    if !stored.config.is_member(from) {
        ctx.reply(from, Outgoing::Expunged(epoch));
        return Ok(());
    }
    if stored.share.is_none() {
        return Err(Event::CannotAnswer);
    }
    ctx.reply(from, Outgoing::Share(epoch));
    Ok(())
}

/// `GetLrtqShare` from `from`.
fn on_get_lrtq_share<R: TryCryptoRng>(
    ctx: &mut NodeCtx<R>,
    from: &PlatformId,
) -> Result<(), Event> {
    if ctx.state().latest_committed_epoch().is_some() {
        // LRTQ shares are only for the upgrade; after a commit the asker is
        // behind.
        tell_behind(ctx, from);
        return Ok(());
    }
    if ctx.state().lrtq().is_none() {
        return Err(Event::CannotAnswer);
    }
    ctx.reply(from, Outgoing::LrtqShare);
    Ok(())
}

/// If a later epoch than `epoch` is committed, tells `from` so (`Expunged`
/// for a non-member of it, else `CommitAdvance`) and returns true.
fn answer_if_behind<R: TryCryptoRng>(
    ctx: &mut NodeCtx<R>,
    from: &PlatformId,
    epoch: Epoch,
) -> bool {
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
fn tell_behind<R: TryCryptoRng>(ctx: &mut NodeCtx<R>, from: &PlatformId) {
    let Some(latest) = ctx.state().latest_committed() else {
        return;
    };
    let epoch = latest.config.epoch();
    if latest.config.is_member(from) {
        ctx.reply(from, Outgoing::CommitAdvance(epoch));
    } else {
        ctx.reply(from, Outgoing::Expunged(epoch));
    }
}

/// The rack this node belongs to, once it knows.
fn rack_id(state: &PersistentState) -> Option<RackId> {
    state
        .fields()
        .configs
        .last()
        .map(|stored| stored.config.rack_id())
        .or_else(|| state.lrtq().map(|lrtq| lrtq.rack_id))
}

enum SizeError {
    MemberCount,
    Threshold,
}

fn check_sizes(members: &MemberSet, threshold: Threshold) -> Result<(), SizeError> {
    use crate::limits::{MAX_MEMBERS, MIN_MEMBERS};
    if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&members.len()) {
        return Err(SizeError::MemberCount);
    }
    if !threshold.fits_member_count(members.len()) {
        return Err(SizeError::Threshold);
    }
    Ok(())
}

/// Of two outcomes for one share offered to several collectors, the one to
/// report: success wins, then the more specific refusal.
fn better(a: Result<(), Event>, b: Result<(), Event>) -> Result<(), Event> {
    match (a, b) {
        (Ok(()), _) | (_, Ok(())) => Ok(()),
        (Err(Event::Unexpected), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    }
}
