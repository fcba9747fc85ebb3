//! The machine alone: answers made up here, every rule of the crate doc
//! checked on them. `tests/real_nodes.rs` drives it against real nodes.

use core::time::Duration;
use std::vec::Vec;

use tq_core::api::{
    CommitOutcome, CoordinatorStatusRef, PrepareAndCommitOutcome, ReconfigureOutcome,
    acks_to_commit,
};
use tq_core::config::{ConfigFields, Configuration, Member};
use tq_core::crypto::ShareDigest;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::member_set::MemberSubset;
use tq_core::node::{
    CommitError, CoordinatorPhase, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError,
};

use crate::*;

const RACK: RackId = RackId([7; 16]);
const SECOND: Duration = Duration::from_secs(1);

fn id(i: usize) -> PlatformId {
    tq_test_fixtures::sled_id(i)
}

fn ids(range: impl IntoIterator<Item = usize>) -> Vec<PlatformId> {
    range.into_iter().map(id).collect()
}

fn k(k: u8) -> Threshold {
    Threshold::new(k).unwrap()
}

fn at(seconds: u64) -> Instant {
    Instant::from_millis(seconds * 1000)
}

/// Polls every second, retries after two, abandons after ten without
/// progress.
fn timing() -> Timing {
    Timing {
        poll_interval: SECOND,
        retry_interval: 2 * SECOND,
        abandon_after: Some(10 * SECOND),
    }
}

/// The caller reaches every sled directly.
fn all_reachable(_: &PlatformId) -> bool {
    true
}

/// The epoch abandoned by a timeout.
fn expect_abandoned(timed_out: Option<TimedOut>) -> Abandoned {
    match timed_out {
        Some(TimedOut::Abandoned(abandoned)) => abandoned,
        other => panic!("not abandoned: {other:?}"),
    }
}

fn stored(mut nexus: Nexus) -> Nexus {
    store(&mut nexus);
    nexus
}

fn store(nexus: &mut Nexus) {
    if let Some(to_store) = nexus.state_to_store() {
        let revision = to_store.revision;
        nexus.acknowledge_stored(revision);
    }
}

fn fresh(sleds: usize) -> Nexus {
    stored(Nexus::new(RACK, Origin::Fresh, &ids(0..sleds), timing(), at(0)).unwrap())
}

/// The next due call, as (id, callee, method).
fn next(nexus: &mut Nexus, now: Instant) -> Option<(CallId, PlatformId, Method)> {
    nexus
        .poll_call(now)
        .map(|call| (call.id, call.to.clone(), call.kind.method()))
}

fn expect_call(nexus: &mut Nexus, now: Instant, to: &PlatformId, method: Method) -> CallId {
    let (call, callee, got) = next(nexus, now).expect("a call is due");
    assert_eq!((&callee, got), (to, method));
    call
}

/// The configuration a coordinator would report for the pending epoch.
fn config_of(nexus: &Nexus) -> Configuration {
    let pending = nexus.pending().unwrap();
    let members = pending.members().iter().cloned().collect::<Vec<_>>();
    config(
        pending.epoch(),
        &members,
        pending.threshold(),
        pending.coordinator().unwrap(),
    )
}

fn config(
    epoch: Epoch,
    members: &[PlatformId],
    threshold: Threshold,
    coordinator: &PlatformId,
) -> Configuration {
    let mut sorted = members.to_vec();
    sorted.sort();
    Configuration::new(ConfigFields {
        rack_id: RACK,
        epoch,
        coordinator: coordinator.clone(),
        members: sorted
            .iter()
            .map(|id| Member {
                id: id.clone(),
                share_digest: ShareDigest([1; 32]),
            })
            .collect(),
        threshold,
        encrypted_rack_secrets: None,
    })
    .unwrap()
}

fn preparing<'a>(epoch: Epoch, acked: &'a [PlatformId], config: &'a Configuration) -> Answer<'a> {
    Answer::CoordinatorStatus(Some(CoordinatorStatusRef {
        epoch,
        phase: CoordinatorPhase::Preparing,
        acked: MemberSubset::all(acked),
        config: Some(config),
    }))
}

/// Starts `members` (coordinated by the first) and has the coordinator
/// accept; returns the epoch and the time of the next poll.
fn start_running(nexus: &mut Nexus, members: &[PlatformId], threshold: u8, now: Instant) -> Epoch {
    let epoch = nexus
        .start(now, members, k(threshold), &members[0])
        .unwrap();
    assert_eq!(
        nexus.poll_call(now).map(|c| c.id),
        None,
        "nothing before storing"
    );
    store(nexus);
    let method = if nexus.is_on_lrtq() {
        Method::UpgradeFromLrtq
    } else {
        Method::Reconfigure
    };
    let call = expect_call(nexus, now, &members[0], method);
    let answer = match method {
        Method::UpgradeFromLrtq => Answer::UpgradeFromLrtq(Ok(())),
        _ => Answer::Reconfigure(Ok(ReconfigureOutcome::Started)),
    };
    assert_eq!(nexus.on_answer(now, call, answer), Reaction::Started);
    epoch
}

