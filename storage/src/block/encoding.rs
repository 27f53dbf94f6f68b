//! Integer encodings shared by the block files: Go's `uvarint` / zigzag `varint` (at most 10
//! bytes), big-endian fixed-width integers, and a bounds-checked [`Cursor`] for decoding bytes
//! that come from outside (every read checks the length; nothing here can panic on input).

/// Why a read from a [`Cursor`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes end before the value does.
    Eof,
    /// A varint runs past 64 bits, or a value does not fit its declared width.
    Overflow,
}

/// Reads values front to back from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Eof)?;
        let b = self.buf.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(b)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Eof)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn be32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn be64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Go's `binary.Uvarint`: 7 bits per byte, least significant group first, at most 10 bytes.
    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..MAX_VARINT_LEN {
            let b = self.byte()?;
            if b < 0x80 {
                if i == MAX_VARINT_LEN - 1 && b > 1 {
                    return Err(DecodeError::Overflow);
                }
                return Ok(x | u64::from(b) << shift);
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err(DecodeError::Overflow)
    }

    /// A uvarint that must fit in 32 bits.
    pub(crate) fn uvarint32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.uvarint()?).map_err(|_| DecodeError::Overflow)
    }

    /// A uvarint used as a length or count.
    pub(crate) fn uvarint_usize(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.uvarint()?).map_err(|_| DecodeError::Overflow)
    }

    /// Go's `binary.Varint`: a zigzag-encoded uvarint.
    pub(crate) fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint length followed by that many bytes.
    pub(crate) fn uvarint_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.uvarint_usize()?;
        self.bytes(n)
    }
}

/// The longest uvarint of a `u64`.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Appends `x` as a uvarint.
#[inline]
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push(x as u8 | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// Appends `x` as a zigzag varint.
#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, ((x << 1) ^ (x >> 63)) as u64);
}

/// Bytes of the uvarint encoding of `x`.
#[inline]
pub(crate) fn uvarint_len(x: u64) -> usize {
    // 1 byte per started group of 7 significant bits; 0 takes one byte.
    (64 - (x | 1).leading_zeros()).div_ceil(7) as usize
}

/// `x` as a uvarint in a fixed array, with its length (for writing without a buffer).
#[inline]
pub(crate) fn uvarint_array(mut x: u64) -> ([u8; MAX_VARINT_LEN], usize) {
    let mut a = [0u8; MAX_VARINT_LEN];
    let mut n = 0;
    while x >= 0x80 {
        a[n] = x as u8 | 0x80;
        x >>= 7;
        n += 1;
    }
    a[n] = x as u8;
    (a, n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_as_go_encodes_them() {
        for x in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, x);
            assert_eq!(b.len(), uvarint_len(x));
            let (a, n) = uvarint_array(x);
            assert_eq!(&a[..n], b.as_slice());
            assert_eq!(Cursor::new(&b).uvarint(), Ok(x));
        }
        // Go: binary.PutUvarint(300) = ac 02; PutVarint(-1) = 01; PutVarint(1) = 02.
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        put_varint(&mut b, -1);
        put_varint(&mut b, 1);
        put_varint(&mut b, i64::MIN);
        assert_eq!(&b[..4], &[0xac, 0x02, 0x01, 0x02]);
        let mut c = Cursor::new(&b);
        assert_eq!(c.uvarint(), Ok(300));
        assert_eq!(c.varint(), Ok(-1));
        assert_eq!(c.varint(), Ok(1));
        assert_eq!(c.varint(), Ok(i64::MIN));
        assert!(c.is_empty());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Cursor::new(&[0x80]).uvarint(), Err(DecodeError::Eof));
        assert_eq!(
            Cursor::new(&[0xff; 11]).uvarint(),
            Err(DecodeError::Overflow)
        );
        let mut ten = [0xff; 10];
        ten[9] = 0x02;
        assert_eq!(Cursor::new(&ten).uvarint(), Err(DecodeError::Overflow));
        ten[9] = 0x01;
        assert_eq!(Cursor::new(&ten).uvarint(), Ok(u64::MAX));
        assert_eq!(
            Cursor::new(&[0x80, 0x80, 0x80, 0x80, 0x10]).uvarint32(),
            Err(DecodeError::Overflow)
        );
        let mut c = Cursor::new(&[1, 2, 3]);
        assert_eq!(c.be32(), Err(DecodeError::Eof));
        assert_eq!(c.bytes(usize::MAX), Err(DecodeError::Eof));
        assert_eq!(c.uvarint_bytes(), Ok(&[2][..]));
    }
}
