//! The fault injector: applies each fault of the [`Plan`] to the rack,
//! holds it, heals it, and logs both (stderr's progress and `faults.log`
//! in the run's directory, with the time since the start).
//!
//! How each fault is made:
//!
//! - partitions: `nft` rules in the sleds' namespaces (table
//!   `inet tq_chaos`), dropping packets by address, in one direction or
//!   both; Nexus's calls come from the root namespace's address, which a
//!   partition leaves alone unless the fault is [`Fault::CutFromNexus`];
//! - loss, delay, reordering: `tc qdisc ... netem` on the sled's veth (its
//!   outgoing packets). Where the kernel has no netem (this project's
//!   build machine: `CONFIG_NET_SCH_NETEM` not set, no modules), the same
//!   three are made in user space on the packets an NFQUEUE rule hands
//!   over ([`super::linkq`]). Where neither can be made (no
//!   `ip6tables-legacy`), only the loss is injected, by an `nft` rule
//!   dropping that share of the sled's outgoing packets at random
//!   (`numgen random`), counted as its own kind in the table;
//! - pauses: SIGSTOP and SIGCONT; kills: SIGKILL, then the sled is started
//!   again from its ledger;
//! - (not a fault, the operator's turn between faults) a replacement slid
//!   into a slot Nexus emptied ([`Injector::slide_in`]);
//! - full disks: each ledger directory is its own small `tmpfs` (size
//!   [`DRIVE_BYTES`]; no disk image, nothing left on disk), filled by a
//!   file written until ENOSPC, first on one copy, then on both, then
//!   removed;
//! - clock steps: every sled runs under libfaketime (`LD_PRELOAD` of its
//!   thread-safe build, `libfaketimeMT`: under the other, the sled never
//!   re-read its offset file), which replaces glibc's `clock_gettime`; the
//!   `tq` binary is linked against glibc dynamically and imports no other
//!   time call (`nm -D`: `clock_gettime` alone), so the offset written to
//!   the sled's file (re-read at most every second) steps its
//!   CLOCK_REALTIME and nothing else (`FAKETIME_DONT_FAKE_MONOTONIC`, as an
//!   NTP step leaves the monotonic clock alone); the sled's log timestamps
//!   show the step. A time namespace cannot do this: it offsets only the
//!   monotonic and boot-time clocks. What a step can reach in a sled: TLS
//!   certificate validity (the rack's certificates are valid for centuries,
//!   so no step of an hour does) and log timestamps.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;
use tq_std::audit::segment;

use super::linkq::{self, HeldLink};
use super::plan::{Dice, Fault, LinkFault, Plan, Scheduled};
use super::slots::Pool;
use super::{CONNECT_LIMIT, Shared, lock, metric_sum};
use crate::demo::record::Injected;
use crate::demo::sleds::Sleds;
use crate::netns::{CommandError, Hosts};

/// Size of each ledger directory's file system: the ledger and the audit
/// log, whose segments a sled keeps up to 8 MiB of by default
/// (`tq_std::audit`).
pub const DRIVE_BYTES: u64 = 16 << 20;

/// libfaketime, where Debian's `faketime` package puts it.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The `nft` table the injector owns in each namespace.
const TABLE: &str = "tq_chaos";

/// The kind a [`Fault::Netem`] is counted as where neither netem nor
/// an NFQUEUE can make it.
pub const LOSS_ONLY: &str = "loss only (nft; no netem, no NFQUEUE)";

/// How a [`Fault::Netem`] is made on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkFaults {
    /// `tc qdisc ... netem`.
    Netem,
    /// An NFQUEUE served here ([`super::linkq`]).
    Queue,
    /// The loss alone, by `nft`.
    LossOnly,
}

/// The filler file that fills a ledger directory.
const FILLER: &str = "chaos-filler";

/// The anomaly counters a full ledger disk explains.
const DISK_FULL_EXPLAINS: &[&str] = &[
    "node: store_failures",
    "ledger: writes_failed",
    "ledger: copy_write_failures",
];

