//! The methodology pack resolved once: every value a number of the ledger or of a report is
//! made with, with the pack's defaults applied and, for each value a site may inherit, where
//! it came from.
//!
//! Why one resolution: the kernel computes with these values and the report explains them
//! (the binding hands the JSON of [`Resolved`] to Python). When both read the same resolved
//! form, "a site inherits the pack's defaults", "market-based falls back to location-based"
//! and the training energy are written once, here, and a methodology section cannot drift
//! from the sums it explains.

use crate::config::{Calibration, Config, Defaults, Describe, Hardware, PackInfo, Site, Training, Uncertainty};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where a site's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The site's own entry.
    Site,
    /// `[defaults]` (or the engine's default where the pack has no `[defaults]` value).
    Defaults,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Site => "site",
            Origin::Defaults => "[defaults]",
        }
    }
}

/// A site value and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub value: f64,
    pub origin: Origin,
}

impl Setting {
    /// The site's own value, else the default.
    fn inherit(own: Option<f64>, default: f64) -> Setting {
        match own {
            Some(value) => Setting { value, origin: Origin::Site },
            None => Setting { value: default, origin: Origin::Defaults },
        }
    }
}

/// The market-based factor of a site (methodology section 5, GHG Protocol Scope 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MarketFactor {
    /// A contractual instrument: `market_g_per_kwh`.
    Instrument(f64),
    /// No instrument: market-based uses the location-based factor.
    LocationFallback,
}

impl MarketFactor {
    fn of(market_g_per_kwh: Option<f64>) -> MarketFactor {
        market_g_per_kwh.map_or(MarketFactor::LocationFallback, MarketFactor::Instrument)
    }

    pub fn instrument(self) -> Option<f64> {
        match self {
            MarketFactor::Instrument(v) => Some(v),
            MarketFactor::LocationFallback => None,
        }
    }

    /// The market-based intensity given the location-based one: the instrument, else the
    /// location-based value.
    #[inline]
    pub fn g_per_kwh(self, location: f64) -> f64 {
        self.instrument().unwrap_or(location)
    }

    pub fn name(self) -> &'static str {
        match self {
            MarketFactor::Instrument(_) => "instrument",
            MarketFactor::LocationFallback => "location",
        }
    }
}

/// A site with the pack's defaults applied; also what a record of an unknown site (or of no
/// site) is estimated with ([`ResolvedSite::defaults_only`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSite {
    pub zone: Option<String>,
    pub pue: Setting,
    pub host_overhead: Setting,
    pub idle_overhead: Setting,
    pub utilization: Setting,
    pub concurrency: Setting,
    pub mfu: Setting,
    pub market: MarketFactor,
    pub fallback_g_per_kwh: Option<f64>,
    pub hardware: Option<String>,
    /// Accelerators per replica where a record gives none: the site's `gpus`, else 1.
    pub gpus: i64,
    pub describe: Describe,
}

impl ResolvedSite {
    /// The one place a site inherits the pack's defaults.
    pub fn new(s: &Site, d: &Defaults) -> ResolvedSite {
        ResolvedSite {
            zone: s.zone.clone(),
            pue: Setting::inherit(s.pue, d.pue),
            host_overhead: Setting::inherit(s.host_overhead, d.host_overhead),
            idle_overhead: Setting::inherit(s.idle_overhead, d.idle_overhead),
            utilization: Setting::inherit(s.utilization, d.utilization),
            concurrency: Setting::inherit(s.concurrency, d.concurrency),
            mfu: Setting::inherit(s.mfu, d.mfu),
            market: MarketFactor::of(s.market_g_per_kwh),
            fallback_g_per_kwh: s.fallback_g_per_kwh,
            hardware: s.hardware.clone(),
            gpus: s.gpus.unwrap_or(1),
            describe: s.describe.clone(),
        }
    }

    /// A site the pack does not define: everything from `[defaults]`.
    pub fn defaults_only(d: &Defaults) -> ResolvedSite {
        ResolvedSite::new(&Site::default(), d)
    }

