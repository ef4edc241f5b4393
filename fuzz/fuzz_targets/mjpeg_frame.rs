//! cargo-fuzz target `mjpeg_frame`: see `camkit_fuzz::mjpeg_frame` (src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| camkit_fuzz::mjpeg_frame(data));
