//! Vectorised per-row accelerator energy for what-if queries (the DuckDB `wl_energy_wh` UDF).
//! Calls the kernel's own formula row by row: one formula, one place.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, StringArray};
use arrow_schema::DataType;

use crate::error::{Error, Result};
use crate::kernel::Methodology;

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
                let (e, meth) = m.accelerator_energy_wh(
                    model_name,
                    opt_s(hardware, i),
                    opt_s(site, i),
                    opt_i(input, i),
                    opt_i(output, i),
                    opt_f(duration, i),
                    opt_f(energy, i),
                    opt_i(gpus, i),
                );
                wh.push(e);
                method.push(Some(meth.name()));
            }
        }
    }
    Ok((Float64Array::from(wh), StringArray::from(method)))
}
