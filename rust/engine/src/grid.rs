//! Hourly grid carbon intensity (methodology section 5).
//!
//! Inputs, recognised by their header (matched case-insensitively, `₂` == `2`, after trimming
//! whitespace and a BOM):
//! - Electricity Maps CSV exports (current header `Datetime (UTC),...,Zone id,Carbon
//!   intensity gCO₂eq/kWh (direct),Carbon intensity gCO₂eq/kWh (Life cycle),...,Data
//!   estimated,Data estimation method`, older `Zone Id`, `(LCA)`, `Data Estimated`);
//! - the plain form `zone,datetime,g_per_kwh`;
//! - the UK National Grid Carbon Intensity API as CSV (`from,to,intensity.forecast,
//!   intensity.actual[,intensity.index]`, half-hourly, times in UTC with `Z`).
//!
//! A file without a zone column (the UK CSV, `datetime,g_per_kwh`, an Electricity Maps export
//! with the zone columns cut) takes its zone from the argument: `FILE@ZONE`. A file that has a
//! zone column may still be given `@ZONE`; then every row must name that zone (an assertion,
//! never a filter: rows of other zones are an error, not silently dropped).
//!
//! Resolution: each (file, zone)'s row spacing is the median gap between its consecutive
//! distinct timestamps (the lower median for an even count). Under 20 h the rows are hourly
//! (sub-hourly ones averaged into their hour, as the spec says; a spacing of a few hours is an
//! hourly series with gaps, reported as gaps). About a day (20-28 h) or a month (26-32 days)
//! apart, the rows are refused unless the caller declared that resolution
//! ([`Resolution::Day`] / [`Resolution::Month`], `--grid-resolution`): then a row's timestamp
//! is taken as the start of its period and its value applies to every hour of the UTC day (or
//! UTC calendar month) that contains the timestamp. Any other spacing (28 h to 26 days,
//! beyond 32 days) is refused. A zone with a single timestamp has no spacing: it takes the
//! declared resolution. Pricing a daily grid as if it were hourly would put 23 of 24 hours on
//! the month-mean fallback, which is why coarse rows are never taken silently.
//!
//! Rows for the same (zone, timestamp) - within a file or across files - are averaged; when
//! their values differ the grid says so in [`Grid::warnings`]. Other warnings: timestamps
//! without a UTC offset in the plain and UK forms (read as UTC, per the spec; local times
//! would be shifted), a daily or monthly grid spread over hours, and hours flagged estimated.
//! An hour is estimated when any row averaged into it is (Electricity Maps `Data estimated`
//! true, or a UK half-hour with a forecast but no actual value); the kernel sums the energy
//! priced on such hours so a run can report its share.
//!
//! An empty intensity cell is a missing hour, not an error, and still extends the zone's
//! covered range so the summary can report it as a gap.
//!
//! Storage is proportional to the hours with a value, never to the span they cover: a zone
//! whose hours fill most of its span is dense, a `Vec<f64>` indexed by `hour - first_hour`
//! (NaN = missing), so the kernel's lookup is an index, not a hash join; a zone with a few
//! hours spread far apart (a stray year, or a hostile file: 1000 zones of three rows a century
//! apart took 4 GB when every zone was dense) keeps its hours sorted and looks them up by
//! binary search. Plus the per-month means (UTC calendar months with a value) that the first
//! fallback of the lookup order needs.

use crate::config::{num_text, G_PER_KWH};
use crate::error::{one_line, Error, Result};
use crate::textcheck;
use crate::time::{civil_from_days, days_from_civil, format_us, hour_of, month_index_of_hour, parse_ts, US_PER_HOUR};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A zone spanning more hours than this is refused: it is a stray timestamp (a 1970 epoch
/// zero, a year 9999). ~114 years. (Memory does not depend on it: see the storage above.)
const MAX_SPAN_HOURS: i64 = 1_000_000;

/// A zone is stored dense when its span is at most this many hours beyond 8 times its hours
/// with a value: dense costs 8 bytes per hour of span, sparse 16 per hour with a value, so
/// dense is chosen only where it costs at most 4 times sparse plus a year of hours (70 KB).
const DENSE_SLACK_HOURS: i64 = 24 * 366;

const US_PER_DAY: i64 = 24 * US_PER_HOUR;

/// The coarsest row spacing a caller accepts for grid files (`--grid-resolution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub enum Resolution {
    /// Hourly or finer (sub-hourly rows are averaged into their hour). The default.
    #[default]
    Hour,
    /// Daily rows accepted: each applies to the 24 hours of its UTC day.
    Day,
    /// Monthly rows accepted: each applies to every hour of its UTC calendar month.
    Month,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Hour => "hour",
            Resolution::Day => "day",
            Resolution::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Result<Resolution> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hour" | "hourly" => Ok(Resolution::Hour),
            "day" | "daily" => Ok(Resolution::Day),
            "month" | "monthly" => Ok(Resolution::Month),
            _ => Err(Error::Usage(format!("grid resolution '{s}' is not one of hour, day, month"))),
        }
    }

    fn adjective(self) -> &'static str {
        match self {
            Resolution::Hour => "hourly",
            Resolution::Day => "daily",
            Resolution::Month => "monthly",
        }
    }
}

/// How grid files are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GridOptions {
    /// Life-cycle instead of direct factors (Electricity Maps exports only).
    pub lifecycle: bool,
    pub resolution: Resolution,
}

/// One grid input held in memory: its name (the path, in messages), the zone given with
/// `FILE@ZONE`, and the CSV text.
#[derive(Debug, Clone, Copy)]
pub struct GridText<'a> {
    pub name: &'a str,
    pub zone: Option<&'a str>,
    pub text: &'a str,
}

/// `FILE` or `FILE@ZONE` -> (path, zone). A spec naming an existing path is that path, even if
/// it contains `@`; otherwise the text after the last `@` is the zone (so `dir@x/uk.csv@GB`
/// works), unless it is empty or looks like a path.
pub fn split_spec(spec: &str) -> (PathBuf, Option<String>) {
    let whole = Path::new(spec);
    if whole.exists() {
        return (whole.to_path_buf(), None);
    }
    if let Some((file, zone)) = spec.rsplit_once('@') {
        let zone = zone.trim();
        if !file.is_empty() && !zone.is_empty() && !zone.contains(['/', '\\']) {
            return (PathBuf::from(file), Some(zone.to_string()));
        }
    }
    (whole.to_path_buf(), None)
}

/// Which kinds of estimated hours a grid holds (bits), for the run's warning.
const EST_FLAGGED: u8 = 1;
const EST_FORECAST: u8 = 2;

/// One zone's hourly series.
#[derive(Debug, Clone)]
struct ZoneSeries {
    name: String,
    /// The covered range (an empty intensity cell extends it too).
    first_hour: i64,
    last_hour: i64,
    /// Empty for a dense zone: `values[i]` is hour `first_hour + i`, NaN where it has no
    /// value. Else (sparse) the hours with a value, ascending, `values[i]` being hour `hours[i]`.
    hours: Vec<i64>,
    values: Vec<f64>,
    /// Whether each value's hour is estimated, indexed like `values`; empty when none is.
    estimated: Vec<bool>,
    /// (month since 1970-01, mean of its hourly values) per UTC calendar month with a value,
    /// ascending.
    month_means: Vec<(i64, f64)>,
}

impl ZoneSeries {
    /// Store the hours with a value, `(hour, g/kWh, estimated)` ascending, dense or sparse
    /// (see [`DENSE_SLACK_HOURS`]).
    fn new(name: String, first_hour: i64, last_hour: i64, present: Vec<(i64, f64, bool)>) -> ZoneSeries {
        let span = last_hour - first_hour + 1;
        let dense = span <= 8 * present.len() as i64 + DENSE_SLACK_HOURS;
        let any_estimated = present.iter().any(|p| p.2);
        let (hours, values, estimated) = if dense {
            let mut values = vec![f64::NAN; span as usize];
            let mut estimated = if any_estimated { vec![false; span as usize] } else { Vec::new() };
            for &(h, v, e) in &present {
                let i = (h - first_hour) as usize;
                values[i] = v;
                if e {
                    estimated[i] = true;
                }
            }
            (Vec::new(), values, estimated)
        } else {
            let estimated = if any_estimated { present.iter().map(|p| p.2).collect() } else { Vec::new() };
            (present.iter().map(|p| p.0).collect(), present.iter().map(|p| p.1).collect(), estimated)
        };
        let mut month_means: Vec<(i64, f64)> = Vec::new();
        let mut month_sum = (i64::MIN, 0.0f64, 0u32);
        for &(h, v, _) in &present {
            let m = month_index_of_hour(h);
            if m != month_sum.0 {
                if month_sum.2 > 0 {
                    month_means.push((month_sum.0, month_sum.1 / month_sum.2 as f64));
                }
                month_sum = (m, 0.0, 0);
            }
            month_sum.1 += v;
            month_sum.2 += 1;
        }
        if month_sum.2 > 0 {
            month_means.push((month_sum.0, month_sum.1 / month_sum.2 as f64));
        }
        ZoneSeries { name, first_hour, last_hour, hours, values, estimated, month_means }
    }

    #[inline]
    fn slot(&self, hour: i64) -> Option<usize> {
        if self.hours.is_empty() {
            let i = usize::try_from(hour - self.first_hour).ok()?;
            (i < self.values.len()).then_some(i)
        } else {
            self.hours.binary_search(&hour).ok()
        }
    }