/// Runs `members` to a commit on every ack; returns the epoch.
fn commit(nexus: &mut Nexus, members: &[PlatformId], threshold: u8, now: Instant) -> Epoch {
    let epoch = start_running(nexus, members, threshold, now);
    let config = config_of(nexus);
    let poll = now.after(SECOND);
    let call = expect_call(nexus, poll, &members[0], Method::CoordinatorStatus);
    let reaction = nexus.on_answer(poll, call, preparing(epoch, members, &config));
    assert_eq!(reaction, Reaction::Committed(epoch));
    store(nexus);
    epoch
}

/// Answers every due call to a member with a commit.
fn confirm_all(nexus: &mut Nexus, now: Instant) {
    while let Some((call, _, method)) = next(nexus, now) {
        assert_eq!(method, Method::Commit);
        let answer = Answer::Commit(Ok(CommitOutcome::Committed));
        assert!(matches!(
            nexus.on_answer(now, call, answer),
            Reaction::Confirmed(_)
        ));
        store(nexus);
    }
}

#[test]
fn it_commits_at_k_plus_z_acks_and_not_one_before() {
    for (n, t) in [
        (3, 2),
        (4, 2),
        (5, 3),
        (6, 2),
        (7, 2),
        (8, 5),
        (10, 2),
        (32, 17),
    ] {
        let members = ids(0..n);
        let mut nexus = fresh(n);
        let epoch = start_running(&mut nexus, &members, t, at(0));
        let needed = acks_to_commit(n, k(t));
        assert_eq!(nexus.pending().unwrap().acks_needed(), needed);
        let config = config_of(&nexus);
        let mut now = at(0);
        for acks in [needed - 1, needed] {
            now = now.after(SECOND);
            let call = expect_call(&mut nexus, now, &members[0], Method::CoordinatorStatus);
            let reaction = nexus.on_answer(now, call, preparing(epoch, &members[..acks], &config));
            if acks < needed {
                assert_eq!(
                    reaction,
                    Reaction::Noted,
                    "{n} members, K = {t}, {acks} acks"
                );
                assert_eq!(nexus.pending().unwrap().acked().len(), acks);
            } else {
                assert_eq!(reaction, Reaction::Committed(epoch), "{n} members, K = {t}");
            }
        }
        let latest = nexus.latest_committed().unwrap();
        assert_eq!((latest.epoch(), latest.acked().len()), (epoch, needed));
        assert_eq!(nexus.latest_config(), Some(&config));
        assert!(nexus.pending().is_none());
    }
}

#[test]
fn acks_from_sleds_outside_the_request_are_not_counted() {
    let members = ids(0..3);
    let mut nexus = fresh(4);
    let epoch = start_running(&mut nexus, &members, 2, at(0));
    let config = config_of(&nexus);
    // K + Z = 2: the coordinator and a sled that is no member.
    let acked = [id(0), id(3)];
    let call = expect_call(&mut nexus, at(1), &id(0), Method::CoordinatorStatus);
    assert_eq!(
        nexus.on_answer(at(1), call, preparing(epoch, &acked, &config)),
        Reaction::Noted
    );
    assert!(nexus.latest_committed().is_none());
}

#[test]
fn no_call_leaves_before_its_decision_is_stored() {
    let members = ids(0..3);
    let mut nexus = Nexus::new(RACK, Origin::Fresh, &members, timing(), at(0)).unwrap();
    assert!(
        nexus.state_to_store().is_some(),
        "a new Nexus must be stored first"
    );
    nexus.start(at(0), &members, k(2), &id(0)).unwrap();
    assert!(nexus.poll_call(at(0)).is_none());
    let revision = nexus.state_to_store().unwrap().revision;
    nexus.acknowledge_stored(revision - 1);
    assert!(
        nexus.poll_call(at(0)).is_none(),
        "an older revision is not enough"
    );
    nexus.acknowledge_stored(revision);
    assert!(nexus.state_to_store().is_none());
    let call = expect_call(&mut nexus, at(0), &id(0), Method::Reconfigure);
    nexus.on_answer(
        at(0),
        call,
        Answer::Reconfigure(Ok(ReconfigureOutcome::Started)),
    );
    // The commit is a decision: no commit goes out before it is stored.
    let config = config_of(&nexus);
    let call = expect_call(&mut nexus, at(1), &id(0), Method::CoordinatorStatus);
    nexus.on_answer(at(1), call, preparing(Epoch(1), &members, &config));
    assert!(nexus.poll_call(at(1)).is_none());
    store(&mut nexus);
    assert_eq!(next(&mut nexus, at(1)).map(|c| c.2), Some(Method::Commit));
}

