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
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::digest::ContentHash;
use crate::remote::{self, RemoteObject, RemoteRead, StorageOptions, Stores};

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
    /// The object in object storage this is (`path` is then its URL); None for a local file.
    pub remote: Option<Arc<RemoteObject>>,
}

impl InputFile {
    /// A local file of a known kind (tests and benches build their inputs so).
    pub fn local(path: PathBuf, format: Format, compression: Compression, size: u64) -> Self {
        InputFile { path, format, compression, size, remote: None }
    }
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
    // Follows symlinks: what matters is what would be read.
    let meta = std::fs::metadata(path).map_err(|e| io_input(path, &e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    Ok(InputFile::local(path.to_path_buf(), format, compression, meta.len()))
}

/// A FIFO blocks the run until some writer comes along, a device such as `/dev/zero` never
/// ends: neither is a log file, and reading one would hang or grow without bound. Refused
/// before anything is opened (opening a FIFO for reading already blocks).
fn not_regular(path: &Path, ft: &std::fs::FileType) -> Error {
    use std::os::unix::fs::FileTypeExt;
    let kind = if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Error::input(
        path,
        format!("{kind}, not a regular file; logs are read from regular files only (save the data to a file first)"),
    )
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

/// Stops a directory walk: the Ctrl-C flag of the run, checked once per directory entry.
pub type Cancel<'a> = &'a dyn Fn() -> bool;

/// Directories of one expansion, by (device, inode): a directory reached again through a
/// symlink is not read twice, and one that leads back to a directory being walked (a symlink
/// loop, e.g. `logs/sub/up -> ..`) is an error rather than an endless walk.
#[derive(Default)]
struct Walk {
    /// Every directory walked so far (its files are in the list already).
    seen: HashSet<(u64, u64)>,
    /// The directories from the root of this walk down to the current one, with their paths.
    stack: Vec<((u64, u64), PathBuf)>,
}

fn dir_id(path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| io_input(path, &e))?;
    Ok((m.dev(), m.ino()))
}

/// All files with a known log extension under `dir`, recursively, sorted by path so runs are
/// reproducible whatever order the file system lists them in.
fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>, walk: &mut Walk, cancel: Cancel<'_>) -> Result<()> {
    let id = dir_id(dir)?;
    if let Some((_, ancestor)) = walk.stack.iter().find(|(a, _)| *a == id) {
        return Err(Error::input(
            dir,
            format!(
                "symlink loop: this directory is {} again; remove the link or pass the directories to read one by one",
                ancestor.display()
            ),
        ));
    }
    if !walk.seen.insert(id) {
        // Reached before through another link: its files are listed already.
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| io_input(dir, &e))?;
    let mut entries: Vec<PathBuf> = Vec::new();
    for entry in rd {
        if cancel() {
            return Err(Error::Cancelled);
        }
        let entry = entry.map_err(|e| io_input(dir, &e))?;
        entries.push(entry.path());
    }
    entries.sort();
    walk.stack.push((id, dir.to_path_buf()));
    for p in entries {
        if cancel() {
            return Err(Error::Cancelled);
        }
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            walk_dir(&p, out, walk, cancel)?;
        } else if detect_format(&p).is_some() {
            out.push(p);
        }
    }
    walk.stack.pop();
    Ok(())
}

/// Expand files, directories and globs into the files to scan, in the order given, without
/// duplicates (the same file reached twice is counted once).
///
/// A named file with an unknown extension is an error (the user asked for it explicitly);
/// inside directories and glob matches, unknown files are skipped. A directory or glob that
/// yields no log file is an error: an ingest over nothing is almost always a wrong path.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<InputFile>> {
    expand_inputs_until(inputs, &|| false)
}

/// [`expand_inputs`] that stops with `Error::Cancelled` as soon as `cancel()` says so (Ctrl-C
/// while a large tree is listed).
pub fn expand_inputs_until(inputs: &[String], cancel: Cancel<'_>) -> Result<Vec<InputFile>> {
    expand_inputs_with(inputs, &StorageOptions::default(), cancel)
}

