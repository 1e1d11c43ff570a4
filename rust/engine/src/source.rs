//! Input discovery and opening: turn what the user typed (files, directories, globs) into an
//! ordered, de-duplicated list of [`InputFile`]s, and open text files with transparent
//! decompression.
//!
//! The format is decided from the file name alone, before anything is read, so a typo or a
//! stray file fails the run up front instead of half-way through a backfill. Decompression
//! errors are turned into one `Error::Input` naming the file: a truncated `.gz` must stop the
//! run, never silently yield fewer records.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How a log file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JSON Lines: one object per line (`.jsonl`, `.ndjson`, `.json`).
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
    Parquet,
    /// Arrow record batches handed over in memory (never chosen from a file name).
    Arrow,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stream compression of a text log (Parquet compresses internally, so it is always `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log file to scan.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    pub path: PathBuf,
    pub format: Format,
    pub compression: Compression,
    /// Size on disk (compressed size for `.gz`/`.zst`): the unit of progress reporting.
    pub size: u64,
}

/// Format and compression from a file name, or None when the name is not a known log kind.
pub fn detect_format(path: &Path) -> Option<(Format, Compression)> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
        (s, Compression::Gzip)
    } else if let Some(s) = name.strip_suffix(".zst").or_else(|| name.strip_suffix(".zstd")) {
        (s, Compression::Zstd)
    } else {
        (name.as_str(), Compression::None)
    };
    let ext = Path::new(stem).extension()?.to_str()?;
    let format = match ext {
        "jsonl" | "ndjson" | "json" => Format::Jsonl,
        "csv" => Format::Csv,
        // Parquet pages are compressed inside the file; an outer .gz is not a Parquet file.
        "parquet" | "pq" if compression == Compression::None => Format::Parquet,
        _ => return None,
    };
    Some((format, compression))
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn input_file(path: &Path) -> Result<InputFile> {
    let (format, compression) = detect_format(path).ok_or_else(|| Error::UnknownFormat { path: path.to_path_buf() })?;
    let meta = std::fs::metadata(path).map_err(|e| io_input(path, &e))?;
    Ok(InputFile { path: path.to_path_buf(), format, compression, size: meta.len() })
}

fn io_input(path: &Path, e: &io::Error) -> Error {
    let msg = match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    Error::input(path, msg)
}

/// Hidden entries (`.DS_Store`, `.part` files of writers still running, our own temp files)
/// are not logs; skipping them keeps a directory scan from picking up half-written data.
fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// All files with a known log extension under `dir`, recursively, sorted by path so runs are
/// reproducible whatever order the file system lists them in.
fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_input(dir, &e))?;
    let mut entries: Vec<PathBuf> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| io_input(dir, &e))?;
        entries.push(entry.path());
    }
    entries.sort();
    for p in entries {
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            walk_dir(&p, out)?;
        } else if detect_format(&p).is_some() {
            out.push(p);
        }
    }
    Ok(())
}

/// Expand files, directories and globs into the files to scan, in the order given, without
/// duplicates (the same file reached twice is counted once).
///
/// A named file with an unknown extension is an error (the user asked for it explicitly);
/// inside directories and glob matches, unknown files are skipped. A directory or glob that
/// yields no log file is an error: an ingest over nothing is almost always a wrong path.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<InputFile>> {
    let mut out = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut push = |p: PathBuf, out: &mut Vec<InputFile>| -> Result<()> {
        let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.insert(key) {
            out.push(input_file(&p)?);
        }
        Ok(())
    };
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            let mut found = Vec::new();
            walk_dir(path, &mut found)?;
            if found.is_empty() {
                return Err(Error::input(
                    path,
                    "directory holds no log files (.jsonl, .ndjson, .json, .csv, .parquet, optionally .gz or .zst)",
                ));
            }
            for p in found {
                push(p, &mut out)?;
            }
        } else if path.exists() {
            push(path.to_path_buf(), &mut out)?;
        } else if is_glob(input) {
            let paths = glob::glob(input).map_err(|e| Error::input(path, format!("invalid glob pattern: {e}")))?;
            let mut found = Vec::new();
            for p in paths {
                let p = p.map_err(|e| Error::input(e.path(), e.error().to_string()))?;
                if p.is_dir() {
                    walk_dir(&p, &mut found)?;
                } else if !is_hidden(&p) && detect_format(&p).is_some() {
                    found.push(p);
                }
            }
            if found.is_empty() {
                return Err(Error::input(path, "glob matched no log files"));
            }
            for p in found {
                push(p, &mut out)?;
            }
        } else {
            return Err(Error::input(path, "no such file or directory"));
        }
    }
    Ok(out)
}

/// Reads the file as stored, counting (for progress) and optionally hashing every byte. It
/// sits *under* the decompressor so the hash is of the stored bytes, as `sha256sum` gives.
pub(crate) struct RawReader<'c> {
    inner: File,
    hasher: Option<Sha256>,
    counter: Option<&'c AtomicU64>,
    /// Bytes read so far: with the hash, the size of exactly the bytes it covers (a file
    /// appended to while it is read has more bytes than its size when the scan started).
    read: u64,
}

impl Read for RawReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        if let Some(c) = self.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

impl RawReader<'_> {
    /// Read what the decompressor left unread (trailing bytes), then the hex digest and the
    /// number of bytes it covers.
    fn finish(mut self) -> io::Result<Option<(String, u64)>> {
        if self.hasher.is_some() {
            io::copy(&mut self, &mut io::sink())?;
        }
        let read = self.read;
        Ok(self.hasher.map(|h| (hex(&h.finalize()), read)))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// An opened text log: the decompressed byte stream, with decoder errors worded for people.
pub(crate) enum TextStream<'c> {
    Plain(RawReader<'c>),
    // Boxed: the decoder state is large and the enum is moved around.
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<RawReader<'c>>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<RawReader<'c>>>),
}

impl<'c> TextStream<'c> {
    pub(crate) fn open(file: &InputFile, hash: bool, counter: Option<&'c AtomicU64>) -> Result<Self> {
        let f = File::open(&file.path).map_err(|e| io_input(&file.path, &e))?;
        let raw = RawReader { inner: f, hasher: hash.then(Sha256::new), counter, read: 0 };
        Ok(match file.compression {
            Compression::None => TextStream::Plain(raw),
            // Big buffers: fewer syscalls, and the decoder is the bottleneck anyway.
            Compression::Gzip => {
                TextStream::Gzip(Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, raw))))
            }
            Compression::Zstd => TextStream::Zstd(
                zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(1 << 20, raw))
                    .map_err(|e| Error::input(&file.path, format!("cannot start zstd decoder: {e}")))?,
            ),
        })
    }

    /// Fill as much of `buf` as the stream gives; returns bytes read (0 only at end of data).
    pub(crate) fn read_some(&mut self, path: &Path, buf: &mut [u8]) -> Result<usize> {
        loop {
            let r = match self {
                TextStream::Plain(r) => r.read(buf),
                TextStream::Gzip(r) => r.read(buf),
                TextStream::Zstd(r) => r.read(buf),
            };
            match r {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.describe(path, &e)),
            }
        }
    }

    fn describe(&self, path: &Path, e: &io::Error) -> Error {
        match self {
            TextStream::Plain(_) => io_input(path, e),
            TextStream::Gzip(_) => Error::input(path, format!("truncated or corrupt gzip data: {}", decoder_msg(e))),
            TextStream::Zstd(_) => Error::input(path, format!("truncated or corrupt zstd data: {}", decoder_msg(e))),
        }
    }

    /// Hex SHA-256 of the stored bytes and how many there were, when hashing was asked for.
    pub(crate) fn finish(self, path: &Path) -> Result<Option<(String, u64)>> {
        let raw = match self {
            TextStream::Plain(r) => r,
            TextStream::Gzip(d) => d.into_inner().into_inner(),
            TextStream::Zstd(d) => d.finish().into_inner(),
        };
        raw.finish().map_err(|e| io_input(path, &e))
    }
}

fn decoder_msg(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "unexpected end of file".to_string()
    } else {
        e.to_string()
    }
}

/// A `Read` over a [`TextStream`] whose errors already name the file and say what is wrong.
struct NamedStream {
    stream: TextStream<'static>,
    path: PathBuf,
}

impl Read for NamedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read_some(&self.path, buf).map_err(|e| io::Error::other(e.to_string()))
    }
}

/// Open a text log (JSON Lines or CSV), decompressing `.gz` (all members) and `.zst` (all
/// frames). Read errors carry a message naming the file, e.g. "logs/a.jsonl.gz: truncated or
/// corrupt gzip data: unexpected end of file".
pub fn open_text(file: &InputFile) -> Result<Box<dyn Read + Send>> {
    let stream = TextStream::open(file, false, None)?;
    Ok(Box::new(NamedStream { stream, path: file.path.clone() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn touch(p: &Path, body: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn names(files: &[InputFile], root: &Path) -> Vec<String> {
        files.iter().map(|f| f.path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/")).collect()
    }

    #[test]
    fn formats_by_extension() {
        let d = |s: &str| detect_format(Path::new(s));
        assert_eq!(d("a.jsonl"), Some((Format::Jsonl, Compression::None)));
        assert_eq!(d("a.NDJSON.GZ"), Some((Format::Jsonl, Compression::Gzip)));
        assert_eq!(d("a.json.zst"), Some((Format::Jsonl, Compression::Zstd)));
        assert_eq!(d("a.csv.zstd"), Some((Format::Csv, Compression::Zstd)));
        assert_eq!(d("a.parquet"), Some((Format::Parquet, Compression::None)));
        assert_eq!(d("a.pq"), Some((Format::Parquet, Compression::None)));
        assert_eq!(d("a.parquet.gz"), None);
        assert_eq!(d("a.txt"), None);
        assert_eq!(d("a.gz"), None);
        assert_eq!(d("jsonl"), None);
    }

    #[test]
    fn files_dirs_globs() {
        let t = crate::testutil::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("d/b.jsonl"), b"{}\n");
        touch(&r.join("d/a.csv"), b"ts\n");
        touch(&r.join("d/sub/c.parquet"), b"x");
        touch(&r.join("d/readme.txt"), b"x");
        touch(&r.join("d/.hidden.jsonl"), b"x");
        touch(&r.join("x.jsonl.gz"), b"x");
        let s = |p: &str| r.join(p).to_string_lossy().into_owned();

        let files = expand_inputs(&[s("d")]).unwrap();
        assert_eq!(names(&files, r), ["d/a.csv", "d/b.jsonl", "d/sub/c.parquet"]);
        assert_eq!(files[0].format, Format::Csv);
        assert_eq!(files[0].size, 3);

        // Order kept, duplicates dropped (the same file via a file name, a dir and a glob).
        let files = expand_inputs(&[s("x.jsonl.gz"), s("d/b.jsonl"), s("d"), s("d/*.jsonl")]).unwrap();
        assert_eq!(names(&files, r), ["x.jsonl.gz", "d/b.jsonl", "d/a.csv", "d/sub/c.parquet"]);
        assert_eq!(files[0].compression, Compression::Gzip);

        let files = expand_inputs(&[s("d/*")]).unwrap();
        assert_eq!(names(&files, r), ["d/a.csv", "d/b.jsonl", "d/sub/c.parquet"]);

        let e = expand_inputs(&[s("d/*.nope")]).unwrap_err();
        assert!(matches!(e, Error::Input { .. }), "{e}");
        assert!(e.to_string().contains("glob matched no log files"));
        let e = expand_inputs(&[s("missing.jsonl")]).unwrap_err();
        assert!(e.to_string().ends_with("missing.jsonl: no such file or directory"), "{e}");
        let e = expand_inputs(&[s("d/readme.txt")]).unwrap_err();
        assert!(matches!(e, Error::UnknownFormat { .. }), "{e}");
        std::fs::create_dir(r.join("empty")).unwrap();
        assert!(matches!(expand_inputs(&[s("empty")]), Err(Error::Input { .. })));
    }

    fn read_all(f: &InputFile) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        open_text(f).map_err(|e| e.to_string())?.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_zstd_round_trip_and_truncation() {
        let t = crate::testutil::tempdir().unwrap();
        let data: Vec<u8> = (0..20_000).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect();
        // Two gzip members back to back (what `cat a.gz b.gz` makes) must both be read.
        let mut two = gz(&data[..1000]);
        two.extend(gz(&data[1000..]));
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for (name, body) in [("a.jsonl.gz", two.clone()), ("a.jsonl.zst", zs.clone())] {
            let p = t.path().join(name);
            std::fs::write(&p, &body).unwrap();
            let f = input_file(&p).unwrap();
            assert_eq!(read_all(&f).unwrap(), data, "{name}");

            std::fs::write(&p, &body[..body.len() / 2]).unwrap();
            let f = input_file(&p).unwrap();
            let e = read_all(&f).unwrap_err();
            assert!(e.contains(name) && e.contains("truncated or corrupt"), "{e}");
        }
        let p = t.path().join("garbage.csv.gz");
        std::fs::write(&p, b"this is not gzip at all").unwrap();
        let e = read_all(&input_file(&p).unwrap()).unwrap_err();
        assert!(e.contains("truncated or corrupt gzip data"), "{e}");
    }
}
