//! What the key manager shows: each disk's state and counters, shared
//! between the manager (who writes) and the status and metrics readers
//! (who take a copy). Nothing secret is in it: reasons are our own
//! messages and exit statuses, never a program's output.

use std::sync::{Arc, Mutex, PoisonError};

use tq_core::ids::Epoch;

/// A disk's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskState {
    /// Not opened, and not being opened: why.
    Locked(String),
    /// Being opened: the latest secret is awaited, or the backend runs.
    Unlocking {
        /// Attempts so far.
        attempts: u32,
        /// What the last attempt met, if one failed.
        last_error: Option<String>,
    },
    /// Open, with the data key of this wrapping's epoch.
    Unlocked,
    /// Given up (the unlock deadline passed, or the key cannot be had):
    /// why. A later commit tries again.
    Failed(String),
}

impl DiskState {
    /// A stable snake-case name, for metric labels and tables.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Locked(_) => "locked",
            Self::Unlocking { .. } => "unlocking",
            Self::Unlocked => "unlocked",
            Self::Failed(_) => "failed",
        }
    }

    /// Every label, in order.
    pub const LABELS: [&'static str; 4] = ["locked", "unlocking", "unlocked", "failed"];
}

/// A disk's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Unlock attempts (each a secret fetch, unwrap and backend call).
    pub unlock_attempts: u64,
    /// Attempts that failed.
    pub unlock_failures: u64,
    /// Re-wraps under a newer epoch that reached a copy.
    pub rewraps: u64,
    /// Re-wraps that reached no copy (retried on the next attempt).
    pub rewrap_failures: u64,
    /// Wrappings that did not open under their epoch's secret (refused).
    pub wrappings_refused: u64,
    /// Copies of the key file found corrupt or unreadable.
    pub bad_copies: u64,
    /// Key file writes that reached one copy only.
    pub degraded_writes: u64,
}

/// One disk, as status and metrics show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskReport {
    /// Its configured name.
    pub name: String,
    /// Its serial.
    pub serial: String,
    /// Its backend's kind.
    pub backend: &'static str,
    /// Its state.
    pub state: DiskState,
    /// The epoch of the newest wrapping on disk, once read.
    pub wrapped_epoch: Option<Epoch>,
    /// Its counters.
    pub stats: DiskStats,
}

/// Every disk's report, shared. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct DiskBoard(Arc<Mutex<Vec<DiskReport>>>);

impl DiskBoard {
    /// A copy of every disk's report, in configuration order.
    pub fn reports(&self) -> Vec<DiskReport> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_all(&self, reports: Vec<DiskReport>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = reports;
    }

    pub(crate) fn update(&self, index: usize, change: impl FnOnce(&mut DiskReport)) {
        let mut reports = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(report) = reports.get_mut(index) {
            change(report);
        }
    }
}
