//! Parallel block scanning of log files (JSON Lines, CSV, Parquet) and Arrow batches into a
//! [`RecordSink`].
//!
//! Shape of a scan: the calling thread is the *producer*: it reads each file sequentially
//! (decompressing and hashing on the way, since both are inherently sequential), cuts the text
//! into blocks of about `block_bytes` at record boundaries, and sends them over a bounded
//! channel. `threads` workers parse blocks, each folding records into its own sink (no locks
//! on the hot path) and calling `end_block` after every block; the sinks are merged at the end.
//! The bounded channel keeps the number of blocks in flight, hence memory, independent of
//! file size. Parquet row groups and Arrow batch slices travel the same channel.
//!
//! A *record* problem is never an error: it is a reject, counted per file and reason and
//! written to the rejects output. Errors (unreadable, truncated, not-Parquet files, a failing
//! sink) stop the whole scan: a partial result must never pass for a complete one.

mod arrow;
mod canonical;
mod csv;
mod differential;
mod jsondoc;
mod jsonl;
mod parquet;
mod plan;
mod structural;
mod value;

pub use canonical::CanonicalSink;
pub use differential::{jsonl_kernels_agree, jsonl_scan_with};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use rustc_hash::FxHashMap;

use crate::columns::{Col, ColumnMap};
use crate::error::{Error, Result};
use crate::record::{Draft, Loc, RecordSink, RejectReason};
use crate::rejects::{format_reject, RejectsWriter};
use crate::source::{Compression, Format, InputFile, TextStream};

use self::arrow::BatchView;
use self::csv::{CsvHeader, CsvState};
use self::jsonl::{JsonKeys, JsonParser};
use self::parquet::PqFile;
use self::plan::Plan;
use crate::rows::Rows;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub columns: ColumnMap,
    /// Worker threads; 0 = all cores.
    pub threads: usize,
    /// Target size of a text block handed to one worker (default 8 MiB): big enough to
    /// amortise channel hand-offs, small enough that `threads * 3` of them fit in cache-ish
    /// memory.
    pub block_bytes: usize,
    /// Compute the BLAKE3 of each file's bytes as stored (its identity in the ledger).
    pub hash: bool,
    /// The longest line (JSON Lines) or row (CSV) read, in bytes (`--max-line`). A longer one
    /// is a reject and reading resumes after its newline, without holding it in memory; a
    /// longer record of a JSON document stops the file (it cannot be skipped safely).
    pub max_line: usize,
    /// Decompression budget of a `.gz`/`.zst` file, as a multiple of its size on disk
    /// (`--max-inflate`, see [`crate::source::inflate_limit`]; 0 = no limit).
    pub max_inflate: u64,
}

/// Default `--max-line`: far above any real log line (a chat request with a long prompt is a
/// few hundred KiB), small enough that holding one line per file costs little memory.
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            columns: ColumnMap::default(),
            threads: 0,
            block_bytes: 8 << 20,
            hash: false,
            max_line: DEFAULT_MAX_LINE,
            max_inflate: crate::source::DEFAULT_MAX_INFLATE,
        }
    }
}

/// Progress counters and the cancel flag, shared with another thread (the CLI's progress bar,
/// a Ctrl-C handler). Updated once per block, so polling is cheap and never slows the scan.
#[derive(Debug, Default)]
pub struct ScanControl {
    /// Set to stop the scan; it returns `Error::Cancelled` at the next block.
    pub cancel: AtomicBool,
    /// Bytes on disk of all files of the scan (set when the scan starts).
    pub bytes_total: AtomicU64,
    /// Bytes on disk read so far (compressed bytes for compressed files).
    pub bytes_read: AtomicU64,
    pub records: AtomicU64,
    pub rejects: AtomicU64,
}

/// What a scan learned about one input file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStats {
    pub path: String,
    pub format: Format,
    pub compression: Compression,
    pub size_bytes: u64,
    /// Hex BLAKE3 of the file as stored, when `ScanOptions::hash` was set.
    pub blake3: Option<String>,
    /// The number of stored bytes `blake3` covers: the bytes actually read, which exceed
    /// `size_bytes` (the size when the scan started) if the file grew while it was read.
    pub hashed_bytes: Option<u64>,
    /// Valid records.
    pub records: u64,
    pub rejected: u64,
    /// Reject counts by reason (`RejectReason`'s Display).
    pub rejects: BTreeMap<String, u64>,
    pub blank_lines: u64,
    /// Objects that are not records of this log shape and were passed over on purpose (a span
    /// that is not a GenAI operation, a streaming chunk without usage), counted, never rejects.
    pub skipped: u64,
    /// Skip counts by reason.
    pub skip_reasons: BTreeMap<String, u64>,
    /// Canonical columns present in the header / schema / any record, sorted.
    pub columns_found: Vec<Col>,
}

pub struct ScanOutput<S> {
    pub sink: S,
    pub files: Vec<FileStats>,
}

