//! Metered energy counters per node (DCGM exporter, Kepler) turned into energy intervals.
//!
//! Inputs (docs/attribution.md): Prometheus text exposition snapshots (`.prom`, `.txt`, any
//! name not ending in `.csv`) and the CSV of a range query (long form: a timestamp column, a
//! metric-name column, a value column, every other column a label). Only cumulative energy
//! counters of accelerators are read:
//! - `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`: millijoules since boot, one series per GPU;
//! - `kepler_node_gpu_joules_total`: joules, one series per GPU of a node;
//! - `kepler_container_gpu_joules_total`: joules per container, used for a node only when the
//!   input has no node-level GPU counter for it (else the same energy would count twice).
//!
//! Other `*_joules_total` counters (Kepler's CPU, DRAM, package, platform, and
//! `kepler_container_joules_total`, which sums CPU, DRAM and GPU) are host energy, which the
//! pack's `host_overhead` already stands for: they are counted by name and reported, not used.
//!
//! Per series (node, device, metric), samples are sorted by time; each pair of consecutive
//! samples is an interval whose energy is the difference. A decrease is a counter reset (the
//! exporter or the driver restarted): the interval's energy is then the new value (the energy
//! counted since the restart; what the GPU used between the previous sample and the restart is
//! unknown) and the reset is reported. An interval longer than three times the series' median
//! step is a gap: its energy is kept (it was used) and the gap is reported. The intervals of a
//! node's GPUs are then merged: intervals with the same bounds are summed into one, others stay
//! apart (each is shared over the requests active in it, see `attribution.rs`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::time::{epoch_float_to_us, parse_ts};

/// Longest line read (bytes); a longer one is an error, so a hostile file cannot make us
/// buffer an unbounded line.
pub const MAX_LINE: usize = 1 << 20;
/// Samples kept over all files of a run (24 bytes each: 480 MB at the cap). A year of 15 s
/// scrapes of 8 GPUs is 17M samples per node; sum a fleet by node first (`sum by (Hostname)`).
pub const MAX_SAMPLES: usize = 20_000_000;
/// Distinct series (node, device, metric) over all files: a fleet of 10,000 nodes of 8 GPUs
/// is 80,000. Bounds the memory of hostile label values (each series keeps its names).
pub const MAX_SERIES: usize = 1_000_000;
/// Resets and gaps kept with their details for the report; more are counted only.
pub const MAX_EVENTS: usize = 1000;
/// A counter value beyond this (joules) is not a real counter: 1e15 J is 32 years at 1 MW.
pub const MAX_JOULES: f64 = 1e15;
/// An interval this many times the series' median step is reported as a gap.
pub const GAP_FACTOR: i64 = 3;

/// The counters read, and how each converts to joules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Dcgm,
    KeplerNodeGpu,
    KeplerContainerGpu,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Dcgm => "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            Metric::KeplerNodeGpu => "kepler_node_gpu_joules_total",
            Metric::KeplerContainerGpu => "kepler_container_gpu_joules_total",
        }
    }

    fn of(name: &str) -> Option<Metric> {
        [Metric::Dcgm, Metric::KeplerNodeGpu, Metric::KeplerContainerGpu].into_iter().find(|m| m.name() == name)
    }

    /// Joules per counter unit (DCGM counts millijoules).
    fn joules(self) -> f64 {
        match self {
            Metric::Dcgm => 1e-3,
            _ => 1.0,
        }
    }
}

/// Labels naming the node, first present wins: DCGM exporter's `Hostname`, Kepler's
/// `node_name`, then the usual relabelled names and Prometheus' scrape target.
pub const NODE_LABELS: [&str; 5] = ["Hostname", "node_name", "node", "hostname", "instance"];
/// Labels naming the device within a node, first present wins (absent: the node as a whole).
pub const DEVICE_LABELS: [&str; 5] = ["UUID", "gpu_uuid", "gpu", "device", "container_id"];

/// One energy interval of a node: `(start_us, end_us]` and the joules used in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub start_us: i64,
    pub end_us: i64,
    pub joules: f64,
}

