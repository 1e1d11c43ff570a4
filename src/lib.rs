//! Thin PyO3 binding: `wattledger._core`. It converts and nothing else: Python arguments and
//! an options object to the engine's types, the engine's results to typed classes, engine
//! errors to named Python exceptions (with `path`, `line`, `key`), and it releases the GIL
//! around engine work. How options combine and every number are the engine's
//! (`wattledger_engine::pipeline`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StructArray};
use arrow_schema::{DataType, Field};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use pyo3_arrow::input::AnyArray;
use pyo3_arrow::{PyArray, PyRecordBatchReader, PyTable};

use wattledger_engine::attribution::Attribution;
use wattledger_engine::cells::{self, Cells, LedgerLabels};
use wattledger_engine::config::Config as EngineConfig;
use wattledger_engine::grid::{Grid as EngineGrid, GridOptions, Resolution, ZoneSummary as EngineZoneSummary};
use wattledger_engine::kernel::{Methodology, DEFAULT_MAX_NAMES};
use wattledger_engine::per_record::{self, BatchOut, Collect, ParquetOut};
use wattledger_engine::pipeline::{self, EstimateOutput, RunOptions as EngineRunOptions};
use wattledger_engine::readers::{self, FileStats as EngineFileStats, ScanControl};
use wattledger_engine::remote::{self, RemoteRead, StorageOptions};
use wattledger_engine::source::{self, Compression, InputFile as EngineInputFile};
use wattledger_engine::time::{format_us, US_PER_HOUR};
use wattledger_engine::udf::{self, EnergyInputs};
use wattledger_engine::Error;

create_exception!(_core, WattledgerError, PyException, "Base class of every error the engine raises.");
create_exception!(
    _core,
    InputError,
    WattledgerError,
    "A log file is missing, unreadable, corrupt or of unknown format."
);
create_exception!(_core, ConfigError, WattledgerError, "The methodology pack (TOML) is invalid.");
create_exception!(_core, GridError, WattledgerError, "A grid intensity file is invalid.");
create_exception!(_core, UsageError, WattledgerError, "A bad argument: column mapping, preset, option.");
create_exception!(_core, OutputError, WattledgerError, "An output could not be written.");
create_exception!(_core, CancelledError, WattledgerError, "The run was cancelled.");
create_exception!(
    _core,
    InternalError,
    WattledgerError,
    "A bug in wattledger (a broken invariant of the engine), never bad input: please report it."
);

/// An engine error or a Python one, so that `?` works on both in one function. Engine errors
/// become the named exception of their variant, carrying `path`, `line` and `key` (None where
/// the engine does not know them); the message is the engine's, word for word.
enum CoreError {
    Engine(Error),
    Py(PyErr),
}

type CoreResult<T> = Result<T, CoreError>;

impl From<Error> for CoreError {
    fn from(e: Error) -> Self {
        CoreError::Engine(e)
    }
}

impl From<PyErr> for CoreError {
    fn from(e: PyErr) -> Self {
        CoreError::Py(e)
    }
}

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        match e {
            CoreError::Py(e) => e,
            CoreError::Engine(e) => engine_exception(e),
        }
    }
}

fn engine_exception(e: Error) -> PyErr {
    let msg = e.to_string();
    let (path, line, key) = (e.path(), e.line(), e.key().map(str::to_owned));
    let err = match e {
        Error::Input { .. } | Error::UnknownFormat { .. } => InputError::new_err(msg),
        Error::Config { .. } => ConfigError::new_err(msg),
        Error::Grid { .. } => GridError::new_err(msg),
        Error::Usage(_) => UsageError::new_err(msg),
        Error::Output { .. } => OutputError::new_err(msg),
        Error::Cancelled => CancelledError::new_err(msg),
        Error::Internal(_) => InternalError::new_err(msg),
    };
    Python::attach(|py| {
        let value = err.value(py);
        // Setting an attribute of a fresh exception object cannot fail short of memory; the
        // message alone still says everything, so a failure here is not worth masking it.
        let _ = value.setattr("path", path);
        let _ = value.setattr("line", line);
        let _ = value.setattr("key", key);
    });
    err
}

/// An Arrow conversion of the binding failed: the engine built a batch its own schema refuses.
fn arrow_err(e: impl std::fmt::Display) -> CoreError {
    CoreError::Engine(Error::internal("arrow", e))
}

/// A parsed, validated methodology pack.
#[pyclass(frozen, module = "wattledger._core")]
struct Config(Arc<EngineConfig>);

#[pymethods]
impl Config {
    #[staticmethod]
    fn from_path(path: PathBuf) -> CoreResult<Config> {
        Ok(Config(Arc::new(EngineConfig::from_path(&path)?)))
    }

    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn from_toml(text: &str, origin: &str) -> CoreResult<Config> {
        Ok(Config(Arc::new(EngineConfig::from_toml(text, origin)?)))
    }

    #[getter]
    fn origin(&self) -> &str {
        &self.0.origin
    }

    #[getter]
    fn sha256(&self) -> &str {
        &self.0.sha256
    }

    #[getter]
    fn name(&self) -> &str {
        &self.0.pack.name
    }

    #[getter]
    fn version(&self) -> &str {
        &self.0.pack.version
    }

    #[getter]
    fn text(&self) -> &str {
        &self.0.text
    }

    /// The pack resolved by the engine (defaults applied, where each site value came from,
    /// market fallback, training energy and emissions) as JSON: what the report and the
    /// rollup explain, so they never re-derive a methodology value themselves.
    fn to_json(&self) -> String {
        self.0.to_json()
    }

