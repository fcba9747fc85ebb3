//! What the demo measured and checked, and the summary it prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use tq_core::ids::Epoch;

use crate::nexus::http::Traffic;

/// One phase, measured.
#[derive(Clone, Debug)]
pub struct PhaseRecord {
    /// Its name.
    pub name: String,
    /// Wall time, from its first action to its last check.
    pub took: Duration,
    /// Epochs it committed (and abandoned, marked).
    pub epochs: String,
    /// Members of the configuration it ended with.
    pub members: usize,
    /// Its threshold `K` (0: none).
    pub k: u8,
    /// Nexus's crash tolerance `Z` for it.
    pub z: usize,
    /// Messages and bytes every sled sent during it.
    pub traffic: Traffic,
    /// Members whose disk ended it unlocked and wrapped under its latest
    /// epoch, as `n/m` (`-` before any commit).
    pub disks: String,
}

/// One epoch's secret, as the sleds reported it.
#[derive(Clone, Debug, Default)]
pub struct EpochPrint {
    /// The fingerprint most sleds reported (hex), if any.
    pub fingerprint: Option<String>,
    /// Sleds that reported exactly that.
    pub agreeing: usize,
    /// Sleds asked.
    pub asked: usize,
    /// Where it was asked (e.g. "after the upgrade", "after the cold boot").
    pub when: Vec<String>,
}

/// One check and whether it held.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it held.
    pub ok: bool,
}

/// A fault the demo injected on purpose.
#[derive(Clone, Debug)]
pub struct Injected {
    /// The sleds it was injected on.
    pub sleds: Vec<usize>,
    /// What it was, as announced.
    pub what: String,
    /// The anomaly counters it raises on those sleds, by name; they are the
    /// only anomalies a passing run may show, and only on those sleds.
    pub explains: &'static [&'static str],
}

/// Everything measured.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// The phases, in order.
    pub phases: Vec<PhaseRecord>,
    /// Per epoch, the secret's fingerprint.
    pub prints: BTreeMap<Epoch, EpochPrint>,
    /// Every check.
    pub checks: Vec<Check>,
    /// Counters (name, value), in order: Nexus's, then the sleds' normal
    /// ones that are not zero, summed over sleds.
    pub counters: Vec<(String, u64)>,
    /// Every anomaly counter (name, value), summed over sleds and runs.
    pub anomalies: Vec<(String, u64)>,
    /// The faults injected, in order.
    pub injected: Vec<Injected>,
    /// Where the sleds' logs went, and whether that file is kept.
    pub logs: Option<(PathBuf, bool)>,
    /// Which backend the disks used, and why.
    pub disks: String,
    /// Alarms raised on any sled.
    pub alarms: usize,
    /// Wall time of the whole run.
    pub total: Duration,
}

impl Record {
    /// Records a check.
    pub fn check(&mut self, what: impl Into<String>, ok: bool) -> bool {
        self.checks.push(Check {
            what: what.into(),
            ok,
        });
        ok
    }

    /// Whether every check held (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// The summary, as printed.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut phases = table(&[
            "phase",
            "time",
            "epochs",
            "members",
            "K",
            "Z",
            "messages",
            "bytes",
            "disks re-wrapped",
        ]);
        for p in &self.phases {
            phases.add_row(vec![
                p.name.clone(),
                format!("{:.2} s", p.took.as_secs_f64()),
                p.epochs.clone(),
                p.members.to_string(),
                if p.k == 0 {
                    "-".into()
                } else {
                    p.k.to_string()
                },
                if p.k == 0 {
                    "-".into()
                } else {
                    p.z.to_string()
                },
                p.traffic.messages.to_string(),
                p.traffic.bytes.to_string(),
                p.disks.clone(),
            ]);
        }
        right_align(&mut phases, &[1, 3, 4, 5, 6, 7, 8]);
        let _ = writeln!(out, "{phases}");
        if !self.disks.is_empty() {
            let _ = writeln!(out, "{}", self.disks);
        }

        let mut prints = table(&[
            "epoch",
            "secret fingerprint (SHA3 HKDF, not the secret)",
            "sleds agreeing",
            "asked",
        ]);
        for (epoch, print) in &self.prints {
            prints.add_row(vec![
                epoch.to_string(),
                print.fingerprint.clone().unwrap_or_else(|| "none".into()),
                format!("{}/{}", print.agreeing, print.asked),
                print.when.join("; "),
            ]);
        }
        let _ = writeln!(out, "{prints}");

        let mut counters = table(&["counter", "value"]);
        for (name, value) in &self.counters {
            counters.add_row(vec![name.clone(), value.to_string()]);
        }
        counters.add_row(vec![
            "alarms (must be 0)".to_owned(),
            self.alarms.to_string(),
        ]);
        right_align(&mut counters, &[1]);
        let _ = writeln!(out, "{counters}");

        if !self.injected.is_empty() {
            let mut injected = table(&["injected fault", "sleds", "anomalies it explains"]);
            for fault in &self.injected {
                injected.add_row(vec![
                    fault.what.clone(),
                    fault
                        .sleds
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                    if fault.explains.is_empty() {
                        "none".to_owned()
                    } else {
                        fault.explains.join(", ")
                    },
                ]);
            }
            let _ = writeln!(out, "{injected}");
        }

        // Name and value side by side, three to a row: there are many.
        const PER_ROW: usize = 3;
        let mut header = Vec::new();
        for _ in 0..PER_ROW {
            header.extend(["anomaly counter (sum over sleds)", ""]);
        }
        let mut anomalies = table(&header);
        for chunk in self.anomalies.chunks(PER_ROW) {
            let mut row = Vec::new();
            for (name, value) in chunk {
                row.extend([name.clone(), value.to_string()]);
            }
            anomalies.add_row(row);
        }
        right_align(&mut anomalies, &[1, 3, 5]);
        let _ = writeln!(out, "{anomalies}");

        let mut checks = table(&["check", ""]);
        for check in &self.checks {
            checks.add_row(vec![
                check.what.clone(),
                if check.ok { "ok" } else { "FAILED" }.to_owned(),
            ]);
        }
        let _ = writeln!(out, "{checks}");
        if let Some((path, kept)) = &self.logs {
            let fate = if *kept {
                "kept"
            } else {
                "removed with the directory; --keep keeps it"
            };
            let _ = writeln!(out, "logs: {} ({fate})", path.display());
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        let _ = writeln!(
            out,
            "{}: {} checks, {failed} failed, {:.2} s in all",
            if self.passed() { "PASSED" } else { "FAILED" },
            self.checks.len(),
            self.total.as_secs_f64()
        );
        out
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(header.to_vec());
    table
}

fn right_align(table: &mut Table, columns: &[usize]) {
    for &i in columns {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}
