//! One estimate run end to end: scan the inputs into per-thread aggregate sinks (the kernel),
//! gather their tables and what they spilled under the memory budget, and hand back every cell
//! of the run, to be merged partition by partition as it is read ([`Cells`]). This is the only place that wires readers to the kernel, so the binding,
//! the benches and the tests all run the same path.
//!
//! One acceptance rule (issue 11, point 4): the scan reads and checks every canonical column,
//! exactly as `validate` does, whether or not the run needs the value (`request_id` without
//! dedupe, say). So a record is accepted here exactly when `validate` accepts it; dedupe only
//! drops repeats among accepted records, and counts them apart (`duplicates`), never as rejects.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use rustc_hash::FxHashSet;

use crate::attribution::{Attribution, ClaimSink};
use crate::cells::Cells;
use crate::columns::ColumnMap;
use crate::config::Config;
use crate::counters::NodeEnergy;
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::kernel::{AggregateSink, Methodology, Tap, DEFAULT_MAX_NAMES};
use crate::names::NameKind;
use crate::per_record::{BatchOut, Ordered, PerRecordSink, RowTap};
use crate::readers::{scan_batches, scan_files, CanonicalSink, FileStats, ScanControl, ScanOptions};
use crate::record::{Loc, Record, RecordSink};
use crate::rejects::RejectsWriter;
use crate::remote::StorageOptions;
use crate::source::InputFile;
use crate::spill::{Partitioner, SpillStore};

/// Default for [`EstimateOptions::memory_budget_cells`]. A cell costs about 200 bytes in the
/// worker tables, so this bounds them at about 13 MB. A night's aggregate (tens of thousands of
/// cells) stays in memory; a year's cells go through the spill files, and there a small table
/// is faster than a large one (it stays in cache): measured on 10M records over a year, 2
/// threads, 65,536 against 250,000 cells took 12% less CPU in random order and 7% less in time
/// order, with 55 MB less peak memory (`docs/bounds.md`).
pub const DEFAULT_MEMORY_BUDGET_CELLS: usize = 65_536;

#[derive(Debug, Clone)]
pub struct EstimateOptions {
    pub scan: ScanOptions,
    /// Hourly cells kept in memory across all worker threads before flushing to spill files.
    pub memory_budget_cells: usize,
    /// Where spill files go when the budget is exceeded (each is deleted once the run's
    /// [`Cells`] are dropped).
    pub spill_dir: Option<PathBuf>,
    /// Count each `request_id` once per run (memory grows with the number of distinct ids).
    pub dedupe: bool,
}

pub struct EstimateOutput {
    /// Every cell of the run, merged as it is read: each (source, hour, keys) cell once.
    pub cells: Cells,
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
    /// The run's metered node energy and its shares (`--node-energy`), for the idle energy
    /// and the counter report.
    pub attribution: Option<Arc<Attribution>>,
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

/// What a caller chooses about one run (read, validate or estimate), as the CLI and the
/// Python API spell it. The binding converts its options object to this and nothing else:
/// how the options combine (column-map precedence, the site override, the rejects file
/// committed only on success) is decided here.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `canonical=source` rules (`--column`), applied after the pack's `[columns]` and the preset.
    pub columns: Vec<String>,
    /// A named column preset (`--preset`).
    pub preset: Option<String>,
    /// Where to write rejected records (JSON Lines); the file is complete only if the run is.
    pub rejects: Option<PathBuf>,
    /// Worker threads; 0 = all cores.
    pub threads: usize,
    /// See [`EstimateOptions::memory_budget_cells`].
    pub memory_budget_cells: usize,
    /// See [`EstimateOptions::spill_dir`].
    pub spill_dir: Option<PathBuf>,
    /// See [`EstimateOptions::dedupe`].
    pub dedupe: bool,
    /// Hash each log file as stored (estimates from files only: the ledger's content identity).
    pub hash: bool,
    /// The site of records with neither site nor zone (overrides the pack's `[defaults] site`).
    pub site: Option<String>,
    /// See [`ScanOptions::max_line`] (files only).
    pub max_line: usize,
    /// See [`ScanOptions::max_inflate`] (files only).
    pub max_inflate: u64,
    /// Distinct values per name column (model, site, zone, hardware, status) a run may meet.
    pub max_names: usize,
    /// The `source` of Arrow record batches (they have no path).
    pub source_name: String,
    /// Metered node energy counter files (`--node-energy`): attributed energy (section 10).
    pub node_energy: Vec<PathBuf>,
    /// Settings of the object storage clients (`--storage-option`), for URL inputs.
    pub storage: StorageOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            columns: Vec::new(),
            preset: None,
            rejects: None,
            threads: 0,
            memory_budget_cells: DEFAULT_MEMORY_BUDGET_CELLS,
            spill_dir: None,
            dedupe: false,
            hash: true,
            site: None,
            max_line: crate::readers::DEFAULT_MAX_LINE,
            max_inflate: crate::source::DEFAULT_MAX_INFLATE,
            max_names: DEFAULT_MAX_NAMES,
            source_name: "<arrow>".to_string(),
            node_energy: Vec::new(),
            storage: StorageOptions::default(),
        }
    }
}

