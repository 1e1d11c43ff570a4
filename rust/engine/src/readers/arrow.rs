//! Arrow record batches (from Parquet, or handed over from Python) -> columns of canonical rows.
//!
//! Producers type the same column in many ways (Utf8 / LargeUtf8 / Utf8View / dictionaries,
//! any integer or float width, timestamps in any unit with or without zone, dates, epoch
//! numbers, text timestamps). Each column is normalised once per batch to one of a few
//! views, then rows are read without per-value dispatch on Arrow types.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Int32Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_cast::{cast, cast_with_options, CastOptions};
use arrow_schema::{DataType, TimeUnit};

use crate::columns::{Col, ColumnMap, FieldPath};
use crate::record::{Draft, RejectReason};
use crate::rows::{name_slot, Names, Rows, NAME_COLS};
use crate::time::{epoch_float_to_us, epoch_int_to_us};

use super::jsonl::set_text;
use super::plan::{set_num, Num, Plan, Val};

/// One canonical column of a batch, normalised.
pub(crate) enum View {
    Absent,
    Str(StringArray),
    /// A dictionary of strings (Parquet name columns): a row's string is `values[keys[r]]`.
    Dict(arrow_array::Int32Array, StringArray),
    Int(Int64Array),
    Float(Float64Array),
    /// Already microseconds UTC (from Timestamp / Date types).
    TsUs(Int64Array),
    /// A boolean column (a cache flag).
    Bool(BooleanArray),
    /// A type that cannot hold this column (booleans, lists, ...): every non-null value is a
    /// `BadValue`. Kept as an array for its null mask.
    Invalid(ArrayRef),
}

/// Rows per chunk of [`BatchView::fill`]: a chunk's columns stay in cache between the
/// conversion, the validation and the kernel pass.
pub(crate) const CHUNK_ROWS: usize = 512;

pub(crate) struct BatchView {
    /// One view per canonical column (a simple mapping), or per plan slot (`plan` is set).
    views: Vec<View>,
    scales: [f64; Col::COUNT],
    pub(crate) rows: usize,
    plan: Option<std::sync::Arc<Plan>>,
}

/// A column by path: a plain path as one flat column name first, then the path's keys
/// through struct columns.
fn find_column(batch: &RecordBatch, path: &FieldPath) -> Option<ArrayRef> {
    if let Some(flat) = path.flat() {
        if let Ok(i) = batch.schema().index_of(&flat) {
            return Some(batch.column(i).clone());
        }
    }
    let mut parts = path.segs.iter();
    let first = parts.next()?;
    let mut arr = batch.column(batch.schema().index_of(first).ok()?).clone();
    for part in parts {
        let s: &StructArray = arr.as_any().downcast_ref()?;
        let child = s.column_by_name(part)?.clone();
        // A null parent struct means a null child value.
        arr = match s.nulls() {
            Some(n) if n.null_count() > 0 => {
                let merged = arrow_buffer::NullBuffer::union(Some(n), child.nulls());
                arrow_array::make_array(child.to_data().into_builder().nulls(merged).build().ok()?)
            }
            _ => child,
        };
    }
    Some(arr)
}

fn is_stringish(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_stringish(v),
        _ => false,
    }
}

fn to_str(a: &ArrayRef) -> Option<StringArray> {
    cast(a, &DataType::Utf8).ok().map(|c| c.as_string::<i32>().clone())
}

fn to_f64(a: &ArrayRef) -> Option<Float64Array> {
    cast(a, &DataType::Float64).ok().map(|c| c.as_primitive().clone())
}

/// Integers of any width as i64; a UInt64 beyond i64 fails the (unsafe = checked) cast and
/// falls back to f64 rather than turning into a silent null.
fn int_view(a: &ArrayRef) -> View {
    let strict = CastOptions { safe: false, ..Default::default() };
    match cast_with_options(a, &DataType::Int64, &strict) {
        Ok(c) => View::Int(c.as_primitive().clone()),
        Err(_) => to_f64(a).map_or(View::Invalid(a.clone()), View::Float),
    }
}

