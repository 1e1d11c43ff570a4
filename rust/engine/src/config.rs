//! The methodology pack (methodology section 2): TOML, parsed strictly.
//!
//! Strict because a typo in a pack silently changes an emissions number: an unknown key
//! (`wh_per_1k_outptu`) would otherwise be ignored and the coefficient read as absent. So:
//!
//! * unknown top-level keys and unknown fields of any table are refused, naming the key path
//!   (`models."llama-3.1-8b".coefficients[0].wh_per_1k_outptu: unknown field`);
//! * every number must be finite and >= 0 (integers are accepted where a float is expected);
//! * physics that cannot be true is refused as well, naming the key: every number has a
//!   physical range ([`Bound`], the table in docs/bounds.md): `pue` within [1, 5] (a facility
//!   cannot use less than its IT load), `utilization` within [0, 1], `concurrency` and `mfu`
//!   at least 1e-6 (they divide energy), `idle_w > tdp_w`, `gpus < 1` (a replica has at least
//!   one accelerator), upper bounds far beyond any real value on every other number, and a
//!   model with two coefficient entries for the same hardware (which one would win is
//!   arbitrary). The bounds are what makes every committed value finite: with them and the
//!   record bounds of `record.rs`, no sum can reach infinity (the arithmetic is in
//!   `record.rs`);
//! * `[columns]` rules are checked against the canonical columns at parse time, so a bad
//!   mapping stops the run before any file is read.
//!
//! Interpretations (the spec is silent): `[pack]` is optional (the spec's example has none;
//! name defaults to `"custom"`, version to `"unversioned"`); `hardware.tdp_w` is required
//! (both the gpu_time and flops formulas need it), `idle_w` defaults to 0 (CCF's
//! `MinW + util * (MaxW - MinW)` with no idle figure), `peak_tflops` is optional (without it
//! the flops method does not apply to that hardware); a coefficient needs `hardware`,
//! `wh_per_1k_input` and `wh_per_1k_output` (write `0` to ignore input tokens on purpose).
//! Descriptive strings `name`, `source`, `note` are allowed on hardware, model, coefficient
//! and site entries, and are carried into the resolved pack (`resolved.rs`) for the report.

use crate::columns::ColumnMap;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use toml::{Table, Value};

/// The physical range of a pack number, with the reason given when a value falls outside it.
/// Upper bounds are far beyond any real value (they catch typos and make overflow impossible,
/// see `record.rs`); lower bounds above 0 exist where the value divides energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub min: f64,
    pub max: f64,
    pub why: &'static str,
}

impl Bound {
    pub fn contains(&self, x: f64) -> bool {
        x >= self.min && x <= self.max
    }
}

/// A number as messages write it: plain for everyday sizes, with an exponent for very large or
/// small ones (`1e308`, not 309 digits).
pub fn num_text(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

const fn bound(min: f64, max: f64, why: &'static str) -> Bound {
    Bound { min, max, why }
}

/// Facility over IT energy: a facility cannot use less than its IT load; the least efficient
/// data centres surveyed are near 2.5.
pub const PUE: Bound = bound(1.0, 5.0, "facility energy is at least IT energy; 5 is beyond any data centre");
/// Host and idle overheads, as fractions of accelerator energy.
pub const OVERHEAD: Bound = bound(0.0, 10.0, "a fraction of accelerator energy; 10 is ten times it");
pub const UTILIZATION: Bound = bound(0.0, 1.0, "a share of the power range above idle");
/// Requests sharing a replica; it divides energy, so it has a floor.
pub const CONCURRENCY: Bound = bound(1e-6, 1e6, "requests sharing a replica on average; it divides energy");
/// Achieved share of peak FLOP/s; it divides energy, so it has a floor.
pub const MFU: Bound = bound(1e-6, 1.0, "a share of peak FLOP/s; it divides energy");
/// Relative half-widths of the uncertainty band.
pub const UNCERTAINTY: Bound = bound(0.0, 10.0, "a relative half-width; 10 is +-1000 %");
/// One accelerator's board power: the largest parts are about 1 kW (B200) and a GB200
/// superchip 2.7 kW; the bound is above a whole 8-GPU server (DGX B200, 14.3 kW).
pub const TDP_W: Bound = bound(0.0, 2e4, "watts of one accelerator; 20 kW is more than a whole 8-GPU server");
/// Dense peak of one accelerator: it divides energy, so it has a floor (1 GFLOP/s).
pub const PEAK_TFLOPS: Bound = bound(1e-3, 1e7, "TFLOP/s of one accelerator; it divides energy");
/// Parameters active per token, in billions: 100 trillion.
pub const ACTIVE_PARAMS_B: Bound = bound(0.0, 1e5, "billions of active parameters; 1e5 is 100 trillion");
/// Accelerator Wh per 1000 tokens: measured values are below 1 Wh.
pub const WH_PER_1K: Bound = bound(0.0, 1e4, "Wh per 1000 tokens; measured values are below 1");
/// Grid and contractual intensities: coal plants emit about 1000 gCO2e/kWh.
pub const G_PER_KWH: Bound = bound(0.0, 5000.0, "gCO2e/kWh; coal is about 1000");
/// Accelerators per replica (the same bound as a record's `gpus`).
pub const GPUS: Bound = bound(1.0, crate::record::MAX_GPUS as f64, "accelerators of one replica");
pub const TRAINING_GPU_HOURS: Bound = bound(0.0, 1e12, "GPU-hours of one training run; the largest are near 1e8");
pub const TRAINING_ENERGY_MWH: Bound = bound(0.0, 1e9, "MWh of one training run; 1e9 is 1000 TWh");
/// Held-out energy totals of a calibration: far beyond any fleet's yearly accelerator energy.
pub const CALIBRATION_WH: Bound = bound(0.0, 1e18, "Wh of the held-out requests; 1e18 is 1000 PWh");
/// A calibration's held-out median relative error (|estimate / measured - 1|).
pub const RELATIVE_ERROR: Bound = bound(0.0, 1e6, "a relative error; 1e6 is a million times off");
pub const FRACTION: Bound = bound(0.0, 1.0, "a share");

#[derive(Debug, Clone, PartialEq)]
pub struct PackInfo {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
}

/// `[defaults]`: used where a site entry is silent (and for unknown sites).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    pub pue: f64,
    pub host_overhead: f64,
    pub idle_overhead: f64,
    pub utilization: f64,
    pub concurrency: f64,
    pub mfu: f64,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { pue: 1.2, host_overhead: 0.0, idle_overhead: 0.0, utilization: 0.5, concurrency: 1.0, mfu: 0.1 }
    }
}

/// `[uncertainty]`: relative half-width per method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uncertainty {
    pub measured: f64,
    pub tokens: f64,
    pub gpu_time: f64,
    pub flops: f64,
    /// Attributed node energy (section 10); the `measured` value unless the pack says.
    pub attributed: f64,
}