    fn __repr__(&self) -> String {
        format!("Config(name={:?}, origin={:?}, sha256={:?})", self.0.pack.name, self.0.origin, &self.0.sha256[..12])
    }
}

fn iso_hour(hour: i64) -> String {
    // Whole hours: drop the fractional part format_us writes.
    let s = format_us(hour * US_PER_HOUR);
    format!("{}Z", &s[..19])
}

/// Hourly grid carbon intensity, (zone, hour UTC) -> gCO2e/kWh.
#[pyclass(frozen, module = "wattledger._core")]
struct Grid(Arc<EngineGrid>);

#[pymethods]
impl Grid {
    /// `paths` are `FILE` or `FILE@ZONE` (a zone for a file without a zone column);
    /// `resolution` is the coarsest row spacing accepted: "hour", "day" or "month".
    #[staticmethod]
    #[pyo3(signature = (paths, lifecycle = false, resolution = "hour"))]
    fn from_paths(py: Python<'_>, paths: Vec<String>, lifecycle: bool, resolution: &str) -> CoreResult<Grid> {
        let opts = GridOptions { lifecycle, resolution: Resolution::parse(resolution)? };
        Ok(Grid(Arc::new(py.detach(|| EngineGrid::from_specs(&paths, &opts))?)))
    }

    #[staticmethod]
    fn empty() -> Grid {
        Grid(Arc::new(EngineGrid::empty()))
    }

    fn summary(&self) -> Vec<ZoneSummary> {
        self.0.summary().iter().map(ZoneSummary::from).collect()
    }

    /// What reading the files found (duplicates averaged, naive times, a daily grid spread,
    /// estimated hours), one line each naming file and zone, in a stable order.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.0.warnings().to_vec()
    }

    fn to_arrow<'py>(&self, py: Python<'py>) -> CoreResult<Bound<'py, PyAny>> {
        let batch = grid_rows_batch(&self.0).map_err(arrow_err)?;
        table(py, batch)
    }
}

/// One zone of a grid: its hours (ISO 8601 UTC), coverage, gaps and mean intensity.
#[pyclass(frozen, eq, get_all, module = "wattledger._core")]
#[derive(Clone, PartialEq)]
struct ZoneSummary {
    zone: String,
    first_hour: String,
    last_hour: String,
    hours_with_value: u64,
    hours_missing: u64,
    hours_estimated: u64,
    /// Runs of missing hours, (first, last) inclusive.
    gaps: Vec<(String, String)>,
    mean_g_per_kwh: f64,
}

impl From<&EngineZoneSummary> for ZoneSummary {
    fn from(z: &EngineZoneSummary) -> Self {
        ZoneSummary {
            zone: z.zone.clone(),
            first_hour: iso_hour(z.first_hour),
            last_hour: iso_hour(z.last_hour),
            hours_with_value: z.hours_with_value,
            hours_missing: z.hours_missing,
            hours_estimated: z.hours_estimated,
            gaps: z.gaps.iter().map(|&(a, b)| (iso_hour(a), iso_hour(b))).collect(),
            mean_g_per_kwh: z.mean_g_per_kwh,
        }
    }
}

#[pymethods]
impl ZoneSummary {
    fn __repr__(&self) -> String {
        format!(
            "ZoneSummary(zone={:?}, first_hour={:?}, last_hour={:?}, hours_with_value={}, hours_missing={})",
            self.zone, self.first_hour, self.last_hour, self.hours_with_value, self.hours_missing
        )
    }
}

