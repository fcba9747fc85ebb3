//! The demo's sled daemons: started from their configuration files, killed
//! where they stand (as a crash or a power cut would), started again from
//! their ledgers.
//!
//! In-process (the default), each daemon (node and HTTP API) runs as tasks
//! of this process and a kill aborts them. With processes, each is its own
//! `tq sled --config FILE` child, talking to the others and to Nexus only
//! over the network, and a kill is SIGKILL; its logs go to `sled.log` in
//! its directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tq_driver::{CallFailure, FailureKind};
use tq_std::handle::Unavailable;
use tq_std::health::{self, Reading};
use tq_std::net::HandshakeRefusal;

use super::layout::{Layout, SledFiles};
use crate::api::types::SledStatus;
use crate::config::{ConfigError, SledConfig};
use crate::https::{RackCa, RackCaError};
use crate::nexus::http::{ClientError, HttpSled, Traffic};
use crate::sled::{Daemon, DaemonError};

/// How long a sled may take to answer on its API after it starts.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// How the sleds run.
#[derive(Clone, Debug)]
pub enum Launch {
    /// Each daemon as tasks of this process.
    InProcess,
    /// Each daemon its own process: `exe sled --config FILE`, run through
    /// `wrappers[i]` (a command prefix, e.g. `ip netns exec NS`) if given.
    Processes {
        /// The `tq` binary.
        exe: PathBuf,
        /// Per sled, a command prefix; empty or missing: none.
        wrappers: Vec<Vec<String>>,
    },
}

