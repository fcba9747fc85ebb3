//! Loading rack secrets: collect `K` shares of the latest committed
//! configuration, rebuild its secret, decrypt the older ones it carries, and
//! cache them all until `clear_secrets`.
//!
//! # A sled of an LRTQ rack not yet upgraded
//!
//! A sled with LRTQ share data and nothing committed loads the LRTQ secret
//! as epoch 1 (its latest, [`latest_loadable_epoch`]), as the old software
//! did to unlock its disks: it asks every connected peer for its LRTQ share
//! (`GetLrtqShare`; LRTQ data names no members, and every peer is a sled
//! of this rack, authenticated by its channel), takes each whose digest is
//! one of the 255 and new, and combines the LRTQ threshold of them.
//!
//! This does not widen what LRTQ exposes. Who answers is unchanged: a sled
//! hands its LRTQ share to any peer of the rack that asks while nothing is
//! committed (PROTOCOL.md section 6, as LRTQ always did), whether the
//! asker is an upgrade's coordinator or a loader; after a commit it
//! answers `CommitAdvance`/`Expunged` instead, so no LRTQ secret can be
//! collected from an upgraded sled. What is new is only that a sled
//! rebuilds the LRTQ secret for itself before the upgrade, which every
//! LRTQ sled did at boot. Once this sled commits, the LRTQ collection and
//! cache are dropped and loading is the committed path alone (epoch 1 is
//! then the retained secret of the upgrade's configuration).
//!
//! The LRTQ collection takes the place of the share collection (never both:
//! one needs nothing committed, the other a commit), so its kilobyte of
//! shares overlaps theirs in the node's RAM. For that it keeps only the
//! shares, not who sent them: a share
//! it already holds is counted `LateLrtqShare` whoever sends it (a peer
//! asked again on reconnect, or by an upgrade's coordinator too, answers
//! again), so a replay by another sled is not told apart here (the
//! upgrade's coordinator, which keeps senders, still counts it).

use crate::api::{Alarm, Counter, LoadSecretError};
use crate::crypto::{LrtqShare, RackSecret, RetainedSecrets, Share, combine, combine_lrtq};
use crate::ids::{Epoch, PlatformId};
use crate::limits::MAX_LRTQ_COMBINE;
use crate::log;
use crate::messages::QueuedBody;
use crate::node::collector::{Asking, ShareCollector};
use crate::node::coordinator::LRTQ_EPOCH;
use crate::node::ctx::NodeCtx;
use crate::node::events::Event;
use crate::node::peer::NOT_WANTED;
use crate::persistent::{LrtqShareData, PersistentState};

/// The secrets of one committed epoch and the older ones it carried.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
struct Cached {
    epoch: Epoch,
    secret: RackSecret,
    older: RetainedSecrets,
    /// The LRTQ secret of a sled with nothing committed: used only until
    /// this sled commits.
    from_lrtq: bool,
}

/// The shares a load is collecting.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
enum Collecting {
    /// Of the latest committed configuration.
    Shares(ShareCollector),
    /// LRTQ shares, while nothing is committed.
    Lrtq(LrtqShares),
}

/// LRTQ shares gathered for a load: each one of the rack's 255, no two
/// with the same identifier (a known digest pins the whole share, so an
/// identifier seen twice is the same share twice).
#[derive(Debug, Default)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
struct LrtqShares {
    shares: heapless::Vec<LrtqShare, MAX_LRTQ_COMBINE, u8>,
}

/// Rack secret loading state: possibly a collection under way, possibly
/// a cache of loaded secrets.
#[derive(Debug, Default)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) struct SecretLoader {
    collecting: Option<Collecting>,
    cached: Option<Cached>,
}

/// The epoch [`SecretLoader::load`] loads for "the latest": the latest
/// committed one, or with nothing committed, LRTQ's epoch 1 on a sled with
/// LRTQ data.
pub(crate) fn latest_loadable_epoch(state: &PersistentState) -> Option<Epoch> {
    match state.latest_committed_epoch() {
        Some(latest) => Some(latest),
        None => state.lrtq().map(|_| LRTQ_EPOCH),
    }
}

impl SecretLoader {
    pub(crate) const fn new() -> Self {
        Self {
            collecting: None,
            cached: None,
        }
    }

    /// The secret of committed `epoch`, `Ok(None)` while shares are still
    /// being collected.
    pub(crate) fn load(
        &mut self,
        ctx: &mut NodeCtx,
        epoch: Epoch,
    ) -> Result<Option<RackSecret>, LoadSecretError> {
        let Some(latest) = ctx.state().latest_committed_epoch() else {
            return self.load_lrtq(ctx, epoch);
        };
        self.forget_lrtq();
        if epoch > latest {
            return Err(LoadSecretError::NotCommitted(epoch));
        }
        if let Some(cached) = self.cached.as_ref().filter(|c| epoch <= c.epoch) {
            return cached.lookup(epoch).map(Some);
        }
        if self.share_collector().is_none_or(|c| c.epoch() != latest) {
            self.start(ctx, latest);
        }
        // Our own share may already have been enough.
        self.cached
            .as_ref()
            .filter(|c| epoch <= c.epoch)
            .map(|c| c.lookup(epoch))
            .transpose()
    }

