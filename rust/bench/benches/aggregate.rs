//! Aggregation: `aggregate::Aggregate::add` (one hash look-up per record, or none when the
//! previous record hit the same cell) and `Aggregate::merge` (folding one worker's cells into
//! another's at the end of a scan), with key cardinality hours x models x sites x methods as
//! the kernel produces it.
//!
//! Contributions are generated directly as (key, measures) pairs in time order: models by Zipf
//! popularity, sites by traffic share, the zone and hardware of the site, the method mix of
//! the synthetic fleet. `span_hours` sets the cardinality: 24 (a day, a few thousand cells, so
//! nearly every add hits an existing cell) or 720 (a month, tens of thousands of cells).

use divan::counter::ItemsCount;
use divan::Bencher;
use wattledger_bench::{t0_us, Rng, MODELS, SITES};
use wattledger_engine::aggregate::{Aggregate, Measures, HAS_CO2E, HAS_ENERGY, HAS_FLOPS, HAS_GPU_HOURS};
use wattledger_engine::cell::{CellKey, Method};
use wattledger_engine::time::hour_of;

const RECORDS: usize = 200_000;

fn main() {
    divan::main();
}

fn contributions(span_hours: i64, seed: u64) -> Vec<(CellKey, Measures)> {
    let mut rng = Rng::new(seed);
    let model_w: Vec<f64> = (1..=MODELS.len()).map(|r| (r as f64).powf(-1.1)).collect();
    let site_w: Vec<f64> = SITES.iter().map(|s| s.2).collect();
    let method_w = [0.30, 0.40, 0.15, 0.10, 0.05];
    let h0 = hour_of(t0_us());
    (0..RECORDS)
        .map(|i| {
            let hour = h0 + (i as i64 * span_hours) / RECORDS as i64;
            let model = rng.pick(&model_w) as u32;
            let site = rng.pick(&site_w) as u32;
            // Ids as the kernel interns them: sites 0..8, zones and hardware after them.
            let key = CellKey {
                source: 0,
                hour,
                model: 100 + model,
                site,
                zone: 20 + site.min(5),
                hardware: 40 + site / 2,
                method: Method::ALL[rng.pick(&method_w)],
            };
            let tin = rng.lognormal(6.2, 1.1).round();
            let tout = rng.lognormal(5.3, 0.9).round();
            let e = (tout * 0.3 + tin * 0.01) / 3.6e6;
            let m = Measures {
                records: 1,
                requests: 1.0,
                input_tokens: tin,
                output_tokens: tout,
                energy_acc_kwh: e,
                energy_it_kwh: e * 1.6,
                energy_kwh: e * 1.9,
                energy_kwh_low: e * 1.3,
                energy_kwh_high: e * 2.5,
                co2e_location_kg: e * 0.5,
                co2e_market_kg: e * 0.3,
                flops: 2.0 * 7e10 * (tin + tout),
                gpu_hours: rng.f64() / 360.0,
                fallback_kwh: 0.0,
                unresolved_kwh: 0.0,
                unestimated_requests: 0.0,
                failed_requests: 0.0,
                cached_requests: 0.0,
                flags: HAS_ENERGY | HAS_CO2E | HAS_FLOPS | HAS_GPU_HOURS,
            };
            (key, m)
        })
        .collect()
}

fn build(contribs: &[(CellKey, Measures)]) -> Aggregate {
    let mut a = Aggregate::new();
    for (k, m) in contribs {
        a.add(*k, m);
    }
    a
}

/// Into an empty aggregate: cell creation included (a worker's first blocks).
#[divan::bench(args = [24, 720], sample_count = 30, sample_size = 1, max_time = 2)]
fn add_fresh(bencher: Bencher, span_hours: i64) {
    let contribs = contributions(span_hours, 3);
    bencher.counter(ItemsCount::new(RECORDS)).with_inputs(Aggregate::new).bench_local_values(|mut a| {
        for (k, m) in &contribs {
            a.add(*k, m);
        }
        a
    });
}

/// Into an aggregate that already has every cell: look-ups and sums only (steady state).
#[divan::bench(args = [24, 720], sample_count = 30, sample_size = 1, max_time = 2)]
fn add_warm(bencher: Bencher, span_hours: i64) {
    let contribs = contributions(span_hours, 3);
    let warm = build(&contribs);
    bencher.counter(ItemsCount::new(RECORDS)).with_inputs(|| warm.clone()).bench_local_values(|mut a| {
        for (k, m) in &contribs {
            a.add(*k, m);
        }
        a
    });
}

/// Two workers' aggregates over the same span (overlapping keys), merged; the counter is the
/// number of cells folded in.
#[divan::bench(args = [24, 720], sample_count = 30, sample_size = 1, max_time = 2)]
fn merge(bencher: Bencher, span_hours: i64) {
    let a = build(&contributions(span_hours, 5));
    let b = build(&contributions(span_hours, 6));
    bencher.counter(ItemsCount::new(b.len())).with_inputs(|| (a.clone(), b.clone())).bench_local_values(
        |(mut a, b)| {
            a.merge(b);
            a
        },
    );
}