/// [`expand_inputs_until`] where inputs may also be object storage URLs (`s3://bucket/prefix/`,
/// `gs://...`, `az://...`, `https://host/file.jsonl`; see [`remote`]), whose clients take
/// `storage` on top of the environment.
pub fn expand_inputs_with(inputs: &[String], storage: &StorageOptions, cancel: Cancel<'_>) -> Result<Vec<InputFile>> {
    let mut stores = Stores::new(storage.clone());
    let mut seen_urls: HashSet<String> = HashSet::new();
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
        if cancel() {
            return Err(Error::Cancelled);
        }
        let path = Path::new(input);
        if remote::is_url(input) {
            let is_log = |key: &str| detect_format(Path::new(key)).is_some();
            for obj in stores.expand(input, &is_log, cancel)? {
                let url = PathBuf::from(&obj.url);
                let (format, compression) =
                    detect_format(&url).ok_or_else(|| Error::UnknownFormat { path: url.clone() })?;
                if seen_urls.insert(obj.url.clone()) {
                    out.push(InputFile { path: url, format, compression, size: obj.size, remote: Some(obj) });
                }
            }
            continue;
        }
        if input == "-" {
            // The format is told from the file name, and a run's provenance is the file's
            // hash and path: a pipe has neither.
            return Err(Error::input(
                path,
                "reading standard input is not supported; save the log to a file (e.g. logs.jsonl) and pass its path",
            ));
        }
        if path.is_dir() {
            let mut found = Vec::new();
            walk_dir(path, &mut found, &mut Walk::default(), cancel)?;
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
            let found = if input.contains("**") { glob_recursive(input, cancel)? } else { glob_flat(input, cancel)? };
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

/// A glob without `**`: its depth is fixed by the pattern, so the `glob` crate's walk is
/// bounded; a matched directory is walked (loop-safe) for its log files.
fn glob_flat(pattern: &str, cancel: Cancel<'_>) -> Result<Vec<PathBuf>> {
    let paths =
        glob::glob(pattern).map_err(|e| Error::input(Path::new(pattern), format!("invalid glob pattern: {e}")))?;
    let mut found = Vec::new();
    let mut walk = Walk::default();
    for p in paths {
        if cancel() {
            return Err(Error::Cancelled);
        }
        let p = p.map_err(|e| Error::input(e.path(), e.error().to_string()))?;
        if p.is_dir() {
            walk_dir(&p, &mut found, &mut walk, cancel)?;
        } else if !is_hidden(&p) && detect_format(&p).is_some() {
            found.push(p);
        }
    }
    Ok(found)
}

/// A glob with `**`. The `glob` crate follows directory symlinks without noticing loops, so
/// `logs/**/*.jsonl` over a tree with links back up walks (and lists) without end. Instead the
/// literal directory before the first wildcard is walked with [`walk_dir`], which refuses a
/// loop, and each log file is kept when the pattern matches it or one of its directories (a
/// matched directory stands for every log file under it, as with the other inputs).
fn glob_recursive(pattern: &str, cancel: Cancel<'_>) -> Result<Vec<PathBuf>> {
    let bad = |e: glob::PatternError| Error::input(Path::new(pattern), format!("invalid glob pattern: {e}"));
    let compiled = glob::Pattern::new(pattern).map_err(bad)?;
    // `*` and `?` stop at `/`, as in the crate's own walk (which matches one component at a time).
    let options = glob::MatchOptions { require_literal_separator: true, ..glob::MatchOptions::new() };
    let literal: PathBuf =
        Path::new(pattern).components().take_while(|c| !is_glob(&c.as_os_str().to_string_lossy())).collect();
    let root = if literal.as_os_str().is_empty() { PathBuf::from(".") } else { literal.clone() };
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    walk_dir(&root, &mut files, &mut Walk::default(), cancel)?;
    let relative = literal.as_os_str().is_empty();
    Ok(files
        .into_iter()
        // A pattern without a directory part walks "."; its paths are matched as written.
        .map(|f| if relative { f.strip_prefix(".").map(Path::to_path_buf).unwrap_or(f) } else { f })
        .filter(|f| f.ancestors().take_while(|a| *a != literal).any(|a| compiled.matches_path_with(a, options)))
        .collect())
}

/// Reads the file as stored, counting (for progress) and optionally hashing every byte. It
/// sits *under* the decompressor so the hash is of the stored bytes, as `b3sum` gives.
pub(crate) struct RawReader<'c> {
    inner: Raw,
    hasher: Option<ContentHash>,
    counter: Option<&'c AtomicU64>,
    /// Bytes read so far: with the hash, the size of exactly the bytes it covers (a file
    /// appended to while it is read has more bytes than its size when the scan started).
    read: u64,
}

/// Where the stored bytes come from: a local file, or ranged reads of an object.
enum Raw {
    File(File),
    Remote(Box<RemoteRead>),
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Raw::File(f) => f.read(buf),
            Raw::Remote(r) => r.read(buf),
        }
    }
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
        Ok(self.hasher.map(|h| (h.finish(), read)))
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

