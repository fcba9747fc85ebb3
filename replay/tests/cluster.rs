//! The cluster property test: random racks of 3 to 32 sleds (fresh or
//! LRTQ) run random action sequences (reconfigurations that add and remove
//! sleds, the LRTQ upgrade, abandoned epochs, crashes of any sled including
//! the coordinator, lost, duplicated and reordered messages, link cuts,
//! expungement, loading and clearing secrets, and calm moments in which
//! Nexus gets its work done), with every safety invariant checked after
//! every step and the liveness check at the end.
//!
//! Racks of up to 8 sleds are drawn three times as often as larger ones (a
//! rack of 32 costs far more per step). The calm moments
//! ([`Action::Settle`]) let a case go through many reconfigurations; the
//! run prints how many commits each case reached (before the liveness
//! check) and checks that they average at least [`MIN_MEAN_COMMITS`].
//!
//! # Running more cases, and reproducing a failure
//!
//! - `PROPTEST_CASES=5000 cargo test -p tq-replay --test cluster --release
//!   -- --nocapture` runs more cases (the default is [`DEFAULT_CASES`]) and
//!   prints the coverage and the spread of commits per case.
//! - The long run, a million cases (about five hours of one core: 100,000
//!   cases took under 1,736 s of CPU, see `harness/README.md`), with a fixed
//!   seed so that it can be repeated:
//!   `PROPTEST_CASES=1000000 PROPTEST_RNG_SEED=1 cargo test -p tq-replay
//!   --test cluster --release -- --nocapture`.
//! - Each run draws a random proptest seed, unless `PROPTEST_RNG_SEED=<u64>`
//!   fixes it: the same seed and case count replay the same cases.
//! - A failure prints the shrunk case (`Case { lrtq, sleds, members, seed,
//!   actions }`): a run is a pure function of it (the cluster draws every
//!   random choice from `seed`, the LRTQ rack from a fixed seed per size),
//!   so pasting it into [`replay`]'s call reproduces it exactly. The
//!   failure also writes the case as an event log and prints its path:
//!   `cargo run -p tq-replay -- <path>` steps through it (see the
//!   harness README). Proptest
//!   also appends it to `replay/tests/cluster.proptest-regressions`, and
//!   every later run tries the saved seeds first: commit that file with the
//!   fix. A saved seed makes the same case only while the strategies stay
//!   the same, so [`saved_regressions_replay`] also replays each case as
//!   the file prints it (`# shrinks to Case { ... }`), whatever the
//!   strategies became.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestError, TestRunner};
use tq_core::crypto::RackSecret;
use tq_core::persistent::LrtqShareData;
use tq_harness::nexus::NexusStats;
use tq_harness::{Action, Change, Cluster, MAX_SLEDS, RunStats, Violation};
use tq_replay::session::{SessionError, Stepped};
use tq_replay::{Check, EventLog, RunEvent, Session};
use tq_test_fixtures::{RACK, lrtq_rack, with_big_stack};

/// Cases per run when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

/// Most actions in one case.
const MAX_ACTIONS: usize = 400;

/// Fewest commits a case must reach on average (before the liveness
/// check), checked when a run has at least 100 cases.
const MIN_MEAN_COMMITS: f64 = 5.0;

/// The cluster every case runs in: room for a whole rack.
type Rack = Cluster<MAX_SLEDS>;

/// One generated run.
#[derive(Clone, Debug)]
struct Case {
    lrtq: bool,
    sleds: usize,
    members: usize,
    seed: u64,
    actions: Vec<Action>,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        any::<u8>().prop_map(Change::Add),
        any::<u8>().prop_map(Change::Remove),
        Just(Change::Same),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let pair = || (any::<u8>(), any::<u8>());
    prop_oneof![
        40 => any::<u8>().prop_map(Action::Deliver),
        3 => Just(Action::DeliverAll),
        3 => any::<u8>().prop_map(Action::Duplicate),
        3 => any::<u8>().prop_map(Action::Drop),
        4 => pair().prop_map(|(a, b)| Action::Connect(a, b)),
        3 => pair().prop_map(|(a, b)| Action::Disconnect(a, b)),
        3 => any::<u8>().prop_map(Action::Crash),
        4 => any::<u8>().prop_map(Action::Restart),
        9 => (change(), any::<u8>(), any::<u8>()).prop_map(|(change, coordinator, threshold)| {
            Action::Reconfigure { change, coordinator, threshold }
        }),
        12 => Just(Action::NexusPoll),
        12 => any::<u8>().prop_map(Action::NexusCommit),
        1 => any::<u8>().prop_map(Action::NexusAbandon),
        6 => pair().prop_map(|(sled, back)| Action::LoadSecret { sled, back }),
        2 => any::<u8>().prop_map(Action::ClearSecrets),
        8 => Just(Action::Settle),
    ]
}

