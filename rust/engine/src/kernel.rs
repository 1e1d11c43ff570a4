//! The methodology applied to one record (methodology sections 3 to 7), and the sink that
//! folds records into hourly cells.
//!
//! [`Methodology`] resolves the config and the grid once into dense tables indexed by small
//! integer ids (model, site, zone, hardware share one id space of interned strings), so the
//! per-record work is array indexing and arithmetic. Strings the config does not know (an
//! unknown model still needs an aggregate key) get ids from a shared interner; each
//! [`AggregateSink`] keeps a thread-local cache in front of it, so the lock is taken only the
//! first time a thread sees a new string.
//!
//! One formula, one place: [`Methodology::estimate_acc`] is used by the sink and by
//! [`Methodology::accelerator_energy_wh`] alike.
//!
//! Section 10 work happens where a string is first met, never per record: a raw model, site or
//! hardware name is resolved through the pack's aliases (and a zone against the grid's zones,
//! ignoring case) when it is interned, and a status value is classified when a worker first
//! sees it. Per record, the caches hand back the resolved id and the outcome.

use crate::aggregate::{Aggregate, Measures, HAS_CO2E, HAS_ENERGY, HAS_FLOPS, HAS_GPU_HOURS};
use crate::attribution::{Attribution, Claim};
use crate::cell::{CellKey, Method, NO_ID};
use crate::cells::Cells;
use crate::config::{num_text, Config, Uncertainty, G_PER_KWH};
use crate::counters::NodeEnergy;
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::interner::{Interner, NameChange, NameEntry, StatusEntry, StrCache, NONE_IDX, STATUS_SLOT, UNKNOWN_ID};
use crate::spill::SpillStore;
// The binding reads the cap through the kernel, which owns the interner.
pub use crate::interner::DEFAULT_MAX_NAMES;
use crate::names::{NameKind, Resolver};
use crate::outcome::{record_outcome, Outcome, OutcomeRules};
use crate::record::{Loc, Record, RecordSink};
use crate::resolved::{MarketFactor, ResolvedSite};
use crate::rows::Rows;
use crate::time::{format_us, hour_of};
use arrow_array::RecordBatch;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

mod columnar;

#[derive(Debug, Clone, Copy)]
struct HwRes {
    tdp_w: f64,
    idle_w: f64,
    peak_tflops: Option<f64>,
    /// The hardware's own `utilization` (a calibrated one): used where the site sets none.
    utilization: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Coef {
    /// Wh per token (the pack's per-1000 figures divided once here).
    wh_per_input: f64,
    wh_per_output: f64,
    uncertainty: f64,
}

/// A model while the tables are built: id, active parameters, (hardware id or `"*"`, coefficient).
type ModelEntry = (u32, Option<f64>, Vec<(Option<u32>, Coef)>);

#[derive(Debug, Clone)]
struct ModelRes {
    /// Parameters active per token (not billions).
    active_params: Option<f64>,
    /// The model's own entries by hardware id, sorted by id (a model lists a few hardware):
    /// proportional to the pack's entries. A table per model indexed by every id of the pack
    /// made a pack of 10k models take 3.3 GB (models x names).
    coef_by_hw: Box<[(u32, Coef)]>,
    /// The `"*"` entry, for any other hardware (and no hardware at all).
    star: Option<Coef>,
}

impl ModelRes {
    #[inline]
    fn coef(&self, hw: u32) -> Option<Coef> {
        let e = &self.coef_by_hw;
        // Nearly always one or two entries: a scan beats a binary search there.
        let found = if e.len() <= 8 {
            e.iter().find(|(h, _)| *h == hw)
        } else {
            e.binary_search_by_key(&hw, |(h, _)| *h).ok().map(|i| &e[i])
        };
        found.map_or(self.star, |(_, c)| Some(*c))
    }
}

/// A site of the resolved pack (`resolved.rs`) in kernel form: names as ids, overheads folded
/// into one factor. Also what an unknown or absent site resolves to.
#[derive(Debug, Clone, Copy)]
struct SiteRes {
    zone: u32,
    hardware: u32,
    /// Accelerators per replica where the record gives none.
    gpus: i64,
    pue: f64,
    /// `1 + host_overhead + idle_overhead`.
    it_factor: f64,
    market: MarketFactor,
    fallback: Option<f64>,
    utilization: f64,
    /// Whether `utilization` is the site's own (it then wins over the hardware's).
    own_utilization: bool,
    concurrency: f64,
    mfu: f64,
}

/// The numbers of one valid record that the formula reads: a [`Record`] without its names
/// (the sink turns those into ids) and with its hour. The per-record path fills it from a
/// [`Record`], the columnar path ([`columnar`]) from the chunk's columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// [`hour_of`] the record's timestamp.
    pub hour: i64,
    pub gpus: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub duration_s: Option<f64>,
    pub energy_j: Option<f64>,
    pub weight: f64,
    /// The record's end time (for attributed energy) and its metered node ([`NO_ID`]: none).
    pub ts_us: i64,
    pub node: u32,
}

/// The claim of a record on its node's intervals: one function for both passes.
#[inline]
fn claim_of(ts_us: i64, duration_s: Option<f64>, gpus: f64, output_tokens: Option<i64>, weight: f64) -> Claim {
    Claim { ts_us, duration_s, gpus, output_tokens: output_tokens.unwrap_or(0) as f64, weight }
}

/// What one record gives its hourly cell ([`Methodology::contribution`]), plus what a
/// per-record output needs of the same computation: the method's relative uncertainty and the
/// accelerator count the formula used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution {
    /// The cell's key (source left 0: the sink sets it).
    pub key: CellKey,
    /// The weighted measures the cell receives.
    pub measures: Measures,
    /// Facility energy (kWh) priced on a grid hour flagged estimated: a run-level count.
    pub estimated_kwh: f64,
    /// The method's relative half-width (section 2's `[uncertainty]`, or the coefficient's).
    pub uncertainty: f64,
    /// Accelerators: the record's, else the site's (whose default is 1).
    pub gpus: i64,
}

/// Where a record's grid intensity came from (methodology section 5).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Intensity {
    /// The grid's value for the hour, and whether the grid flags that hour estimated.
    Hourly(f64, bool),
    /// The zone's same-month mean or the site's `fallback_g_per_kwh`.
    Fallback(f64),
    Unresolved,
}

/// The config and grid resolved into id-indexed tables. Shared by all worker threads.
#[derive(Debug)]
pub struct Methodology {
    config: Arc<Config>,
    grid: Arc<Grid>,
    /// Strings of the config and the grid: ids `0..fixed_names.len()`, never changes.
    fixed: FxHashMap<Box<str>, u32>,
    fixed_names: Vec<Arc<str>>,
    /// Strings met in the data: ids from `fixed_names.len()` on.
    extra: Mutex<Interner>,
    hardware: Vec<Option<HwRes>>,
    models: Vec<Option<ModelRes>>,
    sites: Vec<Option<SiteRes>>,
    /// Zone id -> grid zone index (`u32::MAX` when the grid has none).
    zone_series: Vec<u32>,
    default_site: SiteRes,
    uncertainty: Uncertainty,
    resolver: Resolver,
    outcomes: OutcomeRules,
    /// Lower-cased grid zone -> the grid's own spelling (the first, if several differ only in
    /// case), for zones that match only when case is ignored.
    grid_zone_ci: FxHashMap<String, Arc<str>>,
    /// The site of records that carry neither site nor zone (`[defaults] site`, `--site`);
    /// `NO_ID` when there is none.
    locate_site: u32,
    /// Cap on the distinct values of each name column and of status ([`DEFAULT_MAX_NAMES`]).
    max_names: usize,
    /// Metered node energy with the first pass's denominators (section 10, `attributed`).
    attribution: Option<Arc<Attribution>>,
}

impl Methodology {
    pub fn new(config: Arc<Config>, grid: Arc<Grid>) -> Result<Self> {
        let mut fixed: FxHashMap<Box<str>, u32> = FxHashMap::default();
        let mut fixed_names: Vec<Arc<str>> = Vec::new();
        let mut id = |s: &str| -> u32 {
            if let Some(&i) = fixed.get(s) {
                return i;
            }
            let i = fixed_names.len() as u32;
            fixed.insert(s.into(), i);
            fixed_names.push(s.into());
            i
        };
        // Intern every string the tables are indexed by, so the tables are dense.
        let hw_ids: Vec<(u32, HwRes)> = config
            .hardware
            .iter()
            .map(|(n, h)| {
                let hw =
                    HwRes { tdp_w: h.tdp_w, idle_w: h.idle_w, peak_tflops: h.peak_tflops, utilization: h.utilization };
                (id(n), hw)
            })
            .collect();
        // Values come from the resolved pack: the kernel applies no default of its own.
        let resolved = config.resolve();
        let model_entries: Vec<ModelEntry> = resolved
            .models
            .iter()
            .map(|(n, m)| {
                let coefs = m
                    .coefficients
                    .iter()
                    .map(|c| {
                        let hw = if c.hardware == "*" { None } else { Some(id(&c.hardware)) };
                        let coef = Coef {
                            wh_per_input: c.wh_per_1k_input / 1000.0,
                            wh_per_output: c.wh_per_1k_output / 1000.0,
                            uncertainty: c.uncertainty,
                        };
                        (hw, coef)
                    })
                    .collect();
                (id(n), m.active_params_b.map(|b| b * 1e9), coefs)
            })
            .collect();
        let grid_zone_ci = grid_zones_ignoring_case(&grid);
        let mut warnings = Vec::new();
        let site_entries: Vec<(u32, SiteRes)> = resolved
            .sites
            .iter()
            .map(|(n, s)| {
                let zone = s.zone.as_deref().map(|z| {
                    let r = resolve_zone(&grid, &grid_zone_ci, z);
                    if r != z {
                        warnings.push(format!("zone '{z}' of site {n} matched grid zone '{r}' ignoring case"));
                    }
                    r
                });
                let zone = zone.as_deref().map_or(NO_ID, &mut id);
                let hardware = s.hardware.as_deref().map_or(NO_ID, &mut id);
                (id(n), SiteRes::new(s, zone, hardware))
            })
            .collect();
        let zone_entries: Vec<(u32, u32)> = grid.zones().enumerate().map(|(i, z)| (id(z), i as u32)).collect();

        let n = fixed_names.len();
        let mut hardware = vec![None; n];
        for (i, h) in hw_ids {
            hardware[i as usize] = Some(h);
        }
        let mut models = vec![None; n];
        for (i, active_params, coefs) in model_entries {
            let star = coefs.iter().find(|(hw, _)| hw.is_none()).map(|(_, c)| *c);
            // The pack refuses a second entry for a hardware, so the ids are distinct.
            let mut coef_by_hw: Vec<(u32, Coef)> = coefs.into_iter().filter_map(|(hw, c)| Some((hw?, c))).collect();
            coef_by_hw.sort_by_key(|(hw, _)| *hw);
            models[i as usize] = Some(ModelRes { active_params, coef_by_hw: coef_by_hw.into(), star });
        }
        let mut sites = vec![None; n];
        for (i, s) in site_entries {
            sites[i as usize] = Some(s);
        }
        let mut zone_series = vec![u32::MAX; n];
        for (i, z) in zone_entries {
            zone_series[i as usize] = z;
        }
        let default_site = SiteRes::new(&resolved.unknown_site, NO_ID, NO_ID);
        let uncertainty = config.uncertainty;
        let locate_site = match &config.default_site {
            Some(s) => *fixed.get(s.as_str()).expect("a site of the pack is interned"),
            None => NO_ID,
        };
        // Grid intensities are held to the pack's bound for intensities: with it, and the pack
        // and record bounds, no emissions sum can overflow (the arithmetic is in record.rs).
        if let Some((zone, hour, v)) = grid.rows().find(|&(_, _, v)| !G_PER_KWH.contains(v)) {
            return Err(Error::Usage(format!(
                "grid: zone {zone} at {}: {} gCO2e/kWh is outside [{}, {}] ({}); check the file's unit",
                format_us(hour * 3_600_000_000),
                num_text(v),
                num_text(G_PER_KWH.min),
                num_text(G_PER_KWH.max),
                G_PER_KWH.why
            )));
        }
        Ok(Methodology {
            resolver: Resolver::new(&config),
            max_names: DEFAULT_MAX_NAMES,
            outcomes: OutcomeRules::new(&config.outcomes),
            grid_zone_ci,
            locate_site,
            config,
            grid,
            fixed,
            fixed_names,
            extra: Mutex::new(Interner { config_warnings: warnings, ..Interner::default() }),
            hardware,
            models,
            sites,
            zone_series,
            default_site,
            uncertainty,
            attribution: None,
        })
    }

