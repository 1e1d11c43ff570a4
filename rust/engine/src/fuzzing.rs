//! Entry points for the fuzz targets (`rust/fuzz`, `make fuzz`) and for the stable tests that
//! replay their corpus and run property tests (`tests/fuzz_corpus.rs`).
//!
//! Each function runs one of the engine's parsers on arbitrary bytes through the code path a
//! real run takes (a text log is written to a temporary file and scanned with `scan_files`;
//! the pack and grid parsers take their text as the CLI hands it over) and panics if an
//! invariant that must hold *whatever the input* is broken:
//!
//! - no panic, no endless loop (the fuzzer's `-timeout` catches those);
//! - every accepted record is within the record bounds (`record.rs`): a model name, finite
//!   non-negative numbers no larger than their column's bound;
//! - an error is an [`Error`] whose message is one non-empty line;
//! - the result does not depend on how the file is cut into blocks or on the worker count
//!   (a run with 1 MiB blocks on one thread and one with tiny blocks on two threads see the
//!   same records, rejects, blank lines and skips);
//! - every reject is one line of the rejects file;
//! - JSON Lines: the scanner gives the same events with and without its structural index
//!   (SIMD and portable), under the default mapping and the presets with nested paths.
//!
//! Memory is bounded by libFuzzer (`-rss_limit_mb`, `-max_len`), see docs/fuzzing.md. Compiled
//! always (not behind a feature) so the stable test suite calls the very same code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::columns::ColumnMap;
use crate::config::Config;
use crate::error::Error;
use crate::grid::Grid;
use crate::readers::{scan_files, FileStats, ScanControl, ScanOptions};
use crate::record::{Loc, Record, RecordSink, MAX_DURATION_S, MAX_ENERGY_J, MAX_GPUS, MAX_TOKENS, MAX_WEIGHT};
use crate::rejects::RejectsWriter;
use crate::source::expand_inputs;
use crate::time;

/// A JSON Lines log (`.jsonl`), default column mapping; then the scanner's kernels compared.
pub fn jsonl(data: &[u8]) {
    scan_text(data, "in.jsonl", None);
    jsonl_kernels(data);
}

/// The JSON Lines scanner with each structural-index kernel against the byte-at-a-time one
/// (`readers::jsonl_kernels_agree`), under mappings with flat, dotted and nested paths, and
/// with a `--max-line` small enough that some lines are over it.
pub fn jsonl_kernels(data: &[u8]) {
    for preset in [None, Some("otel"), Some("litellm"), Some("openai")] {
        let mut columns = ColumnMap::default();
        if let Some(p) = preset {
            columns.apply_preset(p).expect("a built-in preset");
        }
        for max_line in [crate::readers::DEFAULT_MAX_LINE, 100] {
            crate::readers::jsonl_kernels_agree(data, &columns, max_line);
        }
    }
}

/// A JSON document (`.json`: an array of records, `{"data": [...]}`, pretty-printed objects).
/// The reader decides between lines and document from the content, as in a real run; the
/// corpus of this target holds documents.
pub fn jsondoc(data: &[u8]) {
    scan_text(data, "in.json", None);
}

/// A CSV log with a header row, default column mapping.
pub fn csv(data: &[u8]) {
    scan_text(data, "in.csv", None);
}

/// OpenTelemetry spans (OTLP JSON `resourceSpans`, console exporter, ClickHouse, Zipkin) read
/// with the `otel` preset, as `--preset otel` does.
pub fn otlp(data: &[u8]) {
    scan_text(data, "in.json", Some("otel"));
    jsonl_kernels(data);
}

/// The timestamp parser (`time::parse_ts`) and the epoch conversions.
pub fn timestamp(data: &[u8]) {
    if let Some(us) = time::parse_ts(data) {
        check_ts(us);
        // A timestamp in the years a report shows prints as RFC 3339 and parses back to itself.
        let (y, _, _) = time::civil_from_days(us.div_euclid(86_400 * time::US_PER_SECOND));
        if (1..=9998).contains(&y) {
            let text = time::format_us(us);
            assert_eq!(time::parse_ts(text.as_bytes()), Some(us), "{text} does not parse back");
        }
    }
    // The same bytes as an epoch number in a JSON or Parquet integer / float column.
    let mut word = [0u8; 8];
    let n = data.len().min(8);
    word[..n].copy_from_slice(&data[..n]);
    if let Some(us) = time::epoch_int_to_us(i64::from_le_bytes(word)) {
        check_ts(us);
    }
    if let Some(us) = time::epoch_float_to_us(f64::from_le_bytes(word)) {
        check_ts(us);
    }
}

