//! The coordinator of one reconfiguration: rebuild the old secret (from
//! shares of the last committed configuration, or from LRTQ shares), make a
//! new secret, split it, and prepare every member.

use rand_core::TryCryptoRng;

use crate::config::{ConfigError, ConfigFields, Configuration, Member};
use crate::crypto::{
    EncryptedRackSecrets, LrtqShare, RackSecret, RetainedSecrets, SealError, Share, ShareDigest,
    combine_lrtq, split,
};
use crate::ids::{Epoch, PlatformId, RackId, Threshold};
use crate::limits::{MAX_LRTQ_COMBINE, MAX_MEMBERS};
use crate::log;
use crate::messages::{LrtqUpgradeMsg, MemberSet, ReconfigureMsg};
use crate::node::alarms::Alarm;
use crate::node::collector::ShareCollector;
use crate::node::counters::Event;
use crate::node::ctx::{NodeCtx, Outgoing};
use crate::persistent::StateError;

/// What Nexus asked for.
#[derive(Debug)]
pub(crate) enum Request {
    Reconfigure(ReconfigureMsg),
    LrtqUpgrade(LrtqUpgradeMsg),
}

impl Request {
    fn rack_id(&self) -> RackId {
        match self {
            Self::Reconfigure(m) => m.rack_id,
            Self::LrtqUpgrade(m) => m.rack_id,
        }
    }
    /// The epoch Nexus named as last committed (none for an LRTQ upgrade:
    /// LRTQ's epoch 1 is never a stored configuration).
    pub(crate) fn last_committed(&self) -> Option<Epoch> {
        match self {
            Self::Reconfigure(m) => m.last_committed_epoch,
            Self::LrtqUpgrade(_) => None,
        }
    }

    fn members(&self) -> &MemberSet {
        match self {
            Self::Reconfigure(m) => &m.members,
            Self::LrtqUpgrade(m) => &m.members,
        }
    }
    fn threshold(&self) -> Threshold {
        match self {
            Self::Reconfigure(m) => m.threshold,
            Self::LrtqUpgrade(m) => m.threshold,
        }
    }
}

/// Where a coordination stands, as Nexus sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CoordinatorPhase {
    /// Collecting shares of the last committed configuration.
    CollectingShares,
    /// Collecting LRTQ shares (upgrade from LRTQ).
    CollectingLrtqShares,
    /// The configuration exists; collecting prepare acks.
    Preparing,
}

/// LRTQ shares gathered for an upgrade: each valid, each from a different
/// sled, no two with the same digest.
#[derive(Debug, Default)]
pub(crate) struct LrtqCollector {
    shares: heapless::Vec<LrtqShare, MAX_LRTQ_COMBINE, u8>,
    digests: heapless::Vec<ShareDigest, MAX_LRTQ_COMBINE, u8>,
    senders: heapless::Vec<PlatformId, MAX_LRTQ_COMBINE, u8>,
}

/// Each member's share of a new secret, in member (x-coordinate) order.
type SharesTable = heapless::Vec<Share, MAX_MEMBERS>;

/// The prepare phase: each member's share, and who has acked.
#[derive(Debug)]
pub(crate) struct Preparing {
    shares: SharesTable,
    acked: heapless::Vec<PlatformId, MAX_MEMBERS, u8>,
}

// The phases are exclusive and the core does not allocate, so the largest
// (LRTQ collection, about 4 KiB) sets the size; boxing is not an option.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Phase {
    CollectingShares(ShareCollector),
    CollectingLrtqShares(LrtqCollector),
    Preparing(Preparing),
}

/// One running coordination.
#[derive(Debug)]
pub(crate) struct Coordinator {
    pub(crate) epoch: Epoch,
    pub(crate) request: Request,
    pub(crate) phase: Phase,
}

