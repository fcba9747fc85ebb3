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
//! state costs tens to hundreds of milliseconds). Deeper searches run with
//! the crates the search spends its time in optimized, from the workspace
//! root: `--config model/optimized.toml` (a Cargo configuration file; it
//! says which crates and why). That stays in the test profile, so CI
//! builds only those crates again on top of its `cargo test --workspace`
//! build, and `.ci/run` runs:
//!
//! - `cargo test --workspace --config model/optimized.toml --test bounded -- --ignored --nocapture --test-threads 1`:
//!   CI's bound, three searches of a 3-sled rack with liveness from every
//!   state: fresh to depth 6 (85,564 states, 40.6 s), LRTQ to depth 5
//!   (13,926 states, 26.2 s), committed to depth 4 (6,211 states, 2.3 s: a secret load asks only the members it needs);
//! - `cargo test --workspace --config model/optimized.toml --features tq-model/planted-bug-ack-stale-prepare --test planted -- --nocapture`
//!   (and the same with `planted-bug-ack-any-epoch`): the planted bug is
//!   found and its shortest path printed.
//!
//! The whole CI section took 196 s on the shared 2-core development
//! machine after `cargo test --workspace` (builds 45 s, 39 s and 39 s, one
//! per feature set; searches 73 s). `-p tq-model` instead of
//! `--workspace` works too, but resolves features for this crate alone,
//! so it builds every dependency again once.
//!
//! Measured on the same machine (shared with other builds, so times vary
//! by a quarter), liveness checked from every state, times as printed
//! (`elapsed`), builds excluded, with the binary:
//! `cargo run -p tq-model --config model/optimized.toml -- --sleds 3 --start fresh --depth 6`
//! (`--start lrtq|committed|upgraded`, `--sleds 4`, `--liveness-every 10`,
//! `--help` for the rest):
//!
//! | sleds | start       | depth | states  | time  | peak RSS |
//! |-------|-------------|-------|---------|-------|----------|
//! | 3     | `Fresh`     | 6     | 85,564  | 43 s  | 17 MiB   |
//! | 3     | `Lrtq`      | 6     | 64,416  | 109 s | 17 MiB   |
//! | 3     | `Committed` | 6     | 275,045 | 164 s | 34 MiB   |
//! | 3     | `Fresh`     | 7     | 362,684 | 183 s | 36 MiB   |
//! | 3     | `Lrtq`      | 7     | 287,711 | 507 s | 35 MiB   |
//! | 4     | `Fresh`     | 4     | 66,345  | 41 s  | 16 MiB   |
//! | 4     | `Lrtq`      | 4     | 54,014  | 107 s | 14 MiB   |
//! | 4     | `Fresh`     | 5     | 532,723 | 304 s | 57 MiB   |
//!
//! The planted bugs (in `tq_core::planted`), by the test above: a
//! `Prepare` acked though stale is found after 284 states (78 ms), by a
//! shortest path of 3 steps; an ack counted for any epoch after 10,499
//! states (1.8 s), by a shortest path of 5 steps.

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
