//! Deterministic, in-process inputs for the `wattledger-engine` benches in `benches/`.
//!
//! The shapes follow `python/wattledger/synthetic.py`, the generator behind the demo and the
//! end-to-end benchmarks: Zipf model popularity, sites by traffic share, heavy-tailed token
//! counts, measured energy on about 30% of records, some records with no site, a zone override,
//! an accelerator or a model the config does not know. The numbers are made up; only their
//! shapes matter here. The same seed always gives the same bytes, and nothing touches the disk
//! except [`TempFile`], which the file-scanning benches need.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wattledger_engine::config::Config;
use wattledger_engine::grid::Grid;
use wattledger_engine::kernel::Methodology;
use wattledger_engine::record::Record;
use wattledger_engine::time::{civil_from_days, days_from_civil, US_PER_HOUR, US_PER_SECOND};

/// SplitMix64: tiny, fast, and good enough for shaping benchmark data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }

    /// An index drawn with the given (unnormalised) weights.
    pub fn pick(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// Models in popularity order: (id, GPUs per request, output tokens/s, J per output token).
/// The last one is unknown to [`CONFIG_TOML`].
pub const MODELS: [(&str, i64, f64, f64); 8] = [
    ("llama-3.1-8b", 1, 90.0, 0.12),
    ("llama-3.1-70b", 4, 35.0, 0.8),
    ("mistral-large-2", 4, 25.0, 1.3),
    ("llama-3.2-3b", 1, 140.0, 0.06),
    ("gemma-2-27b", 2, 50.0, 0.4),
    ("llama-3.1-405b", 8, 15.0, 3.0),
    ("qwen-2.5-72b", 4, 33.0, 0.85),
    ("acme-internal-7b", 1, 80.0, 0.15),
];

/// Sites: (id, zone, share of traffic, default hardware). `edge-pop-x` is unknown to the
/// config; `sin-1` is in a zone with no grid data (site fallback factor).
pub const SITES: [(&str, &str, f64, &str); 8] = [
    ("fra-1", "DE", 0.22, "nvidia-h100-sxm"),
    ("par-1", "FR", 0.14, "nvidia-h100-sxm"),
    ("sjc-1", "US-CAL-CISO", 0.18, "nvidia-h200"),
    ("dfw-1", "US-TEX-ERCO", 0.14, "nvidia-b200"),
    ("sto-1", "SE", 0.10, "nvidia-a100-sxm"),
    ("waw-1", "PL", 0.08, "nvidia-l40s"),
    ("sin-1", "SG", 0.07, "nvidia-h100-sxm"),
    ("edge-pop-x", "PL", 0.05, "nvidia-l4"),
];

/// Zones with grid data: (zone, mean g/kWh). SG deliberately has none.
pub const GRID_ZONES: [(&str, f64); 6] =
    [("DE", 380.0), ("FR", 45.0), ("US-CAL-CISO", 220.0), ("US-TEX-ERCO", 390.0), ("SE", 20.0), ("PL", 650.0)];

/// The methodology pack of `wattledger.synthetic` (same hardware, models, sites), read from the
/// file the Python package ships, so the benches and the demo price records identically.
pub const CONFIG_TOML: &str = include_str!("../../../python/wattledger/packs/synthetic.toml");

/// 2025-06-01T00:00:00Z, where every generated log starts.
pub fn t0_us() -> i64 {
    days_from_civil(2025, 6, 1) * 86_400 * US_PER_SECOND
}

/// A grid table in the plain `zone,datetime,g_per_kwh` form: hourly values with a daily cycle
/// for `hours` hours from [`t0_us`], every 97th hour left empty (so some lookups fall back to
/// the month mean).
pub fn grid_csv(hours: i64) -> String {
    let mut s = String::from("zone,datetime,g_per_kwh\n");
    for (zone, mean) in GRID_ZONES {
        for h in 0..hours {
            let ts = rfc3339(t0_us() + h * US_PER_HOUR, 0, b'T', "Z");
            if h % 97 == 96 {
                s.push_str(&format!("{zone},{ts},\n"));
            } else {
                let cycle = 1.0 + 0.25 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
                s.push_str(&format!("{zone},{ts},{:.1}\n", mean * cycle));
            }
        }
    }
    s
}

/// [`CONFIG_TOML`] and a 30-day [`grid_csv`], resolved as an estimate run does.
pub fn methodology() -> Methodology {
    let config = Config::from_toml(CONFIG_TOML, "bench.toml").expect("bench config parses");
    let grid = Grid::from_texts(&[("bench-grid.csv", &grid_csv(30 * 24))], false).expect("bench grid parses");
    Methodology::new(Arc::new(config), Arc::new(grid)).expect("methodology builds")
}

/// One generated request, as it would be logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    pub id: u64,
    pub ts_us: i64,
    pub model: &'static str,
    pub site: Option<&'static str>,
    pub zone: Option<&'static str>,
    pub hardware: Option<&'static str>,
    pub gpus: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub duration_s: Option<f64>,
    pub energy_j: Option<f64>,
    pub weight: Option<f64>,
    pub ok: bool,
}

