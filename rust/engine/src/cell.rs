//! The vocabulary of an hourly cell, shared by the kernel (which makes cells) and the
//! aggregate (which sums and writes them): the estimation [`Method`], the [`CellKey`], the
//! null id and the measure columns. A module of its own so that neither of the two has to
//! import the other for it.

/// The null key (no site, no zone, no hardware).
pub const NO_ID: u32 = u32::MAX;

/// How a record's accelerator energy was obtained (methodology section 3), in priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Method {
    Measured = 0,
    Tokens,
    GpuTime,
    Flops,
    None,
    /// Served from a cache (section 10): the model did not run, energy is zero.
    Cached,
    /// A share of metered node energy (section 10); ranks after measured, before tokens (the
    /// ranking is in `Methodology::contribution`; the discriminant only keeps spill bytes stable).
    Attributed,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Measured,
        Method::Tokens,
        Method::GpuTime,
        Method::Flops,
        Method::None,
        Method::Cached,
        Method::Attributed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Measured => "measured",
            Method::Tokens => "tokens",
            Method::GpuTime => "gpu_time",
            Method::Flops => "flops",
            Method::None => "none",
            Method::Cached => "cached",
            Method::Attributed => "attributed",
        }
    }
}

/// One cell's key: source file index, hour since the epoch, interned ids, method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellKey {
    pub source: u32,
    pub hour: i64,
    pub model: u32,
    pub site: u32,
    pub zone: u32,
    pub hardware: u32,
    pub method: Method,
}

/// Four words instead of seven fields: the key is hashed once per record. Consistent with the
/// derived `Eq` (equal keys write equal words); dropping the hour's top 8 bits only widens a
/// hash bucket, it never merges keys.
impl std::hash::Hash for CellKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64((self.hour as u64) << 8 | self.method as u64);
        h.write_u64((self.model as u64) << 32 | self.site as u64);
        h.write_u64((self.zone as u64) << 32 | self.hardware as u64);
        h.write_u32(self.source);
    }
}

/// One measure column of the aggregate: its name and whether it may be null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureColumn {
    pub name: &'static str,
    pub nullable: bool,
}

const fn measure(name: &'static str, nullable: bool) -> MeasureColumn {
    MeasureColumn { name, nullable }
}

/// The measure columns of the aggregate in column order (methodology section 8): `records`
/// (int64), then the float64 sums. The one list: the aggregate's schema is built from it and
/// the binding hands it to Python, whose ledger columns a test checks against it.
pub const MEASURE_COLUMNS: [MeasureColumn; 18] = [
    measure("records", false),
    measure("requests", false),
    measure("input_tokens", false),
    measure("output_tokens", false),
    measure("energy_acc_kwh", true),
    measure("energy_it_kwh", true),
    measure("energy_kwh", true),
    measure("energy_kwh_low", true),
    measure("energy_kwh_high", true),
    measure("co2e_location_kg", true),
    measure("co2e_market_kg", true),
    measure("flops", true),
    measure("gpu_hours", true),
    measure("fallback_kwh", true),
    measure("unresolved_kwh", true),
    measure("unestimated_requests", false),
    measure("failed_requests", false),
    measure("cached_requests", false),
];

/// The float64 measures: every measure column after `records`.
pub fn float_measures() -> &'static [MeasureColumn] {
    &MEASURE_COLUMNS[1..]
}
