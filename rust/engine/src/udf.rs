//! Vectorised per-row accelerator energy for what-if queries: the DuckDB `wl_energy_wh`
//! functions and the Polars expressions (`wattledger.polars`). Calls the kernel's own formula
//! row by row: one formula, one place. A row an ingest would reject (a negative, non-finite or
//! implausible number, a fractional token count, a name with a control character:
//! [`Draft::finish`], docs/bounds.md) gets NULL energy and method, never a negative energy.
//!
//! Columns are read as the producer typed them, without a copy: strings as Utf8, LargeUtf8
//! (pyarrow) or Utf8View (Polars), integers as Int64. Only other widths, dictionaries and
//! all-null columns are converted first. A column of the wrong kind (text where a number
//! belongs) is an error naming the column, never a column of silent nulls.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, LargeStringArray, StringArray, StringViewArray,
};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::DataType;

use crate::error::{Error, Result};
use crate::kernel::Methodology;
use crate::record::Draft;

/// The inputs of [`accelerator_energy_wh`], one Arrow array each, all of one length. An input
/// the caller does not have is an all-null array (`arrow_array::new_null_array`).
pub struct EnergyInputs {
    pub model: ArrayRef,
    pub hardware: ArrayRef,
    pub site: ArrayRef,
    pub input_tokens: ArrayRef,
    pub output_tokens: ArrayRef,
    pub duration_s: ArrayRef,
    pub energy_j: ArrayRef,
    pub gpus: ArrayRef,
    /// The request's status (section 10); null reads as ok.
    pub status: ArrayRef,
    /// The log's cache flag (booleans, or integers 0/1).
    pub cache_hit: ArrayRef,
}

/// One array of a column handed over in chunks (a Polars series or a DuckDB vector may come
/// in several): the chunk itself when there is one, else their concatenation (the only copy).
pub fn one_array(name: &str, chunks: &[ArrayRef], data_type: &DataType) -> Result<ArrayRef> {
    match chunks {
        [] => Ok(arrow_array::new_empty_array(data_type)),
        [one] => Ok(one.clone()),
        many => {
            let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
            arrow_select::concat::concat(&refs).map_err(|e| Error::Usage(format!("{name}: {e}")))
        }
    }
}

fn wrong_type(name: &str, expected: &str, t: &DataType) -> Error {
    Error::Usage(format!("{name}: expected {expected}, got a column of {t}"))
}

/// Checked conversion: a value the target cannot hold is an error, not a null.
fn convert(name: &str, a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let strict = CastOptions { safe: false, ..Default::default() };
    cast_with_options(a, to, &strict).map_err(|e| Error::Usage(format!("{name}: cannot read as {to}: {e}")))
}

/// A string column, read in place.
enum Strs {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
}

