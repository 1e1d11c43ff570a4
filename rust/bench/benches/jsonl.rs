//! JSON field scanning: the JSON Lines reader (block cutting, the per-line scanner, value
//! parsing and the shared validation rules) on three log shapes, feeding a sink that keeps
//! nothing (`pipeline::CountingSink`, what `wattledger validate` uses).
//!
//! The line scanner itself is crate-private, so this goes through the public entry point,
//! `readers::scan_files`, with one worker thread on a file in the page cache: the producer
//! thread's read and newline count overlap with the worker's parsing, so the figure is the
//! parsing throughput of one core plus a small per-scan cost (two thread spawns, one channel,
//! the block buffers: see `BLOCK_BYTES`).

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use wattledger_bench::{fleet, jsonl_flat, jsonl_litellm, jsonl_openai, TempFile};
use wattledger_engine::columns::ColumnMap;
use wattledger_engine::pipeline::CountingSink;
use wattledger_engine::readers::{scan_files, ScanControl, ScanOptions};
use wattledger_engine::source::{Compression, Format, InputFile};

/// Lines per scanned file: 5-32 MB depending on the shape.
const LINES: usize = 20_000;

/// Smaller than the 8 MiB default: each scan allocates and zero-fills a couple of block
/// buffers, which on a default-sized block costs about as much as parsing these whole files.
/// At 1 MiB that fixed cost is small and the figure is the per-line work (256 KiB measured
/// the same).
const BLOCK_BYTES: usize = 1 << 20;

fn main() {
    divan::main();
}

struct Input {
    file: TempFile,
    bytes: usize,
    opts: ScanOptions,
}

fn input(shape: &str) -> Input {
    let reqs = fleet(LINES, 24, 42);
    let (data, preset) = match shape {
        "flat" => (jsonl_flat(&reqs), None),
        "litellm" => (jsonl_litellm(&reqs), Some("litellm")),
        "openai" => (jsonl_openai(&reqs), Some("openai")),
        _ => unreachable!("unknown shape {shape}"),
    };
    let mut columns = ColumnMap::default();
    if let Some(p) = preset {
        columns.apply_preset(p).expect("known preset");
    }
    let file = TempFile::new(&format!("{shape}.jsonl"), &data);
    let opts = ScanOptions { columns, threads: 1, block_bytes: BLOCK_BYTES, ..ScanOptions::default() };
    Input { file, bytes: data.len(), opts }
}

fn scan(inp: &Input) -> u64 {
    let f = InputFile::local(inp.file.path().to_path_buf(), Format::Jsonl, Compression::None, inp.bytes as u64);
    let out = scan_files(&[f], &inp.opts, &ScanControl::default(), None, || CountingSink).expect("scan");
    out.files[0].records
}

#[divan::bench(args = ["flat", "litellm", "openai"], sample_count = 30, sample_size = 1, max_time = 3)]
fn scan_jsonl(bencher: Bencher, shape: &str) {
    let inp = input(shape);
    // Every line must come out as a valid record, or the bench measures the reject path.
    assert_eq!(scan(&inp), LINES as u64, "{shape}: all lines valid");
    bencher.counter(BytesCount::new(inp.bytes)).counter(ItemsCount::new(LINES)).bench(|| scan(&inp));
}
