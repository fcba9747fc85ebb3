//! `tq_core::wire::decode_configuration_into` (the request of `prepare_and_commit`) on arbitrary bytes: never panics, and
//! whatever decodes round-trips (see `tq_fuzz::round_trip`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    tq_fuzz::round_trip::configuration(bytes);
});
