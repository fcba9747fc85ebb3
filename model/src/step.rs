//! The model's alphabet: every step that can be taken in a state, as a
//! finite list, and how each becomes the harness's actions.
//!
//! A message in flight is named by what it is (sender, receiver, a hash of
//! its bytes), not by where it sits in the network's list, so the same
//! step means the same thing in every state where that message is in
//! flight, and identical copies are one choice. Delivering a message whose
//! link is down is the same as dropping it, so only the drop is offered.

use std::fmt;
use std::hash::{Hash, Hasher};

use siphasher::sip::SipHasher13;
use tq_core::limits::MIN_MEMBERS;
use tq_core::messages::Body;
use tq_harness::network::Message;
use tq_harness::{Action, Change, SledMask, Violation};

use crate::Cluster;
use crate::bounds::Bounds;

/// A message in flight, by what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Msg {
    /// Sender.
    pub from: u8,
    /// Receiver.
    pub to: u8,
    /// Its kind's wire tag (`u8::MAX` if it has none).
    pub kind: u8,
    /// A hash of its bytes.
    pub key: u64,
}

impl Msg {
    fn of(msg: &Message<'_>) -> Self {
        let (k0, k1) = crate::fingerprint::MESSAGE_KEY;
        let mut h = SipHasher13::new_with_keys(k0, k1);
        msg.bytes.hash(&mut h);
        let kind = KINDS.iter().position(|k| *k == msg.kind());
        Self {
            from: msg.from,
            to: msg.to,
            kind: kind.and_then(|k| u8::try_from(k).ok()).unwrap_or(u8::MAX),
            key: h.finish(),
        }
    }

    fn kind_name(&self) -> &'static str {
        KINDS.get(usize::from(self.kind)).copied().unwrap_or("?")
    }
}

const KINDS: &[&str] = Body::<(), (), ()>::KINDS;

/// One step of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Deliver a message (one copy).
    Deliver(Msg),
    /// Lose a message (one copy).
    Drop(Msg),
    /// Put another copy of a message in flight.
    Duplicate(Msg),
    /// Crash a sled: it keeps its disk only.
    Crash(u8),
    /// Boot a crashed sled from its disk.
    Restart(u8),
    /// Reset the connection between two sleds: both see it drop and come
    /// back, and re-send what they still need from each other.
    Reconnect(u8, u8),
    /// Nexus starts a reconfiguration (the harness's parameters).
    Start {
        /// Who joins or leaves.
        change: Change,
        /// Which eligible member coordinates.
        coordinator: u8,
        /// Which threshold.
        threshold: u8,
    },
    /// Nexus polls the coordinator (and commits on enough acks).
    Poll,
    /// Nexus tells the n-th member that has not confirmed the latest
    /// commit to commit (or hands it the configuration).
    Commit(u8),
    /// Nexus abandons the pending epoch for the next one, with the n-th
    /// other eligible coordinator.
    Abandon(u8),
    /// A sled loads the rack secret of the latest committed epoch.
    Load(u8),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = |f: &mut fmt::Formatter<'_>, verb: &str, m: &Msg| {
            write!(
                f,
                "{verb} {} {} -> {} (#{:04x})",
                m.kind_name(),
                m.from,
                m.to,
                m.key & 0xffff
            )
        };
        match self {
            Self::Deliver(m) => msg(f, "deliver", m),
            Self::Drop(m) => msg(f, "drop", m),
            Self::Duplicate(m) => msg(f, "duplicate", m),
            Self::Crash(s) => write!(f, "crash sled {s}"),
            Self::Restart(s) => write!(f, "restart sled {s}"),
            Self::Reconnect(a, b) => write!(f, "reset the connection {a} <-> {b}"),
            Self::Start {
                change,
                coordinator,
                threshold,
            } => write!(
                f,
                "Nexus starts a reconfiguration ({change:?}, coordinator #{coordinator}, threshold #{threshold})"
            ),
            Self::Poll => write!(f, "Nexus polls the coordinator"),
            Self::Commit(n) => write!(f, "Nexus tells waiting member #{n} to commit"),
            Self::Abandon(n) => write!(
                f,
                "Nexus abandons the pending epoch (next coordinator #{n})"
            ),
            Self::Load(s) => write!(f, "sled {s} loads the latest rack secret"),
        }
    }
}

fn bit(index: usize) -> SledMask {
    1 << index
}

fn count(mask: SledMask) -> u8 {
    u8::try_from(mask.count_ones()).unwrap_or(u8::MAX)
}

/// The `n`-th set bit of `mask`, modulo the count (as the harness picks).
fn nth_bit(mask: SledMask, n: usize) -> Option<usize> {
    let ones = usize::try_from(mask.count_ones()).ok()?;
    (ones > 0).then(|| (0..32).filter(|i| mask & bit(*i) != 0).nth(n % ones))?
}

