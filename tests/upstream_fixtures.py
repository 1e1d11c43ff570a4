"""Sample log files written exactly as upstream tools write them, field by field.

Every writer takes a directory, writes one file into it and returns an ``Expected`` with the totals
the file must produce when ingested with its preset (``otel``, ``vllm``, ``litellm``, ``openai``)
and ``PACK_TOML`` as the methodology pack. Each writer's docstring names the upstream source it
follows (repository, path, commit as stored in the public code index used to write this file).

The data are invented but shaped like real traffic in 2025: several models, several sites,
error requests, cache hits (LiteLLM), non-GenAI spans that the OTel preset must skip.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# The methodology pack every fixture is ingested with. Site names are the hosts the fixtures put
# in server.address / api_base; [aliases.models] maps every raw model name they write to a pack
# name; records with no site fall back to [defaults] site.

PACK_TOML = """\
[pack]
name = "upstream-fixtures"
version = "1"
description = "Test pack for tests/upstream_fixtures.py: every site and model the fixtures use."

[defaults]
pue = 1.2
site = "vllm-fra-1.internal"

[uncertainty]
measured = 0.05
tokens = 0.3
gpu_time = 0.5
flops = 1.0

[hardware."nvidia-h100-sxm"]
tdp_w = 700
idle_w = 75
peak_tflops = 989

[models."llama-3.1-8b"]
active_params_b = 8.03
[[models."llama-3.1-8b".coefficients]]
hardware = "*"
wh_per_1k_input = 0.00632
wh_per_1k_output = 0.0331

[models."llama-3.1-70b"]
active_params_b = 70.6
[[models."llama-3.1-70b".coefficients]]
hardware = "*"
wh_per_1k_input = 0.0556
wh_per_1k_output = 0.0912

[models."gpt-4o"]
[[models."gpt-4o".coefficients]]
hardware = "*"
wh_per_1k_input = 0.05
wh_per_1k_output = 0.3

[models."gpt-4o-mini"]
[[models."gpt-4o-mini".coefficients]]
hardware = "*"
wh_per_1k_input = 0.01
wh_per_1k_output = 0.06

[sites."vllm-fra-1.internal"]
zone = "DE"
pue = 1.15
fallback_g_per_kwh = 380.0
hardware = "nvidia-h100-sxm"
gpus = 1

[sites."vllm-fra-2.internal"]
zone = "DE"
pue = 1.15
fallback_g_per_kwh = 380.0
hardware = "nvidia-h100-sxm"
gpus = 4

[sites."api.openai.com"]
zone = "US-CAL-CISO"
fallback_g_per_kwh = 250.0

[sites."acme-swedencentral.openai.azure.com"]
zone = "SE"
fallback_g_per_kwh = 30.0

[aliases.models]
"*Llama-3.1-8B-Instruct*" = "llama-3.1-8b"
"*Llama-3.1-70B-Instruct*" = "llama-3.1-70b"
"gpt-4o-2024-*" = "gpt-4o"
"gpt-4o-mini-2024-*" = "gpt-4o-mini"
"azure/gpt-4o" = "gpt-4o"
"azure/gpt-4o-mini" = "gpt-4o-mini"
"""

PACK_MODELS = frozenset({"llama-3.1-8b", "llama-3.1-70b", "gpt-4o", "gpt-4o-mini"})


@dataclass
class Expected:
    """Totals a fixture must produce when ingested with its preset and PACK_TOML."""

    path: Path
    requests: int
    input_tokens: int
    output_tokens: int
    failed: int
    cached: int
    skipped: int
    records_rejected: int = 0
    model_names: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _hex(seed: int, nbytes: int) -> str:
    """Deterministic lowercase hex id (trace ids: 16 bytes, span ids: 8 bytes)."""
    x = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 64)
    out = ""
    while len(out) < nbytes * 2:
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out += f"{x:016x}"
    return out[: nbytes * 2]


def _compact(obj: Any) -> str:
    """JSON as Go's encoders write it: no spaces."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


# OTLP/JSON AnyValue encoders (opentelemetry-proto docs/specification.md "JSON Protobuf Encoding":
# int64 as decimal strings, enums as integers, ids as hex).
def _s(v: str) -> dict:
    return {"stringValue": v}


def _i(v: int) -> dict:
    return {"intValue": str(v)}


def _d(v: float) -> dict:
    return {"doubleValue": v}


def _b(v: bool) -> dict:
    return {"boolValue": v}


def _arr(*vals: dict) -> dict:
    return {"arrayValue": {"values": list(vals)}}


def _kv(attrs: dict[str, dict]) -> list[dict]:
    return [{"key": k, "value": v} for k, v in attrs.items()]


