//! `tq chaos`: faults and churn against a rack of `tq sled` processes, each
//! in its own network namespace ([`crate::netns`]), with Nexus (this
//! process, the real driver over HTTP) reconfiguring the rack the whole
//! time, and a checker that judges the run from the outside afterwards.
//!
//! - [`plan`]: the fault schedule, from the seed alone.
//! - [`inject`]: how each fault is made and healed (nft, tc netem or an
//!   NFQUEUE served here ([`linkq`]), SIGSTOP/SIGCONT, SIGKILL and
//!   restart, full `tmpfs` ledger disks, libfaketime clock steps), each
//!   logged.
//! - [`workload`]: Nexus: the LRTQ upgrade, then adds, removes and
//!   rotations without pause, its coordinators killed by the injector.
//! - [`slots`]: the operator: a sled Nexus removed is shut down for good,
//!   and a replacement (new platform id and certificate, fresh ledger by
//!   `tq sled init`) may later be slid into its slot and added like any
//!   spare.
//! - [`probe`]: sleds loading the latest secret, statuses read, the
//!   rack's unlock outages measured.
//! - [`check`]: the checker, over what was observed.
//! - [`audit`]: each running sled's audit log and refusal counts, read
//!   at the end for the checker.
//! - [`report`]: the final table.
//!
//! One fault holds at a time (each healed before the next), so the
//! injector's account of who is connected is exact, and the checker can
//! tell which fault explains which counter.
//!
//! # Slots and replacements
//!
//! The rack has a slot per first sled: its namespace and addresses. A
//! sled is an identity (index, platform id); Nexus never takes a removed
//! sled's id back, so a slot is refilled by a new sled, one of a pool made
//! at set-up ([`Options::replacements`] per slot, certificates from the
//! rack CA like the rest). When one is slid in, every sled in the rack
//! has its configuration rewritten to list the sleds there now and is
//! sent SIGHUP (`tq sled` re-reads its peers), then the new sled starts
//! and Nexus's workload may add it. The checker needs nothing special:
//! what a sled acknowledged is kept per identity, so a replacement's
//! acknowledgements start at its add and a retired sled's are never
//! asked for again.
//!
//! # Replaying a run
//!
//! The seed fixes the fault schedule (kinds, targets, holds, gaps) and
//! every choice Nexus's workload, the operator and the probes make, each
//! from its own ChaCha8 stream; the processes' timing is the machine's, so
//! a replay injects the same faults in the same order, not the same
//! interleaving (nor, since removals are committed when the faults let
//! them be, the same replacements at the same moments).
//! `faults.log` in the run's directory (kept when a check fails) has every
//! fault applied, skipped and healed, with its time.
//!
//! # Choices
//!
//! - The ledger "disks" are `tmpfs` mounts with a size limit, not loop
//!   devices: the same ENOSPC on the same write path, with no image file
//!   on a machine short of disk. (A tmpfs `fsync` is a no-op; durability
//!   across power loss is not what this exercises: kills are process
//!   kills.)
//! - Unlock outages are measured against the injector's own account of
//!   who is up and connected (one fault at a time makes it exact): a
//!   quorum is connected when at least K members of the latest committed
//!   configuration are neither killed, paused nor removed, and on the
//!   larger side of any partition.
//! - "Acknowledged" is what Nexus's driver saw: each `Confirmed` event (a
//!   member confirmed a commit, which it answers only once stored). The
//!   first status after each restart must hold that epoch or a later one.
//!
//! Needs root, iproute2, `nft` (Debian `nftables`), for link faults on a
//! kernel without netem `ip6tables-legacy` (Debian `iptables`; without it
//! only their loss is made, counted so), and, for clock steps,
//! libfaketime (Debian `faketime`; without it clock steps are skipped and
//! counted so). Everything made (namespaces, mounts, the temporary
//! directory) is removed at the end; the directory is kept when a check
//! fails or when asked.

pub mod audit;
pub mod check;
pub mod inject;
pub mod linkq;
pub mod plan;
pub mod probe;
pub mod report;
pub mod slots;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;
use tq_core::authority::NexusAuthorityKey;
use tq_core::ids::{Epoch, PlatformId};
use tq_driver::{Authority, Driver, DriverConfig, DriverError, StateFile};
use tq_nexus::{Origin, Timing};