    /// The LRTQ secret, as epoch 1, on a sled with nothing committed;
    /// `Ok(None)` while LRTQ shares are still being collected.
    fn load_lrtq(
        &mut self,
        ctx: &mut NodeCtx,
        epoch: Epoch,
    ) -> Result<Option<RackSecret>, LoadSecretError> {
        if ctx.state().lrtq().is_none() {
            return Err(LoadSecretError::NoCommittedConfiguration);
        }
        if epoch != LRTQ_EPOCH {
            return Err(LoadSecretError::NotCommitted(epoch));
        }
        if self.lrtq_shares().is_none() && self.lrtq_secret().is_none() {
            self.start_lrtq(ctx);
        }
        // Loaded before, or not yet: our own share alone is never enough
        // (`MIN_LRTQ_THRESHOLD` is 2), so a start completes nothing.
        Ok(self.lrtq_secret())
    }

    fn lrtq_secret(&self) -> Option<RackSecret> {
        self.cached
            .as_ref()
            .filter(|c| c.from_lrtq)
            .map(|c| c.secret.clone())
    }

    /// Drops the LRTQ collection and secret (zeroized on drop): once this
    /// sled has committed, secrets come from committed configurations only.
    pub(crate) fn forget_lrtq(&mut self) {
        if self.lrtq_shares().is_some() {
            self.collecting = None;
        }
        if self.cached.as_ref().is_some_and(|c| c.from_lrtq) {
            self.cached = None;
        }
    }

    /// Drops every cached secret (zeroized on drop) and stops collecting.
    pub(crate) fn clear(&mut self) {
        self.collecting = None;
        self.cached = None;
    }

    pub(crate) fn collecting_epoch(&self) -> Option<Epoch> {
        match self.collecting.as_ref()? {
            Collecting::Shares(collector) => Some(collector.epoch()),
            Collecting::Lrtq(_) => Some(LRTQ_EPOCH),
        }
    }

    fn share_collector(&self) -> Option<&ShareCollector> {
        match &self.collecting {
            Some(Collecting::Shares(collector)) => Some(collector),
            _ => None,
        }
    }

    fn lrtq_shares(&self) -> Option<&LrtqShares> {
        match &self.collecting {
            Some(Collecting::Lrtq(shares)) => Some(shares),
            _ => None,
        }
    }

    /// The epoch whose secret (and the older ones it carries) is cached.
    pub(crate) fn loaded_epoch(&self) -> Option<Epoch> {
        self.cached.as_ref().map(|c| c.epoch)
    }

