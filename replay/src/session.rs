//! Stepping through a log: the cluster after any number of its events.
//!
//! A run is a pure function of its log, so going back is going forward
//! from the start again: a [`Session`] keeps one cluster and rebuilds it
//! when asked for an earlier position. Positions count applied events:
//! position 0 is the rack as built, position `n` is the state after events
//! `0..n`, and event `n` is the next one.

use tq_core::crypto::RackSecret;
use tq_core::persistent::LrtqShareData;
use tq_harness::{Cluster, DEFAULT_SLEDS, MAX_SLEDS, RackStart, Violation};

use crate::log::{EventLog, RunEvent};

/// The first event that failed, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Its index.
    pub event: usize,
    /// What it broke.
    pub violation: Violation,
}

/// What one step did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stepped {
    /// Event `index` was applied and every check after it passed.
    Applied(usize),
    /// Event `index` was applied and broke something: the session stays
    /// after it, and goes no further.
    Failed(Failure),
    /// Nothing left to apply (the end, or after a failure).
    Stuck,
}

/// Why a session could not start.
#[derive(Debug)]
pub enum SessionError {
    /// The log names a cluster capacity other than the session's.
    Capacity {
        /// The log's.
        log: usize,
        /// The session's.
        session: usize,
    },
    /// The rack could not be built.
    Setup(Violation),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Capacity { log, session } => write!(
                f,
                "the log's cluster holds {log} sleds, this session's {session}"
            ),
            Self::Setup(violation) => write!(f, "the rack could not be built: {violation:?}"),
        }
    }
}

impl std::error::Error for SessionError {}

/// A log being stepped through, in a cluster of capacity `N`.
pub struct Session<const N: usize> {
    log: EventLog,
    lrtq: Option<(Vec<LrtqShareData>, RackSecret)>,
    cluster: Box<Cluster<N>>,
    position: usize,
    failure: Option<Failure>,
}

impl<const N: usize> Session<N> {
    /// Builds the log's rack (position 0). Needs a large stack, as every
    /// cluster does (see `tq_test_fixtures::with_big_stack`).
    pub fn new(log: EventLog) -> Result<Self, SessionError> {
        let lrtq = log
            .rack
            .lrtq_seed
            .map(|seed| tq_test_fixtures::lrtq_rack(log.rack.members, seed));
        Self::with_lrtq_rack(log, lrtq)
    }

    /// [`Session::new`] with the LRTQ rack already split, for a caller
    /// that keeps racks between runs: it must be the one the log's
    /// `lrtq_seed` names (`None` for a fresh rack).
    pub fn with_lrtq_rack(
        log: EventLog,
        lrtq: Option<(Vec<LrtqShareData>, RackSecret)>,
    ) -> Result<Self, SessionError> {
        if log.rack.capacity != N {
            return Err(SessionError::Capacity {
                log: log.rack.capacity,
                session: N,
            });
        }
        let cluster = build(&log, lrtq.as_ref()).map_err(SessionError::Setup)?;
        Ok(Self {
            log,
            lrtq,
            cluster,
            position: 0,
            failure: None,
        })
    }

    /// The log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The cluster at the current position.
    pub fn cluster(&self) -> &Cluster<N> {
        &self.cluster
    }

    /// Events applied so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The event that failed, once the session has applied it.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// The next event, unless the session is at the end or stopped after a
    /// failure.
    pub fn next_event(&self) -> Option<&RunEvent> {
        if self.failure.is_some() {
            return None;
        }
        self.log.events.get(self.position)
    }

    /// Applies the next event.
    pub fn step(&mut self) -> Stepped {
        if self.failure.is_some() {
            return Stepped::Stuck;
        }
        let Some(event) = self.log.events.get(self.position) else {
            return Stepped::Stuck;
        };
        let index = self.position;
        let outcome = event.apply(&mut self.cluster);
        self.position += 1;
        match outcome {
            Ok(()) => Stepped::Applied(index),
            Err(violation) => {
                let failure = Failure {
                    event: index,
                    violation,
                };
                self.failure = Some(failure.clone());
                Stepped::Failed(failure)
            }
        }
    }

    /// Moves to `position` (at most the number of events), rebuilding the
    /// rack to go back. Stops early at a failure; returns the position
    /// reached.
    pub fn goto(&mut self, position: usize) -> Result<usize, SessionError> {
        if position < self.position {
            self.cluster = build(&self.log, self.lrtq.as_ref()).map_err(SessionError::Setup)?;
            self.position = 0;
            self.failure = None;
        }
        while self.position < position {
            if let Stepped::Stuck | Stepped::Failed(_) = self.step() {
                break;
            }
        }
        Ok(self.position)
    }
}

/// Runs `log` to its end, or to its first failure, which it returns, in a
/// cluster of the capacity the log names.
pub fn first_failure(log: EventLog) -> Result<Option<Failure>, SessionError> {
    fn run<const N: usize>(log: EventLog) -> Result<Option<Failure>, SessionError> {
        let mut session = Session::<N>::new(log)?;
        session.goto(usize::MAX)?;
        Ok(session.failure)
    }
    if log.rack.capacity == DEFAULT_SLEDS {
        run::<DEFAULT_SLEDS>(log)
    } else {
        // Any other capacity than the two is refused by `Session::new`.
        run::<MAX_SLEDS>(log)
    }
}

fn build<const N: usize>(
    log: &EventLog,
    lrtq: Option<&(Vec<LrtqShareData>, RackSecret)>,
) -> Result<Box<Cluster<N>>, Violation> {
    let start = match lrtq {
        Some((data, secret)) => RackStart::Lrtq { data, secret },
        None => RackStart::Fresh,
    };
    let rack = &log.rack;
    Ok(Box::new(Cluster::new(
        rack.seed,
        rack.rack_id,
        rack.sleds,
        rack.members,
        start,
    )?))
}
