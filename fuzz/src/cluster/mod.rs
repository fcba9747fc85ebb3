//! The stateful targets: the fuzzer's bytes drive a `tq_harness::Cluster`.
//!
//! Two targets read the same input format:
//!
//! - `cluster` ([`run`]): racks of 3 to 32 sleds, the safety invariants
//!   after every step, and the liveness check at the end;
//! - `cluster_safety` ([`run_safety`]): racks of 3 to 8 sleds only (in a
//!   cluster sized for 8), the safety invariants after every step, and at
//!   the end a comparison of every sled's state with its disk, but no
//!   liveness check (healing a rack and loading every secret costs far
//!   more than the steps), and an LRTQ rack's ledger lists only the
//!   members' shares ([`Ledger`]): many more inputs a second, for the
//!   invariants.
//!
//! # Input format
//!
//! - byte 0, the rack: bit 0 set = an LRTQ rack (else fresh). With
//!   `f = (b >> 1) & 7` below 6, sleds `3 + f` (3 to 8) and initial
//!   members `3 + (b >> 4) % (sleds - 2)`. With `f` 6 or 7, a large rack:
//!   the next byte `s` gives sleds `9 + s % 24` (9 to 32), and initial
//!   members are the sleds less `(b >> 4) % 3` spares. (`cluster_safety`
//!   reads `f` 6 and 7 as 3 and 4 sleds, with no extra byte.)
//! - next byte: the cluster's seed (every random choice of a run follows
//!   it).
//! - then steps until the bytes run out. Each step starts with a selector
//!   byte: `selector % 8 == 7` is a [`Forgery`] read from the next bytes,
//!   anything else is one `tq_harness::Action` read by
//!   `Action::from_bytes` from the next bytes (deliveries, duplicates,
//!   losses, link changes, crashes, restarts, Nexus steps, secret loads).
//!   Missing trailing bytes read as zero.
//!
//! Every step is followed by the harness's full safety check; at the end of
//! a `cluster` run the harness's liveness check runs (heal everything,
//! Nexus finishes, every member loads the same secrets, removed sleds learn
//! they are expunged). A violation panics: that is the finding.
//!
//! # Forged messages
//!
//! A forgery puts bytes into a node as if a peer sent them: garbage, a
//! corrupted copy of a message in flight, or a message in flight replayed
//! by another sled to any sled. Peers are authenticated sleds, and the
//! protocol trusts some of what an authenticated sled says (that it acked,
//! that an epoch committed, that the receiver is expunged): a sled that
//! lies about those can break the invariants by design, so such a
//! statement is injected only when the receiver is bound to ignore it or
//! it is true ([`judge`]). Everything the protocol checks
//! itself is injected freely: undecodable bytes, other racks, shares (each
//! is checked against a digest), requests, prepares not from the
//! coordinator or with a share that does not match.

use std::sync::OnceLock;

use tq_core::crypto::RackSecret;
use tq_core::ids::Epoch;
use tq_core::messages::{Body, PeerMsg};
use tq_core::persistent::LrtqShareData;
use tq_core::wire;
use tq_harness::network::{Message, NetworkStats};
use tq_harness::{Action, Cluster, DEFAULT_SLEDS, MAX_SLEDS, RackStart, Violation};
use tq_replay::{Check, Event, EventLog};

use tq_test_fixtures::lrtq_rack;

use crate::samples::RACK;

/// Reads bytes from the front of the input; past the end, zeros.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, len: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How the rack of one run looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// An LRTQ rack (else fresh).
    pub lrtq: bool,
    /// Sleds, 3 to 32 (3 to 8 for `cluster_safety`).
    pub sleds: usize,
    /// Initial members, 3 to `sleds`.
    pub members: usize,
    /// The cluster's seed.
    pub seed: u64,
}

/// Which racks a target reads from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Racks {
    /// 3 to 8 sleds.
    Small,
    /// 3 to 32 sleds.
    Whole,
}

impl Layout {
    fn read(input: &mut Reader<'_>, racks: Racks) -> Self {
        let rack = input.byte();
        let f = usize::from((rack >> 1) & 7);
        let (sleds, members) = if f >= 6 && racks == Racks::Whole {
            let sleds = 9 + usize::from(input.byte()) % 24;
            (sleds, sleds - usize::from(rack >> 4) % 3)
        } else {
            let sleds = 3 + f % 6;
            (sleds, 3 + usize::from(rack >> 4) % (sleds - 2))
        };
        Self {
            lrtq: rack & 1 == 1,
            sleds,
            members,
            seed: u64::from(input.byte()),
        }
    }

    /// The header bytes that read back as this layout (`sleds` and
    /// `members` must be in range: for a large rack, at most two spares).
    pub fn header(&self) -> Vec<u8> {
        let lrtq = u8::from(self.lrtq);
        if self.sleds <= 8 {
            let sleds = (self.sleds - 3) as u8;
            let members = (self.members - 3) as u8;
            vec![lrtq | sleds << 1 | members << 4, self.seed as u8]
        } else {
            let spares = (self.sleds - self.members) as u8;
            vec![
                lrtq | 6 << 1 | spares << 4,
                (self.sleds - 9) as u8,
                self.seed as u8,
            ]
        }
    }
}