/// Where a format's parser hands each record (or blank line) of a block.
pub(crate) trait Emit {
    fn blank(&mut self);
    /// An object that is not a record of this log shape, passed over on purpose.
    fn skip(&mut self, reason: &str);
    fn record(&mut self, line: u64, raw: Option<&[u8]>, r: Result<Draft<'_>, RejectReason>);
}

/// Per-file counts kept by one worker, summed over workers at the end.
#[derive(Default)]
struct FileAcc {
    records: u64,
    rejected: u64,
    reasons: FxHashMap<RejectReason, u64>,
    blank: u64,
    skips: Vec<(String, u64)>,
    found: u16,
}

impl FileAcc {
    fn skip(&mut self, reason: &str, n: u64) {
        match self.skips.iter_mut().find(|(r, _)| r == reason) {
            Some((_, c)) => *c += n,
            None => self.skips.push((reason.to_string(), n)),
        }
    }

    fn add(&mut self, o: FileAcc) {
        self.records += o.records;
        self.rejected += o.rejected;
        for (k, v) in o.reasons {
            *self.reasons.entry(k).or_default() += v;
        }
        self.blank += o.blank;
        for (reason, n) in o.skips {
            self.skip(&reason, n);
        }
        self.found |= o.found;
    }
}

enum TextKind {
    Jsonl,
    Csv(Arc<CsvHeader>),
    /// Records of a JSON document found by the producer: (start, end, line, problem). Also
    /// carries the reject of a line over `max_line` (its first bytes, for the rejects file).
    JsonDoc(Vec<DocRecord>),
}

struct DocRecord {
    start: usize,
    end: usize,
    line: u64,
    bad: Option<RejectReason>,
}

/// One unit of work for a worker.
enum Work {
    Text { file: u32, kind: TextKind, first_line: u64, data: Vec<u8>, start: usize, end: usize },
    RowGroup { file: u32, pq: Arc<PqFile>, rg: usize },
    Batch { file: u32, batch: RecordBatch, first_row: u64 },
}

/// State shared by the producer and the workers of one scan.
struct Shared<'a> {
    opts: &'a ScanOptions,
    ctl: &'a ScanControl,
    rejects: Option<&'a RejectsWriter>,
    /// Source names as written to rejects (file paths, or the Arrow source name).
    names: Vec<String>,
    paths: Vec<&'a Path>,
    /// The compiled mapping (`keys.plan`) and, for JSON, the keys leading to it.
    keys: JsonKeys,
    stop: AtomicBool,
    error: Mutex<Option<Error>>,
    /// Finished text buffers come back here for reuse: no page-faulting a fresh 8 MiB per block.
    free_tx: Sender<Vec<u8>>,
    free_rx: Receiver<Vec<u8>>,
}

impl Shared<'_> {
    fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.ctl.cancel.load(Ordering::Relaxed)
    }

    fn take_buf(&self, len: usize) -> Vec<u8> {
        let mut b = self.free_rx.try_recv().unwrap_or_default();
        if b.len() < len {
            // Slack, so a recycled buffer still fits the next block plus its carried-over
            // partial line and is not reallocated (and page-faulted) again.
            b.resize(len + len / 4, 0);
        }
        b
    }
}

/// Folds one block's records into a worker's sink and counters.
struct BlockEmit<'w, S> {
    sink: &'w mut S,
    acc: &'w mut FileAcc,
    rej: &'w mut Vec<u8>,
    rejects_on: bool,
    name: &'w str,
    file: u32,
    records: u64,
    rejected: u64,
}

impl<S: RecordSink> Emit for BlockEmit<'_, S> {
    fn blank(&mut self) {
        self.acc.blank += 1;
    }

    fn skip(&mut self, reason: &str) {
        self.acc.skip(reason, 1);
    }

    #[inline]
    fn record(&mut self, line: u64, raw: Option<&[u8]>, r: Result<Draft<'_>, RejectReason>) {
        match r.and_then(Draft::finish) {
            Ok(rec) => {
                self.sink.record(&rec, Loc { file: self.file, line });
                self.records += 1;
            }
            Err(reason) => self.reject(line, raw, reason),
        }
    }
}

impl<S: RecordSink> BlockEmit<'_, S> {
    fn reject(&mut self, line: u64, raw: Option<&[u8]>, reason: RejectReason) {
        *self.acc.reasons.entry(reason).or_default() += 1;
        self.rejected += 1;
        if self.rejects_on {
            format_reject(self.rej, self.name, line, &reason, raw);
        }
    }

    /// Whether Arrow rows go to the sink column by column ([`RecordSink::COLUMNAR`]).
    fn columnar(&self) -> bool {
        S::COLUMNAR
    }

    /// A validated chunk of Arrow rows: its rejects counted and written in row order, its
    /// valid rows handed to the sink in one call.
    fn rows(&mut self, rows: &Rows<'_>) {
        for (i, e) in rows.errs.iter().enumerate() {
            if let Some(reason) = *e {
                self.reject(rows.line0 + i as u64, None, reason);
            }
        }
        self.records += rows.valid.len() as u64;
        self.sink.rows(rows);
    }
}

