//! The demo's verdict on the sleds' counters: every anomaly must be zero
//! but those an injected fault explains, on the sleds it was injected on.

use std::collections::BTreeMap;

use super::record::Injected;
use super::sleds::Counts;

/// The sleds' counters, summed and judged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Normal counters that are not zero, summed over sleds.
    pub normal: BTreeMap<String, u64>,
    /// Every anomaly counter, summed over sleds.
    pub anomalies: BTreeMap<String, u64>,
    /// Nonzero anomalies no injected fault explains (`name count on sled i`).
    pub unexplained: Vec<String>,
    /// Per injected fault that explains some anomaly, its description and
    /// how often those anomalies happened on its sleds.
    pub seen: Vec<(String, u64)>,
}

/// Judges `by_sled` (each sled's counters over all its runs) against the
/// faults `injected`.
pub fn tally(by_sled: &BTreeMap<usize, Counts>, injected: &[Injected]) -> Tally {
    let mut tally = Tally::default();
    for (&sled, counts) in by_sled {
        for reading in counts.values() {
            if !reading.anomaly {
                if reading.count > 0 {
                    *tally.normal.entry(reading.name.clone()).or_default() += reading.count;
                }
                continue;
            }
            *tally.anomalies.entry(reading.name.clone()).or_default() += reading.count;
            let explained = injected.iter().any(|fault| {
                fault.sleds.contains(&sled) && fault.explains.contains(&reading.name.as_str())
            });
            if reading.count > 0 && !explained {
                tally
                    .unexplained
                    .push(format!("{} {} on sled {sled}", reading.name, reading.count));
            }
        }
    }
    for fault in injected.iter().filter(|f| !f.explains.is_empty()) {
        let seen = fault
            .sleds
            .iter()
            .filter_map(|sled| by_sled.get(sled))
            .flat_map(|counts| fault.explains.iter().filter_map(|name| counts.get(*name)))
            .map(|reading| reading.count)
            .sum();
        tally.seen.push((fault.what.clone(), seen));
    }
    tally
}

#[cfg(test)]
mod tests {
    use tq_std::health::Reading;

    use super::*;

    fn counts(readings: &[(&str, u64, bool)]) -> Counts {
        readings
            .iter()
            .map(|&(name, count, anomaly)| {
                let reading = Reading {
                    name: name.to_owned(),
                    count,
                    anomaly,
                };
                (name.to_owned(), reading)
            })
            .collect()
    }

    const FAILED_WRITES: &[&str] = &["ledger: writes_failed"];

    fn pulled_drives(sled: usize) -> Injected {
        Injected {
            sleds: vec![sled],
            what: format!("ledger write failure on sled {sled}"),
            explains: FAILED_WRITES,
        }
    }

    #[test]
    fn normal_counters_are_summed_and_never_judged() {
        let by_sled = BTreeMap::from([
            (0, counts(&[("core: late_share", 3, false)])),
            (1, counts(&[("core: late_share", 2, false)])),
        ]);
        let tally = tally(&by_sled, &[]);
        assert_eq!(tally.normal.get("core: late_share"), Some(&5));
        assert!(tally.unexplained.is_empty());
    }

    #[test]
    fn an_anomaly_nothing_injected_explains_is_reported() {
        let by_sled = BTreeMap::from([
            (0, counts(&[("core: unexpected", 0, true)])),
            (1, counts(&[("core: unexpected", 4, true)])),
        ]);
        let tally = tally(&by_sled, &[pulled_drives(1)]);
        assert_eq!(tally.anomalies.get("core: unexpected"), Some(&4));
        assert_eq!(tally.unexplained, ["core: unexpected 4 on sled 1"]);
    }

    #[test]
    fn an_injected_fault_explains_its_anomalies_on_its_sled_only() {
        let by_sled = BTreeMap::from([
            (0, counts(&[("ledger: writes_failed", 1, true)])),
            (1, counts(&[("ledger: writes_failed", 2, true)])),
        ]);
        let tally = tally(&by_sled, &[pulled_drives(1)]);
        assert_eq!(tally.unexplained, ["ledger: writes_failed 1 on sled 0"]);
        assert_eq!(
            tally.seen,
            [("ledger write failure on sled 1".to_owned(), 2)]
        );
    }

    #[test]
    fn a_fault_that_left_no_trace_is_seen_zero_times() {
        let by_sled = BTreeMap::from([(1, counts(&[("ledger: writes_failed", 0, true)]))]);
        let tally = tally(&by_sled, &[pulled_drives(1)]);
        assert_eq!(tally.seen[0].1, 0);
    }
}
