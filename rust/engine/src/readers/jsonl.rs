//! JSON Lines: a hand-written scanner for flat-ish log objects, the hot path of the engine.
//!
//! A general JSON parser builds a value tree per line; we only need up to 13 fields, so the
//! scanner walks the object once, compares each key against the mapped source names (by
//! length, then bytes), parses only the values of wanted keys and skips everything else
//! (nested objects and arrays, strings with escapes) without allocating. Strings borrow from
//! the block; only strings with `\` escapes are decoded, into a per-worker scratch buffer.
//!
//! A dotted mapped name (`usage.prompt_tokens`) is matched as a flat key first and, failing
//! that, as a path into nested objects (OpenAI-style logs): the flat match has priority
//! whatever the key order, and among equal priorities the last key wins (duplicate keys).

use crate::columns::{Col, ColumnMap};
use crate::record::{Draft, RejectReason};

use std::sync::Arc;

use super::plan::{Plan, Val};
use super::structural::{self, Index, Kernel};
use super::value::{bool_from_text, float_from_text, int_from_text, ts_from_text, Bad};
use super::Emit;

/// Objects nested deeper than this are refused rather than risking the stack on hostile input.
const MAX_DEPTH: u32 = 128;

/// Top-level arrays that hold records rather than being a record's field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Container {
    /// `resourceSpans` of an OTLP `ExportTraceServiceRequest` (the Collector's file exporter
    /// writes one per line): one record per span.
    OtlpSpans,
    /// `data` of an API response (`{"data": [...], "total": ...}`): one record per element,
    /// when the object is not itself a record (it has neither a time nor a model).
    Data,
}

/// Where a wanted key leads: path slots to fill (with their priority), and/or a nested object
/// (or OTLP key/value list) to look into.
struct Entry {
    key: Box<[u8]>,
    /// (path index, priority): 2 = the path's own spelling, 1 = a plain dotted name matched
    /// through nested objects (the flat key wins whatever the key order).
    slots: Vec<(u16, u8)>,
    /// The canonical columns these slots feed (bit per `Col`), for `FileStats::columns_found`.
    found: u16,
    child: Option<Box<Node>>,
    /// A container of records when its value is an array at the top level (see [`Container`]).
    expand: Option<Container>,
}

/// The keys wanted at one object level, bucketed by length so most keys are rejected by a
/// single length test.
#[derive(Default)]
struct Node {
    by_len: Vec<Vec<Entry>>,
}

impl Node {
    fn entry_mut(&mut self, key: &[u8]) -> &mut Entry {
        if self.by_len.len() <= key.len() {
            self.by_len.resize_with(key.len() + 1, Vec::new);
        }
        let bucket = &mut self.by_len[key.len()];
        let i = match bucket.iter().position(|e| &*e.key == key) {
            Some(i) => i,
            None => {
                bucket.push(Entry { key: key.into(), slots: Vec::new(), found: 0, child: None, expand: None });
                bucket.len() - 1
            }
        };
        &mut bucket[i]
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.by_len.get(key.len())?.iter().find(|e| eq_same_len(&e.key, key))
    }
}

