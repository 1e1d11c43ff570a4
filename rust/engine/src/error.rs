//! One error type for the engine. Every message is one line that says what went wrong, where
//! (file, line or key) and, where it helps, what to do. The same file, line and key are also
//! fields ([`Error::path`], [`Error::line`], [`Error::key`]), so a caller tells errors apart by
//! variant and field, never by searching the text. The binding maps variants to named Python
//! exceptions carrying those fields; the CLI prints the message and exits non-zero.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A log or grid file could not be opened or read (missing, permission, truncated
    /// compressed stream). `line` is 1-based where one line is to blame (a CSV header row
    /// too long), 0 for the file as a whole; the message names the file only.
    #[error("{}: {}", one_line(&path.display().to_string()), one_line(msg))]
    Input { path: PathBuf, line: u64, msg: String },

    /// A file whose kind we cannot tell from its name.
    #[error("{}: unknown log format (expected .jsonl, .ndjson, .csv or .parquet, optionally .gz or .zst)", one_line(&path.display().to_string()))]
    UnknownFormat { path: PathBuf },

    /// The methodology config (TOML) is invalid; `key` names the offending key.
    #[error("config {}: {}: {}", one_line(origin), one_line(key), one_line(msg))]
    Config { origin: String, key: String, msg: String },

    /// The grid intensity file is invalid; `line` is 1-based, 0 for the file as a whole.
    #[error("grid {}: {}{}", one_line(&path.display().to_string()), at_line(*line), one_line(msg))]
    Grid { path: PathBuf, line: u64, msg: String },

    /// A bad argument from the caller (column mapping, preset, site, options). Never a broken
    /// invariant of the engine: that is [`Error::Internal`].
    #[error("{}", one_line(.0))]
    Usage(String),

    /// Writing an output (rejects, spill files) failed.
    #[error("{}: cannot write: {}", one_line(&path.display().to_string()), one_line(msg))]
    Output { path: PathBuf, msg: String },

    /// The caller asked the run to stop (Ctrl-C).
    #[error("cancelled")]
    Cancelled,

    /// A broken invariant of the engine: a bug, never bad input (which is a reject or one of
    /// the errors above). Stops the run rather than let a wrong number through.
    #[error("internal error (a bug in wattledger; please report it): {}", one_line(.0))]
    Internal(String),
}

/// The text with control characters escaped (`\n`, `\r`, `\u{1b}`): every message is one line
/// and prints nothing raw to a terminal, whatever a file name or a quoted value holds (the `grid`
/// fuzz target found a CR of a cell splitting an error message; see docs/fuzzing.md).
pub fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `line N: ` for a line of a file, nothing for the file as a whole (line 0).
fn at_line(line: u64) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}: ")
    }
}

impl Error {
    pub fn input(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Input { path: path.into(), line: 0, msg: msg.to_string() }
    }
    /// An input error that one line of the file is to blame for (1-based).
    pub fn input_at(path: impl Into<PathBuf>, line: u64, msg: impl std::fmt::Display) -> Self {
        Error::Input { path: path.into(), line, msg: msg.to_string() }
    }
    /// A broken invariant: `what` failed because of `cause` (kept in the message, after it).
    pub fn internal(what: &str, cause: impl std::fmt::Display) -> Self {
        Error::Internal(format!("{what}: {cause}"))
    }

    /// The file (or, for a pack, its origin) the error is about, when there is one.
    pub fn path(&self) -> Option<String> {
        match self {
            Error::Input { path, .. }
            | Error::UnknownFormat { path }
            | Error::Grid { path, .. }
            | Error::Output { path, .. } => Some(path.display().to_string()),
            Error::Config { origin, .. } => Some(origin.clone()),
            Error::Usage(_) | Error::Cancelled | Error::Internal(_) => None,
        }
    }

    /// The 1-based line of the file the error is about, when one line is to blame.
    pub fn line(&self) -> Option<u64> {
        match self {
            Error::Input { line, .. } | Error::Grid { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }

    /// The dotted key of the pack the error is about (config errors).
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::Config { key, .. } => Some(key),
            _ => None,
        }
    }
    pub fn config(origin: &str, key: impl Into<String>, msg: impl std::fmt::Display) -> Self {
        Error::Config { origin: origin.to_string(), key: key.into(), msg: msg.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_whatever_the_input_holds() {
        let e = Error::Grid { path: "g\n.csv".into(), line: 2, msg: "bad timestamp '402\r13'".into() };
        assert_eq!(e.to_string(), "grid g\\n.csv: line 2: bad timestamp '402\\r13'");
        let e = Error::config("p.toml", "models.\"a\u{1b}[31m\"", "unknown key");
        assert_eq!(e.to_string(), "config p.toml: models.\"a\\u{1b}[31m\": unknown key");
        assert_eq!(Error::Usage("é\tx".into()).to_string(), "é\\tx");
    }

    #[test]
    fn path_line_and_key_are_fields_as_well_as_words() {
        let e = Error::Grid { path: "g.csv".into(), line: 3, msg: "bad value".into() };
        assert_eq!((e.path().as_deref(), e.line(), e.key()), (Some("g.csv"), Some(3), None));
        let e = Error::Grid { path: "g.csv".into(), line: 0, msg: "no rows".into() };
        assert_eq!(e.line(), None, "line 0 is the file as a whole");
        let e = Error::config("p.toml", "sites.a.pue", "must be >= 1");
        assert_eq!((e.path().as_deref(), e.line(), e.key()), (Some("p.toml"), None, Some("sites.a.pue")));
        let e = Error::input_at("a.csv", 1, "header too long");
        assert_eq!(e.to_string(), "a.csv: header too long", "the message is unchanged by the line");
        assert_eq!((e.path().as_deref(), e.line()), (Some("a.csv"), Some(1)));
        let e = Error::internal("concat", "schema mismatch");
        assert_eq!(e.to_string(), "internal error (a bug in wattledger; please report it): concat: schema mismatch");
        assert_eq!((e.path(), e.line(), e.key()), (None, None, None));
    }
}