#[test]
fn a_commit_is_sent_to_every_member_and_prepare_and_commit_to_one_that_missed_it() {
    let members = ids(0..5);
    let mut nexus = fresh(5);
    let epoch = commit(&mut nexus, &members, 3, at(0));
    let now = at(2);
    let mut calls = Vec::new();
    while let Some((call, to, method)) = next(&mut nexus, now) {
        assert_eq!(method, Method::Commit);
        match nexus.call(call).unwrap().kind {
            CallKind::Commit(request) => {
                assert_eq!((request.rack_id, request.epoch), (RACK, epoch))
            }
            other => panic!("{other:?}"),
        }
        calls.push((call, to));
    }
    // One call to each member, none twice while in flight.
    let callees: Vec<_> = calls.iter().map(|(_, to)| to.clone()).collect();
    assert_eq!(callees, members);
    assert_eq!(nexus.calls_in_flight(), 5);
    for (call, to) in calls {
        let answer = if to == id(4) {
            Answer::Commit(Err(CommitError::NotPrepared(epoch)))
        } else {
            Answer::Commit(Ok(CommitOutcome::Committed))
        };
        let reaction = nexus.on_answer(now, call, answer);
        assert_eq!(reaction == Reaction::Confirmed(epoch), to != id(4));
        store(&mut nexus);
    }
    assert_eq!(nexus.counted_commit(&id(0)), Some(epoch));
    assert_eq!(nexus.counted_commit(&id(4)), None);
    assert_eq!(
        nexus
            .latest_committed()
            .unwrap()
            .unconfirmed()
            .iter()
            .collect::<Vec<_>>(),
        [&id(4)]
    );
    // The member that did not prepare gets the configuration at once.
    let call = expect_call(&mut nexus, now, &id(4), Method::PrepareAndCommit);
    match nexus.call(call).unwrap().kind {
        CallKind::PrepareAndCommit(config) => assert_eq!(Some(config), nexus.latest_config()),
        other => panic!("{other:?}"),
    }
    assert_eq!(nexus.stats().prepare_and_commits, 1);
    let answer = Answer::PrepareAndCommit(Ok(PrepareAndCommitOutcome::ComputingShare));
    assert_eq!(nexus.on_answer(now, call, answer), Reaction::Noted);
    // It computes its share meanwhile; asked to confirm after a retry.
    assert!(next(&mut nexus, now.after(SECOND)).is_none());
    let later = now.after(2 * SECOND);
    let call = expect_call(&mut nexus, later, &id(4), Method::Commit);
    let answer = Answer::Commit(Ok(CommitOutcome::AlreadyCommitted));
    assert_eq!(
        nexus.on_answer(later, call, answer),
        Reaction::Confirmed(epoch)
    );
    assert_eq!(nexus.counted_commit(&id(4)), Some(epoch));
    assert!(nexus.latest_committed().unwrap().unconfirmed().is_empty());
    assert!(next(&mut nexus, at(100)).is_none());
    assert_eq!(nexus.stats().member_commits, 5);
}

#[test]
fn an_unreachable_member_is_told_again_after_the_retry_interval() {
    let members = ids(0..3);
    let mut nexus = fresh(3);
    commit(&mut nexus, &members, 2, at(0));
    let call = expect_call(&mut nexus, at(2), &id(0), Method::Commit);
    assert_eq!(
        nexus.on_answer(at(2), call, Answer::Unreachable),
        Reaction::Noted
    );
    confirm_all(&mut nexus, at(2));
    assert_eq!(nexus.poll_timeout(), Some(at(4)));
    assert!(next(&mut nexus, at(3)).is_none());
    expect_call(&mut nexus, at(4), &id(0), Method::Commit);
}

