"""Accelerator energy inside a Polars query, computed by the Rust kernel.

Why: the DuckDB functions (:mod:`wattledger.udf`) answer "what would these logs cost under
this config?" in SQL; a Polars user should get the same number in a Polars query, from the
same kernel entry, so one record has one E_acc whichever way it is asked for.

How: each expression is one ``map_batches`` over a struct of its input columns, marked
elementwise, so Polars calls it once per batch (in ``select``, ``with_columns``, inside
``group_by().agg``, on the streaming engine) and never per row. A batch's columns reach the
engine through the Arrow C stream interface (``__arrow_c_stream__``) without a copy: strings
stay Polars' string views and integers Int64, read in place by the kernel; its two result
arrays come back the same way. The formula is the one an ingest applies (methodology section
3, and section 10 for cached requests): ``accelerator_energy_wh`` in the engine's ``udf``
module, which the DuckDB functions call too.

Usage::

    import polars as pl
    import wattledger.polars as wlp  # also registers the `wl` namespace on expressions

    df.with_columns(
        wlp.energy_wh(model="model", input_tokens="input_tokens", output_tokens="output_tokens"),
        pl.col("model").wl.energy_method(input_tokens="input_tokens", output_tokens="output_tokens"),
    )

Every input other than ``model`` is optional: one not given counts as null in every row, as
a column a log does not have. A ``str`` names a column; any expression works (``pl.lit("fra-1")``
for one site for every row). Only E_acc: facility overheads, PUE and grid intensity depend on
the site and the hour and are what :func:`wattledger.estimate` and the ledger hold. Multiply by
``weight`` yourself when records stand for several requests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack

import polars as pl

from wattledger import _core
from wattledger.config import load_config
from wattledger.errors import UsageError

__all__ = ["Columns", "EnergyNamespace", "energy", "energy_method", "energy_wh"]

#: A column by name, or an expression.
Column = str | pl.Expr

#: A methodology pack: a TOML path, a loaded pack, or None for the built-in one.
ConfigArg = str | os.PathLike[str] | _core.Config | None

Kind = Literal["strings", "integers", "numbers", "booleans"]

#: The kernel's inputs beside ``model`` and what each column must hold.
_KINDS: dict[str, Kind] = {
    "model": "strings",
    "hardware": "strings",
    "site": "strings",
    "gpus": "integers",
    "input_tokens": "integers",
    "output_tokens": "integers",
    "duration_s": "numbers",
    "energy_j": "numbers",
    "status": "strings",
    "cache_hit": "booleans",
}

#: The dtype of each kind, for an all-null column and the error message.
_DTYPES: dict[Kind, pl.DataType] = {
    "strings": pl.String(),
    "integers": pl.Int64(),
    "numbers": pl.Float64(),
    "booleans": pl.Boolean(),
}
_CAST_TO = {"strings": "pl.String", "integers": "pl.Int64", "numbers": "pl.Float64", "booleans": "pl.Boolean"}

#: The struct ``energy`` returns.
ENERGY_DTYPE = pl.Struct({"energy_wh": pl.Float64, "method": pl.String})


def _accepts(kind: Kind, dtype: pl.DataType) -> bool:
    """Whether the kernel reads a column of ``dtype`` as ``kind``."""
    if kind == "strings":
        return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)
    if kind == "integers":  # whole floats count, as a log reader takes them
        return dtype.is_integer() or dtype.is_float()
    if kind == "numbers":
        return dtype.is_numeric()
    return dtype == pl.Boolean or dtype.is_integer()  # a cache flag may be 0/1


@dataclass(frozen=True)
class _Inputs:
    """The columns of one expression: kernel input name -> the user's expression."""

    function: str
    columns: dict[str, pl.Expr]
    config: _core.Config

    def run(self, batch: pl.Series) -> tuple[pl.Series, pl.Series]:
        """The kernel over one batch (a struct series with one field per input)."""
        fields = {name: batch.struct.field(name) for name in self.columns}
        for name, series in fields.items():
            if series.dtype == pl.Null:
                # All null (`pl.lit(None)`): typed, because Polars exports a Null column with a
                # buffer Arrow's Null type does not have, which the import refuses.
                fields[name] = series.cast(_DTYPES[_KINDS[name]])
            elif not _accepts(_KINDS[name], series.dtype):
                raise UsageError(
                    f"{self.function}: {name} is a column of {series.dtype}, the kernel needs "
                    f"{_KINDS[name]}; cast it, e.g. .cast({_CAST_TO[_KINDS[name]]})"
                )
        wh, method = _core.accelerator_energy_wh(
            self.config,
            fields["model"],
            fields.get("hardware"),
            fields.get("site"),
            fields.get("input_tokens"),
            fields.get("output_tokens"),
            fields.get("duration_s"),
            fields.get("energy_j"),
            fields.get("gpus"),
            status=fields.get("status"),
            cache_hit=fields.get("cache_hit"),
        )
        return pl.Series("energy_wh", wh), pl.Series("method", method)

    def expr(self, function: Callable[[pl.Series], pl.Series], dtype: pl.DataType, name: str) -> pl.Expr:
        # The struct gives the function one series per input, literals broadcast to the
        # batch's length; elementwise lets Polars split the work into batches anywhere.
        fields = [expr.alias(field) for field, expr in self.columns.items()]
        mapped: pl.Expr = pl.struct(fields).map_batches(function, return_dtype=dtype, is_elementwise=True)
        return mapped.alias(name)