/// How far a compressed file may unpack by default, as a multiple of its size on disk (files
/// smaller than [`INFLATE_FLOOR_BYTES`] count as that size). Real logs compress 5-20x with gzip
/// and up to ~100x with zstd at high levels on very repetitive logs; deflate cannot exceed
/// ~1032x at all. 1000x lets every genuine log through while a bomb (165 KB of zstd unpacking
/// to 5 GiB, ~32000x) stops after 1000 MiB: a few seconds, with memory bounded by --max-line.
pub const DEFAULT_MAX_INFLATE: u64 = 1000;

/// The size a small compressed file is counted as for the budget: with the default ratio a
/// file may always unpack to 1000 MiB, so tiny files of very repetitive logs are never refused.
pub const INFLATE_FLOOR_BYTES: u64 = 1 << 20;

/// The most bytes a compressed file of `size` bytes on disk may unpack to with `ratio`
/// (`--max-inflate`; 0 = no limit).
pub fn inflate_limit(size: u64, ratio: u64) -> u64 {
    if ratio == 0 {
        u64::MAX
    } else {
        size.max(INFLATE_FLOOR_BYTES).saturating_mul(ratio)
    }
}

/// Every member of a gzip file, as `gzip -d` reads it: members back to back (what
/// `cat a.gz b.gz` makes), and zero bytes after the last member ignored (tape and block
/// devices pad files with them). Anything else after a member is an error, never skipped.
pub(crate) struct GzMembers<R: BufRead> {
    /// The member being read; None only for the moment one member is swapped for the next.
    member: Option<flate2::bufread::GzDecoder<R>>,
    done: bool,
}

impl<R: BufRead> GzMembers<R> {
    pub(crate) fn new(r: R) -> Self {
        GzMembers { member: Some(flate2::bufread::GzDecoder::new(r)), done: false }
    }

    fn into_inner(self) -> R {
        self.member.expect("a gzip member").into_inner()
    }

    /// At the end of a member: start the next one, or say the data ended (Ok(false)).
    fn next_member(&mut self) -> io::Result<bool> {
        let m = self.member.as_mut().expect("a gzip member");
        let r = m.get_mut();
        match r.fill_buf()?.first() {
            None => return Ok(false),
            Some(0) => loop {
                let b = r.fill_buf()?;
                if b.is_empty() {
                    return Ok(false);
                }
                if b.iter().any(|&c| c != 0) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "trailing garbage after the gzip data"));
                }
                let n = b.len();
                r.consume(n);
            },
            // The first byte of a gzip header: another member (its header is checked when read).
            Some(0x1f) => {}
            Some(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "trailing garbage after the gzip data"));
            }
        }
        let r = self.member.take().expect("a gzip member").into_inner();
        self.member = Some(flate2::bufread::GzDecoder::new(r));
        Ok(true)
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let n = self.member.as_mut().expect("a gzip member").read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if !self.next_member()? {
                self.done = true;
            }
        }
    }
}

/// The decompressor of a text log.
enum Decoder<'c> {
    Plain(RawReader<'c>),
    // Boxed: the decoder state is large and the enum is moved around.
    Gzip(Box<GzMembers<BufReader<RawReader<'c>>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<RawReader<'c>>>),
}

/// An opened text log: the decompressed byte stream, with decoder errors worded for people,
/// and the decompression budget of the file (`--max-inflate`).
pub(crate) struct TextStream<'c> {
    dec: Decoder<'c>,
    /// Bytes handed out so far (after decompression).
    out: u64,
    /// The most bytes the file may unpack to ([`inflate_limit`]); u64::MAX for plain files.
    limit: u64,
    /// The ratio behind `limit`, for the message.
    ratio: u64,
}

