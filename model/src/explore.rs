//! The breadth-first search.
//!
//! States are not kept: each is a whole simulated rack (hundreds of KiB),
//! and it cannot be written out and read back (a node's in-memory state is
//! the core's own). What is kept per state is its fingerprint, its parent
//! and the step from the parent (48 bytes), plus its fingerprint in the
//! set of states seen: a tree of shortest paths. Each layer of the search is re-created by walking that tree
//! depth first with one cloned rack per level of the current path, so a
//! state is re-created from its parent by one step (and checked to have
//! the fingerprint it had when found: the search stops if the model is not
//! deterministic), and the whole layer costs about one step per state of
//! the layers above it, not one path from the start per state.
//!
//! Per state found: the harness's checker has run after every action of the
//! step (invariants 1 to 6 and the secret agreement of 7, see
//! `tq_harness::invariants`), the secrecy check runs ([`crate::secrecy`],
//! invariant 8), and the liveness check runs on a copy (heal the network,
//! restart every sled, let Nexus finish, every member loads the secret of
//! every retained epoch and they agree: invariant 7) as [`Liveness`] says.
//! The first failure ends the search; being breadth first, its path is a
//! shortest one.

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::time::{Duration, Instant};

use tq_core::crypto::RackSecret;
use tq_core::persistent::LrtqShareData;
use tq_harness::{Action, RackStart, Violation};
use tq_test_fixtures::{RACK, lrtq_rack};

use crate::Cluster;
use crate::bounds::{Bounds, Liveness, Start};
use crate::fingerprint::{self, Fingerprint, PassThrough};
use crate::secrecy::{self, Leak};
use crate::step::{self, Step, Taken};

/// What the rack starts from: for an LRTQ rack, each sled's LRTQ share
/// data and the LRTQ secret (made once per size, from a fixed seed).
pub struct Rack {
    bounds: Bounds,
    lrtq: Option<(Vec<LrtqShareData>, RackSecret)>,
}

impl Rack {
    /// The rack `bounds` describe.
    pub fn new(bounds: Bounds) -> Self {
        let lrtq = bounds
            .start
            .is_lrtq()
            .then(|| lrtq_rack(bounds.members, 0x4c52_5451 + bounds.members as u64));
        Self { bounds, lrtq }
    }

    /// The rack as the harness builds it, before any step.
    pub fn cluster(&self) -> Result<Box<Cluster>, Violation> {
        let start = match &self.lrtq {
            Some((data, secret)) => RackStart::Lrtq { data, secret },
            None => RackStart::Fresh,
        };
        let b = &self.bounds;
        let mut cluster = Box::new(Cluster::new(b.seed, RACK, b.sleds, b.members, start)?);
        if matches!(b.start, Start::Committed | Start::Upgraded) {
            // The harness's own driving: the first reconfiguration, to a
            // commit every member confirmed, and a quiet network.
            cluster.nexus_finish()?;
        }
        Ok(cluster)
    }

    fn lrtq_secret(&self) -> Option<&RackSecret> {
        self.lrtq.as_ref().map(|(_, secret)| secret)
    }
}

/// What broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The harness's checker, while taking the last step.
    Step(Violation),
    /// The liveness check from the state the path reaches.
    Liveness(Violation),
    /// A secret in `Debug` output in the state the path reaches.
    Secrecy(Leak),
    /// Re-creating a state by the same step gave another fingerprint, or
    /// the step was not possible: the model is not deterministic, and the
    /// search cannot be trusted.
    Nondeterministic,
}