/// Members at the start: up to 8 three times in four, else up to 32.
fn members() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 3usize..=8, 1 => 9usize..=MAX_SLEDS]
}

fn case() -> impl Strategy<Value = Case> {
    (any::<bool>(), members(), 0usize..=2, any::<u64>()).prop_flat_map(
        move |(lrtq, members, spares, seed)| {
            let sleds = (members + spares).min(MAX_SLEDS);
            proptest::collection::vec(action(), 1..=MAX_ACTIONS).prop_map(move |actions| Case {
                lrtq,
                sleds,
                members,
                seed,
                actions,
            })
        },
    )
}

/// One LRTQ rack: each sled's share data and the secret.
type LrtqRack = (Vec<LrtqShareData>, RackSecret);

/// The LRTQ rack of each size, made once (vsss-rs is slow in debug).
fn cached_lrtq_rack(members: usize) -> LrtqRack {
    static RACKS: OnceLock<Mutex<HashMap<usize, LrtqRack>>> = OnceLock::new();
    let racks = RACKS.get_or_init(Default::default);
    racks
        .lock()
        .unwrap()
        .entry(members)
        .or_insert_with(|| lrtq_rack(members, lrtq_seed(members)))
        .clone()
}

/// The seed the LRTQ rack of `members` sleds is split with.
fn lrtq_seed(members: usize) -> u64 {
    0x4c52_5451 + members as u64
}

/// `case` as an event log for `tq-replay`: its actions, then the liveness
/// check.
fn event_log(case: &Case) -> EventLog {
    let rack = tq_replay::Rack {
        rack_id: RACK,
        capacity: Rack::CAPACITY,
        sleds: case.sleds,
        members: case.members,
        seed: case.seed,
        lrtq_seed: case.lrtq.then(|| lrtq_seed(case.members)),
    };
    let mut log = EventLog::new("replay/tests/cluster.rs, a failing case", rack);
    log.events = case.actions.iter().copied().map(RunEvent::Act).collect();
    log.events.push(RunEvent::Check(Check::Liveness));
    log
}

/// Writes the event log of a failing case where cargo keeps the tests'
/// files, and returns its path.
fn write_event_log(case: &Case) -> std::io::Result<PathBuf> {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-{:016x}.json", case.seed));
    event_log(case)
        .write(&path)
        .map_err(std::io::Error::other)?;
    Ok(path)
}

/// What all cases did together, to show the run covered what it claims.
#[derive(Default, Debug)]
struct Coverage {
    cases: u32,
    stats: RunStats,
    nexus: NexusStats,
    duplicated: u32,
    dropped: u32,
    dropped_full: u32,
    /// Cases whose rack had more than 8 sleds, and the largest rack.
    cases_above_8_sleds: u32,
    largest_rack: usize,
    /// Commits of racks with more than 8 members, the largest threshold
    /// committed, and commits whose crash tolerance `Z` was 3.
    commits_above_8_members: u32,
    largest_threshold: u8,
    commits_with_z_3: u32,
    /// The largest LRTQ threshold of an upgraded rack.
    largest_lrtq_threshold: usize,
    /// Commits each case reached before the liveness check.
    commits_per_case: PerCase,
}

/// One number per case (printed as a spread, not one by one).
#[derive(Default)]
struct PerCase(Vec<u32>);

impl std::fmt::Debug for PerCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} cases (see the spread below)", self.0.len())
    }
}

/// What one case saw of its commits, step by step.
#[derive(Default)]
struct CaseCommits {
    last: Option<tq_core::ids::Epoch>,
    above_8_members: u32,
    largest_threshold: u8,
    with_z_3: u32,
}

