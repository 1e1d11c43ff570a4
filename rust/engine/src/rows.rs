//! A chunk of Arrow rows in columnar form, and its validation column by column.
//!
//! The Arrow path (Parquet, batches from Python) converts each canonical column of a chunk
//! once (`readers/arrow.rs`), then [`Rows::validate`] applies the rules of
//! [`crate::record::Draft::finish`] one column at a time, giving each row the reason the
//! per-record path would give it. A sink that takes rows this way ([`RecordSink::COLUMNAR`],
//! the kernel's aggregate sink) gets the valid rows' indices and the columns, with name columns
//! still as the batch holds them (dictionaries stay dictionaries): no per-row draft. Other
//! sinks get one [`Record`] at a time, from [`Rows::draft`] and `Draft::finish` as before.

use arrow_array::{Array, Int32Array, StringArray};

use crate::columns::Col;
use crate::record::{
    forbidden_char, Draft, Loc, Record, RecordSink, RejectReason, MAX_DURATION_S, MAX_ENERGY_J, MAX_GPUS, MAX_TOKENS,
    MAX_WEIGHT,
};
use crate::time::in_year_range;

/// A name column of a chunk (model, site, zone, hardware, request id, status), borrowed from
/// the batch.
#[derive(Clone, Copy, Default)]
pub enum Names<'a> {
    #[default]
    Absent,
    /// A dictionary of strings: row `r`'s value is `values[keys[r]]`; a null key or a null
    /// value is absent.
    Dict(&'a Int32Array, &'a StringArray),
    Str(&'a StringArray),
}

impl<'a> Names<'a> {
    /// The value of the batch's row `r` (not chunk-relative), `None` when null.
    #[inline]
    pub fn get(&self, r: usize) -> Option<&'a str> {
        match *self {
            Names::Absent => None,
            Names::Dict(k, v) => {
                if k.is_null(r) {
                    return None;
                }
                let key = k.value(r) as usize;
                (!v.is_null(key)).then(|| v.value(key))
            }
            Names::Str(a) => (!a.is_null(r)).then(|| a.value(r)),
        }
    }
}

/// The name columns of [`Rows::names`], in this order.
pub const NAME_COLS: [Col; 7] =
    [Col::Model, Col::Site, Col::Zone, Col::Hardware, Col::RequestId, Col::Status, Col::Node];

/// Index of a name column in [`Rows::names`].
#[inline]
pub const fn name_slot(col: Col) -> usize {
    match col {
        Col::Model => 0,
        Col::Site => 1,
        Col::Zone => 2,
        Col::Hardware => 3,
        Col::RequestId => 4,
        Col::Node => 6,
        _ => 5,
    }
}

/// One chunk of a batch: the columns as converted, and after [`Rows::validate`] each row's
/// reject reason (if any) and the valid rows. Index `i` of every vector is the chunk's row `i`,
/// the batch's row `start + i`. The vectors are reused from chunk to chunk.
#[derive(Default)]
pub struct Rows<'a> {
    /// The source file (index into the scan's files).
    pub file: u32,
    /// The batch row of the chunk's first row (for [`Names::get`]).
    pub start: usize,
    /// The reject location (`Loc::line`) of the chunk's first row.
    pub line0: u64,
    pub len: usize,
    pub names: [Names<'a>; 7],
    pub ts_us: Vec<Option<i64>>,
    pub gpus: Vec<Option<i64>>,
    pub input_tokens: Vec<Option<i64>>,
    pub output_tokens: Vec<Option<i64>>,
    pub duration_s: Vec<Option<f64>>,
    pub energy_j: Vec<Option<f64>>,
    pub weight: Vec<Option<f64>>,
    pub cache_hit: Vec<Option<bool>>,
    /// Each row's first problem: set by the conversion (a value of the wrong kind), then by
    /// [`Rows::validate`].
    pub errs: Vec<Option<RejectReason>>,
    /// The rows without a problem, ascending (set by [`Rows::validate`]).
    pub valid: Vec<u32>,
    /// Per dictionary value of each checked name column: what [`name_check`] found, so each
    /// distinct value of a batch is checked once ([`NameMemo`]).
    memo: [NameMemo; 6],
}

/// Lazily filled checks of one dictionary's values, valid for one dictionary (by identity).
#[derive(Default)]
struct NameMemo {
    /// The dictionary the entries belong to (kept so its buffers, compared by address,
    /// cannot be freed and reused by another dictionary while the entries live).
    values: Option<StringArray>,
    /// 0: not checked yet, else `NameCheck::encode`.
    entries: Vec<u32>,
    /// Every value of the dictionary checked, none null and all fine: then only null keys can
    /// give a row a problem here.
    clean: bool,
}

/// What section 1 says about one name value: fine, empty (a missing model), or the first
/// forbidden character.
#[derive(Clone, Copy, PartialEq, Debug)]
enum NameCheck {
    Fine,
    Empty,
    Forbidden(char),
}

