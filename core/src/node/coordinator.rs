//! The coordinator of one reconfiguration: rebuild the old secret (from
//! shares of the last committed configuration, or from LRTQ shares), make a
//! new secret, split it, and prepare every member.

use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;

use crate::api::Alarm;
use crate::api::Counter;
use crate::api::{CoordinatorPhase, ReconfigureMsg, acks_to_commit};
use crate::config::{ConfigError, ConfigFields, Member};
use crate::crypto::{
    EncryptedRackSecrets, LrtqShare, RackSecret, RetainedSecrets, SealError, ShamirError, Share,
    combine_lrtq, split,
};
use crate::ids::{Epoch, PlatformId, RackId, Threshold};
use crate::limits::{MAX_LRTQ_COMBINE, MAX_MEMBERS};
use crate::log;
use crate::member_set::{MemberBits, MemberSet, MemberSubset};
use crate::messages::{QueuedBody, QueuedShare};
use crate::node::collector::{Asking, ShareCollector};
use crate::node::ctx::NodeCtx;
use crate::node::events::Event;
use crate::node::peer::NOT_WANTED;
use crate::node::validate::{RequestKind, Validated};
use crate::persistent::{LrtqShareData, StateError};

/// What Nexus asked for, as validated and kept by the coordinator.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) struct Request {
    rack_id: RackId,
    members: MemberSet,
    threshold: Threshold,
    kind: RequestKind,
}

impl Request {
    /// The epoch Nexus named as last committed (none for an LRTQ upgrade:
    /// LRTQ's epoch 1 is never a stored configuration).
    fn last_committed(&self) -> Option<Epoch> {
        match self.kind {
            RequestKind::Reconfigure { last_committed } => last_committed,
            RequestKind::LrtqUpgrade => None,
        }
    }
}

/// LRTQ shares gathered for an upgrade: each valid, no two alike (a share
/// replayed by another sled is the same share). Shares are compared
/// themselves, in constant time, not by digest: a digest is a function of
/// the share's bytes, and a list of digests was 1 KiB of static memory.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) struct LrtqCollector {
    shares: heapless::Vec<LrtqShare, MAX_LRTQ_COMBINE, u8>,
    /// For each accepted share, who sent it (its member position).
    senders: heapless::Vec<u8, MAX_LRTQ_COMBINE, u8>,
    /// Members that answered, bit `i` for the request's member `i`: not
    /// asked again when they reconnect.
    answered: MemberBits,
}

/// Each member's share of a new secret, in member (x-coordinate) order.
type SharesTable = heapless::Vec<Share, MAX_MEMBERS>;

/// The prepare phase: each member's share, and who has acked (bit `i`
/// for the request's member `i`).
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) struct Preparing {
    shares: SharesTable,
    acked: MemberBits,
}

// The phases are exclusive and the core does not allocate, so the largest
// (about 1 KiB each) sets the size; boxing is not an option.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) enum Phase {
    CollectingShares(ShareCollector),
    CollectingLrtqShares(LrtqCollector),
    Preparing(Preparing),
}

/// One running coordination.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) struct Coordinator {
    pub(crate) epoch: Epoch,
    request: Request,
    phase: Phase,
}

/// Why a coordination could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartFailed {
    /// The caller's RNG failed; nothing changed.
    Rng,
    /// An invariant of this code broke; counted (and an alarm raised if
    /// one of the protocol's broke).
    Internal,
}

impl Coordinator {
    /// Starts the coordination `request` describes in `slot`, where it
    /// lives from then on (so a prepare moves no phase or coordination out
    /// of it); on an error `slot` is left empty.
    pub(crate) fn start<R: TryCryptoRng + ?Sized>(
        slot: &mut Option<Self>,
        ctx: &mut NodeCtx,
        rng: &mut R,
        request: Validated<'_>,
    ) -> Result<(), StartFailed> {
        let is_upgrade = request.kind == RequestKind::LrtqUpgrade;
        let committed = ctx.state().latest_committed_epoch();
        let collector = match committed.filter(|_| !is_upgrade) {
            Some(old_epoch) => {
                let collector = ShareCollector::start(ctx, old_epoch, Asking::Everyone);
                if collector.is_none() {
                    ctx.count(Counter::Internal);
                    return Err(StartFailed::Internal);
                }
                collector
            }
            None => None,
        };
        // Built with an empty member set, then filled in place: a clone of
        // the set inside the value put in the slot would be built on the
        // stack first (the whole coordinator, about 5 KiB).
        let coordinator = slot.insert(Self {
            epoch: request.epoch,
            request: Request {
                rack_id: request.rack_id,
                members: MemberSet::new_empty(),
                threshold: request.threshold,
                kind: request.kind,
            },
            phase: Phase::Preparing(Preparing::new()),
        });
        coordinator.request.members.copy_from(request.members);
        if is_upgrade {
            log::info!("coordinating the LRTQ upgrade at epoch {}", request.epoch);
            coordinator.phase = Phase::CollectingLrtqShares(LrtqCollector::new());
            coordinator.start_lrtq_collection(ctx);
            return Ok(());
        }
        log::info!("coordinating epoch {}", request.epoch);
        if let Some(collector) = collector {
            coordinator.phase = Phase::CollectingShares(collector);
            coordinator.after_share(ctx, rng);
            return Ok(());
        }
        // A fresh rack: nothing old to carry.
        let prepared = RackSecret::generate(rng)
            .map_err(|_| PrepareFailed::Rng)
            .and_then(|secret| coordinator.prepare(ctx, rng, &secret, None));
        match prepared {
            Ok(()) => Ok(()),
            Err(failed) => {
                *slot = None;
                Err(failed.count(ctx))
            }
        }
    }

