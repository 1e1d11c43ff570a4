//! The canonical inference record (methodology section 1), the reasons a record is rejected,
//! and the sink that readers hand valid records to.
//!
//! Readers fill a [`Draft`] from whatever the file holds, then [`Draft::finish`] applies the
//! rules every format shares (required fields, no negatives, no non-finite numbers, nothing
//! beyond the physical bounds below, empty strings are null). A record is either used whole or
//! rejected whole: never half-used. `validate` and every estimate path run the same readers
//! and this same function, so they accept exactly the same records.

use crate::columns::Col;
use crate::time::{in_year_range, MAX_YEAR, MIN_YEAR};
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

/// Physical bounds of one record's numbers (docs/bounds.md). Each is far beyond any real
/// request, so no real record is refused; together with the pack's bounds (config.rs) they
/// make every committed value finite. The largest contribution one record can make is below
/// 1e40 in every measure (the worst case is the flops method: 2 * 1e14 parameters * 2e12
/// tokens = 4e26 FLOP at 1e-3 TFLOP/s and MFU 1e-6 is 4e26 s at 2e4 W = 2.2e27 Wh, times
/// weight 1e12, overheads 21, PUE 5, band 11: 2.6e39 kWh; times 5000 g/kWh: 1.3e40 kg). A cell
/// sums at most 2^63 records, so its sums stay below 1e59: an overflow to infinity (1.8e308)
/// cannot happen, in a cell, a merge, a spill or the ledger's sums over any number of runs.
pub const MAX_GPUS: i64 = 1_000_000;
/// Tokens of one request: a million times the longest context windows of 2025.
pub const MAX_TOKENS: i64 = 1_000_000_000_000;
/// Seconds of one request: over three years.
pub const MAX_DURATION_S: f64 = 1e8;
/// Joules of one request: 278 MWh, a 700 W accelerator running for 45 years.
pub const MAX_ENERGY_J: f64 = 1e15;
/// Requests one record stands for: more than a year of the largest public services.
pub const MAX_WEIGHT: f64 = 1e12;

/// The upper bound of a numeric column (see [`MAX_WEIGHT`] and friends), as written in reject
/// reasons and docs.
pub fn upper_bound(col: Col) -> Option<f64> {
    match col {
        Col::Gpus => Some(MAX_GPUS as f64),
        Col::InputTokens | Col::OutputTokens => Some(MAX_TOKENS as f64),
        Col::DurationS => Some(MAX_DURATION_S),
        Col::EnergyJ => Some(MAX_ENERGY_J),
        Col::Weight => Some(MAX_WEIGHT),
        _ => None,
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|v| !v.is_empty())
}