    /// Attribute metered node energy to the records with a `node` it covers (second pass).
    pub fn set_attribution(&mut self, a: Arc<Attribution>) {
        self.attribution = Some(a);
    }

    pub fn attribution(&self) -> Option<&Arc<Attribution>> {
        self.attribution.as_ref()
    }

    /// The metered node of a record's `node` value, `NO_ID` when none is metered (or there is
    /// no attribution in this run): one hash look-up, only in runs with node energy.
    #[inline]
    fn node_id(&self, node: Option<&str>) -> u32 {
        match (&self.attribution, node) {
            (Some(a), Some(n)) => a.energy.node_id(n).unwrap_or(NO_ID),
            _ => NO_ID,
        }
    }

    /// A record's node and claim as the second pass's [`Self::contribution`] computes them
    /// (first pass of attribution): `None` for records that take no share (no metered node,
    /// measured `energy_j`, cached). Sites resolve as in an ingest, for the site's `gpus`.
    pub fn attribution_claim(&self, rec: &Record<'_>, energy: &NodeEnergy) -> Option<(u32, Claim)> {
        let node = energy.node_id(rec.node?)?;
        if rec.energy_j.is_some() || self.outcome(rec.status, rec.cache_hit) == Outcome::Cached {
            return None;
        }
        let mut site_id = rec.site.map_or(NO_ID, |s| self.intern_name(NameKind::Site, s).id);
        let zone = rec.zone.map_or(NO_ID, |z| self.intern_name(NameKind::Zone, z).id);
        if site_id == NO_ID && zone == NO_ID {
            site_id = self.locate_site;
        }
        let gpus = rec.gpus.unwrap_or(self.site(site_id).gpus) as f64;
        Some((node, claim_of(rec.ts_us, rec.duration_s, gpus, rec.output_tokens, rec.weight)))
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn grid(&self) -> &Arc<Grid> {
        &self.grid
    }

    /// The id of a string, interning it if new. Takes the lock only for strings outside the
    /// config and grid; callers on the hot path cache the result (see [`AggregateSink`]).
    pub fn intern(&self, s: &str) -> u32 {
        self.intern_in(None, s)
    }

    /// [`Self::intern`], counting a new string against the cap of column `slot` ([`CAPPED`]);
    /// past the cap nothing more is stored, the overflow is noted and [`UNKNOWN_ID`] returned
    /// (the run stops at the next [`Self::check_names`], before any cell leaves the sink).
    fn intern_in(&self, slot: Option<usize>, s: &str) -> u32 {
        if let Some(&i) = self.fixed.get(s) {
            return i;
        }
        let mut ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&i) = ex.map.get(s) {
            return i;
        }
        if let Some(slot) = slot {
            if !ex.count(slot, self.max_names) {
                return UNKNOWN_ID;
            }
        }
        let i = (self.fixed_names.len() + ex.names.len()) as u32;
        let a: Arc<str> = s.into();
        ex.map.insert(a.clone(), i);
        ex.names.push(a);
        i
    }

    /// Cap the distinct values of each name column (and status) in a run; see
    /// [`DEFAULT_MAX_NAMES`]. At least 1.
    pub fn set_max_names(&mut self, max_names: usize) {
        self.max_names = max_names.max(1);
    }

    /// An error once a column has passed the cap on distinct values: one line naming the
    /// column, the cap, the likely cause and the flag that raises it.
    pub fn check_names(&self) -> Result<()> {
        let ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        match ex.overflow {
            None => Ok(()),
            Some(col) => Err(Error::Usage(format!(
                "column {col}: more than {} distinct values in this run (--max-names); a per-request value \
                 such as a request id is probably mapped as {col}: check --column/--preset and the pack's \
                 [columns], or raise --max-names if the fleet really has that many",
                self.max_names
            ))),
        }
    }

    /// Every interned string so far, indexed by id (for turning cells into a batch).
    pub fn names(&self) -> Vec<Arc<str>> {
        let ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        self.fixed_names.iter().chain(ex.names.iter()).cloned().collect()
    }

    /// The string of an id ([`NO_ID`] and unknown ids: `None`). Takes the lock for strings
    /// met in the data: callers cache the result per id (the per-record sink does).
    pub fn name(&self, id: u32) -> Option<Arc<str>> {
        if let Some(s) = self.fixed_names.get(id as usize) {
            return Some(s.clone());
        }
        let ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        ex.names.get((id as usize).checked_sub(self.fixed_names.len())?).cloned()
    }

    /// Locate records that carry neither site nor zone at `site` (`--site`, overriding the
    /// pack's `[defaults] site`). The site must be one the pack defines.
    pub fn set_default_site(&mut self, site: &str) -> Result<()> {
        if !self.config.sites.contains_key(site) {
            let known: Vec<&str> = self.config.sites.keys().map(|s| s.as_str()).collect();
            // Names are compared exactly (as the ledger keeps them): say so when only the case differs.
            let same_case = known.iter().find(|k| k.to_lowercase() == site.to_lowercase());
            let hint = match same_case {
                _ if known.is_empty() => "the pack defines no sites; add [sites.\"NAME\"] to it".to_string(),
                Some(right) => {
                    format!("names are case-sensitive: did you mean '{right}'? its sites: {}", known.join(", "))
                }
                None => format!("its sites: {}", known.join(", ")),
            };
            return Err(Error::Usage(format!(
                "--site {site}: not a site of the methodology pack {} ({hint})",
                self.config.origin
            )));
        }
        self.locate_site = self.fixed[site];
        Ok(())
    }

    /// The resolved name of a raw one (aliases for models, hardware and sites; the grid's
    /// spelling for a zone that matches only ignoring case).
    pub fn resolve_name<'a>(&'a self, kind: NameKind, raw: &'a str) -> Cow<'a, str> {
        match kind {
            NameKind::Zone => resolve_zone(&self.grid, &self.grid_zone_ci, raw),
            _ => self.resolver.resolve(&self.config, kind, raw),
        }
    }

    /// Resolve and intern a raw name of one kind: once per distinct name per worker (see
    /// [`AggregateSink`]). A changed name is registered so the run can report it per source.
    pub fn intern_name(&self, kind: NameKind, raw: &str) -> NameEntry {
        let resolved = self.resolve_name(kind, raw);
        let id = self.intern_in(Some(kind as usize), &resolved);
        if resolved == raw || id == UNKNOWN_ID {
            return NameEntry { id, changed: NONE_IDX };
        }
        let mut ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        let key = (kind, Box::<str>::from(raw));
        if let Some(&i) = ex.change_index.get(&key) {
            return NameEntry { id, changed: i };
        }
        // Every raw name an alias pattern maps is remembered (per source), so it counts too.
        if !ex.count(kind as usize, self.max_names) {
            return NameEntry { id: UNKNOWN_ID, changed: NONE_IDX };
        }
        let i = ex.changes.len() as u32;
        ex.change_index.insert(key, i);
        ex.changes.push(NameChange { kind, raw: raw.into(), resolved: resolved.as_ref().into() });
        if kind == NameKind::Zone {
            ex.data_warnings.push(format!("zone '{raw}' in the logs matched grid zone '{resolved}' ignoring case"));
        }
        NameEntry { id, changed: i }
    }

    /// Classify a status value (once per distinct value per worker).
    pub fn status_entry(&self, status: &str) -> StatusEntry {
        let c = self.outcomes.classify(status);
        if c.recognised {
            return StatusEntry { outcome: c.outcome, unrecognised: NONE_IDX };
        }
        let mut ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        let i = match ex.unrecognised_index.get(status).copied() {
            Some(i) => i,
            None if !ex.count(STATUS_SLOT, self.max_names) => NONE_IDX,
            None => {
                let i = ex.unrecognised.len() as u32;
                ex.unrecognised_index.insert(status.into(), i);
                ex.unrecognised.push(status.into());
                i
            }
        };
        StatusEntry { outcome: c.outcome, unrecognised: i }
    }

    /// The name changes registered so far, indexed by [`NameEntry::changed`].
    pub fn name_changes(&self) -> Vec<NameChange> {
        self.extra.lock().unwrap_or_else(|p| p.into_inner()).changes.clone()
    }

    /// The run's warnings, in a stable order: zone case matches (the pack's sites, then the
    /// data's, sorted) and, given the per-value record counts of a run's sinks, the
    /// unrecognised status values, most frequent first.
    pub fn warnings(&self, unrecognised_counts: &[u64]) -> Vec<String> {
        let ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = ex.config_warnings.clone();
        let mut data = ex.data_warnings.clone();
        data.sort();
        out.extend(data);
        let mut statuses: Vec<(&str, u64)> = ex
            .unrecognised
            .iter()
            .enumerate()
            .map(|(i, s)| (&**s, unrecognised_counts.get(i).copied().unwrap_or(0)))
            .filter(|&(_, n)| n > 0)
            .collect();
        statuses.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (s, n) in statuses {
            let records = if n == 1 { "record" } else { "records" };
            out.push(format!(
                "status '{s}' ({n} {records}) not recognised, counted as ok; list it under [outcomes] ok, failed or cached"
            ));
        }
        out
    }

    /// The run's warning about energy priced on grid hours flagged estimated (methodology
    /// section 5 takes the grid's value as is; the share says how much of the result rests on
    /// estimated hours). `None` when no energy was.
    pub fn estimated_warning(&self, estimated_kwh: f64, energy_kwh: f64) -> Option<String> {
        if estimated_kwh <= 0.0 || energy_kwh <= 0.0 {
            return None;
        }
        let share = 100.0 * estimated_kwh / energy_kwh;
        // Never "0.0%" for a share that is not zero, never "100.0%" for one that is not all.
        let pct = if share < 0.1 {
            "<0.1".to_string()
        } else if share > 99.9 && estimated_kwh < energy_kwh {
            ">99.9".to_string()
        } else {
            format!("{share:.1}")
        };
        let source = self.grid.estimated_source().unwrap_or("estimated grid values");
        Some(format!(
            "{pct}% of energy ({} kWh) was priced on grid hours flagged estimated ({source})",
            significant(estimated_kwh, 4)
        ))
    }

    /// Id of a string without interning it: unknown strings map to an id no table has.
    fn lookup(&self, s: &str) -> u32 {
        if let Some(&i) = self.fixed.get(s) {
            return i;
        }
        let ex = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        ex.map.get(s).copied().unwrap_or(UNKNOWN_ID)
    }

    #[inline]
    fn site(&self, id: u32) -> &SiteRes {
        match self.sites.get(id as usize) {
            Some(Some(s)) => s,
            _ => &self.default_site,
        }
    }

    #[inline]
    fn model(&self, id: u32) -> Option<&ModelRes> {
        self.models.get(id as usize).and_then(|m| m.as_ref())
    }

