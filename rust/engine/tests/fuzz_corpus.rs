//! The fuzz targets' invariants on stable (docs/fuzzing.md): every input of the kept corpus
//! (`rust/fuzz/corpus/<target>/`, grown by `make fuzz`, with each past finding in it) is replayed
//! through the same entry points the fuzzer calls, and a bounded property test per parser feeds
//! them inputs built from the shapes real logs have, mutated.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use wattledger_engine::fuzzing;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("jsonl", fuzzing::jsonl),
    ("jsondoc", fuzzing::jsondoc),
    ("csv", fuzzing::csv),
    ("otlp", fuzzing::otlp),
    ("timestamp", fuzzing::timestamp),
    ("pack", fuzzing::pack),
    ("grid", fuzzing::grid),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn every_corpus_input_keeps_the_invariants() {
    let mut total = 0;
    for (name, target) in TARGETS {
        let dir = corpus_dir().join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (the corpus is kept in the repository)", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: empty corpus", dir.display());
        for f in &files {
            let data = std::fs::read(f).unwrap();
            // A panic names the input, so `cargo fuzz run TARGET FILE` can reproduce it.
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name}: {} broke an invariant", f.display());
        }
        total += files.len();
    }
    assert!(total >= 50, "only {total} corpus inputs");
}

// -------------------------------------------------------------------------------------------
// Property tests: a few hundred generated inputs per parser (quick in release).

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// Text that is mostly the characters JSON, CSV and timestamps are made of, plus any byte.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9:TZ+.eE, -]{0,24}",
        2 => "[a-z_\"{}\\[\\],:\\\\ ]{0,16}",
        1 => "\\PC{0,12}",
        1 => Just(String::new()),
    ]
}

fn ts_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u32..10000,
            0u32..14,
            0u32..33,
            0u32..26,
            0u32..61,
            0u32..62,
            "(\\.[0-9]{1,9})?",
            "(Z|[+-][0-9]{2}:?[0-9]{2})?"
        )
            .prop_map(|(y, mo, d, h, mi, s, frac, off)| format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}"
            )),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        fragment(),
    ]
}

/// A JSON value as a log writes one, or something close to it.
fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ts_text().prop_map(|s| format!("\"{s}\"")),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        Just("null".to_string()),
        Just("true".to_string()),
        "[a-z0-9.\\\\\"é-]{0,10}".prop_map(|s| format!("\"{s}\"")),
        Just("{\"a\":[1,{\"b\":\"}]\"}]}".to_string()),
        fragment(),
    ]
}

/// Keys of generated objects: the canonical columns (from the engine, so a new column is
/// fuzzed without editing this list), a container key and an unknown one.
fn keys() -> Vec<&'static str> {
    wattledger_engine::columns::Col::ALL.iter().map(|c| c.name()).chain(["data", "x"]).collect()
}

fn json_object() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(keys()), json_value()), 0..8).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

/// A string body long enough to cross the index's 64-byte chunks, with what the index must
/// get right: escaped quotes, runs of backslashes, brackets and `\u` escapes inside strings.
fn long_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => "[a-z ]{1,40}",
            1 => Just("\\\"".to_string()),
            1 => Just("\\\\".to_string()),
            1 => Just("\\\\\\\"".to_string()),
            1 => Just("]}{[,:".to_string()),
            1 => Just("\\ud83d\\ude00\\u00e9".to_string()),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// A value nested the way wide logs nest them: objects, arrays, OTel attribute lists.
fn nested_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![json_value(), long_text().prop_map(|s| format!("\"{s}\""))];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z_.]{1,12}", inner.clone()), 0..4).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", body.join(", "))
            }),
            (prop::sample::select(&["gen_ai.request.model", "gen_ai.usage.input_tokens", "x"][..]), inner)
                .prop_map(|(k, v)| format!("[{{\"key\":\"{k}\",\"value\":{{\"stringValue\":{v}}}}}]")),
        ]
    })
}

/// A record with many fields the mapping does not want (long strings, nested objects) among
/// the ones it does, some under nested paths the presets read (`usage.prompt_tokens`,
/// `attributes`, `metadata`).
fn wide_object() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        3 => prop::sample::select(keys()).prop_map(str::to_string),
        2 => "[a-z_]{1,10}",
        1 => prop::sample::select(&["usage", "attributes", "metadata", "resourceSpans", "kwargs"][..]).prop_map(str::to_string),
    ];
    let value = prop_oneof![2 => json_value(), 2 => nested_value(), 1 => long_text().prop_map(|s| format!("\"{s}\""))];
    prop::collection::vec((key, value), 0..24).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["\n", "\r\n", "\r", "\n\n", ""][..])
}

