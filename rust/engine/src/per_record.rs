//! Per-record output (methodology section 10, "Per-record output"): one row per accepted
//! record, its estimate being exactly the contribution its hourly cell receives.
//!
//! No formula here. [`RowTap`] is a [`Tap`] of the aggregate sink: the sink calls
//! [`Methodology::contribution`] once per record, folds the result into the cell and hands the
//! same result to the tap, which appends it to Arrow builders. So a record's row and its cell
//! cannot disagree, on either way into the sink (a record at a time, Arrow rows by column).
//!
//! Order and memory: each worker builds one batch per block; [`Ordered`] puts the blocks back
//! in input order (the scan numbers them, [`RecordSink::ORDERED`]) and hands them to a
//! [`BatchOut`] (a Parquet file, or a list for Python) as soon as they are next. A worker that
//! is ahead waits once [`Ordered`] holds a few blocks, so memory is a few blocks, whatever the
//! input's size. [`ParquetOut`] writes beside its target and renames on success only.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::aggregate::{HAS_CO2E, HAS_ENERGY};
use crate::cell::NO_ID;
use crate::error::{Error, Result};
use crate::kernel::{AggregateSink, Contribution, Methodology, RecordRef, Tap, Usage};
use crate::record::{Loc, Record, RecordSink};
use crate::rows::Rows;

/// The per-record columns, in order (the agreed schema: see `docs/per-record.md`).
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
            let f64 = |n: &str, null: bool| Field::new(n, DataType::Float64, null);
            let i64 = |n: &str, null: bool| Field::new(n, DataType::Int64, null);
            Arc::new(Schema::new(vec![
                utf8("request_id", true),
                Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
                utf8("model", false),
                utf8("site", true),
                utf8("zone", true),
                utf8("hardware", true),
                utf8("method", false),
                f64("accelerator_wh", true),
                f64("accelerator_wh_low", true),
                f64("accelerator_wh_high", true),
                f64("facility_wh", true),
                f64("co2e_location_g", true),
                f64("co2e_market_g", true),
                f64("weight", false),
                i64("input_tokens", true),
                i64("output_tokens", true),
                f64("duration_s", true),
                f64("energy_j", true),
                i64("gpus", false),
                utf8("source", false),
                i64("line", false),
            ]))
        })
        .clone()
}

/// The name of an id, cached per worker (the interner's lock is taken once per id).
fn name_of<'a>(names: &'a mut Vec<Option<Option<Arc<str>>>>, m: &Methodology, id: u32) -> Option<&'a str> {
    if id == NO_ID {
        return None;
    }
    let i = id as usize;
    if names.len() <= i {
        names.resize(i + 1, None);
    }
    names[i].get_or_insert_with(|| m.name(id)).as_deref()
}

/// Builds the rows of one worker's current block.
pub struct RowTap {
    source_names: Arc<Vec<String>>,
    /// Id -> name, filled on first use (the interner's lock is taken once per id per worker).
    names: Vec<Option<Option<Arc<str>>>>,
    request_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    model: StringBuilder,
    site: StringBuilder,
    zone: StringBuilder,
    hardware: StringBuilder,
    method: StringBuilder,
    acc: Float64Builder,
    acc_low: Float64Builder,
    acc_high: Float64Builder,
    facility: Float64Builder,
    co2e_location: Float64Builder,
    co2e_market: Float64Builder,
    weight: Float64Builder,
    input_tokens: Int64Builder,
    output_tokens: Int64Builder,
    duration_s: Float64Builder,
    energy_j: Float64Builder,
    gpus: Int64Builder,
    source: StringBuilder,
    line: Int64Builder,
    rows: usize,
}

impl RowTap {
    pub fn new(source_names: Arc<Vec<String>>) -> RowTap {
        RowTap {
            source_names,
            names: Vec::new(),
            request_id: StringBuilder::new(),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            model: StringBuilder::new(),
            site: StringBuilder::new(),
            zone: StringBuilder::new(),
            hardware: StringBuilder::new(),
            method: StringBuilder::new(),
            acc: Float64Builder::new(),
            acc_low: Float64Builder::new(),
            acc_high: Float64Builder::new(),
            facility: Float64Builder::new(),
            co2e_location: Float64Builder::new(),
            co2e_market: Float64Builder::new(),
            weight: Float64Builder::new(),
            input_tokens: Int64Builder::new(),
            output_tokens: Int64Builder::new(),
            duration_s: Float64Builder::new(),
            energy_j: Float64Builder::new(),
            gpus: Int64Builder::new(),
            source: StringBuilder::new(),
            line: Int64Builder::new(),
            rows: 0,
        }
    }