/// A methodology pack (`Config::from_toml`), then what a run derives from it.
pub fn pack(data: &[u8]) {
    // `Config::from_path` refuses non-UTF-8 before parsing; so do we.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_toml(text, "fuzz.toml") {
        Ok(c) => {
            let json = c.to_json();
            assert!(!json.is_empty());
            if let Err(e) = c.column_map() {
                check_error(&e);
            }
            let r = crate::names::Resolver::new(&c);
            // What a run builds from the pack before reading any record.
            let c = std::sync::Arc::new(c);
            if let Err(e) = crate::kernel::Methodology::new(c.clone(), std::sync::Arc::new(Grid::empty())) {
                check_error(&e);
            }
            for kind in [crate::names::NameKind::Model, crate::names::NameKind::Hardware, crate::names::NameKind::Site]
            {
                for name in c.models.keys().chain(c.hardware.keys()).chain(c.sites.keys()).take(50) {
                    let _ = r.resolve(&c, kind, name);
                }
            }
        }
        Err(e) => check_error(&e),
    }
}

/// A grid intensity CSV (`Grid::from_reader`, the path `--grid` files take after reading).
pub fn grid(data: &[u8]) {
    match Grid::from_reader(data, "fuzz-grid.csv", false) {
        Ok(g) => {
            for w in g.warnings() {
                check_message(w);
            }
            for (zone, hour, v) in g.rows() {
                assert!(!zone.is_empty(), "empty zone name");
                assert!(v.is_finite() && v >= 0.0, "zone {zone} hour {hour}: intensity {v}");
            }
            for (i, s) in g.summary().iter().enumerate() {
                assert!(s.first_hour <= s.last_hour);
                assert_eq!(g.zone_index(&s.zone), Some(i));
                // Lookups around the series never panic.
                for h in [s.first_hour - 1, s.first_hour, s.last_hour, s.last_hour + 1] {
                    if let Some(v) = g.at(i, h) {
                        assert!(v.is_finite() && v >= 0.0);
                    }
                    let _ = g.month_mean(i, h);
                }
            }
        }
        Err(e) => check_error(&e),
    }
}

/// The message of an error: one non-empty line.
fn check_message(msg: &str) {
    assert!(!msg.trim().is_empty(), "empty message");
    assert!(!msg.contains(['\n', '\r']), "message spans lines: {msg:?}");
}

fn check_error(e: &Error) {
    assert!(!matches!(e, Error::Internal(_)), "internal error on input: {e}");
    check_message(&e.to_string());
}

fn check_ts(us: i64) {
    // Hour and month arithmetic (grid lookups, month means) and formatting never overflow.
    let h = time::hour_of(us);
    let _ = time::month_index_of_hour(h);
    let _ = time::format_us(us);
}

/// Checks each accepted record and keeps an order-independent digest of what it saw.
#[derive(Default)]
struct CheckSink {
    n: u64,
    digest: u64,
}

impl RecordSink for CheckSink {
    fn record(&mut self, r: &Record<'_>, loc: Loc) {
        assert!(!r.model.is_empty(), "line {}: empty model", loc.line);
        for (what, v) in [("site", r.site), ("zone", r.zone), ("hardware", r.hardware), ("request_id", r.request_id)] {
            assert!(v.is_none_or(|s| !s.is_empty()), "line {}: empty {what} instead of null", loc.line);
        }
        for (what, v, max) in [("gpus", r.gpus, MAX_GPUS), ("input_tokens", r.input_tokens, MAX_TOKENS)]
            .into_iter()
            .chain([("output_tokens", r.output_tokens, MAX_TOKENS)])
        {
            assert!(v.is_none_or(|n| (0..=max).contains(&n)), "line {}: {what} {v:?}", loc.line);
        }
        for (what, v, max) in [("duration_s", r.duration_s, MAX_DURATION_S), ("energy_j", r.energy_j, MAX_ENERGY_J)] {
            assert!(v.is_none_or(|x| x.is_finite() && (0.0..=max).contains(&x)), "line {}: {what} {v:?}", loc.line);
        }
        assert!(r.weight.is_finite() && (0.0..=MAX_WEIGHT).contains(&r.weight), "line {}: weight", loc.line);
        check_ts(r.ts_us);
        let h = xxhash_rust::xxh3::xxh3_64(format!("{}:{r:?}", loc.line).as_bytes());
        self.n += 1;
        self.digest = self.digest.wrapping_add(h);
    }

