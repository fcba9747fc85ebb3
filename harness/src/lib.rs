//! `tq-harness`: a deterministic cluster of trust quorum nodes, for tests.
//!
//! One reusable place for everything that drives several
//! [`tq_core::node::Node`]s together: the property test, the stateful fuzz
//! target, a simulator, and a run on an emulated Cortex-M7. It holds
//!
//! - simulated sleds ([`sled`]): a node, its context and a "disk" holding
//!   the encoded persistent state, written after every call that changed it
//!   and *before* anything the call queued is sent; a crash drops everything
//!   but the disk;
//! - a network ([`network`]): a bounded list of encoded messages in flight,
//!   delivered in any order, duplicated or dropped, over symmetric links;
//! - Nexus, the control plane of PROTOCOL.md section 7 ([`nexus`]):
//!   `tq_nexus::Nexus`, the state machine the host's Nexus driver runs too;
//! - the checker (`checker`) of the invariants of PROTOCOL.md section 8
//!   ([`invariants`] lists them and holds the [`Violation`] a broken one
//!   yields), run after every step, owning what it remembers between steps;
//! - [`action::Action`]: one step of a run. Every value of it is valid
//!   (indices are taken modulo the current sizes), so a fuzzer's bytes or a
//!   seeded RNG can produce them freely;
//! - sets of sleds as bit masks ([`mask`]) and what a run did ([`RunStats`]).
//!
//! [`cluster::Cluster`] ties these together: its module holds the world,
//! and its files the driving, Nexus's steps and the liveness check run at
//! the end. The modules depend one way: the cluster on the checker, the
//! checker on the world's parts (sleds, network, Nexus), those on masks.

//! # Rules this crate keeps
//!
//! Like the core, and because it must run where the core runs: no `std`, no
//! allocation, no `unsafe`, no panic outside tests (a broken invariant is a
//! typed [`invariants::Violation`], never a panic), every size a named
//! constant with a full collection counted rather than fatal, and every
//! random choice drawn from a seed (`ChaCha20Rng`), so a run is a pure
//! function of its seed and its actions.
//!
//! # How big a cluster is
//!
//! A [`Cluster`] holds every sled inline (its disk, node and context: about
//! 62 KiB a sled), so its sled capacity is a const generic parameter,
//! `Cluster<SLEDS>`, at most [`MAX_SLEDS`] (a whole rack); a rack of `n`
//! sleds runs in any cluster with `SLEDS >= n`. `Cluster` alone is
//! `Cluster<DEFAULT_SLEDS>`, about 790 KiB; `Cluster<MAX_SLEDS>` is about
//! 2.2 MiB. A parameter, not a cargo feature, because one build wants
//! several sizes: the fuzz crate runs racks of 3 to 8 sleds in small
//! clusters and racks of up to 32 in whole-rack ones, and a feature would
//! give every cluster of a build (features unify) the largest size. The
//! Cortex-M7 run (`target-tests`) keeps the default, which its RAM holds.
//! The network is not sized by the parameter: its byte arena (128 KiB) and
//! its limit per sled serve every size.
//!
//! Either size is too big for a small stack: keep a cluster in a `static`,
//! in a `Box`, or on a thread with a large stack (the tests use 256 MiB of
//! address space, since debug builds copy it around).
//!
//! # Feature `model`
//!
//! For the model checker (`tq-model`) only: `Clone` on the cluster (copied
//! in place by `clone_from`, without the capacity a small rack leaves
//! unused) and `Cluster::fingerprint`, a hash of everything that decides a
//! cluster's future; `src/model.rs` says what it leaves out and why.
#![cfg_attr(not(test), no_std)]

pub mod action;
mod checker;
pub mod cluster;
pub mod invariants;
pub mod mask;
pub mod network;
pub mod nexus;
pub mod sled;
mod stats;

pub use action::{Action, Change};
pub use cluster::{Cluster, DriverFault, RackStart};
pub use invariants::Violation;
pub use mask::SledMask;
pub use stats::RunStats;

/// Most sleds in one simulated rack: a whole rack, as many as a
/// configuration may have members. Sled indices are `0..MAX_SLEDS`; member
/// sets are bit masks over them (`u32`), so this must stay at most 32.
pub const MAX_SLEDS: usize = tq_core::limits::MAX_MEMBERS;

/// The sled capacity of a [`Cluster`] whose capacity is not named: racks
/// of 3 to 8 sleds, what the Cortex-M7 run and the fast fuzz target use.
pub const DEFAULT_SLEDS: usize = 8;
