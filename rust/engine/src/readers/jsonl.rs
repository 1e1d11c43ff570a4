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

use super::value::{bool_from_text, float_from_text, int_from_text, ts_from_text, Bad};

/// Objects nested deeper than this are refused rather than risking the stack on hostile input.
const MAX_DEPTH: u32 = 128;

/// Where a wanted key leads: columns to fill, and/or a nested object to look into.
struct Entry {
    key: Box<[u8]>,
    cols: Vec<Col>,
    child: Option<Box<Node>>,
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
                bucket.push(Entry { key: key.into(), cols: Vec::new(), child: None });
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

/// The compiled column mapping for JSON: which keys to read and each column's unit scale.
pub(crate) struct JsonKeys {
    root: Node,
    scales: [f64; Col::COUNT],
}

impl JsonKeys {
    pub(crate) fn new(map: &ColumnMap) -> Self {
        let mut root = Node::default();
        let mut scales = [1.0; Col::COUNT];
        for (col, src) in map.sources() {
            scales[col as usize] = src.scale;
            root.entry_mut(src.name.as_bytes()).cols.push(col);
            if src.name.contains('.') {
                let parts: Vec<&str> = src.name.split('.').collect();
                insert_path(&mut root, &parts, col);
            }
        }
        JsonKeys { root, scales }
    }
}

fn insert_path(node: &mut Node, parts: &[&str], col: Col) {
    let e = node.entry_mut(parts[0].as_bytes());
    if parts.len() == 1 {
        e.cols.push(col);
    } else {
        insert_path(e.child.get_or_insert_with(Default::default), &parts[1..], col);
    }
}

/// A wanted value as found on the line, resolved to a typed value once the whole object has
/// been read (so a later duplicate key can still replace it). Ranges index the line
/// (`Str`, `Num`) or the scratch buffer (`Esc`).
#[derive(Clone, Copy, Default, PartialEq, Debug)]
enum Raw {
    #[default]
    Absent,
    Str(u32, u32),
    Esc(u32, u32),
    Num(u32, u32),
    Bool,
    Composite,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    raw: Raw,
    /// 2 = flat key, 1 = dotted path into nested objects, 0 = not seen.
    prio: u8,
}

/// Per-worker parsing state, reused across lines so parsing allocates nothing per record.
pub(crate) struct JsonParser<'k> {
    keys: &'k JsonKeys,
    slots: [Slot; Col::COUNT],
    scratch: Vec<u8>,
    keybuf: Vec<u8>,
    /// Canonical columns whose key appeared (bit per `Col`), for `FileStats::columns_found`.
    pub(crate) found: u16,
    /// For each member position of the top-level object, the wanted key found there on the
    /// previous line (None: unknown key or not seen).
    hints: Vec<Option<&'k Entry>>,
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

impl<'k> JsonParser<'k> {
    pub(crate) fn new(keys: &'k JsonKeys) -> Self {
        JsonParser {
            keys,
            slots: Default::default(),
            scratch: Vec::new(),
            keybuf: Vec::new(),
            found: 0,
            hints: Vec::new(),
        }
    }

    /// Parse one line (no trailing newline) into a draft. The draft borrows from `line` and
    /// from this parser's scratch, hence the `&'a mut self`.
    pub(crate) fn parse<'a>(&'a mut self, line: &'a [u8]) -> Result<Draft<'a>, RejectReason> {
        self.slots = Default::default();
        self.scratch.clear();
        let keys = self.keys;
        let i = ws(line, 0);
        if line.get(i) != Some(&b'{') {
            return Err(RejectReason::Unparseable("invalid JSON"));
        }
        let end = self.object(line, i + 1, &keys.root, 2, 0).map_err(|_| RejectReason::Unparseable("invalid JSON"))?;
        if ws(line, end) != line.len() {
            return Err(RejectReason::Unparseable("invalid JSON"));
        }
        self.draft(line)
    }

    /// Read the members of an object whose `{` is just before `i`; returns the index after `}`.
    fn object(&mut self, b: &[u8], i: usize, node: &'k Node, prio: u8, depth: u32) -> Result<usize, Fail> {
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
                    let (kend, kesc) = scan_string(b, i + 1)?;
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
                None => skip_value(b, i)?,
                Some(e) => self.wanted(b, i, e, prio, depth)?,
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
    #[inline]
    fn wanted(&mut self, b: &[u8], i: usize, e: &'k Entry, prio: u8, depth: u32) -> Result<usize, Fail> {
        let c = *b.get(i).ok_or(())?;
        let (raw, next) = match c {
            b'"' => {
                let (end, esc) = scan_string(b, i + 1)?;
                if esc {
                    let s = self.scratch.len();
                    unescape(b, i + 1, end, &mut self.scratch)?;
                    (Raw::Esc(s as u32, self.scratch.len() as u32), end + 1)
                } else {
                    (Raw::Str(i as u32 + 1, end as u32), end + 1)
                }
            }
            b'n' => (Raw::Absent, literal(b, i, b"null")?),
            b't' | b'f' => (Raw::Bool, skip_value(b, i)?),
            b'{' => match &e.child {
                Some(child) => (Raw::Composite, self.object(b, i + 1, child, 1, depth + 1)?),
                None => (Raw::Composite, skip_nested(b, i)?),
            },
            b'[' => (Raw::Composite, skip_nested(b, i)?),
            _ => {
                let end = skip_value(b, i)?;
                (Raw::Num(i as u32, end as u32), end)
            }
        };
        for &col in &e.cols {
            let slot = &mut self.slots[col as usize];
            if prio >= slot.prio {
                *slot = Slot { raw, prio };
            }
            self.found |= 1 << col as u16;
        }
        Ok(next)
    }

    fn draft<'a>(&'a self, line: &'a [u8]) -> Result<Draft<'a>, RejectReason> {
        let mut d = Draft::default();
        for col in Col::ALL {
            let raw = self.slots[col as usize].raw;
            let (text, number, utf8) = match raw {
                Raw::Absent => continue,
                Raw::Str(s, e) => (&line[s as usize..e as usize], false, false),
                Raw::Esc(s, e) => (&self.scratch[s as usize..e as usize], false, false),
                Raw::Num(s, e) => (&line[s as usize..e as usize], true, false),
                Raw::Bool | Raw::Composite => return Err(RejectReason::BadValue(col)),
            };
            set_text(&mut d, col, text, number, utf8, self.keys.scales[col as usize])?;
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
        Col::Model | Col::Site | Col::Zone | Col::Hardware | Col::RequestId | Col::Status => {
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
                _ => d.status = s,
            }
        }
    }
    Ok(())
}