struct Worker<'k> {
    accs: Vec<FileAcc>,
    json: JsonParser<'k>,
    csv: CsvState,
    rej: Vec<u8>,
}

impl<'k> Worker<'k> {
    fn run<S: RecordSink>(&mut self, sh: &'k Shared<'_>, work: Work, sink: &mut S) -> Result<()> {
        let file = match &work {
            Work::Text { file, .. } | Work::RowGroup { file, .. } | Work::Batch { file, .. } => *file,
        };
        if self.accs.len() <= file as usize {
            self.accs.resize_with(file as usize + 1, FileAcc::default);
        }
        let acc = &mut self.accs[file as usize];
        let mut emit = BlockEmit {
            sink,
            acc,
            rej: &mut self.rej,
            rejects_on: sh.rejects.is_some(),
            name: &sh.names[file as usize],
            file,
            records: 0,
            rejected: 0,
        };
        match work {
            Work::Text { kind: TextKind::Jsonl, first_line, data, start, end, .. } => {
                self.json.found = 0;
                jsonl_block(&mut self.json, &data[start..end], first_line, sh.opts.max_line, &mut emit);
                emit.acc.found |= self.json.found;
                let _ = sh.free_tx.send(data);
            }
            Work::Text { kind: TextKind::JsonDoc(recs), data, .. } => {
                self.json.found = 0;
                for r in &recs {
                    let text = &data[r.start..r.end];
                    match r.bad {
                        Some(why) => emit.record(r.line, Some(text), Err(why)),
                        None => self.json.parse_value(text, r.line, &mut emit),
                    }
                }
                emit.acc.found |= self.json.found;
                let _ = sh.free_tx.send(data);
            }
            Work::Text { kind: TextKind::Csv(h), first_line, data, start, end, .. } => {
                csv::process_block(
                    &h,
                    &sh.keys.plan,
                    &mut self.csv,
                    &data[start..end],
                    first_line,
                    sh.opts.max_line,
                    &mut emit,
                );
                let _ = sh.free_tx.send(data);
            }
            Work::RowGroup { pq, rg, .. } => {
                parquet::read_row_group(sh.paths[file as usize], &pq, rg, |row0, batch| {
                    batch_rows(&batch, &sh.opts.columns, &sh.keys.plan, row0, &mut emit);
                    Ok(())
                })?;
                // Progress by row group as each is done (the producer counts the rest).
                sh.ctl.bytes_read.fetch_add(pq.progress_bytes[rg], Ordering::Relaxed);
            }
            Work::Batch { batch, first_row, .. } => {
                batch_rows(&batch, &sh.opts.columns, &sh.keys.plan, first_row, &mut emit)
            }
        }
        let (records, rejected) = (emit.records, emit.rejected);
        emit.acc.records += records;
        emit.acc.rejected += rejected;
        if let Some(w) = sh.rejects {
            w.write_block(&self.rej)?;
            self.rej.clear();
        }
        sink.end_block()?;
        sh.ctl.records.fetch_add(records, Ordering::Relaxed);
        sh.ctl.rejects.fetch_add(rejected, Ordering::Relaxed);
        Ok(())
    }
}

fn batch_rows<S: RecordSink>(
    batch: &RecordBatch,
    map: &ColumnMap,
    plan: &Arc<Plan>,
    row0: u64,
    emit: &mut BlockEmit<'_, S>,
) {
    let view = BatchView::new(batch, map, plan);
    if let Some(plan) = view.plan() {
        for r in 0..view.rows {
            let get = |p: u16| view.val(p, r);
            match plan.skip_reason(get) {
                Some(reason) => emit.skip(reason),
                None => emit.record(row0 + r as u64, None, plan.draft(get)),
            }
        }
        return;
    }
    let mut rows = Rows::default();
    for start in (0..view.rows).step_by(arrow::CHUNK_ROWS) {
        let n = arrow::CHUNK_ROWS.min(view.rows - start);
        rows.reset(emit.file, start, row0 + start as u64, n);
        view.fill(&mut rows);
        if emit.columnar() {
            rows.validate();
            emit.rows(&rows);
            continue;
        }
        for (i, e) in rows.errs.iter().enumerate() {
            let r = match e {
                Some(reason) => Err(*reason),
                None => Ok(rows.draft(i)),
            };
            emit.record(rows.line0 + i as u64, None, r);
        }
    }
}

#[inline]
fn is_blank(line: &[u8]) -> bool {
    match line.first() {
        Some(b'{') => false,
        _ => line.iter().all(|c| c.is_ascii_whitespace()),
    }
}

/// How much of a line over `max_line` is kept for the rejects file.
const TOO_LONG_KEEP: usize = 1024;