/// Something a user should know about a counter series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesEvent {
    /// `reset` or `gap`.
    pub kind: &'static str,
    pub node: String,
    pub device: String,
    pub start_us: i64,
    pub end_us: i64,
    /// Joules of the interval (for a reset, the counter's value after the restart).
    pub joules: f64,
}

/// What reading the counters found, for the run summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterReport {
    pub files: Vec<String>,
    pub samples: u64,
    pub series: u64,
    /// Samples at a time their series already had (the first is kept).
    pub duplicate_samples: u64,
    pub resets: u64,
    pub gaps: u64,
    /// The first [`MAX_EVENTS`] resets and gaps (in series order), with their details.
    pub events: Vec<SeriesEvent>,
    /// Energy counters read but not used, by metric name (host energy, see module docs), and
    /// container series dropped because their node has a node-level counter.
    pub skipped: BTreeMap<String, u64>,
}

/// Metered energy intervals per node.
#[derive(Debug, Clone, Default)]
pub struct NodeEnergy {
    pub nodes: Vec<Arc<str>>,
    /// Per node, sorted by (start, end), equal bounds merged.
    pub intervals: Vec<Vec<Interval>>,
    /// Per node, the longest interval (us), to find the intervals overlapping a time span.
    pub longest_us: Vec<i64>,
    pub index: FxHashMap<Box<str>, u32>,
    pub report: CounterReport,
}

impl NodeEnergy {
    pub fn node_id(&self, node: &str) -> Option<u32> {
        self.index.get(node).copied()
    }

    /// Total metered joules (all nodes, all intervals).
    pub fn total_joules(&self) -> f64 {
        self.intervals.iter().flatten().map(|i| i.joules).sum()
    }

    /// Read and combine counter files.
    pub fn from_files(paths: &[PathBuf]) -> Result<NodeEnergy> {
        let mut acc = Samples::default();
        for p in paths {
            let f =
                std::fs::File::open(p).map_err(|e| Error::input(p, format!("cannot open node energy file: {e}")))?;
            acc.read(p, f)?;
        }
        acc.report.files = paths.iter().map(|p| p.display().to_string()).collect();
        acc.finish()
    }

    /// Parse in-memory texts `(name, text)`; the name's extension picks the format.
    pub fn from_texts(texts: &[(&str, &str)]) -> Result<NodeEnergy> {
        let mut acc = Samples::default();
        for (name, text) in texts {
            acc.read(Path::new(name), text.as_bytes())?;
        }
        acc.report.files = texts.iter().map(|(n, _)| n.to_string()).collect();
        acc.finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    node: String,
    device: String,
    metric: Metric,
}

/// Samples of every series as read, before intervals are made.
#[derive(Default)]
struct Samples {
    keys: FxHashMap<SeriesKey, u32>,
    series: Vec<SeriesKey>,
    /// (series, ts_us, value in counter units)
    samples: Vec<(u32, i64, f64)>,
    report: CounterReport,
}

/// One line, at most [`MAX_LINE`] bytes (without its line break); `None` at the end.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, path: &Path, line: u64) -> Result<Option<()>> {
    buf.clear();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        return Err(bad(path, line, format!("line longer than {MAX_LINE} bytes; is this a counter file?")));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(()))
}

fn bad(path: &Path, line: u64, msg: impl std::fmt::Display) -> Error {
    Error::input_at(path, line, format!("line {line}: {msg}"))
}

/// A timestamp as Prometheus tools write one: RFC 3339, or epoch seconds with a fraction
/// (range-query values, OpenMetrics), or an integer epoch in s/ms/us/ns by magnitude.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.contains('.') && !s.contains(['-', ':']) {
        let v: f64 = s.parse().ok()?;
        return if v.is_finite() { epoch_float_to_us(v) } else { None };
    }
    parse_ts(s.as_bytes())
}