    fn settings(&self) -> [(&'static str, Setting); 6] {
        [
            ("pue", self.pue),
            ("host_overhead", self.host_overhead),
            ("idle_overhead", self.idle_overhead),
            ("utilization", self.utilization),
            ("concurrency", self.concurrency),
            ("mfu", self.mfu),
        ]
    }
}

/// Where a coefficient's uncertainty came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UncertaintyOrigin {
    /// The coefficient entry's own `uncertainty`.
    Coefficient,
    /// `[uncertainty] tokens`.
    Pack,
}

impl UncertaintyOrigin {
    pub fn name(self) -> &'static str {
        match self {
            UncertaintyOrigin::Coefficient => "coefficient",
            UncertaintyOrigin::Pack => "[uncertainty] tokens",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCoefficient {
    /// A hardware id, or `"*"` for any hardware.
    pub hardware: String,
    pub wh_per_1k_input: f64,
    pub wh_per_1k_output: f64,
    pub uncertainty: f64,
    pub uncertainty_origin: UncertaintyOrigin,
    pub calibration: Option<Calibration>,
    pub describe: Describe,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    pub active_params_b: Option<f64>,
    /// The `[aliases.models]` names and patterns that map to this model, in the pack's order.
    pub aliases: Vec<String>,
    pub coefficients: Vec<ResolvedCoefficient>,
    pub describe: Describe,
}

/// How a training run's energy is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrainingEnergy {
    /// `energy_mwh` given in the pack.
    Measured { mwh: f64 },
    /// GPU hours x board power x the site's PUE (the model-card convention).
    Estimated { mwh: f64, tdp_w: f64, pue: Setting },
    /// Neither `energy_mwh` nor GPU hours on hardware of known power.
    Unknown,
}

impl TrainingEnergy {
    pub fn mwh(self) -> Option<f64> {
        match self {
            TrainingEnergy::Measured { mwh } | TrainingEnergy::Estimated { mwh, .. } => Some(mwh),
            TrainingEnergy::Unknown => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TrainingEnergy::Measured { .. } => "measured",
            TrainingEnergy::Estimated { .. } => "estimated",
            TrainingEnergy::Unknown => "unknown",
        }
    }
}

/// `[training."model"]` with its energy and emissions computed. A training run has no hourly
/// ledger rows to join with a grid, so its emissions use the site's annual factors: location
/// from `fallback_g_per_kwh`, market from the site's instrument, else the location factor.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTraining {
    pub gpu_hours: Option<f64>,
    pub hardware: Option<String>,
    pub site: Option<String>,
    /// Board power of the hardware, when the pack defines it.
    pub tdp_w: Option<f64>,
    pub energy: TrainingEnergy,
    /// The site the run is priced with (the defaults for an unknown or absent site).
    pub site_method: ResolvedSite,
    pub location_g_per_kwh: Option<f64>,
    pub market_g_per_kwh: Option<f64>,
    pub co2e_location_t: Option<f64>,
    pub co2e_market_t: Option<f64>,
    pub note: Option<String>,
}

impl ResolvedTraining {
    fn new(t: &Training, hardware: &BTreeMap<String, Hardware>, site: ResolvedSite) -> ResolvedTraining {
        let tdp_w = t.hardware.as_ref().and_then(|h| hardware.get(h)).map(|h| h.tdp_w);
        let energy = match (t.energy_mwh, t.gpu_hours, tdp_w) {
            (Some(mwh), _, _) => TrainingEnergy::Measured { mwh },
            (None, Some(gpu_hours), Some(tdp_w)) => {
                TrainingEnergy::Estimated { mwh: gpu_hours * tdp_w * site.pue.value / 1e6, tdp_w, pue: site.pue }
            }
            _ => TrainingEnergy::Unknown,
        };
        let location = site.fallback_g_per_kwh;
        let market = location.map(|l| site.market.g_per_kwh(l)).or(site.market.instrument());
        // MWh x gCO2e/kWh = kgCO2e; / 1000 -> tCO2e.
        let co2e = |factor: Option<f64>| Some(energy.mwh()? * factor? / 1000.0);
        ResolvedTraining {
            gpu_hours: t.gpu_hours,
            hardware: t.hardware.clone(),
            site: t.site.clone(),
            tdp_w,
            energy,
            location_g_per_kwh: location,
            market_g_per_kwh: market,
            co2e_location_t: co2e(location),
            co2e_market_t: co2e(market),
            site_method: site,
            note: t.note.clone(),
        }
    }
}