fn grid_rows_batch(g: &EngineGrid) -> Result<RecordBatch, arrow_schema::ArrowError> {
    use arrow_array::builder::{Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
    let mut zone = StringBuilder::new();
    let mut hour = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut value = Float64Builder::new();
    for (z, h, v) in g.rows() {
        zone.append_value(z);
        hour.append_value(h * US_PER_HOUR);
        value.append_value(v);
    }
    let cols: Vec<ArrayRef> = vec![Arc::new(zone.finish()), Arc::new(hour.finish()), Arc::new(value.finish())];
    RecordBatch::try_from_iter(["zone", "hour", "g_per_kwh"].into_iter().zip(cols))
}

/// Progress and cancel for a running engine call, shared with another Python thread.
#[pyclass(frozen, module = "wattledger._core")]
struct Job(Arc<ScanControl>);

#[pymethods]
impl Job {
    #[new]
    fn new() -> Job {
        Job(Arc::new(ScanControl::default()))
    }

    fn progress(&self) -> Progress {
        let c = &self.0;
        Progress {
            bytes_total: c.bytes_total.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            rejects: c.rejects.load(Ordering::Relaxed),
        }
    }

    fn cancel(&self) {
        self.0.cancel.store(true, Ordering::Relaxed);
    }
}

/// A running call's counts so far (bytes on disk; records and rejects read).
#[pyclass(frozen, get_all, module = "wattledger._core")]
struct Progress {
    bytes_total: u64,
    bytes_read: u64,
    records: u64,
    rejects: u64,
}

#[pymethods]
impl Progress {
    fn __repr__(&self) -> String {
        format!(
            "Progress(bytes_total={}, bytes_read={}, records={}, rejects={})",
            self.bytes_total, self.bytes_read, self.records, self.rejects
        )
    }
}

fn control(job: Option<&Bound<'_, Job>>) -> Arc<ScanControl> {
    job.map(|j| j.get().0.clone()).unwrap_or_default()
}

fn compression_name(c: Compression) -> Option<String> {
    (c != Compression::None).then(|| c.as_str().to_string())
}

/// What reading one input found.
#[pyclass(frozen, get_all, module = "wattledger._core")]
#[derive(Clone)]
struct FileStats {
    path: String,
    format: String,
    compression: Option<String>,
    size_bytes: u64,
    /// Hex BLAKE3 of the stored bytes: the file's identity in the ledger.
    blake3: Option<String>,
    /// The stored bytes the hash covers (the bytes read): the ledger keeps it as the size.
    hashed_bytes: Option<u64>,
    records: u64,
    rejected: u64,
    rejects: BTreeMap<String, u64>,
    blank_lines: u64,
    /// Objects the reader passed over on purpose (e.g. spans that are not GenAI calls).
    skipped: u64,
    skip_reasons: BTreeMap<String, u64>,
    columns_found: Vec<String>,
}

impl From<EngineFileStats> for FileStats {
    fn from(f: EngineFileStats) -> Self {
        FileStats {
            format: f.format.as_str().to_string(),
            compression: compression_name(f.compression),
            columns_found: f.columns_found.iter().map(|c| c.name().to_string()).collect(),
            path: f.path,
            size_bytes: f.size_bytes,
            blake3: f.blake3,
            hashed_bytes: f.hashed_bytes,
            records: f.records,
            rejected: f.rejected,
            rejects: f.rejects,
            blank_lines: f.blank_lines,
            skipped: f.skipped,
            skip_reasons: f.skip_reasons,
        }
    }
}

#[pymethods]
impl FileStats {
    fn __repr__(&self) -> String {
        format!(
            "FileStats(path={:?}, format={:?}, records={}, rejected={})",
            self.path, self.format, self.records, self.rejected
        )
    }
}

fn file_stats(files: Vec<EngineFileStats>) -> Vec<FileStats> {
    files.into_iter().map(FileStats::from).collect()
}

/// A raw name of one source file that the pack's aliases (or a zone's case) changed.
#[pyclass(frozen, get_all, module = "wattledger._core")]
#[derive(Clone)]
struct SourceName {
    path: String,
    /// model, site, zone or hardware.
    kind: String,
    raw: String,
    resolved: String,
    records: u64,
}

#[pymethods]
impl SourceName {
    fn __repr__(&self) -> String {
        format!(
            "SourceName(path={:?}, kind={:?}, raw={:?}, resolved={:?})",
            self.path, self.kind, self.raw, self.resolved
        )
    }
}

/// One log file behind the inputs given (files, directories, globs).
#[pyclass(frozen, get_all, module = "wattledger._core")]
struct InputFile {
    path: String,
    format: String,
    compression: Option<String>,
    size_bytes: u64,
    /// The object's entity tag when listed (object storage only; None when the store gave none).
    etag: Option<String>,
    /// Last modification of an object, microseconds since the epoch (None for local files).
    modified_us: Option<i64>,
    /// Whether this is an object in object storage (`path` is then its URL).
    remote: bool,
}

#[pymethods]
impl InputFile {
    fn __repr__(&self) -> String {
        format!("InputFile(path={:?}, format={:?})", self.path, self.format)
    }
}

/// The result of an estimate run: every hourly cell of the run (merged as it is read out) plus
/// per-file statistics.
#[pyclass(frozen, module = "wattledger._core")]
struct EstimateResult {
    cells: Arc<Cells>,
    files: Vec<FileStats>,
    duplicates: u64,
    names: Vec<SourceName>,
    warnings: Vec<String>,
    estimated_kwh: f64,
    attribution: Option<Arc<Attribution>>,
}

impl From<EstimateOutput> for EstimateResult {
    fn from(out: EstimateOutput) -> Self {
        let files = file_stats(out.files);
        let names = out
            .names
            .into_iter()
            .map(|n| SourceName {
                path: files.get(n.file as usize).map(|f| f.path.clone()).unwrap_or_default(),
                kind: n.kind.name().to_string(),
                raw: n.raw,
                resolved: n.resolved,
                records: n.records,
            })
            .collect();
        EstimateResult {
            cells: Arc::new(out.cells),
            files,
            duplicates: out.duplicates,
            names,
            warnings: out.warnings,
            estimated_kwh: out.estimated_kwh,
            attribution: out.attribution,
        }
    }
}

/// What reading the node energy counters found (`--node-energy`), for the run summary.
#[pyclass(frozen, get_all, module = "wattledger._core")]
struct NodeEnergyReport {
    files: Vec<String>,
    nodes: usize,
    series: u64,
    samples: u64,
    duplicate_samples: u64,
    resets: u64,
    gaps: u64,
    /// The first 1000 resets and gaps: (kind `reset` or `gap`, node, device, start, end
    /// (RFC 3339), joules).
    events: Vec<(String, String, String, String, String, f64)>,
    /// Energy counters read but not used, by metric name.
    skipped: BTreeMap<String, u64>,
}

#[pymethods]
impl NodeEnergyReport {
    fn __repr__(&self) -> String {
        format!("NodeEnergyReport(nodes={}, series={}, events={})", self.nodes, self.series, self.events.len())
    }
}

#[pymethods]
impl EstimateResult {
    #[getter]
    fn files(&self) -> Vec<FileStats> {
        self.files.clone()
    }

    /// Cells the scan flushed to spill files under the memory budget (merged back on reading).
    #[getter]
    fn spilled_cells(&self) -> u64 {
        self.cells.spilled_cells()
    }

    /// Records skipped as repeats of a request_id already seen in the run (dedupe).
    #[getter]
    fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Raw names that the pack's aliases (or a zone's case) changed, per source file.
    #[getter]
    fn names(&self) -> Vec<SourceName> {
        self.names.clone()
    }

    /// The run's warnings (zone case matches, unrecognised status values, the share of energy
    /// priced on estimated grid hours), one line each.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Facility energy (kWh) priced on grid hours flagged estimated.
    #[getter]
    fn estimated_kwh(&self) -> f64 {
        self.estimated_kwh
    }

    /// Metered node energy per node and hour (`node_energy` of the run's options): node, hour,
    /// metered_kwh, attributed_kwh, idle_kwh, intervals, idle_intervals; `None` without.
    fn node_energy<'py>(&self, py: Python<'py>) -> CoreResult<Option<Bound<'py, PyAny>>> {
        match &self.attribution {
            None => Ok(None),
            Some(a) => Ok(Some(table(py, a.node_hours_batch()?)?)),
        }
    }

    /// The counters' report (resets, gaps, skipped metrics); `None` without node energy.
    #[getter]
    fn node_energy_report(&self) -> Option<NodeEnergyReport> {
        let a = self.attribution.as_ref()?;
        let r = &a.energy.report;
        Some(NodeEnergyReport {
            files: r.files.clone(),
            nodes: a.energy.nodes.len(),
            series: r.series,
            samples: r.samples,
            duplicate_samples: r.duplicate_samples,
            resets: r.resets,
            gaps: r.gaps,
            events: r
                .events
                .iter()
                .map(|e| {
                    let t = |us: i64| format!("{}Z", &format_us(us)[..19]);
                    (e.kind.to_string(), e.node.clone(), e.device.clone(), t(e.start_us), t(e.end_us), e.joules)
                })
                .collect(),
            skipped: r.skipped.clone(),
        })
    }

    /// Every cell of the run, merged (each once), as one pyarrow table.
    fn aggregates<'py>(&self, py: Python<'py>) -> CoreResult<Bound<'py, PyAny>> {
        let cells = self.cells.clone();
        let batch = py.detach(move || cells.to_record_batch())?;
        table(py, batch)
    }

    /// The cells as the ledger's `wl_hourly` rows, streamed (an Arrow C stream: pyarrow is not
    /// needed). `source_ids` maps a file's path (`FileStats.path`) to its id in the ledger; the
    /// cells of a file not in it are left out.
    fn ledger_rows(&self, run_id: String, config_sha256: String, source_ids: BTreeMap<String, String>) -> LedgerRows {
        let ids = self.files.iter().map(|f| source_ids.get(&f.path).cloned()).collect();
        LedgerRows { cells: self.cells.clone(), labels: LedgerLabels { run_id, config_sha256, source_ids: ids } }
    }
}

