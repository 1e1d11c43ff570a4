//! Vectorised per-row accelerator energy for what-if queries (the DuckDB `wl_energy_wh` UDF).
//! Calls the kernel's own formula row by row: one formula, one place. A row an ingest would
//! reject (a negative, non-finite or implausible number, a name with a control character:
//! [`Draft::finish`], docs/bounds.md) gets NULL energy and method, never a negative energy.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, StringArray};
use arrow_schema::DataType;

use crate::error::{Error, Result};
use crate::kernel::Methodology;
use crate::record::Draft;

/// The inputs of [`accelerator_energy_wh`], one Arrow array each, all of one length.
pub struct EnergyInputs {
    pub model: ArrayRef,
    pub hardware: ArrayRef,
    pub site: ArrayRef,
    pub input_tokens: ArrayRef,
    pub output_tokens: ArrayRef,
    pub duration_s: ArrayRef,
    pub energy_j: ArrayRef,
    pub gpus: ArrayRef,
}

fn cast(name: &str, a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    arrow_cast::cast(a, to).map_err(|e| Error::Usage(format!("{name}: cannot read as {to}: {e}")))
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
    ];
    if let Some((name, a)) = all.iter().find(|(_, a)| a.len() != n) {
        return Err(Error::Usage(format!("{name} has {} rows, model has {n}", a.len())));
    }
    let model = cast("model", &inp.model, &DataType::Utf8)?;
    let hardware = cast("hardware", &inp.hardware, &DataType::Utf8)?;
    let site = cast("site", &inp.site, &DataType::Utf8)?;
    let input = cast("input_tokens", &inp.input_tokens, &DataType::Int64)?;
    let output = cast("output_tokens", &inp.output_tokens, &DataType::Int64)?;
    let duration = cast("duration_s", &inp.duration_s, &DataType::Float64)?;
    let energy = cast("energy_j", &inp.energy_j, &DataType::Float64)?;
    let gpus = cast("gpus", &inp.gpus, &DataType::Int64)?;
    let (model, hardware, site) = (model.as_string::<i32>(), hardware.as_string::<i32>(), site.as_string::<i32>());
    let (input, output, gpus) =
        (input.as_primitive::<Int64Type>(), output.as_primitive::<Int64Type>(), gpus.as_primitive::<Int64Type>());
    let (duration, energy) = (duration.as_primitive::<Float64Type>(), energy.as_primitive::<Float64Type>());
    fn opt_s(a: &StringArray, i: usize) -> Option<&str> {
        (!a.is_null(i)).then(|| a.value(i)).filter(|s| !s.is_empty())
    }
    let opt_i = |a: &arrow_array::Int64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    let opt_f = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));

    let mut wh = Vec::with_capacity(n);
    let mut method = Vec::with_capacity(n);
    for i in 0..n {
        match opt_s(model, i) {
            None => {
                wh.push(None);
                method.push(None);
            }
            Some(model_name) => {
                // The same validation as a record read from a log (the time is not an input).
                let draft = Draft {
                    ts_us: Some(0),
                    model: Some(model_name),
                    site: opt_s(site, i),
                    hardware: opt_s(hardware, i),
                    gpus: opt_i(gpus, i),
                    input_tokens: opt_i(input, i),
                    output_tokens: opt_i(output, i),
                    duration_s: opt_f(duration, i),
                    energy_j: opt_f(energy, i),
                    ..Draft::default()
                };
                let Ok(r) = draft.finish() else {
                    wh.push(None);
                    method.push(None);
                    continue;
                };
                let (e, meth) = m.accelerator_energy_wh(
                    r.model,
                    r.hardware,
                    r.site,
                    r.input_tokens,
                    r.output_tokens,
                    r.duration_s,
                    r.energy_j,
                    r.gpus,
                );
                wh.push(e);
                method.push(Some(meth.name()));
            }
        }
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
        }
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
}