    /// Takes this node's own LRTQ share and asks every other member for
    /// theirs.
    fn start_lrtq_collection(&mut self, ctx: &mut NodeCtx) {
        if let Phase::CollectingLrtqShares(collector) = &mut self.phase
            && let Some(lrtq) = ctx.state().lrtq()
            && let Err(counter) = (self.request.members.bit_of(ctx.id()))
                .ok_or(Counter::Internal)
                .and_then(|bit| collector.add(bit, &lrtq.share, lrtq))
        {
            ctx.count(counter);
        }
        for member in self.request.members.as_slice() {
            if member != ctx.id() {
                ctx.request(member, QueuedBody::GetLrtqShare);
            }
        }
    }

    /// The same request came again: if the shares are all here but the
    /// prepare failed for want of randomness, try again now.
    pub(crate) fn retry<R: TryCryptoRng + ?Sized>(&mut self, ctx: &mut NodeCtx, rng: &mut R) {
        match self.phase {
            Phase::CollectingShares(_) => self.after_share(ctx, rng),
            Phase::CollectingLrtqShares(_) => self.after_lrtq_share(ctx, rng),
            Phase::Preparing(_) => {}
        }
    }

    pub(crate) fn phase(&self) -> CoordinatorPhase {
        match self.phase {
            Phase::CollectingShares(_) => CoordinatorPhase::CollectingShares,
            Phase::CollectingLrtqShares(_) => CoordinatorPhase::CollectingLrtqShares,
            Phase::Preparing(_) => CoordinatorPhase::Preparing,
        }
    }

    pub(crate) fn is_same_request(&self, msg: &ReconfigureMsg) -> bool {
        let request = &self.request;
        let kind = RequestKind::Reconfigure {
            last_committed: msg.last_committed_epoch,
        };
        request.kind == kind
            && self.epoch == msg.epoch
            && request.rack_id == msg.rack_id
            && request.members == msg.members
            && request.threshold == msg.threshold
    }

    pub(crate) fn is_lrtq_upgrade(&self) -> bool {
        self.request.kind == RequestKind::LrtqUpgrade
    }

