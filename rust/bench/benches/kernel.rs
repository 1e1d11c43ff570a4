//! The per-record kernel: `kernel::AggregateSink::record`, i.e. what a scan worker does with
//! every valid record: resolve the model/site/zone/hardware ids (thread-local cache in front of
//! the shared interner), apply the methodology (energy method, PUE and overheads, grid lookup
//! with fallbacks, uncertainty band) and fold the contribution into its hourly cell.
//!
//! Records are already canonical (no parsing here), drawn like `wattledger.synthetic`'s over
//! one day or one month; each iteration folds them into a fresh sink, so cell creation is
//! included, as it is for the first block a worker sees.

use divan::counter::ItemsCount;
use divan::Bencher;
use std::sync::Arc;
use wattledger_bench::{fleet, methodology};
use wattledger_engine::kernel::{AggregateSink, Methodology};
use wattledger_engine::record::{Loc, Record, RecordSink};

const RECORDS: usize = 100_000;

fn main() {
    divan::main();
}

fn fold(m: &Methodology, names: &Arc<Vec<String>>, recs: &[Record<'_>]) -> usize {
    let mut sink = AggregateSink::new(m, names.clone(), None, usize::MAX);
    for (i, r) in recs.iter().enumerate() {
        sink.record(r, Loc { file: 0, line: i as u64 + 1 });
    }
    sink.aggregate().len()
}

/// `span_hours`: 24 (a day: few cells, hot cache) or 720 (a month: ~30x more cells).
#[divan::bench(args = [24, 720], sample_count = 30, sample_size = 1, max_time = 3)]
fn aggregate_sink_record(bencher: Bencher, span_hours: i64) {
    let m = methodology();
    let names = Arc::new(vec!["bench.jsonl".to_string()]);
    let reqs = fleet(RECORDS, span_hours, 1);
    let recs: Vec<Record<'_>> = reqs.iter().map(|r| r.record()).collect();
    // Warm the shared interner with the names the config lacks, as a long scan would have.
    fold(&m, &names, &recs);
    bencher.counter(ItemsCount::new(RECORDS)).bench(|| fold(&m, &names, &recs));
}
