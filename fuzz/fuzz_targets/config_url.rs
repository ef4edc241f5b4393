//! cargo-fuzz target `config_url`: see `camkit_fuzz::config_url` (src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| camkit_fuzz::config_url(data));
