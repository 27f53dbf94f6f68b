//! Whole-chunk XOR decoding: [`decode_into`] appends every sample of a chunk to a buffer, as the
//! query path reads chunks.
//!
//! It yields exactly what [`XorIterator`](super::XorIterator) yields and stops with the same
//! error, in one loop that keeps the decoder's state in registers. The stream is read through a
//! [`BitCursor`]: a peek is one unaligned 8-byte load (at least 57 bits), bits past the end read
//! as zero, and the end is checked once per sample rather than on every read. The common cases
//! come first and cheapest: an unchanged timestamp delta ('0'), and a value that is unchanged
//! ('0') or reuses the leading/trailing window ('10'), whose significant bits then usually come
//! out of the same peek as the headers.
//!
//! Errors match the iterator's because it too reads bits past the end as zero: a corrupt value
//! window is reported as soon as its (zero-padded) header is read, truncation once the sample's
//! bits are consumed, and a varint's truncation byte by byte before its overflow. A truncated
//! 64-bit delta of deltas leaves only zeros for the value header after it, so it is reported as
//! truncation in both.

use std::iter;

use super::ChunkError;
use crate::chunkenc::bstream::BitCursor;

/// Appends every sample of chunk `data` to `out`: what [`XorIterator`](super::XorIterator)
/// yields. On a corrupt or truncated chunk the samples before the damage are appended and the
/// error returned, as the iterator would stop and report it.
pub fn decode_into(data: &[u8], out: &mut Vec<(i64, f64)>) -> Result<(), ChunkError> {
    let [hi, lo, stream @ ..] = data else {
        return Err(ChunkError::HeaderTooShort { len: data.len() });
    };
    let count = u16::from_be_bytes([*hi, *lo]);
    let mut read = 0;
    decode_samples(stream, count, &mut read, out).map_err(|f| f.at(read, count))
}

/// Appends the `count` samples of bit stream `stream` to `out`, counting them in `read`.
fn decode_samples(
    stream: &[u8],
    count: u16,
    read: &mut u16,
    out: &mut Vec<(i64, f64)>,
) -> Result<(), Failure> {
    if count == 0 {
        return Ok(());
    }
    let mut dec = Decoder::new(stream);
    out.push(dec.first()?);
    *read = 1;
    if count == 1 {
        return Ok(());
    }
    out.push(dec.second()?);
    *read = 2;
    // The samples are written into slots made beforehand, without a capacity check per sample
    // (measured: 5 to 9% fewer instructions than pushing them, zeroing the slots included). Every
    // later sample takes at least 2 bits, so a corrupt count cannot make this allocate more than
    // the data can hold.
    let n = usize::from(count - 2).min(dec.stream.bits_left() / 2);
    let start = out.len();
    out.extend(iter::repeat_n((0, 0.0), n));
    let (written, result) = dec.fill(&mut out[start..]);
    out.truncate(start + written);
    *read += written as u16;
    result?;
    // Only a chunk whose data ends before its count gets here: its next sample fails.
    while *read < count {
        let mut slot = [(0, 0.0)];
        dec.fill(&mut slot).1?;
        out.push(slot[0]);
        *read += 1;
    }
    Ok(())
}

/// Why a sample could not be decoded; [`Failure::at`] adds where.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Truncated,
    VarintOverflow,
    BadValueWindow { leading: u8, sig_bits: u8 },
}

impl Failure {
    /// The error for sample `sample` of a chunk of `num_samples`.
    #[cold]
    fn at(self, sample: u16, num_samples: u16) -> ChunkError {
        match self {
            Failure::Truncated => ChunkError::Truncated {
                sample,
                num_samples,
            },
            Failure::VarintOverflow => ChunkError::VarintOverflow { sample },
            Failure::BadValueWindow { leading, sig_bits } => ChunkError::BadValueWindow {
                sample,
                leading,
                sig_bits,
            },
        }
    }
}