    /// Members that acked the prepare (the coordinator included), once
    /// preparing.
    pub(crate) fn acked(&self) -> Option<MemberSubset<'_>> {
        match &self.phase {
            Phase::Preparing(p) => {
                Some(MemberSubset::new(self.request.members.as_slice(), p.acked))
            }
            _ => None,
        }
    }

    /// The share this coordination made for member `to`, while preparing.
    pub(crate) fn share_for(&self, to: &PlatformId) -> Option<&Share> {
        let Phase::Preparing(p) = &self.phase else {
            return None;
        };
        // A member set is sorted as a configuration's members are, so a
        // member's position there is its share's.
        let at = self.request.members.as_slice().binary_search(to).ok()?;
        p.shares.get(at)
    }

    /// A share of the last committed configuration arrived.
    pub(crate) fn on_share<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<(), Counter> {
        let Phase::CollectingShares(collector) = &mut self.phase else {
            return Err(NOT_WANTED);
        };
        collector.offer(ctx.state(), from, epoch, share)?;
        self.after_share(ctx, rng);
        Ok(())
    }

    /// An LRTQ share arrived.
    pub(crate) fn on_lrtq_share<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        from: &PlatformId,
        share: &LrtqShare,
    ) -> Result<(), Counter> {
        let Phase::CollectingLrtqShares(collector) = &mut self.phase else {
            return Err(NOT_WANTED);
        };
        let bit = self
            .request
            .members
            .bit_of(from)
            .ok_or(Counter::FromNonMember)?;
        // An upgrade starts only on a node with LRTQ data (validated).
        let lrtq = ctx.state().lrtq().ok_or(Counter::Internal)?;
        collector.add(bit, share, lrtq)?;
        self.after_lrtq_share(ctx, rng);
        Ok(())
    }

    /// A prepare ack arrived from `from`.
    pub(crate) fn on_prepare_ack(
        &mut self,
        ctx: &mut NodeCtx,
        from: &PlatformId,
    ) -> Result<(), Counter> {
        // No prepare of this epoch has left before its preparing phase.
        let Phase::Preparing(p) = &mut self.phase else {
            return Err(Counter::Unexpected);
        };
        let bit = self
            .request
            .members
            .bit_of(from)
            .ok_or(Counter::FromNonMember)?;
        if p.acked & bit != 0 {
            return Ok(());
        }
        p.acked |= bit;
        let acks = p.acked.count_ones() as usize;
        if acks == acks_to_commit(self.request.members.len(), self.request.threshold) {
            ctx.emit(Event::ReadyToCommit {
                epoch: self.epoch,
                acks: u8::try_from(acks).unwrap_or(u8::MAX),
            });
        }
        Ok(())
    }

    /// What to re-send to a peer that just connected.
    pub(crate) fn on_connect(&mut self, ctx: &mut NodeCtx, peer: &PlatformId) {
        if !self.request.members.contains(peer) {
            return;
        }
        match &mut self.phase {
            Phase::CollectingShares(collector) => collector.on_connection_change(ctx, peer),
            Phase::CollectingLrtqShares(collector) => {
                let answered = (self.request.members.bit_of(peer))
                    .is_some_and(|bit| collector.answered & bit != 0);
                if !answered {
                    ctx.request(peer, QueuedBody::GetLrtqShare);
                }
            }
            Phase::Preparing(p) => {
                let acked =
                    (self.request.members.bit_of(peer)).is_some_and(|bit| p.acked & bit != 0);
                if !acked {
                    ctx.request(peer, self.prepare_for());
                }
            }
        }
    }

    /// The `Prepare` of this coordination, as queued for any member.
    fn prepare_for(&self) -> QueuedBody {
        QueuedBody::Prepare {
            config: self.epoch,
            share: QueuedShare::ForReceiver(self.epoch),
            last_committed: self.request.last_committed(),
        }
    }

    /// Moves to preparing once the collector holds `K` shares.
    fn after_share<R: TryCryptoRng + ?Sized>(&mut self, ctx: &mut NodeCtx, rng: &mut R) {
        let Phase::CollectingShares(collector) = &self.phase else {
            return;
        };
        if !collector.is_complete() {
            return;
        }
        let old_epoch = collector.epoch();
        let mut retained = RetainedSecrets::new();
        if rebuild_retained(ctx, old_epoch, collector.shares(), &mut retained) {
            self.prepare_with(ctx, rng, &retained);
        }
    }

    /// Moves to preparing once the LRTQ threshold of shares is here.
    fn after_lrtq_share<R: TryCryptoRng + ?Sized>(&mut self, ctx: &mut NodeCtx, rng: &mut R) {
        let Phase::CollectingLrtqShares(collector) = &self.phase else {
            return;
        };
        let Some(lrtq) = ctx.state().lrtq() else {
            return;
        };
        if collector.shares.len() < usize::from(lrtq.threshold) {
            return;
        }
        let mut retained = RetainedSecrets::new();
        if !retain_lrtq_secret(&collector.shares, &mut retained) {
            ctx.raise_alarm(Alarm::ReconstructionFailed(LRTQ_EPOCH));
            return;
        }
        log::info!("rebuilt the LRTQ secret for epoch {}", self.epoch);
        self.prepare_with(ctx, rng, &retained);
    }

    /// Prepares with a new secret that retains `retained`. On a failure the
    /// coordination stays in its collecting phase; the same request from
    /// Nexus again retries ([`Self::retry`]).
    fn prepare_with<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        retained: &RetainedSecrets,
    ) {
        let prepared = RackSecret::generate(rng)
            .map_err(|_| PrepareFailed::Rng)
            .and_then(|secret| self.prepare(ctx, rng, &secret, Some(retained)));
        if let Err(failed) = prepared {
            failed.count(ctx);
        }
    }

    /// Splits `secret`, stores the new configuration with this node's share
    /// (see [`store_new_configuration`]), enters the prepare phase and sends
    /// `Prepare` to every other member. The phase is left as it was on an
    /// error.
    fn prepare<R: TryCryptoRng + ?Sized>(
        &mut self,
        ctx: &mut NodeCtx,
        rng: &mut R,
        secret: &RackSecret,
        retained: Option<&RetainedSecrets>,
    ) -> Result<(), PrepareFailed> {
        let mut shares = SharesTable::new();
        store_new_configuration(
            ctx,
            rng,
            self.epoch,
            &self.request,
            secret,
            retained,
            &mut shares,
        )?;
        // Written in place: the phase is too big to build on the stack.
        self.phase = Phase::Preparing(Preparing::new());
        let Phase::Preparing(preparing) = &mut self.phase else {
            return Err(PrepareFailed::Internal);
        };
        core::mem::swap(&mut preparing.shares, &mut shares);
        // The coordinator is a member (validated): it acks its own prepare.
        preparing.acked = (self.request.members.bit_of(ctx.id())).ok_or(PrepareFailed::Internal)?;
        log::info!("prepared epoch {}, sending Prepare", self.epoch);
        for member in self.request.members.as_slice() {
            if member != ctx.id() {
                ctx.request(member, self.prepare_for());
            }
        }
        Ok(())
    }
}

