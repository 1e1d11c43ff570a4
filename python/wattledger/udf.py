"""Vectorised DuckDB scalar functions over the Rust kernel, for what-if queries on raw logs.

Why: "what would last month's logs cost under this config?" should be one SQL query over the
raw files (``read_json``, ``read_parquet``), not an ingest into a scratch ledger. The functions
are Arrow UDFs: DuckDB hands over whole vectors, the kernel computes them in Rust with the
same formula as ingest (methodology section 3), and no Python runs per row.

Registered by :func:`wattledger.connect` (and ``wattledger sql``), and on any DuckDB
connection by :func:`wattledger.register` (``wattledger.register(con, config="pack.toml")``):

- ``wl_energy_wh(model, hardware, input_tokens, output_tokens, duration_s, energy_j)``:
  accelerator energy E_acc in Wh per row (NULL where no method applies, and where an ingest
  would reject the row: a negative, non-finite or implausible number, a name with a control
  character; see docs/bounds.md; never a negative energy). No site: the
  config's ``[defaults]`` supply utilisation, concurrency and mfu, and ``gpus`` is 1.
- ``wl_energy_method(model, hardware, input_tokens, output_tokens, duration_s, energy_j)``:
  the method that applied (``measured|tokens|gpu_time|flops|none``).
- ``wl_energy_wh_at(model, hardware, site, gpus, input_tokens, output_tokens, duration_s,
  energy_j)`` and ``wl_energy_method_at(...)``: the same with the record's site (its hardware,
  gpus and factors fill gaps as in an ingest) and gpus.

The same kernel entry serves the Polars expressions of :mod:`wattledger.polars`.

Only E_acc: facility overheads, PUE and grid intensity depend on the site and the hour and are
what the ledger's hourly rows hold. Multiply by ``weight`` yourself when logs are sampled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
from duckdb import sqltypes
from duckdb.func import FunctionNullHandling, PythonUDFType

from wattledger import _core
from wattledger.config import load_config

_VARCHAR = sqltypes.VARCHAR
_BIGINT = sqltypes.BIGINT
_DOUBLE = sqltypes.DOUBLE

FUNCTIONS: tuple[str, ...] = ("wl_energy_wh", "wl_energy_method", "wl_energy_wh_at", "wl_energy_method_at")


def _kernel(
    config: _core.Config,
    model: Any,
    hardware: Any,
    site: Any | None,
    gpus: Any | None,
    input_tokens: Any,
    output_tokens: Any,
    duration_s: Any,
    energy_j: Any,
) -> tuple[pa.Array, pa.Array]:
    # DuckDB's vectors go to the kernel as they are (arrays or chunked arrays, through the
    # Arrow C interfaces): the binding reads every layout and fills an absent input with nulls.
    wh, method = _core.accelerator_energy_wh(
        config, model, hardware, site, input_tokens, output_tokens, duration_s, energy_j, gpus
    )
    return pa.array(wh), pa.array(method)


def register(
    con: duckdb.DuckDBPyConnection, config: str | os.PathLike[str] | _core.Config | None = None
) -> None:
    """Register the ``wl_*`` functions (:data:`FUNCTIONS`) on any DuckDB connection ``con``,
    computing with ``config``: a methodology pack's path, a loaded :class:`Config`, or None
    for the built-in pack. Public as :func:`wattledger.register`; :func:`wattledger.connect`
    calls it with the ledger's latest run config.

    ``null_handling="special"`` matters: DuckDB's default would return NULL for any row with a
    NULL argument, but a missing ``energy_j`` or token count is normal and picks another method.
    """
    config = load_config(config)
    six = [_VARCHAR, _VARCHAR, _BIGINT, _BIGINT, _DOUBLE, _DOUBLE]
    eight = [_VARCHAR, _VARCHAR, _VARCHAR, _BIGINT, _BIGINT, _BIGINT, _DOUBLE, _DOUBLE]

    def energy_wh(model: Any, hw: Any, inp: Any, out: Any, dur: Any, ej: Any) -> pa.Array:
        return _kernel(config, model, hw, None, None, inp, out, dur, ej)[0]

    def energy_method(model: Any, hw: Any, inp: Any, out: Any, dur: Any, ej: Any) -> pa.Array:
        return _kernel(config, model, hw, None, None, inp, out, dur, ej)[1]

    def energy_wh_at(
        model: Any, hw: Any, site: Any, gpus: Any, inp: Any, out: Any, dur: Any, ej: Any
    ) -> pa.Array:
        return _kernel(config, model, hw, site, gpus, inp, out, dur, ej)[0]

    def energy_method_at(
        model: Any, hw: Any, site: Any, gpus: Any, inp: Any, out: Any, dur: Any, ej: Any
    ) -> pa.Array:
        return _kernel(config, model, hw, site, gpus, inp, out, dur, ej)[1]

    functions: tuple[
        tuple[str, Callable[..., pa.Array], list[sqltypes.DuckDBPyType], sqltypes.DuckDBPyType], ...
    ] = (
        ("wl_energy_wh", energy_wh, six, _DOUBLE),
        ("wl_energy_method", energy_method, six, _VARCHAR),
        ("wl_energy_wh_at", energy_wh_at, eight, _DOUBLE),
        ("wl_energy_method_at", energy_method_at, eight, _VARCHAR),
    )
    for name, fn, params, result in functions:
        con.create_function(
            name,
            fn,
            [*params],  # a fresh list: the stub's parameter list type is invariant
            result,
            type=PythonUDFType.ARROW,
            null_handling=FunctionNullHandling.SPECIAL,
            side_effects=False,
        )


def latest_run_config(con: duckdb.DuckDBPyConnection) -> _core.Config | None:
    """The methodology pack of the ledger's most recently finished run, None for an empty ledger.

    Why the latest run: a what-if query normally asks "under the methodology we use now", and
    the ledger keeps the exact TOML text of every config it was fed, so the answer does not
    depend on a config file still being where it was.
    """
    rows = con.execute(
        """SELECT c.text, c.origin FROM wl_runs r JOIN wl_configs c USING (config_sha256)
           ORDER BY r.finished_at DESC, r.run_id DESC LIMIT 1"""
    ).fetchall()
    if not rows:
        return None
    text, origin = rows[0]
    return _core.Config.from_toml(text, f"ledger run config ({origin})")