/// A counter value: finite, not negative, below [`MAX_JOULES`] in joules.
fn parse_value(s: &str, metric: Metric) -> std::result::Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("value {:?} is not a number", short(s)))?;
    if !v.is_finite() {
        return Err(format!("value {} is not finite; a counter never is", short(s)));
    }
    if v < 0.0 {
        return Err(format!("value {} is negative; a counter never is", short(s)));
    }
    if v * metric.joules() > MAX_JOULES {
        return Err(format!("value {} is beyond {MAX_JOULES:e} J; not a real counter", short(s)));
    }
    Ok(v)
}

fn short(s: &str) -> String {
    let t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        format!("{t}...")
    } else {
        t
    }
}

impl Samples {
    fn read(&mut self, path: &Path, r: impl Read) -> Result<()> {
        let mut r = BufReader::new(r);
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv {
            self.read_csv(path, &mut r)
        } else {
            self.read_exposition(path, &mut r)
        }
    }

    fn add(
        &mut self,
        path: &Path,
        line: u64,
        labels: &[(String, String)],
        metric: Metric,
        ts: i64,
        v: f64,
    ) -> Result<()> {
        let get = |names: &[&str]| {
            names.iter().find_map(|n| labels.iter().find(|(k, v)| k == n && !v.is_empty()).map(|(_, v)| v.clone()))
        };
        let Some(node) = get(&NODE_LABELS) else {
            return Err(bad(
                path,
                line,
                format!("{} sample without a node label (one of {})", metric.name(), NODE_LABELS.join(", ")),
            ));
        };
        let mut device = get(&DEVICE_LABELS).unwrap_or_default();
        if metric == Metric::KeplerContainerGpu {
            // A container's GPU series: the container and the GPU together name it.
            let container = get(&["container_id", "container_name", "pod_name"]).unwrap_or_default();
            let gpu = get(&["gpu", "gpu_uuid"]).unwrap_or_default();
            device = format!("{container}/{gpu}");
        }
        if self.samples.len() >= MAX_SAMPLES {
            return Err(bad(
                path,
                line,
                format!("more than {MAX_SAMPLES} samples; query a coarser step or sum by node first"),
            ));
        }
        let key = SeriesKey { node, device, metric };
        let id = match self.keys.get(&key) {
            Some(&i) => i,
            None if self.series.len() >= MAX_SERIES => {
                return Err(bad(
                    path,
                    line,
                    format!("more than {MAX_SERIES} counter series; are node and device labels per sample?"),
                ));
            }
            None => {
                let i = self.series.len() as u32;
                self.keys.insert(key.clone(), i);
                self.series.push(key);
                i
            }
        };
        self.samples.push((id, ts, v));
        Ok(())
    }

    /// Prometheus text exposition (format 0.0.4) and OpenMetrics: `name{labels} value [ts]`.
    /// A sample's own timestamp is integer milliseconds (0.0.4) or seconds with a fraction
    /// (OpenMetrics). A scrape saved without timestamps needs its time in a comment line
    /// `# timestamp: <RFC 3339 or epoch seconds>` before its samples (several snapshots may be
    /// concatenated, each after its own line).
    fn read_exposition(&mut self, path: &Path, r: &mut impl BufRead) -> Result<()> {
        let mut buf = Vec::new();
        let mut line = 0u64;
        let mut scrape_ts: Option<i64> = None;
        while read_line(r, &mut buf, path, line + 1)?.is_some() {
            line += 1;
            let text = std::str::from_utf8(&buf).map_err(|_| bad(path, line, "not UTF-8 text"))?;
            let t = text.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(c) = t.strip_prefix('#') {
                if let Some(ts) = c.trim_start().strip_prefix("timestamp:") {
                    scrape_ts = Some(parse_time(ts).ok_or_else(|| {
                        bad(path, line, format!("timestamp {:?}: not RFC 3339 nor epoch seconds", short(ts.trim())))
                    })?);
                }
                continue;
            }
            let name_end = t.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(t.len());
            let name = &t[..name_end];
            let Some(metric) = Metric::of(name) else {
                if name.ends_with("_joules_total") || name.ends_with("_ENERGY_CONSUMPTION") {
                    *self.report.skipped.entry(name.to_string()).or_insert(0) += 1;
                }
                continue;
            };
            let mut rest = &t[name_end..];
            let mut labels = Vec::new();
            if rest.starts_with('{') {
                let (l, after) = parse_labels(rest).map_err(|e| bad(path, line, e))?;
                labels = l;
                rest = after;
            }
            let mut parts = rest.split_whitespace();
            let value = parts.next().ok_or_else(|| bad(path, line, "sample without a value"))?;
            let v = parse_value(value, metric).map_err(|e| bad(path, line, e))?;
            let ts = match parts.next() {
                Some(ts) if ts.contains('.') => parse_time(ts),
                Some(ts) => ts.parse::<i64>().ok().and_then(|ms| ms.checked_mul(1000)),
                None => scrape_ts,
            }
            .ok_or_else(|| {
                bad(
                    path,
                    line,
                    "sample without a time: save each scrape after a line `# timestamp: <RFC 3339>`, \
                     or export samples with timestamps",
                )
            })?;
            if parts.next().is_some() {
                return Err(bad(path, line, "extra text after the sample's timestamp"));
            }
            self.add(path, line, &labels, metric, ts, v)?;
        }
        Ok(())
    }

