//! Unit tests of each node call and each peer message, errors included,
//! each driven as a caller drives a node: every input goes through
//! [`drive`], against a test [`Io`] that keeps what was stored, sent and
//! raised, and every message crosses the wire as bytes. Multi-step cluster
//! behaviour is tested through `tq-harness`.

mod contract;
mod defects;
mod display;
mod events;
mod lrtq_load;
mod nexus_calls;
mod peer_messages;
mod share_asks;

use std::vec::Vec;

use curve25519_dalek::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::{SeedableRng, TryCryptoRng, TryRng};
use subtle::ConstantTimeEq;

use super::*;
use crate::authority::{NexusAuthorityKey, NexusRequest, RequestAuth};
use crate::config::tests::platform;
use crate::crypto::{LrtqShare, Share, ShareDigest};
use crate::ids::{RackId, Threshold};
use crate::member_set::MemberSet;
use crate::messages::{Body, Envelope, PeerMsg};
use crate::persistent::{LrtqShareData, PersistentState};
use crate::wire::{self, MAX_PEER_MSG_LEN};

const RACK: RackId = RackId([0x42; 16]);
const OTHER_RACK: RackId = RackId([0x24; 16]);

/// The tests' Nexus: every sled's request key derives from it.
fn authority() -> NexusAuthorityKey {
    NexusAuthorityKey::from_bytes([0x5a; 32])
}

/// Why the test storage refused a write.
#[derive(Debug, PartialEq, Eq)]
struct WriteRefused;

/// A sled's storage, network and event sink: keeps what was written, sent
/// and raised, and refuses writes on demand.
#[derive(Debug, Default)]
struct TestIo {
    /// What storage holds: the encoding of the last state written.
    disk: Vec<u8>,
    /// Writes that succeeded.
    writes: usize,
    /// How many of the next writes to refuse.
    refuse_writes: usize,
    /// Messages sent and not yet taken for delivery.
    sent: Vec<(PlatformId, Vec<u8>)>,
    /// Events, oldest first.
    events: Vec<Event>,
}

impl Io for TestIo {
    type StoreError = WriteRefused;

    fn store(&mut self, state: &PersistentState) -> Result<(), WriteRefused> {
        if self.refuse_writes > 0 {
            self.refuse_writes -= 1;
            return Err(WriteRefused);
        }
        self.disk = encoded(state);
        self.writes += 1;
        Ok(())
    }
}

impl Outputs for TestIo {
    fn send(&mut self, to: &PlatformId, bytes: &[u8]) {
        self.sent.push((to.clone(), bytes.to_vec()));
    }

    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}

fn encoded(state: &PersistentState) -> Vec<u8> {
    let mut buf = std::vec![0u8; wire::MAX_PERSISTENT_STATE_LEN];
    wire::encode_persistent_state(state, &mut buf)
        .unwrap()
        .to_vec()
}

/// The RNG failed (on purpose).
#[derive(Debug)]
struct RngBroken;

impl core::fmt::Display for RngBroken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("broken on purpose")
    }
}

impl core::error::Error for RngBroken {}

/// The caller's RNG: deterministic, and failing on demand as a broken
/// hardware RNG would.
struct TestRng {
    inner: ChaCha20Rng,
    /// How many draws succeed before the failures start.
    fail_after: usize,
    /// How many draws then fail.
    fail: usize,
    /// Draws that succeeded so far.
    drawn: usize,
}

impl TestRng {
    fn new(seed: u64) -> Self {
        Self {
            inner: ChaCha20Rng::seed_from_u64(seed),
            fail_after: 0,
            fail: 0,
            drawn: 0,
        }
    }

    /// Makes the next `fail` draws after `fail_after` good ones fail.
    fn break_after(&mut self, fail_after: usize, fail: usize) {
        self.fail_after = fail_after;
        self.fail = fail;
    }

    fn draw<T>(&mut self, draw: impl FnOnce(&mut ChaCha20Rng) -> T) -> Result<T, RngBroken> {
        if self.fail_after > 0 {
            self.fail_after -= 1;
        } else if self.fail > 0 {
            self.fail -= 1;
            return Err(RngBroken);
        }
        self.drawn += 1;
        Ok(draw(&mut self.inner))
    }
}

impl TryRng for TestRng {
    type Error = RngBroken;

