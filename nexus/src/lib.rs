//! `tq-nexus`: Nexus's side of the trust quorum (PROTOCOL.md section 7) as
//! one sans-io state machine, [`Nexus`].
//!
//! Nexus decides every configuration (epoch, members, threshold,
//! coordinator), asks the coordinator to run it, polls the coordinator's
//! status, and commits once `K + Z` members acked
//! ([`tq_core::api::acks_to_commit`]); then it tells every member to commit,
//! and hands the configuration to those that answer `NotPrepared`. When a
//! coordinator can never run its epoch, or makes no progress for too long,
//! Nexus abandons the epoch and starts the same change at a higher epoch
//! with the next coordinator: that is the only retry of a reconfiguration.
//! The machine knows nothing of routes, so the caller says which sleds it
//! can make coordinator calls on, and only those are picked.
//!
//! Two callers drive it: the test harness's model of Nexus (`tq-harness`,
//! on the host and on the service processor's CPU) and the host's Nexus
//! driver.
//!
//! # Rules this crate keeps
//!
//! - **It decides, the caller acts.** No I/O and no clock: the machine
//!   hands out the calls to make ([`Call`]) and is told the answers
//!   ([`Answer`]); time is an [`Instant`] the caller passes in. Nothing
//!   here waits.
//! - **One epoch at a time, never reused, never committed late.** A new
//!   reconfiguration waits for the pending one to commit or be abandoned;
//!   every start takes the next epoch above the highest ever started; once
//!   an epoch is abandoned, answers about it are ignored, so Nexus never
//!   commits an epoch after starting a newer one.
//! - **An epoch is restarted only with a coordinator the caller reaches**:
//!   [`Nexus::handle_timeout`] takes the caller's view of its routes, and
//!   keeps the epoch rather than pick a coordinator it could never call
//!   (which would only be abandoned again after another timeout).
//! - **Commit only on `K + Z` acks from members**, for the configuration
//!   requested (the coordinator's own configuration is checked against the
//!   request: epoch, rack, members, threshold, coordinator).
//! - **A removed sled is never added back** (it must be wiped and come back
//!   as a new sled with a new identity).
//! - **Decisions are stored before anything follows from them**, as the
//!   node's state is: the machine hands out no call while a decision is
//!   unstored (else a crash could start one epoch twice with different
//!   requests, or forget a commit members were told of).
//! - Like `tq-core`: `#![no_std]`, no allocation, no panic on any input
//!   (indexing, `unwrap` and `expect` are denied outside tests), no
//!   `unsafe`; every bound a named constant ([`MAX_KNOWN_SLEDS`],
//!   [`MAX_HISTORY`]), and a full table a typed error. The machine is
//!   about 21 KiB (the roster of known sleds 8.4 KiB, the latest
//!   configuration 3.9 KiB, the pending request 2.1 KiB, the history
//!   3.6 KiB): keep it in a `static` or on the heap, not on a small stack.
//!
//! # Driving it
//!
//! Make it with [`Nexus::new`] (a fresh rack's sleds, or an LRTQ rack's)
//! or, after a restart, with [`Nexus::restore`] from the stored [`State`].
//! Then loop:
//!
//! 1. **Inputs.** Commands as they come: [`Nexus::start`] a reconfiguration,
//!    [`Nexus::abandon`] the pending one. Answers as they come:
//!    [`Nexus::on_answer`] for each call made, exactly once per call
//!    ([`Answer::Unreachable`] if the sled is down, the network failed, or
//!    no answer came within the caller's timeout); the [`Reaction`] says
//!    what it decided, and a [`Reaction::Refused`] is for an operator.
//!    Time: [`Nexus::handle_timeout`] once [`Nexus::poll_timeout`] has
//!    passed (automatic abandonment, if [`Timing::abandon_after`] is set),
//!    with which sleds the caller reaches: the next coordinator is one of
//!    them, and with none the epoch is kept ([`TimedOut::Held`]).
//! 2. **Store.** If [`Nexus::state_to_store`] returns a state, write it
//!    durably (a file written atomically: temporary file, fsync, rename,
//!    fsync the directory), then [`Nexus::acknowledge_stored`] its
//!    revision. All of [`State`] must be stored; nothing else need be.
//! 3. **Outputs.** Drain [`Nexus::poll_call`]: make each call on its sled
//!    (concurrently is fine; the machine keeps at most one call per sled
//!    and purpose in flight). A driver that orders calls itself picks among
//!    the due ones with [`Nexus::poll_call_where`], and may look a call up
//!    again by id with [`Nexus::call`] while it is in flight.
//! 4. Wait for an answer, a command, or [`Nexus::poll_timeout`].
//!
//! The getters ([`Nexus::members`], [`Nexus::latest_committed`],
//! [`Nexus::history`], [`Nexus::pending`], [`Nexus::counted_commit`],
//! [`Nexus::stats`], ...) say what Nexus knows; a test harness's invariant
//! checker reads them.
#![no_std]

#[cfg(test)]
extern crate std;

mod answers;
mod calls;
mod commands;
mod errors;
#[cfg(feature = "model")]
mod fingerprint;
mod machine;
mod outputs;
mod roster;
mod state;
mod stats;
#[cfg(test)]
mod tests;
mod time;

pub use answers::Reaction;
pub use calls::{Answer, Call, CallId, CallKind, Method, status_ref};
pub use commands::{Abandoned, TimedOut};
pub use errors::{AbandonError, NodeRefusal, RestoreError, StartError};
pub use machine::{Committed, Nexus, Origin, PendingView, Phase, StateToStore, Stuck};
pub use roster::{MAX_KNOWN_SLEDS, Sleds};
pub use state::{MAX_HISTORY, State};
pub use stats::NexusStats;
pub use time::{Instant, Timing};
