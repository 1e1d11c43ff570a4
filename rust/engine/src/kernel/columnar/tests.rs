//! The columnar path against the per-record path, on generated Arrow batches holding every
//! column type the Arrow reader takes, nulls, values of the wrong kind and values past the
//! bounds: the same cells bit for bit, the same notes and interned names, the same rejects
//! file and the same per-file counts.

use std::sync::Arc;

use arrow_array::types::{Int32Type, Int8Type};
use arrow_array::*;
use proptest::prelude::*;

use crate::config::Config;
use crate::grid::Grid;
use crate::kernel::{AggregateSink, Methodology};
use crate::readers::{scan_batches, FileStats, ScanControl, ScanOptions};
use crate::record::{Loc, Record, RecordSink};
use crate::rejects::RejectsWriter;

const CONFIG: &str = r#"
[defaults]
pue = 1.5
host_overhead = 0.1
idle_overhead = 0.1
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
[sites.par]
zone = "FR"
market_g_per_kwh = 20
[outcomes]
cached = ["from_cache"]
failed = ["rate_limited"]
[aliases.models]
"openai/*" = "m8"
"hosted_vllm/*/Llama*" = "m8"
[aliases.hardware]
"NVIDIA H100*" = "h100"
[aliases.sites]
"10.0.0.*" = "par"
"#;
const GRID: &str = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,400\nDE,2024-01-01T02:00:00Z,200\n\
                    FR,2024-01-01T00:00:00Z,50\n";

fn methodology(max_names: usize) -> Methodology {
    let c = Config::from_toml(CONFIG, "pack.toml").unwrap();
    let g = Grid::from_texts(&[("grid.csv", GRID)], false).unwrap();
    let mut m = Methodology::new(Arc::new(c), Arc::new(g)).unwrap();
    m.set_max_names(max_names);
    m
}

/// The aggregate sink forced onto the per-record path (drafts, `Draft::finish`, `record`).
struct PerRecord<'m>(AggregateSink<'m>);

impl RecordSink for PerRecord<'_> {
    fn record(&mut self, rec: &Record<'_>, loc: Loc) {
        self.0.record(rec, loc)
    }
    fn merge(&mut self, other: Self) -> crate::Result<()> {
        self.0.merge(other.0)
    }
    fn end_block(&mut self) -> crate::Result<()> {
        self.0.end_block()
    }
}

/// Everything a run leaves that the two paths must agree on, floats as bits.
#[derive(Debug, PartialEq)]
struct Outcome {
    cells: Result<Vec<String>, String>,
    names: Vec<Arc<str>>,
    changes: Vec<crate::interner::NameChange>,
    warnings: Vec<String>,
    files: Vec<FileStats>,
    rejects: String,
    attributed_cells: usize,
}

/// Cells of method `attributed` in a batch of cells.
fn attributed_cells(b: &RecordBatch) -> usize {
    let Some(col) = b.column_by_name("method") else { return 0 };
    if let Some(a) = col.as_any().downcast_ref::<StringArray>() {
        return a.iter().flatten().filter(|&m| m == "attributed").count();
    }
    let d = col.as_any().downcast_ref::<DictionaryArray<Int32Type>>().expect("method is strings or a dictionary");
    let values = d.values().as_any().downcast_ref::<StringArray>().unwrap();
    d.keys().iter().flatten().filter(|&k| values.value(k as usize) == "attributed").count()
}

fn bits(b: &RecordBatch) -> Vec<String> {
    b.columns()
        .iter()
        .zip(b.schema().fields())
        .map(|(c, f)| match c.as_any().downcast_ref::<Float64Array>() {
            Some(a) => format!("{}: {:?}", f.name(), a.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>()),
            None => format!("{}: {c:?}", f.name()),
        })
        .collect()
}