use crate::demo::layout::{Addressing, Layout, LayoutError};
use crate::demo::sleds::{Launch, Sleds, SledsError};
use crate::netns::{CommandError, Hosts};
use crate::nexus::http::{ClientError, HttpSled};
use check::Observations;
use inject::{InjectError, Injector};
use plan::{Fault, Plan, Scheduled};
use probe::{Fingerprints, Loads};
use report::Summary;
use workload::Workload;

/// How long each member may take to load the latest secret after the
/// faults heal.
pub const UNLOCK_BOUND: Duration = Duration::from_secs(30);

/// How long Nexus may take to settle its last change after the faults.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// How long each of Nexus's calls may take.
const NEXUS_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the sleds may take to connect, at boot and after heal.
const CONNECT_LIMIT: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `tq` binary the sleds run.
    pub exe: PathBuf,
    /// Sleds of the LRTQ rack.
    pub lrtq: usize,
    /// Spare sleds, added by Nexus as the run goes.
    pub spares: usize,
    /// Replacement sleds made ready per slot (see the module doc).
    pub replacements: usize,
    /// The seed of the faults and of Nexus's choices.
    pub seed: u64,
    /// How long faults are injected.
    pub duration: Duration,
    /// Plant a fault the checker must catch: after the seeded faults, a
    /// member that confirmed a commit is restarted from the ledger it had
    /// at boot.
    pub plant_stale_ledger: bool,
    /// Plant a fault the checker must catch: after the final unlock, a
    /// member of the final configuration is paused, a record of its audit
    /// log altered, and it is resumed.
    pub plant_altered_audit: bool,
    /// Keep the temporary directory.
    pub keep: bool,
}

