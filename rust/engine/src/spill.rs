//! Cells flushed under the memory budget: one file per flush ("run"), cells as fixed-size
//! binary records grouped by partition, with the partition index kept in memory.
//!
//! Why binary and not Parquet: a flushed cell is read back exactly once, by the final merge
//! (`cells.rs`), in the same process. Ids and raw measures round-trip bit for bit, cost no
//! string lookup or compression, and a partition's cells are read with one positioned read.
//! The files live in the run's spill directory (beside the ledger for an ingest), so an
//! interrupted or killed run leaves nothing anywhere else; each file is deleted when its run
//! is dropped.

use crate::aggregate::{Aggregate, Measures};
use crate::cell::{CellKey, Method};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Hours per partition, as a shift: 16 hours. Small enough that one partition of a dense
/// year (a few thousand cells) merges in cache, large enough that a run's index stays short.
pub const PART_SHIFT: u32 = 4;

/// A partition: the source file's rank by name, then a block of hours. Ordered as the cells
/// are emitted (source name, then time), so batches come out in the documented row order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartKey {
    pub source_rank: u32,
    pub block: i64,
}

/// Maps a cell key to its partition: needs each source's rank by name.
#[derive(Debug, Clone, Default)]
pub struct Partitioner {
    source_rank: Vec<u32>,
}

impl Partitioner {
    /// `source_names[i]` is the name of file index `i`.
    pub fn new(source_names: &[String]) -> Self {
        let mut order: Vec<u32> = (0..source_names.len() as u32).collect();
        order.sort_by(|&a, &b| source_names[a as usize].cmp(&source_names[b as usize]).then(a.cmp(&b)));
        let mut source_rank = vec![0; source_names.len()];
        for (rank, &i) in order.iter().enumerate() {
            source_rank[i as usize] = rank as u32;
        }
        Partitioner { source_rank }
    }

    /// The rank of file index `source` by name (an index past the list sorts last).
    #[inline]
    pub fn source_rank(&self, source: u32) -> u32 {
        self.source_rank.get(source as usize).copied().unwrap_or(u32::MAX)
    }

    #[inline]
    pub fn part(&self, k: &CellKey) -> PartKey {
        PartKey { source_rank: self.source_rank(k.source), block: k.hour >> PART_SHIFT }
    }

    /// The order of `keys` by partition (stable), and the partitions as `(part, start, end)`
    /// ranges into that order.
    pub fn group(&self, keys: &[CellKey]) -> (Vec<u32>, Vec<(PartKey, u32, u32)>) {
        let parts: Vec<PartKey> = keys.iter().map(|k| self.part(k)).collect();
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_by_key(|&i| parts[i as usize]);
        let mut ranges = Vec::new();
        let mut start = 0usize;
        while start < order.len() {
            let p = parts[order[start] as usize];
            let mut end = start + 1;
            while end < order.len() && parts[order[end] as usize] == p {
                end += 1;
            }
            ranges.push((p, start as u32, end as u32));
            start = end;
        }
        (order, ranges)
    }
}

/// Bytes of one cell on disk: the key (32, padded) then the measures (8 + 17 * 8).
pub const CELL_BYTES: usize = 32 + 8 + 17 * 8;