    /// A share arrived; `Err` is the event to count if it was not used.
    pub(crate) fn on_share(
        &mut self,
        ctx: &mut NodeCtx,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<(), Counter> {
        let Some(Collecting::Shares(collector)) = &mut self.collecting else {
            return Err(NOT_WANTED);
        };
        collector.offer(ctx.state(), from, epoch, share)?;
        self.finish_if_complete(ctx);
        Ok(())
    }

    /// An LRTQ share arrived; `Err` is the event to count if it was not
    /// used.
    pub(crate) fn on_lrtq_share(
        &mut self,
        ctx: &mut NodeCtx,
        share: &LrtqShare,
    ) -> Result<(), Counter> {
        if ctx.state().latest_committed_epoch().is_some() {
            self.forget_lrtq();
        }
        let Some(Collecting::Lrtq(collected)) = &mut self.collecting else {
            return Err(NOT_WANTED);
        };
        // Collecting only starts on a sled with LRTQ data, never removed.
        let lrtq = ctx.state().lrtq().ok_or(Counter::Internal)?;
        collected.add(share, lrtq)?;
        self.finish_lrtq_if_complete(ctx);
        Ok(())
    }

    /// Asks a newly connected member for its share, if still needed.
    pub(crate) fn on_connect(&mut self, ctx: &mut NodeCtx, peer: &PlatformId) {
        match &mut self.collecting {
            Some(Collecting::Shares(collector)) => collector.on_connection_change(ctx, peer),
            // Whether it answered before is not kept: a repeat is late.
            Some(Collecting::Lrtq(_)) => ctx.request(peer, QueuedBody::GetLrtqShare),
            None => {}
        }
    }

    /// A peer disconnected: another member is asked in its place if its
    /// share was still awaited.
    pub(crate) fn on_disconnect(&mut self, ctx: &mut NodeCtx, peer: &PlatformId) {
        if let Some(Collecting::Shares(collector)) = &mut self.collecting {
            collector.on_connection_change(ctx, peer);
        }
    }

    /// Asks every connected member for the shares still missing (the LRTQ
    /// collection already asks every peer).
    pub(crate) fn widen(&mut self, ctx: &mut NodeCtx) {
        if let Some(Collecting::Shares(collector)) = &mut self.collecting {
            collector.widen(ctx);
        }
    }

    /// Takes this sled's own LRTQ share and asks every connected peer for
    /// theirs.
    fn start_lrtq(&mut self, ctx: &mut NodeCtx) {
        log::debug!("loading the LRTQ rack secret (epoch {})", LRTQ_EPOCH);
        // Made in place: a kilobyte of shares does not belong on the stack.
        self.collecting = Some(Collecting::Lrtq(LrtqShares::default()));
        // Our own share matches a digest unless the state was corrupted;
        // then it is counted like any other bad share.
        if let Some(Collecting::Lrtq(collected)) = &mut self.collecting
            && let Some(lrtq) = ctx.state().lrtq()
            && let Err(counter) = collected.add(&lrtq.share, lrtq)
        {
            ctx.count(counter);
        }
        for i in 0..ctx.connected().len() {
            // One at a time, so no copy of the connection list is made.
            let Some(peer) = ctx.connected().get(i).cloned() else {
                break;
            };
            ctx.request(&peer, QueuedBody::GetLrtqShare);
        }
    }

    fn finish_lrtq_if_complete(&mut self, ctx: &mut NodeCtx) {
        let (Some(collected), Some(lrtq)) = (self.lrtq_shares(), ctx.state().lrtq()) else {
            return;
        };
        if collected.shares.len() < usize::from(lrtq.threshold) {
            return;
        }
        let combined = combine_lrtq(&collected.shares);
        self.collecting = None;
        let Ok(secret) = combined else {
            ctx.raise_alarm(Alarm::ReconstructionFailed(LRTQ_EPOCH));
            return;
        };
        log::info!("loaded the LRTQ rack secret (epoch {})", LRTQ_EPOCH);
        ctx.emit(Event::SecretLoaded(LRTQ_EPOCH));
        self.cached = Some(Cached {
            epoch: LRTQ_EPOCH,
            secret,
            older: RetainedSecrets::new(),
            from_lrtq: true,
        });
    }

    fn start(&mut self, ctx: &mut NodeCtx, epoch: Epoch) {
        log::debug!("loading rack secret of epoch {}", epoch);
        self.collecting = ShareCollector::start(ctx, epoch, Asking::Enough).map(Collecting::Shares);
        if self.collecting.is_none() {
            ctx.raise_alarm(Alarm::CommittedConfigurationLost(epoch));
            return;
        }
        self.finish_if_complete(ctx);
    }

    fn finish_if_complete(&mut self, ctx: &mut NodeCtx) {
        let Some(collector) = self.share_collector().filter(|c| c.is_complete()) else {
            return;
        };
        let epoch = collector.epoch();
        // The configuration is read where it is stored, not copied out.
        let Some(stored) = ctx.state().get(epoch) else {
            ctx.raise_alarm(Alarm::CommittedConfigurationLost(epoch));
            self.collecting = None;
            return;
        };
        let Ok(secret) = combine(collector.shares()) else {
            ctx.raise_alarm(Alarm::ReconstructionFailed(epoch));
            self.collecting = None;
            return;
        };
        let Ok(older) = stored.config.retained_secrets(&secret) else {
            ctx.raise_alarm(Alarm::DecryptionFailed(epoch));
            self.collecting = None;
            return;
        };
        log::info!("loaded rack secret of epoch {}", epoch);
        ctx.emit(Event::SecretLoaded(epoch));
        self.collecting = None;
        self.cached = Some(Cached {
            epoch,
            secret,
            older,
            from_lrtq: false,
        });
    }
}

impl Cached {
    fn lookup(&self, epoch: Epoch) -> Result<RackSecret, LoadSecretError> {
        if epoch == self.epoch {
            return Ok(self.secret.clone());
        }
        if let Some(secret) = self.older.get(epoch) {
            return Ok(secret.clone());
        }
        match self.older.oldest_epoch() {
            Some(oldest) if epoch < oldest => Err(LoadSecretError::TooOld {
                epoch,
                oldest_retained: oldest,
            }),
            None => Err(LoadSecretError::TooOld {
                epoch,
                oldest_retained: self.epoch,
            }),
            Some(_) => Err(LoadSecretError::NotCommitted(epoch)),
        }
    }
}

impl LrtqShares {
    /// Adds `share` if its digest is one of the rack's and it is not here
    /// yet; past the LRTQ threshold, a valid share is taken and not kept.
    fn add(&mut self, share: &LrtqShare, lrtq: &LrtqShareData) -> Result<(), Counter> {
        if !lrtq.is_known_digest(&share.digest()) {
            return Err(Counter::UnknownLrtqShareDigest);
        }
        if self
            .shares
            .iter()
            .any(|s| s.identifier() == share.identifier())
        {
            return Err(Counter::LateLrtqShare);
        }
        if self.shares.len() >= usize::from(lrtq.threshold) {
            return Ok(());
        }
        self.shares
            .push(share.clone())
            .map_err(|_| Counter::Internal)
    }
}
