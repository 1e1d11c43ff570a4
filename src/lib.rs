//! Thin PyO3 binding: `wattledger._core`. Converts arguments, releases the GIL around engine
//! work and maps engine errors to named Python exceptions. No methodology here: every number
//! is computed by `wattledger_engine`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3_arrow::{PyArray, PyRecordBatchReader, PyTable};

use wattledger_engine::columns::ColumnMap;
use wattledger_engine::config::Config as EngineConfig;
use wattledger_engine::grid::{Grid as EngineGrid, GridOptions, Resolution};
use wattledger_engine::kernel::{Methodology, DEFAULT_MAX_NAMES};
use wattledger_engine::pipeline::{self, CountingSink, EstimateOptions, EstimateOutput, SourceName};
use wattledger_engine::readers::{self, CanonicalSink, FileStats, ScanControl, ScanOptions};
use wattledger_engine::rejects::RejectsWriter;
use wattledger_engine::source::{self, Compression, Format, InputFile};
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

fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Input { .. } | Error::UnknownFormat { .. } => InputError::new_err(msg),
        Error::Config { .. } => ConfigError::new_err(msg),
        Error::Grid { .. } => GridError::new_err(msg),
        Error::Usage(_) => UsageError::new_err(msg),
        Error::Output { .. } => OutputError::new_err(msg),
        Error::Cancelled => CancelledError::new_err(msg),
        Error::Internal(_) => WattledgerError::new_err(msg),
    }
}

fn arrow_err(e: impl std::fmt::Display) -> PyErr {
    WattledgerError::new_err(format!("arrow: {e}"))
}

/// A parsed, validated methodology pack.
#[pyclass(frozen, module = "wattledger._core")]
struct Config(Arc<EngineConfig>);

#[pymethods]
impl Config {
    #[staticmethod]
    fn from_path(path: PathBuf) -> PyResult<Config> {
        EngineConfig::from_path(&path).map(|c| Config(Arc::new(c))).map_err(to_py)
    }

    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn from_toml(text: &str, origin: &str) -> PyResult<Config> {
        EngineConfig::from_toml(text, origin).map(|c| Config(Arc::new(c))).map_err(to_py)
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
    fn from_paths(py: Python<'_>, paths: Vec<String>, lifecycle: bool, resolution: &str) -> PyResult<Grid> {
        let opts = GridOptions { lifecycle, resolution: Resolution::parse(resolution).map_err(to_py)? };
        py.detach(|| EngineGrid::from_specs(&paths, &opts)).map(|g| Grid(Arc::new(g))).map_err(to_py)
    }

    #[staticmethod]
    fn empty() -> Grid {
        Grid(Arc::new(EngineGrid::empty()))
    }

    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for z in self.0.summary() {
            let d = PyDict::new(py);
            d.set_item("zone", &z.zone)?;
            d.set_item("first_hour", iso_hour(z.first_hour))?;
            d.set_item("last_hour", iso_hour(z.last_hour))?;
            d.set_item("hours_with_value", z.hours_with_value)?;
            d.set_item("hours_missing", z.hours_missing)?;
            d.set_item("hours_estimated", z.hours_estimated)?;
            let gaps: Vec<(String, String)> = z.gaps.iter().map(|&(a, b)| (iso_hour(a), iso_hour(b))).collect();
            d.set_item("gaps", gaps)?;
            d.set_item("mean_g_per_kwh", z.mean_g_per_kwh)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// What reading the files found (duplicates averaged, naive times, a daily grid spread,
    /// estimated hours), one line each naming file and zone, in a stable order.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.0.warnings().to_vec()
    }

    fn to_arrow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = grid_rows_batch(&self.0).map_err(arrow_err)?;
        table(py, batch)
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

    fn progress<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.0;
        let d = PyDict::new(py);
        d.set_item("bytes_total", c.bytes_total.load(Ordering::Relaxed))?;
        d.set_item("bytes_read", c.bytes_read.load(Ordering::Relaxed))?;
        d.set_item("records", c.records.load(Ordering::Relaxed))?;
        d.set_item("rejects", c.rejects.load(Ordering::Relaxed))?;
        Ok(d)
    }

