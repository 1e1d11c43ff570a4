//! The content hash of a file as stored: the identity the ledger keys sources by.
//!
//! BLAKE3, one thread, SIMD: about 5.9 GB/s per core here against SHA-256's 1.45 GB/s with
//! SHA-NI, which on a 2-core ingest of JSON Lines was a fifth of all CPU time (the measurements
//! and the decision are in docs/internals.md, "File identity"). SHA-256 stays for one job:
//! ledgers written before schema 4 recorded it, and a file is compared with such a source by
//! SHA-256 ([`file_digests`] computes both in one pass).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The incremental hash of a scan: fed every stored byte as it is read, under the decompressor.
pub(crate) struct ContentHash(Box<blake3::Hasher>);

impl ContentHash {
    pub(crate) fn new() -> Self {
        ContentHash(Box::new(blake3::Hasher::new()))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Lower-case hex, as `b3sum` prints it.
    pub(crate) fn finish(self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// What [`file_digests`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    /// Hex BLAKE3 of the bytes read (`b3sum` of the file when it was read whole).
    pub blake3: String,
    /// Hex SHA-256 of the same bytes, when asked for (`sha256sum`).
    pub sha256: Option<String>,
    /// How many bytes were read: the file's size, or `limit` if that is smaller.
    pub bytes: u64,
}

/// Hash a file's stored bytes in one pass: BLAKE3 always, SHA-256 too when `sha256` is set,
/// at most `limit` bytes when given (the bytes a scan read, if the file grew since).
pub fn file_digests(path: &Path, sha256: bool, limit: Option<u64>) -> io::Result<FileDigests> {
    digests_of(File::open(path)?, sha256, limit)
}

/// [`file_digests`] of any byte stream (an object in object storage, read by ranges).
pub fn digests_of(stored: impl Read, sha256: bool, limit: Option<u64>) -> io::Result<FileDigests> {
    let mut reader: Box<dyn Read> = match limit {
        Some(n) => Box::new(stored.take(n)),
        None => Box::new(stored),
    };
    let mut b3 = blake3::Hasher::new();
    let mut sha = sha256.then(Sha256::new);
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes += n as u64;
        b3.update(&buf[..n]);
        if let Some(h) = &mut sha {
            h.update(&buf[..n]);
        }
    }
    Ok(FileDigests {
        blake3: b3.finalize().to_hex().to_string(),
        sha256: sha.map(|h| crate::source::hex(&h.finalize())),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published BLAKE3 and SHA-256 of "abc" (BLAKE3's and FIPS 180-2's test vectors), so
    /// `b3sum` and `sha256sum` give what the ledger records.
    const ABC_BLAKE3: &str = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_vectors_whole_and_limited() {
        let t = crate::testutil::tempdir().unwrap();
        let p = t.path().join("abc.jsonl");
        std::fs::write(&p, b"abcdef").unwrap();
        let d = file_digests(&p, true, Some(3)).unwrap();
        assert_eq!((d.blake3.as_str(), d.sha256.as_deref(), d.bytes), (ABC_BLAKE3, Some(ABC_SHA256), 3));
        let whole = file_digests(&p, false, None).unwrap();
        assert_eq!((whole.sha256, whole.bytes), (None, 6));
        let mut h = ContentHash::new();
        h.update(b"abc");
        h.update(b"def");
        assert_eq!(h.finish(), whole.blake3, "incremental and one-shot agree");
        assert!(file_digests(&t.path().join("missing"), false, None).is_err());
    }

    /// Many reads of odd sizes (as a decompressor's buffer makes them) hash as one.
    #[test]
    fn chunking_does_not_change_the_hash() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut one = ContentHash::new();
        one.update(&data);
        let mut many = ContentHash::new();
        for c in data.chunks(65_537) {
            many.update(c);
        }
        assert_eq!(one.finish(), many.finish());
    }
}