    /// The CSV of a range query, long form: a header row naming a time column (`timestamp`,
    /// `time` or `ts`), a metric-name column (`__name__`, `metric` or `name`) and a `value`
    /// column; every other column is a label. One row per sample.
    fn read_csv(&mut self, path: &Path, r: &mut impl BufRead) -> Result<()> {
        let mut buf = Vec::new();
        if read_line(r, &mut buf, path, 1)?.is_none() {
            return Err(bad(path, 1, "empty file; expected a header row"));
        }
        let head_text = std::str::from_utf8(&buf).map_err(|_| bad(path, 1, "not UTF-8 text"))?;
        let header = split_csv(head_text.trim_start_matches('\u{feff}')).map_err(|e| bad(path, 1, e))?;
        let find = |names: &[&str]| header.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
        let need = |names: &[&str]| {
            find(names).ok_or_else(|| {
                bad(
                    path,
                    1,
                    format!(
                        "no {} column; expected a header like timestamp,__name__,Hostname,gpu,value",
                        names.join("/")
                    ),
                )
            })
        };
        let t_col = need(&["timestamp", "time", "ts"])?;
        let n_col = need(&["__name__", "metric", "name"])?;
        let v_col = need(&["value"])?;
        let mut line = 1u64;
        while read_line(r, &mut buf, path, line + 1)?.is_some() {
            line += 1;
            let text = std::str::from_utf8(&buf).map_err(|_| bad(path, line, "not UTF-8 text"))?;
            if text.trim().is_empty() {
                continue;
            }
            let cells = split_csv(text).map_err(|e| bad(path, line, e))?;
            if cells.len() != header.len() {
                return Err(bad(path, line, format!("{} fields, the header has {}", cells.len(), header.len())));
            }
            let name = cells[n_col].as_str();
            let Some(metric) = Metric::of(name) else {
                if name.ends_with("_joules_total") || name.ends_with("_ENERGY_CONSUMPTION") {
                    *self.report.skipped.entry(name.to_string()).or_insert(0) += 1;
                    continue;
                }
                return Err(bad(
                    path,
                    line,
                    format!(
                        "metric {:?} is not an energy counter (expected {})",
                        short(name),
                        [Metric::Dcgm, Metric::KeplerNodeGpu, Metric::KeplerContainerGpu].map(Metric::name).join(", ")
                    ),
                ));
            };
            let ts = parse_time(&cells[t_col]).ok_or_else(|| {
                bad(path, line, format!("time {:?}: not RFC 3339 nor epoch seconds", short(&cells[t_col])))
            })?;
            let v = parse_value(&cells[v_col], metric).map_err(|e| bad(path, line, e))?;
            let labels: Vec<(String, String)> = header
                .iter()
                .zip(&cells)
                .enumerate()
                .filter(|(i, _)| ![t_col, n_col, v_col].contains(i))
                .map(|(_, (h, c))| (h.clone(), c.clone()))
                .collect();
            self.add(path, line, &labels, metric, ts, v)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<NodeEnergy> {
        let report = &mut self.report;
        report.samples = self.samples.len() as u64;
        report.series = self.series.len() as u64;
        // Nodes with a node-level GPU counter: their container series would count it twice.
        let node_level: std::collections::BTreeSet<&str> =
            self.series.iter().filter(|k| k.metric != Metric::KeplerContainerGpu).map(|k| k.node.as_str()).collect();
        self.samples.sort_unstable_by_key(|&(s, t, _)| (s, t));
        let mut per_node: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        let mut i = 0;
        while i < self.samples.len() {
            let s = self.samples[i].0;
            let mut j = i;
            while j < self.samples.len() && self.samples[j].0 == s {
                j += 1;
            }
            let key = &self.series[s as usize];
            if key.metric == Metric::KeplerContainerGpu && node_level.contains(key.node.as_str()) {
                *report.skipped.entry(format!("{} (node has a node-level counter)", key.metric.name())).or_insert(0) +=
                    (j - i) as u64;
                i = j;
                continue;
            }
            let (ivs, dups) = series_intervals(&self.samples[i..j], key, report);
            report.duplicate_samples += dups;
            per_node.entry(key.node.clone()).or_default().extend(ivs);
            i = j;
        }
        let mut out = NodeEnergy { report: self.report, ..NodeEnergy::default() };
        for (node, mut ivs) in per_node {
            ivs.sort_by_key(|iv| (iv.start_us, iv.end_us));
            let mut merged: Vec<Interval> = Vec::with_capacity(ivs.len());
            for iv in ivs {
                match merged.last_mut() {
                    Some(m) if m.start_us == iv.start_us && m.end_us == iv.end_us => m.joules += iv.joules,
                    _ => merged.push(iv),
                }
            }
            let id = out.nodes.len() as u32;
            out.index.insert(node.as_str().into(), id);
            out.longest_us.push(merged.iter().map(|iv| iv.end_us - iv.start_us).max().unwrap_or(0));
            out.nodes.push(node.into());
            out.intervals.push(merged);
        }
        out.report.events.sort_by(|a, b| (&a.node, &a.device, a.start_us).cmp(&(&b.node, &b.device, b.start_us)));
        Ok(out)
    }
}

/// One series' intervals (samples sorted by time), its resets and gaps counted in `report`;
/// also the number of samples dropped as repeats of a time already seen.
fn series_intervals(samples: &[(u32, i64, f64)], key: &SeriesKey, report: &mut CounterReport) -> (Vec<Interval>, u64) {
    let mut pts: Vec<(i64, f64)> = Vec::with_capacity(samples.len());
    let mut dups = 0;
    for &(_, t, v) in samples {
        if pts.last().is_some_and(|&(lt, _)| lt == t) {
            dups += 1;
            continue;
        }
        pts.push((t, v));
    }
    let mut steps: Vec<i64> = pts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    steps.sort_unstable();
    let median = steps.get(steps.len() / 2).copied().unwrap_or(0);
    let scale = key.metric.joules();
    let mut out = Vec::with_capacity(pts.len().saturating_sub(1));
    for w in pts.windows(2) {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        let mut event = |kind: &'static str, joules| {
            if kind == "reset" {
                report.resets += 1;
            } else {
                report.gaps += 1;
            }
            if report.events.len() < MAX_EVENTS {
                report.events.push(SeriesEvent {
                    kind,
                    node: key.node.clone(),
                    device: key.device.clone(),
                    start_us: t0,
                    end_us: t1,
                    joules,
                });
            }
        };
        let joules = if v1 >= v0 {
            (v1 - v0) * scale
        } else {
            let j = v1 * scale;
            event("reset", j);
            j
        };
        if median > 0 && t1 - t0 > GAP_FACTOR * median {
            event("gap", joules);
        }
        out.push(Interval { start_us: t0, end_us: t1, joules });
    }
    (out, dups)
}

/// A sample's labels, as (name, value) in the order written.
type Labels = Vec<(String, String)>;

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest after `}`.
fn parse_labels(s: &str) -> std::result::Result<(Labels, &str), String> {
    let b = s.as_bytes();
    let mut i = 1;
    let mut labels = Vec::new();
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            return Err("unterminated label set (no closing `}`)".into());
        }
        if b[i] == b'}' {
            return Ok((labels, &s[i + 1..]));
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b'}' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err("label without `=value`".into());
        }
        let key = s[k0..i].trim().to_string();
        i += 1;
        if i >= b.len() || b[i] != b'"' {
            return Err(format!("label {:?}: value not in double quotes", short(&key)));
        }
        i += 1;
        let mut val = Vec::new();
        loop {
            match b.get(i) {
                None => return Err(format!("label {:?}: unterminated value", short(&key))),
                Some(b'"') => break,
                Some(b'\\') => {
                    match b.get(i + 1) {
                        Some(b'n') => val.push(b'\n'),
                        Some(&c) => val.push(c),
                        None => return Err(format!("label {:?}: unterminated value", short(&key))),
                    }
                    i += 2;
                }
                Some(&c) => {
                    val.push(c);
                    i += 1;
                }
            }
        }
        i += 1;
        labels.push((key, String::from_utf8_lossy(&val).into_owned()));
    }
}

