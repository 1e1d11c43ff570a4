//! The structural index of one JSON line (simdjson's first stage, reduced to what the
//! scanner asks): 64 bytes at a time, bitmaps of the quotes that open or close strings, of the
//! backslashes, and of the brackets outside strings. With it the scanner finds the end of a
//! string, or of a nested object or array it does not want, by looking at a few words instead
//! of walking every byte.
//!
//! Escapes: a backslash escapes the next byte, so a quote preceded by an odd run of
//! backslashes is part of the string. The in-string mask is the prefix XOR of the unescaped
//! quotes (a quote toggles the state), carried from one 64-byte chunk to the next.
//!
//! The byte-at-a-time scanner (the fallback, and the reference) reads strings only where the
//! grammar expects them, and a backslash outside a string is not an escape to it. The two
//! views agree on a line as long as every backslash lies inside a string of the index; a line
//! with one outside (never valid JSON) is marked [`Index::consistent`] = false and parsed
//! without the index.
//!
//! Classification uses AVX2 where the CPU has it (detected once at run time); a portable byte
//! loop builds the same bitmaps (the reference in tests, and other architectures).
//!
//! Off by default: measured on the day fleet (narrow records, every field wanted) the index
//! costs about what it saves (-3%), and on records with 20 unwanted fields, a nested object
//! and a 200-character string it breaks even, because the byte scanner already skips strings
//! 8 bytes at a time and memchr beyond. `WATTLEDGER_JSON_INDEX=1` turns it on, for measuring
//! and for the next step (a walk driven by the index rather than one that consults it).

use std::sync::OnceLock;

/// The bitmaps of one 64-byte chunk: bit `i` is byte `i` of the chunk. Kept together so one
/// look-up touches one cache line.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Chunk {
    /// As classified: every quote. In the index: the quotes that open or close a string.
    quote: u64,
    /// Backslashes (all of them: only those inside strings matter, see `consistent`).
    backslash: u64,
    /// `{` and `[` (in the index: outside strings).
    open: u64,
    /// `}` and `]` (in the index: outside strings).
    close: u64,
}

/// The index of one line: chunk `i / 64` describes byte `i`.
#[derive(Default)]
pub(crate) struct Index {
    chunks: Vec<Chunk>,
    /// Every backslash lies inside a string: the index agrees with the byte scanner.
    pub(crate) consistent: bool,
}

/// How chunks are classified on this machine.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Kernel {
    /// No index: the byte-at-a-time scanner alone.
    Off,
    /// The index, classified by a portable byte loop.
    Portable,
    /// The index, classified with AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

/// The kernel for this process: the byte-at-a-time scanner, unless `WATTLEDGER_JSON_INDEX`
/// is set (to anything but `0`) and the CPU has AVX2. Without AVX2 the scanner walks bytes:
/// the portable classifier is slower than the walk it would replace; it is kept as the
/// reference the AVX2 one is tested against.
pub(crate) fn kernel() -> Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    *K.get_or_init(|| {
        if std::env::var_os("WATTLEDGER_JSON_INDEX").is_none_or(|v| v == "0") {
            return Kernel::Off;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        Kernel::Off
    })
}

/// Bytes classified per chunk.
const CHUNK: usize = 64;

/// Lines longer than this are walked byte by byte: the index takes half a byte per byte of
/// line, and a worker keeps it for its longest line, so this bounds it to 512 KiB (real log
/// lines are far shorter; `--max-line` allows up to 64 MiB).
pub(crate) const MAX_INDEXED_LINE: usize = 1 << 20;

#[inline(always)]
fn classify_portable(c: &[u8; CHUNK]) -> Chunk {
    let mut r = Chunk::default();
    for (i, &b) in c.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'"' => r.quote |= bit,
            b'\\' => r.backslash |= bit,
            b'{' | b'[' => r.open |= bit,
            b'}' | b']' => r.close |= bit,
            _ => {}
        }
    }
    r
}