impl Default for Uncertainty {
    fn default() -> Self {
        Uncertainty { measured: 0.05, tokens: 0.3, gpu_time: 0.5, flops: 1.0, attributed: 0.05 }
    }
}

/// Descriptive strings an entry may carry; they never change a number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Describe {
    pub name: Option<String>,
    pub source: Option<String>,
    pub note: Option<String>,
}

/// `calibrated`: where a fitted value came from (`wattledger calibrate` writes it next to the
/// value). It never changes a number; the report shows it so a calibrated coefficient can be
/// traced to the measurements it was fitted on and to how well it predicted those held out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Records the value was fitted on (unweighted).
    pub records: i64,
    /// Records held out of the fit and used to judge it.
    pub held_out: i64,
    /// First and last `ts` of the records used (RFC 3339, UTC).
    pub first_ts: String,
    pub last_ts: String,
    /// When the calibration ran (RFC 3339, UTC).
    pub date: String,
    /// The fit, in words (e.g. "quasi-Poisson, identity link, non-negative").
    pub fit: Option<String>,
    /// The input files' identity (name and content hash), so the fit can be reproduced.
    pub inputs: Vec<String>,
    /// Share of records held out, and the seed of the split.
    pub holdout: Option<f64>,
    pub seed: Option<i64>,
    /// Measured and estimated (with the fitted value) accelerator energy of the held-out
    /// requests, weighted: their ratio is the held-out total error.
    pub holdout_measured_wh: Option<f64>,
    pub holdout_estimated_wh: Option<f64>,
    /// Median of |estimate / measured - 1| over held-out requests.
    pub holdout_median_error: Option<f64>,
    /// Share of held-out requests whose measured value lies in the low-high band.
    pub band_coverage: Option<f64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hardware {
    pub tdp_w: f64,
    /// 0 when the pack gives no idle figure.
    pub idle_w: f64,
    /// Whether the pack gave `idle_w` (the report tells a stated 0 from an absent figure).
    pub idle_w_given: bool,
    pub peak_tflops: Option<f64>,
    /// For gpu_time on this hardware at sites that do not set their own `utilization`: it
    /// wins over `[defaults] utilization` (a site's own value wins over it).
    pub utilization: Option<f64>,
    /// Provenance of a calibrated `utilization`.
    pub calibration: Option<Calibration>,
    pub describe: Describe,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Coefficient {
    /// A hardware id, or `"*"` for any hardware.
    pub hardware: String,
    pub wh_per_1k_input: f64,
    pub wh_per_1k_output: f64,
    /// Overrides `[uncertainty] tokens` for records estimated with this entry.
    pub uncertainty: Option<f64>,
    /// Provenance of a calibrated entry.
    pub calibration: Option<Calibration>,
    pub describe: Describe,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub active_params_b: Option<f64>,
    pub coefficients: Vec<Coefficient>,
    pub describe: Describe,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Site {
    pub zone: Option<String>,
    pub pue: Option<f64>,
    pub host_overhead: Option<f64>,
    pub idle_overhead: Option<f64>,
    pub market_g_per_kwh: Option<f64>,
    pub fallback_g_per_kwh: Option<f64>,
    pub hardware: Option<String>,
    pub gpus: Option<i64>,
    pub utilization: Option<f64>,
    pub concurrency: Option<f64>,
    pub mfu: Option<f64>,
    pub describe: Describe,
}

/// `[outcomes]`: status values (compared ignoring case and surrounding blanks) the pack adds to
/// the built-in lists of `outcome.rs`. A pack list wins over the built-in ones, so a fleet can
/// also say that one of its statuses means something else than the usual reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcomes {
    pub ok: Vec<String>,
    pub failed: Vec<String>,
    pub cached: Vec<String>,
}

/// `[aliases.models]`, `[aliases.hardware]`, `[aliases.sites]`: (name or glob pattern as logs
/// write it, pack name), in the order the pack lists them (the tie-break between patterns of
/// equal length).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aliases {
    pub models: Vec<(String, String)>,
    pub hardware: Vec<(String, String)>,
    pub sites: Vec<(String, String)>,
}

/// `[training."model"]`: figures for the report's training section; never used by the kernel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Training {
    pub gpu_hours: Option<f64>,
    pub hardware: Option<String>,
    pub site: Option<String>,
    pub energy_mwh: Option<f64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the TOML came from (a path or `"<default>"`), for messages.
    pub origin: String,
    /// Hex SHA-256 of the TOML bytes: the report cites it so a number can be traced to its pack.
    pub sha256: String,
    pub text: String,
    pub pack: PackInfo,
    pub defaults: Defaults,
    pub uncertainty: Uncertainty,
    pub hardware: BTreeMap<String, Hardware>,
    pub models: BTreeMap<String, Model>,
    pub sites: BTreeMap<String, Site>,
    /// `[columns]`: canonical = "source" rules.
    pub columns: BTreeMap<String, String>,
    pub training: BTreeMap<String, Training>,
    /// `[defaults] site`: the site of records that carry neither site nor zone.
    pub default_site: Option<String>,
    pub outcomes: Outcomes,
    pub aliases: Aliases,
}

// ---------------------------------------------------------------------------------------------
// Key paths and a strict table reader.

