//! Bit stream writer and reader used by the XOR encoding.
//!
//! Bits are packed most significant first: the first bit written is the top bit of the first
//! stream byte, exactly as Prometheus lays out its chunk streams. A stream of `n` bits occupies
//! `n.div_ceil(8)` bytes and the unused low bits of its last byte are zero, so the written bytes
//! are always a complete chunk body padded to whole bytes.
//!
//! [`BitWriter`] owns its buffer, which starts with a few header bytes (the XOR chunk's sample
//! count) that the caller sets directly. It never reads its buffer back: the 64-bit word being
//! filled lives in a register, and a write of up to 64 bits is a few shifts and two unaligned
//! stores (the word and the bits that spill into the next one), without a loop over bits or a
//! data-dependent branch. Invariants: the buffer always holds the stored word plus at least one
//! zero byte past it, and every bit after the written ones is zero, so the written bytes can be
//! handed out, with a trailing zero byte if asked (see [`BitWriter::bytes_with_zeros`]), without
//! copying.
//!
//! [`BitReader`] borrows the bytes it reads and never reads past them: a read that would run past
//! the end returns `None` and consumes nothing, so decoders of outside input cannot panic.
//!
//! [`BitCursor`] is the reader of whole-chunk decoding loops: a peek is one unaligned big-endian
//! load of the 8 bytes at the current byte (a zero-padded copy within 8 bytes of the end), and
//! consuming bits only moves the position, which may pass the end. Bits past the end read as zero;
//! the decoder checks [`BitCursor::overran`] once per record instead of on every read.

/// Bytes the buffer must hold from the current word on before a write: the word, the next one
/// (bits may spill into it, and it becomes the current word) and the zero byte
/// [`BitWriter::bytes_with_zeros`] may hand out after the written bytes.
const SLACK: usize = 17;

/// Appends bits to an owned, growable byte buffer that starts with a byte header.
#[derive(Debug, Clone)]
pub struct BitWriter {
    /// Header bytes, the stream's bytes, then zero bytes: at least 9 from `word_at`.
    buf: Vec<u8>,
    /// Length of the header before the first stream byte.
    header_len: usize,
    /// Offset in `buf` of the 64-bit word the next bits go into.
    word_at: usize,
    /// That word, filled from its top bit; always already stored at `word_at`.
    word: u64,
    /// Bits of `word` filled, 0 to 63.
    word_bits: u32,
}

impl Default for BitWriter {
    fn default() -> Self {
        Self::with_header(0, 0)
    }
}

impl BitWriter {
    /// A writer whose bytes start with `header_len` zero bytes (see [`Self::header_mut`]) and that
    /// holds `capacity` bytes of stream before its buffer grows.
    pub fn with_header(header_len: usize, capacity: usize) -> Self {
        Self {
            buf: vec![0; header_len + capacity + SLACK],
            header_len,
            word_at: header_len,
            word: 0,
            word_bits: 0,
        }
    }

    /// The header bytes, to set in place.
    pub fn header_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.header_len]
    }

    /// Number of bits written to the stream so far (the header not included).
    pub fn len_bits(&self) -> usize {
        (self.word_at - self.header_len) * 8 + self.word_bits as usize
    }

    /// Number of bytes of the header and the written bits (the last byte possibly partial).
    pub fn len_bytes(&self) -> usize {
        self.word_at + self.word_bits.div_ceil(8) as usize
    }

    /// The header and the written bytes; the unwritten low bits of the last byte are zero.
    pub fn bytes(&self) -> &[u8] {
        self.bytes_with_zeros(0)
    }

    /// The header and the written bytes, followed by `zeros` (0 or 1) zero bytes.
    ///
    /// Prometheus's stream ends with an empty byte after a write of whole bytes that ends on a
    /// byte boundary, and chunk data includes it; the XOR encoder uses this to match it.
    ///
    /// # Panics
    /// If `zeros` is more than 1.
    pub fn bytes_with_zeros(&self, zeros: usize) -> &[u8] {
        assert!(zeros <= 1, "at most one zero byte follows the stream");
        &self.buf[..self.len_bytes() + zeros]
    }

    /// [`Self::bytes_with_zeros`] as an owned vector. Its capacity may exceed its length (the
    /// buffer is not reallocated); call `shrink_to_fit` on it to keep it long-term at its exact
    /// size.
    ///
    /// # Panics
    /// If `zeros` is more than 1.
    pub fn into_bytes_with_zeros(mut self, zeros: usize) -> Vec<u8> {
        assert!(zeros <= 1, "at most one zero byte follows the stream");
        let len = self.len_bytes() + zeros;
        self.buf.truncate(len);
        self.buf
    }

    /// Writes the low `n` bits of `value`, most significant first. Bits of `value` above `n` are
    /// ignored. `n` must be at most 64.
    #[inline]
    pub fn write_bits(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64, "write_bits of {n} bits");
        if n == 0 {
            return;
        }
        if self.buf.len() < self.word_at + SLACK {
            self.grow();
        }
        // Left-align the bits so that the first one to write is bit 63.
        let aligned = value << (64 - n);
        let word = self.word | (aligned >> self.word_bits);
        // The bits that do not fit in the word (zero if all fit): `aligned << (64 - word_bits)`,
        // in two steps so that an empty word does not shift by 64.
        let spill = (aligned << 1) << (63 - self.word_bits);
        self.buf[self.word_at..self.word_at + 8].copy_from_slice(&word.to_be_bytes());
        self.buf[self.word_at + 8..self.word_at + 16].copy_from_slice(&spill.to_be_bytes());
        let total = self.word_bits + n;
        let full = total >= 64;
        self.word_at += usize::from(full) * 8;
        self.word = if full { spill } else { word };
        self.word_bits = total % 64;
    }

    /// Writes one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes eight bits.
    #[inline]
    pub fn write_byte(&mut self, byte: u8) {
        self.write_bits(u64::from(byte), 8);
    }

    /// Grows the zeroed buffer to hold [`SLACK`] bytes from `word_at`, at least doubling it.
    #[cold]
    fn grow(&mut self) {
        let new_len = (self.word_at + SLACK).max(self.buf.len() * 2);
        self.buf.resize(new_len, 0);
    }
}

