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

use tq_std::audit::event::AuditEvent;
use tq_std::audit::record::RecordHash;
use tq_std::audit::refusals::{Tally, core_tally};
use tq_std::audit::verify::verify_dir;
use tq_std::audit::{AUDIT_COPIES, audit_dirs};

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

/// Reads the audit log whose two copies are `dirs`
/// (blocking: run it off the runtime's threads).
pub fn read_log(dirs: &[PathBuf; AUDIT_COPIES]) -> LogSeen {
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
/// refusals, and where its audit log's copies are (`None`: the
/// configuration does not load).
fn audit_settings(config: &Path) -> Option<(Duration, [PathBuf; AUDIT_COPIES])> {
    let node = SledConfig::load(config).ok()?.node_config().ok()?;
    Some((node.audit.refusal_record_interval, audit_dirs(&node.ledger)))
}

/// A running sled: its index and configuration.
pub struct Running {
    /// The sled.
    pub sled: usize,
    /// Its `tq sled` configuration file.
    pub config: PathBuf,
    /// Whether one of its drives was filled during the run.
    pub disk_faulted: bool,
}

/// Every sled of `running`: its counts, then (one refusal-record interval
/// and [`RECORD_MARGIN`] after the last of those) its log, then its counts
/// again. Why that order makes the check sound: [`super::check`]'s audit
/// check.
pub async fn observe(running: Vec<Running>, apis: &[HttpSled]) -> BTreeMap<usize, AuditSeen> {
    let mut seen = BTreeMap::new();
    let mut logs = Vec::new();
    let mut interval = Duration::ZERO;
    for r in &running {
        let settings = audit_settings(&r.config);
        let before = match (&settings, apis.get(r.sled)) {
            (Some(_), Some(api)) => core_counts(api).await,
            _ => None,
        };
        if let Some((every, dirs)) = settings {
            interval = interval.max(every);
            logs.push((r.sled, dirs));
        }
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
    for (sled, dirs) in logs {
        let log = tokio::task::spawn_blocking(move || read_log(&dirs))
            .await
            .unwrap_or_else(|e| LogSeen {
                bad: vec![(0, format!("not read: {e}"))],
                ..LogSeen::default()
            });
        let after = match apis.get(sled) {
            Some(api) => core_counts(api).await,
            None => None,
        };
        if let Some(s) = seen.get_mut(&sled) {
            s.log = log;
            s.counted_after = after;
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tq_std::audit::segment;
    use tq_std::audit::{AuditConfig, AuditLog};

    use super::*;

    fn refusals(pairs: &[(&str, u64)]) -> AuditEvent {
        AuditEvent::Refusals {
            counts: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    fn started() -> AuditEvent {
        AuditEvent::Started {
            version: "test".into(),
            ledger_generation: 1,
        }
    }

    /// Two process lives' records, in a log on two drives.
    fn two_lives() -> (tempfile::TempDir, [PathBuf; AUDIT_COPIES]) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ["m2-0", "m2-1"].map(|drive| dir.path().join(drive).join("ledger"));
        for path in &ledger {
            std::fs::create_dir(path.parent().unwrap()).unwrap();
        }
        let dirs = audit_dirs(&ledger);
        let log = AuditLog::open_blocking(dirs.clone(), "sled".into(), 1, AuditConfig::default())
            .unwrap();
        log.record_blocking(&[
            started(),
            refusals(&[("node.undecodable", 7), ("handshake.protocol", 5)]),
            started(),
            refusals(&[("node.undecodable", 1)]),
            refusals(&[("node.undecodable", 2), ("node.stale_epoch", 1)]),
        ])
        .unwrap();
        (dir, dirs)
    }

    #[test]
    fn the_core_counts_recorded_since_the_last_start_are_summed() {
        let (_dir, dirs) = two_lives();
        let seen = read_log(&dirs);
        let expected: Tally = BTreeMap::from([
            ("node.stale_epoch".into(), 1),
            ("node.undecodable".into(), 3),
        ]);
        assert_eq!(
            seen,
            LogSeen {
                recorded: Some(expected),
                ..LogSeen::default()
            }
        );
    }

    #[test]
    fn a_record_altered_in_one_copy_is_named_bad() {
        let (_dir, dirs) = two_lives();
        let path = segment::path(&dirs[1], 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let altered = text.replacen("\"node.undecodable\":1", "\"node.undecodable\":0", 1);
        assert_ne!(text, altered);
        std::fs::write(&path, altered).unwrap();
        let seen = read_log(&dirs);
        assert_eq!(seen.bad.len(), 1, "{seen:?}");
        assert_eq!(seen.bad[0].0, 1, "{seen:?}");
        // Seq 0 and 1 are the log's SegmentOpened and LogCreated.
        assert_eq!(seen.diverged_at, Some(5), "{seen:?}");
    }

    #[test]
    fn a_copy_cut_short_is_behind_and_the_other_is_read() {
        let (_dir, dirs) = two_lives();
        let path = segment::path(&dirs[0], 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let last = text.trim_end().rfind('\n').unwrap();
        std::fs::write(&path, &text[..=last]).unwrap();
        let seen = read_log(&dirs);
        assert!(seen.bad.is_empty(), "{seen:?}");
        assert_eq!(seen.behind, Some((0, 1)));
        assert_eq!(
            seen.recorded.unwrap().get("node.undecodable"),
            Some(&3),
            "the copy ahead's records"
        );
    }
}
