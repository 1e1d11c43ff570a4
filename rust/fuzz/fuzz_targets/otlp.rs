#![no_main]
//! `cargo +nightly fuzz run otlp`: see wattledger_engine::fuzzing::otlp for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattledger_engine::fuzzing::otlp(data));