impl CaseCommits {
    /// Looks at Nexus's latest configuration after a step.
    fn observe(&mut self, cluster: &Rack) {
        let Some(config) = cluster.nexus().latest_config() else {
            return;
        };
        if self.last == Some(config.epoch()) {
            return;
        }
        self.last = Some(config.epoch());
        let (n, k) = (config.members().len(), config.threshold());
        self.largest_threshold = self.largest_threshold.max(k.get());
        if n > 8 {
            self.above_8_members += 1;
        }
        if tq_core::api::crash_tolerance(n - usize::from(k.get())) == 3 {
            self.with_z_3 += 1;
        }
    }
}

impl Coverage {
    fn add(&mut self, case: &Case, cluster: &Rack, commits: &CaseCommits, before_liveness: u32) {
        let (s, n, net) = (
            cluster.stats(),
            cluster.nexus().stats(),
            cluster.network().stats(),
        );
        self.cases += 1;
        self.stats.actions += s.actions;
        self.stats.crashes += s.crashes;
        self.stats.restarts += s.restarts;
        self.stats.secrets_loaded += s.secrets_loaded;
        self.stats.expunged += s.expunged;
        self.nexus.started += n.started;
        self.nexus.committed += n.committed;
        self.nexus.member_commits += n.member_commits;
        self.nexus.upgrades += n.upgrades;
        self.nexus.abandoned += n.abandoned;
        self.nexus.abandoned_automatically += n.abandoned_automatically;
        self.nexus.removals += n.removals;
        self.nexus.additions += n.additions;
        self.nexus.prepare_and_commits += n.prepare_and_commits;
        self.duplicated += net.duplicated;
        self.dropped += net.dropped_by_action;
        self.dropped_full += net.dropped_full;
        if case.sleds > 8 {
            self.cases_above_8_sleds += 1;
        }
        self.largest_rack = self.largest_rack.max(case.sleds);
        self.commits_above_8_members += commits.above_8_members;
        self.largest_threshold = self.largest_threshold.max(commits.largest_threshold);
        self.commits_with_z_3 += commits.with_z_3;
        if case.lrtq && n.upgrades > 0 {
            self.largest_lrtq_threshold = self.largest_lrtq_threshold.max(case.members / 2 + 1);
        }
        self.commits_per_case.0.push(before_liveness);
    }

    /// Mean commits per case before the liveness check.
    fn mean_commits(&self) -> f64 {
        let total: u64 = self.commits_per_case.0.iter().map(|&c| u64::from(c)).sum();
        total as f64 / self.commits_per_case.0.len().max(1) as f64
    }

    /// The spread of commits per case: min, quartiles, mean, max, and a
    /// histogram.
    fn spread(&self) -> String {
        let mut sorted = self.commits_per_case.0.clone();
        sorted.sort_unstable();
        let Some(&max) = sorted.last() else {
            return "no cases".into();
        };
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let mut out = format!(
            "commits per case before the liveness check ({} cases): min {}, 25% {}, median {}, \
             75% {}, mean {:.2}, max {}\n",
            sorted.len(),
            sorted[0],
            at(0.25),
            at(0.5),
            at(0.75),
            self.mean_commits(),
            max
        );
        let buckets = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 4),
            (5, 7),
            (8, 11),
            (12, 19),
            (20, u32::MAX),
        ];
        for (lo, hi) in buckets {
            let count = sorted.iter().filter(|&&c| (lo..=hi).contains(&c)).count();
            let label = match hi {
                u32::MAX => format!("{lo}+"),
                hi if hi == lo => format!("{lo}"),
                hi => format!("{lo}-{hi}"),
            };
            let bar = "#".repeat((count * 60).div_ceil(sorted.len()));
            out += &format!("  {label:>6}: {count:>8} {bar}\n");
        }
        out
    }
}

/// Runs one case: every action with the safety checks, then liveness.
/// The case runs as its event log does in `tq-replay`, so the log of a
/// failing case shows exactly what failed.
fn run(case: &Case, coverage: Option<&RefCell<Coverage>>) -> Result<(), Violation> {
    let lrtq = case.lrtq.then(|| cached_lrtq_rack(case.members));
    let mut session = match Session::<MAX_SLEDS>::with_lrtq_rack(event_log(case), lrtq) {
        Ok(session) => session,
        Err(SessionError::Setup(violation)) => return Err(violation),
        Err(e) => panic!("{e}"),
    };
    let mut commits = CaseCommits::default();
    let mut before_liveness = 0;
    while let Some(event) = session.next_event() {
        if *event == RunEvent::Check(Check::Liveness) {
            before_liveness = session.cluster().nexus().stats().committed;
        }
        if let Stepped::Failed(failure) = session.step() {
            return Err(failure.violation);
        }
        commits.observe(session.cluster());
    }
    if let Some(coverage) = coverage {
        coverage
            .borrow_mut()
            .add(case, session.cluster(), &commits, before_liveness);
    }
    Ok(())
}