impl RunOptions {
    /// The scan of this run: the column map for the pack (`None`: the default mapping) and the
    /// input bounds.
    fn scan(&self, config: Option<&Config>, hash: bool) -> Result<ScanOptions> {
        let base = match config {
            Some(c) => c.column_map()?,
            None => ColumnMap::default(),
        };
        let columns = ColumnMap::for_run(base, self.preset.as_deref(), &self.columns)?;
        Ok(ScanOptions {
            columns,
            threads: self.threads,
            hash,
            max_line: self.max_line,
            max_inflate: self.max_inflate,
            ..ScanOptions::default()
        })
    }

    fn estimate(&self, scan: ScanOptions) -> EstimateOptions {
        EstimateOptions {
            scan,
            memory_budget_cells: self.memory_budget_cells,
            spill_dir: self.spill_dir.clone(),
            dedupe: self.dedupe,
        }
    }
}

/// The methodology of one run, with `site` overriding the pack's `[defaults] site`.
fn methodology(config: &Arc<Config>, grid: &Arc<Grid>, site: Option<&str>, max_names: usize) -> Result<Methodology> {
    let mut m = Methodology::new(config.clone(), grid.clone())?;
    if let Some(s) = site {
        m.set_default_site(s)?;
    }
    m.set_max_names(max_names);
    Ok(m)
}

/// Runs `f` with a writer for `rejects`, committing the file only on success.
fn with_rejects<T>(rejects: Option<&PathBuf>, f: impl FnOnce(Option<&RejectsWriter>) -> Result<T>) -> Result<T> {
    match rejects {
        None => f(None),
        Some(path) => {
            let writer = RejectsWriter::create(path)?;
            let out = f(Some(&writer))?;
            writer.finish()?;
            Ok(out)
        }
    }
}

/// Reads log files without a methodology: `validate` (counts only) and `read` (the records).
/// Built once from the options, so a bad mapping fails before any input is touched.
#[derive(Debug, Clone)]
pub struct Reader {
    scan: ScanOptions,
    rejects: Option<PathBuf>,
    storage: StorageOptions,
}

impl Reader {
    /// `config` only contributes its `[columns]`; nothing is hashed.
    pub fn new(config: Option<&Config>, opts: &RunOptions) -> Result<Reader> {
        Ok(Reader { scan: opts.scan(config, false)?, rejects: opts.rejects.clone(), storage: opts.storage.clone() })
    }

    /// The object storage settings URL inputs of this reader are expanded and read with.
    pub fn storage(&self) -> &StorageOptions {
        &self.storage
    }

    /// Per-file counts, keeping no record (a dry run of the readers).
    pub fn validate(&self, files: &[InputFile], ctl: &ScanControl) -> Result<Vec<FileStats>> {
        with_rejects(self.rejects.as_ref(), |rj| {
            Ok(scan_files(files, &self.scan, ctl, rj, CountingSink::default)?.files)
        })
    }

