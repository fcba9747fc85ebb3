//! The cluster property test: random racks (fresh or LRTQ) run random
//! action sequences (reconfigurations that add and remove sleds, the LRTQ
//! upgrade, abandoned epochs, crashes of any sled including the
//! coordinator, lost, duplicated and reordered messages, link cuts,
//! expungement, loading and clearing secrets), with every safety invariant
//! checked after every step and the liveness check at the end.
//!
//! # Running more cases, and reproducing a failure
//!
//! - `PROPTEST_CASES=5000 cargo test -p tq-harness --test cluster --release`
//!   runs more cases (the default is [`DEFAULT_CASES`]).
//! - Each run draws a random proptest seed, unless `PROPTEST_RNG_SEED=<u64>`
//!   fixes it: the same seed and case count replay the same cases.
//! - A failure prints the shrunk case (`Case { lrtq, sleds, members, seed,
//!   actions }`): a run is a pure function of it (the cluster draws every
//!   random choice from `seed`, the LRTQ rack from a fixed seed per size),
//!   so pasting it into [`replay`]'s call reproduces it exactly. Proptest
//!   also appends it to `harness/tests/cluster.proptest-regressions`, and
//!   every later run tries the saved cases first: commit that file with the
//!   fix.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestRunner};
use tq_core::crypto::RackSecret;
use tq_core::persistent::LrtqShareData;
use tq_harness::nexus::NexusStats;
use tq_harness::{Action, Change, Cluster, RackStart, Stats, Violation};
use tq_test_fixtures::{RACK, lrtq_rack, with_big_stack};

/// Cases per run when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

/// Most actions in one case.
const MAX_ACTIONS: usize = 400;

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
        6 => (change(), any::<u8>(), any::<u8>()).prop_map(|(change, coordinator, threshold)| {
            Action::Reconfigure { change, coordinator, threshold }
        }),
        12 => Just(Action::NexusPoll),
        12 => any::<u8>().prop_map(Action::NexusCommit),
        1 => any::<u8>().prop_map(Action::NexusAbandon),
        6 => pair().prop_map(|(sled, back)| Action::LoadSecret { sled, back }),
        2 => any::<u8>().prop_map(Action::ClearSecrets),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (any::<bool>(), 3usize..=6, 0usize..=2, any::<u64>()).prop_flat_map(
        move |(lrtq, members, spares, seed)| {
            let sleds = (members + spares).min(tq_harness::MAX_SLEDS);
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
        .or_insert_with(|| lrtq_rack(members, 0x4c52_5451 + members as u64))
        .clone()
}

/// What all cases did together, to show the run covered what it claims.
#[derive(Default, Debug)]
struct Coverage {
    cases: u32,
    stats: Stats,
    nexus: NexusStats,
    duplicated: u32,
    dropped: u32,
}

impl Coverage {
    fn add(&mut self, cluster: &Cluster) {
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
        self.nexus.removals += n.removals;
        self.nexus.additions += n.additions;
        self.nexus.prepare_and_commits += n.prepare_and_commits;
        self.duplicated += net.duplicated;
        self.dropped += net.dropped_by_action;
    }
}

/// Runs one case: every action with the safety checks, then liveness.
fn run(case: &Case, coverage: Option<&RefCell<Coverage>>) -> Result<(), Violation> {
    let lrtq = case.lrtq.then(|| cached_lrtq_rack(case.members));
    let start = match &lrtq {
        Some((data, secret)) => RackStart::Lrtq { data, secret },
        None => RackStart::Fresh,
    };
    let mut cluster = Cluster::new(case.seed, RACK, case.sleds, case.members, start)?;
    for action in &case.actions {
        cluster.apply(action)?;
    }
    cluster.check_liveness()?;
    if let Some(coverage) = coverage {
        coverage.borrow_mut().add(&cluster);
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
        config.failure_persistence = Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        )));
        let cases = config.cases;
        let mut runner = TestRunner::new(config);
        let coverage = RefCell::new(Coverage::default());
        let outcome = runner.run(&case(), |case| {
            run(&case, Some(&coverage)).map_err(|v| TestCaseError::fail(format!("{v:?}")))
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
        let coverage = coverage.into_inner();
        println!("{coverage:#?}");
        // The run reached what it claims to test (with enough cases for
        // each to be near certain).
        if cases >= 100 {
            assert!(coverage.nexus.committed > coverage.cases);
            assert!(coverage.nexus.upgrades > 0);
            assert!(coverage.nexus.abandoned > 0);
            assert!(coverage.nexus.removals > 0);
            assert!(coverage.nexus.additions > 0);
            assert!(coverage.nexus.prepare_and_commits > 0);
            assert!(coverage.stats.crashes > 0);
            assert!(coverage.stats.expunged > 0);
            assert!(coverage.duplicated > 0 && coverage.dropped > 0);
        }
    });
}
