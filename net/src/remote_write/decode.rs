//! The push path's decoder of Prometheus remote-write 1.0 (`prometheus.WriteRequest`).
//!
//! [`decode_write_request`] walks the decompressed protobuf in [`WriteBatch::buf`] exactly once and
//! fills the batch's index over it: one [`SeriesEntry`] per `TimeSeries`, one [`LabelSpan`] per
//! `Label` (offsets into the buffer, never a copy), one decoded [`Sample`] per `Sample`, and counts
//! of exemplars, native histograms and metadata entries. A series' hash is [`LabelHasher`] fed
//! with each label's name and value bytes in wire order. Nothing is allocated beyond the amortised
//! growth of the batch's vectors, which are reused from one request to the next.
//!
//! Invariants and semantics (those of prost decoding the messages in `proto`, which is the test
//! oracle):
//! - proto3: a missing field is its zero value (a `Sample` without `value` is `0.0`, without
//!   `timestamp` is `0`); fields may come in any order and any number of times; for a scalar field
//!   given twice the last one wins, and so does a label's `name` or `value` given twice.
//! - Unknown fields of wire types varint, 64-bit, length-delimited and 32-bit are skipped.
//!   Groups (wire types 3 and 4) are rejected, even as unknown fields where prost would skip a
//!   well-formed group: no remote-write sender emits them. Wire types 6 and 7 are rejected too.
//! - Fields we do not index (exemplars, histograms, metadata) are still walked and checked, so a
//!   request is accepted exactly when prost would accept it, but for groups (above) and UTF-8
//!   (below). Repeated scalars of `Histogram` are accepted packed and unpacked.
//! - Strings are NOT checked to be UTF-8 here, unlike prost: the engine validates the labels of a
//!   series it has not seen before, and a known series matched byte for byte needs no check.
//!   Exemplar labels and metadata strings are not stored, so they are never checked.
//! - Varints longer than 10 bytes or overflowing 64 bits, truncated varints, lengths beyond the
//!   enclosing message, lengths above `u32::MAX`, keys above `u32::MAX` and field number 0 are
//!   errors, each reported with the byte offset in the request where it was found.
//! - A request of more than `u32::MAX` bytes is refused: spans are `u32` offsets.
//!
//! Speed: varints of one byte, and of up to 8 bytes when 8 bytes are at hand, are read without a
//! loop; a label laid out canonically (`0x0a len name 0x12 len value`, lengths under 128) and a
//! sample laid out canonically (`0x09` + 8 bytes, `0x10` + varint) are read at fixed offsets; any
//! other layout falls back to the general field loop, which gives the same result.
//!
//! The format itself is specified in `tests/data/proto/{types,remote}.proto`.

#![allow(
    clippy::inline_always,
    reason = "the per-label and per-sample fast paths are inlined on purpose: out of line, their \
              results went through a stack slot shared with the general path and stalled on it"
)]

use strata_storage::batch::{LabelSpan, Sample, SeriesEntry, WriteBatch};
use strata_storage::labels::LabelHasher;