/// A fault could not be applied or healed.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// A command failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A file operation failed.
    #[error("{what} {}", .path.display())]
    Io {
        /// What was done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sled could not be killed, started or signalled.
    #[error(transparent)]
    Sleds(#[from] crate::demo::sleds::SledsError),
    /// A signal could not be sent.
    #[error("signal to sled {0}")]
    Signal(usize, #[source] std::io::Error),
    /// A replacement sled's files or ledger.
    #[error("replacement sled {0}")]
    Replacement(usize, #[source] crate::demo::layout::LayoutError),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InjectError {
    let path = path.to_owned();
    move |source| InjectError::Io { what, path, source }
}

/// Alters, in place, the newest `Started` record of the audit copy in
/// `dir`: the last digit of its ledger generation changed, so the line
/// keeps its length and still parses, and only the hash chain shows it.
/// Call with the sled paused: its writer appends to the same file.
fn alter_started_record(dir: &Path) -> Result<(), InjectError> {
    let segments = segment::list(dir).map_err(io("reading", dir))?;
    for path in segments
        .iter()
        .rev()
        .map(|&number| segment::path(dir, number))
    {
        let mut bytes = std::fs::read(&path).map_err(io("reading", &path))?;
        let Some(digit) = started_generation_digit(&bytes).and_then(|at| bytes.get_mut(at)) else {
            continue;
        };
        *digit = if *digit == b'9' { b'0' } else { *digit + 1 };
        return std::fs::write(&path, bytes).map_err(io("altering", &path));
    }
    Err(InjectError::Io {
        what: "finding a Started record in",
        path: dir.to_owned(),
        source: std::io::ErrorKind::NotFound.into(),
    })
}

/// Where, in a segment's bytes, the last digit of its newest `Started`
/// record's ledger generation is.
fn started_generation_digit(segment: &[u8]) -> Option<usize> {
    const STARTED: &str = "\"event\":\"started\"";
    const GENERATION: &str = "\"ledger_generation\":";
    let text = std::str::from_utf8(segment).ok()?;
    let mut offset = 0;
    let mut found = None;
    for line in text.split_inclusive('\n') {
        if line.contains(STARTED)
            && let Some(at) = line.find(GENERATION)
        {
            let start = at + GENERATION.len();
            let digits = line.get(start..).map_or(0, |rest| {
                rest.bytes().take_while(u8::is_ascii_digit).count()
            });
            if digits > 0 {
                found = Some(offset + start + digits - 1);
            }
        }
        offset += line.len();
    }
    found
}

/// Makes a sled's two ledger directories small `tmpfs` file systems,
/// their contents copied in. Each mount point is added to `mounted` as
/// soon as it is mounted, so a failure part way leaves none unrecorded.
pub fn mount_drives(drives: &[PathBuf; 2], mounted: &mut Vec<PathBuf>) -> Result<(), InjectError> {
    for drive in drives {
        let aside = drive.with_extension("seed");
        std::fs::rename(drive, &aside).map_err(io("moving aside", drive))?;
        std::fs::create_dir(drive).map_err(io("creating", drive))?;
        let options = format!("size={DRIVE_BYTES},mode=0700");
        let path = drive.to_string_lossy().into_owned();
        crate::netns::run("mount", &["-t", "tmpfs", "-o", &options, "tmpfs", &path])?;
        mounted.push(drive.clone());
        copy_dir(&aside, drive)?;
        std::fs::remove_dir_all(&aside).map_err(io("removing", &aside))?;
    }
    Ok(())
}

/// Makes a new sled's two ledger directories small `tmpfs` file systems,
/// empty (new hardware: `tq sled init` makes its ledger there). Each mount
/// point is added to `mounted` as soon as it is mounted.
pub fn mount_fresh_drives(
    drives: &[PathBuf; 2],
    mounted: &mut Vec<PathBuf>,
) -> Result<(), InjectError> {
    for drive in drives {
        std::fs::create_dir_all(drive).map_err(io("creating", drive))?;
        let options = format!("size={DRIVE_BYTES},mode=0700");
        let path = drive.to_string_lossy().into_owned();
        crate::netns::run("mount", &["-t", "tmpfs", "-o", &options, "tmpfs", &path])?;
        mounted.push(drive.clone());
    }
    Ok(())
}

/// Unmounts what [`mount_drives`] mounted (lazily: a sled killed a moment
/// ago may still hold a file).
pub fn unmount(mounted: &[PathBuf]) {
    for m in mounted {
        if let Err(e) = crate::netns::run("umount", &["-l", &m.to_string_lossy()]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Copies what `from` holds into `to`, directories too (the audit log's),
/// modes kept; fillers left out.
fn copy_dir(from: &Path, to: &Path) -> Result<(), InjectError> {
    for entry in std::fs::read_dir(from).map_err(io("reading", from))? {
        let entry = entry.map_err(io("reading", from))?;
        if entry.file_name() == FILLER {
            continue;
        }
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io("reading", &entry.path()))?;
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(io("creating", &target))?;
            let mode = entry
                .metadata()
                .map_err(io("reading", &entry.path()))?
                .permissions();
            std::fs::set_permissions(&target, mode).map_err(io("setting the mode of", &target))?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(io("copying to", &target))?;
        }
    }
    Ok(())
}

/// Removes everything `dir` holds (not `dir`, a mount point).
fn empty_dir(dir: &Path) -> Result<(), InjectError> {
    for entry in std::fs::read_dir(dir).map_err(io("reading", dir))? {
        let path = entry.map_err(io("reading", dir))?.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io("removing", &path))?;
    }
    Ok(())
}

/// Writes a filler into `dir` until its file system is full.
fn fill(dir: &Path) -> Result<(), InjectError> {
    let path = dir.join(FILLER);
    let mut file = std::fs::File::create(&path).map_err(io("creating", &path))?;
    let block = [0xa5_u8; 4096];
    loop {
        match file.write(&block) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => return Ok(()),
            Err(e) => return Err(io("filling", &path)(e)),
        }
    }
}

fn unfill(dir: &Path) -> Result<(), InjectError> {
    let path = dir.join(FILLER);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("removing", &path)(e)),
    }
}

/// Sled `i`'s clock offset file (libfaketime's `FAKETIME_TIMESTAMP_FILE`).
pub fn clock_file(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("clock-{i}"))
}