/// `wl_hourly` rows of a run, exported as an Arrow C stream (`__arrow_c_stream__`). Each export
/// merges the cells again from the start, so a consumer may ask more than once.
#[pyclass(frozen, module = "wattledger._core")]
struct LedgerRows {
    cells: Arc<Cells>,
    labels: LedgerLabels,
}

#[pymethods]
impl LedgerRows {
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> CoreResult<Bound<'py, PyCapsule>> {
        Ok(pyo3_arrow::ffi::to_schema_pycapsule(py, cells::ledger_schema().as_ref()).map_err(PyErr::from)?)
    }

    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> CoreResult<Bound<'py, PyCapsule>> {
        let reader = self.cells.clone().ledger_reader(self.labels.clone());
        let schema = cells::ledger_schema();
        let arrays = reader.map(|b| b.map(|b| Arc::new(StructArray::from(b)) as ArrayRef));
        let field = Arc::new(Field::new_struct("", schema.fields().clone(), false));
        let iter = pyo3_arrow::ffi::ArrayIterator::new(arrays, field);
        Ok(pyo3_arrow::ffi::to_stream_pycapsule(py, Box::new(iter), requested_schema).map_err(PyErr::from)?)
    }
}

fn table(py: Python<'_>, batch: RecordBatch) -> CoreResult<Bound<'_, PyAny>> {
    let schema = batch.schema();
    Ok(PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)?)
}

/// List the inputs with the GIL released, stopping on Ctrl-C: on the main thread by checking
/// Python's signals (at most every 20 ms, so a tree of a million entries is not slowed), in a
/// job's worker thread by its cancel flag. A huge tree or a hung network mount must not leave
/// the process deaf to Ctrl-C.
fn expand(
    py: Python<'_>,
    inputs: &[String],
    storage: &StorageOptions,
    ctl: Option<&ScanControl>,
) -> CoreResult<Vec<EngineInputFile>> {
    use std::time::{Duration, Instant};
    let interrupted: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
    let out = py.detach(|| {
        let last = std::cell::Cell::new(Instant::now());
        let cancel = || {
            if ctl.is_some_and(|c| c.cancel.load(Ordering::Relaxed)) {
                return true;
            }
            if last.get().elapsed() < Duration::from_millis(20) {
                return false;
            }
            last.set(Instant::now());
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    *interrupted.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    true
                }
            })
        };
        source::expand_inputs_with(inputs, storage, &cancel)
    });
    if let Some(e) = interrupted.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e.into()); // KeyboardInterrupt, raised where the user pressed Ctrl-C
    }
    Ok(out?)
}

/// Whether an input is an object storage URL (`s3://`, `gs://`, `az://`, `http(s)://`, ...)
/// rather than a local path: the engine's own test, so Python never disagrees with it.
#[pyfunction]
fn is_url(path: &str) -> bool {
    remote::is_url(path)
}