def _any_to_string(v: dict) -> str:
    """pcommon.Value.AsString(): what the ClickHouse and Zipkin exporters store for attributes."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return v["intValue"]
    if "doubleValue" in v:
        return repr(float(v["doubleValue"]))
    if "boolValue" in v:
        return "true" if v["boolValue"] else "false"
    if "arrayValue" in v:
        return _compact([_any_to_py(x) for x in v["arrayValue"]["values"]])
    raise ValueError(v)


def _any_to_py(v: dict) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [_any_to_py(x) for x in v["arrayValue"]["values"]]
    raise ValueError(v)


# ---------------------------------------------------------------------------------------------
# The spans behind every OTel shape. One list, rendered five ways (OTLP file exporter, ClickHouse,
# Python console exporter, Zipkin v2, flattened), so the expected totals are the same for all.

SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 1, 2, 3
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


@dataclass
class _Span:
    name: str
    kind: int
    start: datetime
    seconds: float
    attrs: dict[str, dict]
    status: int = STATUS_UNSET
    message: str = ""
    genai: bool = True
    seed: int = 0
    parent_seed: int | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    @property
    def trace_id(self) -> str:
        return _hex(1000 + (self.parent_seed if self.parent_seed is not None else self.seed), 16)

    @property
    def span_id(self) -> str:
        return _hex(self.seed, 8)

    @property
    def parent_span_id(self) -> str:
        return _hex(self.parent_seed, 8) if self.parent_seed is not None else ""


@dataclass
class _Resource:
    attrs: dict[str, dict]
    scopes: list[tuple[str, str, list[_Span]]]  # (scope name, scope version, spans)


def _genai(
    op: str,
    provider: str | None,
    system: str | None,
    req_model: str,
    resp_model: str | None,
    inp: int | None,
    out: int | None,
    *,
    old_usage: bool = False,
    server: str | None = None,
    port: int | None = None,
    finish: str | None = "stop",
    error_type: str | None = None,
    response_id: str | None = None,
) -> dict[str, dict]:
    """GenAI span attributes, names as in open-telemetry/semantic-conventions
    model/gen-ai/registry.yaml (gen_ai.provider.name since semconv 1.37; gen_ai.system before;
    gen_ai.usage.prompt_tokens/completion_tokens deprecated for input_tokens/output_tokens)."""
    a: dict[str, dict] = {"gen_ai.operation.name": _s(op)}
    if provider is not None:
        a["gen_ai.provider.name"] = _s(provider)
    if system is not None:
        a["gen_ai.system"] = _s(system)
    a["gen_ai.request.model"] = _s(req_model)
    a["gen_ai.request.max_tokens"] = _i(1024)
    a["gen_ai.request.temperature"] = _d(0.2)
    if server is not None:
        a["server.address"] = _s(server)
    if port is not None:
        a["server.port"] = _i(port)
    if response_id is not None:
        a["gen_ai.response.id"] = _s(response_id)
    if resp_model is not None:
        a["gen_ai.response.model"] = _s(resp_model)
    if finish is not None:
        a["gen_ai.response.finish_reasons"] = _arr(_s(finish))
    if inp is not None:
        a["gen_ai.usage.prompt_tokens" if old_usage else "gen_ai.usage.input_tokens"] = _i(inp)
    if out is not None:
        a["gen_ai.usage.completion_tokens" if old_usage else "gen_ai.usage.output_tokens"] = _i(out)
    if error_type is not None:
        a["error.type"] = _s(error_type)
    return a


def _otel_resources() -> list[_Resource]:
    t0 = _utc("2025-03-04T09:14:07.250301")
    chat_app = {
        "service.name": _s("support-assistant"),
        "service.version": _s("2.14.1"),
        "host.name": _s("support-assistant-7f9c6d-x2kqp"),
        "cloud.region": _s("eu-central-1"),
        "k8s.namespace.name": _s("assistants"),
        "k8s.pod.name": _s("support-assistant-7f9c6d-x2kqp"),
        "telemetry.sdk.language": _s("python"),
        "telemetry.sdk.name": _s("opentelemetry"),
        "telemetry.sdk.version": _s("1.31.1"),
    }
    batch_job = {
        "service.name": _s("nightly-summariser"),
        "host.name": _s("batch-worker-03"),
        "cloud.region": _s("eu-central-1"),
        "k8s.namespace.name": _s("batch"),
        "k8s.pod.name": _s("nightly-summariser-29034115-5lq2d"),
    }
    http = _Span(
        "POST /v1/tickets/{id}/reply",
        SPAN_KIND_SERVER,
        t0,
        3.912,
        {
            "http.request.method": _s("POST"),
            "http.route": _s("/v1/tickets/{id}/reply"),
            "http.response.status_code": _i(200),
            "url.scheme": _s("https"),
            "server.address": _s("support.example.com"),
        },
        genai=False,
        seed=1,
    )
    db = _Span(
        "SELECT tickets",
        SPAN_KIND_CLIENT,
        t0 + timedelta(milliseconds=12),
        0.0041,
        {
            "db.system.name": _s("postgresql"),
            "db.namespace": _s("support"),
            "db.operation.name": _s("SELECT"),
            "db.collection.name": _s("tickets"),
            "server.address": _s("pg-main.internal"),
            "server.port": _i(5432),
        },
        genai=False,
        seed=2,
        parent_seed=1,
    )
    chat8 = _Span(
        "chat meta-llama/Llama-3.1-8B-Instruct",
        SPAN_KIND_CLIENT,
        t0 + timedelta(milliseconds=40),
        2.731,
        _genai(
            "chat",
            "openai",
            None,
            "meta-llama/Llama-3.1-8B-Instruct",
            "meta-llama/Llama-3.1-8B-Instruct",
            1843,
            212,
            server="vllm-fra-1.internal",
            port=8000,
            response_id="chatcmpl-8c1f0b5e2d7a4e6f9b3c1a2d4e5f6a7b",
        ),
        seed=3,
        parent_seed=1,
    )
    chat70 = _Span(
        "chat meta-llama/Llama-3.1-70B-Instruct",
        SPAN_KIND_CLIENT,
        t0 + timedelta(milliseconds=2800),
        1.044,
        _genai(
            "chat",
            "openai",
            None,
            "meta-llama/Llama-3.1-70B-Instruct",
            "meta-llama/Llama-3.1-70B-Instruct",
            2410,
            96,
            server="vllm-fra-2.internal",
            port=8000,
            response_id="chatcmpl-0d4e2f7a9b1c4d3e8f6a5b4c3d2e1f0a",
        ),
        seed=4,
        parent_seed=1,
    )
    # gpt-4o-mini through the OpenAI API, 2024-era instrumentation: gen_ai.system and the old
    # usage names, response model is the dated snapshot.
    mini_ok = _Span(
        "chat gpt-4o-mini",
        SPAN_KIND_CLIENT,
        _utc("2025-03-04T10:02:55.918774"),
        1.287,
        _genai(
            "chat",
            None,
            "openai",
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            655,
            143,
            old_usage=True,
            server="api.openai.com",
            port=443,
            response_id="chatcmpl-B7pQ2rK9sXa1LmN4oPq6RsT8uVw0",
        ),
        seed=5,
    )
    # An error span: 429 from the API, no response model, no usage (OTel status ERROR, error.type).
    mini_err = _Span(
        "chat gpt-4o-mini",
        SPAN_KIND_CLIENT,
        _utc("2025-03-04T10:03:01.004112"),
        0.212,
        _genai(
            "chat",
            None,
            "openai",
            "gpt-4o-mini",
            None,
            None,
            None,
            old_usage=True,
            server="api.openai.com",
            port=443,
            finish=None,
            error_type="429",
        ),
        status=STATUS_ERROR,
        message="Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o-mini', "
        "'type': 'requests', 'code': 'rate_limit_exceeded'}}",
        seed=6,
    )
    # Azure OpenAI, current semconv: provider azure.ai.openai; only the request model is set.
    azure_req_only = _Span(
        "chat gpt-4o",
        SPAN_KIND_CLIENT,
        _utc("2025-03-04T10:41:19.660032"),
        4.905,
        _genai(
            "chat",
            "azure.ai.openai",
            None,
            "gpt-4o-2024-08-06",
            None,
            3120,
            488,
            server="acme-swedencentral.openai.azure.com",
            port=443,
        ),
        seed=7,
    )
    # Timeout on the self-hosted 70B: error with the tokens of the prompt already read (vLLM
    # reports none); error.type is the exception class.
    timeout = _Span(
        "chat meta-llama/Llama-3.1-70B-Instruct",
        SPAN_KIND_CLIENT,
        _utc("2025-03-04T10:58:44.120550"),
        30.001,
        _genai(
            "chat",
            "openai",
            None,
            "meta-llama/Llama-3.1-70B-Instruct",
            None,
            None,
            None,
            server="vllm-fra-2.internal",
            port=8000,
            finish=None,
            error_type="openai.APITimeoutError",
        ),
        status=STATUS_ERROR,
        message="Request timed out.",
        seed=8,
    )
    # No server.address: the [defaults] site locates it. Old usage names, new provider name.
    no_site = _Span(
        "text_completion meta-llama/Llama-3.1-8B-Instruct",
        SPAN_KIND_CLIENT,
        _utc("2025-03-04T11:20:03.500000"),
        0.802,
        _genai(
            "text_completion",
            "openai",
            None,
            "meta-llama/Llama-3.1-8B-Instruct",
            "meta-llama/Llama-3.1-8B-Instruct",
            512,
            64,
            old_usage=True,
            finish="length",
        ),
        seed=9,
    )
    # An internal span of the batch job (not GenAI): skipped.
    internal = _Span(
        "summarise_batch",
        SPAN_KIND_INTERNAL,
        _utc("2025-03-04T11:20:03.100000"),
        1.4,
        {"batch.size": _i(1)},
        genai=False,
        seed=10,
    )
    return [
        _Resource(
            chat_app,
            [
                ("opentelemetry.instrumentation.fastapi", "0.52b1", [http]),
                ("opentelemetry.instrumentation.asyncpg", "0.52b1", [db]),
                ("opentelemetry.instrumentation.openai_v2", "2.1b0", [chat8, chat70, mini_ok, mini_err]),
            ],
        ),
        _Resource(
            batch_job,
            [
                ("nightly_summariser", "", [internal]),
                ("opentelemetry.instrumentation.openai_v2", "2.1b0", [azure_req_only, timeout, no_site]),
            ],
        ),
    ]


def _otel_expected(path: Path, resources: list[_Resource]) -> Expected:
    spans = [s for r in resources for _, _, ss in r.scopes for s in ss]
    g = [s for s in spans if s.genai]

    def tok(s: _Span, *names: str) -> int:
        return sum(int(s.attrs[n]["intValue"]) for n in names if n in s.attrs)

    return Expected(
        path=path,
        requests=len(g),
        input_tokens=sum(tok(s, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens") for s in g),
        output_tokens=sum(tok(s, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens") for s in g),
        failed=sum(1 for s in g if s.status == STATUS_ERROR),
        cached=0,
        skipped=len(spans) - len(g),
        model_names={"llama-3.1-8b", "llama-3.1-70b", "gpt-4o", "gpt-4o-mini"},
    )


def _otlp_span(s: _Span) -> dict:
    """A span as pdata's JSON marshaler writes it (field order of the proto)."""
    out: dict[str, Any] = {"traceId": s.trace_id, "spanId": s.span_id}
    if s.parent_span_id:
        out["parentSpanId"] = s.parent_span_id
    out["flags"] = 1
    out["name"] = s.name
    out["kind"] = s.kind
    out["startTimeUnixNano"] = str(_ns(s.start))
    out["endTimeUnixNano"] = str(_ns(s.end))
    out["attributes"] = _kv(s.attrs)
    status: dict[str, Any] = {}
    if s.message:
        status["message"] = s.message
    if s.status:
        status["code"] = s.status
    out["status"] = status
    return out