    #[inline]
    fn hw(&self, id: u32) -> Option<&HwRes> {
        self.hardware.get(id as usize).and_then(|h| h.as_ref())
    }

    /// Accelerator energy E_acc in Wh, the method, and the method's relative uncertainty
    /// (methodology section 3: the first method that applies wins). `hw` is the effective
    /// hardware (record's, else the site's), `gpus` the effective count.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn estimate_acc(
        &self,
        model: Option<&ModelRes>,
        hw: u32,
        site: &SiteRes,
        input_tokens: Option<i64>,
        output_tokens: Option<i64>,
        duration_s: Option<f64>,
        energy_j: Option<f64>,
        gpus: f64,
    ) -> (Option<f64>, Method, f64) {
        let u = &self.uncertainty;
        if let Some(j) = energy_j {
            return (Some(j / 3600.0), Method::Measured, u.measured);
        }
        let has_tokens = input_tokens.is_some() || output_tokens.is_some();
        let (tin, tout) = (input_tokens.unwrap_or(0) as f64, output_tokens.unwrap_or(0) as f64);
        if has_tokens {
            if let Some(c) = model.and_then(|m| m.coef(hw)) {
                return (Some(tin * c.wh_per_input + tout * c.wh_per_output), Method::Tokens, c.uncertainty);
            }
        }
        let hardware = self.hw(hw);
        if let (Some(d), Some(h)) = (duration_s, hardware) {
            // A site's own utilization, else the hardware's, else [defaults] (methodology 10).
            let utilization = match h.utilization {
                Some(u) if !site.own_utilization => u,
                _ => site.utilization,
            };
            let p = h.idle_w + utilization * (h.tdp_w - h.idle_w);
            return (Some(d * gpus * p / site.concurrency / 3600.0), Method::GpuTime, u.gpu_time);
        }
        if has_tokens {
            if let (Some(n), Some(h)) = (model.and_then(|m| m.active_params), hardware) {
                if let Some(peak) = h.peak_tflops {
                    let flops = inference_flops(n, tin, tout);
                    let seconds = flops / (peak * 1e12 * site.mfu);
                    return (Some(seconds * h.tdp_w / 3600.0), Method::Flops, u.flops);
                }
            }
        }
        (None, Method::None, 0.0)
    }

    /// Grid intensity by the lookup order of methodology section 5.
    #[inline]
    fn intensity(&self, zone: u32, hour: i64, site: &SiteRes) -> Intensity {
        if let Some(&z) = self.zone_series.get(zone as usize) {
            if z != u32::MAX {
                if let Some((v, estimated)) = self.grid.lookup(z as usize, hour) {
                    return Intensity::Hourly(v, estimated);
                }
                if let Some(v) = self.grid.month_mean(z as usize, hour) {
                    return Intensity::Fallback(v);
                }
            }
        }
        match site.fallback {
            Some(v) => Intensity::Fallback(v),
            None => Intensity::Unresolved,
        }
    }

    /// A request's outcome (section 10) from its status value and cache flag, as an ingest
    /// reads them (the pack's `[outcomes]` first, then the built-in lists; failed wins over
    /// cached). An unrecognised status counts as ok; unlike a run, nothing is noted for a
    /// warning (a what-if query has no run summary to carry one).
    pub fn outcome(&self, status: Option<&str>, cache_hit: Option<bool>) -> Outcome {
        record_outcome(status.map_or(Outcome::Ok, |s| self.outcomes.classify(s).outcome), cache_hit)
    }

    /// Accelerator energy (Wh) of one request and its method, exactly as an ingest computes
    /// it (for what-if queries). Unknown names behave as in an ingest: defaults, `"*"`, none.
    /// A cached request (see [`Self::outcome`]) is a known zero with method `cached`, as its
    /// contribution to a cell is; a failed one is estimated like any other.
    #[allow(clippy::too_many_arguments)]
    pub fn accelerator_energy_wh(
        &self,
        outcome: Outcome,
        model: &str,
        hardware: Option<&str>,
        site: Option<&str>,
        input_tokens: Option<i64>,
        output_tokens: Option<i64>,
        duration_s: Option<f64>,
        energy_j: Option<f64>,
        gpus: Option<i64>,
    ) -> (Option<f64>, Method) {
        if outcome == Outcome::Cached {
            return (Some(0.0), Method::Cached);
        }
        // Names resolve as in an ingest (aliases), so a what-if query can use raw log names.
        let site = self.site(site.map_or(NO_ID, |s| self.lookup(&self.resolve_name(NameKind::Site, s))));
        let hw = hardware.map_or(site.hardware, |h| self.lookup(&self.resolve_name(NameKind::Hardware, h)));
        let gpus = gpus.unwrap_or(site.gpus) as f64;
        let model = self.model(self.lookup(&self.resolve_name(NameKind::Model, model)));
        let (e, m, _) = self.estimate_acc(model, hw, site, input_tokens, output_tokens, duration_s, energy_j, gpus);
        (e, m)
    }

    /// One record's key (minus source), weighted contribution (methodology sections 3-7), and
    /// the part of its energy (kWh) priced on a grid hour flagged estimated: a run-level count,
    /// not a ledger column. Both ways into the sink (a record at a time, Arrow rows column by
    /// column) call this with the record's numbers as [`Usage`].
    #[inline]
    fn contribution(&self, rec: &Usage, ids: [u32; 4], outcome: Outcome) -> Contribution {
        let [model_id, mut site_id, rec_zone, rec_hw] = ids;
        // Section 10: a record with neither site nor zone is located at the default site.
        if site_id == NO_ID && rec_zone == NO_ID {
            site_id = self.locate_site;
        }
        let site = self.site(site_id);
        // The record's zone wins for the grid; its hardware wins over the site's.
        let zone = if rec_zone != NO_ID { rec_zone } else { site.zone };
        let hw = if rec_hw != NO_ID { rec_hw } else { site.hardware };
        let hour = rec.hour;
        let w = rec.weight;
        let has_tokens = rec.input_tokens.is_some() || rec.output_tokens.is_some();
        let (tin, tout) = (rec.input_tokens.unwrap_or(0) as f64, rec.output_tokens.unwrap_or(0) as f64);
        let mut m =
            Measures { records: 1, requests: w, input_tokens: tin * w, output_tokens: tout * w, ..Measures::default() };
        let gpus_n = rec.gpus.unwrap_or(site.gpus);
        if outcome == Outcome::Cached {
            // Section 10: served from a cache, the model did not run. Energy and emissions are
            // a known zero (not null, not unestimated); tokens count (they were served); flops
            // and gpu_hours get no contribution (null for a cell of cached records only, so a
            // model's otherwise unknown flops do not turn into a false zero).
            m.cached_requests = w;
            m.flags = HAS_ENERGY | HAS_CO2E;
            let key =
                CellKey { source: 0, hour, model: model_id, site: site_id, zone, hardware: hw, method: Method::Cached };
            return Contribution { key, measures: m, estimated_kwh: 0.0, uncertainty: 0.0, gpus: gpus_n };
        }
        if outcome == Outcome::Failed {
            // Estimated like any record: a failed request that carries tokens or a duration used energy.
            m.failed_requests = w;
        }
        let gpus = gpus_n as f64;
        let model = self.model(model_id);
        let mut estimated_kwh = 0.0;
        // Section 10: a share of metered node energy ranks after measured, before tokens.
        let attributed = match (&self.attribution, rec.node, rec.energy_j) {
            (Some(a), node, None) if node != NO_ID => a
                .share_wh(node, &claim_of(rec.ts_us, rec.duration_s, gpus, rec.output_tokens, rec.weight))
                .map(|wh| (Some(wh), Method::Attributed, self.uncertainty.attributed)),
            _ => None,
        };
        let (e_acc, method, u) = attributed.unwrap_or_else(|| {
            self.estimate_acc(model, hw, site, rec.input_tokens, rec.output_tokens, rec.duration_s, rec.energy_j, gpus)
        });
        // Section 6: computational resources, whatever the energy method.
        if let (true, Some(n)) = (has_tokens, model.and_then(|m| m.active_params)) {
            m.flops = inference_flops(n, tin, tout) * w;
            m.flags |= HAS_FLOPS;
        }
        if let Some(d) = rec.duration_s {
            m.gpu_hours = d * gpus / 3600.0 * w;
            m.flags |= HAS_GPU_HOURS;
        }
        match e_acc {
            None => m.unestimated_requests = w,
            Some(acc_wh) => {
                // Section 4; the kWh columns are Wh / 1000.
                let acc = acc_wh / 1000.0 * w;
                let it = acc * site.it_factor;
                let fac = it * site.pue;
                m.energy_acc_kwh = acc;
                m.energy_it_kwh = it;
                m.energy_kwh = fac;
                m.energy_kwh_low = (fac * (1.0 - u)).max(0.0);
                m.energy_kwh_high = fac * (1.0 + u);
                m.flags |= HAS_ENERGY;
                let loc = match self.intensity(zone, hour, site) {
                    Intensity::Hourly(v, estimated) => {
                        if estimated {
                            estimated_kwh = fac;
                        }
                        Some(v)
                    }
                    Intensity::Fallback(v) => {
                        m.fallback_kwh = fac;
                        Some(v)
                    }
                    Intensity::Unresolved => {
                        m.unresolved_kwh = fac;
                        None
                    }
                };
                if let Some(i_loc) = loc {
                    m.co2e_location_kg = fac * i_loc / 1000.0;
                    m.co2e_market_kg = fac * site.market.g_per_kwh(i_loc) / 1000.0;
                    m.flags |= HAS_CO2E;
                }
            }
        }
        // The record and pack bounds make every contribution finite and below 1e40 (record.rs);
        // the aggregate checks its cells again before they leave the engine.
        debug_assert!(m.first_non_finite().is_none(), "non-finite contribution: {m:?}");
        let key = CellKey { source: 0, hour, model: model_id, site: site_id, zone, hardware: hw, method };
        Contribution { key, measures: m, estimated_kwh, uncertainty: u, gpus: gpus_n }
    }
}

/// Inference compute of one request (methodology section 6): two FLOPs per active parameter
/// per token. Used by the flops energy method and by the `flops` measure alike.
#[inline]
fn inference_flops(active_params: f64, input_tokens: f64, output_tokens: f64) -> f64 {
    2.0 * active_params * (input_tokens + output_tokens)
}

impl SiteRes {
    fn new(s: &ResolvedSite, zone: u32, hardware: u32) -> SiteRes {
        SiteRes {
            zone,
            hardware,
            gpus: s.gpus,
            pue: s.pue.value,
            it_factor: 1.0 + s.host_overhead.value + s.idle_overhead.value,
            market: s.market,
            fallback: s.fallback_g_per_kwh,
            utilization: s.utilization.value,
            own_utilization: s.utilization.origin == crate::resolved::Origin::Site,
            concurrency: s.concurrency.value,
            mfu: s.mfu.value,
        }
    }
}

/// `v` with `digits` significant digits (at least none after the point), for messages.
fn significant(v: f64, digits: i32) -> String {
    let magnitude = if v > 0.0 { v.log10().floor() as i32 } else { 0 };
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

/// Lower-cased grid zone -> the grid's spelling (the first in grid order wins a case clash).
fn grid_zones_ignoring_case(grid: &Grid) -> FxHashMap<String, Arc<str>> {
    let mut m: FxHashMap<String, Arc<str>> = FxHashMap::default();
    for z in grid.zones() {
        m.entry(z.to_lowercase()).or_insert_with(|| z.into());
    }
    m
}

/// A zone as the grid spells it: exact match first, else a match ignoring case, else as is.
fn resolve_zone<'a>(grid: &Grid, ci: &FxHashMap<String, Arc<str>>, raw: &'a str) -> Cow<'a, str> {
    if grid.zone_index(raw).is_some() {
        return Cow::Borrowed(raw);
    }
    match ci.get(&raw.to_lowercase()) {
        Some(z) => Cow::Owned(z.to_string()),
        None => Cow::Borrowed(raw),
    }
}

