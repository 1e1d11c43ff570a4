//! Per-record rows against the cells of the same run: summed per cell they give the cells
//! (both ways into the sink: JSON Lines drafts and Parquet rows by column), the cells are bit
//! for bit those of a plain estimate, rows come in input order, and the outputs are atomic.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::*;
use arrow_schema::{DataType, Field, Schema};

use super::*;
use crate::config::Config;
use crate::grid::Grid;
use crate::pipeline::{estimate_files, estimate_records_files, EstimateOptions};
use crate::readers::{ScanControl, ScanOptions};
use crate::source::expand_inputs;
use crate::time::{format_us, parse_ts};

const CONFIG: &str = r#"
[defaults]
pue = 1.5
host_overhead = 0.1
idle_overhead = 0.1
[uncertainty]
measured = 0.1
gpu_time = 0.5
flops = 2.0
[hardware.h100]
tdp_w = 700
idle_w = 100
peak_tflops = 1000
[hardware.nopeak]
tdp_w = 300
[models.m8]
active_params_b = 8
[[models.m8.coefficients]]
hardware = "h100"
wh_per_1k_input = 0.01
wh_per_1k_output = 0.1
[[models.m8.coefficients]]
hardware = "*"
wh_per_1k_input = 0.02
wh_per_1k_output = 0.2
uncertainty = 0.2
[models.p]
active_params_b = 10
[sites.fra]
zone = "de"
hardware = "h100"
gpus = 2
fallback_g_per_kwh = 500
market_g_per_kwh = 0.0
[sites.par]
zone = "FR"
market_g_per_kwh = 20
[outcomes]
cached = ["from_cache"]
failed = ["rate_limited"]
[aliases.models]
"openai/*" = "m8"
[aliases.hardware]
"NVIDIA H100*" = "h100"
[aliases.sites]
"10.0.0.*" = "par"
"#;
const GRID: &str = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,400\nDE,2024-01-01T02:00:00Z,200\n\
                    FR,2024-01-01T00:00:00Z,50\n";

/// One generated record (`None`: absent), or a bad line.
#[derive(Clone, Debug)]
struct Gen {
    ts: i64,
    model: &'static str,
    site: Option<&'static str>,
    zone: Option<&'static str>,
    hardware: Option<&'static str>,
    status: Option<&'static str>,
    request_id: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    duration_s: Option<f64>,
    energy_j: Option<f64>,
    weight: Option<f64>,
    gpus: Option<i64>,
}

/// Deterministic edge cases: aliases, unknown names, unresolved zones, every method, cached
/// and failed outcomes, fractional and zero weights, several hours and months.
fn records(n: usize) -> Vec<Gen> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |k: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % k
    };
    let pick = |i: u64, xs: &[Option<&'static str>]| xs[i as usize % xs.len()];
    let t0 = parse_ts(b"2024-01-01T00:00:00Z").unwrap();
    (0..n)
        .map(|i| {
            let feb = if next(5) == 0 { 31 * 24 * 3_600_000_000 } else { 0 };
            Gen {
                ts: t0 + feb + next(4 * 3_600_000_000) as i64,
                model: ["m8", "openai/gpt-x", "p", "unknown"][next(4) as usize],
                site: pick(next(6), &[None, Some("fra"), Some("par"), Some("10.0.0.7"), Some("nowhere"), None]),
                zone: pick(next(6), &[None, None, Some("DE"), Some("de"), Some("XX"), Some("FR")]),
                hardware: pick(next(5), &[None, Some("h100"), Some("NVIDIA H100 SXM"), Some("nopeak"), Some("zz")]),
                status: pick(
                    next(6),
                    &[None, Some("ok"), Some("error"), Some("from_cache"), Some("rate_limited"), Some("odd")],
                ),
                request_id: (next(3) != 0).then(|| format!("r{i}")),
                input_tokens: (next(3) != 0).then(|| next(5000) as i64),
                output_tokens: (next(3) != 0).then(|| next(800) as i64),
                duration_s: (next(2) == 0).then(|| next(10_000) as f64 / 100.0),
                energy_j: (next(6) == 0).then(|| next(100_000) as f64 / 7.0),
                weight: [None, Some(1.0), Some(0.5), Some(3.0), Some(0.0)][next(5) as usize],
                gpus: [None, Some(1), Some(4)][next(3) as usize],
            }
        })
        .collect()
}