/// The quote, backslash, opening and closing bracket bits of 32 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn classify32_avx2(c: &[u8; 32]) -> (u32, u32, u32, u32) {
    use std::arch::x86_64::*;
    let v = _mm256_loadu_si256(c.as_ptr() as *const __m256i);
    // `{` and `[` differ from each other only in bit 0x20, as do `}` and `]`: OR-ing 0x20 in
    // folds each pair onto one compare.
    let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
    (
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8))) as u32,
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8))) as u32,
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8(b'{' as i8))) as u32,
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8(b'}' as i8))) as u32,
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn classify_avx2(c: &[u8; CHUNK]) -> Chunk {
    let (lo, hi) = c.split_at(32);
    let (q0, b0, o0, c0) = classify32_avx2(lo.try_into().unwrap());
    let (q1, b1, o1, c1) = classify32_avx2(hi.try_into().unwrap());
    let join = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    Chunk { quote: join(q0, q1), backslash: join(b0, b1), open: join(o0, o1), close: join(c0, c1) }
}

/// The bytes escaped by a backslash in a chunk whose backslashes are `bs`; `carry` says the
/// first byte is escaped (the previous chunk ended in an escaping backslash) and is updated.
/// Backslashes are rare in logs, so a loop over them beats branch-free tricks here.
#[inline(always)]
fn escaped(bs: u64, carry: &mut bool) -> u64 {
    let mut out = *carry as u64;
    // A backslash that is itself escaped escapes nothing.
    let mut bs = bs & !out;
    *carry = false;
    while bs != 0 {
        let p = bs.trailing_zeros();
        if p == 63 {
            *carry = true;
        } else {
            out |= 1 << (p + 1);
            bs &= !(1 << (p + 1));
        }
        bs &= bs - 1;
    }
    out
}

/// For each bit, the XOR of it and all lower bits: 1 from an opening quote up to (not
/// including) its closing quote.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Bits at or above `i` (0..64).
#[inline(always)]
fn from(i: usize) -> u64 {
    u64::MAX << i
}

