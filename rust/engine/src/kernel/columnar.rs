//! The aggregate sink's columnar entry: a validated chunk of Arrow rows ([`Rows`]) folded into
//! cells without a draft or a record per row.
//!
//! Name columns: a dictionary's values are resolved once each (through the sink's per-thread
//! caches, so aliases, zone case matching, the `--max-names` cap and the per-source name-change
//! counts go exactly as on the per-record path), then each row is an array look-up by its key.
//! The look-ups run in row order, model to hardware then status, as the per-record path does,
//! so the interner meets new names in the same order. Hours are computed for the chunk in one
//! pass; the formula is the one [`Methodology::contribution`], fed each row's numbers, and rows
//! reach the cells in row order, so every sum is bit for bit the per-record path's.

use arrow_array::{Array, StringArray};

use super::{AggregateSink, Methodology, RecordRef, Tap, Usage, NAME_KINDS};
use crate::interner::{NameEntry, StatusEntry, StrCache};
use crate::names::NameKind;
use crate::rows::{same_dictionary, Names, Rows};
use crate::time::hour_of;

/// Dictionaries larger than this are looked up row by row: a per-value table would cost more
/// to clear than the rows it serves.
const MAX_MEMO: usize = 1 << 20;

/// Entries of one dictionary's values, filled the first time a row uses each.
struct Memo<T> {
    /// The dictionary the entries belong to; held so its buffers (compared by address) cannot
    /// be freed and reused by another dictionary while the entries live.
    values: Option<StringArray>,
    entries: Vec<Option<T>>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo { values: None, entries: Vec::new() }
    }
}

impl<T: Copy> Memo<T> {
    /// Make the entries those of `values` (kept when it is the dictionary they already hold,
    /// as for the batches of one Parquet column chunk). False: too big to memoise.
    fn bind(&mut self, values: &StringArray) -> bool {
        if values.len() > MAX_MEMO {
            return false;
        }
        if !self.values.as_ref().is_some_and(|v| same_dictionary(v, values)) {
            self.values = Some(values.clone());
            self.entries.clear();
            self.entries.resize(values.len(), None);
        }
        true
    }
}

/// The columnar path's state in one sink: a memo per name column and for status, and scratch.
#[derive(Default)]
pub(super) struct Memos {
    names: [Memo<NameEntry>; 4],
    status: Memo<StatusEntry>,
    hours: Vec<i64>,
}

/// How a name column of a chunk is read: through a bound memo, or string by string.
#[derive(Clone, Copy)]
enum Source<'a> {
    Absent,
    Memo(&'a arrow_array::Int32Array, &'a StringArray),
    Str(Names<'a>),
}

fn source<'a, T: Copy>(names: Names<'a>, memo: &mut Memo<T>) -> Source<'a> {
    match names {
        Names::Absent => Source::Absent,
        Names::Dict(k, v) if memo.bind(v) => Source::Memo(k, v),
        other => Source::Str(other),
    }
}

/// Row `r`'s entry: absent for a null or empty value (as `Draft::finish` makes them), else the
/// value's entry from `resolve` (the sink's cache), remembered per dictionary key.
#[inline(always)]
fn entry<T: Copy + Default>(
    src: Source<'_>,
    r: usize,
    memo: &mut Memo<T>,
    cache: &mut StrCache<T>,
    resolve: impl Fn(&str) -> T,
) -> T {
    let resolve_str =
        |s: &str, cache: &mut StrCache<T>| if s.is_empty() { T::default() } else { cache.get(s, &resolve) };
    match src {
        Source::Absent => T::default(),
        Source::Str(names) => names.get(r).map_or_else(T::default, |s| resolve_str(s, cache)),
        Source::Memo(k, v) => {
            if k.is_null(r) {
                return T::default();
            }
            let key = k.value(r) as usize;
            if let Some(e) = memo.entries[key] {
                return e;
            }
            let e = if v.is_null(key) { T::default() } else { resolve_str(v.value(key), cache) };
            memo.entries[key] = Some(e);
            e
        }
    }
}

impl<T: Tap> AggregateSink<'_, T> {
    /// Fold a chunk's valid rows into their cells (see the module docs).
    pub(super) fn add_rows(&mut self, rows: &Rows<'_>) {
        let m: &Methodology = self.m;
        let mut memo = std::mem::take(&mut self.memo);
        let srcs: [Source<'_>; 4] = [
            source(rows.names[0], &mut memo.names[0]),
            source(rows.names[1], &mut memo.names[1]),
            source(rows.names[2], &mut memo.names[2]),
            source(rows.names[3], &mut memo.names[3]),
        ];
        let status_src = source(rows.names[crate::rows::name_slot(crate::columns::Col::Status)], &mut memo.status);
        memo.hours.clear();
        memo.hours.extend(rows.valid.iter().map(|&i| hour_of(rows.ts_us[i as usize].unwrap_or_default())));
        for (&i, &hour) in rows.valid.iter().zip(&memo.hours) {
            let i = i as usize;
            let r = rows.start + i;
            let mut names = [NameEntry::default(); 4];
            for (k, name) in names.iter_mut().enumerate() {
                let kind: NameKind = NAME_KINDS[k];
                *name = entry(srcs[k], r, &mut memo.names[k], &mut self.ids[k], |s| m.intern_name(kind, s));
            }
            let status = entry(status_src, r, &mut memo.status, &mut self.statuses, |s| m.status_entry(s));
            let usage = Usage {
                hour,
                gpus: rows.gpus[i],
                input_tokens: rows.input_tokens[i],
                output_tokens: rows.output_tokens[i],
                duration_s: rows.duration_s[i],
                energy_j: rows.energy_j[i],
                weight: rows.weight[i].unwrap_or(1.0),
            };
            // What `Draft::finish` makes of the row's request id and timestamp (both valid here).
            let at = || RecordRef {
                file: rows.file,
                line: rows.line0 + i as u64,
                ts_us: rows.ts_us[i].unwrap_or_default(),
                request_id: rows.names[crate::rows::name_slot(crate::columns::Col::RequestId)]
                    .get(r)
                    .filter(|s| !s.is_empty()),
            };
            self.add(rows.file, names, status, rows.cache_hit[i], &usage, at);
        }
        self.memo = memo;
    }
}

#[cfg(test)]
mod tests;
