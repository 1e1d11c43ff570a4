#![no_main]
//! `cargo +nightly fuzz run timestamp`: see wattledger_engine::fuzzing::timestamp for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattledger_engine::fuzzing::timestamp(data));