impl NameCheck {
    fn of(s: &str) -> NameCheck {
        if s.is_empty() {
            return NameCheck::Empty;
        }
        forbidden_char(s).map_or(NameCheck::Fine, NameCheck::Forbidden)
    }

    fn encode(self) -> u32 {
        match self {
            NameCheck::Fine => 1,
            NameCheck::Empty => 2,
            NameCheck::Forbidden(c) => 3 + c as u32,
        }
    }

    fn decode(v: u32) -> NameCheck {
        match v {
            1 => NameCheck::Fine,
            2 => NameCheck::Empty,
            _ => NameCheck::Forbidden(char::from_u32(v - 3).unwrap_or('\0')),
        }
    }
}

/// Same dictionary: the same buffers (Arrow arrays are immutable, so same buffers, same values).
pub(crate) fn same_dictionary(a: &StringArray, b: &StringArray) -> bool {
    a.len() == b.len()
        && a.offset() == b.offset()
        && a.values().as_ptr() == b.values().as_ptr()
        && a.offsets().inner().inner().as_ptr() == b.offsets().inner().inner().as_ptr()
}

/// Dictionaries up to this size are checked whole when first met, whatever the batch size.
const CLEAN_CHECK_MIN: usize = 4096;

/// The columns [`Rows::validate`] checks for forbidden characters, in the order the
/// per-record rules do (a row with several problems gets the first).
const CHECKED_NAMES: [Col; 6] = [Col::Model, Col::Site, Col::Zone, Col::Hardware, Col::Status, Col::Node];

impl<'a> Rows<'a> {
    /// Empty the columns and size them for a chunk of `n` rows.
    pub(crate) fn reset(&mut self, file: u32, start: usize, line0: u64, n: usize) {
        self.file = file;
        self.start = start;
        self.line0 = line0;
        self.len = n;
        for v in [&mut self.ts_us, &mut self.gpus, &mut self.input_tokens, &mut self.output_tokens] {
            v.clear();
            v.resize(n, None);
        }
        for v in [&mut self.duration_s, &mut self.energy_j, &mut self.weight] {
            v.clear();
            v.resize(n, None);
        }
        self.cache_hit.clear();
        self.cache_hit.resize(n, None);
        self.errs.clear();
        self.errs.resize(n, None);
        self.valid.clear();
    }

    /// Row `i` as a draft, for the per-record path (the row must have no conversion error for
    /// the draft to mean anything).
    pub fn draft(&self, i: usize) -> Draft<'a> {
        let r = self.start + i;
        let name = |c: Col| self.names[name_slot(c)].get(r);
        Draft {
            ts_us: self.ts_us[i],
            model: name(Col::Model),
            site: name(Col::Site),
            zone: name(Col::Zone),
            hardware: name(Col::Hardware),
            gpus: self.gpus[i],
            input_tokens: self.input_tokens[i],
            output_tokens: self.output_tokens[i],
            duration_s: self.duration_s[i],
            energy_j: self.energy_j[i],
            weight: self.weight[i],
            request_id: name(Col::RequestId),
            status: name(Col::Status),
            cache_hit: self.cache_hit[i],
            node: name(Col::Node),
        }
    }

    /// Valid row `i` as a record (what `Draft::finish` makes of it).
    pub fn record(&self, i: usize) -> Record<'a> {
        let rec = self.draft(i).finish();
        debug_assert!(rec.is_ok(), "row {i} is not valid");
        rec.unwrap_or_else(|_| unreachable!("Rows::record of an invalid row"))
    }

    /// Hand the valid rows to `sink` one record at a time (what a sink that does not take
    /// rows column by column gets).
    pub fn each_record<S: RecordSink>(&self, sink: &mut S) {
        for &i in &self.valid {
            sink.record(&self.record(i as usize), Loc { file: self.file, line: self.line0 + i as u64 });
        }
    }

    /// Apply the rules of `Draft::finish` column by column, in its order: a row keeps the
    /// first problem found (a conversion error first, then ts, model, forbidden characters,
    /// negative integers, non-finite or negative floats, integer bounds, float bounds). Then
    /// list the valid rows.
    pub(crate) fn validate(&mut self) {
        let errs = &mut self.errs;
        let first = |e: &mut Option<RejectReason>, why: RejectReason| {
            if e.is_none() {
                *e = Some(why);
            }
        };
        for (e, ts) in errs.iter_mut().zip(&self.ts_us) {
            match ts {
                None => first(e, RejectReason::Missing(Col::Ts)),
                Some(t) if !in_year_range(*t) => first(e, RejectReason::YearOutOfRange),
                _ => {}
            }
        }
        for (k, col) in CHECKED_NAMES.into_iter().enumerate() {
            let names = self.names[name_slot(col)];
            check_names(col, names, self.start, &mut self.memo[k], errs);
        }
        for (col, v) in
            [(Col::Gpus, &self.gpus), (Col::InputTokens, &self.input_tokens), (Col::OutputTokens, &self.output_tokens)]
        {
            for (e, x) in errs.iter_mut().zip(v) {
                if matches!(x, Some(n) if *n < 0) {
                    first(e, RejectReason::Negative(col));
                }
            }
        }
        for (col, v) in
            [(Col::DurationS, &self.duration_s), (Col::EnergyJ, &self.energy_j), (Col::Weight, &self.weight)]
        {
            for (e, x) in errs.iter_mut().zip(v) {
                if let Some(x) = *x {
                    if !x.is_finite() {
                        first(e, RejectReason::NonFinite(col));
                    } else if x < 0.0 {
                        first(e, RejectReason::Negative(col));
                    }
                }
            }
        }
        for (col, v, max) in [
            (Col::Gpus, &self.gpus, MAX_GPUS),
            (Col::InputTokens, &self.input_tokens, MAX_TOKENS),
            (Col::OutputTokens, &self.output_tokens, MAX_TOKENS),
        ] {
            for (e, x) in errs.iter_mut().zip(v) {
                if matches!(x, Some(n) if *n > max) {
                    first(e, RejectReason::Implausible(col));
                }
            }
        }
        for (col, v, max) in [
            (Col::DurationS, &self.duration_s, MAX_DURATION_S),
            (Col::EnergyJ, &self.energy_j, MAX_ENERGY_J),
            (Col::Weight, &self.weight, MAX_WEIGHT),
        ] {
            for (e, x) in errs.iter_mut().zip(v) {
                if matches!(x, Some(x) if *x > max) {
                    first(e, RejectReason::Implausible(col));
                }
            }
        }
        self.valid.extend(errs.iter().enumerate().filter(|(_, e)| e.is_none()).map(|(i, _)| i as u32));
    }
}

