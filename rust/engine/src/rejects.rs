//! The rejects output: one JSON object per rejected record, so nothing is dropped silently
//! (methodology section 1) and a user can fix the source and re-run.
//!
//! Written to a temporary file beside the target and renamed on [`RejectsWriter::finish`], so
//! a crashed or cancelled run never leaves a half-written rejects file that looks complete.
//! Readers buffer a block's rejects and write them with one locked call, so lines of different
//! workers never interleave mid-line and the lock is taken once per block, not per record.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::record::RejectReason;

/// The raw line is cut to this many characters: enough to see what is wrong, bounded so a
/// file of multi-megabyte garbage lines does not produce a rejects file just as large.
pub const MAX_RAW_CHARS: usize = 1000;

pub struct RejectsWriter {
    target: PathBuf,
    tmp: PathBuf,
    out: Mutex<Option<BufWriter<File>>>,
}

impl RejectsWriter {
    /// Start writing rejects destined for `path` (created or replaced on `finish`).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let target = path.as_ref().to_path_buf();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "rejects".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::Output { path: target.clone(), msg: e.to_string() })?;
        Ok(RejectsWriter { target, tmp, out: Mutex::new(Some(BufWriter::with_capacity(1 << 16, file))) })
    }

    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Append one reject.
    pub fn write(&self, source: &str, line: u64, reason: &RejectReason, raw: Option<&[u8]>) -> Result<()> {
        let mut buf = Vec::with_capacity(128);
        format_reject(&mut buf, source, line, reason, raw);
        self.write_block(&buf)
    }

    /// Append already formatted reject lines (see [`format_reject`]) in one locked write.
    pub fn write_block(&self, lines: &[u8]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut guard = self.out.lock().map_err(|_| self.err("a writer thread panicked"))?;
        let out = guard.as_mut().ok_or_else(|| self.err("already finished"))?;
        out.write_all(lines).map_err(|e| self.err(e))
    }

    /// Flush and move the file into place.
    pub fn finish(self) -> Result<()> {
        let out = self.out.lock().map_err(|_| self.err("a writer thread panicked"))?.take();
        if let Some(out) = out {
            let file = out.into_inner().map_err(|e| self.err(e.error()))?;
            file.sync_all().map_err(|e| self.err(e))?;
        }
        std::fs::rename(&self.tmp, &self.target).map_err(|e| self.err(e))
    }

    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Output { path: self.target.clone(), msg: msg.to_string() }
    }
}

impl Drop for RejectsWriter {
    /// An unfinished writer (error, cancel) leaves no temp file behind.
    fn drop(&mut self) {
        if let Ok(mut g) = self.out.lock() {
            if g.take().is_some() {
                let _ = std::fs::remove_file(&self.tmp);
            }
        }
    }
}

/// Append one reject as a JSON line: `{"source":..,"line":..,"reason":..,"raw":..}`.
pub fn format_reject(buf: &mut Vec<u8>, source: &str, line: u64, reason: &RejectReason, raw: Option<&[u8]>) {
    buf.extend_from_slice(b"{\"source\": ");
    json_string(buf, source);
    buf.extend_from_slice(b", \"line\": ");
    buf.extend_from_slice(line.to_string().as_bytes());
    buf.extend_from_slice(b", \"reason\": ");
    json_string(buf, &reason.to_string());
    buf.extend_from_slice(b", \"raw\": ");
    match raw {
        None => buf.extend_from_slice(b"null"),
        Some(raw) => {
            let text = String::from_utf8_lossy(raw);
            let cut = match text.char_indices().nth(MAX_RAW_CHARS) {
                Some((i, _)) => &text[..i],
                None => &text[..],
            };
            json_string(buf, cut);
        }
    }
    buf.extend_from_slice(b"}\n");
}

/// A JSON string literal (RFC 8259 escaping; non-ASCII is written as UTF-8).
pub fn json_string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                const H: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(b"\\u00");
                buf.push(H[(b >> 4) as usize]);
                buf.push(H[(b & 15) as usize]);
            }
            _ => buf.push(b),
        }
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::Col;

    #[test]
    fn writes_atomically_with_escaping() {
        let t = crate::testutil::tempdir().unwrap();
        let target = t.path().join("rejects.jsonl");
        let w = RejectsWriter::create(&target).unwrap();
        w.write("a\"b.jsonl", 7, &RejectReason::Negative(Col::InputTokens), Some(b"{\"x\":\"\\u00e9\"}\t\x01\xff"))
            .unwrap();
        let long = "é".repeat(1500);
        w.write("a.parquet", 0, &RejectReason::Missing(Col::Ts), None).unwrap();
        w.write("l.csv", 2, &RejectReason::Unparseable("invalid JSON"), Some(long.as_bytes())).unwrap();
        assert!(!target.exists(), "nothing at the target before finish");
        w.finish().unwrap();
        let text = std::fs::read_to_string(&target).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            r#"{"source": "a\"b.jsonl", "line": 7, "reason": "negative input_tokens", "raw": "{\"x\":\"\\u00e9\"}\t\u0001�"}"#
        );
        assert_eq!(lines[1], r#"{"source": "a.parquet", "line": 0, "reason": "missing ts", "raw": null}"#);
        assert!(lines[2].contains(&format!("\"raw\": \"{}\"", "é".repeat(MAX_RAW_CHARS))));
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1, "temp file renamed away");
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let t = crate::testutil::tempdir().unwrap();
        let w = RejectsWriter::create(t.path().join("r.jsonl")).unwrap();
        w.write("s", 1, &RejectReason::Missing(Col::Model), Some(b"x")).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
