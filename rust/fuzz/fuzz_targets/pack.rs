#![no_main]
//! `cargo +nightly fuzz run pack`: see wattledger_engine::fuzzing::pack for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattledger_engine::fuzzing::pack(data));
