"""The servers the object storage tests read from (tests/object_store_servers.py) behave as the
object_store crate expects of S3 and of a plain HTTP server: exact bytes for a byte range, 206
and 416, validators, signature checks. If these fail, a failure of test_object_storage.py says
nothing about the engine."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from object_store_servers import FileServer, MotoS3, moto_s3, range_http_server


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("www")
    (root / "sub").mkdir()
    (root / "sub" / "blob.bin").write_bytes(os.urandom(300_000))
    (root / "empty.jsonl").write_bytes(b"")
    with range_http_server(root, tmp_path_factory.mktemp("www-log")) as server:
        yield server


def fetch(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_http_range_gives_the_exact_bytes(files: FileServer) -> None:
    blob = files.directory / "sub" / "blob.bin"
    data, url = blob.read_bytes(), files.url_of(blob)
    status, headers, body = fetch(url, Range="bytes=1000-1999")
    assert (status, headers["Content-Range"], body) == (206, f"bytes 1000-1999/{len(data)}", data[1000:2000])
    assert headers["Content-Length"] == "1000"
    status, headers, body = fetch(url, Range="bytes=299990-")  # open-ended
    assert (status, headers["Content-Range"], body) == (206, f"bytes 299990-299999/{len(data)}", data[-10:])
    status, _, body = fetch(url, Range="bytes=-7")  # the last 7 bytes (a Parquet footer read)
    assert (status, body) == (206, data[-7:])
    status, _, body = fetch(url, Range="bytes=299000-999999")  # past the end: clamped
    assert (status, body) == (206, data[299000:])
    status, headers, body = fetch(url)
    assert (status, body, headers["Accept-Ranges"]) == (200, data, "bytes")
    logged = [r for r in files.requests() if r.path == "/sub/blob.bin"]
    assert [(r.range, r.status) for r in logged[:3]] == [
        ("bytes=1000-1999", 206),
        ("bytes=299990-", 206),
        ("bytes=-7", 206),
    ]


def test_http_unsatisfiable_missing_and_outside(files: FileServer) -> None:
    url = files.url_of(files.directory / "sub" / "blob.bin")
    status, headers, _ = fetch(url, Range="bytes=300000-300010")
    assert (status, headers["Content-Range"]) == (416, "bytes */300000")
    status, _, _ = fetch(files.url_of(files.directory / "empty.jsonl"), Range="bytes=0-10")
    assert status == 416
    assert fetch(files.url + "/sub/nope.jsonl")[0] == 404
    assert fetch(files.url + "/sub/")[0] == 404  # no listings
    secret = files.directory.parent / "outside.txt"
    secret.write_text("not served")
    assert fetch(files.url + "/%2e%2e/outside.txt")[0] == 404


def test_http_head_and_validators(files: FileServer) -> None:
    url = files.url_of(files.directory / "sub" / "blob.bin")
    status, headers, body = fetch(url, method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", "300000")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    assert fetch(url, **{"If-Match": etag, "Range": "bytes=0-0"})[0] == 206
    assert fetch(url, **{"If-Match": '"other"'})[0] == 412
    assert fetch(url, **{"If-None-Match": etag})[0] == 304
    assert fetch(url, **{"If-Modified-Since": modified})[0] == 304
    # Rewritten: a new ETag, and a reader holding the old one is told so.
    (files.directory / "sub" / "blob.bin").write_bytes(os.urandom(300_001))
    assert fetch(url, method="HEAD")[1]["ETag"] != etag
    assert fetch(url, **{"If-Match": etag})[0] == 412


def test_moto_put_get_range_and_list(s3: MotoS3) -> None:
    s3.create_bucket("servers-test")
    data = os.urandom(50_000)
    etag = s3.put("servers-test", "p/one.bin", data)
    s3.put("servers-test", "p/10.jsonl", b"x")
    s3.put("servers-test", "p/9.jsonl", b"x")
    s3.put("servers-test", "p/.hidden/a.jsonl", b"x")
    client = s3.client()
    mark = s3.mark()
    got = client.get_object(Bucket="servers-test", Key="p/one.bin", Range="bytes=100-199")
    assert got["ContentRange"] == "bytes 100-199/50000" and got["Body"].read() == data[100:200]
    assert client.get_object(Bucket="servers-test", Key="p/one.bin")["Body"].read() == data
    assert s3.head("servers-test", "p/one.bin")["ETag"] == etag
    listed = client.list_objects_v2(Bucket="servers-test", Prefix="p/")["Contents"]
    assert [o["Key"] for o in listed] == ["p/.hidden/a.jsonl", "p/10.jsonl", "p/9.jsonl", "p/one.bin"]
    logged = s3.requests_since(mark)
    assert [(r.method, r.path, r.status) for r in logged[:2]] == [
        ("GET", "/servers-test/p/one.bin", 206),
        ("GET", "/servers-test/p/one.bin", 200),
    ]


def test_moto_checks_signatures(s3: MotoS3) -> None:
    """The engine's wrong-credentials tests rest on this: moto (which accepts any key by
    default) refuses a wrong secret and an unknown key id here."""
    s3.create_bucket("servers-auth")
    s3.put("servers-auth", "k.jsonl", b"{}\n")
    for key_id, secret, code in [
        (s3.access_key_id, "wrong", "SignatureDoesNotMatch"),
        ("AKIAIOSFODNN7EXAMPLE", s3.secret_access_key, "InvalidAccessKeyId"),
    ]:
        client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            region_name="us-east-1",
        )
        with pytest.raises(ClientError) as refused:
            client.get_object(Bucket="servers-auth", Key="k.jsonl")
        assert refused.value.response["Error"]["Code"] == code


def test_moto_env_names_only_the_test_server(s3: MotoS3) -> None:
    env = s3.env({"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "t", "HOME": "/h"})
    assert env["HOME"] == "/h" and "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert env["AWS_ENDPOINT_URL"] == s3.endpoint and env["AWS_ALLOW_HTTP"] == "true"


def test_servers_stop_at_the_end(tmp_path: Path) -> None:
    with range_http_server(tmp_path, tmp_path / "log") as files:
        port = int(files.url.rsplit(":", 1)[1])
        process = files.server.process
    assert process.poll() is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