/// The four name fields in [`NameKind`] order.
const NAME_KINDS: [NameKind; 4] = [NameKind::Model, NameKind::Site, NameKind::Zone, NameKind::Hardware];

/// Where a valid record came from and what it carries besides the numbers the formula reads:
/// what a [`Tap`] needs to write the record's own row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordRef<'a> {
    /// Index into the run's source names, and the line (text) or 0-based row (Arrow), as in
    /// the rejects output.
    pub file: u32,
    pub line: u64,
    pub ts_us: i64,
    pub request_id: Option<&'a str>,
}

/// Sees every record's contribution as the aggregate sink folds it into its cell: the hook of
/// per-record output (`per_record.rs`), so a record's row and its cell's sums come from one
/// [`Methodology::contribution`] call. [`NoTap`] (the default) compiles to nothing.
pub trait Tap: Send {
    /// False for [`NoTap`]: the sink then builds no [`RecordRef`] at all.
    const ON: bool;
    fn contribution(&mut self, m: &Methodology, rec: &RecordRef<'_>, usage: &Usage, c: &Contribution);
}

/// The aggregate sink's default: no per-record output.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTap;

impl Tap for NoTap {
    const ON: bool = false;
    #[inline(always)]
    fn contribution(&mut self, _: &Methodology, _: &RecordRef<'_>, _: &Usage, _: &Contribution) {}
}

/// Folds records into hourly cells; one per worker thread, merged at the end of a scan.
pub struct AggregateSink<'m, T: Tap = NoTap> {
    m: &'m Methodology,
    source_names: Arc<Vec<String>>,
    spill: Option<&'m SpillStore>,
    budget_cells: usize,
    agg: Aggregate,
    /// Other workers' tables, taken over by [`RecordSink::merge`] as they are: the final
    /// merge (`cells.rs`) folds them partition by partition, so no table grows past the budget.
    held: Vec<Aggregate>,
    /// A spill that failed inside `record`, reported at the end of the block.
    spill_error: Option<Error>,
    /// One cache per name field: resolution is per kind (the id space is shared, aliases not).
    ids: [StrCache<NameEntry>; 4],
    statuses: StrCache<StatusEntry>,
    /// The columnar path's per-dictionary look-ups ([`columnar`]).
    memo: columnar::Memos,
    /// Records per unrecognised status value (indexed like [`Methodology::warnings`] expects).
    unrecognised: Vec<u64>,
    /// Records per (source file, name change): the raw names behind each source's cells.
    changed: FxHashMap<(u32, u32), u64>,
    /// Facility energy (kWh) of the records, and the part priced on estimated grid hours.
    energy_kwh: f64,
    estimated_kwh: f64,
    tap: T,
}

/// What a run's sinks found besides the cells: raw names resolution changed, per source, and
/// unrecognised status values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunNotes {
    /// (source file index, name change index) -> records.
    pub changed: FxHashMap<(u32, u32), u64>,
    /// Records per unrecognised status value.
    pub unrecognised: Vec<u64>,
    /// Facility energy (kWh) of the run's records, and the part of it priced on grid hours
    /// flagged estimated.
    pub energy_kwh: f64,
    pub estimated_kwh: f64,
}

impl<'m> AggregateSink<'m> {
    pub fn new(
        m: &'m Methodology,
        source_names: Arc<Vec<String>>,
        spill: Option<&'m SpillStore>,
        budget_cells: usize,
    ) -> Self {
        AggregateSink::with_tap(m, source_names, spill, budget_cells, NoTap)
    }
}

impl<'m, T: Tap> AggregateSink<'m, T> {
    /// [`AggregateSink::new`] with a tap that sees each record's contribution.
    pub fn with_tap(
        m: &'m Methodology,
        source_names: Arc<Vec<String>>,
        spill: Option<&'m SpillStore>,
        budget_cells: usize,
        tap: T,
    ) -> Self {
        AggregateSink {
            m,
            source_names,
            spill,
            budget_cells,
            agg: Aggregate::new(),
            held: Vec::new(),
            spill_error: None,
            ids: Default::default(),
            statuses: StrCache::default(),
            memo: Default::default(),
            unrecognised: Vec::new(),
            changed: FxHashMap::default(),
            energy_kwh: 0.0,
            estimated_kwh: 0.0,
            tap,
        }
    }

    /// The tap (per-record output), for its owner to drain between blocks.
    pub fn tap_mut(&mut self) -> &mut T {
        &mut self.tap
    }

    /// The methodology the sink applies.
    pub fn methodology(&self) -> &'m Methodology {
        self.m
    }

    /// This worker's cells still in memory (not spilled).
    pub fn aggregate(&self) -> &Aggregate {
        &self.agg
    }

    /// Every cell of the run, merged, as one batch (spilled cells included).
    pub fn finish(self) -> Result<RecordBatch> {
        self.finish_with_notes()?.0.to_record_batch()
    }

    /// The run's cells (in memory and spilled, not yet merged: see [`Cells`]), plus the name
    /// changes and unrecognised statuses counted.
    pub fn finish_with_notes(self) -> Result<(Cells, RunNotes)> {
        self.m.check_names()?;
        let runs = self.spill.map(|s| s.take_runs()).unwrap_or_default();
        let mut memory = self.held;
        memory.push(self.agg);
        let cells = Cells::new(memory, runs, self.m.names(), self.source_names);
        let notes = RunNotes {
            changed: self.changed,
            unrecognised: self.unrecognised,
            energy_kwh: self.energy_kwh,
            estimated_kwh: self.estimated_kwh,
        };
        Ok((cells, notes))
    }

    /// Called after each block and merge: stops the run at the cap on distinct names, or on a
    /// spill that failed within the block.
    fn spill_if_over_budget(&mut self) -> Result<()> {
        self.m.check_names()?;
        if let Some(e) = self.spill_error.take() {
            return Err(e);
        }
        Ok(())
    }

    /// Flushes the table to a spill run (with no spill store the table is unbounded). A
    /// failure is kept for the end of the block (`record` cannot fail) and stops flushing.
    #[cold]
    fn spill_now(&mut self) {
        let Some(sp) = self.spill else {
            self.budget_cells = usize::MAX;
            return;
        };
        match sp.spill(&self.agg) {
            Ok(()) => self.agg.clear(),
            Err(e) => {
                self.spill_error = Some(e);
                self.budget_cells = usize::MAX;
            }
        }
    }

    /// Counts for the rare records that carry a renamed name or an unrecognised status.
    #[cold]
    fn note(&mut self, file: u32, names: [NameEntry; 4], status: StatusEntry) {
        for e in names {
            if e.changed != NONE_IDX {
                *self.changed.entry((file, e.changed)).or_insert(0) += 1;
            }
        }
        if status.unrecognised != NONE_IDX {
            let i = status.unrecognised as usize;
            if self.unrecognised.len() <= i {
                self.unrecognised.resize(i + 1, 0);
            }
            self.unrecognised[i] += 1;
        }
    }

    /// Fold one valid record, its names and status resolved, into its cell: the one tail of
    /// both ways into the sink.
    /// `rec` is called only when the tap is on.
    #[inline]
    fn add<'r>(
        &mut self,
        file: u32,
        names: [NameEntry; 4],
        status: StatusEntry,
        cache_hit: Option<bool>,
        usage: &Usage,
        rec: impl FnOnce() -> RecordRef<'r>,
    ) {
        // One branch for the common case: every index is NONE_IDX (all bits set).
        if names[0].changed & names[1].changed & names[2].changed & names[3].changed & status.unrecognised != NONE_IDX {
            self.note(file, names, status);
        }
        let outcome = record_outcome(status.outcome, cache_hit);
        let ids = [names[0].id, names[1].id, names[2].id, names[3].id];
        let c = self.m.contribution(usage, ids, outcome);
        if T::ON {
            self.tap.contribution(self.m, &rec(), usage, &c);
        }
        let Contribution { mut key, measures, estimated_kwh, .. } = c;
        key.source = file;
        self.energy_kwh += measures.energy_kwh;
        self.estimated_kwh += estimated_kwh;
        self.agg.add(key, &measures);
        // Checked per record, not only per block: a Parquet row group is one block, and a
        // million records in random order would grow the table by a million cells.
        if self.agg.len() > self.budget_cells {
            self.spill_now();
        }
    }
}