#[test]
fn a_stuck_coordination_is_abandoned_after_the_deadline_for_the_next_coordinator() {
    let members = ids(0..4);
    let mut nexus = fresh(4);
    let first = nexus.start(at(0), &members, k(2), &id(1)).unwrap();
    store(&mut nexus);
    let mut now = at(0);
    let mut stale = None;
    // The coordinator never answers; before the deadline nothing changes.
    while now < at(10) {
        if let Some((call, _, method)) = next(&mut nexus, now) {
            assert_eq!(method, Method::Reconfigure);
            stale = Some(call);
            assert_eq!(
                nexus.on_answer(now, call, Answer::Unreachable),
                Reaction::Noted
            );
        }
        assert_eq!(nexus.handle_timeout(now, all_reachable), None);
        now = now.after(SECOND);
    }
    assert_eq!(nexus.poll_timeout(), Some(at(10)));
    let abandoned = expect_abandoned(nexus.handle_timeout(at(10), all_reachable));
    assert_eq!(
        abandoned,
        Abandoned {
            epoch: first,
            next: Epoch(first.0 + 1)
        }
    );
    let pending = nexus.pending().unwrap();
    assert_eq!(
        (pending.epoch(), pending.coordinator()),
        (abandoned.next, Some(&id(2)))
    );
    assert_eq!(pending.phase(), Phase::Starting);
    assert_eq!(nexus.stats().abandoned_automatically, 1);
    store(&mut nexus);
    let call = expect_call(&mut nexus, at(10), &id(2), Method::Reconfigure);
    match nexus.call(call).unwrap().kind {
        CallKind::Reconfigure(msg) => {
            assert_eq!(
                (msg.epoch, msg.last_committed_epoch),
                (abandoned.next, None)
            );
            assert_eq!(msg.members.as_slice(), &members[..]);
        }
        other => panic!("{other:?}"),
    }
    // A late answer to a call about the old epoch is ignored.
    let late = Answer::Reconfigure(Ok(ReconfigureOutcome::Started));
    assert_eq!(
        nexus.on_answer(at(10), stale.unwrap(), late),
        Reaction::Ignored
    );
}

#[test]
fn a_coordinator_whose_status_stops_moving_is_abandoned_and_one_that_moves_is_not() {
    let members = ids(0..5);
    let mut nexus = fresh(5);
    let epoch = start_running(&mut nexus, &members, 3, at(0));
    let config = config_of(&nexus);
    // Acks come in one by one (K + Z = 4): progress, no abandon.
    for acks in 1..=3 {
        let now = at(8 * acks as u64);
        let call = expect_call(&mut nexus, now, &id(0), Method::CoordinatorStatus);
        nexus.on_answer(now, call, preparing(epoch, &members[..acks], &config));
        assert_eq!(nexus.handle_timeout(now, all_reachable), None);
    }
    // Then the same status for ten seconds from the last ack (at 24 s).
    for now in (25..=33).map(at) {
        let call = expect_call(&mut nexus, now, &id(0), Method::CoordinatorStatus);
        nexus.on_answer(now, call, preparing(epoch, &members[..3], &config));
        assert_eq!(nexus.handle_timeout(now, all_reachable), None, "{now:?}");
    }
    let abandoned = expect_abandoned(nexus.handle_timeout(at(34), all_reachable));
    assert_eq!(abandoned.epoch, epoch);
    assert_eq!(nexus.pending().unwrap().coordinator(), Some(&id(1)));
}

#[test]
fn a_coordinator_that_knows_a_newer_epoch_is_stuck_until_abandoned() {
    let members = ids(0..3);
    for automatic in [false, true] {
        let mut nexus = fresh(3);
        nexus.timing.abandon_after = automatic.then_some(10 * SECOND);
        nexus.start(at(0), &members, k(2), &id(2)).unwrap();
        store(&mut nexus);
        let call = expect_call(&mut nexus, at(0), &id(2), Method::Reconfigure);
        let refused =
            Answer::Reconfigure(Err(ReconfigureError::EpochNotNewer { latest: Epoch(1) }));
        assert_eq!(nexus.on_answer(at(0), call, refused), Reaction::Stuck);
        assert_eq!(
            nexus.pending().unwrap().phase(),
            Phase::Stuck(Stuck::EpochNotNewer)
        );
        assert!(
            next(&mut nexus, at(50)).is_none(),
            "nothing to ask a stuck coordinator"
        );
        let timed_out = nexus.handle_timeout(at(1), all_reachable);
        assert_eq!(timed_out.is_some(), automatic);
        if automatic {
            // Wrapping past the last eligible sled.
            assert_eq!(nexus.pending().unwrap().coordinator(), Some(&id(0)));
        } else {
            let epoch = nexus.abandon(at(1), &id(1)).unwrap();
            assert_eq!(epoch, Epoch(2));
        }
        assert_eq!(nexus.highest_started(), Epoch(2));
    }
}

/// The coordinator of the pending epoch.
fn coordinator(nexus: &Nexus) -> PlatformId {
    nexus.pending().unwrap().coordinator().unwrap().clone()
}