/// A TOML key as written in a path: bare when TOML allows it, else quoted.
fn key_segment(k: &str) -> String {
    if !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
        k.to_string()
    } else {
        format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key_segment(key)
    } else {
        format!("{path}.{}", key_segment(key))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Takes fields out of one table by name; `finish` refuses whatever is left (unknown keys).
struct Fields<'a> {
    origin: &'a str,
    path: String,
    table: Table,
    allowed: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(origin: &'a str, path: String, v: Value) -> Result<Self> {
        match v {
            Value::Table(table) => Ok(Fields { origin, path, table, allowed: Vec::new() }),
            other => Err(Error::config(origin, &path, format!("expected a table, found {}", type_name(&other)))),
        }
    }

    fn err(&self, key: &str, msg: impl std::fmt::Display) -> Error {
        Error::config(self.origin, join(&self.path, key), msg)
    }

    fn take(&mut self, key: &'static str) -> Option<Value> {
        self.allowed.push(key);
        self.table.remove(key)
    }

    fn string(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("expected a string, found {}", type_name(&v)))),
        }
    }

    fn required_string(&mut self, key: &'static str) -> Result<String> {
        self.string(key)?.ok_or_else(|| self.err(key, "required"))
    }

    /// An array of strings.
    fn string_list(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(self.err(key, format!("expected an array of strings, found {}", type_name(&other)))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(self.err(key, format!("expected an array of strings, found {}", type_name(&v)))),
        }
    }

    /// A finite, non-negative number (TOML integer or float).
    fn number(&mut self, key: &'static str) -> Result<Option<f64>> {
        let x = match self.take(key) {
            None => return Ok(None),
            Some(Value::Float(x)) => x,
            Some(Value::Integer(i)) => i as f64,
            Some(v) => return Err(self.err(key, format!("expected a number, found {}", type_name(&v)))),
        };
        if !x.is_finite() {
            return Err(self.err(key, format!("must be a finite number, found {x}")));
        }
        if x < 0.0 {
            return Err(self.err(key, format!("must not be negative, found {x}")));
        }
        Ok(Some(x))
    }

    /// A number within its physical range `b` (see [`Bound`]).
    fn bounded(&mut self, key: &'static str, b: Bound) -> Result<Option<f64>> {
        let v = self.number(key)?;
        self.within(key, v, b)?;
        Ok(v)
    }

    fn required_bounded(&mut self, key: &'static str, b: Bound) -> Result<f64> {
        self.bounded(key, b)?.ok_or_else(|| self.err(key, "required"))
    }

    /// Check a value already read against its physical range.
    fn within(&self, key: &str, v: Option<f64>, b: Bound) -> Result<()> {
        match v {
            Some(x) if !b.contains(x) => {
                let (lo, hi, x) = (num_text(b.min), num_text(b.max), num_text(x));
                Err(self.err(key, format!("must be within [{lo}, {hi}] ({}), found {x}", b.why)))
            }
            _ => Ok(()),
        }
    }

    fn integer(&mut self, key: &'static str) -> Result<Option<i64>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Integer(i)) if i < 0 => Err(self.err(key, format!("must not be negative, found {i}"))),
            Some(Value::Integer(i)) => Ok(Some(i)),
            Some(v) => Err(self.err(key, format!("expected an integer, found {}", type_name(&v)))),
        }
    }

    fn describe(&mut self) -> Result<Describe> {
        Ok(Describe { name: self.string("name")?, source: self.string("source")?, note: self.string("note")? })
    }

    /// Each sub-table of this table, in key order, as (name, value, path).
    fn entries(self) -> Vec<(String, Value, String)> {
        let path = self.path;
        self.table.into_iter().map(|(k, v)| (k.clone(), v, join(&path, &k))).collect()
    }

    fn finish(self) -> Result<()> {
        if let Some(k) = self.table.keys().next() {
            let mut allowed = self.allowed.clone();
            allowed.sort_unstable();
            return Err(self.err(k, format!("unknown field (expected one of: {})", allowed.join(", "))));
        }
        Ok(())
    }
}

/// (line, column), both 1-based, of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Config {
    /// Parse and validate a pack. `origin` names it in messages (a path, or `<default>`).
    /// Sections are read in a fixed order, so of two errors the same one is always reported.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config> {
        let mut top = Fields::new(origin, String::new(), Value::Table(parse_syntax(text, origin)?))?;
        let pack = pack_section(origin, top.take("pack"))?;
        let (defaults, default_site) = defaults_section(origin, top.take("defaults"))?;
        let uncertainty = uncertainty_section(origin, top.take("uncertainty"))?;
        let hardware = hardware_section(origin, top.take("hardware"))?;
        let models = models_section(origin, top.take("models"))?;
        let sites = sites_section(origin, top.take("sites"))?;
        check_default_site(origin, default_site.as_deref(), &sites)?;
        let outcomes = outcomes_section(origin, top.take("outcomes"))?;
        let known = Known { models: &models, hardware: &hardware, sites: &sites };
        let aliases = aliases_section(origin, top.take("aliases"), &known)?;
        let columns = columns_section(origin, top.take("columns"))?;
        let training = training_section(origin, top.take("training"))?;
        top.finish()?;

        let sha256 = Sha256::digest(text.as_bytes()).iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Ok(Config {
            origin: origin.to_string(),
            sha256,
            text: text.to_string(),
            pack,
            defaults,
            uncertainty,
            hardware,
            models,
            sites,
            columns,
            training,
            default_site,
            outcomes,
            aliases,
        })
    }

    pub fn from_path(path: &Path) -> Result<Config> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::input(path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::config(&origin, "(file)", "not UTF-8 text"))?;
        Config::from_toml(&text, &origin)
    }

    /// The `[columns]` rules applied to the default mapping.
    pub fn column_map(&self) -> Result<ColumnMap> {
        let mut m = ColumnMap::default();
        for (canonical, source) in &self.columns {
            m.set(canonical, source).map_err(|e| Error::config(&self.origin, join("columns", canonical), e))?;
        }
        Ok(m)
    }
}

// ---------------------------------------------------------------------------------------------
// One function per section of the pack.

fn parse_syntax(text: &str, origin: &str) -> Result<Table> {
    toml::from_str(text).map_err(|e| {
        // toml's message can span lines; errors here are one line.
        let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        let where_ = e.span().map(|s| line_col(text, s.start));
        match where_ {
            Some((l, c)) => {
                Error::config(origin, "(syntax)", format!("TOML syntax error at line {l}, column {c}: {msg}"))
            }
            None => Error::config(origin, "(syntax)", format!("TOML syntax error: {msg}")),
        }
    })
}

fn pack_section(origin: &str, v: Option<Value>) -> Result<PackInfo> {
    let Some(v) = v else {
        return Ok(PackInfo { name: "custom".into(), version: "unversioned".into(), description: None });
    };
    let mut f = Fields::new(origin, "pack".into(), v)?;
    let p = PackInfo {
        name: f.string("name")?.unwrap_or_else(|| "custom".into()),
        version: f.string("version")?.unwrap_or_else(|| "unversioned".into()),
        description: f.string("description")?,
    };
    f.finish()?;
    Ok(p)
}

/// `[defaults]`, and its `site` (the site of records that carry neither site nor zone).
fn defaults_section(origin: &str, v: Option<Value>) -> Result<(Defaults, Option<String>)> {
    let mut defaults = Defaults::default();
    let Some(v) = v else { return Ok((defaults, None)) };
    let mut f = Fields::new(origin, "defaults".into(), v)?;
    let default_site = f.string("site")?;
    let d = &mut defaults;
    for (key, slot, b) in [
        ("pue", &mut d.pue, PUE),
        ("host_overhead", &mut d.host_overhead, OVERHEAD),
        ("idle_overhead", &mut d.idle_overhead, OVERHEAD),
        ("utilization", &mut d.utilization, UTILIZATION),
        ("concurrency", &mut d.concurrency, CONCURRENCY),
        ("mfu", &mut d.mfu, MFU),
    ] {
        if let Some(x) = f.bounded(key, b)? {
            *slot = x;
        }
    }
    f.finish()?;
    Ok((defaults, default_site))
}

