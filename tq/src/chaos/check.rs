//! The outside checker: what the run observed of the sleds (over their
//! HTTP APIs, and their audit logs read from their drives) and what Nexus
//! recorded, judged after the faults heal.
//! Pure functions of [`Observations`], so each check is tested with
//! planted observations as well as run against a live rack.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use tq_core::ids::Epoch;
use tq_std::audit::refusals::Tally;

/// A secret a sled loaded: its epoch and fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Print {
    /// The sled.
    pub sled: usize,
    /// The epoch of the secret it loaded.
    pub epoch: Epoch,
    /// Its fingerprint (hex).
    pub fingerprint: String,
}

/// A sled started again after a kill: what it had acknowledged to Nexus
/// before, and what its ledger gave back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    /// The sled.
    pub sled: usize,
    /// The highest epoch whose commit it confirmed to Nexus before the
    /// kill.
    pub acked: Option<Epoch>,
    /// The latest committed epoch its status reported first after the
    /// restart.
    pub held: Option<Epoch>,
}

/// What a sled's audit log holds at the end, read from its two copies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSeen {
    /// Each copy whose verification found a bad record: the copy and the
    /// first bad record, as verification names it.
    pub bad: Vec<(usize, String)>,
    /// The first sequence number both copies hold with different records.
    pub diverged_at: Option<u64>,
    /// A copy that ends behind the other, and by how many records.
    pub behind: Option<(usize, u64)>,
    /// The growth of each `node.*` refusal count its `Refusals` records
    /// add up to since its last `Started` record (the process's start);
    /// `None` if it holds no `Started` record.
    pub recorded: Option<Tally>,
    /// Whether rotation dropped its oldest segments (then a missing
    /// `Started` record may have been among them).
    pub rotated: bool,
}

/// A running sled's audit log at the end, and its core's counts around
/// one refusal-record interval (`node.*`, as
/// [`core_tally`](tq_std::audit::refusals::core_tally) names them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditSeen {
    /// The log.
    pub log: LogSeen,
    /// Whether one of its ledger drives was filled during the run.
    pub disk_faulted: bool,
    /// The counts read before the interval began (`None`: unanswered, or
    /// its configuration, which sets the interval, did not load).
    pub counted_before: Option<Tally>,
    /// The counts read after the log was (`None`: unanswered).
    pub counted_after: Option<Tally>,
}

/// Everything the run saw.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Every secret loaded, in order.
    pub prints: Vec<Print>,
    /// Every restart after a kill.
    pub restarts: Vec<Restart>,
    /// Alarms a sled reported (`sled`, the alarm).
    pub alarms: BTreeSet<(usize, String)>,
    /// Epochs Nexus committed.
    pub committed: BTreeSet<Epoch>,
    /// At the end, per live member of the latest configuration: the
    /// highest commit it confirmed to Nexus, and the latest committed
    /// epoch it reports.
    pub final_held: BTreeMap<usize, (Option<Epoch>, Option<Epoch>)>,
    /// The latest epoch Nexus committed.
    pub latest: Option<Epoch>,
    /// At the end, per member of the latest configuration: how long it
    /// took to load the latest secret, or why it did not.
    pub unlocks: BTreeMap<usize, Result<Duration, String>>,
    /// Anomaly counters no injected fault explains (`name count on sled i`).
    pub unexplained: Vec<String>,
    /// Sleds whose ledger writes were seen failing (status `failing`), and
    /// the store failures their counters show.
    pub failing_stores: BTreeMap<usize, u64>,
    /// Store failures counted on sleds never given a disk fault.
    pub stray_store_failures: BTreeMap<usize, u64>,
    /// Per sled running at the end, its audit log and counts.
    pub audit: BTreeMap<usize, AuditSeen>,
}

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What is checked.
    pub check: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was found (the evidence when it failed).
    pub detail: String,
}

/// The checks' names, in the table's order.
pub mod names {
    /// Per epoch, one fingerprint.
    pub const AGREED: &str = "every epoch agreed by every member that reports it";
    /// Per fingerprint, one epoch.
    pub const NOT_REUSED: &str = "no fingerprint reused across epochs";
    /// Acknowledged commits survive restarts.
    pub const NOT_LOST: &str = "no acknowledged state lost";
    /// No alarm.
    pub const NO_ALARM: &str = "no alarm";
    /// Unlock after heal.
    pub const UNLOCKED: &str = "every member unlocks the latest epoch after heal";
    /// Counters explained.
    pub const COUNTERS: &str = "counters consistent with the faults";
    /// Audit logs intact, refusals recorded as counted.
    pub const AUDIT: &str = "audit logs intact, refusal records match the counters";
}

