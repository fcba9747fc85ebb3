//! The machine driving real `tq_core` nodes: a small rack in this file
//! (nodes, their disks, a message queue), no harness. Each call the
//! machine hands out is made on the node through the core's driving loop,
//! and answered the way a host driver would after decoding it (the
//! coordinator's status as an owned value, borrowed back with
//! `status_ref`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::collections::VecDeque;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_core::api::CoordinatorStatus;
use tq_core::authority::{
    CoordinatorStatusQuery, NexusAuthorityKey, NexusRequest, SledRequestKey, Verified,
};
use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_core::member_set::MemberSet;
use tq_core::node::{Event, Io, Node, NodeCtx, Outputs, drive};
use tq_core::persistent::{LrtqShareData, PersistentState};
use tq_core::wire::{self, MAX_PEER_MSG_LEN, MAX_PERSISTENT_STATE_LEN};
use tq_nexus::{Answer, CallKind, Nexus, Origin, Phase, Reaction, Timing, status_ref};
use tq_test_fixtures::{RACK, lrtq_rack};

/// Sled `id`'s request key, from the test's Nexus authority key.
fn sled_key(id: &PlatformId) -> SledRequestKey {
    NexusAuthorityKey::from_bytes([0x4e; 32])
        .sled_key(RACK, id)
        .unwrap()
}

/// One sled: its disk, and its node while it is up.
struct Sled {
    id: PlatformId,
    disk: Vec<u8>,
    running: Option<Running>,
}

struct Running {
    node: Node,
    ctx: Box<NodeCtx>,
    rng: ChaCha20Rng,
}

/// A rack whose sleds are all connected to each other while up.
struct Rack {
    sleds: Vec<Sled>,
    in_flight: VecDeque<(usize, usize, Vec<u8>)>,
}

/// One node call's outputs: the state to its disk, messages to the queue.
struct SledIo<'a> {
    from: usize,
    ids: &'a [PlatformId],
    disk: &'a mut Vec<u8>,
    in_flight: &'a mut VecDeque<(usize, usize, Vec<u8>)>,
}

impl Io for SledIo<'_> {
    type StoreError = wire::WireError;

    fn store(&mut self, state: &PersistentState) -> Result<(), wire::WireError> {
        let mut buf = vec![0; MAX_PERSISTENT_STATE_LEN];
        *self.disk = wire::encode_persistent_state(state, &mut buf)?.to_vec();
        Ok(())
    }
}

impl Outputs for SledIo<'_> {
    fn send(&mut self, to: &PlatformId, bytes: &[u8]) {
        let to = self.ids.iter().position(|id| id == to).unwrap();
        self.in_flight.push_back((self.from, to, bytes.to_vec()));
    }

    fn event(&mut self, _: Event) {}
}

impl Rack {
    fn new(count: usize, lrtq: Option<&[LrtqShareData]>) -> Self {
        let sleds = (0..count)
            .map(|i| {
                let state = match lrtq.and_then(|data| data.get(i)) {
                    Some(data) => PersistentState::with_lrtq(data.clone()),
                    None => PersistentState::new(),
                };
                let mut buf = vec![0; MAX_PERSISTENT_STATE_LEN];
                let disk = wire::encode_persistent_state(&state, &mut buf)
                    .unwrap()
                    .to_vec();
                Sled {
                    id: tq_test_fixtures::sled_id(i),
                    disk,
                    running: None,
                }
            })
            .collect();
        let mut rack = Self {
            sleds,
            in_flight: VecDeque::new(),
        };
        for i in 0..count {
            rack.boot(i);
        }
        rack
    }

    fn ids(&self) -> Vec<PlatformId> {
        self.sleds.iter().map(|s| s.id.clone()).collect()
    }

    fn index(&self, id: &PlatformId) -> usize {
        self.sleds.iter().position(|s| s.id == *id).unwrap()
    }

    /// Runs Nexus's call `f` on `body` on sled `i` as Nexus makes it:
    /// authorized with the sled's key, checked by its context.
    fn nexus_call<B: NexusRequest, T>(
        &mut self,
        i: usize,
        body: &B,
        f: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng, Verified<'_, B>) -> T,
    ) -> Option<T> {
        let target = self.sleds[i].id.clone();
        let auth = sled_key(&target)
            .authorize(&target, [i as u8; 16], body)
            .unwrap();
        self.call(i, |node, ctx, rng| {
            let verified = ctx.verify_request(&auth, body).unwrap();
            f(node, ctx, rng, verified)
        })
    }

