//! JSON documents, as opposed to JSON Lines: a top-level array of records (LiteLLM's
//! `/spend/logs`, Zipkin v2), an object whose `data` array holds them (paginated APIs), or
//! objects one after another spread over several lines (pretty-printed, as the OpenTelemetry
//! Python console exporter writes spans).
//!
//! The producer finds the records with [`DocSplitter`], a resumable structural scan that needs
//! only the bytes of the record at hand: a document is streamed in blocks like any text log,
//! never loaded whole. Workers then parse each record as they parse a JSON line.

/// Where the scan is in the document.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Between top-level values.
    Top,
    /// Inside a top-level array: its elements are records.
    TopArray,
    /// Inside a top-level object that started at `start`: a record, unless a `data` array
    /// member turns it into a container (`data_seen`).
    Obj { start: usize, data_seen: bool },
    /// Inside the `data` array of a top-level object: its elements are records.
    DataArray,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// A record's bytes, and the line it starts on.
    Record(usize, usize, u64),
    /// Bytes that are not a JSON record (reported as a reject with this reason).
    Bad(usize, usize, u64, &'static str),
    /// The bytes so far end inside a value: read more (keep the bytes from `keep_from`).
    NeedMore,
    Done,
}

#[derive(Debug)]
pub(crate) struct DocSplitter {
    state: State,
    /// Bytes before `counted` hold `line - 1` newlines.
    counted: usize,
    line: u64,
}

#[inline]
fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Index after the string whose body starts at `i`; None if the bytes end first.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let off = memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        let j = i + off;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        i = j + 2;
    }
}

/// The end of the value starting at `i`: `Ok(None)` when the bytes end first (more may
/// follow), `Err` when it is not JSON. Values are checked structurally only (brackets and
/// strings); the worker's parser checks the rest.
fn value_end(b: &[u8], i: usize, eof: bool) -> Result<Option<usize>, ()> {
    let more = |e: Option<usize>| match e {
        Some(e) => Ok(Some(e)),
        None if eof => Err(()),
        None => Ok(None),
    };
    match b[i] {
        b'"' => more(string_end(b, i + 1)),
        b'{' | b'[' => {
            let mut depth = 0u32;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => match string_end(b, j + 1) {
                        Some(e) => {
                            j = e;
                            continue;
                        }
                        None => return more(None),
                    },
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(Some(j + 1));
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            more(None)
        }
        c if c == b'-' || c.is_ascii_alphanumeric() => {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'.' | b'+' | b'-')) {
                j += 1;
            }
            if j == b.len() && !eof {
                return Ok(None);
            }
            Ok(Some(j))
        }
        _ => Err(()),
    }
}

impl DocSplitter {
    pub(crate) fn new(first_line: u64) -> Self {
        DocSplitter { state: State::Top, counted: 0, line: first_line }
    }

    /// The line of byte `at` (at or after every byte asked about before).
    fn line_at(&mut self, b: &[u8], at: usize) -> u64 {
        if at > self.counted {
            self.line += memchr::memchr_iter(b'\n', &b[self.counted..at]).count() as u64;
            self.counted = at;
        }
        self.line
    }

    /// The first byte still needed: the start of a top-level object not yet known to be a
    /// container, else `pos`.
    pub(crate) fn keep_from(&self, pos: usize) -> usize {
        match self.state {
            State::Obj { start, data_seen: false } => start,
            _ => pos,
        }
    }

    /// The bytes before `n` were dropped from the buffer (`n <= keep_from`).
    pub(crate) fn shift(&mut self, b: &[u8], n: usize) {
        self.line_at(b, n);
        self.counted -= n;
        if let State::Obj { start, data_seen } = self.state {
            self.state = State::Obj { start: start - n.min(start), data_seen };
        }
    }

    /// A line's worth of bytes from `from` that cannot be read as JSON: reported, and the scan
    /// goes on after it.
    fn bad(&mut self, b: &[u8], pos: &mut usize, from: usize, eof: bool, why: &'static str) -> Step {
        let end = match memchr::memchr(b'\n', &b[*pos..]) {
            Some(o) => *pos + o,
            None if eof => b.len(),
            None => return Step::NeedMore,
        };
        let line = self.line_at(b, from);
        *pos = end;
        if eof && end == b.len() {
            // The document ends inside this value: one report for it, not a second one for
            // the array or object left open.
            self.state = State::Top;
        }
        Step::Bad(from, end, line, why)
    }

