//! All the cells of a run, merged partition by partition and handed out as Arrow batches.
//!
//! At the end of a scan a run's cells are spread over the workers' in-memory tables and the
//! runs spilled under the memory budget (`spill.rs`); a cell may be in several of them. Every
//! one of those sources is grouped by the same partitions (a source file and a block of hours,
//! [`PartKey`]), so the final merge takes one partition at a time: it folds that partition's
//! cells from every source into one small table, whose cells are then final, and emits them.
//! Memory stays bounded by the largest group of partitions, whatever the number of cells, and
//! each cell leaves exactly once.
//!
//! Two batch shapes: the aggregate schema of `docs/internals.md` (names as strings, for
//! `wattledger.estimate`), and the ledger's `wl_hourly` rows, whose name columns are
//! dictionary-encoded over the interned names (keys only: no string is copied per row).

use crate::aggregate::{aggregate_schema, Aggregate, Measures, HAS_CO2E, HAS_ENERGY, HAS_FLOPS, HAS_GPU_HOURS};
use crate::cell::{float_measures, CellKey, Method, MEASURE_COLUMNS, NO_ID};
use crate::error::{Error, Result};
use crate::spill::{PartKey, Partitioner, SpillRun};
use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, RecordBatchReader, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// Rows per emitted batch (partitions are grouped until a batch has at least this many).
pub const BATCH_ROWS: usize = 65_536;

/// Sort ranks of the names, so cells are ordered by name with integer compares.
#[derive(Debug, Clone)]
pub struct Ranks {
    /// `name[id]` is 1 + the id's rank among the names; `NO_ID` ranks 0 (nulls first).
    name: Vec<u32>,
    partitioner: Partitioner,
}

/// Methods in name order: `METHOD_RANK[method as usize]` is its rank.
const METHOD_RANK: [u8; 7] = {
    let mut r = [0u8; 7];
    // attributed < cached < flops < gpu_time < measured < none < tokens
    r[Method::Attributed as usize] = 0;
    r[Method::Cached as usize] = 1;
    r[Method::Flops as usize] = 2;
    r[Method::GpuTime as usize] = 3;
    r[Method::Measured as usize] = 4;
    r[Method::None as usize] = 5;
    r[Method::Tokens as usize] = 6;
    r
};

impl Ranks {
    pub fn new(names: &[Arc<str>], source_names: &[String]) -> Ranks {
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]).then(a.cmp(&b)));
        let mut name = vec![0; names.len()];
        for (rank, &id) in order.iter().enumerate() {
            name[id as usize] = rank as u32 + 1;
        }
        Ranks { name, partitioner: Partitioner::new(source_names) }
    }

    #[inline]
    fn name(&self, id: u32) -> u32 {
        if id == NO_ID {
            0
        } else {
            self.name.get(id as usize).copied().unwrap_or(u32::MAX)
        }
    }

    /// The documented row order: (source, hour, model, site, zone, hardware, method) by name.
    #[inline]
    fn key(&self, k: &CellKey) -> (u32, i64, u32, u32, u32, u32, u8) {
        (
            self.partitioner.source_rank(k.source),
            k.hour,
            self.name(k.model),
            self.name(k.site),
            self.name(k.zone),
            self.name(k.hardware),
            METHOD_RANK[k.method as usize],
        )
    }

    /// Indices of `agg`'s cells in the documented row order.
    pub fn order(&self, agg: &Aggregate) -> Vec<u32> {
        let (keys, _) = agg.parts();
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_unstable_by_key(|&i| self.key(&keys[i as usize]));
        order
    }
}

/// Checks every cell before it leaves the engine: no non-finite measure (a bug must never put
/// an infinity into the ledger) and no id without a name.
fn check_cells(agg: &Aggregate, names: &[Arc<str>]) -> Result<()> {
    let (keys, cells) = agg.parts();
    for (k, m) in keys.iter().zip(cells) {
        if let Some(measure) = m.first_non_finite() {
            let model = names.get(k.model as usize).map_or("?", |s| &**s);
            return Err(Error::Internal(format!(
                "hourly cell of {model} at hour {} has a non-finite {measure}",
                k.hour
            )));
        }
        for id in [k.model, k.site, k.zone, k.hardware] {
            if id != NO_ID && id as usize >= names.len() {
                return Err(Error::Internal(format!("aggregate: id {id} has no name (names snapshot too old)")));
            }
        }
    }
    Ok(())
}