/// Why a request could not be decoded. Offsets are byte positions in the decompressed request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// `WriteBatch::len` is larger than its buffer (a caller bug, reported rather than panicking).
    #[error("request length {len} exceeds the {buf_len}-byte buffer holding it")]
    LenBeyondBuffer { len: usize, buf_len: usize },
    /// The request is larger than the decoder's `u32` offsets can address.
    #[error("request of {len} bytes is larger than the 4 GiB the decoder can address")]
    RequestTooLarge { len: usize },
    /// The request or a message ends in the middle of a varint.
    #[error("truncated varint at byte {offset}")]
    TruncatedVarint { offset: usize },
    /// A varint of more than 10 bytes, or whose 10th byte overflows 64 bits.
    #[error("varint at byte {offset} is longer than 10 bytes or overflows 64 bits")]
    OverlongVarint { offset: usize },
    /// A field key above `u32::MAX`.
    #[error("field key {key} at byte {offset} does not fit in 32 bits")]
    KeyTooLarge { offset: usize, key: u64 },
    /// A field key with field number 0.
    #[error("field number 0 at byte {offset}")]
    ZeroFieldNumber { offset: usize },
    /// Wire type 6 or 7, which protobuf does not define.
    #[error("field {field} at byte {offset} has undefined wire type {wire_type}")]
    InvalidWireType {
        offset: usize,
        field: u32,
        wire_type: u8,
    },
    /// Wire type 3 or 4 (start or end of a group); groups are not accepted.
    #[error(
        "field {field} at byte {offset} is a group (wire type {wire_type}), which is not supported"
    )]
    Group {
        offset: usize,
        field: u32,
        wire_type: u8,
    },
    /// A known field encoded with a wire type its declared type does not allow.
    #[error("{message} field {field} at byte {offset} has wire type {found}, expected {expected}")]
    UnexpectedWireType {
        offset: usize,
        message: &'static str,
        field: u32,
        found: &'static str,
        expected: &'static str,
    },
    /// A length prefix above `u32::MAX`.
    #[error("length {len} at byte {offset} does not fit in 32 bits")]
    LengthTooLarge { offset: usize, len: u64 },
    /// A length prefix that runs past the end of the enclosing message.
    #[error(
        "length {len} at byte {offset} runs past the end of the enclosing message \
         ({remaining} bytes left)"
    )]
    LengthOutOfBounds {
        offset: usize,
        len: u64,
        remaining: usize,
    },
    /// A fixed-width value that runs past the end of the enclosing message.
    #[error(
        "{width}-byte value at byte {offset} runs past the end of the enclosing message \
         ({remaining} bytes left)"
    )]
    TruncatedFixed {
        offset: usize,
        width: usize,
        remaining: usize,
    },
}

type Result<T> = std::result::Result<T, DecodeError>;

/// Decodes the `prometheus.WriteRequest` in `batch.buf[..batch.len]` into the batch's index
/// (`series`, `labels`, `samples`, `metadata`), which is cleared first; `buf` and `len` are not
/// touched. Label names and values are not UTF-8-validated (see the module docs).
///
/// On error the index is left empty; the request must be refused as a whole.
pub fn decode_write_request(batch: &mut WriteBatch) -> std::result::Result<(), DecodeError> {
    batch.series.clear();
    batch.labels.clear();
    batch.samples.clear();
    batch.metadata = 0;

    let buf_len = batch.buf.len();
    let Some(data) = batch.buf.get(..batch.len) else {
        return Err(DecodeError::LenBeyondBuffer {
            len: batch.len,
            buf_len,
        });
    };
    if u32::try_from(data.len()).is_err() {
        return Err(DecodeError::RequestTooLarge { len: data.len() });
    }
    let mut index = Index {
        series: &mut batch.series,
        labels: &mut batch.labels,
        samples: &mut batch.samples,
        metadata: 0,
    };
    match write_request(Reader::new(data, 0), &mut index) {
        Ok(()) => {
            batch.metadata = index.metadata;
            Ok(())
        }
        Err(e) => {
            batch.series.clear();
            batch.labels.clear();
            batch.samples.clear();
            Err(e)
        }
    }
}

/// The parts of a [`WriteBatch`] the walk fills.
struct Index<'b> {
    series: &'b mut Vec<SeriesEntry>,
    labels: &'b mut Vec<LabelSpan>,
    samples: &'b mut Vec<Sample>,
    metadata: u32,
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const SGROUP: u8 = 3;
const EGROUP: u8 = 4;
const I32: u8 = 5;

fn wire_type_name(wire_type: u8) -> &'static str {
    match wire_type {
        VARINT => "varint",
        I64 => "64-bit",
        LEN => "length-delimited",
        SGROUP => "start-group",
        EGROUP => "end-group",
        I32 => "32-bit",
        _ => "undefined",
    }
}

