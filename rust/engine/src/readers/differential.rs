//! The JSON Lines scanner with and without its structural index, compared on the same bytes:
//! the index is only an accelerator, so every kernel must produce the very same events
//! (records, rejects with their reasons, raw text and line numbers, skips, blank lines, the
//! columns found). Called by the `jsonl` fuzz target and by the property tests.

use crate::columns::ColumnMap;
use crate::record::{Draft, RejectReason};

use super::jsonl::{JsonKeys, JsonParser};
use super::structural::Kernel;
use super::{jsonl_block, Emit};

/// Every event of a block, in order, as text.
#[derive(Default)]
struct Log(Vec<String>);

impl Emit for Log {
    fn blank(&mut self) {
        self.0.push("blank".into());
    }

    fn skip(&mut self, reason: &str) {
        self.0.push(format!("skip {reason}"));
    }

    fn record(&mut self, line: u64, raw: Option<&[u8]>, r: Result<Draft<'_>, RejectReason>) {
        self.0.push(format!("{line} {:?} {r:?}", raw.map(String::from_utf8_lossy)));
    }
}

fn run(keys: &JsonKeys, kernel: Kernel, data: &[u8], max_line: usize) -> (Vec<String>, u16) {
    let mut p = JsonParser::with_kernel(keys, kernel);
    let mut log = Log::default();
    // Twice through the same parser: the second pass reads with the key-order hints of the
    // first, as later blocks of a file do.
    for _ in 0..2 {
        p.found = 0;
        jsonl_block(&mut p, data, 1, max_line, &mut log);
    }
    (log.0, p.found)
}

/// The kernels this machine can run.
fn kernels() -> Vec<Kernel> {
    let mut k = vec![Kernel::Portable];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        k.push(Kernel::Avx2);
    }
    k
}

/// Parse `data` as one block of JSON Lines with the byte-at-a-time scanner and with each
/// structural-index kernel, under `columns`, and panic where they differ.
#[doc(hidden)]
pub fn jsonl_kernels_agree(data: &[u8], columns: &ColumnMap, max_line: usize) {
    let keys = JsonKeys::new(columns);
    let reference = run(&keys, Kernel::Off, data, max_line);
    for k in kernels() {
        let got = run(&keys, k, data, max_line);
        if got != reference {
            let at = got.0.iter().zip(&reference.0).position(|(a, b)| a != b);
            panic!(
                "{k:?} differs from the byte scanner on {:?}: first difference at event {at:?}: {:?} vs {:?}; found {:#x} vs {:#x}",
                String::from_utf8_lossy(data),
                at.map(|i| &got.0[i]),
                at.map(|i| &reference.0[i]),
                got.1,
                reference.1
            );
        }
    }
}

/// Counts what a block gives, validating records as a run does.
#[derive(Default)]
struct Tally {
    records: u64,
    rejects: u64,
}

impl Emit for Tally {
    fn blank(&mut self) {}

    fn skip(&mut self, _: &str) {}

    fn record(&mut self, _: u64, _: Option<&[u8]>, r: Result<Draft<'_>, RejectReason>) {
        match r.and_then(Draft::finish) {
            Ok(_) => self.records += 1,
            Err(_) => self.rejects += 1,
        }
    }
}

/// For measuring the scanner alone (`examples/jsonl_kernels.rs`): parse `data` (whole lines)
/// as one block on this thread with the named kernel (`scalar`, `portable` or `avx2`);
/// returns (records, rejects), or `None` for a kernel this machine lacks.
#[doc(hidden)]
pub fn jsonl_scan_with(data: &[u8], columns: &ColumnMap, kernel: &str) -> Option<(u64, u64)> {
    let kernel = match kernel {
        "scalar" => Kernel::Off,
        "portable" => Kernel::Portable,
        #[cfg(target_arch = "x86_64")]
        "avx2" if std::arch::is_x86_feature_detected!("avx2") => Kernel::Avx2,
        _ => return None,
    };
    let keys = JsonKeys::new(columns);
    let mut p = JsonParser::with_kernel(&keys, kernel);
    let mut t = Tally::default();
    jsonl_block(&mut p, data, 1, super::DEFAULT_MAX_LINE, &mut t);
    Some((t.records, t.rejects))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> Vec<ColumnMap> {
        let mut out = vec![ColumnMap::default()];
        for p in ["otel", "litellm", "openai", "vllm"] {
            let mut m = ColumnMap::default();
            m.apply_preset(p).unwrap();
            out.push(m);
        }
        out
    }

    #[test]
    fn every_preset_uses_the_index() {
        // Otherwise the differential tests would compare the byte scanner with itself.
        for m in maps() {
            assert!(JsonKeys::new(&m).index_ok);
        }
    }

    #[test]
    fn kernels_agree_on_edge_lines() {
        let long = "y".repeat(200);
        let lines = [
            r#"{"ts":"2025-01-01T00:00:00Z","model":"m","input_tokens":1,"x":{"a":[1,{"b":"}]\""}]}}"#.to_string(),
            // A backslash outside any string: only the byte scanner's reading applies.
            r#"{"ts":"2025-01-01T00:00:00Z","model":"m","x":[\"abc"]}"#.to_string(),
            r#"{"ts":"2025-01-01T00:00:00Z","model":"m\"\\","x":"\\\\\"]"}"#.to_string(),
            format!(r#"{{"x":"{long}","ts":"2025-01-01T00:00:00Z","model":"m","n":{{"s":"{long}\\"","t":[[[{{}}]]]}}}}"#),
            r#"{"model":"m","ts":1735689600,"usage":{"prompt_tokens":3,"completion_tokens":4}}"#.to_string(),
            r#"{"ts":"2025-01-01T00:00:00Z","model":"m","x":[1,2}"#.to_string(),
            r#"{"ts":"2025-01-01T00:00:00Z","model":"m","x":"unterminated}"#.to_string(),
            r#"{"ts":"2025-01-01T00:00:00Z","model":"m\ud83d\ude00","x":{"deep":"\\"}}"#.to_string(),
            "\u{feff}{\"ts\":\"2025-01-01T00:00:00Z\",\"model\":\"m\"}\r".to_string(),
            r#"{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[{"name":"chat","startTimeUnixNano":"1735689600000000000","endTimeUnixNano":"1735689601000000000","attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"m\"]"}}]}]}]}]}"#.to_string(),
            r#"{"data":[{"ts":"2025-01-01T00:00:00Z","model":"a"},{"ts":"2025-01-01T00:00:00Z","model":"b\\"}],"total":2}"#.to_string(),
            String::new(),
            "  \t".to_string(),
            "{".repeat(300),
        ];
        let text = lines.join("\n");
        for m in maps() {
            for max_line in [super::super::DEFAULT_MAX_LINE, 100] {
                jsonl_kernels_agree(text.as_bytes(), &m, max_line);
            }
        }
    }
}
