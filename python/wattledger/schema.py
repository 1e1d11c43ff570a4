"""Column lists and SQL of the ledger: one definition shared by the ledger, the views and reports.

The names follow methodology sections 8 (hourly aggregate keys and measures) and 9 (per-model
report). Keeping them here, and generating every SUM from them, is what keeps the views, the
report and the ingest summary from drifting apart.
"""

from __future__ import annotations

#: 2: outcome counts (failed_requests, cached_requests), run warnings, raw names per source.
#: 3: a source's identity includes how it was read (``read_as``); sources and runs can be
#: forgotten (``forgotten_at``/``forgotten_by``); a forget is a run row without a config.
#: 4: a source's content identity is the BLAKE3 of its stored bytes (``wl_sources.blake3``);
#: sources recorded before keep their SHA-256 (``sha256``, NULL for later sources) and are still
#: recognised by it (docs/internals.md, "File identity").
#: 5: metered node energy (``wl_node_energy``).
#: 6: a source in object storage keeps its ETag (``wl_sources.etag``; NULL for local files).
SCHEMA_VERSION = 6

#: Section 8 keys, in order.
KEY_COLUMNS: tuple[str, ...] = ("hour", "model", "site", "zone", "hardware", "method")

#: Section 8 measures, in the engine's aggregate order (docs/internals.md).
MEASURE_COLUMNS: tuple[str, ...] = (
    "records",
    "requests",
    "input_tokens",
    "output_tokens",
    "energy_acc_kwh",
    "energy_it_kwh",
    "energy_kwh",
    "energy_kwh_low",
    "energy_kwh_high",
    "co2e_location_kg",
    "co2e_market_kg",
    "flops",
    "gpu_hours",
    "fallback_kwh",
    "unresolved_kwh",
    "unestimated_requests",
    "failed_requests",
    "cached_requests",
)

#: Measures added by schema version 2 (section 10). Rows written before it hold NULL there:
#: those runs did not count outcomes, and NULL keeps "not counted" apart from "none failed".
OUTCOME_COLUMNS: tuple[str, ...] = ("failed_requests", "cached_requests")

#: Columns the engine hands over: ``source`` then the section 8 keys and measures.
AGGREGATE_COLUMNS: tuple[str, ...] = ("source", *KEY_COLUMNS, *MEASURE_COLUMNS)

#: Section 9: the per-model report, exactly in this order.
REPORT_COLUMNS: tuple[str, ...] = (
    "model",
    "requests",
    "records",
    "input_tokens",
    "output_tokens",
    "energy_kwh",
    "energy_kwh_low",
    "energy_kwh_high",
    "measured_kwh",
    "co2e_location_kg",
    "co2e_market_kg",
    "flops",
    "gpu_hours",
    "unestimated_requests",
    "fallback_kwh",
    "unresolved_kwh",
    # v1.1 section 10: appended after the 16 columns of section 9, whose order stays.
    "failed_requests",
    "cached_requests",
)

#: UTC wall-clock of an hour, independent of the reading session's TimeZone setting.
HOUR_UTC = "timezone('UTC', hour)"


#: Fixed-point scale (a power of two) per measure for :func:`exact_sum_sql`: 2**scale units
#: per unit of the measure. One ledger row's value times 2**scale must stay inside int64 for the
#: exact path: counts up to 2**54 (1.8e16 requests or tokens in one hourly cell), energy,
#: emissions and GPU hours up to 2**38 (2.7e11 kWh in one hourly cell, about a hundred times
#: the world's hourly electricity), FLOPs up to 2**92 (5e27 in one hourly cell, ten thousand
#: times a 100k-GPU fleet's hour). Rows beyond that (possible only with absurd, if in-bounds,
#: records) are summed as plain doubles, so they never fail a query.
_COUNT_SCALE = 8
_PHYSICAL_SCALE = 24
_FLOPS_SCALE = -30
SUM_SCALE: dict[str, int] = {
    **{c: _COUNT_SCALE for c in ("requests", "input_tokens", "output_tokens")},
    **{c: _COUNT_SCALE for c in ("unestimated_requests", "failed_requests", "cached_requests")},
    "flops": _FLOPS_SCALE,
}