fn unexpected(
    offset: usize,
    message: &'static str,
    field: u32,
    found: u8,
    expected: &'static str,
) -> DecodeError {
    DecodeError::UnexpectedWireType {
        offset,
        message,
        field,
        found: wire_type_name(found),
        expected,
    }
}

/// The continuation bit of each byte of a little-endian word.
const MSBS: u64 = 0x8080_8080_8080_8080;

/// The value of a varint of `len` bytes (1 to 8) held in the low bytes of `word` (little-endian);
/// the bytes above `len` are ignored. Packs the 7-bit groups by halving steps instead of a loop.
#[inline(always)]
fn compact_varint(word: u64, len: usize) -> u64 {
    let mut x = word & (u64::MAX >> (64 - 8 * len)) & !MSBS;
    x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

/// The value of `bytes` if they are exactly one varint of 1 to 8 bytes, else `None` (the caller
/// then takes its general path). Loads the bytes with two overlapping reads, without a loop.
#[inline(always)]
fn exact_varint(bytes: &[u8]) -> Option<u64> {
    let len = bytes.len();
    let word = if let (Some(lo), Some(hi)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        if len > 8 {
            return None;
        }
        u64::from(u32::from_le_bytes(*lo)) | (u64::from(u32::from_le_bytes(*hi)) << (8 * (len - 4)))
    } else {
        let (&first, &last) = (bytes.first()?, bytes.last()?);
        let mid = bytes.get(len / 2).copied().unwrap_or_default();
        u64::from(first)
            | (u64::from(mid) << (8 * (len / 2)))
            | (u64::from(last) << (8 * (len - 1)))
    };
    // Every byte but the last continues, the last does not.
    let stops = !word & MSBS & (u64::MAX >> (64 - 8 * len));
    (stops == 0x80 << (8 * (len - 1))).then(|| compact_varint(word, len))
}

/// A cursor over one message: `data` holds the message's bytes and nothing after them, so every
/// read is bounded by the message's end.
#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data[0]` in the request; below `u32::MAX` like every offset in the request.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data`, which starts at offset `base` of the request.
    #[inline]
    fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, pos: 0, base }
    }

    #[inline]
    fn has_more(&self) -> bool {
        self.pos < self.data.len()
    }

    /// Offset of the cursor in the request.
    #[inline]
    fn offset(&self) -> usize {
        self.base + self.pos
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Reads a varint; one-byte varints (most keys and lengths) take the short path.
    #[inline]
    fn varint(&mut self) -> Result<u64> {
        if let Some(&b) = self.data.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_multi()
    }

    /// The rest of [`Self::varint`]: as protobuf and prost, at most 10 bytes, the 10th being 0 or 1.
    #[inline]
    fn varint_multi(&mut self) -> Result<u64> {
        let start = self.pos;
        let rest = self.data.get(start..).unwrap_or_default();
        // Up to 8 bytes, with 8 bytes at hand: one load, no loop (timestamps take 6 bytes).
        if let Some(chunk) = rest.first_chunk::<8>() {
            let word = u64::from_le_bytes(*chunk);
            let stops = !word & MSBS;
            if stops != 0 {
                let len = stops.trailing_zeros() as usize / 8 + 1;
                self.pos = start + len;
                return Ok(compact_varint(word, len));
            }
        }
        let (bytes, complete) = match rest.first_chunk::<10>() {
            Some(chunk) => (chunk.as_slice(), true),
            None => (rest, false),
        };
        let mut value = 0u64;
        for (i, &b) in bytes.iter().enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b > 1 {
                    break;
                }
                self.pos = start + i + 1;
                return Ok(value);
            }
        }
        let offset = self.base + start;
        if complete {
            Err(DecodeError::OverlongVarint { offset })
        } else {
            Err(DecodeError::TruncatedVarint { offset })
        }
    }

    /// Reads a field key: `(field number, wire type)`, with the checks prost makes.
    #[inline]
    fn key(&mut self) -> Result<(u32, u8)> {
        let offset = self.offset();
        let key = match self.data.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                u64::from(b)
            }
            _ => self.varint_multi()?,
        };
        let Ok(key) = u32::try_from(key) else {
            return Err(DecodeError::KeyTooLarge { offset, key });
        };
        let field = key >> 3;
        let wire_type = (key & 7) as u8;
        if wire_type > I32 {
            return Err(DecodeError::InvalidWireType {
                offset,
                field,
                wire_type,
            });
        }
        if field == 0 {
            return Err(DecodeError::ZeroFieldNumber { offset });
        }
        Ok((field, wire_type))
    }

    /// Reads a fixed 8-byte value (little-endian on the wire).
    #[inline]
    fn fixed64(&mut self) -> Result<[u8; 8]> {
        self.fixed::<8>()
    }

    #[inline]
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        match self.data.get(self.pos..).and_then(<[u8]>::first_chunk::<N>) {
            Some(bytes) => {
                self.pos += N;
                Ok(*bytes)
            }
            None => Err(DecodeError::TruncatedFixed {
                offset: self.offset(),
                width: N,
                remaining: self.remaining(),
            }),
        }
    }

    /// Reads a length prefix and returns a reader over the bytes it covers.
    #[inline]
    fn len_delimited(&mut self) -> Result<Reader<'a>> {
        let offset = self.offset();
        let len = self.varint()?;
        let Ok(len32) = u32::try_from(len) else {
            return Err(DecodeError::LengthTooLarge { offset, len });
        };
        let start = self.pos;
        match start
            .checked_add(len32 as usize)
            .and_then(|end| self.data.get(start..end))
        {
            Some(data) => {
                self.pos = start + data.len();
                Ok(Reader::new(data, self.base + start))
            }
            None => Err(DecodeError::LengthOutOfBounds {
                offset,
                len,
                remaining: self.remaining(),
            }),
        }
    }

    /// Peeks at a field with a one-byte key and a one-byte length that fits the message:
    /// `(key, reader over the field's bytes, position after the field)`. Does not advance.
    #[inline(always)]
    fn short_field(&self) -> Option<(u8, Reader<'a>, usize)> {
        let [key, len, rest @ ..] = self.data.get(self.pos..)? else {
            return None;
        };
        if *len >= 0x80 {
            return None;
        }
        let data = rest.get(..usize::from(*len))?;
        let start = self.pos + 2;
        Some((
            *key,
            Reader::new(data, self.base + start),
            start + data.len(),
        ))
    }

    /// Skips an unknown field whose key (at `offset`) has been read.
    fn skip(&mut self, offset: usize, field: u32, wire_type: u8) -> Result<()> {
        match wire_type {
            VARINT => self.varint().map(|_| ()),
            I64 => self.fixed::<8>().map(|_| ()),
            LEN => self.len_delimited().map(|_| ()),
            I32 => self.fixed::<4>().map(|_| ()),
            _ => Err(DecodeError::Group {
                offset,
                field,
                wire_type,
            }),
        }
    }

    /// The bytes of the message as a slice of the request, for a [`LabelSpan`].
    #[inline]
    fn span(&self) -> (u32, u32) {
        // Both fit: the request is at most `u32::MAX` bytes (checked on entry).
        (self.base as u32, self.data.len() as u32)
    }
}