/// Reads bits, most significant first, from a borrowed byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Bits consumed so far.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bits left to read (including any zero padding at the end of the last byte).
    #[inline]
    pub fn bits_left(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    /// At least the next 120 bits (121 to 128), without consuming them, at the top of the result;
    /// the bits below them, and bits past the end of the data, read as zero.
    #[inline]
    pub fn peek_120(&self) -> u128 {
        let byte = self.pos / 8;
        let rest = self.data.get(byte..).unwrap_or(&[]);
        let window = if let Some(sixteen) = rest.first_chunk::<16>() {
            u128::from_be_bytes(*sixteen)
        } else {
            let mut padded = [0u8; 16];
            padded[..rest.len()].copy_from_slice(rest);
            u128::from_be_bytes(padded)
        };
        window << (self.pos % 8)
    }

    /// The next 64 bits without consuming them; bits past the end of the data read as zero.
    #[inline]
    pub fn peek_64(&self) -> u64 {
        (self.peek_120() >> 64) as u64
    }

    /// Consumes `n` bits, or returns `None` (consuming nothing) if fewer are left.
    #[inline]
    pub fn skip(&mut self, n: u32) -> Option<()> {
        if (n as usize) > self.bits_left() {
            return None;
        }
        self.pos += n as usize;
        Some(())
    }

    /// Reads `n` bits (at most 64) as the low bits of the result, or returns `None` (consuming
    /// nothing) if fewer are left.
    #[inline]
    pub fn read_bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!(n <= 64, "read_bits of {n} bits");
        if n == 0 {
            return Some(0);
        }
        if (n as usize) > self.bits_left() {
            return None;
        }
        let bits = self.peek_64();
        self.pos += n as usize;
        Some(bits >> (64 - n))
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|bit| bit == 1)
    }

    /// Reads eight bits.
    #[inline]
    pub fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|byte| byte as u8)
    }
}

/// The 8 bytes of `data` from byte `byte` on as a big-endian word, bytes past the end as zero.
#[inline]
fn load_be(data: &[u8], byte: usize) -> u64 {
    match data.get(byte..byte + 8) {
        Some(eight) => u64::from_be_bytes(eight.try_into().unwrap_or_default()),
        None => load_be_tail(data, byte),
    }
}

/// [`load_be`] within 8 bytes of the end of `data` (or past it).
#[cold]
#[inline(never)]
fn load_be_tail(data: &[u8], byte: usize) -> u64 {
    let rest = data.get(byte..).unwrap_or(&[]);
    let mut padded = [0u8; 8];
    let n = rest.len().min(8);
    padded[..n].copy_from_slice(&rest[..n]);
    u64::from_be_bytes(padded)
}

/// Reads bits, most significant first, from a borrowed byte slice, for decoders that check the
/// end once per record: peeks and consumes never fail, bits past the end read as zero, and
/// [`Self::overran`] tells whether the bits consumed ran past the end.
#[derive(Debug, Clone, Copy)]
pub struct BitCursor<'a> {
    data: &'a [u8],
    /// Bits consumed so far; may exceed the data's bits.
    pos: usize,
}

impl<'a> BitCursor<'a> {
    /// A cursor at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// At least the next 57 bits at the top of the result (one 8-byte load); the bits below them
    /// are zero, and so are bits past the end of the data.
    #[inline]
    pub fn peek_57(&self) -> u64 {
        load_be(self.data, self.pos / 8) << (self.pos % 8)
    }