    fn cancel(&self) {
        self.0.cancel.store(true, Ordering::Relaxed);
    }
}

fn control(job: Option<&Bound<'_, Job>>) -> Arc<ScanControl> {
    job.map(|j| j.get().0.clone()).unwrap_or_default()
}

/// The result of an estimate run: hourly partial aggregates plus per-file statistics.
#[pyclass(frozen, module = "wattledger._core")]
struct EstimateResult {
    aggregates: RecordBatch,
    spill_files: Vec<String>,
    files: Vec<FileStats>,
    duplicates: u64,
    names: Vec<SourceName>,
    warnings: Vec<String>,
    estimated_kwh: f64,
}

#[pymethods]
impl EstimateResult {
    #[getter]
    fn files<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        file_stats_list(py, &self.files)
    }

    #[getter]
    fn spill_files(&self) -> Vec<String> {
        self.spill_files.clone()
    }

    /// Records skipped as repeats of a request_id already seen in the run (dedupe).
    #[getter]
    fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Raw names that the pack's aliases (or a zone's case) changed, per source file: dicts
    /// with path, kind (model/site/zone/hardware), raw, resolved, records.
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for n in &self.names {
            let d = PyDict::new(py);
            let path = self.files.get(n.file as usize).map(|f| f.path.as_str()).unwrap_or("");
            d.set_item("path", path)?;
            d.set_item("kind", n.kind.name())?;
            d.set_item("raw", &n.raw)?;
            d.set_item("resolved", &n.resolved)?;
            d.set_item("records", n.records)?;
            out.append(d)?;
        }
        Ok(out)
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

    fn aggregates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        table(py, self.aggregates.clone())
    }

    /// Write the in-memory aggregates to a Parquet file (same schema as the spill files), so a
    /// caller can load everything from files without importing pyarrow.
    fn write_aggregates(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| wattledger_engine::aggregate::write_parquet(&self.aggregates, &path)).map_err(to_py)
    }
}

fn table(py: Python<'_>, batch: RecordBatch) -> PyResult<Bound<'_, PyAny>> {
    let schema = batch.schema();
    PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Jsonl => "jsonl",
        Format::Csv => "csv",
        Format::Parquet => "parquet",
        Format::Arrow => "arrow",
    }
}

fn compression_name(c: Compression) -> Option<&'static str> {
    match c {
        Compression::None => None,
        Compression::Gzip => Some("gzip"),
        Compression::Zstd => Some("zstd"),
    }
}

