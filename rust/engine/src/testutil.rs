//! Test helpers. A tiny temp dir instead of the `tempfile` crate: its dependency tree changes
//! the features of crates arrow shares (bitflags via rustix), which made `cargo test` rebuild
//! arrow and parquet after the extension build, doubling CI's compile time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tempdir() -> std::io::Result<TempDir> {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("wattledger-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(TempDir(p))
}
