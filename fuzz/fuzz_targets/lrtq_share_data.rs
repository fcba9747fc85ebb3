//! `tq_core::wire::decode_lrtq_share_data` on arbitrary bytes: never panics, and
//! whatever decodes round-trips (see `tq_fuzz::round_trip`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    tq_fuzz::round_trip::lrtq_share_data(bytes);
});
