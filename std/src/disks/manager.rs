//! The key manager's task: unlock every disk at start, bring every
//! disk's wrapping to the latest committed epoch on each commit, and
//! forget every key of an expunged sled. See the module doc of
//! [`super`] for the rules it keeps.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tq_core::ids::Epoch;
use tq_core::node::LoadSecretError;

use super::board::{DiskBoard, DiskReport, DiskState, DiskStats};
use super::keyfile::{CopyRead, KeyFiles};
use super::wrap::{self, DataKey, WrapError, Wrapping};
use super::{DiskSpec, DisksConfig};
use crate::backoff::Backoff;
use crate::handle::{MAX_DEADLINE, NodeHandle, Unavailable};
use crate::secrets::LoadedSecret;

/// Why one disk's key could not be had or used in one attempt.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Some copy is there but none is valid: a new key would orphan the
    /// old one, so none is made.
    NoValidCopy,
    /// No wrapping opens under a secret this sled can load.
    NoWrappingOpens(String),
    /// No copy took a write.
    NotWritten(String),
    /// Wrapping failed.
    Wrap(WrapError),
    /// The backend failed.
    Backend(super::backend::BackendError),
    /// A blocking task did not finish.
    Interrupted,
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoValidCopy => f.write_str(
                "no key file copy is valid (corrupt or unreadable): the key is not replaced",
            ),
            Self::NoWrappingOpens(why) => write!(f, "no wrapping opens: {why}"),
            Self::NotWritten(why) => write!(f, "no key file copy was written: {why}"),
            Self::Wrap(e) => write!(f, "wrapping: {e}"),
            Self::Backend(e) => write!(f, "backend: {e}"),
            Self::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// Why no latest secret came.
enum NoSecret {
    /// This sled is expunged: stop for good.
    Expunged(String),
    /// Worth retrying: why.
    Retry(String),
}

struct Disk {
    spec: DiskSpec,
    files: Arc<KeyFiles>,
}

pub(crate) struct Manager {
    handle: NodeHandle,
    /// The latest committed epoch: a commit starts a round at once.
    committed: watch::Receiver<Option<Epoch>>,
    disks: Vec<Disk>,
    board: DiskBoard,
    config: DisksConfig,
    expunged: bool,
}

impl Manager {
    pub(crate) fn new(
        handle: NodeHandle,
        config: DisksConfig,
        files: Vec<KeyFiles>,
        board: DiskBoard,
    ) -> Self {
        let disks = config
            .disks
            .iter()
            .cloned()
            .zip(files)
            .map(|(spec, files)| Disk {
                spec,
                files: Arc::new(files),
            })
            .collect::<Vec<_>>();
        board.set_all(
            disks
                .iter()
                .map(|disk| DiskReport {
                    name: disk.spec.name.clone(),
                    serial: disk.spec.serial.clone(),
                    backend: disk.spec.backend.kind(),
                    state: DiskState::Locked("waiting for the rack secret".into()),
                    wrapped_epoch: None,
                    stats: DiskStats::default(),
                })
                .collect(),
        );
        let mut committed = handle.watch_committed();
        committed.mark_unchanged();
        Self {
            handle,
            committed,
            disks,
            board,
            config,
            expunged: false,
        }
    }

