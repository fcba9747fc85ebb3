//! `tq-core`: the sans-io core of the rack trust quorum.
//!
//! The sleds of a rack each hold one Shamir share of a *rack secret*; any
//! threshold of them rebuild it on boot to unlock encrypted disks. This crate
//! is the part of that protocol that runs unchanged on the host (sled-agent)
//! and on the service processor (Cortex-M7). The specification is
//! `shared/PROTOCOL.md`.
//!
//! # Rules this crate keeps
//!
//! - **No I/O and no clock.** Callers hand in what happened and drain what to
//!   send; nothing here waits, sleeps or retries on a timer.
//! - **No allocation.** `#![no_std]` without `alloc`; every collection is a
//!   fixed-capacity `heapless` type whose bound is a named constant in
//!   [`limits`]. A full collection is a typed error, never a panic. (The
//!   host-only `schema` feature, JSON Schemas of the Nexus-facing types
//!   for an HTTP API, links `std` for `schemars`; no other build does, the
//!   service processor's included.)
//! - **No panic on any input.** Indexing, `unwrap` and `expect` are denied
//!   outside tests; every fallible step returns a typed error.
//! - **Randomness comes from the caller** as a [`rand_core::TryCryptoRng`], so
//!   a run is replayable from a seed and a failing hardware RNG is an error,
//!   not a panic.
//! - **Secrets stay secret.** Secrets and shares zeroize on drop, compare only
//!   through [`subtle`], never appear in `Debug` output or logs, and are
//!   processed without secret-dependent branches or table lookups.
//! - **The caller persists state before sending** anything this crate
//!   queued, and the API enforces it: a node hands out no message and no
//!   event until the caller acknowledged storing the state they follow from
//!   (see [`node`]; [`node::drive`] is the loop that does it right).
//! - **Decoding is total and canonical.** Any bytes decode to a valid value
//!   or a typed error, and a value has exactly one accepted encoding: every
//!   decoder of [`wire`] ends by re-encoding what it read and comparing, so
//!   the host and the 32-bit service processor accept the same bytes.
//!
//! # Layers
//!
//! Each module uses only the ones listed before it (doc links aside), so
//! no two modules use each other; `tests/layers.rs` reads the sources and
//! fails on any import cycle.
//!
//! - [`limits`]: every bound, in one place.
//! - [`ids`]: epochs, thresholds, rack and platform ids.
//! - [`crypto`]: GF(2^8) arithmetic, Shamir sharing, share digests, the rack
//!   secret, encryption of retained old secrets, and LRTQ share combination.
//! - [`member_set`], [`config`], [`messages`], [`persistent`]: the
//!   protocol's data, validated as it is built or decoded.
//! - [`api`]: what Nexus asks of a node and what it gets back, the
//!   refusals, and the alarms and counters a node reports.
//! - [`wire`]: bytes to validated types and back (postcard after a version
//!   byte, each encoding versioned on its own). The node never sees bytes
//!   except through it.
//! - [`authority`]: Nexus's keys, the tags of its requests and of the
//!   nodes' answers, and the check that makes a request [`authority::Verified`],
//!   which every Nexus-facing call of the node takes.
//! - [`node`]: the protocol state machine and the context its caller owns.
//! - `schema` (host only): JSON Schemas of the [`api`] types.
//!
//! # Features for the model checker only
//!
//! `model` gives the node and its context `Clone` and all their state
//! `Hash` (secrets and shares through a SHA3 digest only), so `tq-model`
//! can copy a state and tell states apart. The `planted-bug-*` features
//! break the core on purpose ([`planted`]), so `tq-model` can show that its
//! checker finds such a bug. Nothing that ships enables any of them.
// No std, but for the host-only `schema` feature: `schemars`'s derived
// code needs std's prelude. Every other build (the service processor's
// included) is `no_std`, so nothing here can come to rely on std.
#![cfg_attr(not(feature = "schema"), no_std)]

#[cfg(all(test, not(feature = "schema")))]
extern crate std;

mod log;

pub mod api;
pub mod authority;
pub mod config;
pub mod crypto;
pub mod ids;
pub mod limits;
pub mod member_set;
pub mod messages;
pub mod node;
pub mod persistent;
pub mod planted;
#[cfg(feature = "schema")]
pub mod schema;
mod serde_forms;
pub mod wire;
