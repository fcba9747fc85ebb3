//! `tq-model`: exhaustive, bounded model checking of the real trust quorum
//! core (issue 12, item 1).
//!
//! It explores, breadth first, every interleaving of the steps of
//! [`step::Step`] (deliver, drop or duplicate any message in flight;
//! crash or restart any sled; reset any connection; Nexus starts,
//! polls, commits, abandons; a sled loads the rack secret) from a fresh
//! rack, an LRTQ rack, or either past its first commit ([`Start`]), within
//! a [`Bounds`] (depth, epochs, copies, sleds down), over the *real* code:
//! each state is a `tq_harness::Cluster` of real `tq_core::node::Node`s
//! with disks, the harness's lossy network
//! and `tq-nexus`'s state machine. Every state is fingerprinted
//! ([`fingerprint`]) and explored once. In every state the harness's
//! checker has run (PROTOCOL.md section 8, invariants 1 to 6 and the
//! secret agreement of 7) and the secrecy check runs (invariant 8); the
//! liveness check (invariant 7) runs from every state or a stated sample.
//! The first failure stops the search and comes with a shortest path.
//!
//! # Why a search of its own, not `stateright`
//!
//! `stateright`'s checkers keep every pending state in memory (its
//! breadth-first queue holds whole states) and key visited states by a
//! 64-bit fingerprint. Here a state is a whole simulated rack, hundreds of
//! KiB, that cannot be serialized (a node's in-memory state is the core's
//! own, and holds shares): a frontier of 10^5 states would need tens of
//! GiB. This search keeps a few dozen bytes per state (a 128-bit
//! fingerprint, the parent, the step) and re-creates each layer by walking
//! the tree of shortest paths with one cloned rack per level (see the
//! [`explore`](mod@explore) module). Its liveness check is the harness's
//! (heal, let Nexus finish, every member loads the secret), not a temporal
//! property over paths.
//!
//! # What makes "each state once" exact
//!
//! - The fingerprint covers everything that decides the future
//!   (`tq_harness::Cluster::fingerprint`'s doc), Nexus's time relative to
//!   its clock; and randomness is a function of the state (each sled's RNG
//!   is reseeded before each step from its own fingerprint and the step),
//!   so a step from a state always leads to the same state. The search
//!   checks this on the way: every state re-created for a later layer must
//!   have the fingerprint it had when found.
//! - The bounds are properties of a state, not of the path to it.
//! - Messages in flight are a multiset: steps name a message by what it
//!   is, and identical copies are one choice. Sleds are not treated as
//!   interchangeable (their ids order the shares).
//!
//! # Running it
//!
//! `cargo test -p tq-model` runs the search two steps deep (unoptimized, a
//! state costs tens to hundreds of milliseconds). CI's bound runs in the
//! `model` profile (release without fat LTO), as `.ci/run` does:
//!
//! - `cargo test -p tq-model --profile model --test bounded -- --ignored --nocapture --test-threads 1`
//! - `cargo test -p tq-model --profile model --features planted-bug-ack-stale-prepare --test planted -- --nocapture`
//!   (and the same with `planted-bug-ack-any-epoch`): the planted bug is
//!   found and its shortest path printed.
//!
//! Measured on the 2-core development machine (shared with other builds),
//! 3 sleds, liveness checked from every state, times as the tests print
//! them (`elapsed`), builds excluded:
//!
//! | start       | depth | states  | time  |
//! |-------------|-------|---------|-------|
//! | `Fresh`     | 6     | 85,564  | 54 s  |
//! | `Lrtq`      | 6     | 64,416  | 180 s |
//! | `Committed` | 6     | 275,045 | 238 s |
//! | `Fresh` (binary: `target/model/tq-model --sleds 3 --start fresh --depth 7`) | 7 | 362,684 | 161 s |
//! | `Fresh`, 4 sleds (binary: `target/model/tq-model --sleds 4 --start fresh --depth 4`) | 4 | 66,345 | 24.5 s |
//! | planted `ack-stale-prepare`: found, shortest path 3 steps | | 284 | 0.1 s |
//! | planted `ack-any-epoch`: found, shortest path 5 steps | | 10,499 | 1.9 s |
//!
//! The binary runs any bound and prints the same report:
//! `cargo run -p tq-model --profile model -- --sleds 3 --start fresh --depth 7`
//! (`--start lrtq|committed|upgraded`, `--sleds 4`, `--liveness-every 10`,
//! `--help` for the rest). The planted bugs are in `tq_core::planted`.

/// Most sleds of a rack the checker explores: the issue asks for racks of
/// 3 and 4 sleds. Every state is a [`Cluster`] with room for this many
/// (the harness's default is 8): a smaller capacity is a smaller box to
/// allocate and copy and fewer sled slots to carry. A larger rack is
/// refused at its setup
/// (`tq_harness::invariants::SetupError::Sizes`).
pub const MAX_RACK_SLEDS: usize = 4;

/// One state of the model: the harness's cluster, sized for
/// [`MAX_RACK_SLEDS`].
pub type Cluster = tq_harness::Cluster<MAX_RACK_SLEDS>;

pub mod bounds;
pub mod explore;
pub mod fingerprint;
pub mod secrecy;
pub mod step;

pub use bounds::{Bounds, Liveness, Start};
pub use explore::{Coverage, Failure, Found, Rack, Replay, Report, explore, replay};
