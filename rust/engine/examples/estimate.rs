//! End-to-end engine time on real files, without Python or the ledger:
//! `cargo run -p wattledger-engine --release --example estimate -- CONFIG GRID THREADS FILE...`.
//! Runs `estimate_files` (hashing on, as an ingest does) three times and prints each wall time
//! and the number of cells, so an engine change can be measured in seconds, not a wheel build.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use wattledger_engine::config::Config;
use wattledger_engine::grid::Grid;
use wattledger_engine::kernel::Methodology;
use wattledger_engine::pipeline::{estimate_files, EstimateOptions, DEFAULT_MEMORY_BUDGET_CELLS};
use wattledger_engine::readers::{ScanControl, ScanOptions};
use wattledger_engine::source::expand_inputs;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: estimate CONFIG GRID THREADS FILE...");
        std::process::exit(2);
    }
    let config = Config::from_path(&PathBuf::from(&args[0])).expect("config");
    let grid = Grid::from_paths(&[PathBuf::from(&args[1])], false).expect("grid");
    let threads: usize = args[2].parse().expect("threads");
    let files = expand_inputs(&args[3..]).expect("inputs");
    let m = Methodology::new(Arc::new(config), Arc::new(grid)).expect("methodology");
    let spill = std::env::temp_dir().join(format!("wl-estimate-example-{}", std::process::id()));
    std::fs::create_dir_all(&spill).expect("spill dir");
    let opts = EstimateOptions {
        scan: ScanOptions { threads, hash: true, ..Default::default() },
        memory_budget_cells: DEFAULT_MEMORY_BUDGET_CELLS,
        spill_dir: Some(spill.clone()),
        dedupe: false,
    };
    for run in 1..=3 {
        let t = Instant::now();
        let out = estimate_files(&files, &m, &opts, &ScanControl::default(), None).expect("estimate");
        let records: u64 = out.files.iter().map(|f| f.records).sum();
        let scanned = t.elapsed().as_secs_f64();
        // The final merge, as the ledger reads it (each cell once).
        let (spilled, runs) = (out.cells.spilled_cells(), out.cells.spill_runs());
        let cells: usize = out.cells.batches().map(|b| b.expect("merge").num_rows()).sum();
        println!(
            "run {run}: {:.3} s ({scanned:.3} s scan), {records} records, {cells} cells, \
             {spilled} cells spilled in {runs} files",
            t.elapsed().as_secs_f64(),
        );
    }
    let _ = std::fs::remove_dir_all(&spill);
}