    /// The records in canonical columns (plus `source` and `line`) and per-file counts. Every
    /// record is held in memory: for small inputs.
    pub fn read(&self, files: &[InputFile], ctl: &ScanControl) -> Result<(RecordBatch, Vec<FileStats>)> {
        with_rejects(self.rejects.as_ref(), |rj| {
            let out = scan_files(files, &self.scan, ctl, rj, CanonicalSink::default)?;
            let batch = out.sink.finish(&out.files)?;
            Ok((batch, out.files))
        })
    }
}

/// Estimate runs with one pack, one grid and one set of options. Each run gets a methodology
/// of its own (it interns the names a run meets), built as checked by [`Estimator::new`].
pub struct Estimator {
    config: Arc<Config>,
    grid: Arc<Grid>,
    site: Option<String>,
    max_names: usize,
    source_name: String,
    reader: Reader,
    files: EstimateOptions,
    batches: EstimateOptions,
    /// Counter files read once, when the estimator is built (a bad file fails before any log).
    node_energy: Option<Arc<NodeEnergy>>,
}

impl Estimator {
    /// Checks everything the options can get wrong before any input is touched: the site
    /// override (a site of the pack), then the column mapping.
    pub fn new(config: Arc<Config>, grid: Arc<Grid>, opts: &RunOptions) -> Result<Estimator> {
        methodology(&config, &grid, opts.site.as_deref(), opts.max_names)?;
        let reader = Reader::new(Some(&config), opts)?;
        let files = opts.estimate(opts.scan(Some(&config), opts.hash)?);
        // Record batches have no stored bytes: nothing to hash, and the file bounds do not apply.
        let unbounded = RunOptions {
            max_line: crate::readers::DEFAULT_MAX_LINE,
            max_inflate: crate::source::DEFAULT_MAX_INFLATE,
            ..opts.clone()
        };
        let batches = opts.estimate(unbounded.scan(Some(&config), false)?);
        let node_energy = match opts.node_energy.as_slice() {
            [] => None,
            paths => {
                if opts.dedupe {
                    return Err(Error::Usage(
                        "--node-energy with --dedupe is not supported yet: de-duplicate the logs first, \
                         or ingest without --node-energy"
                            .into(),
                    ));
                }
                Some(Arc::new(NodeEnergy::from_files(paths)?))
            }
        };
        Ok(Estimator {
            node_energy,
            site: opts.site.clone(),
            max_names: opts.max_names,
            source_name: opts.source_name.clone(),
            reader,
            files,
            batches,
            config,
            grid,
        })
    }

