"""The held-out split: a seeded hash of each request's identity, not its position.

Why a hash: a positional split (every fifth record, the last 20 %) follows the order of the
logs, which is time; a hash of the request id splits every hour and batch size alike, and
the same request falls on the same side on every run and for any file order. Why this hash:
it is written here (64-bit FNV-1a over the key's UTF-8 bytes, started from the seed, then
the splitmix64 finaliser), so a split can be reproduced from its seed on any machine and by
any later version; a library's hash of strings is allowed to change between releases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from wattledger._deferred import deferred

if TYPE_CHECKING:
    import polars as pl
else:
    pl = deferred("polars")

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _splitmix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def key_hash(keys: pl.Series, seed: int) -> npt.NDArray[np.uint64]:
    """The 64-bit hash of each key (utf8, no nulls) under ``seed``; vectorised over records
    (the loop runs over byte positions, at most the longest key)."""
    raw = keys.cast(pl.Binary).to_numpy()
    lengths = keys.str.len_bytes().to_numpy().astype(np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    # One row of bytes per key, zero-padded; padding is masked out below, so a key hashes the
    # same whatever the longest key of the run is.
    padded = np.array(raw, dtype=f"S{max(width, 1)}")
    matrix = padded.view(np.uint8).reshape(len(raw), max(width, 1))
    with np.errstate(over="ignore"):
        h = np.full(len(raw), _FNV_OFFSET ^ _splitmix(np.array([seed], dtype=np.uint64))[0], dtype=np.uint64)
        for j in range(width):
            live = lengths > j
            stepped = (h ^ matrix[:, j].astype(np.uint64)) * _FNV_PRIME
            h = np.where(live, stepped, h)
        return _splitmix(h)


def request_keys(frame: pl.DataFrame) -> pl.Series:
    """Each record's identity: its ``request_id``, else ``source:line`` (a record without an id
    is still the same record on the next run of the same file)."""
    return frame.select(
        pl.coalesce(
            pl.concat_str(pl.lit("id:"), pl.col("request_id")),
            pl.concat_str(pl.lit("at:"), pl.col("source"), pl.lit(":"), pl.col("line").cast(pl.Utf8)),
        ).alias("key")
    ).to_series()


def unit(frame: pl.DataFrame, seed: int) -> npt.NDArray[np.float64]:
    """Each record's hash read as a number in [0, 1) (53 bits): records sharing a request id
    get the same number."""
    h = key_hash(request_keys(frame), seed)
    return np.asarray((h >> np.uint64(11)).astype(np.float64) / float(1 << 53))


def held_out(frame: pl.DataFrame, share: float, seed: int) -> npt.NDArray[np.bool_]:
    """Which records are held out: those whose :func:`unit` is below ``share``."""
    return np.asarray(unit(frame, seed) < share)


def halves(frame: pl.DataFrame, seed: int) -> npt.NDArray[np.bool_]:
    """A second, independent split of the same records into two halves (the cross-check of
    the band's coverage): the same hash under another seed."""
    h = key_hash(request_keys(frame), seed ^ 0x5BD1E995)
    return np.asarray((h >> np.uint64(63)) == np.uint64(1))
