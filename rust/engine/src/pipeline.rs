//! One estimate run end to end: scan the inputs into per-thread aggregate sinks (the kernel),
//! merge them, and hand back the hourly partial aggregates plus what was spilled under the
//! memory budget. This is the only place that wires readers to the kernel, so the binding,
//! the benches and the tests all run the same path.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use rustc_hash::FxHashSet;

use crate::aggregate::Spiller;
use crate::columns::Col;
use crate::error::Result;
use crate::kernel::{AggregateSink, Methodology};
use crate::names::NameKind;
use crate::readers::{scan_batches, scan_files, FileStats, ScanControl, ScanOptions, ScanOutput};
use crate::record::{Loc, Record, RecordSink};
use crate::rejects::RejectsWriter;
use crate::source::InputFile;

/// Default for [`EstimateOptions::memory_budget_cells`]. A cell costs about 250 bytes in the
/// worker tables, so this bounds them at roughly 60 MB; measured on a 10M-record year
/// (1.7M cells), a small table is also faster than a large one (cache locality), and a night's
/// aggregate (tens of thousands of cells) never reaches it.
pub const DEFAULT_MEMORY_BUDGET_CELLS: usize = 250_000;

#[derive(Debug, Clone)]
pub struct EstimateOptions {
    pub scan: ScanOptions,
    /// Hourly cells kept in memory across all worker threads before flushing to spill files.
    pub memory_budget_cells: usize,
    /// Where spill files go when the budget is exceeded (the caller loads and removes them).
    pub spill_dir: Option<PathBuf>,
    /// Count each `request_id` once per run (memory grows with the number of distinct ids).
    pub dedupe: bool,
}

pub struct EstimateOutput {
    /// The cells still in memory at the end (schema: `aggregate::aggregate_schema()`).
    pub aggregates: RecordBatch,
    /// Parquet files with cells flushed during the run; sum them with `aggregates`.
    pub spill_files: Vec<PathBuf>,
    pub files: Vec<FileStats>,
    /// Records skipped as repeats of a `request_id` already seen in this run (`dedupe`).
    pub duplicates: u64,
    /// Raw names resolution changed, per source file, sorted (file, kind, raw).
    pub names: Vec<SourceName>,
    /// Messages for the user (zone case matches, unrecognised status values, the share of
    /// energy priced on estimated grid hours), in a stable order.
    pub warnings: Vec<String>,
    /// Facility energy (kWh) priced on grid hours flagged estimated (a run-level count).
    pub estimated_kwh: f64,
}

/// A raw name of one source file that the ledger stores under another (resolved) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceName {
    /// Index into the run's file list ([`EstimateOutput::files`]).
    pub file: u32,
    pub kind: NameKind,
    pub raw: String,
    pub resolved: String,
    /// Records (unweighted) that carried the raw name.
    pub records: u64,
}

/// Estimate from log files.
pub fn estimate_files(
    files: &[InputFile],
    methodology: &Methodology,
    opts: &EstimateOptions,
    ctl: &ScanControl,
    rejects: Option<&RejectsWriter>,
) -> Result<EstimateOutput> {
    let names = files.iter().map(|f| f.path.to_string_lossy().into_owned()).collect();
    let run = Run::new(opts, names);
    let out = scan_files(files, &kernel_scan(opts), ctl, rejects, || run.sink(methodology))?;
    run.finish(out, methodology)
}

/// Estimate from Arrow record batches (polars, pyarrow, DuckDB, cluster engines).
pub fn estimate_batches<I>(
    batches: I,
    source_name: &str,
    methodology: &Methodology,
    opts: &EstimateOptions,
    ctl: &ScanControl,
    rejects: Option<&RejectsWriter>,
) -> Result<EstimateOutput>
where
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send,
{
    let run = Run::new(opts, vec![source_name.to_string()]);
    let out = scan_batches(batches, source_name, &kernel_scan(opts), ctl, rejects, || run.sink(methodology))?;
    run.finish(out, methodology)
}

/// The scan options with the columns the kernel never uses switched off: `request_id` unless
/// de-duplicating. (`status` is read: it decides a record's outcome, section 10.)
fn kernel_scan(opts: &EstimateOptions) -> ScanOptions {
    let mut scan = opts.scan.clone();
    if !opts.dedupe {
        scan.columns.skip(Col::RequestId);
    }
    scan
}

