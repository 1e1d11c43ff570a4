//! Value conversions shared by the text readers (JSON Lines, CSV) and the Arrow adapter, so a
//! value means the same whatever file it came from: numbers written as text are numbers,
//! `812.0` is a valid token count and `812.5` is not, unit scales apply the same way.
//!
//! Errors are a [`Bad`] kind; the caller turns it into the `RejectReason` for the column at
//! hand.

use crate::columns::Col;
use crate::record::RejectReason;
pub(crate) use crate::time::trim;
use crate::time::{epoch_float_to_us, epoch_int_to_us, parse_ts};

/// Why a value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// Wrong kind of value (text where a number belongs, `812.5` tokens, a bad timestamp).
    Value,
    /// NaN or infinity where an integer belongs (float columns keep NaN for `Draft::finish`).
    NonFinite,
}

impl Bad {
    #[inline]
    pub(crate) fn reason(self, col: Col) -> RejectReason {
        match self {
            Bad::Value => RejectReason::BadValue(col),
            Bad::NonFinite => RejectReason::NonFinite(col),
        }
    }
}

/// Plain decimal integer (`-?[0-9]{1,18}`), the overwhelmingly common case, without going
/// through `str` parsing.
#[inline]
fn fast_int(t: &[u8]) -> Option<i64> {
    let (neg, digits) = match t {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as i64;
    }
    Some(if neg { -v } else { v })
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Decimal number text -> f64. Short plain decimals (`4.21`) take Clinger's fast path: the
/// digits form an integer below 2^53 and the divisor a power of ten that is exact in f64, so
/// one IEEE division is correctly rounded, the same result `str::parse` gives. Anything else
/// (exponents, long mantissas, `NaN`, `Infinity`) goes to `str::parse`.
#[inline]
pub(crate) fn parse_f64(t: &[u8]) -> Option<f64> {
    let (neg, body) = match t {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, t),
    };
    let mut mant: u64 = 0;
    let mut ndigits = 0usize;
    let mut frac: usize = 0;
    let mut seen_dot = false;
    let mut ok = !body.is_empty();
    for &c in body {
        if c == b'.' && !seen_dot {
            seen_dot = true;
            continue;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            ok = false;
            break;
        }
        mant = mant.wrapping_mul(10).wrapping_add(d as u64);
        ndigits += 1;
        if seen_dot {
            frac += 1;
        }
    }
    if ok && ndigits > 0 && ndigits <= 15 && frac < POW10.len() {
        let v = mant as f64 / POW10[frac];
        return Some(if neg { -v } else { v });
    }
    std::str::from_utf8(t).ok()?.parse::<f64>().ok()
}

/// An integer column's value from text. Empty text is null.
#[inline]
pub(crate) fn int_from_text(t: &[u8], scale: f64) -> Result<Option<i64>, Bad> {
    let t = trim(t);
    if t.is_empty() {
        return Ok(None);
    }
    if let Some(v) = fast_int(t) {
        return int_scaled(v, scale).map(Some);
    }
    // 19-digit integers are exact in i64 but not in f64: parse them as integers, so a value
    // is either kept exactly or rejected, never silently rounded.
    if let Some(v) = std::str::from_utf8(t).ok().and_then(|s| s.parse::<i64>().ok()) {
        return int_scaled(v, scale).map(Some);
    }
    let v = parse_f64(t).ok_or(Bad::Value)?;
    int_from_f64(v, scale).map(Some)
}

#[inline]
pub(crate) fn int_scaled(v: i64, scale: f64) -> Result<i64, Bad> {
    if scale == 1.0 {
        Ok(v)
    } else {
        int_from_f64(v as f64, scale)
    }
}

/// A float standing for an integer column: without a scale it must be integral (`812.0`, not
/// `812.5`); with one (`tokens=ktokens*1000`) the scaled value is rounded.
#[inline]
pub(crate) fn int_from_f64(v: f64, scale: f64) -> Result<i64, Bad> {
    if !v.is_finite() {
        return Err(Bad::NonFinite);
    }
    let s = if scale == 1.0 {
        if v.fract() != 0.0 {
            return Err(Bad::Value);
        }
        v
    } else {
        (v * scale).round()
    };
    if s.abs() >= 9.2e18 || !s.is_finite() {
        return Err(Bad::Value);
    }
    Ok(s as i64)
}

/// A float column's value from text. Empty text is null; `NaN`/`inf` parse (and are then
/// rejected as non-finite by `Draft::finish`, which names the reason precisely).
#[inline]
pub(crate) fn float_from_text(t: &[u8], scale: f64) -> Result<Option<f64>, Bad> {
    let t = trim(t);
    if t.is_empty() {
        return Ok(None);
    }
    let v = parse_f64(t).ok_or(Bad::Value)?;
    Ok(Some(if scale == 1.0 { v } else { v * scale }))
}

