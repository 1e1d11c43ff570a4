//! The JSON Lines scanner alone, per kernel, on one core:
//! `cargo run -p wattledger-engine --release --example jsonl_kernels -- FILE.jsonl [ROUNDS]`.
//! Reads the file into memory, then parses it as blocks of 8 MiB on this thread with the
//! byte-at-a-time scanner (`scalar`) and with the structural index (`avx2`, `portable`),
//! default mapping, records validated as in a run. Prints the best of ROUNDS (default 3) in
//! thread CPU time (from /proc, so other processes on a busy machine do not count) and wall.

use std::time::Instant;

use wattledger_engine::columns::ColumnMap;
use wattledger_engine::readers::jsonl_scan_with;

/// Nanoseconds this thread has run on a CPU (Linux); wall time elsewhere.
fn thread_cpu_ns(start: Instant) -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| start.elapsed().as_nanos() as u64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = std::fs::read(args.first().expect("usage: jsonl_kernels FILE.jsonl [ROUNDS]")).expect("read");
    let rounds: usize = args.get(1).map_or(3, |r| r.parse().expect("rounds"));
    // Blocks cut after a newline, as the reader cuts them.
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let target = (start + (8 << 20)).min(data.len());
        let end = memchr::memrchr(b'\n', &data[start..target]).map_or(target, |o| start + o + 1);
        let end = if end <= start { data.len() } else { end };
        blocks.push(&data[start..end]);
        start = end;
    }
    let columns = ColumnMap::default();
    let mb = data.len() as f64 / 1e6;
    for kernel in ["scalar", "avx2", "portable"] {
        let (mut best_cpu, mut best_wall, mut counts) = (f64::MAX, f64::MAX, (0, 0));
        for _ in 0..rounds {
            let t = Instant::now();
            let c0 = thread_cpu_ns(t);
            let mut n = (0, 0);
            for b in &blocks {
                let Some((r, j)) = jsonl_scan_with(b, &columns, kernel) else { break };
                n = (n.0 + r, n.1 + j);
            }
            best_cpu = best_cpu.min((thread_cpu_ns(t) - c0) as f64 / 1e9);
            best_wall = best_wall.min(t.elapsed().as_secs_f64());
            counts = n;
        }
        if counts == (0, 0) {
            println!("{kernel}: not available here");
            continue;
        }
        println!(
            "{kernel}: {} records, {} rejects, {mb:.0} MB: {best_cpu:.3} s CPU = {:.0} MB/s per core ({best_wall:.3} s wall)",
            counts.0,
            counts.1,
            mb / best_cpu
        );
    }
}