impl<T: Tap> RecordSink for AggregateSink<'_, T> {
    #[inline]
    fn record(&mut self, rec: &Record<'_>, loc: Loc) {
        let m = self.m;
        let [cm, cs, cz, ch] = &mut self.ids;
        let absent = NameEntry::default();
        let names = [
            cm.get(rec.model, |s| m.intern_name(NAME_KINDS[0], s)),
            rec.site.map_or(absent, |s| cs.get(s, |s| m.intern_name(NAME_KINDS[1], s))),
            rec.zone.map_or(absent, |s| cz.get(s, |s| m.intern_name(NAME_KINDS[2], s))),
            rec.hardware.map_or(absent, |s| ch.get(s, |s| m.intern_name(NAME_KINDS[3], s))),
        ];
        let status = rec.status.map_or(StatusEntry::default(), |s| self.statuses.get(s, |s| m.status_entry(s)));
        let usage = Usage {
            hour: hour_of(rec.ts_us),
            gpus: rec.gpus,
            input_tokens: rec.input_tokens,
            output_tokens: rec.output_tokens,
            duration_s: rec.duration_s,
            energy_j: rec.energy_j,
            weight: rec.weight,
            ts_us: rec.ts_us,
            node: m.node_id(rec.node),
        };
        let at = || RecordRef { file: loc.file, line: loc.line, ts_us: rec.ts_us, request_id: rec.request_id };
        self.add(loc.file, names, status, rec.cache_hit, &usage, at);
    }

    /// Arrow rows column by column: see [`columnar`].
    const COLUMNAR: bool = true;

    fn rows(&mut self, rows: &Rows<'_>) {
        self.add_rows(rows);
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        self.held.push(other.agg);
        self.held.extend(other.held);
        self.energy_kwh += other.energy_kwh;
        self.estimated_kwh += other.estimated_kwh;
        for (k, n) in other.changed {
            *self.changed.entry(k).or_insert(0) += n;
        }
        if self.unrecognised.len() < other.unrecognised.len() {
            self.unrecognised.resize(other.unrecognised.len(), 0);
        }
        for (a, b) in self.unrecognised.iter_mut().zip(other.unrecognised) {
            *a += b;
        }
        self.spill_if_over_budget()
    }

    fn end_block(&mut self) -> Result<()> {
        self.spill_if_over_budget()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_ts;
    use arrow_array::{Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};

    const CONFIG: &str = r#"
[defaults]
pue = 1.5
host_overhead = 0.1
idle_overhead = 0.1
utilization = 0.5
concurrency = 2
mfu = 0.25

[uncertainty]
measured = 0.1
tokens = 0.3
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
uncertainty = 0.2
[[models.m8.coefficients]]
hardware = "*"
wh_per_1k_input = 0.02
wh_per_1k_output = 0.2

[models.bare]

[models.p]
active_params_b = 10

[sites.fra]
zone = "DE"
pue = 1.2
host_overhead = 0.4
idle_overhead = 0.2
market_g_per_kwh = 0.0
fallback_g_per_kwh = 500
hardware = "h100"
gpus = 2

[sites.par]
zone = "FR"
market_g_per_kwh = 20
[sites.nofb]
zone = "FR"
"#;
    // DE: 400 at 00h, 200 at 02h of 2024-01-01 (January mean 300); FR: 50 at 00h.
    const GRID: &str = "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,400\nDE,2024-01-01T02:00:00Z,200\nFR,2024-01-01T00:00:00Z,50\n";

    fn methodology() -> Methodology {
        let c = Config::from_toml(CONFIG, "test.toml").unwrap();
        let g = Grid::from_texts(&[("grid.csv", GRID)], false).unwrap();
        Methodology::new(Arc::new(c), Arc::new(g)).unwrap()
    }

    fn rec(ts: &str, model: &'static str) -> Record<'static> {
        Record {
            ts_us: parse_ts(ts.as_bytes()).unwrap(),
            model,
            site: None,
            zone: None,
            hardware: None,
            gpus: None,
            input_tokens: None,
            output_tokens: None,
            duration_s: None,
            energy_j: None,
            weight: 1.0,
            request_id: None,
            status: None,
            cache_hit: None,
            node: None,
        }
    }

    const T: &str = "2024-01-01T00:30:00Z";

    /// The id cache must give exactly the interner's id for every string: names that differ
    /// only in length (trailing NUL bytes pad the short key), share a 32-byte prefix, sit on
    /// either side of the short/long boundary, or collide in the direct-mapped table.
    #[test]
    fn id_cache_agrees_with_interner() {
        let m = methodology();
        let mut names: Vec<String> = vec![String::new(), "a".into(), "a\0".into(), "a\0\0".into(), "h100".into()];
        for len in [1usize, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 64] {
            for k in 0..40u32 {
                let mut s: String = (0..len).map(|i| (b'a' + ((i as u32 * 7 + k) % 26) as u8) as char).collect();
                if k % 3 == 0 {
                    s.replace_range(len - 1.., "z"); // same prefix, different last byte
                }
                names.push(s);
            }
        }
        let mut cache = StrCache::<u32>::default();
        for round in 0..3 {
            for (i, n) in names.iter().enumerate() {
                let n = if round == 1 { &names[names.len() - 1 - i] } else { n };
                assert_eq!(cache.get(n, |s| m.intern(s)), m.intern(n), "{n:?} in round {round}");
            }
        }
        assert_eq!(cache.get("h100", |s| m.intern(s)), m.intern("h100"));
    }

    /// Run records through one sink; the single resulting row as (column -> value).
    struct Row(RecordBatch);
    impl Row {
        fn f(&self, col: &str) -> Option<f64> {
            let a = self.0.column_by_name(col).unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
            a.is_valid(0).then(|| a.value(0))
        }
        fn s(&self, col: &str) -> Option<String> {
            let a = self.0.column_by_name(col).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            a.is_valid(0).then(|| a.value(0).to_string())
        }
        fn records(&self) -> i64 {
            self.0.column_by_name("records").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().value(0)
        }
        fn hour(&self) -> i64 {
            self.0
                .column_by_name("hour")
                .unwrap()
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap()
                .value(0)
        }
    }

    fn run(m: &Methodology, recs: &[Record<'_>]) -> RecordBatch {
        let mut sink = AggregateSink::new(m, Arc::new(vec!["log.jsonl".into()]), None, usize::MAX);
        for r in recs {
            sink.record(r, Loc { file: 0, line: 1 });
        }
        sink.finish().unwrap()
    }

    fn one(r: Record<'_>) -> Row {
        let m = methodology();
        let b = run(&m, &[r]);
        assert_eq!(b.num_rows(), 1);
        Row(b)
    }

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("value, not null");
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-300), "{a} != {b}");
    }

    #[test]
    fn measured_with_site_overheads_pue_and_bands() {
        let r = one(Record { energy_j: Some(7200.0), site: Some("fra"), ..rec(T, "m8") });
        assert_eq!(r.s("method").as_deref(), Some("measured"));
        // E_acc = 2 Wh; E_it = 2 * (1 + 0.4 + 0.2) = 3.2; E_fac = 3.2 * 1.2 = 3.84 Wh.
        close(r.f("energy_acc_kwh"), 0.002);
        close(r.f("energy_it_kwh"), 0.0032);
        close(r.f("energy_kwh"), 0.00384);
        close(r.f("energy_kwh_low"), 0.00384 * 0.9);
        close(r.f("energy_kwh_high"), 0.00384 * 1.1);
        // DE at 00h = 400 g/kWh; the site's market factor is 0.0 (present, so used).
        close(r.f("co2e_location_kg"), 0.00384 * 400.0 / 1000.0);
        assert_eq!(r.f("co2e_market_kg"), Some(0.0));
        assert_eq!((r.f("fallback_kwh"), r.f("unresolved_kwh")), (Some(0.0), Some(0.0)));
        // Keys: zone and hardware come from the site.
        assert_eq!(
            (r.s("site"), r.s("zone"), r.s("hardware")),
            (Some("fra".into()), Some("DE".into()), Some("h100".into()))
        );
        // No tokens, no duration: flops and gpu_hours are null.
        assert_eq!((r.f("flops"), r.f("gpu_hours")), (None, None));
        assert_eq!((r.records(), r.f("requests"), r.f("unestimated_requests")), (1, Some(1.0), Some(0.0)));
    }

    #[test]
    fn tokens_exact_hardware_beats_star() {
        let base = Record { input_tokens: Some(1000), output_tokens: Some(500), zone: Some("DE"), ..rec(T, "m8") };
        let exact = one(Record { hardware: Some("h100"), ..base });
        assert_eq!(exact.s("method").as_deref(), Some("tokens"));
        // (1000 * 0.01 + 500 * 0.1) / 1000 = 0.06 Wh; no site: defaults 1.2 it, 1.5 pue.
        close(exact.f("energy_acc_kwh"), 0.06e-3);
        close(exact.f("energy_kwh"), 0.06e-3 * 1.2 * 1.5);
        // The coefficient's own uncertainty (0.2) overrides [uncertainty] tokens.
        close(exact.f("energy_kwh_high"), 0.06e-3 * 1.2 * 1.5 * 1.2);
        let star = one(Record { hardware: Some("other-gpu"), ..base });
        close(star.f("energy_acc_kwh"), 0.12e-3);
        close(star.f("energy_kwh_low"), 0.12e-3 * 1.8 * 0.7);
        assert_eq!(star.s("hardware").as_deref(), Some("other-gpu"));
        // No hardware at all: "*" still applies; hardware key null.
        let none = one(base);
        close(none.f("energy_acc_kwh"), 0.12e-3);
        assert_eq!(none.s("hardware"), None);
        // Only one token count: the other counts as 0.
        close(one(Record { output_tokens: None, ..base }).f("energy_acc_kwh"), 0.02e-3);
        // flops alongside: 2 * 8e9 * 1500.
        close(exact.f("flops"), 2.4e13);
        close(exact.f("input_tokens"), 1000.0);
        close(exact.f("output_tokens"), 500.0);
    }

    #[test]
    fn gpu_time_uses_site_gpus_and_default_utilization_concurrency() {
        let r = one(Record { duration_s: Some(36.0), site: Some("fra"), ..rec(T, "bare") });
        assert_eq!(r.s("method").as_deref(), Some("gpu_time"));
        // P = 100 + 0.5 * (700 - 100) = 400 W; E = 36 s * 2 gpus * 400 / 2 (concurrency) / 3600 = 4 Wh.
        close(r.f("energy_acc_kwh"), 0.004);
        close(r.f("energy_kwh_high"), 0.004 * 1.6 * 1.2 * 1.5);
        close(r.f("gpu_hours"), 36.0 * 2.0 / 3600.0);
        // The record's gpus wins over the site's.
        let r = one(Record { duration_s: Some(36.0), site: Some("fra"), gpus: Some(1), ..rec(T, "bare") });
        close(r.f("energy_acc_kwh"), 0.002);
        close(r.f("gpu_hours"), 0.01);
    }

    /// A hardware's own (calibrated) utilization wins over `[defaults]` but not over a site's
    /// own value.
    #[test]
    fn hardware_utilization_precedence() {
        let text = CONFIG.replace("[hardware.nopeak]", "[hardware.h100.calibrated]\nrecords = 10\nfirst_ts = \"a\"\nlast_ts = \"b\"\ndate = \"c\"\n[hardware.nopeak]")
            .replace("peak_tflops = 1000\n", "peak_tflops = 1000\nutilization = 0.8\n")
            + "[sites.own]\nzone = \"DE\"\nhardware = \"h100\"\ngpus = 2\nutilization = 0.25\n";
        let c = Config::from_toml(&text, "test.toml").unwrap();
        assert_eq!(c.hardware["h100"].utilization, Some(0.8));
        let g = Grid::from_texts(&[("grid.csv", GRID)], false).unwrap();
        let m = Methodology::new(Arc::new(c), Arc::new(g)).unwrap();
        let acc = |r: Record<'_>| {
            let b = run(&m, &[r]);
            assert_eq!(b.num_rows(), 1);
            Row(b).f("energy_acc_kwh")
        };
        let base = Record { duration_s: Some(36.0), ..rec(T, "bare") };
        // fra sets no utilization: the hardware's 0.8. P = 100 + 0.8 * 600 = 580 W;
        // E = 36 s * 2 gpus * 580 / 2 (concurrency) / 3600 = 5.8 Wh.
        close(acc(Record { site: Some("fra"), ..base }), 0.0058);
        // The site's own 0.25 wins: P = 250 W -> 2.5 Wh.
        close(acc(Record { site: Some("own"), ..base }), 0.0025);
        // No site: the hardware's value still applies (1 gpu).
        close(acc(Record { hardware: Some("h100"), zone: Some("DE"), ..base }), 0.0029);
        // Hardware without its own value: [defaults] 0.5, P = 150 W (tdp 300, idle 0).
        close(acc(Record { hardware: Some("nopeak"), zone: Some("DE"), ..base }), 36.0 * 150.0 / 2.0 / 3600.0 / 1000.0);
    }

    #[test]
    fn flops_method_and_low_floor() {
        let r = one(Record {
            input_tokens: Some(100),
            output_tokens: Some(400),
            hardware: Some("h100"),
            zone: Some("DE"),
            ..rec(T, "p")
        });
        assert_eq!(r.s("method").as_deref(), Some("flops"));
        // F = 2 * 10e9 * 500 = 1e13; t = 1e13 / (1000e12 * 0.25) = 0.04 s; E = 0.04 * 700 / 3600 Wh.
        let acc = 0.04 * 700.0 / 3600.0 / 1000.0;
        close(r.f("energy_acc_kwh"), acc);
        close(r.f("flops"), 1e13);
        // u = 2 > 1: low floors at 0, high = 3x.
        assert_eq!(r.f("energy_kwh_low"), Some(0.0));
        close(r.f("energy_kwh_high"), acc * 1.8 * 3.0);
        // Hardware without peak_tflops: flops does not apply -> none.
        let r = one(Record { input_tokens: Some(100), hardware: Some("nopeak"), ..rec(T, "p") });
        assert_eq!(r.s("method").as_deref(), Some("none"));
        close(r.f("flops"), 2e12);
    }

    #[test]
    fn method_priority() {
        let all = Record {
            energy_j: Some(3600.0),
            input_tokens: Some(1000),
            duration_s: Some(10.0),
            hardware: Some("h100"),
            ..rec(T, "m8")
        };
        assert_eq!(one(all).s("method").as_deref(), Some("measured"));
        assert_eq!(one(Record { energy_j: None, ..all }).s("method").as_deref(), Some("tokens"));
        let no_coef = Record { energy_j: None, ..all };
        assert_eq!(one(Record { model: "p", ..no_coef }).s("method").as_deref(), Some("gpu_time"));
        assert_eq!(one(Record { model: "p", duration_s: None, ..no_coef }).s("method").as_deref(), Some("flops"));
        let m = methodology();
        let (e, method) =
            m.accelerator_energy_wh(Outcome::Ok, "m8", Some("h100"), None, Some(1000), Some(500), None, None, None);
        assert_eq!(method, Method::Tokens);
        close(e, 0.06);
        // Unknown hardware on the record does not fall back to the site's: "*" applies.
        let (e, _) = m.accelerator_energy_wh(
            Outcome::Ok,
            "m8",
            Some("zzz"),
            Some("fra"),
            Some(1000),
            Some(500),
            None,
            None,
            None,
        );
        close(e, 0.12);
        assert_eq!(
            m.accelerator_energy_wh(Outcome::Ok, "bare", None, Some("fra"), None, None, Some(36.0), None, None),
            (Some(4.0), Method::GpuTime)
        );
        assert_eq!(
            m.accelerator_energy_wh(Outcome::Ok, "zzz", Some("zzz"), Some("zzz"), Some(1), None, Some(1.0), None, None),
            (None, Method::None)
        );
        assert_eq!(
            m.accelerator_energy_wh(Outcome::Ok, "zzz", None, None, None, None, None, Some(36.0), None),
            (Some(0.01), Method::Measured)
        );
    }

    #[test]
    fn none_is_null_energy_but_counted() {
        let r = one(Record { duration_s: Some(5.0), weight: 3.0, site: Some("fra"), ..rec(T, "unknown-model") });
        // fra has h100: gpu_time applies even to an unknown model.
        assert_eq!(r.s("method").as_deref(), Some("gpu_time"));
        let r = one(Record {
            duration_s: Some(5.0),
            input_tokens: Some(10),
            weight: 3.0,
            zone: Some("DE"),
            ..rec(T, "unknown-model")
        });
        assert_eq!(r.s("method").as_deref(), Some("none"));
        for c in [
            "energy_acc_kwh",
            "energy_it_kwh",
            "energy_kwh",
            "energy_kwh_low",
            "energy_kwh_high",
            "co2e_location_kg",
            "co2e_market_kg",
            "fallback_kwh",
            "unresolved_kwh",
        ] {
            assert_eq!(r.f(c), None, "{c} must be null, never a silent zero");
        }
        assert_eq!((r.records(), r.f("requests"), r.f("unestimated_requests")), (1, Some(3.0), Some(3.0)));
        // Unknown model: flops null; gpu_hours still known (gpus default 1).
        assert_eq!(r.f("flops"), None);
        close(r.f("gpu_hours"), 5.0 * 3.0 / 3600.0);
        close(r.f("input_tokens"), 30.0);
        assert_eq!(r.s("model").as_deref(), Some("unknown-model"));
    }

    #[test]
    fn zone_override_and_market_factor() {
        let base = Record { energy_j: Some(3600.0), site: Some("fra"), ..rec(T, "m8") };
        let r = one(Record { zone: Some("FR"), ..base });
        assert_eq!(r.s("zone").as_deref(), Some("FR"));
        let fac = 1e-3 * 1.6 * 1.2; // the site still supplies overheads and PUE
        close(r.f("energy_kwh"), fac);
        close(r.f("co2e_location_kg"), fac * 50.0 / 1000.0);
        assert_eq!(r.f("co2e_market_kg"), Some(0.0));
        // Market factor present and non-zero.
        let r = one(Record { site: Some("par"), ..base });
        let fac = 1e-3 * 1.2 * 1.5;
        close(r.f("co2e_location_kg"), fac * 50.0 / 1000.0);
        close(r.f("co2e_market_kg"), fac * 20.0 / 1000.0);
        // Absent: market = location.
        let r = one(Record { site: Some("nofb"), ..base });
        close(r.f("co2e_market_kg"), fac * 50.0 / 1000.0);
    }

    #[test]
    fn unknown_site_uses_defaults_and_is_unlocated_without_zone() {
        let base = Record { energy_j: Some(3600.0), site: Some("mystery"), ..rec(T, "m8") };
        let r = one(base);
        let fac = 1e-3 * 1.2 * 1.5;
        close(r.f("energy_kwh"), fac);
        assert_eq!((r.s("site").as_deref(), r.s("zone"), r.s("hardware")), (Some("mystery"), None, None));
        assert_eq!((r.f("co2e_location_kg"), r.f("co2e_market_kg")), (None, None));
        close(r.f("unresolved_kwh"), fac);
        // With a zone it is located.
        let r = one(Record { zone: Some("DE"), ..base });
        close(r.f("co2e_location_kg"), fac * 400.0 / 1000.0);
        assert_eq!(r.f("unresolved_kwh"), Some(0.0));
    }

    #[test]
    fn intensity_fallback_chain() {
        let base = Record { energy_j: Some(3600.0), ..rec(T, "m8") };
        let fra = 1e-3 * 1.6 * 1.2;
        // 1. The hour's value.
        let r = one(Record { site: Some("fra"), ts_us: parse_ts(b"2024-01-01T02:59:59Z").unwrap(), ..base });
        close(r.f("co2e_location_kg"), fra * 200.0 / 1000.0);
        assert_eq!(r.f("fallback_kwh"), Some(0.0));
        // 2. The zone's same-month mean (300), flagged as fallback.
        let r = one(Record { site: Some("fra"), ts_us: parse_ts(b"2024-01-20T12:00:00Z").unwrap(), ..base });
        close(r.f("co2e_location_kg"), fra * 300.0 / 1000.0);
        close(r.f("fallback_kwh"), fra);
        // 3. The site's fallback_g_per_kwh (no DE data in May).
        let r = one(Record { site: Some("fra"), ts_us: parse_ts(b"2024-05-01T00:00:00Z").unwrap(), ..base });
        close(r.f("co2e_location_kg"), fra * 500.0 / 1000.0);
        close(r.f("fallback_kwh"), fra);
        assert_eq!(r.f("unresolved_kwh"), Some(0.0));
        // 4. Unresolved: no hour, no month, no site fallback -> null co2e, energy in unresolved_kwh.
        let r = one(Record { site: Some("nofb"), ts_us: parse_ts(b"2024-05-01T00:00:00Z").unwrap(), ..base });
        let fac = 1e-3 * 1.2 * 1.5;
        assert_eq!((r.f("co2e_location_kg"), r.f("co2e_market_kg")), (None, None));
        close(r.f("unresolved_kwh"), fac);
        close(r.f("energy_kwh"), fac);
        assert_eq!(r.f("fallback_kwh"), Some(0.0));
        // A zone the grid does not know, with no site: unresolved too.
        let r = one(Record { zone: Some("XX"), ..base });
        assert_eq!(r.f("co2e_location_kg"), None);
        assert_eq!(r.s("zone").as_deref(), Some("XX"));
    }

    #[test]
    fn weights_fractional_and_zero() {
        let base = Record {
            energy_j: Some(3600.0),
            input_tokens: Some(10),
            output_tokens: Some(20),
            duration_s: Some(3600.0),
            zone: Some("DE"),
            ..rec(T, "m8")
        };
        let r = one(Record { weight: 2.5, ..base });
        assert_eq!(r.records(), 1);
        close(r.f("requests"), 2.5);
        close(r.f("input_tokens"), 25.0);
        close(r.f("output_tokens"), 50.0);
        close(r.f("energy_acc_kwh"), 2.5e-3);
        close(r.f("energy_kwh"), 2.5e-3 * 1.8);
        close(r.f("energy_kwh_high"), 2.5e-3 * 1.8 * 1.1);
        close(r.f("co2e_location_kg"), 2.5e-3 * 1.8 * 0.4);
        close(r.f("flops"), 2.0 * 8e9 * 30.0 * 2.5);
        close(r.f("gpu_hours"), 2.5);
        let r = one(Record { weight: 0.0, ..base });
        assert_eq!(r.records(), 1);
        // Zero weight: zeros, not nulls (the record was estimated, it just stands for nothing).
        assert_eq!(
            (r.f("requests"), r.f("energy_kwh"), r.f("co2e_location_kg"), r.f("flops")),
            (Some(0.0), Some(0.0), Some(0.0), Some(0.0))
        );
    }

    #[test]
    fn flops_and_gpu_hours_are_independent_of_method() {
        // measured energy, yet flops and gpu_hours are filled from tokens and duration.
        let r = one(Record {
            energy_j: Some(1.0),
            input_tokens: Some(5),
            duration_s: Some(7.2),
            gpus: Some(4),
            ..rec(T, "p")
        });
        assert_eq!(r.s("method").as_deref(), Some("measured"));
        close(r.f("flops"), 2.0 * 10e9 * 5.0);
        close(r.f("gpu_hours"), 7.2 * 4.0 / 3600.0);
    }

    #[test]
    fn hour_floor_across_year_edge() {
        let r = one(Record { energy_j: Some(1.0), ..rec("2024-12-31T23:59:59.999999Z", "m8") });
        assert_eq!(r.hour(), parse_ts(b"2024-12-31T23:00:00Z").unwrap());
        let r = one(Record { energy_j: Some(1.0), ..rec("2025-01-01T00:30:00+01:00", "m8") });
        assert_eq!(r.hour(), parse_ts(b"2024-12-31T23:00:00Z").unwrap());
        let r = one(Record { energy_j: Some(1.0), ..rec("2025-01-01T00:00:00Z", "m8") });
        assert_eq!(r.hour(), parse_ts(b"2025-01-01T00:00:00Z").unwrap());
    }

    // ----- section 10: outcomes, names, default site, warnings -----

    const CONFIG_V11: &str = r#"