    fn try_next_u32(&mut self) -> Result<u32, RngBroken> {
        self.draw(|rng| rng.try_next_u32().unwrap_or_else(|never| match never {}))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngBroken> {
        self.draw(|rng| rng.try_next_u64().unwrap_or_else(|never| match never {}))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngBroken> {
        self.draw(|rng| {
            rng.try_fill_bytes(dst)
                .unwrap_or_else(|never| match never {})
        })
    }
}

impl TryCryptoRng for TestRng {}

/// One sled: its node, its context, its RNG and its driver.
struct Sled {
    node: Node,
    ctx: NodeCtx,
    rng: TestRng,
    io: TestIo,
}

impl Sled {
    /// Sled `i`, booted from `state` as storage would hold it.
    fn new(i: usize, state: PersistentState) -> Self {
        let mut ctx = NodeCtx::new(platform(i));
        let disk = encoded(&state);
        ctx.restore_state(&disk).unwrap();
        assert!(ctx.is_stored(), "a restored state is what storage holds");
        Self {
            node: Node::new(),
            ctx,
            rng: TestRng::new(i as u64),
            io: TestIo {
                disk,
                ..TestIo::default()
            },
        }
    }

    fn id(&self) -> PlatformId {
        self.ctx.id().clone()
    }

    /// Runs one input through the driving loop and returns its result. A
    /// write refused on purpose (`io.refuse_writes`) is left for the test
    /// to see; any other time, the state must then be stored, and storage
    /// must hold exactly the state in memory (a change that did not bump
    /// the revision would show here).
    fn call<T>(&mut self, input: impl FnOnce(&mut Node, &mut NodeCtx, &mut TestRng) -> T) -> T {
        let refusing = self.io.refuse_writes > 0;
        let rng = &mut self.rng;
        let mut buf = [0u8; MAX_PEER_MSG_LEN];
        let (output, stored) = drive(
            &mut self.node,
            &mut self.ctx,
            &mut self.io,
            &mut buf,
            |n, c| input(n, c, rng),
        );
        if stored.is_ok() || !refusing {
            assert_eq!(stored, Ok(()));
            assert!(self.ctx.is_stored());
            assert!(
                self.io.disk == encoded(self.ctx.persistent_state()),
                "storage does not hold the state in memory"
            );
        }
        output
    }

    /// Messages sent since last taken.
    fn drain(&mut self) -> Vec<(PlatformId, Vec<u8>)> {
        core::mem::take(&mut self.io.sent)
    }

    /// Events raised since last taken.
    fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.io.events)
    }

    /// Nexus's authenticator of `body` to this sled. The sled is given
    /// its key for the rack `body` names (or the one it knows) first, so a
    /// body of another rack passes the check and reaches the node's own
    /// refusals, as for a sled whose state is of another rack than its key.
    fn authorize<B: NexusRequest + ?Sized>(&mut self, body: &B) -> RequestAuth {
        let rack = body
            .rack_id()
            .or_else(|| validate::rack_id(self.ctx.persistent_state()))
            .unwrap_or(RACK);
        let key = authority().sled_key(rack, &self.id()).unwrap();
        let auth = key.authorize(&self.id(), [0x17; 16], body).unwrap();
        self.ctx.set_request_key(key);
        auth
    }

