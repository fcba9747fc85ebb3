//! The stateful targets: the fuzzer's bytes drive a `tq_harness::Cluster`.
//!
//! Two targets read the same input format:
//!
//! - `cluster` ([`run`]): racks of 3 to 32 sleds, the safety invariants
//!   after every step, and the liveness check at the end;
//! - `cluster_safety` ([`run_safety`]): racks of 3 to 8 sleds only (in a
//!   cluster sized for 8), the safety invariants after every step, and at
//!   the end a comparison of every sled's state with its disk, but no
//!   liveness check (healing a rack and loading every secret costs far
//!   more than the steps), and an LRTQ rack's ledger lists only the
//!   members' shares ([`Ledger`]): many more inputs a second, for the
//!   invariants.
//!
//! # Input format
//!
//! - byte 0, the rack: bit 0 set = an LRTQ rack (else fresh). With
//!   `f = (b >> 1) & 7` below 6, sleds `3 + f` (3 to 8) and initial
//!   members `3 + (b >> 4) % (sleds - 2)`. With `f` 6 or 7, a large rack:
//!   the next byte `s` gives sleds `9 + s % 24` (9 to 32), and initial
//!   members are the sleds less `(b >> 4) % 3` spares. (`cluster_safety`
//!   reads `f` 6 and 7 as 3 and 4 sleds, with no extra byte.)
//! - next byte: the cluster's seed (every random choice of a run follows
//!   it).
//! - then steps until the bytes run out. Each step starts with a selector
//!   byte: `selector % 8 == 7` is a [`Forgery`] read from the next bytes,
//!   anything else is one `tq_harness::Action` read by
//!   `Action::from_bytes` from the next bytes (deliveries, duplicates,
//!   losses, link changes, crashes, restarts, Nexus steps, secret loads).
//!   Missing trailing bytes read as zero. The selector `0xFF` is a
//!   [`RequestForgery`] instead: a Nexus request no Nexus made (two more
//!   bytes: the target and how its authenticator is forged), which the
//!   target's node must refuse with the refusal the forgery calls for and
//!   count once, or the run fails (`Violation::ForgedRequestNotRefused`).
//!   A refused request changes nothing but a counter, so it is not an
//!   event of the run's `tq-replay` log.
//!
//! Every step is followed by the harness's full safety check; at the end of
//! a `cluster` run the harness's liveness check runs (heal everything,
//! Nexus finishes, every member loads the same secrets, removed sleds learn
//! they are expunged). A violation panics: that is the finding.
//!
//! # Forged messages
//!
//! A forgery puts bytes into a node as if a peer sent them: garbage, a
//! corrupted copy of a message in flight, or a message in flight replayed
//! by another sled to any sled. Peers are authenticated sleds, and the
//! protocol trusts some of what an authenticated sled says (that it acked,
//! that an epoch committed, that the receiver is expunged): a sled that
//! lies about those can break the invariants by design, so such a
//! statement is injected only when the receiver is bound to ignore it or
//! it is true ([`judge`]). Everything the protocol checks
//! itself is injected freely: undecodable bytes, other racks, shares (each
//! is checked against a digest), requests, prepares not from the
//! coordinator or with a share that does not match.
//!
//! # Files
//!
//! `input` reads (and writes) the input format; `run` applies an input's
//! steps to a cluster and ends the run; `judge` decides which forgeries
//! are injected, from the core's own rules where the core has them
//! (`tq_core::node::claims`); `seeds` makes the seed corpus.

mod input;
mod judge;
mod run;
mod seeds;
#[cfg(test)]
mod tests;

pub use input::{Forgery, Layout, REQUEST_FORGERY, Racks, RequestForgery, Step};
pub use judge::{Verdict, judge};
pub use run::{
    Ledger, RunStats, Target, event_log, fuzz_one, fuzz_one_safely, print_sleds, run, run_safety,
};
pub use seeds::{SEED_CANDIDATES, SEED_LEN, safety_seeds, seeds};