/// `key=value` settings of the object storage clients, checked (an unknown key is an error).
fn storage_options(options: Option<BTreeMap<String, String>>) -> CoreResult<StorageOptions> {
    Ok(StorageOptions::new(options.unwrap_or_default())?)
}

#[pyfunction]
#[pyo3(signature = (inputs, storage_options = None))]
fn expand_inputs(
    py: Python<'_>,
    inputs: Vec<String>,
    storage_options: Option<BTreeMap<String, String>>,
) -> CoreResult<Vec<InputFile>> {
    let files = expand(py, &inputs, &self::storage_options(storage_options)?, None)?;
    Ok(files
        .into_iter()
        .map(|f| InputFile {
            path: f.path.to_string_lossy().into_owned(),
            format: f.format.as_str().to_string(),
            compression: compression_name(f.compression),
            size_bytes: f.size,
            etag: f.remote.as_ref().and_then(|o| o.etag.clone()),
            modified_us: f.remote.as_ref().map(|o| o.modified_us),
            remote: f.remote.is_some(),
        })
        .collect())
}

/// The options of a run as one typed object (keyword-only constructor; every attribute has
/// the engine's default). Converted to `pipeline::RunOptions`, where they are combined.
#[pyclass(frozen, get_all, module = "wattledger._core")]
#[derive(Clone)]
struct RunOptions {
    columns: Vec<String>,
    preset: Option<String>,
    rejects: Option<PathBuf>,
    threads: usize,
    memory_budget_cells: usize,
    spill_dir: Option<PathBuf>,
    dedupe: bool,
    hash: bool,
    site: Option<String>,
    max_line: usize,
    max_inflate: u64,
    max_names: usize,
    source_name: String,
    node_energy: Vec<PathBuf>,
    storage_options: BTreeMap<String, String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        let d = EngineRunOptions::default();
        RunOptions {
            columns: d.columns,
            preset: d.preset,
            rejects: d.rejects,
            threads: d.threads,
            memory_budget_cells: d.memory_budget_cells,
            spill_dir: d.spill_dir,
            dedupe: d.dedupe,
            hash: d.hash,
            site: d.site,
            max_line: d.max_line,
            max_inflate: d.max_inflate,
            max_names: d.max_names,
            source_name: d.source_name,
            node_energy: d.node_energy,
            storage_options: BTreeMap::new(),
        }
    }
}

impl RunOptions {
    /// The engine's options; the storage options were checked when these were made.
    fn engine(&self) -> EngineRunOptions {
        let o = self.clone();
        let storage = StorageOptions::new(o.storage_options).unwrap_or_default();
        EngineRunOptions {
            columns: o.columns,
            preset: o.preset,
            rejects: o.rejects,
            threads: o.threads,
            memory_budget_cells: o.memory_budget_cells,
            spill_dir: o.spill_dir,
            dedupe: o.dedupe,
            hash: o.hash,
            site: o.site,
            max_line: o.max_line,
            max_inflate: o.max_inflate,
            max_names: o.max_names,
            source_name: o.source_name,
            node_energy: o.node_energy,
            storage,
        }
    }
}

/// Sets `field` from a keyword argument, naming the field when the value has the wrong type.
fn set<'py, T: FromPyObjectOwned<'py>>(field: &mut T, name: &str, value: &Bound<'py, PyAny>) -> PyResult<()> {
    *field = value.extract::<T>().map_err(|e| {
        let e: PyErr = e.into();
        PyTypeError::new_err(format!("RunOptions.{name}: {e}"))
    })?;
    Ok(())
}

#[pymethods]
impl RunOptions {
    /// Keyword arguments only, any subset (thirteen named parameters would be a signature no
    /// one reads; the stub lists them with their types).
    #[new]
    #[pyo3(signature = (**kwargs))]
    fn new(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<RunOptions> {
        let mut o = RunOptions::default();
        for (k, v) in kwargs.into_iter().flatten() {
            let k: String = k.extract()?;
            match k.as_str() {
                "columns" => set(&mut o.columns, &k, &v)?,
                "preset" => set(&mut o.preset, &k, &v)?,
                "rejects" => set(&mut o.rejects, &k, &v)?,
                "threads" => set(&mut o.threads, &k, &v)?,
                "memory_budget_cells" => set(&mut o.memory_budget_cells, &k, &v)?,
                "spill_dir" => set(&mut o.spill_dir, &k, &v)?,
                "dedupe" => set(&mut o.dedupe, &k, &v)?,
                "hash" => set(&mut o.hash, &k, &v)?,
                "site" => set(&mut o.site, &k, &v)?,
                "max_line" => set(&mut o.max_line, &k, &v)?,
                "max_inflate" => set(&mut o.max_inflate, &k, &v)?,
                "max_names" => set(&mut o.max_names, &k, &v)?,
                "source_name" => set(&mut o.source_name, &k, &v)?,
                "node_energy" => set(&mut o.node_energy, &k, &v)?,
                "storage_options" => {
                    set(&mut o.storage_options, &k, &v)?;
                    StorageOptions::new(o.storage_options.clone()).map_err(|e| PyErr::from(CoreError::from(e)))?;
                }
                _ => {
                    return Err(PyTypeError::new_err(format!("RunOptions() got an unexpected keyword argument '{k}'")))
                }
            }
        }
        Ok(o)
    }

    fn __repr__(&self) -> String {
        format!(
            "RunOptions(columns={:?}, preset={:?}, site={:?}, threads={})",
            self.columns, self.preset, self.site, self.threads
        )
    }
}

/// Reads log files without a methodology (`validate`, `read`), with the options' mapping and,
/// when a pack is given, its `[columns]`. A bad mapping fails here, before any input is read.
#[pyclass(frozen, module = "wattledger._core")]
struct Reader(pipeline::Reader);

#[pymethods]
impl Reader {
    #[new]
    #[pyo3(signature = (options = None, config = None))]
    fn new(options: Option<&Bound<'_, RunOptions>>, config: Option<&Bound<'_, Config>>) -> CoreResult<Reader> {
        let opts = options.map(|o| o.get().engine()).unwrap_or_default();
        Ok(Reader(pipeline::Reader::new(config.map(|c| &*c.get().0), &opts)?))
    }