/// The command prefix for sled `i` in `slot`: the slot's namespace and,
/// when libfaketime is installed, the clock offset file it reads.
pub fn wrapper(hosts: &Hosts, dir: &Path, i: usize, slot: usize, faketime: bool) -> Vec<String> {
    let mut w = hosts.wrappers().get(slot).cloned().unwrap_or_default();
    if faketime {
        let file = clock_file(dir, i);
        w.extend([
            "env".into(),
            format!("LD_PRELOAD={LIBFAKETIME}"),
            format!("FAKETIME_TIMESTAMP_FILE={}", file.display()),
            // Read again at most every second, not on every call.
            "FAKETIME_CACHE_DURATION=1".into(),
            "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
        ]);
    }
    w
}

/// Writes sled `i`'s clock offset.
fn set_clock(dir: &Path, i: usize, secs: i64) -> Result<(), InjectError> {
    let path = clock_file(dir, i);
    std::fs::write(&path, format!("{secs:+}s\n")).map_err(io("writing", &path))
}

/// What a fault changed, to undo when healed.
enum Applied {
    Nothing,
    Rules(Vec<usize>),
    Netem(Vec<usize>),
    Queued(Vec<(usize, HeldLink)>),
    Paused(usize),
    Killed(usize),
    Disks(usize),
    Clock(usize),
}

/// Counts of what the injector did.
#[derive(Clone, Debug, Default)]
pub struct FaultCounts {
    /// Applied, by kind.
    pub applied: BTreeMap<&'static str, u64>,
    /// Skipped (their sled gone), by kind.
    pub skipped: BTreeMap<&'static str, u64>,
}

/// The injector's state.
pub struct Injector {
    hosts: Arc<Hosts>,
    sleds: Arc<AsyncMutex<Sleds>>,
    shared: Arc<Mutex<Shared>>,
    dir: PathBuf,
    faketime: bool,
    log: std::fs::File,
    started: Instant,
    dice: Dice,
    /// Each sled's two ledger directories.
    drives: Vec<[PathBuf; 2]>,
    /// How link faults are made here.
    links: LinkFaults,
    /// Draws each held link's own dice.
    link_dice: Dice,
    /// Faults with sleds and the anomalies they explain (for the tally).
    pub injected: Vec<Injected>,
    /// Counts by kind.
    pub counts: FaultCounts,
    /// Store failures counted by each sled's earlier runs.
    pub store_failures: BTreeMap<usize, u64>,
    /// Sleds given a disk fault.
    pub disk_faulted: BTreeSet<usize>,
    /// Every sled's ledger copies as they were after boot.
    snapshot: Option<PathBuf>,
    /// The sleds the snapshot has.
    snapshotted: BTreeSet<usize>,
    /// Per sled, its slot (namespace and addresses).
    slot_of: Vec<usize>,
    /// Replacements not yet slid in.
    pool: Pool,
    /// The run's seed.
    seed: u64,
    /// Ledger file systems mounted for replacements, to unmount at the end.
    pub mounted: Vec<PathBuf>,
    /// Each replacement slid in: its slot, the sled it replaced, and it.
    pub replacements: Vec<(usize, usize, usize)>,
}

impl Injector {
    /// An injector for the rack; `dir` holds the log and clock files.
    pub fn new(
        hosts: Arc<Hosts>,
        sleds: Arc<AsyncMutex<Sleds>>,
        shared: Arc<Mutex<Shared>>,
        drives: Vec<[PathBuf; 2]>,
        dir: &Path,
        faketime: bool,
        seed: u64,
    ) -> Result<Self, InjectError> {
        let path = dir.join("faults.log");
        let log = std::fs::File::create(&path).map_err(io("creating", &path))?;
        let slot_of = lock(&shared).slot_of.clone();
        let slots = hosts.addresses().len();
        for slot in 0..slots {
            hosts.exec(slot, "nft", &["add", "table", "inet", TABLE])?;
            for (chain, hook) in [("in", "input"), ("out", "output")] {
                let spec = format!("{{ type filter hook {hook} priority 0; policy accept; }}");
                hosts.exec(slot, "nft", &["add", "chain", "inet", TABLE, chain, &spec])?;
            }
        }
        if faketime {
            for i in 0..slot_of.len() {
                set_clock(dir, i, 0)?;
            }
        }
        let dev = Hosts::interface(0);
        let netem = hosts
            .exec(
                0,
                "tc",
                &[
                    "qdisc", "replace", "dev", &dev, "root", "netem", "delay", "1ms",
                ],
            )
            .is_ok();
        let links = if netem {
            hosts.exec(0, "tc", &["qdisc", "del", "dev", &dev, "root"])?;
            LinkFaults::Netem
        } else if queue_works(&hosts) {
            LinkFaults::Queue
        } else {
            LinkFaults::LossOnly
        };
        Ok(Self {
            links,
            link_dice: Dice::new(seed, super::plan::stream::LINKS),
            hosts,
            sleds,
            shared,
            dir: dir.to_owned(),
            faketime,
            log,
            started: Instant::now(),
            dice: Dice::new(seed, super::plan::stream::COORDINATOR),
            drives,
            injected: Vec::new(),
            counts: FaultCounts::default(),
            store_failures: BTreeMap::new(),
            disk_faulted: BTreeSet::new(),
            snapshot: None,
            snapshotted: BTreeSet::new(),
            pool: Pool::new(&slot_of, &[], seed),
            seed,
            slot_of,
            mounted: Vec::new(),
            replacements: Vec::new(),
        })
    }