/// The whole pack, resolved. [`Resolved::to_json`] is what the report reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub origin: String,
    pub sha256: String,
    pub pack: PackInfo,
    pub defaults: Defaults,
    pub default_site: Option<String>,
    pub uncertainty: Uncertainty,
    pub hardware: BTreeMap<String, Hardware>,
    pub models: BTreeMap<String, ResolvedModel>,
    pub sites: BTreeMap<String, ResolvedSite>,
    /// What a record of an unknown site (or of none) is estimated with.
    pub unknown_site: ResolvedSite,
    pub training: BTreeMap<String, ResolvedTraining>,
}

impl Resolved {
    pub fn new(c: &Config) -> Resolved {
        let d = &c.defaults;
        let sites: BTreeMap<String, ResolvedSite> =
            c.sites.iter().map(|(n, s)| (n.clone(), ResolvedSite::new(s, d))).collect();
        let unknown_site = ResolvedSite::defaults_only(d);
        let models = c
            .models
            .iter()
            .map(|(name, m)| {
                let coefficients = m
                    .coefficients
                    .iter()
                    .map(|co| {
                        let (uncertainty, uncertainty_origin) = match co.uncertainty {
                            Some(u) => (u, UncertaintyOrigin::Coefficient),
                            None => (c.uncertainty.tokens, UncertaintyOrigin::Pack),
                        };
                        ResolvedCoefficient {
                            hardware: co.hardware.clone(),
                            wh_per_1k_input: co.wh_per_1k_input,
                            wh_per_1k_output: co.wh_per_1k_output,
                            uncertainty,
                            uncertainty_origin,
                            calibration: co.calibration.clone(),
                            describe: co.describe.clone(),
                        }
                    })
                    .collect();
                let aliases =
                    c.aliases.models.iter().filter(|(_, target)| target == name).map(|(raw, _)| raw.clone()).collect();
                let model = ResolvedModel {
                    active_params_b: m.active_params_b,
                    aliases,
                    coefficients,
                    describe: m.describe.clone(),
                };
                (name.clone(), model)
            })
            .collect();
        let training = c
            .training
            .iter()
            .map(|(name, t)| {
                let site = t.site.as_ref().and_then(|s| sites.get(s)).unwrap_or(&unknown_site).clone();
                (name.clone(), ResolvedTraining::new(t, &c.hardware, site))
            })
            .collect();
        Resolved {
            origin: c.origin.clone(),
            sha256: c.sha256.clone(),
            pack: c.pack.clone(),
            defaults: c.defaults,
            default_site: c.default_site.clone(),
            uncertainty: c.uncertainty,
            hardware: c.hardware.clone(),
            models,
            sites,
            unknown_site,
            training,
        }
    }

