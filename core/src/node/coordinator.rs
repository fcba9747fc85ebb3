//! The coordinator of one reconfiguration: rebuild the old secret (from
//! shares of the last committed configuration, or from LRTQ shares), make a
//! new secret, split it, and prepare every member.

use rand_core::TryCryptoRng;

use crate::config::{ConfigFields, Configuration, Member, Members};
use crate::crypto::{
    EncryptedRackSecrets, LrtqShare, RackSecret, RetainedSecrets, Share, ShareDigest, combine_lrtq,
    split,
};
use crate::ids::{Epoch, PlatformId, RackId, Threshold};
use crate::limits::{MAX_LRTQ_COMBINE, MAX_MEMBERS};
use crate::log;
use crate::messages::{LrtqUpgradeMsg, MemberSet, ReconfigureMsg};
use crate::node::alarms::Alarm;
use crate::node::collector::ShareCollector;
use crate::node::counters::Event;
use crate::node::ctx::{NodeCtx, Outgoing};

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

/// The prepare phase: each member's share, and who has acked.
#[derive(Debug)]
pub(crate) struct Preparing {
    /// In member (x-coordinate) order.
    shares: heapless::Vec<Share, MAX_MEMBERS, u8>,
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
    /// Starts a reconfiguration. `ctx` already passed every check.
    pub(crate) fn start_reconfiguration<R: TryCryptoRng>(
        ctx: &mut NodeCtx<R>,
        msg: &ReconfigureMsg,
    ) -> Result<Self, PrepareFailed> {
        let request = Request::Reconfigure(msg.clone());
        let Some(committed) = ctx.state().latest_committed() else {
            // A fresh rack: nothing old to carry.
            let secret = RackSecret::generate(ctx.rng()).map_err(|_| PrepareFailed::Rng)?;
            let phase = prepare(ctx, msg.epoch, &request, &secret, None)?;
            return Ok(Self {
                epoch: msg.epoch,
                request,
                phase,
            });
        };
        let old_epoch = committed.config.epoch();
        let collector = ShareCollector::start(ctx, old_epoch).ok_or(PrepareFailed::Internal)?;
        let mut coordinator = Self {
            epoch: msg.epoch,
            request,
            phase: Phase::CollectingShares(collector),
        };
        coordinator.after_share(ctx);
        Ok(coordinator)
    }

    /// Starts an LRTQ upgrade. `ctx` already passed every check.
    pub(crate) fn start_lrtq_upgrade<R: TryCryptoRng>(
        ctx: &mut NodeCtx<R>,
        msg: &LrtqUpgradeMsg,
    ) -> Self {
        let mut collector = LrtqCollector::default();
        if let Some(lrtq) = ctx.state().lrtq() {
            let own = lrtq.share.clone();
            let id = ctx.id().clone();
            if let Err(event) = collector.add(&id, &own, lrtq) {
                ctx.count(event);
            }
        }
        for member in msg.members.as_slice() {
            if member != ctx.id() {
                ctx.request(member, Outgoing::GetLrtqShare);
            }
        }
        let mut coordinator = Self {
            epoch: msg.epoch,
            request: Request::LrtqUpgrade(msg.clone()),
            phase: Phase::CollectingLrtqShares(collector),
        };
        coordinator.after_lrtq_share(ctx);
        coordinator
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
        if !p.acked.contains(from) {
            p.acked.push(from.clone()).map_err(|_| Event::Unexpected)?;
        }
        Ok(())
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
        let Some(retained) = rebuild_retained(ctx, old_epoch, collector.shares()) else {
            return;
        };
        self.prepare_with(ctx, &retained);
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
        let lrtq_secret = match combine_lrtq(&collector.shares) {
            Ok(secret) => secret,
            Err(_) => {
                ctx.raise_alarm(Alarm::ReconstructionFailed(LRTQ_EPOCH));
                return;
            }
        };
        let mut retained = RetainedSecrets::new();
        if retained.push(LRTQ_EPOCH, lrtq_secret).is_err() {
            return;
        }
        log::info!("rebuilt the LRTQ secret for epoch {}", self.epoch);
        self.prepare_with(ctx, &retained);
    }

    fn prepare_with<R: TryCryptoRng>(&mut self, ctx: &mut NodeCtx<R>, retained: &RetainedSecrets) {
        let secret = match RackSecret::generate(ctx.rng()) {
            Ok(secret) => secret,
            Err(_) => {
                // Stay in the collecting phase; the next share or a repeated
                // request from Nexus tries again.
                ctx.count(Event::RngFailure);
                return;
            }
        };
        match prepare(ctx, self.epoch, &self.request, &secret, Some(retained)) {
            Ok(phase) => self.phase = phase,
            // Stay in the collecting phase, as above.
            Err(PrepareFailed::Rng) => ctx.count(Event::RngFailure),
            Err(PrepareFailed::Internal) => {}
        }
    }
}