    /// The replacement sleds (indexes) the operator may slide in, each
    /// into its slot.
    pub fn stock(&mut self, replacements: &[usize]) {
        self.pool = Pool::new(&self.slot_of, replacements, self.seed);
        self.publish_refills();
    }

    /// Tells the workload how many replacements each slot has left.
    fn publish_refills(&self) {
        let slots = self.hosts.addresses().len();
        lock(&self.shared).refills = (0..slots).map(|slot| self.pool.left(slot)).collect();
    }

    /// Sled `sled`'s slot (its namespace and addresses).
    fn slot(&self, sled: usize) -> usize {
        self.slot_of.get(sled).copied().unwrap_or(sled)
    }

    /// One line to stderr and the log file.
    pub fn note(&mut self, line: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let line = format!("[{t:8.1}s] {line}");
        eprintln!("{line}");
        let _ = writeln!(self.log, "{line}");
    }

    /// Keeps a copy of the ledger copies of every sled in the rack as
    /// they are now, for a planted [`Fault::StaleLedger`].
    pub fn snapshot(&mut self) -> Result<(), InjectError> {
        let to = self.dir.join("snapshot");
        let present = lock(&self.shared).present.clone();
        for &sled in &present {
            let drives = self.drives_of(sled)?;
            for (n, drive) in drives.iter().enumerate() {
                let copy = to.join(format!("{sled}-{n}"));
                std::fs::create_dir_all(&copy).map_err(io("creating", &copy))?;
                copy_dir(drive, &copy)?;
            }
        }
        self.snapshot = Some(to);
        self.snapshotted = present;
        Ok(())
    }

    /// Whether the snapshot has sled `sled`'s ledger.
    pub fn snapshotted(&self, sled: usize) -> bool {
        self.snapshotted.contains(&sled)
    }

    fn drives_of(&self, sled: usize) -> Result<[PathBuf; 2], InjectError> {
        self.drives
            .get(sled)
            .cloned()
            .ok_or_else(|| InjectError::Io {
                what: "finding the drives of sled",
                path: PathBuf::from(sled.to_string()),
                source: std::io::Error::other("no such sled"),
            })
    }

    /// Runs the plan until `until`, one fault at a time, each healed
    /// before the next.
    pub async fn run(&mut self, plan: Plan, until: Instant) -> Result<(), InjectError> {
        for scheduled in plan {
            if Instant::now() >= until {
                break;
            }
            self.inject(&scheduled).await?;
            self.retire().await?;
            self.slide_in().await?;
            self.progress(until);
            tokio::time::sleep(scheduled.gap).await;
        }
        Ok(())
    }

    /// The progress line: time left, the latest commit, faults, loads.
    fn progress(&mut self, until: Instant) {
        let line = {
            let shared = lock(&self.shared);
            let left = until.saturating_duration_since(Instant::now());
            let faults: u64 = self.counts.applied.values().sum();
            let epoch = shared
                .latest
                .as_ref()
                .map_or_else(|| "none".to_owned(), |l| l.epoch.to_string());
            format!(
                "progress: {:.0?} left; latest commit epoch {epoch}; {faults} faults; {} secrets loaded, {} failed; longest outage {:.1?}",
                left, shared.loads.loaded, shared.loads.failed, shared.loads.longest_outage
            )
        };
        self.note(&line);
    }

    /// Applies, holds and heals one fault.
    pub async fn inject(&mut self, scheduled: &Scheduled) -> Result<(), InjectError> {
        let (present, occupants) = {
            let shared = lock(&self.shared);
            (shared.present.clone(), shared.occupants())
        };
        let fault = &match &scheduled.fault {
            // Planted: names a sled, not a slot.
            planted @ (Fault::StaleLedger { .. } | Fault::AlteredAudit { .. }) => planted.clone(),
            drawn => retarget(drawn, &occupants),
        };
        let gone = fault.sleds().iter().any(|i| !present.contains(i))
            || (fault.sleds().is_empty() && !matches!(fault, Fault::KillCoordinator));
        if gone || (matches!(fault, Fault::ClockStep { .. }) && !self.faketime) {
            let why = if gone {
                "every sled it names was removed"
            } else {
                "libfaketime is not installed"
            };
            self.note(&format!("skip  {fault} ({why})"));
            *self.counts.skipped.entry(fault.kind()).or_default() += 1;
            return Ok(());
        }
        let (kind, fallback) = match (fault, self.links) {
            (Fault::Netem { .. }, LinkFaults::LossOnly) => (
                LOSS_ONLY,
                " (no netem in this kernel, no NFQUEUE: the loss only, by nft)",
            ),
            (Fault::Netem { .. }, LinkFaults::Queue) => {
                (fault.kind(), " (no netem in this kernel: by an NFQUEUE)")
            }
            _ => (fault.kind(), ""),
        };
        self.note(&format!(
            "apply {fault}{fallback} for {:.1?}",
            scheduled.hold
        ));
        *self.counts.applied.entry(kind).or_default() += 1;
        let applied = self.apply(fault, scheduled.hold).await?;
        self.heal(applied).await?;
        self.note(&format!("heal  {fault}"));
        Ok(())
    }

