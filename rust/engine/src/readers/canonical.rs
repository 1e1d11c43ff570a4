//! Materialise scanned records as one Arrow batch in the canonical schema (`read_logs`,
//! `validate --show`, tests). It keeps every record in memory, so it is for small data and
//! inspection; the estimate path folds records into aggregates instead.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::record::{Loc, Record, RecordSink};

use super::FileStats;

/// The canonical record schema (methodology section 1) plus where each row came from.
pub fn canonical_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let i = |n: &str| Field::new(n, DataType::Int64, true);
    let f = |n: &str, null: bool| Field::new(n, DataType::Float64, null);
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        s("model", false),
        s("site", true),
        s("zone", true),
        s("hardware", true),
        i("gpus"),
        i("input_tokens"),
        i("output_tokens"),
        f("duration_s", true),
        f("energy_j", true),
        f("weight", false),
        s("request_id", true),
        s("status", true),
        Field::new("cache_hit", DataType::Boolean, true),
        s("node", true),
        s("source", false),
        Field::new("line", DataType::Int64, false),
    ]))
}

/// A [`RecordSink`] that keeps the records (one per worker, merged at the end).
#[derive(Default)]
pub struct CanonicalSink {
    ts: TimestampMicrosecondBuilder,
    model: StringBuilder,
    site: StringBuilder,
    zone: StringBuilder,
    hardware: StringBuilder,
    gpus: Int64Builder,
    input_tokens: Int64Builder,
    output_tokens: Int64Builder,
    duration_s: Float64Builder,
    energy_j: Float64Builder,
    weight: Float64Builder,
    request_id: StringBuilder,
    status: StringBuilder,
    cache_hit: BooleanBuilder,
    node: StringBuilder,
    file: Vec<u32>,
    line: Vec<i64>,
    /// The input block of each row: records of one line can sit in two blocks (a JSON array
    /// on one line, cut anywhere), read by two workers, so (file, line) alone does not give
    /// their order back.
    block: Vec<u64>,
    current_block: u64,
    /// Rows of merged sinks, already finished: (columns without source/line, file, line, block).
    done: Vec<Part>,
}

type Part = (Vec<ArrayRef>, Vec<u32>, Vec<i64>, Vec<u64>);

impl CanonicalSink {
    pub fn new() -> Self {
        Self::default()
    }

    fn take_columns(&mut self) -> Part {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.model.finish()),
            Arc::new(self.site.finish()),
            Arc::new(self.zone.finish()),
            Arc::new(self.hardware.finish()),
            Arc::new(self.gpus.finish()),
            Arc::new(self.input_tokens.finish()),
            Arc::new(self.output_tokens.finish()),
            Arc::new(self.duration_s.finish()),
            Arc::new(self.energy_j.finish()),
            Arc::new(self.weight.finish()),
            Arc::new(self.request_id.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.cache_hit.finish()),
            Arc::new(self.node.finish()),
        ];
        (cols, std::mem::take(&mut self.file), std::mem::take(&mut self.line), std::mem::take(&mut self.block))
    }

    /// The records as one batch in the canonical schema, in input order: sorted by (file index,
    /// line, block);
    /// `source` is the path of `files[file index]`.
    pub fn finish(mut self, files: &[FileStats]) -> Result<RecordBatch> {
        let mut parts = std::mem::take(&mut self.done);
        parts.push(self.take_columns());
        let ncols = parts[0].0.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(ncols + 2);
        for c in 0..ncols {
            let arrays: Vec<&dyn arrow_array::Array> = parts.iter().map(|p| p.0[c].as_ref()).collect();
            columns.push(
                arrow_select::concat::concat(&arrays).map_err(|e| Error::internal("canonical records: concat", e))?,
            );
        }
        let file: Vec<u32> = parts.iter().flat_map(|p| p.1.iter().copied()).collect();
        let line: Vec<i64> = parts.iter().flat_map(|p| p.2.iter().copied()).collect();
        let block: Vec<u64> = parts.iter().flat_map(|p| p.3.iter().copied()).collect();
        let mut order: Vec<u32> = (0..file.len() as u32).collect();
        // Stable: the rows of one block come from one worker, in input order.
        order.sort_by_key(|&i| (file[i as usize], line[i as usize], block[i as usize]));
        let idx = UInt32Array::from(order);
        let mut out: Vec<ArrayRef> = Vec::with_capacity(ncols + 2);
        for c in &columns {
            out.push(
                arrow_select::take::take(c.as_ref(), &idx, None)
                    .map_err(|e| Error::internal("canonical records: sort", e))?,
            );
        }
        let source: StringArray = idx
            .values()
            .iter()
            .map(|&i| Some(files.get(file[i as usize] as usize).map_or("", |f| f.path.as_str())))
            .collect();
        let lines: Int64Array = idx.values().iter().map(|&i| line[i as usize]).collect();
        out.push(Arc::new(source));
        out.push(Arc::new(lines));
        RecordBatch::try_new(canonical_schema(), out).map_err(|e| Error::internal("canonical records: batch", e))
    }
}

impl RecordSink for CanonicalSink {
    fn record(&mut self, r: &Record<'_>, loc: Loc) {
        self.ts.append_value(r.ts_us);
        self.model.append_value(r.model);
        self.site.append_option(r.site);
        self.zone.append_option(r.zone);
        self.hardware.append_option(r.hardware);
        self.gpus.append_option(r.gpus);
        self.input_tokens.append_option(r.input_tokens);
        self.output_tokens.append_option(r.output_tokens);
        self.duration_s.append_option(r.duration_s);
        self.energy_j.append_option(r.energy_j);
        self.weight.append_value(r.weight);
        self.request_id.append_option(r.request_id);
        self.status.append_option(r.status);
        self.cache_hit.append_option(r.cache_hit);
        self.node.append_option(r.node);
        self.file.push(loc.file);
        self.line.push(loc.line as i64);
        self.block.push(self.current_block);
    }

    /// Numbered blocks, so rows of one line read by two workers keep their input order.
    const ORDERED: bool = true;

    fn begin_block(&mut self, seq: u64) {
        self.current_block = seq;
    }

    fn merge(&mut self, mut other: Self) -> Result<()> {
        self.done.append(&mut other.done);
        let part = other.take_columns();
        self.done.push(part);
        Ok(())
    }
}