/// The measure columns of the cells at `order`, with the null rules of `docs/internals.md`.
fn measure_columns(cells: &[Measures], order: &[u32]) -> Vec<ArrayRef> {
    let n = order.len();
    let mut records = Int64Builder::with_capacity(n);
    let mut f: Vec<Float64Builder> = (0..float_measures().len()).map(|_| Float64Builder::with_capacity(n)).collect();
    for &i in order {
        let c = &cells[i as usize];
        records.append_value(c.records);
        let e = c.flags & HAS_ENERGY != 0;
        let co2 = e && c.flags & HAS_CO2E != 0;
        let vals = c.floats();
        // Which float measures are present (same order as `floats`).
        let present = [
            true,
            true,
            true,
            e,
            e,
            e,
            e,
            e,
            co2,
            co2,
            c.flags & HAS_FLOPS != 0,
            c.flags & HAS_GPU_HOURS != 0,
            e,
            e,
            true,
            true,
            true,
        ];
        for ((b, v), p) in f.iter_mut().zip(vals).zip(present) {
            if p {
                b.append_value(v);
            } else {
                b.append_null();
            }
        }
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(records.finish())];
    cols.extend(f.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    cols
}

/// `agg`'s cells as one batch of [`aggregate_schema`], in the documented row order.
pub fn aggregate_batch(
    agg: &Aggregate,
    ranks: &Ranks,
    names: &[Arc<str>],
    source_names: &[String],
) -> Result<RecordBatch> {
    check_cells(agg, names)?;
    let order = ranks.order(agg);
    let (keys, cells) = agg.parts();
    let name = |id: u32| if id == NO_ID { None } else { names.get(id as usize).map(|s| &**s) };
    let source = |i: u32| source_names.get(i as usize).map_or("", |s| s.as_str());
    let n = order.len();
    let mut src = StringBuilder::with_capacity(n, n * 16);
    let mut hour = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut model = StringBuilder::with_capacity(n, n * 12);
    let mut site = StringBuilder::with_capacity(n, n * 8);
    let mut zone = StringBuilder::with_capacity(n, n * 4);
    let mut hardware = StringBuilder::with_capacity(n, n * 12);
    let mut method = StringBuilder::with_capacity(n, n * 6);
    for &i in &order {
        let k = &keys[i as usize];
        src.append_value(source(k.source));
        hour.append_value(k.hour * crate::time::US_PER_HOUR);
        model.append_option(name(k.model));
        site.append_option(name(k.site));
        zone.append_option(name(k.zone));
        hardware.append_option(name(k.hardware));
        method.append_value(k.method.name());
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(src.finish()),
        Arc::new(hour.finish()),
        Arc::new(model.finish()),
        Arc::new(site.finish()),
        Arc::new(zone.finish()),
        Arc::new(hardware.finish()),
        Arc::new(method.finish()),
    ];
    cols.extend(measure_columns(cells, &order));
    RecordBatch::try_new(aggregate_schema(), cols).map_err(|e| Error::internal("aggregate batch", e))
}

/// What the ledger adds to each cell: the run, each source file's id in the ledger (`None`: the
/// file is not counted, its cells are left out) and the pack.
#[derive(Debug, Clone)]
pub struct LedgerLabels {
    pub run_id: String,
    pub config_sha256: String,
    /// Indexed by file index.
    pub source_ids: Vec<Option<String>>,
}

/// The schema of the ledger's `wl_hourly` rows as the engine hands them over: its columns in
/// its order, names dictionary-encoded.
pub fn ledger_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            let mut fields = vec![
                Field::new("run_id", dict.clone(), false),
                Field::new("source_id", dict.clone(), false),
                Field::new("config_sha256", dict.clone(), false),
                Field::new("hour", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
                Field::new("model", dict.clone(), false),
                Field::new("site", dict.clone(), true),
                Field::new("zone", dict.clone(), true),
                Field::new("hardware", dict.clone(), true),
                Field::new("method", dict, false),
                Field::new(MEASURE_COLUMNS[0].name, DataType::Int64, MEASURE_COLUMNS[0].nullable),
            ];
            fields.extend(float_measures().iter().map(|c| Field::new(c.name, DataType::Float64, c.nullable)));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Scratch for the ledger batches: the per-batch dictionary of the names in use.
struct NameDict {
    /// `slot[id]`: the id's index in the current dictionary, or `u32::MAX`.
    slot: Vec<u32>,
    used: Vec<u32>,
}

impl NameDict {
    fn new(names: usize) -> Self {
        NameDict { slot: vec![u32::MAX; names], used: Vec::new() }
    }

    #[inline]
    fn key(&mut self, id: u32) -> Option<i32> {
        if id == NO_ID {
            return None;
        }
        let s = &mut self.slot[id as usize];
        if *s == u32::MAX {
            *s = self.used.len() as u32;
            self.used.push(id);
        }
        Some(*s as i32)
    }

    /// The dictionary of the ids met since the last call (then forgotten).
    fn values(&mut self, names: &[Arc<str>]) -> ArrayRef {
        let values: StringArray = self.used.iter().map(|&id| Some(&*names[id as usize])).collect();
        for &id in &self.used {
            self.slot[id as usize] = u32::MAX;
        }
        self.used.clear();
        Arc::new(values)
    }
}

fn dict(keys: Int32Array, values: ArrayRef) -> Result<ArrayRef> {
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).map_err(|e| Error::internal("ledger batch", e))?))
}