impl Index {
    /// Index `line` with `kernel` (not `Off`).
    pub(crate) fn build(&mut self, line: &[u8], kernel: Kernel) {
        let n = line.len().div_ceil(CHUNK);
        self.chunks.clear();
        self.chunks.reserve(n);
        let mut esc_carry = false;
        let mut in_string = 0u64; // all ones while a string is open across chunks
        let mut stray = 0u64;
        let mut tail = [0u8; CHUNK];
        for k in 0..n {
            let chunk: &[u8; CHUNK] = match line.get(k * CHUNK..(k + 1) * CHUNK) {
                Some(c) => c.try_into().unwrap(),
                None => {
                    // The last, partial chunk, padded with zeros (which are none of the
                    // characters looked for).
                    let rest = &line[k * CHUNK..];
                    tail[..rest.len()].copy_from_slice(rest);
                    tail[rest.len()..].fill(0);
                    &tail
                }
            };
            let raw = match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2.
                Kernel::Avx2 => unsafe { classify_avx2(chunk) },
                _ => classify_portable(chunk),
            };
            let quote = if raw.backslash == 0 && !esc_carry {
                raw.quote
            } else {
                raw.quote & !escaped(raw.backslash, &mut esc_carry)
            };
            let inside = prefix_xor(quote) ^ in_string;
            in_string = ((inside as i64) >> 63) as u64;
            stray |= raw.backslash & !inside;
            self.chunks.push(Chunk {
                quote,
                backslash: raw.backslash,
                open: raw.open & !inside,
                close: raw.close & !inside,
            });
        }
        self.consistent = stray == 0;
    }

    /// The closing quote of the string whose body starts at `i` (just after its opening
    /// quote), and whether the body has a backslash; `None` when the line ends first.
    /// Equals the byte scanner's `scan_string` on a consistent index.
    #[inline(always)]
    pub(crate) fn string_end(&self, i: usize) -> Option<(usize, bool)> {
        let mut w = i / CHUNK;
        let mut bits = self.chunks.get(w)?.quote & from(i % CHUNK);
        while bits == 0 {
            w += 1;
            bits = self.chunks.get(w)?.quote;
        }
        let end = w * CHUNK + bits.trailing_zeros() as usize;
        Some((end, self.any_backslash(i, end)))
    }

    /// Whether a backslash lies in `i..end`.
    #[inline(always)]
    fn any_backslash(&self, i: usize, end: usize) -> bool {
        let (wi, we) = (i / CHUNK, end / CHUNK);
        let below_end = !from(end % CHUNK);
        if wi == we {
            return self.chunks[wi].backslash & from(i % CHUNK) & below_end != 0;
        }
        self.chunks[wi].backslash & from(i % CHUNK) != 0
            || self.chunks[wi + 1..we].iter().any(|c| c.backslash != 0)
            || self.chunks.get(we).is_some_and(|c| c.backslash & below_end != 0)
    }

    /// The index after the bracket closing the object or array opened at `i` (a bracket
    /// outside strings); `None` when the line ends first. Like the byte scanner, `}` closes
    /// `[` as well: the depth is all that is counted.
    #[inline]
    pub(crate) fn nested_end(&self, i: usize) -> Option<usize> {
        let mut depth = 0u32;
        let mut w = i / CHUNK;
        let mut mask = from(i % CHUNK);
        loop {
            let c = self.chunks.get(w)?;
            let (open, close) = (c.open & mask, c.close & mask);
            let mut both = open | close;
            // Most words of a long nested value hold no bracket at all, or only openings.
            while both != 0 {
                let bit = both & both.wrapping_neg();
                if open & bit != 0 {
                    depth += 1;
                } else {
                    depth -= 1;
                    if depth == 0 {
                        return Some(w * CHUNK + bit.trailing_zeros() as usize + 1);
                    }
                }
                both ^= bit;
            }
            w += 1;
            mask = u64::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scanner's view, byte by byte: strings open at a quote outside a string; inside,
    /// a backslash escapes the next byte and a quote closes. Returns (quote positions that
    /// open or close, bracket positions outside strings, whether a backslash appears outside).
    fn sequential(b: &[u8]) -> (Vec<usize>, Vec<usize>, bool) {
        let (mut q, mut br, mut stray) = (Vec::new(), Vec::new(), false);
        let mut i = 0;
        let mut inside = false;
        while i < b.len() {
            match (inside, b[i]) {
                (false, b'"') | (true, b'"') => {
                    q.push(i);
                    inside = !inside;
                }
                (true, b'\\') => i += 1,
                (false, b'\\') => stray = true,
                (false, b'{' | b'[' | b'}' | b']') => br.push(i),
                _ => {}
            }
            i += 1;
        }
        (q, br, stray)
    }

    fn bits(ix: &Index, f: fn(&Chunk) -> u64) -> Vec<usize> {
        (0..ix.chunks.len() * 64).filter(|&i| f(&ix.chunks[i / 64]) >> (i % 64) & 1 == 1).collect()
    }

    fn kernels() -> Vec<Kernel> {
        let mut k = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            k.push(Kernel::Avx2);
        }
        k
    }

    fn check(b: &[u8]) {
        let (q, br, stray) = sequential(b);
        for k in kernels() {
            let mut ix = Index::default();
            ix.build(b, k);
            assert_eq!(ix.consistent, !stray, "{k:?} {:?}", String::from_utf8_lossy(b));
            if ix.consistent {
                assert_eq!(bits(&ix, |c| c.quote), q, "{k:?} {:?}", String::from_utf8_lossy(b));
                let mut both = bits(&ix, |c| c.open);
                both.extend(bits(&ix, |c| c.close));
                both.sort();
                assert_eq!(both, br, "{k:?} {:?}", String::from_utf8_lossy(b));
            }
        }
    }

    #[test]
    fn escapes_and_chunk_edges() {
        check(br#"{"a":"x\"y","b":[1,{"c":"]\\"}]}"#);
        check(br#"{"a":"\\\\\"","b":"}"}"#);
        // Runs of backslashes across the 64-byte boundary, both parities.
        for pad in 55..70 {
            for run in 0..5 {
                let mut s = b"{\"k\":\"".to_vec();
                s.resize(pad, b'x');
                s.extend(std::iter::repeat_n(b'\\', run));
                s.extend_from_slice(b"\"}]\"x\"}");
                check(&s);
            }
        }
        check(b"\\\"{");
        check(b"");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn index_matches_the_sequential_view(s in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'a'), Just(b':')],
            0..300,
        )) {
            check(&s);
        }
    }
}
