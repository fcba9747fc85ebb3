//! The outside checker: what the run observed of the sleds (over their
//! HTTP APIs only) and what Nexus recorded, judged after the faults heal.
//! Pure functions of [`Observations`], so each check is tested with
//! planted observations as well as run against a live rack.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use tq_core::ids::Epoch;

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
        seen
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
}