[defaults]
site = "fra"
[hardware.h100]
tdp_w = 700
idle_w = 100
peak_tflops = 1000
[models.m8]
active_params_b = 8
[[models.m8.coefficients]]
hardware = "*"
wh_per_1k_input = 0.01
wh_per_1k_output = 0.1
[sites.fra]
zone = "de"
hardware = "h100"
[sites.par]
zone = "FR"
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

    fn methodology_v11() -> Methodology {
        let c = Config::from_toml(CONFIG_V11, "v11.toml").unwrap();
        let g = Grid::from_texts(&[("grid.csv", GRID)], false).unwrap();
        Methodology::new(Arc::new(c), Arc::new(g)).unwrap()
    }

    /// Rows of a batch keyed by method, as (method -> row index).
    fn by_method(b: &RecordBatch) -> FxHashMap<String, usize> {
        let methods = b.column_by_name("method").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        (0..b.num_rows()).map(|i| (methods.value(i).to_string(), i)).collect()
    }

    fn at(b: &RecordBatch, col: &str, i: usize) -> Option<f64> {
        let a = b.column_by_name(col).unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
        a.is_valid(i).then(|| a.value(i))
    }

    #[test]
    fn failed_requests_are_estimated_and_counted() {
        let base = Record {
            input_tokens: Some(1000),
            output_tokens: Some(100),
            weight: 2.0,
            zone: Some("DE"),
            ..rec(T, "m8")
        };
        let ok = one(base);
        for status in ["error", "FAILURE", "2", "500", "429", "STATUS_CODE_ERROR", "timeout", "Cancelled"] {
            let r = one(Record { status: Some(status), ..base });
            assert_eq!(r.s("method").as_deref(), Some("tokens"), "{status}");
            assert_eq!(r.f("failed_requests"), Some(2.0), "{status}");
            assert_eq!(r.f("cached_requests"), Some(0.0));
            // Energy as for the same request that succeeded: a failed request used energy.
            assert_eq!(r.f("energy_kwh"), ok.f("energy_kwh"), "{status}");
            assert_eq!(r.f("requests"), Some(2.0));
        }
        for status in ["ok", "success", "200", "0", "1", "Unset", "status_code_ok", "304"] {
            let r = one(Record { status: Some(status), ..base });
            assert_eq!(r.f("failed_requests"), Some(0.0), "{status}");
        }
        // Nothing to estimate from: method none, still counted as failed and unestimated.
        let r = one(Record { status: Some("error"), weight: 1.0, zone: Some("DE"), ..rec(T, "m8") });
        assert_eq!(r.s("method").as_deref(), Some("none"));
        assert_eq!((r.f("failed_requests"), r.f("unestimated_requests")), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn cached_requests_have_zero_energy_and_keep_tokens() {
        let base = Record {
            input_tokens: Some(1000),
            output_tokens: Some(100),
            duration_s: Some(2.0),
            energy_j: Some(3600.0),
            weight: 3.0,
            site: Some("fra"),
            ..rec(T, "m8")
        };
        let r = one(Record { cache_hit: Some(true), ..base });
        assert_eq!(r.s("method").as_deref(), Some("cached"));
        assert_eq!((r.records(), r.f("requests"), r.f("cached_requests")), (1, Some(3.0), Some(3.0)));
        assert_eq!((r.f("failed_requests"), r.f("unestimated_requests")), (Some(0.0), Some(0.0)));
        for c in [
            "energy_acc_kwh",
            "energy_it_kwh",
            "energy_kwh",
            "energy_kwh_low",
            "energy_kwh_high",
            "co2e_location_kg",
            "co2e_market_kg",
            "fallback_kwh",
            "unresolved_kwh",
        ] {
            assert_eq!(r.f(c), Some(0.0), "{c}: a known zero, not null");
        }
        // The model did not run: no flops, no GPU time (null: nothing contributed).
        assert_eq!((r.f("flops"), r.f("gpu_hours")), (None, None));
        close(r.f("input_tokens"), 3000.0);
        close(r.f("output_tokens"), 300.0);
        assert_eq!(
            (r.s("site").as_deref(), r.s("zone").as_deref(), r.s("hardware").as_deref()),
            (Some("fra"), Some("DE"), Some("h100"))
        );
        // A cache flag of false, or none, leaves the record to its method.
        assert_eq!(one(Record { cache_hit: Some(false), ..base }).s("method").as_deref(), Some("measured"));
        assert_eq!(one(base).s("method").as_deref(), Some("measured"));
        // Failed wins over cached.
        let r = one(Record { cache_hit: Some(true), status: Some("error"), ..base });
        assert_eq!(r.s("method").as_deref(), Some("measured"));
        assert_eq!((r.f("failed_requests"), r.f("cached_requests")), (Some(3.0), Some(0.0)));
    }

    #[test]
    fn energy_on_estimated_grid_hours_is_counted_for_the_run() {
        // DE: 00h estimated (Electricity Maps flag), 01h not; 02h missing -> month-mean fallback.
        let grid = "Datetime (UTC),Zone id,Carbon intensity gCO2eq/kWh (direct),Data estimated\n\
                    2024-01-01 00:00:00,DE,400,true\n2024-01-01 01:00:00,DE,200,false\n";
        let c = Config::from_toml(CONFIG, "test.toml").unwrap();
        let g = Grid::from_texts(&[("em.csv", grid)], false).unwrap();
        let m = Methodology::new(Arc::new(c), Arc::new(g)).unwrap();
        let base = Record { energy_j: Some(3600.0), zone: Some("DE"), ..rec(T, "m8") };
        let recs = [
            base,
            Record { weight: 2.0, ..base },
            Record { ts_us: parse_ts(b"2024-01-01T01:10:00Z").unwrap(), ..base },
            Record { ts_us: parse_ts(b"2024-01-01T02:10:00Z").unwrap(), ..base },
            // Cached: zero energy, in the denominator with nothing.
            Record { cache_hit: Some(true), ..base },
        ];
        let mut sink = AggregateSink::new(&m, Arc::new(vec!["log.jsonl".into()]), None, usize::MAX);
        for r in &recs {
            sink.record(r, Loc { file: 0, line: 1 });
        }
        let (b, notes) = sink.finish_with_notes().unwrap();
        let b = b.to_record_batch().unwrap();
        let total: f64 = b
            .column_by_name("energy_kwh")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .iter()
            .flatten()
            .sum();
        // Defaults: 1 Wh accelerator * (1 + 0.1 + 0.1) * PUE 1.5 = 1.8 Wh per unit of weight.
        close(Some(notes.energy_kwh), total);
        close(Some(notes.energy_kwh), 5.0 * 0.0018);
        close(Some(notes.estimated_kwh), 3.0 * 0.0018);
        assert_eq!(
            m.estimated_warning(notes.estimated_kwh, notes.energy_kwh).as_deref(),
            Some("60.0% of energy (0.005400 kWh) was priced on grid hours flagged estimated (Electricity Maps 'Data estimated')")
        );
        assert_eq!(m.estimated_warning(0.0, 1.0), None);
        assert_eq!(
            m.estimated_warning(0.0004, 1.0).as_deref(),
            Some("<0.1% of energy (0.0004000 kWh) was priced on grid hours flagged estimated (Electricity Maps 'Data estimated')")
        );
        assert!(m.estimated_warning(12_345.678, 12_345.679).unwrap().starts_with(">99.9% of energy (12346 kWh)"));
        // Without flags nothing is counted (an ordinary hourly grid changes nothing).
        let m = methodology();
        let mut sink = AggregateSink::new(&m, Arc::new(vec!["log.jsonl".into()]), None, usize::MAX);
        sink.record(&base, Loc { file: 0, line: 1 });
        let (_, notes) = sink.finish_with_notes().unwrap();
        assert_eq!(notes.estimated_kwh, 0.0);
        assert!(notes.energy_kwh > 0.0);
    }

    #[test]
    fn pack_outcome_lists_and_unrecognised_statuses_warn() {
        let m = methodology_v11();
        let base = Record { energy_j: Some(36.0), zone: Some("DE"), ..rec(T, "m8") };
        let recs = [
            Record { status: Some("from_cache"), ..base },
            Record { status: Some("rate_limited"), ..base },
            Record { status: Some("rate_limited"), cache_hit: Some(true), ..base },
            Record { status: Some("weird"), ..base },
            Record { status: Some("weird"), weight: 5.0, ..base },
            Record { status: Some("odd"), ..base },
            Record { status: Some("ok"), ..base },
        ];
        let mut sink = AggregateSink::new(&m, Arc::new(vec!["log.jsonl".into()]), None, usize::MAX);
        for r in &recs {
            sink.record(r, Loc { file: 0, line: 1 });
        }
        let (b, notes) = sink.finish_with_notes().unwrap();
        let b = b.to_record_batch().unwrap();
        let rows = by_method(&b);
        assert_eq!(at(&b, "cached_requests", rows["cached"]), Some(1.0));
        assert_eq!(at(&b, "failed_requests", rows["measured"]), Some(2.0));
        assert_eq!(at(&b, "requests", rows["measured"]), Some(10.0));
        // Unrecognised values count as ok, and are named with their record counts (unweighted).
        assert_eq!(
            m.warnings(&notes.unrecognised),
            vec![
                "zone 'de' of site fra matched grid zone 'DE' ignoring case".to_string(),
                "status 'weird' (2 records) not recognised, counted as ok; list it under [outcomes] ok, failed or cached"
                    .to_string(),
                "status 'odd' (1 record) not recognised, counted as ok; list it under [outcomes] ok, failed or cached"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn aliases_resolve_names_and_are_kept_per_source() {
        let m = methodology_v11();
        let base = Record { energy_j: Some(3600.0), ..rec(T, "openai/gpt-x") };
        let recs = [
            Record { hardware: Some("NVIDIA H100 80GB HBM3"), site: Some("http://10.0.0.5:4000/v1"), ..base },
            Record { model: "hosted_vllm/meta/Llama-8B", zone: Some("fr"), ..base },
            Record { model: "m8", zone: Some("FR"), ..base },
            Record { model: "unknown/x", zone: Some("FR"), ..base },
        ];
        let mut sink = AggregateSink::new(&m, Arc::new(vec!["a.jsonl".into(), "b.jsonl".into()]), None, usize::MAX);
        for (i, r) in recs.iter().enumerate() {
            sink.record(r, Loc { file: (i % 2) as u32, line: 1 });
        }
        let (b, notes) = sink.finish_with_notes().unwrap();
        let b = b.to_record_batch().unwrap();
        let col = |c: &str| -> Vec<Option<String>> {
            let a = b.column_by_name(c).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            a.iter().map(|v| v.map(str::to_string)).collect()
        };
        let models = col("model");
        assert!(models.iter().filter(|v| v.as_deref() == Some("m8")).count() == 3, "{models:?}");
        assert!(models.contains(&Some("unknown/x".into())), "unknown names stay as written");
        assert!(col("hardware").contains(&Some("h100".into())));
        assert!(col("site").contains(&Some("par".into())));
        assert!(!col("zone").contains(&Some("fr".into())));
        let changes = m.name_changes();
        let mut got: Vec<(u32, &str, &str, &str, u64)> = notes
            .changed
            .iter()
            .map(|(&(f, i), &n)| {
                let c = &changes[i as usize];
                (f, c.kind.name(), &*c.raw, &*c.resolved, n)
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (0, "hardware", "NVIDIA H100 80GB HBM3", "h100", 1),
                (0, "model", "openai/gpt-x", "m8", 1),
                (0, "site", "http://10.0.0.5:4000/v1", "par", 1),
                (1, "model", "hosted_vllm/meta/Llama-8B", "m8", 1),
                (1, "zone", "fr", "FR", 1),
            ]
        );
        assert!(m.warnings(&[]).contains(&"zone 'fr' in the logs matched grid zone 'FR' ignoring case".to_string()));
        // What-if queries resolve the same way.
        assert_eq!(
            m.accelerator_energy_wh(
                Outcome::Ok,
                "openai/gpt-x",
                Some("NVIDIA H100 PCIe?"),
                None,
                Some(1000),
                None,
                None,
                None,
                None
            )
            .1,
            Method::Tokens
        );
    }

    #[test]
    fn records_without_site_or_zone_go_to_the_default_site() {
        let mut m = methodology_v11();
        let base = Record { energy_j: Some(3600.0), ..rec(T, "m8") };
        let b = run(&m, &[base, Record { zone: Some("FR"), ..base }, Record { site: Some("par"), ..base }]);
        let sites = b.column_by_name("site").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let zones = b.column_by_name("zone").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let got: Vec<(Option<&str>, Option<&str>)> =
            (0..b.num_rows()).map(|i| (sites.iter().nth(i).unwrap(), zones.iter().nth(i).unwrap())).collect();
        // Default site fra (its zone "de" resolved to the grid's "DE"); a zone alone is left
        // alone (it is located); a site is kept.
        assert_eq!(got, vec![(None, Some("FR")), (Some("fra"), Some("DE")), (Some("par"), Some("FR"))]);
        m.set_default_site("par").unwrap();
        let b = run(&m, &[base]);
        assert_eq!(b.column_by_name("site").unwrap().as_any().downcast_ref::<StringArray>().unwrap().value(0), "par");
        let e = m.set_default_site("nowhere").unwrap_err().to_string();
        assert!(e.contains("--site nowhere: not a site of the methodology pack v11.toml (its sites: fra, par)"), "{e}");
        let e = m.set_default_site("PAR").unwrap_err().to_string();
        assert!(e.ends_with("(names are case-sensitive: did you mean 'par'? its sites: fra, par)"), "{e}");
        // Without a default, such a record is unlocated.
        let plain = methodology();
        assert_eq!(run(&plain, &[base]).column_by_name("site").unwrap().null_count(), 1);
    }

    // ----- aggregate behaviour through the sink -----

    const MODELS: [&str; 4] = ["m8", "p", "bare", "nobody"];
    const SITES: [Option<&str>; 4] = [Some("fra"), Some("nofb"), Some("mystery"), None];
    const ZONES: [Option<&str>; 3] = [None, Some("DE"), Some("XX")];

    /// Deterministic varied records (a tiny LCG), covering every method and null rule.
    fn records(n: usize) -> Vec<Record<'static>> {
        let mut x: u64 = 42;
        let mut next = move |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let t0 = parse_ts(b"2024-01-01T00:00:00Z").unwrap();
        (0..n)
            .map(|i| Record {
                ts_us: t0 + (i as i64) * 97_000_000 + next(1000) as i64,
                site: SITES[next(4) as usize],
                zone: ZONES[next(3) as usize],
                hardware: [None, Some("h100"), Some("nopeak")][next(3) as usize],
                input_tokens: [None, Some(next(5000) as i64)][next(2) as usize],
                output_tokens: [None, Some(next(900) as i64)][next(2) as usize],
                duration_s: [None, Some(next(100) as f64 / 7.0)][next(2) as usize],
                energy_j: [None, None, None, Some(next(10_000) as f64)][next(4) as usize],
                weight: [1.0, 0.5, 0.0, 3.0][next(4) as usize],
                gpus: [None, Some(next(8) as i64)][next(2) as usize],
                status: [None, Some("ok"), Some("error"), Some("500"), Some("weird")][next(5) as usize],
                cache_hit: [None, None, Some(false), Some(true)][next(4) as usize],
                ..rec(T, MODELS[next(4) as usize])
            })
            .collect()
    }

    fn feed(sink: &mut AggregateSink<'_>, recs: &[Record<'_>], first: usize) {
        for (i, r) in recs.iter().enumerate() {
            sink.record(r, Loc { file: ((first + i) % 2) as u32, line: (first + i) as u64 });
            if i % 16 == 15 {
                sink.end_block().unwrap();
            }
        }
    }

    /// Same schema, keys, nulls; floats equal up to summation order.
    fn assert_batches_close(a: &RecordBatch, b: &RecordBatch) {
        assert_eq!(a.schema(), b.schema());
        assert_eq!(a.num_rows(), b.num_rows());
        for (i, f) in a.schema().fields().iter().enumerate() {
            let (x, y) = (a.column(i), b.column(i));
            assert_eq!(x.logical_nulls(), y.logical_nulls(), "nulls of {}", f.name());
            if let (Some(x), Some(y)) =
                (x.as_any().downcast_ref::<Float64Array>(), y.as_any().downcast_ref::<Float64Array>())
            {
                for r in 0..x.len() {
                    let (p, q) = (x.value(r), y.value(r));
                    assert!(
                        (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1e-12),
                        "{} row {r}: {p} vs {q}",
                        f.name()
                    );
                }
            } else {
                assert_eq!(x, y, "{}", f.name());
            }
        }
    }

    fn sources() -> Arc<Vec<String>> {
        Arc::new(vec!["a.jsonl".into(), "b.csv".into()])
    }

    /// Metered energy of nodes n1 (hourly, Kepler) and n2 (every 10 minutes, DCGM, with a
    /// reset) over the first hours of [`records`], shared by a first pass over `recs`.
    fn with_attribution(m: &mut Methodology, recs: &[Record<'_>]) {
        let t0 = 1_704_067_200i64;
        let mut csv = String::from("timestamp,__name__,Hostname,gpu,value\n");
        for k in 0..32 {
            csv += &format!("{},kepler_node_gpu_joules_total,n1,0,{}\n", t0 - 3600 + k * 3600, k * k * 1000);
        }
        for k in 0..60 {
            let v = if k == 30 { 5 } else { k * 1_000_000 };
            csv += &format!("{},DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,n2,0,{v}\n", t0 + k * 600);
        }
        let e = NodeEnergy::from_texts(&[("c.csv", &csv)]).unwrap();
        let denoms = {
            let mut sink = crate::attribution::ClaimSink::new(m, &e);
            for r in recs {
                sink.record(r, Loc { file: 0, line: 0 });
            }
            sink.denoms
        };
        m.set_attribution(Arc::new(Attribution::new(Arc::new(e), denoms)));
    }

    #[test]
    fn merging_halves_equals_one_sink() {
        let recs: Vec<Record<'static>> = records(2000)
            .into_iter()
            .enumerate()
            .map(|(i, r)| Record { node: [None, Some("n1"), Some("n2")][i % 3], ..r })
            .collect();
        let mut m = methodology();
        with_attribution(&mut m, &recs);
        let mut all = AggregateSink::new(&m, sources(), None, usize::MAX);
        feed(&mut all, &recs, 0);
        // The halves on a separate Methodology thread order: ids differ, names do not.
        let mut m2 = methodology();
        with_attribution(&mut m2, &recs);
        let (h1, h2) = recs.split_at(1000);
        let mut s2 = AggregateSink::new(&m2, sources(), None, usize::MAX);
        feed(&mut s2, h2, 1000);
        let mut s1 = AggregateSink::new(&m2, sources(), None, usize::MAX);
        feed(&mut s1, h1, 0);
        s1.merge(s2).unwrap();
        let (a, b) = (all.finish().unwrap(), s1.finish().unwrap());
        assert!(a.num_rows() > 100, "the test data must make many cells: {}", a.num_rows());
        assert_batches_close(&a, &b);
        // Every method and both null kinds occur, so the comparison covers them.
        let methods = a.column_by_name("method").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        for me in Method::ALL {
            assert!(methods.iter().any(|v| v == Some(me.name())), "{}", me.name());
        }
        assert!(a.column_by_name("co2e_location_kg").unwrap().null_count() > 0);
        assert!(a.column_by_name("site").unwrap().null_count() > 0);
        assert!(column_sum(std::slice::from_ref(&a), "failed_requests") > 0.0);
        assert!(column_sum(std::slice::from_ref(&a), "cached_requests") > 0.0);
    }

    fn column_sum(batches: &[RecordBatch], col: &str) -> f64 {
        batches
            .iter()
            .map(|b| {
                let c = b.column_by_name(col).unwrap();
                match c.as_any().downcast_ref::<Float64Array>() {
                    Some(f) => f.iter().flatten().sum::<f64>(),
                    None => c.as_any().downcast_ref::<Int64Array>().unwrap().iter().flatten().sum::<i64>() as f64,
                }
            })
            .sum()
    }

    #[test]
    fn spilled_cells_merge_back_to_the_same_cells_each_once() {
        let recs = records(1500);
        let m = methodology();
        let mut whole = AggregateSink::new(&m, sources(), None, usize::MAX);
        feed(&mut whole, &recs, 0);
        let whole = whole.finish().unwrap();

        let dir = crate::testutil::tempdir().unwrap();
        let store = SpillStore::new(dir.path().join("spill"), crate::spill::Partitioner::new(&sources()));
        let mut s = AggregateSink::new(&m, sources(), Some(&store), 10);
        feed(&mut s, &recs, 0);
        assert!(s.aggregate().len() <= 10, "bounded by the budget, within a block too");
        let runs = store.runs().len();
        assert!(runs > 5, "spilled {runs} times");
        let (cells, _) = s.finish_with_notes().unwrap();
        assert_eq!(cells.spill_runs(), runs);
        assert!(cells.spilled_cells() as usize > whole.num_rows(), "cells split across spills");
        assert_batches_close(&whole, &cells.to_record_batch().unwrap());
        // The spill files go with the cells.
        assert_eq!(std::fs::read_dir(dir.path().join("spill")).unwrap().count(), runs);
        drop((cells, store));
        assert!(!dir.path().join("spill").exists(), "the store created the directory, and removed it");
    }

    #[test]
    fn rows_are_sorted_by_names_and_deterministic() {
        let recs = records(500);
        let m = methodology();
        let b = run(&m, &recs);
        // Interning in reverse order gives other ids but the same batch.
        let m2 = methodology();
        let mut rev: Vec<_> = recs.clone();
        rev.reverse();
        let b2 = run(&m2, &rev);
        assert_batches_close(&b, &b2);
        let hours = b.column_by_name("hour").unwrap().as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert!(hours.values().windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn distinct_names_past_the_cap_stop_the_run_naming_the_column() {
        let mut m = methodology();
        m.set_max_names(3);
        let names: Vec<String> = (0..10).map(|i| format!("req-{i}")).collect();
        let mut sink = AggregateSink::new(&m, Arc::new(vec!["log.jsonl".into()]), None, usize::MAX);
        // Pack names (m8) do not count; three new ones fit.
        for n in ["m8", "req-0", "req-1", "req-2", "req-1"] {
            sink.record(&rec(T, n), Loc { file: 0, line: 1 });
        }
        assert!(sink.end_block().is_ok());
        for n in &names {
            let s: &'static str = Box::leak(n.clone().into_boxed_str());
            sink.record(&rec(T, s), Loc { file: 0, line: 1 });
        }
        let e = sink.end_block().unwrap_err().to_string();
        assert!(e.starts_with("column model: more than 3 distinct values in this run (--max-names)"), "{e}");
        assert!(e.contains("request id") && !e.contains('\n'), "{e}");
        assert!(sink.finish_with_notes().is_err());
        // Each column has its own count: three sites are fine next to three models.
        let mut m = methodology();
        m.set_max_names(3);
        let mut sink = AggregateSink::new(&m, Arc::new(vec!["log.jsonl".into()]), None, usize::MAX);
        for (model, site) in [("a", "s1"), ("b", "s2"), ("c", "s3")] {
            sink.record(&Record { site: Some(site), ..rec(T, model) }, Loc { file: 0, line: 1 });
        }
        assert!(sink.finish_with_notes().is_ok());
        // Status values no list recognises are remembered per value: capped as well.
        let mut m = methodology();
        m.set_max_names(2);
        let mut sink = AggregateSink::new(&m, Arc::new(vec!["log.jsonl".into()]), None, usize::MAX);
        for st in ["weird-1", "weird-2", "weird-3"] {
            sink.record(&Record { status: Some(st), ..rec(T, "m8") }, Loc { file: 0, line: 1 });
        }
        assert!(sink.end_block().unwrap_err().to_string().starts_with("column status: more than 2"));
    }

    #[test]
    fn a_pack_of_many_models_resolves_coefficients_per_hardware_and_star() {
        let mut t = String::from("[hardware.h1]\ntdp_w = 700\n[hardware.h2]\ntdp_w = 700\n");
        for i in 0..3000 {
            t.push_str(&format!(
                "[models.\"m{i}\"]\ncoefficients = [{{hardware = \"h1\", wh_per_1k_input = 1.0, wh_per_1k_output = 0.0}}, \
                 {{hardware = \"*\", wh_per_1k_input = 2.0, wh_per_1k_output = 0.0}}]\n"
            ));
        }
        let c = Config::from_toml(&t, "big.toml").unwrap();
        let m = Methodology::new(Arc::new(c), Arc::new(Grid::empty())).unwrap();
        let e = |model: &str, hw: Option<&str>| {
            m.accelerator_energy_wh(Outcome::Ok, model, hw, None, Some(1000), None, None, None, None).0
        };
        // The exact hardware first; "*" for other, unknown and no hardware.
        assert_eq!(e("m2999", Some("h1")), Some(1.0));
        assert_eq!(e("m0", Some("h2")), Some(2.0));
        assert_eq!(e("m0", Some("elsewhere")), Some(2.0));
        assert_eq!(e("m0", None), Some(2.0));
    }
}