#[inline(always)]
fn word8(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

#[inline(always)]
fn word4(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

/// Equality of two equally long short slices with overlapping word loads: keys are compared
/// once per member of every line, and a libc `memcmp` call costs more than the compare.
#[inline(always)]
fn eq_same_len(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    debug_assert_eq!(n, b.len());
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word8(a, i) != word8(b, i) {
                return false;
            }
            i += 8;
        }
        word8(a, n - 8) == word8(b, n - 8)
    } else if n >= 4 {
        word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// The compiled column mapping for JSON: the plan (one slot per distinct path) and the trie
/// of wanted keys leading to the slots.
pub(crate) struct JsonKeys {
    /// Shared with the CSV and Arrow readers of the same scan.
    pub(crate) plan: Arc<Plan>,
    root: Node,
    /// No wanted key holds a quote, so the key-order hint (which compares raw bytes) can never
    /// read a quote as part of a key where the structural index sees a string end: the index
    /// may be used (see `structural`).
    pub(crate) index_ok: bool,
}

impl JsonKeys {
    pub(crate) fn new(map: &ColumnMap) -> Self {
        let plan = Arc::new(Plan::new(map));
        let mut root = Node::default();
        for (i, p) in plan.paths.iter().enumerate() {
            let i = i as u16;
            let found = plan.path_cols[i as usize];
            if p.plain && p.segs.len() > 1 {
                let e = root.entry_mut(p.segs.join(".").as_bytes());
                e.slots.push((i, 2));
                e.found |= found;
                insert_path(&mut root, &p.segs, i, 1, found);
            } else {
                insert_path(&mut root, &p.segs, i, 2, found);
            }
        }
        root.entry_mut(b"resourceSpans").expand = Some(Container::OtlpSpans);
        root.entry_mut(b"data").expand = Some(Container::Data);
        let index_ok = !has_quote(&root);
        JsonKeys { plan, root, index_ok }
    }
}

fn has_quote(node: &Node) -> bool {
    node.by_len.iter().flatten().any(|e| e.key.contains(&b'"') || e.child.as_deref().is_some_and(has_quote))
}

fn insert_path(node: &mut Node, segs: &[String], slot: u16, prio: u8, found: u16) {
    let e = node.entry_mut(segs[0].as_bytes());
    if segs.len() == 1 {
        e.slots.push((slot, prio));
        e.found |= found;
    } else {
        insert_path(e.child.get_or_insert_with(Default::default), &segs[1..], slot, prio, found);
    }
}

/// A wanted value as found, resolved to a typed value once the whole object has been read (so
/// a later duplicate key can still replace it). Ranges index the record's bytes (`Str`, `Num`)
/// or the scratch buffer (`Esc`).
#[derive(Clone, Copy, Default, PartialEq, Debug)]
enum Raw {
    #[default]
    Absent,
    Str(u32, u32),
    Esc(u32, u32),
    Num(u32, u32),
    True,
    False,
    Composite,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    raw: Raw,
    /// See `Entry::slots`; 0 = not seen.
    prio: u8,
}

/// Per-worker parsing state, reused across records so parsing allocates nothing per record.
pub(crate) struct JsonParser<'k> {
    keys: &'k JsonKeys,
    slots: Vec<Slot>,
    scratch: Vec<u8>,
    keybuf: Vec<u8>,
    /// Canonical columns whose key appeared (bit per `Col`), for `FileStats::columns_found`.
    pub(crate) found: u16,
    /// For each member position of the top-level object, the wanted key found there on the
    /// previous line (None: unknown key or not seen).
    hints: Vec<Option<&'k Entry>>,
    /// A container array met at the top level, and where it starts.
    container: Option<(Container, usize)>,
    /// How lines are indexed (`Kernel::Off`: not at all, the byte-at-a-time scanner).
    kernel: Kernel,
    /// The structural index of the current line.
    index: Index,
    /// The current value is read with `index` (a line of JSON Lines whose index is consistent).
    indexed: bool,
}

/// Member positions remembered for the key-order hint.
const MAX_HINTS: usize = 64;

type Fail = ();

/// Skip whitespace. Compact logs have none between tokens, so the first test (any byte above
/// space is not whitespace) nearly always ends it.
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    if i < b.len() && b[i] > b' ' {
        return i;
    }
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Index of the closing quote of a string whose body starts at `i`, and whether it has escapes.
#[inline]
fn scan_string(b: &[u8], mut i: usize) -> Result<(usize, bool), Fail> {
    let mut esc = false;
    // Keys and most values are short: test 8 bytes at a time for `"` or `\` (SWAR) before
    // paying for a SIMD search set-up. The lowest flagged byte is always a true match.
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let limit = b.len().min(i + 64);
    while i + 8 <= limit {
        let w = word8(b, i);
        let q = w ^ (LO * b'"' as u64);
        let s = w ^ (LO * b'\\' as u64);
        let m = (q.wrapping_sub(LO) & !q | s.wrapping_sub(LO) & !s) & HI;
        if m == 0 {
            i += 8;
            continue;
        }
        let j = i + (m.trailing_zeros() / 8) as usize;
        if b[j] == b'"' {
            return Ok((j, esc));
        }
        esc = true;
        i = j + 2;
    }
    loop {
        match memchr::memchr2(b'"', b'\\', b.get(i..).ok_or(())?) {
            Some(off) => {
                let j = i + off;
                if b[j] == b'"' {
                    return Ok((j, esc));
                }
                esc = true;
                i = j + 2;
            }
            None => return Err(()),
        }
    }
}

#[inline]
fn literal(b: &[u8], i: usize, lit: &[u8]) -> Result<usize, Fail> {
    if b.get(i..i + lit.len()) == Some(lit) {
        Ok(i + lit.len())
    } else {
        Err(())
    }
}

/// End of a number token (validated loosely; a wanted value is parsed strictly later).
#[inline]
fn number_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E') {
        i += 1;
    }
    i
}

