"""Logs read from object storage give what the same files give locally (issue 17, point 4).

The mixed-format case of the scale-out tests (tests/scale_out_data.py: JSON Lines, gzip, zstd,
CSV, Parquet, with planted rejects) is uploaded to moto's S3 server, started by these tests on
127.0.0.1 with signature checks on (tests/object_store_servers.py), and judged by the rules
the Spark and Ray tests use: the same per-model report (rel 1e-9), the same records and
rejects per file, the same BLAKE3 per file, the same summary; the source's path is its URL
and its ETag is recorded. Plain ``http://`` URLs are read from a small Range-capable file
server. Re-ingest skips without reading, a changed object is refused then replaced, keys are
picked by prefix and glob as files are in a directory, and every failure (a missing object, a
wrong secret, plain http not allowed, an endpoint that does not answer, an unknown storage
option) is one error naming the URL.

One moto server for the module (about a second to start); each test that changes objects
has its own bucket.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import terminal
import wattledger
from object_store_servers import FileServer, MotoS3, free_port, moto_s3, range_http_server, without_cloud_env
from oracle_sql import frames_close
from scale_out_data import BAD_JSONL, Case, hourly_rows, make_case, report, sources, summary_view
from wattledger.errors import InputError, SourceConflictError, UsageError
from wattledger.schema import KEY_COLUMNS
from wattledger.storage import parse_storage_options

#: Where the case's five files go: ``s3://wl-case/case/a.jsonl`` and so on.
CASE_BUCKET = "wl-case"
CASE_URL = f"s3://{CASE_BUCKET}/case/"
#: Objects under the case's prefix that a listing must pass over, as a directory walk does:
#: hidden ones (a writer's temporary, a hidden "directory") and an unknown extension. Their
#: bytes are not logs, so reading any of them would show in the counts.
CASE_NOT_LOGS = {
    "case/.tmp-upload.jsonl": b"{not json at all\n",
    "case/.staging/part-0.jsonl": b"{not json either\n",
    "case/README.txt": b"these are fleet logs\n",
    "case/_SUCCESS": b"",
}
#: A CLI run may not take longer than this (a hang fails the test instead of the suite).
CLI_TIMEOUT = 120.0


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("s3-case"))


def logs_dir(case: Case) -> Path:
    return Path(case.logs[0]).parent


def upload_case(s3: MotoS3, case: Case, bucket: str, extras: Mapping[str, bytes] = CASE_NOT_LOGS) -> str:
    """The case's files in a new bucket under ``case/`` (plus ``extras``); returns the prefix URL."""
    s3.create_bucket(bucket)
    s3.upload_tree(logs_dir(case), bucket, "case/")
    for key, data in extras.items():
        s3.put(bucket, key, data)
    return f"s3://{bucket}/case/"


@pytest.fixture(scope="module")
def case_url(s3: MotoS3, case: Case) -> str:
    """The case in ``CASE_BUCKET``, never changed by a test."""
    assert upload_case(s3, case, CASE_BUCKET) == CASE_URL
    return CASE_URL


@pytest.fixture(scope="module")
def local(case: Case, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, wattledger.IngestSummary]:
    """The case ingested from the local files: what every S3 run is compared with."""
    ledger = tmp_path_factory.mktemp("local") / "ledger.duckdb"
    summary = wattledger.ingest(case.logs, ledger=ledger, config=case.config, grid=case.grid, progress=False)
    assert summary.rejected == 6 and summary.files_read == 5  # the planted bad records
    return ledger, summary