impl Req {
    /// The canonical record a reader would hand the kernel. `request_id` is left out (the
    /// estimate path reads it only to de-duplicate, see `pipeline::kernel_scan`); `status`
    /// is the log's, since it decides the request outcome (methodology section 10).
    pub fn record(&self) -> Record<'static> {
        Record {
            ts_us: self.ts_us,
            model: self.model,
            site: self.site,
            zone: self.zone,
            hardware: self.hardware,
            gpus: self.gpus,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            duration_s: self.duration_s,
            energy_j: self.energy_j,
            weight: self.weight.unwrap_or(1.0),
            request_id: None,
            status: Some(if self.ok { "ok" } else { "error" }),
            cache_hit: None,
            node: None,
        }
    }
}

fn opt(rng: &mut Rng, p_present: f64, v: f64) -> Option<f64> {
    (rng.f64() < p_present).then_some(v)
}

/// `n` requests spread in time order over `span_hours` from [`t0_us`] (a few seconds of
/// jitter, as real logs have).
pub fn fleet(n: usize, span_hours: i64, seed: u64) -> Vec<Req> {
    let mut rng = Rng::new(seed);
    let model_w: Vec<f64> = (1..=MODELS.len()).map(|r| (r as f64).powf(-1.1)).collect();
    let site_w: Vec<f64> = SITES.iter().map(|s| s.2).collect();
    let span_us = span_hours * US_PER_HOUR;
    (0..n)
        .map(|i| {
            let frac = (i as f64 + rng.f64()) / n as f64;
            let jitter = (rng.normal() * 2e6) as i64;
            let ts_us = t0_us() + ((frac * span_us as f64) as i64 + jitter).clamp(0, span_us - 1);
            let (model, gpus_of_model, speed, jpt) = MODELS[rng.pick(&model_w)];
            let (site_name, site_zone, _, site_hw) = SITES[rng.pick(&site_w)];
            let u = rng.f64();
            let unknown_site = site_name == "edge-pop-x";
            let (site, zone) = if u < 0.01 {
                (None, Some(site_zone))
            } else if unknown_site {
                (Some(site_name), (rng.f64() < 0.5).then_some("PL"))
            } else if u < 0.02 {
                (Some(site_name), Some(if site_zone == "DE" { "FR" } else { "DE" }))
            } else if u < 0.10 {
                (Some(site_name), Some(site_zone))
            } else {
                (Some(site_name), None)
            };
            let h = rng.f64();
            let hardware = if h < 0.2 || unknown_site || (site.is_none() && h < 0.6) {
                Some(site_hw)
            } else if h < 0.21 {
                Some("amd-mi300x")
            } else {
                None
            };
            let tin = (rng.lognormal(6.2, 1.1).min(120_000.0) as i64) + 1;
            let tout = (rng.lognormal(5.3, 0.9).min(16_000.0) as i64) + 1;
            let t = rng.f64();
            let input_tokens = (!(t < 0.05 || (0.10..0.12).contains(&t))).then_some(tin);
            let output_tokens = (!((0.05..0.08).contains(&t) || (0.10..0.12).contains(&t))).then_some(tout);
            let duration = (0.05 + tin as f64 / 8000.0 + tout as f64 / speed) * rng.lognormal(0.0, 0.35);
            let energy = (tout as f64 * jpt + tin as f64 * jpt * 0.05) * rng.lognormal(0.0, 0.25);
            let w = rng.f64();
            Req {
                id: i as u64,
                ts_us,
                model,
                site,
                zone,
                hardware,
                gpus: (rng.f64() < 0.7).then_some(gpus_of_model),
                input_tokens,
                output_tokens,
                duration_s: opt(&mut rng, 0.8, (duration * 1e4).round() / 1e4),
                energy_j: opt(&mut rng, 0.3, (energy * 1e3).round() / 1e3),
                weight: (w <= 0.95).then_some(if w < 0.03 { 10.0 } else { 1.0 }),
                ok: rng.f64() >= 0.02,
            }
        })
        .collect()
}