    async fn apply(&mut self, fault: &Fault, hold: Duration) -> Result<Applied, InjectError> {
        let live = |shared: &Shared| -> Vec<usize> { shared.present.iter().copied().collect() };
        let applied = match fault {
            Fault::Partition { side } | Fault::OneWay { from: side } => {
                let both = matches!(fault, Fault::Partition { .. });
                let rest: Vec<usize> = {
                    let mut shared = lock(&self.shared);
                    shared.cut = Some(side.clone());
                    live(&shared)
                        .into_iter()
                        .filter(|i| !side.contains(i))
                        .collect()
                };
                let set = self.address_set(&rest);
                for &i in side {
                    self.rule(i, "out", &format!("ip6 daddr {set} drop"))?;
                    if both {
                        self.rule(i, "in", &format!("ip6 saddr {set} drop"))?;
                    }
                }
                tokio::time::sleep(hold).await;
                Applied::Rules(side.clone())
            }
            Fault::CutFromNexus { sled } => {
                lock(&self.shared).unreachable.insert(*sled);
                let root = self.hosts.root_address();
                self.rule(*sled, "in", &format!("ip6 saddr {root} drop"))?;
                tokio::time::sleep(hold).await;
                Applied::Rules(vec![*sled])
            }
            Fault::Netem { sleds, link } if self.links == LinkFaults::Queue => {
                let mut held = Vec::new();
                for &i in sleds {
                    let dice = Dice::new(self.link_dice.below(u64::MAX), 0);
                    held.push((i, self.hold_link(i, *link, dice)?));
                }
                tokio::time::sleep(hold).await;
                Applied::Queued(held)
            }
            Fault::Netem { sleds, link } if self.links == LinkFaults::LossOnly => {
                for &i in sleds {
                    let loss = link.loss;
                    self.rule(i, "out", &format!("numgen random mod 100 < {loss} drop"))?;
                }
                tokio::time::sleep(hold).await;
                Applied::Rules(sleds.clone())
            }
            Fault::Netem { sleds, link } => {
                for &i in sleds {
                    let dev = Hosts::interface(self.slot(i));
                    let (loss, delay, jitter, reorder) = (
                        format!("{}%", link.loss),
                        format!("{}ms", link.delay_ms),
                        format!("{}ms", link.jitter_ms),
                        format!("{}%", link.reorder),
                    );
                    self.hosts.exec(
                        self.slot(i),
                        "tc",
                        &[
                            "qdisc", "replace", "dev", &dev, "root", "netem", "loss", &loss,
                            "delay", &delay, &jitter, "reorder", &reorder,
                        ],
                    )?;
                }
                tokio::time::sleep(hold).await;
                Applied::Netem(sleds.clone())
            }
            Fault::Pause { sled } => {
                self.signal(*sled, rustix::process::Signal::STOP).await?;
                lock(&self.shared).down.insert(*sled);
                tokio::time::sleep(hold).await;
                Applied::Paused(*sled)
            }
            Fault::Kill { sled } => {
                self.kill(*sled).await?;
                tokio::time::sleep(hold).await;
                Applied::Killed(*sled)
            }
            Fault::KillCoordinator => {
                let target = {
                    let shared = lock(&self.shared);
                    let members = shared.latest.as_ref().map(|l| l.members.clone());
                    shared
                        .coordinator
                        .or_else(|| members.and_then(|m| self.dice.pick(&m)))
                };
                match target {
                    Some(sled) => {
                        self.note(&format!("      (the coordinator is sled {sled})"));
                        self.kill(sled).await?;
                        tokio::time::sleep(hold).await;
                        Applied::Killed(sled)
                    }
                    None => Applied::Nothing,
                }
            }
            Fault::DiskFull { sled } => {
                let drives = self.drives_of(*sled)?;
                self.disk_faulted.insert(*sled);
                self.injected.push(Injected {
                    sleds: vec![*sled],
                    what: fault.to_string(),
                    explains: DISK_FULL_EXPLAINS,
                });
                let [one, two] = &drives;
                fill(one)?;
                self.note(&format!("      sled {sled}: one ledger copy full"));
                tokio::time::sleep(hold / 2).await;
                fill(two)?;
                self.note(&format!("      sled {sled}: both ledger copies full"));
                tokio::time::sleep(hold / 2).await;
                Applied::Disks(*sled)
            }
            Fault::ClockStep { sled, secs } => {
                set_clock(&self.dir, *sled, *secs)?;
                tokio::time::sleep(hold).await;
                Applied::Clock(*sled)
            }
            Fault::StaleLedger { sled } => {
                self.kill(*sled).await?;
                let drives = self.drives_of(*sled)?;
                let Some(from) = self.snapshot.clone() else {
                    return Ok(Applied::Killed(*sled));
                };
                for (n, drive) in drives.iter().enumerate() {
                    empty_dir(drive)?;
                    copy_dir(&from.join(format!("{sled}-{n}")), drive)?;
                }
                Applied::Killed(*sled)
            }
            Fault::AlteredAudit { sled } => {
                self.signal(*sled, rustix::process::Signal::STOP).await?;
                lock(&self.shared).down.insert(*sled);
                let [first, _] = self.drives_of(*sled)?;
                alter_started_record(&first.join(tq_std::audit::AUDIT_DIR_NAME))?;
                Applied::Paused(*sled)
            }
        };
        Ok(applied)
    }