/// A message put into a node as if a peer had sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// Arbitrary bytes from sled `from` to sled `to`.
    Garbage {
        /// Claimed sender.
        from: u8,
        /// Receiver.
        to: u8,
        /// The bytes (at most 255).
        bytes: Vec<u8>,
    },
    /// A corrupted copy of message `n` in flight, from its sender to its
    /// receiver: byte `at` (modulo the length) XORed with `xor`, or, if
    /// `xor` is zero, the message cut at `at`.
    Corrupt {
        /// Which message in flight (modulo the count).
        n: u8,
        /// Where (modulo the length).
        at: u16,
        /// What to XOR in; zero truncates.
        xor: u8,
    },
    /// Message `n` in flight, sent again by sled `from` to sled `to`.
    Replay {
        /// Which message in flight (modulo the count).
        n: u8,
        /// Claimed sender.
        from: u8,
        /// Receiver.
        to: u8,
    },
}

impl Forgery {
    fn read(input: &mut Reader<'_>) -> Self {
        match input.byte() % 3 {
            0 => {
                let from = input.byte();
                let to = input.byte();
                let len = usize::from(input.byte());
                Self::Garbage {
                    from,
                    to,
                    bytes: input.take(len).to_vec(),
                }
            }
            1 => Self::Corrupt {
                n: input.byte(),
                at: u16::from_le_bytes([input.byte(), input.byte()]),
                xor: input.byte(),
            },
            _ => Self::Replay {
                n: input.byte(),
                from: input.byte(),
                to: input.byte(),
            },
        }
    }

    /// Appends the bytes that read back as this forgery (selector included).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(7);
        match self {
            Self::Garbage { from, to, bytes } => {
                out.extend_from_slice(&[0, *from, *to, bytes.len() as u8]);
                out.extend_from_slice(bytes);
            }
            Self::Corrupt { n, at, xor } => {
                let [lo, hi] = at.to_le_bytes();
                out.extend_from_slice(&[1, *n, lo, hi, *xor]);
            }
            Self::Replay { n, from, to } => out.extend_from_slice(&[2, *n, *from, *to]),
        }
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A harness action.
    Act(Action),
    /// A forged message.
    Forge(Forgery),
}

impl Step {
    fn read(input: &mut Reader<'_>) -> Option<Self> {
        if input.is_empty() {
            return None;
        }
        if input.byte() % 8 == 7 {
            return Some(Self::Forge(Forgery::read(input)));
        }
        Action::from_bytes(&mut input.0).map(Self::Act)
    }
}

/// The share digests an LRTQ rack's ledger lists (every sled's
/// `LrtqShareData::share_digests`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ledger {
    /// All 255, as LRTQ's setup made them (PROTOCOL.md section 3): the
    /// `cluster` target.
    Full,
    /// Only the digests of the shares the members hold: the
    /// `cluster_safety` target. A node reads the ledger only to ask whether
    /// a share it got is one of the rack's, and the answer is the same for
    /// every share a run can present: the members' own, or bytes whose
    /// SHA3-256 digest would have to match one of the 247 spare shares no
    /// simulated sled holds. What the full ledger costs is its encoding:
    /// 8 KiB more to write and read back at every disk write of an LRTQ
    /// sled, most of such a run's time. The test
    /// `the_members_ledger_changes_nothing_a_run_does` runs the target's
    /// seeds and regressions and random LRTQ inputs with both.
    Members,
}

/// What a run did, for the seed generator and the README's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Steps applied.
    pub steps: u32,
    /// Forgeries injected into a node.
    pub forged: u32,
    /// Forgeries skipped: a trusted statement that would be a lie, or a
    /// receiver that is down.
    pub forgeries_skipped: u32,
    /// Epochs Nexus committed before the final liveness check.
    pub committed: u32,
    /// What the harness counted before the final liveness check (secrets
    /// loaded, crashes, shares computed, ...).
    pub harness: tq_harness::Stats,
    /// What happened to messages before the final liveness check.
    pub network: NetworkStats,
    /// A forgery waived the final liveness check (see [`Verdict`]).
    pub liveness_waived: bool,
}

/// What to do with a forgery, judged from the receiver's state before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not injected: a statement the protocol believes from an
    /// authenticated sled, and a lie here (see [`judge`]).
    Skip,
    /// Injected; the run must stay safe and live.
    Inject,
    /// Injected; the run must stay safe, but the forger undermined what
    /// liveness rests on, so the final liveness check is waived (see
    /// [`judge`]).
    InjectWaivingLiveness,
}

/// How a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The liveness check (the `cluster` target).
    Liveness,
    /// Every sled's state compared with its disk (the `cluster_safety`
    /// target).
    Safety,
}

/// The `cluster` target: builds the rack (3 to 32 sleds), applies every
/// step with the safety check after each, then the liveness check.
/// Returns the first violation.
pub fn run(bytes: &[u8]) -> Result<RunStats, Violation> {
    run_as(bytes, Target::Cluster, Ledger::Full, None)
}

/// The `cluster_safety` target: builds the rack (3 to 8 sleds, an LRTQ
/// rack with the members' [`Ledger`]), applies every step with the safety
/// check after each, then compares every sled's state with its disk; no
/// liveness check. Returns the first violation.
pub fn run_safety(bytes: &[u8]) -> Result<RunStats, Violation> {
    run_as(bytes, Target::ClusterSafety, Ledger::Members, None)
}

/// Which stateful target's way an input runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// [`run`].
    Cluster,
    /// [`run_safety`].
    ClusterSafety,
}

