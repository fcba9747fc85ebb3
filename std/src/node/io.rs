//! The node's outputs, as the core's driving loop hands them over
//! ([`tq_core::node::AsyncIo`]): the state to the ledger, messages to the
//! network, events to the task.
//!
//! A write that reaches no ledger copy fails the store, so the core keeps
//! every message and event of that state queued; the next attempt waits
//! for a backoff delay (a store asked for earlier fails at once without
//! touching the disk), and the task retries when the delay is over.
//!
//! A message that hands out a share is held, with every message after it
//! (so a peer's messages keep their order), until its audit record is on
//! a drive ([`ShimIo::flush_audited`], which the task calls after every
//! batch of inputs, and [`ShimIo::record`] before an answer); the core's
//! events that are audited (secrets rebuilt, expungements, alarms) are
//! recorded then too.

use std::sync::Arc;

use tokio::time::Instant;
use tq_core::ids::PlatformId;
use tq_core::node::{AsyncIo, Event, Outputs};
use tq_core::persistent::PersistentState;
use tq_core::wire::{self, MAX_PERSISTENT_STATE_LEN};
use zeroize::Zeroizing;

use super::stats::ShimCounters;
use crate::audit::peek::{HandsOut, hands_out};
use crate::audit::{AuditEvent, AuditLog};
use crate::backoff::{Backoff, BackoffConfig};
use crate::ledger::{Ledger, WriteOutcome};
use crate::net::{Frame, Net, SendError};

/// Audit records kept for a retry while no drive takes them; those past
/// this are dropped (each failed append is counted).
const MAX_UNRECORDED: usize = 64;

/// Why the state was not stored.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// The last write failed and its backoff delay is not over.
    BackingOff,
    /// This write failed.
    Failed,
}

pub(crate) struct ShimIo {
    pub(crate) ledger: Ledger,
    pub(crate) net: Net,
    pub(crate) stats: Arc<ShimCounters>,
    /// The encoded state; holds key shares.
    encoded: Zeroizing<Vec<u8>>,
    backoff: Backoff,
    /// Failed writes in a row.
    failing: u32,
    /// When the next write may be tried, after a failure.
    retry_at: Option<Instant>,
    /// Events of the last drive, for the task.
    pub(crate) events: Vec<Event>,
    pub(crate) audit: AuditLog,
    /// Messages held for their audit record: (to, frame, holds a share).
    held: Vec<(PlatformId, Frame, bool)>,
    /// Audit records of the last drive, not yet written.
    unrecorded: Vec<AuditEvent>,
}

impl ShimIo {
    pub(crate) fn new(
        ledger: Ledger,
        net: Net,
        stats: Arc<ShimCounters>,
        backoff: BackoffConfig,
        audit: AuditLog,
    ) -> Self {
        Self {
            ledger,
            net,
            stats,
            encoded: Zeroizing::new(vec![0; MAX_PERSISTENT_STATE_LEN]),
            backoff: Backoff::new(backoff),
            failing: 0,
            retry_at: None,
            events: Vec::new(),
            audit,
            held: Vec::new(),
            unrecorded: Vec::new(),
        }
    }

    /// Writes the audit records of the last drive, then sends the messages
    /// held for them; a message holding a share is dropped (and counted)
    /// if its record reached no drive.
    pub(crate) async fn flush_audited(&mut self) {
        if self.unrecorded.is_empty() {
            return;
        }
        // The next batch is likely as large: room for it at once, not by
        // doubling.
        let room = self.unrecorded.len();
        let events = std::mem::replace(&mut self.unrecorded, Vec::with_capacity(room));
        // What is tried again with the next records if this append fails:
        // a share not sent has no record to keep. Copied before, since the
        // append takes the events (few are left: most hand out shares).
        let retry: Vec<AuditEvent> = events
            .iter()
            .filter(|event| !event.hands_out())
            .take(MAX_UNRECORDED)
            .cloned()
            .collect();
        let recorded = self.audit.record(events).await;
        if let Err(error) = &recorded {
            tracing::error!(%error, "audit record not written: no share goes out with it");
            self.unrecorded = retry;
        }
        // Emptied in place, so its room serves the next batch.
        let mut held = std::mem::take(&mut self.held);
        for (to, frame, share) in held.drain(..) {
            if share && recorded.is_err() {
                self.audit.share_withheld();
                continue;
            }
            self.send_frame(&to, frame);
        }
        self.held = held;
    }