/// A failure and a shortest path to it.
#[derive(Clone, Debug)]
pub struct Found {
    /// What broke.
    pub failure: Failure,
    /// The steps from the start.
    pub path: Vec<Step>,
    /// The same path as the harness's actions, to replay it without the
    /// model (after reseeding, see [`replay`]).
    pub actions: Vec<Action>,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:?}", self.failure)?;
        writeln!(f, "shortest path ({} steps):", self.path.len())?;
        for (i, step) in self.path.iter().enumerate() {
            writeln!(f, "  {:>2}. {step}", i + 1)?;
        }
        match self.failure {
            Failure::Liveness(_) => writeln!(f, "  then: heal the network and let Nexus finish"),
            Failure::Secrecy(_) => writeln!(f, "  then: render every part with Debug"),
            _ => Ok(()),
        }
    }
}

/// What a state shows, counted over the states explored, so a run shows
/// what it covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// States where Nexus has committed an epoch.
    pub with_commit: u64,
    /// States where Nexus has committed two epochs or more.
    pub with_two_commits: u64,
    /// States with a sled down.
    pub with_sled_down: u64,
    /// States where the coordinator of the pending epoch is running it.
    pub with_running_coordination: u64,
    /// States where Nexus has abandoned an epoch.
    pub with_abandoned_epoch: u64,
    /// States where a sled loaded a secret on the way.
    pub with_secret_loaded: u64,
    /// States where every member of the latest commit confirmed it.
    pub with_commit_confirmed_everywhere: u64,
    /// The highest epoch Nexus committed in any state.
    pub highest_commit: u64,
}

impl Coverage {
    fn add(&mut self, cluster: &Cluster) {
        let nexus = cluster.nexus();
        let stats = nexus.stats();
        let count = |flag: bool, n: &mut u64| *n += u64::from(flag);
        count(stats.committed >= 1, &mut self.with_commit);
        count(stats.committed >= 2, &mut self.with_two_commits);
        let down = (0..cluster.sled_count()).any(|i| !cluster.sled(i).is_some_and(|s| s.is_up()));
        count(down, &mut self.with_sled_down);
        let running = nexus
            .pending()
            .is_some_and(|p| p.phase == tq_nexus::Phase::Running);
        count(running, &mut self.with_running_coordination);
        count(stats.abandoned >= 1, &mut self.with_abandoned_epoch);
        count(
            cluster.stats().secrets_loaded >= 1,
            &mut self.with_secret_loaded,
        );
        let latest = nexus.latest_committed();
        let all = latest.is_some_and(|l| l.members & !nexus.commit_confirmed() == 0);
        count(all, &mut self.with_commit_confirmed_everywhere);
        if let Some(latest) = latest {
            self.highest_commit = self.highest_commit.max(latest.epoch.0);
        }
    }
}

/// What one search did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Distinct states found (the start included).
    pub unique: u64,
    /// Steps taken from a state to a new or known state.
    pub transitions: u64,
    /// Steps taken again to re-create states of earlier layers.
    pub recreated: u64,
    /// New states per depth (index 0: the start).
    pub per_depth: Vec<u64>,
    /// States the liveness check ran from.
    pub liveness_checked: u64,
    /// States not explored further because Nexus went past the epoch
    /// bound on its own.
    pub past_epoch_bound: u64,
    /// Whether every state within the bound was explored (false when a
    /// failure stopped the search).
    pub complete: bool,
    /// What the states showed.
    pub coverage: Coverage,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    /// The deepest layer that has a state.
    pub fn depth(&self) -> usize {
        self.per_depth.len().saturating_sub(1)
    }
}

/// One state of the tree of shortest paths.
struct Node {
    parent: u32,
    step: Step,
    fingerprint: Fingerprint,
}

type Seen = HashSet<Fingerprint, BuildHasherDefault<PassThrough>>;

/// The search: the tree of shortest paths and the set of states seen.
struct Search<'a> {
    rack: &'a Rack,
    bounds: Bounds,
    nodes: Vec<Node>,
    seen: Seen,
    report: Report,
    /// Clusters no longer used, copied into again instead of allocated.
    spare: Vec<Box<Cluster>>,
}

