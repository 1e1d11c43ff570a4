//! The canonical columns of an inference record (methodology section 1) and the mapping from
//! a log's own column names to them (`[columns]` in the config, `--column canonical=source`,
//! and named presets for log shapes seen in the wild).

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Col {
    Ts = 0,
    Model,
    Site,
    Zone,
    Hardware,
    Gpus,
    InputTokens,
    OutputTokens,
    DurationS,
    EnergyJ,
    Weight,
    RequestId,
    Status,
    /// A cache flag (LiteLLM's `cache_hit`): true means the response came from a cache
    /// (methodology section 10).
    CacheHit,
    /// The node (host) that served the request: matched against metered node energy
    /// (`--node-energy`, methodology section 10, attributed energy).
    Node,
}

impl Col {
    pub const ALL: [Col; 15] = [
        Col::Ts,
        Col::Model,
        Col::Site,
        Col::Zone,
        Col::Hardware,
        Col::Gpus,
        Col::InputTokens,
        Col::OutputTokens,
        Col::DurationS,
        Col::EnergyJ,
        Col::Weight,
        Col::RequestId,
        Col::Status,
        Col::CacheHit,
        Col::Node,
    ];
    pub const COUNT: usize = 15;

    pub fn name(self) -> &'static str {
        match self {
            Col::Ts => "ts",
            Col::Model => "model",
            Col::Site => "site",
            Col::Zone => "zone",
            Col::Hardware => "hardware",
            Col::Gpus => "gpus",
            Col::InputTokens => "input_tokens",
            Col::OutputTokens => "output_tokens",
            Col::DurationS => "duration_s",
            Col::EnergyJ => "energy_j",
            Col::Weight => "weight",
            Col::RequestId => "request_id",
            Col::Status => "status",
            Col::CacheHit => "cache_hit",
            Col::Node => "node",
        }
    }

    pub fn from_name(name: &str) -> Option<Col> {
        Col::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Numeric columns may carry a unit scale in a mapping (`duration_s=latency_ms/1000`).
    pub fn is_numeric(self) -> bool {
        matches!(self, Col::Gpus | Col::InputTokens | Col::OutputTokens | Col::DurationS | Col::EnergyJ | Col::Weight)
    }
}

/// A path to a value in a log record.
///
/// Written as dotted keys (`usage.prompt_tokens`) and/or quoted keys in brackets
/// (`attributes["gen_ai.usage.input_tokens"]`), so a key that itself contains dots can be
/// addressed. A path written without brackets (`plain`) matches a flat key of that whole name
/// first (a CSV header, a Parquet column, a JSON key with dots), then the nested keys.
/// Through JSON a key step also selects an element of an OTLP key/value list
/// (`[{"key": ..., "value": {"intValue": ...}}]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    pub segs: Vec<String>,
    pub plain: bool,
}

impl FieldPath {
    /// The whole name as one flat key (header, column or JSON key), for a plain path.
    pub fn flat(&self) -> Option<String> {
        self.plain.then(|| self.segs.join("."))
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.plain {
            return f.write_str(&self.segs.join("."));
        }
        for (i, s) in self.segs.iter().enumerate() {
            if i == 0 && !s.contains(['.', '[', ']', '"']) {
                f.write_str(s)?;
            } else {
                write!(f, "[\"{s}\"]")?;
            }
        }
        Ok(())
    }
}

/// A path and the unit scale applied to its value (`latency_ms/1000`: 0.001).
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub path: FieldPath,
    pub scale: f64,
}

/// One way of getting a column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Alt {
    /// The value at a path, scaled.
    Value(Term),
    /// `end - start`: the difference of two timestamps, in seconds, scaled (a span's duration).
    Diff(Term, Term),
    /// `start + duration`: a timestamp plus a duration given in seconds after its scale (a
    /// span's end from its start and length, e.g. `timestamp + duration/1000000`).
    Plus(Term, Term),
}

impl Alt {
    pub fn terms(&self) -> impl Iterator<Item = &Term> {
        let (a, b) = match self {
            Alt::Value(t) => (t, None),
            Alt::Diff(a, b) | Alt::Plus(a, b) => (a, Some(b)),
        };
        std::iter::once(a).chain(b)
    }
}

/// Where one canonical column comes from in the log: alternatives, the first one present in
/// a record wins (`gen_ai.usage.input_tokens | gen_ai.usage.prompt_tokens`).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSource {
    pub alts: Vec<Alt>,
}

