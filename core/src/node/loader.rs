//! Loading rack secrets: collect `K` shares of the latest committed
//! configuration, rebuild its secret, decrypt the older ones it carries, and
//! cache them all until `clear_secrets`.

use crate::api::{Alarm, Counter, LoadSecretError};
use crate::crypto::{RackSecret, RetainedSecrets, Share, combine};
use crate::ids::{Epoch, PlatformId};
use crate::log;
use crate::node::collector::ShareCollector;
use crate::node::ctx::NodeCtx;
use crate::node::events::Event;
use crate::node::peer::NOT_WANTED;

/// The secrets of one committed epoch and the older ones it carried.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
struct Cached {
    epoch: Epoch,
    secret: RackSecret,
    older: RetainedSecrets,
}

/// Rack secret loading state: possibly a collection under way, possibly
/// a cache of loaded secrets.
#[derive(Debug, Default)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) struct SecretLoader {
    collecting: Option<ShareCollector>,
    cached: Option<Cached>,
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
        let latest = ctx
            .state()
            .latest_committed_epoch()
            .ok_or(LoadSecretError::NoCommittedConfiguration)?;
        if epoch > latest {
            return Err(LoadSecretError::NotCommitted(epoch));
        }
        if let Some(cached) = self.cached.as_ref().filter(|c| epoch <= c.epoch) {
            return cached.lookup(epoch).map(Some);
        }
        if self.collecting.as_ref().is_none_or(|c| c.epoch() != latest) {
            self.start(ctx, latest);
        }
        // Our own share may already have been enough.
        self.cached
            .as_ref()
            .filter(|c| epoch <= c.epoch)
            .map(|c| c.lookup(epoch))
            .transpose()
    }

    /// Drops every cached secret (zeroized on drop) and stops collecting.
    pub(crate) fn clear(&mut self) {
        self.collecting = None;
        self.cached = None;
    }

    pub(crate) fn collecting_epoch(&self) -> Option<Epoch> {
        self.collecting.as_ref().map(ShareCollector::epoch)
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
        let collector = self.collecting.as_mut().ok_or(NOT_WANTED)?;
        collector.offer(ctx.state(), from, epoch, share)?;
        self.finish_if_complete(ctx);
        Ok(())
    }

    /// Asks a newly connected member for its share, if still needed.
    pub(crate) fn on_connect(&self, ctx: &mut NodeCtx, peer: &PlatformId) {
        if let Some(collector) = &self.collecting {
            collector.on_connect(ctx, peer);
        }
    }

    fn start(&mut self, ctx: &mut NodeCtx, epoch: Epoch) {
        log::debug!("loading rack secret of epoch {}", epoch);
        self.collecting = ShareCollector::start(ctx, epoch);
        if self.collecting.is_none() {
            ctx.raise_alarm(Alarm::CommittedConfigurationLost(epoch));
            return;
        }
        self.finish_if_complete(ctx);
    }

    fn finish_if_complete(&mut self, ctx: &mut NodeCtx) {
        let Some(collector) = self.collecting.as_ref().filter(|c| c.is_complete()) else {
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
