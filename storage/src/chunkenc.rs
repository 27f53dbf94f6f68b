//! Chunk encodings. Only XOR (Prometheus encoding 1) for now.
//!
//! A chunk is identified on disk by its encoding byte; its checksum in segment files covers that
//! byte and the chunk data (see `docs/format/xor.md` and Prometheus's chunks format).

pub mod bstream;
pub mod xor;

/// Encoding byte of an XOR float chunk, as written in segment files.
pub const ENCODING_XOR: u8 = 1;

/// The CRC32C (Castagnoli) of a chunk as stored after it in a segment file: computed over the
/// encoding byte followed by the chunk data, serialised big-endian by the writer.
pub fn chunk_crc32c(encoding: u8, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&[encoding]), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_covers_encoding_then_data() {
        assert_eq!(chunk_crc32c(1, &[0, 0]), crc32c::crc32c(&[1, 0, 0]));
        // CRC-32C check value of "123456789".
        assert_eq!(chunk_crc32c(b'1', b"23456789"), 0xE306_9283);
    }
}
