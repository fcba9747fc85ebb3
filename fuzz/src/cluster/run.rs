//! Running an input: the rack its header names, each step applied to it
//! (a forgery as [`judge`] rules), the safety check after each, and the
//! target's ending; the same run as a `tq-replay` event log.

use std::sync::OnceLock;

use tq_core::api::CommitRequest;
use tq_core::authority::{RequestAuth, RequestRefusal, SledRequestKey};
use tq_core::config::{ConfigFields, Configuration};
use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_core::persistent::LrtqShareData;
use tq_core::wire;
use tq_harness::network::{Message, NetworkStats};
use tq_harness::{Cluster, DEFAULT_SLEDS, MAX_SLEDS, RackStart, Violation};
use tq_nexus::CallKind;
use tq_replay::{Check, EventLog, RunEvent};
use tq_test_fixtures::lrtq_rack;

use super::input::{Forgery, Layout, Racks, Reader, RequestForgery, Step};
use super::judge::{Verdict, judge};
use crate::samples::RACK;

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
    pub harness: tq_harness::RunStats,
    /// What happened to messages before the final liveness check.
    pub network: NetworkStats,
    /// A forgery waived the final liveness check (see [`Verdict`]).
    pub liveness_waived: bool,
    /// Nexus requests forged (each refused and counted, or the run fails).
    pub requests_forged: u32,
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

pub(super) fn run_as(
    bytes: &[u8],
    target: Target,
    ledger: Ledger,
    events: Option<&mut Vec<RunEvent>>,
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
    mut events: Option<&mut Vec<RunEvent>>,
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
            Step::ForgeRequest(forgery) => {
                // Not an event of the log: a refused request changes
                // nothing a replay would see (only the target's counters).
                forge_request(&mut cluster, forgery)?;
                stats.requests_forged += 1;
                continue;
            }
            Step::Act(action) => Some(RunEvent::Act(action)),
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
    let event = RunEvent::Check(check);
    let outcome = event.apply(&mut cluster);
    if let Some(events) = events {
        events.push(event);
    }
    outcome.map(|()| stats)
}

/// Whether `violation` is a node refusing a Nexus call because it is
/// expunged: what Nexus meets once a forgery made a sled expunge itself
/// (see [`judge`]), not a broken invariant.
pub(super) fn refused_as_expunged(violation: &Violation) -> bool {
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

pub(super) fn new_cluster<const N: usize>(
    layout: &Layout,
    ledger: Ledger,
) -> Result<Cluster<N>, Violation> {
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
fn forge<const N: usize>(cluster: &Cluster<N>, forgery: &Forgery) -> (Verdict, Option<RunEvent>) {
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
    (verdict, Some(RunEvent::Inject { from, to, bytes }))
}

/// Delivers `forgery`'s request to its sled and checks that the node
/// refused it with the refusal its forgery calls for and counted it (a
/// sled that is down is skipped).
fn forge_request<const N: usize>(
    cluster: &mut Cluster<N>,
    forgery: RequestForgery,
) -> Result<(), Violation> {
    let count = cluster.sled_count();
    let to = usize::from(forgery.to) % count;
    let other = (to + 1) % count;
    let (Some(target), Some(other_id)) = (cluster.id(to).cloned(), cluster.id(other).cloned())
    else {
        return Ok(());
    };
    let Some(own_key) = cluster.nexus().sled_key(to).cloned() else {
        return Ok(());
    };
    let Some(other_key) = cluster.nexus().sled_key(other).cloned() else {
        return Ok(());
    };
    let config = cluster
        .nexus()
        .machine()
        .latest_config()
        .and_then(|config| {
            Configuration::new(ConfigFields {
                epoch: Epoch(u64::MAX),
                ..config.fields().clone()
            })
            .ok()
        });
    let commit = CommitRequest {
        rack_id: RACK,
        epoch: Epoch(u64::MAX),
    };
    let nonce = [forgery.how; 16];
    let sign = |key: &SledRequestKey, target: &PlatformId| match &config {
        Some(config) => key.authorize(target, nonce, config),
        None => key.authorize(target, nonce, &commit),
    };
    let foreign = SledRequestKey::from_bytes(RackId([0x0f; 16]), *own_key.expose_bytes());
    let (auth, expected) = match forgery.how % 4 {
        0 => (
            Ok(RequestAuth {
                rack_id: RACK,
                target: target.clone(),
                nonce,
                tag: [0; 32],
            }),
            RequestRefusal::BadTag,
        ),
        1 => (sign(&other_key, &target), RequestRefusal::BadTag),
        2 => (sign(&own_key, &other_id), RequestRefusal::WrongTarget),
        _ => (sign(&foreign, &target), RequestRefusal::ForeignRack),
    };
    let Ok(auth) = auth else {
        return Ok(());
    };
    let counted = |cluster: &Cluster<N>| {
        cluster
            .sled(to)
            .and_then(|sled| sled.running())
            .map(|running| running.ctx.counters().get(expected.counter()))
    };
    let before = counted(cluster);
    let call = match &config {
        Some(config) => CallKind::PrepareAndCommit(config),
        None => CallKind::Commit(commit),
    };
    let outcome = cluster.deliver_nexus_request(to, &auth, call)?;
    let after = counted(cluster);
    if tracing() {
        eprintln!("  forged request to {to} ({expected:?}): {outcome:?}");
    }
    let refused = match outcome {
        None => return Ok(()),
        Some(Ok(())) => None,
        Some(Err(refusal)) => Some(refusal),
    };
    let counted_once = matches!((before, after), (Some(b), Some(a)) if a == b.saturating_add(1));
    if refused == Some(expected) && counted_once {
        Ok(())
    } else {
        Err(Violation::ForgedRequestNotRefused {
            sled: u8::try_from(to).unwrap_or(u8::MAX),
            expected,
            refused,
        })
    }
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
