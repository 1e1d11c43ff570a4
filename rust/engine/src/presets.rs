//! Named column mappings for log shapes seen in the wild (`--preset NAME`).
//!
//! Each preset is a list of `canonical = source` rules in the mapping syntax of
//! [`crate::columns::ColumnMap::set`] (alternatives with `|`, the first one a record has wins)
//! plus, for logs that hold objects which are not requests, the rules that pass them over.
//! The field names follow the upstream sources named in `docs/presets.md`; a preset covers
//! every shape its tool is exported in, so one preset reads them all without configuration.

use crate::columns::{parse_path, split_top, Col, ColumnMap, KeepRule};
use crate::error::{Error, Result};

/// A preset's rule to pass over objects that are not records (see `columns::KeepRule`).
pub struct KeepDef {
    pub when: Option<(&'static str, &'static str)>,
    pub any_of: &'static [&'static str],
    pub reason: &'static str,
}

pub struct Preset {
    pub name: &'static str,
    /// One line for `--help` and error messages.
    pub about: &'static str,
    pub rules: &'static [&'static str],
    pub keep: &'static [KeepDef],
}

/// An OTel attribute `k` in each container spans are exported with: OTLP JSON and the Python
/// console exporter (`attributes`), the ClickHouse exporter (`SpanAttributes`), Zipkin v2
/// (`tags`), and attributes promoted to top-level keys (`k` as a flat key).
macro_rules! span_attr {
    ($k:literal) => {
        concat!(
            "attributes[\"",
            $k,
            "\"] | SpanAttributes[\"",
            $k,
            "\"] | tags[\"",
            $k,
            "\"] | span_attributes[\"",
            $k,
            "\"] | ",
            $k
        )
    };
}

/// Span timing in every shape: OTLP JSON (`*UnixNano`, decimal strings), the Python console
/// exporter and flattened spans (`start_time`/`end_time`), ClickHouse (`Timestamp` = start,
/// `Duration` in ns), Zipkin v2 (`timestamp` = start and `duration`, both in microseconds).
/// A record's time is the span's end.
const SPAN_TS: &str = "ts = endTimeUnixNano | end_time | endTime | Timestamp + Duration/1000000000 \
                       | timestamp + duration/1000000 | Timestamp | ts | timestamp";
const SPAN_DURATION: &str = "duration_s = endTimeUnixNano - startTimeUnixNano | end_time - start_time \
                             | endTime - startTime | Duration/1000000000 | duration/1000000";
/// OTLP `status.code` (2 = ERROR), ClickHouse `StatusCode` ("Error"), the console exporter's
/// `status.status_code` ("ERROR"), Zipkin's `otel.status_code` tag, flattened `status_code`.
const SPAN_STATUS: &str =
    concat!("status = status.code | StatusCode | status.status_code | status_code | ", span_attr!("otel.status_code"));

/// GenAI attributes that mark a span as a GenAI operation (OTel semantic conventions, current
/// and older names; vLLM's own).
/// The serving host (semantic conventions' resource attribute `host.name`: OTLP JSON's
/// resource, ClickHouse's `ResourceAttributes`, flattened), for attributed node energy.
const SPAN_NODE: &str = concat!(
    "node = resource.attributes[\"host.name\"] | ResourceAttributes[\"host.name\"] | ",
    span_attr!("host.name")
);

const GENAI_MARKERS: &[&str] = &[
    span_attr!("gen_ai.operation.name"),
    span_attr!("gen_ai.provider.name"),
    span_attr!("gen_ai.system"),
    span_attr!("gen_ai.request.model"),
    span_attr!("gen_ai.response.model"),
    span_attr!("gen_ai.usage.input_tokens"),
    span_attr!("gen_ai.usage.output_tokens"),
    span_attr!("gen_ai.usage.prompt_tokens"),
    span_attr!("gen_ai.usage.completion_tokens"),
];