    /// The resolved pack as JSON, for the report's methodology section. Keys are in a fixed
    /// order so the same pack always gives the same text; `columns`, `outcomes` and `aliases`
    /// come from the pack as written (they decide how records are read, not a number).
    pub fn to_json(&self, c: &Config) -> String {
        let mut j = Json::default();
        j.open('{');
        j.kv_str("origin", Some(&self.origin));
        j.kv_str("sha256", Some(&self.sha256));
        j.key("pack");
        j.open('{');
        j.kv_str("name", Some(&self.pack.name));
        j.kv_str("version", Some(&self.pack.version));
        j.kv_str("description", self.pack.description.as_deref());
        j.close('}');
        let d = &self.defaults;
        j.key("defaults");
        j.open('{');
        for (k, v) in [
            ("pue", d.pue),
            ("host_overhead", d.host_overhead),
            ("idle_overhead", d.idle_overhead),
            ("utilization", d.utilization),
            ("concurrency", d.concurrency),
            ("mfu", d.mfu),
        ] {
            j.kv_num(k, Some(v));
        }
        if let Some(site) = &self.default_site {
            j.kv_str("site", Some(site));
        }
        j.close('}');
        let u = &self.uncertainty;
        j.key("uncertainty");
        j.open('{');
        for (k, v) in [("measured", u.measured), ("tokens", u.tokens), ("gpu_time", u.gpu_time), ("flops", u.flops)] {
            j.kv_num(k, Some(v));
        }
        j.close('}');
        j.key("hardware");
        j.open('{');
        for (name, h) in &self.hardware {
            j.key(name);
            j.open('{');
            j.kv_num("tdp_w", Some(h.tdp_w));
            j.kv_num("idle_w", Some(h.idle_w));
            j.key("idle_w_given");
            j.sep();
            j.out.push_str(if h.idle_w_given { "true" } else { "false" });
            j.kv_num("peak_tflops", h.peak_tflops);
            // Written only when the pack has them, so packs without calibration keep their JSON.
            if h.utilization.is_some() {
                j.kv_num("utilization", h.utilization);
            }
            j.calibration(h.calibration.as_ref());
            j.describe(&h.describe);
            j.close('}');
        }
        j.close('}');
        j.key("models");
        j.open('{');
        for (name, m) in &self.models {
            j.key(name);
            j.open('{');
            j.kv_num("active_params_b", m.active_params_b);
            j.describe(&m.describe);
            j.key("coefficients");
            j.open('[');
            for co in &m.coefficients {
                j.open('{');
                j.kv_str("hardware", Some(&co.hardware));
                j.kv_num("wh_per_1k_input", Some(co.wh_per_1k_input));
                j.kv_num("wh_per_1k_output", Some(co.wh_per_1k_output));
                j.kv_num("uncertainty", Some(co.uncertainty));
                j.kv_str("uncertainty_from", Some(co.uncertainty_origin.name()));
                j.calibration(co.calibration.as_ref());
                j.describe(&co.describe);
                j.close('}');
            }
            j.close(']');
            // Written only when the pack has them, like the top-level `aliases`.
            if !m.aliases.is_empty() {
                j.key("aliases");
                j.open('[');
                for a in &m.aliases {
                    j.sep();
                    j.string(a);
                }
                j.close(']');
            }
            j.close('}');
        }
        j.close('}');
        j.key("sites");
        j.open('{');
        for (name, s) in &self.sites {
            j.key(name);
            j.site(s);
        }
        j.close('}');
        j.key("unknown_site");
        j.site(&self.unknown_site);
        j.key("columns");
        j.open('{');
        for (k, v) in &c.columns {
            j.kv_str(k, Some(v));
        }
        j.close('}');
        // Outcomes and aliases change which records count how and under which name: the report
        // shows them. Written only when the pack has them, so older packs keep their JSON.
        let o = &c.outcomes;
        if !(o.ok.is_empty() && o.failed.is_empty() && o.cached.is_empty()) {
            j.key("outcomes");
            j.open('{');
            for (k, list) in [("ok", &o.ok), ("failed", &o.failed), ("cached", &o.cached)] {
                j.key(k);
                j.open('[');
                for v in list {
                    j.sep();
                    j.string(v);
                }
                j.close(']');
            }
            j.close('}');
        }
        let a = &c.aliases;
        if !(a.models.is_empty() && a.hardware.is_empty() && a.sites.is_empty()) {
            j.key("aliases");
            j.open('{');
            for (k, list) in [("models", &a.models), ("hardware", &a.hardware), ("sites", &a.sites)] {
                j.key(k);
                j.open('{');
                for (raw, target) in list {
                    j.kv_str(raw, Some(target));
                }
                j.close('}');
            }
            j.close('}');
        }
        j.key("training");
        j.open('{');
        for (name, t) in &self.training {
            j.key(name);
            j.open('{');
            j.kv_num("gpu_hours", t.gpu_hours);
            j.kv_str("hardware", t.hardware.as_deref());
            j.kv_str("site", t.site.as_deref());
            j.kv_num("tdp_w", t.tdp_w);
            j.kv_num("energy_mwh", t.energy.mwh());
            j.kv_str("energy_basis", Some(t.energy.name()));
            let pue = match t.energy {
                TrainingEnergy::Estimated { pue, .. } => Some(pue),
                _ => None,
            };
            j.kv_num("pue", pue.map(|p| p.value));
            j.kv_str("pue_from", pue.map(|p| p.origin.name()));
            j.kv_num("location_g_per_kwh", t.location_g_per_kwh);
            j.kv_num("market_g_per_kwh", t.market_g_per_kwh);
            j.kv_str("market_from", Some(t.site_method.market.name()));
            j.kv_num("co2e_location_t", t.co2e_location_t);
            j.kv_num("co2e_market_t", t.co2e_market_t);
            j.kv_str("note", t.note.as_deref());
            j.close('}');
        }
        j.close('}');
        j.close('}');
        j.out
    }
}