fn jsonl(recs: &[Gen]) -> String {
    let mut out = String::new();
    for (i, r) in recs.iter().enumerate() {
        if i % 97 == 5 {
            out.push_str("{not json\n");
        }
        if i % 89 == 7 {
            out.push_str("{\"ts\":\"2024-01-01T00:00:00Z\",\"model\":\"m8\",\"input_tokens\":-1}\n\n");
        }
        let mut f = vec![format!("\"ts\":\"{}\"", format_us(r.ts)), format!("\"model\":\"{}\"", r.model)];
        let s = |k: &str, v: &Option<&str>| v.map(|v| format!("\"{k}\":\"{v}\""));
        f.extend(s("site", &r.site));
        f.extend(s("zone", &r.zone));
        f.extend(s("hardware", &r.hardware));
        f.extend(s("status", &r.status));
        f.extend(s("request_id", &r.request_id.as_deref()));
        f.extend(r.input_tokens.map(|v| format!("\"input_tokens\":{v}")));
        f.extend(r.output_tokens.map(|v| format!("\"output_tokens\":{v}")));
        f.extend(r.duration_s.map(|v| format!("\"duration_s\":{v:?}")));
        f.extend(r.energy_j.map(|v| format!("\"energy_j\":{v:?}")));
        f.extend(r.weight.map(|v| format!("\"weight\":{v:?}")));
        f.extend(r.gpus.map(|v| format!("\"gpus\":{v}")));
        out.push_str(&format!("{{{}}}\n", f.join(",")));
    }
    out
}

/// The records as Parquet (small row groups, a dictionary model column): the columnar path.
fn write_parquet(path: &std::path::Path, recs: &[Gen]) {
    let utf8 = |f: &dyn Fn(&Gen) -> Option<&str>| -> ArrayRef {
        Arc::new(recs.iter().map(|r| f(r).map(str::to_owned)).collect::<StringArray>())
    };
    let model: DictionaryArray<arrow_array::types::Int32Type> = recs.iter().map(|r| r.model).collect();
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from(recs.iter().map(|r| r.ts).collect::<Vec<_>>()).with_timezone("UTC"),
            ),
        ),
        ("model", Arc::new(model)),
        ("site", utf8(&|r| r.site)),
        ("zone", utf8(&|r| r.zone)),
        ("hardware", utf8(&|r| r.hardware)),
        ("status", utf8(&|r| r.status)),
        ("request_id", utf8(&|r| r.request_id.as_deref())),
        ("input_tokens", Arc::new(recs.iter().map(|r| r.input_tokens).collect::<Int64Array>())),
        ("output_tokens", Arc::new(recs.iter().map(|r| r.output_tokens).collect::<Int64Array>())),
        ("duration_s", Arc::new(recs.iter().map(|r| r.duration_s).collect::<Float64Array>())),
        ("energy_j", Arc::new(recs.iter().map(|r| r.energy_j).collect::<Float64Array>())),
        ("weight", Arc::new(recs.iter().map(|r| r.weight).collect::<Float64Array>())),
        ("gpus", Arc::new(recs.iter().map(|r| r.gpus).collect::<Int64Array>())),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(700)).build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn methodology() -> Methodology {
    let c = Config::from_toml(CONFIG, "pack.toml").unwrap();
    let g = Grid::from_texts(&[("grid.csv", GRID)], false).unwrap();
    Methodology::new(Arc::new(c), Arc::new(g)).unwrap()
}

fn opts(dir: &std::path::Path, threads: usize) -> EstimateOptions {
    EstimateOptions {
        scan: ScanOptions { threads, block_bytes: 4096, ..Default::default() },
        memory_budget_cells: 64,
        spill_dir: Some(dir.join("spill")),
        dedupe: false,
    }
}

type CellKeyText = (String, i64, String, Option<String>, Option<String>, Option<String>, String);

fn s(a: &ArrayRef, i: usize) -> Option<String> {
    let a = a.as_string::<i32>();
    a.is_valid(i).then(|| a.value(i).to_string())
}

fn f(a: &ArrayRef, i: usize) -> Option<f64> {
    let a = a.as_primitive::<Float64Type>();
    a.is_valid(i).then(|| a.value(i))
}

