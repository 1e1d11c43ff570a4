//! Parquet: metadata read once per file, then each row group is a unit of parallel work,
//! reading only the top-level columns the mapping names (a dotted name projects its root
//! struct).

use std::fs::File;
use std::path::Path;

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::columns::{Col, ColumnMap};
use crate::error::{Error, Result};
use crate::remote::{self, RemoteObject};
use crate::source::InputFile;

/// What every row group task of one file shares.
pub(crate) struct PqFile {
    pub(crate) meta: ArrowReaderMetadata,
    pub(crate) mask: ProjectionMask,
    /// First row index of each row group (0-based row numbers for rejects).
    pub(crate) row_offsets: Vec<u64>,
    /// Bytes of the file each row group stands for in the progress counters: its compressed
    /// size, so a progress bar advances as row groups are done rather than when the file ends.
    pub(crate) progress_bytes: Vec<u64>,
    /// The object a remote file is (its row groups are fetched by range); None for a local file.
    pub(crate) remote: Option<Arc<RemoteObject>>,
}

/// `f.size`: the file's size when the scan started, which the progress shares add up to at most.
pub(crate) fn open(f: &InputFile, map: &ColumnMap) -> Result<PqFile> {
    let path = f.path.as_path();
    let unreadable = |e: parquet::errors::ParquetError| Error::input(path, format!("not a readable Parquet file: {e}"));
    let meta = match &f.remote {
        Some(obj) => ArrowReaderMetadata::load(&remote::fetch_footer(obj)?, ArrowReaderOptions::new()),
        None => {
            ArrowReaderMetadata::load(&File::open(path).map_err(|e| Error::input(path, e))?, ArrowReaderOptions::new())
        }
    }
    .map_err(unreadable)?;
    let schema = meta.schema().clone();
    let roots: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            map.sources()
                .flat_map(|(_, s)| s.paths())
                .any(|p| p.flat().is_some_and(|n| n == *f.name()) || (p.segs.len() > 1 && p.segs[0] == *f.name()))
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(meta.parquet_schema(), roots);
    let meta = with_dictionary_names(meta, map)
        .map_err(|e| Error::input(path, format!("not a readable Parquet file: {e}")))?;
    let mut row_offsets = Vec::new();
    let mut n = 0u64;
    for rg in meta.metadata().row_groups() {
        row_offsets.push(n);
        n += rg.num_rows().max(0) as u64;
    }
    let compressed: Vec<u64> =
        meta.metadata().row_groups().iter().map(|rg| rg.compressed_size().max(0) as u64).collect();
    let progress_bytes = progress_shares(&compressed, f.size);
    Ok(PqFile { meta, mask, row_offsets, progress_bytes, remote: f.remote.clone() })
}

/// Each row group's share of a file of `size` bytes for progress: its compressed size, scaled
/// down when the sizes the metadata claims add up to more than the file (a writer's bug must
/// not push the bar past 100%). What the shares leave (header, footer) is counted when the
/// file is done.
pub(crate) fn progress_shares(compressed: &[u64], size: u64) -> Vec<u64> {
    let claimed: u64 = compressed.iter().sum();
    if claimed <= size {
        return compressed.to_vec();
    }
    compressed.iter().map(|&c| (u128::from(c) * u128::from(size) / u128::from(claimed)) as u64).collect()
}

/// The name columns (model, site, zone, hardware) and status have a few distinct values that
/// writers dictionary-encode; asking for them as Arrow dictionaries keeps them so, instead of
/// copying one string per row that the kernel would look up again per row: the kernel's
/// columnar path resolves each dictionary value once.
fn with_dictionary_names(meta: ArrowReaderMetadata, map: &ColumnMap) -> parquet::errors::Result<ArrowReaderMetadata> {
    let names: Vec<String> = [Col::Model, Col::Site, Col::Zone, Col::Hardware, Col::Status]
        .iter()
        .map(|&c| map.source(c))
        .flat_map(|s| s.paths().filter_map(|p| p.flat()))
        .collect();
    let schema = meta.schema();
    let mut changed = false;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if *f.data_type() == DataType::Utf8 && names.iter().any(|n| n == f.name()) {
                changed = true;
                f.as_ref()
                    .clone()
                    .with_data_type(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)))
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    if !changed {
        return Ok(meta);
    }
    let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    ArrowReaderMetadata::try_new(meta.metadata().clone(), ArrowReaderOptions::new().with_schema(hinted))
}

/// Read one row group, calling `f` with each batch and the row index of its first row.
pub(crate) fn read_row_group(
    path: &Path,
    pq: &PqFile,
    rg: usize,
    mut f: impl FnMut(u64, RecordBatch) -> Result<()>,
) -> Result<()> {
    let cannot =
        |e: parquet::errors::ParquetError| Error::input(path, format!("cannot read Parquet row group {rg}: {e}"));
    let reader = match &pq.remote {
        // The row group's column chunks in memory (one round of parallel ranged reads), so the
        // reader's many small page reads never become requests.
        Some(obj) => {
            let chunks = remote::fetch_row_group(obj, pq.meta.metadata(), &pq.mask, rg)?;
            batches(ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, pq.meta.clone()), pq, rg)
        }
        None => {
            let file = File::open(path).map_err(|e| Error::input(path, e))?;
            batches(ParquetRecordBatchReaderBuilder::new_with_metadata(file, pq.meta.clone()), pq, rg)
        }
    }
    .map_err(cannot)?;
    let mut row = pq.row_offsets[rg];
    for batch in reader {
        let batch = batch.map_err(|e| Error::input(path, format!("corrupt Parquet data in row group {rg}: {e}")))?;
        let n = batch.num_rows() as u64;
        f(row, batch)?;
        row += n;
    }
    Ok(())
}

fn batches<T: parquet::file::reader::ChunkReader + 'static>(
    builder: ParquetRecordBatchReaderBuilder<T>,
    pq: &PqFile,
    rg: usize,
) -> parquet::errors::Result<Box<dyn Iterator<Item = std::result::Result<RecordBatch, arrow_schema::ArrowError>> + Send>>
{
    let reader =
        builder.with_row_groups(vec![rg]).with_projection(pq.mask.clone()).with_batch_size(32 * 1024).build()?;
    Ok(Box::new(reader))
}

#[cfg(test)]
mod tests {
    use super::progress_shares;

    #[test]
    fn progress_shares_never_exceed_the_file() {
        assert_eq!(progress_shares(&[10, 20, 30], 100), [10, 20, 30]);
        assert_eq!(progress_shares(&[], 100), Vec::<u64>::new());
        // Metadata claiming more than the file holds: scaled to fit.
        let scaled = progress_shares(&[100, 100], 50);
        assert_eq!(scaled, [25, 25]);
        assert!(progress_shares(&[u64::MAX / 2, u64::MAX / 2], 7).iter().sum::<u64>() <= 7);
    }
}