impl Preparing {
    const fn new() -> Self {
        Self {
            shares: heapless::Vec::new(),
            acked: 0,
        }
    }
}

/// LRTQ's secret becomes the epoch-1 old secret.
pub(crate) const LRTQ_EPOCH: Epoch = Epoch(1);

/// Rebuilds the secret of `epoch` from `shares` into `retained` (empty),
/// after the older secrets its configuration carried, ready to be carried
/// forward. False (an alarm raised, unless the configuration is gone) if it
/// cannot. Out of line, like [`retain_lrtq_secret`]: what combining and
/// decrypting hold on the stack must not sit under the prepare that
/// follows.
#[inline(never)]
fn rebuild_retained(
    ctx: &mut NodeCtx,
    epoch: Epoch,
    shares: &[Share],
    retained: &mut RetainedSecrets,
) -> bool {
    // The configuration is read where it is stored, not copied out.
    let Some(stored) = ctx.state().get(epoch) else {
        return false;
    };
    let Ok(secret) = crate::crypto::combine(shares) else {
        ctx.raise_alarm(Alarm::ReconstructionFailed(epoch));
        return false;
    };
    match stored.config.retained_secrets(&secret) {
        Ok(older) => *retained = older,
        Err(_) => {
            ctx.raise_alarm(Alarm::DecryptionFailed(epoch));
            return false;
        }
    }
    if retained.is_full() {
        retained.drop_oldest();
        ctx.count(Counter::RetainedSecretDropped);
    }
    retained.push(epoch, secret).is_ok()
}

/// Rebuilds LRTQ's secret from `shares` into `retained` (empty), as the
/// epoch-1 old secret; false if the shares do not combine. Out of line:
/// combining keeps tables of curve25519 scalars, which must not sit under
/// the prepare that follows.
#[inline(never)]
fn retain_lrtq_secret(shares: &[LrtqShare], retained: &mut RetainedSecrets) -> bool {
    combine_lrtq(shares).is_ok_and(|secret| retained.push(LRTQ_EPOCH, secret).is_ok())
}

/// Why preparing a new configuration failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PrepareFailed {
    /// The caller's RNG failed.
    Rng,
    /// An invariant broke (an alarm was raised if it was the protocol's).
    Internal,
}

impl PrepareFailed {
    /// Counts the failure and says what it means for a start.
    fn count(self, ctx: &mut NodeCtx) -> StartFailed {
        match self {
            Self::Rng => {
                ctx.count(Counter::RngFailure);
                StartFailed::Rng
            }
            Self::Internal => {
                ctx.count(Counter::Internal);
                StartFailed::Internal
            }
        }
    }
}

/// Why the new configuration was not stored.
enum StoreFailed {
    State(StateError),
    Config,
    Seal(SealError),
}

impl From<StateError> for StoreFailed {
    fn from(e: StateError) -> Self {
        Self::State(e)
    }
}

impl From<ConfigError> for StoreFailed {
    fn from(_: ConfigError) -> Self {
        Self::Config
    }
}

impl From<SealError> for StoreFailed {
    fn from(e: SealError) -> Self {
        Self::Seal(e)
    }
}

