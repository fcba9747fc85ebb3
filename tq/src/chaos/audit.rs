//! Reading a running sled's audit log and refusal counts for the checker
//! ([`AuditSeen`]): both copies verified and compared record by record,
//! the `node.*` counts its `Refusals` records add up to since its last
//! `Started`, and the core's counts around them.
//!
//! A reader takes no lock (`tq_std::audit`): an append may land between
//! the reads of the two copies, so copies that differ are read again
//! before they are reported as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tq_std::audit::AUDIT_DIR_NAME;
use tq_std::audit::event::AuditEvent;
use tq_std::audit::record::RecordHash;
use tq_std::audit::refusals::{Tally, core_tally};
use tq_std::audit::verify::verify_dir;

use super::check::{AuditSeen, LogSeen};
use crate::config::SledConfig;
use crate::nexus::http::HttpSled;

/// How long past one refusal-record interval the log is read: the tick's
/// metrics call and its fsynced append take milliseconds on an idle rack;
/// this leaves room for a loaded two-core machine.
pub const RECORD_MARGIN: Duration = Duration::from_secs(2);

/// Readings of a log whose copies differ before they are reported so.
const READINGS: usize = 3;

/// Between two readings: far longer than an append takes.
const BETWEEN_READINGS: Duration = Duration::from_millis(200);

/// The family of the core's counts in `Refusals` records.
const CORE_FAMILY: &str = "node.";

/// One copy, as read.
struct CopyRead {
    bad: Option<String>,
    hashes: BTreeMap<u64, RecordHash>,
    head: Option<u64>,
    recorded: Option<Tally>,
    rotated: bool,
}

fn read_copy(dir: &Path) -> CopyRead {
    let mut hashes = BTreeMap::new();
    let mut recorded: Option<Tally> = None;
    let verdict = verify_dir(dir, |_, record, hash| {
        hashes.insert(record.seq, hash);
        match &record.event {
            // Counts start at zero with the process.
            AuditEvent::Started { .. } => recorded = Some(Tally::new()),
            AuditEvent::Refusals { counts } => {
                if let Some(sum) = recorded.as_mut() {
                    for (kind, grew) in counts.iter().filter(|(k, _)| k.starts_with(CORE_FAMILY)) {
                        let total = sum.entry(kind.clone()).or_default();
                        *total = total.saturating_add(*grew);
                    }
                }
            }
            _ => {}
        }
    });
    CopyRead {
        bad: verdict.bad.map(|bad| bad.to_string()),
        hashes,
        head: verdict.summary.head.map(|(seq, _)| seq),
        recorded,
        rotated: verdict.summary.oldest_kept > 0,
    }
}

/// The two copies compared; the counts are the copy ahead's.
fn compare([first, second]: [CopyRead; 2]) -> LogSeen {
    let diverged_at = first
        .hashes
        .iter()
        .find(|(seq, hash)| second.hashes.get(seq).is_some_and(|other| other != *hash))
        .map(|(seq, _)| *seq);
    let records = |head: Option<u64>| head.map_or(0, |seq| seq.saturating_add(1));
    let (a, b) = (records(first.head), records(second.head));
    let behind = match a.cmp(&b) {
        std::cmp::Ordering::Less => Some((0, b - a)),
        std::cmp::Ordering::Greater => Some((1, a - b)),
        std::cmp::Ordering::Equal => None,
    };
    let bad = [&first, &second]
        .iter()
        .enumerate()
        .filter_map(|(copy, read)| Some((copy, read.bad.clone()?)))
        .collect();
    let ahead = if a < b { second } else { first };
    LogSeen {
        bad,
        diverged_at,
        behind,
        recorded: ahead.recorded,
        rotated: ahead.rotated,
    }
}

/// Reads the audit log kept beside the ledger copies in `drives`
/// (blocking: run it off the runtime's threads).
pub fn read_log(drives: &[PathBuf; 2]) -> LogSeen {
    let dirs = drives.clone().map(|drive| drive.join(AUDIT_DIR_NAME));
    let mut reading = LogSeen::default();
    for attempt in 0..READINGS {
        if attempt > 0 {
            std::thread::sleep(BETWEEN_READINGS);
        }
        reading = compare(dirs.each_ref().map(|dir| read_copy(dir)));
        if reading.behind.is_none() && reading.diverged_at.is_none() {
            break;
        }
    }
    reading
}

/// The core's counts as `Refusals` records name them, from the sled's
/// status (`None`: it did not answer).
pub async fn core_counts(api: &HttpSled) -> Option<Tally> {
    let status = api.sled_status().await.ok()?;
    Some(core_tally(&status.node.counters))
}

/// How often the sled whose configuration is `config` records its
/// refusals (`None`: the configuration does not load).
pub fn record_interval(config: &Path) -> Option<Duration> {
    let node = SledConfig::load(config).ok()?.node_config().ok()?;
    Some(node.audit.refusal_record_interval)
}

/// A running sled: its index, configuration and ledger drives.
pub struct Running {
    /// The sled.
    pub sled: usize,
    /// Its `tq sled` configuration file.
    pub config: PathBuf,
    /// Its two ledger directories.
    pub drives: [PathBuf; 2],
    /// Whether one of its drives was filled during the run.
    pub disk_faulted: bool,
}

/// Every sled of `running`: its counts, then (one refusal-record interval
/// and [`RECORD_MARGIN`] after the last of those) its log, then its counts
/// again. Why that order makes the check sound: [`super::check`]'s audit
/// check.
pub async fn observe(running: Vec<Running>, apis: &[HttpSled]) -> BTreeMap<usize, AuditSeen> {
    let mut seen = BTreeMap::new();
    let mut interval = Duration::ZERO;
    for r in &running {
        let before = match record_interval(&r.config) {
            Some(every) => {
                interval = interval.max(every);
                match apis.get(r.sled) {
                    Some(api) => core_counts(api).await,
                    None => None,
                }
            }
            None => None,
        };
        seen.insert(
            r.sled,
            AuditSeen {
                disk_faulted: r.disk_faulted,
                counted_before: before,
                ..AuditSeen::default()
            },
        );
    }
    tokio::time::sleep(interval + RECORD_MARGIN).await;
    for r in running {
        let drives = r.drives;
        let log = tokio::task::spawn_blocking(move || read_log(&drives))
            .await
            .unwrap_or_else(|e| LogSeen {
                bad: vec![(0, format!("not read: {e}"))],
                ..LogSeen::default()
            });
        let after = match apis.get(r.sled) {
            Some(api) => core_counts(api).await,
            None => None,
        };
        if let Some(s) = seen.get_mut(&r.sled) {
            s.log = log;
            s.counted_after = after;
        }
    }
    seen
}
