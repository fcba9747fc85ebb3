//! The event log: a harness run written down so that it can be run again,
//! step by step.
//!
//! A harness run is a pure function of its rack (sizes, seed, LRTQ or
//! fresh) and its events, so the log holds exactly those: no state, no
//! message bytes the run makes itself, and nothing secret. The one
//! exception is a forged message, whose bytes the fuzzer made up; they may
//! be a corrupted copy of a real message and so hold a share of a test
//! rack's secret, which a test log may show.
//!
//! The file is JSON: a header, then one event per line, each an
//! [`RunEvent`] as serde writes it (`{"Act":{"Deliver":3}}`,
//! `{"Inject":{"from":0,"to":2,"bytes":"01ab..."}}`, `{"Check":"Liveness"}`).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tq_core::ids::RackId;
use tq_harness::{Action, Cluster, Violation};

/// The first field of every log, naming its format and version.
pub const FORMAT: &str = "tq-replay event log 1";

/// A run of the harness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLog {
    /// Always [`FORMAT`].
    pub format: String,
    /// Where the run came from: a test and its case, a fuzz input's path.
    pub source: String,
    /// The rack the run starts from.
    pub rack: Rack,
    /// What happened, in order.
    pub events: Vec<RunEvent>,
}

/// How the rack of a run is set up (the arguments of
/// [`tq_harness::Cluster::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rack {
    /// The rack id.
    pub rack_id: RackId,
    /// The cluster's sled capacity: [`tq_harness::DEFAULT_SLEDS`] or
    /// [`tq_harness::MAX_SLEDS`], whichever the run used.
    pub capacity: usize,
    /// Sleds in the rack.
    pub sleds: usize,
    /// Members at the start (the LRTQ sleds of an LRTQ rack).
    pub members: usize,
    /// The cluster's seed: every random choice of the run follows it.
    pub seed: u64,
    /// For an LRTQ rack, the seed `tq_test_fixtures::lrtq_rack` split it
    /// with; `None` for a fresh rack.
    pub lrtq_seed: Option<u64>,
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunEvent {
    /// A harness action ([`Cluster::apply`]).
    Act(Action),
    /// A forged message handed to sled `to` as if from sled `from`
    /// ([`Cluster::inject`]).
    Inject {
        /// Claimed sender's index.
        from: u8,
        /// Receiver's index.
        to: u8,
        /// The bytes, as hex.
        #[serde(with = "hex")]
        bytes: Vec<u8>,
    },
    /// One of the checks a run ends with.
    Check(Check),
}

/// A check that ends a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    /// [`Cluster::check_liveness`]: heal, let Nexus finish, every member
    /// loads every secret and they agree.
    Liveness,
    /// [`Cluster::check_every_state_stored`]: every running sled's state
    /// is the one on its disk.
    Stored,
    /// [`Cluster::heal`] only (a fuzz run whose forger waived liveness).
    Heal,
}

impl RunEvent {
    /// Applies the event to `cluster`, with the invariant checks that
    /// follow it.
    pub fn apply<const N: usize>(&self, cluster: &mut Cluster<N>) -> Result<(), Violation> {
        match self {
            Self::Act(action) => cluster.apply(action),
            Self::Inject { from, to, bytes } => {
                cluster.inject(usize::from(*from), usize::from(*to), bytes)
            }
            Self::Check(Check::Liveness) => cluster.check_liveness(),
            Self::Check(Check::Stored) => cluster.check_every_state_stored(),
            Self::Check(Check::Heal) => cluster.heal(),
        }
    }

    /// The event's kind, as breakpoints name it: the action's variant
    /// (`Deliver`, `NexusPoll`, ...), `Inject`, or the check (`Liveness`,
    /// `Stored`, `Heal`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Act(action) => action_kind(action),
            Self::Inject { .. } => "Inject",
            Self::Check(Check::Liveness) => "Liveness",
            Self::Check(Check::Stored) => "Stored",
            Self::Check(Check::Heal) => "Heal",
        }
    }
}

/// The name of `action`'s variant.
fn action_kind(action: &Action) -> &'static str {
    match action {
        Action::Deliver(_) => "Deliver",
        Action::DeliverAll => "DeliverAll",
        Action::Duplicate(_) => "Duplicate",
        Action::Drop(_) => "Drop",
        Action::Connect(..) => "Connect",
        Action::Disconnect(..) => "Disconnect",
        Action::Crash(_) => "Crash",
        Action::Restart(_) => "Restart",
        Action::Reconfigure { .. } => "Reconfigure",
        Action::NexusPoll => "NexusPoll",
        Action::NexusCommit(_) => "NexusCommit",
        Action::NexusAbandon(_) => "NexusAbandon",
        Action::LoadSecret { .. } => "LoadSecret",
        Action::ClearSecrets(_) => "ClearSecrets",
        Action::Settle => "Settle",
    }
}