/// Runs `bytes` as `target` does and writes down every event it applied
/// (the forgeries [`judge`] let through as the bytes injected, the final
/// check included, up to the first violation) as an event log that
/// `tq-replay` steps through. The log names the LRTQ rack by its seed, so
/// the run records with the full ledger, as `tq-replay` replays it (the
/// other ledger changes nothing a run does, see [`Ledger`]). A run whose
/// forger waived liveness and that met a call a self-expunged sled refused
/// (which the targets excuse, see [`judge`]) replays up to that refusal.
pub fn event_log(
    bytes: &[u8],
    target: Target,
    source: impl Into<String>,
) -> (EventLog, Result<RunStats, Violation>) {
    let mut events = Vec::new();
    let outcome = run_as(bytes, target, Ledger::Full, Some(&mut events));
    let layout = Layout::read(&mut Reader(bytes), target.racks());
    let rack = tq_replay::Rack {
        rack_id: RACK,
        capacity: if layout.sleds <= DEFAULT_SLEDS {
            DEFAULT_SLEDS
        } else {
            MAX_SLEDS
        },
        sleds: layout.sleds,
        members: layout.members,
        seed: layout.seed,
        lrtq_seed: layout.lrtq.then(|| lrtq_seed(layout.members)),
    };
    let mut log = EventLog::new(source, rack);
    log.events = events;
    (log, outcome)
}

impl Target {
    fn racks(self) -> Racks {
        match self {
            Self::Cluster => Racks::Whole,
            Self::ClusterSafety => Racks::Small,
        }
    }

    fn ending(self) -> Ending {
        match self {
            Self::Cluster => Ending::Liveness,
            Self::ClusterSafety => Ending::Safety,
        }
    }
}

fn run_as(
    bytes: &[u8],
    target: Target,
    ledger: Ledger,
    events: Option<&mut Vec<Event>>,
) -> Result<RunStats, Violation> {
    let mut input = Reader(bytes);
    let layout = Layout::read(&mut input, target.racks());
    let ending = target.ending();
    // A rack of up to 8 in a cluster sized for 8: a whole-rack cluster is
    // three times larger, and set up for every input. It is built by value
    // (2.2 MiB, and copies of it in a sanitized build) on a thread with
    // room for it: libFuzzer's own stack overflows.
    if layout.sleds <= DEFAULT_SLEDS {
        return run_in::<DEFAULT_SLEDS>(&layout, ledger, input, ending, events);
    }
    let steps = input.0.to_vec();
    let record = events.is_some();
    let (outcome, recorded) = tq_test_fixtures::with_big_stack(move || {
        let mut recorded = Vec::new();
        let events = record.then_some(&mut recorded);
        let outcome = run_in::<MAX_SLEDS>(&layout, ledger, Reader(&steps), ending, events);
        (outcome, recorded)
    });
    if let Some(events) = events {
        events.extend(recorded);
    }
    outcome
}

/// Runs the steps of `input` on the rack of `layout`, then `ending`;
/// appends every event it applied to `events` if given.
fn run_in<const N: usize>(
    layout: &Layout,
    ledger: Ledger,
    mut input: Reader<'_>,
    ending: Ending,
    mut events: Option<&mut Vec<Event>>,
) -> Result<RunStats, Violation> {
    let mut cluster = Box::new(new_cluster::<N>(layout, ledger)?);
    let mut stats = RunStats::default();
    let trace = tracing();
    if trace {
        eprintln!("{layout:?}");
    }
    while let Some(step) = Step::read(&mut input) {
        stats.steps += 1;
        if trace {
            eprintln!("step {}: {step:?}", stats.steps);
        }
        let event = match step {
            Step::Act(action) => Some(Event::Act(action)),
            Step::Forge(forgery) => {
                let (verdict, event) = forge(&cluster, &forgery);
                match verdict {
                    Verdict::Skip => stats.forgeries_skipped += 1,
                    Verdict::Inject => stats.forged += 1,
                    Verdict::InjectWaivingLiveness => {
                        stats.forged += 1;
                        stats.liveness_waived = true;
                    }
                }
                event
            }
        };
        let Some(event) = event else {
            continue;
        };
        let outcome = event.apply(&mut cluster);
        if let Some(events) = events.as_deref_mut() {
            events.push(event);
        }
        if trace {
            print_sleds(&cluster);
        }
        match outcome {
            // A sled that expunged itself by lying refuses what Nexus asks
            // of it: Nexus cannot go on with that sled, and safety held up
            // to here. Stop stepping; the waived ending below follows.
            Err(violation) if stats.liveness_waived && refused_as_expunged(&violation) => break,
            outcome => outcome?,
        }
    }
    stats.committed = cluster.nexus().stats().committed;
    stats.harness = *cluster.stats();
    stats.network = *cluster.network().stats();
    let check = match ending {
        Ending::Safety => Check::Stored,
        // Safety was checked after every step; liveness is not promised
        // to a rack with a lying sled (see `Verdict`).
        Ending::Liveness if stats.liveness_waived => Check::Heal,
        Ending::Liveness => Check::Liveness,
    };
    let event = Event::Check(check);
    let outcome = event.apply(&mut cluster);
    if let Some(events) = events {
        events.push(event);
    }
    outcome.map(|()| stats)
}

/// Whether `violation` is a node refusing a Nexus call because it is
/// expunged: what Nexus meets once a forgery made a sled expunge itself
/// (see [`judge`]), not a broken invariant.
fn refused_as_expunged(violation: &Violation) -> bool {
    use tq_core::node::{
        CommitError, LoadSecretError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError,
    };
    matches!(
        violation,
        Violation::ReconfigureRefused {
            error: ReconfigureError::Expunged(_),
            ..
        } | Violation::LrtqUpgradeRefused {
            error: LrtqUpgradeError::Expunged(_),
            ..
        } | Violation::CommitRefused {
            error: CommitError::Expunged(_),
            ..
        } | Violation::PrepareAndCommitRefused {
            error: PrepareAndCommitError::Expunged(_),
            ..
        } | Violation::LoadRefused {
            error: LoadSecretError::Expunged(_),
            ..
        }
    )
}