    /// Serves the queue of sled `i`'s slot with `fault`, then queues its
    /// outgoing packets to it.
    fn hold_link(&self, i: usize, fault: LinkFault, dice: Dice) -> Result<HeldLink, InjectError> {
        let slot = self.slot(i);
        let netns = namespace_file(&self.hosts, slot);
        let link = HeldLink::start(&netns, queue_of(slot), fault, dice)
            .map_err(io("serving the packet queue of", &netns))?;
        if let Err(error) = self.link_rule(slot, "-A") {
            let _ = link.release();
            return Err(error.into());
        }
        Ok(link)
    }

    /// Adds (`-A`) or deletes (`-D`) the rule queueing `slot`'s outgoing
    /// packets to its queue.
    fn link_rule(&self, slot: usize, action: &str) -> Result<(), CommandError> {
        let rule = linkq::rule(action, &Hosts::interface(slot), queue_of(slot));
        let args: Vec<&str> = rule.iter().map(String::as_str).collect();
        self.hosts.exec(slot, linkq::IP6TABLES, &args)
    }

    async fn heal(&mut self, applied: Applied) -> Result<(), InjectError> {
        match applied {
            Applied::Nothing => {}
            Applied::Rules(sleds) => {
                for &i in &sleds {
                    self.flush_rules(i)?;
                }
                let mut shared = lock(&self.shared);
                shared.cut = None;
                shared.unreachable.clear();
            }
            Applied::Netem(sleds) => {
                for &i in &sleds {
                    let slot = self.slot(i);
                    let dev = Hosts::interface(slot);
                    self.hosts
                        .exec(slot, "tc", &["qdisc", "del", "dev", &dev, "root"])?;
                }
            }
            Applied::Queued(held) => {
                for (i, link) in held {
                    self.link_rule(self.slot(i), "-D")?;
                    let counts = link
                        .release()
                        .map_err(io("releasing the queue of", &self.dir))?;
                    self.note(&format!(
                        "      sled {i}'s link: {} passed ({} overtaken), {} dropped",
                        counts.passed, counts.overtaken, counts.dropped
                    ));
                }
            }
            Applied::Paused(sled) => {
                self.signal(sled, rustix::process::Signal::CONT).await?;
                lock(&self.shared).down.remove(&sled);
            }
            Applied::Killed(sled) => self.restart(sled).await?,
            Applied::Disks(sled) => {
                for drive in self.drives_of(sled)? {
                    unfill(&drive)?;
                }
            }
            Applied::Clock(sled) => set_clock(&self.dir, sled, 0)?,
        }
        Ok(())
    }

    /// `{ a, b, ... }`: the sleds' addresses (their slots') as an nft set.
    fn address_set(&self, sleds: &[usize]) -> String {
        let slots: Vec<usize> = sleds.iter().map(|&i| self.slot(i)).collect();
        self.slot_address_set(&slots)
    }

    /// `{ a, b, ... }`: the slots' addresses as an nft set.
    fn slot_address_set(&self, slots: &[usize]) -> String {
        let list: Vec<String> = slots
            .iter()
            .filter_map(|&slot| self.hosts.addresses().get(slot).map(|a| a.to_string()))
            .collect();
        format!("{{ {} }}", list.join(", "))
    }

    /// Adds `rule` to `chain` in sled `sled`'s namespace.
    fn rule(&self, sled: usize, chain: &str, rule: &str) -> Result<(), InjectError> {
        let mut args = vec!["add", "rule", "inet", TABLE, chain];
        args.extend(rule.split(' '));
        Ok(self.hosts.exec(self.slot(sled), "nft", &args)?)
    }

    /// Removes every rule in sled `sled`'s namespace.
    fn flush_rules(&self, sled: usize) -> Result<(), InjectError> {
        for chain in ["in", "out"] {
            self.hosts.exec(
                self.slot(sled),
                "nft",
                &["flush", "chain", "inet", TABLE, chain],
            )?;
        }
        Ok(())
    }