/// Metered energy of nodes n1 and n2 around the generated times (attributed energy): GPUs on
/// different steps, a reset on n2.
const COUNTERS: &str = "timestamp,__name__,Hostname,gpu,value\n\
    1704063600,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,0,1000\n\
    1704067200,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,0,900000\n\
    1704069000,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,0,5000000\n\
    1704074400,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,0,7000000\n\
    1704067000,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,1,0\n\
    1704075000,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n1,1,3000000\n\
    1704067100,kepler_node_gpu_joules_total,n2,0,50\n\
    1704068000,kepler_node_gpu_joules_total,n2,0,90\n\
    1704070000,kepler_node_gpu_joules_total,n2,0,10\n";

/// The first pass of attribution over the same batches, then the methodology of the second.
fn attributed(batches: &[RecordBatch], max_names: usize) -> Methodology {
    let energy = crate::counters::NodeEnergy::from_texts(&[("c.csv", COUNTERS)]).unwrap();
    let first = methodology(max_names);
    let opts = ScanOptions { threads: 1, ..Default::default() };
    let input = batches.iter().cloned().map(Ok);
    let denoms = scan_batches(input, "<arrow>", &opts, &ScanControl::default(), None, || {
        crate::attribution::ClaimSink::new(&first, &energy)
    })
    .map_or_else(|_| crate::attribution::Attribution::empty_denoms(&energy), |o| o.sink.denoms);
    let mut m = methodology(max_names);
    m.set_attribution(Arc::new(crate::attribution::Attribution::new(Arc::new(energy), denoms)));
    m
}

fn run(batches: &[RecordBatch], columnar: bool, max_names: usize) -> Outcome {
    let m = attributed(batches, max_names);
    let dir = crate::testutil::tempdir().unwrap();
    let path = dir.path().join("rejects.txt");
    let rejects = RejectsWriter::create(&path).unwrap();
    let opts = ScanOptions { threads: 1, ..Default::default() };
    let ctl = ScanControl::default();
    let names = Arc::new(vec!["<arrow>".to_string()]);
    let input = batches.iter().cloned().map(Ok);
    let (sink, files) = if columnar {
        let out = scan_batches(input, "<arrow>", &opts, &ctl, Some(&rejects), || {
            AggregateSink::new(&m, names.clone(), None, usize::MAX)
        });
        out.map(|o| (o.sink, o.files))
    } else {
        let out = scan_batches(input, "<arrow>", &opts, &ctl, Some(&rejects), || {
            PerRecord(AggregateSink::new(&m, names.clone(), None, usize::MAX))
        });
        out.map(|o| (o.sink.0, o.files))
    }
    .map_err(|e| e.to_string())
    .map_or_else(|e| (None, Err(e)), |(s, f)| (Some(s), Ok(f)));
    rejects.finish().unwrap();
    let mut attributed = 0;
    let (cells, warnings) = match sink.map(|s| s.finish_with_notes()) {
        Some(Ok((b, notes))) => {
            let batch = b.to_record_batch().unwrap();
            attributed = attributed_cells(&batch);
            let mut cells = bits(&batch);
            cells.push(format!(
                "{:?} {:?}",
                notes.changed.iter().collect::<std::collections::BTreeMap<_, _>>(),
                notes.unrecognised
            ));
            cells.push(format!("{} {}", notes.energy_kwh.to_bits(), notes.estimated_kwh.to_bits()));
            (Ok(cells), m.warnings(&notes.unrecognised))
        }
        Some(Err(e)) => (Err(e.to_string()), vec![]),
        None => (Err(files.as_ref().err().cloned().unwrap_or_default()), vec![]),
    };
    Outcome {
        cells,
        names: m.names(),
        changes: m.name_changes(),
        warnings,
        files: files.unwrap_or_default(),
        rejects: std::fs::read_to_string(&path).unwrap(),
        attributed_cells: attributed,
    }
}

// Value pools: a row picks one value per column by index (past the end: null).

const MODELS: [&str; 8] =
    ["m8", "openai/gpt-x", "hosted_vllm/meta/Llama-8B", "unknown/x", "p", "", "bad\tname", "rtl\u{202E}x"];