    /// The next 64 bits (two 8-byte loads); bits past the end of the data read as zero.
    #[inline]
    pub fn peek_64(&self) -> u64 {
        let far = self.pos + 56;
        self.peek_57() | (load_be(self.data, far / 8) << (far % 8)) >> 56
    }

    /// The bytes from the current position on, which must be on a byte boundary; empty past the
    /// end.
    #[inline]
    pub fn aligned_rest(&self) -> &'a [u8] {
        debug_assert!(
            self.pos.is_multiple_of(8),
            "unaligned cursor at bit {}",
            self.pos
        );
        self.data.get(self.pos / 8..).unwrap_or(&[])
    }

    /// Consumes `n` bits, even past the end of the data.
    #[inline]
    pub fn consume(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Bits left to read (including any zero padding at the end of the last byte); 0 once the
    /// cursor has run past the end.
    #[inline]
    pub fn bits_left(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Whether more bits were consumed than the data holds.
    #[inline]
    pub fn overran(&self) -> bool {
        self.pos > self.data.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_pack_most_significant_first() {
        let mut w = BitWriter::default();
        w.write_bit(true);
        w.write_bits(0b01, 2);
        w.write_bits(0xABCD, 16);
        assert_eq!(w.len_bits(), 19);
        // 1 01 1010 1011 1100 1101 + 5 zero bits of padding.
        assert_eq!(w.bytes(), &[0b1011_0101, 0b0111_1001, 0b1010_0000]);
    }

    #[test]
    fn straddling_64_bit_writes_and_reads_round_trip() {
        let mut w = BitWriter::with_header(3, 0);
        let values: Vec<(u64, u32)> = (0..200u32)
            .map(|i| {
                let n = (i * 7 + 3) % 65;
                let v = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(u64::from(i) + 1);
                (if n == 64 { v } else { v & ((1u64 << n) - 1) }, n)
            })
            .collect();
        for &(v, n) in &values {
            w.write_bits(v, n);
        }
        let total: u32 = values.iter().map(|&(_, n)| n).sum();
        assert_eq!(w.len_bits(), total as usize);
        assert_eq!(w.bytes_with_zeros(1).last(), Some(&0));
        let bytes = w.into_bytes_with_zeros(0);
        assert_eq!(bytes.len(), 3 + (total as usize).div_ceil(8));
        let mut r = BitReader::new(&bytes[3..]);
        for &(v, n) in &values {
            assert_eq!(r.read_bits(n), Some(v), "{n} bits");
        }
        assert!(r.bits_left() < 8);
        assert_eq!(r.read_bits(8), None);
    }

    #[test]
    fn reads_past_the_end_consume_nothing() {
        let mut r = BitReader::new(&[0xFF]);
        assert_eq!(r.read_bits(9), None);
        assert_eq!(r.read_bits(3), Some(0b111));
        assert_eq!(r.skip(6), None);
        assert_eq!(r.read_bits(5), Some(0b11111));
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.peek_64(), 0);
    }

    #[test]
    fn cursor_peeks_what_the_reader_reads_at_every_offset() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(0x9d) ^ 0x5a).collect();
        for len in 0..=data.len() {
            let data = &data[..len];
            for pos in 0..=len * 8 + 80 {
                let mut cursor = BitCursor::new(data);
                cursor.consume(pos as u32);
                let left = (len * 8).saturating_sub(pos);
                assert_eq!(cursor.bits_left(), left);
                assert_eq!(cursor.overran(), pos > len * 8, "{pos} of {len} bytes");
                // The reader's bits, then zeros past the end.
                let mut reader = BitReader::new(data);
                let expected = if pos <= len * 8 {
                    reader.skip(pos as u32).unwrap();
                    reader.peek_64()
                } else {
                    0
                };
                assert_eq!(
                    cursor.peek_64(),
                    expected,
                    "peek_64 at {pos} of {len} bytes"
                );
                let peek = cursor.peek_57();
                let valid = 64 - pos % 8;
                assert!(valid >= 57);
                assert_eq!(peek >> (64 - valid), expected >> (64 - valid), "at {pos}");
                assert_eq!(peek & ((1 << (pos % 8)) - 1), 0, "low bits at {pos}");
                if pos % 8 == 0 {
                    assert_eq!(cursor.aligned_rest(), data.get(pos / 8..).unwrap_or(&[]));
                }
            }
        }
    }

    #[test]
    fn header_is_set_in_place() {
        let mut w = BitWriter::with_header(2, 0);
        w.write_bits(0b101, 3);
        w.header_mut().copy_from_slice(&[0x12, 0x34]);
        w.write_bits(0b1, 1);
        assert_eq!(w.len_bits(), 4);
        assert_eq!(w.bytes(), &[0x12, 0x34, 0b1011_0000]);
    }
}