impl Coordinator {
    /// Starts a reconfiguration in `slot`, where the coordination lives
    /// from then on (so a prepare moves no phase or coordination out of
    /// it); on an error `slot` is left empty. `ctx` already passed every
    /// check.
    pub(crate) fn start_reconfiguration<R: TryCryptoRng>(
        slot: &mut Option<Self>,
        ctx: &mut NodeCtx<R>,
        msg: &ReconfigureMsg,
    ) -> Result<(), PrepareFailed> {
        let committed = ctx.state().latest_committed().map(|c| c.config.epoch());
        let collector = match committed {
            Some(old_epoch) => {
                Some(ShareCollector::start(ctx, old_epoch).ok_or(PrepareFailed::Internal)?)
            }
            None => None,
        };
        let coordinator = slot.insert(Self {
            epoch: msg.epoch,
            request: Request::Reconfigure(msg.clone()),
            phase: Phase::Preparing(Preparing::new()),
        });
        if let Some(collector) = collector {
            coordinator.phase = Phase::CollectingShares(collector);
            coordinator.after_share(ctx);
            return Ok(());
        }
        // A fresh rack: nothing old to carry.
        let prepared = RackSecret::generate(ctx.rng())
            .map_err(|_| PrepareFailed::Rng)
            .and_then(|secret| coordinator.prepare(ctx, &secret, None));
        if prepared.is_err() {
            *slot = None;
        }
        prepared
    }

    /// Starts an LRTQ upgrade in `slot`, as [`Self::start_reconfiguration`]
    /// does. `ctx` already passed every check.
    pub(crate) fn start_lrtq_upgrade<R: TryCryptoRng>(
        slot: &mut Option<Self>,
        ctx: &mut NodeCtx<R>,
        msg: &LrtqUpgradeMsg,
    ) {
        let coordinator = slot.insert(Self {
            epoch: msg.epoch,
            request: Request::LrtqUpgrade(msg.clone()),
            phase: Phase::CollectingLrtqShares(LrtqCollector::default()),
        });
        if let Phase::CollectingLrtqShares(collector) = &mut coordinator.phase
            && let Some(lrtq) = ctx.state().lrtq()
            && let Err(event) = collector.add(ctx.id(), &lrtq.share, lrtq)
        {
            ctx.count(event);
        }
        for member in msg.members.as_slice() {
            if member != ctx.id() {
                ctx.request(member, Outgoing::GetLrtqShare);
            }
        }
        coordinator.after_lrtq_share(ctx);
    }

    pub(crate) fn phase(&self) -> CoordinatorPhase {
        match self.phase {
            Phase::CollectingShares(_) => CoordinatorPhase::CollectingShares,
            Phase::CollectingLrtqShares(_) => CoordinatorPhase::CollectingLrtqShares,
            Phase::Preparing(_) => CoordinatorPhase::Preparing,
        }
    }

    pub(crate) fn is_same_request(&self, msg: &ReconfigureMsg) -> bool {
        matches!(&self.request, Request::Reconfigure(running) if running == msg)
    }

    pub(crate) fn is_lrtq_upgrade(&self) -> bool {
        matches!(self.request, Request::LrtqUpgrade(_))
    }

    /// Members that acked the prepare (the coordinator first).
    pub(crate) fn acked(&self) -> &[PlatformId] {
        match &self.phase {
            Phase::Preparing(p) => &p.acked,
            _ => &[],
        }
    }

    /// The share of member `to` for the `Prepare` being sent.
    pub(crate) fn share_for(&self, config: &Configuration, to: &PlatformId) -> Option<&Share> {
        let Phase::Preparing(p) = &self.phase else {
            return None;
        };
        let x = config.x_coordinate(to)?;
        p.shares.get(usize::from(x).checked_sub(1)?)
    }

    /// A share of the last committed configuration arrived.
    pub(crate) fn on_share<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<(), Event> {
        let Phase::CollectingShares(collector) = &mut self.phase else {
            return Err(Event::Unexpected);
        };
        collector.offer(ctx.state(), from, epoch, share)?;
        self.after_share(ctx);
        Ok(())
    }