const SITES: [&str; 6] = ["fra", "par", "10.0.0.5", "nowhere", "", "x\u{2028}y"];
const ZONES: [&str; 6] = ["DE", "de", "FR", "fr", "XX", ""];
const HARDWARE: [&str; 6] = ["h100", "NVIDIA H100 80GB HBM3", "nopeak", "tpu", "", "c1\u{85}"];
const STATUSES: [&str; 7] = ["ok", "from_cache", "rate_limited", "weird", "odd", "", "a\u{1b}b"];
const IDS: [&str; 3] = ["r1", "r2", ""];
const NODES: [&str; 5] = ["n1", "n2", "unmetered", "", "x\u{2028}y"];
/// 2024-01-01T00:00:00Z in seconds, and offsets around the grid's hours.
const T0: i64 = 1_704_067_200;
const TS_S: [i64; 7] = [T0, T0 + 1800, T0 + 7300, T0 - 30, T0 + 86_400 * 40, 253_402_300_800, -62_200_000_000];
const INTS: [i64; 9] = [0, 1, 7, 1000, 250_000, -1, 1_000_000_000_000, 1_000_000_000_001, 2_000_000];
const FLOATS: [f64; 10] = [0.0, 0.5, 3.25, 3600.0, 1e7, -1.0, f64::NAN, f64::INFINITY, 1e9, 2e15];

fn pick<T: Copy>(pool: &[T], b: u8) -> Option<T> {
    pool.get(b as usize % (pool.len() + 2)).copied()
}

/// A name column in one of the string types the reader takes (or a type it rejects).
fn names(pool: &[&str], picks: &[u8], enc: u8, dict: &mut Option<ArrayRef>) -> Option<ArrayRef> {
    let v: Vec<Option<&str>> = picks.iter().map(|&b| pick(pool, b)).collect();
    Some(match enc % 7 {
        0 => return None,
        1 => Arc::new(StringArray::from(v)),
        2 => Arc::new(LargeStringArray::from(v)),
        3 => Arc::new(StringViewArray::from(v)),
        4 => Arc::new(v.into_iter().collect::<DictionaryArray<Int8Type>>()),
        5 => Arc::new(BooleanArray::from(picks.iter().map(|&b| (b % 3 > 0).then_some(b % 2 == 0)).collect::<Vec<_>>())),
        // Int32 keys over one dictionary of the whole pool (nulls among the values too),
        // shared by every batch, so the memos carry over from batch to batch.
        _ => {
            let values = dict
                .get_or_insert_with(|| {
                    Arc::new(StringArray::from(pool.iter().map(|s| Some(*s)).chain([None]).collect::<Vec<_>>()))
                })
                .clone();
            let keys: Int32Array =
                picks.iter().map(|&b| (b % 9 != 8).then_some((b as usize % (pool.len() + 1)) as i32)).collect();
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).unwrap())
        }
    })
}

fn ts_column(picks: &[u8], enc: u8) -> Option<ArrayRef> {
    let s: Vec<Option<i64>> = picks.iter().map(|&b| pick(&TS_S, b)).collect();
    let us = |k: i64| s.iter().map(|v| v.map(|x| x.saturating_mul(k))).collect::<Vec<_>>();
    Some(match enc % 12 {
        0 => return None,
        1 => Arc::new(TimestampSecondArray::from(s.clone())),
        2 => Arc::new(TimestampMillisecondArray::from(us(1_000)).with_timezone("UTC")),
        3 => Arc::new(TimestampMicrosecondArray::from(us(1_000_000))),
        4 => Arc::new(TimestampNanosecondArray::from(us(1_000_000_000))),
        5 => Arc::new(Date32Array::from(s.iter().map(|v| v.map(|x| x.div_euclid(86_400) as i32)).collect::<Vec<_>>())),
        6 => Arc::new(Date64Array::from(us(1_000))),
        7 => Arc::new(Int64Array::from(s.clone())),
        8 => Arc::new(Float64Array::from(
            s.iter()
                .zip(picks)
                .map(|(v, &b)| if b == 255 { Some(f64::NAN) } else { v.map(|x| x as f64 + 0.25) })
                .collect::<Vec<_>>(),
        )),
        9 => Arc::new(StringArray::from(
            s.iter()
                .zip(picks)
                .map(|(v, &b)| match b % 5 {
                    0 => Some("not a time".to_string()),
                    _ => v.map(|x| crate::time::format_us(x.saturating_mul(1_000_000))),
                })
                .collect::<Vec<_>>(),
        )),
        10 => Arc::new(Int64Array::from(us(1_000))),
        _ => Arc::new(BooleanArray::from(picks.iter().map(|&b| Some(b % 2 == 0)).collect::<Vec<_>>())),
    })
}