const NOT_GENAI: KeepDef = KeepDef { when: None, any_of: GENAI_MARKERS, reason: "not a GenAI span" };

/// vLLM's `llm_request` spans (V1 spans carry no model, but their usage and latency), and
/// flattened request stats.
const VLLM_MARKERS: &[&str] = &[
    span_attr!("gen_ai.request.id"),
    span_attr!("gen_ai.response.model"),
    span_attr!("gen_ai.usage.prompt_tokens"),
    span_attr!("gen_ai.usage.completion_tokens"),
    span_attr!("gen_ai.latency.e2e"),
    "num_prompt_tokens | num_generation_tokens | e2e_latency",
];

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "otel",
        about: "OpenTelemetry GenAI spans: OTLP JSON, ClickHouse, console exporter, Zipkin v2, flattened",
        rules: &[
            concat!("model = ", span_attr!("gen_ai.response.model"), " | ", span_attr!("gen_ai.request.model")),
            concat!(
                "input_tokens = ",
                span_attr!("gen_ai.usage.input_tokens"),
                " | ",
                span_attr!("gen_ai.usage.prompt_tokens")
            ),
            concat!(
                "output_tokens = ",
                span_attr!("gen_ai.usage.output_tokens"),
                " | ",
                span_attr!("gen_ai.usage.completion_tokens")
            ),
            concat!("site = ", span_attr!("server.address")),
            SPAN_NODE,
            concat!("request_id = ", span_attr!("gen_ai.response.id"), " | spanId | SpanId | id | context.span_id"),
            SPAN_TS,
            SPAN_DURATION,
            SPAN_STATUS,
        ],
        keep: &[NOT_GENAI],
    },
    Preset {
        name: "vllm",
        about: "vLLM's OTel llm_request spans (any span shape), and flattened request stats",
        rules: &[
            concat!(
                "model = ",
                span_attr!("gen_ai.response.model"),
                " | ",
                span_attr!("gen_ai.request.model"),
                // V1-engine spans carry no model: then the service's name (OTEL_SERVICE_NAME,
                // set to the served model) stands for it, in each shape's spelling.
                " | model | resource.attributes[\"service.name\"] | ServiceName | localEndpoint.serviceName \
                 | service.name"
            ),
            concat!(
                "input_tokens = ",
                span_attr!("gen_ai.usage.prompt_tokens"),
                " | ",
                span_attr!("gen_ai.usage.input_tokens"),
                " | num_prompt_tokens"
            ),
            concat!(
                "output_tokens = ",
                span_attr!("gen_ai.usage.completion_tokens"),
                " | ",
                span_attr!("gen_ai.usage.output_tokens"),
                " | num_generation_tokens"
            ),
            concat!("request_id = ", span_attr!("gen_ai.request.id"), " | request_id | spanId | SpanId"),
            // vLLM's own server-side end-to-end latency first: it is what the engine measured.
            concat!(
                "duration_s = ",
                span_attr!("gen_ai.latency.e2e"),
                " | e2e_latency | endTimeUnixNano - startTimeUnixNano | end_time - start_time \
                 | Duration/1000000000 | duration/1000000"
            ),
            SPAN_TS,
            SPAN_STATUS,
            SPAN_NODE,
        ],
        keep: &[KeepDef { when: None, any_of: VLLM_MARKERS, reason: "not a vLLM request span" }],
    },
    Preset {
        name: "litellm",
        about: "LiteLLM_SpendLogs rows: psql CSV, JSON Lines, the /spend/logs JSON array",
        rules: &[
            "ts = endTime | end_time",
            "model = model | model_group",
            "input_tokens = prompt_tokens",
            "output_tokens = completion_tokens",
            "duration_s = request_duration_ms/1000 | endTime - startTime",
            "site = api_base",
            "request_id = request_id",
            "status = status",
            "cache_hit = cache_hit",
        ],
        keep: &[],
    },
    Preset {
        name: "openai",
        about: "OpenAI chat completions, streaming chunk logs (usage chunk), Batch API output lines",
        rules: &[
            "ts = created | response.body.created | created_at | response.body.created_at",
            "model = model | response.body.model",
            "input_tokens = usage.prompt_tokens | response.body.usage.prompt_tokens | usage.input_tokens \
             | response.body.usage.input_tokens",
            "output_tokens = usage.completion_tokens | response.body.usage.completion_tokens \
             | usage.output_tokens | response.body.usage.output_tokens",
            "request_id = response.request_id | id | response.body.id",
            "status = response.status_code | status",
        ],
        // A streaming log has one line per chunk; only the last chunk of a completion carries
        // `usage` (with `stream_options.include_usage`), so it alone stands for the request.
        keep: &[KeepDef {
            when: Some(("object", "chat.completion.chunk")),
            any_of: &["usage"],
            reason: "streaming chunk without usage",
        }],
    },
];

