//! One error type for the engine. Every message is one line that says what went wrong, where
//! (file, line or key) and, where it helps, what to do. The binding maps variants to named
//! Python exceptions, the CLI prints the message and exits non-zero.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A log or grid file could not be opened or read (missing, permission, truncated
    /// compressed stream).
    #[error("{}: {msg}", path.display())]
    Input { path: PathBuf, msg: String },

    /// A file whose kind we cannot tell from its name.
    #[error("{}: unknown log format (expected .jsonl, .ndjson, .csv or .parquet, optionally .gz or .zst)", path.display())]
    UnknownFormat { path: PathBuf },

    /// The methodology config (TOML) is invalid; `key` names the offending key.
    #[error("config {origin}: {key}: {msg}")]
    Config { origin: String, key: String, msg: String },

    /// The grid intensity file is invalid; `line` is 1-based, 0 for the file as a whole.
    #[error("grid {}: {}{msg}", path.display(), at_line(*line))]
    Grid { path: PathBuf, line: u64, msg: String },

    /// A bad argument from the caller (column mapping, options).
    #[error("{0}")]
    Usage(String),

    /// Writing an output (rejects, spill files) failed.
    #[error("{}: cannot write: {msg}", path.display())]
    Output { path: PathBuf, msg: String },

    /// The caller asked the run to stop (Ctrl-C).
    #[error("cancelled")]
    Cancelled,

    /// A broken invariant of the engine: a bug, never bad input (which is a reject or one of
    /// the errors above). Stops the run rather than let a wrong number through.
    #[error("internal error (a bug in wattledger; please report it): {0}")]
    Internal(String),
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
        Error::Input { path: path.into(), msg: msg.to_string() }
    }
    pub fn config(origin: &str, key: impl Into<String>, msg: impl std::fmt::Display) -> Self {
        Error::Config { origin: origin.to_string(), key: key.into(), msg: msg.to_string() }
    }
}