/// Why the run could not run (a check that failed is not one).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// Namespaces cannot be made here.
    #[error("network namespaces")]
    Namespaces(#[source] CommandError),
    /// The temporary directory.
    #[error("cannot create a temporary directory")]
    TempDir(#[source] std::io::Error),
    /// The rack on disk.
    #[error("set-up")]
    Layout(#[source] LayoutError),
    /// Starting or reading a sled.
    #[error(transparent)]
    Sleds(#[from] SledsError),
    /// A fault could not be applied or healed.
    #[error("fault injection")]
    Inject(#[source] InjectError),
    /// Nexus's sled directory.
    #[error("Nexus's sled directory")]
    Directory(#[source] ClientError),
    /// The Nexus driver failed.
    #[error("the Nexus driver")]
    Driver(#[source] DriverError),
    /// A task of the run panicked.
    #[error("a task of the run failed: {0}")]
    Task(String),
}

/// The latest committed configuration, as the workload last saw it.
#[derive(Clone, Debug)]
pub struct Latest {
    /// Its epoch.
    pub epoch: Epoch,
    /// Its members.
    pub members: Vec<usize>,
    /// Its threshold.
    pub k: usize,
}

/// What the injector, the workload and the probes share.
#[derive(Debug, Default)]
pub struct Shared {
    /// Per sled (index), its slot: the namespace and addresses it has.
    pub slot_of: Vec<usize>,
    /// Sleds in the rack now: started and not retired (the first sleds
    /// from the start, replacements once slid in).
    pub present: BTreeSet<usize>,
    /// Replacements slid in that the workload has not yet taken as
    /// spares.
    pub arrived: Vec<usize>,
    /// Per slot, the replacements left for it.
    pub refills: Vec<usize>,
    /// Sleds killed or paused now.
    pub down: BTreeSet<usize>,
    /// Sleds Nexus cannot reach now (their peers can).
    pub unreachable: BTreeSet<usize>,
    /// One side of the partition in force, if any.
    pub cut: Option<Vec<usize>>,
    /// Sleds removed by Nexus and shut down.
    pub retired: BTreeSet<usize>,
    /// Sleds removed by Nexus, to shut down.
    pub retire: Vec<usize>,
    /// The latest committed configuration.
    pub latest: Option<Latest>,
    /// The pending change's coordinator.
    pub coordinator: Option<usize>,
    /// Per sled, the highest commit it confirmed to Nexus.
    pub confirmed: BTreeMap<usize, Epoch>,
    /// Per killed sled, what it had confirmed when killed.
    pub acked_at_kill: BTreeMap<usize, Option<Epoch>>,
    /// What the checker judges.
    pub seen: Observations,
    /// Sleds seen with failing ledger writes.
    pub failing: BTreeSet<usize>,
    /// Secret loads and outages.
    pub loads: Loads,
    /// Tells the workload to settle and stop.
    pub stop_workload: bool,
    /// Tells the probes to stop.
    pub stop_probes: bool,
}

impl Shared {
    /// Per slot, the sled in it now, if any.
    pub fn occupants(&self) -> Vec<Option<usize>> {
        let slots = self.slot_of.iter().max().map_or(0, |s| s + 1);
        let mut occupants = vec![None; slots];
        for &sled in &self.present {
            if let Some(slot) = self.slot_of.get(sled).and_then(|&s| occupants.get_mut(s)) {
                *slot = Some(sled);
            }
        }
        occupants
    }

    /// Whether a quorum of the latest configuration is up and connected
    /// now, and the members of it Nexus can ask.
    pub fn connected_quorum(&self) -> (bool, Vec<usize>) {
        let Some(latest) = &self.latest else {
            return (false, Vec::new());
        };
        let up: Vec<usize> = latest
            .members
            .iter()
            .copied()
            .filter(|i| !self.down.contains(i) && !self.retired.contains(i))
            .collect();
        let group = match &self.cut {
            None => up,
            Some(side) => {
                let (inside, outside): (Vec<usize>, Vec<usize>) =
                    up.into_iter().partition(|i| side.contains(i));
                if inside.len() >= outside.len() {
                    inside
                } else {
                    outside
                }
            }
        };
        let quorum = latest.k > 0 && group.len() >= latest.k;
        let askable = group
            .into_iter()
            .filter(|i| !self.unreachable.contains(i))
            .collect();
        (quorum, askable)
    }
}

/// Locks `m`; a panic elsewhere while it was held does not stop the
/// run's reporting.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sum of a Prometheus counter family's samples in `text`.
pub fn metric_sum(text: &str, family: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Nexus's timing: quick polls, and a coordinator abandoned after five
/// seconds without progress (pauses and partitions last up to six).
fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_millis(50),
        retry_interval: Duration::from_millis(200),
        abandon_after: Some(Duration::from_secs(5)),
    }
}

/// The ledger directories' mounts, unmounted on drop.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        inject::unmount(&self.0);
    }
}

/// Runs the rack under faults for `options.duration`, then heals, checks
/// and sums up.
pub async fn run(options: Options) -> Result<Summary, ChaosError> {
    if let Some(why) = crate::netns::cannot_make_namespaces() {
        return Err(ChaosError::Namespaces(why));
    }
    let started = Instant::now();
    let count = options.lrtq + options.spares;
    let dir = tempfile::Builder::new()
        .prefix("tq-chaos-")
        .tempdir()
        .map_err(ChaosError::TempDir)?;
    let hosts = Arc::new(Hosts::create(count).map_err(ChaosError::Namespaces)?);
    let mut layout = Layout::create(
        dir.path(),
        options.lrtq,
        options.spares,
        options.seed,
        &Addressing::Fixed(hosts.addresses().to_vec()),
    )
    .map_err(ChaosError::Layout)?;
    let pool = layout
        .provision_replacements(options.replacements)
        .map_err(ChaosError::Layout)?;
    let slot_of: Vec<usize> = layout.sleds.iter().map(|s| s.slot).collect();
    let mut mounts = Mounts(Vec::new());
    for sled in layout.sleds.iter().take(count) {
        inject::mount_drives(&sled.drives, &mut mounts.0).map_err(ChaosError::Inject)?;
    }
    let faketime = Path::new(inject::LIBFAKETIME).exists();
    let wrappers = slot_of
        .iter()
        .enumerate()
        .map(|(i, &slot)| inject::wrapper(&hosts, dir.path(), i, slot, faketime))
        .collect();
    let ids: Vec<PlatformId> = layout.sleds.iter().map(|s| s.id.clone()).collect();
    let lrtq: Vec<usize> = (0..options.lrtq).collect();
    let spares: Vec<usize> = (options.lrtq..count).collect();
    let drives = layout.sleds.iter().map(|s| s.drives.clone()).collect();
    let rack = layout.rack_file(|s| s.lrtq);
    let rack_id = layout.rack_id;
    let authority = layout.authority.clone();
    let sleds = Sleds::new(
        layout,
        Launch::Processes {
            exe: options.exe.clone(),
            wrappers,
        },
    )?;
    let apis = Apis::new(&sleds)?;
    let sleds = Arc::new(AsyncMutex::new(sleds));
    let shared = Arc::new(Mutex::new(Shared {
        slot_of,
        present: (0..count).collect(),
        ..Shared::default()
    }));
    let mut injector = Injector::new(
        Arc::clone(&hosts),
        Arc::clone(&sleds),
        Arc::clone(&shared),
        drives,
        dir.path(),
        faketime,
        options.seed,
    )
    .map_err(ChaosError::Inject)?;
    injector.stock(&pool);
    if !faketime {
        injector.note("libfaketime not found: clock steps will be skipped");
    }
    let outcome = faults_and_checks(
        &options,
        &mut injector,
        &sleds,
        &shared,
        apis,
        (rack, rack_id, authority, ids, lrtq, spares),
        dir.path(),
    )
    .await;
    sleds.lock().await.stop_all().await;
    mounts.0.append(&mut injector.mounted);
    drop(mounts);
    let mut summary = outcome?;
    summary.total = started.elapsed();
    summary.sleds = count;
    summary.replacement_pool = options.replacements * count;
    if options.keep || !summary.passed() {
        let kept = dir.keep();
        eprintln!("ledgers, logs and the fault log kept in {}", kept.display());
        summary.log = Some(kept.join("faults.log"));
    }
    drop(hosts);
    Ok(summary)
}

type Rack = (
    crate::nexus::rack_file::RackFile,
    tq_core::ids::RackId,
    NexusAuthorityKey,
    Vec<PlatformId>,
    Vec<usize>,
    Vec<usize>,
);

async fn faults_and_checks(
    options: &Options,
    injector: &mut Injector,
    sleds: &Arc<AsyncMutex<Sleds>>,
    shared: &Arc<Mutex<Shared>>,
    apis: Apis,
    (rack, rack_id, authority, ids, lrtq, spares): Rack,
    dir: &Path,
) -> Result<Summary, ChaosError> {
    let fingerprints = Fingerprints::new(Authority::new(authority.clone(), rack_id), &ids);
    let slots = lock(shared).occupants().len();
    {
        let mut sleds = sleds.lock().await;
        let all: Vec<usize> = (0..slots).collect();
        for &i in &all {
            sleds.start(i).await?;
        }
        sleds.wait_connected(&all, CONNECT_LIMIT).await?;
    }
    injector.note(&format!(
        "{slots} sleds up and connected ({} replacements ready); seed {}",
        ids.len() - slots,
        options.seed
    ));
    if options.plant_stale_ledger {
        injector.snapshot().map_err(ChaosError::Inject)?;
    }
    let config = DriverConfig {
        timing: timing(),
        call_timeout: NEXUS_CALL_TIMEOUT,
    };
    let directory = crate::nexus::directory(&rack, &apis.rack_ca, config.call_timeout)
        .map_err(ChaosError::Directory)?;
    // Each replacement's route, given to Nexus when it is slid in.
    let routes = apis
        .routes
        .iter()
        .enumerate()
        .skip(slots)
        .map(|(i, route)| (i, route.clone()))
        .collect();
    let lrtq_ids: Vec<PlatformId> = lrtq.iter().filter_map(|&i| ids.get(i).cloned()).collect();
    let driver = Driver::create(
        StateFile::new(dir.join("nexus.json")),
        directory,
        authority,
        config,
        rack_id,
        Origin::Lrtq,
        &lrtq_ids,
    )
    .await
    .map_err(ChaosError::Driver)?;
    let mut workload = Workload::new(
        driver,
        Arc::clone(shared),
        ids.clone(),
        (lrtq, spares),
        routes,
        options.seed,
        options.duration,
    );
    let probes = tokio::spawn(probe::run(
        apis.quick.clone(),
        fingerprints.clone(),
        Arc::clone(shared),
        options.seed,
    ));
    let driving = tokio::spawn(async move {
        let result = workload.run(SETTLE_LIMIT).await;
        (workload, result)
    });
    let faults_began = Instant::now();
    let injected = injector
        .run(
            Plan::new(options.seed, slots),
            faults_began + options.duration,
        )
        .await;
    let planted_on = options.plant_stale_ledger.then(|| {
        let s = lock(shared);
        s.confirmed
            .keys()
            .copied()
            .find(|i| s.present.contains(i) && !s.retire.contains(i) && injector.snapshotted(*i))
    });
    if let Some(Some(sled)) = planted_on {
        plant(injector, Fault::StaleLedger { sled }).await?;
    }
    let faulted = faults_began.elapsed();
    lock(shared).stop_workload = true;
    injector.note("faults over: every fault healed; Nexus settles its last change");
    let (mut workload, driven) = driving.await.map_err(|e| ChaosError::Task(e.to_string()))?;
    injected.map_err(ChaosError::Inject)?;
    driven.map_err(ChaosError::Driver)?;
    injector.retire().await.map_err(ChaosError::Inject)?;
    injector.note("Nexus settled; the operator refills the emptied slots");
    // The rack brought back to full strength: every emptied slot with a
    // replacement left refilled, and every sled waiting added.
    injector.refill().await.map_err(ChaosError::Inject)?;
    workload
        .add_every_spare(SETTLE_LIMIT)
        .await
        .map_err(ChaosError::Driver)?;
    injector.retire().await.map_err(ChaosError::Inject)?;
    let full = lock(shared).latest.clone();
    injector.note(&format!(
        "every waiting sled added: members {:?} at epoch {}; the final unlock",
        full.as_ref().map(|l| l.members.clone()).unwrap_or_default(),
        full.map_or_else(|| "none".to_owned(), |l| l.epoch.to_string())
    ));
    // The final unlock: every member of the latest configuration loads
    // its secret.
    let latest = lock(shared).latest.clone();
    let members = latest
        .as_ref()
        .map(|l| l.members.clone())
        .unwrap_or_default();
    let _ = sleds
        .lock()
        .await
        .wait_connected(&members, CONNECT_LIMIT)
        .await;
    let latest_epoch = latest.as_ref().map(|l| l.epoch);
    let unlocks = unlock_all(&apis.patient, &fingerprints, &members, latest_epoch).await;
    lock(shared).stop_probes = true;
    probes.await.map_err(|e| ChaosError::Task(e.to_string()))?;
    let mut final_held = BTreeMap::new();
    for &i in &members {
        if let Some(api) = apis.quick.get(i)
            && let Ok(status) = api.sled_status().await
        {
            let mut s = lock(shared);
            let acked = s.confirmed.get(&i).copied();
            final_held.insert(i, (acked, status.node.state.latest_committed));
            for alarm in &status.node.alarms {
                s.seen.alarms.insert((i, format!("{alarm:?}")));
            }
        }
    }
    let (unexplained, failing_stores, stray) = counters(injector, sleds, shared, &apis.quick).await;
    if options.plant_altered_audit
        && let Some(&sled) = members.first()
    {
        plant(injector, Fault::AlteredAudit { sled }).await?;
    }
    injector.note("the audit logs: counts, one refusal-record interval, the logs, counts again");
    let audit = audit::observe(running(injector, sleds).await, &apis.quick).await;
    let nexus = *workload.driver().nexus().stats();
    let mut s = lock(shared);
    s.loads.close(Instant::now());
    s.seen.final_held = final_held;
    s.seen.unlocks = unlocks;
    s.seen.latest = latest.as_ref().map(|l| l.epoch);
    s.seen.unexplained = unexplained;
    s.seen.failing_stores = failing_stores;
    s.seen.stray_store_failures = stray;
    s.seen.audit = audit;
    s.seen
        .committed
        .extend(workload.driver().nexus().history().map(|c| c.epoch()));
    let verdicts = check::judge(&s.seen, UNLOCK_BOUND);
    // Replacements' indexes come after the first sleds' (one per slot).
    // A replacement that confirmed a commit was a member of a committed
    // configuration (Nexus's own history keeps only the latest ones).
    let added = s.confirmed.keys().filter(|&&i| i >= slots).count();
    let final_members = members
        .iter()
        .map(|&i| report::Member {
            sled: i,
            slot: s.slot_of.get(i).copied().unwrap_or(i),
        })
        .collect();
    Ok(Summary {
        seed: options.seed,
        faulted,
        faults: injector.counts.clone(),
        attempted: nexus.started,
        committed: nexus.committed,
        abandoned: nexus.abandoned,
        refused_starts: workload.refused_starts,
        loads: (s.loads.loaded, s.loads.failed),
        longest_outage: s.loads.longest_outage,
        replacements_slid_in: injector.replacements.len(),
        replacements_added: added,
        final_epoch: latest_epoch,
        final_members,
        verdicts,
        ..Summary::default()
    })
}

/// Injects a planted fault: applied at once, healed at once.
async fn plant(injector: &mut Injector, fault: Fault) -> Result<(), ChaosError> {
    let planted = Scheduled {
        fault,
        hold: Duration::ZERO,
        gap: Duration::ZERO,
    };
    injector.inject(&planted).await.map_err(ChaosError::Inject)
}

/// Each sled's API twice over: quick calls for the probes, and calls that
/// wait out [`UNLOCK_BOUND`] for the final unlock.
struct Apis {
    /// What the clients trust: the rack CA (HTTPS).
    rack_ca: crate::https::RackCa,
    /// Every call bounded by 3 s.
    quick: Vec<HttpSled>,
    /// Every call bounded by [`UNLOCK_BOUND`] and 5 s.
    patient: Vec<HttpSled>,
    /// Nexus's routes: every call bounded by [`NEXUS_CALL_TIMEOUT`].
    routes: Vec<HttpSled>,
}

impl Apis {
    fn new(sleds: &Sleds) -> Result<Self, ChaosError> {
        let rack_ca = sleds.rack_ca().clone();
        let clients = |timeout: Duration| {
            sleds
                .layout
                .sleds
                .iter()
                .map(|s| HttpSled::new(s.api, s.id.clone(), &rack_ca, timeout))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ChaosError::Directory)
        };
        Ok(Self {
            quick: clients(Duration::from_secs(3))?,
            patient: clients(UNLOCK_BOUND + Duration::from_secs(5))?,
            routes: clients(NEXUS_CALL_TIMEOUT)?,
            rack_ca,
        })
    }
}

/// Every member of `members` loads the latest secret; how long each took,
/// or why it did not.
async fn unlock_all(
    apis: &[HttpSled],
    fingerprints: &Fingerprints,
    members: &[usize],
    latest: Option<Epoch>,
) -> BTreeMap<usize, Result<Duration, String>> {
    let mut asks = tokio::task::JoinSet::new();
    for &i in members {
        let Some(api) = apis.get(i).cloned() else {
            continue;
        };
        let fingerprints = fingerprints.clone();
        asks.spawn(async move {
            let asked = Instant::now();
            let got = fingerprints.ask(&api, i, UNLOCK_BOUND).await;
            let took = asked.elapsed();
            let verdict = match got {
                Ok(p) if Some(p.epoch) == latest => Ok(took),
                Ok(p) => Err(format!("loaded epoch {}, not the latest", p.epoch)),
                Err(e) => Err(e),
            };
            (i, verdict)
        });
    }
    let mut unlocks = BTreeMap::new();
    while let Some(Ok((i, verdict))) = asks.join_next().await {
        unlocks.insert(i, verdict);
    }
    unlocks
}

type CounterFindings = (Vec<String>, BTreeMap<usize, u64>, BTreeMap<usize, u64>);

/// The sleds' counters against the faults: anomalies only where a fault
/// explains them (the core's, from each run's status), and store failures
/// (every run's `/metrics`) where and only where a disk filled up.
async fn counters(
    injector: &Injector,
    sleds: &Arc<AsyncMutex<Sleds>>,
    shared: &Arc<Mutex<Shared>>,
    apis: &[HttpSled],
) -> CounterFindings {
    let sleds = sleds.lock().await;
    let mut by_sled = BTreeMap::new();
    let mut store_failures = injector.store_failures.clone();
    for i in 0..sleds.len() {
        if let Ok(counts) = sleds.counts(i).await {
            by_sled.insert(i, counts);
        }
        if sleds.is_running(i)
            && let Some(api) = apis.get(i)
            && let Ok(text) = api.metrics_text().await
        {
            *store_failures.entry(i).or_default() +=
                metric_sum(&text, "tq_node_store_failures_total");
        }
    }
    let tally = crate::demo::tally::tally(&by_sled, &injector.injected);
    let failing = lock(shared).failing.clone();
    let failing_stores = failing
        .iter()
        .map(|&i| (i, store_failures.get(&i).copied().unwrap_or(0)))
        .collect();
    let stray = store_failures
        .into_iter()
        .filter(|(i, n)| *n > 0 && !injector.disk_faulted.contains(i))
        .collect();
    (tally.unexplained, failing_stores, stray)
}

/// The sleds running now, for [`audit::observe`].
async fn running(injector: &Injector, sleds: &Arc<AsyncMutex<Sleds>>) -> Vec<audit::Running> {
    let sleds = sleds.lock().await;
    (0..sleds.len())
        .filter(|&i| sleds.is_running(i))
        .filter_map(|i| {
            let files = sleds.files(i).ok()?;
            Some(audit::Running {
                sled: i,
                config: files.config.clone(),
                disk_faulted: injector.disk_faulted.contains(&i),
            })
        })
        .collect()
}