/// Runs the breadth-first search within `bounds`; `on_layer` hears about
/// each finished layer (for progress output). Returns the report and the
/// first failure, if one was found.
pub fn explore(bounds: &Bounds, on_layer: &mut dyn FnMut(&Report)) -> (Report, Option<Found>) {
    let started = Instant::now();
    let rack = Rack::new(*bounds);
    let mut search = Search {
        rack: &rack,
        bounds: *bounds,
        nodes: Vec::new(),
        seen: Seen::default(),
        report: Report::default(),
        spare: Vec::new(),
    };
    let found = search.run(on_layer);
    search.report.complete = found.is_none();
    search.report.elapsed = started.elapsed();
    (search.report, found)
}

impl Search<'_> {
    fn run(&mut self, on_layer: &mut dyn FnMut(&Report)) -> Option<Found> {
        let root = match self.rack.cluster() {
            Ok(root) => root,
            Err(violation) => return Some(self.found(Failure::Step(violation), 0, None)),
        };
        let fp = fingerprint::of(&root);
        self.nodes.push(Node {
            parent: 0,
            step: Step::Poll,
            fingerprint: fp,
        });
        self.seen.insert(fp);
        self.report.unique = 1;
        self.report.per_depth.push(1);
        if let Some(failure) = self.check_state(&root, 0) {
            return Some(self.found(failure, 0, None));
        }
        on_layer(&self.report);
        let mut layer = 0..1;
        let mut steps = Vec::new();
        for _depth in 0..self.bounds.max_depth {
            let next = self.nodes.len();
            // The clusters along the current path: the start, then one per
            // level.
            let start = self.copy(&root);
            let mut path: Vec<(u32, Box<Cluster>)> = vec![(0, start)];
            for index in layer.clone() {
                let index = index as u32;
                if let Err(failure) = self.walk_to(&mut path, index) {
                    return Some(self.found(failure, index, None));
                }
                let Some((_, state)) = path.last() else {
                    break;
                };
                if state.nexus().machine().highest_started().0 > self.bounds.max_epoch {
                    self.report.past_epoch_bound += 1;
                    continue;
                }
                step::enabled(state, &self.bounds, &mut steps);
                for step in &steps {
                    let mut child = self.copy(state);
                    self.report.transitions += 1;
                    let taken = step::take(&mut child, step);
                    match taken {
                        Ok(Taken::Done(_)) => {}
                        Ok(Taken::Impossible) => {
                            return Some(self.found(Failure::Nondeterministic, index, Some(*step)));
                        }
                        Err(violation) => {
                            return Some(self.found(Failure::Step(violation), index, Some(*step)));
                        }
                    }
                    let fp = fingerprint::of(&child);
                    if !self.seen.insert(fp) {
                        self.spare.push(child);
                        continue;
                    }
                    let new = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        parent: index,
                        step: *step,
                        fingerprint: fp,
                    });
                    self.report.unique += 1;
                    if let Some(failure) = self.check_state(&child, self.report.unique - 1) {
                        return Some(self.found(failure, new, None));
                    }
                    self.spare.push(child);
                }
            }
            layer = next..self.nodes.len();
            if layer.is_empty() {
                break;
            }
            self.report.per_depth.push(layer.len() as u64);
            on_layer(&self.report);
        }
        None
    }

    /// Every check a new state gets besides the harness's own: coverage,
    /// secrecy, and (as bounded) liveness on a copy.
    fn check_state(&mut self, state: &Cluster, index: u64) -> Option<Failure> {
        self.report.coverage.add(state);
        if let Err(leak) = secrecy::check(state, self.rack.lrtq_secret()) {
            return Some(Failure::Secrecy(leak));
        }
        if self.bounds.liveness.checks(index) {
            self.report.liveness_checked += 1;
            let mut copy = self.copy(state);
            let healed =
                fingerprint::reseed(&mut copy, &Step::Poll).and_then(|()| copy.check_liveness());
            self.spare.push(copy);
            if let Err(violation) = healed {
                return Some(Failure::Liveness(violation));
            }
        }
        None
    }

    /// Brings `path` to node `index`: keeps the clusters of the ancestors
    /// it shares with the current path and re-creates the rest, one step
    /// each from the parent.
    fn walk_to(&mut self, path: &mut Vec<(u32, Box<Cluster>)>, index: u32) -> Result<(), Failure> {
        let chain = self.chain(index);
        let shared = path
            .iter()
            .zip(&chain)
            .take_while(|((at, _), want)| at == *want)
            .count();
        while path.len() > shared.max(1) {
            if let Some((_, cluster)) = path.pop() {
                self.spare.push(cluster);
            }
        }
        for &node in chain.iter().skip(path.len()) {
            let Some((_, parent)) = path.last() else {
                return Err(Failure::Nondeterministic);
            };
            let mut cluster = self.copy(parent);
            let Some(record) = self.nodes.get(node as usize) else {
                return Err(Failure::Nondeterministic);
            };
            self.report.recreated += 1;
            match step::take(&mut cluster, &record.step) {
                Ok(Taken::Done(_)) if fingerprint::of(&cluster) == record.fingerprint => {}
                _ => return Err(Failure::Nondeterministic),
            }
            path.push((node, cluster));
        }
        Ok(())
    }

    /// A copy of `cluster`, into a spare one if there is one.
    fn copy(&mut self, cluster: &Cluster) -> Box<Cluster> {
        match self.spare.pop() {
            Some(mut spare) => {
                Cluster::clone_from(&mut spare, cluster);
                spare
            }
            None => Box::new(cluster.clone()),
        }
    }

    /// The nodes from the start to `index`.
    fn chain(&self, mut index: u32) -> Vec<u32> {
        let mut chain = vec![index];
        while index != 0 {
            index = self.nodes.get(index as usize).map_or(0, |n| n.parent);
            chain.push(index);
        }
        chain.reverse();
        chain
    }

    /// The failure with its path: to `index`, then `last` if given.
    fn found(&self, failure: Failure, index: u32, last: Option<Step>) -> Found {
        let mut path: Vec<Step> = self
            .chain(index)
            .into_iter()
            .skip(1)
            .filter_map(|i| self.nodes.get(i as usize).map(|n| n.step))
            .collect();
        path.extend(last);
        let actions = replay(self.rack, &path).actions;
        Found {
            failure,
            path,
            actions,
        }
    }
}