    #[inline]
    fn lookup(&self, hour: i64) -> Option<(f64, bool)> {
        let i = self.slot(hour)?;
        let v = self.values[i];
        if v.is_nan() {
            return None;
        }
        Some((v, !self.estimated.is_empty() && self.estimated[i]))
    }

    fn month(&self, month: i64) -> Option<f64> {
        let i = self.month_means.binary_search_by_key(&month, |m| m.0).ok()?;
        Some(self.month_means[i].1)
    }

    /// `(hour, g/kWh, estimated)` of every hour with a value, ascending.
    fn present(&self) -> impl Iterator<Item = (i64, f64, bool)> + '_ {
        self.values.iter().enumerate().filter(|(_, v)| !v.is_nan()).map(move |(i, &v)| {
            let h = if self.hours.is_empty() { self.first_hour + i as i64 } else { self.hours[i] };
            (h, v, !self.estimated.is_empty() && self.estimated[i])
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneSummary {
    pub zone: String,
    pub first_hour: i64,
    pub last_hour: i64,
    pub hours_with_value: u64,
    /// Hours within `first_hour..=last_hour` without a value.
    pub hours_missing: u64,
    /// Hours with a value that is flagged estimated.
    pub hours_estimated: u64,
    /// Runs of missing hours, `start..=end`.
    pub gaps: Vec<(i64, i64)>,
    /// Mean of the hourly values (each hour counted once).
    pub mean_g_per_kwh: f64,
}

/// The hourly grid table: (zone, hour) -> gCO2e/kWh.
#[derive(Debug, Clone, Default)]
pub struct Grid {
    zones: Vec<ZoneSeries>,
    index: FxHashMap<String, usize>,
    /// Whether the life-cycle factors were read (else direct); the report says which.
    pub lifecycle: bool,
    warnings: Vec<String>,
    estimated_kinds: u8,
}

/// Rows for one exact (zone, timestamp), merged as they arrive.
#[derive(Debug, Clone, Copy)]
struct Cell {
    sum: f64,
    n: u32,
    min: f64,
    max: f64,
    estimated: bool,
    /// First and last file that gave this timestamp a value (for the duplicate warning).
    first_file: u32,
    last_file: u32,
    /// The file and line of the first row of this timestamp (for a span error).
    at: (u32, u64),
}

/// Cells per zone while reading; averaged into hours when the grid is built.
#[derive(Default)]
struct Accumulator {
    files: Vec<String>,
    zones: FxHashMap<String, FxHashMap<i64, Cell>>,
    warnings: Vec<String>,
    estimated_kinds: u8,
}

/// One row as read: timestamp (us), value, estimated.
#[derive(Debug, Clone, Copy)]
struct Row {
    ts: i64,
    value: Option<f64>,
    estimated: bool,
    /// 1-based line in its file.
    line: u64,
}

#[derive(Default)]
struct ZoneRows {
    rows: Vec<Row>,
    /// Rows whose date-time had no UTC offset, and the first such text.
    naive: u64,
    naive_example: String,
}

/// What one file held, per zone (sorted, for a stable warning order).
struct FileRows {
    kind: Kind,
    zones: BTreeMap<String, ZoneRows>,
}

impl Accumulator {
    fn add_text(&mut self, input: GridText<'_>, opts: &GridOptions) -> Result<()> {
        let path = Path::new(input.name);
        let read = read_rows(input.text, path, input.zone, opts.lifecycle)?;
        let file = self.files.len() as u32;
        self.files.push(input.name.to_string());
        for (zone, zr) in read.zones {
            let period = match spacing_us(&zr.rows) {
                None => opts.resolution,
                Some((gap, line)) => match classify(gap) {
                    Some(p) if p <= opts.resolution => p,
                    Some(p) => {
                        return Err(grid_err(
                            path,
                            line,
                            format!(
                                "zone {zone}: rows are {} apart ({}), not hourly; pass --grid-resolution {} \
                             (resolution=\"{}\") to apply each row to every hour of its UTC {}, or give hourly data",
                                describe_gap(gap),
                                p.adjective(),
                                p.name(),
                                p.name(),
                                p.name()
                            ),
                        ));
                    }
                    None => {
                        let annual = if gap > 32 * US_PER_DAY {
                            "; for one annual factor, set the site's fallback_g_per_kwh in the pack instead"
                        } else {
                            ""
                        };
                        return Err(grid_err(
                            path,
                            line,
                            format!(
                                "zone {zone}: rows are {} apart; a grid needs hourly rows (sub-hourly ones are \
                             averaged into their hour), or daily or monthly rows with --grid-resolution day|month; \
                             resample it{annual}",
                                describe_gap(gap)
                            ),
                        ));
                    }
                },
            };
            let cells = self.zones.entry(zone.clone()).or_default();
            // Distinct hours of this file and zone with a value, and whether each is estimated.
            let mut hours: FxHashMap<i64, bool> = FxHashMap::default();
            let mut add = |ts: i64, value: Option<f64>, estimated: bool, line: u64| {
                let c = cells.entry(ts).or_insert(Cell {
                    sum: 0.0,
                    n: 0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    estimated: false,
                    first_file: file,
                    last_file: file,
                    at: (file, line),
                });
                if let Some(v) = value {
                    if c.n == 0 {
                        c.first_file = file;
                    }
                    c.sum += v;
                    c.n += 1;
                    c.min = c.min.min(v);
                    c.max = c.max.max(v);
                    c.estimated |= estimated;
                    c.last_file = file;
                    *hours.entry(hour_of(ts)).or_insert(false) |= estimated;
                }
            };
            for r in &zr.rows {
                match period {
                    Resolution::Hour => add(r.ts, r.value, r.estimated, r.line),
                    Resolution::Day | Resolution::Month => {
                        // The row's period is the UTC day (month) containing its timestamp;
                        // each hour of it gets the row's value as one row of that hour.
                        let (start, end) = period_hours(r.ts, period);
                        for h in start..end {
                            add(h * US_PER_HOUR, r.value, r.estimated, r.line);
                        }
                    }
                }
            }
            let name = input.name;
            if period > Resolution::Hour {
                self.warnings.push(format!(
                    "grid {name}: zone {zone}: the grid is {}: {} rows spread over every hour of their UTC {} \
                     (--grid-resolution {}); hour-to-hour variation is not in it",
                    period.adjective(),
                    zr.rows.len(),
                    period.name(),
                    period.name()
                ));
            }
            if zr.naive > 0 {
                let rows = if zr.naive == 1 { "row has" } else { "rows have" };
                self.warnings.push(format!(
                    "grid {name}: zone {zone}: {} {rows} a timestamp without a UTC offset (e.g. '{}'), read as \
                     UTC; if they are local times every value is shifted by the UTC offset (1-2 h in Europe): \
                     write them with 'Z' or an offset",
                    zr.naive, zr.naive_example
                ));
            }
            let estimated = hours.values().filter(|&&e| e).count();
            if estimated > 0 {
                let (what, bit) = match read.kind {
                    Kind::UkApi => {
                        ("have only intensity.forecast (no intensity.actual), counted as estimated", EST_FORECAST)
                    }
                    _ => ("are flagged estimated (Electricity Maps 'Data estimated')", EST_FLAGGED),
                };
                self.estimated_kinds |= bit;
                self.warnings.push(format!(
                    "grid {name}: zone {zone}: {estimated} of {} hours {what}; the run reports the share of \
                     energy priced on them",
                    hours.len()
                ));
            }
        }
        Ok(())
    }

    fn build(self, lifecycle: bool, what: &str) -> Result<Grid> {
        let mut names: Vec<String> = self.zones.keys().cloned().collect();
        names.sort();
        let mut zones = Vec::with_capacity(names.len());
        let mut acc = self.zones;
        let mut warnings = self.warnings;
        for name in names {
            let cells = acc.remove(&name).unwrap_or_default();
            // (sum, rows, estimated) per hour: every row of the hour counts once (plain mean).
            let mut hours: FxHashMap<i64, (f64, u32, bool)> = FxHashMap::default();
            let mut conflicts: FxHashSet<i64> = FxHashSet::default();
            let mut spread = 0.0f64;
            let mut files: BTreeSet<u32> = BTreeSet::new();
            // The earliest and latest rows (timestamp, file, line), for a span error.
            let (mut first, mut last) = ((i64::MAX, (0, 0)), (i64::MIN, (0, 0)));
            for (ts, c) in cells {
                if ts < first.0 {
                    first = (ts, c.at);
                }
                if ts > last.0 {
                    last = (ts, c.at);
                }
                let h = hours.entry(hour_of(ts)).or_insert((0.0, 0, false));
                h.0 += c.sum;
                h.1 += c.n;
                h.2 |= c.estimated;
                if c.n > 1 && c.max > c.min {
                    conflicts.insert(hour_of(ts));
                    spread = spread.max(c.max - c.min);
                    files.insert(c.first_file);
                    files.insert(c.last_file);
                }
            }
            let (first_hour, last_hour) = (hour_of(first.0), hour_of(last.0));
            if last_hour - first_hour >= MAX_SPAN_HOURS {
                let (file, line) = last.1;
                let (first_file, first_line) = first.1;
                return Err(Error::Grid {
                    path: PathBuf::from(self.files.get(file as usize).map_or(what, |f| f.as_str())),
                    line,
                    msg: format!(
                        "zone {name}: {} is more than {MAX_SPAN_HOURS} hours (114 years) after the zone's first \
                         row ({}, {} line {first_line}); is a timestamp wrong?",
                        format_us(last.0),
                        format_us(first.0),
                        self.files.get(first_file as usize).map_or(what, |f| f.as_str()),
                    ),
                });
            }
            let mut present: Vec<(i64, f64, bool)> = hours
                .into_iter()
                .filter(|&(_, (_, n, _))| n > 0)
                .map(|(h, (sum, n, est))| (h, sum / n as f64, est))
                .collect();
            present.sort_unstable_by_key(|p| p.0);
            if !conflicts.is_empty() {
                let files: Vec<&str> = files.iter().map(|&f| self.files[f as usize].as_str()).collect();
                let n = conflicts.len();
                warnings.push(format!(
                    "grid {}: zone {name}: {n} {} several rows for the same time with different values \
                     (largest spread {} g/kWh); they were averaged",
                    files.join(", "),
                    if n == 1 { "hour has" } else { "hours have" },
                    fmt_num(spread)
                ));
            }
            zones.push(ZoneSeries::new(name, first_hour, last_hour, present));
        }
        let index = zones.iter().enumerate().map(|(i, z)| (z.name.clone(), i)).collect();
        // Warnings quote zones and timestamps as the file wrote them: one line each all the same.
        let warnings = warnings.iter().map(|w| one_line(w).into_owned()).collect();
        Ok(Grid { zones, index, lifecycle, warnings, estimated_kinds: self.estimated_kinds })
    }
}

/// Median gap between consecutive distinct timestamps (the lower median for an even count);
/// `None` with fewer than two distinct timestamps. The median, not the minimum, so a stray
/// extra row does not make a daily file look hourly, and gaps do not make an hourly one look
/// coarse.
/// With the gap, the line of the first row that follows a gap of that size (for a message).
fn spacing_us(rows: &[Row]) -> Option<(i64, u64)> {
    let mut ts: Vec<(i64, u64)> = rows.iter().map(|r| (r.ts, r.line)).collect();
    ts.sort_unstable();
    ts.dedup_by_key(|t| t.0);
    if ts.len() < 2 {
        return None;
    }
    let mut gaps: Vec<i64> = ts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort_unstable();
    let gap = gaps[(gaps.len() - 1) / 2];
    let line = ts.windows(2).find(|w| w[1].0 - w[0].0 == gap).map_or(0, |w| w[1].1);
    Some((gap, line))
}

fn grid_err(path: &Path, line: u64, msg: String) -> Error {
    Error::Grid { path: path.to_path_buf(), line, msg }
}

/// The period rows this far apart stand for; `None` for a spacing the grid does not take.
/// Under 20 h the rows are hourly (sub-hourly ones averaged into their hour; a median above
/// 1 h is an hourly series with gaps, e.g. two rows at 00:00 and 02:00, and its missing hours
/// are gaps the summary and the fallback share report). Day and month allow slack for rows at
/// local midnights (23/25 h across a DST change) and for months of 28-31 days.
fn classify(gap_us: i64) -> Option<Resolution> {
    if gap_us < 20 * US_PER_HOUR {
        Some(Resolution::Hour)
    } else if (20 * US_PER_HOUR..=28 * US_PER_HOUR).contains(&gap_us) {
        Some(Resolution::Day)
    } else if (26 * US_PER_DAY..=32 * US_PER_DAY).contains(&gap_us) {
        Some(Resolution::Month)
    } else {
        None
    }
}

fn describe_gap(gap_us: i64) -> String {
    if gap_us < US_PER_HOUR {
        format!("{} min", fmt_num(gap_us as f64 / 60e6))
    } else if gap_us < 48 * US_PER_HOUR {
        format!("{} h", fmt_num(gap_us as f64 / US_PER_HOUR as f64))
    } else {
        format!("{} days", fmt_num(gap_us as f64 / US_PER_DAY as f64))
    }
}

/// A number for a message: at most 3 decimals, trailing zeros dropped.
fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Hours `start..end` of the UTC day or calendar month containing `ts_us`.
fn period_hours(ts_us: i64, period: Resolution) -> (i64, i64) {
    let day = ts_us.div_euclid(US_PER_DAY);
    match period {
        Resolution::Hour => (hour_of(ts_us), hour_of(ts_us) + 1),
        Resolution::Day => (day * 24, day * 24 + 24),
        Resolution::Month => {
            let (y, m, _) = civil_from_days(day);
            let first = days_from_civil(y, m, 1);
            let next = if m == 12 { days_from_civil(y + 1, 1, 1) } else { days_from_civil(y, m + 1, 1) };
            (first * 24, next * 24)
        }
    }
}

/// Header cell normalised for matching: trimmed, BOM-free, lower case, `₂` -> `2`.
fn norm_header(h: &str) -> String {
    h.trim().trim_start_matches('\u{feff}').trim().to_lowercase().replace('\u{2082}', "2")
}

/// Split one CSV line into fields; `"..."` quoting with `""` escapes. Grid exports never put
/// newlines inside fields, so lines are records.
fn split_csv(line: &str, out: &mut Vec<String>) -> std::result::Result<(), &'static str> {
    out.clear();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && field.trim().is_empty() && !was_quoted {
            field.clear();
            in_quotes = true;
            was_quoted = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut field));
            was_quoted = false;
        } else {
            field.push(c);
        }
    }
    if in_quotes {
        return Err("unterminated quoted field");
    }
    out.push(field);
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    ElectricityMaps,
    UkApi,
}