/// Whether `TQ_FUZZ_TRACE` is set: then a run prints its layout, each step,
/// and each forgery with whether it was injected (to read a finding).
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("TQ_FUZZ_TRACE").is_some())
}

/// Prints each sled's role and what its disk holds (for `TQ_FUZZ_TRACE`).
pub fn print_sleds<const N: usize>(cluster: &Cluster<N>) {
    for index in 0..cluster.sled_count() {
        let Some(sled) = cluster.sled(index) else {
            continue;
        };
        let disk = sled
            .read_disk()
            .map(|state| tq_harness::sled::DiskSummary::of(&state));
        let roles = sled.running().map(|r| {
            (
                r.node.coordinating(),
                r.node.computing_share(),
                r.node.loading(),
            )
        });
        eprintln!("    sled {index}: (coordinating, computing, loading) {roles:?}, disk {disk:?}");
    }
    eprintln!("    in flight: {}", cluster.network().len());
}

/// Whether `TQ_FUZZ_SKIP_FORGERIES` is set: then every forgery is skipped,
/// to tell whether a finding needs one.
fn skipping_forgeries() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("TQ_FUZZ_SKIP_FORGERIES").is_some())
}

/// An LRTQ rack: each member's share data, and the secret.
type LrtqRack = (Vec<LrtqShareData>, RackSecret);

/// The LRTQ rack of `members` sleds with `ledger`, made once per size.
/// The seed the LRTQ rack of `members` sleds is split with.
fn lrtq_seed(members: usize) -> u64 {
    1000 + members as u64
}

fn lrtq(members: usize, ledger: Ledger) -> &'static LrtqRack {
    static FULL: [OnceLock<LrtqRack>; MAX_SLEDS + 1] = [const { OnceLock::new() }; MAX_SLEDS + 1];
    static MEMBERS: [OnceLock<LrtqRack>; MAX_SLEDS + 1] =
        [const { OnceLock::new() }; MAX_SLEDS + 1];
    let full = FULL[members].get_or_init(|| lrtq_rack(members, lrtq_seed(members)));
    match ledger {
        Ledger::Full => full,
        Ledger::Members => MEMBERS[members].get_or_init(|| {
            let (data, secret) = full;
            let digests: heapless::Vec<_, _, _> = data.iter().map(|d| d.share.digest()).collect();
            let data = data
                .iter()
                .map(|d| LrtqShareData {
                    share_digests: digests.clone(),
                    ..d.clone()
                })
                .collect();
            (data, secret.clone())
        }),
    }
}

fn new_cluster<const N: usize>(layout: &Layout, ledger: Ledger) -> Result<Cluster<N>, Violation> {
    let start = if layout.lrtq {
        let (data, secret) = lrtq(layout.members, ledger);
        RackStart::Lrtq { data, secret }
    } else {
        RackStart::Fresh
    };
    Cluster::new(layout.seed, RACK, layout.sleds, layout.members, start)
}

/// What to do with `forgery`: [`judge`]'s verdict, and the message to
/// inject unless it says to skip it.
fn forge<const N: usize>(cluster: &Cluster<N>, forgery: &Forgery) -> (Verdict, Option<Event>) {
    let count = cluster.sled_count();
    let sled = |n: u8| usize::from(n) % count;
    let in_flight = |n: u8| -> Option<Owned> {
        let msg = cluster.network().get(usize::from(n))?;
        Some(Owned {
            from: msg.from,
            to: msg.to,
            bytes: msg.bytes.to_vec(),
        })
    };
    let (from, to, bytes, original) = match forgery {
        Forgery::Garbage { from, to, bytes } => (sled(*from), sled(*to), bytes.clone(), None),
        Forgery::Corrupt { n, at, xor } => {
            let Some(msg) = in_flight(*n) else {
                return (Verdict::Skip, None);
            };
            let mut bytes = msg.bytes.to_vec();
            let at = usize::from(*at) % bytes.len().max(1);
            if *xor == 0 {
                bytes.truncate(at);
            } else if let Some(b) = bytes.get_mut(at) {
                *b ^= xor;
            }
            (usize::from(msg.from), usize::from(msg.to), bytes, Some(msg))
        }
        Forgery::Replay { n, from, to } => {
            let Some(msg) = in_flight(*n) else {
                return (Verdict::Skip, None);
            };
            let bytes = msg.bytes.to_vec();
            (sled(*from), sled(*to), bytes, Some(msg))
        }
    };
    let verdict = if skipping_forgeries() {
        Verdict::Skip
    } else {
        judge(
            cluster,
            from,
            to,
            &bytes,
            original.as_ref().map(Owned::message),
        )
    };
    if tracing() {
        let decoded = wire::decode_peer_msg(&bytes);
        eprintln!("  forged {from} -> {to}: {decoded:?}; {verdict:?}");
    }
    if verdict == Verdict::Skip {
        return (verdict, None);
    }
    // Both are sled indices taken modulo the count: they fit.
    let (Ok(from), Ok(to)) = (u8::try_from(from), u8::try_from(to)) else {
        return (Verdict::Skip, None);
    };
    (verdict, Some(Event::Inject { from, to, bytes }))
}

/// A message in flight, copied out of the network.
struct Owned {
    from: u8,
    to: u8,
    bytes: Vec<u8>,
}

impl Owned {
    fn message(&self) -> Message<'_> {
        Message {
            from: self.from,
            to: self.to,
            bytes: &self.bytes,
        }
    }
}

