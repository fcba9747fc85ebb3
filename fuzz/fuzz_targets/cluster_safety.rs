//! The fast stateful target: a rack of 3 to 8 sleds driven by the fuzzer's
//! bytes (the `cluster` target's input format, see `tq_fuzz::cluster`),
//! forged messages included, with the safety invariants after every step
//! and every sled's state compared with its disk at the end; no liveness
//! check. A panic or a violated invariant is a finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| tq_fuzz::cluster::fuzz_one_safely(bytes));
