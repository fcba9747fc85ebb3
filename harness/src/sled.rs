//! A simulated sled: a node, its context, and a disk that survives crashes.
//!
//! The disk holds the encoded persistent state, exactly what a real sled
//! would write to its M.2. It is written after every call that changed the
//! state and before any message of that call leaves (the driving contract of
//! `tq_core::node`); a crash drops the node and its context, a restart
//! decodes the disk into a fresh context.

use core::fmt::Write;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_core::authority::SledRequestKey;
use tq_core::ids::{Epoch, PlatformId};
use tq_core::node::{Node, NodeCtx};
use tq_core::persistent::PersistentState;
use tq_core::wire::{self, MAX_PERSISTENT_STATE_LEN, WireError};

/// A sled's durable storage: its encoded persistent state.
///
/// A plain array and a length, not a `heapless::Vec`: a write encodes
/// straight into the array, so nothing is filled byte by byte first (the
/// harness writes and compares states at every node call, and a debug
/// build spent most of its time resizing a vector to the full length).
pub struct Disk {
    bytes: [u8; MAX_PERSISTENT_STATE_LEN],
    len: usize,
}

impl Disk {
    /// An empty disk.
    pub const fn new() -> Self {
        Self {
            bytes: [0; MAX_PERSISTENT_STATE_LEN],
            len: 0,
        }
    }

    /// What the disk holds.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Replaces what the disk holds with the encoding of `state`. On an
    /// error the disk holds nothing.
    pub(crate) fn write(&mut self, state: &PersistentState) -> Result<(), WireError> {
        self.len = 0;
        self.len = wire::encode_persistent_state(state, &mut self.bytes)?.len();
        Ok(())
    }
}

/// `clone_from` copies the bytes in use only (a model checker copies many
/// disks into one another).
impl Clone for Disk {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes,
            len: self.len,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        if let Some(to) = self.bytes.get_mut(..source.len) {
            to.copy_from_slice(source.as_slice());
            self.len = source.len;
        }
    }
}

impl Default for Disk {
    fn default() -> Self {
        Self::new()
    }
}

impl core::ops::Deref for Disk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// The part number every simulated sled has.
pub use tq_core::ids::SLED_PART_NUMBER as PART_NUMBER;

/// The id of sled `index`: serial numbers `SN0000`, `SN0001`, ... so that
/// sled order is `PlatformId` order (and x-coordinate order).
pub fn platform_id(index: usize) -> Option<PlatformId> {
    let mut serial = heapless::String::<16>::new();
    write!(serial, "SN{index:04}").ok()?;
    PlatformId::new(PART_NUMBER, &serial).ok()
}

/// The sled index of `id`: the inverse of [`platform_id`] over `ids`. The
/// index is read from the serial number, then checked against `ids` (one
/// comparison instead of a search: the checker maps ids to sleds at every
/// step, and a rack of 32 made the search its largest cost).
pub fn index_of(ids: &[PlatformId], id: &PlatformId) -> Option<usize> {
    let index: usize = id.serial_number().strip_prefix("SN")?.parse().ok()?;
    (ids.get(index)? == id).then_some(index)
}

/// A running node, its context and its RNG: what a crash loses.
#[cfg_attr(feature = "model", derive(Clone))]
pub struct Running {
    /// The node's in-memory protocol state.
    pub node: Node,
    /// Its context (persistent state, queues, connections, alarms).
    pub ctx: NodeCtx,
    /// The RNG its calls draw from.
    pub rng: ChaCha20Rng,
}

impl core::fmt::Debug for Running {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The node holds shares and the context the state: show only what
        // is public.
        f.debug_struct("Running")
            .field("ctx", &self.ctx)
            .field("coordinating", &self.node.coordinating())
            .field("computing_share", &self.node.computing_share())
            .finish_non_exhaustive()
    }
}

/// One simulated sled.
pub struct Sled {
    id: PlatformId,
    /// Its request key, given to the node at each boot (a sled's key file).
    key: SledRequestKey,
    disk: Disk,
    /// Bumped at every disk write, so checkers can skip unchanged disks.
    writes: u32,
    boots: u32,
    running: Option<Running>,
}

/// What a compact reading of a disk says, for cross-sled checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskSummary {
    /// The latest committed epoch.
    pub latest_committed: Option<Epoch>,
    /// The highest stored epoch.
    pub latest_epoch: Option<Epoch>,
    /// Stored epochs that hold this sled's share.
    pub with_share: heapless::Vec<Epoch, { tq_core::limits::MAX_STORED_CONFIGS }>,
    /// Where the sled was expunged, if it was.
    pub expunged: Option<Epoch>,
}

impl DiskSummary {
    /// Summarizes a decoded state.
    pub fn of(state: &PersistentState) -> Self {
        let fields = state.fields();
        let with_share = fields
            .configs
            .iter()
            .filter(|stored| stored.share.is_some())
            .map(|stored| stored.config.epoch())
            .collect();
        Self {
            latest_committed: state.latest_committed_epoch(),
            latest_epoch: state.latest_epoch(),
            with_share,
            expunged: state.expunged().map(|e| e.epoch),
        }
    }