/// `agg`'s cells as `wl_hourly` rows (cells of files not counted are left out); `None` when
/// none is left.
fn ledger_batch(
    agg: &Aggregate,
    ranks: &Ranks,
    names: &[Arc<str>],
    labels: &LedgerLabels,
    scratch: &mut NameDict,
) -> Result<Option<RecordBatch>> {
    check_cells(agg, names)?;
    let (keys, cells) = agg.parts();
    let counted = |k: &CellKey| labels.source_ids.get(k.source as usize).is_some_and(|s| s.is_some());
    let mut order = ranks.order(agg);
    order.retain(|&i| counted(&keys[i as usize]));
    if order.is_empty() {
        return Ok(None);
    }
    let n = order.len();
    let one =
        |s: &str| -> Result<ArrayRef> { dict(Int32Array::from(vec![0; n]), Arc::new(StringArray::from(vec![s]))) };
    let source_values: StringArray = labels.source_ids.iter().map(|s| Some(s.as_deref().unwrap_or(""))).collect();
    let source = Int32Array::from_iter_values(order.iter().map(|&i| keys[i as usize].source as i32));
    let hour = arrow_array::TimestampMicrosecondArray::from_iter_values(
        order.iter().map(|&i| keys[i as usize].hour * crate::time::US_PER_HOUR),
    )
    .with_timezone("UTC");
    let mut name_col =
        |f: fn(&CellKey) -> u32| -> Int32Array { order.iter().map(|&i| scratch.key(f(&keys[i as usize]))).collect() };
    let model = name_col(|k| k.model);
    let site = name_col(|k| k.site);
    let zone = name_col(|k| k.zone);
    let hardware = name_col(|k| k.hardware);
    let values = scratch.values(names);
    let methods: StringArray = Method::ALL.iter().map(|m| Some(m.name())).collect();
    let method = Int32Array::from_iter_values(order.iter().map(|&i| keys[i as usize].method as i32));
    let mut cols: Vec<ArrayRef> = vec![
        one(&labels.run_id)?,
        dict(source, Arc::new(source_values))?,
        one(&labels.config_sha256)?,
        Arc::new(hour),
        dict(model, values.clone())?,
        dict(site, values.clone())?,
        dict(zone, values.clone())?,
        dict(hardware, values)?,
        dict(method, Arc::new(methods))?,
    ];
    cols.extend(measure_columns(cells, &order));
    RecordBatch::try_new(ledger_schema(), cols).map(Some).map_err(|e| Error::internal("ledger batch", e))
}