    /// An LRTQ share arrived.
    pub(crate) fn on_lrtq_share<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        from: &PlatformId,
        share: &LrtqShare,
    ) -> Result<(), Event> {
        let Phase::CollectingLrtqShares(collector) = &mut self.phase else {
            return Err(Event::Unexpected);
        };
        let lrtq = ctx.state().lrtq().ok_or(Event::Unexpected)?;
        collector.add(from, share, lrtq)?;
        self.after_lrtq_share(ctx);
        Ok(())
    }

    /// A prepare ack arrived from `from`.
    pub(crate) fn on_prepare_ack(
        &mut self,
        config: &Configuration,
        from: &PlatformId,
    ) -> Result<(), Event> {
        let Phase::Preparing(p) = &mut self.phase else {
            return Err(Event::Unexpected);
        };
        if !config.is_member(from) {
            return Err(Event::FromNonMember);
        }
        p.ack(from)
    }

    /// What to re-send to a peer that just connected.
    pub(crate) fn on_connect<R: TryCryptoRng>(&self, ctx: &mut NodeCtx<R>, peer: &PlatformId) {
        match &self.phase {
            Phase::CollectingShares(collector) => collector.on_connect(ctx, peer),
            Phase::CollectingLrtqShares(collector) => {
                if self.request.members().contains(peer) && !collector.senders.contains(peer) {
                    ctx.request(peer, Outgoing::GetLrtqShare);
                }
            }
            Phase::Preparing(p) => {
                if self.request.members().contains(peer) && !p.acked.contains(peer) {
                    ctx.request(peer, Outgoing::Prepare(self.epoch));
                }
            }
        }
    }

    /// Moves to preparing once the collector holds `K` shares.
    fn after_share<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>) {
        let Phase::CollectingShares(collector) = &self.phase else {
            return;
        };
        if !collector.is_complete() {
            return;
        }
        let old_epoch = collector.epoch();
        let mut retained = RetainedSecrets::new();
        if rebuild_retained(ctx, old_epoch, collector.shares(), &mut retained) {
            self.prepare_with(ctx, &retained);
        }
    }

    /// Moves to preparing once the LRTQ threshold of shares is here.
    fn after_lrtq_share<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>) {
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
        self.prepare_with(ctx, &retained);
    }

    /// Prepares with a new secret that retains `retained`. On a failure the
    /// coordination stays in its collecting phase; the next share or a
    /// repeated request from Nexus tries again.
    fn prepare_with<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>, retained: &RetainedSecrets) {
        let prepared = RackSecret::generate(ctx.rng())
            .map_err(|_| PrepareFailed::Rng)
            .and_then(|secret| self.prepare(ctx, &secret, Some(retained)));
        if prepared == Err(PrepareFailed::Rng) {
            ctx.count(Event::RngFailure);
        }
    }

    /// Splits `secret`, stores the new configuration with this node's share
    /// (see [`store_new_configuration`]), enters the prepare phase and sends
    /// `Prepare` to every other member. The phase is left as it was on an
    /// error.
    fn prepare<R: TryCryptoRng>(
        &mut self,
        ctx: &mut NodeCtx<R>,
        secret: &RackSecret,
        retained: Option<&RetainedSecrets>,
    ) -> Result<(), PrepareFailed> {
        let mut shares = SharesTable::new();
        store_new_configuration(
            ctx,
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
        preparing
            .ack(ctx.id())
            .map_err(|_| PrepareFailed::Internal)?;
        log::info!("prepared epoch {}, sending Prepare", self.epoch);
        for member in self.request.members().as_slice() {
            if member != ctx.id() {
                ctx.request(member, Outgoing::Prepare(self.epoch));
            }
        }
        Ok(())
    }
}

impl Preparing {
    const fn new() -> Self {
        Self {
            shares: heapless::Vec::new(),
            acked: heapless::Vec::new(),
        }
    }