fn encode(k: &CellKey, m: &Measures, out: &mut [u8; CELL_BYTES]) {
    out[0..4].copy_from_slice(&k.source.to_le_bytes());
    out[4..12].copy_from_slice(&k.hour.to_le_bytes());
    out[12..16].copy_from_slice(&k.model.to_le_bytes());
    out[16..20].copy_from_slice(&k.site.to_le_bytes());
    out[20..24].copy_from_slice(&k.zone.to_le_bytes());
    out[24..28].copy_from_slice(&k.hardware.to_le_bytes());
    out[28] = k.method as u8;
    out[29] = m.flags;
    out[30..32].fill(0);
    out[32..40].copy_from_slice(&m.records.to_le_bytes());
    for (i, v) in m.floats().iter().enumerate() {
        out[40 + 8 * i..48 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
}

fn decode(b: &[u8]) -> Result<(CellKey, Measures)> {
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let method =
        *Method::ALL.get(b[28] as usize).ok_or_else(|| Error::Internal(format!("spill: bad method byte {}", b[28])))?;
    let key = CellKey {
        source: u32_at(0),
        hour: u64_at(4) as i64,
        model: u32_at(12),
        site: u32_at(16),
        zone: u32_at(20),
        hardware: u32_at(24),
        method,
    };
    let mut f = [0f64; 17];
    for (i, v) in f.iter_mut().enumerate() {
        *v = f64::from_bits(u64_at(40 + 8 * i));
    }
    let m = Measures::from_parts(u64_at(32) as i64, f, b[29]);
    Ok((key, m))
}

/// Removes the spill directory once its last run is gone, if the store created it.
#[derive(Debug)]
struct DirGuard {
    dir: PathBuf,
    created: bool,
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// One flush: a file of cells grouped by partition, and where each partition lies in it.
#[derive(Debug)]
pub struct SpillRun {
    path: PathBuf,
    file: File,
    _dir: Arc<DirGuard>,
    /// (partition, first cell, cells), sorted by partition.
    parts: Vec<(PartKey, u64, u32)>,
    cells: u64,
}

impl SpillRun {
    pub fn cells(&self) -> u64 {
        self.cells
    }

    /// The partitions this run holds, in order.
    pub fn parts(&self) -> impl Iterator<Item = PartKey> + '_ {
        self.parts.iter().map(|p| p.0)
    }

    /// Fold this run's cells of partition `part` into `into`; `buf` is scratch space.
    pub fn merge_part(&self, part: PartKey, into: &mut Aggregate, buf: &mut Vec<u8>) -> Result<()> {
        let Ok(i) = self.parts.binary_search_by_key(&part, |p| p.0) else {
            return Ok(());
        };
        let (_, first, n) = self.parts[i];
        buf.resize(n as usize * CELL_BYTES, 0);
        read_exact_at(&self.file, buf, first * CELL_BYTES as u64)
            .map_err(|e| Error::Output { path: self.path.clone(), msg: format!("reading spilled cells: {e}") })?;
        for c in buf.chunks_exact(CELL_BYTES) {
            let (k, m) = decode(c)?;
            into.add(k, &m);
        }
        Ok(())
    }
}

impl Drop for SpillRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(f, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Writes runs when a worker's table is over budget. Thread-safe: each flush writes its own
/// file.
#[derive(Debug)]
pub struct SpillStore {
    dir: PathBuf,
    guard: OnceLock<Arc<DirGuard>>,
    partitioner: Partitioner,
    next: AtomicU64,
    runs: Mutex<Vec<Arc<SpillRun>>>,
}

impl SpillStore {
    pub fn new(dir: PathBuf, partitioner: Partitioner) -> Self {
        SpillStore { dir, guard: OnceLock::new(), partitioner, next: AtomicU64::new(0), runs: Mutex::new(Vec::new()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `agg`'s cells as one run (grouped by partition). The caller clears `agg`.
    pub fn spill(&self, agg: &Aggregate) -> Result<()> {
        let out_err = |path: &Path, e: std::io::Error| Error::Output { path: path.to_path_buf(), msg: e.to_string() };
        let guard = match self.guard.get() {
            Some(g) => g.clone(),
            None => {
                let created = !self.dir.exists();
                std::fs::create_dir_all(&self.dir).map_err(|e| out_err(&self.dir, e))?;
                self.guard.get_or_init(|| Arc::new(DirGuard { dir: self.dir.clone(), created })).clone()
            }
        };
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("cells-{n:06}.bin"));
        let (keys, cells) = agg.parts();
        let (order, ranges) = self.partitioner.group(keys);
        let file =
            File::options().read(true).write(true).create_new(true).open(&path).map_err(|e| out_err(&path, e))?;
        // From here the run owns the file: an error below drops it, which deletes the file.
        let mut run =
            SpillRun { path, file, _dir: guard, parts: Vec::with_capacity(ranges.len()), cells: order.len() as u64 };
        {
            let mut w = BufWriter::with_capacity(1 << 20, &run.file);
            let mut rec = [0u8; CELL_BYTES];
            for &i in &order {
                encode(&keys[i as usize], &cells[i as usize], &mut rec);
                w.write_all(&rec).map_err(|e| out_err(&run.path, e))?;
            }
            w.flush().map_err(|e| out_err(&run.path, e))?;
        }
        run.parts = ranges.into_iter().map(|(p, s, e)| (p, s as u64, e - s)).collect();
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(run));
        Ok(())
    }

    /// The runs written so far, in the order they were finished.
    pub fn runs(&self) -> Vec<Arc<SpillRun>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes the runs out (the store is left empty).
    pub fn take_runs(&self) -> Vec<Arc<SpillRun>> {
        std::mem::take(&mut *self.runs.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{HAS_CO2E, HAS_ENERGY};
    use crate::cell::NO_ID;

    #[test]
    fn a_cell_round_trips_bit_for_bit() {
        let k = CellKey { source: 3, hour: -5, model: 7, site: NO_ID, zone: 2, hardware: 9, method: Method::Cached };
        let m = Measures {
            records: i64::MAX - 1,
            requests: 0.1,
            energy_kwh: -0.0,
            co2e_market_kg: f64::MIN_POSITIVE,
            cached_requests: 1e300,
            flags: HAS_ENERGY | HAS_CO2E,
            ..Default::default()
        };
        let mut b = [0u8; CELL_BYTES];
        encode(&k, &m, &mut b);
        let (k2, m2) = decode(&b).unwrap();
        assert_eq!(k2, k);
        assert_eq!(m2.floats().map(f64::to_bits), m.floats().map(f64::to_bits));
        assert_eq!((m2.records, m2.flags), (m.records, m.flags));
        b[28] = 200;
        assert!(decode(&b).is_err(), "a corrupt method byte is an error, not a wrong method");
    }

    #[test]
    fn partitions_order_by_source_name_then_hours() {
        let p = Partitioner::new(&["b.jsonl".into(), "a.jsonl".into()]);
        let k = |source, hour| CellKey {
            source,
            hour,
            model: 0,
            site: NO_ID,
            zone: NO_ID,
            hardware: NO_ID,
            method: Method::None,
        };
        assert!(p.part(&k(1, 1000)) < p.part(&k(0, 0)), "a.jsonl before b.jsonl");
        assert!(p.part(&k(0, -1)) < p.part(&k(0, 0)), "negative hours floor");
        assert_eq!(p.part(&k(0, 16)), p.part(&k(0, 31)));
        assert_ne!(p.part(&k(0, 15)), p.part(&k(0, 16)));
        let keys = [k(0, 40), k(1, 3), k(0, 1), k(0, 33)];
        let (order, ranges) = p.group(&keys);
        assert_eq!(order, [1, 2, 0, 3]);
        assert_eq!(ranges.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), [(0, 1), (1, 2), (2, 4)]);
    }
}