/// A worker's in-memory table, grouped by partition.
#[derive(Debug)]
struct MemRun {
    agg: Aggregate,
    order: Vec<u32>,
    parts: Vec<(PartKey, u32, u32)>,
}

/// Every cell of a run, not yet merged: the workers' tables and the spilled runs.
#[derive(Debug)]
pub struct Cells {
    memory: Vec<MemRun>,
    runs: Vec<Arc<SpillRun>>,
    /// Every partition that has a cell anywhere, in order.
    parts: Vec<PartKey>,
    names: Vec<Arc<str>>,
    source_names: Arc<Vec<String>>,
    ranks: Ranks,
}

impl Cells {
    /// `names` must name every id of every cell (a snapshot taken after the scan).
    pub fn new(
        memory: Vec<Aggregate>,
        runs: Vec<Arc<SpillRun>>,
        names: Vec<Arc<str>>,
        source_names: Arc<Vec<String>>,
    ) -> Cells {
        let ranks = Ranks::new(&names, &source_names);
        let memory: Vec<MemRun> = memory
            .into_iter()
            .filter(|a| !a.is_empty())
            .map(|agg| {
                let (order, parts) = ranks.partitioner.group(agg.parts().0);
                MemRun { agg, order, parts }
            })
            .collect();
        let mut parts: Vec<PartKey> = memory
            .iter()
            .flat_map(|m| m.parts.iter().map(|p| p.0))
            .chain(runs.iter().flat_map(|r| r.parts()))
            .collect();
        parts.sort_unstable();
        parts.dedup();
        Cells { memory, runs, parts, names, source_names, ranks }
    }

    /// Cells written to spill files during the scan (each is merged back here).
    pub fn spilled_cells(&self) -> u64 {
        self.runs.iter().map(|r| r.cells()).sum()
    }

    /// Spill files written during the scan.
    pub fn spill_runs(&self) -> usize {
        self.runs.len()
    }

    /// Whether the run has no cell at all.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Merge the partitions from `*next` on into `table` until it holds at least `rows` cells
    /// (or the partitions run out); `*next` moves past them.
    fn merge_group(&self, next: &mut usize, rows: usize, table: &mut Aggregate, buf: &mut Vec<u8>) -> Result<()> {
        while *next < self.parts.len() && table.len() < rows {
            let p = self.parts[*next];
            *next += 1;
            for m in &self.memory {
                if let Ok(j) = m.parts.binary_search_by_key(&p, |r| r.0) {
                    let (_, s, e) = m.parts[j];
                    let (keys, cells) = m.agg.parts();
                    for &i in &m.order[s as usize..e as usize] {
                        table.add(keys[i as usize], &cells[i as usize]);
                    }
                }
            }
            for r in &self.runs {
                r.merge_part(p, table, buf)?;
            }
        }
        Ok(())
    }

    /// Every cell, merged, as one batch of [`aggregate_schema`] in the documented row order.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let batches: Vec<RecordBatch> = self.batches().collect::<Result<_>>()?;
        arrow_select::concat::concat_batches(&aggregate_schema(), &batches).map_err(|e| Error::internal("cells", e))
    }

    /// The merged cells as batches of [`aggregate_schema`], partition group by partition group.
    pub fn batches(&self) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
        let mut next = 0;
        let mut table = Aggregate::new();
        let mut buf = Vec::new();
        std::iter::from_fn(move || {
            if next >= self.parts.len() {
                return None;
            }
            table.clear();
            Some(
                self.merge_group(&mut next, BATCH_ROWS, &mut table, &mut buf)
                    .and_then(|()| aggregate_batch(&table, &self.ranks, &self.names, &self.source_names)),
            )
        })
    }

    /// The merged cells as `wl_hourly` rows ([`ledger_schema`]), streamed: a reader owns
    /// the cells through `self`, so it can outlive the caller's borrow.
    pub fn ledger_reader(self: Arc<Self>, labels: LedgerLabels) -> LedgerReader {
        let scratch = NameDict::new(self.names.len());
        LedgerReader { cells: self, labels, next: 0, table: Aggregate::new(), buf: Vec::new(), scratch }
    }
}

