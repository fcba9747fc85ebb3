//! A simulated rack of 3 to 32 sleds driven by the fuzzer's bytes (see `tq_fuzz::cluster`
//! for the input format): every harness action, forged and malformed peer
//! messages, the safety invariants after every step and the liveness check
//! at the end. A panic or a violated invariant is a finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| tq_fuzz::cluster::fuzz_one(bytes));