/// Every check of `seen`; `bound` is how long each member may take to
/// unlock after heal.
pub fn judge(seen: &Observations, bound: Duration) -> Vec<Verdict> {
    vec![
        agreed(seen),
        not_reused(seen),
        not_lost(seen),
        no_alarm(seen),
        unlocked(seen, bound),
        counters(seen),
        audit(seen),
    ]
}

fn verdict(check: &'static str, problems: Vec<String>, fine: String) -> Verdict {
    Verdict {
        check,
        passed: problems.is_empty(),
        detail: if problems.is_empty() {
            fine
        } else {
            format!("{} ({fine})", problems.join("; "))
        },
    }
}

fn fingerprints_by_epoch(seen: &Observations) -> BTreeMap<Epoch, BTreeMap<&str, BTreeSet<usize>>> {
    let mut by_epoch: BTreeMap<Epoch, BTreeMap<&str, BTreeSet<usize>>> = BTreeMap::new();
    for p in &seen.prints {
        by_epoch
            .entry(p.epoch)
            .or_default()
            .entry(p.fingerprint.as_str())
            .or_default()
            .insert(p.sled);
    }
    by_epoch
}

fn short(print: &str) -> &str {
    print.get(..12).unwrap_or(print)
}

/// Every epoch's secret has one fingerprint whoever loaded it, and is an
/// epoch Nexus committed.
fn agreed(seen: &Observations) -> Verdict {
    let mut problems = Vec::new();
    let by_epoch = fingerprints_by_epoch(seen);
    for (epoch, prints) in &by_epoch {
        if prints.len() > 1 {
            let mut line = format!("epoch {epoch} has {} fingerprints:", prints.len());
            for (print, sleds) in prints {
                let _ = write!(line, " {}… on sleds {sleds:?}", short(print));
            }
            problems.push(line);
        }
        if !seen.committed.contains(epoch) {
            problems.push(format!(
                "a secret of epoch {epoch}, which Nexus never committed"
            ));
        }
    }
    let loads = seen.prints.len();
    verdict(
        names::AGREED,
        problems,
        format!("{} epochs, {loads} loads", by_epoch.len()),
    )
}

fn not_reused(seen: &Observations) -> Verdict {
    let mut epochs_of: BTreeMap<&str, BTreeSet<Epoch>> = BTreeMap::new();
    for p in &seen.prints {
        epochs_of.entry(&p.fingerprint).or_default().insert(p.epoch);
    }
    let problems = epochs_of
        .iter()
        .filter(|(_, epochs)| epochs.len() > 1)
        .map(|(print, epochs)| format!("fingerprint {}… for epochs {epochs:?}", short(print)))
        .collect();
    verdict(
        names::NOT_REUSED,
        problems,
        format!("{} fingerprints", epochs_of.len()),
    )
}

fn show(epoch: Option<Epoch>) -> String {
    epoch.map_or_else(|| "none".into(), |e| e.to_string())
}

/// A sled that confirmed a commit to Nexus holds it (or a later one) after
/// every restart, and at the end.
fn not_lost(seen: &Observations) -> Verdict {
    let mut problems = Vec::new();
    for r in &seen.restarts {
        if r.acked.is_some() && r.held < r.acked {
            problems.push(format!(
                "sled {} confirmed the commit of epoch {} but restarted holding epoch {}",
                r.sled,
                show(r.acked),
                show(r.held)
            ));
        }
    }
    for (sled, (acked, held)) in &seen.final_held {
        if acked.is_some() && held < acked {
            problems.push(format!(
                "sled {sled} confirmed the commit of epoch {} but holds epoch {} at the end",
                show(*acked),
                show(*held)
            ));
        }
    }
    verdict(
        names::NOT_LOST,
        problems,
        format!(
            "{} restarts, {} members at the end",
            seen.restarts.len(),
            seen.final_held.len()
        ),
    )
}