    /// Whether the sled holds its share of `epoch`.
    pub fn holds_share(&self, epoch: Epoch) -> bool {
        self.with_share.contains(&epoch)
    }
}

impl core::fmt::Debug for Sled {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The disk holds shares: only its size and write count are shown.
        f.debug_struct("Sled")
            .field("id", &self.id)
            .field("disk_len", &self.disk.len())
            .field("writes", &self.writes)
            .field("boots", &self.boots)
            .field("running", &self.running)
            .finish()
    }
}

/// Copies a sled in place: the disk's bytes and the running parts only,
/// not the capacity around them (a model checker copies many).
#[cfg(feature = "model")]
impl Clone for Sled {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            key: self.key.clone(),
            disk: self.disk.clone(),
            writes: self.writes,
            boots: self.boots,
            running: self.running.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.id.clone_from(&source.id);
        self.key.clone_from(&source.key);
        self.disk.clone_from(&source.disk);
        self.writes = source.writes;
        self.boots = source.boots;
        match (&mut self.running, &source.running) {
            (Some(to), Some(from)) => {
                to.node.clone_from(&from.node);
                to.ctx.clone_from(&from.ctx);
                to.rng.clone_from(&from.rng);
            }
            (to, from) => to.clone_from(from),
        }
    }
}

impl Sled {
    /// A powered-off sled whose disk holds `initial`, given `key` (its
    /// request key) at every boot.
    pub fn new(
        id: PlatformId,
        initial: &PersistentState,
        key: SledRequestKey,
    ) -> Result<Self, WireError> {
        let mut sled = Self {
            id,
            key,
            disk: Disk::new(),
            writes: 0,
            boots: 0,
            running: None,
        };
        sled.disk.write(initial)?;
        Ok(sled)
    }

    /// The sled's id.
    pub fn id(&self) -> &PlatformId {
        &self.id
    }

    /// The encoded persistent state on disk.
    pub fn disk(&self) -> &[u8] {
        self.disk.as_slice()
    }

    /// How many times the disk was written.
    pub fn disk_writes(&self) -> u32 {
        self.writes
    }

    /// How many times the sled booted.
    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// Decodes the disk, as a restart would.
    pub fn read_disk(&self) -> Result<PersistentState, WireError> {
        wire::decode_persistent_state(&self.disk)
    }

    /// Whether the sled is up.
    pub fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// The running node and context, if up.
    pub fn running(&self) -> Option<&Running> {
        self.running.as_ref()
    }

    /// The running node and context, if up, for a caller that syncs after
    /// (the cluster syncs after through its own split borrow).
    pub fn running_mut(&mut self) -> Option<&mut Running> {
        self.running.as_mut()
    }

    /// The running parts and the disk at once, for the sync after a call.
    pub(crate) fn split_mut(&mut self) -> (Option<&mut Running>, &mut Disk, &mut u32) {
        (self.running.as_mut(), &mut self.disk, &mut self.writes)
    }

    /// Boots from the disk with an RNG seeded by `seed`. Already up: no-op.
    pub fn boot(&mut self, seed: [u8; 32]) -> Result<(), WireError> {
        if self.running.is_some() {
            return Ok(());
        }
        // As firmware boots: the state restored in place from the disk.
        let mut ctx = NodeCtx::new(self.id.clone());
        ctx.restore_state(&self.disk)?;
        ctx.set_request_key(self.key.clone());
        self.boots = self.boots.saturating_add(1);
        self.running = Some(Running {
            node: Node::new(),
            ctx,
            rng: ChaCha20Rng::from_seed(seed),
        });
        Ok(())
    }

    /// Loses everything but the disk.
    pub fn crash(&mut self) {
        self.running = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_cloned_into_another_holds_the_same_bytes() {
        let fresh = PersistentState::new();
        let mut written = Disk::new();
        written.write(&fresh).unwrap();
        assert!(!written.is_empty());
        // Into an empty disk, and back into a disk holding more.
        let mut copy = Disk::new();
        copy.clone_from(&written);
        assert_eq!(copy.as_slice(), written.as_slice());
        let mut longer = Disk::new();
        longer.bytes.fill(7);
        longer.len = MAX_PERSISTENT_STATE_LEN;
        longer.clone_from(&written);
        assert_eq!(longer.as_slice(), written.as_slice());
        longer.clone_from(&Disk::new());
        assert!(longer.is_empty());
    }

    #[test]
    fn sled_ids_map_back_to_their_index_and_nothing_else_does() {
        let ids: heapless::Vec<PlatformId, { crate::MAX_SLEDS }> = (0..crate::MAX_SLEDS)
            .map(|i| platform_id(i).unwrap())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index_of(&ids, id), Some(i));
            assert_eq!(index_of(&ids[..i], id), None);
        }
        for (part, serial) in [
            (PART_NUMBER, "SN+003"),
            (PART_NUMBER, "SN0032"),
            (PART_NUMBER, "XX0003"),
            ("913-0000020", "SN0003"),
        ] {
            let id = PlatformId::new(part, serial).unwrap();
            assert_eq!(index_of(&ids, &id), None, "{id:?}");
        }
    }
}
