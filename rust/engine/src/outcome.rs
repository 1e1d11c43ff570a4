//! Request outcome (methodology section 10): each record is `ok`, `failed` or `cached`.
//!
//! The built-in reading of a status value is kept here, in one place, so the kernel, the docs
//! and the SQL oracle can be checked against one list:
//!
//! * failed: the text values in [`FAILED_TEXT`] (case and surrounding blanks ignored), the OTel
//!   status code `2` (ERROR), and an HTTP status code >= 400;
//! * ok: the text values in [`OK_TEXT`], OTel codes `0` (UNSET) and `1` (OK), HTTP 1xx-3xx, and
//!   no status at all;
//! * anything else is *unrecognised*: counted as ok, and the run warns, naming the value, so a
//!   fleet's own vocabulary is never misread silently.
//!
//! Numbers: 0, 1 and 2 are OTel span status codes; 100-599 are HTTP codes; other numbers are
//! unrecognised. The pack's `[outcomes] ok/failed/cached` lists are consulted first, so a fleet
//! can add its own values or re-read a built-in one.
//!
//! `cached` never comes from the built-in lists: a record is cached when the log's cache flag
//! says so (`cache_hit` true) or its status is listed under `[outcomes] cached`. A record that
//! is both failed and cached is failed (an error response served from a cache is still an
//! error, and failed is the reading that hides nothing).

use crate::config::Outcomes;
use rustc_hash::FxHashMap;

/// Status text that means the request failed (lower case).
pub const FAILED_TEXT: [&str; 10] = [
    "error",
    "failure",
    "failed",
    "fail",
    "status_code_error",
    "timeout",
    "timed_out",
    "cancelled",
    "canceled",
    "aborted",
];

/// Status text that means the request was served normally (lower case).
pub const OK_TEXT: [&str; 7] =
    ["success", "ok", "succeeded", "completed", "status_code_ok", "status_code_unset", "unset"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Outcome {
    #[default]
    Ok = 0,
    Failed,
    Cached,
}

/// How a status value reads: its outcome, and whether any list recognised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusClass {
    pub outcome: Outcome,
    pub recognised: bool,
}

/// The built-in lists plus the pack's `[outcomes]`.
#[derive(Debug, Clone, Default)]
pub struct OutcomeRules {
    pack: FxHashMap<String, Outcome>,
}

impl OutcomeRules {
    pub fn new(o: &Outcomes) -> Self {
        let mut pack = FxHashMap::default();
        for (list, outcome) in [(&o.ok, Outcome::Ok), (&o.failed, Outcome::Failed), (&o.cached, Outcome::Cached)] {
            for v in list {
                pack.insert(v.trim().to_lowercase(), outcome);
            }
        }
        OutcomeRules { pack }
    }

    /// The outcome a status value stands for. Called once per distinct value per worker (the
    /// kernel caches it), so clarity beats speed here.
    pub fn classify(&self, status: &str) -> StatusClass {
        let norm = status.trim().to_lowercase();
        let known = |outcome| StatusClass { outcome, recognised: true };
        if let Some(&o) = self.pack.get(&norm) {
            return known(o);
        }
        if !norm.is_empty() && norm.len() <= 3 && norm.bytes().all(|b| b.is_ascii_digit()) {
            return match norm.parse::<u32>().unwrap_or(u32::MAX) {
                0 | 1 => known(Outcome::Ok),
                2 => known(Outcome::Failed),
                100..=399 => known(Outcome::Ok),
                400..=599 => known(Outcome::Failed),
                _ => StatusClass { outcome: Outcome::Ok, recognised: false },
            };
        }
        if FAILED_TEXT.contains(&norm.as_str()) {
            return known(Outcome::Failed);
        }
        if OK_TEXT.contains(&norm.as_str()) {
            return known(Outcome::Ok);
        }
        StatusClass { outcome: Outcome::Ok, recognised: false }
    }
}

/// A record's outcome from its status's outcome (`Ok` when it has none) and its cache flag:
/// failed wins over cached.
#[inline]
pub fn record_outcome(status: Outcome, cache_hit: Option<bool>) -> Outcome {
    match status {
        Outcome::Failed => Outcome::Failed,
        Outcome::Cached => Outcome::Cached,
        Outcome::Ok if cache_hit == Some(true) => Outcome::Cached,
        Outcome::Ok => Outcome::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(r: &OutcomeRules, s: &str) -> (Outcome, bool) {
        let c = r.classify(s);
        (c.outcome, c.recognised)
    }

    #[test]
    fn built_in_reading() {
        let r = OutcomeRules::default();
        for s in ["error", "Error", " FAILURE ", "failed", "fail", "STATUS_CODE_ERROR", "timeout", "timed_out"] {
            assert_eq!(class(&r, s), (Outcome::Failed, true), "{s}");
        }
        for s in ["cancelled", "canceled", "aborted", "2", "400", "429", "500", "599"] {
            assert_eq!(class(&r, s), (Outcome::Failed, true), "{s}");
        }
        for s in ["success", "ok", "OK", "succeeded", "completed", "STATUS_CODE_OK", "Unset", "status_code_unset"] {
            assert_eq!(class(&r, s), (Outcome::Ok, true), "{s}");
        }
        for s in ["0", "1", "100", "200", "204", "304", "399"] {
            assert_eq!(class(&r, s), (Outcome::Ok, true), "{s}");
        }
        // Unrecognised: counted as ok, flagged for a warning.
        for s in ["weird", "3", "99", "600", "999", "2000", "200.0", "-1", "cache_hit", ""] {
            assert_eq!(class(&r, s), (Outcome::Ok, false), "{s:?}");
        }
    }

    #[test]
    fn pack_lists_come_first() {
        let o = Outcomes {
            ok: vec!["404".into()],
            failed: vec!["Weird".into(), "ok".into()],
            cached: vec!["cache_hit".into()],
        };
        let r = OutcomeRules::new(&o);
        assert_eq!(class(&r, "weird"), (Outcome::Failed, true));
        assert_eq!(class(&r, "404"), (Outcome::Ok, true));
        assert_eq!(class(&r, "OK"), (Outcome::Failed, true));
        assert_eq!(class(&r, "CACHE_HIT"), (Outcome::Cached, true));
        assert_eq!(class(&r, "500"), (Outcome::Failed, true));
    }

    #[test]
    fn failed_wins_over_cached() {
        assert_eq!(record_outcome(Outcome::Failed, Some(true)), Outcome::Failed);
        assert_eq!(record_outcome(Outcome::Ok, Some(true)), Outcome::Cached);
        assert_eq!(record_outcome(Outcome::Cached, Some(false)), Outcome::Cached);
        assert_eq!(record_outcome(Outcome::Cached, None), Outcome::Cached);
        assert_eq!(record_outcome(Outcome::Ok, Some(false)), Outcome::Ok);
        assert_eq!(record_outcome(Outcome::Ok, None), Outcome::Ok);
    }
}