    /// Per-file statistics without keeping records.
    #[pyo3(signature = (inputs, job = None))]
    fn validate(
        &self,
        py: Python<'_>,
        inputs: Vec<String>,
        job: Option<&Bound<'_, Job>>,
    ) -> CoreResult<Vec<FileStats>> {
        validate(py, &self.0, &inputs, job)
    }

    /// Canonical records (plus `source` and `line`) and per-file statistics.
    #[pyo3(signature = (inputs, job = None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<String>,
        job: Option<&Bound<'py, Job>>,
    ) -> CoreResult<(Bound<'py, PyAny>, Vec<FileStats>)> {
        read(py, &self.0, &inputs, job)
    }
}

fn validate(
    py: Python<'_>,
    reader: &pipeline::Reader,
    inputs: &[String],
    job: Option<&Bound<'_, Job>>,
) -> CoreResult<Vec<FileStats>> {
    let ctl = control(job);
    let files = expand(py, inputs, reader.storage(), Some(&ctl))?;
    Ok(file_stats(py.detach(|| reader.validate(&files, &ctl))?))
}

fn read<'py>(
    py: Python<'py>,
    reader: &pipeline::Reader,
    inputs: &[String],
    job: Option<&Bound<'py, Job>>,
) -> CoreResult<(Bound<'py, PyAny>, Vec<FileStats>)> {
    let ctl = control(job);
    let files = expand(py, inputs, reader.storage(), Some(&ctl))?;
    let (batch, stats) = py.detach(|| reader.read(&files, &ctl))?;
    Ok((table(py, batch)?, file_stats(stats)))
}

/// Estimate runs with one pack, one grid and one options object. Everything the options can
/// get wrong (the site, the mapping) fails here, before any input is read.
#[pyclass(frozen, module = "wattledger._core")]
struct Estimator(pipeline::Estimator);

#[pymethods]
impl Estimator {
    #[new]
    #[pyo3(signature = (config, grid = None, options = None))]
    fn new(
        config: &Bound<'_, Config>,
        grid: Option<&Bound<'_, Grid>>,
        options: Option<&Bound<'_, RunOptions>>,
    ) -> CoreResult<Estimator> {
        let opts = options.map(|o| o.get().engine()).unwrap_or_default();
        let grid = grid.map_or_else(|| Arc::new(EngineGrid::empty()), |g| g.get().0.clone());
        Ok(Estimator(pipeline::Estimator::new(config.get().0.clone(), grid, &opts)?))
    }

    /// Read log files and apply the methodology.
    #[pyo3(signature = (inputs, job = None))]
    fn estimate_files(
        &self,
        py: Python<'_>,
        inputs: Vec<String>,
        job: Option<&Bound<'_, Job>>,
    ) -> CoreResult<EstimateResult> {
        let ctl = control(job);
        let files = expand(py, &inputs, self.0.reader().storage(), Some(&ctl))?;
        Ok(py.detach(|| self.0.estimate_files(&files, &ctl))?.into())
    }

    /// The same for Arrow record batches (anything exporting an Arrow C stream).
    #[pyo3(signature = (data, job = None))]
    fn estimate_arrow(
        &self,
        py: Python<'_>,
        data: PyRecordBatchReader,
        job: Option<&Bound<'_, Job>>,
    ) -> CoreResult<EstimateResult> {
        let reader = data.into_reader()?;
        let ctl = control(job);
        Ok(py.detach(|| self.0.estimate_batches(reader, &ctl))?.into())
    }

    /// `estimate_files` with one row per accepted record (`PER_RECORD_COLUMNS`), in input
    /// order: the run, and the rows as a pyarrow Table; with `out`, the rows are streamed to
    /// that Parquet file instead (moved into place only if the run succeeds) and the table is
    /// None.
    #[pyo3(signature = (inputs, out = None, job = None))]
    fn estimate_records_files<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<String>,
        out: Option<PathBuf>,
        job: Option<&Bound<'_, Job>>,
    ) -> CoreResult<(EstimateResult, Option<Bound<'py, PyAny>>)> {
        let ctl = control(job);
        let files = expand(py, &inputs, self.0.reader().storage(), Some(&ctl))?;
        records_run(py, out, |o| self.0.estimate_records_files(&files, &ctl, o))
    }

    /// The same for Arrow record batches (anything exporting an Arrow C stream).
    #[pyo3(signature = (data, out = None, job = None))]
    fn estimate_records_arrow<'py>(
        &self,
        py: Python<'py>,
        data: PyRecordBatchReader,
        out: Option<PathBuf>,
        job: Option<&Bound<'_, Job>>,
    ) -> CoreResult<(EstimateResult, Option<Bound<'py, PyAny>>)> {
        let reader = data.into_reader()?;
        let ctl = control(job);
        records_run(py, out, move |o| self.0.estimate_records_batches(reader, &ctl, o))
    }

    /// `Reader.validate` with the pack's `[columns]`.
    #[pyo3(signature = (inputs, job = None))]
    fn validate(
        &self,
        py: Python<'_>,
        inputs: Vec<String>,
        job: Option<&Bound<'_, Job>>,
    ) -> CoreResult<Vec<FileStats>> {
        validate(py, self.0.reader(), &inputs, job)
    }

    /// `Reader.read` with the pack's `[columns]`.
    #[pyo3(signature = (inputs, job = None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<String>,
        job: Option<&Bound<'py, Job>>,
    ) -> CoreResult<(Bound<'py, PyAny>, Vec<FileStats>)> {
        read(py, self.0.reader(), &inputs, job)
    }
}