struct Layout {
    kind: Kind,
    zone: Option<usize>,
    ts: usize,
    /// The intensity (UK: `intensity.actual`, which may be absent).
    value: Option<usize>,
    /// UK: `intensity.forecast`, used when the actual value is empty (estimated).
    forecast: Option<usize>,
    /// UK: the interval end, checked to follow `from`.
    to: Option<usize>,
    /// Electricity Maps `Data estimated`.
    estimated: Option<usize>,
    /// Fields in the header.
    width: usize,
}

const EXPECTED: &str = "expected an Electricity Maps export (`Datetime (UTC)`, `Zone id`, `Carbon intensity gCO₂eq/kWh (direct)` / `(Life cycle)`; older files `Zone Id`, `(LCA)`), the plain form `zone,datetime,g_per_kwh` (or `datetime,g_per_kwh` with FILE@ZONE), or the UK Carbon Intensity API CSV `from,to,intensity.forecast,intensity.actual` with FILE@ZONE";

fn layout(headers: &[String], lifecycle: bool) -> std::result::Result<Layout, String> {
    let h: Vec<String> = headers.iter().map(|s| norm_header(s)).collect();
    let find = |names: &[&str]| h.iter().position(|x| names.contains(&x.as_str()));
    let base = |kind, ts, value| Layout {
        kind,
        zone: None,
        ts,
        value,
        forecast: None,
        to: None,
        estimated: None,
        width: h.len(),
    };
    if let (Some(ts), Some(value)) = (find(&["datetime"]), find(&["g_per_kwh"])) {
        return Ok(Layout { zone: find(&["zone"]), ..base(Kind::Plain, ts, Some(value)) });
    }
    if let Some(from) = find(&["from"]) {
        let actual = find(&["intensity.actual", "actual"]);
        let forecast = find(&["intensity.forecast", "forecast"]);
        if actual.is_some() || forecast.is_some() {
            if lifecycle {
                return Err("the UK Carbon Intensity API gives direct (generation) factors only, no life-cycle \
                            column; drop --lifecycle or use an Electricity Maps export"
                    .into());
            }
            return Ok(Layout {
                zone: find(&["zone"]),
                forecast,
                to: find(&["to"]),
                ..base(Kind::UkApi, from, actual)
            });
        }
    }
    let ts = find(&["datetime (utc)"]);
    let value = if lifecycle {
        find(&["carbon intensity gco2eq/kwh (life cycle)", "carbon intensity gco2eq/kwh (lca)"])
    } else {
        find(&["carbon intensity gco2eq/kwh (direct)"])
    };
    match (ts, value) {
        (Some(ts), Some(value)) => Ok(Layout {
            zone: find(&["zone id"]),
            estimated: find(&["data estimated"]),
            ..base(Kind::ElectricityMaps, ts, Some(value))
        }),
        (Some(_), None) => Err(format!(
            "no {} intensity column; {EXPECTED}",
            if lifecycle { "life-cycle (`(Life cycle)` or `(LCA)`)" } else { "direct (`(direct)`)" }
        )),
        _ => Err(format!("unrecognised header; {EXPECTED}")),
    }
}

/// Whether a date-time text carries its offset (`Z`, `+01:00`, `-0530`). Bare dates (a day's
/// row) and epoch numbers are UTC by definition and not counted.
fn lacks_offset(ts: &str) -> bool {
    let b = ts.as_bytes();
    if b.len() <= 10 || b.get(4) != Some(&b'-') {
        return false;
    }
    let time = &b[11..];
    !(matches!(time.last(), Some(b'Z' | b'z')) || time.iter().any(|&c| c == b'+' || c == b'-'))
}

fn parse_intensity(raw: &str) -> std::result::Result<Option<f64>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => {
            let hint = if raw.contains(',') { "; a decimal comma? write a point, e.g. 300.5" } else { "" };
            Err(format!("bad intensity '{raw}' (expected a number >= 0 or empty{hint})"))
        }
    }
}