    /// The next record (or problem) at or after `*pos` in `b`, the document's bytes so far.
    pub(crate) fn next(&mut self, b: &[u8], pos: &mut usize, eof: bool) -> Step {
        loop {
            let mut i = ws(b, *pos);
            if matches!(self.state, State::TopArray | State::DataArray | State::Obj { .. }) {
                while i < b.len() && b[i] == b',' {
                    i = ws(b, i + 1);
                }
            }
            *pos = i;
            if i >= b.len() {
                if !eof {
                    return Step::NeedMore;
                }
                if self.state == State::Top {
                    return Step::Done;
                }
                self.state = State::Top;
                let line = self.line_at(b, b.len());
                return Step::Bad(b.len(), b.len(), line, "truncated JSON document (unterminated array or object)");
            }
            match self.state {
                State::Top => match b[i] {
                    b'[' => {
                        self.state = State::TopArray;
                        *pos = i + 1;
                    }
                    b'{' => {
                        self.state = State::Obj { start: i, data_seen: false };
                        *pos = i + 1;
                    }
                    // Stray separators between top-level values are tolerated.
                    b',' | b']' => *pos = i + 1,
                    _ => return self.bad(b, pos, i, eof, "invalid JSON"),
                },
                State::TopArray | State::DataArray => {
                    if b[i] == b']' {
                        self.state = match self.state {
                            State::TopArray => State::Top,
                            _ => State::Obj { start: 0, data_seen: true },
                        };
                        *pos = i + 1;
                        continue;
                    }
                    return match value_end(b, i, eof) {
                        Ok(Some(e)) => {
                            let line = self.line_at(b, i);
                            *pos = e;
                            Step::Record(i, e, line)
                        }
                        Ok(None) => Step::NeedMore,
                        Err(()) => self.bad(b, pos, i, eof, "invalid JSON"),
                    };
                }
                State::Obj { start, data_seen } => match b[i] {
                    b'}' => {
                        self.state = State::Top;
                        *pos = i + 1;
                        if !data_seen {
                            let line = self.line_at(b, start);
                            return Step::Record(start, i + 1, line);
                        }
                    }
                    b'"' => {
                        let Some(kend) = string_end(b, i + 1) else {
                            return if eof { self.bad_object(b, pos, start, eof) } else { Step::NeedMore };
                        };
                        let colon = ws(b, kend);
                        let v = ws(b, colon + 1);
                        if v >= b.len() {
                            return if eof { self.bad_object(b, pos, start, eof) } else { Step::NeedMore };
                        }
                        if b[colon] != b':' {
                            return self.bad_object(b, pos, start, eof);
                        }
                        if &b[i + 1..kend - 1] == b"data" && b[v] == b'[' {
                            self.state = State::DataArray;
                            *pos = v + 1;
                            continue;
                        }
                        match value_end(b, v, eof) {
                            Ok(Some(e)) => *pos = e,
                            Ok(None) => return Step::NeedMore,
                            Err(()) => return self.bad_object(b, pos, start, eof),
                        }
                    }
                    _ => return self.bad_object(b, pos, start, eof),
                },
            }
        }
    }

    fn bad_object(&mut self, b: &[u8], pos: &mut usize, start: usize, eof: bool) -> Step {
        if let State::Obj { data_seen: true, .. } = self.state {
            // A container whose `data` array was read: its records are out and its start is not
            // kept (`start` is 0). Going back to `start` re-read the document from its first
            // byte: records twice, and a document like `\n{"data":[1], x}` looped for ever
            // (found by the jsondoc fuzz target). The bad bytes are the member at `pos` to the
            // line end; the state stays until they are reported, so that reading more bytes
            // comes back here.
            let from = *pos;
            let step = self.bad(b, pos, from, eof, "invalid JSON");
            if step != Step::NeedMore {
                self.state = State::Top;
            }
            return step;
        }
        self.state = State::Top;
        *pos = start.min(*pos);
        let from = *pos;
        self.bad(b, pos, from, eof, "invalid JSON")
    }
}