class Columns(TypedDict, total=False):
    """The kernel's inputs beside ``model`` (see the module docs)."""

    input_tokens: Column | None
    output_tokens: Column | None
    hardware: Column | None
    site: Column | None
    gpus: Column | None
    duration_s: Column | None
    energy_j: Column | None
    status: Column | None
    cache_hit: Column | None


def _inputs(function: str, config: ConfigArg, model: Column, columns: Columns) -> _Inputs:
    exprs: dict[str, pl.Expr] = {}
    for name, column in {"model": model, **columns}.items():
        if name not in _KINDS:
            raise UsageError(f"{function}: no input named {name}; the inputs are {', '.join(_KINDS)}")
        if column is None:
            continue
        if isinstance(column, str):
            exprs[name] = pl.col(column)
        elif isinstance(column, pl.Expr):
            exprs[name] = column
        else:
            raise UsageError(
                f"{function}: {name} must be a column name or a Polars expression, not "
                f"{type(column).__name__}; for one value in every row pass pl.lit(value)"
            )
    return _Inputs(function, exprs, load_config(config))


def energy_wh(*, model: Column, config: ConfigArg = None, **columns: Unpack[Columns]) -> pl.Expr:
    """Accelerator energy E_acc in Wh per row (``Float64``, named ``energy_wh``), as an ingest
    computes it with ``config`` (a pack path or :class:`Config`; ``None``: the built-in pack).

    Null where no method applies (method ``none``, e.g. an unknown model with tokens only),
    where the model is null, and where an ingest would reject the row (a negative, non-finite or
    implausible number, a fractional token count). A cached request (``status`` listed under
    ``[outcomes] cached``, or ``cache_hit`` true) is 0.0. ``site`` gives the row's site (its
    hardware, gpus and factors fill gaps as in an ingest); without it the pack's
    ``[defaults]`` apply and ``gpus`` is 1 (its ``[defaults] site`` is not applied: zone is not
    an input, so pass that site with ``site=``)."""
    inputs = _inputs("energy_wh", config, model, columns)
    return inputs.expr(lambda batch: inputs.run(batch)[0], pl.Float64(), "energy_wh")


def energy_method(*, model: Column, config: ConfigArg = None, **columns: Unpack[Columns]) -> pl.Expr:
    """The method that gave :func:`energy_wh` (``String``, named ``method``): ``measured``,
    ``tokens``, ``gpu_time``, ``flops``, ``none`` or ``cached``; null where the model is null
    or an ingest would reject the row."""
    inputs = _inputs("energy_method", config, model, columns)
    return inputs.expr(lambda batch: inputs.run(batch)[1], pl.String(), "method")


def energy(*, model: Column, config: ConfigArg = None, **columns: Unpack[Columns]) -> pl.Expr:
    """Both at once, from one kernel pass: a struct ``energy`` with fields ``energy_wh`` and
    ``method`` (``.struct.unnest()`` makes them columns)."""
    inputs = _inputs("energy", config, model, columns)

    def both(batch: pl.Series) -> pl.Series:
        wh, method = inputs.run(batch)
        return pl.struct(wh, method, eager=True).alias("energy")

    return inputs.expr(both, ENERGY_DTYPE, "energy")


@pl.api.register_expr_namespace("wl")
class EnergyNamespace:
    """``pl.col("model").wl.energy_wh(...)``: the functions above with the expression as
    ``model``. Registered when :mod:`wattledger.polars` is imported."""

    def __init__(self, model: pl.Expr) -> None:
        self._model = model

    def energy_wh(self, *, config: ConfigArg = None, **columns: Unpack[Columns]) -> pl.Expr:
        """:func:`wattledger.polars.energy_wh` of this model column."""
        return energy_wh(model=self._model, config=config, **columns)

    def energy_method(self, *, config: ConfigArg = None, **columns: Unpack[Columns]) -> pl.Expr:
        """:func:`wattledger.polars.energy_method` of this model column."""
        return energy_method(model=self._model, config=config, **columns)

    def energy(self, *, config: ConfigArg = None, **columns: Unpack[Columns]) -> pl.Expr:
        """:func:`wattledger.polars.energy` of this model column."""
        return energy(model=self._model, config=config, **columns)