/// The reject of a line over the limit, with its first bytes as the raw text.
pub(crate) fn too_long<E: Emit>(emit: &mut E, line_no: u64, line: &[u8], max_line: usize) {
    let keep = &line[..line.len().min(TOO_LONG_KEEP)];
    emit.record(line_no, Some(keep), Err(RejectReason::TooLong(max_line as u64)));
}

/// Parse the JSON lines of a block (cut at a line end), numbering lines from `first_line`.
fn jsonl_block<E: Emit>(p: &mut JsonParser<'_>, data: &[u8], first_line: u64, max_line: usize, emit: &mut E) {
    let mut line_no = first_line;
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |o| start + o);
        let mut line = &data[start..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.len() > max_line {
            too_long(emit, line_no, line, max_line);
        } else if is_blank(line) {
            emit.blank();
        } else {
            p.parse_line(line, line_no, emit);
        }
        line_no += 1;
        start = end + 1;
    }
}

/// Newlines in `b`. Runs on the producer for every byte; memchr's iterator count is a SIMD
/// count (AVX2 where available), several times faster than a byte loop.
fn count_newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// What the producer learned about a file (the workers add the counts).
#[derive(Default)]
struct FileMeta {
    blake3: Option<String>,
    hashed_bytes: Option<u64>,
    found: u16,
}

/// Read from `stream` until `buf[..*filled]` holds `target` bytes or the stream ends (`eof`).
fn fill_to(
    stream: &mut TextStream<'_>,
    path: &Path,
    buf: &mut Vec<u8>,
    filled: &mut usize,
    target: usize,
    eof: &mut bool,
) -> Result<()> {
    if buf.len() < target {
        buf.resize(target, 0);
    }
    while *filled < target && !*eof {
        let n = stream.read_some(path, &mut buf[*filled..target])?;
        *eof = n == 0;
        *filled += n;
    }
    Ok(())
}

/// Whether the file ends its lines with a lone CR (classic Mac OS): `Some(true)` when the first
/// line end in `b` is a CR not followed by LF, `Some(false)` for LF or CRLF, `None` while `b`
/// holds no line end yet. Such a file is read with every CR taken as LF (in JSON a raw CR can
/// only be whitespace; in CSV this reads the file as the spreadsheet that wrote it meant).
fn cr_line_ends(b: &[u8], eof: bool) -> Option<bool> {
    let i = memchr::memchr2(b'\r', b'\n', b)?;
    if b[i] == b'\n' {
        return Some(false);
    }
    match b.get(i + 1) {
        Some(&c) => Some(c != b'\n'),
        None if eof => Some(true),
        None => None,
    }
}

/// Decide the line-end style once `buf` holds a line end ([`cr_line_ends`]), then rewrite the
/// lone CRs of `buf[*translated..]` as LF; `translated` is how far `buf` has been rewritten.
/// Before the decision nothing is rewritten and `translated` stays where it was.
fn translate_cr(buf: &mut [u8], eof: bool, cr_only: &mut Option<bool>, translated: &mut usize) {
    if cr_only.is_none() {
        *cr_only = cr_line_ends(&buf[*translated..], eof);
    }
    if let Some(cr) = *cr_only {
        if cr {
            buf[*translated..].iter_mut().filter(|c| **c == b'\r').for_each(|c| *c = b'\n');
        }
        *translated = buf.len();
    }
}

/// Send the reject of a line over `max_line` (its first bytes go to the rejects file).
fn send_too_long(sh: &Shared<'_>, idx: u32, tx: &Sender<Work>, line: u64, head: &[u8]) -> bool {
    let keep = head.len().min(TOO_LONG_KEEP);
    let mut data = sh.take_buf(keep);
    data[..keep].copy_from_slice(&head[..keep]);
    let bad = Some(RejectReason::TooLong(sh.opts.max_line as u64));
    let recs = vec![DocRecord { start: 0, end: keep, line, bad }];
    tx.send(Work::Text { file: idx, kind: TextKind::JsonDoc(recs), first_line: line, data, start: 0, end: keep })
        .is_ok()
}