/// See [`Cells::ledger_reader`].
pub struct LedgerReader {
    cells: Arc<Cells>,
    labels: LedgerLabels,
    next: usize,
    table: Aggregate,
    buf: Vec<u8>,
    scratch: NameDict,
}

impl Iterator for LedgerReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let c = &self.cells;
        while self.next < c.parts.len() {
            self.table.clear();
            let batch = c
                .merge_group(&mut self.next, BATCH_ROWS, &mut self.table, &mut self.buf)
                .and_then(|()| ledger_batch(&self.table, &c.ranks, &c.names, &self.labels, &mut self.scratch));
            match batch {
                Ok(None) => continue,
                Ok(Some(b)) => return Some(Ok(b)),
                Err(e) => {
                    self.next = c.parts.len();
                    return Some(Err(ArrowError::ExternalError(Box::new(e))));
                }
            }
        }
        None
    }
}

impl RecordBatchReader for LedgerReader {
    fn schema(&self) -> SchemaRef {
        ledger_schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::SpillStore;
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    use proptest::prelude::*;

    const NAMES: [&str; 6] = ["m-b", "m-a", "fra", "DE", "h100", "zz"];

    fn names() -> Vec<Arc<str>> {
        NAMES.iter().map(|s| Arc::from(*s)).collect()
    }

    fn sources() -> Arc<Vec<String>> {
        Arc::new(vec!["b.jsonl".into(), "a.parquet".into(), "c.csv".into()])
    }

    /// One record's contribution. Integer-valued measures: sums are exact in any order, so the
    /// merged cells must equal the unbounded ones bit for bit.
    fn contribution() -> impl Strategy<Value = (CellKey, Measures)> {
        let id = |n: u32| prop_oneof![Just(NO_ID), 0..n];
        (0u32..3, -40i64..200, 0u32..2, id(6), id(6), id(6), 0usize..6, 0u8..16, 0i64..50, 0i64..1000).prop_map(
            |(source, hour, model, site, zone, hardware, method, flags, r, v)| {
                let key = CellKey { source, hour, model, site, zone, hardware, method: Method::ALL[method] };
                let f = std::array::from_fn(|i| ((v + i as i64 * 7) % 97) as f64);
                (key, Measures::from_parts(r, f, flags))
            },
        )
    }

    fn bounded(recs: &[(CellKey, Measures)], workers: &[usize], budget: usize, store: &SpillStore) -> Cells {
        let mut tables = vec![Aggregate::new(); 3];
        for ((k, m), &w) in recs.iter().zip(workers.iter().cycle()) {
            let t = &mut tables[w % 3];
            t.add(*k, m);
            if t.len() > budget {
                store.spill(t).unwrap();
                t.clear();
            }
        }
        Cells::new(tables, store.take_runs(), names(), sources())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// However the cells are split between workers' tables and spilled runs, and in
        /// whatever order records come, the merge gives exactly the unbounded aggregate's cells,
        /// null rules included, each cell once.
        #[test]
        fn merging_spilled_runs_equals_one_unbounded_aggregate(
            recs in proptest::collection::vec(contribution(), 0..600),
            workers in proptest::collection::vec(0usize..3, 1..8),
            budget in 1usize..40,
        ) {
            let mut whole = Aggregate::new();
            for (k, m) in &recs {
                whole.add(*k, m);
            }
            let want = Cells::new(vec![whole], vec![], names(), sources()).to_record_batch().unwrap();
            let dir = crate::testutil::tempdir().unwrap();
            let store = SpillStore::new(dir.path().join("s"), Partitioner::new(&sources()));
            let cells = bounded(&recs, &workers, budget, &store);
            let got = cells.to_record_batch().unwrap();
            prop_assert_eq!(&got, &want);
            // Reading twice gives the same cells (the ledger may export the stream twice).
            prop_assert_eq!(&cells.to_record_batch().unwrap(), &want);
            // Every batch has cells (no empty group goes out).
            for b in cells.batches() {
                prop_assert!(b.unwrap().num_rows() > 0);
            }
        }
    }

    #[test]
    fn ledger_rows_label_each_cell_once_and_leave_out_files_not_counted() {
        let dir = crate::testutil::tempdir().unwrap();
        let store = SpillStore::new(dir.path().join("s"), Partitioner::new(&sources()));
        let recs: Vec<(CellKey, Measures)> = (0..2000)
            .map(|i: i64| {
                let key = CellKey {
                    source: (i % 3) as u32,
                    hour: (i * 7919) % 500,
                    model: (i % 2) as u32,
                    site: if i % 5 == 0 { NO_ID } else { 2 },
                    zone: 3,
                    hardware: NO_ID,
                    method: Method::ALL[(i % 7) as usize],
                };
                (key, Measures { records: 1, requests: 1.0, flags: crate::aggregate::HAS_ENERGY, ..Default::default() })
            })
            .collect();
        let cells = Arc::new(bounded(&recs, &[0, 1], 50, &store));
        assert!(cells.spill_runs() > 10);
        let all = cells.to_record_batch().unwrap();
        let labels = LedgerLabels {
            run_id: "r".into(),
            config_sha256: "c".into(),
            source_ids: vec![Some("r/0".into()), None, Some("r/2".into())],
        };
        let batches: Vec<RecordBatch> = cells.clone().ledger_reader(labels.clone()).map(|b| b.unwrap()).collect();
        assert!(batches.iter().all(|b| b.schema() == ledger_schema()));
        // Decode the dictionaries back to strings: the same cells as the aggregate batch, less
        // those of the file not counted (a.parquet, file 1).
        let text = |b: &RecordBatch, c: &str| -> Vec<Option<String>> {
            let col = arrow_cast::cast(b.column_by_name(c).unwrap(), &DataType::Utf8).unwrap();
            col.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
        };
        // (source_id, hour, model, site, method, records) of each ledger row.
        type Row = (Option<String>, i64, Option<String>, Option<String>, Option<String>, i64);
        let mut got: Vec<Row> = Vec::new();
        for b in &batches {
            let hours =
                b.column_by_name("hour").unwrap().as_primitive::<arrow_array::types::TimestampMicrosecondType>();
            let records = b.column_by_name("records").unwrap().as_primitive::<arrow_array::types::Int64Type>();
            let (src, model, site, method) =
                (text(b, "source_id"), text(b, "model"), text(b, "site"), text(b, "method"));
            assert!(text(b, "run_id").iter().all(|v| v.as_deref() == Some("r")));
            assert!(text(b, "config_sha256").iter().all(|v| v.as_deref() == Some("c")));
            for i in 0..b.num_rows() {
                got.push((
                    src[i].clone(),
                    hours.value(i),
                    model[i].clone(),
                    site[i].clone(),
                    method[i].clone(),
                    records.value(i),
                ));
            }
        }
        let mut want = Vec::new();
        let src = text(&all, "source");
        let hours = all.column_by_name("hour").unwrap().as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        let records = all.column_by_name("records").unwrap().as_primitive::<arrow_array::types::Int64Type>();
        let (model, site, method) = (text(&all, "model"), text(&all, "site"), text(&all, "method"));
        for i in 0..all.num_rows() {
            let id = match src[i].as_deref() {
                Some("b.jsonl") => "r/0",
                Some("c.csv") => "r/2",
                _ => continue,
            };
            want.push((
                Some(id.to_string()),
                hours.value(i),
                model[i].clone(),
                site[i].clone(),
                method[i].clone(),
                records.value(i),
            ));
        }
        assert!(!want.is_empty() && want.len() < all.num_rows());
        assert_eq!(got, want, "same cells, same order");
        let counted = recs.iter().filter(|(k, _)| k.source != 1).count() as i64;
        assert_eq!(got.iter().map(|r| r.5).sum::<i64>(), counted, "every record of a counted file, once");
        assert!(batches.iter().any(|b| b.column_by_name("site").unwrap().null_count() > 0));
    }
}