/// The decoder's state, in registers once [`Decoder::next`] is inlined into the loop.
#[derive(Clone, Copy)]
struct Decoder<'a> {
    stream: BitCursor<'a>,
    /// Timestamp of the last sample.
    t: i64,
    /// Timestamp delta between the last two samples (wrapping).
    delta: i64,
    /// Bits of the last value.
    bits: u64,
    /// Trailing zeros of the current window.
    trailing: u32,
    /// Significant bits of the current window (64 before the first: a corrupt '10' without a
    /// window reads 64 bits, as in the iterator).
    window_bits: u32,
}

impl<'a> Decoder<'a> {
    fn new(stream: &'a [u8]) -> Self {
        Self {
            stream: BitCursor::new(stream),
            t: 0,
            delta: 0,
            bits: 0,
            trailing: 0,
            window_bits: 64,
        }
    }

    /// The first sample: a zigzag varint timestamp and 64 raw value bits.
    fn first(&mut self) -> Result<(i64, f64), Failure> {
        let zigzag = self.uvarint()?;
        self.t = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
        self.bits = self.stream.peek_64();
        self.stream.consume(64);
        self.check_end()?;
        Ok((self.t, f64::from_bits(self.bits)))
    }

    /// The second sample: a uvarint timestamp delta and an XOR-encoded value.
    fn second(&mut self) -> Result<(i64, f64), Failure> {
        self.delta = self.uvarint()? as i64;
        self.t = self.t.wrapping_add(self.delta);
        self.value(self.stream.peek_57(), 0)?;
        self.check_end()?;
        Ok((self.t, f64::from_bits(self.bits)))
    }

