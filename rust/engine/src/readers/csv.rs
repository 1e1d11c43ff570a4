//! CSV (RFC 4180): header row required, `"` quoting with `""` for a quote, commas and newlines
//! allowed inside quotes, empty field = null.
//!
//! Blocks are cut only at the end of a record as the parser reads it (see [`cut_point`]), so a
//! quoted newline never splits a record between workers.

use crate::columns::ColumnMap;
use crate::record::RejectReason;

use super::plan::{Plan, Val};
use super::value::trim;
use super::Emit;

/// Header fields are looked up once per file; each field feeds zero or more plan slots (a
/// header matches a plain source path spelled the same).
#[derive(Debug)]
pub(crate) struct CsvHeader {
    pub(crate) nfields: usize,
    pub(crate) field_slots: Vec<Vec<u16>>,
    /// Canonical columns present in the header (bit per `Col`).
    pub(crate) found: u16,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    start: usize,
    end: usize,
    /// Quoted with `""` inside: needs decoding.
    doubled: bool,
    quoted: bool,
}

#[derive(PartialEq, Debug)]
enum Status {
    Ok,
    Unterminated,
    BadQuote,
}

/// One record starting at `i`: its fields, the index after its newline and how many newlines
/// it spans (for line numbers).
fn next_record(b: &[u8], mut i: usize, fields: &mut Vec<Field>) -> (usize, u64, Status) {
    fields.clear();
    let mut newlines = 0u64;
    let mut status = Status::Ok;
    loop {
        let (field, after) = if b.get(i) == Some(&b'"') {
            let mut j = i + 1;
            let mut doubled = false;
            let close = loop {
                match memchr::memchr(b'"', &b[j..]) {
                    Some(off) if b.get(j + off + 1) == Some(&b'"') => {
                        doubled = true;
                        j += off + 2;
                    }
                    Some(off) => break Some(j + off),
                    None => break None,
                }
            };
            let Some(close) = close else {
                newlines += bytecount(&b[i..]);
                return (b.len(), newlines, Status::Unterminated);
            };
            newlines += bytecount(&b[i + 1..close]);
            let mut after = close + 1;
            if !matches!(b.get(after), None | Some(b',' | b'\n' | b'\r')) {
                // Text after a closing quote (`"a"b`): not RFC 4180; skip to the delimiter.
                status = Status::BadQuote;
                after = memchr::memchr2(b',', b'\n', &b[after..]).map_or(b.len(), |o| after + o);
            }
            (Field { start: i + 1, end: close, doubled, quoted: true }, after)
        } else {
            let end = memchr::memchr2(b',', b'\n', &b[i..]).map_or(b.len(), |o| i + o);
            (Field { start: i, end, doubled: false, quoted: false }, end)
        };
        let mut field = field;
        // CRLF: the `\r` belongs to the line end, not to the last field.
        let mut after = after;
        if b.get(after) == Some(&b'\r') && matches!(b.get(after + 1), None | Some(b'\n')) {
            after += 1;
        } else if !field.quoted
            && field.end > field.start
            && b[field.end - 1] == b'\r'
            && b.get(field.end) != Some(&b',')
        {
            field.end -= 1;
        }
        fields.push(field);
        match b.get(after) {
            Some(b',') => i = after + 1,
            Some(b'\n') => return (after + 1, newlines + 1, status),
            Some(b'\r') => {
                // A quoted field followed by a lone `\r`: treat like the bad-quote case.
                i = after + 1;
                status = Status::BadQuote;
            }
            _ => return (b.len(), newlines, status),
        }
    }
}

fn bytecount(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Decode a field's text (`""` -> `"`) onto `out`.
fn undouble(b: &[u8], f: &Field, out: &mut Vec<u8>) {
    let mut i = f.start;
    while i < f.end {
        match memchr::memchr(b'"', &b[i..f.end]) {
            Some(off) => {
                out.extend_from_slice(&b[i..i + off + 1]);
                i += off + 2;
            }
            None => {
                out.extend_from_slice(&b[i..f.end]);
                break;
            }
        }
    }
}

/// Index just after the last complete record of `b` (one that ends with its newline): where a
/// block may be cut. It runs the workers' own record scan, so a cut is always a record boundary
/// as `process_block` sees it. (A quote-parity count, used before, disagrees with the parser on
/// malformed quoting: `5"` is text, `"a"b` skips to the delimiter. It then cut inside a quoted
/// field, and whether a record was read or rejected depended on where the 8 MiB blocks fell;
/// found by the `csv` fuzz target, see docs/fuzzing.md.)
pub(crate) fn cut_point(b: &[u8]) -> Option<usize> {
    let mut fields = Vec::new();
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        let (next, _, status) = next_record(b, i, &mut fields);
        // A record running to the end of the bytes may go on in the bytes still to come.
        if status == Status::Unterminated || b[next - 1] != b'\n' {
            break;
        }
        last = Some(next);
        i = next;
    }
    last
}