impl Config {
    /// This pack resolved (see [`Resolved`]).
    pub fn resolve(&self) -> Resolved {
        Resolved::new(self)
    }

    /// The resolved pack as JSON ([`Resolved::to_json`]).
    pub fn to_json(&self) -> String {
        self.resolve().to_json(self)
    }
}

/// A minimal JSON writer: enough for [`Resolved::to_json`] without another dependency.
#[derive(Default)]
struct Json {
    out: String,
    /// Whether the innermost open container already has an element (so a comma is due).
    has_item: Vec<bool>,
    /// A key was just written: the next value belongs to it and takes no comma.
    after_key: bool,
}

impl Json {
    fn sep(&mut self) {
        if std::mem::take(&mut self.after_key) {
            return;
        }
        if let Some(h) = self.has_item.last_mut() {
            if *h {
                self.out.push(',');
            }
            *h = true;
        }
    }
    fn open(&mut self, c: char) {
        self.sep();
        self.out.push(c);
        self.has_item.push(false);
    }
    fn close(&mut self, c: char) {
        self.out.push(c);
        self.has_item.pop();
    }
    fn string(&mut self, s: &str) {
        // The rejects file's escaping, so the engine writes JSON strings one way.
        let mut buf = Vec::with_capacity(s.len() + 2);
        crate::rejects::json_string(&mut buf, s);
        self.out.push_str(&String::from_utf8_lossy(&buf)); // escaped UTF-8 stays UTF-8
    }
    fn key(&mut self, k: &str) {
        self.sep();
        self.string(k);
        self.out.push(':');
        self.after_key = true;
    }
    fn kv_str(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        self.sep();
        match v {
            Some(s) => self.string(s),
            None => self.out.push_str("null"),
        }
    }
    fn kv_num(&mut self, k: &str, v: Option<f64>) {
        self.key(k);
        self.sep();
        match v {
            // Rust's shortest round-trip formatting: Python reads back the very same double.
            Some(x) if x.is_finite() => {
                let _ = write!(self.out, "{x:?}");
            }
            _ => self.out.push_str("null"),
        }
    }
    fn describe(&mut self, d: &Describe) {
        for (k, v) in [("name", &d.name), ("source", &d.source), ("note", &d.note)] {
            if let Some(v) = v {
                self.kv_str(k, Some(v));
            }
        }
    }
    /// A `calibrated` table, when there is one.
    fn calibration(&mut self, c: Option<&Calibration>) {
        let Some(c) = c else { return };
        self.key("calibrated");
        self.open('{');
        self.kv_num("records", Some(c.records as f64));
        self.kv_num("held_out", Some(c.held_out as f64));
        self.kv_str("first_ts", Some(&c.first_ts));
        self.kv_str("last_ts", Some(&c.last_ts));
        self.kv_str("date", Some(&c.date));
        self.kv_str("fit", c.fit.as_deref());
        self.key("inputs");
        self.open('[');
        for i in &c.inputs {
            self.sep();
            self.string(i);
        }
        self.close(']');
        self.kv_num("holdout", c.holdout);
        self.kv_num("seed", c.seed.map(|s| s as f64));
        self.kv_num("holdout_measured_wh", c.holdout_measured_wh);
        self.kv_num("holdout_estimated_wh", c.holdout_estimated_wh);
        self.kv_num("holdout_median_error", c.holdout_median_error);
        self.kv_num("band_coverage", c.band_coverage);
        self.kv_str("note", c.note.as_deref());
        self.close('}');
    }
    /// A resolved site: its values, then where each inheritable one came from.
    fn site(&mut self, s: &ResolvedSite) {
        self.open('{');
        self.kv_str("zone", s.zone.as_deref());
        self.kv_num("pue", Some(s.pue.value));
        self.kv_num("host_overhead", Some(s.host_overhead.value));
        self.kv_num("idle_overhead", Some(s.idle_overhead.value));
        self.kv_num("market_g_per_kwh", s.market.instrument());
        self.kv_num("fallback_g_per_kwh", s.fallback_g_per_kwh);
        self.kv_str("hardware", s.hardware.as_deref());
        self.kv_num("gpus", Some(s.gpus as f64));
        self.kv_num("utilization", Some(s.utilization.value));
        self.kv_num("concurrency", Some(s.concurrency.value));
        self.kv_num("mfu", Some(s.mfu.value));
        self.describe(&s.describe);
        self.kv_str("market_from", Some(s.market.name()));
        self.key("from");
        self.open('{');
        for (k, v) in s.settings() {
            self.kv_str(k, Some(v.origin.name()));
        }
        self.close('}');
        self.close('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(t: &str) -> Resolved {
        Config::from_toml(t, "pack.toml").unwrap().resolve()
    }

    const PACK: &str = r#"
[defaults]
pue = 1.3
mfu = 0.2
[uncertainty]
tokens = 0.4
[hardware.h100]
tdp_w = 700
idle_w = 75
[models.m]
active_params_b = 8
[[models.m.coefficients]]
hardware = "h100"
wh_per_1k_input = 0.01
wh_per_1k_output = 0.03
[[models.m.coefficients]]
hardware = "*"
wh_per_1k_input = 0.02
wh_per_1k_output = 0.06
uncertainty = 0.25
[aliases.models]
"meta/m*" = "m"
[sites.own]
zone = "DE"
pue = 1.1
market_g_per_kwh = 0
fallback_g_per_kwh = 380
gpus = 8
[sites.bare]
zone = "FR"
fallback_g_per_kwh = 50
"#;

    #[test]
    fn sites_inherit_the_defaults_and_say_so() {
        let r = resolve(PACK);
        let own = &r.sites["own"];
        assert_eq!(own.pue, Setting { value: 1.1, origin: Origin::Site });
        assert_eq!(own.mfu, Setting { value: 0.2, origin: Origin::Defaults });
        assert_eq!(own.utilization, Setting { value: 0.5, origin: Origin::Defaults }, "engine default");
        assert_eq!(own.gpus, 8);
        let bare = &r.sites["bare"];
        assert_eq!(bare.pue, Setting { value: 1.3, origin: Origin::Defaults });
        assert_eq!(bare.gpus, 1);
        assert_eq!(r.unknown_site.pue, Setting { value: 1.3, origin: Origin::Defaults });
        assert_eq!((r.unknown_site.zone.as_deref(), r.unknown_site.fallback_g_per_kwh), (None, None));
        let j = Config::from_toml(PACK, "pack.toml").unwrap().to_json();
        assert!(j.contains("\"from\":{\"pue\":\"[defaults]\",\"host_overhead\":\"[defaults]\","), "{j}");
        assert!(j.contains("\"mfu\":0.2,\"market_from\":\"instrument\",\"from\":{\"pue\":\"site\","), "{j}");
    }

    #[test]
    fn market_falls_back_to_location_without_an_instrument() {
        let r = resolve(PACK);
        assert_eq!(r.sites["own"].market, MarketFactor::Instrument(0.0));
        assert_eq!(r.sites["own"].market.g_per_kwh(400.0), 0.0, "an instrument of 0 is used");
        assert_eq!(r.sites["bare"].market, MarketFactor::LocationFallback);
        assert_eq!(r.sites["bare"].market.g_per_kwh(400.0), 400.0);
    }

    #[test]
    fn coefficients_resolve_their_uncertainty_and_models_their_aliases() {
        let r = resolve(PACK);
        let m = &r.models["m"];
        assert_eq!(
            (m.coefficients[0].uncertainty, m.coefficients[0].uncertainty_origin),
            (0.4, UncertaintyOrigin::Pack)
        );
        assert_eq!(
            (m.coefficients[1].uncertainty, m.coefficients[1].uncertainty_origin),
            (0.25, UncertaintyOrigin::Coefficient)
        );
        assert_eq!(m.aliases, vec!["meta/m*".to_string()]);
    }

    #[test]
    fn training_energy_bases() {
        let pack = format!(
            "{PACK}[training.measured]\nenergy_mwh = 100\ngpu_hours = 5\nhardware = \"h100\"\nsite = \"own\"\n\
             [training.estimated]\ngpu_hours = 1460000\nhardware = \"h100\"\nsite = \"bare\"\n\
             [training.on_site_pue]\ngpu_hours = 1000\nhardware = \"h100\"\nsite = \"own\"\n\
             [training.unknown]\ngpu_hours = 1000\nhardware = \"tpu\"\n"
        );
        let r = resolve(&pack);
        let t = &r.training["measured"];
        assert_eq!(t.energy, TrainingEnergy::Measured { mwh: 100.0 });
        assert_eq!((t.co2e_location_t, t.co2e_market_t), (Some(38.0), Some(0.0)), "instrument 0");
        let t = &r.training["estimated"];
        let pue = Setting { value: 1.3, origin: Origin::Defaults };
        assert_eq!(t.energy, TrainingEnergy::Estimated { mwh: 1460000.0 * 700.0 * 1.3 / 1e6, tdp_w: 700.0, pue });
        let e = t.energy.mwh().unwrap();
        assert_eq!(t.co2e_location_t, Some(e * 50.0 / 1000.0));
        assert_eq!(t.co2e_market_t, t.co2e_location_t, "no instrument: the location factor");
        let t = &r.training["on_site_pue"];
        assert!(matches!(
            t.energy,
            TrainingEnergy::Estimated { pue: Setting { value: 1.1, origin: Origin::Site }, .. }
        ));
        let t = &r.training["unknown"];
        assert_eq!(
            (t.energy, t.tdp_w, t.co2e_location_t, t.co2e_market_t),
            (TrainingEnergy::Unknown, None, None, None)
        );
        assert_eq!(t.site_method, r.unknown_site, "no site: priced with the defaults");
    }

    #[test]
    fn market_instrument_without_a_location_factor_still_prices_training() {
        let r = resolve(
            "[hardware.h]\ntdp_w = 500\n[sites.s]\nmarket_g_per_kwh = 20\n\
             [training.m]\nenergy_mwh = 10\nsite = \"s\"\nhardware = \"h\"",
        );
        let t = &r.training["m"];
        assert_eq!((t.co2e_location_t, t.co2e_market_t, t.tdp_w), (None, Some(0.2), Some(500.0)));
    }
}