impl ColumnSource {
    fn named(name: &str) -> Self {
        let path = FieldPath { segs: name.split('.').map(str::to_string).collect(), plain: true };
        ColumnSource { alts: vec![Alt::Value(Term { path, scale: 1.0 })] }
    }

    /// The only way to read this column, when it is one plain value (the fast paths).
    pub fn single(&self) -> Option<&Term> {
        match self.alts.as_slice() {
            [Alt::Value(t)] => Some(t),
            _ => None,
        }
    }

    /// Every path this column reads.
    pub fn paths(&self) -> impl Iterator<Item = &FieldPath> {
        self.alts.iter().flat_map(|a| a.terms()).map(|t| &t.path)
    }
}

/// Which objects of a log are records. Log shapes that mix records with other objects (spans
/// that are not GenAI operations, streaming chunks before the one that carries usage) name
/// the ones to pass over; they are counted per file as skipped, with `reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeepRule {
    /// Applies only to objects whose value at this path is this text (all objects when None).
    pub when: Option<(FieldPath, String)>,
    /// An object it applies to is kept when any of these paths holds a value.
    pub any_of: Vec<FieldPath>,
    pub reason: String,
}

/// For each canonical column, the source field(s) to read it from. Unmapped columns are read
/// under their canonical name. A mapped column is read *only* from its sources.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMap {
    sources: [ColumnSource; Col::COUNT],
    /// Set by presets whose logs hold objects that are not records.
    pub keep: Vec<KeepRule>,
}

impl Default for ColumnMap {
    fn default() -> Self {
        ColumnMap { sources: Col::ALL.map(|c| ColumnSource::named(c.name())), keep: Vec::new() }
    }
}

impl ColumnMap {
    /// The mapping of one run, most specific last so it wins: `config` (the pack's `[columns]`,
    /// from `Config::column_map`, or the default mapping), then the named `preset`, then the
    /// caller's `canonical=source` rules in the order given (`--column`).
    pub fn for_run(config: ColumnMap, preset: Option<&str>, rules: &[String]) -> Result<ColumnMap> {
        let mut map = config;
        if let Some(p) = preset {
            map.apply_preset(p)?;
        }
        for r in rules {
            map.set_rule(r)?;
        }
        Ok(map)
    }

    pub fn source(&self, col: Col) -> &ColumnSource {
        &self.sources[col as usize]
    }

    /// Every canonical column with its source. All of them are read on every path (validate,
    /// estimate, with or without dedupe), whether or not the run needs the value: a record's
    /// acceptance must not depend on what the run does with it (issue 11, point 4).
    pub fn sources(&self) -> impl Iterator<Item = (Col, &ColumnSource)> {
        Col::ALL.iter().map(move |&c| (c, &self.sources[c as usize]))
    }

    /// True when every column is one plain value at unit scale or not: no alternatives, no
    /// computed columns, no keep rules (the readers' fast paths).
    pub fn is_simple(&self) -> bool {
        self.keep.is_empty() && self.sources.iter().all(|s| s.single().is_some())
    }

    /// Apply one `canonical=source` rule (see [`ColumnMap::set`]).
    pub fn set_rule(&mut self, rule: &str) -> Result<()> {
        let (canonical, source) = rule.split_once('=').ok_or_else(|| {
            Error::Usage(format!("column mapping '{rule}': expected canonical=source, e.g. input_tokens=prompt_tokens"))
        })?;
        self.set(canonical.trim(), source.trim())
    }

    /// Map `canonical` to `source`: `path[/N|*F]`, alternatives joined by `|` (the first one a
    /// record has wins), `end - start` (seconds between two timestamps) for `duration_s`,
    /// `start + duration[/N]` (a timestamp plus seconds) for `ts`.
    pub fn set(&mut self, canonical: &str, source: &str) -> Result<()> {
        let col = Col::from_name(canonical).ok_or_else(|| {
            let names: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
            Error::Usage(format!(
                "column mapping '{canonical}={source}': '{canonical}' is not a canonical column (one of {})",
                names.join(", ")
            ))
        })?;
        let alts = parse_source(col, source)
            .map_err(|why| Error::Usage(format!("column mapping '{canonical}={source}': {why}")))?;
        self.sources[col as usize] = ColumnSource { alts };
        Ok(())
    }
}