    /// Runs a Nexus call on `body` as Nexus makes it: authorized, checked
    /// by the context, then handed to `call`.
    fn nexus<B: NexusRequest + ?Sized, T>(
        &mut self,
        body: &B,
        call: impl FnOnce(&mut Node, &mut NodeCtx, &mut TestRng, Verified<'_, B>) -> T,
    ) -> T {
        let auth = self.authorize(body);
        self.call(|node, ctx, rng| {
            let verified = ctx.verify_request(&auth, body).unwrap();
            call(node, ctx, rng, verified)
        })
    }

    fn coordinate(&mut self, msg: &ReconfigureMsg) -> Result<ReconfigureOutcome, ReconfigureError> {
        self.nexus(msg, |node, ctx, rng, msg| {
            node.coordinate_reconfiguration(ctx, rng, msg)
        })
    }

    fn upgrade(&mut self, msg: &LrtqUpgradeMsg) -> Result<(), LrtqUpgradeError> {
        self.nexus(msg, |node, ctx, rng, msg| {
            node.coordinate_upgrade_from_lrtq(ctx, rng, msg)
        })
    }

    fn commit(&mut self, rack_id: RackId, epoch: u64) -> Result<CommitOutcome, CommitError> {
        let request = CommitRequest {
            rack_id,
            epoch: Epoch(epoch),
        };
        self.nexus(&request, |node, ctx, _, request| {
            node.commit_configuration(ctx, request)
        })
    }

    fn prepare_and_commit(
        &mut self,
        config: &Configuration,
    ) -> Result<PrepareAndCommitOutcome, PrepareAndCommitError> {
        self.nexus(config, |node, ctx, _, config| {
            node.prepare_and_commit(ctx, config)
        })
    }

    fn load(&mut self, epoch: u64) -> Result<Option<RackSecret>, LoadSecretError> {
        self.call(|node, ctx, _| node.load_rack_secret(ctx, Epoch(epoch)))
    }

    fn load_latest(&mut self) -> Result<Option<(Epoch, RackSecret)>, LoadSecretError> {
        self.nexus(&LatestSecretQuery, |node, ctx, _, query| {
            node.load_latest_rack_secret(ctx, query)
        })
    }

    fn status(&mut self) -> Option<CoordinatorStatusRef<'_>> {
        let auth = self.authorize(&CoordinatorStatusQuery);
        let query = self
            .ctx
            .verify_request(&auth, &CoordinatorStatusQuery)
            .unwrap();
        self.node.coordinator_status(&self.ctx, query)
    }

    fn connect(&mut self, peer: &PlatformId) {
        self.call(|node, ctx, _| node.on_connect(ctx, peer));
    }

    fn disconnect(&mut self, peer: &PlatformId) {
        self.call(|node, ctx, _| node.on_disconnect(ctx, peer));
    }

    /// Handles a decoded message (the wire is skipped: this is how
    /// messages no peer would send are made).
    fn receive(&mut self, from: &PlatformId, msg: &PeerMsg) {
        self.call(|node, ctx, rng| node.handle(ctx, rng, from, msg));
    }

    /// Handles bytes from a peer.
    fn receive_bytes(&mut self, from: &PlatformId, bytes: &[u8]) {
        self.call(|node, ctx, rng| node.handle_bytes(ctx, rng, from, bytes));
    }

    fn count(&self, counter: Counter) -> u32 {
        self.ctx.counters().get(counter)
    }

    fn committed(&self) -> Option<Epoch> {
        self.ctx.persistent_state().latest_committed_epoch()
    }

    /// Runs `input` and checks that it needed no write: the state was
    /// stored before and after, and nothing was written.
    fn without_write<T>(&mut self, input: impl FnOnce(&mut Self) -> T) -> T {
        assert!(self.ctx.is_stored());
        let writes = self.io.writes;
        let output = input(self);
        assert_eq!(self.io.writes, writes, "a write was needed");
        assert!(self.ctx.is_stored());
        output
    }
}

fn fresh_sleds(n: usize) -> Vec<Sled> {
    (0..n)
        .map(|i| Sled::new(i, PersistentState::new()))
        .collect()
}

fn set(range: impl IntoIterator<Item = usize>) -> MemberSet {
    let ids: Vec<PlatformId> = range.into_iter().map(platform).collect();
    MemberSet::new(&ids).unwrap()
}

fn reconfigure(epoch: u64, last: Option<u64>, members: MemberSet, k: u8) -> ReconfigureMsg {
    ReconfigureMsg {
        rack_id: RACK,
        epoch: Epoch(epoch),
        last_committed_epoch: last.map(Epoch),
        members,
        threshold: Threshold::new(k).unwrap(),
    }
}

fn connect_all(sleds: &mut [Sled]) {
    let ids: Vec<PlatformId> = sleds.iter().map(Sled::id).collect();
    for sled in sleds.iter_mut() {
        for id in &ids {
            if *id != sled.id() {
                sled.connect(id);
            }
        }
    }
}

/// Delivers `bytes` from `from` to the sled `to`, if it is one of `sleds`.
fn deliver(sleds: &mut [Sled], from: &PlatformId, to: &PlatformId, bytes: &[u8]) {
    if let Some(sled) = sleds.iter_mut().find(|s| s.id() == *to) {
        sled.receive_bytes(from, bytes);
    }
}