    /// Rows built so far (since the last [`Self::take_batch`]).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The rows built so far as one batch; the builders start afresh.
    pub fn take_batch(&mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.request_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.site.finish()),
            Arc::new(self.zone.finish()),
            Arc::new(self.hardware.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.acc.finish()),
            Arc::new(self.acc_low.finish()),
            Arc::new(self.acc_high.finish()),
            Arc::new(self.facility.finish()),
            Arc::new(self.co2e_location.finish()),
            Arc::new(self.co2e_market.finish()),
            Arc::new(self.weight.finish()),
            Arc::new(self.input_tokens.finish()),
            Arc::new(self.output_tokens.finish()),
            Arc::new(self.duration_s.finish()),
            Arc::new(self.energy_j.finish()),
            Arc::new(self.gpus.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.line.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema(), cols).map_err(|e| Error::Internal(format!("per-record batch: {e}")))
    }
}

impl Tap for RowTap {
    const ON: bool = true;

    fn contribution(&mut self, m: &Methodology, rec: &RecordRef<'_>, usage: &Usage, c: &Contribution) {
        let k = &c.key;
        let me = &c.measures;
        self.request_id.append_option(rec.request_id);
        self.ts.append_value(rec.ts_us);
        self.model.append_option(name_of(&mut self.names, m, k.model));
        self.site.append_option(name_of(&mut self.names, m, k.site));
        self.zone.append_option(name_of(&mut self.names, m, k.zone));
        self.hardware.append_option(name_of(&mut self.names, m, k.hardware));
        self.method.append_value(k.method.name());
        // The cell's sums are in kWh and kg; a row is in Wh and g. The band is the method's
        // relative half-width applied to the accelerator energy, floored at 0 (section 2's
        // rule; the cell's energy_kwh_low/high apply the same factors to facility energy).
        let energy = me.flags & HAS_ENERGY != 0;
        let wh = |kwh: f64| energy.then_some(kwh * 1000.0);
        let acc = wh(me.energy_acc_kwh);
        self.acc.append_option(acc);
        self.acc_low.append_option(acc.map(|a| (a * (1.0 - c.uncertainty)).max(0.0)));
        self.acc_high.append_option(acc.map(|a| a * (1.0 + c.uncertainty)));
        self.facility.append_option(wh(me.energy_kwh));
        let co2e = me.flags & HAS_CO2E != 0;
        self.co2e_location.append_option(co2e.then_some(me.co2e_location_kg * 1000.0));
        self.co2e_market.append_option(co2e.then_some(me.co2e_market_kg * 1000.0));
        self.weight.append_value(usage.weight);
        self.input_tokens.append_option(usage.input_tokens);
        self.output_tokens.append_option(usage.output_tokens);
        self.duration_s.append_option(usage.duration_s);
        self.energy_j.append_option(usage.energy_j);
        self.gpus.append_value(c.gpus);
        self.source.append_value(self.source_names.get(rec.file as usize).map_or("", |s| s.as_str()));
        // Lines and rows are far below 2^63.
        self.line.append_value(rec.line as i64);
        self.rows += 1;
    }
}

/// Where the ordered per-record batches go.
pub trait BatchOut: Send {
    fn write(&mut self, batch: RecordBatch) -> Result<()>;
}

/// Keeps every batch (the Python API's in-memory table: for inputs that fit in memory).
#[derive(Default)]
pub struct Collect(pub Vec<RecordBatch>);

impl BatchOut for Collect {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.0.push(batch);
        Ok(())
    }
}