/// Columns without which no record can be read (methodology section 1).
pub const REQUIRED: [Col; 2] = [Col::Ts, Col::Model];

/// Names logs commonly give a required column, most telling first; matched ignoring case.
const SYNONYMS: &[(Col, &[&str])] = &[
    (
        Col::Ts,
        &[
            "ts",
            "timestamp",
            "time",
            "datetime",
            "date_time",
            "@timestamp",
            "event_time",
            "request_time",
            "created",
            "created_at",
            "end_time",
            "endtime",
            "finished_at",
            "completed_at",
            "start_time",
            "starttime",
            "logged_at",
            "date",
        ],
    ),
    (
        Col::Model,
        &[
            "model",
            "model_name",
            "modelname",
            "model_id",
            "modelid",
            "llm_model",
            "model_version",
            "engine",
            "deployment",
            "deployment_name",
            "model_group",
        ],
    ),
];

/// A mapping to try when a log's records lack a required column: `--column` rules from the
/// names seen (`timestamp` for ts, `model_name` for model ...) and the presets whose fields the
/// log has. `seen` are the log's own top-level names (a CSV header, JSON keys, Parquet
/// columns), `found` the canonical columns the mapping in use found. None when nothing fits.
pub fn suggest_mapping(seen: &[String], found: &[Col]) -> Option<String> {
    let missing: Vec<Col> = REQUIRED.iter().copied().filter(|c| !found.contains(c)).collect();
    if missing.is_empty() {
        return None;
    }
    let mut rules = Vec::new();
    for &col in &missing {
        let names = SYNONYMS.iter().find(|(c, _)| *c == col).map_or(&[][..], |(_, n)| *n);
        // The first synonym (in the list's order) that the log has, ignoring case.
        let hit = names.iter().find_map(|n| seen.iter().find(|s| s.eq_ignore_ascii_case(n)));
        if let Some(src) = hit {
            rules.push(shell_word(&format!("{}={src}", col.name())));
        }
    }
    let presets = fitting_presets(seen);
    let mut parts = Vec::new();
    if rules.len() == missing.len() {
        parts.push(rules.iter().map(|r| format!("--column {r}")).collect::<Vec<_>>().join(" "));
    }
    parts.extend(presets.iter().map(|p| format!("--preset {p}")));
    if parts.is_empty() {
        return None;
    }
    Some(format!("try {}", parts.join(" or ")))
}