/// Split `s` at each top-level occurrence of `sep` (outside `[...]` and quotes).
pub(crate) fn split_top<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut last) = (0i32, None::<char>, 0usize);
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().unwrap_or(' ');
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if depth > 0 => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth -= 1,
            (None, _) if depth == 0 && s[i..].starts_with(sep) => {
                out.push(&s[last..i]);
                i += sep.len();
                last = i;
                continue;
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    out.push(&s[last..]);
    out
}

fn parse_source(col: Col, source: &str) -> std::result::Result<Vec<Alt>, String> {
    let mut alts = Vec::new();
    for alt in split_top(source, "|") {
        let alt = alt.trim();
        // Operators need spaces around them: field names do contain '-' (`x-request-id`).
        let diff = split_top(alt, " - ");
        let plus = split_top(alt, " + ");
        let parsed = match (diff.as_slice(), plus.as_slice()) {
            ([a, b], [_]) => {
                if col != Col::DurationS {
                    return Err("'end - start' (seconds between two timestamps) only maps duration_s".into());
                }
                Alt::Diff(parse_term(col, a, true)?, parse_term(col, b, true)?)
            }
            ([_], [a, b]) => {
                if col != Col::Ts {
                    return Err("'start + duration' (a timestamp plus seconds) only maps ts".into());
                }
                Alt::Plus(parse_term(col, a, true)?, parse_term(col, b, false)?)
            }
            ([_], [_]) => Alt::Value(parse_term(col, alt, false)?),
            _ => return Err("one '-' or '+' per alternative".into()),
        };
        alts.push(parsed);
    }
    Ok(alts)
}

/// `path`, `path/N` or `path*F`. `timestamp` terms take no scale.
fn parse_term(col: Col, text: &str, timestamp: bool) -> std::result::Result<Term, String> {
    let text = text.trim();
    // The scale is the last '/' or '*' outside brackets.
    let cut = {
        let mut depth = 0i32;
        let mut at = None;
        for (i, c) in text.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                '/' | '*' if depth == 0 => at = Some(i),
                _ => {}
            }
        }
        at
    };
    let (path_text, scale) = match cut {
        Some(i) => {
            let n: f64 = text[i + 1..]
                .trim()
                .parse()
                .map_err(|_| "expected a field name, optionally followed by /N or *F (N, F numbers)".to_string())?;
            let scale = if text.as_bytes()[i] == b'/' { 1.0 / n } else { n };
            if n == 0.0 || !scale.is_finite() {
                return Err(format!("scale '{}' must be a non-zero finite number", &text[i..]));
            }
            (&text[..i], scale)
        }
        None => (text, 1.0),
    };
    if scale != 1.0 && (timestamp || !(col.is_numeric() || col == Col::Ts)) {
        return Err("a scale only applies to numeric columns and durations".into());
    }
    Ok(Term { path: parse_path(path_text)?, scale })
}