impl Strs {
    fn new(name: &str, a: &ArrayRef) -> Result<Strs> {
        let t = a.data_type();
        Ok(match t {
            DataType::Utf8 => Strs::Utf8(a.as_string::<i32>().clone()),
            DataType::LargeUtf8 => Strs::Large(a.as_string::<i64>().clone()),
            DataType::Utf8View => Strs::View(a.as_string_view().clone()),
            DataType::Null => Strs::Utf8(StringArray::new_null(a.len())),
            DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                Strs::Utf8(convert(name, a, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            _ => return Err(wrong_type(name, "strings", t)),
        })
    }

    /// Row `i`'s value; null and empty are absent, as `Draft::finish` makes them.
    #[inline]
    fn get(&self, i: usize) -> Option<&str> {
        let v = match self {
            Strs::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::View(a) => (!a.is_null(i)).then(|| a.value(i)),
        };
        v.filter(|s| !s.is_empty())
    }
}

/// A row whose value an ingest would reject: its energy and method are null.
struct Invalid;

/// An integer column (tokens, gpus). Floats are accepted where they hold whole numbers, as a
/// log reader accepts them; a fractional value makes its row invalid.
enum Ints {
    I64(Int64Array),
    F64(Float64Array),
}

impl Ints {
    fn new(name: &str, a: &ArrayRef) -> Result<Ints> {
        let t = a.data_type();
        if *t == DataType::Int64 {
            return Ok(Ints::I64(a.as_primitive::<Int64Type>().clone()));
        }
        if t.is_integer() || *t == DataType::Null {
            // A UInt64 beyond i64 fails the checked conversion: read it as a float (its row is
            // then out of bounds and invalid) rather than as a silent null.
            if let Ok(c) = convert(name, a, &DataType::Int64) {
                return Ok(Ints::I64(c.as_primitive::<Int64Type>().clone()));
            }
        }
        if t.is_numeric() {
            return Ok(Ints::F64(convert(name, a, &DataType::Float64)?.as_primitive::<Float64Type>().clone()));
        }
        Err(wrong_type(name, "integers", t))
    }

    #[inline]
    fn get(&self, i: usize) -> std::result::Result<Option<i64>, Invalid> {
        match self {
            Ints::I64(a) => Ok((!a.is_null(i)).then(|| a.value(i))),
            Ints::F64(a) if a.is_null(i) => Ok(None),
            Ints::F64(a) => {
                let v = a.value(i);
                // 2^63 is exact in f64: below it the cast is exact for whole numbers.
                if v.fract() == 0.0 && v.abs() < 9.223_372_036_854_776e18 {
                    Ok(Some(v as i64))
                } else {
                    Err(Invalid)
                }
            }
        }
    }
}

fn floats(name: &str, a: &ArrayRef) -> Result<Float64Array> {
    let t = a.data_type();
    if *t == DataType::Float64 {
        return Ok(a.as_primitive::<Float64Type>().clone());
    }
    if t.is_numeric() || *t == DataType::Null {
        return Ok(convert(name, a, &DataType::Float64)?.as_primitive::<Float64Type>().clone());
    }
    Err(wrong_type(name, "numbers", t))
}

/// A cache flag: booleans, or integers where 0 and 1 mean false and true (as a log reader
/// reads them); another integer makes its row invalid.
enum Flags {
    Bool(BooleanArray),
    Int(Ints),
}

impl Flags {
    fn new(name: &str, a: &ArrayRef) -> Result<Flags> {
        match a.data_type() {
            DataType::Boolean => Ok(Flags::Bool(a.as_boolean().clone())),
            DataType::Null => Ok(Flags::Bool(BooleanArray::new_null(a.len()))),
            t if t.is_integer() => Ok(Flags::Int(Ints::new(name, a)?)),
            t => Err(wrong_type(name, "booleans", t)),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> std::result::Result<Option<bool>, Invalid> {
        match self {
            Flags::Bool(a) => Ok((!a.is_null(i)).then(|| a.value(i))),
            Flags::Int(a) => match a.get(i)? {
                None => Ok(None),
                Some(v @ (0 | 1)) => Ok(Some(v == 1)),
                Some(_) => Err(Invalid),
            },
        }
    }
}

/// E_acc in Wh per row (null where no method applies or the model is null), and the method.
pub fn accelerator_energy_wh(m: &Methodology, inp: &EnergyInputs) -> Result<(Float64Array, StringArray)> {
    let n = inp.model.len();
    let all = [
        ("model", &inp.model),
        ("hardware", &inp.hardware),
        ("site", &inp.site),
        ("input_tokens", &inp.input_tokens),
        ("output_tokens", &inp.output_tokens),
        ("duration_s", &inp.duration_s),
        ("energy_j", &inp.energy_j),
        ("gpus", &inp.gpus),
        ("status", &inp.status),
        ("cache_hit", &inp.cache_hit),
    ];
    if let Some((name, a)) = all.iter().find(|(_, a)| a.len() != n) {
        return Err(Error::Usage(format!("{name} has {} rows, model has {n}", a.len())));
    }
    let model = Strs::new("model", &inp.model)?;
    let hardware = Strs::new("hardware", &inp.hardware)?;
    let site = Strs::new("site", &inp.site)?;
    let status = Strs::new("status", &inp.status)?;
    let input = Ints::new("input_tokens", &inp.input_tokens)?;
    let output = Ints::new("output_tokens", &inp.output_tokens)?;
    let gpus = Ints::new("gpus", &inp.gpus)?;
    let duration = floats("duration_s", &inp.duration_s)?;
    let energy = floats("energy_j", &inp.energy_j)?;
    let cache_hit = Flags::new("cache_hit", &inp.cache_hit)?;
    let opt_f = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));

    let row = |i: usize| -> Option<(Option<f64>, &'static str)> {
        // The same validation as a record read from a log (the time is not an input).
        let draft = Draft {
            ts_us: Some(0),
            model: Some(model.get(i)?),
            site: site.get(i),
            hardware: hardware.get(i),
            gpus: gpus.get(i).ok()?,
            input_tokens: input.get(i).ok()?,
            output_tokens: output.get(i).ok()?,
            duration_s: opt_f(&duration, i),
            energy_j: opt_f(&energy, i),
            status: status.get(i),
            cache_hit: cache_hit.get(i).ok()?,
            ..Draft::default()
        };
        let r = draft.finish().ok()?;
        let (e, meth) = m.accelerator_energy_wh(
            m.outcome(r.status, r.cache_hit),
            r.model,
            r.hardware,
            r.site,
            r.input_tokens,
            r.output_tokens,
            r.duration_s,
            r.energy_j,
            r.gpus,
        );
        Some((e, meth.name()))
    };
    let mut wh = Vec::with_capacity(n);
    let mut method = Vec::with_capacity(n);
    for i in 0..n {
        let (e, meth) = row(i).map_or((None, None), |(e, meth)| (e, Some(meth)));
        wh.push(e);
        method.push(meth);
    }
    Ok((Float64Array::from(wh), StringArray::from(method)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::grid::Grid;
    use arrow_array::Int64Array;
    use std::sync::Arc;

    fn inputs(input: Vec<Option<i64>>, duration: Vec<Option<f64>>, energy: Vec<Option<f64>>) -> EnergyInputs {
        let n = input.len();
        let s = |v: Option<&str>| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
        EnergyInputs {
            model: s(Some("m")),
            hardware: s(Some("h")),
            site: s(None),
            input_tokens: Arc::new(Int64Array::from(input)),
            output_tokens: Arc::new(Int64Array::from(vec![None::<i64>; n])),
            duration_s: Arc::new(Float64Array::from(duration)),
            energy_j: Arc::new(Float64Array::from(energy)),
            gpus: Arc::new(Int64Array::from(vec![None::<i64>; n])),
            status: arrow_array::new_null_array(&DataType::Utf8, n),
            cache_hit: arrow_array::new_null_array(&DataType::Boolean, n),
        }
    }

    fn methodology(extra: &str) -> Methodology {
        let c = Config::from_toml(
            &format!(
                "[hardware.h]\ntdp_w = 700\n[models.m]\ncoefficients = [{{hardware = \"*\", wh_per_1k_input = 1.0, wh_per_1k_output = 1.0}}]\n{extra}"
            ),
            "t.toml",
        )
        .unwrap();
        Methodology::new(Arc::new(c), Arc::new(Grid::empty())).unwrap()
    }

    #[test]
    fn negative_non_finite_and_implausible_inputs_give_null_not_negative_energy() {
        let c = Config::from_toml(
            "[hardware.h]\ntdp_w = 700\n[models.m]\ncoefficients = [{hardware = \"*\", wh_per_1k_input = 1.0, wh_per_1k_output = 1.0}]\n",
            "t.toml",
        )
        .unwrap();
        let m = Methodology::new(Arc::new(c), Arc::new(Grid::empty())).unwrap();
        let inp = inputs(
            vec![Some(1000), Some(-1000), None, None, None, None, None],
            vec![None, None, Some(-3600.0), Some(f64::NAN), None, None, Some(1e9)],
            vec![None, None, None, None, Some(-3600.0), Some(f64::INFINITY), None],
        );
        let (wh, method) = accelerator_energy_wh(&m, &inp).unwrap();
        assert_eq!(wh.value(0), 1.0);
        assert_eq!(method.value(0), "tokens");
        for i in 1..7 {
            assert!(wh.is_null(i) && method.is_null(i), "row {i}: {:?}", wh.value(i));
        }
    }

    #[test]
    fn string_views_large_strings_and_narrow_integers_read_as_utf8_and_int64() {
        let m = methodology("");
        let mut inp = inputs(vec![Some(1000), Some(2000)], vec![None, None], vec![None, None]);
        inp.model = Arc::new(StringViewArray::from(vec![Some("m"), Some("m")]));
        inp.hardware = Arc::new(LargeStringArray::from(vec![Some("h"), None]));
        inp.input_tokens = Arc::new(arrow_array::Int32Array::from(vec![Some(1000), Some(2000)]));
        inp.gpus = arrow_array::new_null_array(&DataType::Null, 2);
        let (wh, method) = accelerator_energy_wh(&m, &inp).unwrap();
        assert_eq!((wh.value(0), wh.value(1)), (1.0, 2.0));
        assert_eq!((method.value(0), method.value(1)), ("tokens", "tokens"));
    }

    #[test]
    fn whole_floats_count_as_tokens_and_fractional_ones_invalidate_the_row() {
        let m = methodology("");
        let mut inp = inputs(vec![None, None, None], vec![None; 3], vec![None; 3]);
        inp.input_tokens = Arc::new(Float64Array::from(vec![Some(1000.0), Some(1000.5), None]));
        let (wh, method) = accelerator_energy_wh(&m, &inp).unwrap();
        assert_eq!((wh.value(0), method.value(0)), (1.0, "tokens"));
        assert!(wh.is_null(1) && method.is_null(1));
        // No tokens, no duration, no energy: no method applies (not an invalid row).
        assert!(wh.is_null(2));
        assert_eq!(method.value(2), "none");
    }

    #[test]
    fn cached_requests_are_a_known_zero_and_failed_ones_are_estimated() {
        let m = methodology("[outcomes]\ncached = [\"from_cache\"]\n");
        let mut inp = inputs(vec![Some(1000); 5], vec![None; 5], vec![None; 5]);
        inp.status =
            Arc::new(StringArray::from(vec![Some("from_cache"), Some("error"), None, Some("error"), Some("ok")]));
        inp.cache_hit = Arc::new(BooleanArray::from(vec![None, None, Some(true), Some(true), Some(false)]));
        let (wh, method) = accelerator_energy_wh(&m, &inp).unwrap();
        let got: Vec<_> = (0..5).map(|i| (wh.value(i), method.value(i))).collect();
        // Failed wins over cached (row 3), as in an ingest.
        assert_eq!(got, [(0.0, "cached"), (1.0, "tokens"), (0.0, "cached"), (1.0, "tokens"), (1.0, "tokens")]);
        // Integer flags read 0/1; another integer is a row an ingest would reject.
        inp.status = arrow_array::new_null_array(&DataType::Utf8, 5);
        inp.cache_hit = Arc::new(Int64Array::from(vec![Some(1), Some(0), Some(2), None, None]));
        let (wh, method) = accelerator_energy_wh(&m, &inp).unwrap();
        assert_eq!((wh.value(0), method.value(0), wh.value(1)), (0.0, "cached", 1.0));
        assert!(wh.is_null(2) && method.is_null(2));
    }

    #[test]
    fn a_column_of_the_wrong_kind_is_an_error_naming_it() {
        let m = methodology("");
        let mut inp = inputs(vec![Some(1)], vec![None], vec![None]);
        inp.input_tokens = Arc::new(StringArray::from(vec!["12"]));
        let e = accelerator_energy_wh(&m, &inp).err().unwrap().to_string();
        assert!(e.contains("input_tokens: expected integers, got a column of Utf8"), "{e}");
        let mut inp = inputs(vec![Some(1)], vec![None], vec![None]);
        inp.model = Arc::new(Int64Array::from(vec![1]));
        let e = accelerator_energy_wh(&m, &inp).err().unwrap().to_string();
        assert!(e.contains("model: expected strings, got a column of Int64"), "{e}");
    }

    #[test]
    fn chunks_are_joined_only_when_there_are_several() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![3]));
        let one = one_array("x", std::slice::from_ref(&a), &DataType::Int64).unwrap();
        assert!(Arc::ptr_eq(&one, &a), "a single chunk is used in place");
        let joined = one_array("x", &[a, b], &DataType::Int64).unwrap();
        assert_eq!(joined.as_primitive::<Int64Type>().values(), &[1, 2, 3]);
        assert_eq!(one_array("x", &[], &DataType::Utf8).unwrap().len(), 0);
    }
}
