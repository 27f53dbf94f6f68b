//! Snappy block format (not the framed format) for remote-write bodies, over `snap::raw`.
//!
//! A block starts with its uncompressed length as a varint (at most 5 bytes, at most
//! `u32::MAX`). [`decompress_into`] checks that declared length against the caller's limit before
//! touching the output buffer, so a tiny body cannot make us allocate what it claims. The output
//! buffer is reused between requests: it only grows, never shrinks, and is not re-zeroed (only the
//! bytes beyond its previous length are initialised, once); the decompressor overwrites the first
//! `n` bytes, which are the only meaningful ones.

/// Why a body could not be decompressed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnappyError {
    /// The body declares more uncompressed bytes than allowed (HTTP 413).
    #[error("snappy body declares {declared} uncompressed bytes, more than the limit of {limit}")]
    TooLarge { declared: usize, limit: usize },
    /// The body is not valid snappy block format (HTTP 400).
    #[error("corrupt snappy body: {0}")]
    Corrupt(String),
}

/// Largest expansion of any snappy element: a 3-byte copy with a 2-byte offset emits 64 bytes.
/// A body that declares more than this times its own size cannot be valid.
const MAX_EXPANSION: usize = 22;

/// Reads the uncompressed length that a snappy block-format body declares, without decompressing.
///
/// An empty body or an unreadable header is [`SnappyError::Corrupt`]; a declared length beyond
/// what the format allows (`u32::MAX`) is [`SnappyError::TooLarge`].
pub fn declared_len(compressed: &[u8]) -> Result<usize, SnappyError> {
    if compressed.is_empty() {
        return Err(SnappyError::Corrupt("empty body".to_owned()));
    }
    snap::raw::decompress_len(compressed).map_err(|e| match e {
        snap::Error::TooBig { given, max } => SnappyError::TooLarge {
            declared: usize::try_from(given).unwrap_or(usize::MAX),
            limit: usize::try_from(max).unwrap_or(usize::MAX),
        },
        e => SnappyError::Corrupt(e.to_string()),
    })
}

/// Decompresses a snappy block into `out` (resized as needed, reusing capacity; only the first
/// n bytes are meaningful), checking the declared length against `max_len` BEFORE allocating.
///
/// Returns n, the uncompressed length. `out` is grown when shorter than n and never shrunk, so a
/// buffer reused across requests stops allocating once it has seen the largest one.
pub fn decompress_into(
    compressed: &[u8],
    out: &mut Vec<u8>,
    max_len: usize,
) -> Result<usize, SnappyError> {
    let n = match declared_len(compressed) {
        Ok(n) => n,
        Err(SnappyError::TooLarge { declared, .. }) => {
            return Err(SnappyError::TooLarge {
                declared,
                limit: max_len,
            });
        }
        Err(e) => return Err(e),
    };
    if n > max_len {
        return Err(SnappyError::TooLarge {
            declared: n,
            limit: max_len,
        });
    }
    if n > compressed.len().saturating_mul(MAX_EXPANSION) {
        return Err(SnappyError::Corrupt(format!(
            "declares {n} uncompressed bytes, more than {} compressed bytes can hold",
            compressed.len()
        )));
    }
    if out.len() < n {
        out.resize(n, 0);
    }
    let written = snap::raw::Decoder::new()
        .decompress(compressed, &mut out[..n])
        .map_err(|e| SnappyError::Corrupt(e.to_string()))?;
    if written != n {
        return Err(SnappyError::Corrupt(format!(
            "decompressed {written} bytes, header declared {n}"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn compress(data: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(data)
            .expect("compressible")
    }

    /// A snappy header claiming `len` bytes followed by one literal byte.
    fn crafted(len: u64) -> Vec<u8> {
        let mut v = Vec::new();
        let mut x = len;
        while x >= 0x80 {
            v.push((x as u8) | 0x80);
            x >>= 7;
        }
        v.push(x as u8);
        v.extend_from_slice(&[0x00, b'a']); // literal of length 1
        v
    }

    #[test]
    fn round_trip_reuses_the_buffer() {
        let big: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let small = b"hello hello hello hello".to_vec();
        let mut out = Vec::new();
        let n = decompress_into(&compress(&big), &mut out, 64 * MIB).unwrap();
        assert_eq!(&out[..n], &big[..]);
        let cap = out.capacity();
        let ptr = out.as_ptr();
        let n = decompress_into(&compress(&small), &mut out, 64 * MIB).unwrap();
        assert_eq!(&out[..n], &small[..]);
        assert_eq!(
            (out.capacity(), out.as_ptr()),
            (cap, ptr),
            "buffer reused, not shrunk"
        );
        assert_eq!(out.len(), big.len(), "never shrunk");
    }

    #[test]
    fn declared_too_large_is_refused_before_allocating() {
        let body = crafted(200 * MIB as u64);
        assert_eq!(declared_len(&body), Ok(200 * MIB));
        let mut out = Vec::new();
        assert_eq!(
            decompress_into(&body, &mut out, 64 * MIB),
            Err(SnappyError::TooLarge {
                declared: 200 * MIB,
                limit: 64 * MIB
            })
        );
        assert_eq!(out.capacity(), 0, "nothing allocated");
    }

    #[test]
    fn declared_beyond_u32_is_too_large() {
        let body = crafted(u64::from(u32::MAX) + 1);
        assert!(matches!(
            declared_len(&body),
            Err(SnappyError::TooLarge { .. })
        ));
        let mut out = Vec::new();
        assert_eq!(
            decompress_into(&body, &mut out, 64 * MIB),
            Err(SnappyError::TooLarge {
                declared: 1 << 32,
                limit: 64 * MIB
            })
        );
    }

    #[test]
    fn declared_beyond_possible_expansion_is_corrupt_without_allocating() {
        let body = crafted(MIB as u64);
        let mut out = Vec::new();
        assert!(matches!(
            decompress_into(&body, &mut out, 64 * MIB),
            Err(SnappyError::Corrupt(_))
        ));
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn most_compressible_input_is_within_the_expansion_bound() {
        let zeros = vec![0u8; 4 * MIB];
        let body = compress(&zeros);
        let mut out = Vec::new();
        assert_eq!(decompress_into(&body, &mut out, 64 * MIB), Ok(zeros.len()));
    }

    #[test]
    fn truncated_and_empty_bodies_are_corrupt() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 13) as u8).collect();
        let body = compress(&data);
        let mut out = Vec::new();
        for cut in 0..body.len() {
            let r = decompress_into(&body[..cut], &mut out, 64 * MIB);
            assert!(
                matches!(r, Err(SnappyError::Corrupt(_))),
                "cut at {cut}: {r:?}"
            );
        }
        assert!(matches!(declared_len(&[]), Err(SnappyError::Corrupt(_))));
        // A header of more than 5 bytes.
        assert!(matches!(
            declared_len(&[0x80; 6]),
            Err(SnappyError::Corrupt(_))
        ));
    }
}
