//! Timestamps -> microseconds since the Unix epoch, UTC (methodology section 1).
//!
//! Accepted text forms: RFC 3339 (`2025-03-01T12:00:00Z`, `...+02:00`, `...-0530`), the same
//! with a space instead of `T`, with or without fractional seconds; without an offset the time
//! is UTC. A bare date means midnight UTC. Integers (and decimal numbers) are epoch values
//! whose unit is chosen by magnitude: < 1e11 seconds, < 1e14 ms, < 1e17 us, else ns.

pub const US_PER_SECOND: i64 = 1_000_000;
pub const US_PER_HOUR: i64 = 3_600 * US_PER_SECOND;

/// The calendar years a record may fall in, inclusive: the years `report --year` accepts
/// (Python's `datetime` ends at 9999-12-31, and a report of year Y needs Jan 1 of Y + 1; year
/// 0 does not exist there). One definition: the readers reject a timestamp outside it, and
/// the binding exports it to the report (`wattledger._core.MIN_YEAR`, `MAX_YEAR`).
pub const MIN_YEAR: i64 = 1;
pub const MAX_YEAR: i64 = 9998;
/// 0001-01-01T00:00:00Z in microseconds since the epoch (checked against [`days_from_civil`]
/// in the tests): the first instant a record may carry.
pub const MIN_TS_US: i64 = -62_135_596_800 * US_PER_SECOND;
/// 9999-01-01T00:00:00Z: the first instant past [`MAX_YEAR`].
pub const END_TS_US: i64 = 253_370_764_800 * US_PER_SECOND;

/// Whether a timestamp falls in the years [`MIN_YEAR`]..=[`MAX_YEAR`].
#[inline]
pub fn in_year_range(ts_us: i64) -> bool {
    (MIN_TS_US..END_TS_US).contains(&ts_us)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1-12, day 1-31) for days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Hours since the epoch for a timestamp in microseconds (floor, also before 1970).
#[inline]
pub fn hour_of(ts_us: i64) -> i64 {
    ts_us.div_euclid(US_PER_HOUR)
}

/// Months since 1970-01 (0 = January 1970) of an hour index; used for the grid's month means.
pub fn month_index_of_hour(hour: i64) -> i64 {
    let (y, m, _) = civil_from_days(hour.div_euclid(24));
    (y - 1970) * 12 + (m as i64 - 1)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// Epoch integer -> microseconds, unit by magnitude. None if it overflows.
pub fn epoch_int_to_us(v: i64) -> Option<i64> {
    let a = v.unsigned_abs();
    if a < 100_000_000_000 {
        v.checked_mul(US_PER_SECOND)
    } else if a < 100_000_000_000_000 {
        v.checked_mul(1_000)
    } else if a < 100_000_000_000_000_000 {
        Some(v)
    } else {
        Some(v.div_euclid(1_000))
    }
}

/// Epoch number with a fraction (e.g. Python's `time.time()`), unit by magnitude.
pub fn epoch_float_to_us(v: f64) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    let a = v.abs();
    let us = if a < 1e11 {
        v * 1e6
    } else if a < 1e14 {
        v * 1e3
    } else if a < 1e17 {
        v
    } else {
        v / 1e3
    };
    if us.abs() > 9.2e18 {
        return None;
    }
    Some(us.round() as i64)
}

#[inline]
fn digits<const N: usize>(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + N)?;
    let mut v = 0u32;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u32;
    }
    Some(v)
}