fn int_column(picks: &[u8], enc: u8) -> Option<ArrayRef> {
    let v: Vec<Option<i64>> = picks.iter().map(|&b| pick(&INTS, b)).collect();
    Some(match enc % 8 {
        0 => return None,
        1 => Arc::new(Int64Array::from(v)),
        2 => Arc::new(Int32Array::from(
            v.iter().map(|x| x.map(|x| x.clamp(i32::MIN as i64, i32::MAX as i64) as i32)).collect::<Vec<_>>(),
        )),
        3 => Arc::new(UInt64Array::from(
            v.iter()
                .zip(picks)
                .map(|(x, &b)| x.map(|x| if b > 250 { u64::MAX } else { x.unsigned_abs() }))
                .collect::<Vec<_>>(),
        )),
        4 => Arc::new(Float64Array::from(
            v.iter()
                .zip(picks)
                .map(|(x, &b)| x.map(|x| x as f64 + if b % 4 == 0 { 0.5 } else { 0.0 }))
                .collect::<Vec<_>>(),
        )),
        5 => Arc::new(StringArray::from(
            v.iter()
                .zip(picks)
                .map(|(x, &b)| if b % 6 == 0 { Some("x".to_string()) } else { x.map(|x| x.to_string()) })
                .collect::<Vec<_>>(),
        )),
        6 => Arc::new(Float32Array::from(v.iter().map(|x| x.map(|x| x as f32)).collect::<Vec<_>>())),
        _ => Arc::new(BooleanArray::from(v.iter().map(|x| x.map(|x| x > 0)).collect::<Vec<_>>())),
    })
}

fn float_column(picks: &[u8], enc: u8) -> Option<ArrayRef> {
    let v: Vec<Option<f64>> = picks.iter().map(|&b| pick(&FLOATS, b)).collect();
    Some(match enc % 7 {
        0 => return None,
        1 => Arc::new(Float64Array::from(v)),
        2 => Arc::new(Float32Array::from(v.iter().map(|x| x.map(|x| x as f32)).collect::<Vec<_>>())),
        3 => Arc::new(Int64Array::from(v.iter().map(|x| x.map(|x| x as i64)).collect::<Vec<_>>())),
        4 => Arc::new(StringArray::from(
            v.iter()
                .zip(picks)
                .map(|(x, &b)| if b % 6 == 0 { Some("nan?".to_string()) } else { x.map(|x| x.to_string()) })
                .collect::<Vec<_>>(),
        )),
        5 => Arc::new(UInt8Array::from(v.iter().map(|x| x.map(|x| x as u8)).collect::<Vec<_>>())),
        _ => Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(v.iter().map(|x| x.map(|_| vec![Some(1)])))),
    })
}

fn cache_column(picks: &[u8], enc: u8) -> Option<ArrayRef> {
    Some(match enc % 4 {
        0 => return None,
        1 => Arc::new(BooleanArray::from(picks.iter().map(|&b| (b % 3 > 0).then_some(b % 2 == 0)).collect::<Vec<_>>())),
        2 => {
            Arc::new(Int64Array::from(picks.iter().map(|&b| (b % 5 > 0).then_some((b % 3) as i64)).collect::<Vec<_>>()))
        }
        _ => Arc::new(StringArray::from(
            picks
                .iter()
                .map(|&b| [Some("true"), Some("false"), Some("maybe"), None][b as usize % 4])
                .collect::<Vec<_>>(),
        )),
    })
}