fn view_for(col: Col, a: &ArrayRef) -> View {
    let t = a.data_type();
    if *t == DataType::Null {
        return View::Absent;
    }
    if *t == DataType::Boolean && col == Col::CacheHit {
        return View::Bool(a.as_boolean().clone());
    }
    let invalid = || View::Invalid(a.clone());
    if let DataType::Dictionary(k, v) = t {
        if **k == DataType::Int32 && **v == DataType::Utf8 {
            let d = a.as_dictionary::<Int32Type>();
            return View::Dict(d.keys().clone(), d.values().as_string::<i32>().clone());
        }
    }
    if is_stringish(t) {
        return to_str(a).map_or_else(invalid, View::Str);
    }
    let numeric = t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
    match col {
        Col::Ts => match t {
            DataType::Timestamp(unit, _) => {
                let us: Int64Array = match unit {
                    TimeUnit::Second => a.as_primitive::<TimestampSecondType>().unary(|v| v.saturating_mul(1_000_000)),
                    TimeUnit::Millisecond => {
                        a.as_primitive::<TimestampMillisecondType>().unary(|v| v.saturating_mul(1_000))
                    }
                    TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().unary(|v| v),
                    TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().unary(|v| v.div_euclid(1_000)),
                };
                View::TsUs(us)
            }
            DataType::Date32 => View::TsUs(a.as_primitive::<Date32Type>().unary(|d| d as i64 * 86_400_000_000)),
            DataType::Date64 => View::TsUs(a.as_primitive::<Date64Type>().unary(|ms| ms.saturating_mul(1_000))),
            _ if t.is_integer() => int_view(a),
            _ if numeric => to_f64(a).map_or_else(invalid, View::Float),
            _ => invalid(),
        },
        c if c.is_numeric() => {
            if t.is_integer() {
                int_view(a)
            } else if numeric {
                to_f64(a).map_or_else(invalid, View::Float)
            } else {
                invalid()
            }
        }
        // String columns given as numbers: use the number's text, as for JSON.
        _ if numeric => to_str(a).map_or_else(invalid, View::Str),
        _ => invalid(),
    }
}

impl BatchView {
    /// `plan` is the compiled mapping, used when the mapping is not simple (alternatives,
    /// computed columns, keep rules): rows are then read one at a time through it.
    pub(crate) fn new(batch: &RecordBatch, map: &ColumnMap, plan: &std::sync::Arc<Plan>) -> Self {
        let mut scales = [1.0; Col::COUNT];
        if !map.is_simple() {
            let views = (0..plan.npaths())
                .map(|p| match find_column(batch, &plan.paths[p]) {
                    Some(a) => view_for(plan.path_kind[p], &a),
                    None => View::Absent,
                })
                .collect();
            return BatchView { views, scales, rows: batch.num_rows(), plan: Some(plan.clone()) };
        }
        let views = Col::ALL
            .iter()
            .map(|&col| {
                let src = map.source(col);
                let Some(term) = src.single() else { return View::Absent };
                scales[col as usize] = term.scale;
                match find_column(batch, &term.path) {
                    Some(a) => view_for(col, &a),
                    None => View::Absent,
                }
            })
            .collect();
        BatchView { views, scales, rows: batch.num_rows(), plan: None }
    }

    /// The plan, when rows are read through it rather than with [`BatchView::fill`].
    pub(crate) fn plan(&self) -> Option<&Plan> {
        self.plan.as_deref()
    }