/// RFC 3339-ish text of a timestamp: `frac` fractional digits (0, 3 or 6), `sep` between date
/// and time (`T` or space), then `suffix` (`Z`, `+00:00`, or empty for a naive timestamp).
pub fn rfc3339(ts_us: i64, frac: u32, sep: u8, suffix: &str) -> String {
    let secs = ts_us.div_euclid(US_PER_SECOND);
    let us = ts_us.rem_euclid(US_PER_SECOND);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    let sep = sep as char;
    let frac = match frac {
        0 => String::new(),
        3 => format!(".{:03}", us / 1000),
        _ => format!(".{us:06}"),
    };
    format!("{y:04}-{m:02}-{d:02}{sep}{hh:02}:{mm:02}:{ss:02}{frac}{suffix}")
}

/// The same instant written in another UTC offset (`+02:00`, `-05:00`...).
pub fn rfc3339_offset(ts_us: i64, frac: u32, offset_min: i64) -> String {
    let sign = if offset_min < 0 { '-' } else { '+' };
    let a = offset_min.abs();
    rfc3339(ts_us + offset_min * 60 * US_PER_SECOND, frac, b'T', &format!("{sign}{:02}:{:02}", a / 60, a % 60))
}

fn json_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn json_num<T: std::fmt::Display>(out: &mut Vec<u8>, v: Option<T>) {
    match v {
        Some(x) => write!(out, "{x}").unwrap(),
        None => out.extend_from_slice(b"null"),
    }
}

/// The canonical flat shape, as `wattledger.synthetic` writes it (one object per line):
/// `{"ts":"2025-06-01T00:00:02.987Z","request_id":"syn-0-0","model":"llama-3.1-70b",...}`.
pub fn jsonl_flat(reqs: &[Req]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reqs.len() * 260);
    for r in reqs {
        write!(out, "{{\"ts\":\"{}\",\"request_id\":\"syn-0-{}\",\"model\":", rfc3339(r.ts_us, 3, b'T', "Z"), r.id)
            .unwrap();
        json_str(&mut out, Some(r.model));
        for (k, v) in [("site", r.site), ("zone", r.zone), ("hardware", r.hardware)] {
            write!(out, ",\"{k}\":").unwrap();
            json_str(&mut out, v);
        }
        for (k, v) in [("gpus", r.gpus), ("input_tokens", r.input_tokens), ("output_tokens", r.output_tokens)] {
            write!(out, ",\"{k}\":").unwrap();
            json_num(&mut out, v);
        }
        for (k, v) in [("duration_s", r.duration_s), ("energy_j", r.energy_j)] {
            write!(out, ",\"{k}\":").unwrap();
            json_num(&mut out, v);
        }
        // Python's json writes 1.0, not 1.
        match r.weight {
            Some(w) => write!(out, ",\"weight\":{w:.1}").unwrap(),
            None => out.extend_from_slice(b",\"weight\":null"),
        }
        writeln!(out, ",\"status\":\"{}\"}}", if r.ok { "ok" } else { "error" }).unwrap();
    }
    out
}

