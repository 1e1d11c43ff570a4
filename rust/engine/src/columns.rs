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
}

impl Col {
    pub const ALL: [Col; 14] = [
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
    ];
    pub const COUNT: usize = 14;

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

/// Where one canonical column comes from in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSource {
    /// The log's field name (JSON key, CSV header, Parquet column). A dotted name such as
    /// `usage.prompt_tokens` is first looked up as a flat key, then as a path into nested
    /// JSON objects.
    pub name: String,
    /// Multiply the value by this on read (unit conversion, e.g. ms -> s is 0.001). 1 for
    /// plain renames. Only allowed on numeric columns.
    pub scale: f64,
    /// False for a column the caller does not need (see [`ColumnMap::skip`]): readers neither
    /// parse it nor, for Parquet, decode it.
    pub read: bool,
}

/// For each canonical column, the source field to read it from. Unmapped columns are read
/// under their canonical name. A mapped column is read *only* from its source name.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMap {
    sources: [ColumnSource; Col::COUNT],
}

impl Default for ColumnMap {
    fn default() -> Self {
        ColumnMap { sources: Col::ALL.map(|c| ColumnSource { name: c.name().to_string(), scale: 1.0, read: true }) }
    }
}

/// Named mappings for log shapes seen in the wild (see shared/reference/facts.md).
pub const PRESETS: &[(&str, &[&str])] = &[
    (
        "litellm",
        &[
            "ts=endTime",
            "input_tokens=prompt_tokens",
            "output_tokens=completion_tokens",
            "duration_s=request_duration_ms/1000",
        ],
    ),
    ("vllm", &["input_tokens=num_prompt_tokens", "output_tokens=num_generation_tokens", "duration_s=e2e_latency"]),
    (
        "otel",
        &[
            "model=gen_ai.response.model",
            "input_tokens=gen_ai.usage.input_tokens",
            "output_tokens=gen_ai.usage.output_tokens",
            "site=server.address",
            "ts=end_time",
        ],
    ),
    ("openai", &["input_tokens=usage.prompt_tokens", "output_tokens=usage.completion_tokens", "ts=created"]),
];

impl ColumnMap {
    pub fn source(&self, col: Col) -> &ColumnSource {
        &self.sources[col as usize]
    }

    /// The columns to read, with their sources (skipped columns left out).
    pub fn sources(&self) -> impl Iterator<Item = (Col, &ColumnSource)> {
        self.all_sources().filter(|(_, s)| s.read)
    }

    /// Every canonical column with its source, skipped ones included (to report which
    /// columns a file has).
    pub fn all_sources(&self) -> impl Iterator<Item = (Col, &ColumnSource)> {
        Col::ALL.iter().map(move |&c| (c, &self.sources[c as usize]))
    }

    /// Do not read `col` at all. The estimate path skips `status` (not part of any aggregate)
    /// and `request_id` unless de-duplicating: in Parquet they are the costliest columns to
    /// decode (one distinct string per request) and the kernel never looks at them.
    pub fn skip(&mut self, col: Col) {
        self.sources[col as usize].read = false;
    }

    /// Apply one `canonical=source` (or `canonical=source/N`, `canonical=source*F`) rule.
    pub fn set_rule(&mut self, rule: &str) -> Result<()> {
        let (canonical, source) = rule.split_once('=').ok_or_else(|| {
            Error::Usage(format!("column mapping '{rule}': expected canonical=source, e.g. input_tokens=prompt_tokens"))
        })?;
        self.set(canonical.trim(), source.trim())
    }

    pub fn set(&mut self, canonical: &str, source: &str) -> Result<()> {
        let col = Col::from_name(canonical).ok_or_else(|| {
            let names: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
            Error::Usage(format!(
                "column mapping '{canonical}={source}': '{canonical}' is not a canonical column (one of {})",
                names.join(", ")
            ))
        })?;
        let (name, scale) = parse_scaled(source).ok_or_else(|| {
            Error::Usage(format!(
                "column mapping '{canonical}={source}': expected a field name, optionally followed by /N or *F"
            ))
        })?;
        if scale != 1.0 && !col.is_numeric() {
            return Err(Error::Usage(format!(
                "column mapping '{canonical}={source}': a scale only applies to numeric columns"
            )));
        }
        let read = self.sources[col as usize].read;
        self.sources[col as usize] = ColumnSource { name, scale, read };
        Ok(())
    }

    pub fn apply_preset(&mut self, preset: &str) -> Result<()> {
        let rules = PRESETS.iter().find(|(n, _)| *n == preset).map(|(_, r)| *r).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            Error::Usage(format!("unknown column preset '{preset}' (known: {})", names.join(", ")))
        })?;
        for r in rules {
            self.set_rule(r)?;
        }
        Ok(())
    }
}

fn parse_scaled(source: &str) -> Option<(String, f64)> {
    let (name, scale) = if let Some((n, d)) = source.rsplit_once('/') {
        let d: f64 = d.trim().parse().ok()?;
        if d == 0.0 || !d.is_finite() {
            return None;
        }
        (n.trim(), 1.0 / d)
    } else if let Some((n, f)) = source.rsplit_once('*') {
        let f: f64 = f.trim().parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        (n.trim(), f)
    } else {
        (source.trim(), 1.0)
    };
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_and_scale() {
        let mut m = ColumnMap::default();
        m.set_rule("input_tokens=prompt_tokens").unwrap();
        m.set_rule("duration_s=latency_ms/1000").unwrap();
        assert_eq!(m.source(Col::InputTokens).name, "prompt_tokens");
        assert_eq!(m.source(Col::DurationS).scale, 0.001);
        assert_eq!(m.source(Col::Model).name, "model");
        m.skip(Col::Status);
        assert!(m.sources().all(|(c, _)| c != Col::Status));
        assert_eq!(m.all_sources().count(), Col::COUNT);
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut m = ColumnMap::default();
        assert!(m.set_rule("tokens").is_err());
        assert!(m.set_rule("nope=x").is_err());
        assert!(m.set_rule("model=name/10").is_err());
        assert!(m.set_rule("duration_s=x/0").is_err());
        assert!(m.apply_preset("nope").is_err());
        m.apply_preset("litellm").unwrap();
        assert_eq!(m.source(Col::OutputTokens).name, "completion_tokens");
    }
}