def use_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """This process's environment becomes ``env`` for the test (the engine reads the cloud
    variables when it opens a store, at each call)."""
    for name in list(os.environ):
        if name not in env:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_env(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """The engine pointed at the test server through the standard AWS variables."""
    use_env(monkeypatch, s3.env())
    return s3


# --------------------------------------------------------------------------------------------
# Helpers


def relocate(value: object, local_dir: Path, url_prefix: str) -> object:
    """``value`` with every local path under ``local_dir`` written as the URL of the same
    file under ``url_prefix`` (in strings, nested in tuples, lists and dicts)."""
    if isinstance(value, str):
        return value.replace(f"{local_dir}/", url_prefix)
    if isinstance(value, tuple):
        return tuple(relocate(v, local_dir, url_prefix) for v in value)
    if isinstance(value, list):
        return [relocate(v, local_dir, url_prefix) for v in value]
    if isinstance(value, dict):
        return {
            relocate(k, local_dir, url_prefix): relocate(v, local_dir, url_prefix) for k, v in value.items()
        }
    return value


def etags(ledger: Path) -> dict[str, str | None]:
    """The ETag the ledger recorded per source path (schema 6's ``wl_sources.etag``)."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        rows = con.execute("SELECT path, etag FROM wl_sources WHERE replaced_at IS NULL").fetchall()
    finally:
        con.close()
    return {str(path): etag for path, etag in rows}


def unquoted(etag: object) -> str:
    return str(etag).strip('"')


def wattledger_cli(
    *args: object, env: Mapping[str, str], timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``python -m wattledger ARGS`` in a child with ``env`` (plus this interpreter's path)."""
    child = dict(env)
    child["PYTHONPATH"] = terminal.child_env()["PYTHONPATH"]
    child["COLUMNS"] = "300"  # tables wide enough that no URL is wrapped
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child,
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def summary_lines(stdout: str, local_dir: Path, url_prefix: str) -> list[str]:
    """The run summary without what differs between any two runs (the run id and ledger on
    ``run:``, the run id a skip names, the output file on ``wrote:``), local paths as URLs."""
    out = []
    for line in stdout.splitlines():
        if line.startswith(("run:", "wrote:")):
            continue
        line = line.split(" since run ")[0]
        out.append(str(relocate(line, local_dir, url_prefix)))
    return out


def rewrite_smaller(data: bytes) -> bytes:
    """``b.jsonl.gz`` without its last 50 lines: other bytes, another size (gzip's mtime 0 so
    the same change gives the same bytes everywhere)."""
    kept = gzip.decompress(data).decode().splitlines(keepends=True)[:-50]
    return gzip.compress("".join(kept).encode(), mtime=0)


# --------------------------------------------------------------------------------------------
# Ingest: the same as local, identity, skips, conflicts


def test_prefix_ingest_equals_local_ingest(
    s3_env: MotoS3, case: Case, case_url: str, local, tmp_path: Path
) -> None:
    """``ingest("s3://wl-case/case/")``: the five logs (not the hidden or unknown objects
    beside them) give the local report, rejects, sizes and BLAKE3 per file; each source's
    path is its ``s3://`` URL and its ETag the one S3 serves."""
    local_ledger, local_summary = local
    ledger = tmp_path / "ledger.duckdb"
    summary = wattledger.ingest(case_url, ledger=ledger, config=case.config, grid=case.grid, progress=False)
    assert frames_close(report(ledger), report(local_ledger), rel=1e-9) == []
    assert sources(ledger) == relocate(sources(local_ledger), logs_dir(case), case_url)
    assert hourly_rows(ledger) == hourly_rows(local_ledger)
    assert summary_view(summary) == relocate(summary_view(local_summary), logs_dir(case), case_url)
    recorded = etags(ledger)
    assert sorted(recorded) == [case_url + Path(p).name for p in case.logs]
    for url, etag in recorded.items():
        assert etag is not None, url
        assert unquoted(etag) == unquoted(
            s3_env.head(CASE_BUCKET, url.removeprefix(f"s3://{CASE_BUCKET}/"))["ETag"]
        )
    assert set(etags(local_ledger).values()) == {None}  # local files have none


def test_reingest_skips_unread_and_a_changed_object_is_refused_then_replaced(
    s3_env: MotoS3, case: Case, tmp_path: Path
) -> None:
    """The same objects again: every one skipped on its size and ETag, none of their bytes
    fetched. One rewritten under its URL: refused (SourceConflictError, ledger unchanged), then
    swapped with ``replace=True``; the ledger then agrees with a local ledger that went through
    the same change."""
    url = upload_case(s3_env, case, "wl-change")
    ledger = tmp_path / "s3.duckdb"
    run = dict(ledger=ledger, config=case.config, grid=case.grid, progress=False)
    first = wattledger.ingest(url, **run)
    assert first.files_read == 5
    mark = s3_env.mark()
    again = wattledger.ingest(url, **run)
    assert (again.files_read, again.records) == (0, 0)
    assert [s.path for s in again.files_skipped] == [url + Path(p).name for p in case.logs]
    # Path-style: a listing is ``GET /wl-change?list-type=2...``, an object read ``GET /wl-change/KEY``.
    reads = [r for r in s3_env.requests_since(mark) if r.method == "GET" and r.path.startswith("/wl-change/")]
    assert reads == []

    changed = f"{url}b.jsonl.gz"
    key = changed.removeprefix("s3://wl-change/")
    old_etag = etags(ledger)[changed]
    s3_env.put("wl-change", key, rewrite_smaller((logs_dir(case) / "b.jsonl.gz").read_bytes()))
    before = report(ledger)
    with pytest.raises(SourceConflictError) as conflict:
        wattledger.ingest(url, **run)
    assert changed in str(conflict.value)
    assert frames_close(report(ledger), before, rel=0) == []
    replaced = wattledger.ingest(url, **run, replace=True)
    assert replaced.files_replaced == (changed,) and replaced.files_read == 1
    assert (
        unquoted(etags(ledger)[changed])
        == unquoted(s3_env.head("wl-change", key)["ETag"])
        != unquoted(old_etag)
    )

    # The same change to the local files.
    logs = tmp_path / "local" / "logs"
    shutil.copytree(logs_dir(case), logs)
    local_ledger = tmp_path / "local.duckdb"
    paths = sorted(str(p) for p in logs.iterdir())
    wattledger.ingest(paths, ledger=local_ledger, config=case.config, grid=case.grid, progress=False)
    (logs / "b.jsonl.gz").write_bytes(rewrite_smaller((logs / "b.jsonl.gz").read_bytes()))
    wattledger.ingest(
        paths, ledger=local_ledger, config=case.config, grid=case.grid, progress=False, replace=True
    )
    assert frames_close(report(ledger), report(local_ledger), rel=1e-9) == []
    assert sources(ledger) == relocate(sources(local_ledger), logs, url)  # the replaced row too


def test_the_same_bytes_count_once_whether_local_or_in_the_bucket(
    s3_env: MotoS3, case: Case, tmp_path: Path
) -> None:
    """Identity is of the bytes, wherever they are: objects whose bytes a local ingest counted
    are skipped (hashed by ranged reads before the run reads anything), and so are local copies
    of objects counted; an object uploaded again unchanged (a new ETag on some stores, the same
    bytes) is skipped too, after hashing, never counted twice."""
    url = upload_case(s3_env, case, "wl-same", extras={})
    run = dict(config=case.config, grid=case.grid, progress=False)
    ledger = tmp_path / "local-first.duckdb"
    wattledger.ingest(case.logs, ledger=ledger, **run)
    before = report(ledger)
    again = wattledger.ingest(url, ledger=ledger, **run)
    assert (again.files_read, len(again.files_skipped)) == (0, 5)
    assert all("unchanged" in s.reason or "same" in s.reason for s in again.files_skipped), (
        again.files_skipped
    )
    assert frames_close(report(ledger), before, rel=0) == []

    ledger = tmp_path / "bucket-first.duckdb"
    wattledger.ingest(url, ledger=ledger, **run)
    before = report(ledger)
    again = wattledger.ingest(case.logs, ledger=ledger, **run)
    assert (again.files_read, len(again.files_skipped)) == (0, 5)
    assert frames_close(report(ledger), before, rel=0) == []

    # Re-uploaded unchanged through a multipart upload: another ETag, the same bytes.
    key = "case/a.jsonl"
    old = s3_env.head("wl-same", key)["ETag"]
    client = s3_env.client()
    body = (logs_dir(case) / "a.jsonl").read_bytes()
    part = 5 << 20
    assert len(body) < part  # one part of a multipart upload: its ETag is "md5-1", not the md5
    upload = client.create_multipart_upload(Bucket="wl-same", Key=key)
    etag = client.upload_part(Bucket="wl-same", Key=key, PartNumber=1, UploadId=upload["UploadId"], Body=body)
    client.complete_multipart_upload(
        Bucket="wl-same",
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": etag["ETag"], "PartNumber": 1}]},
    )
    assert s3_env.head("wl-same", key)["ETag"] != old
    again = wattledger.ingest(url, ledger=ledger, **run)
    assert (again.files_read, len(again.files_skipped)) == (0, 5)
    assert frames_close(report(ledger), before, rel=0) == []


def test_cli_ingest_reingest_conflict_and_replace(s3: MotoS3, case: Case, tmp_path: Path) -> None:
    """The CLI with the AWS variables: the local run's summary (paths as URLs), the same
    sources; again: all skipped; a changed object: exit 4 naming it; ``--replace``: counted
    once."""
    url = upload_case(s3, case, "wl-cli")
    env = s3.env()
    common = ["--config", case.config, "--grid", case.grid, "--no-progress"]
    local_ledger, ledger = tmp_path / "local.duckdb", tmp_path / "s3.duckdb"
    local = wattledger_cli("ingest", *case.logs, "--ledger", local_ledger, *common, env=env)
    first = wattledger_cli("ingest", url, "--ledger", ledger, *common, env=env)
    assert local.returncode == first.returncode == 0, first.stderr
    assert summary_lines(first.stdout, logs_dir(case), url) == summary_lines(
        local.stdout, logs_dir(case), url
    )
    assert sources(ledger) == relocate(sources(local_ledger), logs_dir(case), url)

    again = wattledger_cli("ingest", url, "--ledger", ledger, *common, env=env)
    assert again.returncode == 0, again.stderr
    assert "0 ingested, 5 skipped, 0 replaced" in again.stdout
    assert f"skipped   {url}a.jsonl: unchanged" in again.stdout

    s3.put("wl-cli", "case/b.jsonl.gz", rewrite_smaller((logs_dir(case) / "b.jsonl.gz").read_bytes()))
    refused = wattledger_cli("ingest", url, "--ledger", ledger, *common, env=env)
    assert refused.returncode == 4
    assert f"{url}b.jsonl.gz" in one_error_line(refused.stderr)
    replaced = wattledger_cli("ingest", url, "--ledger", ledger, *common, "--replace", env=env)
    assert replaced.returncode == 0, replaced.stderr
    assert "1 ingested, 4 skipped, 1 replaced" in replaced.stdout
    rows = [r for r in sources(ledger) if r[0] == f"{url}b.jsonl.gz"]
    assert [r[-1] for r in rows] == [True, False]  # the new row current, the old one replaced


# --------------------------------------------------------------------------------------------
# Which objects a URL names


SELECT_BUCKET = "wl-select"
#: Keys of the selection bucket; the listed ones are logs, the others must be passed over.
SELECT_KEYS = [
    "logs/.staging/e.jsonl",  # hidden "directory"
    "logs/10.jsonl",
    "logs/2025-12-31/z.jsonl",
    "logs/2026-01-01/.part-0.jsonl",  # hidden: a writer's temporary
    "logs/2026-01-01/a.jsonl",
    "logs/2026-01-01/b.csv",
    "logs/2026-01-01/notes.txt",  # unknown extension
    "logs/2026-01-02/_SUCCESS",  # a Spark job's marker
    "logs/2026-01-02/c.jsonl.gz",
    "logs/2026-01-03/sub/deep.jsonl",
    "logs/2026-02-01/e.jsonl",
    "logs/9.jsonl",
    "logs-old/y.jsonl",  # shares the characters "logs", not the prefix "logs/"
    "other/x.jsonl",
]


@pytest.fixture(scope="module")
def select_bucket(s3: MotoS3, case: Case) -> str:
    """Small, distinct logs (a few lines of the case each) under the keys above."""
    s3.create_bucket(SELECT_BUCKET)
    jsonl = (logs_dir(case) / "a.jsonl").read_text().splitlines(keepends=True)
    csv = (logs_dir(case) / "c.csv").read_text().splitlines(keepends=True)
    for i, key in enumerate(SELECT_KEYS):
        lines = jsonl[3 * i : 3 * i + 3]
        if key.endswith(".csv"):
            data = "".join([csv[0], *csv[2 + 3 * i : 5 + 3 * i]]).encode()
        elif key.endswith(".gz"):
            data = gzip.compress("".join(lines).encode(), mtime=0)
        elif key.endswith((".txt", "_SUCCESS")) or "/." in key:
            data = BAD_JSONL[0].encode()  # read by mistake, it would be a reject
        else:
            data = "".join(lines).encode()
        s3.put(SELECT_BUCKET, key, data)
    return f"s3://{SELECT_BUCKET}/"


def picked(inputs: str | list[str]) -> list[str]:
    return [f["path"] for f in wattledger.validate(inputs)]


def test_prefix_lists_logs_recursively_in_key_order(s3_env: MotoS3, select_bucket: str) -> None:
    """A prefix is a directory: every log under it, at any depth, sorted by key (byte order:
    ``10`` before ``2025`` before ``9``), hidden segments and unknown extensions passed over."""
    b = select_bucket
    assert picked(f"{b}logs/") == [
        f"{b}logs/10.jsonl",
        f"{b}logs/2025-12-31/z.jsonl",
        f"{b}logs/2026-01-01/a.jsonl",
        f"{b}logs/2026-01-01/b.csv",
        f"{b}logs/2026-01-02/c.jsonl.gz",
        f"{b}logs/2026-01-03/sub/deep.jsonl",
        f"{b}logs/2026-02-01/e.jsonl",
        f"{b}logs/9.jsonl",
    ]
    assert picked(f"{b}logs/2026-01-01/a.jsonl") == [f"{b}logs/2026-01-01/a.jsonl"]


def test_glob_matches_keys_and_star_stays_within_a_segment(s3_env: MotoS3, select_bucket: str) -> None:
    """``*`` matches within one ``/``-separated segment: ``logs/*.jsonl`` is the top level
    only, ``logs/2026-*/*.jsonl`` one level down (not ``2026-01-03/sub/deep.jsonl``, not the
    hidden ``.part-0.jsonl``, not ``c.jsonl.gz``); ``read_logs``' ``source`` is the URL."""
    b = select_bucket
    assert picked(f"{b}logs/*.jsonl") == [f"{b}logs/10.jsonl", f"{b}logs/9.jsonl"]
    days = [f"{b}logs/2026-01-01/a.jsonl", f"{b}logs/2026-02-01/e.jsonl"]
    assert picked(f"{b}logs/2026-*/*.jsonl") == days
    frame = wattledger.read_logs(f"{b}logs/2026-*/*.jsonl")
    assert frame["source"].unique(maintain_order=True).to_list() == days
    assert frame.height == 6


@pytest.mark.parametrize(
    "url",
    [
        "s3://wl-select/logs/2026-01-01/missing.jsonl",  # no such key
        "s3://wl-select/nothing/",  # an empty prefix
        "s3://wl-select/logs/2027-*/*.jsonl",  # a glob matching nothing
        "s3://wl-no-such-bucket/logs/a.jsonl",  # no such bucket
        "s3://wl-no-such-bucket/logs/",
    ],
)
def test_nothing_to_read_is_an_input_error_naming_the_url(
    s3_env: MotoS3, select_bucket: str, case: Case, url: str, tmp_path: Path
) -> None:
    """An error for what is missing, not for object storage as such: a log beside it reads."""
    assert picked(f"{select_bucket}logs/9.jsonl") == [f"{select_bucket}logs/9.jsonl"]
    with pytest.raises(InputError) as error:
        wattledger.validate(url)
    assert url in str(error.value)
    with pytest.raises(InputError) as error:
        wattledger.ingest(
            url, ledger=tmp_path / "ledger.duckdb", config=case.config, grid=case.grid, progress=False
        )
    assert url in str(error.value)
    assert not (tmp_path / "ledger.duckdb").exists()


def test_cli_missing_object_is_one_error_line(
    s3: MotoS3, select_bucket: str, case: Case, tmp_path: Path
) -> None:
    url = f"{select_bucket}logs/2026-01-01/missing.jsonl"
    ledger = tmp_path / "l.duckdb"
    done = wattledger_cli(
        "ingest", url, "--ledger", ledger, "--config", case.config, "--grid", case.grid, env=s3.env()
    )
    assert done.returncode == 2 and url in one_error_line(done.stderr)
    assert not (tmp_path / "l.duckdb").exists()


# --------------------------------------------------------------------------------------------
# validate, read_logs, estimate


def test_validate_and_read_logs_equal_local(s3_env: MotoS3, case: Case, case_url: str) -> None:
    want = relocate(wattledger.validate(case.logs), logs_dir(case), case_url)
    assert wattledger.validate(case_url) == want  # records, rejects, size, BLAKE3 per file
    local = wattledger.read_logs(case.logs)
    local = local.with_columns(pl.col("source").str.replace(f"{logs_dir(case)}/", case_url, literal=True))
    assert_frame_equal(wattledger.read_logs(case_url), local)


@pytest.mark.parametrize("per_record", [False, True], ids=["hourly", "per-record"])
def test_cli_estimate_out_equals_local(
    s3: MotoS3, case: Case, case_url: str, tmp_path: Path, per_record: bool
) -> None:
    """``estimate s3://... --out x.parquet`` (hourly, and ``--per-record``) writes what the
    local files give, with the URL as ``source``, and prints the same summary."""
    env = s3.env()
    flags = ["--config", case.config, "--grid", case.grid, "--no-progress"] + (
        ["--per-record"] if per_record else []
    )
    local = wattledger_cli("estimate", *case.logs, "--out", tmp_path / "local.parquet", *flags, env=env)
    remote = wattledger_cli("estimate", case_url, "--out", tmp_path / "s3.parquet", *flags, env=env)
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert summary_lines(remote.stdout, logs_dir(case), case_url) == summary_lines(
        local.stdout, logs_dir(case), case_url
    )
    want = pl.read_parquet(tmp_path / "local.parquet")
    want = want.with_columns(pl.col("source").str.replace(f"{logs_dir(case)}/", case_url, literal=True))
    got = pl.read_parquet(tmp_path / "s3.parquet")
    order = ["source", "line"] if per_record else [*KEY_COLUMNS, "source"]
    assert got.height == want.height > 1000
    assert frames_close(got.sort(order, nulls_last=True), want.sort(order, nulls_last=True), rel=1e-9) == []


# --------------------------------------------------------------------------------------------
# Storage options instead of the environment


def test_storage_options_instead_of_env(
    s3: MotoS3, case: Case, case_url: str, local, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no AWS variable set, ``storage_options`` (object_store's configuration keys) reach
    the server, for each of ingest, estimate, validate and read_logs."""
    use_env(monkeypatch, without_cloud_env(os.environ))
    options = s3.storage_options()
    assert wattledger.validate(case_url, storage_options=options) == relocate(
        wattledger.validate(case.logs), logs_dir(case), case_url
    )
    assert wattledger.read_logs(case_url, storage_options=options).height == 19_999
    hourly = wattledger.estimate(case_url, config=case.config, grid=case.grid, storage_options=options)
    assert hourly.height == hourly_rows(local[0])
    ledger = tmp_path / "ledger.duckdb"
    wattledger.ingest(
        case_url, ledger=ledger, config=case.config, grid=case.grid, progress=False, storage_options=options
    )
    assert sources(ledger) == relocate(sources(local[0]), logs_dir(case), case_url)


def test_storage_options_win_over_env(
    s3: MotoS3, case: Case, case_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment names a wrong secret and a dead endpoint; the options' correct ones win."""
    use_env(
        monkeypatch, s3.env(AWS_SECRET_ACCESS_KEY="wrong", AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    )
    stats = wattledger.validate(f"{case_url}a.jsonl", storage_options=s3.storage_options())
    assert [(f["records"], f["rejected"]) for f in stats] == [(3000, 2)]


def test_unknown_storage_option_is_an_error_naming_it(s3_env: MotoS3, case_url: str, tmp_path: Path) -> None:
    # A misspelt setting is a usage error (the option, not the data, is wrong).
    with pytest.raises(UsageError, match="aws_endpoint_urll"):
        wattledger.validate(case_url, storage_options={"aws_endpoint_urll": s3_env.endpoint})
    done = wattledger_cli(
        "validate", case_url, "--storage-option", "aws_endpoint_urll=http://x", env=s3_env.env()
    )
    assert done.returncode == 2 and "aws_endpoint_urll" in one_error_line(done.stderr)


def test_storage_option_texts_are_key_value_pairs() -> None:
    """``--storage-option KEY=VALUE``: a later key wins, a value may hold ``=``; a text without
    ``=`` is a usage error saying the form."""
    got = parse_storage_options(["aws_region=eu-west-1", " aws_region =us-east-1", "token=a=b"])
    assert got == {"aws_region": "us-east-1", "token": "a=b"}
    for bad in ("aws_region", "=x"):
        with pytest.raises(UsageError, match="expected KEY=VALUE"):
            parse_storage_options([bad])


def test_cli_storage_option(s3: MotoS3, case: Case, case_url: str, tmp_path: Path) -> None:
    """``--storage-option KEY=VALUE`` (repeated) on validate, estimate and ingest, with no AWS
    variable set: the same results as the local files."""
    env = without_cloud_env(os.environ)
    options = [a for k, v in s3.storage_options().items() for a in ("--storage-option", f"{k}={v}")]
    validated = wattledger_cli("validate", case_url, *options, env=env)
    local = wattledger_cli("validate", *case.logs, env=env)
    assert validated.returncode == local.returncode == 1  # rejects, as locally
    for p in case.logs:
        assert case_url + Path(p).name in validated.stdout
    common = ["--config", case.config, "--grid", case.grid, "--no-progress"]
    estimated = wattledger_cli(
        "estimate", case_url, "--out", tmp_path / "h.parquet", *common, *options, env=env
    )
    assert estimated.returncode == 0, estimated.stderr
    assert "19,999 read from 5 file(s), 6 rejected" in estimated.stdout
    ingested = wattledger_cli(
        "ingest", case_url, "--ledger", tmp_path / "l.duckdb", *common, *options, env=env
    )
    assert ingested.returncode == 0, ingested.stderr
    assert "5 ingested" in ingested.stdout


# --------------------------------------------------------------------------------------------
# Failures: credentials, plain http, an endpoint that does not answer


def test_wrong_secret_is_an_input_error_about_credentials(
    s3: MotoS3, case_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{case_url}a.jsonl"
    use_env(monkeypatch, s3.env(AWS_SECRET_ACCESS_KEY="not-the-secret"))
    with pytest.raises(InputError) as error:
        wattledger.validate(url)
    message = str(error.value)
    assert url in message and ("credential" in message.lower() or "AWS_ACCESS_KEY_ID" in message), message
    done = wattledger_cli("validate", url, env=s3.env(AWS_SECRET_ACCESS_KEY="not-the-secret"))
    line = one_error_line(done.stderr)
    assert (
        done.returncode == 2 and url in line and ("credential" in line.lower() or "AWS_ACCESS_KEY_ID" in line)
    )


def test_plain_http_endpoint_needs_allow_http(
    s3: MotoS3, case_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = s3.env()
    del env["AWS_ALLOW_HTTP"]
    use_env(monkeypatch, env)
    with pytest.raises(InputError, match="AWS_ALLOW_HTTP") as error:
        wattledger.validate(f"{case_url}a.jsonl")
    assert f"{case_url}a.jsonl" in str(error.value)


def test_endpoint_that_does_not_answer_fails_in_bounded_time(s3: MotoS3, case_url: str) -> None:
    """Nothing listens on the endpoint's port: one error line naming the URL, within a
    minute (retries are bounded), not a hang."""
    url = f"{case_url}a.jsonl"
    env = s3.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    try:
        done = wattledger_cli("validate", url, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"validate {url} against a closed port still running after 60 s")
    assert done.returncode == 2 and url in one_error_line(done.stderr)


# --------------------------------------------------------------------------------------------
# Objects larger than one ranged read (8 MiB)

MIB = 1 << 20


def big_jsonl(case: Case, size: int) -> bytes:
    """At least ``size`` bytes of the case's JSON Lines, repeated, with a reject planted across
    every multiple of 8 MiB (a bad line that starts before the boundary and ends after it)."""
    good = (logs_dir(case) / "a.jsonl").read_text().splitlines(keepends=True)[:2900]
    out: list[bytes] = []
    offset, boundary = 0, 8 * MIB
    while offset < size:
        for line in good:
            data = line.encode()
            if offset + len(data) > boundary:
                pad = "x" * (boundary - offset + 100)
                data = (
                    '{"ts": "2025-06-01T03:00:00Z", "model": "llama-3.1-8b", "input_tokens": "many", '
                    f'"pad": "{pad}"}}\n'
                ).encode()
                boundary += 8 * MIB
            out.append(data)
            offset += len(data)
    return b"".join(out)


@pytest.fixture(scope="module")
def big_objects(s3: MotoS3, case: Case, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """~20 MB of JSON Lines and its gzip, locally and in ``s3://wl-big/`` (uploaded in parts,
    as boto3 does above 8 MiB)."""
    root = tmp_path_factory.mktemp("big")
    data = big_jsonl(case, 20_000_000)
    (root / "big.jsonl").write_bytes(data)
    (root / "big.jsonl.gz").write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    s3.create_bucket("wl-big")
    s3.upload_tree(root, "wl-big")
    return root, "s3://wl-big/"


def test_objects_larger_than_a_range_read_as_local(s3_env: MotoS3, big_objects: tuple[Path, str]) -> None:
    """Records and rejects (one planted across each 8 MiB boundary) as the local file, BLAKE3
    of all the bytes; read in several ranged GETs, not one download."""
    root, url = big_objects
    local = wattledger.validate([str(root / "big.jsonl"), str(root / "big.jsonl.gz")])
    assert local[0]["rejected"] == 2 and local[0]["records"] > 80_000
    mark = s3_env.mark()
    remote = wattledger.validate([f"{url}big.jsonl", f"{url}big.jsonl.gz"])
    assert remote == relocate(local, root, url)
    gets = [r for r in s3_env.requests_since(mark) if r.method == "GET" and r.path == "/wl-big/big.jsonl"]
    assert len(gets) >= 3 and {r.status for r in gets} == {206}, gets
    assert s3_env.head("wl-big", "big.jsonl")["ETag"].endswith('-3"')  # moto: a multipart ETag


# --------------------------------------------------------------------------------------------
# Plain http(s) URLs


@pytest.fixture(scope="module")
def http_files(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    with range_http_server(logs_dir(case), tmp_path_factory.mktemp("http-log")) as server:
        yield server


def test_http_urls_equal_local(
    http_files: FileServer, case: Case, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A JSON Lines and a Parquet file by ``http://`` URL (no AWS variable needed, plain http
    allowed because the user typed it): the same per-file statistics and report as the local
    files; the Parquet footer read by range."""
    use_env(monkeypatch, without_cloud_env(os.environ))
    names = ["a.jsonl", "e.parquet"]
    files = [str(logs_dir(case) / n) for n in names]
    urls = [http_files.url_of(Path(f)) for f in files]
    prefix = f"{http_files.url}/"
    assert wattledger.validate(urls) == relocate(wattledger.validate(files), logs_dir(case), prefix)
    run = dict(config=case.config, grid=case.grid, progress=False)
    wattledger.ingest(files, ledger=tmp_path / "local.duckdb", **run)
    wattledger.ingest(urls, ledger=tmp_path / "http.duckdb", **run)
    assert frames_close(report(tmp_path / "http.duckdb"), report(tmp_path / "local.duckdb"), rel=1e-9) == []
    assert sources(tmp_path / "http.duckdb") == relocate(
        sources(tmp_path / "local.duckdb"), logs_dir(case), prefix
    )
    served = {u: http_files.head_etag(u) for u in urls}
    assert {u: unquoted(e) for u, e in etags(tmp_path / "http.duckdb").items()} == {
        u: unquoted(e) for u, e in served.items()
    }
    parquet_gets = [r for r in http_files.requests() if r.method == "GET" and r.path == "/e.parquet"]
    assert any(r.status == 206 and r.range for r in parquet_gets), parquet_gets
