#![no_main]
//! `cargo +nightly fuzz run jsonl`: see wattledger_engine::fuzzing::jsonl for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattledger_engine::fuzzing::jsonl(data));
