//! A column mapping compiled for reading: one slot per distinct source path, each canonical
//! column's alternatives over the slots, and the keep rules. Every reader fills slots in its
//! own way (JSON keys, CSV fields, Arrow columns); [`Plan::draft`] turns them into a draft the
//! same way for all, so `a | b`, `end - start` and `start + duration` mean one thing whatever
//! the file format.

use crate::columns::{Alt, Col, ColumnMap, FieldPath};
use crate::record::{Draft, RejectReason};
use crate::time::{epoch_float_to_us, epoch_int_to_us};

use super::jsonl::set_text;
use super::value::{float_from_text, int_from_f64, int_scaled, ts_from_text};

/// One way of getting a column, on slot indices (see `columns::Alt`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum PlanAlt {
    Value { p: u16, scale: f64 },
    Diff { end: u16, start: u16, scale: f64 },
    Plus { ts: u16, dur: u16, scale: f64 },
}

#[derive(Debug)]
pub(crate) struct PlanKeep {
    when: Option<(u16, Box<[u8]>)>,
    any_of: Vec<u16>,
    reason: String,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) paths: Vec<FieldPath>,
    /// Bit per canonical column fed by each path, for `FileStats::columns_found`.
    pub(crate) path_cols: Vec<u16>,
    /// The column whose rules type a path's values (timestamps for the terms of `-`/`+`).
    pub(crate) path_kind: Vec<Col>,
    alts: Vec<PlanAlt>,
    col_alts: [(u16, u16); Col::COUNT],
    keep: Vec<PlanKeep>,
    /// When every column is read (or skipped) as one plain value and nothing is filtered: per
    /// column its slot and scale, a skipped column pointing at an always-empty slot.
    simple: Option<[(u16, f64); Col::COUNT]>,
}

/// A slot's value as a reader found it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Val<'a> {
    Absent,
    /// Text of a value; `number` says it was a JSON number token (only matters for
    /// timestamps), `utf8` that it is known to be valid UTF-8.
    Text {
        text: &'a [u8],
        number: bool,
        utf8: bool,
    },
    Int(i64),
    Float(f64),
    /// Microseconds since the epoch, UTC (Arrow timestamps and dates).
    TsUs(i64),
    Bool(bool),
    /// An object, an array or a type that cannot hold a column value.
    Composite,
}

impl Val<'_> {
    /// Present: not null, not an empty string.
    #[inline]
    pub(crate) fn present(&self) -> bool {
        match self {
            Val::Absent => false,
            Val::Text { text, .. } => !text.is_empty(),
            _ => true,
        }
    }
}

impl Plan {
    pub(crate) fn new(map: &ColumnMap) -> Self {
        let mut plan = Plan {
            paths: Vec::new(),
            path_cols: Vec::new(),
            path_kind: Vec::new(),
            alts: Vec::new(),
            col_alts: [(0, 0); Col::COUNT],
            keep: Vec::new(),
            simple: None,
        };
        for (col, src) in map.sources() {
            let start = plan.alts.len() as u16;
            for alt in &src.alts {
                let alt = match alt {
                    Alt::Value(t) => PlanAlt::Value { p: plan.slot(&t.path, Some(col), col), scale: t.scale },
                    Alt::Diff(a, b) => PlanAlt::Diff {
                        end: plan.slot(&a.path, Some(col), Col::Ts),
                        start: plan.slot(&b.path, Some(col), Col::Ts),
                        scale: a.scale,
                    },
                    Alt::Plus(a, b) => PlanAlt::Plus {
                        ts: plan.slot(&a.path, Some(col), Col::Ts),
                        dur: plan.slot(&b.path, Some(col), Col::DurationS),
                        scale: b.scale,
                    },
                };
                plan.alts.push(alt);
            }
            plan.col_alts[col as usize] = (start, plan.alts.len() as u16);
        }
        for k in &map.keep {
            let when = k.when.as_ref().map(|(p, v)| (plan.slot(p, None, Col::Status), v.as_bytes().into()));
            let any_of = k.any_of.iter().map(|p| plan.slot(p, None, Col::Status)).collect();
            plan.keep.push(PlanKeep { when, any_of, reason: k.reason.clone() });
        }
        if plan.keep.is_empty() {
            let mut simple = [(0u16, 1.0); Col::COUNT];
            let mut ok = true;
            // A slot no key leads to, for a column without a source: always absent.
            let empty = plan.paths.len() as u16;
            for col in Col::ALL {
                let (s, e) = plan.col_alts[col as usize];
                simple[col as usize] = match plan.alts[s as usize..e as usize] {
                    [] => (empty, 1.0),
                    [PlanAlt::Value { p, scale }] => (p, scale),
                    _ => {
                        ok = false;
                        break;
                    }
                };
            }
            if ok {
                plan.simple = Some(simple);
            }
        }
        plan
    }

