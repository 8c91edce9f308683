#![no_main]
//! `doorstep_server::fuzz::exchange` (see docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| doorstep_server::fuzz::exchange(data));