/// The first character a name may not hold, if any. Names (model, site, zone, hardware,
/// status) end up in the ledger, in reports on terminals, in CSV, markdown and HTML, and in
/// one-line messages; these characters would break or forge that output, and no real name
/// has them:
/// - C0 controls U+0000..U+001F (NUL, tab, line breaks, ESC of ANSI/OSC sequences) and DEL;
/// - C1 controls U+0080..U+009F (CSI and OSC as single characters on some terminals);
/// - U+2028 and U+2029, the line and paragraph separators (line breaks in JavaScript, many
///   editors and Markdown renderers);
/// - the bidirectional embeddings, overrides and isolates U+202A..U+202E and U+2066..U+2069:
///   they reorder the text that follows them until a terminator, so a name could display as
///   another name or spill over the rest of a report line ("Trojan Source", CVE-2021-42574).
///
/// Accepted on purpose: every other character, accents, CJK, emoji, and the zero-width
/// joiners that emoji sequences need; also the bidi *marks* U+200E, U+200F and U+061C, which
/// have no scope (they only set the direction of neighbouring punctuation) and appear in real
/// Arabic and Hebrew text.
pub fn forbidden_char(s: &str) -> Option<char> {
    // Fast path: the forbidden characters are ASCII controls or start with byte 0xC2 (C1) or
    // 0xE2 (U+2028..U+2069); a name without those bytes is clean.
    if s.bytes().all(|b| b >= 0x20 && b != 0x7F && b != 0xC2 && b != 0xE2) {
        return None;
    }
    s.chars().find(|&c| {
        c.is_control() // C0, DEL, C1
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}

impl<'a> Draft<'a> {
    /// Apply the rules of methodology section 1 shared by every format.
    pub fn finish(self) -> Result<Record<'a>, RejectReason> {
        let ts_us = self.ts_us.ok_or(RejectReason::Missing(Col::Ts))?;
        if !in_year_range(ts_us) {
            return Err(RejectReason::YearOutOfRange);
        }
        let model = non_empty(self.model).ok_or(RejectReason::Missing(Col::Model))?;
        for (col, v) in [
            (Col::Model, Some(model)),
            (Col::Site, self.site),
            (Col::Zone, self.zone),
            (Col::Hardware, self.hardware),
            (Col::Status, self.status),
        ] {
            if let Some(c) = v.and_then(forbidden_char) {
                return Err(RejectReason::ForbiddenChar(col, c));
            }
        }
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
        // Bounds last, so a value that is also negative or non-finite keeps that reason.
        for (col, v, max) in [
            (Col::Gpus, self.gpus, MAX_GPUS),
            (Col::InputTokens, self.input_tokens, MAX_TOKENS),
            (Col::OutputTokens, self.output_tokens, MAX_TOKENS),
        ] {
            if matches!(v, Some(n) if n > max) {
                return Err(RejectReason::Implausible(col));
            }
        }
        for (col, v, max) in [
            (Col::DurationS, self.duration_s, MAX_DURATION_S),
            (Col::EnergyJ, self.energy_j, MAX_ENERGY_J),
            (Col::Weight, self.weight, MAX_WEIGHT),
        ] {
            if matches!(v, Some(x) if x > max) {
                return Err(RejectReason::Implausible(col));
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
    /// Above the column's physical bound ([`upper_bound`]): no real request has it, and
    /// counting it could overflow a sum.
    Implausible(Col),
    /// A line (JSON Lines) or row (CSV) longer than `--max-line` bytes (the limit): skipped
    /// unread, so that one endless line cannot take all memory.
    TooLong(u64),
    /// A timestamp outside the years a report can cover ([`crate::time::MIN_YEAR`] to
    /// [`crate::time::MAX_YEAR`]): a stray epoch value or a placeholder date, never a request.
    YearOutOfRange,
    /// A name holds a character no name may hold ([`forbidden_char`]).
    ForbiddenChar(Col, char),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Unparseable(what) => write!(f, "unparseable: {what}"),
            RejectReason::Missing(c) => write!(f, "missing {}", c.name()),
            RejectReason::BadValue(c) => write!(f, "bad value for {}", c.name()),
            RejectReason::Negative(c) => write!(f, "negative {}", c.name()),
            RejectReason::NonFinite(c) => write!(f, "non-finite {}", c.name()),
            RejectReason::Implausible(c) => match upper_bound(*c) {
                Some(max) => write!(f, "implausible {} (above {max:e})", c.name()),
                None => write!(f, "implausible {}", c.name()),
            },
            RejectReason::TooLong(max) => {
                write!(f, "line longer than --max-line ({})", crate::source::human_bytes(*max))
            }
            RejectReason::YearOutOfRange => write!(f, "ts outside the years {MIN_YEAR} to {MAX_YEAR}"),
            RejectReason::ForbiddenChar(col, c) => {
                let what = if c.is_control() { "control character" } else { "line separator or bidi control" };
                write!(f, "{what} U+{:04X} in {}", *c as u32, col.name())
            }
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

    /// Whether the sink takes Arrow input column by column through [`Self::rows`]. Otherwise
    /// (the default) the Arrow path hands it one record at a time, validated one draft at a
    /// time, as every text format does.
    const COLUMNAR: bool = false;

    /// The valid rows of a chunk of Arrow input ([`crate::rows::Rows::valid`], in row order);
    /// called only when [`Self::COLUMNAR`] is set. The default takes them one record at a time.
    fn rows(&mut self, rows: &crate::rows::Rows<'_>) {
        rows.each_record(self);
    }

    /// Fold another worker's sink into this one.
    fn merge(&mut self, other: Self) -> crate::error::Result<()>;

    /// Called after each block of records; a sink that holds a bounded amount of state may
    /// flush (spill) here. An error stops the scan.
    fn end_block(&mut self) -> crate::error::Result<()> {
        Ok(())
    }

    /// Whether the sink needs each block's number in input order ([`Self::begin_block`]): a
    /// sink whose output keeps input order (per-record rows) puts its blocks back in order.
    /// Then every block gets [`Self::end_block`] once, also one skipped after the scan was
    /// stopped or one that failed, so no number is ever missing.
    const ORDERED: bool = false;

    /// The number of the block about to be handed to the sink: 0, 1, 2... in the order the
    /// producer cut the input (files in order, each file front to back). Only when
    /// [`Self::ORDERED`].
    fn begin_block(&mut self, _seq: u64) {}
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

    #[test]
    fn values_beyond_physical_bounds_are_rejected_naming_the_column() {
        let cases = [
            (Draft { gpus: Some(MAX_GPUS + 1), ..ok_draft() }, Col::Gpus),
            (Draft { input_tokens: Some(MAX_TOKENS + 1), ..ok_draft() }, Col::InputTokens),
            (Draft { output_tokens: Some(i64::MAX), ..ok_draft() }, Col::OutputTokens),
            (Draft { duration_s: Some(1.01e8), ..ok_draft() }, Col::DurationS),
            (Draft { energy_j: Some(1e308), weight: Some(1e308), ..ok_draft() }, Col::EnergyJ),
            (Draft { weight: Some(1e13), ..ok_draft() }, Col::Weight),
        ];
        for (d, col) in cases {
            assert_eq!(d.finish(), Err(RejectReason::Implausible(col)), "{col:?}");
        }
        assert_eq!(RejectReason::Implausible(Col::EnergyJ).to_string(), "implausible energy_j (above 1e15)");
        assert_eq!(RejectReason::Implausible(Col::Weight).to_string(), "implausible weight (above 1e12)");
        assert_eq!(RejectReason::Implausible(Col::InputTokens).to_string(), "implausible input_tokens (above 1e12)");
        assert_eq!(RejectReason::Implausible(Col::Gpus).to_string(), "implausible gpus (above 1e6)");
        // The bounds themselves are accepted: they are inclusive.
        let at = Draft {
            gpus: Some(MAX_GPUS),
            input_tokens: Some(MAX_TOKENS),
            output_tokens: Some(MAX_TOKENS),
            duration_s: Some(MAX_DURATION_S),
            energy_j: Some(MAX_ENERGY_J),
            weight: Some(MAX_WEIGHT),
            ..ok_draft()
        };
        assert!(at.finish().is_ok());
        // Negative and non-finite keep their own reasons.
        assert_eq!(
            Draft { weight: Some(f64::INFINITY), ..ok_draft() }.finish(),
            Err(RejectReason::NonFinite(Col::Weight))
        );
    }

    #[test]
    fn names_with_control_characters_are_rejected_naming_character_and_column() {
        let bad = [
            ("a\0b", '\0'),
            ("tab\there", '\t'),
            ("line\nbreak", '\n'),
            ("cr\r", '\r'),
            ("\x1b[31mred", '\x1b'),
            ("del\x7f", '\x7f'),
            ("c1\u{85}", '\u{85}'),
            ("csi\u{9b}", '\u{9b}'),
            ("ls\u{2028}", '\u{2028}'),
            ("ps\u{2029}", '\u{2029}'),
            ("rlo\u{202E}gpt", '\u{202E}'),
            ("lre\u{202A}", '\u{202A}'),
            ("isolate\u{2066}", '\u{2066}'),
            ("pdi\u{2069}", '\u{2069}'),
        ];
        for (name, c) in bad {
            assert_eq!(forbidden_char(name), Some(c), "{name:?}");
            assert_eq!(
                Draft { model: Some(name), ..ok_draft() }.finish(),
                Err(RejectReason::ForbiddenChar(Col::Model, c))
            );
        }
        for col in [Col::Site, Col::Zone, Col::Hardware, Col::Status] {
            let mut d = ok_draft();
            let v = Some("x\0");
            match col {
                Col::Site => d.site = v,
                Col::Zone => d.zone = v,
                Col::Hardware => d.hardware = v,
                _ => d.status = v,
            }
            assert_eq!(d.finish(), Err(RejectReason::ForbiddenChar(col, '\0')), "{col:?}");
        }
        assert_eq!(RejectReason::ForbiddenChar(Col::Model, '\0').to_string(), "control character U+0000 in model");
        assert_eq!(
            RejectReason::ForbiddenChar(Col::Site, '\u{202E}').to_string(),
            "line separator or bidi control U+202E in site"
        );
        // Real names in any script stay valid, with the bytes that share a lead byte with the
        // forbidden ones (0xC2: U+00A0..U+00BF, 0xE2: U+2010.., U+20AC, U+2122).
        for ok in [
            "llama-3.1-8b",
            "modèle-é",
            "通义千问-72B",
            "🦙-7b",
            "👨\u{200D}👩\u{200D}👧",
            "µ-model ©®°±",
            "a\u{A0}b",
            "gpt\u{2013}4\u{2122} €",
            "نموذج\u{200F}",
            "\u{200E}x\u{61C}",
        ] {
            assert_eq!(forbidden_char(ok), None, "{ok:?}");
            assert!(Draft { model: Some(ok), site: Some(ok), ..ok_draft() }.finish().is_ok(), "{ok:?}");
        }
        // A request id is not a name: it is never stored or printed.
        assert!(Draft { request_id: Some("a\0b"), ..ok_draft() }.finish().is_ok());
    }

    #[test]
    fn timestamps_outside_the_report_years_are_rejected() {
        use crate::time::{END_TS_US, MIN_TS_US};
        for ts in [MIN_TS_US - 1, END_TS_US, i64::MIN, i64::MAX] {
            assert_eq!(Draft { ts_us: Some(ts), ..ok_draft() }.finish(), Err(RejectReason::YearOutOfRange));
        }
        for ts in [MIN_TS_US, END_TS_US - 1, 0] {
            assert!(Draft { ts_us: Some(ts), ..ok_draft() }.finish().is_ok());
        }
        assert_eq!(RejectReason::YearOutOfRange.to_string(), "ts outside the years 1 to 9998");
    }
}
