//! The trust quorum node: the protocol state machine of PROTOCOL.md
//! section 6.
//!
//! A [`Node`] holds only in-memory protocol state (a running coordination,
//! a share computation, the secret loader). Everything else lives in the
//! caller-owned [`NodeCtx`], passed to every call. Randomness is passed to
//! the calls that need it.
//!
//! # The driving contract
//!
//! At boot, make the context where it will live with [`NodeCtx::new`] and
//! fill its state in place: [`NodeCtx::restore_state`] from storage, or,
//! if storage holds no state, [`NodeCtx::restore_lrtq`] from the LRTQ
//! ledger. Then, for every input:
//!
//! 1. Call one input: a Nexus-facing call (`coordinate_reconfiguration`,
//!    `commit_configuration`, ...), a connection event (`on_connect`,
//!    `on_disconnect`) or a peer message ([`Node::handle_bytes`]).
//! 2. If [`NodeCtx::state_to_store`] returns a state, store it durably,
//!    then [`NodeCtx::acknowledge_stored`] its revision. Only a real change
//!    makes the state unstored; a refused or no-op call does not.
//! 3. Drain [`Node::poll_transmit`] (each message encoded into the
//!    caller's buffer) and send each, and drain [`NodeCtx::poll_event`].
//!
//! The node enforces step 2: while the state is not stored, `poll_transmit`
//! and `poll_event` hand out nothing, so an ack never leaves for state a
//! crash could lose, and a write that failed (left unacknowledged) keeps
//! everything queued until a later write succeeds. [`drive()`] (and
//! [`drive_async`] for a caller that awaits its storage) is this loop: it
//! runs an input and steps 2 and 3 against the caller's [`Io`].
//!
//! Nothing in here waits or retries on a timer; a peer that reconnects is
//! sent again what it still needs.
//!
//! # Whom a secret load asks
//!
//! A secret load asks only as many connected members as it lacks shares
//! (`K − 1` with its own), the next ones after this node in member order:
//! a rack that boots and loads at once sends `K − 1` asks per sled where
//! it sent `n − 1` (about half, with a majority threshold), hands out as
//! many fewer shares, and spreads the asks evenly over the members. An asked member that disconnects first is replaced by the next
//! one. One that stays connected and silent (stopped, its audit log full,
//! or hostile) holds the load up: the caller, which has the clock, calls
//! [`Node::widen_secret_load`] once a load waited longer than a share takes,
//! and every member is asked. A reconfiguration's collections (the
//! coordinator's, a node computing its share) ask every member at once:
//! nothing would widen them.

pub mod claims;
mod collector;
mod coordinator;
mod ctx;
mod drive;
mod events;
mod loader;
mod outbox;
mod peer;
#[cfg(test)]
mod tests;
mod transmit;
mod validate;

// The Nexus-facing types the node answers with live a layer below it, in
// `api`; re-exported so that callers keep their paths.
pub use crate::api::{
    Alarm, COUNTER_COUNT, CommitError, CoordinatorPhase, Counter, CounterKind, Counters,
    ExpungedAt, LoadSecretError, LrtqUpgradeError, PrepareAndCommitError, RackMismatch,
    ReconfigureError,
};
pub use ctx::{CtxSlot, NodeCtx, RestoreLrtqError, StateToStore};
pub use drive::{AsyncIo, Io, Outputs, drive, drive_async};
pub use events::Event;
pub use transmit::Transmit;

use rand_core::TryCryptoRng;

use crate::api::{
    Activity, CommitOutcome, CommitRequest, ConfigSummary, Coordinating, CoordinatorStatusRef,
    LrtqSummary, LrtqUpgradeMsg, NodeStatusRef, PrepareAndCommitOutcome, ReconfigureMsg,
    ReconfigureOutcome, StateSummary,
};
use crate::authority::{CoordinatorStatusQuery, LatestSecretQuery, Verified};
use crate::config::Configuration;
use crate::crypto::RackSecret;
use crate::ids::{Epoch, PlatformId};
use crate::log;
use crate::member_set::MemberSubset;
use crate::node::peer::AdvanceRefused;
use collector::ShareCollector;
use coordinator::{Coordinator, StartFailed};
use loader::SecretLoader;
use validate::{Reconfigure, expunged, rack_mismatch};