    /// Queues `event` for the next flush (the task flushes after every
    /// batch of inputs).
    pub(crate) fn queue(&mut self, event: AuditEvent) {
        self.unrecorded.push(event);
    }

    /// Records `event` at once (fsynced), before the caller acts on it.
    pub(crate) async fn record(&mut self, event: AuditEvent) {
        self.unrecorded.push(event);
        self.flush_audited().await;
    }

    fn send_frame(&mut self, to: &PlatformId, frame: Frame) {
        match self.net.send(to, frame) {
            Ok(()) => {}
            // The core sends again what matters when the peer reconnects.
            Err(SendError::NotConnected) => self.stats.send_not_connected(),
            Err(SendError::Busy) => self.stats.send_busy(),
            Err(SendError::BadLength(len)) => {
                tracing::error!(len, "the core produced a message the network cannot frame");
            }
        }
    }

    /// Failed writes in a row (0: the last write reached a copy).
    pub(crate) fn failing(&self) -> u32 {
        self.failing
    }

    /// When the store should be tried again, if a write failed.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    async fn write(&mut self, state: &PersistentState) -> Result<(), StoreError> {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(StoreError::BackingOff);
        }
        let written = match wire::encode_persistent_state(state, &mut self.encoded) {
            Ok(bytes) => self.ledger.write(bytes).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("encoding the state: {e}")),
        };
        match written {
            Ok(outcome) => {
                if let WriteOutcome::Degraded { failed, .. } = &outcome {
                    tracing::warn!(%failed, "state stored in one ledger copy only");
                }
                if self.failing > 0 {
                    tracing::info!(attempts = self.failing, "ledger writable again");
                }
                self.failing = 0;
                self.retry_at = None;
                self.backoff.reset();
                Ok(())
            }
            Err(error) => {
                self.failing = self.failing.saturating_add(1);
                let delay = self.backoff.next_delay();
                self.retry_at = Some(Instant::now() + delay);
                self.stats.store_failure();
                tracing::error!(%error, attempts = self.failing, ?delay,
                    "state not stored: nothing is sent or acknowledged until it is");
                Err(StoreError::Failed)
            }
        }
    }
}

impl AsyncIo for ShimIo {
    type StoreError = StoreError;

    fn store(&mut self, state: &PersistentState) -> impl Future<Output = Result<(), StoreError>> {
        self.write(state)
    }
}

impl Outputs for ShimIo {
    fn send(&mut self, to: &PlatformId, bytes: &[u8]) {
        let frame = Frame::copy_from_slice(bytes);
        let handed_out = hands_out(bytes);
        if let Some(handed_out) = handed_out {
            let to = to.to_string();
            self.unrecorded.push(match handed_out {
                HandsOut::Share(message, epoch) => AuditEvent::ShareSent {
                    to,
                    epoch: epoch.0,
                    message,
                },
                HandsOut::LrtqShare => AuditEvent::LrtqShareSent { to },
            });
        }
        if handed_out.is_some() || !self.held.is_empty() {
            self.held.push((to.clone(), frame, handed_out.is_some()));
        } else {
            self.send_frame(to, frame);
        }
    }

    fn event(&mut self, event: Event) {
        let audited = match &event {
            Event::SecretLoaded(epoch) => Some(AuditEvent::SecretRebuilt { epoch: epoch.0 }),
            Event::Expunged { epoch, from } => Some(AuditEvent::Expunged {
                epoch: epoch.0,
                from: from.to_string(),
            }),
            Event::AlarmRaised(alarm) => Some(AuditEvent::Alarm {
                alarm: alarm.to_string(),
            }),
            _ => None,
        };
        self.unrecorded.extend(audited);
        self.events.push(event);
    }
}