/// `prometheus.WriteRequest`: `timeseries` = 1, `metadata` = 3 (2 is reserved).
fn write_request(mut r: Reader<'_>, index: &mut Index<'_>) -> Result<()> {
    while r.has_more() {
        let at = r.offset();
        match r.key()? {
            (1, LEN) => time_series(r.len_delimited()?, index)?,
            (3, LEN) => {
                metric_metadata(r.len_delimited()?)?;
                index.metadata += 1;
            }
            (field @ (1 | 3), wt) => {
                return Err(unexpected(
                    at,
                    "WriteRequest",
                    field,
                    wt,
                    "length-delimited",
                ));
            }
            (field, wt) => r.skip(at, field, wt)?,
        }
    }
    Ok(())
}

/// `prometheus.TimeSeries`: `labels` = 1, `samples` = 2, `exemplars` = 3, `histograms` = 4.
fn time_series(mut r: Reader<'_>, index: &mut Index<'_>) -> Result<()> {
    // Every label and sample pushed until the end of this message belongs to this series, so the
    // ranges stay contiguous even when labels and samples are interleaved on the wire.
    let labels_start = index.labels.len() as u32;
    let samples_start = index.samples.len() as u32;
    let mut hasher = LabelHasher::new();
    let mut exemplars = 0u32;
    let mut histograms = 0u32;
    while r.has_more() {
        // Hot path: labels and samples of less than 128 bytes, with their one-byte key.
        if let Some((key @ (0x0a | 0x12), m, next)) = r.short_field() {
            r.pos = next;
            if key == 0x0a {
                series_label(m, &mut hasher, index.labels)?;
            } else {
                push_sample(m, index.samples)?;
            }
            continue;
        }
        let at = r.offset();
        match r.key()? {
            (1, LEN) => series_label(r.len_delimited()?, &mut hasher, index.labels)?,
            (2, LEN) => push_sample(r.len_delimited()?, index.samples)?,
            (3, LEN) => {
                exemplar(r.len_delimited()?)?;
                exemplars += 1;
            }
            (4, LEN) => {
                histogram(r.len_delimited()?)?;
                histograms += 1;
            }
            (field @ 1..=4, wt) => {
                return Err(unexpected(at, "TimeSeries", field, wt, "length-delimited"));
            }
            (field, wt) => r.skip(at, field, wt)?,
        }
    }
    index.series.push(SeriesEntry {
        hash: hasher.finish(),
        labels: labels_start..index.labels.len() as u32,
        samples: samples_start..index.samples.len() as u32,
        exemplars,
        histograms,
    });
    Ok(())
}