    /// Runs `f` on sled `i` through the core's driving loop; `None` if it
    /// is down.
    fn call<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng) -> T,
    ) -> Option<T> {
        let ids = self.ids();
        let sled = &mut self.sleds[i];
        let running = sled.running.as_mut()?;
        let mut io = SledIo {
            from: i,
            ids: &ids,
            disk: &mut sled.disk,
            in_flight: &mut self.in_flight,
        };
        let mut buf = [0; MAX_PEER_MSG_LEN];
        let rng = &mut running.rng;
        let (out, stored) = drive(
            &mut running.node,
            &mut running.ctx,
            &mut io,
            &mut buf,
            |n, c| f(n, c, rng),
        );
        stored.unwrap();
        Some(out)
    }

    fn boot(&mut self, i: usize) {
        let sled = &mut self.sleds[i];
        let mut ctx = Box::new(NodeCtx::new(sled.id.clone()));
        ctx.restore_state(&sled.disk).unwrap();
        ctx.set_request_key(sled_key(&sled.id));
        sled.running = Some(Running {
            node: Node::new(),
            ctx,
            rng: ChaCha20Rng::seed_from_u64(i as u64),
        });
        for peer in 0..self.sleds.len() {
            if peer != i && self.sleds[peer].running.is_some() {
                let (a, b) = (self.sleds[i].id.clone(), self.sleds[peer].id.clone());
                self.call(i, |node, ctx, _| node.on_connect(ctx, &b));
                self.call(peer, |node, ctx, _| node.on_connect(ctx, &a));
            }
        }
    }

    fn crash(&mut self, i: usize) {
        self.sleds[i].running = None;
        let gone = self.sleds[i].id.clone();
        for peer in 0..self.sleds.len() {
            self.call(peer, |node, ctx, _| node.on_disconnect(ctx, &gone));
        }
        self.in_flight
            .retain(|(from, to, _)| *from != i && *to != i);
    }

    /// Delivers every message; whether there was any.
    fn deliver_all(&mut self) -> bool {
        let mut any = false;
        while let Some((from, to, bytes)) = self.in_flight.pop_front() {
            any = true;
            let from = self.sleds[from].id.clone();
            self.call(to, |node, ctx, rng| {
                node.handle_bytes(ctx, rng, &from, &bytes)
            });
        }
        any
    }

    fn latest_committed(&self, i: usize) -> Option<Epoch> {
        wire::decode_persistent_state(&self.sleds[i].disk)
            .unwrap()
            .latest_committed_epoch()
    }
}

/// A node's answer, owned (as a host decodes it).
enum Owned {
    Reconfigure(Result<tq_core::api::ReconfigureOutcome, tq_core::node::ReconfigureError>),
    Upgrade(Result<(), tq_core::node::LrtqUpgradeError>),
    Status(Option<Box<CoordinatorStatus>>),
    Commit(Result<tq_core::api::CommitOutcome, tq_core::node::CommitError>),
    PrepareAndCommit(
        Result<tq_core::api::PrepareAndCommitOutcome, tq_core::node::PrepareAndCommitError>,
    ),
}

/// The rack, Nexus, and the time.
struct World {
    rack: Rack,
    nexus: Nexus,
    now: tq_nexus::Instant,
    reactions: Vec<Reaction>,
}

impl World {
    fn new(rack: Rack, origin: Origin, members: usize, timing: Timing) -> Self {
        let ids = rack.ids();
        let now = tq_nexus::Instant::from_millis(0);
        let nexus = Nexus::new(RACK, origin, &ids[..members], timing, now).unwrap();
        let mut world = Self {
            rack,
            nexus,
            now,
            reactions: Vec::new(),
        };
        world.store();
        world
    }

    fn store(&mut self) {
        if let Some(to_store) = self.nexus.state_to_store() {
            let revision = to_store.revision;
            self.nexus.acknowledge_stored(revision);
        }
    }