impl<'c> TextStream<'c> {
    /// `max_inflate`: see [`inflate_limit`].
    pub(crate) fn open(file: &InputFile, hash: bool, counter: Option<&'c AtomicU64>, max_inflate: u64) -> Result<Self> {
        let (inner, stored) = match &file.remote {
            Some(obj) => (Raw::Remote(Box::new(RemoteRead::new(obj.clone()))), obj.size),
            None => {
                // Checked again here (not only when the inputs were listed): opening a FIFO blocks.
                let meta = std::fs::metadata(&file.path).map_err(|e| io_input(&file.path, &e))?;
                if !meta.is_file() {
                    return Err(not_regular(&file.path, &meta.file_type()));
                }
                (Raw::File(File::open(&file.path).map_err(|e| io_input(&file.path, &e))?), meta.len())
            }
        };
        let raw = RawReader { inner, hasher: hash.then(ContentHash::new), counter, read: 0 };
        let dec = match file.compression {
            Compression::None => Decoder::Plain(raw),
            // Big buffers: fewer syscalls, and the decoder is the bottleneck anyway.
            Compression::Gzip => Decoder::Gzip(Box::new(GzMembers::new(BufReader::with_capacity(1 << 20, raw)))),
            Compression::Zstd => Decoder::Zstd(
                zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(1 << 20, raw))
                    .map_err(|e| Error::input(&file.path, format!("cannot start zstd decoder: {e}")))?,
            ),
        };
        let limit = match file.compression {
            Compression::None => u64::MAX,
            _ => inflate_limit(stored.max(file.size), max_inflate),
        };
        Ok(TextStream { dec, out: 0, limit, ratio: max_inflate })
    }

    /// Fill as much of `buf` as the stream gives; returns bytes read (0 only at end of data).
    pub(crate) fn read_some(&mut self, path: &Path, buf: &mut [u8]) -> Result<usize> {
        loop {
            let r = match &mut self.dec {
                Decoder::Plain(r) => r.read(buf),
                Decoder::Gzip(r) => r.read(buf),
                Decoder::Zstd(r) => r.read(buf),
            };
            match r {
                Ok(n) => {
                    self.out += n as u64;
                    if self.out > self.limit {
                        return Err(Error::input(
                            path,
                            format!(
                                "unpacks to more than {} ({}x its size on disk, counted as at least 1 MiB): stopped as a likely \
                                 decompression bomb; if the file is genuine, raise --max-inflate (now {})",
                                human_bytes(self.limit),
                                self.ratio,
                                self.ratio
                            ),
                        ));
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.describe(path, &e)),
            }
        }
    }

    fn describe(&self, path: &Path, e: &io::Error) -> Error {
        match self.dec {
            Decoder::Plain(_) => io_input(path, e),
            Decoder::Gzip(_) => Error::input(path, format!("truncated or corrupt gzip data: {}", decoder_msg(e))),
            Decoder::Zstd(_) => Error::input(path, format!("truncated or corrupt zstd data: {}", decoder_msg(e))),
        }
    }

    /// Hex BLAKE3 of the stored bytes and how many there were, when hashing was asked for.
    pub(crate) fn finish(self, path: &Path) -> Result<Option<(String, u64)>> {
        let raw = match self.dec {
            Decoder::Plain(r) => r,
            Decoder::Gzip(d) => d.into_inner().into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        };
        raw.finish().map_err(|e| io_input(path, &e))
    }
}