    /// Row `r`'s value of plan slot `p`.
    pub(crate) fn val<'a>(&'a self, p: u16, r: usize) -> Val<'a> {
        let v = &self.views[p as usize];
        let null = match v {
            View::Absent => return Val::Absent,
            View::Str(a) => a.is_null(r),
            View::Dict(k, _) => k.is_null(r),
            View::Int(a) => a.is_null(r),
            View::Float(a) => a.is_null(r),
            View::TsUs(a) => a.is_null(r),
            View::Bool(a) => a.is_null(r),
            View::Invalid(a) => a.is_null(r),
        };
        if null {
            return Val::Absent;
        }
        fn text(t: &str) -> Val<'_> {
            Val::Text { text: t.as_bytes(), number: false, utf8: true }
        }
        match v {
            View::Str(a) => text(a.value(r)),
            View::Dict(k, d) => {
                let key = k.value(r) as usize;
                if d.is_null(key) {
                    Val::Absent
                } else {
                    text(d.value(key))
                }
            }
            View::Int(a) => Val::Int(a.value(r)),
            View::Float(a) => Val::Float(a.value(r)),
            View::TsUs(a) => Val::TsUs(a.value(r)),
            View::Bool(a) => Val::Bool(a.value(r)),
            View::Absent | View::Invalid(_) => Val::Composite,
        }
    }

    /// Convert the chunk of `rows` (rows `rows.start..rows.start + rows.len` of the batch) one
    /// column at a time: the column's type is matched once per chunk rather than once per
    /// value, and each inner loop walks one array. Name columns are not copied: `rows.names`
    /// borrows the batch's arrays (a dictionary stays one). `rows.errs[i]` gets the chunk row
    /// `i`'s first problem in column order, the same reason a row-at-a-time reader would stop
    /// at; the other rules of `Draft::finish` are [`Rows::validate`]'s.
    pub(crate) fn fill<'a>(&'a self, rows: &mut Rows<'a>) {
        let range = rows.start..rows.start + rows.len;
        rows.names = Default::default();
        for col in Col::ALL {
            let scale = self.scales[col as usize];
            let view = &self.views[col as usize];
            if NAME_COLS.contains(&col) {
                let slot = name_slot(col);
                match view {
                    View::Str(a) => {
                        rows.names[slot] = Names::Str(a);
                        continue;
                    }
                    View::Dict(k, v) => {
                        rows.names[slot] = Names::Dict(k, v);
                        continue;
                    }
                    _ => {}
                }
            }
            match view {
                View::Absent => {}
                View::Int(a) if scale == 1.0 && int_column(rows, col).is_some() => {
                    let out = int_column(rows, col).unwrap();
                    for (o, r) in out.iter_mut().zip(range.clone()) {
                        if !a.is_null(r) {
                            *o = Some(a.value(r));
                        }
                    }
                }
                View::Float(a) if scale == 1.0 && float_column(rows, col).is_some() => {
                    let out = float_column(rows, col).unwrap();
                    for (o, r) in out.iter_mut().zip(range.clone()) {
                        if !a.is_null(r) {
                            *o = Some(a.value(r));
                        }
                    }
                }
                View::TsUs(a) => {
                    for (o, r) in rows.ts_us.iter_mut().zip(range.clone()) {
                        if !a.is_null(r) {
                            *o = Some(a.value(r));
                        }
                    }
                }
                View::Bool(a) => {
                    for (o, r) in rows.cache_hit.iter_mut().zip(range.clone()) {
                        if !a.is_null(r) {
                            *o = Some(a.value(r));
                        }
                    }
                }
                View::Invalid(a) => {
                    for (e, r) in rows.errs.iter_mut().zip(range.clone()) {
                        if !a.is_null(r) {
                            note(e, Err(RejectReason::BadValue(col)));
                        }
                    }
                }
                // The rest converts value by value through the readers' shared setters, into a
                // scratch draft whose field is then copied to the column.
                View::Str(a) => {
                    for (i, r) in range.clone().enumerate() {
                        if !a.is_null(r) {
                            convert(rows, col, i, |d| set_text(d, col, a.value(r).as_bytes(), false, true, scale));
                        }
                    }
                }
                View::Dict(k, v) => {
                    for (i, r) in range.clone().enumerate() {
                        if k.is_null(r) {
                            continue;
                        }
                        let key = k.value(r) as usize;
                        if !v.is_null(key) {
                            convert(rows, col, i, |d| set_text(d, col, v.value(key).as_bytes(), false, true, scale));
                        }
                    }
                }
                View::Int(a) => {
                    for (i, r) in range.clone().enumerate() {
                        if a.is_null(r) {
                            continue;
                        }
                        let x = a.value(r);
                        convert(rows, col, i, |d| match col {
                            Col::Ts => epoch_int_to_us(x).map(|t| d.ts_us = Some(t)).ok_or(RejectReason::BadValue(col)),
                            _ => set_num(d, col, Num::Int(x), scale),
                        });
                    }
                }
                View::Float(a) => {
                    for (i, r) in range.clone().enumerate() {
                        if a.is_null(r) {
                            continue;
                        }
                        let x = a.value(r);
                        convert(rows, col, i, |d| match col {
                            Col::Ts if !x.is_finite() => Err(RejectReason::NonFinite(col)),
                            Col::Ts => {
                                epoch_float_to_us(x).map(|t| d.ts_us = Some(t)).ok_or(RejectReason::BadValue(col))
                            }
                            _ => set_num(d, col, Num::Float(x), scale),
                        });
                    }
                }
            }
        }
    }
}