/// Every kind [`RunEvent::kind`] returns, for checking a breakpoint's name.
pub const KINDS: &[&str] = &[
    "Deliver",
    "DeliverAll",
    "Duplicate",
    "Drop",
    "Connect",
    "Disconnect",
    "Crash",
    "Restart",
    "Reconfigure",
    "NexusPoll",
    "NexusCommit",
    "NexusAbandon",
    "LoadSecret",
    "ClearSecrets",
    "Settle",
    "Inject",
    "Liveness",
    "Stored",
    "Heal",
];

/// Why a log could not be read or written.
#[derive(Debug)]
pub enum LogError {
    /// The file could not be read or written.
    Io(std::io::Error),
    /// The file is not a log this version reads.
    Format(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Format(why) => write!(f, "not a {FORMAT}: {why}"),
        }
    }
}

impl std::error::Error for LogError {}

impl EventLog {
    /// An empty log of a run from `rack`.
    pub fn new(source: impl Into<String>, rack: Rack) -> Self {
        Self {
            format: FORMAT.to_owned(),
            source: source.into(),
            rack,
            events: Vec::new(),
        }
    }

    /// The log as JSON, one event per line.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"format\": {},", json_line(&self.format));
        let _ = writeln!(out, "  \"source\": {},", json_line(&self.source));
        let _ = writeln!(out, "  \"rack\": {},", json_line(&self.rack));
        out.push_str("  \"events\": [");
        for (i, event) in self.events.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            out.push_str(&json_line(event));
        }
        out.push_str(if self.events.is_empty() {
            "]\n}\n"
        } else {
            "\n  ]\n}\n"
        });
        out
    }

    /// Reads a log from its JSON.
    pub fn from_json(json: &str) -> Result<Self, LogError> {
        let log: Self = serde_json::from_str(json).map_err(|e| LogError::Format(e.to_string()))?;
        if log.format != FORMAT {
            return Err(LogError::Format(format!("format {:?}", log.format)));
        }
        Ok(log)
    }

    /// Writes the log to `path`.
    pub fn write(&self, path: &Path) -> Result<(), LogError> {
        std::fs::write(path, self.to_json()).map_err(LogError::Io)
    }

    /// Reads the log at `path`.
    pub fn read(path: &Path) -> Result<Self, LogError> {
        Self::from_json(&std::fs::read_to_string(path).map_err(LogError::Io)?)
    }
}

/// `value` as one line of JSON.
fn json_line<T: Serialize>(value: &T) -> String {
    // Plain data (strings, numbers, enums of them) always serializes.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use tq_harness::Change;

    use super::*;

    fn rack() -> Rack {
        Rack {
            rack_id: tq_test_fixtures::RACK,
            capacity: tq_harness::DEFAULT_SLEDS,
            sleds: 4,
            members: 3,
            seed: 7,
            lrtq_seed: Some(1003),
        }
    }

    #[test]
    fn a_log_reads_back_and_has_one_event_a_line() {
        let mut log = EventLog::new("test", rack());
        log.events = vec![
            RunEvent::Act(Action::Deliver(3)),
            RunEvent::Act(Action::Reconfigure {
                change: Change::Add(1),
                coordinator: 0,
                threshold: 2,
            }),
            RunEvent::Act(Action::Settle),
            RunEvent::Inject {
                from: 0,
                to: 2,
                bytes: vec![1, 0xab],
            },
            RunEvent::Check(Check::Liveness),
        ];
        let json = log.to_json();
        assert_eq!(EventLog::from_json(&json).unwrap(), log);
        assert!(json.contains("\n    {\"Inject\":{\"from\":0,\"to\":2,\"bytes\":\"01ab\"}},\n"));
        assert!(json.contains("\n    {\"Check\":\"Liveness\"}\n"));
        let empty = EventLog::new("empty", rack());
        assert_eq!(EventLog::from_json(&empty.to_json()).unwrap(), empty);
    }

    #[test]
    fn another_format_is_refused() {
        let json = EventLog::new("x", rack())
            .to_json()
            .replace(FORMAT, "tq-replay event log 0");
        assert!(matches!(
            EventLog::from_json(&json),
            Err(LogError::Format(_))
        ));
    }

    /// Every action the harness reads from bytes, `Settle`, and the other
    /// events: each kind is in [`KINDS`] and is the variant name serde
    /// writes.
    #[test]
    fn every_kind_is_listed_under_its_serde_name() {
        let mut events: Vec<RunEvent> = (0..=255u8)
            .filter_map(|tag| Action::from_bytes(&mut &[tag][..]).map(RunEvent::Act))
            .collect();
        events.push(RunEvent::Act(Action::Settle));
        for event in &events {
            let json = serde_json::to_value(event).unwrap();
            let action = &json["Act"];
            let name = match action.as_object() {
                Some(object) => object.keys().next().unwrap().clone(),
                None => action.as_str().unwrap().to_owned(),
            };
            assert_eq!(event.kind(), name);
        }
        events.push(RunEvent::Inject {
            from: 0,
            to: 0,
            bytes: vec![],
        });
        events.extend([Check::Liveness, Check::Stored, Check::Heal].map(RunEvent::Check));
        let mut kinds: Vec<&str> = events.iter().map(RunEvent::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut listed = KINDS.to_vec();
        listed.sort_unstable();
        assert_eq!(kinds, listed);
    }
}
