//! Collecting `K` valid shares of one configuration. One collector serves
//! every place that needs shares: the coordinator rebuilding the old secret,
//! a node computing its own lost share, and the rack secret loader.
//!
//! Whom it asks is its [`Asking`]: every connected member at once, or only
//! as many as shares are missing. Asking fewer about halves the messages
//! (and the shares handed out) of a rack that boots and loads at once;
//! the price is that a member asked but silent holds the collection up
//! until it disconnects or the caller, who has the clock, widens the
//! collection to everyone ([`ShareCollector::widen`]).

use subtle::ConstantTimeEq;

use crate::api::Counter;
use crate::config::Configuration;
use crate::crypto::Share;
use crate::ids::{Epoch, PlatformId};
use crate::limits::MAX_THRESHOLD;
use crate::member_set::MemberBits;
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
    asking: Asking,
    /// The members whose share is here (bit `i` for member `i` of the
    /// configuration).
    have: MemberBits,
    /// The members asked on their current connection.
    asked: MemberBits,
}

/// Whom a [`ShareCollector`] asks for shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) enum Asking {
    /// Every connected member, and every member as it connects.
    Everyone,
    /// Connected members in member order, starting after this node (so a
    /// rack that loads at once spreads its asks over every member), until
    /// as many asks are unanswered as shares are missing; another one when
    /// an asked member disconnects before its share came.
    Enough,
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
    fn new(config: &Configuration, asking: Asking) -> Self {
        Self {
            epoch: config.epoch(),
            threshold: usize::from(config.threshold().get()),
            shares: heapless::Vec::new(),
            asking,
            have: 0,
            asked: 0,
        }
    }

    /// Starts collecting shares of the stored configuration of `epoch`:
    /// takes this node's own share if it has one and asks connected members
    /// for theirs, as `asking` says. `None` if that configuration is not
    /// stored.
    pub(crate) fn start(ctx: &mut NodeCtx, epoch: Epoch, asking: Asking) -> Option<Self> {
        let stored = ctx.state().get(epoch)?;
        let mut collector = Self::new(&stored.config, asking);
        // Our own stored share matches our digest unless the state was
        // corrupted; then it is counted like any other bad share.
        let own = match &stored.share {
            Some(own) => collector.add(&stored.config, ctx.id(), own).err(),
            None => None,
        };
        if let Some(event) = own {
            ctx.count(event);
        }
        collector.ask(ctx);
        Some(collector)
    }

    /// `peer` connected or disconnected (the context says which): an ask
    /// sent on its old connection will not be answered, so it is asked
    /// again if it is connected and an ask is due, and with
    /// [`Asking::Enough`] another member is asked in its place if not.
    pub(crate) fn on_connection_change(&mut self, ctx: &mut NodeCtx, peer: &PlatformId) {
        let x = ctx
            .state()
            .get(self.epoch)
            .and_then(|stored| stored.config.x_coordinate(peer));
        if let Some(bit) = x.and_then(|x| member_bit(usize::from(x) - 1)) {
            self.asked &= !bit;
        }
        self.ask(ctx);
    }

    /// Asks every connected member whose share is missing and that was not
    /// asked yet, and every member that connects from here on: for a
    /// caller whose collection waited longer than it should. A member
    /// asked already is not asked twice on one connection (it answers each
    /// ask, and a silent one would stay silent).
    pub(crate) fn widen(&mut self, ctx: &mut NodeCtx) {
        self.asking = Asking::Everyone;
        self.ask(ctx);
    }

    /// Sends the asks [`Self::asking`] calls for now.
    fn ask(&mut self, ctx: &mut NodeCtx) {
        let Some(stored) = ctx.state().get(self.epoch) else {
            return;
        };
        let count = stored.config.members().len();
        // x = index + 1, so our own x is the index after ours.
        let first = stored.config.x_coordinate(ctx.id()).map_or(0, usize::from);
        for step in 0..count {
            let unanswered = (self.asked & !self.have).count_ones() as usize;
            let missing = self.threshold.saturating_sub(self.shares.len());
            if self.asking == Asking::Enough && unanswered >= missing {
                return;
            }
            let index = (first + step) % count;
            let Some(bit) = member_bit(index) else {
                return;
            };
            if (self.have | self.asked) & bit != 0 {
                continue;
            }
            // Looked up one at a time so no copy of the member list is made.
            let Some(member) = ctx
                .state()
                .get(self.epoch)
                .and_then(|s| s.config.members().get(index))
                .map(|m| m.id.clone())
            else {
                return;
            };
            if member == *ctx.id() || !ctx.is_connected(&member) {
                continue;
            }
            ctx.request(&member, QueuedBody::GetShare(self.epoch));
            self.asked |= bit;
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
        // The digest covers x, so a match also proves the share is `from`'s
        // and x is its member index + 1.
        if !bool::from(share.digest().ct_eq(digest)) {
            return Err(Counter::InvalidShareDigest);
        }
        if self.is_complete() {
            return Ok(Added::Complete);
        }
        let bit = member_bit(usize::from(share.x()).wrapping_sub(1)).ok_or(Counter::Internal)?;
        if self.have & bit != 0 {
            return Err(Counter::DuplicateShare);
        }
        // Room for `K` shares, and a complete collection takes no more.
        self.shares
            .push(share.clone())
            .map_err(|_| Counter::Internal)?;
        self.have |= bit;
        Ok(if self.is_complete() {
            Added::Complete
        } else {
            Added::Stored
        })
    }
}

/// The bit of member `index` in a [`MemberBits`].
fn member_bit(index: usize) -> Option<MemberBits> {
    u32::try_from(index)
        .ok()
        .and_then(|i| MemberBits::from(1u8).checked_shl(i))
}