fn uncertainty_section(origin: &str, v: Option<Value>) -> Result<Uncertainty> {
    let mut uncertainty = Uncertainty::default();
    let Some(v) = v else { return Ok(uncertainty) };
    let mut f = Fields::new(origin, "uncertainty".into(), v)?;
    let u = &mut uncertainty;
    for (key, slot) in [
        ("measured", &mut u.measured),
        ("tokens", &mut u.tokens),
        ("gpu_time", &mut u.gpu_time),
        ("flops", &mut u.flops),
    ] {
        if let Some(x) = f.bounded(key, UNCERTAINTY)? {
            *slot = x;
        }
    }
    // Attributed energy is metered energy shared out: by default as uncertain as `measured`.
    u.attributed = f.bounded("attributed", UNCERTAINTY)?.unwrap_or(u.measured);
    f.finish()?;
    Ok(uncertainty)
}

fn hardware_section(origin: &str, v: Option<Value>) -> Result<BTreeMap<String, Hardware>> {
    let mut hardware = BTreeMap::new();
    let Some(v) = v else { return Ok(hardware) };
    for (name, v, path) in Fields::new(origin, "hardware".into(), v)?.entries() {
        let mut f = Fields::new(origin, path, v)?;
        let tdp_w = f.required_bounded("tdp_w", TDP_W)?;
        let idle = f.number("idle_w")?;
        let idle_w = idle.unwrap_or(0.0);
        let peak_tflops = f.bounded("peak_tflops", PEAK_TFLOPS)?;
        f.within("idle_w", Some(idle_w), bound(0.0, tdp_w, "idle draw cannot exceed tdp_w"))?;
        let utilization = f.bounded("utilization", UTILIZATION)?;
        let calibration = calibration(origin, &mut f)?;
        let describe = f.describe()?;
        f.finish()?;
        let idle_w_given = idle.is_some();
        hardware
            .insert(name, Hardware { tdp_w, idle_w, idle_w_given, peak_tflops, utilization, calibration, describe });
    }
    Ok(hardware)
}

fn models_section(origin: &str, v: Option<Value>) -> Result<BTreeMap<String, Model>> {
    let mut models = BTreeMap::new();
    let Some(v) = v else { return Ok(models) };
    for (name, v, path) in Fields::new(origin, "models".into(), v)?.entries() {
        let mut f = Fields::new(origin, path.clone(), v)?;
        let active_params_b = f.bounded("active_params_b", ACTIVE_PARAMS_B)?;
        let describe = f.describe()?;
        let coefficients = match f.take("coefficients") {
            None => Vec::new(),
            Some(Value::Array(items)) => coefficients(origin, &path, items)?,
            Some(other) => {
                return Err(f.err(
                    "coefficients",
                    format!("expected an array of tables ([[...coefficients]]), found {}", type_name(&other)),
                ))
            }
        };
        f.finish()?;
        models.insert(name, Model { active_params_b, coefficients, describe });
    }
    Ok(models)
}

/// A model's `[[coefficients]]`; `path` is the model's key path.
fn coefficients(origin: &str, path: &str, items: Vec<Value>) -> Result<Vec<Coefficient>> {
    let mut coefficients: Vec<Coefficient> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let mut c = Fields::new(origin, format!("{path}.coefficients[{i}]"), item)?;
        let hw = c.string("hardware")?.ok_or_else(|| c.err("hardware", "required (a hardware id or \"*\")"))?;
        let coef = Coefficient {
            wh_per_1k_input: c.required_bounded("wh_per_1k_input", WH_PER_1K)?,
            wh_per_1k_output: c.required_bounded("wh_per_1k_output", WH_PER_1K)?,
            uncertainty: c.bounded("uncertainty", UNCERTAINTY)?,
            calibration: calibration(origin, &mut c)?,
            describe: c.describe()?,
            hardware: hw,
        };
        if coefficients.iter().any(|o| o.hardware == coef.hardware) {
            return Err(c.err("hardware", format!("a second entry for \"{}\"", coef.hardware)));
        }
        c.finish()?;
        coefficients.push(coef);
    }
    Ok(coefficients)
}

/// The optional `calibrated` table of a coefficient or hardware entry (see [`Calibration`]).
fn calibration(origin: &str, entry: &mut Fields<'_>) -> Result<Option<Calibration>> {
    let Some(v) = entry.take("calibrated") else { return Ok(None) };
    let mut f = Fields::new(origin, join(&entry.path, "calibrated"), v)?;
    let c = Calibration {
        records: f.integer("records")?.ok_or_else(|| f.err("records", "required"))?,
        held_out: f.integer("held_out")?.unwrap_or(0),
        first_ts: f.required_string("first_ts")?,
        last_ts: f.required_string("last_ts")?,
        date: f.required_string("date")?,
        fit: f.string("fit")?,
        inputs: f.string_list("inputs")?.unwrap_or_default(),
        holdout: f.bounded("holdout", FRACTION)?,
        seed: f.integer("seed")?,
        holdout_measured_wh: f.bounded("holdout_measured_wh", CALIBRATION_WH)?,
        holdout_estimated_wh: f.bounded("holdout_estimated_wh", CALIBRATION_WH)?,
        holdout_median_error: f.bounded("holdout_median_error", RELATIVE_ERROR)?,
        band_coverage: f.bounded("band_coverage", FRACTION)?,
        note: f.string("note")?,
    };
    f.finish()?;
    Ok(Some(c))
}

fn sites_section(origin: &str, v: Option<Value>) -> Result<BTreeMap<String, Site>> {
    let mut sites = BTreeMap::new();
    let Some(v) = v else { return Ok(sites) };
    for (name, v, path) in Fields::new(origin, "sites".into(), v)?.entries() {
        let mut f = Fields::new(origin, path, v)?;
        let s = Site {
            zone: f.string("zone")?,
            pue: f.bounded("pue", PUE)?,
            host_overhead: f.bounded("host_overhead", OVERHEAD)?,
            idle_overhead: f.bounded("idle_overhead", OVERHEAD)?,
            market_g_per_kwh: f.bounded("market_g_per_kwh", G_PER_KWH)?,
            fallback_g_per_kwh: f.bounded("fallback_g_per_kwh", G_PER_KWH)?,
            hardware: f.string("hardware")?,
            gpus: f.integer("gpus")?,
            utilization: f.bounded("utilization", UTILIZATION)?,
            concurrency: f.bounded("concurrency", CONCURRENCY)?,
            mfu: f.bounded("mfu", MFU)?,
            describe: f.describe()?,
        };
        f.within("gpus", s.gpus.map(|g| g as f64), GPUS)?;
        f.finish()?;
        sites.insert(name, s);
    }
    Ok(sites)
}

