//! Collecting `K` valid shares of one configuration. One collector serves
//! every place that needs shares: the coordinator rebuilding the old secret,
//! a node computing its own lost share, and the rack secret loader.

use subtle::ConstantTimeEq;

use crate::api::Counter;
use crate::config::Configuration;
use crate::crypto::Share;
use crate::ids::{Epoch, PlatformId};
use crate::limits::MAX_THRESHOLD;
use crate::messages::QueuedBody;
use crate::node::ctx::NodeCtx;
use crate::persistent::PersistentState;

/// Shares of one epoch, each checked against the configuration's digest for
/// its sender, at most one per member.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone, Hash))]
pub(crate) struct ShareCollector {
    epoch: Epoch,
    threshold: usize,
    shares: heapless::Vec<Share, { MAX_THRESHOLD as usize }, u8>,
}

/// What adding a share did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// Stored; more are needed.
    Stored,
    /// Stored, and now there are `K`.
    Complete,
}

impl ShareCollector {
    fn new(config: &Configuration) -> Self {
        Self {
            epoch: config.epoch(),
            threshold: usize::from(config.threshold().get()),
            shares: heapless::Vec::new(),
        }
    }

    /// Starts collecting shares of the stored configuration of `epoch`:
    /// takes this node's own share if it has one and asks every connected
    /// member for theirs. `None` if that configuration is not stored.
    pub(crate) fn start(ctx: &mut NodeCtx, epoch: Epoch) -> Option<Self> {
        let stored = ctx.state().get(epoch)?;
        let members = stored.config.members().len();
        let mut collector = Self::new(&stored.config);
        // Our own stored share matches our digest unless the state was
        // corrupted; then it is counted like any other bad share.
        let own = match &stored.share {
            Some(own) => collector.add(&stored.config, ctx.id(), own).err(),
            None => None,
        };
        if let Some(event) = own {
            ctx.count(event);
        }
        for i in 0..members {
            // Looked up one at a time so no copy of the member list is made.
            let Some(member) = ctx
                .state()
                .get(epoch)
                .and_then(|s| s.config.members().get(i))
                .map(|m| m.id.clone())
            else {
                break;
            };
            if member != *ctx.id() {
                ctx.request(&member, QueuedBody::GetShare(epoch));
            }
        }
        Some(collector)
    }

    /// Asks a peer that just connected for its share, if it is a member and
    /// its share is still missing.
    pub(crate) fn on_connect(&self, ctx: &mut NodeCtx, peer: &PlatformId) {
        let wanted = ctx.state().get(self.epoch).is_some_and(|stored| {
            stored.config.is_member(peer) && !self.has_share_of(&stored.config, peer)
        });
        if wanted {
            ctx.request(peer, QueuedBody::GetShare(self.epoch));
        }
    }

    /// Offers a received `Share { epoch, share }` from `from`, checked
    /// against the stored configuration of the epoch being collected.
    pub(crate) fn offer(
        &mut self,
        state: &PersistentState,
        from: &PlatformId,
        epoch: Epoch,
        share: &Share,
    ) -> Result<Added, Counter> {
        if epoch != self.epoch {
            return Err(Counter::WrongEpoch);
        }
        let stored = state.get(epoch).ok_or(Counter::WrongEpoch)?;
        self.add(&stored.config, from, share)
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.shares.len() >= self.threshold
    }

    /// The collected shares, for interpolation once complete.
    pub(crate) fn shares(&self) -> &[Share] {
        &self.shares
    }

    /// Whether a share from member `id` is already here.
    fn has_share_of(&self, config: &Configuration, id: &PlatformId) -> bool {
        config
            .x_coordinate(id)
            .is_some_and(|x| self.shares.iter().any(|s| s.x() == x))
    }

    /// Adds `share` from `from`, after checking that `config` is the epoch
    /// being collected, `from` is a member, and the share matches the digest
    /// listed for `from`. A refused share is returned as the event to count.
    fn add(
        &mut self,
        config: &Configuration,
        from: &PlatformId,
        share: &Share,
    ) -> Result<Added, Counter> {
        if config.epoch() != self.epoch {
            return Err(Counter::WrongEpoch);
        }
        let digest = config.share_digest(from).ok_or(Counter::FromNonMember)?;
        // The digest covers x, so a match also proves the share is `from`'s.
        if !bool::from(share.digest().ct_eq(digest)) {
            return Err(Counter::InvalidShareDigest);
        }
        if self.is_complete() {
            return Ok(Added::Complete);
        }
        if self.shares.iter().any(|s| s.x() == share.x()) {
            return Err(Counter::DuplicateShare);
        }
        // Room for `K` shares, and a complete collection takes no more.
        self.shares
            .push(share.clone())
            .map_err(|_| Counter::Internal)?;
        Ok(if self.is_complete() {
            Added::Complete
        } else {
            Added::Stored
        })
    }
}