/// The per-record rows summed per cell: records, requests, then energy (kWh), co2e (kg) with
/// null kept apart from zero.
fn summed(rows: &[RecordBatch]) -> Sums {
    let mut out: Sums = BTreeMap::new();
    for b in rows {
        let c = |n: &str| b.column_by_name(n).unwrap().clone();
        let (ts, weight) = (c("ts"), c("weight"));
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            let hour = ts.value(i).div_euclid(3_600_000_000) * 3_600_000_000;
            let key = (
                s(&c("source"), i).unwrap(),
                hour,
                s(&c("model"), i).unwrap(),
                s(&c("site"), i),
                s(&c("zone"), i),
                s(&c("hardware"), i),
                s(&c("method"), i).unwrap(),
            );
            let e = out.entry(key).or_insert((0, 0.0, [None; 4]));
            e.0 += 1;
            e.1 += weight.as_primitive::<Float64Type>().value(i);
            let vals = [
                f(&c("accelerator_wh"), i).map(|v| v / 1000.0),
                f(&c("facility_wh"), i).map(|v| v / 1000.0),
                f(&c("co2e_location_g"), i).map(|v| v / 1000.0),
                f(&c("co2e_market_g"), i).map(|v| v / 1000.0),
            ];
            for (acc, v) in e.2.iter_mut().zip(vals) {
                if let Some(v) = v {
                    *acc = Some(acc.unwrap_or(0.0) + v);
                }
            }
        }
    }
    out
}