fn read_rows(text: &str, path: &Path, file_zone: Option<&str>, lifecycle: bool) -> Result<FileRows> {
    let err = |line: usize, msg: String| Error::Grid { path: path.to_path_buf(), line: line as u64, msg };
    let name = path.display();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((hline, header)) = lines.next() else {
        return Err(err(1, format!("empty file; {EXPECTED}")));
    };
    let mut fields = Vec::new();
    split_csv(header, &mut fields).map_err(|m| err(hline + 1, m.to_string()))?;
    if fields.len() == 1 {
        if let Some(msg) = textcheck::semicolon_problem(header, path, "grid files") {
            return Err(err(hline + 1, msg));
        }
    }
    let lay = layout(&fields, lifecycle).map_err(|m| err(hline + 1, m))?;
    if lay.zone.is_none() && file_zone.is_none() {
        let example = if lay.kind == Kind::UkApi { "GB" } else { "DE" };
        return Err(err(
            hline + 1,
            format!("no zone column: name the file's zone as FILE@ZONE, e.g. --grid {name}@{example}"),
        ));
    }
    let need = [Some(lay.ts), lay.zone, lay.value, lay.forecast, lay.to, lay.estimated]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = FileRows { kind: lay.kind, zones: BTreeMap::new() };
    for (i, line) in lines {
        let n = i + 1;
        split_csv(line, &mut fields).map_err(|m| err(n, m.to_string()))?;
        if fields.len() < need {
            return Err(err(n, format!("{} fields, expected at least {need}", fields.len())));
        }
        if fields.len() > lay.width && fields[lay.width..].iter().any(|f| !f.trim().is_empty()) {
            // A decimal comma in an unquoted number splits it in two and shifts nothing before
            // it, so the value would silently lose its decimals.
            return Err(err(
                n,
                format!(
                    "{} fields but the header has {}: a decimal comma (300,5) or an unquoted ',' in a text field? \
                     use '.' decimals and quote text",
                    fields.len(),
                    lay.width
                ),
            ));
        }
        let zone = match (lay.zone.map(|z| fields[z].trim()), file_zone) {
            (Some(""), _) => return Err(err(n, "empty zone".into())),
            (Some(z), Some(fz)) if !z.eq_ignore_ascii_case(fz) => {
                return Err(err(
                    n,
                    format!(
                        "zone '{z}' but the file was given as {name}@{fz}; drop @{fz} (the file names its zones) \
                         or pass a file of zone {fz} only"
                    ),
                ))
            }
            // Matched ignoring case: the spelling the user asked for wins.
            (Some(_), Some(fz)) | (None, Some(fz)) => fz,
            (Some(z), None) => z,
            (None, None) => unreachable!("checked at the header"),
        };
        let ts_text = fields[lay.ts].trim();
        let ts = parse_ts(ts_text.as_bytes()).ok_or_else(|| err(n, format!("bad timestamp '{ts_text}'")))?;
        let (value, estimated) = match lay.kind {
            Kind::UkApi => {
                if let Some(t) = lay.to {
                    let to_text = fields[t].trim();
                    match parse_ts(to_text.as_bytes()) {
                        Some(to) if to > ts => {}
                        _ => return Err(err(n, format!("bad interval end 'to' = '{to_text}' (must follow 'from')"))),
                    }
                }
                let cell = |c: Option<usize>| -> &str {
                    let s = c.map_or("", |c| fields[c].trim());
                    if s.eq_ignore_ascii_case("null") {
                        ""
                    } else {
                        s
                    }
                };
                match parse_intensity(cell(lay.value)).map_err(|m| err(n, m))? {
                    Some(v) => (Some(v), false),
                    None => {
                        let f = parse_intensity(cell(lay.forecast)).map_err(|m| err(n, m))?;
                        (f, f.is_some())
                    }
                }
            }
            _ => {
                let value =
                    parse_intensity(fields[lay.value.expect("set for this kind")].trim()).map_err(|m| err(n, m))?;
                let estimated = match lay.estimated.map(|e| fields[e].trim().to_ascii_lowercase()) {
                    None => false,
                    Some(e) if e == "true" => true,
                    Some(e) if e == "false" || e.is_empty() => false,
                    Some(e) => {
                        return Err(err(n, format!("bad 'Data estimated' value '{e}' (expected true or false)")));
                    }
                };
                (value, estimated)
            }
        };
        let zr = match out.zones.get_mut(zone) {
            Some(z) => z,
            None => out.zones.entry(zone.to_string()).or_default(),
        };
        // Electricity Maps' column says UTC in its name; the other forms should carry offsets.
        if lay.kind != Kind::ElectricityMaps && lacks_offset(ts_text) {
            if zr.naive == 0 {
                zr.naive_example = ts_text.to_string();
            }
            zr.naive += 1;
        }
        if let Some(v) = value.filter(|&v| !G_PER_KWH.contains(v)) {
            // Here, where the line is known, rather than when the kernel meets the hour.
            return Err(err(
                n,
                format!(
                    "zone {zone} at {}: {} gCO2e/kWh is outside [{}, {}] ({}); check the file's unit",
                    format_us(ts),
                    num_text(v),
                    num_text(G_PER_KWH.min),
                    num_text(G_PER_KWH.max),
                    G_PER_KWH.why
                ),
            ));
        }
        zr.rows.push(Row { ts, value, estimated, line: n as u64 });
    }
    Ok(out)
}

/// The text of a grid file, or one line saying which encoding it looks like and how to convert
/// it (see [`crate::textcheck`]).
fn decode(bytes: Vec<u8>, path: &Path) -> Result<String> {
    if let Some((line, msg)) = textcheck::encoding_problem(&bytes, path) {
        return Err(Error::Grid { path: path.to_path_buf(), line, msg });
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let line = 1 + bytes[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64;
        Error::Grid { path: path.to_path_buf(), line, msg: e.utf8_error().to_string() }
    })
}

impl Grid {
    pub fn empty() -> Grid {
        Grid::default()
    }

    /// Read and merge several files (hourly resolution, no `@ZONE`); the same (zone, hour) in
    /// several rows or files is averaged.
    pub fn from_paths(paths: &[PathBuf], lifecycle: bool) -> Result<Grid> {
        let inputs: Vec<(PathBuf, Option<String>)> = paths.iter().map(|p| (p.clone(), None)).collect();
        Grid::from_files(&inputs, &GridOptions { lifecycle, ..GridOptions::default() })
    }

    /// Read and merge `FILE` / `FILE@ZONE` arguments (see [`split_spec`]).
    pub fn from_specs(specs: &[String], opts: &GridOptions) -> Result<Grid> {
        let inputs: Vec<(PathBuf, Option<String>)> = specs.iter().map(|s| split_spec(s)).collect();
        Grid::from_files(&inputs, opts)
    }

    /// Read and merge files, each with the zone given for it (`FILE@ZONE`), if any.
    pub fn from_files(inputs: &[(PathBuf, Option<String>)], opts: &GridOptions) -> Result<Grid> {
        let mut acc = Accumulator::default();
        for (p, zone) in inputs {
            if !p.is_file() {
                let what = if p.exists() { "is not a file" } else { "file does not exist" };
                return Err(Error::Grid {
                    path: p.clone(),
                    line: 0,
                    msg: format!(
                        "{what}; pass an hourly intensity CSV with --grid (FILE, or FILE@ZONE for a file \
                         without a zone column)"
                    ),
                });
            }
            let bytes = std::fs::read(p).map_err(|e| Error::input(p, e))?;
            let text = decode(bytes, p)?;
            let name = p.display().to_string();
            acc.add_text(GridText { name: &name, zone: zone.as_deref(), text: &text }, opts)?;
        }
        let what = inputs.first().map(|p| p.0.display().to_string()).unwrap_or_default();
        acc.build(opts.lifecycle, &what)
    }

    /// One CSV from a reader; `name` stands for the path in messages.
    pub fn from_reader(mut r: impl Read, name: &str, lifecycle: bool) -> Result<Grid> {
        Grid::from_texts(&[(name, &read_text(&mut r, name)?)], lifecycle)
    }

    /// Several CSV texts, merged as [`Grid::from_paths`] does (for tests and in-memory callers).
    pub fn from_texts(texts: &[(&str, &str)], lifecycle: bool) -> Result<Grid> {
        let inputs: Vec<GridText<'_>> = texts.iter().map(|&(name, text)| GridText { name, zone: None, text }).collect();
        Grid::from_texts_with(&inputs, &GridOptions { lifecycle, ..GridOptions::default() })
    }

