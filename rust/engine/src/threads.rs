//! How many worker threads a run uses: the one reading of `threads = 0` ("all cores").

/// `requested` worker threads, or every core the process may use when `requested` is 0 (one
/// when that cannot be known). The readers spawn this many workers and the pipeline shares
/// the memory budget between them, so both must read 0 the same way.
pub fn worker_threads(requested: usize) -> usize {
    match requested {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_every_core_and_other_counts_are_kept() {
        assert_eq!(worker_threads(3), 3);
        assert_eq!(worker_threads(1), 1);
        let all = worker_threads(0);
        assert!(all >= 1);
        assert_eq!(all, std::thread::available_parallelism().map_or(1, |n| n.get()));
    }
}