/// `a.b.c`, `attributes["gen_ai.usage.input_tokens"]`, `resource.attributes['host.name']`.
pub fn parse_path(text: &str) -> std::result::Result<FieldPath, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("expected a field name".into());
    }
    let Some(first) = text.find('[') else {
        return Ok(FieldPath { segs: text.split('.').map(str::to_string).collect(), plain: true });
    };
    let mut segs: Vec<String> = Vec::new();
    if first > 0 {
        segs.extend(text[..first].split('.').map(str::to_string));
    }
    let mut rest = &text[first..];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let q = r.chars().next().filter(|c| *c == '"' || *c == '\'').ok_or_else(|| {
                format!("in '{text}': a bracketed key is quoted, e.g. attributes[\"gen_ai.request.model\"]")
            })?;
            let body = &r[1..];
            let end = body.find(q).ok_or_else(|| format!("in '{text}': unterminated quote"))?;
            segs.push(body[..end].to_string());
            rest = body[end + 1..]
                .strip_prefix(']')
                .ok_or_else(|| format!("in '{text}': expected ']' after the quoted key"))?;
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            segs.push(r[..end].to_string());
            rest = &r[end..];
        } else {
            return Err(format!("in '{text}': expected '.' or '[' after ']'"));
        }
    }
    if segs.iter().any(|s| s.is_empty()) {
        return Err(format!("in '{text}': empty key"));
    }
    Ok(FieldPath { segs, plain: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets::PRESETS;

    #[test]
    fn rename_and_scale() {
        let mut m = ColumnMap::default();
        m.set_rule("input_tokens=prompt_tokens").unwrap();
        m.set_rule("duration_s=latency_ms/1000").unwrap();
        let single = |c: Col| m.source(c).single().unwrap().clone();
        assert_eq!(single(Col::InputTokens).path.flat().as_deref(), Some("prompt_tokens"));
        assert_eq!(single(Col::DurationS).scale, 0.001);
        assert_eq!(single(Col::Model).path.flat().as_deref(), Some("model"));
        assert_eq!(m.sources().count(), Col::COUNT);
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut m = ColumnMap::default();
        assert!(m.set_rule("tokens").is_err());
        assert!(m.set_rule("nope=x").is_err());
        assert!(m.set_rule("model=name/10").is_err());
        assert!(m.set_rule("duration_s=x/0").is_err());
        assert!(m.apply_preset("nope").is_err());
        assert!(m.set_rule("ts=a - b").is_err(), "a difference only maps duration_s");
        assert!(m.set_rule("duration_s=a + b").is_err(), "a sum only maps ts");
        assert!(m.set_rule("model=attributes[gen_ai.x]").is_err(), "bracketed keys are quoted");
        assert!(m.set_rule("model=attributes[\"x").is_err());
        for p in PRESETS {
            let mut m = ColumnMap::default();
            m.apply_preset(p.name).unwrap();
        }
    }

    #[test]
    fn a_run_maps_config_then_preset_then_rules() {
        let flat = |m: &ColumnMap, c: Col| m.source(c).single().and_then(|t| t.path.flat());
        let mut config = ColumnMap::default();
        config.set_rule("model=engine").unwrap();
        config.set_rule("hardware=gpu_model").unwrap();
        config.set_rule("input_tokens=n_in").unwrap();
        let rules = ["input_tokens=tokens_in".to_string(), "input_tokens = prompt".to_string()];
        let m = ColumnMap::for_run(config.clone(), Some("litellm"), &rules).unwrap();
        assert_eq!(flat(&m, Col::Hardware).as_deref(), Some("gpu_model"), "the pack's rule where nothing overrides it");
        assert!(flat(&m, Col::Model).is_none(), "the preset's alternatives replace the pack's model");
        assert_eq!(flat(&m, Col::OutputTokens).as_deref(), Some("completion_tokens"), "the preset's");
        assert_eq!(flat(&m, Col::InputTokens).as_deref(), Some("prompt"), "the last rule given wins");
        let m = ColumnMap::for_run(config.clone(), None, &[]).unwrap();
        assert_eq!(flat(&m, Col::InputTokens).as_deref(), Some("n_in"));
        assert!(matches!(ColumnMap::for_run(config.clone(), Some("nope"), &[]), Err(Error::Usage(_))));
        assert!(matches!(ColumnMap::for_run(config, None, &["tokens".into()]), Err(Error::Usage(_))));
    }

    #[test]
    fn paths_alternatives_and_computed_columns() {
        let mut m = ColumnMap::default();
        m.set_rule(r#"input_tokens = attributes["gen_ai.usage.input_tokens"] | usage.prompt_tokens"#).unwrap();
        let alts = &m.source(Col::InputTokens).alts;
        assert_eq!(alts.len(), 2);
        let Alt::Value(t) = &alts[0] else { panic!() };
        assert_eq!(
            t.path,
            FieldPath { segs: vec!["attributes".into(), "gen_ai.usage.input_tokens".into()], plain: false }
        );
        assert_eq!(t.path.to_string(), r#"attributes["gen_ai.usage.input_tokens"]"#);
        let Alt::Value(t) = &alts[1] else { panic!() };
        assert_eq!(t.path.flat().as_deref(), Some("usage.prompt_tokens"));
        m.set_rule("duration_s=endTimeUnixNano - startTimeUnixNano | latency_ms/1000").unwrap();
        assert!(matches!(m.source(Col::DurationS).alts[0], Alt::Diff(..)));
        m.set_rule("ts=timestamp + duration/1000000").unwrap();
        let Alt::Plus(_, d) = &m.source(Col::Ts).alts[0] else { panic!() };
        assert_eq!(d.scale, 1e-6);
        let p = parse_path("resource.attributes['k8s.pod.name'].x").unwrap();
        assert_eq!(p.segs, ["resource", "attributes", "k8s.pod.name", "x"]);
        assert!(!m.is_simple());
        assert!(ColumnMap::default().is_simple());
    }
}