/// Read one text file and send it as blocks cut at record boundaries.
///
/// Memory: the buffer holds at most one block plus one line; a line that grows past
/// `max_line` is rejected and the bytes up to its newline are read and dropped (`skipping`),
/// so an endless line (a `.zst` of zeros) costs one block, not its length.
fn produce_text(sh: &Shared<'_>, idx: u32, f: &InputFile, tx: &Sender<Work>, meta: &mut FileMeta) -> Result<()> {
    let block = sh.opts.block_bytes.max(1);
    let max_line = sh.opts.max_line.max(1);
    let mut stream = TextStream::open(f, sh.opts.hash, Some(&sh.ctl.bytes_read), sh.opts.max_inflate)?;
    let csv = f.format == Format::Csv;
    let mut header: Option<Arc<CsvHeader>> = None;
    let mut buf = sh.take_buf(block);
    let mut filled = 0usize;
    let mut start = 0usize;
    let mut target = block;
    let mut line = 1u64;
    let mut first = true;
    let mut eof = false;
    // Lone-CR line ends (decided at the first line end), and how far `buf` has been rewritten.
    let mut cr_only: Option<bool> = None;
    let mut translated = 0usize;
    // Inside a line over `max_line` (already rejected): drop bytes up to its newline.
    let mut skipping = false;
    loop {
        if sh.ctl.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        if sh.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        fill_to(&mut stream, &f.path, &mut buf, &mut filled, target, &mut eof)?;
        translate_cr(&mut buf[..filled], eof, &mut cr_only, &mut translated);
        if skipping {
            match memchr::memchr(b'\n', &buf[start..filled]) {
                Some(o) => {
                    // The rest of the buffer is the next line on: read on as usual.
                    start += o + 1;
                    line += 1;
                    skipping = false;
                }
                None => {
                    if eof {
                        break;
                    }
                    filled = start;
                    translated = translated.min(start);
                    target = start + block;
                    continue;
                }
            }
        }
        if first {
            if buf[..filled].starts_with(b"\xEF\xBB\xBF") {
                start = 3;
            }
            if !csv {
                match jsondoc::looks_like_document(&buf[start..filled], eof) {
                    Some(true) => {
                        let text = DocText { buf, start, filled, eof, cr_only };
                        return produce_doc(sh, idx, f, tx, meta, stream, text);
                    }
                    Some(false) => {}
                    None if filled - start < (block * 4).max(16 << 20).min(max_line) => {
                        target = filled + block;
                        continue;
                    }
                    // A first line longer than this is JSON Lines' problem, not a document.
                    None => {}
                }
            }
            if csv {
                match csv::parse_header(&buf[start..filled], &sh.opts.columns, &sh.keys.plan, eof) {
                    _ if filled == start && eof => break,
                    Some((h, len, nl)) => {
                        meta.found = h.found;
                        header = Some(Arc::new(h));
                        start += len;
                        line += nl;
                    }
                    None if filled - start > max_line => {
                        // `line` is the 1-based line the header starts on.
                        return Err(Error::input_at(
                            &f.path,
                            line,
                            format!(
                                "the CSV header row is longer than --max-line ({}); raise --max-line if the file is genuine",
                                crate::source::human_bytes(max_line as u64)
                            ),
                        ));
                    }
                    None => {
                        target = filled + block;
                        continue;
                    }
                }
            }
            first = false;
        }
        let cut = if eof {
            Some(filled)
        } else if csv {
            csv::cut_point(&buf[start..filled]).map(|c| start + c).or_else(|| {
                // A stray quote would make the rest of the file look quoted; past a bound, cut
                // at a plain newline rather than buffer the whole file.
                if filled - start >= (block * 4).max(16 << 20).min(max_line + 1) {
                    memchr::memrchr(b'\n', &buf[start..filled]).map(|c| start + c + 1)
                } else {
                    None
                }
            })
        } else {
            memchr::memrchr(b'\n', &buf[start..filled]).map(|c| start + c + 1)
        };
        let Some(cut) = cut else {
            if filled - start > max_line {
                // One line over the limit: reject it now and drop the rest of it unread.
                if !send_too_long(sh, idx, tx, line, &buf[start..filled]) {
                    return Ok(());
                }
                skipping = true;
                filled = start;
                translated = translated.min(start);
                target = start + block;
                continue;
            }
            // One record longer than the block: read on until it ends (or passes the limit).
            target = (filled + block).min(start + max_line + 1);
            continue;
        };
        let carry = filled - cut;
        let mut next = sh.take_buf(carry + block);
        next[..carry].copy_from_slice(&buf[cut..filled]);
        let nl = count_newlines(&buf[start..cut]);
        if cut > start {
            let kind = match &header {
                Some(h) => TextKind::Csv(h.clone()),
                None => TextKind::Jsonl,
            };
            let work = Work::Text { file: idx, kind, first_line: line, data: buf, start, end: cut };
            if tx.send(work).is_err() {
                return Ok(());
            }
        }
        line += nl;
        buf = next;
        filled = carry;
        translated = if cr_only.is_some() { carry } else { 0 };
        start = 0;
        target = carry + block;
        if eof && carry == 0 {
            break;
        }
    }
    let _ = sh.free_tx.send(buf);
    (meta.blake3, meta.hashed_bytes) = stream.finish(&f.path)?.unzip();
    Ok(())
}

/// What [`produce_text`] read before it told the file is a JSON document: the buffer, where
/// the document starts in it (after a BOM), how far it is filled, whether the file ended, and
/// the line-end style if decided.
struct DocText {
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    eof: bool,
    cr_only: Option<bool>,
}