/// Skip one value starting at `i` (not whitespace); returns the index after it.
fn skip_value(b: &[u8], i: usize) -> Result<usize, Fail> {
    match *b.get(i).ok_or(())? {
        b'"' => Ok(scan_string(b, i + 1)?.0 + 1),
        b'{' | b'[' => skip_nested(b, i),
        b't' => literal(b, i, b"true"),
        b'f' => literal(b, i, b"false"),
        b'n' => literal(b, i, b"null"),
        // Python's json module writes these for non-finite floats.
        b'N' => literal(b, i, b"NaN"),
        b'I' => literal(b, i, b"Infinity"),
        b'-' if b.get(i + 1) == Some(&b'I') => literal(b, i + 1, b"Infinity"),
        b'-' | b'0'..=b'9' => Ok(number_end(b, i + 1)),
        _ => Err(()),
    }
}

/// Skip a nested object or array by bracket depth, stepping over strings (which may hold
/// brackets and escaped quotes).
fn skip_nested(b: &[u8], mut i: usize) -> Result<usize, Fail> {
    let mut depth = 0u32;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = scan_string(b, i + 1)?.0;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(())
}

fn hex4(b: &[u8], i: usize) -> Result<u32, Fail> {
    let s = b.get(i..i + 4).ok_or(())?;
    let mut v = 0u32;
    for &c in s {
        v = v * 16 + (c as char).to_digit(16).ok_or(())?;
    }
    Ok(v)
}

/// Decode the string body `b[start..end]` (which has escapes) onto `out`.
fn unescape(b: &[u8], start: usize, end: usize, out: &mut Vec<u8>) -> Result<(), Fail> {
    let mut i = start;
    while i < end {
        let Some(off) = memchr::memchr(b'\\', &b[i..end]) else {
            out.extend_from_slice(&b[i..end]);
            break;
        };
        out.extend_from_slice(&b[i..i + off]);
        i += off + 1;
        let c = *b.get(i).ok_or(())?;
        i += 1;
        match c {
            b'"' | b'\\' | b'/' => out.push(c),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut cp = hex4(b, i)?;
                i += 4;
                if (0xD800..0xDC00).contains(&cp) && b.get(i..i + 2) == Some(b"\\u") {
                    let lo = hex4(b, i + 2)?;
                    if (0xDC00..0xE000).contains(&lo) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut tmp = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
            }
            _ => return Err(()),
        }
    }
    Ok(())
}

/// The members of the object whose `{` is at `i`: (key, value start, value end). Keys with
/// escapes are compared escaped (the OTLP structure keys never have any).
/// An object member: key bytes (as written), value start, value end.
type Member<'b> = (&'b [u8], usize, usize);

fn members(b: &[u8], i: usize) -> Result<Vec<Member<'_>>, Fail> {
    let mut out = Vec::new();
    if b.get(i) != Some(&b'{') {
        return Err(());
    }
    let mut i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Ok(out);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(());
        }
        let (kend, _) = scan_string(b, i + 1)?;
        let key = &b[i + 1..kend];
        i = ws(b, kend + 1);
        if b.get(i) != Some(&b':') {
            return Err(());
        }
        let vs = ws(b, i + 1);
        let ve = skip_value(b, vs)?;
        out.push((key, vs, ve));
        i = ws(b, ve);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return Ok(out),
            _ => return Err(()),
        }
    }
}