/// Parse a timestamp given as text. Returns microseconds since the epoch, UTC.
pub fn parse_ts(s: &[u8]) -> Option<i64> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    // Numbers: epoch by magnitude. A date always has '-' at index 4, a number never does.
    if s.len() < 5 || s[4] != b'-' {
        return parse_epoch_text(s);
    }
    let y = digits::<4>(s, 0)? as i64;
    let m = digits::<2>(s, 5)?;
    if s.get(7) != Some(&b'-') {
        return None;
    }
    let d = digits::<2>(s, 8)?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if s.len() == 10 {
        return Some(days * 86_400 * US_PER_SECOND);
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let hh = digits::<2>(s, 11)?;
    if s.get(13) != Some(&b':') {
        return None;
    }
    let mm = digits::<2>(s, 14)?;
    let mut i = 16;
    let mut ss = 0;
    if s.get(i) == Some(&b':') {
        ss = digits::<2>(s, 17)?;
        i = 19;
    }
    // 60 allows a leap second; it folds into the next minute, which is what UTC clocks do.
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut frac_us: i64 = 0;
    if matches!(s.get(i), Some(b'.') | Some(b',')) {
        i += 1;
        let start = i;
        let mut scale = 100_000i64;
        while let Some(&c) = s.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            frac_us += (c - b'0') as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let mut offset_s: i64 = 0;
    match s.get(i) {
        None => {}
        Some(b'Z') | Some(b'z') if i + 1 == s.len() => {}
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits::<2>(s, i + 1)? as i64;
            let rest = &s[i + 3..];
            let om = match rest {
                [] => 0,
                [b':', a, b] | [a, b] => digits::<2>(&[*a, *b], 0)? as i64,
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            offset_s = (oh * 3600 + om * 60) * if sign == b'+' { 1 } else { -1 };
        }
        _ => return None,
    }
    let secs = days * 86_400 + hh as i64 * 3600 + mm as i64 * 60 + ss as i64 - offset_s;
    Some(secs * US_PER_SECOND + frac_us)
}

fn parse_epoch_text(s: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(s).ok()?;
    if let Ok(v) = text.parse::<i64>() {
        return epoch_int_to_us(v);
    }
    // Only plain decimals: "inf", "nan" and exponents are not timestamps.
    if text.bytes().all(|c| c.is_ascii_digit() || c == b'.' || c == b'-') {
        return epoch_float_to_us(text.parse::<f64>().ok()?);
    }
    None
}

/// ASCII whitespace trimmed from both ends (shared with the readers).
#[inline]
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Format microseconds since the epoch as RFC 3339 UTC (`2025-01-01T00:00:00.000000Z`).
pub fn format_us(ts_us: i64) -> String {
    let secs = ts_us.div_euclid(US_PER_SECOND);
    let us = ts_us.rem_euclid(US_PER_SECOND);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_range_bounds_are_the_calendar_dates() {
        let day = 86_400 * US_PER_SECOND;
        assert_eq!(MIN_TS_US, days_from_civil(MIN_YEAR, 1, 1) * day);
        assert_eq!(END_TS_US, days_from_civil(MAX_YEAR + 1, 1, 1) * day);
        assert!(in_year_range(MIN_TS_US) && !in_year_range(MIN_TS_US - 1));
        assert!(in_year_range(END_TS_US - 1) && !in_year_range(END_TS_US));
        assert!(!in_year_range(parse_ts(b"0000-12-31T23:59:59Z").unwrap()));
        assert!(in_year_range(parse_ts(b"0001-01-01T00:00:00Z").unwrap()));
        assert!(in_year_range(parse_ts(b"9998-12-31T23:59:59Z").unwrap()));
        assert!(!in_year_range(parse_ts(b"9999-01-01T00:00:00Z").unwrap()));
    }

    fn p(s: &str) -> Option<i64> {
        parse_ts(s.as_bytes())
    }
    const T0: i64 = 1_735_689_600 * US_PER_SECOND; // 2025-01-01T00:00:00Z

    #[test]
    fn rfc3339_forms() {
        assert_eq!(p("2025-01-01T00:00:00Z"), Some(T0));
        assert_eq!(p("2025-01-01t00:00:00z"), Some(T0));
        assert_eq!(p("2025-01-01T00:00:00"), Some(T0));
        assert_eq!(p("2025-01-01 00:00:00"), Some(T0));
        assert_eq!(p("2025-01-01T00:00"), Some(T0));
        assert_eq!(p("2025-01-01"), Some(T0));
        assert_eq!(p("2025-01-01T02:00:00+02:00"), Some(T0));
        assert_eq!(p("2025-01-01T02:00:00+0200"), Some(T0));
        assert_eq!(p("2025-01-01T02:00:00+02"), Some(T0));
        assert_eq!(p("2024-12-31T18:30:00-05:30"), Some(T0));
        assert_eq!(p("2025-01-01T00:00:00.5Z"), Some(T0 + 500_000));
        assert_eq!(p("2025-01-01 00:00:00.123456789"), Some(T0 + 123_456));
        assert_eq!(p(" 2025-01-01T00:00:00Z "), Some(T0));
    }

    #[test]
    fn offsets_cross_year_edges() {
        // 00:30 on 1 Jan in Berlin is still 2024 in UTC.
        let t = p("2025-01-01T00:30:00+01:00").unwrap();
        assert_eq!(hour_of(t), hour_of(T0) - 1);
        assert_eq!(civil_from_days(t.div_euclid(86_400 * US_PER_SECOND)), (2024, 12, 31));
    }

    #[test]
    fn epoch_by_magnitude() {
        assert_eq!(p("1735689600"), Some(T0));
        assert_eq!(p("1735689600000"), Some(T0));
        assert_eq!(p("1735689600000000"), Some(T0));
        assert_eq!(p("1735689600000000000"), Some(T0));
        assert_eq!(p("1735689600.25"), Some(T0 + 250_000));
        assert_eq!(epoch_int_to_us(1_735_689_600_000), Some(T0));
        assert_eq!(epoch_float_to_us(1_735_689_600_000.0), Some(T0));
        assert_eq!(p("0"), Some(0));
    }

    #[test]
    fn garbage_is_none() {
        for s in [
            "",
            "nope",
            "2025-13-01T00:00:00Z",
            "2025-02-30",
            "2025-01-01T24:00:00Z",
            "2025-01-01X00:00",
            "2025-01-01T00:00:00+25:00",
            "2025-01-01T00:00:00Zjunk",
            "inf",
            "nan",
            "1e10",
            "2025-01-01T00:00:00.Z",
        ] {
            assert_eq!(p(s), None, "{s}");
        }
        assert_eq!(p("2024-02-29"), Some(days_from_civil(2024, 2, 29) * 86_400 * US_PER_SECOND));
    }

    #[test]
    fn civil_round_trip_and_months() {
        for z in [-800_000i64, -1, 0, 1, 19_000, 20_089, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(month_index_of_hour(0), 0);
        assert_eq!(month_index_of_hour(hour_of(T0)), 55 * 12);
        assert_eq!(month_index_of_hour(-1), -1);
        assert_eq!(format_us(T0 + 1), "2025-01-01T00:00:00.000001Z");
        assert_eq!(hour_of(-1), -1);
    }
}