    /// Records that `id` acked (once).
    fn ack(&mut self, id: &PlatformId) -> Result<(), Event> {
        if !self.acked.contains(id) {
            self.acked.push(id.clone()).map_err(|_| Event::Unexpected)?;
        }
        Ok(())
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
fn rebuild_retained<R: TryCryptoRng>(
    ctx: &mut NodeCtx<R>,
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
        ctx.count(Event::RetainedSecretDropped);
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
pub(crate) enum PrepareFailed {
    /// The caller's RNG failed.
    Rng,
    /// An invariant broke; an alarm was raised.
    Internal,
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
fn store_new_configuration<R: TryCryptoRng>(
    ctx: &mut NodeCtx<R>,
    epoch: Epoch,
    request: &Request,
    secret: &RackSecret,
    retained: Option<&RetainedSecrets>,
    shares: &mut SharesTable,
) -> Result<(), PrepareFailed> {
    let members = request.members().as_slice();
    let threshold = request.threshold();
    split_for(ctx.rng(), request, secret, shares)?;
    // A member set is sorted as a configuration's members are, so this
    // node's share is at its position there.
    let own_share = members
        .iter()
        .position(|id| id == ctx.id())
        .and_then(|index| shares.get(index))
        .ok_or(PrepareFailed::Internal)?;
    let coordinator = ctx.id().clone();
    let build = |fields: &mut ConfigFields, rng: &mut R| -> Result<(), StoreFailed> {
        fields.rack_id = request.rack_id();
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
        fields.threshold = threshold;
        fields.encrypted_rack_secrets = None;
        if let Some(old) = retained {
            let sealed = fields
                .encrypted_rack_secrets
                .insert(EncryptedRackSecrets::unfilled());
            sealed.encrypt_into(rng, &request.rack_id(), epoch, secret, old)?;
        }
        Ok(())
    };
    let stored = ctx.update_state_with_rng(|state, rng| {
        // Nexus started this epoch, so every older uncommitted one was
        // abandoned (the last committed one is committed here: checked when
        // the request was accepted).
        state.drop_uncommitted(|e| e < epoch);
        state.store_built(epoch, own_share, |fields| build(fields, rng))
    });
    match stored {
        Ok(()) => Ok(()),
        Err(StoreFailed::Seal(SealError::Rng(_))) => Err(PrepareFailed::Rng),
        Err(StoreFailed::State(StateError::MismatchedConfiguration)) => {
            ctx.raise_alarm(Alarm::MismatchedConfigurations(epoch));
            Err(PrepareFailed::Internal)
        }
        Err(StoreFailed::State(_)) => {
            ctx.count(Event::ConfigDropped);
            Err(PrepareFailed::Internal)
        }
        Err(StoreFailed::Config | StoreFailed::Seal(_)) => Err(PrepareFailed::Internal),
    }
}

/// Splits `secret` into `shares`, one per member of the request. Out of
/// line, like [`seal`]: `split`'s coefficient tables must not stay in the
/// frame the configuration is then built and sealed from.
#[inline(never)]
fn split_for<R: TryCryptoRng>(
    rng: &mut R,
    request: &Request,
    secret: &RackSecret,
    shares: &mut SharesTable,
) -> Result<(), PrepareFailed> {
    let threshold = usize::from(request.threshold().get());
    split(secret, threshold, request.members().len(), rng, shares).map_err(|_| PrepareFailed::Rng)
}

impl LrtqCollector {
    /// Adds an LRTQ share from `from` if its digest is one of the rack's and
    /// neither the digest nor the sender was seen before.
    fn add(
        &mut self,
        from: &PlatformId,
        share: &LrtqShare,
        lrtq: &crate::persistent::LrtqShareData,
    ) -> Result<(), Event> {
        let digest = share.digest();
        if !lrtq.is_known_digest(&digest) {
            return Err(Event::UnknownLrtqShareDigest);
        }
        if self.senders.contains(from) {
            return Err(Event::DuplicateShare);
        }
        if self.digests.contains(&digest) {
            return Err(Event::DuplicateLrtqShareDigest);
        }
        if self.shares.len() >= usize::from(lrtq.threshold) {
            return Ok(());
        }
        self.shares
            .push(share.clone())
            .map_err(|_| Event::Unexpected)?;
        self.digests.push(digest).map_err(|_| Event::Unexpected)?;
        self.senders
            .push(from.clone())
            .map_err(|_| Event::Unexpected)?;
        Ok(())
    }
}
