//! The run's final table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use tq_core::ids::Epoch;

use super::check::Verdict;
use super::inject::FaultCounts;

/// A member of the final configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The sled (index).
    pub sled: usize,
    /// Its slot: the sled itself for the first sleds, the slot of the
    /// sled it replaced for a replacement.
    pub slot: usize,
}

impl Member {
    /// Whether it is a replacement sled.
    pub fn is_replacement(&self) -> bool {
        self.sled != self.slot
    }
}

/// What a run did and found.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// The seed (replays the faults and the workload's choices).
    pub seed: u64,
    /// How long the faults ran, and the whole run.
    pub faulted: Duration,
    /// The whole run, set-up and final checks included.
    pub total: Duration,
    /// Sleds in the rack (LRTQ and spares).
    pub sleds: usize,
    /// Replacement sleds made ready at set-up.
    pub replacement_pool: usize,
    /// Replacements slid into emptied slots.
    pub replacements_slid_in: usize,
    /// Replacements that were members of a committed configuration.
    pub replacements_added: usize,
    /// The latest committed epoch at the end.
    pub final_epoch: Option<Epoch>,
    /// Its members.
    pub final_members: Vec<Member>,
    /// Faults by kind.
    pub faults: FaultCounts,
    /// Reconfigurations started (retries after an abandon included).
    pub attempted: u32,
    /// Committed.
    pub committed: u32,
    /// Abandoned (coordinator gone past Nexus's deadline).
    pub abandoned: u32,
    /// Changes Nexus refused to start.
    pub refused_starts: u64,
    /// Secrets loaded / loads that failed.
    pub loads: (u64, u64),
    /// Longest time no member could load the secret while a quorum was
    /// connected.
    pub longest_outage: Duration,
    /// Every check.
    pub verdicts: Vec<Verdict>,
    /// The fault log, when the run's directory was kept.
    pub log: Option<PathBuf>,
}

impl Summary {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        !self.verdicts.is_empty() && self.verdicts.iter().all(|v| v.passed)
    }

    /// The verdict of `check`, if judged.
    pub fn verdict(&self, check: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.check == check)
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(header.to_vec());
    table
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tq chaos --seed {}: {} sleds, faults for {:.0?}, {:.0?} in all",
            self.seed, self.sleds, self.faulted, self.total
        )?;
        let mut faults = table(&["fault", "injected", "skipped"]);
        let kinds: std::collections::BTreeSet<_> = self
            .faults
            .applied
            .keys()
            .chain(self.faults.skipped.keys())
            .collect();
        for kind in kinds {
            let count =
                |m: &std::collections::BTreeMap<&str, u64>| m.get(*kind).copied().unwrap_or(0);
            faults.add_row(vec![
                (*kind).to_owned(),
                count(&self.faults.applied).to_string(),
                count(&self.faults.skipped).to_string(),
            ]);
        }
        writeln!(f, "{faults}")?;
        let mut rack = table(&["rack", ""]);
        rack.add_row(vec![
            "reconfigurations attempted / committed / abandoned".to_owned(),
            format!(
                "{} / {} / {}",
                self.attempted, self.committed, self.abandoned
            ),
        ]);
        rack.add_row(vec![
            "replacement sleds: slid in / added by a commit / made ready".to_owned(),
            format!(
                "{} / {} / {}",
                self.replacements_slid_in, self.replacements_added, self.replacement_pool
            ),
        ]);
        let members: Vec<String> = self
            .final_members
            .iter()
            .map(|m| {
                if m.is_replacement() {
                    format!("{} (slot {})", m.sled, m.slot)
                } else {
                    m.sled.to_string()
                }
            })
            .collect();
        let epoch = self
            .final_epoch
            .map_or_else(|| "none".to_owned(), |e| e.to_string());
        rack.add_row(vec![
            format!("final members, epoch {epoch} (a replacement: its slot)"),
            members.join(", "),
        ]);
        rack.add_row(vec![
            "changes Nexus refused to start".to_owned(),
            self.refused_starts.to_string(),
        ]);
        rack.add_row(vec![
            "secret loads: loaded / failed".to_owned(),
            format!("{} / {}", self.loads.0, self.loads.1),
        ]);
        rack.add_row(vec![
            "longest time unable to unlock while a quorum was connected".to_owned(),
            format!("{:.1?}", self.longest_outage),
        ]);
        writeln!(f, "{rack}")?;
        let mut checks = table(&["check", "verdict", "detail"]);
        for v in &self.verdicts {
            checks.add_row(vec![
                v.check.to_owned(),
                if v.passed { "PASS" } else { "FAIL" }.to_owned(),
                v.detail.clone(),
            ]);
        }
        writeln!(f, "{checks}")?;
        match &self.log {
            Some(log) => writeln!(f, "fault log: {}", log.display())?,
            None => writeln!(
                f,
                "fault log: removed with the run's directory (--keep keeps it)"
            )?,
        }
        write!(
            f,
            "{}",
            if self.passed() {
                "PASSED".to_owned()
            } else {
                format!("FAILED (replay: tq chaos --seed {})", self.seed)
            }
        )
    }
}