/// Splits `secret` into `shares` (one per member, in member order) and
/// stores the new configuration, with this node's share, built in its slot
/// in the state. `retained` is `None` only for a fresh rack's first
/// configuration.
fn store_new_configuration<R: TryCryptoRng + ?Sized>(
    ctx: &mut NodeCtx,
    rng: &mut R,
    epoch: Epoch,
    request: &Request,
    secret: &RackSecret,
    retained: Option<&RetainedSecrets>,
    shares: &mut SharesTable,
) -> Result<(), PrepareFailed> {
    let members = request.members.as_slice();
    split_for(rng, request, secret, shares)?;
    let own_share = members
        .binary_search(ctx.id())
        .ok()
        .and_then(|index| shares.get(index))
        .ok_or(PrepareFailed::Internal)?;
    let coordinator = ctx.id().clone();
    let build = |fields: &mut ConfigFields| -> Result<(), StoreFailed> {
        fields.rack_id = request.rack_id;
        fields.coordinator = coordinator;
        fields.members.clear();
        for (id, share) in members.iter().zip(shares.iter()) {
            let member = Member {
                id: id.clone(),
                share_digest: share.digest(),
            };
            fields
                .members
                .push(member)
                .map_err(|_| ConfigError::MemberCount)?;
        }
        fields.threshold = request.threshold;
        fields.encrypted_rack_secrets = None;
        if let Some(old) = retained {
            let sealed = fields
                .encrypted_rack_secrets
                .insert(EncryptedRackSecrets::unfilled());
            sealed.encrypt_into(rng, &request.rack_id, epoch, secret, old)?;
        }
        Ok(())
    };
    let state = ctx.state_mut();
    // Nexus started this epoch, so every older uncommitted one was
    // abandoned (the last committed one is committed here: checked when
    // the request was validated).
    state.drop_uncommitted(|e| e < epoch);
    match state.store_built(epoch, own_share, build) {
        Ok(()) => Ok(()),
        Err(StoreFailed::Seal(SealError::Rng(_))) => Err(PrepareFailed::Rng),
        Err(StoreFailed::State(StateError::MismatchedConfiguration)) => {
            ctx.raise_alarm(Alarm::MismatchedConfigurations(epoch));
            Err(PrepareFailed::Internal)
        }
        Err(StoreFailed::State(_)) => {
            ctx.count(Counter::ConfigDropped);
            Err(PrepareFailed::Internal)
        }
        Err(StoreFailed::Config | StoreFailed::Seal(_)) => Err(PrepareFailed::Internal),
    }
}

/// Splits `secret` into `shares`, one per member of the request. Out of
/// line: `split`'s tables must not stay in the frame the configuration is
/// then built and sealed from. Only a failing RNG is reported as one.
#[inline(never)]
fn split_for<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    request: &Request,
    secret: &RackSecret,
    shares: &mut SharesTable,
) -> Result<(), PrepareFailed> {
    let threshold = usize::from(request.threshold.get());
    split(secret, threshold, request.members.len(), rng, shares).map_err(|error| match error {
        ShamirError::Rng(_) => PrepareFailed::Rng,
        _ => PrepareFailed::Internal,
    })
}

impl LrtqCollector {
    const fn new() -> Self {
        Self {
            shares: heapless::Vec::new(),
            senders: heapless::Vec::new(),
            answered: 0,
        }
    }

    /// Adds an LRTQ share from the member of bit `from` if its digest is
    /// one of the rack's and no equal share was accepted before. The same share again from the member that sent it is a
    /// repeated answer, not a replay: a sled whose upgrade coordinator and
    /// secret loader both ask a peer gets two answers (`LateLrtqShare`,
    /// normal).
    fn add(
        &mut self,
        from: MemberBits,
        share: &LrtqShare,
        lrtq: &LrtqShareData,
    ) -> Result<(), Counter> {
        if !lrtq.is_known_digest(&share.digest()) {
            return Err(Counter::UnknownLrtqShareDigest);
        }
        if let Some(at) = self.shares.iter().position(|s| bool::from(s.ct_eq(share))) {
            let repeated = self
                .senders
                .get(at)
                .and_then(|&sender| 1u32.checked_shl(u32::from(sender)))
                .is_some_and(|bit| bit == from);
            return Err(if repeated {
                Counter::LateLrtqShare
            } else {
                Counter::DuplicateLrtqShareDigest
            });
        }
        // `from` is one bit: its position is the member's.
        let sender = u8::try_from(from.trailing_zeros()).map_err(|_| Counter::Internal)?;
        self.answered |= from;
        if self.shares.len() >= usize::from(lrtq.threshold) {
            return Ok(());
        }
        self.shares
            .push(share.clone())
            .map_err(|_| Counter::Internal)?;
        self.senders.push(sender).map_err(|_| Counter::Internal)?;
        Ok(())
    }
}