def _otlp_request(resources: list[_Resource], schema_url: str) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _kv(r.attrs)},
                "scopeSpans": [
                    {
                        "scope": {"name": name, **({"version": ver} if ver else {})},
                        "spans": [_otlp_span(s) for s in spans],
                        "schemaUrl": schema_url,
                    }
                    for name, ver, spans in r.scopes
                ],
                "schemaUrl": schema_url,
            }
            for r in resources
        ]
    }


def write_otlp_file_exporter(directory: Path) -> Expected:
    """OpenTelemetry Collector file exporter, format ``json`` (OTLP/JSON, one
    ``ExportTraceServiceRequest`` per line).

    Follows: open-telemetry/opentelemetry-proto docs/specification.md "JSON Protobuf Encoding"
    (lowerCamelCase field names, traceId/spanId as hex strings, 64-bit integers such as
    startTimeUnixNano and intValue as decimal strings, enums as integers: required since
    open-telemetry/opentelemetry-specification PR #2758, 2022); open-telemetry/opentelemetry-collector
    pdata/ptrace/json_test.go (commit 0075f95c2e54a0f2f60a92e5a2e64da9e9724046: an unset status is
    written as ``"status":{}``, resource/scopeSpans/scope/spans nesting). GenAI attribute names from
    open-telemetry/semantic-conventions model/gen-ai/registry.yaml (gen_ai.provider.name,
    gen_ai.usage.input_tokens, ...) and the deprecated gen_ai.system / gen_ai.usage.prompt_tokens
    still written by 2024 instrumentations.

    Two requests (lines): the second carries the spans of the batch job's resource.
    """
    resources = _otel_resources()
    schema = "https://opentelemetry.io/schemas/1.30.0"
    path = directory / "traces.otlp.jsonl"
    _write_lines(path, [_compact(_otlp_request([r], schema)) for r in resources])
    return _otel_expected(path, resources)


def _ch_datetime64(t: datetime) -> str:
    """DateTime64(9) as ClickHouse prints it in JSON (server time zone UTC)."""
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond:06d}000"


def _ch_json(obj: dict) -> str:
    """JSONEachRow line: ClickHouse escapes '/' (output_format_json_escape_forward_slashes=1)."""
    return _compact(obj).replace("/", "\\/")