/// Batches of generated rows: `cols[c]` holds column `c`'s pick per row, `enc[c]` its type.
fn batches(rows: &[[u8; 15]], enc: &[u8; 15], split: usize) -> Vec<RecordBatch> {
    let mut dicts: [Option<ArrayRef>; 7] = Default::default();
    let chunks: Vec<&[[u8; 15]]> =
        if split == 0 || split >= rows.len() { vec![rows] } else { vec![&rows[..split], &rows[split..]] };
    chunks
        .into_iter()
        .map(|part| {
            let col = |c: usize| part.iter().map(|r| r[c]).collect::<Vec<u8>>();
            let [dm, ds, dz, dh, di, dst, dn] = &mut dicts;
            let cols: Vec<(&str, Option<ArrayRef>)> = vec![
                ("ts", ts_column(&col(0), enc[0].max(1))),
                ("model", names(&MODELS, &col(1), enc[1].max(1), dm)),
                ("site", names(&SITES, &col(2), enc[2], ds)),
                ("zone", names(&ZONES, &col(3), enc[3], dz)),
                ("hardware", names(&HARDWARE, &col(4), enc[4], dh)),
                ("gpus", int_column(&col(5), enc[5])),
                ("input_tokens", int_column(&col(6), enc[6])),
                ("output_tokens", int_column(&col(7), enc[7])),
                ("duration_s", float_column(&col(8), enc[8])),
                ("energy_j", float_column(&col(9), enc[9])),
                ("weight", float_column(&col(10), enc[10])),
                ("request_id", names(&IDS, &col(11), enc[11], di)),
                ("status", names(&STATUSES, &col(12), enc[12], dst)),
                ("cache_hit", cache_column(&col(13), enc[13])),
                ("node", names(&NODES, &col(14), enc[14], dn)),
            ];
            RecordBatch::try_from_iter(cols.into_iter().filter_map(|(n, a)| a.map(|a| (n, a)))).unwrap()
        })
        .collect()
}

fn assert_same(batches: &[RecordBatch], max_names: usize) {
    let per_record = run(batches, false, max_names);
    let columnar = run(batches, true, max_names);
    assert_eq!(columnar, per_record);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn columnar_path_matches_the_per_record_path(
        rows in prop::collection::vec(any::<[u8; 15]>(), 1..700),
        enc in any::<[u8; 15]>(),
        split in 0usize..700,
        max_names in prop_oneof![Just(100_000usize), 1usize..6],
    ) {
        assert_same(&batches(&rows, &enc, split), max_names);
    }
}

#[test]
fn every_encoding_of_every_column_matches_the_per_record_path() {
    // Each encoding of each column at least once, over rows that take every value of the pools.
    let rows: Vec<[u8; 15]> =
        (0..=255u8).map(|b| std::array::from_fn(|c| b.wrapping_mul(7).wrapping_add(c as u8 * 31))).collect();
    for e in 0..12u8 {
        let enc = [e; 15];
        assert_same(&batches(&rows, &enc, 100), 100_000);
        assert_same(&batches(&rows, &enc, 0), 3);
    }
    // The dictionary-encoded names are read through the memo and agree.
    let enc = [1, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1, 6, 6, 1, 6];
    let out = run(&batches(&rows, &enc, 100), true, 100_000);
    assert!(out.cells.is_ok(), "{out:?}");
    assert!(out.files[0].records > 0 && out.files[0].rejected > 0, "{:?}", out.files);
    // Rows on metered nodes, in and out of their metered time, with and without a duration:
    // attributed on both paths alike (the generated rows above rarely combine all of that).
    let mut crafted: Vec<[u8; 15]> = Vec::new();
    for ts in [0u8, 1, 3, 2] {
        for node in [0u8, 1, 2] {
            for duration in [1u8, 2, 11] {
                crafted.push([ts, 0, 0, 0, 0, 1, 3, 2, duration, 11, 1, 2, 0, 3, node]);
            }
        }
    }
    let mut attributed = 0;
    for e in 1..12u8 {
        let batches = batches(&crafted, &[e; 15], 7);
        assert_same(&batches, 100_000);
        attributed += run(&batches, true, 100_000).attributed_cells;
    }
    assert!(attributed > 0, "no attributed cell");
}