/// Replays one case printed by a failure, outside proptest.
#[allow(dead_code)]
fn replay(case: Case) {
    with_big_stack(move || run(&case, None).unwrap());
}

#[test]
fn random_runs_keep_every_invariant_and_stay_live() {
    with_big_stack(|| {
        let mut config = ProptestConfig::default();
        if std::env::var("PROPTEST_CASES").is_err() {
            config.cases = DEFAULT_CASES;
        }
        config.source_file = Some(file!());
        if std::env::var("PROPTEST_MAX_SHRINK_ITERS").is_err() {
            config.max_shrink_iters = 2048;
        }
        config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        )));
        let cases = config.cases;
        let mut runner = TestRunner::new(config);
        let coverage = RefCell::new(Coverage::default());
        let started = Instant::now();
        let outcome = runner.run(&case(), |case| {
            run(&case, Some(&coverage)).map_err(|v| TestCaseError::fail(format!("{v:?}")))
        });
        if let Err(e) = outcome {
            if let TestError::Fail(_, case) = &e {
                match write_event_log(case) {
                    Ok(path) => eprintln!(
                        "the shrunk case's event log: {}\nstep through it with: cargo run -p tq-replay -- {}",
                        path.display(),
                        path.display()
                    ),
                    Err(write) => eprintln!("could not write the event log: {write}"),
                }
            }
            panic!("{e}");
        }
        let elapsed = started.elapsed();
        let coverage = coverage.into_inner();
        println!("{coverage:#?}");
        print!("{}", coverage.spread());
        println!(
            "{} cases in {:.1} s ({:.1} ms a case)",
            coverage.cases,
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / f64::from(coverage.cases.max(1))
        );
        // The run reached what it claims to test (with enough cases for
        // each to be near certain).
        if cases >= 100 {
            assert!(coverage.mean_commits() >= MIN_MEAN_COMMITS);
            assert!(coverage.nexus.upgrades > 0);
            assert!(coverage.nexus.abandoned > 0);
            assert!(coverage.nexus.removals > 0);
            assert!(coverage.nexus.additions > 0);
            assert!(coverage.nexus.prepare_and_commits > 0);
            assert!(coverage.stats.crashes > 0);
            assert!(coverage.stats.expunged > 0);
            assert!(coverage.duplicated > 0 && coverage.dropped > 0);
            assert!(coverage.cases_above_8_sleds > 0);
            assert!(coverage.commits_above_8_members > 0);
        }
    });
}

/// Every case saved in `cluster.proptest-regressions`, replayed as the
/// file prints it (the saved seeds make other cases once the strategies
/// change).
#[test]
fn saved_regressions_replay() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cluster.proptest-regressions"
    );
    let saved = std::fs::read_to_string(path).unwrap();
    let cases: Vec<Case> = saved
        .lines()
        .filter_map(|line| line.split_once("# shrinks to "))
        .map(|(_, case)| parse::case(case))
        .collect();
    assert!(!cases.is_empty());
    with_big_stack(move || {
        for case in &cases {
            if let Err(v) = run(case, None) {
                let log = write_event_log(case);
                panic!("{v:?} in {case:?}; its event log: {log:?}");
            }
        }
    });
}

/// Reads a `Case` back from its `Debug` form.
mod parse {
    use super::{Action, Case, Change};

    /// The tokens of a `Debug` form: words (names and numbers) and single
    /// punctuation characters.
    struct Tokens<'a>(std::iter::Peekable<std::str::CharIndices<'a>>, &'a str);

    impl<'a> Tokens<'a> {
        fn next(&mut self) -> &'a str {
            while self.0.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            let Some((start, c)) = self.0.next() else {
                return "";
            };
            if !c.is_alphanumeric() {
                return &self.1[start..start + c.len_utf8()];
            }
            let mut end = start + c.len_utf8();
            while let Some((i, c)) = self.0.next_if(|(_, c)| c.is_alphanumeric() || *c == '_') {
                end = i + c.len_utf8();
            }
            &self.1[start..end]
        }