/// What taking a path again did.
pub struct Replay {
    /// The harness actions taken (up to the failing one).
    pub actions: Vec<Action>,
    /// The cluster reached, or the violation that stopped it (`None`: a
    /// step was not possible).
    pub end: Result<Box<Cluster>, Option<Violation>>,
}

/// Takes `path` from the start of `rack`, as the search does (reseeding
/// before each step).
pub fn replay(rack: &Rack, path: &[Step]) -> Replay {
    let mut actions = Vec::new();
    let mut cluster = match rack.cluster() {
        Ok(cluster) => cluster,
        Err(violation) => {
            return Replay {
                actions,
                end: Err(Some(violation)),
            };
        }
    };
    for step in path {
        if let Some(taken) = step::actions(&cluster, step) {
            actions.extend(taken);
        }
        let failed = match step::take(&mut cluster, step) {
            Ok(Taken::Done(_)) => continue,
            Ok(Taken::Impossible) => None,
            Err(violation) => Some(violation),
        };
        return Replay {
            actions,
            end: Err(failed),
        };
    }
    Replay {
        actions,
        end: Ok(cluster),
    }
}

/// The liveness setting to use for `bounds`, spelled out for a report.
pub fn describe_liveness(liveness: Liveness) -> String {
    match liveness {
        Liveness::Every => "from every state".into(),
        Liveness::EveryNth(n) => format!("from every {n}-th state"),
        Liveness::Off => "off".into(),
    }
}