/// A series' `prometheus.Label` (`name` = 1, `value` = 2): hashed, and its span recorded.
#[inline(always)]
fn series_label(
    r: Reader<'_>,
    hasher: &mut LabelHasher,
    labels: &mut Vec<LabelSpan>,
) -> Result<()> {
    // The canonical layout, as every sender writes a label with a non-empty name and value of
    // less than 128 bytes each: 0x0a <len> name 0x12 <len> value, and nothing else. This path
    // finishes on its own (no result shared with the general path) to keep the span in registers.
    if let [0x0a, n, rest @ ..] = r.data
        && *n < 0x80
        && let Some((name, rest)) = rest.split_at_checked(usize::from(*n))
        && let [0x12, m, value @ ..] = rest
        && *m < 0x80
        && usize::from(*m) == value.len()
    {
        // Offsets fit in u32: the request is at most `u32::MAX` bytes (checked on entry).
        let name_start = r.base + 2;
        let value_start = name_start + name.len() + 2;
        hasher.add(name, value);
        labels.push(LabelSpan {
            name_start: name_start as u32,
            name_len: name.len() as u32,
            value_start: value_start as u32,
            value_len: value.len() as u32,
        });
        return Ok(());
    }
    let (span, name, value) = label(r)?;
    hasher.add(name, value);
    labels.push(span);
    Ok(())
}

/// `prometheus.Label`: `name` = 1, `value` = 2, in any encoding. Returns the span and the name
/// and value bytes.
fn label(mut r: Reader<'_>) -> Result<(LabelSpan, &[u8], &[u8])> {
    let mut span = LabelSpan::default();
    let mut name: &[u8] = &[];
    let mut value: &[u8] = &[];
    while r.has_more() {
        let at = r.offset();
        match r.key()? {
            (1, LEN) => {
                let s = r.len_delimited()?;
                (span.name_start, span.name_len) = s.span();
                name = s.data;
            }
            (2, LEN) => {
                let s = r.len_delimited()?;
                (span.value_start, span.value_len) = s.span();
                value = s.data;
            }
            (field @ (1 | 2), wt) => {
                return Err(unexpected(at, "Label", field, wt, "length-delimited"));
            }
            (field, wt) => r.skip(at, field, wt)?,
        }
    }
    Ok((span, name, value))
}