    async fn signal(
        &self,
        sled: usize,
        signal: rustix::process::Signal,
    ) -> Result<(), InjectError> {
        let pid = self.sleds.lock().await.pid(sled);
        let pid = pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            rustix::process::kill_process(pid, signal)
                .map_err(|e| InjectError::Signal(sled, e.into()))?;
        }
        Ok(())
    }

    /// SIGKILL, after reading the counters that restart with the sled.
    async fn kill(&mut self, sled: usize) -> Result<(), InjectError> {
        let mut sleds = self.sleds.lock().await;
        if !sleds.is_running(sled) {
            return Ok(());
        }
        if let Ok(api) = sleds.api(sled)
            && let Ok(text) = api.metrics_text().await
        {
            *self.store_failures.entry(sled).or_default() +=
                metric_sum(&text, "tq_node_store_failures_total");
        }
        let acked = {
            let mut shared = lock(&self.shared);
            shared.down.insert(sled);
            shared.confirmed.get(&sled).copied()
        };
        sleds.kill(sled).await?;
        lock(&self.shared).acked_at_kill.insert(sled, acked);
        Ok(())
    }

    /// Starts a killed sled again and records what its ledger gave back.
    async fn restart(&mut self, sled: usize) -> Result<(), InjectError> {
        let mut sleds = self.sleds.lock().await;
        if lock(&self.shared).retired.contains(&sled) || sleds.is_running(sled) {
            return Ok(());
        }
        // Cut off from its peers until its status is read, so that what it
        // reports is what its ledger gave back, not what a peer taught it
        // since (which would hide a lost state).
        let own = self.slot(sled);
        let others: Vec<usize> = (0..self.hosts.addresses().len())
            .filter(|&slot| slot != own)
            .collect();
        let set = self.slot_address_set(&others);
        self.rule(sled, "out", &format!("ip6 daddr {set} drop"))?;
        self.rule(sled, "in", &format!("ip6 saddr {set} drop"))?;
        let started = sleds.start(sled).await;
        let held = match started {
            Ok(()) => sleds
                .status(sled)
                .await
                .ok()
                .map(|s| s.node.state.latest_committed),
            Err(_) => None,
        };
        self.flush_rules(sled)?;
        started?;
        let mut shared = lock(&self.shared);
        shared.down.remove(&sled);
        let acked = shared.acked_at_kill.remove(&sled).flatten();
        if let Some(held) = held {
            shared
                .seen
                .restarts
                .push(super::check::Restart { sled, acked, held });
        }
        Ok(())
    }

    /// Shuts down the sleds Nexus removed (a removed sled is wiped).
    pub async fn retire(&mut self) -> Result<(), InjectError> {
        let retire: Vec<usize> = std::mem::take(&mut lock(&self.shared).retire);
        for sled in retire {
            {
                let mut shared = lock(&self.shared);
                shared.retired.insert(sled);
                shared.present.remove(&sled);
            }
            self.kill(sled).await?;
            lock(&self.shared).down.remove(&sled);
            let slot = self.slot(sled);
            self.note(&format!(
                "sled {sled} removed by Nexus: shut down for good; slot {slot} empty ({} replacements left for it)",
                self.pool.left(slot)
            ));
        }
        Ok(())
    }

    /// The operator's turn: into each empty slot the pool draws for now,
    /// a replacement sled is slid: fresh ledger drives and `tq sled init`,
    /// every sled in the rack told of it (configuration rewritten, SIGHUP),
    /// started, then handed to Nexus's workload as a spare.
    pub async fn slide_in(&mut self) -> Result<(), InjectError> {
        let occupants = lock(&self.shared).occupants();
        let picks = self.pool.draw(&occupants);
        self.replace_all(picks).await
    }

    /// After the faults: a replacement slid into every empty slot that has
    /// one left, so the run ends with a full rack.
    pub async fn refill(&mut self) -> Result<(), InjectError> {
        let occupants = lock(&self.shared).occupants();
        let picks = self.pool.every(&occupants);
        self.replace_all(picks).await
    }

    /// Slides each picked replacement into its slot.
    async fn replace_all(&mut self, picks: Vec<(usize, usize)>) -> Result<(), InjectError> {
        for (slot, sled) in picks {
            self.publish_refills();
            self.replace(slot, sled).await?;
        }
        Ok(())
    }

    /// Slides replacement `sled` into `slot`, as an operator does: fresh
    /// ledger drives and `tq sled init`; every sled in the rack told of it
    /// (configuration rewritten, SIGHUP) and it of them; started; then
    /// handed to Nexus's workload as a spare.
    async fn replace(&mut self, slot: usize, sled: usize) -> Result<(), InjectError> {
        let rack_sleds = Arc::clone(&self.sleds);
        let mut sleds = rack_sleds.lock().await;
        let replaced = lock(&self.shared)
            .retired
            .iter()
            .copied()
            .filter(|&r| self.slot(r) == slot)
            .max()
            .unwrap_or(slot);
        let id = sleds.files(sled)?.id.clone();
        self.note(&format!(
            "slot {slot}: replacement sled {sled} ({id}) slid in where sled {replaced} was"
        ));
        let drives = self.drives_of(sled)?;
        mount_fresh_drives(&drives, &mut self.mounted)?;
        let present: Vec<usize> = lock(&self.shared).present.iter().copied().collect();
        let failed = |e| InjectError::Replacement(sled, e);
        sleds.layout.write_config(sled, &present).map_err(failed)?;
        sleds.layout.init_ledger(sled).map_err(failed)?;
        let mut rack = present.clone();
        rack.push(sled);
        for &peer in &present {
            sleds.layout.write_config(peer, &rack).map_err(failed)?;
            if let Some(pid) = sleds
                .pid(peer)
                .and_then(|p| i32::try_from(p).ok())
                .and_then(rustix::process::Pid::from_raw)
            {
                rustix::process::kill_process(pid, rustix::process::Signal::HUP)
                    .map_err(|e| InjectError::Signal(peer, e.into()))?;
            }
        }
        sleds.start(sled).await?;
        if let Err(e) = sleds.wait_connected(&rack, CONNECT_LIMIT).await {
            self.note(&format!("      slot {slot}: not yet connected: {e}"));
        }
        drop(sleds);
        {
            let mut shared = lock(&self.shared);
            shared.present.insert(sled);
            shared.arrived.push(sled);
        }
        self.replacements.push((slot, replaced, sled));
        self.note(&format!(
            "      slot {slot}: sled {sled} up and connected, ready to be added"
        ));
        Ok(())
    }
}