/// Every step enabled in `cluster` within `bounds`, in a fixed order.
pub fn enabled(cluster: &Cluster, bounds: &Bounds, out: &mut Vec<Step>) {
    out.clear();
    let sleds = cluster.sled_count();
    let up = |s: usize| cluster.sled(s).is_some_and(|sled| sled.is_up());
    // Messages: each distinct one once.
    let in_flight = cluster.network().len();
    let mut distinct: Vec<(Msg, usize)> = Vec::new();
    for msg in cluster.network().in_flight() {
        let key = Msg::of(&msg);
        match distinct.iter_mut().find(|(m, _)| *m == key) {
            Some((_, copies)) => *copies += 1,
            None => distinct.push((key, 1)),
        }
    }
    for &(msg, copies) in &distinct {
        if cluster.is_connected(usize::from(msg.from), usize::from(msg.to)) {
            out.push(Step::Deliver(msg));
        }
        out.push(Step::Drop(msg));
        if copies < bounds.max_copies && in_flight < bounds.max_in_flight {
            out.push(Step::Duplicate(msg));
        }
    }
    // Crashes and restarts.
    let down = (0..sleds).filter(|s| !up(*s)).count();
    for s in 0..sleds {
        let s8 = u8::try_from(s).unwrap_or(u8::MAX);
        if !up(s) {
            out.push(Step::Restart(s8));
        } else if down < bounds.max_down {
            out.push(Step::Crash(s8));
        }
    }
    if bounds.reconnects {
        for a in 0..sleds {
            for b in a + 1..sleds {
                if up(a) && up(b) {
                    out.push(Step::Reconnect(a as u8, b as u8));
                }
            }
        }
    }
    nexus_steps(cluster, bounds, out);
    if bounds.loads && cluster.nexus().latest_committed().is_some() {
        for s in (0..sleds).filter(|s| up(*s)) {
            out.push(Step::Load(s as u8));
        }
    }
}

fn nexus_steps(cluster: &Cluster, bounds: &Bounds, out: &mut Vec<Step>) {
    let nexus = cluster.nexus();
    let machine = nexus.machine();
    let sleds = cluster.sled_count();
    let mask_of = |pick: &dyn Fn(usize) -> bool| {
        (0..sleds)
            .filter(|i| pick(*i))
            .fold(0, |mask, i| mask | bit(i))
    };
    let may_coordinate = mask_of(&|i| cluster.id(i).is_some_and(|id| machine.may_coordinate(id)));
    let below_bound = machine.highest_started().0 < bounds.max_epoch;
    match nexus.pending() {
        Some(pending) => {
            out.push(Step::Poll);
            if below_bound {
                let eligible = pending.members & may_coordinate;
                let others = eligible & !pending.coordinator.map_or(0, bit);
                let pool = if others == 0 { eligible } else { others };
                out.extend((0..count(pool)).map(Step::Abandon));
            }
        }
        None if below_bound => {
            let current = nexus.members();
            let removed = mask_of(&|i| {
                cluster
                    .id(i)
                    .is_some_and(|id| machine.removed().contains(id))
            });
            let spares = mask_of(&|_| true) & !current & !removed;
            let mut changes = vec![(Change::Same, current)];
            for n in 0..count(spares) {
                if let Some(added) = nth_bit(spares, usize::from(n)) {
                    changes.push((Change::Add(n), current | bit(added)));
                }
            }
            if current.count_ones() as usize > MIN_MEMBERS {
                for n in 0..count(current) {
                    if let Some(gone) = nth_bit(current, usize::from(n))
                        && (current & !bit(gone)) & may_coordinate != 0
                    {
                        changes.push((Change::Remove(n), current & !bit(gone)));
                    }
                }
            }
            for (change, members) in changes {
                let thresholds = count(members).saturating_sub(2).max(1);
                for coordinator in 0..count(members & may_coordinate) {
                    for threshold in 0..thresholds {
                        out.push(Step::Start {
                            change,
                            coordinator,
                            threshold,
                        });
                    }
                }
            }
        }
        None => {}
    }
    if let Some(latest) = nexus.latest_committed() {
        let waiting = latest.members & !nexus.commit_confirmed();
        out.extend((0..count(waiting)).map(Step::Commit));
    }
}

/// The harness actions that take `step` in `cluster`; `None` if the step
/// is not possible there (a message no longer in flight).
pub fn actions(cluster: &Cluster, step: &Step) -> Option<Vec<Action>> {
    let index_of = |m: &Msg| {
        cluster
            .network()
            .in_flight()
            .position(|msg| Msg::of(&msg) == *m)
            .and_then(|i| u8::try_from(i).ok())
    };
    Some(match *step {
        Step::Deliver(m) => vec![Action::Deliver(index_of(&m)?)],
        Step::Drop(m) => vec![Action::Drop(index_of(&m)?)],
        Step::Duplicate(m) => vec![Action::Duplicate(index_of(&m)?)],
        Step::Crash(s) => vec![Action::Crash(s)],
        Step::Restart(s) => vec![Action::Restart(s)],
        Step::Reconnect(a, b) => vec![Action::Disconnect(a, b), Action::Connect(a, b)],
        Step::Start {
            change,
            coordinator,
            threshold,
        } => vec![Action::Reconfigure {
            change,
            coordinator,
            threshold,
        }],
        Step::Poll => vec![Action::NexusPoll],
        Step::Commit(n) => vec![Action::NexusCommit(n)],
        Step::Abandon(n) => vec![Action::NexusAbandon(n)],
        Step::Load(s) => vec![Action::LoadSecret { sled: s, back: 0 }],
    })
}

/// What taking a step did.
#[derive(Debug)]
pub enum Taken {
    /// Done; these harness actions took it.
    Done(Vec<Action>),
    /// The step was not possible in this state.
    Impossible,
}

/// Takes `step` in `cluster`: reseeds every running sled's RNG from its
/// own fingerprint and the step (see [`crate::fingerprint`]), then
/// applies the harness actions, each checked by the harness's checker.
pub fn take(cluster: &mut Cluster, step: &Step) -> Result<Taken, Violation> {
    let Some(actions) = actions(cluster, step) else {
        return Ok(Taken::Impossible);
    };
    crate::fingerprint::reseed(cluster, step)?;
    for action in &actions {
        cluster.apply(action)?;
    }
    Ok(Taken::Done(actions))
}