/// A series' `prometheus.Sample` (`value` = 1, double; `timestamp` = 2, int64), appended to
/// `samples`.
#[inline(always)]
fn push_sample(r: Reader<'_>, samples: &mut Vec<Sample>) -> Result<()> {
    // The canonical layout, as every sender writes it for a non-zero value and a timestamp of 1 to
    // 8 varint bytes: 0x09 <8 bytes value> 0x10 <timestamp varint> and nothing else.
    if let Some((&[0x09, v0, v1, v2, v3, v4, v5, v6, v7, 0x10], rest)) =
        r.data.split_first_chunk::<10>()
        && let Some(ts) = exact_varint(rest)
    {
        let v = f64::from_le_bytes([v0, v1, v2, v3, v4, v5, v6, v7]);
        samples.push(Sample { t: ts as i64, v });
        return Ok(());
    }
    samples.push(sample(r)?);
    Ok(())
}

/// `prometheus.Sample` in any encoding; a missing field is zero.
fn sample(mut r: Reader<'_>) -> Result<Sample> {
    let mut s = Sample { t: 0, v: 0.0 };
    while r.has_more() {
        let at = r.offset();
        match r.key()? {
            (1, I64) => s.v = f64::from_le_bytes(r.fixed64()?),
            (2, VARINT) => s.t = r.varint()? as i64,
            (1, wt) => return Err(unexpected(at, "Sample", 1, wt, "64-bit")),
            (2, wt) => return Err(unexpected(at, "Sample", 2, wt, "varint")),
            (field, wt) => r.skip(at, field, wt)?,
        }
    }
    Ok(s)
}

/// `prometheus.Exemplar`: `labels` = 1, `value` = 2 (double), `timestamp` = 3 (int64). Checked,
/// not indexed.
fn exemplar(mut r: Reader<'_>) -> Result<()> {
    while r.has_more() {
        let at = r.offset();
        match r.key()? {
            (1, LEN) => {
                label(r.len_delimited()?)?;
            }
            (2, I64) => {
                r.fixed64()?;
            }
            (3, VARINT) => {
                r.varint()?;
            }
            (1, wt) => return Err(unexpected(at, "Exemplar", 1, wt, "length-delimited")),
            (2, wt) => return Err(unexpected(at, "Exemplar", 2, wt, "64-bit")),
            (3, wt) => return Err(unexpected(at, "Exemplar", 3, wt, "varint")),
            (field, wt) => r.skip(at, field, wt)?,
        }
    }
    Ok(())
}

/// `prometheus.Histogram` (native histogram). Checked, not indexed.
fn histogram(mut r: Reader<'_>) -> Result<()> {
    const MSG: &str = "Histogram";
    while r.has_more() {
        let at = r.offset();
        let (field, wt) = r.key()?;
        match field {
            // count_int, schema (sint32), zero_count_int, reset_hint (enum), timestamp
            1 | 4 | 6 | 14 | 15 => match wt {
                VARINT => {
                    r.varint()?;
                }
                _ => return Err(unexpected(at, MSG, field, wt, "varint")),
            },
            // count_float, sum, zero_threshold, zero_count_float
            2 | 3 | 5 | 7 => match wt {
                I64 => {
                    r.fixed64()?;
                }
                _ => return Err(unexpected(at, MSG, field, wt, "64-bit")),
            },
            // negative_spans, positive_spans
            8 | 11 => match wt {
                LEN => bucket_span(r.len_delimited()?)?,
                _ => return Err(unexpected(at, MSG, field, wt, "length-delimited")),
            },
            // negative_deltas, positive_deltas: repeated sint64
            9 | 12 => match wt {
                LEN => {
                    let mut packed = r.len_delimited()?;
                    while packed.has_more() {
                        packed.varint()?;
                    }
                }
                VARINT => {
                    r.varint()?;
                }
                _ => return Err(unexpected(at, MSG, field, wt, "varint or length-delimited")),
            },
            // negative_counts, positive_counts, custom_values: repeated double
            10 | 13 | 16 => match wt {
                LEN => {
                    let mut packed = r.len_delimited()?;
                    while packed.has_more() {
                        packed.fixed64()?;
                    }
                }
                I64 => {
                    r.fixed64()?;
                }
                _ => return Err(unexpected(at, MSG, field, wt, "64-bit or length-delimited")),
            },
            _ => r.skip(at, field, wt)?,
        }
    }
    Ok(())
}