/// One value through a draft setter: the problem noted for chunk row `i`, the value (if set)
/// copied to `col`'s column. Name columns only reach here with values of a type a name cannot
/// have (an error), so only the other columns are copied.
#[inline]
fn convert<'a>(rows: &mut Rows<'a>, col: Col, i: usize, set: impl FnOnce(&mut Draft<'a>) -> Result<(), RejectReason>) {
    let mut d = Draft::default();
    note(&mut rows.errs[i], set(&mut d));
    match col {
        Col::Ts => rows.ts_us[i] = d.ts_us,
        Col::Gpus => rows.gpus[i] = d.gpus,
        Col::InputTokens => rows.input_tokens[i] = d.input_tokens,
        Col::OutputTokens => rows.output_tokens[i] = d.output_tokens,
        Col::DurationS => rows.duration_s[i] = d.duration_s,
        Col::EnergyJ => rows.energy_j[i] = d.energy_j,
        Col::Weight => rows.weight[i] = d.weight,
        Col::CacheHit => rows.cache_hit[i] = d.cache_hit,
        Col::Model | Col::Site | Col::Zone | Col::Hardware | Col::RequestId | Col::Status | Col::Node => {}
    }
}

// The common cases of `fill` copy a whole column: an integer column from integers or a float
// column from floats at unit scale. Exactly what `set_num` does for them, minus the per-value
// dispatch on the column; validation stays in `Rows::validate`.

fn int_column<'r>(rows: &'r mut Rows<'_>, col: Col) -> Option<&'r mut [Option<i64>]> {
    Some(match col {
        Col::Gpus => &mut rows.gpus,
        Col::InputTokens => &mut rows.input_tokens,
        Col::OutputTokens => &mut rows.output_tokens,
        _ => return None,
    })
}

fn float_column<'r>(rows: &'r mut Rows<'_>, col: Col) -> Option<&'r mut [Option<f64>]> {
    Some(match col {
        Col::DurationS => &mut rows.duration_s,
        Col::EnergyJ => &mut rows.energy_j,
        Col::Weight => &mut rows.weight,
        _ => return None,
    })
}

/// Keep a row's first problem: later columns do not overwrite it.
#[inline(always)]
fn note(slot: &mut Option<RejectReason>, r: Result<(), RejectReason>) {
    if let (Err(reason), None) = (r, &slot) {
        *slot = Some(reason);
    }
}

/// Split a large batch so one huge batch (a whole DataFrame) still spreads over the workers.
pub(crate) fn slices(batch: &RecordBatch, rows: usize) -> impl Iterator<Item = (usize, RecordBatch)> + '_ {
    let n = batch.num_rows();
    (0..n.div_ceil(rows.max(1))).map(move |k| {
        let off = k * rows;
        (off, batch.slice(off, rows.min(n - off)))
    })
}
