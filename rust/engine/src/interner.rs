//! The interner: one id space for the strings of a run (model, site, zone and hardware names),
//! the run's memory of names it resolved and statuses it did not recognise, the cap on
//! distinct values per column, and the per-thread cache in front of it all. The kernel owns
//! one behind a lock and reads ids through the cache; ids key the aggregate's cells.

use crate::cell::NO_ID;
use crate::names::NameKind;
use crate::outcome::Outcome;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// An id for a string that is not in the config (used only by look-ups that must not intern,
/// see [`crate::kernel::Methodology::accelerator_energy_wh`]); out of range of every table, so "unknown".
pub const UNKNOWN_ID: u32 = u32::MAX - 1;

/// No index (a name resolution changed nothing; a status was recognised).
pub const NONE_IDX: u32 = u32::MAX;

/// A raw name that resolution changed (an alias applied, a URL gave its host, a zone matched
/// the grid ignoring case): the ledger keeps it per source so the raw name is never lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameChange {
    pub kind: NameKind,
    pub raw: Arc<str>,
    pub resolved: Arc<str>,
}

#[derive(Debug, Default)]
pub struct Interner {
    pub(crate) map: FxHashMap<Arc<str>, u32>,
    pub(crate) names: Vec<Arc<str>>,
    /// Raw names resolution changed, by (kind, raw); indexed by [`NameEntry::changed`].
    pub(crate) change_index: FxHashMap<(NameKind, Box<str>), u32>,
    pub(crate) changes: Vec<NameChange>,
    /// Status values no list recognises, indexed by [`StatusEntry::unrecognised`].
    pub(crate) unrecognised_index: FxHashMap<Box<str>, u32>,
    pub(crate) unrecognised: Vec<Box<str>>,
    /// Zone case matches of the pack's sites, found when the tables are built.
    pub(crate) config_warnings: Vec<String>,
    /// Zone case matches met in the data (order of discovery depends on the threads: sorted
    /// when reported).
    pub(crate) data_warnings: Vec<String>,
    /// Values the run remembers per column ([`CAPPED`] order): new interned names and raw
    /// names resolution changed, per name kind, then unrecognised statuses.
    pub(crate) distinct: [usize; 5],
    /// The first column whose distinct values passed the cap (see [`crate::kernel::Methodology::check_names`]).
    pub(crate) overflow: Option<&'static str>,
}

/// The columns whose distinct values a run remembers (the cap of [`DEFAULT_MAX_NAMES`]):
/// the four name kinds in [`NameKind`] order, then status.
pub const CAPPED: [&str; 5] = ["model", "site", "zone", "hardware", "status"];
pub const STATUS_SLOT: usize = 4;

/// Default cap on distinct values per column in one run (`--max-names`). A fleet has tens to
/// a few thousand models, sites, zones, hardware kinds and status values; a column with more
/// than 100k distinct values is a per-request value (a request id, a prompt, a timestamp)
/// mapped as a name, and would grow memory with every record (each value costs about 400
/// bytes across the interner, the worker caches and its cells: 2M of them took 817 MB). At
/// the cap a column costs about 40 MB.
pub const DEFAULT_MAX_NAMES: usize = 100_000;

impl Interner {
    /// Count one more distinct value of column `slot`; false (and the overflow noted) when
    /// that would pass `max`.
    pub fn count(&mut self, slot: usize, max: usize) -> bool {
        if self.distinct[slot] >= max {
            self.overflow.get_or_insert(CAPPED[slot]);
            return false;
        }
        self.distinct[slot] += 1;
        true
    }
}

/// What a worker caches for one raw name: the resolved id, and the index of the name change
/// ([`NONE_IDX`] when the raw name is used as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameEntry {
    pub id: u32,
    pub changed: u32,
}

impl Default for NameEntry {
    fn default() -> Self {
        NameEntry { id: NO_ID, changed: NONE_IDX }
    }
}

/// What a worker caches for one status value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusEntry {
    pub outcome: Outcome,
    /// Index of the value among the unrecognised ones, [`NONE_IDX`] when recognised.
    pub unrecognised: u32,
}