/// The in-memory state of one trust quorum node.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub struct Node {
    coordinator: Option<Coordinator>,
    /// Shares being collected to compute this node's own share of a
    /// configuration it learned of only after it committed.
    share_computer: Option<ShareCollector>,
    loader: SecretLoader,
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl Node {
    /// A node with nothing in progress (after boot, or after a crash: the
    /// persistent state in the context is all that survives). `const`, so
    /// firmware declares it as a `static`.
    pub const fn new() -> Self {
        Self {
            coordinator: None,
            share_computer: None,
            loader: SecretLoader::new(),
        }
    }

    // ---- Nexus-facing calls ----
    //
    // Each takes the request as a `Verified` value, which only
    // `NodeCtx::verify_request` makes (see `crate::authority`): no caller
    // reaches one without Nexus's tag checked against this sled's key.

    /// Starts coordinating the reconfiguration `msg` describes. The same
    /// request again changes nothing, except that it retries a prepare
    /// that failed for want of randomness.
    pub fn coordinate_reconfiguration<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        msg: Verified<'_, ReconfigureMsg>,
    ) -> Result<ReconfigureOutcome, ReconfigureError> {
        let msg = msg.body();
        let running = self.coordinator.as_ref();
        match validate::reconfigure(ctx, running, self.computing_share(), msg)? {
            Reconfigure::Repeat => {
                if let Some(coordinator) = &mut self.coordinator {
                    coordinator.retry(ctx, rng);
                }
                Ok(ReconfigureOutcome::AlreadyRunning)
            }
            Reconfigure::Start(request) => {
                self.coordinator = None;
                match Coordinator::start(&mut self.coordinator, ctx, rng, request) {
                    Ok(()) => Ok(ReconfigureOutcome::Started),
                    Err(StartFailed::Rng) => Err(ReconfigureError::Rng(crate::crypto::RngError)),
                    Err(StartFailed::Internal) => Err(ReconfigureError::Internal),
                }
            }
        }
    }

    /// Starts coordinating the upgrade of this LRTQ rack.
    pub fn coordinate_upgrade_from_lrtq<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        msg: Verified<'_, LrtqUpgradeMsg>,
    ) -> Result<(), LrtqUpgradeError> {
        let msg = msg.body();
        let request = validate::lrtq_upgrade(ctx, self.coordinator.as_ref(), msg)?;
        // An upgrade collects shares first, so starting it draws no
        // randomness and cannot fail.
        Coordinator::start(&mut self.coordinator, ctx, rng, request).ok();
        Ok(())
    }

    /// The running coordination, as Nexus polls it (the answer to tag with
    /// [`NodeCtx::tag_answer`]).
    pub fn coordinator_status<'a>(
        &'a self,
        ctx: &'a NodeCtx,
        _request: Verified<'_, CoordinatorStatusQuery>,
    ) -> Option<CoordinatorStatusRef<'a>> {
        self.coordination(ctx)
    }

    /// The running coordination, as [`Self::coordinator_status`] shows it,
    /// for the sled's own observers (status pages, the harness's
    /// checkers). Read-only and public, like [`Self::status`], so it takes
    /// no authority; Nexus acts only on the tagged answer of
    /// [`Self::coordinator_status`].
    pub fn coordination<'a>(&'a self, ctx: &'a NodeCtx) -> Option<CoordinatorStatusRef<'a>> {
        let coordinator = self.coordinator.as_ref()?;
        let acked = coordinator.acked();
        let config = acked
            .and_then(|_| ctx.persistent_state().get(coordinator.epoch))
            .map(|stored| &stored.config);
        Some(CoordinatorStatusRef {
            epoch: coordinator.epoch,
            phase: coordinator.phase(),
            acked: acked.unwrap_or(MemberSubset::none()),
            config,
        })
    }

    /// Nexus committed `request.epoch`.
    pub fn commit_configuration(
        &mut self,
        ctx: &mut NodeCtx,
        request: Verified<'_, CommitRequest>,
    ) -> Result<CommitOutcome, CommitError> {
        let request = request.body();
        let state = ctx.state();
        if let Some(expunged) = expunged(state) {
            return Err(CommitError::Expunged(expunged));
        }
        if let Some(mismatch) = rack_mismatch(state, request.rack_id) {
            return Err(CommitError::RackIdMismatch(mismatch));
        }
        if state.is_committed(request.epoch) {
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        if state
            .get(request.epoch)
            .is_none_or(|stored| stored.share.is_none())
        {
            return Err(CommitError::NotPrepared(request.epoch));
        }
        self.commit(ctx, request.epoch);
        Ok(CommitOutcome::Committed)
    }

    /// Nexus hands the committed `config` to a node that missed its
    /// prepare.
    pub fn prepare_and_commit(
        &mut self,
        ctx: &mut NodeCtx,
        config: Verified<'_, Configuration>,
    ) -> Result<PrepareAndCommitOutcome, PrepareAndCommitError> {
        let config = config.body();
        let state = ctx.state();
        if let Some(expunged) = expunged(state) {
            return Err(PrepareAndCommitError::Expunged(expunged));
        }
        if let Some(mismatch) = rack_mismatch(state, config.rack_id()) {
            return Err(PrepareAndCommitError::RackIdMismatch(mismatch));
        }
        self.advance(ctx, config).map_err(|refused| match refused {
            AdvanceRefused::NotAMember => PrepareAndCommitError::NotAMember,
            AdvanceRefused::NewerCommitted { latest } => PrepareAndCommitError::NewerCommitted {
                epoch: config.epoch(),
                latest,
            },
            AdvanceRefused::ConflictsWithCommitted => {
                PrepareAndCommitError::ConflictsWithCommitted(config.epoch())
            }
            AdvanceRefused::Mismatched => {
                PrepareAndCommitError::MismatchedConfiguration(config.epoch())
            }
            AdvanceRefused::CoordinatingNewer(epoch) => {
                PrepareAndCommitError::CoordinatingNewerEpoch(epoch)
            }
            AdvanceRefused::StoreFull | AdvanceRefused::Internal => PrepareAndCommitError::Internal,
        })
    }

    /// The secret of committed `epoch` (or, on a sled of an LRTQ rack with
    /// nothing committed, of epoch 1: the LRTQ secret); `Ok(None)` means
    /// "not yet": shares are being collected, and an
    /// [`Event::SecretLoaded`] says when they are in.
    ///
    /// Not a Nexus call, so not authenticated: the host's own load, for its
    /// own disks at boot. The node hands the secret to the host it runs for
    /// by design (its disk keys derive from it); what the host may not do
    /// without Nexus's tag is act with Nexus's authority on the rack
    /// (every call above) or answer Nexus in this node's name
    /// ([`Self::load_latest_rack_secret`], whose answer Nexus checks).
    pub fn load_rack_secret(
        &mut self,
        ctx: &mut NodeCtx,
        epoch: Epoch,
    ) -> Result<Option<RackSecret>, LoadSecretError> {
        if let Some(expunged) = expunged(ctx.state()) {
            return Err(LoadSecretError::Expunged(expunged));
        }
        self.loader.load(ctx, epoch)
    }

    /// The secret of the latest committed epoch, with that epoch: what
    /// Nexus's fingerprint request asks. `Ok(None)` means "not yet", as for
    /// [`Self::load_rack_secret`]. With nothing committed, a sled of an
    /// LRTQ rack not yet upgraded loads the LRTQ secret as epoch 1; any
    /// other refuses at once, since no share will ever make an answer.
    pub fn load_latest_rack_secret(
        &mut self,
        ctx: &mut NodeCtx,
        _request: Verified<'_, LatestSecretQuery>,
    ) -> Result<Option<(Epoch, RackSecret)>, LoadSecretError> {
        self.load_own_latest_rack_secret(ctx)
    }

    /// [`Self::load_latest_rack_secret`] for the host's own use (its
    /// disks), not in answer to Nexus: not authenticated, for the reason
    /// [`Self::load_rack_secret`] gives.
    pub fn load_own_latest_rack_secret(
        &mut self,
        ctx: &mut NodeCtx,
    ) -> Result<Option<(Epoch, RackSecret)>, LoadSecretError> {
        if let Some(expunged) = expunged(ctx.state()) {
            return Err(LoadSecretError::Expunged(expunged));
        }
        let latest = loader::latest_loadable_epoch(ctx.state())
            .ok_or(LoadSecretError::NoCommittedConfiguration)?;
        Ok(self
            .loader
            .load(ctx, latest)?
            .map(|secret| (latest, secret)))
    }

    /// Drops every cached secret and stops collecting shares for loading.
    pub fn clear_secrets(&mut self) {
        self.loader.clear();
    }

    /// Everything an operator may see of this node (never a secret or a
    /// share).
    pub fn status<'a>(&self, ctx: &'a NodeCtx) -> NodeStatusRef<'a> {
        let state = ctx.persistent_state();
        let mut configs = heapless::Vec::new();
        for stored in &state.fields().configs {
            let config = &stored.config;
            let summary = ConfigSummary {
                epoch: config.epoch(),
                coordinator: config.coordinator().clone(),
                members: u8::try_from(config.members().len()).unwrap_or(u8::MAX),
                threshold: config.threshold(),
                share_held: stored.share.is_some(),
                committed: state.is_committed(config.epoch()),
            };
            // Same capacity as the state's list: cannot fail.
            if configs.push(summary).is_err() {
                break;
            }
        }
        let mut alarms = heapless::Vec::new();
        for alarm in ctx.alarms() {
            if alarms.push(*alarm).is_err() {
                break;
            }
        }
        NodeStatusRef {
            id: ctx.id().clone(),
            connected: ctx.connected(),
            state: StateSummary {
                lrtq: state.lrtq().map(|lrtq| LrtqSummary {
                    rack_id: lrtq.rack_id,
                    threshold: lrtq.threshold,
                }),
                configs,
                latest_committed: state.latest_committed_epoch(),
                expunged: state.expunged().cloned(),
            },
            state_stored: ctx.is_stored(),
            activity: Activity {
                coordinating: self.coordinator.as_ref().map(|c| Coordinating {
                    epoch: c.epoch,
                    phase: c.phase(),
                }),
                computing_share: self.computing_share(),
                loading_secret: self.loader.collecting_epoch(),
                secret_loaded: self.loader.loaded_epoch(),
            },
            alarms,
            counters: *ctx.counters(),
        }
    }

    // ---- connection events ----

    /// `peer` connected: re-send whatever this node still needs from it.
    pub fn on_connect(&mut self, ctx: &mut NodeCtx, peer: &PlatformId) {
        if !ctx.add_connection(peer) || ctx.state().expunged().is_some() {
            return;
        }
        if let Some(coordinator) = &mut self.coordinator {
            coordinator.on_connect(ctx, peer);
        }
        if let Some(computer) = &mut self.share_computer {
            computer.on_connection_change(ctx, peer);
        }
        self.loader.on_connect(ctx, peer);
    }

    /// `peer` disconnected: a secret load that awaited its share asks
    /// another member in its place.
    pub fn on_disconnect(&mut self, ctx: &mut NodeCtx, peer: &PlatformId) {
        ctx.remove_connection(peer);
        if ctx.state().expunged().is_none() {
            self.loader.on_disconnect(ctx, peer);
        }
    }

    /// Asks every connected member for the shares a secret load still
    /// awaits. A load asks only as many members as it needs shares (and
    /// another whenever one of them disconnects first), so a member that
    /// stays connected but silent holds it up; the core keeps no clock, so
    /// the caller calls this once a load has waited longer than a share
    /// takes to come. No member is asked twice on one connection, so
    /// calling it again asks nobody.
    pub fn widen_secret_load(&mut self, ctx: &mut NodeCtx) {
        if ctx.state().expunged().is_none() {
            self.loader.widen(ctx);
        }
    }

    // ---- what is in progress ----

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

    // ---- changes every path shares ----

    /// Records the commit of a prepared `epoch` and stops what it ends.
    fn commit(&mut self, ctx: &mut NodeCtx, epoch: Epoch) {
        if !ctx.state_mut().commit(epoch) {
            ctx.raise_alarm(Alarm::CommittedConfigurationLost(epoch));
            return;
        }
        log::info!("committed epoch {}", epoch);
        ctx.emit(Event::Committed(epoch));
        self.loader.forget_lrtq();
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
}