fn cells(b: &RecordBatch) -> Sums {
    let c = |n: &str| b.column_by_name(n).unwrap().clone();
    let hour = c("hour");
    let hour = hour.as_primitive::<TimestampMicrosecondType>();
    let records = c("records");
    (0..b.num_rows())
        .map(|i| {
            let key = (
                s(&c("source"), i).unwrap(),
                hour.value(i),
                s(&c("model"), i).unwrap(),
                s(&c("site"), i),
                s(&c("zone"), i),
                s(&c("hardware"), i),
                s(&c("method"), i).unwrap(),
            );
            let vals = [
                f(&c("energy_acc_kwh"), i),
                f(&c("energy_kwh"), i),
                f(&c("co2e_location_kg"), i),
                f(&c("co2e_market_kg"), i),
            ];
            (key, (records.as_primitive::<Int64Type>().value(i), f(&c("requests"), i).unwrap(), vals))
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()) + 1e-300
}

#[test]
fn rows_sum_to_the_cells_on_both_paths_and_keep_input_order() {
    let t = crate::testutil::tempdir().unwrap();
    let dir = t.path();
    let recs = records(3000);
    std::fs::write(dir.join("a.jsonl"), jsonl(&recs)).unwrap();
    write_parquet(&dir.join("b.parquet"), &recs);
    let files = expand_inputs(&["a.jsonl", "b.parquet"].map(|n| dir.join(n).to_string_lossy().into_owned())).unwrap();
    let m = methodology();
    for threads in [1, 2, 3] {
        let ctl = ScanControl::default();
        let mut out = Collect::default();
        let (a, b) = (dir.join(format!("rows-{threads}")), dir.join(format!("plain-{threads}")));
        let run = estimate_records_files(&files, &m, &opts(&a, threads), &ctl, None, &mut out).unwrap();
        let plain = estimate_files(&files, &methodology(), &opts(&b, threads), &ctl, None).unwrap();
        let agg = run.cells.to_record_batch().unwrap();
        // The cells are a plain estimate's, spilled under the budget or not: bit for bit on one
        // thread (with more, blocks reach the workers' tables in varying order, so sums may
        // differ in the last bit between any two runs).
        assert!(run.cells.spill_runs() > 0, "the budget of 64 cells makes the run spill");
        let plain_agg = plain.cells.to_record_batch().unwrap();
        if threads == 1 {
            assert!(format!("{agg:?}") == format!("{plain_agg:?}"), "cells differ from a plain estimate's");
        }
        assert_same(&cells(&agg), &cells(&plain_agg));
        assert_eq!(run.warnings, plain.warnings);
        let accepted: u64 = run.files.iter().map(|f| f.records).sum();
        assert_eq!((run.files[0].records, run.files[1].records), (3000, 3000));
        assert!(run.files[0].rejected > 0);
        let rows: usize = out.0.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows as u64, accepted);
        assert!(out.0.len() > 4, "several blocks: {}", out.0.len());
        for b in &out.0 {
            assert_eq!(b.schema(), schema());
        }
        // Input order: file by file, lines (rows) ascending.
        let order: Vec<(String, i64)> = out
            .0
            .iter()
            .flat_map(|b| {
                let src = b.column_by_name("source").unwrap().as_string::<i32>().clone();
                let line = b.column_by_name("line").unwrap().as_primitive::<Int64Type>().clone();
                (0..b.num_rows()).map(move |i| (src.value(i).to_string(), line.value(i)))
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|(s, l)| (!s.ends_with("a.jsonl"), *l));
        assert_eq!(order, sorted, "threads = {threads}");
        assert_eq!(order.last().unwrap().1, 2999, "Parquet rows are 0-based");

        let want = cells(&agg);
        let methods: std::collections::BTreeSet<&str> = want.keys().map(|k| k.6.as_str()).collect();
        assert_eq!(methods.len(), 6, "every method: {methods:?}");
        assert_same(&want, &summed(&out.0));
    }
}

type Sums = BTreeMap<CellKeyText, (i64, f64, [Option<f64>; 4])>;

/// Same cells, same counts, sums within 1e-12 relative, null where null.
fn assert_same(want: &Sums, got: &Sums) {
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (k, (records, requests, vals)) in want {
        let (r2, q2, v2) = &got[k];
        assert_eq!(records, r2, "{k:?}");
        assert!(close(*requests, *q2), "{k:?}");
        for (a, b) in vals.iter().zip(v2) {
            match (a, b) {
                (Some(a), Some(b)) => assert!(close(*a, *b), "{k:?}: {a} vs {b}"),
                (a, b) => assert_eq!(a.is_some(), b.is_some(), "{k:?}: null kept apart from zero"),
            }
        }
    }
}

#[test]
fn a_row_is_the_formula_of_its_record() {
    let t = crate::testutil::tempdir().unwrap();
    let dir = t.path();
    let lines = [
        // tokens on h100 at fra (site hardware, 2 gpus from the site): 1000 in, 100 out.
        r#"{"ts":"2024-01-01T00:30:00Z","model":"openai/x","site":"fra","input_tokens":1000,"output_tokens":100,"weight":2,"request_id":"a"}"#,
        // cached: a known zero, gpus of the record.
        r#"{"ts":"2024-01-01T00:30:00Z","model":"m8","site":"par","status":"from_cache","gpus":4}"#,
        // nothing to estimate from: method none, energies null, default gpus 1.
        r#"{"ts":"2024-01-01T00:30:00Z","model":"unknown","zone":"XX"}"#,
        // measured, zone without grid or fallback: emissions null.
        r#"{"ts":"2024-01-01T00:30:00Z","model":"p","zone":"XX","energy_j":3600}"#,
    ];
    std::fs::write(dir.join("a.jsonl"), lines.join("\n")).unwrap();
    let files = expand_inputs(&[dir.join("a.jsonl").to_string_lossy().into_owned()]).unwrap();
    let mut out = Collect::default();
    estimate_records_files(&files, &methodology(), &opts(dir, 2), &ScanControl::default(), None, &mut out).unwrap();
    assert_eq!(out.0.len(), 1);
    let b = &out.0[0];
    let c = |n: &str| b.column_by_name(n).unwrap().clone();
    // Row 0: E_acc = 2 * (1000 * 0.01 + 100 * 0.1) / 1000 Wh; IT x1.2 (defaults), PUE 1.5;
    // DE at 00h is 400 g/kWh, market 0.
    let acc = 2.0 * (1000.0 * 0.01 + 100.0 * 0.1) / 1000.0;
    let fac = acc * 1.2 * 1.5;
    assert!(close(f(&c("accelerator_wh"), 0).unwrap(), acc));
    assert!(close(f(&c("accelerator_wh_low"), 0).unwrap(), acc * 0.7), "tokens: the default 0.3");
    assert!(close(f(&c("accelerator_wh_high"), 0).unwrap(), acc * 1.3));
    assert!(close(f(&c("facility_wh"), 0).unwrap(), fac));
    assert!(close(f(&c("co2e_location_g"), 0).unwrap(), fac / 1000.0 * 400.0));
    assert_eq!(f(&c("co2e_market_g"), 0), Some(0.0));
    assert_eq!(
        (0..4)
            .map(|i| (s(&c("model"), i), s(&c("site"), i), s(&c("zone"), i), s(&c("hardware"), i)))
            .collect::<Vec<_>>(),
        vec![
            (Some("m8".into()), Some("fra".into()), Some("DE".into()), Some("h100".into())),
            (Some("m8".into()), Some("par".into()), Some("FR".into()), None),
            (Some("unknown".into()), None, Some("XX".into()), None),
            (Some("p".into()), None, Some("XX".into()), None),
        ]
    );
    let methods: Vec<Option<String>> = (0..4).map(|i| s(&c("method"), i)).collect();
    assert_eq!(methods, ["tokens", "cached", "none", "measured"].map(|m| Some(m.to_string())));
    assert_eq!(c("gpus").as_primitive::<Int64Type>().values().to_vec(), vec![2, 4, 1, 1]);
    assert_eq!((f(&c("facility_wh"), 1), f(&c("co2e_location_g"), 1)), (Some(0.0), Some(0.0)));
    assert_eq!(
        (f(&c("accelerator_wh"), 2), f(&c("accelerator_wh_low"), 2), f(&c("facility_wh"), 2)),
        (None, None, None)
    );
    assert_eq!((f(&c("accelerator_wh"), 3), f(&c("co2e_location_g"), 3)), (Some(1.0), None));
    assert_eq!((s(&c("request_id"), 0), s(&c("request_id"), 1)), (Some("a".into()), None));
    assert_eq!(c("line").as_primitive::<Int64Type>().values().to_vec(), vec![1, 2, 3, 4]);
    assert_eq!(
        c("input_tokens").as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        vec![Some(1000), None, None, None]
    );
}

#[test]
fn blocks_are_written_in_turn() {
    let batch = |n: i64| {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![n])) as ArrayRef]).unwrap()
    };
    let mut out = Collect::default();
    {
        let order = Ordered::new(&mut out, 2);
        std::thread::scope(|s| {
            // Blocks 1..=6 from another thread: it must wait with four ahead until 0 comes.
            let o = &order;
            let h = s.spawn(move || {
                for seq in 1..=6 {
                    o.push(seq, (seq != 3).then(|| batch(seq as i64))).unwrap();
                }
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            order.push(0, Some(batch(0))).unwrap();
            h.join().unwrap();
        });
        order.finish().unwrap();
    }
    let got: Vec<i64> = out.0.iter().map(|b| b.column(0).as_primitive::<Int64Type>().value(0)).collect();
    assert_eq!(got, vec![0, 1, 2, 4, 5, 6]);
    let mut out = Collect::default();
    let order = Ordered::new(&mut out, 1);
    order.push(1, None).unwrap();
    assert!(order.finish().is_err(), "block 0 never came");
}

#[test]
fn parquet_output_is_atomic() {
    let t = crate::testutil::tempdir().unwrap();
    let dir = t.path();
    let target = dir.join("rows.parquet");
    let mut rt = RowTap::new(Arc::new(vec![]));
    let empty = rt.take_batch().unwrap();
    {
        let mut w = ParquetOut::create(&target, schema()).unwrap();
        w.write(empty.clone()).unwrap();
        // Dropped unfinished (a failed run): nothing left, not even the temporary file.
    }
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
    let w = ParquetOut::create(&target, schema()).unwrap();
    assert_eq!(w.finish().unwrap(), 0);
    let names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("rows.parquet")]);
    let r =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(File::open(&target).unwrap()).unwrap();
    assert_eq!(r.schema().fields(), schema().fields());
    let e = ParquetOut::create(dir.join("missing").join("x.parquet"), schema()).err().unwrap();
    assert!(matches!(e, Error::Output { .. }), "{e}");
    assert!(matches!(ParquetOut::create(dir, schema()).err().unwrap(), Error::Output { .. }));
}

#[test]
fn a_failing_run_stops_without_waiting_forever() {
    let t = crate::testutil::tempdir().unwrap();
    let dir = t.path();
    let recs = records(2000);
    std::fs::write(dir.join("a.jsonl"), jsonl(&recs)).unwrap();
    std::fs::write(dir.join("b.parquet"), b"PAR1 not really").unwrap();
    std::fs::write(dir.join("c.jsonl"), jsonl(&recs)).unwrap();
    let files = expand_inputs(&["a.jsonl", "b.parquet", "c.jsonl"].map(|n| dir.join(n).to_string_lossy().into_owned()))
        .unwrap();
    for threads in [1, 2, 4] {
        let mut out = Collect::default();
        let r = estimate_records_files(
            &files,
            &methodology(),
            &opts(dir, threads),
            &ScanControl::default(),
            None,
            &mut out,
        );
        assert!(r.is_err(), "threads = {threads}");
        let ctl = ScanControl::default();
        ctl.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut out = Collect::default();
        let r = estimate_records_files(&files[..1], &methodology(), &opts(dir, threads), &ctl, None, &mut out);
        assert!(matches!(r, Err(Error::Cancelled)), "threads = {threads}");
    }
}
