//! End to end: `pipeline::estimate_files` on a JSON Lines file (the canonical flat shape, one
//! day of the synthetic fleet, 50,000 lines, 12 MB): block reading, JSON scanning, the
//! kernel, the aggregate, the merge of the worker sinks and the final sorted Arrow batch.
//!
//! `estimate_jsonl` uses 1 MiB blocks so the figure tracks the per-record work (see
//! `BLOCK_BYTES` in `jsonl.rs`); `threads` = 1 shows one core, 2 both cores of the reference
//! machine (the producer thread competes with the workers for them). `estimate_jsonl_defaults`
//! runs the default scan options (all cores, 8 MiB blocks), as the CLI does: on a file this
//! small the fixed per-scan cost of the block buffers is a large part of it.

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use wattledger_bench::{fleet, jsonl_flat, methodology, TempFile};
use wattledger_engine::pipeline::{estimate_files, EstimateOptions, DEFAULT_MEMORY_BUDGET_CELLS};
use wattledger_engine::readers::{ScanControl, ScanOptions};
use wattledger_engine::source::{Compression, Format, InputFile};

const LINES: usize = 50_000;

fn main() {
    divan::main();
}

fn bench_estimate(bencher: Bencher, name: &str, scan: ScanOptions) {
    let m = methodology();
    let data = jsonl_flat(&fleet(LINES, 24, 9));
    let file = TempFile::new(&format!("{name}.jsonl"), &data);
    let files = [InputFile::local(file.path().to_path_buf(), Format::Jsonl, Compression::None, data.len() as u64)];
    let opts =
        EstimateOptions { scan, memory_budget_cells: DEFAULT_MEMORY_BUDGET_CELLS, spill_dir: None, dedupe: false };
    let run = || {
        let out = estimate_files(&files, &m, &opts, &ScanControl::default(), None).expect("estimate");
        assert_eq!(out.cells.spill_runs(), 0, "nothing spills at this size");
        out
    };
    let out = run();
    assert_eq!((out.files[0].records, out.files[0].rejected), (LINES as u64, 0), "all lines valid");
    bencher
        .counter(BytesCount::new(data.len()))
        .counter(ItemsCount::new(LINES))
        .bench(|| run().cells.to_record_batch().expect("cells").num_rows());
}

#[divan::bench(args = [1, 2], sample_count = 20, sample_size = 1, max_time = 3)]
fn estimate_jsonl(bencher: Bencher, threads: usize) {
    let scan = ScanOptions { threads, block_bytes: 1 << 20, ..ScanOptions::default() };
    bench_estimate(bencher, &format!("estimate-{threads}"), scan);
}

#[divan::bench(sample_count = 20, sample_size = 1, max_time = 3)]
fn estimate_jsonl_defaults(bencher: Bencher) {
    bench_estimate(bencher, "estimate-defaults", ScanOptions::default());
}