impl Default for StatusEntry {
    fn default() -> Self {
        StatusEntry { outcome: Outcome::Ok, unrecognised: NONE_IDX }
    }
}

/// A per-thread cache from a string to what it resolved to (a [`NameEntry`] for one name
/// field, a [`StatusEntry`] for statuses). Names up to [`SHORT_KEY`] bytes (nearly all model,
/// site, zone, hardware and status values) live in a small direct-mapped table keyed by the
/// name's bytes as four words: a hit is a few word compares, with no string hashing and no
/// `memcmp` call (this lookup runs up to five times per record). Longer names and slot misses
/// go to a map, then to the resolver. Allocates only when a string is first seen.
pub struct StrCache<T: Copy> {
    short: Box<[ShortSlot<T>]>,
    long_last: String,
    long_last_val: Option<T>,
    seen: FxHashMap<Box<str>, T>,
}

/// Longest name the direct-mapped table holds.
const SHORT_KEY: usize = 32;
const SHORT_SLOTS: usize = 256;

#[derive(Clone, Copy)]
struct ShortSlot<T: Copy> {
    /// The name's bytes, zero-padded; with `len` they identify it exactly.
    words: [u64; 4],
    /// Length, or `u32::MAX` for an empty slot.
    len: u32,
    val: T,
}

/// The bytes of a name of at most [`SHORT_KEY`] bytes as four words that, together with the
/// length, identify it exactly. Overlapping unaligned loads instead of a zero-padded copy:
/// for a given length every byte lands in a fixed place, so equal words mean equal names.
#[inline(always)]
fn short_key(b: &[u8]) -> [u64; 4] {
    let n = b.len();
    let w8 = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let w4 = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as u64;
    match n {
        17.. => [w8(0), w8(8), w8(n - 16), w8(n - 8)],
        8.. => [w8(0), w8(n - 8), 0, 0],
        4.. => [w4(0) | w4(n - 4) << 32, 0, 0, 0],
        _ => [b.iter().rev().fold(0u64, |acc, &c| acc << 8 | c as u64), 0, 0, 0],
    }
}

impl<T: Copy + Default> Default for StrCache<T> {
    fn default() -> Self {
        let empty = ShortSlot { words: [0; 4], len: u32::MAX, val: T::default() };
        StrCache {
            short: vec![empty; SHORT_SLOTS].into_boxed_slice(),
            long_last: String::new(),
            long_last_val: None,
            seen: FxHashMap::default(),
        }
    }
}

impl<T: Copy> StrCache<T> {
    /// The cached value of `s`, calling `resolve` the first time this cache meets `s`.
    #[inline]
    pub fn get(&mut self, s: &str, resolve: impl FnOnce(&str) -> T) -> T {
        let b = s.as_bytes();
        if b.len() <= SHORT_KEY {
            let words = short_key(b);
            let h = (words[0] ^ words[1].rotate_left(17) ^ words[2].rotate_left(31) ^ words[3].rotate_left(47))
                .wrapping_add(b.len() as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let slot = &mut self.short[(h >> 56) as usize % SHORT_SLOTS];
            if slot.len == b.len() as u32 && slot.words == words {
                return slot.val;
            }
            let val = Self::resolve(&mut self.seen, s, resolve);
            *slot = ShortSlot { words, len: b.len() as u32, val };
            return val;
        }
        if let Some(v) = self.long_last_val {
            if self.long_last == s {
                return v;
            }
        }
        let val = Self::resolve(&mut self.seen, s, resolve);
        // Reuses the buffer: no allocation once it has grown to the longest name.
        self.long_last.clear();
        self.long_last.push_str(s);
        self.long_last_val = Some(val);
        val
    }

    #[cold]
    fn resolve(seen: &mut FxHashMap<Box<str>, T>, s: &str, resolve: impl FnOnce(&str) -> T) -> T {
        match seen.get(s) {
            Some(&v) => v,
            None => {
                let v = resolve(s);
                seen.insert(s.into(), v);
                v
            }
        }
    }
}