    /// One second: automatic abandonment, every due call made, every
    /// message delivered.
    fn step(&mut self) {
        self.now = self.now.after(Duration::from_secs(1));
        // Every node is called in-process: all are reachable.
        self.nexus.handle_timeout(self.now, |_| true);
        self.store();
        while let Some(call) = self.nexus.poll_call(self.now) {
            let (id, to) = (call.id, self.rack.index(call.to));
            let owned = match call.kind {
                CallKind::Reconfigure(msg) => {
                    let msg = msg.clone();
                    self.rack.nexus_call(to, &msg, |node, ctx, rng, msg| {
                        Owned::Reconfigure(node.coordinate_reconfiguration(ctx, rng, msg))
                    })
                }
                CallKind::UpgradeFromLrtq(msg) => {
                    let msg = msg.clone();
                    self.rack.nexus_call(to, &msg, |node, ctx, rng, msg| {
                        Owned::Upgrade(node.coordinate_upgrade_from_lrtq(ctx, rng, msg))
                    })
                }
                CallKind::CoordinatorStatus => {
                    self.rack
                        .nexus_call(to, &CoordinatorStatusQuery, |node, ctx, _, query| {
                            Owned::Status(node.coordinator_status(ctx, query).map(|s| {
                                Box::new(CoordinatorStatus {
                                    epoch: s.epoch,
                                    phase: s.phase,
                                    acked: MemberSet::new(s.acked).unwrap(),
                                    config: s.config.cloned(),
                                })
                            }))
                        })
                }
                CallKind::Commit(request) => {
                    self.rack.nexus_call(to, &request, |node, ctx, _, request| {
                        Owned::Commit(node.commit_configuration(ctx, request))
                    })
                }
                CallKind::PrepareAndCommit(config) => {
                    let config = config.clone();
                    self.rack.nexus_call(to, &config, |node, ctx, _, config| {
                        Owned::PrepareAndCommit(node.prepare_and_commit(ctx, config))
                    })
                }
            };
            let answer = match &owned {
                None => Answer::Unreachable,
                Some(Owned::Reconfigure(r)) => Answer::Reconfigure(r.clone()),
                Some(Owned::Upgrade(r)) => Answer::UpgradeFromLrtq(r.clone()),
                Some(Owned::Status(s)) => Answer::CoordinatorStatus(s.as_deref().map(status_ref)),
                Some(Owned::Commit(r)) => Answer::Commit(r.clone()),
                Some(Owned::PrepareAndCommit(r)) => Answer::PrepareAndCommit(r.clone()),
            };
            let reaction = self.nexus.on_answer(self.now, id, answer);
            assert!(!matches!(reaction, Reaction::Refused(_)), "{reaction:?}");
            self.reactions.push(reaction);
            self.store();
        }
        self.rack.deliver_all();
    }

    /// Steps until `done`, at most `max` seconds.
    fn run_until(&mut self, max: usize, mut done: impl FnMut(&Self) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        assert!(
            done(self),
            "not done after {max} s: {:?}",
            self.nexus.pending()
        );
    }

    fn settled(&self) -> bool {
        self.nexus.pending().is_none()
            && self
                .nexus
                .latest_committed()
                .is_some_and(|c| c.unconfirmed().is_empty())
    }

    fn start(&mut self, members: &[usize], k: u8, coordinator: usize) -> Epoch {
        let ids = self.rack.ids();
        let members: Vec<_> = members.iter().map(|&i| ids[i].clone()).collect();
        let epoch = self
            .nexus
            .start(
                self.now,
                &members,
                Threshold::new(k).unwrap(),
                &ids[coordinator],
            )
            .unwrap();
        self.store();
        epoch
    }

    /// Every member of the latest commit loads its secret; all agree.
    fn every_member_loads_the_same_secret(&mut self) -> [u8; 32] {
        let latest = self.nexus.latest_committed().unwrap();
        let epoch = latest.epoch();
        let members: Vec<usize> = latest
            .members()
            .iter()
            .map(|id| self.rack.index(id))
            .collect();
        for &i in &members {
            self.rack
                .call(i, |node, ctx, _| node.load_rack_secret(ctx, epoch).unwrap());
        }
        self.rack.deliver_all();
        let secrets: Vec<[u8; 32]> = members
            .iter()
            .map(|&i| {
                let secret = self.rack.call(i, |node, ctx, _| {
                    node.load_rack_secret(ctx, epoch)
                        .unwrap()
                        .map(|s| *s.expose_secret())
                });
                secret.flatten().expect("loaded")
            })
            .collect();
        assert!(secrets.iter().all(|s| *s == secrets[0]));
        secrets[0]
    }
}

fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_secs(1),
        retry_interval: Duration::from_secs(1),
        abandon_after: Some(Duration::from_secs(10)),
    }
}

