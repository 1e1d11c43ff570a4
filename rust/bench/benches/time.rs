//! Timestamp parsing: `time::parse_ts` on each textual form the readers meet, and the epoch
//! number conversions used for numeric `ts` columns (JSON numbers, Parquet/Arrow integers and
//! floats). Each iteration converts a batch of 4096 distinct values.

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use wattledger_bench::{fleet, rfc3339, rfc3339_offset, Rng};
use wattledger_engine::time::{epoch_float_to_us, epoch_int_to_us, parse_ts, US_PER_SECOND};

const N: usize = 4096;

fn main() {
    divan::main();
}

/// The forms benchmarked one by one; `mixed` draws each value's form at random.
const FORMS: &[&str] = &[
    "rfc3339_ms_z",
    "rfc3339_s_z",
    "rfc3339_us_offset",
    "rfc3339_ms_neg_offset",
    "space_us_naive",
    "naive_s",
    "date_only",
    "epoch_s_text",
    "epoch_ms_float_text",
    "mixed",
];

fn render(form: &str, ts_us: i64, rng: &mut Rng) -> String {
    match form {
        // What most services (and wattledger.synthetic) log.
        "rfc3339_ms_z" => rfc3339(ts_us, 3, b'T', "Z"),
        "rfc3339_s_z" => rfc3339(ts_us, 0, b'T', "Z"),
        // Python's isoformat() of an aware datetime (LiteLLM, many Python services).
        "rfc3339_us_offset" => rfc3339_offset(ts_us, 6, 0),
        "rfc3339_ms_neg_offset" => rfc3339_offset(ts_us, 3, -300),
        // Python's str() of a naive datetime, and SQL exports.
        "space_us_naive" => rfc3339(ts_us, 6, b' ', ""),
        "naive_s" => rfc3339(ts_us, 0, b'T', ""),
        "date_only" => rfc3339(ts_us, 0, b'T', "")[..10].to_string(),
        "epoch_s_text" => ts_us.div_euclid(US_PER_SECOND).to_string(),
        "epoch_ms_float_text" => format!("{:.3}", ts_us as f64 / 1000.0),
        "mixed" => {
            let f = FORMS[rng.below(FORMS.len() - 1)];
            render(f, ts_us, rng)
        }
        _ => unreachable!("unknown form {form}"),
    }
}

fn timestamps() -> Vec<i64> {
    fleet(N, 24 * 30, 7).iter().map(|r| r.ts_us).collect()
}

#[divan::bench(args = FORMS, sample_count = 100, max_time = 1.5)]
fn parse_ts_form(bencher: Bencher, form: &str) {
    let mut rng = Rng::new(11);
    let texts: Vec<String> = timestamps().into_iter().map(|t| render(form, t, &mut rng)).collect();
    assert!(texts.iter().all(|t| parse_ts(t.as_bytes()).is_some()), "every {form} value parses");
    let bytes: usize = texts.iter().map(String::len).sum();
    bencher.counter(ItemsCount::new(N)).counter(BytesCount::new(bytes)).bench(|| {
        let mut acc = 0i64;
        for t in &texts {
            acc = acc.wrapping_add(parse_ts(black_box(t.as_bytes())).unwrap_or(0));
        }
        acc
    });
}

/// Integers in all four magnitudes the unit detection distinguishes (s, ms, us, ns).
#[divan::bench(sample_count = 100, max_time = 1.0)]
fn epoch_int_mixed_units(bencher: Bencher) {
    let mut rng = Rng::new(13);
    let values: Vec<i64> = timestamps()
        .into_iter()
        .map(|us| match rng.below(4) {
            0 => us / US_PER_SECOND,
            1 => us / 1000,
            2 => us,
            _ => us * 1000,
        })
        .collect();
    bencher.counter(ItemsCount::new(N)).bench(|| {
        let mut acc = 0i64;
        for &v in &values {
            acc = acc.wrapping_add(epoch_int_to_us(black_box(v)).unwrap_or(0));
        }
        acc
    });
}

/// Floats with a fraction: seconds (Python's `time.time()`) and milliseconds.
#[divan::bench(sample_count = 100, max_time = 1.0)]
fn epoch_float_mixed_units(bencher: Bencher) {
    let mut rng = Rng::new(17);
    let values: Vec<f64> =
        timestamps().into_iter().map(|us| if rng.below(2) == 0 { us as f64 / 1e6 } else { us as f64 / 1e3 }).collect();
    bencher.counter(ItemsCount::new(N)).bench(|| {
        let mut acc = 0i64;
        for &v in &values {
            acc = acc.wrapping_add(epoch_float_to_us(black_box(v)).unwrap_or(0));
        }
        acc
    });
}
