//! End-to-end engine time on real files, without Python or the ledger:
//! `cargo run -p wattledger-engine --release --example estimate -- CONFIG GRID THREADS FILE...`.
//! Runs `estimate_files` (hashing on, as an ingest does) three times and prints each wall time,
//! CPU time and the number of cells, so an engine change can be measured in seconds, not a wheel build.

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
        let c = cpu_seconds();
        let out = estimate_files(&files, &m, &opts, &ScanControl::default(), None).expect("estimate");
        let records: u64 = out.files.iter().map(|f| f.records).sum();
        let scanned = t.elapsed().as_secs_f64();
        // The final merge, as the ledger reads it (each cell once).
        let (spilled, runs) = (out.cells.spilled_cells(), out.cells.spill_runs());
        let cells: usize = out.cells.batches().map(|b| b.expect("merge").num_rows()).sum();
        println!(
            "run {run}: {:.3} s ({scanned:.3} s scan), {:.3} CPU-s, {records} records, {cells} cells, \
             {spilled} cells spilled in {runs} files",
            t.elapsed().as_secs_f64(),
            cpu_seconds() - c,
        );
    }
    let _ = std::fs::remove_dir_all(&spill);
}

/// User + system CPU time of this process so far (every thread): on a shared machine it is far
/// steadier than wall time, and it is what a change that moves work between threads must save.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}
