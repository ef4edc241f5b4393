//! cargo-fuzz target `h264_decode`: see `camkit_fuzz::h264_decode` (src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| camkit_fuzz::h264_decode(data));
