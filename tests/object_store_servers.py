"""Object storage servers for the tests, on 127.0.0.1 and never a real cloud.

- :func:`moto_s3`: moto's S3 server (``python -m moto.server``) with signature checks on: an
  IAM user is created first and its keys are the only ones accepted, so a wrong secret fails
  as it would on AWS (moto accepts any key otherwise).
- :func:`range_http_server`: a static file server answering HEAD and single-range GETs (206
  with Content-Range, 416 when unsatisfiable) with ETag and Last-Modified: what the
  object_store crate's HTTP client needs (a HEAD, then ranged GETs). Run as a script, this
  module *is* that server: ``python object_store_servers.py DIRECTORY`` prints its port.

Both run as subprocesses, not threads of the test process: the engine's Rust threads make the
HTTP requests while the calling Python thread may hold the GIL, which would starve an
in-process server. Each keeps its request log in a file, so a test can tell which objects were
read and how (ranged or whole).
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
REGION = "us-east-1"
#: Seconds a server may take to answer its first request (moto imports much of itself first).
START_TIMEOUT = 60.0

#: Environment variables that would point the engine (or boto3) elsewhere than the test
#: server: removed from every environment the tests hand on, so a developer's own profile,
#: session token or endpoint cannot leak in.
_FOREIGN_ENV = re.compile(r"^(AWS_|AMAZON_|GOOGLE_|GCS_|AZURE_|OBJECT_STORE_)")


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def without_cloud_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without any cloud credential, region or endpoint variable."""
    return {k: v for k, v in environ.items() if not _FOREIGN_ENV.match(k)}