/// One random byte changed, inserted or removed: what the structured inputs miss.
fn mutate(mut data: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, op, byte) in edits {
        if data.is_empty() {
            data.push(byte);
            continue;
        }
        let i = at % data.len();
        match op % 3 {
            0 => data[i] = byte,
            1 => data.insert(i, byte),
            _ => {
                data.remove(i);
            }
        }
    }
    data
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..3)
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn jsonl_lines(lines in prop::collection::vec((json_object(), line_end()), 0..6), e in edits()) {
        let text: String = lines.iter().map(|(l, end)| format!("{l}{end}")).collect();
        fuzzing::jsonl(&mutate(text.into_bytes(), &e));
    }

    #[test]
    fn jsonl_wide_lines_same_with_and_without_the_index(
        lines in prop::collection::vec((wide_object(), line_end()), 1..5), e in edits(),
    ) {
        let text: String = lines.iter().map(|(l, end)| format!("{l}{end}")).collect();
        fuzzing::jsonl_kernels(&mutate(text.into_bytes(), &e));
    }

    #[test]
    fn json_documents(recs in prop::collection::vec(json_object(), 0..5), shape in 0u8..3, e in edits()) {
        let text = match shape {
            0 => format!("[{}]", recs.join(",\n ")),
            1 => format!("{{\"data\": [{}], \"page\": 1}}", recs.join(",")),
            _ => recs.iter().map(|r| r.replace(',', ",\n  ")).collect::<Vec<_>>().join("\n"),
        };
        fuzzing::jsondoc(&mutate(text.into_bytes(), &e));
    }

    #[test]
    fn csv_rows(
        header in prop::collection::vec(prop::sample::select(keys()), 1..6),
        rows in prop::collection::vec((prop::collection::vec(json_value(), 0..7), line_end()), 0..5),
        e in edits(),
    ) {
        let mut text = header.join(",") + "\n";
        for (cells, end) in &rows {
            let cells: Vec<String> =
                cells.iter().map(|c| if c.contains(',') { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.clone() }).collect();
            text += &cells.join(",");
            text += end;
        }
        fuzzing::csv(&mutate(text.into_bytes(), &e));
    }

    #[test]
    fn otlp_spans(
        model in json_value(), start in any::<u64>(), len in any::<u32>(), tokens in json_value(), e in edits(),
    ) {
        let text = format!(
            r#"{{"resourceSpans":[{{"resource":{{}},"scopeSpans":[{{"scope":{{}},"spans":[{{"name":"chat","startTimeUnixNano":"{start}","endTimeUnixNano":"{}","attributes":[{{"key":"gen_ai.request.model","value":{{"stringValue":{model}}}}},{{"key":"gen_ai.usage.input_tokens","value":{{"intValue":{tokens}}}}}]}}]}}]}}]}}"#,
            start.saturating_add(len as u64)
        );
        fuzzing::otlp(&mutate(text.into_bytes(), &e));
    }

    #[test]
    fn timestamps(s in ts_text(), e in edits()) {
        fuzzing::timestamp(&mutate(s.into_bytes(), &e));
    }

    #[test]
    fn packs(
        models in prop::collection::vec(("[a-z0-9.-]{1,8}", any::<f64>(), any::<f64>()), 0..4),
        pue in any::<f64>(),
        alias in "[a-z*?.-]{0,8}",
        e in edits(),
    ) {
        let mut text = format!("[pack]\nname = \"p\"\nversion = \"1\"\n[defaults]\npue = {pue:?}\n");
        for (name, tdp, active) in &models {
            text += &format!("[hardware.\"{name}\"]\ntdp_w = {tdp:?}\n[models.\"{name}\"]\nactive_params_b = {active:?}\n");
        }
        text += &format!("[aliases.models]\n\"{alias}\" = \"{}\"\n", models.first().map_or("x", |m| m.0.as_str()));
        fuzzing::pack(&mutate(text.into_bytes(), &e));
    }

    #[test]
    fn grids(rows in prop::collection::vec(("[A-Z]{0,3}", ts_text(), json_value()), 0..6), e in edits()) {
        let mut text = String::from("zone,datetime,g_per_kwh\n");
        for (zone, ts, v) in &rows {
            text += &format!("{zone},{ts},{v}\n");
        }
        fuzzing::grid(&mutate(text.into_bytes(), &e));
    }
}