_CH_KIND = {0: "SPAN_KIND_UNSPECIFIED", 1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER", 3: "SPAN_KIND_CLIENT"}
_CH_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


def write_clickhouse_otel_traces(directory: Path) -> Expected:
    """``clickhouse-client --query "SELECT * FROM otel_traces FORMAT JSONEachRow"`` on the table of the
    Collector's ClickHouse exporter.

    Follows: open-telemetry/opentelemetry-collector-contrib
    exporter/clickhouseexporter/internal/sql_templates/traces_table.sql and traces_insert.sql
    (commit ff7a94656bd04ce95228ff4282554a233ed93434): columns Timestamp DateTime64(9) (the span's
    START), TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes Map(String,String), ScopeName, ScopeVersion, SpanAttributes Map(String,String),
    Duration UInt64 (ns), StatusCode, StatusMessage, Events Nested(Timestamp, Name, Attributes),
    Links Nested(TraceId, SpanId, TraceState, Attributes); exporter_traces.go (commit
    6cc07cc5360f6ecc8c0616064231b08d0be25a50) and internal/coreinternal/traceutil/traceutil.go:
    SpanKind via traceutil.SpanKindStr ("SPAN_KIND_CLIENT"), StatusCode via traceutil.StatusCodeStr
    ("STATUS_CODE_ERROR"), attribute values via AsString (ints as "1843", arrays as JSON text).
    ClickHouse JSON output: UInt64 quoted (output_format_json_quote_64bit_integers=1), Nested columns
    as separate ``Events.Timestamp`` ... arrays (flatten_nested=1), '/' escaped as '\\/'.
    """
    resources = _otel_resources()
    lines = []
    for r in resources:
        res_attrs = {k: _any_to_string(v) for k, v in r.attrs.items()}
        for scope, version, spans in r.scopes:
            for s in spans:
                lines.append(
                    _ch_json(
                        {
                            "Timestamp": _ch_datetime64(s.start),
                            "TraceId": s.trace_id,
                            "SpanId": s.span_id,
                            "ParentSpanId": s.parent_span_id,
                            "TraceState": "",
                            "SpanName": s.name,
                            "SpanKind": _CH_KIND[s.kind],
                            "ServiceName": res_attrs["service.name"],
                            "ResourceAttributes": res_attrs,
                            "ScopeName": scope,
                            "ScopeVersion": version,
                            "SpanAttributes": {k: _any_to_string(v) for k, v in s.attrs.items()},
                            "Duration": str(_ns(s.end) - _ns(s.start)),
                            "StatusCode": _CH_STATUS[s.status],
                            "StatusMessage": s.message,
                            "Events.Timestamp": [],
                            "Events.Name": [],
                            "Events.Attributes": [],
                            "Links.TraceId": [],
                            "Links.SpanId": [],
                            "Links.TraceState": [],
                            "Links.Attributes": [],
                        }
                    )
                )
    path = directory / "otel_traces.clickhouse.jsonl"
    _write_lines(path, lines)
    return _otel_expected(path, resources)


_PY_KIND = {1: "SpanKind.INTERNAL", 2: "SpanKind.SERVER", 3: "SpanKind.CLIENT"}
_PY_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _py_iso(t: datetime) -> str:
    """opentelemetry.sdk.util.ns_to_iso_str: '%Y-%m-%dT%H:%M:%S.%fZ' (microseconds, UTC)."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_python_console_exporter(directory: Path) -> Expected:
    """OpenTelemetry Python SDK ``ConsoleSpanExporter`` output (stdout captured to a file): each span
    is ``ReadableSpan.to_json()`` (json.dumps indent=4) followed by a newline, one object after
    another (not an array, not one per line).

    Follows: open-telemetry/opentelemetry-python opentelemetry-sdk/src/opentelemetry/sdk/trace/__init__.py
    ReadableSpan.to_json (keys name, context{trace_id "0x"+32 hex, span_id "0x"+16 hex, trace_state},
    kind str(SpanKind) e.g. "SpanKind.CLIENT", parent_id "0x..." or null, start_time/end_time from
    sdk/util ns_to_iso_str '%Y-%m-%dT%H:%M:%S.%fZ', status{status_code: StatusCode name "UNSET" /
    "OK" / "ERROR", description only when set}, attributes as a flat dict with dotted keys (tuples
    become lists), events, links, resource = Resource.to_json() {attributes, schema_url}).
    """
    resources = _otel_resources()
    chunks = []
    for r in resources:
        res = {"attributes": {k: _any_to_py(v) for k, v in r.attrs.items()}, "schema_url": ""}
        for _scope, _version, spans in r.scopes:
            for s in spans:
                status: dict[str, Any] = {"status_code": _PY_STATUS[s.status]}
                if s.message:
                    status["description"] = s.message
                obj = {
                    "name": s.name,
                    "context": {
                        "trace_id": "0x" + s.trace_id,
                        "span_id": "0x" + s.span_id,
                        "trace_state": "[]",
                    },
                    "kind": _PY_KIND[s.kind],
                    "parent_id": ("0x" + s.parent_span_id) if s.parent_span_id else None,
                    "start_time": _py_iso(s.start),
                    "end_time": _py_iso(s.end),
                    "status": status,
                    "attributes": {k: _any_to_py(v) for k, v in s.attrs.items()},
                    "events": [],
                    "links": [],
                    "resource": res,
                }
                chunks.append(json.dumps(obj, indent=4) + "\n")
    path = directory / "console_spans.json"
    path.write_text("".join(chunks), encoding="utf-8")
    return _otel_expected(path, resources)


def write_zipkin_v2(directory: Path) -> Expected:
    """Zipkin v2 JSON as the Collector's zipkin exporter POSTs it to /api/v2/spans: one JSON array
    of spans.

    Follows: open-telemetry/opentelemetry-collector-contrib
    pkg/translator/zipkin/zipkinv2/from_translator.go (commit 01e977cf303cc023c2290fddd32c138b525a4850):
    traceId/id hex, kind "CLIENT"/"SERVER" (INTERNAL: no kind, tag span.kind=internal), timestamp and
    duration in MICROseconds (zipkin-go model), localEndpoint.serviceName = service.name, every other
    resource attribute and every span attribute becomes a STRING tag (AsString), scope name as tag
    otel.library.name / otel.library.version; populateStatus: error span gets tag error="true",
    otel.status_code = ptrace.StatusCode.String() which is "Error"/"Ok" in pdata since v0.62
    (open-telemetry/opentelemetry-collector pdata/ptrace StatusCode.String; older collectors wrote
    "STATUS_CODE_ERROR"), otel.status_description = message; unset status writes no status tag.
    """
    resources = _otel_resources()
    out = []
    for r in resources:
        res = {k: _any_to_string(v) for k, v in r.attrs.items()}
        service = res.pop("service.name")
        for scope, version, spans in r.scopes:
            for s in spans:
                tags = dict(res)
                tags["otel.library.name"] = scope
                if version:
                    tags["otel.library.version"] = version
                tags.update({k: _any_to_string(v) for k, v in s.attrs.items()})
                if s.status == STATUS_ERROR:
                    tags["error"] = "true"
                    tags["otel.status_code"] = "Error"
                    if s.message:
                        tags["otel.status_description"] = s.message
                elif s.status == STATUS_OK:
                    tags["otel.status_code"] = "Ok"
                z: dict[str, Any] = {"traceId": s.trace_id, "id": s.span_id}
                if s.parent_span_id:
                    z["parentId"] = s.parent_span_id
                if s.kind == SPAN_KIND_CLIENT:
                    z["kind"] = "CLIENT"
                elif s.kind == SPAN_KIND_SERVER:
                    z["kind"] = "SERVER"
                else:
                    tags["span.kind"] = "internal"
                z["name"] = s.name
                z["timestamp"] = _ns(s.start) // 1000
                z["duration"] = (_ns(s.end) - _ns(s.start)) // 1000
                z["localEndpoint"] = {"serviceName": service}
                z["tags"] = tags
                out.append(z)
    path = directory / "zipkin_spans.json"
    path.write_text(_compact(out), encoding="utf-8")
    return _otel_expected(path, resources)


def write_flattened_spans(directory: Path) -> Expected:
    """A generic "flattened" span shape: JSON Lines, one span per line, attributes promoted to
    top-level keys that contain dots (``"gen_ai.usage.input_tokens": 1843``), plus start_time /
    end_time (RFC 3339, Z) and status_code ("UNSET"/"OK"/"ERROR"). Many log pipelines (Vector,
    Fluent Bit, Loki/Elastic exports of span logs) produce this shape; no single upstream owns it.
    Attribute names as in open-telemetry/semantic-conventions model/gen-ai/registry.yaml.
    """
    resources = _otel_resources()
    lines = []
    for r in resources:
        for _scope, _version, spans in r.scopes:
            for s in spans:
                row: dict[str, Any] = {
                    "trace_id": s.trace_id,
                    "span_id": s.span_id,
                    "name": s.name,
                    "service.name": r.attrs["service.name"]["stringValue"],
                    "start_time": s.start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "end_time": s.end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "status_code": _PY_STATUS[s.status],
                }
                row.update({k: _any_to_py(v) for k, v in s.attrs.items()})
                lines.append(_compact(row))
    path = directory / "spans.flat.jsonl"
    _write_lines(path, lines)
    return _otel_expected(path, resources)


# ---------------------------------------------------------------------------------------------
# vLLM's own tracing (--otlp-traces-endpoint): one "llm_request" SERVER span per finished request.


@dataclass
class _VllmReq:
    request_id: str
    model: str
    arrival: datetime
    queue: float
    ttft: float
    e2e: float
    prompt: int
    completion: int
    max_tokens: int
    temperature: float
    top_p: float


def _vllm_requests() -> list[_VllmReq]:
    return [
        _VllmReq(
            "chatcmpl-3b0f6ad1c2e84d9a8f7b6c5d4e3f2a1b",
            "meta-llama/Llama-3.1-8B-Instruct",
            _utc("2025-06-17T08:59:58.402117"),
            0.0031,
            0.0482,
            2.9114,
            1291,
            301,
            1024,
            0.7,
            0.95,
        ),
        _VllmReq(
            "chatcmpl-7c9e1f2a3b4d4c5e8f9a0b1c2d3e4f5a",
            "meta-llama/Llama-3.1-8B-Instruct",
            _utc("2025-06-17T09:00:01.117300"),
            0.0012,
            0.0213,
            0.6408,
            88,
            64,
            64,
            1.0,
            1.0,
        ),
        _VllmReq(
            "cmpl-5a4b3c2d1e0f4a9b8c7d6e5f4a3b2c1d",
            "meta-llama/Llama-3.1-8B-Instruct",
            _utc("2025-06-17T09:47:12.990041"),
            0.1875,
            0.3011,
            5.0127,
            6020,
            512,
            512,
            0.0,
            1.0,
        ),
        _VllmReq(
            "chatcmpl-c1d2e3f4a5b64c7d8e9f0a1b2c3d4e5f",
            "/models/Llama-3.1-70B-Instruct",
            _utc("2025-06-17T09:51:30.000501"),
            0.0402,
            0.2207,
            11.380,
            3840,
            733,
            2048,
            0.6,
            0.9,
        ),
    ]


def _vllm_attrs_v0(r: _VllmReq) -> dict[str, dict]:
    """vllm/engine/llm_engine.py LLMEngine.create_trace_span (V0 engine): attribute order and types."""
    return {
        "gen_ai.response.model": _s(r.model),
        "gen_ai.request.id": _s(r.request_id),
        "gen_ai.request.temperature": _d(r.temperature),
        "gen_ai.request.top_p": _d(r.top_p),
        "gen_ai.request.max_tokens": _i(r.max_tokens),
        "gen_ai.request.n": _i(1),
        "gen_ai.usage.num_sequences": _i(1),
        "gen_ai.usage.prompt_tokens": _i(r.prompt),
        "gen_ai.usage.completion_tokens": _i(r.completion),
        "gen_ai.latency.time_in_queue": _d(r.queue),
        "gen_ai.latency.time_to_first_token": _d(r.ttft),
        "gen_ai.latency.e2e": _d(r.e2e),
    }


def _vllm_attrs_v1(r: _VllmReq) -> dict[str, dict]:
    """vllm/v1/engine/output_processor.py OutputProcessor.do_tracing (V1 engine): NO model."""
    prefill = round(r.ttft - r.queue, 4)
    decode = round(r.e2e - r.ttft, 4)
    return {
        "gen_ai.latency.time_to_first_token": _d(r.ttft),
        "gen_ai.latency.e2e": _d(r.e2e),
        "gen_ai.latency.time_in_queue": _d(r.queue),
        "gen_ai.usage.prompt_tokens": _i(r.prompt),
        "gen_ai.usage.completion_tokens": _i(r.completion),
        "gen_ai.latency.time_in_model_prefill": _d(prefill),
        "gen_ai.latency.time_in_model_decode": _d(decode),
        "gen_ai.latency.time_in_model_inference": _d(round(prefill + decode, 4)),
        "gen_ai.request.id": _s(r.request_id),
        "gen_ai.response.finish_reason": _s('["stop"]'),
        "gen_ai.request.top_p": _d(r.top_p),
        "gen_ai.request.max_tokens": _i(r.max_tokens),
        "gen_ai.request.temperature": _d(r.temperature),
        "gen_ai.request.n": _i(1),
    }


def _vllm_spans(v1: bool) -> list[_Span]:
    spans = []
    for n, r in enumerate(_vllm_requests()):
        # start_time = arrival_time; the span is ended (default end time = now) right after the
        # request finished, a few ms after arrival + e2e.
        spans.append(
            _Span(
                "llm_request",
                SPAN_KIND_SERVER,
                r.arrival,
                round(r.e2e + 0.0007, 6),
                _vllm_attrs_v1(r) if v1 else _vllm_attrs_v0(r),
                seed=200 + n,
            )
        )
    return spans


_VLLM_RESOURCE = {
    "telemetry.sdk.language": _s("python"),
    "telemetry.sdk.name": _s("opentelemetry"),
    "telemetry.sdk.version": _s("1.26.0"),
    "service.name": _s("unknown_service"),
}


def _vllm_expected(path: Path, *, skipped: int = 0) -> Expected:
    reqs = _vllm_requests()
    return Expected(
        path=path,
        requests=len(reqs),
        input_tokens=sum(r.prompt for r in reqs),
        output_tokens=sum(r.completion for r in reqs),
        failed=0,
        cached=0,
        skipped=skipped,
        model_names={"llama-3.1-8b", "llama-3.1-70b"},
    )


def write_vllm_otlp(directory: Path) -> Expected:
    """vLLM request spans (V0 engine) exported by vLLM's OTLP exporter to a Collector and written by
    the Collector's file exporter (OTLP/JSON, one request per line), next to one unrelated HTTP
    span from the API gateway in the same file (skipped).

    Follows: vllm-project/vllm vllm/tracing.py (commit 03b8a674ec7e654ab285df6f013a53a24381f941:
    SpanAttributes names gen_ai.usage.prompt_tokens, gen_ai.usage.completion_tokens,
    gen_ai.response.model, gen_ai.request.id, gen_ai.latency.*; init_tracer uses a default
    TracerProvider(), so the resource is the SDK default: service.name "unknown_service" unless
    OTEL_SERVICE_NAME is set); vllm/engine/llm_engine.py create_trace_span: span "llm_request",
    kind SERVER, start_time = int(arrival_time * 1e9), ended when the request finished;
    gen_ai.response.model = model_config.model (the --model path or HF id, not
    --served-model-name); token counts ints, latencies float seconds, ids strings.
    """
    spans = _vllm_spans(v1=False)
    gateway = _Span(
        "GET /health",
        SPAN_KIND_SERVER,
        _utc("2025-06-17T09:00:00.000100"),
        0.0009,
        {"http.request.method": _s("GET"), "http.route": _s("/health"), "http.response.status_code": _i(200)},
        genai=False,
        seed=299,
    )
    resources = [
        _Resource(_VLLM_RESOURCE, [("vllm.llm_engine", "", spans)]),
        _Resource(
            {"service.name": _s("inference-gateway")},
            [("opentelemetry.instrumentation.aiohttp", "", [gateway])],
        ),
    ]
    path = directory / "vllm_traces.otlp.jsonl"
    schema = ""
    _write_lines(path, [_compact(_otlp_request([r], schema)) for r in resources])
    return _vllm_expected(path, skipped=1)


def write_vllm_otlp_v1(directory: Path) -> Expected:
    """vLLM V1-engine request spans as the Collector's file exporter writes them, one vLLM server
    per model, each started with OTEL_SERVICE_NAME set to the model it serves.

    Follows: vllm-project/vllm vllm/v1/engine/output_processor.py OutputProcessor.do_tracing (commit
    d07822605346f767b672503c9aae85aa23ef2d82): span "llm_request", kind SERVER, start_time =
    arrival_time (ns), ended immediately (end = time of tracing, i.e. finish); attributes
    gen_ai.latency.time_to_first_token, gen_ai.latency.e2e, gen_ai.latency.time_in_queue,
    gen_ai.usage.prompt_tokens, gen_ai.usage.completion_tokens, gen_ai.latency.time_in_model_prefill
    /_decode/_inference, gen_ai.request.id, gen_ai.response.finish_reason (json.dumps of a list, a
    STRING), optional gen_ai.request.top_p/max_tokens/temperature/n. There is NO
    gen_ai.response.model in V1 spans: the vllm preset then takes the model from the resource's
    service.name (the OpenTelemetry SDK reads OTEL_SERVICE_NAME into it).
    """
    by_model: dict[str, list[_Span]] = {}
    for r, span in zip(_vllm_requests(), _vllm_spans(v1=True), strict=True):
        by_model.setdefault(r.model, []).append(span)
    resources = [
        _Resource({**_VLLM_RESOURCE, "service.name": _s(model)}, [("vllm.llm_engine", "", spans)])
        for model, spans in by_model.items()
    ]
    path = directory / "vllm_v1_traces.otlp.jsonl"
    _write_lines(path, [_compact(_otlp_request(resources, ""))])
    return _vllm_expected(path)


def write_vllm_flattened(directory: Path) -> Expected:
    """vLLM V0 request spans in the flattened shape (one span per line, attributes as top-level
    dotted keys, start_time/end_time RFC 3339). Attribute names and types as in write_vllm_otlp
    (vllm-project/vllm vllm/tracing.py, vllm/engine/llm_engine.py create_trace_span)."""
    lines = []
    for s in _vllm_spans(v1=False):
        row: dict[str, Any] = {
            "name": s.name,
            "kind": "SERVER",
            "trace_id": s.trace_id,
            "span_id": s.span_id,
            "start_time": s.start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "end_time": s.end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "status_code": "UNSET",
        }
        row.update({k: _any_to_py(v) for k, v in s.attrs.items()})
        lines.append(_compact(row))
    path = directory / "vllm_spans.flat.jsonl"
    _write_lines(path, lines)
    return _vllm_expected(path)


# ---------------------------------------------------------------------------------------------
# LiteLLM proxy: LiteLLM_SpendLogs

# Column order of model LiteLLM_SpendLogs in BerriAI/litellm schema.prisma
# (commit 029f645f1c81cbd6c6c48fbc8490d91da937066f).
SPENDLOGS_COLUMNS_CURRENT = [
    "request_id",
    "call_type",
    "api_key",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "request_duration_ms",
    "completionStartTime",
    "model",
    "model_id",
    "model_group",
    "custom_llm_provider",
    "api_base",
    "user",
    "metadata",
    "cache_hit",
    "cache_key",
    "request_tags",
    "team_id",
    "organization_id",
    "end_user",
    "requester_ip_address",
    "messages",
    "response",
    "session_id",
    "status",
    "mcp_namespaced_tool_name",
    "agent_id",
    "proxy_server_request",
]

# BerriAI/litellm litellm/proxy/schema.prisma (commit 818e8f8e3196e1f282c0263b86de0e70313aa6e8,
# 2024): no request_duration_ms, custom_llm_provider, organization_id, messages, response,
# session_id, status, mcp_namespaced_tool_name, agent_id, proxy_server_request.
SPENDLOGS_COLUMNS_2024 = [
    "request_id",
    "call_type",
    "api_key",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "completionStartTime",
    "model",
    "model_id",
    "model_group",
    "api_base",
    "user",
    "metadata",
    "cache_hit",
    "cache_key",
    "request_tags",
    "team_id",
    "end_user",
    "requester_ip_address",
]

_JSON_COLUMNS = {"metadata", "request_tags", "messages", "response", "proxy_server_request"}
_TIME_COLUMNS = {"startTime", "endTime", "completionStartTime"}


@dataclass
class _Spend:
    request_id: str
    model: str
    model_group: str
    provider: str
    api_base: str
    start: datetime
    seconds: float
    prompt: int
    completion: int
    spend: float
    status: str = "success"
    cache_hit: bool = False


def _spend_rows(*, with_failures: bool) -> list[_Spend]:
    hv8 = "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct"
    hv70 = "hosted_vllm/meta-llama/Llama-3.1-70B-Instruct"
    fra1 = "http://vllm-fra-1.internal:8000/v1"
    fra2 = "http://vllm-fra-2.internal:8000/v1"
    azure = "https://acme-swedencentral.openai.azure.com/"
    oai = "https://api.openai.com/v1"
    rows = [
        _Spend(
            "chatcmpl-2f6c1d9e-0b7a-4c3e-9d8f-1a2b3c4d5e6f",
            hv8,
            "llama-3.1-8b-instruct",
            "hosted_vllm",
            fra1,
            _utc("2025-03-01T12:00:00.123"),
            1.842,
            1422,
            187,
            0.0,
        ),
        _Spend(
            "chatcmpl-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            hv8,
            "llama-3.1-8b-instruct",
            "hosted_vllm",
            fra1,
            _utc("2025-03-01T12:07:41.5"),
            0.911,
            310,
            92,
            0.0,
        ),
        _Spend(
            "chatcmpl-4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a",
            hv70,
            "llama-3.1-70b-instruct",
            "hosted_vllm",
            fra2,
            _utc("2025-03-01T12:31:09.007"),
            7.305,
            5210,
            640,
            0.0,
        ),
        _Spend(
            "chatcmpl-B6xQy1Zr3KcU9eTm0aWv2LpN5sDf",
            "azure/gpt-4o",
            "gpt-4o",
            "azure",
            azure,
            _utc("2025-03-01T13:02:17.880"),
            3.27,
            2048,
            377,
            0.008890,
        ),
        _Spend(
            "chatcmpl-B6xR0aTq8MhV2gNc5bYw7KpE1sJo",
            "gpt-4o-mini",
            "gpt-4o-mini",
            "openai",
            oai,
            _utc("2025-03-01T13:15:44.002"),
            1.118,
            780,
            211,
            0.0002436,
        ),
        # A cache hit: served from LiteLLM's cache, usage of the cached response, spend 0,
        # request_id gets the "_cache_hit<time>" suffix, no deployment was called (api_base "").
        _Spend(
            "chatcmpl-B6xR0aTq8MhV2gNc5bYw7KpE1sJo_cache_hit1740835200.123456",
            "gpt-4o-mini",
            "gpt-4o-mini",
            "openai",
            "",
            _utc("2025-03-01T14:00:00.061"),
            0.012,
            780,
            211,
            0.0,
            cache_hit=True,
        ),
        _Spend(
            "chatcmpl-6e5d4c3b-2a1f-4e0d-9c8b-7a6f5e4d3c2b_cache_hit1740839112.75",
            hv8,
            "llama-3.1-8b-instruct",
            "hosted_vllm",
            "",
            _utc("2025-03-01T14:25:12.750"),
            0.004,
            310,
            92,
            0.0,
            cache_hit=True,
        ),
    ]
    if with_failures:
        rows += [
            # Failures (status "failure"): litellm_call_id as request_id, no usage, spend 0.
            _Spend(
                "7b1e5c2a-93d4-4f61-a8e0-2c5d7f9b1e34",
                "azure/gpt-4o",
                "gpt-4o",
                "azure",
                azure,
                _utc("2025-03-01T13:40:02.315"),
                0.402,
                0,
                0,
                0.0,
                status="failure",
            ),
            _Spend(
                "c0a4f8e2-1d6b-4b39-9e57-3f2a8c1d6e90",
                hv70,
                "llama-3.1-70b-instruct",
                "hosted_vllm",
                fra2,
                _utc("2025-03-01T15:59:30.9"),
                600.001,
                0,
                0,
                0.0,
                status="failure",
            ),
        ]
    return rows


def _jsonb_text(obj: Any) -> str:
    """PostgreSQL jsonb output: keys sorted by length then bytes, ', ' and ': ' separators."""
    if isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
        return "{" + ", ".join(json.dumps(k) + ": " + _jsonb_text(v) for k, v in items) + "}"
    if isinstance(obj, list):
        return "[" + ", ".join(_jsonb_text(v) for v in obj) + "]"
    return json.dumps(obj)


def _pg_timestamp(t: datetime) -> str:
    """timestamp(3) without time zone as PostgreSQL prints it: trailing fractional zeros dropped."""
    s = t.strftime("%Y-%m-%d %H:%M:%S")
    ms = t.microsecond // 1000
    return s + (f".{ms:03d}".rstrip("0") if ms else "")


def _spend_values(r: _Spend) -> dict[str, Any]:
    """One row as Python values (None = NULL); JSON columns as Python objects."""
    end = r.start + timedelta(seconds=r.seconds)
    key_hash = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
    meta: dict[str, Any] = {
        "user_api_key": key_hash,
        "user_api_key_alias": "support-assistant-prod",
        "user_api_key_team_id": "team-support",
        "user_api_key_user_id": "svc-support",
        "user_api_key_team_alias": "support",
        "spend_logs_metadata": None,
        "requester_ip_address": "10.12.4.31",
        "status": r.status,
        "additional_usage_values": {},
    }
    if r.status == "failure":
        meta["error_information"] = {
            "error_code": "429" if r.provider == "azure" else "408",
            "error_class": "RateLimitError" if r.provider == "azure" else "Timeout",
            "llm_provider": r.provider,
        }
    model_id = "" if r.cache_hit else _hex(sum(map(ord, r.api_base)), 32)
    return {
        "request_id": r.request_id,
        "call_type": "acompletion",
        "api_key": key_hash,
        "spend": r.spend,
        "total_tokens": r.prompt + r.completion,
        "prompt_tokens": r.prompt,
        "completion_tokens": r.completion,
        "startTime": r.start,
        "endTime": end,
        "request_duration_ms": round(r.seconds * 1000),
        "completionStartTime": end
        if r.cache_hit or r.status == "failure"
        else r.start + timedelta(seconds=0.21),
        "model": r.model,
        "model_id": model_id,
        "model_group": r.model_group,
        "custom_llm_provider": r.provider,
        "api_base": r.api_base,
        "user": "svc-support",
        "metadata": meta,
        "cache_hit": str(r.cache_hit),
        "cache_key": "Cache OFF"
        if not r.cache_hit
        else "9f2b0c4e1d7a3b5c8e6f0a2d4c1b3e5f7a9c0d2e4f6a8b1c3d5e7f9a0b2c4d6e",
        "request_tags": ["support", "prod"],
        "team_id": "team-support",
        "organization_id": None,
        "end_user": "",
        "requester_ip_address": "10.12.4.31",
        "messages": {},
        "response": {},
        "session_id": "5d2c9e1a-7f3b-4a8d-b6e0-1c4f9a2d8e73",
        "status": r.status,
        "mcp_namespaced_tool_name": None,
        "agent_id": None,
        "proxy_server_request": {},
    }


def _spend_expected(path: Path, rows: list[_Spend], *, status_column: bool) -> Expected:
    return Expected(
        path=path,
        requests=len(rows),
        input_tokens=sum(r.prompt for r in rows),
        output_tokens=sum(r.completion for r in rows),
        failed=sum(1 for r in rows if r.status == "failure") if status_column else 0,
        cached=sum(1 for r in rows if r.cache_hit),
        skipped=0,
        model_names={"llama-3.1-8b", "llama-3.1-70b", "gpt-4o", "gpt-4o-mini"},
    )


def _psql_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """psql ``\\copy ... TO 'x.csv' CSV HEADER``: NULL = empty unquoted field, empty string = "",
    fields quoted only when they contain a comma, quote, CR or LF; jsonb as its text output."""

    def field(col: str, v: Any) -> str:
        if v is None:
            return ""
        if col in _JSON_COLUMNS:
            s = _jsonb_text(v)
        elif col in _TIME_COLUMNS:
            s = _pg_timestamp(v)
        elif isinstance(v, float):
            s = repr(v)
        else:
            s = str(v)
        if s == "" or any(c in s for c in ',"\r\n'):
            return '"' + s.replace('"', '""') + '"'
        return s

    out = io.StringIO()
    out.write(",".join(columns) + "\n")
    for row in rows:
        out.write(",".join(field(c, row[c]) for c in columns) + "\n")
    return out.getvalue()


def write_litellm_csv(directory: Path) -> Expected:
    """``psql -c "\\copy (SELECT * FROM \\"LiteLLM_SpendLogs\\") TO 'spendlogs.csv' CSV HEADER"`` on the
    CURRENT schema.

    Follows: BerriAI/litellm schema.prisma model LiteLLM_SpendLogs (commit
    029f645f1c81cbd6c6c48fbc8490d91da937066f) for columns and types (DateTime -> timestamp(3)
    without time zone, Json -> jsonb, cache_hit String?, status String?);
    litellm/proxy/spend_tracking/spend_tracking_utils.py get_logging_payload (commit
    00907c60692d7d14dc7ea814e645165d3b4d5fe9): cache_hit=str(cache_hit) ("True"/"False"), cache hits
    get request_id + "_cache_hit<time.time()>", cache_key "Cache OFF" without a cache,
    startTime/endTime converted to UTC, status from _get_status_for_spend_log ("success" unless
    metadata status is "failure"). PostgreSQL CSV rules: NULL empty, '' as "", jsonb text with
    ', '/': ' and length-sorted keys, timestamps '2025-03-01 12:00:00.123' (trailing zeros dropped).
    Column order: the schema's; a table upgraded by migrations has added columns at the end, so
    readers must go by header name.
    """
    rows = _spend_rows(with_failures=True)
    path = directory / "spendlogs.csv"
    path.write_text(_psql_csv(SPENDLOGS_COLUMNS_CURRENT, [_spend_values(r) for r in rows]), encoding="utf-8")
    return _spend_expected(path, rows, status_column=True)


def write_litellm_csv_2024(directory: Path) -> Expected:
    """psql CSV export of LiteLLM_SpendLogs with the 2024 schema: BerriAI/litellm
    litellm/proxy/schema.prisma (commit 818e8f8e3196e1f282c0263b86de0e70313aa6e8): no ``status``
    column (failures went to LiteLLM_ErrorLogs, not to SpendLogs), no custom_llm_provider, no
    request_duration_ms. Same CSV rules as write_litellm_csv."""
    rows = _spend_rows(with_failures=False)
    path = directory / "spendlogs_2024.csv"
    path.write_text(_psql_csv(SPENDLOGS_COLUMNS_2024, [_spend_values(r) for r in rows]), encoding="utf-8")
    return _spend_expected(path, rows, status_column=False)


def write_litellm_jsonl(directory: Path) -> Expected:
    """JSON Lines of LiteLLM_SpendLogs rows as ``psql -At -c "SELECT row_to_json(s) FROM
    \\"LiteLLM_SpendLogs\\" s"`` prints them: compact keys, timestamps without time zone as
    '2025-03-01T12:00:00.123', jsonb columns embedded verbatim in jsonb text form. Columns of
    BerriAI/litellm schema.prisma (commit 029f645f1c81cbd6c6c48fbc8490d91da937066f)."""
    rows = _spend_rows(with_failures=True)
    lines = []
    for r in rows:
        v = _spend_values(r)
        parts = []
        for c in SPENDLOGS_COLUMNS_CURRENT:
            x = v[c]
            if x is None:
                s = "null"
            elif c in _JSON_COLUMNS:
                s = _jsonb_text(x)
            elif c in _TIME_COLUMNS:
                s = json.dumps(_pg_timestamp(x).replace(" ", "T"))
            else:
                s = json.dumps(x)
            parts.append(json.dumps(c) + ":" + s)
        lines.append("{" + ",".join(parts) + "}")
    path = directory / "spendlogs.jsonl"
    _write_lines(path, lines)
    return _spend_expected(path, rows, status_column=True)


def _api_row(v: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for c in SPENDLOGS_COLUMNS_CURRENT:
        x = v[c]
        if c in _TIME_COLUMNS and x is not None:
            # Prisma returns aware UTC datetimes; FastAPI's jsonable_encoder uses isoformat().
            x = x.replace(microsecond=x.microsecond // 1000 * 1000).isoformat()
        out[c] = x
    return out


def write_litellm_api(directory: Path) -> Expected:
    """Response body of ``GET /spend/logs`` (no date filter) saved to a file: a JSON ARRAY of row
    objects (prisma find_many), timestamps as ISO 8601 with '+00:00', Json columns as objects.

    Follows: BerriAI/litellm litellm/proxy/spend_tracking/spend_management_endpoints.py view_spend_logs
    (responses 200: List[LiteLLM_SpendLogs]; with start_date/end_date it returns per-day AGGREGATES
    instead, which are not ingestible). The paginated ``/spend/logs/ui`` (and /spend/logs/v2) shape
    is write_litellm_api_paginated.
    """
    rows = _spend_rows(with_failures=True)
    path = directory / "spend_logs_api.json"
    path.write_text(json.dumps([_api_row(_spend_values(r)) for r in rows], indent=2), encoding="utf-8")
    return _spend_expected(path, rows, status_column=True)


def write_litellm_api_paginated(directory: Path) -> Expected:
    """One page of ``GET /spend/logs/ui`` (same shape as /spend/logs/v2): an object
    ``{"data": [rows...], "total", "page", "page_size", "total_pages"}``, rows ordered by startTime
    desc. Follows BerriAI/litellm litellm/proxy/spend_tracking/spend_management_endpoints.py
    ui_view_spend_logs (docstring and return statement)."""
    rows = _spend_rows(with_failures=True)
    data = [_api_row(_spend_values(r)) for r in sorted(rows, key=lambda r: r.start, reverse=True)]
    body = {"data": data, "total": len(data), "page": 1, "page_size": 50, "total_pages": 1}
    path = directory / "spend_logs_page.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return _spend_expected(path, rows, status_column=True)


# ---------------------------------------------------------------------------------------------
# OpenAI


@dataclass
class _Completion:
    id: str
    model: str
    created: datetime
    prompt: int
    completion: int
    cached: int = 0
    reasoning: int = 0
    fingerprint: str | None = "fp_b705f0c291"
    text: str = "Thanks for reaching out. Your replacement order has shipped."


def _completions() -> list[_Completion]:
    return [
        _Completion(
            "chatcmpl-BGa1kR4pXqZ0TnY2cW8eVu6sLmO3",
            "gpt-4o-2024-08-06",
            _utc("2025-04-02T07:30:11"),
            1570,
            244,
            1024,
        ),
        _Completion(
            "chatcmpl-BGa1nE7qJ3sK9fH1dG5aZx2cVb4N",
            "gpt-4o-mini-2024-07-18",
            _utc("2025-04-02T07:30:14"),
            212,
            35,
        ),
        _Completion(
            "chatcmpl-BGa2QwE1rT5yU8iO0pA3sD6fG9hJ",
            "gpt-4o-mini-2024-07-18",
            _utc("2025-04-02T08:02:40"),
            4021,
            512,
            3840,
        ),
        _Completion(
            "chatcmpl-BGa3ZxC4vB7nM0qW2eR5tY8uI1oP", "gpt-4o-2024-08-06", _utc("2025-04-02T09:15:59"), 88, 19
        ),
        # An OpenAI-compatible response from vLLM's server (no system_fingerprint, model = served name).
        _Completion(
            "chatcmpl-0f1e2d3c4b5a49688776655443322110",
            "meta-llama/Llama-3.1-8B-Instruct",
            _utc("2025-04-02T09:16:03"),
            733,
            120,
            fingerprint=None,
        ),
    ]


def _usage(c: _Completion) -> dict:
    return {
        "prompt_tokens": c.prompt,
        "completion_tokens": c.completion,
        "total_tokens": c.prompt + c.completion,
        "prompt_tokens_details": {"cached_tokens": c.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": c.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_completion(c: _Completion) -> dict:
    return {
        "id": c.id,
        "object": "chat.completion",
        "created": int(c.created.timestamp()),
        "model": c.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": c.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(c),
        "service_tier": "default",
        "system_fingerprint": c.fingerprint,
    }


def _openai_expected(path: Path, cs: list[_Completion], *, skipped: int = 0, rejected: int = 0) -> Expected:
    return Expected(
        path=path,
        requests=len(cs),
        input_tokens=sum(c.prompt for c in cs),
        output_tokens=sum(c.completion for c in cs),
        failed=0,
        cached=0,
        skipped=skipped,
        records_rejected=rejected,
        model_names={_OPENAI_PACK_NAME[c.model] for c in cs},
    )


# The pack names [aliases.models] in PACK_TOML gives the raw names of _completions().
_OPENAI_PACK_NAME = {
    "gpt-4o-2024-08-06": "gpt-4o",
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
}


def write_openai_completions(directory: Path) -> Expected:
    """Chat completion response objects (``object: "chat.completion"``), one per line, as an
    application logs ``response.model_dump_json()``.

    Follows: openai/openai-openapi CreateChatCompletionResponse (id, object, created = Unix
    SECONDS when the completion was created, model = the resolved snapshot e.g.
    "gpt-4o-2024-08-06", choices, usage{prompt_tokens, completion_tokens, total_tokens,
    prompt_tokens_details{cached_tokens, audio_tokens}, completion_tokens_details{reasoning_tokens,
    audio_tokens, accepted_prediction_tokens, rejected_prediction_tokens}}, service_tier,
    system_fingerprint). cached_tokens are prompt tokens read from the prompt cache: the request
    is NOT a cache hit (it is computed) and prompt_tokens already includes them.
    """
    cs = _completions()
    path = directory / "chat_completions.jsonl"
    _write_lines(path, [_compact(_chat_completion(c)) for c in cs])
    return _openai_expected(path, cs)


def write_openai_stream_chunks(directory: Path) -> Expected:
    """Streaming logs with ``stream_options: {"include_usage": true}``: one line per
    ``chat.completion.chunk`` (the SSE ``data:`` payloads), several completions interleaved.

    Follows: openai/openai-openapi ChatCompletionStreamOptions.include_usage: "an additional chunk
    will be streamed before the data: [DONE] message. The usage field on this chunk shows the token
    usage statistics for the entire request, and the choices field will always be an empty array.
    All other chunks will also include a usage field, but with a null value." Only the usage chunks
    are records (one per completion id); content chunks are skipped.
    """
    cs = _completions()[:3]
    per: list[list[dict]] = []
    for c in cs:
        base = {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": int(c.created.timestamp()),
            "model": c.model,
            "service_tier": "default",
            "system_fingerprint": c.fingerprint,
        }
        words = c.text.split(" ")
        chunks = [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "", "refusal": None},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                "usage": None,
            }
        ]
        for n, w in enumerate(words):
            chunks.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": (" " if n else "") + w},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                    "usage": None,
                }
            )
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
                "usage": None,
            }
        )
        chunks.append({**base, "choices": [], "usage": _usage(c)})
        per.append(chunks)
    # Interleave the three streams round-robin, as a proxy logging concurrent streams does.
    lines = []
    for k in range(max(len(p) for p in per)):
        for p in per:
            if k < len(p):
                lines.append(_compact(p[k]))
    path = directory / "chat_chunks.jsonl"
    _write_lines(path, lines)
    return _openai_expected(path, cs, skipped=len(lines) - len(cs))


def write_openai_batch_output(directory: Path) -> Expected:
    """Batch API output file (``GET /v1/files/{output_file_id}/content``) concatenated with the
    batch's error file: one ``BatchRequestOutput`` per line.

    Follows: openai/openai-openapi BatchRequestOutput ("The per-line object of the batch output and
    error files"): id "batch_req_...", custom_id, response{status_code, request_id, body} or null,
    error{code, message} or null. Successful lines carry a full chat.completion in response.body.
    The error-file line below (HTTP 400 with an error body) carries no model, no timestamp and no
    usage: it cannot be attributed and is rejected (missing ts/model), not counted as failed.
    """
    cs = _completions()[:4]
    lines = []
    for n, c in enumerate(cs):
        lines.append(
            _compact(
                {
                    "id": f"batch_req_67f0c1{n:02d}a8b4819089e5d3c2b1a0f9e8",
                    "custom_id": f"ticket-{48213 + n}",
                    "response": {
                        "status_code": 200,
                        "request_id": f"{_hex(700 + n, 16)}",
                        "body": _chat_completion(c),
                    },
                    "error": None,
                }
            )
        )
    lines.append(
        _compact(
            {
                "id": "batch_req_67f0c1ffa8b4819089e5d3c2b1a0f9e8",
                "custom_id": "ticket-48299",
                "response": {
                    "status_code": 400,
                    "request_id": _hex(799, 16),
                    "body": {
                        "error": {
                            "message": "This model's maximum context length is 128000 tokens. However, your "
                            "messages resulted in 131072 tokens. Please reduce the length of the messages.",
                            "type": "invalid_request_error",
                            "param": "messages",
                            "code": "context_length_exceeded",
                        }
                    },
                },
                "error": None,
            }
        )
    )
    path = directory / "batch_output.jsonl"
    _write_lines(path, lines)
    return _openai_expected(path, cs, rejected=1)


# ---------------------------------------------------------------------------------------------
# Registry used by the tests: (writer, preset)

WRITERS: list[tuple[Any, str]] = [
    (write_otlp_file_exporter, "otel"),
    (write_clickhouse_otel_traces, "otel"),
    (write_python_console_exporter, "otel"),
    (write_zipkin_v2, "otel"),
    (write_flattened_spans, "otel"),
    (write_vllm_otlp, "vllm"),
    (write_vllm_otlp_v1, "vllm"),
    (write_vllm_flattened, "vllm"),
    (write_litellm_csv, "litellm"),
    (write_litellm_csv_2024, "litellm"),
    (write_litellm_jsonl, "litellm"),
    (write_litellm_api, "litellm"),
    (write_litellm_api_paginated, "litellm"),
    (write_openai_completions, "openai"),
    (write_openai_stream_chunks, "openai"),
    (write_openai_batch_output, "openai"),
]


def read_back(path: Path) -> list[Any]:
    """Parse a written fixture with the standard library (a self-check of the writers)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    if path.name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    dec = json.JSONDecoder()
    out, pos = [], 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = dec.raw_decode(text, pos)
        out.append(obj)
    return out