/// Judges `bytes` from sled `from` to sled `to`, made from the real message
/// `original` if any.
///
/// Injected: anything the receiver must cope with on its own (undecodable
/// bytes, another rack, shares, which are checked against digests, a
/// `Prepare` not from the coordinator or with a share that does not match)
/// and anything true.
///
/// Skipped, because an authenticated sled may say it and the protocol
/// believes it: a `PrepareAck` to the coordinator of that epoch, an
/// `Expunged` the receiver would act on, a `CommitAdvance` or a
/// coordinator's `Prepare` carrying the receiver's share, unless its
/// configuration (and a `Prepare`'s last committed epoch) is the real one
/// the original message carried, and a message from a sled to itself (no
/// channel does that).
///
/// Injected but waiving liveness:
/// - a valid LRTQ share sent by a sled other than the one that sent it:
///   LRTQ shares are not bound to sleds (spares exist), so the upgrade
///   coordinator takes it as the forger's, then refuses the owner's (same
///   digest) and the forger's own (one per sled), and may never gather
///   its threshold;
/// - a share request whose honest answer is `Expunged` for a committed
///   epoch: true, so safe, but the asker has expunged itself, and Nexus
///   may still add it. If the epoch is not known to be committed, the
///   request is skipped (the answer would expunge the asker for an epoch
///   that may never commit; honest sleds ask only for committed epochs
///   they are members of).
pub fn judge<const N: usize>(
    cluster: &Cluster<N>,
    from: usize,
    to: usize,
    bytes: &[u8],
    original: Option<Message<'_>>,
) -> Verdict {
    if from == to {
        return Verdict::Skip;
    }
    let Ok(msg) = wire::decode_peer_msg(bytes) else {
        return Verdict::Inject;
    };
    let (Some(from_id), Some(to_id)) = (cluster.id(from), cluster.id(to)) else {
        return Verdict::Skip;
    };
    let Some(running) = cluster.sled(to).and_then(|s| s.running()) else {
        return Verdict::Skip;
    };
    let state = running.ctx.persistent_state();
    if state.expunged().is_some() {
        return Verdict::Inject;
    }
    let rack = state
        .fields()
        .configs
        .last()
        .map(|stored| stored.config.rack_id())
        .or_else(|| state.lrtq().map(|lrtq| lrtq.rack_id));
    if rack.is_some_and(|rack| rack != msg.rack_id) {
        return Verdict::Inject;
    }
    let original: Option<PeerMsg> = original.and_then(|o| wire::decode_peer_msg(o.bytes).ok());
    let original_commit = || match original.as_ref().map(|o| &o.body) {
        Some(Body::CommitAdvance(config)) => Some(config.clone()),
        _ => None,
    };
    let original_prepare = || match original.as_ref().map(|o| &o.body) {
        Some(Body::Prepare {
            config,
            last_committed,
            ..
        }) => Some((config.clone(), *last_committed)),
        _ => None,
    };
    let inject_if = |ok: bool| if ok { Verdict::Inject } else { Verdict::Skip };
    // The epoch a share request would be answered with `Expunged` for.
    let expunges_asker = |epoch: Option<Epoch>| {
        let latest = state.latest_committed();
        match (epoch, latest) {
            (_, Some(latest))
                if epoch.is_none_or(|e| latest.config.epoch() > e)
                    && !latest.config.is_member(from_id) =>
            {
                Some(latest.config.epoch())
            }
            (Some(e), _) if state.latest_committed_epoch().is_none_or(|c| c <= e) => state
                .get(e)
                .filter(|stored| !stored.config.is_member(from_id))
                .map(|_| e),
            _ => None,
        }
    };
    let answer_request = |epoch: Option<Epoch>| match expunges_asker(epoch) {
        None => Verdict::Inject,
        Some(e) if state.is_committed(e) || cluster.nexus().committed_members(e).is_some() => {
            Verdict::InjectWaivingLiveness
        }
        Some(_) => Verdict::Skip,
    };
    match &msg.body {
        Body::Share { .. } => Verdict::Inject,
        // A valid LRTQ share is the same value whoever relays it, and the
        // coordinator de-duplicates by digest: no relay can cost it a share.
        Body::LrtqShare(_) => Verdict::Inject,
        Body::GetShare(epoch) => answer_request(Some(*epoch)),
        Body::GetLrtqShare => answer_request(None),
        Body::Prepare {
            config,
            share,
            last_committed,
        } => {
            let for_receiver = config.coordinator() == from_id
                && config
                    .share_digest(to_id)
                    .is_some_and(|digest| bool::from(share.matches(digest)));
            let real = original_prepare()
                .is_some_and(|(real, real_last)| real == *config && real_last == *last_committed);
            inject_if(!for_receiver || real)
        }
        // Ignored when the receiver is not a member of `config`, when its
        // epoch is not newer than the receiver's latest commit (whatever
        // configuration it carries: the receiver's own commit settles it),
        // and when the sender is not a member (only one can send it).
        Body::CommitAdvance(config) => inject_if(
            !config.is_member(to_id)
                || state
                    .latest_committed_epoch()
                    .is_some_and(|latest| config.epoch() <= latest)
                || !config.is_member(from_id)
                || original_commit().as_ref() == Some(config),
        ),
        // Ignored when stale, or when the receiver's own state proves it
        // false (it stores that configuration and is a member of it, or the
        // sender is not).
        Body::Expunged(epoch) => inject_if(
            state.latest_epoch().is_some_and(|latest| *epoch < latest)
                || state.get(*epoch).is_some_and(|stored| {
                    stored.config.is_member(to_id) || !stored.config.is_member(from_id)
                }),
        ),
        Body::PrepareAck(epoch) => inject_if(running.node.coordinating() != Some(*epoch)),
    }
}

