#![no_main]
//! `cargo +nightly fuzz run grid`: see wattledger_engine::fuzzing::grid for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattledger_engine::fuzzing::grid(data));