/// `prometheus.BucketSpan`: `offset` = 1 (sint32), `length` = 2 (uint32). Checked, not indexed.
fn bucket_span(mut r: Reader<'_>) -> Result<()> {
    while r.has_more() {
        let at = r.offset();
        match r.key()? {
            (1 | 2, VARINT) => {
                r.varint()?;
            }
            (field @ (1 | 2), wt) => return Err(unexpected(at, "BucketSpan", field, wt, "varint")),
            (field, wt) => r.skip(at, field, wt)?,
        }
    }
    Ok(())
}

/// `prometheus.MetricMetadata`: `type` = 1 (enum), `metric_family_name` = 2, `help` = 4,
/// `unit` = 5. Checked, not indexed.
fn metric_metadata(mut r: Reader<'_>) -> Result<()> {
    while r.has_more() {
        let at = r.offset();
        match r.key()? {
            (1, VARINT) => {
                r.varint()?;
            }
            (2 | 4 | 5, LEN) => {
                r.len_delimited()?;
            }
            (1, wt) => return Err(unexpected(at, "MetricMetadata", 1, wt, "varint")),
            (field @ (2 | 4 | 5), wt) => {
                return Err(unexpected(
                    at,
                    "MetricMetadata",
                    field,
                    wt,
                    "length-delimited",
                ));
            }
            (field, wt) => r.skip(at, field, wt)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (Result<()>, WriteBatch) {
        let mut batch = WriteBatch {
            buf: bytes.to_vec(),
            len: bytes.len(),
            ..WriteBatch::default()
        };
        let r = decode_write_request(&mut batch);
        (r, batch)
    }

    #[test]
    fn varint_edges() {
        // u64::MAX takes 10 bytes, the last being 1.
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        let mut r = Reader::new(&max, 0);
        assert_eq!(r.varint(), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let mut r = Reader::new(&over, 7);
        assert_eq!(r.varint(), Err(DecodeError::OverlongVarint { offset: 7 }));
        // An overlong but terminated encoding of a small value is valid protobuf.
        let padded = [0x81, 0x80, 0x80, 0x00];
        let mut r = Reader::new(&padded, 0);
        assert_eq!(r.varint(), Ok(1));
        assert!(!r.has_more());
        let truncated = [0x81, 0x80];
        let mut r = Reader::new(&truncated, 3);
        assert_eq!(r.varint(), Err(DecodeError::TruncatedVarint { offset: 3 }));
        let eleven = [0x80; 11];
        let mut r = Reader::new(&eleven, 0);
        assert_eq!(r.varint(), Err(DecodeError::OverlongVarint { offset: 0 }));
    }

    /// The protobuf definition, one byte at a time: (value, length) or `None`.
    fn reference_varint(bytes: &[u8]) -> Option<(u64, usize)> {
        let mut value = 0u64;
        for (i, &b) in bytes.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return (i < 9 || b <= 1).then_some((value, i + 1));
            }
        }
        None
    }

    #[test]
    fn varint_paths_match_the_definition() {
        let mut values = vec![
            0,
            1,
            0x7f,
            0x80,
            300,
            u64::MAX,
            i64::MIN as u64,
            1_700_000_000_000,
        ];
        for bit in 0..64 {
            values.extend([1u64 << bit, (1u64 << bit) - 1, (1u64 << bit) + 1]);
        }
        for v in values {
            let mut enc = Vec::new();
            let mut x = v;
            while x >= 0x80 {
                enc.push((x as u8) | 0x80);
                x >>= 7;
            }
            enc.push(x as u8);
            // Padded (overlong but valid, or too long) forms of the same value.
            for pad in 0..=(11 - enc.len().min(11)) {
                let mut p = enc.clone();
                if pad > 0 {
                    *p.last_mut().unwrap() |= 0x80;
                    p.extend(std::iter::repeat_n(0x80, pad - 1));
                    p.push(0);
                }
                let want = reference_varint(&p);
                assert_eq!(
                    exact_varint(&p),
                    want.filter(|w| w.1 <= 8).map(|w| w.0),
                    "{p:x?}"
                );
                for trailing in [&[][..], &[0x01], &[0xff; 9]] {
                    let data = [p.as_slice(), trailing].concat();
                    let mut r = Reader::new(&data, 0);
                    let got = r.varint().ok().map(|x| (x, r.pos));
                    assert_eq!(got, reference_varint(&data), "{data:x?}");
                }
            }
        }
        assert_eq!(exact_varint(&[]), None);
        assert_eq!(exact_varint(&[0x80]), None);
        assert_eq!(exact_varint(&[0x05, 0x05]), None);
    }

    /// Both paths of [`push_sample`]: the fixed-offset one and the general loop.
    fn both_paths(bytes: &[u8]) -> (Result<Vec<Sample>>, Result<Sample>) {
        let mut out = Vec::new();
        let fast = push_sample(Reader::new(bytes, 0), &mut out).map(|()| out);
        (fast, sample(Reader::new(bytes, 0)))
    }

    #[test]
    fn canonical_and_general_sample_paths_agree() {
        let want = Sample { t: 300, v: 1.5 };
        // value 1.5, timestamp 300 (two-byte varint)
        let mut canonical = vec![0x09];
        canonical.extend_from_slice(&1.5f64.to_le_bytes());
        canonical.extend_from_slice(&[0x10, 0xac, 0x02]);
        assert_eq!(both_paths(&canonical), (Ok(vec![want]), Ok(want)));
        // The same fields reversed.
        let mut reversed = vec![0x10, 0xac, 0x02, 0x09];
        reversed.extend_from_slice(&1.5f64.to_le_bytes());
        assert_eq!(both_paths(&reversed), (Ok(vec![want]), Ok(want)));
        // Canonical prefix followed by a second timestamp: last wins.
        let mut twice = canonical.clone();
        twice.extend_from_slice(&[0x10, 0x05]);
        let want = Sample { t: 5, v: 1.5 };
        assert_eq!(both_paths(&twice), (Ok(vec![want]), Ok(want)));
        // A negative timestamp takes 10 bytes: past the fixed-offset path.
        let mut negative = canonical[..10].to_vec();
        negative.extend_from_slice(&[0xff; 9]);
        negative.push(0x01);
        let want = Sample { t: -1, v: 1.5 };
        assert_eq!(both_paths(&negative), (Ok(vec![want]), Ok(want)));
        // A truncated timestamp fails on both.
        let truncated = &canonical[..11];
        let (fast, general) = both_paths(truncated);
        assert!(fast.is_err() && general.is_err());
    }

    #[test]
    fn error_names_the_offset() {
        // timeseries { labels { name: <length 9 but 1 byte left> } }
        let (r, batch) = decode(&[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x09, 0x61]);
        let err = r.unwrap_err();
        assert_eq!(
            err,
            DecodeError::LengthOutOfBounds {
                offset: 5,
                len: 9,
                remaining: 1
            }
        );
        assert!(err.to_string().contains("at byte 5"), "{err}");
        assert!(batch.series.is_empty() && batch.labels.is_empty());
    }

    #[test]
    fn len_beyond_buffer_is_an_error() {
        let mut batch = WriteBatch {
            buf: vec![0; 4],
            len: 5,
            ..WriteBatch::default()
        };
        assert_eq!(
            decode_write_request(&mut batch),
            Err(DecodeError::LenBeyondBuffer { len: 5, buf_len: 4 })
        );
    }
}