/// The name checks of one column over a chunk: a missing or empty model, a forbidden character
/// in any checked name. A dictionary's values are checked once each (the memo), not per row.
fn check_names(col: Col, names: Names<'_>, start: usize, memo: &mut NameMemo, errs: &mut [Option<RejectReason>]) {
    let why = |c: NameCheck| match c {
        NameCheck::Fine => None,
        NameCheck::Empty if col == Col::Model => Some(RejectReason::Missing(col)),
        NameCheck::Empty => None,
        NameCheck::Forbidden(ch) => Some(RejectReason::ForbiddenChar(col, ch)),
    };
    let missing = (col == Col::Model).then_some(RejectReason::Missing(col));
    match names {
        Names::Absent => {
            if let Some(m) = missing {
                for e in errs.iter_mut().filter(|e| e.is_none()) {
                    *e = Some(m);
                }
            }
        }
        Names::Str(a) => {
            for (i, e) in errs.iter_mut().enumerate() {
                if e.is_some() {
                    continue;
                }
                let r = start + i;
                *e = if a.is_null(r) { missing } else { why(NameCheck::of(a.value(r))) };
            }
        }
        Names::Dict(k, v) => {
            if !memo.values.as_ref().is_some_and(|m| same_dictionary(m, v)) {
                memo.values = Some(v.clone());
                memo.entries.clear();
                memo.entries.resize(v.len(), 0);
                // A dictionary no bigger than the batch is checked whole, once: the usual
                // few names, all fine, then cost nothing per row.
                memo.clean = v.len() <= k.len().max(CLEAN_CHECK_MIN)
                    && v.null_count() == 0
                    && (0..v.len()).all(|key| {
                        memo.entries[key] = NameCheck::of(v.value(key)).encode();
                        memo.entries[key] == NameCheck::Fine.encode()
                    });
            }
            let keys = k.slice(start, errs.len());
            if memo.clean && keys.null_count() == 0 {
                return;
            }
            for (i, e) in errs.iter_mut().enumerate() {
                if e.is_some() {
                    continue;
                }
                let r = start + i;
                if k.is_null(r) {
                    *e = missing;
                    continue;
                }
                let key = k.value(r) as usize;
                if v.is_null(key) {
                    *e = missing;
                    continue;
                }
                let slot = &mut memo.entries[key];
                if *slot == 0 {
                    *slot = NameCheck::of(v.value(key)).encode();
                }
                *e = why(NameCheck::decode(*slot));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_checks_round_trip_through_the_memo_encoding() {
        for c in [NameCheck::Fine, NameCheck::Empty, NameCheck::Forbidden('\0'), NameCheck::Forbidden('\u{2069}')] {
            assert_eq!(NameCheck::decode(c.encode()), c);
        }
        assert_eq!(NameCheck::of(""), NameCheck::Empty);
        assert_eq!(NameCheck::of("a\tb"), NameCheck::Forbidden('\t'));
        assert_eq!(NameCheck::of("gpt-4o"), NameCheck::Fine);
    }
}