/// Runs a per-record estimate (GIL released) into a Parquet file at `out` (created before the
/// run, so a bad directory fails first; committed only on success) or into memory.
fn records_run<'py>(
    py: Python<'py>,
    out: Option<PathBuf>,
    run: impl FnOnce(&mut dyn BatchOut) -> Result<EstimateOutput, Error> + Send,
) -> CoreResult<(EstimateResult, Option<Bound<'py, PyAny>>)> {
    match out {
        Some(path) => {
            let mut file = ParquetOut::create(&path, per_record::schema())?;
            let result = py.detach(move || {
                let result = run(&mut file)?;
                file.finish()?;
                Ok::<_, Error>(result)
            })?;
            Ok((result.into(), None))
        }
        None => {
            let mut rows = Collect::default();
            let result = py.detach(|| run(&mut rows))?;
            let table = PyTable::try_new(rows.0, per_record::schema())?.into_pyarrow(py)?;
            Ok((result.into(), Some(table)))
        }
    }
}

/// The first `max_bytes` of a text log (JSON Lines or CSV) after decompression, for naming
/// the columns of a file whose records could not be read.
#[pyfunction]
#[pyo3(signature = (path, max_bytes = 65536))]
fn read_head<'py>(py: Python<'py>, path: String, max_bytes: u64) -> CoreResult<Bound<'py, pyo3::types::PyBytes>> {
    use std::io::Read;
    // Object storage URLs with the environment's settings only: this feeds a hint.
    let files = expand(py, &[path], &StorageOptions::default(), None)?;
    let mut out = Vec::new();
    if let Some(f) = files.first() {
        let stream = source::open_text(f)?;
        stream.take(max_bytes).read_to_end(&mut out).map_err(|e| Error::input(&f.path, e))?;
    }
    Ok(pyo3::types::PyBytes::new(py, &out))
}

/// BLAKE3 (and SHA-256 when asked) of a file's stored bytes in one pass, and how many bytes
/// that was: at most `limit`. The ledger hashes a file before reading it only when a source
/// it holds may be the same file, and needs SHA-256 only for sources recorded before schema 4.
/// An unreadable file raises OSError.
///
/// `path` may be an object storage URL (one object): it is then read by ranges with
/// `storage_options`, and a store error raises the engine's InputError.
#[pyfunction]
#[pyo3(signature = (path, *, sha256 = false, limit = None, storage_options = None))]
fn file_digests(
    py: Python<'_>,
    path: PathBuf,
    sha256: bool,
    limit: Option<u64>,
    storage_options: Option<BTreeMap<String, String>>,
) -> PyResult<(String, Option<String>, u64)> {
    use wattledger_engine::digest;
    let path = path.to_string_lossy().into_owned();
    if remote::is_url(&path) {
        let storage = self::storage_options(storage_options)?;
        let files = expand(py, std::slice::from_ref(&path), &storage, None)?;
        let obj = match files.as_slice() {
            [f] => f.remote.clone().ok_or_else(|| CoreError::from(Error::input(&path, "not an object")))?,
            _ => return Err(CoreError::from(Error::input(&path, "names more than one object")).into()),
        };
        let d = py
            .detach(|| digest::digests_of(RemoteRead::new(obj), sha256, limit))
            .map_err(|e| CoreError::from(Error::input(&path, e.to_string())))?;
        return Ok((d.blake3, d.sha256, d.bytes));
    }
    let p = PathBuf::from(&path);
    let d = py
        .detach(|| digest::file_digests(&p, sha256, limit))
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{path}: {e}")))?;
    Ok((d.blake3, d.sha256, d.bytes))
}

/// Why the head of a text log is not UTF-8, comma-separated text (UTF-16, Windows-1252, a
/// ';'-separated CSV header), with the fix; None when it looks fine. Feeds the "no record could
/// be read" message, with the same words as the grid reader's errors.
#[pyfunction]
#[pyo3(signature = (head, path, csv = false))]
fn text_problem(head: &[u8], path: String, csv: bool) -> Option<String> {
    use wattledger_engine::textcheck;
    let p = std::path::Path::new(&path);
    if let Some((line, msg)) = textcheck::encoding_problem(head, p) {
        return Some(if line > 0 { format!("line {line}: {msg}") } else { msg });
    }
    let text = std::str::from_utf8(head).ok()?;
    let first = text.trim_start_matches('\u{feff}').lines().find(|l| !l.trim().is_empty())?;
    csv.then(|| textcheck::semicolon_problem(first, p, "CSV logs")).flatten()
}

/// A mapping to try when records lack a required column (`try --column ts=timestamp or
/// --preset openai`), from the log's own column names and the canonical columns found; None
/// when nothing fits. Preset knowledge stays in the engine.
#[pyfunction]
fn suggest_mapping(columns_seen: Vec<String>, columns_found: Vec<String>) -> Option<String> {
    let found: Vec<_> = columns_found.iter().filter_map(|c| wattledger_engine::columns::Col::from_name(c)).collect();
    wattledger_engine::presets::suggest_mapping(&columns_seen, &found)
}

