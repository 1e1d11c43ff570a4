//! Hourly partial sums (methodology section 8, plus `source`), mergeable by summing.
//!
//! Keys are small integers (interned by the kernel), so a record costs one hash of a few
//! integers, and usually not even that: logs arrive roughly in time order, so the cell of the
//! previous record is checked first. Measures are sums; bits record whether any record
//! contributed to a nullable measure, so the null rules of `docs/internals.md` hold after any
//! number of merges.

use crate::cell::{float_measures, CellKey, MEASURE_COLUMNS};
use crate::error::Result;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rustc_hash::FxHashMap;
use std::sync::{Arc, OnceLock};

/// The record had an energy estimate (method is not `none`).
pub const HAS_ENERGY: u8 = 1;
/// Its intensity was resolved, so emissions are known.
pub const HAS_CO2E: u8 = 2;
pub const HAS_FLOPS: u8 = 4;
pub const HAS_GPU_HOURS: u8 = 8;

/// Weighted sums of one cell, or one record's (already weighted) contribution to it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measures {
    pub records: i64,
    pub requests: f64,
    pub input_tokens: f64,
    pub output_tokens: f64,
    pub energy_acc_kwh: f64,
    pub energy_it_kwh: f64,
    pub energy_kwh: f64,
    pub energy_kwh_low: f64,
    pub energy_kwh_high: f64,
    pub co2e_location_kg: f64,
    pub co2e_market_kg: f64,
    pub flops: f64,
    pub gpu_hours: f64,
    pub fallback_kwh: f64,
    pub unresolved_kwh: f64,
    pub unestimated_requests: f64,
    /// Weighted requests whose status says they failed (section 10); estimated as usual.
    pub failed_requests: f64,
    /// Weighted requests served from a cache (section 10): method `cached`, zero energy.
    pub cached_requests: f64,
    /// `HAS_*` bits: which nullable measures had a contribution.
    pub flags: u8,
}

impl Measures {
    #[inline]
    pub fn add(&mut self, o: &Measures) {
        self.records += o.records;
        self.requests += o.requests;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.energy_acc_kwh += o.energy_acc_kwh;
        self.energy_it_kwh += o.energy_it_kwh;
        self.energy_kwh += o.energy_kwh;
        self.energy_kwh_low += o.energy_kwh_low;
        self.energy_kwh_high += o.energy_kwh_high;
        self.co2e_location_kg += o.co2e_location_kg;
        self.co2e_market_kg += o.co2e_market_kg;
        self.flops += o.flops;
        self.gpu_hours += o.gpu_hours;
        self.fallback_kwh += o.fallback_kwh;
        self.unresolved_kwh += o.unresolved_kwh;
        self.unestimated_requests += o.unestimated_requests;
        self.failed_requests += o.failed_requests;
        self.cached_requests += o.cached_requests;
        self.flags |= o.flags;
    }

    /// The name of the first measure that is not finite, if any. The record and pack bounds
    /// make this impossible (record.rs); it is checked per cell, not per record, before cells
    /// leave the engine, so that a bug can never put an infinity into the ledger.
    pub fn first_non_finite(&self) -> Option<&'static str> {
        float_measures().iter().zip(self.floats()).find(|(_, v)| !v.is_finite()).map(|(c, _)| c.name)
    }

    /// Measures from `records`, the float measures in the order of [`float_measures`], and
    /// the `HAS_*` flags (the inverse of [`Self::floats`]).
    pub fn from_parts(records: i64, f: [f64; 17], flags: u8) -> Measures {
        Measures {
            records,
            requests: f[0],
            input_tokens: f[1],
            output_tokens: f[2],
            energy_acc_kwh: f[3],
            energy_it_kwh: f[4],
            energy_kwh: f[5],
            energy_kwh_low: f[6],
            energy_kwh_high: f[7],
            co2e_location_kg: f[8],
            co2e_market_kg: f[9],
            flops: f[10],
            gpu_hours: f[11],
            fallback_kwh: f[12],
            unresolved_kwh: f[13],
            unestimated_requests: f[14],
            failed_requests: f[15],
            cached_requests: f[16],
            flags,
        }
    }

    /// The float measures in the order of [`float_measures`].
    pub fn floats(&self) -> [f64; 17] {
        [
            self.requests,
            self.input_tokens,
            self.output_tokens,
            self.energy_acc_kwh,
            self.energy_it_kwh,
            self.energy_kwh,
            self.energy_kwh_low,
            self.energy_kwh_high,
            self.co2e_location_kg,
            self.co2e_market_kg,
            self.flops,
            self.gpu_hours,
            self.fallback_kwh,
            self.unresolved_kwh,
            self.unestimated_requests,
            self.failed_requests,
            self.cached_requests,
        ]
    }
}