/// A cache flag from text: `true`/`false` in any case, `1`/`0`, `yes`/`no`, `t`/`f`
/// (LiteLLM writes Python's `str(bool)`: `True`/`False`). Empty text, and `None`/`null` (what
/// `str(None)` and some exports write for "no flag"), are null.
#[inline]
pub(crate) fn bool_from_text(t: &[u8]) -> Result<Option<bool>, Bad> {
    let t = trim(t);
    if t.is_empty() {
        return Ok(None);
    }
    let mut low = [0u8; 5];
    if t.len() > low.len() {
        return Err(Bad::Value);
    }
    for (d, c) in low.iter_mut().zip(t) {
        *d = c.to_ascii_lowercase();
    }
    match &low[..t.len()] {
        b"true" | b"1" | b"yes" | b"t" | b"y" => Ok(Some(true)),
        b"false" | b"0" | b"no" | b"f" | b"n" => Ok(Some(false)),
        b"none" | b"null" => Ok(None),
        _ => Err(Bad::Value),
    }
}

/// A timestamp from text: RFC 3339 / naive date-time, or epoch digits by magnitude. With
/// `number` (a JSON number token) an exponent form like `1.7e9` is accepted too.
#[inline]
pub(crate) fn ts_from_text(t: &[u8], number: bool) -> Result<Option<i64>, Bad> {
    let t = trim(t);
    if t.is_empty() {
        return Ok(None);
    }
    if let Some(v) = parse_ts(t) {
        return Ok(Some(v));
    }
    if number {
        if let Some(v) = fast_int(t) {
            return epoch_int_to_us(v).map(Some).ok_or(Bad::Value);
        }
        if let Some(v) = std::str::from_utf8(t).ok().and_then(|s| s.parse::<f64>().ok()) {
            return epoch_float_to_us(v).map(Some).ok_or(Bad::Value);
        }
    }
    Err(Bad::Value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_std() {
        for s in
            ["4.21", "0.1", "-0.3", "123456789012345", "1.000000000000001", "1e3", "0.30000000000000004", "7", "-0"]
        {
            assert_eq!(parse_f64(s.as_bytes()), s.parse::<f64>().ok(), "{s}");
        }
        assert!(parse_f64(b"NaN").unwrap().is_nan());
        assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
        for s in ["", ".", "-", "1.2.3", "abc", "1,5"] {
            assert_eq!(parse_f64(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn ints() {
        assert_eq!(int_from_text(b"812", 1.0), Ok(Some(812)));
        assert_eq!(int_from_text(b" 812.0 ", 1.0), Ok(Some(812)));
        assert_eq!(int_from_text(b"8.12e2", 1.0), Ok(Some(812)));
        assert_eq!(int_from_text(b"812.5", 1.0), Err(Bad::Value));
        assert_eq!(int_from_text(b"1.5", 1000.0), Ok(Some(1500)));
        assert_eq!(int_from_text(b"3", 0.5), Ok(Some(2)));
        assert_eq!(int_from_text(b"", 1.0), Ok(None));
        assert_eq!(int_from_text(b"-4", 1.0), Ok(Some(-4)));
        assert_eq!(int_from_text(b"x", 1.0), Err(Bad::Value));
        assert_eq!(int_from_text(b"NaN", 1.0), Err(Bad::NonFinite));
        assert_eq!(int_from_text(b"1e30", 1.0), Err(Bad::Value));
    }

    #[test]
    fn cache_flags() {
        for (t, v) in [("True", Some(true)), ("false", Some(false)), ("1", Some(true)), ("None", None), ("", None)] {
            assert_eq!(bool_from_text(t.as_bytes()), Ok(v), "{t}");
        }
        assert_eq!(bool_from_text(b"maybe"), Err(Bad::Value));
        assert_eq!(bool_from_text(b"truest"), Err(Bad::Value));
    }

    #[test]
    fn timestamps() {
        const T0: i64 = 1_735_689_600_000_000;
        assert_eq!(ts_from_text(b"2025-01-01T00:00:00Z", false), Ok(Some(T0)));
        assert_eq!(ts_from_text(b"1735689600", true), Ok(Some(T0)));
        assert_eq!(ts_from_text(b"1.7356896e9", true), Ok(Some(T0)));
        assert_eq!(ts_from_text(b"1.7356896e9", false), Err(Bad::Value));
        assert_eq!(ts_from_text(b"yesterday", false), Err(Bad::Value));
    }
}
