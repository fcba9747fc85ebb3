//! Collecting `K` valid shares of one configuration. One collector serves
//! every place that needs shares: the coordinator rebuilding the old secret,
//! a node computing its own lost share, and the rack secret loader.

use subtle::ConstantTimeEq;

use crate::config::Configuration;
use crate::crypto::Share;
use crate::ids::{Epoch, PlatformId};
use crate::limits::MAX_THRESHOLD;
use crate::node::counters::Event;

/// Shares of one epoch, each checked against the configuration's digest for
/// its sender, at most one per member.
#[derive(Debug)]
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
    pub(crate) fn new(config: &Configuration) -> Self {
        Self {
            epoch: config.epoch(),
            threshold: usize::from(config.threshold().get()),
            shares: heapless::Vec::new(),
        }
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
    pub(crate) fn has_share_of(&self, config: &Configuration, id: &PlatformId) -> bool {
        config
            .x_coordinate(id)
            .is_some_and(|x| self.shares.iter().any(|s| s.x() == x))
    }

    /// Adds `share` from `from`, after checking that `config` is the epoch
    /// being collected, `from` is a member, and the share matches the digest
    /// listed for `from`. A refused share is returned as the event to count.
    pub(crate) fn add(
        &mut self,
        config: &Configuration,
        from: &PlatformId,
        share: &Share,
    ) -> Result<Added, Event> {
        if config.epoch() != self.epoch {
            return Err(Event::WrongEpoch);
        }
        let digest = config.share_digest(from).ok_or(Event::FromNonMember)?;
        // The digest covers x, so a match also proves the share is `from`'s.
        if !bool::from(share.digest().ct_eq(digest)) {
            return Err(Event::InvalidShareDigest);
        }
        if self.is_complete() {
            return Ok(Added::Complete);
        }
        if self.shares.iter().any(|s| s.x() == share.x()) {
            return Err(Event::DuplicateShare);
        }
        self.shares
            .push(share.clone())
            .map_err(|_| Event::Unexpected)?;
        Ok(if self.is_complete() {
            Added::Complete
        } else {
            Added::Stored
        })
    }
}