/// One column for [`accelerator_energy_wh`]: any Arrow array or stream (a pyarrow array, a
/// Polars series through `__arrow_c_stream__`), imported without a copy; absent = all null.
fn energy_column(name: &str, a: Option<AnyArray>, n: usize, absent: &DataType) -> CoreResult<ArrayRef> {
    let Some(a) = a else { return Ok(arrow_array::new_null_array(absent, n)) };
    let (chunks, field) = a.into_chunked_array().map_err(PyErr::from)?.into_inner();
    Ok(udf::one_array(name, &chunks, field.data_type())?)
}

#[pyfunction]
#[pyo3(signature = (
    config, model, hardware, site, input_tokens, output_tokens, duration_s, energy_j, gpus,
    status = None, cache_hit = None
))]
#[allow(clippy::too_many_arguments)]
fn accelerator_energy_wh<'py>(
    py: Python<'py>,
    config: &Bound<'py, Config>,
    model: AnyArray,
    hardware: Option<AnyArray>,
    site: Option<AnyArray>,
    input_tokens: Option<AnyArray>,
    output_tokens: Option<AnyArray>,
    duration_s: Option<AnyArray>,
    energy_j: Option<AnyArray>,
    gpus: Option<AnyArray>,
    status: Option<AnyArray>,
    cache_hit: Option<AnyArray>,
) -> CoreResult<(Py<PyAny>, Py<PyAny>)> {
    let m = Methodology::new(config.get().0.clone(), Arc::new(EngineGrid::empty()))?;
    let model = energy_column("model", Some(model), 0, &DataType::Utf8)?;
    let n = model.len();
    let inputs = EnergyInputs {
        model,
        hardware: energy_column("hardware", hardware, n, &DataType::Utf8)?,
        site: energy_column("site", site, n, &DataType::Utf8)?,
        input_tokens: energy_column("input_tokens", input_tokens, n, &DataType::Int64)?,
        output_tokens: energy_column("output_tokens", output_tokens, n, &DataType::Int64)?,
        duration_s: energy_column("duration_s", duration_s, n, &DataType::Float64)?,
        energy_j: energy_column("energy_j", energy_j, n, &DataType::Float64)?,
        gpus: energy_column("gpus", gpus, n, &DataType::Int64)?,
        status: energy_column("status", status, n, &DataType::Utf8)?,
        cache_hit: energy_column("cache_hit", cache_hit, n, &DataType::Boolean)?,
    };
    let (wh, method) = py.detach(|| udf::accelerator_energy_wh(&m, &inputs))?;
    let wh = PyArray::from_array_ref(Arc::new(wh)).to_pyarrow(py)?.unbind();
    let method = PyArray::from_array_ref(Arc::new(method)).to_pyarrow(py)?.unbind();
    Ok((wh, method))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_MEMORY_BUDGET_CELLS", pipeline::DEFAULT_MEMORY_BUDGET_CELLS)?;
    m.add("DEFAULT_MAX_LINE", readers::DEFAULT_MAX_LINE)?;
    m.add("DEFAULT_MAX_INFLATE", source::DEFAULT_MAX_INFLATE)?;
    m.add("DEFAULT_MAX_NAMES", DEFAULT_MAX_NAMES)?;
    // The aggregate's measure columns in order: Python's ledger schema is checked against it.
    let measures = wattledger_engine::cell::MEASURE_COLUMNS.iter().map(|c| c.name);
    m.add("MEASURE_COLUMNS", pyo3::types::PyTuple::new(py, measures)?)?;
    // The per-record rows' columns in order (`Estimator.estimate_records_*`).
    let per_record = per_record::schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
    m.add("PER_RECORD_COLUMNS", pyo3::types::PyTuple::new(py, per_record)?)?;
    // The years a record may fall in: the readers reject others, the report accepts these.
    m.add("MIN_YEAR", wattledger_engine::time::MIN_YEAR)?;
    m.add("MAX_YEAR", wattledger_engine::time::MAX_YEAR)?;
    // Every error has path, line and key; None unless the engine set them on the instance (an
    // error raised by Python code, a subclass such as NoRecordsError, has them as None).
    let base = py.get_type::<WattledgerError>();
    for attr in ["path", "line", "key"] {
        base.setattr(attr, py.None())?;
    }
    m.add("WattledgerError", base)?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("GridError", py.get_type::<GridError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add_class::<Config>()?;
    m.add_class::<Grid>()?;
    m.add_class::<ZoneSummary>()?;
    m.add_class::<Job>()?;
    m.add_class::<Progress>()?;
    m.add_class::<RunOptions>()?;
    m.add_class::<Reader>()?;
    m.add_class::<Estimator>()?;
    m.add_class::<EstimateResult>()?;
    m.add_class::<LedgerRows>()?;
    m.add_class::<FileStats>()?;
    m.add_class::<SourceName>()?;
    m.add_class::<NodeEnergyReport>()?;
    m.add_class::<InputFile>()?;
    m.add_function(wrap_pyfunction!(expand_inputs, m)?)?;
    m.add_function(wrap_pyfunction!(is_url, m)?)?;
    m.add_function(wrap_pyfunction!(accelerator_energy_wh, m)?)?;
    m.add_function(wrap_pyfunction!(read_head, m)?)?;
    m.add_function(wrap_pyfunction!(file_digests, m)?)?;
    m.add_function(wrap_pyfunction!(text_problem, m)?)?;
    m.add_function(wrap_pyfunction!(suggest_mapping, m)?)?;
    Ok(())
}