@dataclass
class _Process:
    """A server subprocess: its URL and the file its stderr (the request log) goes to."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class _ExitedEarly(RuntimeError):
    """The server process ended before it answered (e.g. its port was taken meanwhile)."""


def _wait_until_answers(server: _Process, probe: str, timeout: float) -> None:
    """Until ``probe`` answers with any HTTP status; a server that exits or stays silent past
    ``timeout`` fails the test with its stderr."""
    deadline = time.monotonic() + timeout
    while True:
        code = server.process.poll()
        if code is not None:
            raise _ExitedEarly(
                f"{server.url}: the server exited with {code} before answering:\n{server.log_text()}"
            )
        try:
            with urllib.request.urlopen(server.url + probe, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # an HTTP error status is an answer
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"{server.url}: no answer within {timeout:.0f} s; its stderr:\n{server.log_text()}"
            )
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# moto's S3 server


#: A werkzeug request log line: ``127.0.0.1 - - [date] "GET /bucket/key?query HTTP/1.1" 206 -``.
_MOTO_LOG_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    #: The URL path (for S3, path style: ``/bucket/key``), percent-decoding left as sent.
    path: str
    query: str
    status: int
    #: The Range header when the server logs it (the HTTP file server does; moto does not).
    range: str | None = None


@dataclass
class MotoS3:
    """A running moto S3 server and the one key pair it accepts."""

    server: _Process
    access_key_id: str
    secret_access_key: str
    region: str = REGION

    @property
    def endpoint(self) -> str:
        return self.server.url

    def env(self, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
        """The environment for the engine (and the CLI): ``base`` (default: this process's)
        without foreign cloud variables, plus this server's endpoint, keys and region, plain
        http allowed, plus ``extra``."""
        env = without_cloud_env(os.environ if base is None else base)
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key,
            AWS_REGION=self.region,
            AWS_ALLOW_HTTP="true",
        )
        env.update(extra)
        return env

    def storage_options(self) -> dict[str, str]:
        """The same settings as object_store configuration keys (``storage_options``)."""
        return {
            "aws_endpoint": self.endpoint,
            "aws_allow_http": "true",
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_region": self.region,
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server (path-style addressing, as the engine uses)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Store one object (a single PUT); returns its ETag as S3 sends it (quoted)."""
        return str(self.client().put_object(Bucket=bucket, Key=key, Body=data)["ETag"])

    def upload_tree(self, directory: Path, bucket: str, prefix: str = "") -> list[str]:
        """Every file under ``directory`` (hidden ones too) as ``prefix + relative path``;
        returns the keys, sorted. Files above boto3's 8 MiB threshold go up in parts, so their
        ETag is a multipart one (``"md5-N"``), as on S3."""
        client = self.client()
        keys = []
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(directory).as_posix()
            client.upload_file(str(path), bucket, key)
            keys.append(key)
        return sorted(keys)

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        return dict(self.client().head_object(Bucket=bucket, Key=key))

    def mark(self) -> int:
        """A point in the request log; :meth:`requests_since` lists what came after it."""
        return len(self.server.log.read_bytes())

    def requests_since(self, mark: int) -> list[LoggedRequest]:
        """The requests logged after ``mark``. A sentinel request is made and awaited first:
        werkzeug logs a request after answering it, so a reply the client already has may not
        be in the file yet."""
        sentinel = f"/moto-api/?sentinel={time.monotonic_ns()}"
        with urllib.request.urlopen(self.endpoint + sentinel, timeout=10):
            pass
        deadline = time.monotonic() + 10
        while sentinel not in (text := self.server.log.read_bytes()[mark:].decode(errors="replace")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto never logged {sentinel}:\n{text}")
            time.sleep(0.05)
        out = []
        for line in text.splitlines():
            m = _MOTO_LOG_LINE.search(line)
            if m and not m["target"].startswith("/moto-api/"):
                path, _, query = m["target"].partition("?")
                out.append(LoggedRequest(m["method"], path, query, int(m["status"])))
        return out


def _enable_signature_checks(endpoint: str) -> tuple[str, str]:
    """Creates an IAM user allowed everything and its key pair, then turns moto's request
    authentication on (from the next request, every S3 call must be signed with that pair).
    Returns (access key id, secret)."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
    )
    iam.create_user(UserName="wattledger-tests")
    allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="wattledger-tests", PolicyName="all", PolicyDocument=json.dumps(allow_all))
    key = iam.create_access_key(UserName="wattledger-tests")["AccessKey"]
    # moto lets this many more requests through unauthenticated (its INITIAL_NO_AUTH_ACTION_COUNT):
    # none from now on, so every request must be signed with a key of its IAM.
    # (text/plain: under urllib's default form type, Flask parses the body away.)
    request = urllib.request.Request(
        endpoint + "/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


@contextmanager
def moto_s3(workdir: Path, *, timeout: float = START_TIMEOUT) -> Iterator[MotoS3]:
    """moto's S3 server on a free port of 127.0.0.1, for the ``with`` block; its stderr (the
    request log) in ``workdir/moto-N.log``. Stopped (and waited for) at the end."""
    workdir.mkdir(parents=True, exist_ok=True)
    last_error: _ExitedEarly | None = None
    for attempt in range(3):  # the port is free when picked, not necessarily when moto binds it
        port = free_port()
        log = workdir / f"moto-{attempt}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env={**without_cloud_env(os.environ), "PYTHONUNBUFFERED": "1"},
            )
        server = _Process(process, f"http://{HOST}:{port}", log)
        try:
            _wait_until_answers(server, "/moto-api/", timeout)
        except _ExitedEarly as e:
            last_error = e
            continue
        try:
            key_id, secret = _enable_signature_checks(server.url)
            yield MotoS3(server, key_id, secret)
        finally:
            server.stop()
        return
    assert last_error is not None
    raise last_error


# --------------------------------------------------------------------------------------------
# A static HTTP file server with byte ranges


@dataclass
class FileServer:
    """A running :func:`range_http_server`: ``url`` + ``/relative/path`` is a file."""

    server: _Process
    directory: Path

    @property
    def url(self) -> str:
        return self.server.url

    def url_of(self, path: Path) -> str:
        return f"{self.url}/{path.relative_to(self.directory).as_posix()}"

    def head_etag(self, url: str) -> str:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as r:
            return str(r.headers["ETag"])

    def requests(self) -> list[LoggedRequest]:
        """Every request answered so far (logged before the reply is sent)."""
        out = []
        for line in self.server.log_text().splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                out.append(LoggedRequest(r["method"], r["path"], "", r["status"], r["range"]))
        return out


@contextmanager
def range_http_server(
    directory: Path, workdir: Path, *, timeout: float = START_TIMEOUT
) -> Iterator[FileServer]:
    """This module run as a server of ``directory`` on 127.0.0.1 (it binds port 0 itself and
    prints the port, so no other process can take it in between)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "http-server.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()  # empty when it died first
    server = _Process(process, f"http://{HOST}:{line}", log)
    try:
        if not line.isdigit():
            process.wait(timeout=timeout)
            raise RuntimeError(f"the HTTP file server did not start:\n{server.log_text()}")
        _wait_until_answers(server, "/", timeout)
        yield FileServer(server, directory)
    finally:
        server.stop()
        process.stdout.close()


class RangeRequestHandler(BaseHTTPRequestHandler):
    """GET and HEAD of the files under the server's directory (no listings), with single
    byte ranges (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) and the validators object stores
    send (ETag, Last-Modified, If-Match, If-None-Match, If-(Un)Modified-Since)."""

    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    directory: Path  # set on the subclass the server is started with

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one JSON line per request instead (_log), which tests parse

    def _log(self, status: int) -> None:
        entry = {
            "method": self.command,
            "path": self.path,
            "range": self.headers.get("Range"),
            "status": status,
        }
        sys.stderr.write(json.dumps(entry) + "\n")
        sys.stderr.flush()

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _file(self) -> Path | None:
        relative = urllib.request.url2pathname(self.path.split("?", 1)[0]).lstrip("/")
        path = (self.directory / relative).resolve()
        if not path.is_relative_to(self.directory) or not path.is_file():
            return None
        return path

    def _send(
        self, status: int, headers: Mapping[str, str], body: bytes = b"", send_body: bool = True
    ) -> None:
        self._log(status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _answer(self, *, body: bool) -> None:
        path = self._file()
        if path is None:
            self._send(HTTPStatus.NOT_FOUND, {}, b"not found\n", body)
            return
        st = path.stat()
        size = st.st_size
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        modified = int(st.st_mtime)
        validators = {
            "ETag": etag,
            "Last-Modified": email.utils.formatdate(modified, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        failed = self._precondition_failed(etag, modified)
        if failed:
            self._send(failed, validators, send_body=False)
            return
        try:
            span = self._range(size)
        except _Unsatisfiable:
            self._send(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {**validators, "Content-Range": f"bytes */{size}"}
            )
            return
        start, end = span if span is not None else (0, size - 1)
        headers = {
            **validators,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(end - start + 1 if size else 0),
        }
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        status = HTTPStatus.PARTIAL_CONTENT if span is not None else HTTPStatus.OK
        self._send(status, headers, send_body=False)
        if body and size:
            with path.open("rb") as f:
                f.seek(start)
                _copy(f, self.wfile, end - start + 1)

    def _precondition_failed(self, etag: str, modified: int) -> int | None:
        def matches(header: str) -> bool:
            tags = [t.strip() for t in header.split(",")]
            return "*" in tags or etag in tags or etag in (t.removeprefix("W/") for t in tags)

        def when(header: str) -> float | None:
            try:
                return email.utils.parsedate_to_datetime(header).timestamp()
            except (TypeError, ValueError):
                return None

        h = self.headers
        if (v := h.get("If-Match")) is not None and not matches(v):
            return HTTPStatus.PRECONDITION_FAILED
        if (v := h.get("If-Unmodified-Since")) is not None and (t := when(v)) is not None and modified > t:
            return HTTPStatus.PRECONDITION_FAILED
        if (v := h.get("If-None-Match")) is not None and matches(v):
            return HTTPStatus.NOT_MODIFIED
        if (v := h.get("If-Modified-Since")) is not None and (t := when(v)) is not None and modified <= t:
            return HTTPStatus.NOT_MODIFIED
        return None

    def _range(self, size: int) -> tuple[int, int] | None:
        """The requested (first, last) byte, None for the whole file (no Range header, or
        one this server ignores as RFC 9110 allows: several ranges, another unit, an invalid
        one); :class:`_Unsatisfiable` when it starts past the end."""
        header = self.headers.get("Range")
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
        if m is None or (m[1] == "" and m[2] == ""):
            return None
        if m[1] == "":  # the last n bytes
            n = int(m[2])
            if n == 0 or size == 0:
                raise _Unsatisfiable
            return max(size - n, 0), size - 1
        start = int(m[1])
        if m[2] != "" and int(m[2]) < start:
            return None  # not a valid range: ignored
        if start >= size:
            raise _Unsatisfiable
        return start, size - 1 if m[2] == "" else min(int(m[2]), size - 1)


class _Unsatisfiable(Exception):
    """A byte range that starts past the end of the file (HTTP 416)."""


def _copy(source: IO[bytes], sink: Any, length: int) -> None:
    while length > 0:
        chunk = source.read(min(length, 1 << 20))
        if not chunk:
            break
        sink.write(chunk)
        length -= len(chunk)


def serve(directory: Path) -> None:
    """Serve ``directory`` on 127.0.0.1 at a port the OS picks, printed on stdout."""
    handler = type("Handler", (RangeRequestHandler,), {"directory": directory.resolve()})
    httpd = ThreadingHTTPServer((HOST, 0), handler)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