/// Panics with the violation and the input's layout: the `cluster`
/// target's check.
pub fn fuzz_one(bytes: &[u8]) {
    if let Err(violation) = run(bytes) {
        let layout = Layout::read(&mut Reader(bytes), Racks::Whole);
        panic!("{violation:?} (rack {layout:?})");
    }
}

/// The `cluster_safety` target's check: panics with the violation and the
/// input's layout.
pub fn fuzz_one_safely(bytes: &[u8]) {
    if let Err(violation) = run_safety(bytes) {
        let layout = Layout::read(&mut Reader(bytes), Racks::Small);
        panic!("{violation:?} (rack {layout:?})");
    }
}

/// Seeds for the cluster target: for each of a few racks (fresh and LRTQ,
/// from 3 sleds to a whole rack of 32), the random input of
/// [`SEED_CANDIDATES`] tried
/// whose run went furthest (most commits, then most secrets loaded, then
/// most forgeries injected). Deterministic; every seed runs clean.
///
/// # Panics
///
/// If a candidate finds a violation: that is a finding to fix first.
pub fn seeds() -> Vec<crate::samples::Seed> {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};
    const RACKS: [(&str, bool, usize, usize); 9] = [
        ("fresh_3", false, 3, 3),
        ("fresh_5_of_6", false, 6, 5),
        ("fresh_8", false, 8, 8),
        ("lrtq_4", true, 4, 4),
        ("lrtq_5_of_7", true, 7, 5),
        ("lrtq_8", true, 8, 8),
        ("fresh_12_of_13", false, 13, 12),
        ("lrtq_17", true, 17, 17),
        ("lrtq_32", true, 32, 32),
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let mut seeds = Vec::new();
    for (name, lrtq, sleds, members) in RACKS {
        let mut best: Option<((u32, u32, u32), Vec<u8>)> = None;
        for _ in 0..SEED_CANDIDATES {
            let layout = Layout {
                lrtq,
                sleds,
                members,
                seed: u64::from(rng.next_u32() as u8),
            };
            let mut input = layout.header();
            let mut body = vec![0u8; SEED_LEN];
            rng.fill_bytes(&mut body);
            input.extend_from_slice(&body);
            let stats = match run(&input) {
                Ok(stats) => stats,
                Err(violation) => panic!("seed candidate {input:?} finds {violation:?}"),
            };
            let score = (stats.committed, stats.harness.secrets_loaded, stats.forged);
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, input));
            }
        }
        if let Some((_, input)) = best {
            seeds.push((name, input));
        }
    }
    seeds
}

/// Seeds for the `cluster_safety` target: the `cluster` seeds of racks of
/// up to 8 sleds, whose header both targets read alike.
pub fn safety_seeds(cluster_seeds: &[crate::samples::Seed]) -> Vec<crate::samples::Seed> {
    cluster_seeds
        .iter()
        .filter(|(_, input)| {
            let layout = Layout::read(&mut Reader(input), Racks::Whole);
            layout.sleds <= DEFAULT_SLEDS
                && Layout::read(&mut Reader(input), Racks::Small) == layout
        })
        .cloned()
        .collect()
}

/// Random inputs tried per seed.
pub const SEED_CANDIDATES: usize = 64;

/// Bytes of steps in a seed.
pub const SEED_LEN: usize = 600;

#[cfg(test)]
mod tests {
    use super::*;
    use tq_core::messages::{Envelope, PeerMsgRef};
    use tq_harness::Change;
    use tq_test_fixtures::with_big_stack;