/// A LiteLLM spend-log row exported as JSON: about 1 KB per line, the wanted fields (read
/// with the `litellm` column preset: `endTime`, `prompt_tokens`, `completion_tokens`,
/// `request_duration_ms`) scattered among many unwanted ones, including nested `metadata`
/// objects and arrays that the scanner has to skip.
pub fn jsonl_litellm(reqs: &[Req]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reqs.len() * 1100);
    for r in reqs {
        let dur_ms = (r.duration_s.unwrap_or(0.5) * 1000.0).round() as i64;
        let start = rfc3339_offset(r.ts_us - dur_ms * 1000, 6, 0);
        let end = rfc3339_offset(r.ts_us, 6, 0);
        let (tin, tout) = (r.input_tokens.unwrap_or(0), r.output_tokens.unwrap_or(0));
        let spend = (tin as f64 * 0.15 + tout as f64 * 0.6) / 1e6;
        let site = r.site.unwrap_or("default");
        let key = r.id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        writeln!(
            out,
            concat!(
                "{{\"request_id\":\"chatcmpl-{id:016x}\",\"call_type\":\"acompletion\",",
                "\"api_key\":\"{key:016x}{key:016x}{key:016x}{key:016x}\",\"spend\":{spend:.8},",
                "\"total_tokens\":{total},\"prompt_tokens\":{tin},\"completion_tokens\":{tout},",
                "\"startTime\":\"{start}\",\"endTime\":\"{end}\",\"completionStartTime\":\"{start}\",",
                "\"request_duration_ms\":{dur_ms},\"model\":\"{model}\",\"model_id\":\"{key:016x}\",",
                "\"model_group\":\"{model}\",\"custom_llm_provider\":\"hosted_vllm\",",
                "\"api_base\":\"http://vllm-{site}.internal:8000/v1\",\"user\":\"user-{user}\",",
                "\"metadata\":{{\"user_api_key\":\"{key:016x}\",\"user_api_key_alias\":null,",
                "\"user_api_key_team_id\":\"team-{team}\",\"user_api_key_user_id\":\"user-{user}\",",
                "\"spend_logs_metadata\":null,\"requester_ip_address\":\"\",",
                "\"hidden_params\":{{\"model_id\":\"{key:016x}\",\"cache_key\":null,",
                "\"api_base\":\"http://vllm-{site}.internal:8000/v1\",\"response_cost\":{spend:.8},",
                "\"additional_headers\":{{\"llm_provider-date\":\"Sun, 01 Jun 2025 00:00:02 GMT\",",
                "\"llm_provider-content-type\":\"application/json\"}}}},",
                "\"usage_object\":{{\"completion_tokens\":{tout},\"prompt_tokens\":{tin},",
                "\"total_tokens\":{total},\"completion_tokens_details\":null,",
                "\"prompt_tokens_details\":{{\"cached_tokens\":0}}}},",
                "\"model_map_information\":{{\"model_map_key\":\"{model}\",\"model_map_value\":null}},",
                "\"error_information\":{{\"error_code\":\"\",\"error_class\":\"\",\"llm_provider\":\"\"}},",
                "\"tags\":[\"site:{site}\",\"env:prod\",\"app:\\\"chat\\\"\"]}},",
                "\"cache_hit\":\"False\",\"cache_key\":\"Cache OFF\",\"request_tags\":[\"prod\",\"chat\"],",
                "\"team_id\":\"team-{team}\",\"end_user\":\"\",\"requester_ip_address\":\"\",",
                "\"messages\":{{}},\"response\":{{}},\"proxy_server_request\":{{}},",
                "\"status\":\"{status}\"}}"
            ),
            id = key ^ r.id,
            key = key,
            spend = spend,
            total = tin + tout,
            tin = tin,
            tout = tout,
            start = start,
            end = end,
            dur_ms = dur_ms,
            model = r.model,
            site = site,
            user = r.id % 997,
            team = r.id % 13,
            status = if r.ok { "success" } else { "failure" },
        )
        .unwrap();
    }
    out
}

/// An OpenAI chat-completion response per line (about 600 bytes): `created` is epoch seconds,
/// the token counts sit in the nested `usage` object (read with the `openai` preset's dotted
/// paths), and the `choices` array holds a message with escapes that the scanner must skip.
pub fn jsonl_openai(reqs: &[Req]) -> Vec<u8> {
    const REPLIES: [&str; 3] = [
        "Sure! Here is a short summary:\\n\\n1. The grid is cleaner at night.\\n2. Batch jobs can wait.",
        "The answer is \\\"42\\\", as computed in the previous step; see the table below for details.",
        "Bonjour ! Voici la r\\u00e9ponse demand\\u00e9e, avec les unit\\u00e9s en kWh et gCO\\u2082e.",
    ];
    let mut out = Vec::with_capacity(reqs.len() * 620);
    for r in reqs {
        let created = r.ts_us.div_euclid(US_PER_SECOND);
        let (tin, tout) = (r.input_tokens.unwrap_or(0), r.output_tokens.unwrap_or(0));
        writeln!(
            out,
            concat!(
                "{{\"id\":\"chatcmpl-syn{id:010}\",\"object\":\"chat.completion\",\"created\":{created},",
                "\"model\":\"{model}\",\"system_fingerprint\":\"fp_{fp:08x}\",",
                "\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{reply}\",",
                "\"refusal\":null,\"annotations\":[]}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],",
                "\"usage\":{{\"prompt_tokens\":{tin},\"completion_tokens\":{tout},\"total_tokens\":{total},",
                "\"prompt_tokens_details\":{{\"cached_tokens\":0,\"audio_tokens\":0}},",
                "\"completion_tokens_details\":{{\"reasoning_tokens\":0,\"audio_tokens\":0,",
                "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}},",
                "\"service_tier\":\"default\",\"site\":\"{site}\"}}"
            ),
            id = r.id,
            created = created,
            model = r.model,
            fp = r.id.wrapping_mul(2_654_435_761) as u32,
            reply = REPLIES[(r.id % 3) as usize],
            tin = tin,
            tout = tout,
            total = tin + tout,
            site = r.site.unwrap_or(""),
        )
        .unwrap();
    }
    out
}

/// A file under the system temp directory, removed on drop. The file readers take paths, so
/// the scanning benches write their generated input once, before timing starts; after the
/// first pass it is served from the page cache.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    pub fn new(name: &str, bytes: &[u8]) -> Self {
        let dir = std::env::temp_dir().join(format!("wattledger-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bench temp dir");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write bench input");
        TempFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            // Only succeeds once the directory is empty; other benches may still use it.
            let _ = std::fs::remove_dir(dir);
        }
    }
}