fn check_default_site(origin: &str, site: Option<&str>, sites: &BTreeMap<String, Site>) -> Result<()> {
    match site {
        Some(site) if !sites.contains_key(site) => Err(Error::config(
            origin,
            "defaults.site",
            format!("\"{site}\" is not a site of this pack (add [sites.\"{site}\"] or name one of its sites)"),
        )),
        _ => Ok(()),
    }
}

fn outcomes_section(origin: &str, v: Option<Value>) -> Result<Outcomes> {
    let mut outcomes = Outcomes::default();
    let Some(v) = v else { return Ok(outcomes) };
    let mut f = Fields::new(origin, "outcomes".into(), v)?;
    for (key, slot) in [("ok", &mut outcomes.ok), ("failed", &mut outcomes.failed), ("cached", &mut outcomes.cached)] {
        *slot = f.string_list(key)?.unwrap_or_default();
    }
    // One status in two lists would be classified by whichever list is looked at first.
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (key, list) in [("ok", &outcomes.ok), ("failed", &outcomes.failed), ("cached", &outcomes.cached)] {
        for v in list {
            let norm = v.trim().to_lowercase();
            if let Some(other) = seen.insert(norm, key) {
                return Err(f.err(key, format!("\"{v}\" is also listed under {other}")));
            }
        }
    }
    f.finish()?;
    Ok(outcomes)
}

/// The names an alias may map to.
struct Known<'a> {
    models: &'a BTreeMap<String, Model>,
    hardware: &'a BTreeMap<String, Hardware>,
    sites: &'a BTreeMap<String, Site>,
}

fn aliases_section(origin: &str, v: Option<Value>, known: &Known<'_>) -> Result<Aliases> {
    let mut aliases = Aliases::default();
    let Some(v) = v else { return Ok(aliases) };
    let mut f = Fields::new(origin, "aliases".into(), v)?;
    for (key, slot, what) in [
        ("models", &mut aliases.models, "model"),
        ("hardware", &mut aliases.hardware, "hardware"),
        ("sites", &mut aliases.sites, "site"),
    ] {
        let Some(t) = f.take(key) else { continue };
        let is_known = |n: &str| match key {
            "models" => known.models.contains_key(n),
            "hardware" => known.hardware.contains_key(n),
            _ => known.sites.contains_key(n),
        };
        for (raw, target, path) in Fields::new(origin, join("aliases", key), t)?.entries() {
            let Value::String(target) = target else {
                return Err(Error::config(
                    origin,
                    path,
                    format!("expected a string (a {what} of this pack), found {}", type_name(&target)),
                ));
            };
            if !is_known(&target) {
                return Err(Error::config(origin, path, format!("\"{target}\" is not a {what} of this pack")));
            }
            if is_known(&raw) {
                // A name the pack defines is always used as is: this alias could never apply.
                return Err(Error::config(
                    origin,
                    path,
                    format!("\"{raw}\" is already a {what} of this pack; an alias cannot rename it"),
                ));
            }
            slot.push((raw, target));
        }
    }
    f.finish()?;
    Ok(aliases)
}

fn columns_section(origin: &str, v: Option<Value>) -> Result<BTreeMap<String, String>> {
    let mut columns = BTreeMap::new();
    let Some(v) = v else { return Ok(columns) };
    let f = Fields::new(origin, "columns".into(), v)?;
    let mut check = ColumnMap::default();
    for (canonical, v, path) in f.entries() {
        let Value::String(source) = v else {
            return Err(Error::config(origin, path, format!("expected a string, found {}", type_name(&v))));
        };
        check.set(&canonical, &source).map_err(|e| Error::config(origin, &path, e))?;
        columns.insert(canonical, source);
    }
    Ok(columns)
}

