//! The content hash of a file, per core: SHA-256 (`sha2`, SHA-NI where the CPU has it) against
//! BLAKE3 (one thread, SIMD), over 64 MiB in memory fed 1 MiB at a time, as the scan's reader
//! feeds the hash. The ledger's file identity was chosen on these numbers (docs/internals.md,
//! "File identity").

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use sha2::Digest;

const SIZE: usize = 64 << 20;
const CHUNK: usize = 1 << 20;

fn main() {
    divan::main();
}

/// Bytes that look like a log (not zeros, which some hashes could shortcut: none do, but the
/// input should not be the question).
fn input() -> Vec<u8> {
    let mut rng = wattledger_bench::Rng::new(7);
    (0..SIZE).map(|_| b' ' + (rng.next_u64() % 94) as u8).collect()
}

#[divan::bench(sample_count = 10)]
fn sha256(bencher: Bencher) {
    let data = input();
    bencher.counter(BytesCount::new(SIZE)).bench(|| {
        let mut h = sha2::Sha256::new();
        for c in black_box(&data).chunks(CHUNK) {
            h.update(c);
        }
        h.finalize()
    });
}

#[divan::bench(sample_count = 10)]
fn blake3(bencher: Bencher) {
    let data = input();
    bencher.counter(BytesCount::new(SIZE)).bench(|| {
        let mut h = blake3::Hasher::new();
        for c in black_box(&data).chunks(CHUNK) {
            h.update(c);
        }
        h.finalize()
    });
}