def exact_sum_sql(expr: str, measure: str, where: str | None = None) -> str:
    """A sum of the DOUBLE ``expr`` that does not depend on the order of its rows.

    Why: DuckDB sums DOUBLEs in whatever order its threads meet the rows, so the last digits of
    a report changed from run to run and with the thread count. Here every value is split, at the
    measure's fixed-point scale A = 2**SUM_SCALE (see above), into an int64 of whole units
    ``hi = round(x * A)`` and the remainder's int64 ``lo = round((x - hi / A) * A * 2**52)``
    (both steps exact in binary floating point). Integer sums are exact in any order, so
    ``sum(hi) / A + sum(lo) / (A * 2**52)`` is the same double on every run, every machine and
    every thread count; it is within a few units in the last place of the exact sum (values
    below 2**-(scale+52) units round at that absolute grain). A value too large for the int64
    path (see SUM_SCALE) is added as a plain double: only such rows can reintroduce order. SQL
    NULL behaves as in SUM: NULL when every value is NULL. ``where`` filters the rows like an
    aggregate FILTER clause.
    """
    scale = SUM_SCALE.get(measure, _PHYSICAL_SCALE)
    a = repr(2.0**scale)
    b = repr(2.0 ** (scale + 52))
    limit = repr(2.0 ** (62 - scale))
    small = f"CASE WHEN abs({expr}) < {limit} THEN {expr} END"
    big = f"CASE WHEN abs({expr}) >= {limit} THEN {expr} END"
    hi = f"CAST(({small}) * {a} AS BIGINT)"
    lo = f"CAST((({small}) - CAST({hi} AS DOUBLE) / {a}) * {b} AS BIGINT)"
    flt = f" FILTER (WHERE {where})" if where else ""
    exact = f"CAST(SUM({hi}){flt} AS DOUBLE) / {a} + CAST(SUM({lo}){flt} AS DOUBLE) / {b}"
    return (
        f"(CASE WHEN COUNT({expr}){flt} > 0 THEN COALESCE(SUM({big}){flt}, 0.0) + COALESCE({exact}, 0.0) END)"
    )


def _sum(column: str) -> str:
    # SUM(BIGINT) is HUGEINT in DuckDB; records stay int64 for every client. The other measures
    # are DOUBLE and summed exactly (order-independent, see exact_sum_sql); like SUM, the result
    # is NULL when every input is NULL, which is how "not estimated" survives aggregation.
    if column == "records":
        return "CAST(SUM(records) AS BIGINT) AS records"
    return f"{exact_sum_sql(column, column)} AS {column}"


def measure_sums_sql() -> str:
    """``SUM(m) AS m`` for every section 8 measure."""
    return ",\n    ".join(_sum(c) for c in MEASURE_COLUMNS)


def report_measure(column: str) -> str:
    """The SQL of one section 9 measure over rows that still carry ``method``."""
    if column == "measured_kwh":
        # Zero when the group has energy but none measured (measured rows always carry energy);
        # NULL, like energy_kwh, when nothing in the group could be estimated at all.
        measured = exact_sum_sql("energy_kwh", "energy_kwh", "method = 'measured'")
        return f"CASE WHEN COUNT(energy_kwh) > 0 THEN COALESCE({measured}, 0.0) END AS measured_kwh"
    return _sum(column)


def report_sums_sql() -> str:
    """Section 9 measures (every report column but ``model``), in report order."""
    return ",\n    ".join(report_measure(c) for c in REPORT_COLUMNS[1:])


_MEASURE_DDL = "records BIGINT NOT NULL,\n    " + ",\n    ".join(f"{c} DOUBLE" for c in MEASURE_COLUMNS[1:])

#: What each source added to wl_hourly, per method, summed when its run committed: ``wattledger
#: check`` re-sums the hourly rows and compares, so rows changed, lost or added after the commit
#: (a damaged or edited file) are found. Per source, not per run, because ``--replace`` and
#: ``forget`` retire a run's sources one by one: a live source's rows must still sum to this.
#: Added without a schema version: a write creates it in older ledgers, whose earlier runs
#: have no recorded totals (check verifies their record counts only).
SOURCE_TOTALS_DDL = f"""CREATE TABLE IF NOT EXISTS wl_source_totals (
    source_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    hourly_rows BIGINT NOT NULL,
    {_MEASURE_DDL}
)"""

#: Columns of wl_source_totals after the key (source_id, run_id, method).
SOURCE_TOTAL_MEASURES: tuple[str, ...] = ("hourly_rows", *MEASURE_COLUMNS)


def source_totals_sql(where: str) -> str:
    """Per (source_id, run_id, method) of the wl_hourly rows matching ``where``: the row count
    and every measure summed as the reports sum them (exact, order-independent), in the column
    order of wl_source_totals."""
    sums = ", ".join(
        "CAST(SUM(records) AS BIGINT)" if c == "records" else exact_sum_sql(c, c) for c in MEASURE_COLUMNS
    )
    return f"""SELECT source_id, run_id, method, count(*), {sums}
FROM wl_hourly WHERE {where} GROUP BY source_id, run_id, method"""


