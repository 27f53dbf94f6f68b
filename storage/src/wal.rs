//! The write-ahead log: segmented, CRC32C-framed records (series, samples, tombstones).
