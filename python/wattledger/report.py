"""Reports: the ledger summed over a UTC calendar month or year, per model or another key.

Everything is one SQL query over the ledger's hourly rows (``wl_hourly``, the rows the
``energy_hourly`` view groups) with the measure list of ``schema.py``, summed exactly in one
step (``exact_sum_sql``): the same bytes on every run, and a few times faster than summing the
view's already-summed cells again. A query of the views gives the same figures up to the
rounding of those intermediate cells (last bits)."""

from __future__ import annotations

import os
import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import duckdb

from wattledger import _core
from wattledger._deferred import deferred
from wattledger.errors import MixedConfigWarning, PartialOutcomeWarning, RunWarning, UsageError
from wattledger.formatting import ResultRows
from wattledger.ledger import connect_ledger, outcome_coverage_message, outcome_coverage_sql
from wattledger.schema import HOUR_UTC, REPORT_COLUMNS, exact_sum_sql, report_sums_sql

if TYPE_CHECKING:
    import polars as pl
else:
    pl = deferred("polars")

PathLike = str | os.PathLike[str]
ReportBy = Literal["model", "month", "site", "zone", "method"]

REPORT_BY: tuple[str, ...] = ("model", "month", "site", "zone", "method")

_KEY_SQL: dict[str, str] = {
    "model": "model",
    "month": f"strftime({HOUR_UTC}, '%Y-%m')",
    "site": "site",
    "zone": "zone",
    "method": "method",
}