    pub(crate) async fn run(mut self) {
        self.settle().await;
        let mut check = tokio::time::interval(self.config.expunge_check);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.expunged {
            tokio::select! {
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return; // the node stopped
                    }
                    let epoch = *self.committed.borrow_and_update();
                    tracing::info!(epoch = ?epoch, "committed: bringing disk keys to it");
                    self.settle().await;
                }
                _ = check.tick() => self.check_expunged().await,
            }
        }
        // Expunged: nothing to do ever again but wait for the node's end.
        wait_closed(self.committed).await;
    }

    /// Whether disk `i` needs work to be open under the `latest` epoch.
    fn needs_work(&self, i: usize, latest: Option<Epoch>) -> bool {
        self.board.reports().get(i).is_some_and(|report| {
            report.state != DiskState::Unlocked
                || latest.is_some() && report.wrapped_epoch != latest
        })
    }

    /// Brings every disk to unlocked under the latest committed epoch,
    /// retrying with backoff until the unlock deadline; what is left then
    /// is `Failed`.
    async fn settle(&mut self) {
        let deadline = Instant::now() + self.config.unlock_deadline;
        let mut backoff = Backoff::new(self.config.retry);
        let mut last_error = String::new();
        loop {
            let pending: Vec<usize> = (0..self.disks.len())
                .filter(|&i| self.needs_work(i, self.latest()))
                .collect();
            if pending.is_empty() || self.expunged {
                return;
            }
            for &i in &pending {
                self.board.update(i, |r| {
                    if r.state != DiskState::Unlocked {
                        r.state = DiskState::Unlocking {
                            attempts: backoff.attempts(),
                            last_error: (!last_error.is_empty()).then(|| last_error.clone()),
                        };
                    }
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.latest_secret(left).await {
                Ok(secret) => {
                    let mut failed = Vec::new();
                    for &i in &pending {
                        if let Err(e) = self.attempt(i, &secret).await {
                            failed.push(i);
                            last_error = e.to_string();
                            let name = self.disks.get(i).map(|d| d.spec.name.as_str());
                            tracing::warn!(disk = name.unwrap_or("?"), error = %e, "disk attempt failed");
                        }
                    }
                    if failed.is_empty() {
                        return;
                    }
                }
                Err(NoSecret::Expunged(why)) => {
                    self.expunge(&why).await;
                    return;
                }
                Err(NoSecret::Retry(why)) => last_error = why,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                for i in 0..self.disks.len() {
                    self.board.update(i, |r| {
                        if r.state != DiskState::Unlocked {
                            r.state = DiskState::Failed(format!(
                                "not unlocked within the deadline: {last_error}"
                            ));
                        }
                    });
                }
                return;
            }
            let pause = backoff.next_delay_with(rand::random::<f64>()).min(left);
            // A commit (the rack's first, say) is worth a round at once.
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.committed.borrow_and_update();
                }
            }
        }
    }

    fn latest(&self) -> Option<Epoch> {
        *self.handle.watch_committed().borrow()
    }

    async fn latest_secret(&self, left: Duration) -> Result<LoadedSecret, NoSecret> {
        let wait = left.clamp(Duration::from_millis(1), MAX_DEADLINE);
        match self.handle.load_latest_secret(wait).await {
            Ok(Ok(secret)) => Ok(secret),
            Ok(Err(LoadSecretError::Expunged(at))) => Err(NoSecret::Expunged(at.to_string())),
            Ok(Err(e)) => Err(NoSecret::Retry(format!("the rack secret: {e}"))),
            Err(Unavailable::DeadlinePassed) => Err(NoSecret::Retry(
                "the rack secret: not enough shares yet".into(),
            )),
            Err(e) => Err(NoSecret::Retry(format!("the rack secret: {e}"))),
        }
    }

    /// One attempt at disk `i`: its key, re-wrapped under `latest`, then
    /// (if not open yet) handed to its backend.
    async fn attempt(&mut self, i: usize, latest: &LoadedSecret) -> Result<(), AttemptError> {
        let Some(disk) = self.disks.get(i) else {
            return Ok(());
        };
        let unlocked = self
            .board
            .reports()
            .get(i)
            .is_some_and(|r| r.state == DiskState::Unlocked);
        if !unlocked {
            self.board.update(i, |r| r.stats.unlock_attempts += 1);
        }
        let result = async {
            let key = self.current_key(i, latest).await?;
            if !unlocked {
                disk.spec
                    .backend
                    .unlock(&key)
                    .await
                    .map_err(AttemptError::Backend)?;
            }
            Ok(())
        }
        .await;
        match &result {
            Ok(()) => {
                self.board.update(i, |r| {
                    r.state = DiskState::Unlocked;
                    r.wrapped_epoch = Some(latest.epoch());
                });
                if !unlocked {
                    tracing::info!(disk = %disk.spec.name, epoch = %latest.epoch(), "disk unlocked");
                }
            }
            Err(_) if !unlocked => self.board.update(i, |r| r.stats.unlock_failures += 1),
            Err(_) => {}
        }
        result
    }

    /// Disk `i`'s data key, its key file brought to hold exactly one
    /// wrapping, under `latest`: the new wrapping is on disk (beside the
    /// old one) before the old one is removed. A disk with no key file
    /// gets a new random key, wrapped before any backend sees it.
    async fn current_key(&self, i: usize, latest: &LoadedSecret) -> Result<DataKey, AttemptError> {
        let disk = self.disks.get(i).ok_or(AttemptError::Interrupted)?;
        let serial = disk.spec.serial.as_bytes();
        let files = disk.files.clone();
        let copies = tokio::task::spawn_blocking(move || files.read())
            .await
            .map_err(|_| AttemptError::Interrupted)?;
        let bad = copies
            .iter()
            .filter(|c| matches!(c, CopyRead::Corrupt(_) | CopyRead::Unreadable(_)))
            .count();
        if bad > 0 {
            self.board.update(i, |r| r.stats.bad_copies += bad as u64);
        }
        let mut found: Vec<Wrapping> = Vec::new();
        for copy in &copies {
            if let CopyRead::Valid(wrappings) = copy {
                for w in wrappings {
                    if !found.contains(w) {
                        found.push(w.clone());
                    }
                }
            }
        }
        found.sort_by_key(|w| std::cmp::Reverse(w.epoch));
        if found.is_empty() {
            if copies.iter().all(|c| *c == CopyRead::Absent) {
                let key = DataKey::generate().map_err(AttemptError::Wrap)?;
                let new = wrap::wrap(&key, latest, serial).map_err(AttemptError::Wrap)?;
                self.write(i, vec![new]).await?;
                tracing::info!(disk = %disk.spec.name, epoch = %latest.epoch(), "new disk key made and wrapped");
                return Ok(key);
            }
            return Err(AttemptError::NoValidCopy);
        }
        self.board
            .update(i, |r| r.wrapped_epoch = found.first().map(|w| w.epoch));
        let (key, opened) = self.open_any(i, &found, latest).await?;
        let settled = opened.epoch == latest.epoch()
            && copies
                .iter()
                .all(|c| *c == CopyRead::Valid(vec![opened.clone()]));
        if settled {
            return Ok(key);
        }
        let new = if opened.epoch == latest.epoch() {
            opened
        } else {
            let new = wrap::wrap(&key, latest, serial).map_err(AttemptError::Wrap)?;
            // Both, durably, before the old one goes.
            self.write(i, vec![opened, new.clone()]).await?;
            new
        };
        let rewrapped = self.write(i, vec![new]).await;
        self.board.update(i, |r| match rewrapped {
            Ok(()) => r.stats.rewraps += 1,
            Err(_) => r.stats.rewrap_failures += 1,
        });
        rewrapped?;
        tracing::info!(disk = %disk.spec.name, epoch = %latest.epoch(), "disk key re-wrapped");
        Ok(key)
    }

    /// The first of `found` (newest first) that opens, with its epoch's
    /// secret: `latest` itself, or an older one the node retains.
    async fn open_any(
        &self,
        i: usize,
        found: &[Wrapping],
        latest: &LoadedSecret,
    ) -> Result<(DataKey, Wrapping), AttemptError> {
        let serial = self
            .disks
            .get(i)
            .map(|d| d.spec.serial.as_bytes())
            .unwrap_or_default();
        let mut why = Vec::new();
        for w in found {
            let older;
            let secret = if w.epoch == latest.epoch() {
                latest
            } else if w.epoch > latest.epoch() {
                why.push(format!("epoch {} is not committed here", w.epoch));
                continue;
            } else {
                match self.handle.load_rack_secret(w.epoch).await {
                    Ok(Ok(Some(secret))) => {
                        older = secret;
                        &older
                    }
                    Ok(Ok(None)) => {
                        why.push(format!("epoch {}: secret not loaded yet", w.epoch));
                        continue;
                    }
                    Ok(Err(e)) => {
                        why.push(format!("epoch {}: {e}", w.epoch));
                        continue;
                    }
                    Err(e) => {
                        why.push(format!("epoch {}: {e}", w.epoch));
                        continue;
                    }
                }
            };
            match wrap::unwrap(w, secret, serial) {
                Ok(key) => return Ok((key, w.clone())),
                Err(e) => {
                    self.board.update(i, |r| r.stats.wrappings_refused += 1);
                    why.push(format!("epoch {}: {e}", w.epoch));
                }
            }
        }
        Err(AttemptError::NoWrappingOpens(why.join("; ")))
    }

    async fn write(&self, i: usize, wrappings: Vec<Wrapping>) -> Result<(), AttemptError> {
        let disk = self.disks.get(i).ok_or(AttemptError::Interrupted)?;
        let files = disk.files.clone();
        let report = tokio::task::spawn_blocking(move || files.write(&wrappings))
            .await
            .map_err(|_| AttemptError::Interrupted)?;
        match (report.written, report.failure) {
            (0, Some((copy, step, e))) => Err(AttemptError::NotWritten(format!(
                "copy {copy}: {step}: {e}"
            ))),
            (0, None) => Err(AttemptError::NotWritten("no copies".into())),
            (_, Some((copy, step, e))) => {
                tracing::warn!(disk = %disk.spec.name, copy, %step, error = %e, "key file copy not written");
                self.board.update(i, |r| r.stats.degraded_writes += 1);
                Ok(())
            }
            (_, None) => Ok(()),
        }
    }

    async fn check_expunged(&mut self) {
        let Ok(status) = self.handle.status().await else {
            return;
        };
        if let Some(expunged) = status.node.state.expunged {
            self.expunge(&format!("{expunged:?}")).await;
        }
    }

    /// Removes every wrapping and locks every disk, for good.
    async fn expunge(&mut self, why: &str) {
        self.expunged = true;
        tracing::warn!(
            reason = why,
            "this sled is expunged: removing every disk key and locking"
        );
        for (i, disk) in self.disks.iter().enumerate() {
            let files = disk.files.clone();
            let removed = tokio::task::spawn_blocking(move || files.remove()).await;
            let locked = disk.spec.backend.lock().await;
            let state = match (removed, locked) {
                (Ok(Ok(())), Ok(()) | Err(super::backend::BackendError::CannotLock)) => {
                    DiskState::Locked(format!(
                        "this sled is expunged ({why}): its keys are removed"
                    ))
                }
                (Ok(Err(e)), _) => DiskState::Failed(format!(
                    "this sled is expunged, but removing its key files failed: {e}"
                )),
                (Err(_), _) => {
                    DiskState::Failed("this sled is expunged; removal interrupted".into())
                }
                (Ok(Ok(())), Err(e)) => DiskState::Failed(format!(
                    "this sled is expunged and its keys removed, but locking failed: {e}"
                )),
            };
            self.board.update(i, |r| {
                r.state = state;
                r.wrapped_epoch = None;
            });
        }
    }
}

async fn wait_closed(mut committed: watch::Receiver<Option<Epoch>>) {
    while committed.changed().await.is_ok() {}
}