    #[test]
    fn headers_and_forgeries_read_back() {
        for lrtq in [false, true] {
            for sleds in 3..=MAX_SLEDS {
                let fewest = if sleds <= 8 { 3 } else { sleds - 2 };
                for members in fewest..=sleds {
                    let layout = Layout {
                        lrtq,
                        sleds,
                        members,
                        seed: 9,
                    };
                    let header = layout.header();
                    assert_eq!(Layout::read(&mut Reader(&header), Racks::Whole), layout);
                    if sleds <= 8 {
                        assert_eq!(Layout::read(&mut Reader(&header), Racks::Small), layout);
                    }
                }
            }
        }
        // The safety target reads a large rack's header as a small rack.
        let large = Layout {
            lrtq: true,
            sleds: 20,
            members: 19,
            seed: 5,
        };
        let small = Layout::read(&mut Reader(&large.header()), Racks::Small);
        assert!(small.sleds <= 8 && small.lrtq);
        let forgeries = [
            Forgery::Garbage {
                from: 1,
                to: 2,
                bytes: vec![1, 2, 3],
            },
            Forgery::Corrupt {
                n: 4,
                at: 300,
                xor: 0x80,
            },
            Forgery::Replay {
                n: 5,
                from: 6,
                to: 7,
            },
        ];
        for forgery in forgeries {
            let mut bytes = Vec::new();
            forgery.write(&mut bytes);
            let mut input = Reader(&bytes);
            assert_eq!(Step::read(&mut input), Some(Step::Forge(forgery)));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn an_input_with_no_steps_runs_to_a_live_rack() {
        with_big_stack(|| {
            for lrtq in [false, true] {
                let layout = Layout {
                    lrtq,
                    sleds: 5,
                    members: 4,
                    seed: 3,
                };
                let stats = run(&layout.header()).expect("no violation");
                assert_eq!(stats.steps, 0);
                let stats = run_safety(&layout.header()).expect("no violation");
                assert_eq!(stats.steps, 0);
            }
        });
    }

    /// The members' ledger (`cluster_safety`'s) and the full one make the
    /// same run: the target's seeds and regressions, and random LRTQ
    /// inputs, end alike and count alike.
    #[test]
    fn the_members_ledger_changes_nothing_a_run_does() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::{Rng, SeedableRng};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut inputs = Vec::new();
        for corpus in ["seeds/cluster_safety", "regressions/cluster_safety"] {
            for entry in std::fs::read_dir(dir.join(corpus)).expect("corpus") {
                inputs.push(std::fs::read(entry.expect("entry").path()).expect("input"));
            }
        }
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..32 {
            let mut input = vec![0u8; 400];
            rng.fill_bytes(&mut input);
            input[0] |= 1; // an LRTQ rack
            inputs.push(input);
        }
        let upgrades = with_big_stack(move || {
            let mut upgrades = 0;
            for input in inputs {
                let members = run_as(&input, Target::ClusterSafety, Ledger::Members, None);
                assert_eq!(
                    members,
                    run_as(&input, Target::ClusterSafety, Ledger::Full, None),
                    "{input:?}"
                );
                let lrtq = Layout::read(&mut Reader(&input), Racks::Small).lrtq;
                if lrtq && members.is_ok_and(|stats| stats.committed > 0) {
                    upgrades += 1;
                }
            }
            upgrades
        });
        // Not vacuous: LRTQ racks upgraded (their shares checked against
        // the ledger).
        assert!(upgrades >= 3, "{upgrades}");
    }

    /// The event log of a run replays in `tq-replay`'s session to the same
    /// end: every committed seed and regression of both targets (forged
    /// messages included), and an input whose forged ack the harness
    /// catches (what the judge never lets through), stopped at the same
    /// event with the same violation.
    #[test]
    fn event_logs_replay_to_the_same_outcome() {
        use tq_replay::session::first_failure;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut inputs = Vec::new();
        for (target, name) in [
            (Target::Cluster, "cluster"),
            (Target::ClusterSafety, "cluster_safety"),
        ] {
            for corpus in ["seeds", "regressions"] {
                let Ok(entries) = std::fs::read_dir(dir.join(corpus).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("entry").path();
                    inputs.push((target, std::fs::read(path).expect("input")));
                }
            }
        }
        assert!(inputs.len() > 10);
        with_big_stack(move || {
            let mut injected = 0;
            for (target, input) in inputs {
                let (log, outcome) = event_log(&input, target, "test");
                let log = EventLog::from_json(&log.to_json()).expect("reads back");
                injected += log
                    .events
                    .iter()
                    .filter(|e| matches!(e, Event::Inject { .. }))
                    .count();
                let failure = first_failure(log).expect("session");
                match (failure.map(|f| f.violation), outcome) {
                    // The target excuses a call a self-expunged sled
                    // refuses once a forger waived liveness; the session
                    // stops there.
                    (Some(refusal), Ok(stats))
                        if stats.liveness_waived && refused_as_expunged(&refusal) => {}
                    (failure, outcome) => assert_eq!(failure, outcome.err(), "{input:?}"),
                }
            }
            assert!(injected > 0);
        });
    }

    /// A rack of four members and one spare (sled 4) whose epoch 1
    /// committed everywhere.
    fn committed_rack() -> Box<Cluster<DEFAULT_SLEDS>> {
        let layout = Layout {
            lrtq: false,
            sleds: 5,
            members: 4,
            seed: 1,
        };
        let mut cluster =
            Box::new(new_cluster::<DEFAULT_SLEDS>(&layout, Ledger::Full).expect("cluster"));
        cluster
            .apply(&Action::Reconfigure {
                change: Change::Same,
                coordinator: 0,
                threshold: 0,
            })
            .expect("start");
        cluster.nexus_finish().expect("commit");
        assert!(cluster.nexus().latest_committed().is_some());
        cluster
    }

    fn encode(
        body: Body<
            &tq_core::config::Configuration,
            &tq_core::crypto::Share,
            &tq_core::crypto::LrtqShare,
        >,
    ) -> Vec<u8> {
        let msg: PeerMsgRef<'_> = Envelope {
            rack_id: RACK,
            body,
        };
        let mut buf = vec![0u8; wire::MAX_PEER_MSG_LEN];
        wire::encode_peer_msg(&msg, &mut buf)
            .expect("encode")
            .to_vec()
    }

    #[test]
    fn lies_the_node_disproves_are_injected_and_ignored() {
        with_big_stack(|| {
            let mut cluster = committed_rack();
            let epoch = cluster.nexus().latest_committed().expect("commit").epoch;
            // Sled 1 stores `epoch` and is a member of it.
            let lie = encode(Body::Expunged(epoch));
            assert_eq!(judge(&cluster, 0, 1, &lie, None), Verdict::Inject);
            let from = cluster.id(0).cloned().expect("id");
            let counted = cluster
                .call(1, |node, ctx, rng, _| {
                    node.handle_bytes(ctx, rng, &from, &lie);
                    ctx.counters().get(tq_core::node::Counter::FalseClaim)
                })
                .expect("call");
            assert_eq!(counted, Some(1));
            cluster.check().expect("still safe");
        });
    }