def period_bounds(year: int, month: int | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a UTC calendar year or month. The years are the engine's: the readers
    reject a record outside them, so every stored hour can be reported."""
    if not _core.MIN_YEAR <= year <= _core.MAX_YEAR:
        raise UsageError(
            f"year {year} is out of range ({_core.MIN_YEAR}..{_core.MAX_YEAR}); "
            "pass a four-digit year such as 2025"
        )
    if month is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    if not 1 <= month <= 12:
        raise UsageError(f"month {month} is out of range; pass 1..12")
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else datetime(year, month + 1, 1)
    return datetime(year, month, 1, tzinfo=UTC), end.replace(tzinfo=UTC)


def use_threads(con: duckdb.DuckDBPyConnection, threads: int = 0) -> None:
    """Run this connection's queries on ``threads`` DuckDB threads; 0 keeps DuckDB's default (all
    cores). The figures do not depend on it: every measure is summed exactly
    (``schema.exact_sum_sql``), so a report is byte-identical whatever the thread count."""
    if threads < 0:
        raise UsageError(f"threads {threads} is negative; pass 0 (all cores) or a positive count")
    if threads:
        con.execute(f"SET threads = {int(threads)}")


def report_columns(by: str) -> tuple[str, ...]:
    """The column list of a report grouped by ``by``: the key, then the section 9 measures."""
    return (by, *REPORT_COLUMNS[1:])


def _where(
    year: int, month: int | None, model: str | None, site: str | None = None
) -> tuple[str, list[object]]:
    start, end = period_bounds(year, month)
    sql = "hour >= ? AND hour < ?"
    params: list[object] = [start, end]
    for column, value in (("model", model), ("site", site)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    return sql, params


def report_relation(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    month: int | None = None,
    by: str = "model",
    model: str | None = None,
    site: str | None = None,
) -> duckdb.DuckDBPyRelation:
    """The report query, not yet fetched: columns are ``report_columns(by)``."""
    if by not in _KEY_SQL:
        raise UsageError(f"cannot report by {by!r}; choose one of {', '.join(REPORT_BY)}")
    where, params = _where(year, month, model, site)
    sql = f"""SELECT {_KEY_SQL[by]} AS {by},
    {report_sums_sql()}
FROM wl_hourly
WHERE {where}
GROUP BY 1
ORDER BY 1 NULLS LAST"""
    return con.sql(sql, params=params).select(*report_columns(by))


def report_from(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    month: int | None = None,
    by: str = "model",
    model: str | None = None,
    site: str | None = None,
) -> pl.DataFrame:
    """:func:`report` on an open ledger connection."""
    frame: pl.DataFrame = report_relation(con, year=year, month=month, by=by, model=model, site=site).pl()
    return frame


def configs_relation(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    month: int | None = None,
    model: str | None = None,
    site: str | None = None,
) -> duckdb.DuckDBPyRelation:
    """The configs query behind :func:`configs_from`, not yet fetched."""
    where, params = _where(year, month, model, site)
    sql = f"""SELECT h.config_sha256, c.name, c.version, c.origin,
       CAST(SUM(h.records) AS BIGINT) AS records,
       {exact_sum_sql("h.energy_kwh", "energy_kwh")} AS energy_kwh
FROM wl_hourly h LEFT JOIN wl_configs c USING (config_sha256)
WHERE {where}
GROUP BY ALL
ORDER BY energy_kwh DESC NULLS LAST, config_sha256"""
    return con.sql(sql, params=params)


def configs_from(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    month: int | None = None,
    model: str | None = None,
    site: str | None = None,
) -> pl.DataFrame:
    """The methodology packs behind a period's numbers: sha, name, version, origin, the energy
    and records each produced. More than one row means the period mixes methodologies."""
    frame: pl.DataFrame = configs_relation(con, year=year, month=month, model=model, site=site).pl()
    return frame


def rows_without_outcomes(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    month: int | None = None,
    model: str | None = None,
    site: str | None = None,
) -> int:
    """Hourly rows of the period written before outcomes were counted (ledger schema 1)."""
    where, params = _where(year, month, model, site)
    return int(con.execute(outcome_coverage_sql(where), params).fetchall()[0][0])


def runs_with_warnings(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    month: int | None = None,
    model: str | None = None,
    site: str | None = None,
) -> list[tuple[str, tuple[str, ...]]]:
    """(run_id, warnings) of every run with live rows in the period whose row carries warnings,
    oldest first: the caveats behind the period's numbers."""
    where, params = _where(year, month, model, site)
    rows = con.execute(
        f"""SELECT r.run_id, r.warnings FROM wl_runs r
WHERE len(coalesce(r.warnings, [])) > 0
  AND EXISTS (SELECT 1 FROM wl_hourly h WHERE h.run_id = r.run_id AND {where})
ORDER BY r.run_id""",
        params,
    ).fetchall()
    return [(run_id, tuple(w)) for run_id, w in rows]


def run_warnings_message(runs: list[tuple[str, tuple[str, ...]]]) -> str:
    """One line saying which runs behind a period carried warnings."""
    count = sum(len(w) for _, w in runs)
    ids = ", ".join(run_id for run_id, _ in runs)
    return (
        f"{len(runs)} run(s) behind this period carried {count} warning(s) ({ids}): see the rollup's "
        "coverage section or `SELECT run_id, warnings FROM runs`"
    )


def report(
    ledger: PathLike,
    *,
    year: int,
    month: int | None = None,
    by: ReportBy = "model",
    model: str | None = None,
    site: str | None = None,
    threads: int = 0,
) -> pl.DataFrame:
    """Energy and emissions of a UTC year or month, one row per ``by`` value, sorted by it;
    only ``model`` and/or ``site`` when given (names as the ledger stores them).

    The sums are exact and order-independent, so the same ledger gives the same numbers, to the
    last bit, on every run and with any ``threads`` (DuckDB threads; 0 = all cores).

    ``by="model"`` gives exactly the methodology section 9 columns in order. Emits a
    :class:`MixedConfigWarning` when the period's numbers come from more than one config, and a
    :class:`PartialOutcomeWarning` when some of its rows predate outcome counting, and a
    :class:`RunWarning` naming the runs behind the period that recorded warnings.
    """
    con = connect_ledger(ledger)
    try:
        use_threads(con, threads)
        frame = report_from(con, year=year, month=month, by=by, model=model, site=site)
        configs = configs_from(con, year=year, month=month, model=model, site=site)
        partial = rows_without_outcomes(con, year=year, month=month, model=model, site=site)
        warned = runs_with_warnings(con, year=year, month=month, model=model, site=site)
    finally:
        con.close()
    if configs.height > 1:
        warnings.warn(mixed_config_message(configs), MixedConfigWarning, stacklevel=2)
    if partial:
        warnings.warn(outcome_coverage_message(partial), PartialOutcomeWarning, stacklevel=2)
    if warned:
        warnings.warn(run_warnings_message(warned), RunWarning, stacklevel=2)
    return frame


def configs_in_period(
    ledger: PathLike, *, year: int, month: int | None = None, model: str | None = None
) -> pl.DataFrame:
    """Which methodology packs produced a period's numbers (provenance for a report)."""
    con = connect_ledger(ledger)
    try:
        return configs_from(con, year=year, month=month, model=model)
    finally:
        con.close()


def mixed_config_message(configs: pl.DataFrame | ResultRows) -> str:
    """One line naming the configs a period mixes."""
    names = ", ".join(
        f"{row['name'] or '?'} {row['version'] or '?'} ({row['config_sha256'][:12]})"
        for row in configs.iter_rows(named=True)
    )
    return f"this period mixes {configs.height} methodology configs: {names}"