fn file_stats_list<'py>(py: Python<'py>, files: &[FileStats]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for f in files {
        let d = PyDict::new(py);
        d.set_item("path", &f.path)?;
        d.set_item("format", format_name(f.format))?;
        d.set_item("compression", compression_name(f.compression))?;
        d.set_item("size_bytes", f.size_bytes)?;
        d.set_item("sha256", &f.sha256)?;
        // The stored bytes the hash covers (the bytes read): the ledger keeps it as the size.
        d.set_item("hashed_bytes", f.hashed_bytes)?;
        d.set_item("records", f.records)?;
        d.set_item("rejected", f.rejected)?;
        let rejects = PyDict::new(py);
        for (reason, n) in &f.rejects {
            rejects.set_item(reason, n)?;
        }
        d.set_item("rejects", rejects)?;
        d.set_item("blank_lines", f.blank_lines)?;
        // Objects the reader passed over on purpose (e.g. spans that are not GenAI calls).
        d.set_item("skipped", f.skipped)?;
        let skip_reasons = PyDict::new(py);
        for (reason, n) in &f.skip_reasons {
            skip_reasons.set_item(reason, n)?;
        }
        d.set_item("skip_reasons", skip_reasons)?;
        let cols: Vec<&str> = f.columns_found.iter().map(|c| c.name()).collect();
        d.set_item("columns_found", cols)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Config `[columns]`, then the preset, then explicit `canonical=source` rules: the most
/// specific wins.
fn column_map(config: Option<&EngineConfig>, preset: Option<&str>, rules: &[String]) -> PyResult<ColumnMap> {
    let mut map = match config {
        Some(c) => c.column_map().map_err(to_py)?,
        None => ColumnMap::default(),
    };
    if let Some(p) = preset {
        map.apply_preset(p).map_err(to_py)?;
    }
    for r in rules {
        map.set_rule(r).map_err(to_py)?;
    }
    Ok(map)
}

fn scan_options(columns: ColumnMap, threads: usize, hash: bool, max_line: usize, max_inflate: u64) -> ScanOptions {
    ScanOptions { columns, threads, block_bytes: 8 << 20, hash, max_line, max_inflate }
}

/// Runs `f` with an optional rejects writer, committing the rejects file only on success.
fn with_rejects<T>(
    rejects: Option<PathBuf>,
    f: impl FnOnce(Option<&RejectsWriter>) -> Result<T, Error>,
) -> Result<T, Error> {
    match rejects {
        None => f(None),
        Some(path) => {
            let writer = RejectsWriter::create(&path)?;
            let out = f(Some(&writer))?;
            writer.finish()?;
            Ok(out)
        }
    }
}

/// List the inputs with the GIL released, stopping on Ctrl-C: on the main thread by checking
/// Python's signals (at most every 20 ms, so a tree of a million entries is not slowed), in a
/// job's worker thread by its cancel flag. A huge tree or a hung network mount must not leave
/// the process deaf to Ctrl-C.
fn expand(py: Python<'_>, inputs: &[String], ctl: Option<&ScanControl>) -> PyResult<Vec<InputFile>> {
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
        source::expand_inputs_until(inputs, &cancel)
    });
    if let Some(e) = interrupted.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e); // KeyboardInterrupt, raised where the user pressed Ctrl-C
    }
    out.map_err(to_py)
}

#[pyfunction]
fn expand_inputs<'py>(py: Python<'py>, inputs: Vec<String>) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for f in expand(py, &inputs, None)? {
        let d = PyDict::new(py);
        d.set_item("path", f.path.to_string_lossy())?;
        d.set_item("format", format_name(f.format))?;
        d.set_item("compression", compression_name(f.compression))?;
        d.set_item("size_bytes", f.size)?;
        out.append(d)?;
    }
    Ok(out)
}

#[pyfunction]
#[pyo3(signature = (inputs, *, columns = Vec::new(), preset = None, config = None, rejects = None, threads = 0,
    max_line = readers::DEFAULT_MAX_LINE, max_inflate = source::DEFAULT_MAX_INFLATE, job = None))]
#[allow(clippy::too_many_arguments)]
fn read_logs<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    columns: Vec<String>,
    preset: Option<&str>,
    config: Option<&Bound<'py, Config>>,
    rejects: Option<PathBuf>,
    threads: usize,
    max_line: usize,
    max_inflate: u64,
    job: Option<&Bound<'py, Job>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyList>)> {
    let map = column_map(config.map(|c| &*c.get().0), preset, &columns)?;
    let ctl = control(job);
    let files = expand(py, &inputs, Some(&ctl))?;
    let opts = scan_options(map, threads, false, max_line, max_inflate);
    let (batch, stats) = py
        .detach(|| {
            with_rejects(rejects, |rj| {
                let out = readers::scan_files(&files, &opts, &ctl, rj, CanonicalSink::default)?;
                let batch = out.sink.finish(&out.files)?;
                Ok((batch, out.files))
            })
        })
        .map_err(to_py)?;
    Ok((table(py, batch)?, file_stats_list(py, &stats)?))
}

#[pyfunction]
#[pyo3(signature = (inputs, *, columns = Vec::new(), preset = None, config = None, rejects = None, threads = 0,
    max_line = readers::DEFAULT_MAX_LINE, max_inflate = source::DEFAULT_MAX_INFLATE, job = None))]