/// Read a JSON document (see `jsondoc`) and send its records in blocks of about
/// `block_bytes`. `buf[start..filled]` holds the bytes read so far.
#[allow(clippy::too_many_arguments)]
fn produce_doc(
    sh: &Shared<'_>,
    idx: u32,
    f: &InputFile,
    tx: &Sender<Work>,
    meta: &mut FileMeta,
    mut stream: TextStream<'_>,
    text: DocText,
) -> Result<()> {
    let DocText { mut buf, start, mut filled, mut eof, mut cr_only } = text;
    let block = sh.opts.block_bytes.max(1);
    let mut split = jsondoc::DocSplitter::new(1);
    // The BOM, if any, is not part of the document (its bytes hold no newline).
    buf.copy_within(start..filled, 0);
    filled -= start;
    // Lone-CR line ends are read as LF here too (produce_text translated what it read so far):
    // a document's records, and the junk between them, are then cut at the same line ends
    // whichever reader the block size happened to pick (found by the jsonl property test).
    let mut translated = if cr_only.is_some() { filled } else { 0 };
    translate_cr(&mut buf[..filled], eof, &mut cr_only, &mut translated);
    let mut pos = 0usize;
    let mut recs: Vec<DocRecord> = Vec::new();
    let mut covered = 0usize;
    loop {
        if sh.ctl.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        if sh.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let step = split.next(&buf[..filled], &mut pos, eof);
        let (need_more, done) = match step {
            jsondoc::Step::Record(s, e, line) => {
                recs.push(DocRecord { start: s, end: e, line, bad: None });
                covered += e - s;
                (false, false)
            }
            jsondoc::Step::Bad(s, e, line, why) => {
                recs.push(DocRecord { start: s, end: e, line, bad: Some(RejectReason::Unparseable(why)) });
                covered += e - s;
                (false, false)
            }
            jsondoc::Step::NeedMore => (true, false),
            jsondoc::Step::Done => (false, true),
        };
        if !(need_more || done || covered >= block) {
            continue;
        }
        let keep = split.keep_from(pos);
        if need_more && filled - keep > sh.opts.max_line.max(1) {
            // Records of a document cannot be skipped by a newline as lines can: stop the file.
            return Err(Error::input(
                &f.path,
                format!(
                    "a record of this JSON document is longer than --max-line ({}); raise --max-line if the file is genuine",
                    crate::source::human_bytes(sh.opts.max_line as u64)
                ),
            ));
        }
        if recs.is_empty() && keep == 0 && need_more {
            // One record longer than the buffer so far: grow it in place, no copy.
            let target = filled + block;
            fill_to(&mut stream, &f.path, &mut buf, &mut filled, target, &mut eof)?;
            translate_cr(&mut buf[..filled], eof, &mut cr_only, &mut translated);
            continue;
        }
        // Hand over the records found so far; the bytes still needed move to a new buffer.
        split.shift(&buf[..filled], keep);
        let carry = filled - keep;
        let mut next = sh.take_buf(carry + block);
        next[..carry].copy_from_slice(&buf[keep..filled]);
        if !recs.is_empty() {
            let kind = TextKind::JsonDoc(std::mem::take(&mut recs));
            if tx.send(Work::Text { file: idx, kind, first_line: 0, data: buf, start: 0, end: filled }).is_err() {
                return Ok(());
            }
        } else {
            let _ = sh.free_tx.send(buf);
        }
        buf = next;
        filled = carry;
        translated = if cr_only.is_some() { carry } else { 0 };
        pos -= keep;
        covered = 0;
        if done {
            break;
        }
        if need_more {
            let target = buf.len().max(filled + block);
            fill_to(&mut stream, &f.path, &mut buf, &mut filled, target, &mut eof)?;
            translate_cr(&mut buf[..filled], eof, &mut cr_only, &mut translated);
        }
    }
    let _ = sh.free_tx.send(buf);
    (meta.blake3, meta.hashed_bytes) = stream.finish(&f.path)?.unzip();
    Ok(())
}

/// Send one Parquet file's row groups; hash the file on the way when asked.
fn produce_parquet(sh: &Shared<'_>, idx: u32, f: &InputFile, tx: &Sender<Work>, meta: &mut FileMeta) -> Result<()> {
    let pq = Arc::new(parquet::open(f, &sh.opts.columns)?);
    meta.found = schema_found(pq.meta.schema(), &sh.opts.columns);
    for rg in 0..pq.row_offsets.len() {
        if sh.stopped() {
            break;
        }
        if tx.send(Work::RowGroup { file: idx, pq: pq.clone(), rg }).is_err() {
            return Ok(());
        }
    }
    if sh.opts.hash {
        // Not counted as progress: the workers count the row groups as they finish them.
        let mut s = TextStream::open(f, true, None, sh.opts.max_inflate)?;
        let mut buf = vec![0u8; 1 << 20];
        while s.read_some(&f.path, &mut buf)? > 0 {
            if sh.ctl.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
        }
        (meta.blake3, meta.hashed_bytes) = s.finish(&f.path)?.unzip();
    }
    // What the row groups' shares leave (header, footer; everything if the file grew since
    // `f.size` was taken), so a finished scan has read exactly `bytes_total`.
    let shares: u64 = pq.progress_bytes.iter().sum();
    sh.ctl.bytes_read.fetch_add(f.size.saturating_sub(shares), Ordering::Relaxed);
    Ok(())
}

