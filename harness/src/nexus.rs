//! Nexus in the simulated rack: [`tq_nexus::Nexus`], the state machine the
//! host's Nexus driver runs too (PROTOCOL.md section 7), its clock, and the
//! sled ids that map its answers to sled indices (sled `i` is
//! [`crate::sled::platform_id`]`(i)`, so sled order is `PlatformId` order).
//! What Nexus knows is read back here as sled masks, for the checker and
//! the liveness check. Driving it (an action's numbers becoming the
//! machine's commands, its calls made on the nodes and answered) is the
//! cluster's Nexus steps, `cluster/nexus_steps.rs`; a node refusing what
//! Nexus had every right to ask is a [`Violation`] there.
//!
//! Time: the clock moves one [`STEP`] per Nexus action (and per round of
//! the liveness check), and every interval of [`timing`] is one step, so
//! every call Nexus wants is due at every Nexus action, as it was for the
//! model this replaced. A coordinator that can never run its epoch, or
//! whose status does not move for [`ABANDON_AFTER_STEPS`] steps, is
//! abandoned by the machine on its own.

use core::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tq_core::authority::{
    AnswerTag, CoordinatorStatusQuery, NONCE_LEN, NexusAuthorityKey, NexusCall, NexusRequest,
    RequestAuth, SledRequestKey,
};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::wire::NexusWire;
use tq_nexus::{CallKind, Instant, Origin, Phase, Sleds, Timing};

use crate::MAX_SLEDS;
use crate::invariants::{SetupError, Violation};
use crate::mask::{SledMask, mask_of};
use crate::sled::index_of;

pub use crate::invariants::NexusFault;
pub use tq_nexus::{MAX_HISTORY, NexusStats};

/// How far the clock moves per Nexus action.
pub const STEP: Duration = Duration::from_secs(1);

/// Steps without progress after which Nexus abandons a coordination.
pub const ABANDON_AFTER_STEPS: u32 = 8;

/// The machine's timing in the harness: every interval one [`STEP`].
pub fn timing() -> Timing {
    Timing {
        poll_interval: STEP,
        retry_interval: STEP,
        abandon_after: Some(STEP * ABANDON_AFTER_STEPS),
    }
}

/// One epoch Nexus committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedEpoch {
    /// The epoch.
    pub epoch: Epoch,
    /// Its members.
    pub members: SledMask,
    /// The members whose acks Nexus committed on.
    pub acked: SledMask,
}

/// The reconfiguration Nexus is driving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its epoch.
    pub epoch: Epoch,
    /// The coordinator's sled index.
    pub coordinator: Option<usize>,
    /// Members.
    pub members: SledMask,
    /// `K`.
    pub threshold: Threshold,
    /// Where it stands.
    pub phase: Phase,
}

/// The stream of the run's seed that Nexus's authority key and nonces are
/// drawn from: not the cluster's, so that adding them changed no seed's
/// run.
const AUTHORITY_STREAM: u64 = 0x6e65_7875_735f_6b65;

/// Nexus in the simulation: `tq-nexus`'s machine, its clock, the sled ids
/// to map its answers back to indices, and its authority: every sled's
/// request key (derived from an authority key drawn from the run's seed)
/// and the source of its nonces.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone))]
pub struct SimNexus {
    pub(crate) machine: tq_nexus::Nexus,
    pub(crate) ids: heapless::Vec<PlatformId, MAX_SLEDS>,
    pub(crate) now: Instant,
    keys: heapless::Vec<SledRequestKey, MAX_SLEDS>,
    nonces: ChaCha20Rng,
    pub(crate) recorder: Option<RequestRecorder>,
}