    /// A uvarint (7 bits per byte, least significant group first, at most 10 bytes). Both of a
    /// chunk's varints start on a byte boundary: the first at the start of the stream, the second
    /// after it and 64 value bits.
    fn uvarint(&mut self) -> Result<u64, Failure> {
        let mut x = 0u64;
        for (i, &byte) in self.stream.aligned_rest().iter().take(10).enumerate() {
            if i == 9 && byte > 1 {
                return Err(Failure::VarintOverflow);
            }
            x |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.stream.consume(8 * (i as u32 + 1));
                return Ok(x);
            }
        }
        // Fewer than 10 bytes, all with the continuation bit.
        Err(Failure::Truncated)
    }

    /// Decodes samples after the second into `slots` until they are all written or a sample
    /// fails. Returns how many were written, and the failure.
    fn fill(&mut self, slots: &mut [(i64, f64)]) -> (usize, Result<(), Failure>) {
        // A copy in locals, which the compiler keeps in registers; working on `self` stores its
        // fields to memory on every sample (measured: 10% more instructions).
        let mut dec = *self;
        let mut written = 0;
        let mut result = Ok(());
        for slot in slots.iter_mut() {
            match dec.next() {
                Ok(sample) => *slot = sample,
                Err(f) => {
                    result = Err(f);
                    break;
                }
            }
            written += 1;
        }
        *self = dec;
        (written, result)
    }

    /// Fails if the sample's bits ran past the end of the data.
    #[inline]
    fn check_end(&self) -> Result<(), Failure> {
        if self.stream.overran() {
            return Err(Failure::Truncated);
        }
        Ok(())
    }

    /// A sample after the second: a delta of deltas and an XOR-encoded value.
    // Measured: with `#[inline]` instead of forcing the inlining of this and `value` (one copy
    // per kind of delta of deltas), decoding takes 50% more instructions.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn next(&mut self) -> Result<(i64, f64), Failure> {
        let peek = self.stream.peek_57();
        if peek >> 63 == 0 {
            // '0': the delta is unchanged. The value gets its own copy of the code below, which
            // knows where in the peek its header is.
            self.t = self.t.wrapping_add(self.delta);
            self.value(peek << 1, 1)?;
        } else {
            // The prefix is up to four 1 bits ended by a 0: '10', '110', '1110', '1111'.
            let ones = (!peek).leading_zeros();
            if ones < 4 {
                // A prefix of `ones + 1` bits and a payload of 14, 17 or 20 bits: 16, 20 or 24
                // bits. The payload is sign-extended so that the pattern 2^(n-1) reads positive
                // (Prometheus's buckets, see `bucket_dod` in xor.rs): decremented in its field,
                // shifted down arithmetically, incremented, without a branch on the sign.
                let shift = 53 - 3 * ones;
                let field = (peek << (ones + 1)).wrapping_sub(1 << shift);
                let dod = ((field as i64) >> shift) + 1;
                let len = 12 + 4 * ones;
                self.delta = self.delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.delta);
                self.value(peek << len, len)?;
            } else {
                // '1111' and 64 bits.
                self.stream.consume(4);
                let dod = self.stream.peek_64() as i64;
                self.stream.consume(64);
                self.delta = self.delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.delta);
                self.value(self.stream.peek_57(), 0)?;
            }
        }
        self.check_end()?;
        Ok((self.t, f64::from_bits(self.bits)))
    }

    /// Decodes a value into `self.bits`. `peek` holds the bits from the value's header on, at
    /// least `57 - used` of them, where `used` (at most 24) counts the bits of the stream before
    /// the header that are not consumed yet.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn value(&mut self, peek: u64, used: u32) -> Result<(), Failure> {
        if peek >> 63 == 0 {
            // '0': the value is unchanged.
            self.stream.consume(used + 1);
            return Ok(());
        }
        let (header_len, sig_bits) = if (peek >> 62) & 1 == 0 {
            // '10': the window is reused.
            (2, self.window_bits)
        } else {
            // '11', 5 bits of leading zeros, 6 bits of significant bits (0 means 64).
            let leading = ((peek >> 57) & 0x1f) as u32;
            let sig_bits = match ((peek >> 51) & 0x3f) as u32 {
                0 => 64,
                n => n,
            };
            if leading + sig_bits > 64 {
                return Err(Failure::BadValueWindow {
                    leading: leading as u8,
                    sig_bits: sig_bits as u8,
                });
            }
            self.trailing = 64 - leading - sig_bits;
            self.window_bits = sig_bits;
            (2 + 5 + 6, sig_bits)
        };
        // 1 to 64 significant bits, from `peek` when it holds them.
        let total = used + header_len + sig_bits;
        let top = if total <= 57 {
            self.stream.consume(total);
            peek << header_len
        } else {
            self.stream.consume(used + header_len);
            let top = if sig_bits <= 57 {
                self.stream.peek_57()
            } else {
                self.stream.peek_64()
            };
            self.stream.consume(sig_bits);
            top
        };
        self.bits ^= (top >> (64 - sig_bits)) << self.trailing;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::xor::{XorEncoder, XorIterator};

    /// What `decode_into` appends to a buffer (as bits) and returns, asserted equal to what the
    /// iterator yields and reports.
    fn check(data: &[u8]) -> (Vec<(i64, u64)>, Option<ChunkError>) {
        let mut it = XorIterator::new(data);
        let expected: Vec<(i64, u64)> = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
        let mut out = vec![(-1, -1.0)];
        let res = decode_into(data, &mut out);
        assert_eq!(out[0], (-1, -1.0), "decode_into appends");
        let got: Vec<(i64, u64)> = out[1..].iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, expected, "samples of {data:02x?}");
        assert_eq!(res.clone().err(), it.err(), "error of {data:02x?}");
        (got, res.err())
    }

    fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
        let mut enc = XorEncoder::new();
        for &(t, v) in samples {
            enc.append(t, f64::from_bits(v));
        }
        enc.into_bytes()
    }

    /// `samples` round-trip, and every truncation of their chunk decodes as the iterator does;
    /// with `flips`, so does the chunk with any one bit flipped.
    fn check_chunk(samples: &[(i64, u64)], flips: bool) {
        let data = encode(samples);
        assert_eq!(check(&data), (samples.to_vec(), None));
        for len in 0..data.len() {
            let (got, err) = check(&data[..len]);
            assert!(err.is_some() || got.len() == samples.len(), "cut at {len}");
        }
        if flips {
            let mut flipped = data.clone();
            for bit in 0..data.len() * 8 {
                flipped[bit / 8] ^= 0x80 >> (bit % 8);
                check(&flipped);
                flipped[bit / 8] ^= 0x80 >> (bit % 8);
            }
        }
    }

    /// A deterministic splitmix64 generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn chunks_shorter_than_a_word_match_the_iterator() {
        // Every chunk of up to 2 bytes, then random ones of 3 to 17 bytes (a stream shorter than
        // one 8-byte load, and just longer), with small and random counts.
        check(&[]);
        for a in 0..=255 {
            check(&[a]);
            for b in 0..=255 {
                check(&[a, b]);
            }
        }
        let mut rng = Rng(7);
        for len in 3..=17 {
            for i in 0..20_000 {
                let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if i % 2 == 0 {
                    data[0] = 0;
                    data[1] = (i % 5) as u8;
                }
                check(&data);
            }
        }
    }

    #[test]
    fn last_sample_ending_on_a_word_boundary() {
        // t0 = 0 and 1.0: 8 + 64 bits; t1 = 1 and an unchanged value: 8 + 1; t2 with a delta of
        // deltas of 5: 16 + 1; then 2 bits per sample: 98 + 2k bits, a multiple of 64 for k = 15
        // and k = 47, so that the data ends exactly with the last sample's last bit.
        for (k, words) in [(15, 2), (47, 3)] {
            let mut samples = vec![(0, 1f64.to_bits()), (1, 1f64.to_bits())];
            samples.extend((0..=k).map(|i| (7 + 6 * i, 1f64.to_bits())));
            let data = encode(&samples);
            assert_eq!(data.len(), 2 + 8 * words, "{k} samples of 2 bits");
            check_chunk(&samples, true);
            // One sample more needs 2 bits past the data.
            let mut data = data;
            data[1] += 1;
            assert_eq!(
                check(&data).1,
                Some(ChunkError::Truncated {
                    sample: u16::from(data[1]) - 1,
                    num_samples: u16::from(data[1])
                })
            );
        }
    }

    #[test]
    fn every_dod_bucket_and_its_edges() {
        let mut dods = vec![0, 1, -1, 2, 5, 100, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)];
        for n in [14, 17, 20] {
            let half = 1i64 << (n - 1);
            dods.extend([half, -(half - 1), half + 1, -half, half - 1, -(half - 2)]);
        }
        let bits = [1.0f64, 1.5, 1.5, -3.25, 1e300, 1e300, 0.0];
        for &dod in &dods {
            // Each delta of deltas between zero ones, so that every sample is at another offset.
            let mut samples = vec![(0i64, 0u64), (1000, 1.0f64.to_bits())];
            let mut delta = 1000i64;
            for (i, v) in bits.iter().enumerate() {
                let d = if i % 2 == 0 { dod } else { 0 };
                delta = delta.wrapping_add(d);
                let t = samples.last().map_or(0, |s| s.0).wrapping_add(delta);
                samples.push((t, v.to_bits()));
            }
            check_chunk(&samples, dod == 8192 || dod == i64::MIN);
        }
    }

    #[test]
    fn every_significant_bit_count_at_every_offset() {
        // For each window width, a new window ('11') then its reuse ('10') twice, after each kind
        // of delta of deltas and at each bit offset (a sample of 17 bits moves it by one).
        for sig in 1..=64u32 {
            let xor = if sig == 1 {
                1 << 63
            } else {
                (1 << 63) | (1 << (64 - sig))
            };
            for dod in [0i64, 5, 10_000, 100_000, 1 << 40] {
                for pad in 0..8 {
                    let base = 0x4059_0000_0000_0000u64;
                    let mut samples = vec![(0, base), (100, base)];
                    for i in 0..pad {
                        // Deltas of 101, 102, ...: a delta of deltas of 1, 17 bits with the value.
                        samples.push((200 + 100 * i + (i + 1) * (i + 2) / 2, base));
                    }
                    let delta = samples[samples.len() - 1].0 - samples[samples.len() - 2].0;
                    let mut t = samples[samples.len() - 1].0;
                    for (i, v) in [base ^ xor, base, base ^ xor, base].into_iter().enumerate() {
                        t += delta + if i == 0 { dod } else { 0 };
                        samples.push((t, v));
                    }
                    check_chunk(&samples, false);
                }
            }
        }
    }

    #[test]
    fn values_with_64_significant_bits() {
        // Sign and lowest bit differ: a new window of 0 leading and trailing zeros, its width
        // written as 0; the next value reuses that window, the one after is unchanged, and the
        // next (back to `v`) reuses it again.
        let v = 0x3ff0_0000_0000_0000u64;
        let samples: Vec<(i64, u64)> = (0..40)
            .map(|i| {
                let bits = match i % 4 {
                    0 => v,
                    1 => v ^ 0x8000_0000_0000_0001,
                    _ => v ^ 0xc000_0000_0000_0003,
                };
                (i * 15_000 + (i % 3), bits)
            })
            .collect();
        check_chunk(&samples, true);
    }

    #[test]
    fn leading_zeros_clamp_at_31() {
        // 63 and 43 leading zeros are written as 31 (33 and 13 significant bits), as in
        // Prometheus; 31 exactly is not clamped.
        let v = 2.5f64.to_bits();
        let samples: Vec<(i64, u64)> = [0, 1, 0, 1 << 20, 0, 1 << 32, 1 << 32, 3]
            .iter()
            .enumerate()
            .map(|(i, x)| (i as i64 * 1000, v ^ x))
            .collect();
        check_chunk(&samples, true);
    }

    #[test]
    fn random_chunks_match_the_iterator() {
        let mut rng = Rng(42);
        for chunk in 0..300 {
            let len = (rng.next() % 150) as usize;
            let mut t = rng.next() as i64;
            let mut v = rng.next();
            let mut delta = 15_000i64;
            let samples: Vec<(i64, u64)> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    delta = delta.wrapping_add(match r % 8 {
                        0 => (r >> 8) as i64,
                        1 => ((r >> 8) % 1_000_000) as i64 - 500_000,
                        2 | 3 => ((r >> 8) % 11) as i64 - 5,
                        _ => 0,
                    });
                    t = t.wrapping_add(delta);
                    v = match (r >> 4) % 6 {
                        0 => rng.next(),
                        1 => v ^ (rng.next() >> (r % 64)),
                        2 => v ^ (rng.next() << (r % 64)),
                        3 => (f64::from_bits(v) + 1.0).to_bits(),
                        _ => v,
                    };
                    (t, v)
                })
                .collect();
            check_chunk(&samples, chunk % 30 == 0);
        }
    }

    #[test]
    fn corrupt_counts_do_not_allocate_beyond_the_data() {
        let mut data = encode(&[(0, 0), (1, 0), (2, 0)]);
        data[0] = 0xff;
        data[1] = 0xff;
        let mut out = Vec::new();
        assert_eq!(
            decode_into(&data, &mut out),
            Err(ChunkError::Truncated {
                sample: 5,
                num_samples: 0xffff
            })
        );
        // The zero padding decodes as unchanged samples until the data ends.
        assert_eq!(out.len(), 5);
        assert!(out.capacity() < 64, "capacity {}", out.capacity());
    }
}