#[allow(clippy::too_many_arguments)]
fn validate<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    columns: Vec<String>,
    preset: Option<&str>,
    config: Option<&Bound<'py, Config>>,
    rejects: Option<PathBuf>,
    threads: usize,
    max_line: usize,
    max_inflate: u64,
    job: Option<&Bound<'py, Job>>,
) -> PyResult<Bound<'py, PyList>> {
    let map = column_map(config.map(|c| &*c.get().0), preset, &columns)?;
    let ctl = control(job);
    let files = expand(py, &inputs, Some(&ctl))?;
    let opts = scan_options(map, threads, false, max_line, max_inflate);
    let stats = py
        .detach(|| {
            with_rejects(rejects, |rj| Ok(readers::scan_files(&files, &opts, &ctl, rj, CountingSink::default)?.files))
        })
        .map_err(to_py)?;
    file_stats_list(py, &stats)
}

fn methodology(config: &Config, grid: &Grid) -> PyResult<Methodology> {
    Methodology::new(config.0.clone(), grid.0.clone()).map_err(to_py)
}

/// The methodology of an estimate run, with `--site` (the site of records that carry neither
/// site nor zone) overriding the pack's `[defaults] site`.
fn run_methodology(config: &Config, grid: &Grid, site: Option<&str>, max_names: usize) -> PyResult<Methodology> {
    let mut m = methodology(config, grid)?;
    if let Some(s) = site {
        m.set_default_site(s).map_err(to_py)?;
    }
    m.set_max_names(max_names);
    Ok(m)
}

fn result(out: EstimateOutput) -> EstimateResult {
    EstimateResult {
        aggregates: out.aggregates,
        spill_files: out.spill_files.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
        files: out.files,
        duplicates: out.duplicates,
        names: out.names,
        warnings: out.warnings,
        estimated_kwh: out.estimated_kwh,
    }
}

#[pyfunction]
#[pyo3(signature = (inputs, config, grid, *, columns = Vec::new(), preset = None, rejects = None, threads = 0,
    memory_budget_cells = pipeline::DEFAULT_MEMORY_BUDGET_CELLS, spill_dir = None, dedupe = false, hash = true,
    site = None, max_line = readers::DEFAULT_MAX_LINE, max_inflate = source::DEFAULT_MAX_INFLATE,
    max_names = DEFAULT_MAX_NAMES, job = None))]
#[allow(clippy::too_many_arguments)]
fn estimate_files(
    py: Python<'_>,
    inputs: Vec<String>,
    config: &Bound<'_, Config>,
    grid: &Bound<'_, Grid>,
    columns: Vec<String>,
    preset: Option<&str>,
    rejects: Option<PathBuf>,
    threads: usize,
    memory_budget_cells: usize,
    spill_dir: Option<PathBuf>,
    dedupe: bool,
    hash: bool,
    site: Option<&str>,
    max_line: usize,
    max_inflate: u64,
    max_names: usize,
    job: Option<&Bound<'_, Job>>,
) -> PyResult<EstimateResult> {
    let m = run_methodology(config.get(), grid.get(), site, max_names)?;
    let map = column_map(Some(&config.get().0), preset, &columns)?;
    let ctl = control(job);
    let files = expand(py, &inputs, Some(&ctl))?;
    let scan = scan_options(map, threads, hash, max_line, max_inflate);
    let opts = EstimateOptions { scan, memory_budget_cells, spill_dir, dedupe };
    py.detach(|| with_rejects(rejects, |rj| pipeline::estimate_files(&files, &m, &opts, &ctl, rj)))
        .map(result)
        .map_err(to_py)
}

#[pyfunction]
#[pyo3(signature = (data, config, grid, *, source_name = "<arrow>", columns = Vec::new(), preset = None, rejects = None,
    threads = 0, memory_budget_cells = pipeline::DEFAULT_MEMORY_BUDGET_CELLS, spill_dir = None, dedupe = false,
    site = None, max_names = DEFAULT_MAX_NAMES, job = None))]