fn training_section(origin: &str, v: Option<Value>) -> Result<BTreeMap<String, Training>> {
    let mut training = BTreeMap::new();
    let Some(v) = v else { return Ok(training) };
    for (name, v, path) in Fields::new(origin, "training".into(), v)?.entries() {
        let mut f = Fields::new(origin, path, v)?;
        let t = Training {
            gpu_hours: f.bounded("gpu_hours", TRAINING_GPU_HOURS)?,
            hardware: f.string("hardware")?,
            site: f.string("site")?,
            energy_mwh: f.bounded("energy_mwh", TRAINING_ENERGY_MWH)?,
            note: f.string("note")?,
        };
        f.finish()?;
        training.insert(name, t);
    }
    Ok(training)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of methodology section 2, verbatim.
    const SPEC_EXAMPLE: &str = r#"
[defaults]            # used where a site/model/hardware entry is silent
pue = 1.2             # facility / IT energy
host_overhead = 0.0   # host CPU, DRAM, network, as a fraction of accelerator energy
idle_overhead = 0.0   # provisioned-but-idle capacity, as a fraction of accelerator energy
utilization = 0.5     # for gpu_time: share of (tdp - idle) drawn above idle
concurrency = 1.0     # for gpu_time: requests sharing the replica at once, on average
mfu = 0.1             # for flops: achieved share of peak FLOP/s

[uncertainty]         # relative half-width per method (low = x*(1-u) floored at 0, high = x*(1+u))
measured = 0.05
tokens = 0.3          # a coefficient entry's own `uncertainty` overrides this
gpu_time = 0.5
flops = 1.0

[hardware."nvidia-h100-sxm"]
tdp_w = 700
idle_w = 75
peak_tflops = 989     # dense bf16

[models."llama-3.1-8b"]
active_params_b = 8.03           # billions of parameters active per token
[[models."llama-3.1-8b".coefficients]]
hardware = "nvidia-h100-sxm"     # or "*" for any hardware
wh_per_1k_input = 0.0025         # accelerator Wh per 1000 input tokens
wh_per_1k_output = 0.033         # accelerator Wh per 1000 output tokens
uncertainty = 0.25               # optional

[sites."fra-1"]
zone = "DE"
pue = 1.15
host_overhead = 0.43
idle_overhead = 0.17
market_g_per_kwh = 0.0           # contractual (market-based) factor; absent -> location-based value
fallback_g_per_kwh = 380.0       # used when the grid table has no value (see 5)
hardware = "nvidia-h100-sxm"
gpus = 1
"#;

    fn parse(t: &str) -> Result<Config> {
        Config::from_toml(t, "pack.toml")
    }

    /// The error's key and message, or a panic if it parsed.
    fn refused(t: &str) -> (String, String) {
        match parse(t) {
            Err(Error::Config { origin, key, msg }) => {
                assert_eq!(origin, "pack.toml");
                (key, msg)
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn spec_example_parses() {
        let c = parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(c.hardware["nvidia-h100-sxm"].idle_w, 75.0);
        assert_eq!(c.hardware["nvidia-h100-sxm"].peak_tflops, Some(989.0));
        let m = &c.models["llama-3.1-8b"];
        assert_eq!(m.active_params_b, Some(8.03));
        assert_eq!(m.coefficients[0].uncertainty, Some(0.25));
        assert_eq!(m.coefficients[0].wh_per_1k_output, 0.033);
        let s = &c.sites["fra-1"];
        assert_eq!((s.zone.as_deref(), s.market_g_per_kwh, s.gpus), (Some("DE"), Some(0.0), Some(1)));
        assert_eq!(c.pack.name, "custom");
        assert_eq!(c.sha256.len(), 64);
        assert_ne!(c.sha256, parse(&format!("{SPEC_EXAMPLE}\n# x")).unwrap().sha256);
        let j = c.to_json();
        assert!(j.starts_with("{\"origin\":\"pack.toml\",\"sha256\":"), "{j}");
        assert!(j.contains("\"fra-1\":{\"zone\":\"DE\",\"pue\":1.15,"), "{j}");
        assert!(j.contains("\"market_g_per_kwh\":0.0,"), "{j}");
        assert!(!j.contains(",,") && !j.contains("{,") && !j.contains(":,"), "{j}");
    }

    #[test]
    fn defaults_applied() {
        let c = parse("").unwrap();
        assert_eq!(
            c.defaults,
            Defaults { pue: 1.2, host_overhead: 0.0, idle_overhead: 0.0, utilization: 0.5, concurrency: 1.0, mfu: 0.1 }
        );
        assert_eq!(
            c.uncertainty,
            Uncertainty { measured: 0.05, tokens: 0.3, gpu_time: 0.5, flops: 1.0, attributed: 0.05 }
        );
        let c = parse("[defaults]\npue = 1.5\n[uncertainty]\nflops = 2\n[hardware.x]\ntdp_w = 300").unwrap();
        assert_eq!((c.defaults.pue, c.defaults.mfu), (1.5, 0.1));
        assert_eq!((c.uncertainty.flops, c.uncertainty.tokens), (2.0, 0.3));
        assert_eq!((c.hardware["x"].idle_w, c.hardware["x"].peak_tflops), (0.0, None));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let t =
            "[[models.\"llama-3.1-8b\".coefficients]]\nhardware = \"*\"\nwh_per_1k_input = 0\nwh_per_1k_outptu = 1\n";
        let (key, msg) = refused(t);
        // wh_per_1k_output is required, so the typo is reported as its absence first.
        assert_eq!(key, "models.\"llama-3.1-8b\".coefficients[0].wh_per_1k_output");
        assert_eq!(msg, "required");
        let t = "[[models.\"llama-3.1-8b\".coefficients]]\nhardware = \"*\"\nwh_per_1k_input = 0\nwh_per_1k_output = 1\nwh_per_1k_outptu = 1\n";
        let e = parse(t).unwrap_err().to_string();
        assert!(
            e.starts_with("config pack.toml: models.\"llama-3.1-8b\".coefficients[0].wh_per_1k_outptu: unknown field"),
            "{e}"
        );
        assert_eq!(refused("[defautls]\npue = 1.2").0, "defautls");
        assert_eq!(refused("[defaults]\npeu = 1.2").0, "defaults.peu");
        assert_eq!(refused("[pack]\nname = \"x\"\nversoin = \"1\"").0, "pack.versoin");
        assert_eq!(refused("[hardware.h]\ntdp_w = 1\ntdp = 2").0, "hardware.h.tdp");
        assert_eq!(refused("[sites.s]\nzone = \"DE\"\npue_ = 1").0, "sites.s.pue_");
        assert_eq!(refused("[training.m]\ngpu_hour = 1").0, "training.m.gpu_hour");
        assert_eq!(refused("[uncertainty]\ntoken = 1").0, "uncertainty.token");
        assert_eq!(refused("[models.m]\nparams = 1").0, "models.m.params");
        // Descriptive strings are allowed where the default pack uses them.
        parse("[hardware.h]\ntdp_w = 1\nsource = \"s\"\nname = \"n\"\nnote = \"x\"\n[models.m]\nsource = \"s\"\n[[models.m.coefficients]]\nhardware = \"*\"\nwh_per_1k_input = 0\nwh_per_1k_output = 0\nnote = \"n\"\n[sites.s]\nsource = \"s\"").unwrap();
    }

    #[test]
    fn negative_and_non_finite_numbers_are_refused() {
        assert_eq!(refused("[defaults]\nhost_overhead = -0.1").0, "defaults.host_overhead");
        assert_eq!(refused("[hardware.h]\ntdp_w = nan").0, "hardware.h.tdp_w");
        assert_eq!(refused("[hardware.h]\ntdp_w = inf").0, "hardware.h.tdp_w");
        assert_eq!(refused("[sites.s]\nmarket_g_per_kwh = -1").0, "sites.s.market_g_per_kwh");
        assert_eq!(refused("[sites.s]\ngpus = -1").0, "sites.s.gpus");
        assert_eq!(refused("[sites.s]\ngpus = 1.5").0, "sites.s.gpus");
        assert_eq!(refused("[models.m]\nactive_params_b = -8").0, "models.m.active_params_b");
        assert_eq!(refused("[training.m]\nenergy_mwh = -1").0, "training.m.energy_mwh");
        assert_eq!(refused("[sites.s]\npue = \"1.2\"").1, "expected a number, found a string");
        let (k, m) = refused("[[models.m.coefficients]]\nhardware = \"*\"\nwh_per_1k_input = 1\nwh_per_1k_output = 1\nuncertainty = -0.2");
        assert_eq!(k, "models.m.coefficients[0].uncertainty");
        assert!(m.contains("negative"), "{m}");
    }

    #[test]
    fn physics_is_checked() {
        assert_eq!(refused("[defaults]\npue = 0.9").0, "defaults.pue");
        assert_eq!(refused("[sites.s]\npue = 0.99").0, "sites.s.pue");
        assert_eq!(refused("[defaults]\nutilization = 1.1").0, "defaults.utilization");
        assert_eq!(refused("[sites.s]\nutilization = 2").0, "sites.s.utilization");
        assert_eq!(refused("[defaults]\nconcurrency = 0").0, "defaults.concurrency");
        assert_eq!(refused("[sites.s]\nconcurrency = 0.0").0, "sites.s.concurrency");
        assert_eq!(refused("[defaults]\nmfu = 0").0, "defaults.mfu");
        assert_eq!(refused("[sites.s]\nmfu = 1.01").0, "sites.s.mfu");
        assert_eq!(refused("[hardware.h]\ntdp_w = 700\npeak_tflops = 0").0, "hardware.h.peak_tflops");
        assert_eq!(refused("[hardware.h]\ntdp_w = 70\nidle_w = 75").0, "hardware.h.idle_w");
        assert_eq!(refused("[hardware.h]\nidle_w = 75").0, "hardware.h.tdp_w");
        assert_eq!(refused("[sites.s]\ngpus = 0").0, "sites.s.gpus");
        let dup = "[[models.m.coefficients]]\nhardware = \"*\"\nwh_per_1k_input = 1\nwh_per_1k_output = 1\n[[models.m.coefficients]]\nhardware = \"*\"\nwh_per_1k_input = 2\nwh_per_1k_output = 2\n";
        assert_eq!(refused(dup).0, "models.m.coefficients[1].hardware");
        // Edges that are physical are accepted.
        parse("[defaults]\npue = 1\nutilization = 0\nmfu = 1\n[hardware.h]\ntdp_w = 75\nidle_w = 75\n[uncertainty]\nflops = 0").unwrap();
    }

    #[test]
    fn values_beyond_physical_bounds_are_refused_naming_the_key() {
        let (key, msg) = refused("[hardware.h]\ntdp_w = 1e308");
        assert_eq!(key, "hardware.h.tdp_w");
        assert!(msg.starts_with("must be within [0, 20000] (watts of one accelerator"), "{msg}");
        assert!(msg.ends_with("found 1e308"), "{msg}");
        let coef = |k: &str, v: &str| {
            let mut c = String::from("[[models.m.coefficients]]\nhardware = \"*\"\n");
            for key in ["wh_per_1k_input", "wh_per_1k_output"] {
                c += &format!("{key} = {}\n", if key == k { v } else { "1" });
            }
            if k == "uncertainty" {
                c += &format!("uncertainty = {v}\n");
            }
            c
        };
        for (toml, key) in [
            ("[defaults]\npue = 5.01".to_string(), "defaults.pue"),
            ("[sites.s]\npue = 1e308".into(), "sites.s.pue"),
            ("[defaults]\nhost_overhead = 11".into(), "defaults.host_overhead"),
            ("[sites.s]\nidle_overhead = 1e300".into(), "sites.s.idle_overhead"),
            ("[defaults]\nconcurrency = 1e-300".into(), "defaults.concurrency"),
            ("[sites.s]\nconcurrency = 1e7".into(), "sites.s.concurrency"),
            ("[defaults]\nmfu = 1e-9".into(), "defaults.mfu"),
            ("[uncertainty]\nflops = 1e308".into(), "uncertainty.flops"),
            ("[hardware.h]\ntdp_w = 700\npeak_tflops = 1e-9".into(), "hardware.h.peak_tflops"),
            ("[hardware.h]\ntdp_w = 700\npeak_tflops = 1e308".into(), "hardware.h.peak_tflops"),
            ("[models.m]\nactive_params_b = 1e6".into(), "models.m.active_params_b"),
            (coef("wh_per_1k_input", "1e308"), "models.m.coefficients[0].wh_per_1k_input"),
            (coef("wh_per_1k_output", "10001"), "models.m.coefficients[0].wh_per_1k_output"),
            (coef("uncertainty", "100"), "models.m.coefficients[0].uncertainty"),
            ("[sites.s]\nmarket_g_per_kwh = 1e308".into(), "sites.s.market_g_per_kwh"),
            ("[sites.s]\nfallback_g_per_kwh = 5001".into(), "sites.s.fallback_g_per_kwh"),
            ("[sites.s]\ngpus = 1000001".into(), "sites.s.gpus"),
            ("[training.m]\ngpu_hours = 1e13".into(), "training.m.gpu_hours"),
            ("[training.m]\nenergy_mwh = 1e308".into(), "training.m.energy_mwh"),
        ] {
            assert_eq!(refused(&toml).0, key, "{toml}");
        }
        // The bounds are inclusive: the largest values allowed still parse.
        parse(
            "[defaults]\npue = 5\nhost_overhead = 10\nconcurrency = 1e-6\nmfu = 1e-6\n\
             [uncertainty]\nflops = 10\n[hardware.h]\ntdp_w = 20000\nidle_w = 20000\npeak_tflops = 1e-3\n\
             [models.m]\nactive_params_b = 1e5\n[[models.m.coefficients]]\nhardware = \"*\"\n\
             wh_per_1k_input = 1e4\nwh_per_1k_output = 1e4\n\
             [sites.s]\nmarket_g_per_kwh = 5000\nfallback_g_per_kwh = 5000\ngpus = 1000000\nconcurrency = 1e6",
        )
        .unwrap();
    }

    #[test]
    fn calibrated_entries_parse_strictly() {
        let cal =
            "records = 400\nheld_out = 100\nfirst_ts = \"2026-01-01T00:00:00Z\"\nlast_ts = \"2026-01-31T23:00:00Z\"\n\
                   date = \"2026-02-01T00:00:00Z\"\nfit = \"quasi-Poisson\"\ninputs = [\"a.jsonl sha256:00\"]\n\
                   holdout = 0.2\nseed = 7\nholdout_measured_wh = 12.5\nholdout_estimated_wh = 12\n\
                   holdout_median_error = 0.08\nband_coverage = 0.93\nnote = \"n\"\n";
        let t = format!(
            "[hardware.h]\ntdp_w = 700\nutilization = 0.42\n[hardware.h.calibrated]\n{cal}\
             [[models.m.coefficients]]\nhardware = \"h\"\nwh_per_1k_input = 0.01\nwh_per_1k_output = 0.1\n\
             uncertainty = 0.3\n[models.m.coefficients.calibrated]\n{cal}"
        );
        let c = parse(&t).unwrap();
        let h = &c.hardware["h"];
        assert_eq!(h.utilization, Some(0.42));
        let k = h.calibration.as_ref().unwrap();
        assert_eq!((k.records, k.held_out, k.seed, k.band_coverage), (400, 100, Some(7), Some(0.93)));
        assert_eq!(k.inputs, vec!["a.jsonl sha256:00".to_string()]);
        assert_eq!(c.models["m"].coefficients[0].calibration.as_ref(), Some(k));
        let j = c.to_json();
        assert!(j.contains("\"utilization\":0.42,\"calibrated\":{\"records\":400.0,\"held_out\":100.0,"), "{j}");
        assert!(j.contains("\"uncertainty_from\":\"coefficient\",\"calibrated\":{\"records\":400.0,"), "{j}");
        assert!(j.contains("\"band_coverage\":0.93,\"note\":\"n\"}"), "{j}");
        // Packs without calibration keep their JSON: no new keys appear.
        let plain = parse("[hardware.h]\ntdp_w = 700").unwrap().to_json();
        assert!(!plain.contains("utilization\":0.5,\"calibrated") && !plain.contains("calibrated"), "{plain}");

        let bad = |k: &str, v: &str| {
            let t = format!(
                "[hardware.h]\ntdp_w = 700\n[hardware.h.calibrated]\n{}\n{k} = {v}\n",
                cal.lines().filter(|l| !l.starts_with(&format!("{k} "))).collect::<Vec<_>>().join("\n")
            );
            refused(&t)
        };
        assert_eq!(bad("band_coverage", "1.5").0, "hardware.h.calibrated.band_coverage");
        assert_eq!(bad("holdout_median_error", "-0.1").0, "hardware.h.calibrated.holdout_median_error");
        assert_eq!(bad("records", "1.5").0, "hardware.h.calibrated.records");
        assert_eq!(bad("recrods", "1").0, "hardware.h.calibrated.recrods");
        assert_eq!(bad("holdout_measured_wh", "1e300").0, "hardware.h.calibrated.holdout_measured_wh");
        assert_eq!(
            refused("[hardware.h]\ntdp_w = 700\n[hardware.h.calibrated]\nrecords = 1").0,
            "hardware.h.calibrated.first_ts"
        );
        assert_eq!(refused("[hardware.h]\ntdp_w = 700\nutilization = 1.2").0, "hardware.h.utilization");
        assert_eq!(refused("[hardware.h]\ntdp_w = 700\ncalibrated = 3").0, "hardware.h.calibrated");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let (key, msg) = refused("[defaults]\npue = 1.2\nmfu = = 3\n");
        assert_eq!(key, "(syntax)");
        assert!(msg.contains("line 3, column"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn columns_and_training() {
        let c = parse("[columns]\ninput_tokens = \"prompt_tokens\"\nduration_s = \"latency_ms/1000\"\n[training.\"llama-3.1-8b\"]\ngpu_hours = 1460000\nhardware = \"nvidia-h100-sxm\"\nnote = \"model card\"").unwrap();
        let m = c.column_map().unwrap();
        let term = |c| m.source(c).single().unwrap().clone();
        assert_eq!(term(crate::columns::Col::InputTokens).path.flat().as_deref(), Some("prompt_tokens"));
        assert_eq!(term(crate::columns::Col::DurationS).scale, 0.001);
        assert_eq!(c.training["llama-3.1-8b"].gpu_hours, Some(1_460_000.0));
        assert_eq!(refused("[columns]\ntokens = \"x\"").0, "columns.tokens");
        assert_eq!(refused("[columns]\ninput_tokens = 3").0, "columns.input_tokens");
    }

    #[test]
    fn outcomes_aliases_and_default_site() {
        let base = "[hardware.h100]\ntdp_w = 700\n[models.m]\n[sites.fra]\n";
        let c = parse(&format!(
            "[defaults]\nsite = \"fra\"\n{base}[outcomes]\nfailed = [\"rate_limited\"]\ncached = [\"hit\"]\n\
             [aliases.models]\n\"b*\" = \"m\"\n\"a*\" = \"m\"\n[aliases.hardware]\n\"NVIDIA H100*\" = \"h100\"\n\
             [aliases.sites]\n\"10.*\" = \"fra\""
        ))
        .unwrap();
        assert_eq!(c.default_site.as_deref(), Some("fra"));
        assert_eq!((c.outcomes.failed.len(), c.outcomes.cached.len(), c.outcomes.ok.len()), (1, 1, 0));
        // The pack's order is kept (it breaks ties between patterns of equal length).
        assert_eq!(c.aliases.models, vec![("b*".into(), "m".into()), ("a*".into(), "m".into())]);
        let j = c.to_json();
        assert!(j.contains("\"site\":\"fra\"}"), "{j}");
        assert!(j.contains("\"outcomes\":{\"ok\":[],\"failed\":[\"rate_limited\"],\"cached\":[\"hit\"]}"), "{j}");
        assert!(j.contains("\"aliases\":{\"models\":{\"b*\":\"m\",\"a*\":\"m\"},\"hardware\":{"), "{j}");
        assert!(!parse(base).unwrap().to_json().contains("aliases"), "absent tables leave the JSON as before");

        let (k, m) = refused(&format!("[defaults]\nsite = \"nowhere\"\n{base}"));
        assert_eq!(k, "defaults.site");
        assert!(m.contains("\"nowhere\" is not a site of this pack"), "{m}");
        let (k, m) = refused(&format!("{base}[aliases.models]\n\"openai/*\" = \"gpt\""));
        assert_eq!((k.as_str(), m.as_str()), ("aliases.models.\"openai/*\"", "\"gpt\" is not a model of this pack"));
        let (k, _) = refused(&format!("{base}[aliases.hardware]\n\"x\" = \"m\""));
        assert_eq!(k, "aliases.hardware.x");
        let (k, m) = refused(&format!("{base}[aliases.sites]\nfra = \"fra\""));
        assert_eq!(k, "aliases.sites.fra");
        assert!(m.contains("already a site"), "{m}");
        assert_eq!(refused(&format!("{base}[aliases.models]\nx = 1")).0, "aliases.models.x");
        assert_eq!(refused(&format!("{base}[aliases.zones]\nx = \"y\"")).0, "aliases.zones");
        let (k, m) = refused("[outcomes]\nfailed = [\"X\"]\ncached = [\"x \"]");
        assert_eq!(k, "outcomes.cached");
        assert!(m.contains("also listed under failed"), "{m}");
        assert_eq!(refused("[outcomes]\nfailed = \"error\"").0, "outcomes.failed");
        assert_eq!(refused("[outcomes]\nfailed = [1]").0, "outcomes.failed");
        assert_eq!(refused("[outcomes]\nfailled = []").0, "outcomes.failled");
    }

    #[test]
    fn default_pack_parses() {
        let text = include_str!("../../../python/wattledger/packs/default.toml");
        let c = Config::from_toml(text, "<default>").unwrap();
        assert_eq!((c.pack.name.as_str(), c.pack.version.as_str()), ("wattledger-default", "2026.1"));
        assert!(c.sites.is_empty(), "sites are the user's");
        for hw in [
            "nvidia-a100-sxm",
            "nvidia-h100-sxm",
            "nvidia-h200",
            "nvidia-b200",
            "nvidia-l4",
            "nvidia-l40s",
            "nvidia-a10",
        ] {
            assert!(c.hardware[hw].peak_tflops.is_some(), "{hw}");
        }
        for m in ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"] {
            assert!(c.models[m].active_params_b.is_some() && c.models[m].describe.source.is_some(), "{m}");
        }
        // The 8B output coefficient is the measured 0.119 J/token in Wh per 1000 tokens.
        let h100 = &c.models["llama-3.1-8b"].coefficients[0];
        assert!((h100.wh_per_1k_output - 0.119 / 3.6).abs() < 1e-4);
        assert!((h100.wh_per_1k_input - 2.0 * 8.03e9 / (989e12 * 0.5) * 700.0 / 3.6).abs() < 1e-5);
        assert_eq!(c.defaults, Defaults::default());
        assert_eq!(c.uncertainty, Uncertainty::default());
    }
}
