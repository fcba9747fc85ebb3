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
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tq_driver::{CallFailure, FailureKind};
use tq_std::health::{self, Reading};

use super::layout::{Layout, SledFiles};
use crate::api::types::SledStatus;
use crate::config::SledConfig;
use crate::error::Chain;
use crate::nexus::http::{HttpSled, Traffic};
use crate::sled::Daemon;

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
    pub fn new(layout: Layout, launch: Launch) -> Result<Self, String> {
        let apis = layout
            .sleds
            .iter()
            .map(|s| HttpSled::new(s.api, Duration::from_secs(30)))
            .collect::<Result<Vec<_>, _>>()?;
        let count = layout.sleds.len();
        Ok(Self {
            layout,
            launch,
            running: (0..count).map(|_| None).collect(),
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
    pub fn files(&self, i: usize) -> Result<&SledFiles, String> {
        self.layout
            .sleds
            .get(i)
            .ok_or_else(|| format!("no sled {i}"))
    }

    /// Sled `i`'s API.
    pub fn api(&self, i: usize) -> Result<&HttpSled, String> {
        self.apis.get(i).ok_or_else(|| format!("no sled {i}"))
    }

    /// Sled `i`'s node handle, when it runs in this process.
    pub fn handle(&self, i: usize) -> Option<&tq_std::handle::NodeHandle> {
        match self.running.get(i) {
            Some(Some(Running::Task(daemon))) => Some(daemon.handle()),
            _ => None,
        }
    }

    /// Whether sled `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        matches!(self.running.get(i), Some(Some(_)))
    }

    /// Starts sled `i` from its configuration file (and ledger), and waits
    /// until its API answers.
    pub async fn start(&mut self, i: usize) -> Result<(), String> {
        let files = self.files(i)?.clone();
        let running = match &self.launch {
            Launch::InProcess => {
                let config = SledConfig::load(&files.config).map_err(|e| Chain(&e).to_string())?;
                let daemon = Daemon::start(&config)
                    .await
                    .map_err(|e| format!("sled {}: {}", files.id, Chain(&e)))?;
                Running::Task(daemon)
            }
            Launch::Processes { exe, wrappers } => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(files.dir.join("sled.log"))
                    .map_err(|e| format!("sled {} log: {e}", files.id))?;
                let err = log
                    .try_clone()
                    .map_err(|e| format!("sled {} log: {e}", files.id))?;
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
                let child = command
                    .spawn()
                    .map_err(|e| format!("sled {}: cannot run {}: {e}", files.id, exe.display()))?;
                Running::Child(child)
            }
        };
        if let Some(slot) = self.running.get_mut(i) {
            *slot = Some(running);
        }
        self.wait_ready(i).await
    }

    /// Waits until sled `i`'s API answers its status.
    async fn wait_ready(&mut self, i: usize) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Some(Some(Running::Child(child))) = self.running.get_mut(i)
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = self.files(i)?.dir.join("sled.log");
                return Err(format!(
                    "sled {i} exited at start ({status}); see {}",
                    log.display()
                ));
            }
            if self.status(i).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("sled {i}'s API did not answer in {READY_WITHIN:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills sled `i` where it stands: SIGKILL for a process, the tasks
    /// aborted in-process. Its traffic counters are read first (they
    /// restart with it).
    pub async fn kill(&mut self, i: usize) -> Result<(), String> {
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
                    .map_err(|e| format!("SIGKILL sled {i}: {e}"))?;
                child
                    .wait()
                    .await
                    .map_err(|e| format!("waiting for sled {i}: {e}"))?;
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
    pub async fn wait_connected(&self, among: &[usize], limit: Duration) -> Result<(), String> {
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
                    return Err(format!(
                        "sled {i} connected to {connected} of {} peers after {limit:?}",
                        among.len() - 1
                    ));
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

    /// Sled `i`'s counters over all its runs, by name: every layer's when
    /// it runs in this process, the core's alone for a process (its status
    /// API reports no more).
    pub async fn counts(&self, i: usize) -> Result<Counts, String> {
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
    async fn readings_now(&self, i: usize) -> Result<Vec<Reading>, String> {
        match self.running.get(i) {
            Some(Some(Running::Task(daemon))) => daemon
                .handle()
                .metrics()
                .await
                .map(|snapshot| health::readings(&snapshot))
                .map_err(|e| format!("sled {i}'s counters: {e}")),
            Some(Some(Running::Child(_))) => self
                .status(i)
                .await
                .map(|status| health::core_readings(&status.node.counters))
                .map_err(|e| format!("sled {i}'s counters: {e}")),
            _ => Ok(Vec::new()),
        }
    }

    async fn traffic_of(&self, i: usize) -> Result<Traffic, String> {
        self.api(i)?.traffic().await.map_err(|e| e.to_string())
    }
}
