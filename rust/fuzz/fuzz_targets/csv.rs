#![no_main]
//! `cargo +nightly fuzz run csv`: see wattledger_engine::fuzzing::csv for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattledger_engine::fuzzing::csv(data));