/// The cell store: keys and measures in parallel vectors, a hash index into them.
#[derive(Debug, Default, Clone)]
pub struct Aggregate {
    index: FxHashMap<CellKey, u32>,
    keys: Vec<CellKey>,
    cells: Vec<Measures>,
    /// The previous record's cell: consecutive records of a time-ordered log mostly share it.
    last: Option<(CellKey, u32)>,
}

impl Aggregate {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.keys.clear();
        self.cells.clear();
        self.last = None;
    }

    #[inline]
    pub fn add(&mut self, key: CellKey, m: &Measures) {
        if let Some((k, i)) = self.last {
            if k == key {
                self.cells[i as usize].add(m);
                return;
            }
        }
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.cells.len() as u32;
                self.index.insert(key, i);
                self.keys.push(key);
                self.cells.push(Measures::default());
                i
            }
        };
        self.cells[i as usize].add(m);
        self.last = Some((key, i));
    }

    /// Fold another aggregate (same id space) into this one.
    pub fn merge(&mut self, other: Aggregate) {
        if self.is_empty() {
            *self = other;
            self.last = None;
            return;
        }
        for (k, m) in other.keys.into_iter().zip(other.cells) {
            self.add(k, &m);
        }
    }

    /// Iterate cells (unordered).
    pub fn cells(&self) -> impl Iterator<Item = (&CellKey, &Measures)> {
        self.keys.iter().zip(self.cells.iter())
    }

    /// The keys and the measures, as parallel slices (unordered).
    pub fn parts(&self) -> (&[CellKey], &[Measures]) {
        (&self.keys, &self.cells)
    }

    /// The cells as one batch of [`aggregate_schema`], sorted by (source, hour, model, site,
    /// zone, hardware, method) on the *names* (ids depend on which thread saw a string first;
    /// names do not), nulls first. `names[id]` is an interned string, `source_names[i]` the
    /// input of file index `i`.
    pub fn to_record_batch(&self, names: &[Arc<str>], source_names: &[String]) -> Result<RecordBatch> {
        let ranks = crate::cells::Ranks::new(names, source_names);
        crate::cells::aggregate_batch(self, &ranks, names, source_names)
    }
}