    /// Per column (slot, scale), when the mapping is simple (see `Plan::simple`). Slot
    /// `npaths()` is one past the last: readers size their slots with [`Plan::nslots`].
    pub(crate) fn simple(&self) -> Option<&[(u16, f64); Col::COUNT]> {
        self.simple.as_ref()
    }

    /// Slots a reader keeps: one per path, plus the always-empty one.
    pub(crate) fn nslots(&self) -> usize {
        self.paths.len() + 1
    }

    /// The slot of `path`, added if new; `col` is the column it feeds (none for keep rules),
    /// `kind` the column whose rules type its values.
    fn slot(&mut self, path: &FieldPath, col: Option<Col>, kind: Col) -> u16 {
        let i = match self.paths.iter().position(|q| q == path) {
            Some(i) => i,
            None => {
                self.paths.push(path.clone());
                self.path_cols.push(0);
                self.path_kind.push(kind);
                self.paths.len() - 1
            }
        };
        if let Some(col) = col {
            self.path_cols[i] |= 1 << col as u16;
        }
        i as u16
    }

    pub(crate) fn npaths(&self) -> usize {
        self.paths.len()
    }

    /// The reason to pass over an object, when a keep rule says so.
    pub(crate) fn skip_reason<'v>(&self, get: impl Fn(u16) -> Val<'v>) -> Option<&str> {
        for k in &self.keep {
            if let Some((p, v)) = &k.when {
                match get(*p) {
                    Val::Text { text, .. } if text == &**v => {}
                    _ => continue,
                }
            }
            if !k.any_of.iter().any(|&p| get(p).present()) {
                return Some(&k.reason);
            }
        }
        None
    }

    /// The draft of one record from its slots: for each column, the first alternative present.
    /// A present value that is bad rejects the record (it does not fall through to the next).
    pub(crate) fn draft<'v>(&self, get: impl Fn(u16) -> Val<'v>) -> Result<Draft<'v>, RejectReason> {
        let mut d = Draft::default();
        for col in Col::ALL {
            let (start, end) = self.col_alts[col as usize];
            for alt in &self.alts[start as usize..end as usize] {
                match *alt {
                    PlanAlt::Value { p, scale } => {
                        let v = get(p);
                        if !v.present() {
                            continue;
                        }
                        set_val(&mut d, col, v, scale)?;
                    }
                    PlanAlt::Diff { end, start, scale } => {
                        let (Some(e), Some(s)) = (ts_of(get(end), col)?, ts_of(get(start), col)?) else { continue };
                        d.duration_s = Some((e - s) as f64 / 1e6 * scale);
                    }
                    PlanAlt::Plus { ts, dur, scale } => {
                        let Some(t) = ts_of(get(ts), col)? else { continue };
                        let Some(secs) = secs_of(get(dur), scale, col)? else { continue };
                        let us = secs * 1e6;
                        if !us.is_finite() || us.abs() > 1e17 {
                            return Err(RejectReason::BadValue(col));
                        }
                        d.ts_us = Some(t + us.round() as i64);
                    }
                }
                break;
            }
        }
        Ok(d)
    }
}