fn no_alarm(seen: &Observations) -> Verdict {
    let problems = seen
        .alarms
        .iter()
        .map(|(sled, alarm)| format!("sled {sled}: {alarm}"))
        .collect();
    verdict(names::NO_ALARM, problems, "none".into())
}

fn unlocked(seen: &Observations, bound: Duration) -> Verdict {
    let mut problems = Vec::new();
    let mut slowest = Duration::ZERO;
    if seen.unlocks.is_empty() {
        problems.push("no member was asked".into());
    }
    for (sled, took) in &seen.unlocks {
        match took {
            Ok(took) if *took <= bound => slowest = slowest.max(*took),
            Ok(took) => problems.push(format!("sled {sled} took {took:.1?} (bound {bound:?})")),
            Err(why) => problems.push(format!("sled {sled}: {why}")),
        }
    }
    verdict(
        names::UNLOCKED,
        problems,
        format!(
            "{} members at epoch {}, slowest {slowest:.1?} (bound {bound:?})",
            seen.unlocks.len(),
            show(seen.latest)
        ),
    )
}

fn counters(seen: &Observations) -> Verdict {
    let mut problems = seen.unexplained.clone();
    for (sled, failures) in &seen.failing_stores {
        if *failures == 0 {
            problems.push(format!(
                "sled {sled} reported failing ledger writes but counts no store failure"
            ));
        }
    }
    for (sled, failures) in &seen.stray_store_failures {
        problems.push(format!(
            "sled {sled} counts {failures} store failures without a disk fault"
        ));
    }
    verdict(
        names::COUNTERS,
        problems,
        format!(
            "anomalies only where injected; store failures on {} sleds with full disks",
            seen.failing_stores.len()
        ),
    )
}

