"""The binding's typed surface (``wattledger._core``): one options object, a reader and an
estimator, typed results, and errors that carry where they happened as attributes.

The public ``wattledger.*`` API is tested elsewhere; these tests pin what its implementation
relies on, so a change in the binding shows here first.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import wattledger as wl
from wattledger import _core
from wattledger.cli import EXIT_BUG, app

GOOD = {"ts": "2025-06-01T00:10:00Z", "model": "m", "zone": "DE", "input_tokens": 10}
GRID = "zone,datetime,g_per_kwh\nDE,2025-06-01T00:00:00Z,300\n"


def write_jsonl(path: Path, objs: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "a.jsonl",
        [GOOD, {**GOOD, "model": "M-alias"}, {"model": "m"}],
    )


def test_options_are_one_typed_object_with_the_engines_defaults() -> None:
    o = _core.RunOptions()
    assert (o.columns, o.preset, o.rejects, o.spill_dir, o.site) == ([], None, None, None, None)
    assert (o.threads, o.dedupe, o.hash, o.source_name) == (0, False, True, "<arrow>")
    assert o.memory_budget_cells == _core.DEFAULT_MEMORY_BUDGET_CELLS
    assert (o.max_line, o.max_inflate, o.max_names) == (
        _core.DEFAULT_MAX_LINE,
        _core.DEFAULT_MAX_INFLATE,
        _core.DEFAULT_MAX_NAMES,
    )
    o = _core.RunOptions(columns=["model=engine"], threads=2, rejects=Path("r.jsonl"), dedupe=True)
    assert (o.columns, o.threads, o.rejects, o.dedupe) == (["model=engine"], 2, Path("r.jsonl"), True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'thread'"):
        _core.RunOptions(thread=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"RunOptions\.threads"):
        _core.RunOptions(threads="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"RunOptions\.columns"):
        _core.RunOptions(columns="model=engine")


def test_reader_and_estimator_return_typed_results(log: Path, tmp_path: Path) -> None:
    config = _core.Config.from_toml('[models.m]\nactive_params_b = 8\n\n[aliases.models]\n"M-alias" = "m"\n')
    grid = _core.Grid.from_paths([str(_grid(tmp_path))])
    rejects = tmp_path / "rejects.jsonl"
    options = _core.RunOptions(rejects=str(rejects), spill_dir=str(tmp_path / "spill"))

    (stats,) = _core.Reader(options).validate([str(log)])
    assert isinstance(stats, _core.FileStats)
    assert (stats.path, stats.format, stats.compression) == (str(log), "jsonl", None)
    assert (stats.records, stats.rejected, stats.rejects) == (2, 1, {"missing ts": 1})
    assert (stats.blake3, stats.hashed_bytes) == (None, None), "validate hashes nothing"
    assert stats.size_bytes == log.stat().st_size
    assert stats.columns_found == ["ts", "model", "zone", "input_tokens"]
    assert (stats.blank_lines, stats.skipped, stats.skip_reasons) == (0, 0, {})
    assert len(rejects.read_text().splitlines()) == 1

    estimator = _core.Estimator(config, grid, options)
    result = estimator.estimate_files([str(log)])
    (stats,) = result.files
    assert stats.hashed_bytes == log.stat().st_size
    # The identity is the BLAKE3 of the stored bytes, the same as the one-pass file_digests.
    assert stats.blake3 == _core.file_digests(str(log))[0] and len(stats.blake3) == 64
    (name,) = result.names
    assert isinstance(name, _core.SourceName)
    named = (name.path, name.kind, name.raw, name.resolved, name.records)
    assert named == (str(log), "model", "M-alias", "m", 1)
    _, read_stats = estimator.read([str(log)])
    assert [s.records for s in read_stats] == [2]
    assert [s.records for s in estimator.validate([str(log)])] == [2]

    import pyarrow as pa

    arrow = pa.table({"ts": ["2025-06-01T00:10:00Z"], "model": ["m"], "zone": ["DE"]})
    named = _core.Estimator(config, grid, _core.RunOptions(source_name="frame"))
    (stats,) = named.estimate_arrow(arrow).files
    assert (stats.path, stats.format, stats.records, stats.blake3) == ("frame", "arrow", 1, None)


def test_file_digests_blake3_and_sha256_in_one_pass(tmp_path: Path) -> None:
    """The published test vectors of "abc" (BLAKE3's and FIPS 180-2's): what ``b3sum`` and
    ``sha256sum`` print; SHA-256 only when asked; ``limit`` bounds the bytes hashed."""
    import hashlib

    f = tmp_path / "abc.jsonl"
    f.write_bytes(b"abcdef")
    b3 = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    assert _core.file_digests(f, sha256=True, limit=3) == (b3, hashlib.sha256(b"abc").hexdigest(), 3)
    whole, sha, n = _core.file_digests(str(f))
    assert (sha, n) == (None, 6) and whole != b3
    with pytest.raises(OSError, match=r"missing\.jsonl"):
        _core.file_digests(tmp_path / "missing.jsonl")


def test_options_fail_when_the_estimator_is_built_before_any_input_is_read(tmp_path: Path) -> None:
    config = _core.Config.from_toml("")
    missing = str(tmp_path / "missing.jsonl")
    with pytest.raises(_core.UsageError, match="canonical=source"):
        _core.Estimator(config, None, _core.RunOptions(columns=["tokens"]))
    with pytest.raises(_core.UsageError, match="unknown column preset 'nope'"):
        _core.Reader(_core.RunOptions(preset="nope"))
    estimator = _core.Estimator(config)
    with pytest.raises(_core.InputError) as info:
        estimator.estimate_files([missing])
    assert info.value.path == missing and info.value.line is None and info.value.key is None


def test_progress_grid_summary_and_input_listing_are_typed(log: Path, tmp_path: Path) -> None:
    job = _core.Job()
    p = job.progress()
    assert isinstance(p, _core.Progress)
    assert (p.bytes_total, p.bytes_read, p.records, p.rejects) == (0, 0, 0, 0)
    _core.Reader().validate([str(log)], job=job)
    p = job.progress()
    assert (p.bytes_total, p.bytes_read, p.records, p.rejects) == (log.stat().st_size,) * 2 + (2, 1)

    grid = tmp_path / "g.csv"
    grid.write_text(GRID + "DE,2025-06-01T03:00:00Z,200\n", encoding="utf-8")
    (zone,) = _core.Grid.from_paths([str(grid)]).summary()
    assert isinstance(zone, _core.ZoneSummary)
    hours = ("2025-06-01T00:00:00Z", "2025-06-01T03:00:00Z")
    assert (zone.zone, zone.first_hour, zone.last_hour) == ("DE", *hours)
    assert (zone.hours_with_value, zone.hours_missing, zone.hours_estimated) == (2, 2, 0)
    assert zone.gaps == [("2025-06-01T01:00:00Z", "2025-06-01T02:00:00Z")]
    assert zone.mean_g_per_kwh == 250.0

    (found,) = _core.expand_inputs([str(tmp_path / "*.jsonl")])
    assert isinstance(found, _core.InputFile)
    assert (found.path, found.format, found.compression, found.size_bytes) == (
        str(log),
        "jsonl",
        None,
        log.stat().st_size,
    )


def _grid(tmp_path: Path) -> Path:
    path = tmp_path / "grid.csv"
    path.write_text(GRID, encoding="utf-8")
    return path


def test_a_log_error_carries_path_and_line(tmp_path: Path) -> None:
    # A CSV header longer than --max-line cannot be skipped like a long row: the file stops,
    # and the error names line 1 as an attribute (the message is unchanged: file and reason).
    path = tmp_path / "wide.csv"
    path.write_bytes(b"ts," + b"h" * (9 << 20) + b"\n2025-06-01T00:10:00Z,m\n")
    with pytest.raises(wl.InputError) as info:
        wl.validate(path, max_line=1 << 20)
    assert str(info.value).startswith(f"{path}: the CSV header row is longer than --max-line")
    assert (info.value.path, info.value.line, info.value.key) == (str(path), 1, None)


def test_a_pack_error_carries_the_key() -> None:
    with pytest.raises(wl.ConfigError) as info:
        _core.Config.from_toml("[defaults]\nnope = 1\n", "pack.toml")
    assert info.value.key == "defaults.nope", str(info.value)
    assert info.value.path == "pack.toml" and info.value.line is None
    assert str(info.value).startswith("config pack.toml: defaults.nope: ")


def test_a_grid_error_carries_path_and_line(tmp_path: Path) -> None:
    grid = tmp_path / "g.csv"
    grid.write_text(GRID + "\nDE,2025-06-01T01:00:00Z,6000\n", encoding="utf-8")
    with pytest.raises(wl.GridError) as info:
        wl.load_grid(grid)
    assert (info.value.path, info.value.line, info.value.key) == (str(grid), 4, None)
    assert str(info.value).startswith(f"grid {grid}: line 4: ")


def test_errors_raised_by_python_have_the_attributes_as_none() -> None:
    err = wl.NoRecordsError("x.jsonl: no record could be read")
    assert (err.path, err.line, err.key) == (None, None, None)
    assert issubclass(_core.InternalError, wl.WattledgerError)


def test_an_internal_error_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    # A broken invariant of the engine cannot be produced from input (that is what makes it a
    # bug), so the engine call is replaced by one raising the engine's InternalError.
    message = "internal error (a bug in wattledger; please report it): aggregate batch: schema mismatch"

    def broken(*_args: object, **_kwargs: object) -> list[_core.FileStats]:
        raise _core.InternalError(message)

    # The module, not the function ``wattledger.estimate`` the package exports under its name.
    monkeypatch.setattr(importlib.import_module("wattledger.estimate"), "validate_files", broken)
    result = CliRunner().invoke(app, ["validate", str(log)])
    assert result.exit_code == EXIT_BUG == 70
    assert result.stderr == f"error: {message}\n"