/// Put one value into the draft, typed by the column.
#[inline]
fn set_val<'v>(d: &mut Draft<'v>, col: Col, v: Val<'v>, scale: f64) -> Result<(), RejectReason> {
    match v {
        Val::Absent => Ok(()),
        Val::Text { text, number, utf8 } => set_text(d, col, text, number, utf8, scale),
        Val::Bool(b) if col == Col::CacheHit => {
            d.cache_hit = Some(b);
            Ok(())
        }
        Val::Int(x) if col == Col::CacheHit && (x == 0 || x == 1) => {
            d.cache_hit = Some(x == 1);
            Ok(())
        }
        Val::Int(x) if col == Col::Ts => {
            d.ts_us = Some(epoch_int_to_us(x).ok_or(RejectReason::BadValue(col))?);
            Ok(())
        }
        Val::Float(x) if col == Col::Ts => {
            if !x.is_finite() {
                return Err(RejectReason::NonFinite(col));
            }
            d.ts_us = Some(epoch_float_to_us(x).ok_or(RejectReason::BadValue(col))?);
            Ok(())
        }
        Val::TsUs(t) if col == Col::Ts => {
            d.ts_us = Some(t);
            Ok(())
        }
        Val::Int(x) if col.is_numeric() => set_num(d, col, Num::Int(x), scale),
        Val::Float(x) if col.is_numeric() => set_num(d, col, Num::Float(x), scale),
        _ => Err(RejectReason::BadValue(col)),
    }
}

/// A number from an Arrow column (no text round trip).
#[derive(Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

#[inline]
pub(crate) fn set_num(d: &mut Draft<'_>, col: Col, v: Num, scale: f64) -> Result<(), RejectReason> {
    let as_int = || match v {
        Num::Int(x) => int_scaled(x, scale).map_err(|b| b.reason(col)),
        Num::Float(x) => int_from_f64(x, scale).map_err(|b| b.reason(col)),
    };
    let as_float = || match v {
        Num::Int(x) => x as f64 * scale,
        Num::Float(x) => x * scale,
    };
    match col {
        Col::Gpus => d.gpus = Some(as_int()?),
        Col::InputTokens => d.input_tokens = Some(as_int()?),
        Col::OutputTokens => d.output_tokens = Some(as_int()?),
        Col::DurationS => d.duration_s = Some(as_float()),
        Col::EnergyJ => d.energy_j = Some(as_float()),
        Col::Weight => d.weight = Some(as_float()),
        // A cache flag as an integer column: 0 and 1, as the text forms "0" and "1" read.
        Col::CacheHit => match v {
            Num::Int(x @ (0 | 1)) => d.cache_hit = Some(x == 1),
            _ => return Err(RejectReason::BadValue(col)),
        },
        _ => return Err(RejectReason::BadValue(col)),
    }
    Ok(())
}

/// A timestamp in microseconds (None: absent); `col` names the column in a reject.
fn ts_of(v: Val<'_>, col: Col) -> Result<Option<i64>, RejectReason> {
    let bad = RejectReason::BadValue(col);
    match v {
        Val::Absent => Ok(None),
        Val::Text { text: [], .. } => Ok(None),
        Val::Text { text, number, .. } => ts_from_text(text, number).map_err(|x| x.reason(col)),
        Val::Int(x) => epoch_int_to_us(x).map(Some).ok_or(bad),
        Val::Float(x) if x.is_finite() => epoch_float_to_us(x).map(Some).ok_or(bad),
        Val::TsUs(t) => Ok(Some(t)),
        _ => Err(bad),
    }
}

/// A duration in seconds after `scale` (None: absent).
fn secs_of(v: Val<'_>, scale: f64, col: Col) -> Result<Option<f64>, RejectReason> {
    let x = match v {
        Val::Absent => return Ok(None),
        Val::Text { text, .. } => match float_from_text(text, 1.0).map_err(|x| x.reason(col))? {
            Some(x) => x,
            None => return Ok(None),
        },
        Val::Int(x) => x as f64,
        Val::Float(x) => x,
        _ => return Err(RejectReason::BadValue(col)),
    };
    if !x.is_finite() {
        return Err(RejectReason::NonFinite(col));
    }
    Ok(Some(x * scale))
}