#[test]
fn automatic_abandonment_skips_members_the_caller_does_not_reach() {
    let members = ids(0..4);
    let mut nexus = fresh(4);
    let first = nexus.start(at(0), &members, k(2), &id(1)).unwrap();
    store(&mut nexus);
    // Sled 2 is next in order, but the caller reaches it only through a
    // proxy: a coordinator there could never be asked to run the epoch.
    let reachable = |sled: &PlatformId| *sled != id(2);
    assert_eq!(nexus.next_coordinator(all_reachable), Some(&id(2)));
    let abandoned = expect_abandoned(nexus.handle_timeout(at(10), reachable));
    assert_eq!(abandoned.epoch, first);
    assert_eq!(coordinator(&nexus), id(3));
    // An operator's abandon picks in the same order.
    assert_eq!(nexus.next_coordinator(reachable), Some(&id(0)));
    // Then wrapping to the first, then on to sled 1, never to sled 2.
    expect_abandoned(nexus.handle_timeout(at(20), reachable));
    assert_eq!(coordinator(&nexus), id(0));
    expect_abandoned(nexus.handle_timeout(at(30), reachable));
    assert_eq!(coordinator(&nexus), id(1));
    expect_abandoned(nexus.handle_timeout(at(40), reachable));
    assert_eq!(coordinator(&nexus), id(3));
    assert_eq!(nexus.stats().abandoned_automatically, 4);
    assert_eq!(nexus.stats().abandon_held, 0);
    // The only member reached is the current coordinator: it is asked
    // again at the next epoch, as when it is the only one that may.
    let only_current = |sled: &PlatformId| *sled == id(3);
    let again = expect_abandoned(nexus.handle_timeout(at(50), only_current));
    assert_eq!(coordinator(&nexus), id(3));
    assert_eq!(again.next, nexus.highest_started());
}

#[test]
fn with_no_member_the_caller_reaches_the_epoch_is_held_and_checked_again_later() {
    let members = ids(0..3);
    let nobody = |_: &PlatformId| false;
    let mut nexus = fresh(3);
    let epoch = nexus.start(at(0), &members, k(2), &id(0)).unwrap();
    store(&mut nexus);
    assert_eq!(nexus.poll_timeout(), Some(at(0)), "the first call is due");
    assert_eq!(
        nexus.handle_timeout(at(10), nobody),
        Some(TimedOut::Held { epoch })
    );
    assert_eq!(nexus.next_coordinator(nobody), None);
    // Kept as it was: no decision, nothing to store, counted once.
    assert_eq!(
        (nexus.highest_started(), coordinator(&nexus)),
        (epoch, id(0))
    );
    assert!(nexus.state_to_store().is_none());
    assert_eq!(nexus.stats().abandon_held, 1);
    assert_eq!(nexus.stats().abandoned, 0);
    // Due again one deadline later, not at once (a caller waiting on
    // `poll_timeout` does not spin), and not counted again before.
    let call = expect_call(&mut nexus, at(10), &id(0), Method::Reconfigure);
    nexus.on_answer(at(10), call, Answer::Unreachable);
    assert_eq!(nexus.poll_timeout(), Some(at(12)), "the retry of the call");
    expect_call(&mut nexus, at(12), &id(0), Method::Reconfigure);
    assert_eq!(nexus.poll_timeout(), Some(at(20)));
    assert_eq!(nexus.handle_timeout(at(19), nobody), None);
    assert_eq!(nexus.stats().abandon_held, 1);
    // A route came back meanwhile: the epoch is abandoned for it.
    let reachable = |sled: &PlatformId| *sled == id(2);
    expect_abandoned(nexus.handle_timeout(at(20), reachable));
    assert_eq!(coordinator(&nexus), id(2));
    assert_eq!(nexus.stats().abandoned_automatically, 1);
}

#[test]
fn a_stuck_coordinator_with_no_member_the_caller_reaches_is_held_without_spinning() {
    let members = ids(0..3);
    let nobody = |_: &PlatformId| false;
    let mut nexus = fresh(3);
    let epoch = nexus.start(at(0), &members, k(2), &id(2)).unwrap();
    store(&mut nexus);
    let call = expect_call(&mut nexus, at(0), &id(2), Method::Reconfigure);
    let refused = Answer::Reconfigure(Err(ReconfigureError::EpochNotNewer { latest: Epoch(1) }));
    assert_eq!(nexus.on_answer(at(0), call, refused), Reaction::Stuck);
    // A stuck coordinator is due at once; held, it is due a deadline on.
    assert_eq!(nexus.poll_timeout(), Some(at(0)));
    assert_eq!(
        nexus.handle_timeout(at(1), nobody),
        Some(TimedOut::Held { epoch })
    );
    assert_eq!(nexus.poll_timeout(), Some(at(11)));
    assert_eq!(nexus.handle_timeout(at(5), nobody), None);
    assert_eq!(
        nexus.handle_timeout(at(11), nobody),
        Some(TimedOut::Held { epoch })
    );
    assert_eq!(nexus.stats().abandon_held, 2);
    expect_abandoned(nexus.handle_timeout(at(21), all_reachable));
    assert_eq!(coordinator(&nexus), id(0));
}