    /// `validate` and `read` with the pack's `[columns]`.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    fn methodology(&self) -> Result<Methodology> {
        methodology(&self.config, &self.grid, self.site.as_deref(), self.max_names)
    }

    /// Estimate from log files. With node energy, the logs are read twice (see
    /// [`crate::attribution`]): the first pass sums the claims, the second is the estimate.
    pub fn estimate_files(&self, files: &[InputFile], ctl: &ScanControl) -> Result<EstimateOutput> {
        let mut m = self.methodology()?;
        if let Some(energy) = &self.node_energy {
            m.set_attribution(Arc::new(self.claims(files, energy, ctl)?));
        }
        with_rejects(self.reader.rejects.as_ref(), |rj| estimate_files(files, &m, &self.files, ctl, rj))
    }

    /// The first pass of attribution: every record's claims summed per metered interval.
    /// Same scan options as the estimate (so the same records are accepted), no rejects file
    /// and no hashing (the second pass does both); the progress counters restart after it.
    fn claims(&self, files: &[InputFile], energy: &Arc<NodeEnergy>, ctl: &ScanControl) -> Result<Attribution> {
        let m = self.methodology()?;
        let scan = ScanOptions { hash: false, ..self.files.scan.clone() };
        let out = scan_files(files, &scan, ctl, None, || ClaimSink::new(&m, energy))?;
        for c in [&ctl.bytes_read, &ctl.records, &ctl.rejects] {
            c.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Attribution::new(energy.clone(), out.sink.denoms))
    }

    /// Estimate from Arrow record batches, named by the options' `source_name`.
    pub fn estimate_batches<I>(&self, batches: I, ctl: &ScanControl) -> Result<EstimateOutput>
    where
        I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send,
    {
        if self.node_energy.is_some() {
            // A stream of batches cannot be read twice; the attribution needs two passes.
            return Err(Error::Usage("node energy applies to log files, not to record batches".into()));
        }
        let m = self.methodology()?;
        let opts = &self.batches;
        with_rejects(self.reader.rejects.as_ref(), |rj| estimate_batches(batches, &self.source_name, &m, opts, ctl, rj))
    }

    /// [`Self::estimate_files`], writing one row per accepted record to `out` (in input
    /// order, `per_record.rs`). `out` is left as the run left it: a caller commits a file
    /// output only when this returns `Ok`.
    pub fn estimate_records_files(
        &self,
        files: &[InputFile],
        ctl: &ScanControl,
        out: &mut dyn BatchOut,
    ) -> Result<EstimateOutput> {
        // The same two passes as `estimate_files`: a row is the contribution its cell gets,
        // attributed energy included.
        let mut m = self.methodology()?;
        if let Some(energy) = &self.node_energy {
            m.set_attribution(Arc::new(self.claims(files, energy, ctl)?));
        }
        with_rejects(self.reader.rejects.as_ref(), |rj| estimate_records_files(files, &m, &self.files, ctl, rj, out))
    }

    /// [`Self::estimate_batches`], writing one row per accepted record to `out`.
    pub fn estimate_records_batches<I>(
        &self,
        batches: I,
        ctl: &ScanControl,
        out: &mut dyn BatchOut,
    ) -> Result<EstimateOutput>
    where
        I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send,
    {
        if self.node_energy.is_some() {
            return Err(Error::Usage("node energy applies to log files, not to record batches".into()));
        }
        let m = self.methodology()?;
        let opts = &self.batches;
        with_rejects(self.reader.rejects.as_ref(), |rj| {
            estimate_records_batches(batches, &self.source_name, &m, opts, ctl, rj, out)
        })
    }
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
    let out = scan_files(files, &opts.scan, ctl, rejects, || run.sink(methodology))?;
    run.finish(out.files, out.sink.duplicates, out.sink.inner, methodology)
}

/// [`estimate_files`] that also writes one row per accepted record to `out`, in input order
/// (`per_record.rs`); the cells are the same run's.
pub fn estimate_records_files(
    files: &[InputFile],
    methodology: &Methodology,
    opts: &EstimateOptions,
    ctl: &ScanControl,
    rejects: Option<&RejectsWriter>,
    out: &mut dyn BatchOut,
) -> Result<EstimateOutput> {
    let names = files.iter().map(|f| f.path.to_string_lossy().into_owned()).collect();
    let run = Run::new(opts, names);
    let order = Ordered::new(out, crate::threads::worker_threads(opts.scan.threads));
    let out = scan_files(files, &opts.scan, ctl, rejects, || run.record_sink(methodology, &order))?;
    order.finish()?;
    run.finish(out.files, out.sink.duplicates, out.sink.inner.into_inner(), methodology)
}

/// [`estimate_batches`] with one row per accepted record to `out`, in input order.
pub fn estimate_records_batches<I>(
    batches: I,
    source_name: &str,
    methodology: &Methodology,
    opts: &EstimateOptions,
    ctl: &ScanControl,
    rejects: Option<&RejectsWriter>,
    out: &mut dyn BatchOut,
) -> Result<EstimateOutput>
where
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send,
{
    let run = Run::new(opts, vec![source_name.to_string()]);
    let order = Ordered::new(out, crate::threads::worker_threads(opts.scan.threads));
    let out = scan_batches(batches, source_name, &opts.scan, ctl, rejects, || run.record_sink(methodology, &order))?;
    order.finish()?;
    run.finish(out.files, out.sink.duplicates, out.sink.inner.into_inner(), methodology)
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
    let out = scan_batches(batches, source_name, &opts.scan, ctl, rejects, || run.sink(methodology))?;
    run.finish(out.files, out.sink.duplicates, out.sink.inner, methodology)
}

