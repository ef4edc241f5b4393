//! cargo-fuzz target `rtsp_request`: see `camkit_fuzz::rtsp_request` (src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| camkit_fuzz::rtsp_request(data));