        fn expect(&mut self, want: &str) {
            assert_eq!(self.next(), want);
        }

        fn number<T: std::str::FromStr>(&mut self) -> T
        where
            T::Err: std::fmt::Debug,
        {
            self.next().parse().unwrap()
        }

        /// `name: number,` or `name: number }` inside braces.
        fn field<T: std::str::FromStr>(&mut self, name: &str) -> T
        where
            T::Err: std::fmt::Debug,
        {
            self.expect(name);
            self.expect(":");
            self.number()
        }

        /// `(number)`.
        fn arg(&mut self) -> u8 {
            self.expect("(");
            let n = self.number();
            self.expect(")");
            n
        }
    }

    pub(super) fn case(text: &str) -> Case {
        let mut t = Tokens(text.char_indices().peekable(), text);
        t.expect("Case");
        t.expect("{");
        t.expect("lrtq");
        t.expect(":");
        let lrtq = t.next() == "true";
        t.expect(",");
        let sleds = t.field("sleds");
        t.expect(",");
        let members = t.field("members");
        t.expect(",");
        let seed = t.field("seed");
        t.expect(",");
        t.expect("actions");
        t.expect(":");
        t.expect("[");
        let mut actions = Vec::new();
        loop {
            match t.next() {
                "]" => break,
                "," => continue,
                name => actions.push(action(name, &mut t)),
            }
        }
        Case {
            lrtq,
            sleds,
            members,
            seed,
            actions,
        }
    }

    fn action(name: &str, t: &mut Tokens<'_>) -> Action {
        match name {
            "Deliver" => Action::Deliver(t.arg()),
            "DeliverAll" => Action::DeliverAll,
            "Duplicate" => Action::Duplicate(t.arg()),
            "Drop" => Action::Drop(t.arg()),
            "Connect" | "Disconnect" => {
                t.expect("(");
                let a = t.number();
                t.expect(",");
                let b = t.number();
                t.expect(")");
                if name == "Connect" {
                    Action::Connect(a, b)
                } else {
                    Action::Disconnect(a, b)
                }
            }
            "Crash" => Action::Crash(t.arg()),
            "Restart" => Action::Restart(t.arg()),
            "Reconfigure" => {
                t.expect("{");
                t.expect("change");
                t.expect(":");
                let change = match t.next() {
                    "Add" => Change::Add(t.arg()),
                    "Remove" => Change::Remove(t.arg()),
                    "Same" => Change::Same,
                    other => panic!("unknown change {other}"),
                };
                t.expect(",");
                let coordinator = t.field("coordinator");
                t.expect(",");
                let threshold = t.field("threshold");
                t.expect("}");
                Action::Reconfigure {
                    change,
                    coordinator,
                    threshold,
                }
            }
            "NexusPoll" => Action::NexusPoll,
            "NexusCommit" => Action::NexusCommit(t.arg()),
            "NexusAbandon" => Action::NexusAbandon(t.arg()),
            "LoadSecret" => {
                t.expect("{");
                let sled = t.field("sled");
                t.expect(",");
                let back = t.field("back");
                t.expect("}");
                Action::LoadSecret { sled, back }
            }
            "ClearSecrets" => Action::ClearSecrets(t.arg()),
            "Settle" => Action::Settle,
            other => panic!("unknown action {other}"),
        }
    }

    #[test]
    fn a_printed_case_reads_back() {
        let case = Case {
            lrtq: true,
            sleds: 17,
            members: 15,
            seed: 12345678901234567890,
            actions: vec![
                Action::Deliver(3),
                Action::Connect(1, 250),
                Action::Reconfigure {
                    change: Change::Remove(7),
                    coordinator: 2,
                    threshold: 9,
                },
                Action::Reconfigure {
                    change: Change::Same,
                    coordinator: 0,
                    threshold: 1,
                },
                Action::LoadSecret { sled: 4, back: 0 },
                Action::Settle,
                Action::NexusAbandon(8),
            ],
        };
        let back = super::parse::case(&format!("{case:?}"));
        assert_eq!(format!("{back:?}"), format!("{case:?}"));
    }
}