/// What the sinks of one run share: source names, the spiller, the dedupe set, and each
/// sink's share of the memory budget.
struct Run {
    names: Arc<Vec<String>>,
    spiller: SpillStore,
    seen: Option<SeenIds>,
    cells_per_sink: usize,
}

impl Run {
    fn new(opts: &EstimateOptions, names: Vec<String>) -> Run {
        let threads = crate::threads::worker_threads(opts.scan.threads);
        let spill_dir = opts.spill_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("wattledger-spill-{}-{}", std::process::id(), unique()))
        });
        let partitioner = Partitioner::new(&names);
        Run {
            names: Arc::new(names),
            spiller: SpillStore::new(spill_dir, partitioner),
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

    /// A per-record sink: the aggregate sink with a [`RowTap`], its blocks handed to `order`.
    fn record_sink<'a, 'o>(
        &'a self,
        methodology: &'a Methodology,
        order: &'a Ordered<'o>,
    ) -> DedupeSink<'a, PerRecordSink<'a, 'o>> {
        let tap = RowTap::new(self.names.clone());
        let inner =
            AggregateSink::with_tap(methodology, self.names.clone(), Some(&self.spiller), self.cells_per_sink, tap);
        DedupeSink { inner: PerRecordSink::new(inner, order), seen: self.seen.as_ref(), duplicates: 0 }
    }

    fn finish<T: Tap>(
        &self,
        files: Vec<FileStats>,
        duplicates: u64,
        sink: AggregateSink<'_, T>,
        m: &Methodology,
    ) -> Result<EstimateOutput> {
        let (cells, notes) = sink.finish_with_notes()?;
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
            cells,
            files,
            duplicates,
            names,
            warnings,
            estimated_kwh: notes.estimated_kwh,
            attribution: m.attribution().cloned(),
        })
    }
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

    // Arrow rows go to the inner sink as it takes them; with dedupe on, one record at a time
    // through the check above.
    const COLUMNAR: bool = S::COLUMNAR;

    fn rows(&mut self, rows: &crate::rows::Rows<'_>) {
        match self.seen {
            None => self.inner.rows(rows),
            Some(_) => rows.each_record(self),
        }
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        self.duplicates += other.duplicates;
        self.inner.merge(other.inner)
    }

    fn end_block(&mut self) -> Result<()> {
        self.inner.end_block()
    }

    const ORDERED: bool = S::ORDERED;

    fn begin_block(&mut self, seq: u64) {
        self.inner.begin_block(seq)
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

#[cfg(test)]
mod tests {
    //! The acceptance rule (issue 11, point 4): `validate` (a scan into a `CountingSink`) and
    //! every estimate path, with and without dedupe, accept and reject the same records, line by
    //! line and for the same reasons.

    use super::*;
    use crate::config::Config;
    use crate::grid::Grid;
    use crate::source::expand_inputs;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{ArrayRef, BooleanArray, Int64Array, ListArray, StringArray, TimestampMicrosecondArray};
    use std::collections::BTreeMap;

    const T0: &str = "2025-06-01T00:10:00Z";

    /// JSON lines: good ones, repeats of an id, and one bad value in every canonical column,
    /// including the ones an estimate does not need.
    fn jsonl_lines() -> Vec<String> {
        let base = |extra: &str| format!(r#"{{"ts":"{T0}","model":"m","zone":"DE","input_tokens":10{extra}}}"#);
        let mut lines = vec![base(r#","request_id":"a""#), base(r#","request_id":"a""#), base("")];
        for extra in [
            r#","request_id":{"x":1}"#,
            r#","request_id":[1]"#,
            r#","request_id":true"#,
            r#","request_id":123456789012345678901234567890"#, // a number's text is an id
            r#","status":{"code":2}"#,
            r#","status":false"#,
            r#","status":500"#,
            r#","cache_hit":"maybe""#,
            r#","cache_hit":2"#,
            r#","cache_hit":[true]"#,
            r#","cache_hit":1"#,
            r#","site":{"a":1}"#,
            r#","hardware":[1]"#,
            r#","gpus":1.5"#,
            r#","gpus":2000000"#,
            r#","energy_j":1e308,"weight":1e308"#,
            r#","weight":1e13"#,
            r#","duration_s":1e9"#,
            r#","output_tokens":1000000000001"#,
            r#","energy_j":1e15,"weight":1e12"#, // at the bounds: accepted
        ] {
            lines.push(base(extra));
        }
        lines.push(format!(r#"{{"ts":"{T0}","model":"m","request_id":"b"}}"#));
        lines.push(format!(r#"{{"ts":"{T0}","model":"m","request_id":"b"}}"#));
        lines
    }

    fn csv_text() -> Vec<u8> {
        let mut t = b"ts,model,zone,request_id,status,cache_hit,weight\n".to_vec();
        for row in [
            &b"2025-06-01T00:10:00Z,m,DE,a,ok,true,1\n"[..],
            b"2025-06-01T00:10:00Z,m,DE,a,ok,,\n",
            b"2025-06-01T00:10:00Z,m,DE,\xff\xfe,ok,,\n", // request_id not UTF-8
            b"2025-06-01T00:10:00Z,m,DE,c,\xff,,\n",      // status not UTF-8
            b"2025-06-01T00:10:00Z,m,DE,d,ok,maybe,\n",
            b"2025-06-01T00:10:00Z,m,DE,e,ok,,1e300\n",
        ] {
            t.extend_from_slice(row);
        }
        t
    }

    /// Parquet: request_id as a list (bad where not null), cache flags as integers.
    fn parquet_batch() -> RecordBatch {
        let n = 6;
        let ts: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![1_748_736_600_000_000; n]).with_timezone("UTC"));
        let model: ArrayRef = Arc::new(StringArray::from(vec!["m"; n]));
        let ids: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            None,
            Some(vec![Some(1)]),
            None,
            None,
            Some(vec![]),
            None,
        ]));
        let cache: ArrayRef = Arc::new(Int64Array::from(vec![Some(0), Some(1), Some(2), None, None, Some(-1)]));
        let flag: ArrayRef = Arc::new(BooleanArray::from(vec![None, None, None, Some(true), None, None]));
        RecordBatch::try_from_iter([
            ("ts", ts),
            ("model", model),
            ("request_id", ids),
            ("cache_hit", cache),
            ("status", flag),
        ])
        .unwrap()
    }

    fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
        let file = std::fs::File::create(path).unwrap();
        let mut w = ::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
    }

    /// (source, line, reason) of every reject, sorted.
    fn rejects(path: &std::path::Path) -> Vec<(String, u64, String)> {
        let text = std::fs::read_to_string(path).unwrap();
        let mut out: Vec<(String, u64, String)> = text
            .lines()
            .map(|l| {
                let field = |k: &str| {
                    let start = l.find(&format!("\"{k}\": ")).unwrap() + k.len() + 4;
                    let rest = &l[start..];
                    let end = if let Some(r) = rest.strip_prefix('"') {
                        r.find('"').unwrap() + 2
                    } else {
                        rest.find(',').unwrap()
                    };
                    rest[..end].trim_matches('"').to_string()
                };
                (field("source"), field("line").parse().unwrap(), field("reason"))
            })
            .collect();
        out.sort();
        out
    }

    fn counts(files: &[FileStats]) -> Vec<(u64, u64, BTreeMap<String, u64>)> {
        files.iter().map(|f| (f.records, f.rejected, f.rejects.clone())).collect()
    }

    /// Per-record rows with node energy are the contributions the cells get: the same two
    /// passes, so a request on a metered node is `attributed` in both, with the same share.
    #[test]
    fn per_record_rows_attribute_node_energy_as_the_cells_do() {
        use arrow_array::types::Float64Type;
        use arrow_array::Array;
        let t = crate::testutil::tempdir().unwrap();
        let dir = t.path();
        // n1: 54 kJ in 10:00-10:01 over two requests (30 and 10 GPU-seconds), 12 kJ idle after.
        std::fs::write(
            dir.join("c.csv"),
            "timestamp,__name__,Hostname,gpu,value\n\
             2025-06-01T10:00:00Z,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,0,0\n\
             2025-06-01T10:01:00Z,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,0,54000000\n\
             2025-06-01T10:02:00Z,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,0,66000000\n",
        )
        .unwrap();
        let rec = |ts: &str, node: &str, d: f64| {
            format!(r#"{{"ts":"{ts}","model":"m","zone":"DE","node":"{node}","duration_s":{d},"output_tokens":10}}"#)
        };
        let log = [
            rec("2025-06-01T10:00:40Z", "n1", 30.0),
            rec("2025-06-01T10:00:50Z", "n1", 10.0),
            rec("2025-06-01T10:05:00Z", "n2", 10.0),
        ];
        std::fs::write(dir.join("a.jsonl"), log.join("\n") + "\n").unwrap();
        let files = expand_inputs(&[dir.join("a.jsonl").to_string_lossy().into_owned()]).unwrap();
        let config = Arc::new(Config::from_toml("", "t").unwrap());
        let opts = RunOptions { node_energy: vec![dir.join("c.csv")], threads: 2, ..RunOptions::default() };
        let est = Estimator::new(config, Arc::new(Grid::empty()), &opts).unwrap();
        let ctl = ScanControl::default();
        let cells = est.estimate_files(&files, &ctl).unwrap();
        let attributed_j: f64 = cells.attribution.as_ref().unwrap().node_hours().iter().map(|h| h.attributed_j).sum();
        assert_eq!(attributed_j, 54_000.0);

        let mut rows = crate::per_record::Collect::default();
        est.estimate_records_files(&files, &ctl, &mut rows).unwrap();
        let mut by_method: BTreeMap<String, f64> = BTreeMap::new();
        for b in &rows.0 {
            let method = b.column_by_name("method").unwrap().as_string::<i32>();
            let wh = b.column_by_name("accelerator_wh").unwrap().as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                *by_method.entry(method.value(i).to_string()).or_default() +=
                    if wh.is_null(i) { 0.0 } else { wh.value(i) };
            }
        }
        assert_eq!(by_method.keys().map(String::as_str).collect::<Vec<_>>(), ["attributed", "none"]);
        assert!((by_method["attributed"] - 15.0).abs() < 1e-9, "54 kJ = 15 Wh: {by_method:?}");

        // Record batches cannot be read twice: refused, as for the aggregates.
        let e = est.estimate_records_batches(std::iter::empty(), &ctl, &mut rows).err().unwrap();
        assert!(e.to_string().contains("node energy applies to log files"), "{e}");
    }

    /// The options are checked when a reader or an estimator is built, before any input is
    /// touched; the pack's `[columns]` apply under the preset and the `--column` rules.
    #[test]
    fn options_combine_once_and_fail_before_any_input() {
        let t = crate::testutil::tempdir().unwrap();
        let dir = t.path();
        std::fs::write(dir.join("a.jsonl"), format!("{{\"when\":\"{T0}\",\"engine\":\"m\",\"zone\":\"DE\"}}\n"))
            .unwrap();
        let files = expand_inputs(&[dir.join("a.jsonl").to_string_lossy().into_owned()]).unwrap();
        let config = Arc::new(Config::from_toml("[columns]\nts = \"when\"\nmodel = \"model\"\n", "t").unwrap());
        let grid = Arc::new(Grid::empty());
        let ctl = ScanControl::default();

        let plain = Reader::new(None, &RunOptions::default()).unwrap().validate(&files, &ctl).unwrap();
        assert_eq!((plain[0].records, plain[0].rejected), (0, 1), "no column ts without the pack");
        let rules = RunOptions { columns: vec!["model=engine".into()], ..RunOptions::default() };
        let est = Estimator::new(config.clone(), grid.clone(), &rules).unwrap();
        let read = est.reader().validate(&files, &ctl).unwrap();
        assert_eq!((read[0].records, read[0].rejected), (1, 0), "the pack's ts, the rule's model");
        let out = est.estimate_files(&files, &ctl).unwrap();
        assert_eq!(out.files[0].records, 1);
        assert!(out.files[0].blake3.is_some(), "an estimate from files hashes them by default");
        // A second run starts afresh: each gets its own methodology.
        assert_eq!(est.estimate_files(&files, &ctl).unwrap().names, out.names);

        let bad_site = RunOptions { site: Some("nowhere".into()), columns: vec!["x".into()], ..RunOptions::default() };
        let e = Estimator::new(config.clone(), grid.clone(), &bad_site).err().unwrap();
        assert!(e.to_string().starts_with("--site nowhere: "), "the site is checked first, as before: {e}");
        let bad_rule = RunOptions { columns: vec!["x".into()], ..RunOptions::default() };
        assert!(matches!(Reader::new(Some(&config), &bad_rule), Err(crate::Error::Usage(_))));
    }

    #[test]
    fn estimate_accepts_exactly_what_validate_accepts_with_and_without_dedupe() {
        let t = crate::testutil::tempdir().unwrap();
        let dir = t.path();
        std::fs::write(dir.join("a.jsonl"), jsonl_lines().join("\n") + "\n").unwrap();
        std::fs::write(dir.join("b.csv"), csv_text()).unwrap();
        write_parquet(&dir.join("c.parquet"), &parquet_batch());
        let files = expand_inputs(&[dir.to_string_lossy().into_owned()]).unwrap();
        assert_eq!(files.len(), 3);
        let scan = ScanOptions { threads: 2, block_bytes: 256, ..Default::default() };

        let v_path = dir.join("validate.rejects");
        let w = RejectsWriter::create(&v_path).unwrap();
        let validated = scan_files(&files, &scan, &ScanControl::default(), Some(&w), CountingSink::default).unwrap();
        w.finish().unwrap();
        let v_rejects = rejects(&v_path);
        let v_counts = counts(&validated.files);
        let reasons: Vec<&str> = v_rejects.iter().map(|r| r.2.as_str()).collect();
        for r in [
            "bad value for request_id",
            "bad value for status",
            "bad value for cache_hit",
            "implausible energy_j (above 1e15)",
            "implausible weight (above 1e12)",
            "implausible gpus (above 1e6)",
        ] {
            assert!(reasons.contains(&r), "{r} in {reasons:?}");
        }
        // JSONL: 3 + 20 mutated + 2 lines; 16 of the 20 are bad. CSV: 6 rows, 4 bad. Parquet: 6 rows;
        // row 1 and 4 have a list id, row 2 and 5 a bad flag, row 3 a boolean status.
        assert_eq!(
            v_counts.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(),
            vec![(9, 16), (2, 4), (1, 5)],
            "{v_rejects:#?}"
        );

        let config = Config::from_toml("[defaults]\npue = 1.2\n", "t").unwrap();
        let grid = Grid::from_texts(&[("g", "zone,datetime,g_per_kwh\nDE,2025-06-01T00:00:00Z,300\n")], false).unwrap();
        let m = Methodology::new(Arc::new(config), Arc::new(grid)).unwrap();
        for dedupe in [false, true] {
            let e_path = dir.join(format!("estimate-{dedupe}.rejects"));
            let w = RejectsWriter::create(&e_path).unwrap();
            let opts = EstimateOptions {
                scan: scan.clone(),
                memory_budget_cells: 1000,
                spill_dir: Some(dir.join(format!("spill-{dedupe}"))),
                dedupe,
            };
            let out = estimate_files(&files, &m, &opts, &ScanControl::default(), Some(&w)).unwrap();
            w.finish().unwrap();
            assert_eq!(rejects(&e_path), v_rejects, "dedupe = {dedupe}");
            assert_eq!(counts(&out.files), v_counts, "dedupe = {dedupe}");
            assert_eq!(out.cells.spill_runs(), 0);
            let aggregates = out.cells.to_record_batch().unwrap();
            let counted: i64 =
                aggregates.column_by_name("records").unwrap().as_primitive::<Int64Type>().iter().flatten().sum();
            let read: u64 = out.files.iter().map(|f| f.records).sum();
            // Duplicates are not rejects: they are dropped after acceptance and counted apart
            // ("a" twice in JSONL and twice in CSV: 3 repeats; "b" twice in JSONL: 1).
            assert_eq!(out.duplicates, if dedupe { 4 } else { 0 });
            assert_eq!(counted as u64, read - out.duplicates);
        }
    }
}
