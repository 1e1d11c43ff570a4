//! JSON Lines scan throughput: `cargo run -p wattledger-engine --release --example scan_jsonl
//! -- [records | path.jsonl]`. Generates synthetic records like the documented example (or
//! reads the given file), then times `scan_files` with a sink that only counts, at 1 and 2
//! threads. The file is read once beforehand so the page cache holds it.

use std::io::{BufWriter, Write};
use std::time::Instant;

use wattledger_engine::readers::{scan_files, ScanControl, ScanOptions};
use wattledger_engine::record::{Loc, Record, RecordSink};
use wattledger_engine::source::expand_inputs;

#[derive(Default)]
struct Count {
    n: u64,
    tokens: i64,
}

impl RecordSink for Count {
    fn record(&mut self, r: &Record<'_>, _: Loc) {
        self.n += 1;
        self.tokens += r.input_tokens.unwrap_or(0) + r.model.len() as i64;
    }
    fn merge(&mut self, o: Self) -> wattledger_engine::Result<()> {
        self.n += o.n;
        self.tokens += o.tokens;
        Ok(())
    }
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "4000000".into());
    let _dir;
    let path = match arg.parse::<u64>() {
        Ok(n) => {
            _dir = tempfile_dir();
            let p = _dir.join("bench.jsonl");
            let mut w = BufWriter::new(std::fs::File::create(&p).unwrap());
            let models = ["llama-3.1-8b", "llama-3.1-70b", "mistral-large-2"];
            for i in 0..n {
                writeln!(
                    w,
                    r#"{{"ts":"2025-06-01T{:02}:{:02}:{:02}.{:03}Z","request_id":"r-{i:07}","model":"{}","site":"fra-1","zone":"DE","hardware":"nvidia-h100-sxm","gpus":1,"input_tokens":{},"output_tokens":{},"duration_s":{}.{:02},"energy_j":null,"status":"ok","weight":1}}"#,
                    (i / 3_600_000) % 24,
                    (i / 60_000) % 60,
                    (i / 1000) % 60,
                    i % 1000,
                    models[(i % 3) as usize],
                    100 + i % 4000,
                    10 + i % 700,
                    i % 30,
                    i % 100
                )
                .unwrap();
            }
            w.flush().unwrap();
            p
        }
        Err(_) => std::path::PathBuf::from(arg),
    };
    let files = expand_inputs(&[path.to_string_lossy().into_owned()]).unwrap();
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let _ = std::fs::read(&files[0].path).map(|b| b.len());
    for threads in [1, 2] {
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..3 {
            let opts = ScanOptions { threads, ..Default::default() };
            let t = Instant::now();
            let out = scan_files(&files, &opts, &ScanControl::default(), None, Count::default).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            n = out.sink.n;
            assert_eq!(out.files[0].rejected, 0);
        }
        println!(
            "threads={threads}: {n} records, {:.0} MB in {best:.3} s = {:.0} MB/s ({:.1} M records/s)",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / best,
            n as f64 / 1e6 / best
        );
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wattledger-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