/// Presets that read every required column from the names seen and, of those, read the most
/// columns (several only on a tie, in the order listed).
fn fitting_presets(seen: &[String]) -> Vec<&'static str> {
    let has = |p: &crate::columns::FieldPath| {
        p.flat().is_some_and(|f| seen.contains(&f)) || p.segs.first().is_some_and(|s| seen.contains(s))
    };
    let mut fits: Vec<(usize, usize, &'static str)> = Vec::new();
    for (i, preset) in PRESETS.iter().enumerate() {
        let mut map = ColumnMap::default();
        if map.apply_preset(preset.name).is_err() {
            continue;
        }
        let readable = |c: Col| map.source(c).alts.iter().any(|a| a.terms().all(|t| has(&t.path)));
        if REQUIRED.iter().all(|&c| readable(c)) {
            let score = Col::ALL.iter().filter(|&&c| readable(c)).count();
            fits.push((score, i, preset.name));
        }
    }
    // Only the best fits: a preset that merely shares a timestamp and a model field with the
    // log (vllm's span fields on a LiteLLM export) would be noise.
    let best = fits.iter().map(|f| f.0).max().unwrap_or(0);
    fits.retain(|f| f.0 == best);
    fits.sort_by_key(|f| f.1);
    fits.into_iter().map(|f| f.2).collect()
}

/// `s` as one shell word: quoted when it holds anything but plain name characters.
fn shell_word(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "=._-@/:".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// Here rather than in `columns`, so that `columns` does not import the presets that are
// written in its syntax (no import cycle).
impl ColumnMap {
    pub fn apply_preset(&mut self, preset: &str) -> Result<()> {
        let p = PRESETS.iter().find(|p| p.name == preset).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            Error::Usage(format!("unknown column preset '{preset}' (known: {})", names.join(", ")))
        })?;
        for r in p.rules {
            self.set_rule(r).map_err(|e| Error::Usage(format!("preset {preset}: {e}")))?;
        }
        for k in p.keep {
            let path = |s: &str| parse_path(s).map_err(|e| Error::Usage(format!("preset {preset}: {s}: {e}")));
            let when = match k.when {
                Some((p, v)) => Some((path(p)?, v.to_string())),
                None => None,
            };
            let any_of = k.any_of.iter().flat_map(|s| split_top(s, "|")).map(path).collect::<Result<Vec<_>>>()?;
            self.keep.push(KeepRule { when, any_of, reason: k.reason.to_string() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn misnamed_columns_get_column_rules() {
        let s = seen(&["timestamp", "model_name", "input_tokens"]);
        assert_eq!(
            suggest_mapping(&s, &[Col::InputTokens]).as_deref(),
            Some("try --column ts=timestamp --column model=model_name")
        );
        // Only the column that is missing; case ignored, the log's spelling kept.
        let s = seen(&["Time", "model"]);
        assert_eq!(suggest_mapping(&s, &[Col::Model]).as_deref(), Some("try --column ts=Time"));
        assert_eq!(suggest_mapping(&s, &[Col::Ts, Col::Model]), None);
        let s = seen(&["start time", "engine"]);
        assert_eq!(suggest_mapping(&s, &[]), None, "'start time' is not a synonym");
        let s = seen(&["event_time", "engine"]);
        assert_eq!(suggest_mapping(&s, &[]).as_deref(), Some("try --column ts=event_time --column model=engine"));
    }

    #[test]
    fn presets_whose_fields_are_present() {
        // An OpenAI Batch output line: the fields live under response.body.
        let s = seen(&["id", "custom_id", "response", "error"]);
        assert_eq!(suggest_mapping(&s, &[]).as_deref(), Some("try --preset openai"));
        // A chat completion: created + model; `created` is also a ts synonym.
        let s = seen(&["id", "object", "created", "model", "usage"]);
        assert_eq!(suggest_mapping(&s, &[Col::Model]).as_deref(), Some("try --column ts=created or --preset openai"));
        // LiteLLM spend logs.
        let s = seen(&["request_id", "startTime", "endTime", "model", "prompt_tokens", "completion_tokens"]);
        assert_eq!(suggest_mapping(&s, &[Col::Model]).as_deref(), Some("try --column ts=endTime or --preset litellm"));
        // Nothing recognisable.
        assert_eq!(suggest_mapping(&seen(&["a", "b"]), &[]), None);
    }
}