#[allow(clippy::too_many_arguments)]
fn estimate_arrow(
    py: Python<'_>,
    data: PyRecordBatchReader,
    config: &Bound<'_, Config>,
    grid: &Bound<'_, Grid>,
    source_name: &str,
    columns: Vec<String>,
    preset: Option<&str>,
    rejects: Option<PathBuf>,
    threads: usize,
    memory_budget_cells: usize,
    spill_dir: Option<PathBuf>,
    dedupe: bool,
    site: Option<&str>,
    max_names: usize,
    job: Option<&Bound<'_, Job>>,
) -> PyResult<EstimateResult> {
    let m = run_methodology(config.get(), grid.get(), site, max_names)?;
    let map = column_map(Some(&config.get().0), preset, &columns)?;
    let reader = data.into_reader()?;
    let ctl = control(job);
    let scan = scan_options(map, threads, false, readers::DEFAULT_MAX_LINE, source::DEFAULT_MAX_INFLATE);
    let opts = EstimateOptions { scan, memory_budget_cells, spill_dir, dedupe };
    py.detach(|| with_rejects(rejects, |rj| pipeline::estimate_batches(reader, source_name, &m, &opts, &ctl, rj)))
        .map(result)
        .map_err(to_py)
}

/// The first `max_bytes` of a text log (JSON Lines or CSV) after decompression, for naming
/// the columns of a file whose records could not be read.
#[pyfunction]
#[pyo3(signature = (path, max_bytes = 65536))]
fn read_head<'py>(py: Python<'py>, path: String, max_bytes: u64) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    use std::io::Read;
    let files = expand(py, &[path], None)?;
    let mut out = Vec::new();
    if let Some(f) = files.first() {
        let stream = source::open_text(f).map_err(to_py)?;
        stream.take(max_bytes).read_to_end(&mut out).map_err(|e| InputError::new_err(e.to_string()))?;
    }
    Ok(pyo3::types::PyBytes::new(py, &out))
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

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn accelerator_energy_wh<'py>(
    py: Python<'py>,
    config: &Bound<'py, Config>,
    model: PyArray,
    hardware: PyArray,
    site: PyArray,
    input_tokens: PyArray,
    output_tokens: PyArray,
    duration_s: PyArray,
    energy_j: PyArray,
    gpus: PyArray,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let m = methodology(config.get(), &Grid::empty())?;
    let inputs = EnergyInputs {
        model: model.into_inner().0,
        hardware: hardware.into_inner().0,
        site: site.into_inner().0,
        input_tokens: input_tokens.into_inner().0,
        output_tokens: output_tokens.into_inner().0,
        duration_s: duration_s.into_inner().0,
        energy_j: energy_j.into_inner().0,
        gpus: gpus.into_inner().0,
    };
    let (wh, method) = py.detach(|| udf::accelerator_energy_wh(&m, &inputs)).map_err(to_py)?;
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
    m.add("DEFAULT_MAX_NAMES", wattledger_engine::kernel::DEFAULT_MAX_NAMES)?;
    // The aggregate's measure columns in order: Python's ledger schema is checked against it.
    let measures = wattledger_engine::cell::MEASURE_COLUMNS.iter().map(|c| c.name);
    m.add("MEASURE_COLUMNS", pyo3::types::PyTuple::new(py, measures)?)?;
    // The years a record may fall in: the readers reject others, the report accepts these.
    m.add("MIN_YEAR", wattledger_engine::time::MIN_YEAR)?;
    m.add("MAX_YEAR", wattledger_engine::time::MAX_YEAR)?;
    m.add("WattledgerError", py.get_type::<WattledgerError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("GridError", py.get_type::<GridError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add_class::<Config>()?;
    m.add_class::<Grid>()?;
    m.add_class::<Job>()?;
    m.add_class::<EstimateResult>()?;
    m.add_function(wrap_pyfunction!(expand_inputs, m)?)?;
    m.add_function(wrap_pyfunction!(read_logs, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_files, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(accelerator_energy_wh, m)?)?;
    m.add_function(wrap_pyfunction!(read_head, m)?)?;
    m.add_function(wrap_pyfunction!(text_problem, m)?)?;
    m.add_function(wrap_pyfunction!(suggest_mapping, m)?)?;
    Ok(())
}