/// One CSV row (RFC 4180 quotes; no line breaks inside fields).
fn split_csv(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DCGM: &str = "# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).\n\
# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n\
# timestamp: 2025-06-01T00:00:00Z\n\
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\",UUID=\"GPU-a\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"n1\"} 1000000\n\
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"1\",UUID=\"GPU-b\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"n1\"} 5000000\n\
DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-a\",Hostname=\"n1\"} 250.5\n\
# timestamp: 2025-06-01T00:01:00Z\n\
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\",UUID=\"GPU-a\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"n1\"} 31000000\n\
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"1\",UUID=\"GPU-b\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"n1\"} 6000000\n";

    #[test]
    fn dcgm_snapshots_sum_gpus_of_a_node() {
        let e = NodeEnergy::from_texts(&[("a.prom", DCGM)]).unwrap();
        assert_eq!(e.nodes.len(), 1);
        let iv = &e.intervals[0];
        assert_eq!(iv.len(), 1, "same bounds merge");
        // (31e6 - 1e6) + (6e6 - 5e6) mJ = 31 kJ
        assert_eq!(iv[0].joules, 31000.0);
        assert_eq!(iv[0].end_us - iv[0].start_us, 60_000_000);
        assert_eq!(e.report.series, 2);
    }

    #[test]
    fn sample_timestamps_ms_and_seconds() {
        let t = "kepler_node_gpu_joules_total{gpu=\"0\",node_name=\"k\"} 10 1748736000000\n\
                 kepler_node_gpu_joules_total{gpu=\"0\",node_name=\"k\"} 25.5 1748736015.000\n";
        let e = NodeEnergy::from_texts(&[("k.txt", t)]).unwrap();
        assert_eq!(
            e.intervals[0],
            vec![Interval { start_us: 1_748_736_000_000_000, end_us: 1_748_736_015_000_000, joules: 15.5 }]
        );
    }

    #[test]
    fn reset_counts_the_new_value_and_is_reported() {
        let csv = "timestamp,__name__,Hostname,gpu,value\n\
                   1748736000,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n,0,5000\n\
                   1748736060.0,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n,0,9000\n\
                   1748736120.0,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n,0,2000\n\
                   1748736180.0,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n,0,3000\n";
        let e = NodeEnergy::from_texts(&[("r.csv", csv)]).unwrap();
        let j: Vec<f64> = e.intervals[0].iter().map(|i| i.joules).collect();
        assert_eq!(j, vec![4.0, 2.0, 1.0]);
        assert_eq!(e.report.events.len(), 1);
        assert_eq!((e.report.resets, e.report.gaps), (1, 0));
        assert_eq!(e.report.events[0].kind, "reset");
        assert_eq!(e.report.events[0].joules, 2.0);
    }

    #[test]
    fn gap_is_reported_and_its_energy_kept() {
        let mut csv = String::from("ts,metric,instance,value\n");
        for (t, v) in [(0, 0), (60, 10), (120, 20), (180, 30), (900, 100)] {
            csv += &format!("{},kepler_node_gpu_joules_total,host,{v}\n", 1748736000 + t);
        }
        let e = NodeEnergy::from_texts(&[("g.csv", &csv)]).unwrap();
        assert_eq!(e.total_joules(), 100.0);
        let gaps: Vec<_> = e.report.events.iter().filter(|e| e.kind == "gap").collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].joules, 70.0);
    }

    #[test]
    fn container_series_only_without_node_level() {
        let t = "# timestamp: 1748736000\n\
kepler_container_gpu_joules_total{container_id=\"c1\",gpu=\"0\",node_name=\"a\"} 1\n\
kepler_container_gpu_joules_total{container_id=\"c1\",gpu=\"0\",node_name=\"b\"} 1\n\
kepler_node_gpu_joules_total{gpu=\"0\",node_name=\"b\"} 1\n\
kepler_container_joules_total{container_id=\"c1\",node_name=\"a\"} 1\n\
# timestamp: 1748736060\n\
kepler_container_gpu_joules_total{container_id=\"c1\",gpu=\"0\",node_name=\"a\"} 3\n\
kepler_container_gpu_joules_total{container_id=\"c1\",gpu=\"0\",node_name=\"b\"} 3\n\
kepler_node_gpu_joules_total{gpu=\"0\",node_name=\"b\"} 11\n\
kepler_container_joules_total{container_id=\"c1\",node_name=\"a\"} 5\n";
        let e = NodeEnergy::from_texts(&[("k.prom", t)]).unwrap();
        let a = e.node_id("a").unwrap() as usize;
        let b = e.node_id("b").unwrap() as usize;
        assert_eq!(e.intervals[a][0].joules, 2.0);
        assert_eq!(e.intervals[b][0].joules, 10.0);
        assert_eq!(e.report.skipped["kepler_container_joules_total"], 2);
        assert_eq!(e.report.skipped["kepler_container_gpu_joules_total (node has a node-level counter)"], 2);
    }

    #[test]
    fn malformed_input_is_one_line_with_file_and_line() {
        let cases: [(&str, &str, &str); 8] = [
            ("x.prom", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{Hostname=\"n\"} 5\n", "line 1: sample without a time"),
            (
                "x.prom",
                "# timestamp: 1\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{Hostname=\"n\"} NaN\n",
                "line 2: value NaN is not finite",
            ),
            (
                "x.prom",
                "# timestamp: 1\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{Hostname=\"n\"} -5\n",
                "line 2: value -5 is negative",
            ),
            ("x.prom", "# timestamp: 1\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"} 5\n", "without a node label"),
            ("x.prom", "# timestamp: 1\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{Hostname=\"n 5\n", "unterminated value"),
            ("x.csv", "time,value\n", "line 1: no __name__/metric/name column"),
            (
                "x.csv",
                "time,name,node,value\n1,cpu_seconds_total,n,1\n",
                "line 2: metric \"cpu_seconds_total\" is not an energy counter",
            ),
            ("x.csv", "time,name,node,value\n1,kepler_node_gpu_joules_total,n,1e300\n", "not a real counter"),
        ];
        for (name, text, want) in cases {
            let e = NodeEnergy::from_texts(&[(name, text)]).unwrap_err().to_string();
            assert!(e.contains(want) && e.starts_with(name) && !e.contains('\n'), "{e}");
        }
        let huge = format!("# timestamp: 1\n{}\n", "x".repeat(MAX_LINE + 10));
        let e = NodeEnergy::from_texts(&[("h.prom", &huge)]).unwrap_err().to_string();
        assert!(e.contains("line 2: line longer than"), "{e}");
    }

    #[test]
    fn large_counters_difference_exactly() {
        // Counters after years of uptime are near 1e13 mJ: still exact in float64 (below 2^53).
        let t = "# timestamp: 1748736000\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{Hostname=\"n\"} 12345678901234\n\
                 # timestamp: 1748736060\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{Hostname=\"n\"} 12345679901234\n";
        let e = NodeEnergy::from_texts(&[("l.prom", t)]).unwrap();
        assert_eq!(e.total_joules(), 1000.0);
    }
}