/// Whether a JSON Lines file is really a JSON document: it starts with `[`, or its first line
/// is not a whole value (a pretty-printed object). `head` is the file's first bytes; `None`
/// when they hold no complete first line yet.
pub(crate) fn looks_like_document(head: &[u8], eof: bool) -> Option<bool> {
    let i = ws(head, 0);
    match head.get(i) {
        // Only blanks so far: the first value may still come. Deciding here made a file that
        // starts with a block's worth of spaces JSON Lines and the same file read in bigger
        // blocks a document (found by the jsonl fuzz target).
        None if !eof => None,
        None => Some(false),
        Some(b'[') => Some(true),
        Some(b'{') => {
            let line_end = match memchr::memchr(b'\n', &head[i..]) {
                Some(o) => i + o,
                None if eof => head.len(),
                None => return None,
            };
            let line = &head[i..line_end];
            Some(!matches!(value_end(line, 0, true), Ok(Some(e)) if ws(line, e) == line.len()))
        }
        Some(_) => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split `doc`, fed `chunk` bytes at a time (the producer's buffer refills), into
    /// (text, line) of each record, and (line, reason) of each problem.
    type Split = (Vec<(String, u64)>, Vec<(u64, &'static str)>);

    fn split(doc: &str, chunk: usize) -> Split {
        let all = doc.as_bytes();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut sp = DocSplitter::new(1);
        let mut pos = 0;
        let (mut recs, mut bad) = (Vec::new(), Vec::new());
        loop {
            let eof = fed == all.len();
            match sp.next(&buf, &mut pos, eof) {
                Step::Record(s, e, l) => recs.push((String::from_utf8(buf[s..e].to_vec()).unwrap(), l)),
                Step::Bad(_, _, l, why) => bad.push((l, why)),
                Step::NeedMore => {
                    // Drop what is no longer needed, as the producer does.
                    let keep = sp.keep_from(pos);
                    sp.shift(&buf, keep);
                    buf.drain(..keep);
                    pos -= keep;
                    let n = chunk.min(all.len() - fed);
                    buf.extend_from_slice(&all[fed..fed + n]);
                    fed += n;
                }
                Step::Done => break,
            }
        }
        (recs, bad)
    }

    #[test]
    fn arrays_data_and_concatenated_objects_in_any_chunking() {
        let doc = "[\n  {\"a\": 1, \"s\": \"x]}\\\"\"},\n  {\"a\": [2, {\"b\": 3}]}\n]\n{\n    \"a\": 4\n}\n{\"data\": [{\"a\": 5}, {\"a\": 6}], \"total\": 2}";
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (recs, bad) = split(doc, chunk);
            let texts: Vec<(&str, u64)> = recs.iter().map(|(t, l)| (t.as_str(), *l)).collect();
            assert_eq!(
                texts,
                [
                    ("{\"a\": 1, \"s\": \"x]}\\\"\"}", 2),
                    ("{\"a\": [2, {\"b\": 3}]}", 3),
                    ("{\n    \"a\": 4\n}", 5),
                    ("{\"a\": 5}", 8),
                    ("{\"a\": 6}", 8),
                ],
                "chunk {chunk}"
            );
            assert!(bad.is_empty(), "chunk {chunk}: {bad:?}");
        }
    }

    #[test]
    fn bad_bytes_are_reported_and_skipped() {
        let (recs, bad) = split("[{\"a\":1}, @@@\n, {\"a\":2}]\nnope\n{\"a\":3}", 5);
        assert_eq!(recs.iter().map(|r| r.1).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(bad, [(1, "invalid JSON"), (3, "invalid JSON")]);
        let (recs, bad) = split("[{\"a\":1}, {\"a\":", 4);
        assert_eq!(recs.len(), 1);
        assert_eq!(bad.len(), 1, "a truncated document is reported: {bad:?}");
    }

    /// Bad bytes after a container's `data` array are reported from where they start, once: the
    /// scan went back to byte 0, re-emitting records, and looped for ever on the second case
    /// (found by the jsondoc fuzz target).
    #[test]
    fn bad_member_after_a_data_array_is_reported_once_in_any_chunking() {
        let cases: [(&str, &[u64], &[u64]); 2] = [
            ("{\"data\": [{\"a\":1}], \"x\": 1, oops}\n{\"b\":2}\n", &[1, 2], &[1]),
            ("\n{\"data\":[{\"a\":1}], x}\n[{\"b\":2}]", &[2, 3], &[2]),
        ];
        for (doc, rec_lines, bad_lines) in cases {
            for chunk in 1..=doc.len() {
                let (recs, bad) = split(doc, chunk);
                assert_eq!(recs.iter().map(|r| r.1).collect::<Vec<_>>(), rec_lines, "{doc:?} chunk {chunk}");
                assert_eq!(bad.iter().map(|r| r.0).collect::<Vec<_>>(), bad_lines, "{doc:?} chunk {chunk}");
            }
        }
    }

    #[test]
    fn documents_are_told_from_json_lines() {
        assert_eq!(looks_like_document(b"{\"a\":1}\n{\"a\":2}\n", false), Some(false));
        assert_eq!(looks_like_document(b"\n  [ {\"a\":1} ]", false), Some(true));
        assert_eq!(looks_like_document(b"{\n  \"a\": 1\n}\n", false), Some(true));
        assert_eq!(looks_like_document(b"{\"a\":", false), None);
        assert_eq!(looks_like_document(b"{\"a\":1}", true), Some(false));
        assert_eq!(looks_like_document(b"", true), Some(false));
        assert_eq!(looks_like_document(b" \n\t ", false), None);
        assert_eq!(looks_like_document(b" \n\t ", true), Some(false));
    }
}