/// What the sinks of one run share: source names, the spiller, the dedupe set, and each
/// sink's share of the memory budget.
struct Run {
    names: Arc<Vec<String>>,
    spiller: Spiller,
    seen: Option<SeenIds>,
    cells_per_sink: usize,
}

impl Run {
    fn new(opts: &EstimateOptions, names: Vec<String>) -> Run {
        let threads = if opts.scan.threads == 0 { num_cpus() } else { opts.scan.threads };
        let spill_dir = opts.spill_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("wattledger-spill-{}-{}", std::process::id(), unique()))
        });
        Run {
            names: Arc::new(names),
            spiller: Spiller::new(spill_dir),
            seen: opts.dedupe.then(SeenIds::default),
            // Each worker holds its own table, so the budget is shared out between them.
            cells_per_sink: (opts.memory_budget_cells / threads.max(1)).max(1),
        }
    }

    fn sink<'a>(&'a self, methodology: &'a Methodology) -> DedupeSink<'a, AggregateSink<'a>> {
        DedupeSink {
            inner: AggregateSink::new(methodology, self.names.clone(), Some(&self.spiller), self.cells_per_sink),
            seen: self.seen.as_ref(),
            duplicates: 0,
        }
    }

    fn finish(&self, out: ScanOutput<DedupeSink<'_, AggregateSink<'_>>>, m: &Methodology) -> Result<EstimateOutput> {
        let duplicates = out.sink.duplicates;
        let (aggregates, notes) = out.sink.inner.finish_with_notes()?;
        let changes = m.name_changes();
        let mut names: Vec<SourceName> = notes
            .changed
            .iter()
            .filter_map(|(&(file, i), &records)| {
                let c = changes.get(i as usize)?;
                Some(SourceName {
                    file,
                    kind: c.kind,
                    raw: c.raw.to_string(),
                    resolved: c.resolved.to_string(),
                    records,
                })
            })
            .collect();
        names.sort_by(|a, b| (a.file, a.kind, &a.raw).cmp(&(b.file, b.kind, &b.raw)));
        let mut warnings = m.warnings(&notes.unrecognised);
        warnings.extend(m.estimated_warning(notes.estimated_kwh, notes.energy_kwh));
        Ok(EstimateOutput {
            aggregates,
            spill_files: self.spiller.paths(),
            files: out.files,
            duplicates,
            names,
            warnings,
            estimated_kwh: notes.estimated_kwh,
        })
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The set of request ids seen in a run, sharded to keep lock contention low. Ids are kept as
/// 128-bit hashes: at a billion distinct ids the chance of any collision is ~1e-21.
#[derive(Default)]
pub struct SeenIds {
    shards: [Mutex<FxHashSet<u128>>; 16],
}

impl SeenIds {
    /// True the first time an id is offered.
    pub fn first_time(&self, id: &str) -> bool {
        let h = xxhash_rust::xxh3::xxh3_128(id.as_bytes());
        self.shards[(h as usize) & 15].lock().expect("dedupe shard poisoned").insert(h)
    }
}

/// Drops repeats of a `request_id` (when dedupe is on) before the kernel sees them, and counts
/// them so the run summary can say how many were dropped.
pub struct DedupeSink<'m, S> {
    inner: S,
    seen: Option<&'m SeenIds>,
    duplicates: u64,
}

impl<S: RecordSink> RecordSink for DedupeSink<'_, S> {
    #[inline]
    fn record(&mut self, rec: &Record<'_>, loc: Loc) {
        if let (Some(seen), Some(id)) = (self.seen, rec.request_id) {
            if !seen.first_time(id) {
                self.duplicates += 1;
                return;
            }
        }
        self.inner.record(rec, loc)
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        self.duplicates += other.duplicates;
        self.inner.merge(other.inner)
    }

    fn end_block(&mut self) -> Result<()> {
        self.inner.end_block()
    }
}

/// A sink that keeps nothing: `validate` only needs the scan's per-file counts.
#[derive(Default)]
pub struct CountingSink;

impl RecordSink for CountingSink {
    #[inline]
    fn record(&mut self, _rec: &Record<'_>, _loc: Loc) {}

    fn merge(&mut self, _other: Self) -> Result<()> {
        Ok(())
    }
}