/// The aggregate schema of `docs/internals.md`.
pub fn aggregate_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = vec![
                Field::new("source", DataType::Utf8, false),
                Field::new("hour", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
                Field::new("model", DataType::Utf8, false),
                Field::new("site", DataType::Utf8, true),
                Field::new("zone", DataType::Utf8, true),
                Field::new("hardware", DataType::Utf8, true),
                Field::new("method", DataType::Utf8, false),
                Field::new(MEASURE_COLUMNS[0].name, DataType::Int64, MEASURE_COLUMNS[0].nullable),
            ];
            fields.extend(float_measures().iter().map(|c| Field::new(c.name, DataType::Float64, c.nullable)));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{Method, NO_ID};
    use arrow_array::{Array, Float64Array};

    #[test]
    fn schema_is_exactly_the_documented_one() {
        let s = aggregate_schema();
        let got: Vec<(String, DataType, bool)> =
            s.fields().iter().map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable())).collect();
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let mut want = vec![
            ("source".to_string(), DataType::Utf8, false),
            ("hour".to_string(), utc, false),
            ("model".to_string(), DataType::Utf8, false),
            ("site".to_string(), DataType::Utf8, true),
            ("zone".to_string(), DataType::Utf8, true),
            ("hardware".to_string(), DataType::Utf8, true),
            ("method".to_string(), DataType::Utf8, false),
            ("records".to_string(), DataType::Int64, false),
        ];
        for (n, nullable) in [
            ("requests", false),
            ("input_tokens", false),
            ("output_tokens", false),
            ("energy_acc_kwh", true),
            ("energy_it_kwh", true),
            ("energy_kwh", true),
            ("energy_kwh_low", true),
            ("energy_kwh_high", true),
            ("co2e_location_kg", true),
            ("co2e_market_kg", true),
            ("flops", true),
            ("gpu_hours", true),
            ("fallback_kwh", true),
            ("unresolved_kwh", true),
            ("unestimated_requests", false),
            ("failed_requests", false),
            ("cached_requests", false),
        ] {
            want.push((n.to_string(), DataType::Float64, nullable));
        }
        assert_eq!(got, want);
    }

    fn key(hour: i64, method: Method) -> CellKey {
        CellKey { source: 0, hour, model: 0, site: NO_ID, zone: 1, hardware: NO_ID, method }
    }

    #[test]
    fn null_rules_and_merge() {
        let names: Vec<Arc<str>> = vec!["m".into(), "DE".into()];
        let src = vec!["f".to_string()];
        let mut a = Aggregate::new();
        // Cell 1 (hour 0, measured): energy, co2e; one record has flops, none gpu_hours.
        let e = Measures {
            records: 1,
            requests: 1.0,
            energy_kwh: 2.0,
            co2e_location_kg: 1.0,
            flags: HAS_ENERGY | HAS_CO2E,
            ..Default::default()
        };
        a.add(key(0, Method::Measured), &e);
        a.add(key(0, Method::Measured), &Measures { flops: 5.0, flags: e.flags | HAS_FLOPS, ..e });
        // Cell 2 (hour 1, tokens): energy but unresolved intensity.
        a.add(
            key(1, Method::Tokens),
            &Measures { records: 1, energy_kwh: 3.0, unresolved_kwh: 3.0, flags: HAS_ENERGY, ..Default::default() },
        );
        // Cell 3 (hour 2, none): no energy.
        let mut b = Aggregate::new();
        b.add(
            key(2, Method::None),
            &Measures {
                records: 1,
                requests: 2.0,
                unestimated_requests: 2.0,
                gpu_hours: 1.0,
                flags: HAS_GPU_HOURS,
                ..Default::default()
            },
        );
        b.add(key(0, Method::Measured), &e);
        a.merge(b);
        assert_eq!(a.len(), 3);
        let batch = a.to_record_batch(&names, &src).unwrap();
        let f = |c: &str| batch.column_by_name(c).unwrap().as_any().downcast_ref::<Float64Array>().unwrap().clone();
        let v = |c: &str| (0..3).map(|i| f(c).is_valid(i).then(|| f(c).value(i))).collect::<Vec<_>>();
        assert_eq!(v("energy_kwh"), [Some(6.0), Some(3.0), None]);
        assert_eq!(v("co2e_location_kg"), [Some(3.0), None, None]);
        assert_eq!(v("unresolved_kwh"), [Some(0.0), Some(3.0), None]);
        assert_eq!(v("flops"), [Some(5.0), None, None]);
        assert_eq!(v("gpu_hours"), [None, None, Some(1.0)]);
        assert_eq!(v("unestimated_requests"), [Some(0.0), Some(0.0), Some(2.0)]);
        assert_eq!(v("requests"), [Some(3.0), Some(0.0), Some(2.0)]);
        assert_eq!(batch.column_by_name("site").unwrap().null_count(), 3);
        // An id without a name is an error, not a wrong label.
        assert!(a.to_record_batch(&names[..1], &src).is_err());
    }
}