/// `fault`, drawn for slots, aimed at the sleds in them now
/// (`occupants[slot]`): empty slots taken out of its groups, and a fault
/// on one empty slot moved to the sled its index picks among those in the
/// rack (`live[slot % live.len()]`), so a long run does not skip ever
/// more faults as Nexus removes sleds. Deterministic for a given history
/// of removals and replacements.
fn retarget(fault: &Fault, occupants: &[Option<usize>]) -> Fault {
    let live: Vec<usize> = occupants.iter().flatten().copied().collect();
    let occupant = |slot: usize| occupants.get(slot).copied().flatten();
    let keep = |group: &[usize]| -> Vec<usize> {
        let mut sleds: Vec<usize> = group.iter().filter_map(|&slot| occupant(slot)).collect();
        sleds.sort_unstable();
        sleds
    };
    let one = |slot: usize| -> usize {
        match occupant(slot) {
            Some(sled) => sled,
            // No sled in the rack at all: `slot`, which no sled has now.
            None => live.get(slot % live.len().max(1)).copied().unwrap_or(slot),
        }
    };
    match fault.clone() {
        Fault::Partition { side } => Fault::Partition { side: keep(&side) },
        Fault::OneWay { from } => Fault::OneWay { from: keep(&from) },
        Fault::Netem { sleds, link } => Fault::Netem {
            sleds: keep(&sleds),
            link,
        },
        Fault::CutFromNexus { sled } => Fault::CutFromNexus { sled: one(sled) },
        Fault::Pause { sled } => Fault::Pause { sled: one(sled) },
        Fault::Kill { sled } => Fault::Kill { sled: one(sled) },
        Fault::DiskFull { sled } => Fault::DiskFull { sled: one(sled) },
        Fault::ClockStep { sled, secs } => Fault::ClockStep {
            sled: one(sled),
            secs,
        },
        other @ (Fault::KillCoordinator
        | Fault::StaleLedger { .. }
        | Fault::AlteredAudit { .. }) => other,
    }
}

/// A slot's NFQUEUE number (each namespace has its own queues; one per
/// slot keeps them apart in the log).
fn queue_of(slot: usize) -> u16 {
    u16::try_from(slot).unwrap_or(u16::MAX)
}

/// The file `ip netns` made for a slot's namespace.
fn namespace_file(hosts: &Hosts, slot: usize) -> PathBuf {
    Path::new("/run/netns").join(hosts.namespace(slot).unwrap_or_default())
}

/// Whether link faults can be made by an NFQUEUE here: a queue binds in
/// sled 0's namespace and `ip6tables-legacy` can list its rules.
fn queue_works(hosts: &Hosts) -> bool {
    let netns = namespace_file(hosts, 0);
    let still = LinkFault::default();
    match HeldLink::start(&netns, queue_of(0), still, Dice::new(0, 0)) {
        Ok(link) => link.release().is_ok() && hosts.exec(0, linkq::IP6TABLES, &["-S"]).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planted_alteration_hits_the_newest_started_records_generation() {
        let segment = concat!(
            "{\"seq\":2,\"event\":\"started\",\"version\":\"0.1.0\",\"ledger_generation\":3}\n",
            "{\"seq\":3,\"event\":\"log_created\",\"ledger_generation\":4}\n",
            "{\"seq\":4,\"event\":\"started\",\"version\":\"0.1.0\",\"ledger_generation\":19}\n",
            "{\"seq\":5,\"event\":\"refusals\",\"counts\":{}}\n",
        );
        let at = started_generation_digit(segment.as_bytes()).unwrap();
        let line = segment.lines().nth(2).unwrap();
        let line_start = segment.find(line).unwrap();
        assert_eq!(at, line_start + line.find("19}").unwrap() + 1);
        assert_eq!(
            started_generation_digit(b"{\"event\":\"refusals\"}\n"),
            None
        );
    }

    #[test]
    fn faults_are_aimed_at_the_sleds_in_the_slots_now() {
        // Slot 2 emptied: its sled removed, no replacement yet.
        let occupants = [Some(0), Some(1), None, Some(3), Some(4)];
        assert_eq!(
            retarget(&Fault::Kill { sled: 2 }, &occupants),
            Fault::Kill { sled: 3 }
        );
        assert_eq!(
            retarget(&Fault::Pause { sled: 1 }, &occupants),
            Fault::Pause { sled: 1 }
        );
        assert_eq!(
            retarget(&Fault::Partition { side: vec![1, 2] }, &occupants),
            Fault::Partition { side: vec![1] }
        );
        // Slot 2 refilled by replacement sled 7: the faults drawn for the
        // slot hit it.
        let occupants = [Some(0), Some(1), Some(7), Some(3), Some(4)];
        assert_eq!(
            retarget(&Fault::Kill { sled: 2 }, &occupants),
            Fault::Kill { sled: 7 }
        );
        assert_eq!(
            retarget(&Fault::Partition { side: vec![1, 2] }, &occupants),
            Fault::Partition { side: vec![1, 7] }
        );
        let none = [None; 5];
        assert_eq!(
            retarget(&Fault::OneWay { from: vec![2] }, &none).sleds(),
            Vec::<usize>::new()
        );
    }
}
