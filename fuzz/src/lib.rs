//! Shared code of the `tq-core` fuzz targets.
//!
//! - [`round_trip`]: what every decoder target checks (no panic, and a
//!   decoded value re-encodes into its `MAX_*_LEN` buffer to exactly the
//!   bytes it was decoded from);
//! - [`cluster`]: the stateful targets, a simulated rack driven step by
//!   step by the fuzzer's bytes, forged messages included (its input
//!   format, run loop, forgery judge and seed corpus each a file);
//! - [`samples`]: real values of every encodable kind, from which
//!   `examples/make_corpus.rs` writes the seed corpora;
//! - [`vectors`]: the hand-written wire vectors of tq-core
//!   (`core/tests/vectors/wire.txt`), written as seeds too.
//!
//! Unlike the core, this crate panics freely: a panic is how a fuzz target
//! reports a finding.

pub mod cluster;
pub mod round_trip;
pub mod samples;
pub mod vectors;
