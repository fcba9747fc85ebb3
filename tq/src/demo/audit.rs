//! The demo's last check: every sled's audit log verifies in both copies,
//! and the copies end at the same record (`tq audit verify`'s rule).

use tq_std::audit::AUDIT_DIR_NAME;
use tq_std::audit::verify::verify_dir;

use super::sleds::Sleds;

/// The check as the summary shows it, and whether it held.
pub fn check(sleds: &Sleds) -> (String, bool) {
    match check_logs(sleds) {
        Ok(c) => (
            format!(
                "every sled's audit log verifies ({} sleds, {} records, {} shares handed out)",
                c.sleds, c.records, c.shares
            ),
            true,
        ),
        Err(e) => (format!("every sled's audit log verifies ({e})"), false),
    }
}

/// What the logs of the sleds that ran hold; `Err` names the first sled
/// whose log fails and why.
pub struct Checked {
    /// Sleds whose log was read.
    pub sleds: usize,
    /// Records read (copy 0).
    pub records: u64,
    /// Shares handed out, recorded before they left.
    pub shares: usize,
}

/// Verifies the audit log of every sled that ran. Call with the sleds
/// stopped, so no append is under way.
pub fn check_logs(sleds: &Sleds) -> Result<Checked, String> {
    let mut checked = Checked {
        sleds: 0,
        records: 0,
        shares: 0,
    };
    for i in 0..sleds.len() {
        let files = sleds.files(i).map_err(|e| format!("sled {i}: {e}"))?;
        let dirs = files.drives.clone().map(|drive| drive.join(AUDIT_DIR_NAME));
        if !dirs.iter().any(|dir| dir.exists()) {
            continue; // never started
        }
        let mut heads = Vec::new();
        for (copy, dir) in dirs.iter().enumerate() {
            let mut shares = 0;
            let verdict = verify_dir(dir, |_, record, _| {
                shares += usize::from(record.event.hands_out());
            });
            if let Some(bad) = verdict.bad {
                return Err(format!("sled {i} copy {copy}: {bad}"));
            }
            if copy == 0 {
                checked.records += verdict.summary.records;
                checked.shares += shares;
            }
            heads.push(verdict.summary.head);
        }
        if heads.windows(2).any(|pair| pair.first() != pair.last()) {
            return Err(format!("sled {i}: its copies end at different records"));
        }
        checked.sleds += 1;
    }
    Ok(checked)
}