    fn merge(&mut self, other: Self) -> crate::error::Result<()> {
        self.n += other.n;
        self.digest = self.digest.wrapping_add(other.digest);
        Ok(())
    }
}

/// A directory of its own for each call (the fuzzer runs one call at a time, the test suite
/// many in parallel), removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> ScratchDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("wattledger-fuzz-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create scratch dir");
        ScratchDir(p)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one scan produced, block-size independent.
#[derive(Debug, PartialEq)]
struct Outcome {
    records: u64,
    digest: u64,
    rejected: u64,
    rejects: BTreeMap<String, u64>,
    blank: u64,
    skipped: u64,
}

fn outcome(sink: CheckSink, f: &FileStats) -> Outcome {
    assert_eq!(sink.n, f.records, "records reaching the sink != records counted");
    assert_eq!(f.rejects.values().sum::<u64>(), f.rejected, "reject reasons do not add up");
    for reason in f.rejects.keys() {
        check_message(reason);
    }
    Outcome {
        records: f.records,
        digest: sink.digest,
        rejected: f.rejected,
        rejects: f.rejects.clone(),
        blank: f.blank_lines,
        skipped: f.skipped,
    }
}

fn scan_text(data: &[u8], name: &str, preset: Option<&str>) {
    let dir = ScratchDir::new();
    let path = dir.0.join(name);
    std::fs::write(&path, data).expect("write fuzz input");
    let files = expand_inputs(&[path.to_string_lossy().into_owned()]).expect("the input file is found");
    let mut columns = ColumnMap::default();
    if let Some(p) = preset {
        columns.apply_preset(p).expect("a built-in preset");
    }
    let rejects_path = dir.0.join("rejects.jsonl");
    let mut results = Vec::new();
    // One scan as a run makes it (big blocks, one worker here for speed), one with blocks of
    // a few bytes on two workers: every record and every line end falls on a block boundary
    // somewhere, and records of one file reach the sink from two threads.
    for (block, threads, rejects) in [(1 << 20, 1, true), (7, 2, false)] {
        let opts =
            ScanOptions { columns: columns.clone(), threads, block_bytes: block, hash: true, ..Default::default() };
        let ctl = ScanControl::default();
        let writer = rejects.then(|| RejectsWriter::create(&rejects_path).expect("create rejects file"));
        let res = scan_files(&files, &opts, &ctl, writer.as_ref(), CheckSink::default);
        let res = match res {
            Ok(out) => {
                let f = &out.files[0];
                assert_eq!(ctl.records.load(Ordering::Relaxed), f.records);
                assert_eq!(ctl.rejects.load(Ordering::Relaxed), f.rejected);
                assert_eq!(f.hashed_bytes, Some(data.len() as u64), "hash covers the whole file");
                let o = outcome(out.sink, f);
                if let Some(w) = writer {
                    w.finish().expect("finish rejects");
                    check_rejects_file(&rejects_path, o.rejected);
                }
                Ok(o)
            }
            Err(e) => {
                check_error(&e);
                Err(e.to_string())
            }
        };
        results.push(res);
    }
    assert_eq!(results[0], results[1], "the result depends on the block size / worker count");
}

/// The rejects file is JSON Lines: one line per reject, each an object.
fn check_rejects_file(path: &Path, rejected: u64) {
    let text = std::fs::read(path).expect("read rejects");
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len() as u64, rejected, "one rejects line per reject");
    for l in lines {
        assert!(l.starts_with(b"{\"source\": ") && l.ends_with(b"}"), "rejects line: {}", String::from_utf8_lossy(l));
        assert!(!l.contains(&b'\r'), "raw CR in a rejects line");
    }
}