#[test]
fn a_fresh_rack_commits_adds_and_removes_sleds_with_one_that_missed_a_prepare() {
    let mut world = World::new(Rack::new(7, None), Origin::Fresh, 5, timing());
    assert_eq!(world.start(&[0, 1, 2, 3, 4], 3, 0), Epoch(1));
    world.run_until(20, World::settled);
    let first = world.every_member_loads_the_same_secret();

    // Sled 4 is down during the prepare: K + Z = 4 of 5 commit without it.
    world.rack.crash(4);
    assert_eq!(world.start(&[0, 1, 2, 3, 4, 5], 3, 1), Epoch(2));
    world.run_until(20, |w| {
        w.nexus.latest_committed().unwrap().epoch() == Epoch(2)
    });
    world.run_until(5, |w| {
        w.nexus.latest_committed().unwrap().unconfirmed().len() == 1
    });
    // Back up, it answers `NotPrepared`, gets the configuration, computes
    // its share from the others, and confirms.
    world.rack.boot(4);
    world.run_until(20, World::settled);
    assert!(world.nexus.stats().prepare_and_commits >= 1);
    assert_eq!(world.rack.latest_committed(4), Some(Epoch(2)));
    let second = world.every_member_loads_the_same_secret();
    assert_ne!(first, second);

    // Sled 2 removed: never added back.
    assert_eq!(world.start(&[0, 1, 3, 4, 5], 2, 3), Epoch(3));
    world.run_until(20, World::settled);
    world.every_member_loads_the_same_secret();
    let ids = world.rack.ids();
    assert!(world.nexus.removed().contains(&ids[2]));
    let back: Vec<_> = [0, 1, 2, 3].iter().map(|&i| ids[i].clone()).collect();
    let refused = world
        .nexus
        .start(world.now, &back, Threshold::new(2).unwrap(), &ids[0]);
    assert_eq!(refused, Err(tq_nexus::StartError::Removed(ids[2].clone())));
    // Every sled Nexus counted as committed is.
    for (i, id) in ids.iter().enumerate() {
        if let Some(epoch) = world.nexus.counted_commit(id) {
            assert!(world.rack.latest_committed(i) >= Some(epoch), "sled {i}");
        }
    }
}

#[test]
fn a_coordinator_that_crashed_mid_prepare_is_abandoned_for_the_next_one() {
    let mut world = World::new(Rack::new(4, None), Origin::Fresh, 4, timing());
    world.start(&[0, 1, 2, 3], 2, 0);
    world.run_until(20, World::settled);
    // The coordinator of epoch 2 crashes after starting and stays down.
    let epoch = world.start(&[0, 1, 2, 3], 2, 1);
    world.step();
    assert_eq!(world.nexus.pending().unwrap().phase(), Phase::Running);
    world.rack.crash(1);
    world.run_until(30, |w| w.nexus.pending().is_some_and(|p| p.epoch() > epoch));
    let pending = world.nexus.pending().unwrap();
    assert_eq!(pending.coordinator(), Some(&world.rack.ids()[2]));
    assert_eq!(world.nexus.stats().abandoned_automatically, 1);
    world.run_until(20, |w| {
        w.nexus.latest_committed().unwrap().epoch() == Epoch(3)
    });
    // Sled 1 comes back and catches up through the commit fan-out.
    world.rack.boot(1);
    world.run_until(20, World::settled);
    world.every_member_loads_the_same_secret();
    assert_eq!(world.rack.latest_committed(1), Some(Epoch(3)));
}

#[test]
fn a_coordinator_that_restarted_after_storing_its_epoch_is_stuck_and_abandoned() {
    let mut world = World::new(Rack::new(4, None), Origin::Fresh, 4, timing());
    world.start(&[0, 1, 2, 3], 2, 0);
    world.run_until(20, World::settled);
    let epoch = world.start(&[0, 1, 2, 3], 3, 2);
    world.step();
    // It stored its configuration of epoch 2, then lost the coordination.
    world.rack.crash(2);
    world.rack.boot(2);
    world.step();
    assert!(world.reactions.contains(&Reaction::Stuck));
    // Abandoned at once (automatic abandonment), epoch 3 commits.
    world.run_until(20, World::settled);
    assert!(world.nexus.latest_committed().unwrap().epoch() > epoch);
    world.every_member_loads_the_same_secret();
}

#[test]
fn an_lrtq_rack_upgrades_and_keeps_its_secret_as_epoch_one() {
    let (data, secret) = lrtq_rack(4, 7);
    let mut world = World::new(Rack::new(5, Some(&data)), Origin::Lrtq, 4, timing());
    // The spare sled joins in the upgrade; an LRTQ sled coordinates.
    assert_eq!(world.start(&[0, 1, 2, 3, 4], 3, 2), Epoch(2));
    world.run_until(30, World::settled);
    assert_eq!(world.nexus.stats().upgrades, 1);
    assert!(!world.nexus.is_on_lrtq());
    world.every_member_loads_the_same_secret();
    for i in 0..5 {
        let loaded = world.rack.call(i, |node, ctx, _| {
            node.load_rack_secret(ctx, Epoch(1))
                .unwrap()
                .map(|s| *s.expose_secret())
        });
        assert_eq!(loaded.flatten(), Some(*secret.expose_secret()), "sled {i}");
    }
}