#[test]
fn a_coordinator_not_ready_is_asked_again_after_the_retry_interval() {
    let members = ids(0..3);
    let mut nexus = fresh(3);
    commit(&mut nexus, &members, 2, at(0));
    confirm_all(&mut nexus, at(2));
    nexus.start(at(3), &members, k(2), &id(1)).unwrap();
    store(&mut nexus);
    for not_ready in [
        ReconfigureError::LastCommittedEpochMismatch {
            node: None,
            request: Some(Epoch(1)),
        },
        ReconfigureError::ComputingShare(Epoch(1)),
    ] {
        let call = expect_call(&mut nexus, at(3), &id(1), Method::Reconfigure);
        let answer = Answer::Reconfigure(Err(not_ready));
        assert_eq!(nexus.on_answer(at(3), call, answer), Reaction::Noted);
        assert!(next(&mut nexus, at(4)).is_none());
        assert_eq!(nexus.pending().unwrap().phase(), Phase::Starting);
        // Time passes only for the next round.
        nexus.progress.due = at(3);
    }
}

#[test]
fn a_coordinator_that_lost_its_coordination_is_asked_again_at_once() {
    let members = ids(0..3);
    let mut nexus = fresh(3);
    let epoch = start_running(&mut nexus, &members, 2, at(0));
    let call = expect_call(&mut nexus, at(1), &id(0), Method::CoordinatorStatus);
    assert_eq!(
        nexus.on_answer(at(1), call, Answer::CoordinatorStatus(None)),
        Reaction::Noted
    );
    let call = expect_call(&mut nexus, at(1), &id(0), Method::Reconfigure);
    match nexus.call(call).unwrap().kind {
        CallKind::Reconfigure(msg) => assert_eq!(msg.epoch, epoch),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_is_committed_after_a_newer_epoch_started() {
    let members = ids(0..3);
    let mut nexus = fresh(3);
    let old = start_running(&mut nexus, &members, 2, at(0));
    let old_config = config_of(&nexus);
    let poll = expect_call(&mut nexus, at(1), &id(0), Method::CoordinatorStatus);
    let new = nexus.abandon(at(1), &id(1)).unwrap();
    assert!(new > old);
    store(&mut nexus);
    // Every ack of the old epoch, in the answer to the old poll: ignored.
    let answer = preparing(old, &members, &old_config);
    assert_eq!(nexus.on_answer(at(1), poll, answer), Reaction::Ignored);
    // The new coordinator still reporting the old epoch: not a commit.
    let call = expect_call(&mut nexus, at(1), &id(1), Method::Reconfigure);
    nexus.on_answer(
        at(1),
        call,
        Answer::Reconfigure(Ok(ReconfigureOutcome::Started)),
    );
    let call = expect_call(&mut nexus, at(2), &id(1), Method::CoordinatorStatus);
    let answer = preparing(old, &members, &old_config);
    assert_eq!(nexus.on_answer(at(2), call, answer), Reaction::Noted);
    assert!(nexus.latest_committed().is_none());
    assert_eq!(nexus.pending().unwrap().epoch(), new);
    // A start for the old epoch cannot come back either.
    assert_eq!(
        nexus.start(at(2), &members, k(2), &id(0)),
        Err(StartError::Pending(new))
    );
}

#[test]
fn a_status_with_another_configuration_is_refused() {
    let members = ids(0..4);
    let mut nexus = fresh(4);
    let epoch = start_running(&mut nexus, &members, 2, at(0));
    for wrong in [
        config(epoch, &members, k(3), &id(0)),
        config(epoch, &members[..3], k(2), &id(0)),
        config(epoch, &members, k(2), &id(1)),
    ] {
        let mut nexus = fresh(4);
        start_running(&mut nexus, &members, 2, at(0));
        let call = expect_call(&mut nexus, at(1), &id(0), Method::CoordinatorStatus);
        let reaction = nexus.on_answer(at(1), call, preparing(epoch, &members, &wrong));
        assert_eq!(
            reaction,
            Reaction::Refused(NodeRefusal::StatusMismatch(epoch))
        );
        assert_eq!(
            nexus.pending().unwrap().phase(),
            Phase::Stuck(Stuck::Refused)
        );
        assert!(nexus.latest_committed().is_none());
    }
}

#[test]
fn a_removed_sled_is_never_added_back() {
    let mut nexus = fresh(5);
    commit(&mut nexus, &ids(0..5), 2, at(0));
    confirm_all(&mut nexus, at(2));
    let without_4 = ids(0..4);
    commit(&mut nexus, &without_4, 2, at(3));
    assert!(nexus.removed().contains(&id(4)));
    assert!(!nexus.members().contains(&id(4)));
    let back = ids(0..5);
    assert_eq!(
        nexus.start(at(9), &back, k(2), &id(0)),
        Err(StartError::Removed(id(4)))
    );
    // A new sled is fine.
    let mut grown = without_4.clone();
    grown.push(id(9));
    assert!(nexus.start(at(9), &grown, k(2), &id(0)).is_ok());
    assert_eq!(nexus.stats().additions, 1);
    assert_eq!(nexus.stats().removals, 1);
}

#[test]
fn start_refuses_what_cannot_run() {
    let mut nexus = fresh(3);
    let members = ids(0..4);
    let repeated = [id(0), id(1), id(1), id(2)];
    assert_eq!(
        nexus.start(at(0), &repeated, k(2), &id(0)),
        Err(StartError::Members)
    );
    assert_eq!(
        nexus.start(at(0), &members, k(4), &id(0)),
        Err(StartError::Threshold {
            threshold: k(4),
            members: 4
        })
    );
    assert_eq!(
        nexus.start(at(0), &members[..3], k(2), &id(3)),
        Err(StartError::Coordinator(id(3)))
    );
    assert!(
        nexus.pending().is_none(),
        "a refused start leaves nothing pending"
    );
    assert!(nexus.state_to_store().is_none(), "and decides nothing");
    commit(&mut nexus, &members[..3], 2, at(0));
    // After a commit, only a member of it can coordinate (it holds a share).
    assert_eq!(
        nexus.start(at(5), &members, k(2), &id(3)),
        Err(StartError::Coordinator(id(3)))
    );
    assert!(nexus.may_coordinate(&id(2)) && !nexus.may_coordinate(&id(3)));
}

#[test]
fn an_lrtq_rack_upgrades_first_coordinated_by_an_lrtq_sled() {
    let lrtq = ids(0..4);
    let mut nexus = stored(Nexus::new(RACK, Origin::Lrtq, &lrtq, timing(), at(0)).unwrap());
    let mut grown = lrtq.clone();
    grown.push(id(4));
    assert_eq!(
        nexus.start(at(0), &grown, k(2), &id(4)),
        Err(StartError::Coordinator(id(4)))
    );
    let epoch = nexus.start(at(0), &grown, k(2), &id(3)).unwrap();
    assert_eq!(epoch, Epoch(2), "LRTQ is epoch 1");
    store(&mut nexus);
    let call = expect_call(&mut nexus, at(0), &id(3), Method::UpgradeFromLrtq);
    match nexus.call(call).unwrap().kind {
        CallKind::UpgradeFromLrtq(msg) => {
            assert_eq!((msg.rack_id, msg.epoch, msg.threshold), (RACK, epoch, k(2)));
            assert_eq!(msg.members.as_slice(), &grown[..]);
        }
        other => panic!("{other:?}"),
    }
    let refused = Answer::UpgradeFromLrtq(Err(LrtqUpgradeError::NoLrtqData));
    let reaction = nexus.on_answer(at(0), call, refused);
    assert_eq!(
        reaction,
        Reaction::Refused(NodeRefusal::UpgradeFromLrtq(LrtqUpgradeError::NoLrtqData))
    );
    nexus.abandon(at(1), &id(0)).unwrap();
    store(&mut nexus);
    let call = expect_call(&mut nexus, at(1), &id(0), Method::UpgradeFromLrtq);
    nexus.on_answer(at(1), call, Answer::UpgradeFromLrtq(Ok(())));
    let config = config_of(&nexus);
    let call = expect_call(&mut nexus, at(2), &id(0), Method::CoordinatorStatus);
    let reaction = nexus.on_answer(at(2), call, preparing(Epoch(3), &grown, &config));
    assert_eq!(reaction, Reaction::Committed(Epoch(3)));
    assert!(!nexus.is_on_lrtq());
    assert_eq!(nexus.stats().upgrades, 1);
    assert_eq!(nexus.members().len(), 5);
}

#[test]
fn an_answer_of_the_wrong_kind_counts_as_unreachable() {
    let members = ids(0..3);
    let mut nexus = fresh(3);
    nexus.start(at(0), &members, k(2), &id(0)).unwrap();
    store(&mut nexus);
    let call = expect_call(&mut nexus, at(0), &id(0), Method::Reconfigure);
    let wrong = Answer::Commit(Ok(CommitOutcome::Committed));
    assert_eq!(
        nexus.on_answer(at(0), call, wrong),
        Reaction::Refused(NodeRefusal::WrongAnswer)
    );
    assert_eq!(nexus.pending().unwrap().phase(), Phase::Starting);
    assert_eq!(
        nexus.on_answer(at(0), call, Answer::Unreachable),
        Reaction::Ignored
    );
    assert_eq!(nexus.stats().ignored, 1);
}

#[test]
fn a_member_refusal_is_reported_and_retried() {
    let members = ids(0..3);
    let mut nexus = fresh(3);
    let epoch = commit(&mut nexus, &members, 2, at(0));
    let call = expect_call(&mut nexus, at(2), &id(0), Method::Commit);
    let answer = Answer::Commit(Err(CommitError::NotPrepared(epoch)));
    nexus.on_answer(at(2), call, answer);
    let call = expect_call(&mut nexus, at(2), &id(0), Method::PrepareAndCommit);
    let error = PrepareAndCommitError::NotAMember;
    let reaction = nexus.on_answer(at(2), call, Answer::PrepareAndCommit(Err(error.clone())));
    assert_eq!(
        reaction,
        Reaction::Refused(NodeRefusal::PrepareAndCommit(error))
    );
    assert_eq!(nexus.stats().refused, 1);
    // Asked to commit again after the retry interval.
    confirm_all(&mut nexus, at(2));
    expect_call(&mut nexus, at(4), &id(0), Method::Commit);
}

#[test]
fn the_stored_state_restores_to_the_same_decisions() {
    let mut nexus = fresh(5);
    let members = ids(0..5);
    let first = commit(&mut nexus, &members, 3, at(0));
    let call = expect_call(&mut nexus, at(2), &id(0), Method::Commit);
    nexus.on_answer(at(2), call, Answer::Commit(Ok(CommitOutcome::Committed)));
    store(&mut nexus);
    let mut next_members = members[1..].to_vec();
    next_members.push(id(7));
    nexus.start(at(3), &next_members, k(2), &id(1)).unwrap();
    let state = nexus.state_to_store().unwrap().state;

    let mut buf = [0u8; 32 * 1024];
    let bytes = postcard::to_slice(state, &mut buf).unwrap();
    let decoded: State = postcard::from_bytes(bytes).unwrap();
    assert_eq!(&decoded, state);
    let json = serde_json::to_string(state).unwrap();
    assert_eq!(&serde_json::from_str::<State>(&json).unwrap(), state);

    let mut restored = Nexus::restore(decoded, timing(), at(50)).unwrap();
    assert!(
        restored.state_to_store().is_none(),
        "a restored state is stored"
    );
    assert_eq!(restored.latest_committed().unwrap().epoch(), first);
    assert_eq!(restored.counted_commit(&id(0)), Some(first));
    assert_eq!(restored.pending().unwrap().epoch(), Epoch(2));
    assert_eq!(restored.highest_started(), Epoch(2));
    assert!(restored.removed().is_empty());
    // The pending epoch is asked for again; unconfirmed members told again.
    let mut calls = Vec::new();
    while let Some((_, to, method)) = next(&mut restored, at(50)) {
        calls.push((to, method));
    }
    assert_eq!(calls[0], (id(1), Method::Reconfigure));
    assert_eq!(calls.len(), 1 + 4);
}

#[test]
fn a_corrupt_stored_state_is_refused() {
    let mut nexus = fresh(3);
    commit(&mut nexus, &ids(0..3), 2, at(0));
    let json = serde_json::to_string(nexus.state()).unwrap();
    // The latest configuration no longer matches the latest commit.
    let corrupt = json.replace("\"highest_started\":1", "\"highest_started\":0");
    assert_ne!(corrupt, json);
    let state: State = serde_json::from_str(&corrupt).unwrap();
    assert_eq!(
        Nexus::restore(state, timing(), at(0)).err(),
        Some(RestoreError::Epochs)
    );
}

#[test]
fn the_history_forgets_its_oldest_commit_when_full() {
    let members = ids(0..3);
    let mut nexus = fresh(3);
    let mut now = at(0);
    for _ in 0..=MAX_HISTORY {
        commit(&mut nexus, &members, 2, now);
        confirm_all(&mut nexus, now.after(2 * SECOND));
        now = now.after(10 * SECOND);
    }
    assert_eq!(nexus.history().count(), MAX_HISTORY);
    assert!(nexus.forgot_epoch(Epoch(1)) && !nexus.forgot_epoch(Epoch(2)));
    assert!(nexus.committed_members(Epoch(1)).is_none());
    assert_eq!(nexus.history().next().unwrap().epoch(), Epoch(2));
}