/// Parse the header record at the start of `b` (BOM already removed). Returns the header and
/// the index after it, or None when the text holds no complete record yet.
pub(crate) fn parse_header(b: &[u8], map: &ColumnMap, plan: &Plan, at_eof: bool) -> Option<(CsvHeader, usize, u64)> {
    let mut fields = Vec::new();
    let (next, newlines, status) = next_record(b, 0, &mut fields);
    // An open quote runs on into bytes not read yet, even when these happen to end with a
    // newline (inside the quotes): deciding then made the header, hence every record, depend
    // on where the first read stopped (found by the csv property test).
    if !at_eof && ((next == b.len() && b.last() != Some(&b'\n')) || status == Status::Unterminated) {
        return None;
    }
    let flats: Vec<Option<String>> = plan.paths.iter().map(|p| p.flat()).collect();
    let mut field_slots = vec![Vec::new(); fields.len()];
    let mut found = 0u16;
    let mut name = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        name.clear();
        undouble(b, f, &mut name);
        let n = trim(name.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&name));
        for (col, src) in map.sources() {
            if src.paths().any(|p| p.flat().is_some_and(|f| f.as_bytes() == n)) {
                found |= 1 << col as u16;
            }
        }
        for (slot, flat) in flats.iter().enumerate() {
            if flat.as_ref().is_some_and(|f| f.as_bytes() == n) {
                // Duplicate header names: the later field wins, like a later JSON key.
                for other in field_slots.iter_mut() {
                    other.retain(|&s| s != slot as u16);
                }
                field_slots[i].push(slot as u16);
            }
        }
    }
    Some((CsvHeader { nfields: fields.len(), field_slots, found }, next, newlines))
}

/// Per-worker reusable buffers.
#[derive(Default)]
pub(crate) struct CsvState {
    fields: Vec<Field>,
    scratch: Vec<u8>,
    /// Per plan slot: (in scratch, start, end) of its field's text.
    spans: Vec<Option<(bool, usize, usize)>>,
}

/// Parse the records of one block (cut at a record boundary), numbering lines from `first_line`.
pub(crate) fn process_block<E: Emit>(
    h: &CsvHeader,
    plan: &Plan,
    st: &mut CsvState,
    b: &[u8],
    first_line: u64,
    max_line: usize,
    emit: &mut E,
) {
    let mut i = 0;
    let mut line = first_line;
    while i < b.len() {
        let start = i;
        let (next, newlines, status) = next_record(b, i, &mut st.fields);
        let mut raw = &b[start..next];
        if let [rest @ .., b'\n'] = raw {
            raw = rest;
        }
        if let [rest @ .., b'\r'] = raw {
            raw = rest;
        }
        if raw.len() > max_line {
            super::too_long(emit, line, raw, max_line);
        } else if trim(raw).is_empty() {
            emit.blank();
        } else {
            let r = match status {
                Status::Unterminated => Err(RejectReason::Unparseable("unterminated CSV quote")),
                Status::BadQuote => Err(RejectReason::Unparseable("invalid CSV quoting")),
                Status::Ok if st.fields.len() != h.nfields => {
                    Err(RejectReason::Unparseable("wrong number of CSV fields"))
                }
                Status::Ok => {
                    fill_spans(h, plan, st, b);
                    let get = |p: u16| slot_val(st, b, p);
                    match plan.skip_reason(get) {
                        Some(reason) => {
                            emit.skip(reason);
                            line += newlines;
                            i = next;
                            continue;
                        }
                        None => plan.draft(get),
                    }
                }
            };
            emit.record(line, Some(raw), r);
        }
        line += newlines;
        i = next;
    }
}

/// Locate each slot's field text, decoding `""` into the scratch where needed.
fn fill_spans(h: &CsvHeader, plan: &Plan, st: &mut CsvState, b: &[u8]) {
    st.scratch.clear();
    st.spans.clear();
    st.spans.resize(plan.npaths(), None);
    for (f, slots) in st.fields.iter().zip(&h.field_slots) {
        if slots.is_empty() {
            continue;
        }
        let span = if f.doubled {
            let s = st.scratch.len();
            undouble(b, f, &mut st.scratch);
            (true, s, st.scratch.len())
        } else {
            (false, f.start, f.end)
        };
        for &p in slots {
            st.spans[p as usize] = Some(span);
        }
    }
}

#[inline]
fn slot_val<'a>(st: &'a CsvState, b: &'a [u8], p: u16) -> Val<'a> {
    match st.spans[p as usize] {
        None => Val::Absent,
        Some((in_scratch, s, e)) => {
            let text = if in_scratch { &st.scratch[s..e] } else { &b[s..e] };
            Val::Text { text, number: false, utf8: false }
        }
    }
}
