//! `tq-driver`: the host's Nexus driver. It owns Nexus's sans-io state
//! machine ([`tq_nexus::Nexus`]), makes on the sleds the calls the machine
//! hands out, tells it the answers and the time, and keeps its decisions
//! in a state file, so a restarted driver resumes where it stopped.
//!
//! It is the one adapter from the machine's calls to sled calls: the `tq`
//! binary's `nexus` commands and demo drive sleds over HTTP with it, and
//! tq-std's rack tests drive in-process node tasks with it (their adapter
//! lives with those tests: this crate does not depend on tq-std).
//!
//! # Parts
//!
//! - [`sled`]: how a sled is reached: [`SledApi`], one async method per
//!   call (the Nexus-facing calls, the node status, and the proxied
//!   variants), implemented in the `tq` crate for its HTTP client and in
//!   tq-std's tests for an in-process node handle; [`Directory`], the
//!   sleds Nexus reaches directly, looked up at every call ([`SledMap`]).
//! - [`Driver`]: the loop. Commands ([`Driver::start`],
//!   [`Driver::abandon`]) and runs ([`Driver::run_until`],
//!   [`Driver::settle`], [`Driver::turn`]); each call on its own task,
//!   each attempt bounded by [`DriverConfig::call_timeout`]; a member call
//!   (commit, prepare-and-commit) that cannot reach its sled directly is
//!   passed through up to [`MAX_PROXY_TRIES`] members Nexus reaches,
//!   the one that worked last first; no answer at all is the machine's
//!   `Unreachable`.
//! - [`authority`]: Nexus's authority key; each call authenticated for
//!   its target sled under a fresh nonce, each answer's tag checked with
//!   the target's key ([`Authority`]).
//! - [`store`]: the state file (JSON, replaced atomically with
//!   `tq-atomic-file`, as the sleds' ledgers are).
//! - [`DriverEvent`]: every decision and outcome, for live progress; each is
//!   also logged with `tracing`.
//!
//! # Rules it keeps
//!
//! - **Nothing follows from a decision before it is stored.** The state
//!   file is written after every command and every answer that changed a
//!   decision, before any further call (the machine hands out none while
//!   a decision is unstored), and before a run returns. A write that fails
//!   stops the run with [`DriverError::Store`]; the machine still holds
//!   the decision and writes it at the next run.
//! - **Every call is answered to the machine exactly once**: with the
//!   node's own answer, or `Unreachable` when no route gave one in time.
//! - **Nothing is acted on that the sled cannot be shown to have said.**
//!   Every call carries Nexus's authenticator for its target; every answer
//!   (an ack in a coordinator status, a commit, a reconfiguration started)
//!   reaches the machine only once its tag checked with the target's key
//!   and the request's nonce. One that does not check (altered by a proxy
//!   or on the link, or an old answer) is counted
//!   ([`DriverStats::answer_unauthenticated`]) and treated as no answer
//!   from that route.
//! - **The machine decides, the driver acts**: when to commit, whom to
//!   tell, when to abandon and with which coordinator are the machine's.
//!   The driver only tells it which sleds the [`Directory`] reaches
//!   directly: coordinator calls are never proxied, so only those may be
//!   picked as the next coordinator (with none, the epoch is kept:
//!   [`DriverEvent::AbandonHeld`]).
//! - **One driver per state file at a time**: [`Driver::create`] and
//!   [`Driver::resume`] take an exclusive lock beside it
//!   ([`tq_atomic_file::lock`]), held for the driver's life; a second one
//!   is refused ([`store::StoreError::Locked`]) before it reads or writes
//!   anything, so two cannot issue conflicting configurations for one
//!   epoch. Reading the file ([`StateFile::load`]) needs no lock.

pub mod authority;
mod call;
mod driver;
mod event;
pub mod sled;
pub mod store;

pub use authority::{AnswerCheck, Authority, AuthorizeError, Authorized};
pub use driver::{Driver, DriverConfig, DriverError, DriverStats, MAX_PROXY_TRIES, settled};
pub use event::DriverEvent;
pub use sled::{CallFailure, Directory, FailureKind, Reply, SledApi, SledMap, Tagged};
pub use store::StateFile;
