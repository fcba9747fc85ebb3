//! `tq demo`: an LRTQ rack of real sled daemons on this machine, driven by
//! the real Nexus driver over HTTP through every change a rack lives
//! through, checked at each step, and summed up at the end.
//!
//! # The scenario
//!
//! An LRTQ rack of `N` sleds (8 by default; shares made as LRTQ rack setup
//! made them, see [`layout`]) and two new sleds (fewer when `N` is above
//! 30, since a configuration has at most 32 members), each with its
//! certificate from a rack CA made at start, its ledger on two "drives" in
//! a temporary directory, its peer network (mutual TLS) and HTTP API on
//! this machine:
//!
//! 1. **boot**: every daemon starts; every pair connects.
//! 2. **LRTQ upgrade** of the `N` LRTQ sleds (coordinated by an LRTQ sled).
//! 3. **add** the new sleds. Nexus has no API address for them: it
//!    reaches them only through a member's proxy.
//! 4. **remove** one sled (it is then shut down, as a removed sled is
//!    wiped).
//! 5. **sled killed mid-prepare**: a member's drives are pulled (its
//!    ledger directories renamed away, so it cannot store the prepare and
//!    does not ack), the reconfiguration starts, and as soon as the member
//!    holds the prepare in memory it is killed (SIGKILL with
//!    `--processes`). Its drives back, Nexus commits on the others' acks;
//!    restarted from its ledger, the member catches up
//!    (`prepare_and_commit`).
//! 6. **coordinator killed**: the coordinator is killed once it runs the
//!    reconfiguration; Nexus abandons the epoch after its deadline and
//!    retries at a higher epoch with the next coordinator, which commits;
//!    the old coordinator comes back and catches up. The abandoned epoch
//!    is never committed.
//! 7. **cold boot**: every member is killed at once and started again from
//!    its ledger; every one unlocks (loads the latest secret).
//! 8. **rogue firmware**: another power cut, and one member comes back
//!    running a service processor image the rack never approved (its
//!    certificate re-issued measuring it). Its peers refuse it at the
//!    handshake (counted as `unknown_measurement`) while the others
//!    unlock without it; then the new image is added to every sled's
//!    reference measurements, in place, and the sleds, never restarted,
//!    admit it at its next handshake, and it unlocks too.
//!
//! Each sled has an encrypted disk ([`disks`]): fscrypt on a loop-mounted
//! ext4 image as root, else a `command` backend; its key manager unlocks
//! it as soon as the sled can load a secret (a sled of the LRTQ rack from
//! the LRTQ secret, epoch 1, before the upgrade; a new sled once it
//! commits) and re-wraps its key on each commit
//! (the summary's "disks re-wrapped" column: members whose disk ended the
//! phase wrapped under its epoch). Before the cold boot each member writes
//! a file in its encrypted directory; the power cut remounts every image,
//! so every directory is locked until the rack unlocks; then every file
//! must read back intact.
//!
//! After each change every member reports the latest secret's
//! fingerprint (a one-way, domain-separated hash, never the secret):
//! all must agree, and differ from every other epoch's. At the end every
//! sled must have raised no alarm, Nexus must have seen no refusal, and
//! every anomaly counter ([`tq_std::health`]), summed over each sled's
//! runs, must be zero but those the injected faults explain, on the sleds
//! they were injected on (pulled drives fail ledger writes; killed sleds
//! cause only normal churn). Each fault is announced as injected. The exit
//! code is 0 only if every check held.
//!
//! The in-process sleds log to [`LOG_FILE`] in the demo's directory when
//! the caller routes its logs there ([`run_in`]); the terminal keeps the
//! progress and the summary, which names the file.

mod audit;
pub mod disks;
pub mod layout;
pub mod progress;
pub mod record;
pub mod sleds;
pub mod tally;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tq_core::api::LoadSecretError;
use tq_core::api::crash_tolerance;
use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_driver::{CallFailure, Driver, DriverConfig, DriverError, SledMap, StateFile};
use tq_nexus::{Nexus, Origin, Phase, Timing};
use tq_rack_setup::pki::{Firmware, rack_firmware};
use tq_std::handle::Unavailable;
use tq_std::net::HandshakeRefusal;

use crate::error::Chain;
use crate::nexus::MajorityError;
use crate::nexus::http::Traffic;
use crate::nexus::http::{ClientError, HttpSled};
use layout::{Addressing, Layout, LayoutError};
use progress::Progress;
use record::{EpochPrint, Injected, PhaseRecord, Record};
use sleds::{Launch, Sleds, SledsError};

/// Most sleds in a configuration.
pub const MAX_SLEDS: usize = tq_core::limits::MAX_MEMBERS;

/// Fewest sleds in an LRTQ rack the demo runs.
pub const MIN_SLEDS: usize = 3;

/// New sleds added after the upgrade (fewer if the rack has no room).
pub const ADDED: usize = 2;

/// How long any one phase may take before the demo gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

/// How long a sled may wait for the shares of the latest secret.
const SECRET_WAIT: Duration = Duration::from_secs(30);

/// The log file of the in-process sleds, in the demo's directory.
pub const LOG_FILE: &str = "demo.log";