/// Rows per Parquet row group: bounds the writer's buffered (encoded) row group at a few tens
/// of MB while keeping row groups large enough for readers.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// A Parquet file written batch by batch beside its target (`.NAME.tmp-PID`) and moved into
/// place by [`ParquetOut::finish`]: a failed, cancelled or killed run leaves the target as it
/// was (a dropped writer deletes its temporary file).
pub struct ParquetOut {
    target: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl ParquetOut {
    /// Start a file of `schema` destined for `path`. Fails at once (before any input is read)
    /// when the directory is missing or not writable.
    pub fn create(path: impl AsRef<Path>, schema: SchemaRef) -> Result<ParquetOut> {
        let target = path.as_ref().to_path_buf();
        let err = |msg: String| Error::Output { path: target.clone(), msg };
        if target.is_dir() {
            return Err(err("is a directory; give a file name such as estimates.parquet".into()));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        if !dir.is_dir() {
            return Err(err(format!("no such directory {}; create it first", dir.display())));
        }
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| err(format!("{e}; check the directory's permissions")))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = match ArrowWriter::try_new(file, schema, Some(props)) {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(err(e.to_string()));
            }
        };
        Ok(ParquetOut { target, tmp, writer: Some(writer), rows: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Close the file (footer), sync it and move it into place.
    pub fn finish(mut self) -> Result<u64> {
        let writer = self.writer.take().ok_or_else(|| self.err("already finished"))?;
        let file = writer.into_inner().map_err(|e| self.err(e))?;
        file.sync_all().map_err(|e| self.err(e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target).map_err(|e| self.err(e))?;
        Ok(self.rows)
    }

    /// A write error: nothing is left at the target (the temporary file goes with the writer).
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        let msg = format!("{msg}; nothing was written there (check free disk space and permissions)");
        Error::Output { path: self.target.clone(), msg }
    }
}

impl BatchOut for ParquetOut {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows() as u64;
        let w = self.writer.as_mut().ok_or_else(|| Error::Internal("Parquet writer already finished".into()))?;
        if let Err(e) = w.write(&batch) {
            return Err(self.err(e));
        }
        self.rows += n;
        Ok(())
    }
}

impl Drop for ParquetOut {
    /// An unfinished file (error, cancel) leaves no temporary file behind.
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Blocks finished out of order, waiting for their turn.
struct Pending<'o> {
    next: u64,
    ready: BTreeMap<u64, Option<RecordBatch>>,
    /// The first output error: from then on nothing more is written and nobody waits.
    failed: Option<String>,
    out: &'o mut dyn BatchOut,
}

/// Puts the workers' blocks back in input order and writes each as soon as it is next.
pub struct Ordered<'o> {
    pending: Mutex<Pending<'o>>,
    turn: Condvar,
    /// Blocks held out of order before a worker that is ahead waits.
    cap: usize,
}

impl<'o> Ordered<'o> {
    /// `threads`: the scan's workers (so the cap lets each of them finish a block ahead).
    pub fn new(out: &'o mut dyn BatchOut, threads: usize) -> Ordered<'o> {
        Ordered {
            pending: Mutex::new(Pending { next: 0, ready: BTreeMap::new(), failed: None, out }),
            turn: Condvar::new(),
            cap: 2 * threads.max(1),
        }
    }

    /// Block `seq`'s rows (`None`: no rows). Waits while too many blocks are ahead of the next
    /// one; the next block itself never waits, so the scan always progresses.
    pub fn push(&self, seq: u64, batch: Option<RecordBatch>) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        while seq != p.next && p.ready.len() >= self.cap && p.failed.is_none() {
            p = self.turn.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        p.ready.insert(seq, batch);
        let mut result = Ok(());
        loop {
            let next = p.next;
            let Some(b) = p.ready.remove(&next) else { break };
            p.next += 1;
            if let (Some(b), None) = (b, &p.failed) {
                if let Err(e) = p.out.write(b) {
                    p.failed = Some(e.to_string());
                    result = Err(e);
                }
            }
        }
        self.turn.notify_all();
        result
    }

    /// After a successful scan: every block was written (none is missing or failed).
    pub fn finish(&self) -> Result<()> {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = &p.failed {
            return Err(Error::Internal(format!("per-record output failed: {e}")));
        }
        if !p.ready.is_empty() {
            return Err(Error::Internal(format!("per-record output: {} blocks never came in turn", p.ready.len())));
        }
        Ok(())
    }
}

/// The aggregate sink with a [`RowTap`]: cells as for an estimate, and each block's rows handed
/// to [`Ordered`] at the block's end.
pub struct PerRecordSink<'m, 'o> {
    inner: AggregateSink<'m, RowTap>,
    order: &'m Ordered<'o>,
    seq: Option<u64>,
}

impl<'m, 'o> PerRecordSink<'m, 'o> {
    pub fn new(inner: AggregateSink<'m, RowTap>, order: &'m Ordered<'o>) -> Self {
        PerRecordSink { inner, order, seq: None }
    }

    /// The aggregate sink (its cells and notes, once the scan is over).
    pub fn into_inner(self) -> AggregateSink<'m, RowTap> {
        self.inner
    }
}

impl RecordSink for PerRecordSink<'_, '_> {
    #[inline]
    fn record(&mut self, rec: &Record<'_>, loc: Loc) {
        self.inner.record(rec, loc)
    }

    const COLUMNAR: bool = true;

    fn rows(&mut self, rows: &Rows<'_>) {
        self.inner.rows(rows)
    }

    fn merge(&mut self, mut other: Self) -> Result<()> {
        // Every block of `other` was handed on at its end: its tap holds no row.
        debug_assert!(other.inner.tap_mut().is_empty());
        self.inner.merge(other.inner)
    }

    const ORDERED: bool = true;

    fn begin_block(&mut self, seq: u64) {
        self.seq = Some(seq);
    }

    /// Hands the block's rows on first (even after a failure, so no worker waits for a block
    /// that never comes), then lets the aggregate sink check its caps and spill.
    fn end_block(&mut self) -> Result<()> {
        if let Some(seq) = self.seq.take() {
            let tap = self.inner.tap_mut();
            let (batch, failed) = match tap.is_empty() {
                true => (None, None),
                false => match tap.take_batch() {
                    Ok(b) => (Some(b), None),
                    Err(e) => (None, Some(e)),
                },
            };
            self.order.push(seq, batch)?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        self.inner.end_block()
    }
}

#[cfg(test)]
mod tests;
