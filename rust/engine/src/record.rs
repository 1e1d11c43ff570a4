//! The canonical inference record (methodology section 1), the reasons a record is rejected,
//! and the sink that readers hand valid records to.
//!
//! Readers fill a [`Draft`] from whatever the file holds, then [`Draft::finish`] applies the
//! rules every format shares (required fields, no negatives, no non-finite numbers, empty
//! strings are null). A record is either used whole or rejected whole: never half-used.

use crate::columns::Col;
use std::fmt;

/// One valid record, borrowing its strings from the reader's buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    /// Microseconds since the epoch, UTC.
    pub ts_us: i64,
    pub model: &'a str,
    pub site: Option<&'a str>,
    pub zone: Option<&'a str>,
    pub hardware: Option<&'a str>,
    pub gpus: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub duration_s: Option<f64>,
    pub energy_j: Option<f64>,
    /// How many real requests this record stands for; 1 when the log has no weight.
    pub weight: f64,
    pub request_id: Option<&'a str>,
    pub status: Option<&'a str>,
    /// The log's cache flag (section 10): `Some(true)` for a cache hit.
    pub cache_hit: Option<bool>,
}

/// A record as read, before the shared validation rules.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Draft<'a> {
    pub ts_us: Option<i64>,
    pub model: Option<&'a str>,
    pub site: Option<&'a str>,
    pub zone: Option<&'a str>,
    pub hardware: Option<&'a str>,
    pub gpus: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub duration_s: Option<f64>,
    pub energy_j: Option<f64>,
    pub weight: Option<f64>,
    pub request_id: Option<&'a str>,
    pub status: Option<&'a str>,
    /// The log's cache flag (section 10): `Some(true)` for a cache hit.
    pub cache_hit: Option<bool>,
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|v| !v.is_empty())
}

impl<'a> Draft<'a> {
    /// Apply the rules of methodology section 1 shared by every format.
    pub fn finish(self) -> Result<Record<'a>, RejectReason> {
        let ts_us = self.ts_us.ok_or(RejectReason::Missing(Col::Ts))?;
        let model = non_empty(self.model).ok_or(RejectReason::Missing(Col::Model))?;
        for (col, v) in
            [(Col::Gpus, self.gpus), (Col::InputTokens, self.input_tokens), (Col::OutputTokens, self.output_tokens)]
        {
            if matches!(v, Some(n) if n < 0) {
                return Err(RejectReason::Negative(col));
            }
        }
        for (col, v) in [(Col::DurationS, self.duration_s), (Col::EnergyJ, self.energy_j), (Col::Weight, self.weight)] {
            if let Some(x) = v {
                if !x.is_finite() {
                    return Err(RejectReason::NonFinite(col));
                }
                if x < 0.0 {
                    return Err(RejectReason::Negative(col));
                }
            }
        }
        Ok(Record {
            ts_us,
            model,
            site: non_empty(self.site),
            zone: non_empty(self.zone),
            hardware: non_empty(self.hardware),
            gpus: self.gpus,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            duration_s: self.duration_s,
            energy_j: self.energy_j,
            weight: self.weight.unwrap_or(1.0),
            request_id: non_empty(self.request_id),
            status: non_empty(self.status),
            cache_hit: self.cache_hit,
        })
    }
}

/// Why a record was rejected. `Display` is the short, stable reason used in the rejects
/// output and in the per-reason counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The line or row could not be parsed at all (`what` says how, e.g. "invalid JSON").
    Unparseable(&'static str),
    /// A required column (ts, model) is absent or null.
    Missing(Col),
    /// A value of the wrong kind (text where a number belongs, a non-integer token count,
    /// a timestamp that does not parse).
    BadValue(Col),
    Negative(Col),
    NonFinite(Col),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Unparseable(what) => write!(f, "unparseable: {what}"),
            RejectReason::Missing(c) => write!(f, "missing {}", c.name()),
            RejectReason::BadValue(c) => write!(f, "bad value for {}", c.name()),
            RejectReason::Negative(c) => write!(f, "negative {}", c.name()),
            RejectReason::NonFinite(c) => write!(f, "non-finite {}", c.name()),
        }
    }
}

/// Where a record came from: index into the scan's file list, and the 1-based line (text
/// formats) or 0-based row index (Parquet, Arrow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub file: u32,
    pub line: u64,
}

/// Receives the valid records of a scan. One sink per worker thread; the scan merges them at
/// the end. Rejected records never reach a sink (the scan writes and counts them).
pub trait RecordSink: Send + Sized {
    fn record(&mut self, rec: &Record<'_>, loc: Loc);

    /// Fold another worker's sink into this one.
    fn merge(&mut self, other: Self) -> crate::error::Result<()>;

    /// Called after each block of records; a sink that holds a bounded amount of state may
    /// flush (spill) here. An error stops the scan.
    fn end_block(&mut self) -> crate::error::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_draft() -> Draft<'static> {
        Draft { ts_us: Some(0), model: Some("m"), ..Default::default() }
    }

    #[test]
    fn required_fields() {
        assert_eq!(Draft { ts_us: None, ..ok_draft() }.finish(), Err(RejectReason::Missing(Col::Ts)));
        assert_eq!(Draft { model: Some(""), ..ok_draft() }.finish(), Err(RejectReason::Missing(Col::Model)));
        let r = ok_draft().finish().unwrap();
        assert_eq!(r.weight, 1.0);
    }

    #[test]
    fn negatives_and_non_finite() {
        assert_eq!(
            Draft { input_tokens: Some(-1), ..ok_draft() }.finish(),
            Err(RejectReason::Negative(Col::InputTokens))
        );
        assert_eq!(Draft { weight: Some(-0.5), ..ok_draft() }.finish(), Err(RejectReason::Negative(Col::Weight)));
        assert_eq!(
            Draft { energy_j: Some(f64::NAN), ..ok_draft() }.finish(),
            Err(RejectReason::NonFinite(Col::EnergyJ))
        );
        assert_eq!(RejectReason::Negative(Col::DurationS).to_string(), "negative duration_s");
        let r = Draft { site: Some(""), weight: Some(0.0), ..ok_draft() }.finish().unwrap();
        assert_eq!((r.site, r.weight), (None, 0.0));
    }
}