/// The elements of the array whose `[` is at `i`, as (start, end).
fn elements(b: &[u8], i: usize) -> Result<Vec<(usize, usize)>, Fail> {
    let mut out = Vec::new();
    if b.get(i) != Some(&b'[') {
        return Err(());
    }
    let mut i = ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Ok(out);
    }
    loop {
        let end = skip_value(b, i)?;
        out.push((i, end));
        i = ws(b, end);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b']') => return Ok(out),
            _ => return Err(()),
        }
    }
}

fn member(ms: &[Member<'_>], key: &[u8]) -> Option<(usize, usize)> {
    ms.iter().rev().find(|(k, _, _)| *k == key).map(|&(_, s, e)| (s, e))
}

const INVALID: RejectReason = RejectReason::Unparseable("invalid JSON");

impl<'k> JsonParser<'k> {
    pub(crate) fn new(keys: &'k JsonKeys) -> Self {
        JsonParser {
            keys,
            slots: vec![Slot::default(); keys.plan.nslots()],
            scratch: Vec::new(),
            keybuf: Vec::new(),
            found: 0,
            hints: Vec::new(),
            container: None,
            kernel: if keys.index_ok { structural::kernel() } else { Kernel::Off },
            index: Index::default(),
            indexed: false,
        }
    }

    /// A parser that indexes lines with `kernel` whatever the process default (the
    /// differential tests compare kernels on the same input).
    pub(crate) fn with_kernel(keys: &'k JsonKeys, kernel: Kernel) -> Self {
        let mut p = JsonParser::new(keys);
        p.kernel = if keys.index_ok { kernel } else { Kernel::Off };
        p
    }

    /// Parse one line of JSON Lines: as [`Self::parse_value`], reading strings and skipping
    /// nested values through the line's structural index when there is one.
    pub(crate) fn parse_line<E: Emit>(&mut self, b: &[u8], line: u64, emit: &mut E) {
        if self.kernel != Kernel::Off && b.len() <= structural::MAX_INDEXED_LINE {
            self.index.build(b, self.kernel);
            self.indexed = self.index.consistent;
        }
        self.value(b, line, emit);
        self.indexed = false;
    }

    /// The closing quote of the string whose body starts at `i`, and whether it has escapes.
    #[inline(always)]
    fn string_end(&self, b: &[u8], i: usize) -> Result<(usize, bool), Fail> {
        match self.indexed {
            true => self.index.string_end(i).ok_or(()),
            false => scan_string(b, i),
        }
    }

    /// Skip one value starting at `i` (not whitespace); returns the index after it.
    #[inline(always)]
    fn skip(&self, b: &[u8], i: usize) -> Result<usize, Fail> {
        if self.indexed {
            match b.get(i) {
                Some(b'"') => return Ok(self.index.string_end(i + 1).ok_or(())?.0 + 1),
                Some(b'{' | b'[') => return self.index.nested_end(i).ok_or(()),
                _ => {}
            }
        }
        skip_value(b, i)
    }

    /// Skip the object or array whose bracket is at `i`.
    #[inline]
    fn skip_nested(&self, b: &[u8], i: usize) -> Result<usize, Fail> {
        match self.indexed {
            true => self.index.nested_end(i).ok_or(()),
            false => skip_nested(b, i),
        }
    }

    #[inline]
    fn reset(&mut self) {
        self.slots.fill(Slot::default());
        self.scratch.clear();
    }

    /// Parse one JSON value (a line, or a record of a JSON document) and hand its record(s) to
    /// `emit`: an object is one record, an OTLP export request one record per span.
    pub(crate) fn parse_value<E: Emit>(&mut self, b: &[u8], line: u64, emit: &mut E) {
        self.indexed = false;
        self.value(b, line, emit);
    }

    fn value<E: Emit>(&mut self, b: &[u8], line: u64, emit: &mut E) {
        self.reset();
        self.container = None;
        let keys = self.keys;
        let i = ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return emit.record(line, Some(b), Err(INVALID));
        }
        match self.object(b, i + 1, &keys.root, 0) {
            Ok(end) if ws(b, end) == b.len() => {}
            _ => return emit.record(line, Some(b), Err(INVALID)),
        }
        match self.container {
            Some((Container::OtlpSpans, s)) => self.spans(b, s, line, emit),
            Some((Container::Data, s)) if !self.has_time_or_model(b) => self.data_elements(b, s, line, emit),
            _ => self.finish_record(b, b, line, emit),
        }
    }

    fn has_time_or_model(&self, b: &[u8]) -> bool {
        match self.draft(b) {
            Ok(d) => d.ts_us.is_some() || d.model.is_some(),
            Err(r) => matches!(r, RejectReason::BadValue(Col::Ts | Col::Model)),
        }
    }

    /// One record per element of a top-level `data` array.
    fn data_elements<E: Emit>(&mut self, b: &[u8], at: usize, line: u64, emit: &mut E) {
        let keys = self.keys;
        let Ok(items) = elements(b, at) else { return emit.record(line, Some(b), Err(INVALID)) };
        for (s, e) in items {
            self.reset();
            match b[s] == b'{' && self.object(b, s + 1, &keys.root, 0).is_ok() {
                true => self.finish_record(b, &b[s..e], line, emit),
                false => emit.record(line, Some(&b[s..e]), Err(INVALID)),
            }
        }
    }

    fn finish_record<E: Emit>(&mut self, b: &[u8], raw: &[u8], line: u64, emit: &mut E) {
        if let Some(reason) = self.skip_reason(b) {
            return emit.skip(reason);
        }
        emit.record(line, Some(raw), self.draft(b));
    }

    /// One record per span of an OTLP `ExportTraceServiceRequest`; each span sees its
    /// resource's `resource` and its scope's `scope` as if they were its own members.
    fn spans<E: Emit>(&mut self, b: &[u8], at: usize, line: u64, emit: &mut E) {
        let keys = self.keys;
        let bad_otlp = RejectReason::Unparseable("invalid OTLP JSON: resourceSpans[].scopeSpans[].spans[] expected");
        let Ok(resources) = elements(b, at) else { return emit.record(line, Some(b), Err(bad_otlp)) };
        for (rs, _) in resources {
            let Ok(rm) = members(b, rs) else { return emit.record(line, Some(&b[rs..]), Err(bad_otlp)) };
            let resource = member(&rm, b"resource");
            let scopes = match member(&rm, b"scopeSpans") {
                Some((s, _)) if b[s] == b'[' => elements(b, s),
                _ => Ok(Vec::new()),
            };
            let Ok(scopes) = scopes else { return emit.record(line, Some(&b[rs..]), Err(bad_otlp)) };
            for (ss, _) in scopes {
                let Ok(sm) = members(b, ss) else { return emit.record(line, Some(&b[ss..]), Err(bad_otlp)) };
                let scope = member(&sm, b"scope");
                let spans = match member(&sm, b"spans") {
                    Some((s, _)) if b[s] == b'[' => elements(b, s),
                    _ => Ok(Vec::new()),
                };
                let Ok(spans) = spans else { return emit.record(line, Some(&b[ss..]), Err(bad_otlp)) };
                for (s, e) in spans {
                    self.reset();
                    let mut ok = b[s] == b'{';
                    for (ctx, key) in [(resource, &b"resource"[..]), (scope, &b"scope"[..])] {
                        if let (Some((vs, _)), Some(entry)) = (ctx, keys.root.get(key)) {
                            ok &= self.wanted(b, vs, entry, 1).is_ok();
                        }
                    }
                    ok = ok && self.object(b, s + 1, &keys.root, 0).is_ok();
                    if ok {
                        self.finish_record(b, &b[s..e], line, emit);
                    } else {
                        emit.record(line, Some(&b[s..e]), Err(INVALID));
                    }
                }
            }
        }
    }

    /// Read the members of an object whose `{` is just before `i`; returns the index after `}`.
    fn object(&mut self, b: &[u8], i: usize, node: &'k Node, depth: u32) -> Result<usize, Fail> {
        if depth > MAX_DEPTH {
            return Err(());
        }
        let mut i = ws(b, i);
        if b.get(i) == Some(&b'}') {
            return Ok(i + 1);
        }
        let mut member = 0usize;
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(());
            }
            // Lines of one log share their key order: try the key that sat at this position
            // last time before scanning and looking up the key.
            let hinted = match self.hints.get(member) {
                Some(Some(e)) if depth == 0 => {
                    let (s, n) = (i + 1, e.key.len());
                    (b.get(s + n) == Some(&b'"') && eq_same_len(&b[s..s + n], &e.key)).then_some((*e, s + n))
                }
                _ => None,
            };
            let (entry, kend) = match hinted {
                Some((e, kend)) => (Some(e), kend),
                None => {
                    let (kend, kesc) = self.string_end(b, i + 1)?;
                    let entry = if kesc {
                        self.keybuf.clear();
                        let mut kb = std::mem::take(&mut self.keybuf);
                        unescape(b, i + 1, kend, &mut kb)?;
                        let e = node.get(&kb);
                        self.keybuf = kb;
                        e
                    } else {
                        node.get(&b[i + 1..kend])
                    };
                    if depth == 0 && member < MAX_HINTS {
                        if self.hints.len() <= member {
                            self.hints.resize(member + 1, None);
                        }
                        // Keys with a backslash never take the hint path (see `JsonKeys::new`).
                        self.hints[member] = entry.filter(|e| !e.key.contains(&b'\\'));
                    }
                    (entry, kend)
                }
            };
            member += 1;
            i = ws(b, kend + 1);
            if b.get(i) != Some(&b':') {
                return Err(());
            }
            i = ws(b, i + 1);
            i = match entry {
                None => self.skip(b, i)?,
                Some(e) => self.wanted(b, i, e, depth)?,
            };
            i = ws(b, i);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b'}') => return Ok(i + 1),
                _ => return Err(()),
            }
        }
    }

    /// Read the value of a wanted key.
    #[inline(always)]
    fn wanted(&mut self, b: &[u8], i: usize, e: &'k Entry, depth: u32) -> Result<usize, Fail> {
        let c = *b.get(i).ok_or(())?;
        let (raw, next) = match c {
            b'"' => {
                let (end, esc) = self.string_end(b, i + 1)?;
                if esc {
                    let s = self.scratch.len();
                    unescape(b, i + 1, end, &mut self.scratch)?;
                    (Raw::Esc(s as u32, self.scratch.len() as u32), end + 1)
                } else {
                    (Raw::Str(i as u32 + 1, end as u32), end + 1)
                }
            }
            b'n' => (Raw::Absent, literal(b, i, b"null")?),
            b't' => (Raw::True, literal(b, i, b"true")?),
            b'f' => (Raw::False, literal(b, i, b"false")?),
            b'{' | b'[' => (Raw::Composite, self.composite(b, i, e, depth)?),
            _ => {
                let end = skip_value(b, i)?;
                (Raw::Num(i as u32, end as u32), end)
            }
        };
        self.set(e, raw);
        Ok(next)
    }

    /// An object or array under a wanted key: a nested object to look into, an OTLP key/value
    /// list, a container of records, or a value to step over. Kept out of `wanted`, which
    /// runs for every wanted key of every line, so that it stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn composite(&mut self, b: &[u8], i: usize, e: &'k Entry, depth: u32) -> Result<usize, Fail> {
        match (&e.child, b[i]) {
            (_, b'[') if e.expand.is_some() && depth == 0 => {
                let end = self.skip_nested(b, i)?;
                if self.container.is_none() {
                    self.container = e.expand.map(|c| (c, i));
                }
                Ok(end)
            }
            (Some(child), b'{') => self.object(b, i + 1, child, depth + 1),
            (Some(child), _) => self.key_values(b, i, child, depth + 1),
            (None, _) => self.skip_nested(b, i),
        }
    }

    /// A value with no children to descend into (an OTLP `AnyValue`'s payload).
    fn scalar(&mut self, b: &[u8], i: usize) -> Result<Raw, Fail> {
        Ok(match *b.get(i).ok_or(())? {
            b'"' => {
                let (end, esc) = scan_string(b, i + 1)?;
                if esc {
                    let s = self.scratch.len();
                    unescape(b, i + 1, end, &mut self.scratch)?;
                    Raw::Esc(s as u32, self.scratch.len() as u32)
                } else {
                    Raw::Str(i as u32 + 1, end as u32)
                }
            }
            b'n' => Raw::Absent,
            b't' => Raw::True,
            b'f' => Raw::False,
            b'{' | b'[' => Raw::Composite,
            _ => Raw::Num(i as u32, skip_value(b, i)? as u32),
        })
    }

    #[inline]
    fn set(&mut self, e: &Entry, raw: Raw) {
        for &(p, prio) in &e.slots {
            let slot = &mut self.slots[p as usize];
            if prio >= slot.prio {
                *slot = Slot { raw, prio };
            }
        }
        self.found |= e.found;
    }

    /// An array under a key with wanted children: an OTLP key/value list
    /// (`[{"key": "gen_ai.request.model", "value": {"stringValue": "..."}}]`), whose element
    /// with a wanted `key` gives its (unwrapped) `value`. Other arrays are stepped over.
    fn key_values(&mut self, b: &[u8], i: usize, node: &'k Node, depth: u32) -> Result<usize, Fail> {
        if depth > MAX_DEPTH {
            return Err(());
        }
        let mut i = ws(b, i + 1);
        if b.get(i) == Some(&b']') {
            return Ok(i + 1);
        }
        loop {
            let end = skip_value(b, i)?;
            if b[i] == b'{' {
                let ms = members(b, i)?;
                if let (Some((ks, ke)), Some((vs, _))) = (member(&ms, b"key"), member(&ms, b"value")) {
                    if b[ks] == b'"' {
                        let (kend, kesc) = scan_string(b, ks + 1)?;
                        debug_assert_eq!(kend + 1, ke);
                        let entry = if kesc {
                            self.keybuf.clear();
                            let mut kb = std::mem::take(&mut self.keybuf);
                            unescape(b, ks + 1, kend, &mut kb)?;
                            let e = node.get(&kb);
                            self.keybuf = kb;
                            e
                        } else {
                            node.get(&b[ks + 1..kend])
                        };
                        if let Some(e) = entry {
                            self.any_value(b, vs, e, depth)?;
                        }
                    }
                }
            }
            i = ws(b, end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b']') => return Ok(i + 1),
                _ => return Err(()),
            }
        }
    }

    /// An OTLP `AnyValue` (`{"stringValue": ..}`, `{"intValue": "42"}`, `{"doubleValue": ..}`,
    /// `{"boolValue": ..}`; arrays and maps are composite), or a plain JSON value.
    fn any_value(&mut self, b: &[u8], i: usize, e: &'k Entry, depth: u32) -> Result<(), Fail> {
        if b[i] != b'{' {
            return self.wanted(b, i, e, depth).map(|_| ());
        }
        let ms = members(b, i)?;
        let typed = ms
            .iter()
            .rev()
            .find(|(k, _, _)| matches!(*k, b"stringValue" | b"intValue" | b"doubleValue" | b"boolValue"));
        match typed {
            Some(&(_, vs, _)) => {
                let raw = self.scalar(b, vs)?;
                self.set(e, raw);
                Ok(())
            }
            None if ms.is_empty() => {
                self.set(e, Raw::Absent);
                Ok(())
            }
            None => {
                self.set(e, Raw::Composite);
                Ok(())
            }
        }
    }

    #[inline(always)]
    fn raw(&self, p: u16) -> Raw {
        self.slots[p as usize].raw
    }

    /// A slot's value, borrowing from the record `b` or the scratch.
    #[inline]
    fn val<'a>(&'a self, b: &'a [u8], p: u16) -> Val<'a> {
        let text = |text: &'a [u8], number: bool| Val::Text { text, number, utf8: false };
        match self.raw(p) {
            Raw::Absent => Val::Absent,
            Raw::Str(s, e) => text(&b[s as usize..e as usize], false),
            Raw::Esc(s, e) => text(&self.scratch[s as usize..e as usize], false),
            Raw::Num(s, e) => text(&b[s as usize..e as usize], true),
            Raw::True => Val::Bool(true),
            Raw::False => Val::Bool(false),
            Raw::Composite => Val::Composite,
        }
    }

    /// The reason to pass over the current object, when a keep rule says so.
    fn skip_reason(&self, b: &[u8]) -> Option<&'k str> {
        self.keys.plan.skip_reason(|p| self.val(b, p))
    }

    fn draft<'a>(&'a self, b: &'a [u8]) -> Result<Draft<'a>, RejectReason> {
        let Some(simple) = self.keys.plan.simple() else { return self.keys.plan.draft(|p| self.val(b, p)) };
        // One plain path per column (the canonical layout, the hot path): each column straight
        // from its slot, without the alternatives machinery.
        let mut d = Draft::default();
        for (col, &(p, scale)) in Col::ALL.iter().zip(simple) {
            let raw = self.raw(p);
            let (text, number) = match raw {
                Raw::Absent => continue,
                Raw::Str(s, e) => (&b[s as usize..e as usize], false),
                Raw::Esc(s, e) => (&self.scratch[s as usize..e as usize], false),
                Raw::Num(s, e) => (&b[s as usize..e as usize], true),
                Raw::True | Raw::False if *col == Col::CacheHit => {
                    d.cache_hit = Some(raw == Raw::True);
                    continue;
                }
                Raw::True | Raw::False | Raw::Composite => return Err(RejectReason::BadValue(*col)),
            };
            set_text(&mut d, *col, text, number, false, scale)?;
        }
        Ok(d)
    }
}

