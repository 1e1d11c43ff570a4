#![no_main]
//! `cargo +nightly fuzz run jsondoc`: see wattledger_engine::fuzzing::jsondoc for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattledger_engine::fuzzing::jsondoc(data));