/// Canonical columns a schema provides (a dotted name counts when its root column exists).
fn schema_found(schema: &arrow_schema::Schema, map: &ColumnMap) -> u16 {
    let mut found = 0u16;
    for (col, src) in map.sources() {
        let has = |p: &crate::columns::FieldPath| {
            p.flat().is_some_and(|f| schema.index_of(&f).is_ok())
                || (p.segs.len() > 1 && schema.index_of(&p.segs[0]).is_ok())
        };
        if src.paths().any(has) {
            found |= 1 << col as u16;
        }
    }
    found
}

fn mask_cols(mask: u16) -> Vec<Col> {
    Col::ALL.iter().copied().filter(|&c| mask & (1 << c as u16) != 0).collect()
}

/// Run producer + workers; returns the merged sink and the per-file worker counts.
fn run_scan<'a, S, F, P>(sh: &Shared<'a>, nfiles: usize, make_sink: &F, produce: P) -> Result<(S, Vec<FileAcc>)>
where
    S: RecordSink,
    F: Fn() -> S + Sync,
    P: FnOnce(&Sender<Work>) -> Result<()>,
{
    let threads = crate::threads::worker_threads(sh.opts.threads);
    // Two blocks queued per worker keeps them busy while the producer reads; more would only
    // cost memory.
    let (tx, rx) = bounded::<Work>(threads * 2);
    // An ordered sink's block numbers: taken with the block, under one lock, so the numbers
    // follow the channel's (the producer's) order.
    let next_seq = Mutex::new(0u64);
    let (outs, produced) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let next_seq = &next_seq;
                s.spawn(move || {
                    let mut sink = make_sink();
                    let mut w = Worker {
                        accs: Vec::new(),
                        json: JsonParser::new(&sh.keys),
                        csv: CsvState::default(),
                        rej: Vec::new(),
                    };
                    loop {
                        let work = if S::ORDERED {
                            let mut n = next_seq.lock().unwrap_or_else(|p| p.into_inner());
                            let Ok(work) = rx.recv() else { break };
                            sink.begin_block(*n);
                            *n += 1;
                            work
                        } else {
                            let Ok(work) = rx.recv() else { break };
                            work
                        };
                        if sh.stopped() {
                            if let Work::Text { data, .. } = work {
                                let _ = sh.free_tx.send(data);
                            }
                            if S::ORDERED {
                                // Hand the number on, so a sink waiting for it is released.
                                let _ = sink.end_block();
                            }
                            continue;
                        }
                        if let Err(e) = w.run(sh, work, &mut sink) {
                            sh.fail(e);
                            if S::ORDERED {
                                let _ = sink.end_block();
                            }
                        }
                    }
                    (sink, w.accs)
                })
            })
            .collect();
        drop(rx);
        let produced = produce(&tx);
        if produced.is_err() {
            sh.stop.store(true, Ordering::Relaxed);
        }
        drop(tx);
        let outs: Vec<_> =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
        (outs, produced)
    });
    // Drain the buffer pool: it holds up to a few blocks of memory.
    while sh.free_rx.try_recv().is_ok() {}
    if let Some(e) = sh.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    produced?;
    if sh.ctl.cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let mut accs: Vec<FileAcc> = (0..nfiles).map(|_| FileAcc::default()).collect();
    let mut merged: Option<S> = None;
    for (sink, waccs) in outs {
        for (i, a) in waccs.into_iter().enumerate() {
            accs[i].add(a);
        }
        match &mut merged {
            None => merged = Some(sink),
            Some(m) => m.merge(sink)?,
        }
    }
    let sink = match merged {
        Some(s) => s,
        None => make_sink(),
    };
    Ok((sink, accs))
}

fn shared<'a>(
    opts: &'a ScanOptions,
    ctl: &'a ScanControl,
    rejects: Option<&'a RejectsWriter>,
    names: Vec<String>,
    paths: Vec<&'a Path>,
) -> Shared<'a> {
    let (free_tx, free_rx) = unbounded();
    Shared {
        opts,
        ctl,
        rejects,
        names,
        paths,
        keys: JsonKeys::new(&opts.columns),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
        free_tx,
        free_rx,
    }
}