/// Put one column's text into the draft, typed by the column. `number` says the text is a
/// JSON number token rather than a string (only matters for timestamps); `utf8` that the text
/// is known to be valid UTF-8.
#[inline]
pub(crate) fn set_text<'a>(
    d: &mut Draft<'a>,
    col: Col,
    text: &'a [u8],
    number: bool,
    utf8: bool,
    scale: f64,
) -> Result<(), RejectReason> {
    let bad = |b: Bad| b.reason(col);
    match col {
        Col::Ts => d.ts_us = ts_from_text(text, number).map_err(bad)?,
        Col::Gpus => d.gpus = int_from_text(text, scale).map_err(bad)?,
        Col::InputTokens => d.input_tokens = int_from_text(text, scale).map_err(bad)?,
        Col::OutputTokens => d.output_tokens = int_from_text(text, scale).map_err(bad)?,
        Col::DurationS => d.duration_s = float_from_text(text, scale).map_err(bad)?,
        Col::EnergyJ => d.energy_j = float_from_text(text, scale).map_err(bad)?,
        Col::Weight => d.weight = float_from_text(text, scale).map_err(bad)?,
        Col::CacheHit => d.cache_hit = bool_from_text(text).map_err(bad)?,
        Col::Model | Col::Site | Col::Zone | Col::Hardware | Col::RequestId | Col::Status | Col::Node => {
            let s = if utf8 || text.is_ascii() {
                // SAFETY: ASCII is valid UTF-8, and the caller vouches for `utf8` (Arrow strings).
                unsafe { std::str::from_utf8_unchecked(text) }
            } else {
                std::str::from_utf8(text).map_err(|_| RejectReason::BadValue(col))?
            };
            let s = Some(s);
            match col {
                Col::Model => d.model = s,
                Col::Site => d.site = s,
                Col::Zone => d.zone = s,
                Col::Hardware => d.hardware = s,
                Col::RequestId => d.request_id = s,
                Col::Node => d.node = s,
                _ => d.status = s,
            }
        }
    }
    Ok(())
}