/// Sees every request Nexus makes: the sled's index, the authenticator,
/// the call ([`SimNexus::set_request_recorder`]).
pub type RequestRecorder = fn(sled: usize, auth: &RequestAuth, call: CallKind<'_>);

impl SimNexus {
    /// Nexus for a rack whose first `members` sleds of `ids` are its
    /// members (the LRTQ sleds if `lrtq`).
    pub(crate) fn new(
        seed: u64,
        rack_id: RackId,
        ids: &[PlatformId],
        members: usize,
        lrtq: bool,
    ) -> Result<Self, Violation> {
        let origin = if lrtq { Origin::Lrtq } else { Origin::Fresh };
        let initial = ids
            .get(..members)
            .ok_or(Violation::Setup(SetupError::Sizes))?;
        let now = Instant::from_millis(0);
        let machine = tq_nexus::Nexus::new(rack_id, origin, initial, timing(), now)
            .map_err(|_| Violation::Setup(SetupError::Sizes))?;
        let mut nonces = ChaCha20Rng::seed_from_u64(seed);
        nonces.set_stream(AUTHORITY_STREAM);
        let mut authority = [0u8; 32];
        nonces.fill_bytes(&mut authority);
        let authority = NexusAuthorityKey::from_bytes(authority);
        let mut keys = heapless::Vec::new();
        for id in ids {
            let key = authority
                .sled_key(rack_id, id)
                .map_err(|_| Violation::Setup(SetupError::Sizes))?;
            keys.push(key)
                .map_err(|_| Violation::Setup(SetupError::Sizes))?;
        }
        let ids =
            heapless::Vec::from_slice(ids).map_err(|_| Violation::Setup(SetupError::Sizes))?;
        let mut nexus = Self {
            machine,
            ids,
            now,
            keys,
            nonces,
            recorder: None,
        };
        nexus.store();
        Ok(nexus)
    }

    /// Sled `index`'s request key, which the sled is given at boot.
    pub fn sled_key(&self, index: usize) -> Option<&SledRequestKey> {
        self.keys.get(index)
    }

    /// A fresh nonce for a call.
    pub(crate) fn nonce(&mut self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        self.nonces.fill_bytes(&mut nonce);
        nonce
    }

    /// Nexus's authenticator of `body` to sled `index`, under a fresh
    /// nonce.
    pub fn authorize<T: NexusRequest + ?Sized>(
        &mut self,
        index: usize,
        body: &T,
    ) -> Option<RequestAuth> {
        let nonce = self.nonce();
        let key = self.keys.get(index)?;
        key.authorize(self.ids.get(index)?, nonce, body).ok()
    }

    /// Nexus's authenticator of call `kind` to sled `index` under `nonce`.
    pub(crate) fn authorize_call(
        &self,
        index: usize,
        nonce: [u8; NONCE_LEN],
        kind: CallKind<'_>,
    ) -> Option<RequestAuth> {
        let key = self.keys.get(index)?;
        let target = self.ids.get(index)?;
        match kind {
            CallKind::Reconfigure(msg) => key.authorize(target, nonce, msg),
            CallKind::UpgradeFromLrtq(msg) => key.authorize(target, nonce, msg),
            CallKind::Commit(request) => key.authorize(target, nonce, &request),
            CallKind::PrepareAndCommit(config) => key.authorize(target, nonce, config),
            CallKind::CoordinatorStatus => key.authorize(target, nonce, &CoordinatorStatusQuery),
        }
        .ok()
    }

    /// Shows every request Nexus makes from now on to `recorder` (the
    /// replay test's record of a run).
    pub fn set_request_recorder(&mut self, recorder: RequestRecorder) {
        self.recorder = Some(recorder);
    }

    /// Whether `tag` is sled `index`'s tag of `answer` to the `call` made
    /// with `auth`: Nexus counts no answer it cannot attribute.
    pub fn answer_is_authentic<A: NexusWire + ?Sized>(
        &self,
        index: usize,
        call: NexusCall,
        auth: &RequestAuth,
        answer: &A,
        tag: Option<&AnswerTag>,
    ) -> bool {
        match (self.keys.get(index), self.ids.get(index), tag) {
            (Some(key), Some(id), Some(tag)) => key
                .verify_answer(id, call, &auth.nonce, answer, tag)
                .is_ok(),
            _ => false,
        }
    }

    /// The state machine, for everything the masks below do not say.
    pub fn machine(&self) -> &tq_nexus::Nexus {
        &self.machine
    }

    /// Nexus's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock one step; the machine abandons on its own if due
    /// (every sled is reachable: the harness models no routes, so the
    /// machine's own order picks the next coordinator).
    pub(crate) fn tick(&mut self) {
        self.now = self.now.after(STEP);
        self.machine.handle_timeout(self.now, |_| true);
        self.store();
    }

    /// Stores every decision at once: this Nexus never crashes (its
    /// restore is tested in `tq-nexus`).
    pub(crate) fn store(&mut self) {
        if let Some(to_store) = self.machine.state_to_store() {
            let revision = to_store.revision;
            self.machine.acknowledge_stored(revision);
        }
    }

    pub(crate) fn mask(&self, sleds: Sleds<'_>) -> SledMask {
        mask_of(sleds.iter().filter_map(|id| index_of(&self.ids, id)))
    }

    /// The sleds that may coordinate the next reconfiguration, were they
    /// among its members.
    pub(crate) fn may_coordinate(&self) -> SledMask {
        mask_of(
            self.ids
                .iter()
                .enumerate()
                .filter(|(_, id)| self.machine.may_coordinate(id))
                .map(|(i, _)| i),
        )
    }

    fn committed_epoch(&self, committed: tq_nexus::Committed<'_>) -> CommittedEpoch {
        CommittedEpoch {
            epoch: committed.epoch(),
            members: self.mask(committed.members()),
            acked: self.mask(committed.acked()),
        }
    }

    /// The reconfiguration being driven, if any.
    pub fn pending(&self) -> Option<Pending> {
        let pending = self.machine.pending()?;
        Some(Pending {
            epoch: pending.epoch(),
            coordinator: pending.coordinator().and_then(|id| index_of(&self.ids, id)),
            members: self.mask(pending.members()),
            threshold: pending.threshold(),
            phase: pending.phase(),
        })
    }

    /// The latest committed configuration.
    pub fn latest_config(&self) -> Option<&Configuration> {
        self.machine.latest_config()
    }

    /// The latest committed epoch, with members and acks.
    pub fn latest_committed(&self) -> Option<CommittedEpoch> {
        let latest = self.machine.latest_committed()?;
        Some(self.committed_epoch(latest))
    }

    /// Every remembered commit, oldest first.
    pub fn history(&self) -> impl Iterator<Item = CommittedEpoch> + '_ {
        self.machine.history().map(|c| self.committed_epoch(c))
    }

    /// The current members.
    pub fn members(&self) -> SledMask {
        self.mask(self.machine.members())
    }

    /// Members of the latest configuration that confirmed the commit.
    pub fn commit_confirmed(&self) -> SledMask {
        self.machine
            .latest_committed()
            .map_or(0, |c| self.mask(c.confirmed()))
    }

    /// Whether the rack is still on LRTQ.
    pub fn on_lrtq(&self) -> bool {
        self.machine.is_on_lrtq()
    }

    /// Counters.
    pub fn stats(&self) -> &NexusStats {
        self.machine.stats()
    }

    /// Members of committed `epoch`, if Nexus committed it (and remembers).
    pub fn committed_members(&self, epoch: Epoch) -> Option<SledMask> {
        self.machine
            .committed_members(epoch)
            .map(|members| self.mask(members))
    }

    /// Whether Nexus committed `epoch` (and remembers it).
    pub fn is_committed(&self, epoch: Epoch) -> bool {
        self.machine.committed(epoch).is_some()
    }

    /// Whether `epoch` is older than what Nexus still remembers.
    pub fn forgot_epoch(&self, epoch: Epoch) -> bool {
        self.machine.forgot_epoch(epoch)
    }

    /// The highest epoch Nexus counted sled `index` as committed at.
    pub fn counted_commit(&self, index: usize) -> Option<Epoch> {
        self.machine.counted_commit(self.ids.get(index)?)
    }

    /// The committed epoch `back` commits before the latest (modulo the
    /// number remembered).
    pub fn committed_epoch_back(&self, back: u8) -> Option<Epoch> {
        let len = self.machine.history().count();
        if len == 0 {
            return None;
        }
        let back = usize::from(back) % len;
        self.machine.history().rev().nth(back).map(|c| c.epoch())
    }
}