    /// PROTOCOL.md section 6: a `CommitAdvance` whose epoch is not newer
    /// than the receiver's latest commit is ignored, whatever configuration
    /// it carries. A member's lie about the committed epoch is injected,
    /// counted as false, and raises no alarm (it once did: any member could
    /// put any node in alarm).
    #[test]
    fn a_commit_advance_for_the_committed_epoch_is_injected_and_ignored() {
        with_big_stack(|| {
            let mut cluster = committed_rack();
            let committed = cluster
                .sled(1)
                .and_then(|s| s.running())
                .and_then(|r| r.ctx.persistent_state().latest_committed())
                .map(|stored| stored.config.clone())
                .expect("sled 1 committed");
            let mut fields = committed.fields().clone();
            fields.members[2].share_digest = tq_core::crypto::ShareDigest([0x5a; 32]);
            let other = tq_core::config::Configuration::new(fields).expect("config");
            for config in [&committed, &other] {
                let bytes = encode(Body::CommitAdvance(config));
                assert_eq!(judge(&cluster, 0, 1, &bytes, None), Verdict::Inject);
            }
            let lie = encode(Body::CommitAdvance(&other));
            let from = cluster.id(0).cloned().expect("id");
            let counted = cluster
                .call(1, |node, ctx, rng, _| {
                    node.handle_bytes(ctx, rng, &from, &lie);
                    ctx.counters().get(tq_core::node::Counter::FalseClaim)
                })
                .expect("call");
            assert_eq!(counted, Some(1));
            cluster.check().expect("no alarm");
        });
    }

    #[test]
    fn lies_the_protocol_believes_are_not_injected_and_would_be_caught() {
        with_big_stack(|| {
            let mut cluster = committed_rack();
            let epoch = cluster.nexus().latest_committed().expect("commit").epoch;
            // An epoch sled 1 has not heard of: nothing it stores disproves
            // the claim, so it believes it.
            let lie = encode(Body::Expunged(Epoch(epoch.0 + 1)));
            assert_eq!(judge(&cluster, 0, 1, &lie, None), Verdict::Skip);
            // Injected anyway, the checker catches it: the filter is what
            // keeps the target's findings real.
            let from = cluster.id(0).cloned().expect("id");
            cluster
                .call(1, |node, ctx, rng, _| {
                    node.handle_bytes(ctx, rng, &from, &lie)
                })
                .expect("call");
            assert!(matches!(
                cluster.check(),
                Err(Violation::WronglyExpunged { sled: 1, .. })
            ));
        });
    }

    #[test]
    fn a_relayed_lrtq_share_costs_the_coordinator_nothing() {
        // Found by the fuzzer: an LRTQ rack of four upgrades without sled
        // 2; sled 3 hands the coordinator sled 1's LRTQ share (in flight).
        // The coordinator once refused a second share from one sender, so
        // it then took neither sled 1's share (a duplicate digest) nor sled
        // 3's own (a second share from sled 3), and the upgrade stalled.
        // De-duplicating by digest only, it takes sled 3's own share and
        // the rack stays live.
        // The header read 4 LRTQ sleds, all members, seed 14, when racks
        // stopped at 8 (its `0xff` now reads a large rack).
        let mut input = Layout {
            lrtq: true,
            sleds: 4,
            members: 4,
            seed: 0x0e,
        }
        .header();
        input.extend_from_slice(&[
            0x99, 0x9a, 0x97, 0x0e, 0x00, 0xff, 0xfe, 0x00, 0x0e, 0x0f, 0x11, 0x11, 0xff,
        ]);
        with_big_stack(move || {
            let stats = run(&input).expect("safe and live");
            assert!(stats.forged >= 1, "{stats:?}");
            assert!(!stats.liveness_waived, "{stats:?}");
        });
    }

    #[test]
    fn checked_forgeries_are_injected_and_keep_the_invariants() {
        with_big_stack(|| {
            let cluster = committed_rack();
            let epoch = cluster.nexus().latest_committed().expect("commit").epoch;
            let other_rack = {
                let mut bytes = encode(Body::Expunged(epoch));
                bytes[1] ^= 0xff;
                bytes
            };
            let requests = [encode(Body::GetShare(epoch)), encode(Body::GetLrtqShare)];
            let garbage = vec![wire::WIRE_VERSION, 0xff, 0x00, 0x13];
            for bytes in [other_rack, garbage].iter().chain(&requests) {
                assert_eq!(judge(&cluster, 2, 1, bytes, None), Verdict::Inject);
            }
            // The spare asks: the true answer expunges it.
            for bytes in &requests {
                assert_eq!(
                    judge(&cluster, 4, 1, bytes, None),
                    Verdict::InjectWaivingLiveness
                );
            }
            let unknown_epoch = encode(Body::GetShare(Epoch(epoch.0 + 5)));
            assert_eq!(judge(&cluster, 4, 1, &unknown_epoch, None), Verdict::Inject);
            let mut input = Layout {
                lrtq: false,
                sleds: 4,
                members: 4,
                seed: 1,
            }
            .header();
            // Start epoch 1, then forge around it while it runs.
            input.extend_from_slice(&[0, 150, 2, 0, 0]);
            for n in 0..6u8 {
                input.extend_from_slice(&[0, 0, 0]); // deliver the oldest
                Forgery::Replay {
                    n,
                    from: n + 1,
                    to: n + 2,
                }
                .write(&mut input);
                Forgery::Corrupt {
                    n,
                    at: 40 + u16::from(n),
                    xor: 0x01,
                }
                .write(&mut input);
                Forgery::Corrupt { n, at: 18, xor: 0 }.write(&mut input);
                Forgery::Garbage {
                    from: n,
                    to: n + 1,
                    bytes: vec![1; 20],
                }
                .write(&mut input);
            }
            let stats = run(&input).expect("no violation");
            println!("{stats:?}");
            assert!(stats.forged >= 12, "{stats:?}");
        });
    }
}
