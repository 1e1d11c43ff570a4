//! Hourly grid carbon intensity (methodology section 5).
//!
//! Inputs: Electricity Maps CSV exports (current header `Datetime (UTC),...,Zone id,Carbon
//! intensity gCO₂eq/kWh (direct),Carbon intensity gCO₂eq/kWh (Life cycle),...`, older
//! `Zone Id` and `(LCA)`) and the plain form `zone,datetime,g_per_kwh`. Headers are matched
//! case-insensitively, with `₂` == `2`, after trimming whitespace and a BOM.
//!
//! Every row is averaged into its (zone, hour): sub-hourly data and overlapping files both
//! collapse to one value per hour (a plain mean of the rows). An empty intensity cell is a
//! missing hour, not an error, and still extends the zone's covered range so the summary can
//! report it as a gap.
//!
//! Storage is dense: per zone a `Vec<f64>` indexed by `hour - first_hour` (NaN = missing), so
//! the kernel's lookup is an index, not a hash join; plus the per-month means (UTC calendar
//! months) that the first fallback of the lookup order needs.

use crate::error::{Error, Result};
use crate::time::{hour_of, month_index_of_hour, parse_ts};
use rustc_hash::FxHashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A grid spanning more hours than this is refused: it is a stray timestamp (a 1970 epoch
/// zero, a year 9999), and would make the dense array huge. ~114 years.
const MAX_SPAN_HOURS: i64 = 1_000_000;

/// One zone's hourly series.
#[derive(Debug, Clone)]
struct ZoneSeries {
    name: String,
    first_hour: i64,
    /// g/kWh per hour from `first_hour`; NaN where the hour has no value.
    values: Vec<f64>,
    first_month: i64,
    /// Mean of the hourly values per UTC calendar month from `first_month`; NaN when none.
    month_means: Vec<f64>,
}

impl ZoneSeries {
    fn at(&self, hour: i64) -> Option<f64> {
        let i = usize::try_from(hour - self.first_hour).ok()?;
        self.values.get(i).copied().filter(|v| !v.is_nan())
    }
    fn month(&self, month: i64) -> Option<f64> {
        let i = usize::try_from(month - self.first_month).ok()?;
        self.month_means.get(i).copied().filter(|v| !v.is_nan())
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
}

/// (sum, count) per hour per zone while reading; averaged when the grid is built.
#[derive(Default)]
struct Accumulator {
    zones: FxHashMap<String, FxHashMap<i64, (f64, u32)>>,
}

impl Accumulator {
    fn add(&mut self, zone: &str, hour: i64, value: Option<f64>) {
        let hours = match self.zones.get_mut(zone) {
            Some(h) => h,
            None => self.zones.entry(zone.to_string()).or_default(),
        };
        let cell = hours.entry(hour).or_insert((0.0, 0));
        if let Some(v) = value {
            cell.0 += v;
            cell.1 += 1;
        }
    }

    fn build(self, lifecycle: bool, what: &str) -> Result<Grid> {
        let mut names: Vec<String> = self.zones.keys().cloned().collect();
        names.sort();
        let mut zones = Vec::with_capacity(names.len());
        let mut acc = self.zones;
        for name in names {
            let hours = acc.remove(&name).unwrap_or_default();
            let first_hour = *hours.keys().min().expect("a zone has at least one row");
            let last_hour = *hours.keys().max().expect("a zone has at least one row");
            if last_hour - first_hour >= MAX_SPAN_HOURS {
                return Err(Error::Grid {
                    path: PathBuf::from(what),
                    line: 0,
                    msg: format!("zone {name}: rows span more than {MAX_SPAN_HOURS} hours; is a timestamp wrong?"),
                });
            }
            let mut values = vec![f64::NAN; (last_hour - first_hour + 1) as usize];
            for (h, (sum, n)) in hours {
                if n > 0 {
                    values[(h - first_hour) as usize] = sum / n as f64;
                }
            }
            let first_month = month_index_of_hour(first_hour);
            let last_month = month_index_of_hour(last_hour);
            let mut sums = vec![(0.0f64, 0u32); (last_month - first_month + 1) as usize];
            for (i, v) in values.iter().enumerate() {
                if !v.is_nan() {
                    let m = month_index_of_hour(first_hour + i as i64) - first_month;
                    sums[m as usize].0 += v;
                    sums[m as usize].1 += 1;
                }
            }
            let month_means = sums.into_iter().map(|(s, n)| if n > 0 { s / n as f64 } else { f64::NAN }).collect();
            zones.push(ZoneSeries { name, first_hour, values, first_month, month_means });
        }
        let index = zones.iter().enumerate().map(|(i, z)| (z.name.clone(), i)).collect();
        Ok(Grid { zones, index, lifecycle })
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

struct Layout {
    zone: usize,
    ts: usize,
    value: usize,
}

const EXPECTED: &str = "expected an Electricity Maps export (`Datetime (UTC)`, `Zone id`, `Carbon intensity gCO₂eq/kWh (direct)` / `(Life cycle)`; older files `Zone Id`, `(LCA)`) or the plain form `zone,datetime,g_per_kwh`";

fn layout(headers: &[String], lifecycle: bool) -> std::result::Result<Layout, String> {
    let h: Vec<String> = headers.iter().map(|s| norm_header(s)).collect();
    let find = |names: &[&str]| h.iter().position(|x| names.contains(&x.as_str()));
    if let (Some(zone), Some(ts), Some(value)) = (find(&["zone"]), find(&["datetime"]), find(&["g_per_kwh"])) {
        return Ok(Layout { zone, ts, value });
    }
    let zone = find(&["zone id"]);
    let ts = find(&["datetime (utc)"]);
    let value = if lifecycle {
        find(&["carbon intensity gco2eq/kwh (life cycle)", "carbon intensity gco2eq/kwh (lca)"])
    } else {
        find(&["carbon intensity gco2eq/kwh (direct)"])
    };
    match (zone, ts, value) {
        (Some(zone), Some(ts), Some(value)) => Ok(Layout { zone, ts, value }),
        (Some(_), Some(_), None) => Err(format!(
            "no {} intensity column; {EXPECTED}",
            if lifecycle { "life-cycle (`(Life cycle)` or `(LCA)`)" } else { "direct (`(direct)`)" }
        )),
        _ => Err(format!("unrecognised header; {EXPECTED}")),
    }
}

fn read_into(acc: &mut Accumulator, text: &str, path: &Path, lifecycle: bool) -> Result<()> {
    let err = |line: usize, msg: String| Error::Grid { path: path.to_path_buf(), line: line as u64, msg };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((hline, header)) = lines.next() else {
        return Err(err(1, format!("empty file; {EXPECTED}")));
    };
    let mut fields = Vec::new();
    split_csv(header, &mut fields).map_err(|m| err(hline + 1, m.to_string()))?;
    let lay = layout(&fields, lifecycle).map_err(|m| err(hline + 1, m))?;
    let need = lay.zone.max(lay.ts).max(lay.value) + 1;
    for (i, line) in lines {
        let n = i + 1;
        split_csv(line, &mut fields).map_err(|m| err(n, m.to_string()))?;
        if fields.len() < need {
            return Err(err(n, format!("{} fields, expected at least {need}", fields.len())));
        }
        let zone = fields[lay.zone].trim();
        if zone.is_empty() {
            return Err(err(n, "empty zone".into()));
        }
        let ts_text = fields[lay.ts].trim();
        let ts = parse_ts(ts_text.as_bytes()).ok_or_else(|| err(n, format!("bad timestamp '{ts_text}'")))?;
        let raw = fields[lay.value].trim();
        let value = if raw.is_empty() {
            None
        } else {
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
                _ => return Err(err(n, format!("bad intensity '{raw}' (expected a number >= 0 or empty)"))),
            }
        };
        acc.add(zone, hour_of(ts), value);
    }
    Ok(())
}

impl Grid {
    pub fn empty() -> Grid {
        Grid::default()
    }

    /// Read and merge several files; the same (zone, hour) in several rows or files is averaged.
    pub fn from_paths(paths: &[PathBuf], lifecycle: bool) -> Result<Grid> {
        let mut acc = Accumulator::default();
        for p in paths {
            let bytes = std::fs::read(p).map_err(|e| Error::input(p, e))?;
            let text = String::from_utf8(bytes).map_err(|_| Error::Grid {
                path: p.clone(),
                line: 0,
                msg: "not UTF-8 text".into(),
            })?;
            read_into(&mut acc, &text, p, lifecycle)?;
        }
        let what = paths.first().map(|p| p.display().to_string()).unwrap_or_default();
        acc.build(lifecycle, &what)
    }

    /// One CSV from a reader; `name` stands for the path in messages.
    pub fn from_reader(mut r: impl Read, name: &str, lifecycle: bool) -> Result<Grid> {
        Grid::from_texts(&[(name, &read_text(&mut r, name)?)], lifecycle)
    }

    /// Several CSV texts, merged as [`Grid::from_paths`] does (for tests and in-memory callers).
    pub fn from_texts(texts: &[(&str, &str)], lifecycle: bool) -> Result<Grid> {
        let mut acc = Accumulator::default();
        for (name, text) in texts {
            read_into(&mut acc, text, Path::new(name), lifecycle)?;
        }
        acc.build(lifecycle, texts.first().map_or("", |t| t.0))
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
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
        self.zones.get(zone)?.at(hour)
    }

    /// Mean of the zone's hourly values in the UTC calendar month of `hour`.
    pub fn month_mean(&self, zone: usize, hour: i64) -> Option<f64> {
        self.zones.get(zone)?.month(month_index_of_hour(hour))
    }

    pub fn summary(&self) -> Vec<ZoneSummary> {
        self.zones
            .iter()
            .map(|z| {
                let mut gaps = Vec::new();
                let mut run: Option<i64> = None;
                let (mut n, mut sum) = (0u64, 0.0);
                for (i, v) in z.values.iter().enumerate() {
                    let h = z.first_hour + i as i64;
                    if v.is_nan() {
                        run.get_or_insert(h);
                    } else {
                        n += 1;
                        sum += v;
                        if let Some(s) = run.take() {
                            gaps.push((s, h - 1));
                        }
                    }
                }
                let last_hour = z.first_hour + z.values.len() as i64 - 1;
                if let Some(s) = run {
                    gaps.push((s, last_hour));
                }
                ZoneSummary {
                    zone: z.name.clone(),
                    first_hour: z.first_hour,
                    last_hour,
                    hours_with_value: n,
                    hours_missing: z.values.len() as u64 - n,
                    gaps,
                    mean_g_per_kwh: if n > 0 { sum / n as f64 } else { f64::NAN },
                }
            })
            .collect()
    }

    /// Every (zone, hour, g/kWh) with a value, zones sorted, hours ascending.
    pub fn rows(&self) -> impl Iterator<Item = (&str, i64, f64)> {
        self.zones.iter().flat_map(|z| {
            z.values
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(move |(i, v)| (z.name.as_str(), z.first_hour + i as i64, *v))
        })
    }
}

fn read_text(r: &mut impl Read, name: &str) -> Result<String> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(|e| Error::input(name, e))?;
    String::from_utf8(bytes).map_err(|_| Error::Grid { path: name.into(), line: 0, msg: "not UTF-8 text".into() })
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
}