fn stats(base: FileStats, acc: FileAcc, header_found: u16) -> FileStats {
    let mut rejects = BTreeMap::new();
    for (reason, n) in acc.reasons {
        *rejects.entry(reason.to_string()).or_default() += n;
    }
    FileStats {
        records: acc.records,
        rejected: acc.rejected,
        rejects,
        blank_lines: acc.blank,
        skipped: acc.skips.iter().map(|(_, n)| n).sum(),
        skip_reasons: acc.skips.into_iter().collect(),
        columns_found: mask_cols(acc.found | header_found),
        ..base
    }
}

/// Scan log files into sinks made by `make_sink` (one per worker thread), merged at the end.
/// `Loc.file` of each record is its file's index in `files`.
pub fn scan_files<S: RecordSink, F: Fn() -> S + Sync>(
    files: &[InputFile],
    opts: &ScanOptions,
    ctl: &ScanControl,
    rejects: Option<&RejectsWriter>,
    make_sink: F,
) -> Result<ScanOutput<S>> {
    let names: Vec<String> = files.iter().map(|f| f.path.to_string_lossy().into_owned()).collect();
    let paths = files.iter().map(|f| f.path.as_path()).collect();
    ctl.bytes_total.store(files.iter().map(|f| f.size).sum(), Ordering::Relaxed);
    let sh = shared(opts, ctl, rejects, names, paths);
    let mut metas: Vec<FileMeta> = files.iter().map(|_| FileMeta::default()).collect();
    let (sink, accs) = run_scan(&sh, files.len(), &make_sink, |tx| {
        for (i, f) in files.iter().enumerate() {
            if sh.stopped() {
                break;
            }
            let idx = u32::try_from(i).map_err(|_| Error::Usage("too many input files".into()))?;
            match f.format {
                Format::Jsonl | Format::Csv => produce_text(&sh, idx, f, tx, &mut metas[i])?,
                Format::Parquet => produce_parquet(&sh, idx, f, tx, &mut metas[i])?,
                Format::Arrow => {
                    return Err(Error::Internal(format!(
                        "{}: Arrow input is scanned with scan_batches",
                        f.path.display()
                    )))
                }
            }
        }
        Ok(())
    })?;
    let files = files
        .iter()
        .zip(accs)
        .zip(metas)
        .enumerate()
        .map(|(i, ((f, acc), meta))| {
            let base = FileStats {
                path: sh.names[i].clone(),
                format: f.format,
                compression: f.compression,
                size_bytes: f.size,
                blake3: meta.blake3,
                hashed_bytes: meta.hashed_bytes,
                records: 0,
                rejected: 0,
                rejects: BTreeMap::new(),
                blank_lines: 0,
                skipped: 0,
                skip_reasons: BTreeMap::new(),
                columns_found: Vec::new(),
            };
            stats(base, acc, meta.found)
        })
        .collect();
    Ok(ScanOutput { sink, files })
}

/// Rows per unit of work when splitting Arrow batches across workers.
const BATCH_SLICE_ROWS: usize = 64 * 1024;

/// Scan Arrow record batches (fed from Python via the PyCapsule stream, or any Arrow
/// producer). `Loc.file` is 0 and `Loc.line` the 0-based row index over the whole stream.
pub fn scan_batches<S, F, I>(
    batches: I,
    source_name: &str,
    opts: &ScanOptions,
    ctl: &ScanControl,
    rejects: Option<&RejectsWriter>,
    make_sink: F,
) -> Result<ScanOutput<S>>
where
    S: RecordSink,
    F: Fn() -> S + Sync,
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send,
{
    let sh = shared(opts, ctl, rejects, vec![source_name.to_string()], vec![Path::new(source_name)]);
    let mut found = 0u16;
    let mut size = 0u64;
    let (sink, mut accs) = run_scan(&sh, 1, &make_sink, |tx| {
        let mut row = 0u64;
        for batch in batches {
            if sh.ctl.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            if sh.stopped() {
                break;
            }
            let batch = batch.map_err(|e| Error::input(source_name, format!("cannot read Arrow batch: {e}")))?;
            found |= schema_found(&batch.schema(), &opts.columns);
            let bytes = batch.get_array_memory_size() as u64;
            size += bytes;
            sh.ctl.bytes_read.fetch_add(bytes, Ordering::Relaxed);
            for (off, slice) in arrow::slices(&batch, BATCH_SLICE_ROWS) {
                if tx.send(Work::Batch { file: 0, batch: slice, first_row: row + off as u64 }).is_err() {
                    return Ok(());
                }
            }
            row += batch.num_rows() as u64;
        }
        Ok(())
    })?;
    let base = FileStats {
        path: source_name.to_string(),
        format: Format::Arrow,
        compression: Compression::None,
        size_bytes: size,
        blake3: None,
        hashed_bytes: None,
        records: 0,
        rejected: 0,
        rejects: BTreeMap::new(),
        blank_lines: 0,
        skipped: 0,
        skip_reasons: BTreeMap::new(),
        columns_found: Vec::new(),
    };
    Ok(ScanOutput { sink, files: vec![stats(base, accs.remove(0), found)] })
}

#[cfg(test)]
mod tests;