/// Why a sled could not be started, killed, waited for or read.
#[derive(Debug, thiserror::Error)]
pub enum SledsError {
    /// No sled has this index.
    #[error("no sled {0}")]
    NoSled(usize),
    /// The rack CA's certificate (Nexus's copy) could not be read.
    #[error("the rack CA")]
    RackCa(#[source] RackCaError),
    /// A sled's API client could not be made.
    #[error("sled {index}'s API client")]
    Client {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// A sled's configuration file does not load.
    #[error("sled {index}'s configuration")]
    Config {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// An in-process daemon did not start.
    #[error("cannot start sled {index}")]
    Start {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: DaemonError,
    },
    /// A sled process's log file could not be opened.
    #[error("sled {index}: cannot open {}", .path.display())]
    Log {
        /// The sled.
        index: usize,
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sled process could not be run.
    #[error("sled {index}: cannot run {}", .exe.display())]
    Spawn {
        /// The sled.
        index: usize,
        /// The `tq` binary.
        exe: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sled process exited before its API answered.
    #[error("sled {index} exited at start ({status}); see {}", .log.display())]
    Exited {
        /// The sled.
        index: usize,
        /// How it exited.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
    },
    /// A sled's API did not answer in time after it started.
    #[error("sled {index}'s API did not answer in {within:?}")]
    NotReady {
        /// The sled.
        index: usize,
        /// How long it was given.
        within: Duration,
    },
    /// A sled process could not be sent SIGKILL.
    #[error("cannot SIGKILL sled {index}")]
    Kill {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A killed sled process could not be waited for.
    #[error("waiting for sled {index}")]
    Reap {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sled did not connect to every other one in time.
    #[error("sled {index} connected to {connected} of {peers} peers after {limit:?}")]
    NotConnected {
        /// The sled.
        index: usize,
        /// Peers it was connected to.
        connected: usize,
        /// Peers it should have been connected to.
        peers: usize,
        /// How long it was given.
        limit: Duration,
    },
    /// An in-process sled's node did not hand over its counters.
    #[error("sled {index}'s counters")]
    Metrics {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: Unavailable,
    },
    /// A sled's API did not answer a read.
    #[error("sled {index}'s {what}")]
    Read {
        /// The sled.
        index: usize,
        /// What was read ("counters", "traffic").
        what: &'static str,
        /// Why.
        #[source]
        source: CallFailure,
    },
}

enum Running {
    Task(Daemon),
    Child(Child),
}

/// The rack's daemons.
pub struct Sleds {
    /// The rack on disk.
    pub layout: Layout,
    launch: Launch,
    running: Vec<Option<Running>>,
    /// What the sleds' API certificates are verified under.
    rack_ca: RackCa,
    /// Each sled's API, for the demo's own checks (not Nexus's routes).
    apis: Vec<HttpSled>,
    /// Traffic of each sled's earlier runs (counters restart with it).
    earlier: Vec<Traffic>,
    /// Counters of each sled's earlier runs, by name.
    earlier_counts: Vec<Counts>,
    /// Sleds killed before their counters could be read.
    unread: Vec<usize>,
}

/// A sled's counters by name (see [`tq_std::health`]).
pub type Counts = BTreeMap<String, Reading>;

fn add_readings(counts: &mut Counts, readings: impl IntoIterator<Item = Reading>) {
    for reading in readings {
        counts
            .entry(reading.name.clone())
            .and_modify(|r| r.count += reading.count)
            .or_insert(reading);
    }
}

impl Sleds {
    /// The rack of `layout`, nothing running yet.
    pub fn new(layout: Layout, launch: Launch) -> Result<Self, SledsError> {
        let rack_ca = RackCa::load(&layout.rack_ca).map_err(SledsError::RackCa)?;
        let apis = layout
            .sleds
            .iter()
            .map(|s| {
                HttpSled::new(s.api, s.id.clone(), &rack_ca, Duration::from_secs(30)).map_err(
                    |source| SledsError::Client {
                        index: s.index,
                        source,
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = layout.sleds.len();
        Ok(Self {
            layout,
            launch,
            running: (0..count).map(|_| None).collect(),
            rack_ca,
            apis,
            earlier: vec![Traffic::default(); count],
            earlier_counts: vec![Counts::new(); count],
            unread: Vec::new(),
        })
    }

    /// How many sleds.
    pub fn len(&self) -> usize {
        self.layout.sleds.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.layout.sleds.is_empty()
    }

    /// Sled `i`'s files.
    pub fn files(&self, i: usize) -> Result<&SledFiles, SledsError> {
        self.layout.sleds.get(i).ok_or(SledsError::NoSled(i))
    }

    /// The rack CA the sleds' API certificates are verified under.
    pub fn rack_ca(&self) -> &RackCa {
        &self.rack_ca
    }

    /// Sled `i`'s API.
    pub fn api(&self, i: usize) -> Result<&HttpSled, SledsError> {
        self.apis.get(i).ok_or(SledsError::NoSled(i))
    }

    /// Sled `i`'s node handle, when it runs in this process.
    pub fn handle(&self, i: usize) -> Option<&tq_std::handle::NodeHandle> {
        match self.running.get(i) {
            Some(Some(Running::Task(daemon))) => Some(daemon.handle()),
            _ => None,
        }
    }

    /// Sled `i`'s process id, when it runs as a process (to pause it).
    pub fn pid(&self, i: usize) -> Option<u32> {
        match self.running.get(i) {
            Some(Some(Running::Child(child))) => child.id(),
            _ => None,
        }
    }

    /// Whether sled `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        matches!(self.running.get(i), Some(Some(_)))
    }

    /// Starts sled `i` from its configuration file (and ledger), and waits
    /// until its API answers.
    pub async fn start(&mut self, i: usize) -> Result<(), SledsError> {
        let files = self.files(i)?.clone();
        let running = match &self.launch {
            Launch::InProcess => {
                let config = SledConfig::load(&files.config)
                    .map_err(|source| SledsError::Config { index: i, source })?;
                let daemon = Daemon::start(&config)
                    .await
                    .map_err(|source| SledsError::Start { index: i, source })?;
                Running::Task(daemon)
            }
            Launch::Processes { exe, wrappers } => {
                let path = files.dir.join("sled.log");
                let unopened = |source| SledsError::Log {
                    index: i,
                    path: path.clone(),
                    source,
                };
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(unopened)?;
                let err = log.try_clone().map_err(unopened)?;
                let wrapper = wrappers.get(i).filter(|w| !w.is_empty());
                let mut command = match wrapper.and_then(|w| w.split_first()) {
                    Some((program, args)) => {
                        let mut c = Command::new(program);
                        c.args(args).arg(exe);
                        c
                    }
                    None => Command::new(exe),
                };
                command
                    .arg("sled")
                    .arg("--config")
                    .arg(&files.config)
                    .env("TQ_LOG", std::env::var("TQ_LOG").unwrap_or("info".into()))
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err)
                    .kill_on_drop(true);
                let child = command.spawn().map_err(|source| SledsError::Spawn {
                    index: i,
                    exe: exe.clone(),
                    source,
                })?;
                Running::Child(child)
            }
        };
        if let Some(slot) = self.running.get_mut(i) {
            *slot = Some(running);
        }
        self.wait_ready(i).await
    }

    /// Waits until sled `i`'s API answers its status.
    async fn wait_ready(&mut self, i: usize) -> Result<(), SledsError> {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Some(Some(Running::Child(child))) = self.running.get_mut(i)
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = self.files(i)?.dir.join("sled.log");
                return Err(SledsError::Exited {
                    index: i,
                    status,
                    log,
                });
            }
            if self.status(i).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SledsError::NotReady {
                    index: i,
                    within: READY_WITHIN,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills sled `i` where it stands: SIGKILL for a process, the tasks
    /// aborted in-process. Its traffic counters are read first (they
    /// restart with it).
    pub async fn kill(&mut self, i: usize) -> Result<(), SledsError> {
        if let Ok(traffic) = self.traffic_of(i).await
            && let Some(earlier) = self.earlier.get_mut(i)
        {
            *earlier = *earlier + traffic;
        }
        if self.is_running(i) {
            match self.readings_now(i).await {
                Ok(now) => {
                    if let Some(earlier) = self.earlier_counts.get_mut(i) {
                        add_readings(earlier, now);
                    }
                }
                Err(_) => self.unread.push(i),
            }
        }
        let running = self.running.get_mut(i).and_then(Option::take);
        match running {
            Some(Running::Task(daemon)) => daemon.crash().await,
            Some(Running::Child(mut child)) => {
                child
                    .start_kill()
                    .map_err(|source| SledsError::Kill { index: i, source })?;
                child
                    .wait()
                    .await
                    .map_err(|source| SledsError::Reap { index: i, source })?;
            }
            None => {}
        }
        Ok(())
    }

    /// Stops every sled: cleanly in-process, SIGKILL for processes (their
    /// ledgers are about to be removed with the directory).
    pub async fn stop_all(&mut self) {
        for i in 0..self.running.len() {
            let running = self.running.get_mut(i).and_then(Option::take);
            match running {
                Some(Running::Task(daemon)) => daemon.stop().await,
                Some(Running::Child(mut child)) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
                None => {}
            }
        }
    }

    /// Sled `i`'s status.
    pub async fn status(&self, i: usize) -> Result<SledStatus, CallFailure> {
        let api = self
            .apis
            .get(i)
            .ok_or_else(|| CallFailure::new(FailureKind::NoRoute, format!("no sled {i}")))?;
        api.sled_status().await
    }

    /// Waits until each sled of `among` is connected to every other one.
    pub async fn wait_connected(&self, among: &[usize], limit: Duration) -> Result<(), SledsError> {
        let deadline = tokio::time::Instant::now() + limit;
        let ids: Vec<_> = among
            .iter()
            .filter_map(|&i| self.files(i).ok().map(|f| f.id.clone()))
            .collect();
        for &i in among {
            loop {
                let connected = match self.status(i).await {
                    Ok(status) => status
                        .peers
                        .iter()
                        .filter(|p| p.connected && ids.contains(&p.id))
                        .count(),
                    Err(_) => 0,
                };
                if connected + 1 >= among.len() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(SledsError::NotConnected {
                        index: i,
                        connected,
                        peers: among.len() - 1,
                        limit,
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Traffic sent by every sled so far (earlier runs included).
    pub async fn traffic(&self) -> Traffic {
        let mut total = Traffic::default();
        for i in 0..self.len() {
            total = total + self.earlier.get(i).copied().unwrap_or_default();
            if self.is_running(i)
                && let Ok(now) = self.traffic_of(i).await
            {
                total = total + now;
            }
        }
        total
    }

    /// Handshakes sled `i` refused for `reason` in its current run, as
    /// its `/metrics` say (so with processes too); `None` if it did not
    /// answer.
    pub async fn refused(&self, i: usize, reason: HandshakeRefusal) -> Option<u64> {
        let text = self.api(i).ok()?.metrics_text().await.ok()?;
        let series = format!(
            "tq_net_handshakes_refused_total{{reason=\"{}\"}} ",
            reason.label()
        );
        text.lines()
            .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
    }

    /// Sled `i`'s counters over all its runs, by name: every layer's when
    /// it runs in this process, the core's alone for a process (its status
    /// API reports no more).
    pub async fn counts(&self, i: usize) -> Result<Counts, SledsError> {
        let mut counts = self.earlier_counts.get(i).cloned().unwrap_or_default();
        add_readings(&mut counts, self.readings_now(i).await?);
        Ok(counts)
    }

    /// Sleds whose counters of a run were lost: they did not answer before
    /// they were killed.
    pub fn unread(&self) -> &[usize] {
        &self.unread
    }

    /// Whether the host's counters are read, not only the core's.
    pub fn reads_host_counters(&self) -> bool {
        matches!(self.launch, Launch::InProcess)
    }

    /// Sled `i`'s counters of its current run (none if it is not running).
    async fn readings_now(&self, i: usize) -> Result<Vec<Reading>, SledsError> {
        match self.running.get(i) {
            Some(Some(Running::Task(daemon))) => daemon
                .handle()
                .metrics()
                .await
                .map(|snapshot| health::readings(&snapshot))
                .map_err(|source| SledsError::Metrics { index: i, source }),
            Some(Some(Running::Child(_))) => self
                .status(i)
                .await
                .map(|status| health::core_readings(&status.node.counters))
                .map_err(|source| SledsError::Read {
                    index: i,
                    what: "counters",
                    source,
                }),
            _ => Ok(Vec::new()),
        }
    }

    async fn traffic_of(&self, i: usize) -> Result<Traffic, SledsError> {
        self.api(i)?
            .traffic()
            .await
            .map_err(|source| SledsError::Read {
                index: i,
                what: "traffic",
                source,
            })
    }
}