/// The anomalies pulling a sled's drives raises on it: every write of its
/// state fails on both copies.
const PULLED_DRIVES_EXPLAIN: &[&str] = &[
    "ledger: writes_failed",
    "ledger: copy_write_failures",
    "node: store_failures",
];

/// The anomalies a rogue measurement raises on the sleds that refuse it.
const ROGUE_REFUSED_EXPLAIN: &[&str] = &["net: handshake_refused_unknown_measurement"];

/// ... and on the rogue sled, which sees its peers refuse it.
const ROGUE_SEES_EXPLAIN: &[&str] = &["net: handshake_refused_refused_by_peer"];

/// A prefix for the demo's temporary directory.
const DIR_PREFIX: &str = "tq-demo-";

/// Why the demo could not run, or stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Its temporary directory could not be made.
    #[error("cannot create a temporary directory")]
    TempDir(#[source] std::io::Error),
    /// The LRTQ rack's size is out of bounds.
    #[error("--sleds must be {MIN_SLEDS} to {MAX_SLEDS}, not {0}")]
    SledCount(usize),
    /// The rack could not be laid out on disk.
    #[error("set-up")]
    SetUp(#[source] LayoutError),
    /// The sleds' disks could not be configured.
    #[error("disks")]
    Disks(#[source] std::io::Error),
    /// Starting, killing, waiting for or reading a sled.
    #[error(transparent)]
    Sleds(#[from] SledsError),
    /// Nexus's directory of sleds could not be made.
    #[error("Nexus's sled directory")]
    Directory(#[source] ClientError),
    /// Nexus's state could not be created.
    #[error("cannot create Nexus's state")]
    NexusState(#[source] DriverError),
    /// The Nexus driver failed or gave up.
    #[error("the Nexus driver")]
    Driver(#[source] DriverError),
    /// No default threshold for a configuration.
    #[error("threshold")]
    Majority(#[source] MajorityError),
    /// A phase needs more members than the configuration has.
    #[error("too few members ({0})")]
    TooFewMembers(usize),
    /// A drive could not be pulled or plugged back.
    #[error("{action} {}", .path.display())]
    Drive {
        /// "pulling" or "plugging".
        action: &'static str,
        /// The drive (a ledger directory).
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The prepare never reached the sled to kill.
    #[error("no prepare reached sled {0}")]
    NoPrepare(usize),
    /// Nexus has committed nothing.
    #[error("nothing committed")]
    NothingCommitted,
    /// A sled did not answer its status.
    #[error("sled {index}'s status")]
    Status {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: CallFailure,
    },
}

/// Why a sled reported no secret's fingerprint.
#[derive(Debug, thiserror::Error)]
enum NoSecret {
    /// Its API did not answer.
    #[error(transparent)]
    Api(CallFailure),
    /// Its node did not answer.
    #[error(transparent)]
    Node(Unavailable),
    /// Its node refused.
    #[error(transparent)]
    Refused(LoadSecretError),
    /// The shares were still being collected at the deadline.
    #[error("its shares did not come in time")]
    Late,
}

/// A new temporary directory for [`run_in`].
pub fn temporary_dir() -> Result<tempfile::TempDir, DemoError> {
    tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .map_err(DemoError::TempDir)
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Sleds of the LRTQ rack (`MIN_SLEDS..=MAX_SLEDS`).
    pub sleds: usize,
    /// Seed of the LRTQ rack setup and the rack id.
    pub seed: u64,
    /// How the sleds run.
    pub launch: Launch,
    /// Where they listen.
    pub addressing: Addressing,
    /// Keep the temporary directory (ledgers, configs, logs) afterwards.
    pub keep: bool,
}

/// Nexus's timing in the demo: quick polls (everything is on one machine)
/// and a short deadline before abandoning a coordinator that stopped
/// answering.
pub fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_millis(10),
        retry_interval: Duration::from_millis(100),
        abandon_after: Some(Duration::from_secs(2)),
    }
}

/// Runs the demo and returns what it measured; `Err` only when it could
/// not run at all (then nothing was checked).
pub async fn run(options: Options, progress: Progress) -> Result<Record, DemoError> {
    run_in(temporary_dir()?, options, progress).await
}

/// [`run`], in `dir` (removed at the end unless kept). A caller that sends
/// its logs to [`LOG_FILE`] in `dir` has the summary name it.
pub async fn run_in(
    dir: tempfile::TempDir,
    options: Options,
    progress: Progress,
) -> Result<Record, DemoError> {
    if !(MIN_SLEDS..=MAX_SLEDS).contains(&options.sleds) {
        return Err(DemoError::SledCount(options.sleds));
    }
    let started = Instant::now();
    let added = ADDED.min(MAX_SLEDS - options.sleds);
    let layout = Layout::create(
        dir.path(),
        options.sleds,
        added,
        options.seed,
        &options.addressing,
    )
    .map_err(DemoError::SetUp)?;
    let disks = disks::DemoDisks::set_up(&layout).map_err(DemoError::Disks)?;
    let sleds = Sleds::new(layout, options.launch.clone())?;
    let state = dir.path().join(layout::NEXUS_STATE_FILE);
    let mut demo = Demo::new(sleds, state, progress, disks).await?;
    let outcome = demo.scenario(options.sleds, added).await;
    if let Err(e) = &outcome {
        demo.progress.fail();
        demo.progress.note(&format!("stopped: {}", Chain(e)));
        demo.record
            .check(format!("the scenario ran to its end ({})", Chain(e)), false);
    }
    demo.final_checks().await;
    demo.sleds.stop_all().await;
    let (what, held) = audit::check(&demo.sleds);
    demo.record.check(what, held);
    demo.record.total = started.elapsed();
    let kept = options.keep || !demo.record.passed();
    let logs = match options.launch {
        Launch::InProcess => dir.path().join(LOG_FILE),
        Launch::Processes { .. } => dir.path().join("*").join("sled.log"),
    };
    if matches!(options.launch, Launch::Processes { .. }) || logs.exists() {
        demo.record.logs = Some((logs, kept));
    }
    if kept {
        let kept = dir.keep();
        demo.progress.note(&format!(
            "ledgers, configs and logs kept in {}",
            kept.display()
        ));
    }
    Ok(demo.record)
}

/// What sled `.0` reported: the epoch and fingerprint (hex) of the secret
/// it loaded, or why it has none.
type Reported = (usize, Result<(Epoch, String), NoSecret>);

/// A phase under way: when it began and the traffic so far.
struct Mark {
    name: String,
    started: Instant,
    traffic: Traffic,
}

struct Demo {
    sleds: Sleds,
    driver: Driver<SledMap<HttpSled>>,
    progress: Progress,
    record: Record,
    /// The current members, by index.
    members: Vec<usize>,
    /// Each sled's encrypted disk.
    disks: disks::DemoDisks,
}

impl Demo {
    async fn new(
        sleds: Sleds,
        state: PathBuf,
        progress: Progress,
        disks: disks::DemoDisks,
    ) -> Result<Self, DemoError> {
        let lrtq: Vec<usize> = (0..sleds.len())
            .filter(|&i| sleds.files(i).is_ok_and(|f| f.lrtq))
            .collect();
        // Nexus knows every sled's API address but the new sleds'.
        let rack = sleds.layout.rack_file(|s| s.lrtq);
        let config = DriverConfig {
            timing: timing(),
            call_timeout: Duration::from_secs(5),
        };
        let directory = crate::nexus::directory(&rack, sleds.rack_ca(), config.call_timeout)
            .map_err(DemoError::Directory)?;
        let ids = ids(&sleds.layout, &lrtq);
        let mut driver = Driver::create(
            StateFile::new(state),
            directory,
            sleds.layout.authority.clone(),
            config,
            rack.rack_id,
            Origin::Lrtq,
            &ids,
        )
        .await
        .map_err(DemoError::NexusState)?;
        let observer = progress.clone();
        driver.observe(move |event| observer.event(event));
        let record = Record {
            disks: disks.describe(),
            ..Record::default()
        };
        Ok(Self {
            sleds,
            driver,
            progress,
            record,
            members: lrtq,
            disks,
        })
    }

    async fn scenario(&mut self, lrtq: usize, added: usize) -> Result<(), DemoError> {
        self.boot().await?;
        let upgraded: Vec<usize> = (0..lrtq).collect();
        self.change("LRTQ upgrade", upgraded, 0).await?;
        self.lrtq_secret().await?;
        if added > 0 {
            let grown: Vec<usize> = (0..lrtq + added).collect();
            let before = self.driver.stats().proxied;
            self.change(&format!("add {added} sleds"), grown, 1).await?;
            let proxied = self.driver.stats().proxied - before;
            self.record.check(
                format!("Nexus reached the new sleds only through a proxy ({proxied} calls)"),
                proxied >= added as u64,
            );
        }
        let removed = 2;
        let shrunk: Vec<usize> = self
            .members
            .iter()
            .copied()
            .filter(|&i| i != removed)
            .collect();
        self.change("remove 1 sled", shrunk, 3 % lrtq).await?;
        // A removed sled is wiped: it takes no further part.
        self.sleds.kill(removed).await?;
        self.progress.note(&format!(
            "sled {removed} removed, and shut down for good (as a removed sled is wiped)"
        ));
        self.killed_mid_prepare().await?;
        self.coordinator_killed().await?;
        self.cold_boot().await?;
        self.rogue_firmware().await
    }

    // ---- phases ----

    async fn begin(&mut self, name: &str) -> Mark {
        let traffic = self.sleds.traffic().await;
        self.progress.begin(name);
        Mark {
            name: name.to_owned(),
            started: Instant::now(),
            traffic,
        }
    }

    async fn end(&mut self, mark: Mark, epochs: String, k: Option<Threshold>) {
        let took = mark.started.elapsed();
        let traffic = self.sleds.traffic().await.since(mark.traffic);
        self.progress.end(&mark.name, true, took);
        let members = self.members.len();
        let k = k.map_or(0, Threshold::get);
        let disks = match self.driver.nexus().latest_committed().map(|c| c.epoch()) {
            Some(epoch) => {
                let wrapped =
                    disks::wait_wrapped(&self.sleds, &self.members, epoch, disks::DISK_LIMIT).await;
                format!("{wrapped}/{members}")
            }
            None => "-".into(),
        };
        self.record.phases.push(PhaseRecord {
            name: mark.name,
            took,
            epochs,
            members,
            k,
            z: crash_tolerance(members.saturating_sub(usize::from(k))),
            traffic,
            disks,
        });
    }

    async fn boot(&mut self) -> Result<(), DemoError> {
        let mark = self.begin("boot").await;
        let all: Vec<usize> = (0..self.sleds.len()).collect();
        for &i in &all {
            self.sleds.start(i).await?;
            self.progress.status(&format!("{} sleds started", i + 1));
        }
        self.progress.status("connecting");
        self.sleds.wait_connected(&all, PHASE_LIMIT).await?;
        self.progress.note(&format!(
            "{} sleds up, every pair connected over mutual TLS",
            all.len()
        ));
        self.progress.note(&self.disks.describe());
        self.end(mark, "1 (LRTQ)".into(), None).await;
        Ok(())
    }

    /// A reconfiguration to `members` coordinated by sled `coordinator`,
    /// driven until every member confirmed it; then every member's
    /// fingerprint.
    async fn change(
        &mut self,
        name: &str,
        members: Vec<usize>,
        coordinator: usize,
    ) -> Result<(), DemoError> {
        let mark = self.begin(name).await;
        let k = crate::nexus::majority(members.len()).map_err(DemoError::Majority)?;
        let epoch = self.start(&members, k, coordinator).await?;
        self.settle().await?;
        self.members = members;
        self.end(mark, epoch.to_string(), Some(k)).await;
        self.fingerprints(epoch, name).await
    }

    async fn killed_mid_prepare(&mut self) -> Result<(), DemoError> {
        let name = "sled killed mid-prepare";
        let members = self.members.clone();
        // The last member: a sled added after the upgrade when there is
        // one, which Nexus reaches only through a proxy.
        let victim = *members.last().ok_or(DemoError::TooFewMembers(0))?;
        let coordinator = *members.first().ok_or(DemoError::TooFewMembers(0))?;
        let mark = self.begin(name).await;
        let k = crate::nexus::majority(members.len()).map_err(DemoError::Majority)?;
        let drives = self.sleds.files(victim)?.drives.clone();
        let pulled = drives.clone().map(|d| d.with_extension("pulled"));
        self.inject(
            &[victim],
            format!("ledger write failure on sled {victim} (its drives pulled)"),
            PULLED_DRIVES_EXPLAIN,
        );
        for (d, p) in drives.iter().zip(&pulled) {
            std::fs::rename(d, p).map_err(|source| DemoError::Drive {
                action: "pulling",
                path: d.clone(),
                source,
            })?;
        }
        let epoch = self.start(&members, k, coordinator).await?;
        // Until the victim holds the prepare, unable to store it.
        let deadline = Instant::now() + PHASE_LIMIT;
        loop {
            self.driver
                .turn(Duration::from_millis(5))
                .await
                .map_err(DemoError::Driver)?;
            if let Ok(status) = self.sleds.status(victim).await
                && status.node.state.configs.iter().any(|c| c.epoch == epoch)
            {
                let unstored = !status.node.state_stored;
                self.record.check(
                    format!("sled {victim} held the prepare of epoch {epoch} unstored when killed"),
                    unstored,
                );
                break;
            }
            if Instant::now() >= deadline {
                return Err(DemoError::NoPrepare(victim));
            }
        }
        self.inject(
            &[victim],
            format!("sled {victim} killed in the middle of the prepare"),
            &[],
        );
        self.sleds.kill(victim).await?;
        self.progress
            .note(&format!("sled {victim}'s drives plugged back"));
        for (d, p) in drives.iter().zip(&pulled) {
            std::fs::rename(p, d).map_err(|source| DemoError::Drive {
                action: "plugging",
                path: d.clone(),
                source,
            })?;
        }
        self.run_until("committed without it", |n| {
            n.latest_committed().is_some_and(|c| c.epoch() == epoch)
        })
        .await?;
        self.sleds.start(victim).await?;
        let restarted = self
            .sleds
            .status(victim)
            .await
            .map_err(|source| DemoError::Status {
                index: victim,
                source,
            })?;
        self.record.check(
            format!(
                "sled {victim} restarted from its ledger at epoch {}",
                show(restarted.node.state.latest_committed)
            ),
            restarted.node.state.latest_committed < Some(epoch),
        );
        let before = self.driver.nexus().stats().prepare_and_commits;
        self.settle().await?;
        let handed = self.driver.nexus().stats().prepare_and_commits - before;
        // Its disk's key manager asks its peers for shares at start, and a
        // peer answers a sled that is behind with the newer commit: it may
        // catch up by itself before Nexus hands it the configuration.
        let caught_up = self
            .sleds
            .status(victim)
            .await
            .is_ok_and(|s| s.node.state.latest_committed == Some(epoch));
        self.record.check(
            format!(
                "sled {victim} caught up to epoch {epoch} ({})",
                if handed >= 1 {
                    "through prepare-and-commit"
                } else {
                    "by itself: its peers answered its share requests with the newer commit"
                }
            ),
            caught_up,
        );
        self.end(mark, epoch.to_string(), Some(k)).await;
        self.fingerprints(epoch, name).await
    }

    async fn coordinator_killed(&mut self) -> Result<(), DemoError> {
        let name = "coordinator killed";
        let members = self.members.clone();
        let coordinator = *members
            .get(1)
            .ok_or(DemoError::TooFewMembers(members.len()))?;
        let mark = self.begin(name).await;
        let k = crate::nexus::majority(members.len()).map_err(DemoError::Majority)?;
        let epoch = self.start(&members, k, coordinator).await?;
        self.run_until("coordinator running", |n| {
            n.pending().is_some_and(|p| p.phase() == Phase::Running)
        })
        .await?;
        self.inject(
            &[coordinator],
            format!("the coordinator (sled {coordinator}) killed"),
            &[],
        );
        self.sleds.kill(coordinator).await?;
        self.run_until("a later epoch committed", |n| {
            n.latest_committed().is_some_and(|c| c.epoch() > epoch)
        })
        .await?;
        let latest = self.latest_epoch()?;
        self.sleds.start(coordinator).await?;
        self.settle().await?;
        let committed: Vec<Epoch> = self.driver.nexus().history().map(|c| c.epoch()).collect();
        self.record.check(
            format!("epoch {epoch} abandoned, never committed; retried as epoch {latest}"),
            !committed.contains(&epoch) && self.driver.nexus().stats().abandoned_automatically >= 1,
        );
        self.end(mark, format!("{epoch} abandoned, {latest}"), Some(k))
            .await;
        self.fingerprints(latest, name).await
    }

    async fn cold_boot(&mut self) -> Result<(), DemoError> {
        let name = "cold boot";
        let members = self.members.clone();
        let latest = self.latest_epoch()?;
        let real_disks = self.disks.real();
        if real_disks {
            disks::wait_wrapped(&self.sleds, &members, latest, disks::DISK_LIMIT).await;
            self.disks.write_notes(&members).map_err(DemoError::Disks)?;
            self.progress.note(&format!(
                "each of the {} members wrote a file in its encrypted directory",
                members.len()
            ));
        }
        let mark = self.begin(name).await;
        self.inject(
            &members,
            format!("power cut: all {} members killed at once", members.len()),
            &[],
        );
        for &i in &members {
            self.sleds.kill(i).await?;
        }
        if real_disks {
            let cut = self.disks.power_cut(&members).map_err(DemoError::Disks)?;
            if cut.kept > 0 {
                self.progress.note(&format!(
                    "{} file systems outlived their unmount (mounted in another mount namespace on this machine): their keys were removed, as the power cycle would have",
                    cut.kept
                ));
            }
            let locked = cut.locked;
            self.record.check(
                format!(
                    "after the power cut every encrypted directory is locked, its names unreadable ({locked}/{})",
                    members.len()
                ),
                locked == members.len(),
            );
        }
        for &i in &members {
            self.sleds.start(i).await?;
        }
        self.sleds.wait_connected(&members, PHASE_LIMIT).await?;
        // Unlocking is loading the latest secret: part of the phase.
        let prints = self.collect(&members).await;
        let unlocked = prints
            .iter()
            .filter(|(_, p)| p.as_ref().is_ok_and(|(e, _)| *e == latest))
            .count();
        self.record.check(
            format!(
                "every member unlocked after the cold boot ({unlocked}/{})",
                members.len()
            ),
            unlocked == members.len(),
        );
        let k = self.driver.nexus().latest_config().map(|c| c.threshold());
        self.end(mark, latest.to_string(), k).await;
        self.agree(latest, name, prints);
        let opened = disks::wait_wrapped(&self.sleds, &members, latest, disks::DISK_LIMIT).await;
        if real_disks {
            let intact = self.disks.notes_intact(&members);
            self.record.check(
                format!(
                    "disks unlocked {opened}/{}, data intact {intact}/{}",
                    members.len(),
                    members.len()
                ),
                opened == members.len() && intact == members.len(),
            );
        } else {
            self.record.check(
                format!(
                    "disks unlocked {opened}/{} (command backend: no data to check)",
                    members.len()
                ),
                opened == members.len(),
            );
        }
        Ok(())
    }

    async fn rogue_firmware(&mut self) -> Result<(), DemoError> {
        let name = "rogue firmware";
        let members = self.members.clone();
        let latest = self.latest_epoch()?;
        let rogue = *members
            .get(1)
            .ok_or(DemoError::TooFewMembers(members.len()))?;
        let others: Vec<usize> = members.iter().copied().filter(|&i| i != rogue).collect();
        let mark = self.begin(name).await;
        let mut firmware = rack_firmware();
        let unapproved = Firmware::measure(
            "sp 1.0.1",
            b"tq stand-in service processor image 1.0.1, not yet approved",
        );
        if let Some(sp) = firmware.first_mut() {
            *sp = unapproved.clone();
        }
        self.inject(
            &members,
            format!("power cut: all {} members killed at once", members.len()),
            &[],
        );
        for &i in &members {
            self.sleds.kill(i).await?;
        }
        self.inject(
            &[rogue],
            format!("sled {rogue} boots an SP image not in the reference measurements"),
            ROGUE_SEES_EXPLAIN,
        );
        self.inject(
            &others,
            format!("sled {rogue}'s peers refuse its measurements"),
            ROGUE_REFUSED_EXPLAIN,
        );
        self.sleds
            .layout
            .remeasure(rogue, &firmware)
            .map_err(DemoError::SetUp)?;
        for &i in &members {
            self.sleds.start(i).await?;
        }
        self.sleds.wait_connected(&others, PHASE_LIMIT).await?;
        let prints = self.collect(&others).await;
        let unlocked = prints
            .iter()
            .filter(|(_, p)| p.as_ref().is_ok_and(|(e, _)| *e == latest))
            .count();
        self.record.check(
            format!(
                "the rack unlocked without sled {rogue} ({unlocked}/{} others)",
                others.len()
            ),
            unlocked == others.len(),
        );
        let refusing = self.refusing(rogue, &others).await;
        let connected = self
            .sleds
            .status(rogue)
            .await
            .map_or(0, |s| s.peers.iter().filter(|p| p.connected).count());
        self.record.check(
            format!(
                "sled {rogue} refused by its peers ({refusing}/{} counted an unknown measurement; it has {connected} connections)",
                others.len()
            ),
            refusing == others.len() && connected == 0,
        );

        let mut approved = rack_firmware();
        approved.push(unapproved);
        self.sleds
            .layout
            .approve(&approved)
            .map_err(DemoError::SetUp)?;
        self.progress
            .note("SP image 1.0.1 added to every sled's reference measurements (no restart)");
        self.sleds.wait_connected(&members, PHASE_LIMIT).await?;
        let late = self.collect(&[rogue]).await;
        let admitted = late
            .iter()
            .any(|(_, p)| p.as_ref().is_ok_and(|(e, _)| *e == latest));
        self.record.check(
            format!("sled {rogue} admitted after the update, and unlocked"),
            admitted,
        );
        let shown = self.measurements_shown(rogue, &others).await;
        self.record.check(
            format!("its peers' status shows what it runs: {shown}"),
            shown.contains("sp 1.0.1"),
        );
        let k = self.driver.nexus().latest_config().map(|c| c.threshold());
        self.end(mark, latest.to_string(), k).await;
        let mut all = prints;
        all.extend(late);
        self.agree(latest, name, all);
        Ok(())
    }

    /// The measurements the first of `others` shows for `rogue` in its
    /// status (as `tq status` shows them), by reference name.
    async fn measurements_shown(&self, rogue: usize, others: &[usize]) -> String {
        let (Some(&first), Ok(rogue_id)) = (others.first(), self.sleds.files(rogue)) else {
            return String::new();
        };
        let Ok(status) = self.sleds.status(first).await else {
            return String::new();
        };
        let names: Vec<&str> = status
            .peers
            .iter()
            .filter(|p| p.id == rogue_id.id)
            .flat_map(|p| &p.measurements)
            .map(|m| m.reference.as_deref().unwrap_or("not in the reference"))
            .collect();
        names.join(", ")
    }

    /// How many of `others` counted at least one refusal of `rogue`'s
    /// measurements, waiting for each up to the phase limit (every peer
    /// either dials the rogue or is dialed by it, and refuses it).
    async fn refusing(&self, rogue: usize, others: &[usize]) -> usize {
        let deadline = Instant::now() + PHASE_LIMIT;
        let mut counted = 0;
        for &i in others {
            loop {
                let refused = self
                    .sleds
                    .refused(i, HandshakeRefusal::UnknownMeasurement)
                    .await
                    .unwrap_or(0);
                if refused > 0 {
                    counted += 1;
                    break;
                }
                if Instant::now() >= deadline {
                    self.progress.note(&format!(
                        "sled {i} never refused sled {rogue}'s measurements"
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        counted
    }

    /// Announces a fault injected on `sleds` and records the anomaly
    /// counters it explains there.
    fn inject(&mut self, sleds: &[usize], what: String, explains: &'static [&'static str]) {
        self.progress.inject(&what);
        self.record.injected.push(Injected {
            sleds: sleds.to_vec(),
            what,
            explains,
        });
    }

    // ---- driving ----

    async fn start(
        &mut self,
        members: &[usize],
        k: Threshold,
        coordinator: usize,
    ) -> Result<Epoch, DemoError> {
        let ids = ids(&self.sleds.layout, members);
        let coordinator = self.sleds.files(coordinator)?.id.clone();
        self.driver
            .start(&ids, k, &coordinator)
            .await
            .map_err(DemoError::Driver)
    }

    async fn settle(&mut self) -> Result<(), DemoError> {
        self.driver
            .settle(PHASE_LIMIT)
            .await
            .map_err(DemoError::Driver)
    }

    async fn run_until(
        &mut self,
        what: &str,
        done: impl FnMut(&Nexus) -> bool,
    ) -> Result<(), DemoError> {
        self.driver
            .run_until(what, PHASE_LIMIT, done)
            .await
            .map_err(DemoError::Driver)
    }

    fn latest_epoch(&self) -> Result<Epoch, DemoError> {
        self.driver
            .nexus()
            .latest_committed()
            .map(|c| c.epoch())
            .ok_or(DemoError::NothingCommitted)
    }

    // ---- checks ----

    /// Every current member's latest secret's fingerprint.
    async fn collect(&self, members: &[usize]) -> Vec<Reported> {
        let mut asks = tokio::task::JoinSet::new();
        let authority = Arc::new(self.driver.authority().clone());
        for &i in members {
            if let Ok(api) = self.sleds.api(i)
                && let Ok(files) = self.sleds.files(i)
            {
                let api = api.clone();
                let id = files.id.clone();
                let authority = Arc::clone(&authority);
                asks.spawn(async move {
                    let got = api.checked_fingerprint(&authority, &id, SECRET_WAIT).await;
                    let got = match got {
                        Ok(Ok(print)) => Ok((print.epoch, hex::encode(print.fingerprint))),
                        Ok(Err(refused)) => Err(NoSecret::Refused(refused)),
                        Err(failure) => Err(NoSecret::Api(failure)),
                    };
                    (i, got)
                });
            }
        }
        let mut prints = Vec::new();
        while let Some(joined) = asks.join_next().await {
            if let Ok(got) = joined {
                prints.push(got);
            }
        }
        prints.sort_by_key(|(i, _)| *i);
        prints
    }

    /// After the upgrade, every member's epoch-1 secret must be the LRTQ
    /// secret rack setup made. The API serves only the latest secret's
    /// fingerprint, so this is asked of in-process sleds through their node
    /// handles; with `--processes` it is not asked, and the summary says so.
    async fn lrtq_secret(&mut self) -> Result<(), DemoError> {
        let expected = hex::encode(self.sleds.layout.lrtq_fingerprint);
        let mut prints = Vec::new();
        for &i in &self.members {
            let Some(handle) = self.sleds.handle(i) else {
                continue;
            };
            let deadline = Instant::now() + SECRET_WAIT;
            let got = loop {
                match handle.load_rack_secret(Epoch(1)).await {
                    Ok(Ok(Some(secret))) => {
                        break Ok((Epoch(1), hex::encode(secret.fingerprint())));
                    }
                    Ok(Ok(None)) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Ok(Ok(None)) => break Err(NoSecret::Late),
                    Ok(Err(e)) => break Err(NoSecret::Refused(e)),
                    Err(e) => break Err(NoSecret::Node(e)),
                }
            };
            prints.push((i, got));
        }
        if prints.is_empty() {
            self.record.prints.insert(
                Epoch(1),
                EpochPrint {
                    fingerprint: None,
                    agreeing: 0,
                    asked: 0,
                    when: vec![
                        "not asked: the API serves the latest secret only (processes)".into(),
                    ],
                },
            );
            return Ok(());
        }
        self.agree(Epoch(1), "after the upgrade (node handles)", prints);
        let sleds_say = self
            .record
            .prints
            .get(&Epoch(1))
            .and_then(|p| p.fingerprint.clone());
        self.record.check(
            "epoch 1 is the LRTQ secret rack setup made (vsss-rs 3.3.4)",
            sleds_say.as_deref() == Some(expected.as_str()),
        );
        Ok(())
    }

    /// Every member must report `epoch`'s secret with one fingerprint.
    async fn fingerprints(&mut self, epoch: Epoch, when: &str) -> Result<(), DemoError> {
        let members = self.members.clone();
        let prints = self.collect(&members).await;
        self.agree(epoch, when, prints);
        Ok(())
    }

    fn agree(&mut self, epoch: Epoch, when: &str, prints: Vec<Reported>) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (i, got) in &prints {
            match got {
                Ok((e, print)) if *e == epoch => *counts.entry(print.clone()).or_default() += 1,
                Ok((e, _)) => self.progress.note(&format!(
                    "sled {i} reported epoch {e}'s secret, not epoch {epoch}'s"
                )),
                Err(e) => self
                    .progress
                    .note(&format!("sled {i}: no secret: {}", Chain(e))),
            }
        }
        let asked = prints.len();
        let top = counts.into_iter().max_by_key(|(_, n)| *n);
        let agreeing = top.as_ref().map_or(0, |(_, n)| *n);
        let entry = self.record.prints.entry(epoch).or_default();
        let same =
            entry.fingerprint.is_none() || entry.fingerprint == top.as_ref().map(|t| t.0.clone());
        entry.fingerprint = top.map(|(p, _)| p);
        entry.agreeing = agreeing;
        entry.asked = asked;
        entry.when.push(when.to_owned());
        self.record.check(
            format!("epoch {epoch}: all {asked} members agree on the secret ({when})"),
            agreeing == asked && asked > 0 && same,
        );
    }

    /// At the end: fingerprints differ between epochs, no alarm on any
    /// sled, no refusal seen by Nexus; the counters for the summary.
    async fn final_checks(&mut self) {
        let prints: Vec<&String> = self
            .record
            .prints
            .values()
            .filter_map(|p| p.fingerprint.as_ref())
            .collect();
        let distinct = prints
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        self.record.check(
            format!("every epoch has its own secret ({} epochs)", prints.len()),
            distinct == prints.len(),
        );
        let mut alarms = 0;
        let mut unanswered = 0;
        for i in 0..self.sleds.len() {
            if !self.sleds.is_running(i) {
                continue;
            }
            match self.sleds.status(i).await {
                Ok(status) => alarms += status.node.alarms.len(),
                Err(_) => unanswered += 1,
            }
        }
        let counters = self.anomaly_checks().await;
        self.record.alarms = alarms;
        self.record.check("no sled raised an alarm", alarms == 0);
        self.record
            .check("every running sled answered its status", unanswered == 0);
        let driver = self.driver.stats();
        self.record
            .check("Nexus saw no refusal", driver.refused == 0);
        self.record.check(
            "every answer Nexus acted on carried its sled's tag",
            driver.answer_unauthenticated == 0,
        );
        self.record.check(
            "no sled refused Nexus's authenticator",
            driver.request_refused == 0,
        );
        let nexus = *self.driver.nexus().stats();
        let mut list = vec![
            ("nexus: epochs started".to_owned(), u64::from(nexus.started)),
            (
                "nexus: epochs committed".to_owned(),
                u64::from(nexus.committed),
            ),
            (
                "nexus: epochs abandoned".to_owned(),
                u64::from(nexus.abandoned),
            ),
            (
                "nexus: prepare-and-commit calls".to_owned(),
                u64::from(nexus.prepare_and_commits),
            ),
            ("nexus: calls answered directly".to_owned(), driver.direct),
            (
                "nexus: calls answered through a proxy".to_owned(),
                driver.proxied,
            ),
            (
                "nexus: calls unanswered (sled down)".to_owned(),
                driver.unreachable,
            ),
            ("nexus: state file writes".to_owned(), driver.stores),
        ];
        list.extend(counters);
        self.record.counters = list;
    }

    /// Every sled's counters over all its runs: anomalies must be zero
    /// but those an injected fault explains on its sled, and each such
    /// fault must show. Returns the normal counters that are not zero,
    /// summed over sleds; the anomalies go to the record.
    async fn anomaly_checks(&mut self) -> BTreeMap<String, u64> {
        let mut unread: Vec<usize> = self.sleds.unread().to_vec();
        let mut by_sled: BTreeMap<usize, sleds::Counts> = BTreeMap::new();
        for i in 0..self.sleds.len() {
            match self.sleds.counts(i).await {
                Ok(counts) => {
                    by_sled.insert(i, counts);
                }
                Err(_) => unread.push(i),
            }
        }
        let tally = tally::tally(&by_sled, &self.record.injected);
        let scope = if self.sleds.reads_host_counters() {
            "every layer"
        } else {
            "the core's only: --processes"
        };
        self.record.check(
            format!(
                "no anomaly counter but the injected faults' ({scope}): {}",
                if tally.unexplained.is_empty() {
                    "none".to_owned()
                } else {
                    tally.unexplained.join(", ")
                }
            ),
            tally.unexplained.is_empty(),
        );
        unread.sort_unstable();
        unread.dedup();
        self.record.check(
            if unread.is_empty() {
                "every sled's counters were read, before each kill too".to_owned()
            } else {
                format!(
                    "every sled's counters were read, before each kill too (not: sleds {unread:?})"
                )
            },
            unread.is_empty(),
        );
        // A process's status reports the core's counters only, where no
        // injected fault shows.
        if self.sleds.reads_host_counters() {
            for (what, seen) in tally.seen {
                self.record.check(
                    format!("the injected {what} showed in its counters ({seen})"),
                    seen > 0,
                );
            }
        }
        self.record.anomalies = tally.anomalies.into_iter().collect();
        tally.normal
    }
}

fn ids(layout: &Layout, indexes: &[usize]) -> Vec<PlatformId> {
    indexes
        .iter()
        .filter_map(|&i| layout.sleds.get(i).map(|s| s.id.clone()))
        .collect()
}

fn show(epoch: Option<Epoch>) -> String {
    epoch.map_or_else(|| "none".into(), |e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(sleds: usize) -> Options {
        Options {
            sleds,
            seed: 1,
            launch: Launch::InProcess,
            addressing: Addressing::Loopback,
            keep: false,
        }
    }

    #[tokio::test]
    async fn a_set_up_failure_shows_its_sled_and_each_cause_once() {
        let dir = temporary_dir().unwrap();
        // Where sled 0's directory goes, a file: it cannot be made.
        let blocked = dir.path().join("sled-00");
        std::fs::write(&blocked, "").unwrap();
        let io = std::fs::create_dir(&blocked).err().unwrap().to_string();
        let error = run_in(dir, options(MIN_SLEDS), Progress::new())
            .await
            .err()
            .unwrap();
        assert!(matches!(
            &error,
            DemoError::SetUp(LayoutError::Files { index: 0, .. })
        ));
        let line = Chain(&error).to_string();
        assert_eq!(
            line,
            format!("set-up: sled 0's files: {}: {io}", blocked.display())
        );
    }

    #[tokio::test]
    async fn a_rack_size_out_of_bounds_is_refused_before_anything_runs() {
        let error = run_in(temporary_dir().unwrap(), options(2), Progress::new())
            .await
            .err()
            .unwrap();
        assert_eq!(
            Chain(&error).to_string(),
            format!("--sleds must be {MIN_SLEDS} to {MAX_SLEDS}, not 2")
        );
    }
}