    /// Several CSV texts with their `@ZONE`s and the read options.
    pub fn from_texts_with(inputs: &[GridText<'_>], opts: &GridOptions) -> Result<Grid> {
        let mut acc = Accumulator::default();
        for input in inputs {
            acc.add_text(*input, opts)?;
        }
        acc.build(opts.lifecycle, inputs.first().map_or("", |t| t.name))
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// What reading the files found that a user should know, one line each naming file and
    /// zone, in a stable order: per file (in the order given) and zone (sorted), a daily or
    /// monthly grid spread over hours, timestamps without an offset, estimated hours; then per
    /// zone, rows for the same time with different values.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What made hours estimated, for the run's warning; `None` when no hour is.
    pub fn estimated_source(&self) -> Option<&'static str> {
        match self.estimated_kinds {
            0 => None,
            EST_FLAGGED => Some("Electricity Maps 'Data estimated'"),
            EST_FORECAST => Some("UK Carbon Intensity forecast, no actual value"),
            _ => Some("Electricity Maps 'Data estimated', UK Carbon Intensity forecast without an actual value"),
        }
    }

    /// Zone names, sorted; the position is the zone index used by the lookups.
    pub fn zones(&self) -> impl Iterator<Item = &str> {
        self.zones.iter().map(|z| z.name.as_str())
    }

    pub fn zone_index(&self, zone: &str) -> Option<usize> {
        self.index.get(zone).copied()
    }

    /// The value at (zone, hour), if the table has one.
    #[inline]
    pub fn at(&self, zone: usize, hour: i64) -> Option<f64> {
        self.lookup(zone, hour).map(|(v, _)| v)
    }

    /// The value at (zone, hour) and whether that hour is flagged estimated.
    #[inline]
    pub fn lookup(&self, zone: usize, hour: i64) -> Option<(f64, bool)> {
        self.zones.get(zone)?.lookup(hour)
    }

    /// Mean of the zone's hourly values in the UTC calendar month of `hour`.
    pub fn month_mean(&self, zone: usize, hour: i64) -> Option<f64> {
        self.zones.get(zone)?.month(month_index_of_hour(hour))
    }

    pub fn summary(&self) -> Vec<ZoneSummary> {
        self.zones
            .iter()
            .map(|z| {
                // Gaps from the hours with a value: work and memory follow them, not the span.
                let mut gaps = Vec::new();
                let (mut n, mut sum, mut est) = (0u64, 0.0, 0u64);
                let mut next = z.first_hour;
                for (h, v, e) in z.present() {
                    if h > next {
                        gaps.push((next, h - 1));
                    }
                    next = h + 1;
                    n += 1;
                    sum += v;
                    est += e as u64;
                }
                if z.last_hour >= next {
                    gaps.push((next, z.last_hour));
                }
                ZoneSummary {
                    zone: z.name.clone(),
                    first_hour: z.first_hour,
                    last_hour: z.last_hour,
                    hours_with_value: n,
                    hours_missing: (z.last_hour - z.first_hour + 1) as u64 - n,
                    hours_estimated: est,
                    gaps,
                    mean_g_per_kwh: if n > 0 { sum / n as f64 } else { f64::NAN },
                }
            })
            .collect()
    }

    /// Every (zone, hour, g/kWh) with a value, zones sorted, hours ascending.
    pub fn rows(&self) -> impl Iterator<Item = (&str, i64, f64)> {
        self.zones.iter().flat_map(|z| z.present().map(move |(h, v, _)| (z.name.as_str(), h, v)))
    }
}

#[cfg(test)]
impl Grid {
    /// The error of reading `bytes` as a file `bad.csv`.
    fn from_files_bytes_for_test(bytes: &[u8]) -> String {
        match decode(bytes.to_vec(), Path::new("bad.csv")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }
}

fn read_text(r: &mut impl Read, name: &str) -> Result<String> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(|e| Error::input(name, e))?;
    decode(bytes, Path::new(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{days_from_civil, parse_ts};

    const EM_NEW: &str = "Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),Carbon intensity gCO₂eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method";
    const EM_OLD: &str = "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,Data Source,Data Estimated,Data Estimation Method";

    fn h(s: &str) -> i64 {
        hour_of(parse_ts(s.as_bytes()).unwrap())
    }

    #[test]
    fn em_current_header_direct_and_lifecycle() {
        let text = format!(
            "\u{feff}{EM_NEW}\n2024-01-01 00:00:00,Germany,Germany,DE,300.5,350,40,50,\"entsoe.eu; ember\",false,\n\
             2024-01-01 01:00:00,Germany,Germany,DE,310,360,40,50,entsoe.eu,false,\n"
        );
        let g = Grid::from_texts(&[("em.csv", &text)], false).unwrap();
        let de = g.zone_index("DE").unwrap();
        assert_eq!(g.at(de, h("2024-01-01T00:00:00Z")), Some(300.5));
        assert_eq!(g.at(de, h("2024-01-01T01:00:00Z")), Some(310.0));
        assert_eq!(g.at(de, h("2024-01-01T02:00:00Z")), None);
        let g = Grid::from_texts(&[("em.csv", &text)], true).unwrap();
        assert!(g.lifecycle);
        assert_eq!(g.at(de, h("2024-01-01T00:00:00Z")), Some(350.0));
    }

    #[test]
    fn em_old_header_with_plain_2_and_quotes() {
        let header = EM_OLD.replace('₂', "2").to_uppercase();
        let text = format!(
            "  {header}  \n\"2024-01-01T00:00:00.000Z\",France,France,\"FR\",\"55\",\"70\",90,20,\"a; b\",true,TSA\n"
        );
        let g = Grid::from_texts(&[("old.csv", &text)], false).unwrap();
        assert_eq!(g.at(g.zone_index("FR").unwrap(), h("2024-01-01T00:00:00Z")), Some(55.0));
        let g = Grid::from_texts(&[("old.csv", &text)], true).unwrap();
        assert_eq!(g.at(g.zone_index("FR").unwrap(), h("2024-01-01T00:00:00Z")), Some(70.0));
    }

    #[test]
    fn plain_form_sub_hourly_average_and_multi_file_merge() {
        let a = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,100\nDE,2024-01-01T00:30:00Z,200\nUS-CAL-CISO,2024-01-01T00:00:00Z,250\n";
        let b = "Zone,Datetime,G_per_kWh\nDE,2024-01-01 00:15:00,300\n";
        let g = Grid::from_texts(&[("a.csv", a), ("b.csv", b)], false).unwrap();
        // Three rows in DE's first hour (two files): plain mean.
        assert_eq!(g.at(g.zone_index("DE").unwrap(), h("2024-01-01T00:00:00Z")), Some(200.0));
        assert_eq!(g.zones().collect::<Vec<_>>(), ["DE", "US-CAL-CISO"]);
        let rows: Vec<_> = g.rows().collect();
        assert_eq!(
            rows,
            vec![("DE", h("2024-01-01T00:00:00Z"), 200.0), ("US-CAL-CISO", h("2024-01-01T00:00:00Z"), 250.0)]
        );
    }

    #[test]
    fn from_paths_merges_files() {
        let dir = crate::testutil::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        std::fs::write(&a, "zone,datetime,g_per_kwh\nDE,2024-03-01T00:00:00Z,100\n").unwrap();
        std::fs::write(&b, "zone,datetime,g_per_kwh\nDE,2024-03-01T00:00:00Z,300\nDE,2024-03-01T01:00:00Z,50\n")
            .unwrap();
        let g = Grid::from_paths(&[a, b], false).unwrap();
        let de = g.zone_index("DE").unwrap();
        assert_eq!(g.at(de, h("2024-03-01T00:00:00Z")), Some(200.0));
        assert_eq!(g.at(de, h("2024-03-01T01:00:00Z")), Some(50.0));
    }

    #[test]
    fn month_means_per_utc_calendar_month() {
        // Hourly means 100 and 300 in January (200), one hour of 40 in February.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-31T22:00:00Z,100\nDE,2024-01-31T23:30:00Z,300\nDE,2024-02-01T00:00:00Z,40\n";
        let g = Grid::from_texts(&[("m.csv", t)], false).unwrap();
        let de = g.zone_index("DE").unwrap();
        assert_eq!(g.month_mean(de, h("2024-01-05T07:00:00Z")), Some(200.0));
        assert_eq!(g.month_mean(de, h("2024-02-20T00:00:00Z")), Some(40.0));
        assert_eq!(g.month_mean(de, h("2024-03-01T00:00:00Z")), None);
        assert_eq!(g.month_mean(de, h("2023-12-31T23:00:00Z")), None);
    }

    #[test]
    fn summary_reports_gaps_and_empty_cells() {
        // 00, 01 have values; 02 is an empty cell (missing); 03 absent; 04 has a value; 05 empty.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,10\nDE,2024-01-01T01:00:00Z,20\nDE,2024-01-01T02:00:00Z,\nDE,2024-01-01T04:00:00Z,30\nDE,2024-01-01T05:00:00Z,\n";
        let g = Grid::from_texts(&[("s.csv", t)], false).unwrap();
        let s = &g.summary()[0];
        let h0 = (days_from_civil(2024, 1, 1)) * 24;
        assert_eq!((s.first_hour, s.last_hour), (h0, h0 + 5));
        assert_eq!((s.hours_with_value, s.hours_missing), (3, 3));
        assert_eq!(s.gaps, vec![(h0 + 2, h0 + 3), (h0 + 5, h0 + 5)]);
        assert_eq!(s.mean_g_per_kwh, 20.0);
    }

    #[test]
    fn bad_values_name_the_line() {
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,10\n\nDE,2024-01-01T01:00:00Z,abc\n";
        match Grid::from_texts(&[("bad.csv", t)], false) {
            Err(Error::Grid { path, line, msg }) => {
                assert_eq!((path, line), (PathBuf::from("bad.csv"), 4));
                assert!(msg.contains("abc"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,-1\n";
        assert!(matches!(Grid::from_texts(&[("n.csv", t)], false), Err(Error::Grid { line: 2, .. })));
        let t = "zone,datetime,g_per_kwh\nDE,yesterday,1\n";
        assert!(matches!(Grid::from_texts(&[("t.csv", t)], false), Err(Error::Grid { line: 2, .. })));
        let t = "a,b,c\n1,2,3\n";
        match Grid::from_texts(&[("h.csv", t)], false) {
            Err(e @ Error::Grid { line: 1, .. }) => assert!(e.to_string().contains("zone,datetime,g_per_kwh"), "{e}"),
            other => panic!("{other:?}"),
        }
        // An EM header without a life-cycle column when life-cycle is asked for.
        let t = "Datetime (UTC),Zone id,Carbon intensity gCO2eq/kWh (direct)\n2024-01-01 00:00:00,DE,1\n";
        assert!(Grid::from_texts(&[("d.csv", t)], false).is_ok());
        assert!(matches!(Grid::from_texts(&[("d.csv", t)], true), Err(Error::Grid { line: 1, .. })));
    }

    #[test]
    fn from_reader_and_empty() {
        let g =
            Grid::from_reader("zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,10\n".as_bytes(), "r", false).unwrap();
        assert!(!g.is_empty());
        assert!(Grid::empty().is_empty());
        assert_eq!(Grid::empty().at(0, 0), None);
    }

    // ----- issue 11: resolution, warnings, estimated hours, FILE@ZONE, encodings -----

    fn opts(resolution: Resolution) -> GridOptions {
        GridOptions { lifecycle: false, resolution }
    }

    fn grid_err(r: Result<Grid>) -> String {
        match r {
            Err(e @ Error::Grid { .. }) => e.to_string(),
            other => panic!("expected a grid error, got {other:?}"),
        }
    }

    fn texts<'a>(name: &'a str, zone: Option<&'a str>, text: &'a str) -> [GridText<'a>; 1] {
        [GridText { name, zone, text }]
    }

    const DAILY: &str = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,100\nDE,2024-01-02T00:00:00Z,200\nDE,2024-01-03T00:00:00Z,300\n";

    #[test]
    fn daily_rows_are_refused_unless_declared_then_spread_over_their_utc_day() {
        let msg = grid_err(Grid::from_texts_with(&texts("daily.csv", None, DAILY), &opts(Resolution::Hour)));
        assert_eq!(
            msg,
            "grid daily.csv: line 3: zone DE: rows are 24 h apart (daily), not hourly; pass --grid-resolution day \
             (resolution=\"day\") to apply each row to every hour of its UTC day, or give hourly data"
        );
        let g = Grid::from_texts_with(&texts("daily.csv", None, DAILY), &opts(Resolution::Day)).unwrap();
        let de = g.zone_index("DE").unwrap();
        assert_eq!(g.at(de, h("2024-01-01T00:00:00Z")), Some(100.0));
        assert_eq!(g.at(de, h("2024-01-01T23:00:00Z")), Some(100.0));
        assert_eq!(g.at(de, h("2024-01-02T00:00:00Z")), Some(200.0));
        assert_eq!(g.at(de, h("2024-01-03T23:00:00Z")), Some(300.0));
        assert_eq!(g.at(de, h("2024-01-04T00:00:00Z")), None);
        let s = &g.summary()[0];
        assert_eq!((s.hours_with_value, s.hours_missing), (72, 0));
        assert_eq!(
            g.warnings(),
            ["grid daily.csv: zone DE: the grid is daily: 3 rows spread over every hour of their UTC day \
              (--grid-resolution day); hour-to-hour variation is not in it"]
        );
        // A row's period is the UTC day containing its timestamp (the timestamp is its start).
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T06:00:00Z,1\nDE,2024-01-02T06:00:00Z,2\n";
        let g = Grid::from_texts_with(&texts("d.csv", None, t), &opts(Resolution::Day)).unwrap();
        assert_eq!(g.at(0, h("2024-01-01T00:00:00Z")), Some(1.0));
        // Hourly zones are left hourly under a coarser declared resolution, without a warning.
        let t = "zone,datetime,g_per_kwh\nFR,2024-01-01T00:00:00Z,10\nFR,2024-01-01T01:00:00Z,20\n";
        let g = Grid::from_texts_with(&texts("h.csv", None, t), &opts(Resolution::Month)).unwrap();
        assert_eq!(g.at(0, h("2024-01-01T01:00:00Z")), Some(20.0));
        assert_eq!(g.at(0, h("2024-01-01T02:00:00Z")), None);
        assert!(g.warnings().is_empty(), "{:?}", g.warnings());
    }

    #[test]
    fn monthly_rows_need_month_resolution_and_other_spacings_are_refused() {
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01,100\nDE,2024-02-01,200\nDE,2024-03-01,300\n";
        for r in [Resolution::Hour, Resolution::Day] {
            let msg = grid_err(Grid::from_texts_with(&texts("m.csv", None, t), &opts(r)));
            assert!(msg.contains("zone DE: rows are 29 days apart (monthly)"), "{msg}");
            assert!(msg.contains("--grid-resolution month"), "{msg}");
        }
        let g = Grid::from_texts_with(&texts("m.csv", None, t), &opts(Resolution::Month)).unwrap();
        assert_eq!(g.at(0, h("2024-02-29T23:00:00Z")), Some(200.0));
        assert_eq!(g.at(0, h("2024-03-31T23:00:00Z")), Some(300.0));
        assert_eq!(g.at(0, h("2024-04-01T00:00:00Z")), None);
        assert_eq!(g.summary()[0].hours_with_value, (31 + 29 + 31) * 24);
        assert!(g.warnings()[0].contains("the grid is monthly: 3 rows"), "{:?}", g.warnings());
        // Weekly: no resolution fits.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01,1\nDE,2024-01-08,2\nDE,2024-01-15,3\n";
        let msg = grid_err(Grid::from_texts_with(&texts("w.csv", None, t), &opts(Resolution::Month)));
        assert!(
            msg.starts_with("grid w.csv: line 3: zone DE: rows are 7 days apart; a grid needs hourly rows"),
            "{msg}"
        );
        // Hourly rows with gaps (3 h apart): hourly, the missing hours are gaps.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\nDE,2024-01-01T03:00:00Z,2\nDE,2024-01-01T06:00:00Z,3\n";
        let g = Grid::from_texts(&[("3h.csv", t)], false).unwrap();
        assert_eq!(g.summary()[0].hours_missing, 4);
        // Yearly: refused, pointing at the site fallback.
        let t = "zone,datetime,g_per_kwh\nDE,2023-01-01,1\nDE,2024-01-01,2\n";
        let msg = grid_err(Grid::from_texts_with(&texts("y.csv", None, t), &opts(Resolution::Month)));
        assert!(msg.contains("365 days apart") && msg.contains("fallback_g_per_kwh"), "{msg}");
        // A gap in hourly data does not make it look coarse (median spacing).
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\nDE,2024-01-01T01:00:00Z,2\nDE,2024-01-05T00:00:00Z,3\n";
        assert!(Grid::from_texts(&[("gap.csv", t)], false).is_ok());
        assert_eq!(Resolution::parse("Daily").unwrap(), Resolution::Day);
        assert!(matches!(Resolution::parse("week"), Err(Error::Usage(_))));
    }

    #[test]
    fn duplicate_times_with_different_values_are_averaged_and_reported() {
        let a = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,100\nDE,2024-01-01T01:00:00Z,50\nFR,2024-01-01T00:00:00Z,7\n";
        let b = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,300\nDE,2024-01-01T01:00:00Z,50\nFR,2024-01-01T00:00:00Z,7\n";
        let g = Grid::from_texts(&[("a.csv", a), ("b.csv", b)], false).unwrap();
        assert_eq!(g.at(g.zone_index("DE").unwrap(), h("2024-01-01T00:00:00Z")), Some(200.0));
        // Equal values (FR, DE 01h) are harmless overlap: not reported.
        assert_eq!(
            g.warnings(),
            ["grid a.csv, b.csv: zone DE: 1 hour has several rows for the same time with different values \
              (largest spread 200 g/kWh); they were averaged"]
        );
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\nDE,2024-01-01T00:00:00Z,1.5\nDE,2024-01-01T01:00:00Z,2\nDE,2024-01-01T01:00:00Z,4\n";
        let g = Grid::from_texts(&[("d.csv", t)], false).unwrap();
        assert_eq!(g.warnings().len(), 1);
        assert!(g.warnings()[0].starts_with("grid d.csv: zone DE: 2 hours have"), "{:?}", g.warnings());
        assert!(g.warnings()[0].contains("largest spread 2 g/kWh"), "{:?}", g.warnings());
        // Sub-hourly rows (different times in one hour) are the spec's averaging, not duplicates.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\nDE,2024-01-01T00:30:00Z,3\n";
        let g = Grid::from_texts(&[("s.csv", t)], false).unwrap();
        assert_eq!(g.at(0, h("2024-01-01T00:00:00Z")), Some(2.0));
        assert!(g.warnings().is_empty());
    }

    #[test]
    fn timestamps_without_offset_are_reported_except_in_electricity_maps_utc_column() {
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01 00:00:00,1\nDE,2024-01-01T01:00:00,2\nDE,2024-01-01T02:30:00+01:00,3\nFR,2024-01-01T00:00:00Z,4\n";
        let g = Grid::from_texts(&[("n.csv", t)], false).unwrap();
        assert_eq!(
            g.warnings(),
            ["grid n.csv: zone DE: 2 rows have a timestamp without a UTC offset (e.g. '2024-01-01 00:00:00'), \
              read as UTC; if they are local times every value is shifted by the UTC offset (1-2 h in Europe): \
              write them with 'Z' or an offset"]
        );
        // Read as UTC (the spec): 00:00 naive is hour 00Z; 02:30+01:00 is 01:30Z, averaged with 01:00.
        assert_eq!(g.at(0, h("2024-01-01T00:00:00Z")), Some(1.0));
        assert_eq!(g.at(0, h("2024-01-01T01:00:00Z")), Some(2.5));
        let em = format!("{EM_NEW}\n2024-01-01 00:00:00,Germany,Germany,DE,300,350,40,50,x,false,\n");
        assert!(Grid::from_texts(&[("em.csv", &em)], false).unwrap().warnings().is_empty());
        assert!(!lacks_offset("2024-01-01") && !lacks_offset("1704067200") && lacks_offset("2024-01-01 00:00"));
        assert!(!lacks_offset("2024-01-01T00:00-05:00") && !lacks_offset("2024-01-01T00:00:00.5z"));
    }

    #[test]
    fn electricity_maps_estimated_flags_mark_hours() {
        let text = format!(
            "{EM_NEW}\n2024-01-01 00:00:00,Germany,Germany,DE,300,350,40,50,entsoe.eu,false,\n\
             2024-01-01 01:00:00,Germany,Germany,DE,310,360,40,50,entsoe.eu,TRUE,ESTIMATED_FORECASTS_HIERARCHY\n\
             2024-01-01 02:00:00,Germany,Germany,DE,320,370,40,50,entsoe.eu,,\n\
             2024-01-01 00:00:00,France,France,FR,30,50,90,20,rte,False,\n"
        );
        let g = Grid::from_texts(&[("em.csv", &text)], false).unwrap();
        let de = g.zone_index("DE").unwrap();
        assert_eq!(g.lookup(de, h("2024-01-01T00:00:00Z")), Some((300.0, false)));
        assert_eq!(g.lookup(de, h("2024-01-01T01:00:00Z")), Some((310.0, true)));
        assert_eq!(g.lookup(de, h("2024-01-01T02:00:00Z")), Some((320.0, false)));
        assert_eq!(g.lookup(g.zone_index("FR").unwrap(), h("2024-01-01T00:00:00Z")), Some((30.0, false)));
        assert_eq!(g.summary()[0].hours_estimated, 1);
        assert_eq!(
            g.warnings(),
            ["grid em.csv: zone DE: 1 of 3 hours are flagged estimated (Electricity Maps 'Data estimated'); \
              the run reports the share of energy priced on them"]
        );
        assert_eq!(g.estimated_source(), Some("Electricity Maps 'Data estimated'"));
        // Old header; an hour is estimated if any row averaged into it is.
        let text = format!(
            "{EM_OLD}\n2024-01-01T00:00:00Z,France,France,FR,55,70,90,20,a,False,\n\
             2024-01-01T00:30:00Z,France,France,FR,65,70,90,20,a,True,TSA\n"
        );
        let g = Grid::from_texts(&[("old.csv", &text)], false).unwrap();
        assert_eq!(g.lookup(0, h("2024-01-01T00:00:00Z")), Some((60.0, true)));
        let bad = format!("{EM_NEW}\n2024-01-01 00:00:00,Germany,Germany,DE,300,350,40,50,x,maybe,\n");
        assert_eq!(
            grid_err(Grid::from_texts(&[("b.csv", &bad)], false)),
            "grid b.csv: line 2: bad 'Data estimated' value 'maybe' (expected true or false)"
        );
    }

    const UK: &str = "from,to,intensity.forecast,intensity.actual,intensity.index\n\
        2024-03-01T00:00Z,2024-03-01T00:30Z,150,140,moderate\n\
        2024-03-01T00:30Z,2024-03-01T01:00Z,148,160,moderate\n\
        2024-03-01T01:00Z,2024-03-01T01:30Z,120,,low\n\
        2024-03-01T01:30Z,2024-03-01T02:00Z,110,100,low\n\
        2024-03-01T02:00Z,2024-03-01T02:30Z,90,,low\n";

    #[test]
    fn uk_carbon_intensity_csv_with_file_at_zone() {
        let msg = grid_err(Grid::from_texts(&[("uk.csv", UK)], false));
        assert_eq!(
            msg,
            "grid uk.csv: line 1: no zone column: name the file's zone as FILE@ZONE, e.g. --grid uk.csv@GB"
        );
        let g = Grid::from_texts_with(&texts("uk.csv", Some("GB"), UK), &GridOptions::default()).unwrap();
        let gb = g.zone_index("GB").unwrap();
        // Half-hours averaged into their hour; the actual value where there is one.
        assert_eq!(g.lookup(gb, h("2024-03-01T00:00:00Z")), Some((150.0, false)));
        // 01:00 has a forecast only (120) and an actual (100): estimated, mean 110.
        assert_eq!(g.lookup(gb, h("2024-03-01T01:00:00Z")), Some((110.0, true)));
        assert_eq!(g.lookup(gb, h("2024-03-01T02:00:00Z")), Some((90.0, true)));
        assert_eq!(
            g.warnings(),
            ["grid uk.csv: zone GB: 2 of 3 hours have only intensity.forecast (no intensity.actual), counted as \
              estimated; the run reports the share of energy priced on them"]
        );
        assert_eq!(g.estimated_source(), Some("UK Carbon Intensity forecast, no actual value"));
        // No life-cycle factors in this source.
        let lc = GridOptions { lifecycle: true, ..GridOptions::default() };
        assert!(grid_err(Grid::from_texts_with(&texts("uk.csv", Some("GB"), UK), &lc)).contains("drop --lifecycle"));
        // A bad interval end.
        let t = "from,to,intensity.forecast,intensity.actual\n2024-03-01T00:30Z,2024-03-01T00:00Z,1,2\n";
        assert!(grid_err(Grid::from_texts_with(&texts("u.csv", Some("GB"), t), &GridOptions::default()))
            .contains("line 2: bad interval end"));
    }

    #[test]
    fn zone_less_plain_files_and_zone_columns_given_at_zone() {
        let t = "datetime,g_per_kwh\n2024-01-01T00:00:00Z,10\n2024-01-01T01:00:00Z,20\n";
        let g = Grid::from_texts_with(&texts("p.csv", Some("SE"), t), &GridOptions::default()).unwrap();
        assert_eq!(g.zones().collect::<Vec<_>>(), ["SE"]);
        assert_eq!(g.at(0, h("2024-01-01T01:00:00Z")), Some(20.0));
        assert!(grid_err(Grid::from_texts(&[("p.csv", t)], false)).contains("e.g. --grid p.csv@DE"));
        // A zone column and @ZONE: an assertion that every row is that zone.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,10\nde,2024-01-01T01:00:00Z,20\n";
        let g = Grid::from_texts_with(&texts("z.csv", Some("DE"), t), &GridOptions::default()).unwrap();
        assert_eq!(g.zones().collect::<Vec<_>>(), ["DE"]);
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,10\nFR,2024-01-01T00:00:00Z,20\n";
        assert_eq!(
            grid_err(Grid::from_texts_with(&texts("z.csv", Some("DE"), t), &GridOptions::default())),
            "grid z.csv: line 3: zone 'FR' but the file was given as z.csv@DE; drop @DE (the file names its \
             zones) or pass a file of zone DE only"
        );
    }

    #[test]
    fn split_spec_parses_at_zone_from_the_right_unless_the_path_exists() {
        let dir = crate::testutil::tempdir().unwrap();
        let odd = dir.path().join("grid@2024.csv");
        std::fs::write(&odd, "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\n").unwrap();
        let odd_s = odd.display().to_string();
        assert_eq!(split_spec(&odd_s), (odd.clone(), None));
        assert_eq!(split_spec(&format!("{odd_s}@DE")), (odd.clone(), Some("DE".into())));
        assert_eq!(split_spec("uk.csv@GB"), (PathBuf::from("uk.csv"), Some("GB".into())));
        assert_eq!(split_spec("uk.csv@"), (PathBuf::from("uk.csv@"), None));
        assert_eq!(split_spec("a@b/uk.csv"), (PathBuf::from("a@b/uk.csv"), None));
        let uk = dir.path().join("uk.csv");
        std::fs::write(&uk, UK).unwrap();
        let specs = vec![format!("{}@GB", uk.display()), format!("{odd_s}@DE")];
        let g = Grid::from_specs(&specs, &GridOptions::default()).unwrap();
        assert_eq!(g.zones().collect::<Vec<_>>(), ["DE", "GB"]);
        let missing = dir.path().join("none.csv");
        let msg = grid_err(Grid::from_specs(&[format!("{}@GB", missing.display())], &GridOptions::default()));
        assert_eq!(
            msg,
            format!(
                "grid {}: file does not exist; pass an hourly intensity CSV with --grid (FILE, or FILE@ZONE for a \
                 file without a zone column)",
                missing.display()
            )
        );
    }

    /// A CR or an escape sequence inside a cell is quoted escaped: errors and warnings stay one
    /// line (found by the `grid` fuzz target).
    #[test]
    fn control_characters_of_a_cell_are_escaped_in_messages() {
        let e = Grid::from_texts(&[("g.csv", "zone,datetime,g_per_kwh\nDE,402\r13,1\n")], false).unwrap_err();
        assert_eq!(e.to_string(), "grid g.csv: line 2: bad timestamp '402\\r13'");
        let g =
            Grid::from_texts(&[("g.csv", "zone,datetime,g_per_kwh\nD\u{1b}E,2024-03-01 00:00:00,1\n")], false).unwrap();
        assert!(g.warnings()[0].contains("zone D\\u{1b}E:"), "{:?}", g.warnings());
    }

    #[test]
    fn encodings_and_separators_get_one_line_with_the_fix() {
        let dir = crate::testutil::tempdir().unwrap();
        let text = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\n";
        let utf16 = |be: bool, bom: bool| -> Vec<u8> {
            let mut out: Vec<u8> = if bom {
                if be {
                    vec![0xFE, 0xFF]
                } else {
                    vec![0xFF, 0xFE]
                }
            } else {
                vec![]
            };
            for u in text.encode_utf16() {
                out.extend(if be { u.to_be_bytes() } else { u.to_le_bytes() });
            }
            out
        };
        let cases: [(Vec<u8>, &str); 4] = [
            (
                utf16(false, true),
                "it looks like UTF-16 LE (byte-order mark FF FE); convert it: iconv -f UTF-16 -t UTF-8",
            ),
            (
                utf16(true, true),
                "it looks like UTF-16 BE (byte-order mark FE FF); convert it: iconv -f UTF-16 -t UTF-8",
            ),
            (
                utf16(false, false),
                "UTF-16 LE without a byte-order mark (every other byte is NUL); convert it: iconv -f UTF-16LE",
            ),
            (
                utf16(true, false),
                "UTF-16 BE without a byte-order mark (every other byte is NUL); convert it: iconv -f UTF-16BE",
            ),
        ];
        for (i, (bytes, want)) in cases.into_iter().enumerate() {
            let p = dir.path().join(format!("g{i}.csv"));
            std::fs::write(&p, bytes).unwrap();
            let msg = grid_err(Grid::from_paths(std::slice::from_ref(&p), false));
            assert!(msg.starts_with(&format!("grid {}: not UTF-8 text: ", p.display())), "{msg}");
            assert!(msg.contains(want), "{msg}");
            assert!(msg.ends_with(&format!(
                "{} > {}",
                p.display(),
                dir.path().join(format!("g{i}-utf8.csv")).display()
            )));
        }
        let p = dir.path().join("latin.csv");
        std::fs::write(
            &p,
            b"zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\n\"Z\xfcrich\",2024-01-01T00:00:00Z,1\n",
        )
        .unwrap();
        let msg = grid_err(Grid::from_paths(std::slice::from_ref(&p), false));
        assert!(msg.contains("line 3: not UTF-8 text: byte 0xFC looks like Latin-1 / Windows-1252"), "{msg}");
        assert!(msg.contains("iconv -f WINDOWS-1252 -t UTF-8"), "{msg}");
        assert!(!msg.contains('\n'));
        // The same check for in-memory readers.
        assert!(grid_err(Grid::from_reader(&utf16(false, true)[..], "r.csv", false)).contains("UTF-16 LE"));

        let t = "zone;datetime;g_per_kwh\nDE;2024-01-01T00:00:00Z;300,5\n";
        let msg = grid_err(Grid::from_texts(&[("semi.csv", t)], false));
        assert!(msg.starts_with("grid semi.csv: line 1: fields are separated by ';'"), "{msg}");
        assert!(msg.contains("sed -e 's/,/./g' -e 's/;/,/g' semi.csv > semi-comma.csv"), "{msg}");
        // A decimal comma in a ','-separated file: never silently truncated to its integer part.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,300,5\n";
        let msg = grid_err(Grid::from_texts(&[("dc.csv", t)], false));
        assert!(msg.starts_with("grid dc.csv: line 2: 4 fields but the header has 3: a decimal comma"), "{msg}");
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,\"300,5\"\n";
        assert!(grid_err(Grid::from_texts(&[("q.csv", t)], false)).contains("a decimal comma? write a point"));
        // A trailing empty field is tolerated.
        let t = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,300,\n";
        assert!(Grid::from_texts(&[("t.csv", t)], false).is_ok());
    }

    #[test]
    fn warnings_come_in_a_stable_order() {
        let a = "zone,datetime,g_per_kwh\nFR,2024-01-01 00:00,1\nDE,2024-01-01 00:00,1\n";
        let b = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,2\n";
        let g = Grid::from_texts(&[("a.csv", a), ("b.csv", b)], false).unwrap();
        let w = g.warnings();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("grid a.csv: zone DE: 1 row has a timestamp without"), "{w:?}");
        assert!(w[1].starts_with("grid a.csv: zone FR: 1 row has"), "{w:?}");
        assert!(w[2].starts_with("grid a.csv, b.csv: zone DE: 1 hour has several rows"), "{w:?}");
    }

    #[test]
    fn zones_with_hours_far_apart_are_stored_sparse_and_look_up_the_same() {
        // Per zone: two rows an hour apart (hourly by the median gap) and one ~114 years later.
        let mut t = String::from("zone,datetime,g_per_kwh\n");
        for z in 0..200 {
            t.push_str(&format!(
                "Z{z:03},1900-01-01T00:00:00Z,{z}\nZ{z:03},1900-01-01T01:00:00Z,7\nZ{z:03},2013-12-21T00:00:00Z,9\n"
            ));
        }
        let g = Grid::from_texts(&[("far.csv", &t)], false).unwrap();
        // Sparse: memory follows the 3 hours, not the 999,000-hour span.
        let held: usize = g.zones.iter().map(|z| z.values.len() + z.hours.len() + z.month_means.len()).sum();
        assert!(held < 200 * 12, "{held}");
        let z = g.zone_index("Z005").unwrap();
        assert_eq!(g.lookup(z, h("1900-01-01T00:30:00Z")), Some((5.0, false)));
        assert_eq!(g.at(z, h("1900-01-01T01:00:00Z")), Some(7.0));
        assert_eq!(g.at(z, h("1900-01-01T02:00:00Z")), None);
        assert_eq!(g.at(z, h("2013-12-21T00:00:00Z")), Some(9.0));
        assert_eq!(g.month_mean(z, h("1900-01-15T00:00:00Z")), Some(6.0));
        assert_eq!(g.month_mean(z, h("1950-01-15T00:00:00Z")), None);
        let s = &g.summary()[z];
        let last = h("2013-12-21T00:00:00Z");
        assert!(last - s.first_hour > 990_000);
        assert_eq!((s.last_hour, s.hours_with_value, s.hours_missing), (last, 3, (last - s.first_hour + 1 - 3) as u64));
        assert_eq!(s.gaps, vec![(h("1900-01-01T02:00:00Z"), last - 1)]);
        assert_eq!(g.rows().filter(|r| r.0 == "Z005").count(), 3);
        // A dense zone and a sparse one give the same answers for the same hours.
        let dense = Grid::from_texts(&[("d.csv", "zone,datetime,g_per_kwh\nA,2024-01-01T00:00:00Z,1\nA,2024-01-01T03:00:00Z,\nA,2024-01-01T05:00:00Z,3\n")], false).unwrap();
        assert!(dense.zones[0].hours.is_empty(), "dense");
        let s = &dense.summary()[0];
        assert_eq!(
            (s.first_hour, s.last_hour, s.hours_with_value, s.hours_missing),
            (h("2024-01-01T00:00:00Z"), h("2024-01-01T05:00:00Z"), 2, 4)
        );
        assert_eq!(s.gaps, vec![(h("2024-01-01T01:00:00Z"), h("2024-01-01T04:00:00Z"))]);
    }

    #[test]
    fn span_spacing_and_bound_errors_name_file_and_line() {
        let t = "zone,datetime,g_per_kwh\nDE,1900-01-01T00:00:00Z,1\nDE,1900-01-01T01:00:00Z,1\n\nDE,2100-01-01T00:00:00Z,1\n";
        let e = Grid::from_texts(&[("span.csv", t)], false).unwrap_err().to_string();
        assert!(
            e.starts_with("grid span.csv: line 5: zone DE: 2100-01-01T00:00:00.000000Z is more than 1000000 hours")
                && e.contains("(1900-01-01T00:00:00.000000Z, span.csv line 2)"),
            "{e}"
        );
        // Across files: the line of the later row, in its file.
        let e = Grid::from_texts(
            &[
                ("a.csv", "zone,datetime,g_per_kwh\nDE,1900-01-01T00:00:00Z,1\n"),
                ("b.csv", "zone,datetime,g_per_kwh\n\nDE,2100-01-01T00:00:00Z,1\n"),
            ],
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("grid b.csv: line 3: zone DE:") && e.contains("a.csv line 2"), "{e}");
        let t = "zone,datetime,g_per_kwh\nDE,2025-06-01T00:00:00Z,300\nDE,2025-06-01T01:00:00Z,5000.5\n";
        let e = Grid::from_texts(&[("g.csv", t)], false).unwrap_err().to_string();
        assert_eq!(
            e,
            "grid g.csv: line 3: zone DE at 2025-06-01T01:00:00.000000Z: 5000.5 gCO2e/kWh is outside [0, 5000] \
             (gCO2e/kWh; coal is about 1000); check the file's unit"
        );
        // Not UTF-8: the line of the first bad byte.
        let e = Grid::from_files_bytes_for_test(b"zone,datetime,g_per_kwh\nDE,2025-06-01T00:00:00Z,1\nD\xE9,x,1\n");
        assert!(e.starts_with("grid bad.csv: line 3:"), "{e}");
    }
}