/// LRTQ's secret becomes the epoch-1 old secret.
pub(crate) const LRTQ_EPOCH: Epoch = Epoch(1);

/// Rebuilds the secret of `epoch` from `shares` and returns it together with
/// the older secrets its configuration carried, ready to be carried forward.
fn rebuild_retained<R: TryCryptoRng>(
    ctx: &mut NodeCtx<R>,
    epoch: Epoch,
    shares: &[Share],
) -> Option<RetainedSecrets> {
    let config = ctx.state().get(epoch).map(|stored| stored.config.clone())?;
    let Ok(secret) = crate::crypto::combine(shares) else {
        ctx.raise_alarm(Alarm::ReconstructionFailed(epoch));
        return None;
    };
    let mut retained = match config.encrypted_rack_secrets() {
        None => RetainedSecrets::new(),
        Some(sealed) => match sealed.decrypt(&config.rack_id(), epoch, &secret) {
            Ok(retained) => retained,
            Err(_) => {
                ctx.raise_alarm(Alarm::DecryptionFailed(epoch));
                return None;
            }
        },
    };
    if retained.is_full() {
        retained.drop_oldest();
        ctx.count(Event::RetainedSecretDropped);
    }
    retained.push(epoch, secret).ok()?;
    Some(retained)
}

/// Why preparing a new configuration failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrepareFailed {
    /// The caller's RNG failed.
    Rng,
    /// An invariant broke; an alarm was raised.
    Internal,
}

/// Splits `secret`, builds and stores the new configuration with this
/// node's share, and sends `Prepare` to every other member. `retained` is
/// `None` only for a fresh rack's first configuration.
fn prepare<R: TryCryptoRng>(
    ctx: &mut NodeCtx<R>,
    epoch: Epoch,
    request: &Request,
    secret: &RackSecret,
    retained: Option<&RetainedSecrets>,
) -> Result<Phase, PrepareFailed> {
    let members = request.members().as_slice();
    let threshold = request.threshold();
    let mut shares = heapless::Vec::<Share, MAX_MEMBERS, u8>::new();
    let mut split_out = heapless::Vec::<Share, MAX_MEMBERS>::new();
    if split(
        secret,
        usize::from(threshold.get()),
        members.len(),
        ctx.rng(),
        &mut split_out,
    )
    .is_err()
    {
        return Err(PrepareFailed::Rng);
    }
    let mut config_members = Members::new();
    for (id, share) in members.iter().zip(split_out.iter()) {
        config_members
            .push(Member {
                id: id.clone(),
                share_digest: share.digest(),
            })
            .map_err(|_| PrepareFailed::Internal)?;
        shares
            .push(share.clone())
            .map_err(|_| PrepareFailed::Internal)?;
    }
    let encrypted_rack_secrets = match retained {
        None => None,
        Some(old) => {
            match EncryptedRackSecrets::encrypt(ctx.rng(), &request.rack_id(), epoch, secret, old) {
                Ok(sealed) => Some(sealed),
                Err(crate::crypto::SealError::Rng(_)) => return Err(PrepareFailed::Rng),
                Err(_) => return Err(PrepareFailed::Internal),
            }
        }
    };
    let config = Configuration::new(ConfigFields {
        rack_id: request.rack_id(),
        epoch,
        coordinator: ctx.id().clone(),
        members: config_members,
        threshold,
        encrypted_rack_secrets,
    })
    .map_err(|_| PrepareFailed::Internal)?;
    let own_share = config
        .x_coordinate(ctx.id())
        .and_then(|x| shares.get(usize::from(x).checked_sub(1)?))
        .ok_or(PrepareFailed::Internal)?
        .clone();
    // Nexus started this epoch, so every older uncommitted one was
    // abandoned (the last committed one is committed here: checked when the
    // request was accepted).
    let stored = ctx.update_state(|state| {
        state.drop_uncommitted(|e| e < epoch);
        state.store(&config, Some(&own_share))
    });
    match stored {
        Ok(_) => {}
        Err(crate::persistent::StateError::MismatchedConfiguration) => {
            ctx.raise_alarm(Alarm::MismatchedConfigurations(epoch));
            return Err(PrepareFailed::Internal);
        }
        Err(_) => {
            ctx.count(Event::ConfigDropped);
            return Err(PrepareFailed::Internal);
        }
    }
    log::info!("prepared epoch {}, sending Prepare", epoch);
    for member in members {
        if member != ctx.id() {
            ctx.request(member, Outgoing::Prepare(epoch));
        }
    }
    let mut acked = heapless::Vec::new();
    acked
        .push(ctx.id().clone())
        .map_err(|_| PrepareFailed::Internal)?;
    Ok(Phase::Preparing(Preparing { shares, acked }))
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
