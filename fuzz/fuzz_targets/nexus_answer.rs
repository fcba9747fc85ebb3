//! `tq_core::wire::decode_answer` for every answer type (the first byte picks one) on arbitrary bytes: never panics, and
//! whatever decodes round-trips (see `tq_fuzz::round_trip`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    tq_fuzz::round_trip::nexus_answer(bytes);
});