/// `1 GiB`, `64 MiB`, `1000 bytes`: a limit as people write it.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// `1.5 GiB`, `700.0 MiB`: a size people read at a glance (not necessarily a whole unit).
pub fn human_bytes_approx(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} bytes")
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
    let stream = TextStream::open(file, false, None, DEFAULT_MAX_INFLATE)?;
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

    /// `gzip -d` ignores zero bytes after the last member (padding); anything else there is an
    /// error, and members back to back still all count.
    #[test]
    fn gzip_trailing_zeros_and_garbage() {
        let t = crate::testutil::tempdir().unwrap();
        let data = b"{\"n\":1}\n".repeat(100);
        let p = t.path().join("pad.jsonl.gz");
        let mut body = gz(&data[..500]);
        body.extend(gz(&data[500..]));
        body.extend(vec![0u8; 5000]);
        std::fs::write(&p, &body).unwrap();
        assert_eq!(read_all(&input_file(&p).unwrap()).unwrap(), data);
        for junk in [&b"junk"[..], b"\x1fjunk"] {
            let mut bad = body.clone();
            bad.extend(junk);
            std::fs::write(&p, &bad).unwrap();
            let e = read_all(&input_file(&p).unwrap()).unwrap_err();
            assert!(e.contains("pad.jsonl.gz") && e.contains("trailing garbage"), "{e}");
            // Right after a member, too.
            let mut bad = gz(&data);
            bad.extend(junk);
            std::fs::write(&p, &bad).unwrap();
            let e = read_all(&input_file(&p).unwrap()).unwrap_err();
            assert!(e.contains("pad.jsonl.gz") && (e.contains("trailing garbage") || e.contains("corrupt")), "{e}");
        }
    }

    /// A file that unpacks past its budget stops with one message naming the limit and flag.
    #[test]
    fn decompression_budget() {
        let t = crate::testutil::tempdir().unwrap();
        assert_eq!(inflate_limit(10, 1000), 1000 << 20, "small files count as 1 MiB");
        assert_eq!(inflate_limit(3 << 20, 10), 30 << 20);
        assert_eq!(inflate_limit(3 << 20, 0), u64::MAX);
        let zeros = vec![0u8; 40 << 20];
        let p = t.path().join("bomb.jsonl.zst");
        std::fs::write(&p, zstd::encode_all(&zeros[..], 3).unwrap()).unwrap();
        let f = input_file(&p).unwrap();
        let read = |ratio: u64| -> Result<u64> {
            let mut s = TextStream::open(&f, false, None, ratio)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0;
            loop {
                match s.read_some(&f.path, &mut buf)? {
                    0 => return Ok(n),
                    k => n += k as u64,
                }
            }
        };
        let e = read(10).unwrap_err().to_string();
        assert!(e.contains("bomb.jsonl.zst") && e.contains("more than 10 MiB") && e.contains("--max-inflate"), "{e}");
        assert_eq!(read(100).unwrap(), 40 << 20);
        assert_eq!(read(0).unwrap(), 40 << 20);
    }

    /// FIFOs and devices are refused before they are opened; `-` is refused with a way out.
    #[test]
    fn non_regular_files_refused() {
        let t = crate::testutil::tempdir().unwrap();
        let fifo = t.path().join("pipe.jsonl");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
        let zero = t.path().join("zero.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let e = expand_inputs(&[s(&fifo)]).unwrap_err().to_string();
        assert!(e.contains("pipe.jsonl: a FIFO (named pipe), not a regular file"), "{e}");
        let e = expand_inputs(&[s(&zero)]).unwrap_err().to_string();
        assert!(e.contains("zero.jsonl: a device, not a regular file"), "{e}");
        // Inside a directory as well: never a silent skip, never a hang.
        let e = expand_inputs(&[s(t.path())]).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = expand_inputs(&["-".to_string()]).unwrap_err().to_string();
        assert!(e.contains("standard input is not supported"), "{e}");
    }

    extern "C" {
        #[link_name = "mkfifo"]
        fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
    }

    /// A symlink back to an ancestor is an error naming it; a second link to a directory
    /// already read adds nothing (its files are listed once); Ctrl-C stops a walk.
    #[test]
    fn symlink_loops_and_cancel() {
        let t = crate::testutil::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("d/a.jsonl"), b"{}\n");
        touch(&r.join("d/sub/b.jsonl"), b"{}\n");
        std::os::unix::fs::symlink(r.join("d/sub"), r.join("d/again")).unwrap();
        let s = |p: &str| r.join(p).to_string_lossy().into_owned();
        let files = expand_inputs(&[s("d")]).unwrap();
        assert_eq!(names(&files, r), ["d/a.jsonl", "d/again/b.jsonl"]);
        std::os::unix::fs::symlink("..", r.join("d/sub/up")).unwrap();
        std::os::unix::fs::symlink("../..", r.join("d/sub/up2")).unwrap();
        let e = expand_inputs(&[s("d")]).unwrap_err().to_string();
        assert!(e.contains("symlink loop") && e.contains("up"), "{e}");
        let e = expand_inputs_until(&[s("d")], &|| true).unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");
        // A `**` glob through the same loop is refused too, not walked without end.
        let e = expand_inputs(&[s("d/**/*.jsonl")]).unwrap_err().to_string();
        assert!(e.contains("symlink loop"), "{e}");
    }

    #[test]
    fn recursive_globs_match_files_and_directories() {
        let t = crate::testutil::tempdir().unwrap();
        let r = t.path();
        for f in ["logs/a.jsonl", "logs/2025/b.jsonl", "logs/2025/06/c.csv", "logs/2025/06/x.txt", "logs/.h/d.jsonl"] {
            touch(&r.join(f), b"{}\n");
        }
        let s = |p: &str| r.join(p).to_string_lossy().into_owned();
        let got = |p: &str| names(&expand_inputs(&[s(p)]).unwrap(), r);
        assert_eq!(got("logs/**/*.jsonl"), ["logs/2025/b.jsonl", "logs/a.jsonl"]);
        assert_eq!(got("logs/**/06"), ["logs/2025/06/c.csv"]);
        assert_eq!(got("logs/20*/**/*.csv"), ["logs/2025/06/c.csv"]);
        assert_eq!(got("logs/**"), ["logs/2025/06/c.csv", "logs/2025/b.jsonl", "logs/a.jsonl"]);
        assert!(expand_inputs(&[s("logs/**/*.parquet")]).unwrap_err().to_string().contains("matched no log files"));
    }
}