/// Delivers messages, as bytes, until none are left.
fn settle(sleds: &mut [Sled]) {
    for _ in 0..100 {
        let mut in_flight = Vec::new();
        for sled in sleds.iter_mut() {
            let from = sled.id();
            for (to, bytes) in sled.drain() {
                in_flight.push((from.clone(), to, bytes));
            }
        }
        if in_flight.is_empty() {
            return;
        }
        for (from, to, bytes) in in_flight {
            deliver(sleds, &from, &to, &bytes);
        }
    }
    panic!("messages kept flowing");
}

fn commit_all(sleds: &mut [Sled], epoch: u64) {
    for sled in sleds.iter_mut() {
        if sled.ctx.persistent_state().get(Epoch(epoch)).is_some() {
            sled.commit(RACK, epoch).unwrap();
        }
    }
}

/// A fresh rack of `n` sleds, epoch 1 committed everywhere, all connected.
fn committed_rack(n: usize, k: u8) -> Vec<Sled> {
    let mut sleds = fresh_sleds(n);
    connect_all(&mut sleds);
    let msg = reconfigure(1, None, set(0..n), k);
    sleds[0].coordinate(&msg).unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 1);
    sleds
}

/// Loads the secret of `epoch` on every sled, collecting shares as needed.
fn load_everywhere(sleds: &mut [Sled], epoch: u64) -> Vec<RackSecret> {
    for sled in sleds.iter_mut() {
        let _ = sled.load(epoch);
    }
    settle(sleds);
    sleds
        .iter_mut()
        .map(|s| s.load(epoch).unwrap().expect("secret loaded"))
        .collect()
}

/// The sum of every sled's anomaly counters.
fn anomalies(sleds: &[Sled]) -> u64 {
    sleds.iter().map(|s| s.ctx.counters().anomalies()).sum()
}

fn assert_all_equal(secrets: &[RackSecret]) {
    for s in secrets {
        assert!(bool::from(s.ct_eq(&secrets[0])));
    }
}

fn config_of(sled: &Sled, epoch: u64) -> Configuration {
    sled.ctx
        .persistent_state()
        .get(Epoch(epoch))
        .unwrap()
        .config
        .clone()
}

fn share_of(sled: &Sled, epoch: u64) -> Share {
    sled.ctx
        .persistent_state()
        .get(Epoch(epoch))
        .unwrap()
        .share
        .clone()
        .unwrap()
}

fn msg(body: Body<Configuration, Share, LrtqShare>) -> PeerMsg {
    Envelope {
        rack_id: RACK,
        body,
    }
}

// ---- LRTQ fixtures: shares of a degree-2 polynomial over the scalar field ----

/// The 255 LRTQ shares of a rack, and its secret.
fn lrtq_shares() -> (Vec<LrtqShare>, [u8; 32]) {
    let secret = Scalar::from(0x1234_5678_u64);
    let (a1, a2) = (Scalar::from(77u64), Scalar::from(991u64));
    let shares = (1..=255u8)
        .map(|x| {
            let xs = Scalar::from(x);
            let y = secret + a1 * xs + a2 * xs * xs;
            let mut bytes = [0u8; 33];
            bytes[0] = x;
            bytes[1..].copy_from_slice(y.as_bytes());
            LrtqShare::from_bytes(&bytes).unwrap()
        })
        .collect();
    (shares, secret.to_bytes())
}

/// `n` sleds of an LRTQ rack whose data names LRTQ threshold `threshold`
/// (the shares themselves rebuild with 3).
fn lrtq_rack_with_threshold(n: usize, threshold: u8) -> Vec<Sled> {
    let (shares, _) = lrtq_shares();
    let digests: heapless::Vec<ShareDigest, 255, u8> =
        shares.iter().map(LrtqShare::digest).collect();
    (0..n)
        .map(|i| {
            let data = LrtqShareData {
                rack_id: RACK,
                threshold: crate::ids::LrtqThreshold::new(threshold).unwrap(),
                share: shares[i].clone(),
                share_digests: digests.clone(),
            };
            Sled::new(i, PersistentState::with_lrtq(data))
        })
        .collect()
}

fn lrtq_rack(n: usize) -> (Vec<Sled>, [u8; 32]) {
    (lrtq_rack_with_threshold(n, 3), lrtq_shares().1)
}

fn upgrade(epoch: u64, members: MemberSet, k: u8) -> LrtqUpgradeMsg {
    LrtqUpgradeMsg {
        rack_id: RACK,
        epoch: Epoch(epoch),
        members,
        threshold: Threshold::new(k).unwrap(),
    }
}