#: Metered node energy of a run (``--node-energy``, methodology section 10): per node and hour
#: of the interval's end, what the counters measured, the part shared over requests (in the
#: hourly rows as method ``attributed``) and the idle part no request claimed. Kept per run:
#: the counters are not a log source, and forgetting the run forgets them.
NODE_ENERGY_DDL = """CREATE TABLE IF NOT EXISTS wl_node_energy (
    run_id VARCHAR NOT NULL,
    node VARCHAR NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    metered_kwh DOUBLE NOT NULL,
    attributed_kwh DOUBLE NOT NULL,
    idle_kwh DOUBLE NOT NULL,
    intervals BIGINT NOT NULL,
    idle_intervals BIGINT NOT NULL
)"""

TABLES_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS wl_meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS wl_configs (
    config_sha256 VARCHAR PRIMARY KEY,
    name VARCHAR,
    version VARCHAR,
    origin VARCHAR,
    text VARCHAR NOT NULL,
    first_run_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS wl_runs (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    command VARCHAR,
    wattledger_version VARCHAR,
    config_sha256 VARCHAR,
    records BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    dedupe BOOLEAN NOT NULL,
    duplicates BIGINT,
    files_read INTEGER NOT NULL,
    files_skipped INTEGER NOT NULL,
    files_replaced INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    warnings VARCHAR[],
    forgotten_at TIMESTAMPTZ,
    forgotten_by VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS wl_sources (
    source_id VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    mtime TIMESTAMPTZ NOT NULL,
    sha256 VARCHAR,
    config_sha256 VARCHAR NOT NULL,
    records BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    rejects JSON,
    columns_found VARCHAR[],
    replaced_at TIMESTAMPTZ,
    replaced_by_run VARCHAR,
    skipped BIGINT,
    skip_reasons JSON,
    read_as VARCHAR,
    forgotten_at TIMESTAMPTZ,
    forgotten_by VARCHAR,
    blake3 VARCHAR,
    etag VARCHAR
)""",
    # Raw names of a source that the pack's aliases (or a zone's case) changed: the hourly rows
    # hold the resolved name, this keeps what the log wrote.
    """CREATE TABLE IF NOT EXISTS wl_source_names (
    source_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    raw VARCHAR NOT NULL,
    resolved VARCHAR NOT NULL,
    records BIGINT NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS wl_hourly (
    run_id VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL,
    config_sha256 VARCHAR NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    model VARCHAR NOT NULL,
    site VARCHAR,
    zone VARCHAR,
    hardware VARCHAR,
    method VARCHAR NOT NULL,
    {_MEASURE_DDL}
)""",
    SOURCE_TOTALS_DDL,
    NODE_ENERGY_DDL,
)

_KEYS = ", ".join(KEY_COLUMNS)

VIEWS_DDL: tuple[str, ...] = (
    # Only live rows are in wl_hourly: --replace and forget delete the rows they retire.
    f"""CREATE OR REPLACE VIEW energy_hourly AS
SELECT {_KEYS},
    {measure_sums_sql()}
FROM wl_hourly
GROUP BY {_KEYS}""",
    f"""CREATE OR REPLACE VIEW energy_daily AS
SELECT CAST({HOUR_UTC} AS DATE) AS day, model, site, zone, hardware, method,
    {measure_sums_sql()}
FROM wl_hourly
GROUP BY ALL""",
    f"""CREATE OR REPLACE VIEW energy_by_model_month AS
SELECT CAST(year({HOUR_UTC}) AS INTEGER) AS year, CAST(month({HOUR_UTC}) AS INTEGER) AS month, model,
    {report_sums_sql()},
    COUNT(DISTINCT config_sha256) AS configs
FROM wl_hourly
GROUP BY ALL""",
    f"""CREATE OR REPLACE VIEW energy_by_model_year AS
SELECT CAST(year({HOUR_UTC}) AS INTEGER) AS year, model,
    {report_sums_sql()},
    COUNT(DISTINCT config_sha256) AS configs
FROM wl_hourly
GROUP BY ALL""",
    """CREATE OR REPLACE VIEW runs AS
SELECT r.*, c.name AS config_name, c.version AS config_version
FROM wl_runs r LEFT JOIN wl_configs c USING (config_sha256)""",
    """CREATE OR REPLACE VIEW sources AS
SELECT s.*, s.replaced_at IS NULL AND s.forgotten_at IS NULL AS live, c.name AS config_name,
    (SELECT list({'kind': n.kind, 'raw': n.raw, 'resolved': n.resolved, 'records': n.records}
                 ORDER BY n.kind, n.raw)
     FROM wl_source_names n WHERE n.source_id = s.source_id) AS aliases
FROM wl_sources s LEFT JOIN wl_configs c USING (config_sha256)""",
    # Idle energy per node and hour: metered energy no request claimed, of runs not forgotten.
    """CREATE OR REPLACE VIEW node_energy AS
SELECT node, hour, sum(metered_kwh) AS metered_kwh, sum(attributed_kwh) AS attributed_kwh,
    sum(idle_kwh) AS idle_kwh, sum(intervals) AS intervals, sum(idle_intervals) AS idle_intervals
FROM wl_node_energy
WHERE run_id NOT IN (SELECT run_id FROM wl_runs WHERE forgotten_at IS NOT NULL)
GROUP BY node, hour""",
    """CREATE OR REPLACE VIEW source_names AS
SELECT n.source_id, s.path, s.replaced_at IS NULL AND s.forgotten_at IS NULL AS live,
    n.kind, n.raw, n.resolved, n.records
FROM wl_source_names n JOIN wl_sources s USING (source_id)""",
)

#: Schema version 1 -> 2, in one transaction (see ``ledger._migrate``). Old hourly rows keep
#: NULL outcome counts; old runs NULL warnings; old sources no raw names (none were resolved).
MIGRATE_1_TO_2: tuple[str, ...] = (
    "ALTER TABLE wl_hourly ADD COLUMN failed_requests DOUBLE",
    "ALTER TABLE wl_hourly ADD COLUMN cached_requests DOUBLE",
    "ALTER TABLE wl_runs ADD COLUMN warnings VARCHAR[]",
    "ALTER TABLE wl_sources ADD COLUMN skipped BIGINT",
    "ALTER TABLE wl_sources ADD COLUMN skip_reasons JSON",
    TABLES_DDL[4],
)

#: Schema version 2 -> 3, in one transaction. Old sources keep ``read_as`` NULL: how they were
#: read was not recorded. They compare as the default mapping (no preset, no --column, no
#: --site; see ``ledger.read_as_of``), which is how most files are ingested; a file that was
#: read with a mapping is then refused (exit 4) when ingested again with it, and
#: ``--replace`` recounts it once under the mapping now recorded. A forget is recorded as a
#: run row without a config, hence the dropped NOT NULL.
MIGRATE_2_TO_3: tuple[str, ...] = (
    "ALTER TABLE wl_sources ADD COLUMN read_as VARCHAR",
    "ALTER TABLE wl_sources ADD COLUMN forgotten_at TIMESTAMPTZ",
    "ALTER TABLE wl_sources ADD COLUMN forgotten_by VARCHAR",
    "ALTER TABLE wl_runs ADD COLUMN forgotten_at TIMESTAMPTZ",
    "ALTER TABLE wl_runs ADD COLUMN forgotten_by VARCHAR",
    "ALTER TABLE wl_runs ALTER COLUMN config_sha256 DROP NOT NULL",
)

#: Schema version 3 -> 4, in one transaction. The identity of a source's bytes becomes their
#: BLAKE3 (four times SHA-256's throughput on one core; see docs/internals.md). Old sources keep
#: ``sha256`` and a NULL ``blake3``: their files are not re-read to upgrade them. A file read
#: later is compared with such a source by SHA-256, computed then only when that source has the
#: file's size (``ledger._Content``), so an old file ingested again is still skipped, never
#: counted twice. New sources record ``blake3`` only.
MIGRATE_3_TO_4: tuple[str, ...] = (
    "ALTER TABLE wl_sources ADD COLUMN blake3 VARCHAR",
    "ALTER TABLE wl_sources ALTER COLUMN sha256 DROP NOT NULL",
)

#: Schema version 4 -> 5, in one transaction: the metered node energy table (attributed and
#: idle energy). Old runs had no node energy: the table starts empty and nothing else changes.
MIGRATE_4_TO_5: tuple[str, ...] = (NODE_ENERGY_DDL,)

#: Schema version 5 -> 6, in one transaction: the ETag of a source read from object storage
#: (its URL, size and ETag say an object is unchanged without reading it). Old sources are
#: local files: NULL.
MIGRATE_5_TO_6: tuple[str, ...] = ("ALTER TABLE wl_sources ADD COLUMN etag VARCHAR",)