/// Every running sled's audit log is intact, and its refusal records
/// account for its core's refusal counts.
///
/// **Intact**: both copies verify (a torn tail at the end of the newest
/// segment is not damage: verification reports it apart, and a crashed or
/// in-flight append leaves one), and every record both hold is the same
/// record. One copy may end behind the other only on a sled whose drive
/// was filled: the writer drops a copy whose write fails and leaves it
/// until the next open repairs it, so it stays a prefix of the other. On
/// any other sled a copy behind is a lost append (the reading retries
/// first, so an append caught between the two copies is not taken for
/// one).
///
/// **Refusals recorded as counted**, per `node.*` kind: `counted_before`
/// ≤ `recorded` ≤ `counted_after`. The recorder snapshots the counts
/// every interval and records what grew, starting from zero with the
/// process, so after each tick the records since `Started` add up to that
/// tick's snapshot. The log is read one interval and a margin after
/// `counted_before`: at least one tick fell in between and its record
/// is on the drives, and counts only grow, so `recorded` is at least
/// `counted_before` unless a record was lost. Every record holds growth
/// between snapshots taken before the log was read, so `recorded` is at
/// most the count read after it unless something was recorded that was
/// never counted. Neither bound depends on timing beyond the margin.
fn audit(seen: &Observations) -> Verdict {
    let mut problems = Vec::new();
    if seen.audit.is_empty() {
        problems.push("no sled's audit log was read".to_owned());
    }
    let mut compared = 0;
    let mut refusals = 0;
    let mut skipped = Vec::new();
    let mut behind = Vec::new();
    for (sled, a) in &seen.audit {
        for (copy, bad) in &a.log.bad {
            problems.push(format!("sled {sled} audit copy {copy}: {bad}"));
        }
        if let Some(seq) = a.log.diverged_at {
            problems.push(format!(
                "sled {sled}: its audit copies hold different records at seq {seq}"
            ));
        }
        if let Some((copy, records)) = a.log.behind {
            if a.disk_faulted {
                behind.push(format!("sled {sled} copy {copy} by {records}"));
            } else {
                problems.push(format!(
                    "sled {sled}: audit copy {copy} ends {records} records behind, without a disk fault"
                ));
            }
        }
        let (Some(before), Some(after)) = (&a.counted_before, &a.counted_after) else {
            problems.push(format!(
                "sled {sled}: its counters (or its configuration) could not be read"
            ));
            continue;
        };
        let Some(recorded) = &a.log.recorded else {
            if a.log.rotated {
                skipped.push(*sled);
            } else {
                problems.push(format!("sled {sled}: no Started record in its audit log"));
            }
            continue;
        };
        compared += 1;
        refusals += after.values().sum::<u64>();
        let kinds: BTreeSet<&String> = before
            .keys()
            .chain(recorded.keys())
            .chain(after.keys())
            .collect();
        for kind in kinds {
            let count = |t: &Tally| t.get(kind).copied().unwrap_or(0);
            let (c0, r, c1) = (count(before), count(recorded), count(after));
            if r < c0 {
                problems.push(format!(
                    "sled {sled}: {kind} counted {c0} but recorded only {r} one interval later"
                ));
            }
            if r > c1 {
                problems.push(format!(
                    "sled {sled}: {kind} recorded {r} but counted only {c1}"
                ));
            }
        }
    }
    let mut fine = format!(
        "{} sleds' logs read, both copies; refusal records compared on {compared} \
         ({refusals} node.* refusals counted)",
        seen.audit.len()
    );
    if !behind.is_empty() {
        let _ = write!(
            fine,
            "; a copy behind after a full disk: {}",
            behind.join(", ")
        );
    }
    if !skipped.is_empty() {
        let _ = write!(fine, " (not judged, Started rotated away: {skipped:?})");
    }
    verdict(names::AUDIT, problems, fine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(sled: usize, epoch: u64, fingerprint: &str) -> Print {
        Print {
            sled,
            epoch: Epoch(epoch),
            fingerprint: fingerprint.into(),
        }
    }

    fn healthy() -> Observations {
        let mut seen = Observations {
            prints: vec![print(0, 2, "aa"), print(1, 2, "aa"), print(2, 3, "bb")],
            committed: [Epoch(2), Epoch(3)].into(),
            latest: Some(Epoch(3)),
            ..Observations::default()
        };
        seen.restarts.push(Restart {
            sled: 1,
            acked: Some(Epoch(2)),
            held: Some(Epoch(2)),
        });
        seen.final_held.insert(1, (Some(Epoch(3)), Some(Epoch(3))));
        seen.unlocks.insert(1, Ok(Duration::from_millis(40)));
        seen.audit.insert(1, healthy_audit());
        seen
    }

    fn tally(pairs: &[(&str, u64)]) -> Tally {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// A count that grew during the interval, and one that grew after the
    /// log was read.
    fn healthy_audit() -> AuditSeen {
        AuditSeen {
            log: LogSeen {
                recorded: Some(tally(&[("node.undecodable", 3), ("node.stale_epoch", 2)])),
                ..LogSeen::default()
            },
            disk_faulted: false,
            counted_before: Some(tally(&[("node.undecodable", 2), ("node.stale_epoch", 2)])),
            counted_after: Some(tally(&[("node.undecodable", 3), ("node.stale_epoch", 5)])),
        }
    }

    fn with_audit(change: impl FnOnce(&mut AuditSeen)) -> Vec<&'static str> {
        let mut seen = healthy();
        let mut audit = healthy_audit();
        change(&mut audit);
        seen.audit.insert(2, audit);
        failed(&seen)
    }

    fn failed(seen: &Observations) -> Vec<&'static str> {
        judge(seen, Duration::from_secs(1))
            .into_iter()
            .filter(|v| !v.passed)
            .map(|v| v.check)
            .collect()
    }

    #[test]
    fn a_healthy_run_passes_every_check() {
        assert_eq!(failed(&healthy()), Vec::<&str>::new());
    }

    #[test]
    fn two_fingerprints_for_one_epoch_fail_agreement() {
        let mut seen = healthy();
        seen.prints.push(print(3, 2, "cc"));
        assert_eq!(failed(&seen), [names::AGREED]);
    }

    #[test]
    fn a_secret_of_an_uncommitted_epoch_fails_agreement() {
        let mut seen = healthy();
        seen.prints.push(print(3, 9, "dd"));
        assert_eq!(failed(&seen), [names::AGREED]);
    }

    #[test]
    fn one_fingerprint_for_two_epochs_is_reuse() {
        let mut seen = healthy();
        seen.prints.push(print(3, 3, "aa"));
        assert!(failed(&seen).contains(&names::NOT_REUSED));
    }

    #[test]
    fn a_restart_below_what_the_sled_confirmed_is_lost_state() {
        let mut seen = healthy();
        seen.restarts.push(Restart {
            sled: 4,
            acked: Some(Epoch(3)),
            held: None,
        });
        assert_eq!(failed(&seen), [names::NOT_LOST]);
        let mut seen = healthy();
        seen.final_held.insert(2, (Some(Epoch(3)), Some(Epoch(2))));
        assert_eq!(failed(&seen), [names::NOT_LOST]);
    }

    #[test]
    fn alarms_late_unlocks_and_unexplained_counters_fail() {
        let mut seen = healthy();
        seen.alarms.insert((2, "MismatchedConfigurations".into()));
        seen.unlocks.insert(2, Ok(Duration::from_secs(2)));
        seen.unlocks.insert(3, Err("deadline_passed".into()));
        seen.unexplained.push("core: unexpected 1 on sled 0".into());
        assert_eq!(
            failed(&seen),
            [names::NO_ALARM, names::UNLOCKED, names::COUNTERS]
        );
    }

    #[test]
    fn store_failures_must_match_the_disk_faults() {
        let mut seen = healthy();
        seen.failing_stores.insert(1, 0);
        assert_eq!(failed(&seen), [names::COUNTERS]);
        let mut seen = healthy();
        seen.failing_stores.insert(1, 4);
        assert_eq!(failed(&seen), Vec::<&str>::new());
        seen.stray_store_failures.insert(2, 1);
        assert_eq!(failed(&seen), [names::COUNTERS]);
    }

    #[test]
    fn a_bad_audit_record_or_diverging_copies_fail() {
        assert_eq!(
            with_audit(|a| a.log.bad.push((1, "record seq 7: altered".into()))),
            [names::AUDIT]
        );
        assert_eq!(with_audit(|a| a.log.diverged_at = Some(7)), [names::AUDIT]);
    }

    #[test]
    fn a_copy_behind_is_allowed_only_where_a_drive_was_filled() {
        assert_eq!(with_audit(|a| a.log.behind = Some((0, 4))), [names::AUDIT]);
        let mut seen = healthy();
        let mut audit = healthy_audit();
        audit.log.behind = Some((0, 4));
        audit.disk_faulted = true;
        seen.audit.insert(2, audit);
        let verdict = judge(&seen, Duration::from_secs(1)).pop().unwrap();
        assert!(verdict.passed, "{verdict:?}");
        assert!(
            verdict.detail.contains("sled 2 copy 0 by 4"),
            "{}",
            verdict.detail
        );
    }

    #[test]
    fn a_record_above_the_counters_fails() {
        let failed = with_audit(|a| {
            a.log.recorded = Some(tally(&[("node.undecodable", 4), ("node.stale_epoch", 2)]));
        });
        assert_eq!(failed, [names::AUDIT]);
        // A kind recorded that the core never counted.
        let failed = with_audit(|a| {
            a.log
                .recorded
                .get_or_insert_default()
                .insert("node.wrong_rack".into(), 1);
        });
        assert_eq!(failed, [names::AUDIT]);
    }

    #[test]
    fn a_count_not_recorded_within_the_interval_fails() {
        let failed = with_audit(|a| {
            a.log.recorded = Some(tally(&[("node.undecodable", 1), ("node.stale_epoch", 2)]));
        });
        assert_eq!(failed, [names::AUDIT]);
        // A kind counted before the interval and never recorded.
        let failed = with_audit(|a| {
            a.log.recorded = Some(tally(&[("node.undecodable", 3)]));
        });
        assert_eq!(failed, [names::AUDIT]);
    }

    #[test]
    fn a_log_without_its_start_is_judged_only_if_rotation_can_explain_it() {
        assert_eq!(with_audit(|a| a.log.recorded = None), [names::AUDIT]);
        let mut seen = healthy();
        let mut audit = healthy_audit();
        audit.log.recorded = None;
        audit.log.rotated = true;
        seen.audit.insert(2, audit);
        let verdict = judge(&seen, Duration::from_secs(1)).pop().unwrap();
        assert!(verdict.passed, "{verdict:?}");
        assert!(verdict.detail.contains("not judged"), "{}", verdict.detail);
    }

    #[test]
    fn unread_counters_or_no_log_at_all_fail() {
        assert_eq!(with_audit(|a| a.counted_after = None), [names::AUDIT]);
        let mut seen = healthy();
        seen.audit.clear();
        assert_eq!(failed(&seen), [names::AUDIT]);
    }
}
