//! WAL records: tenant declarations, series, samples and tombstones (layouts in
//! [`super::format`]).
//!
//! Encoders append to a caller's reusable buffer and allocate nothing else. [`Decoder`] treats its
//! input as hostile: every error is a [`RecordError`], nothing panics, and nothing is allocated
//! from a length or count field: its vectors grow only with entries actually decoded, and are
//! reused from record to record. A record is decoded completely (and validated) before any of it
//! is returned, so a bad record is never applied in part. Strings are borrowed from the record.

use crate::head::SeriesRef;

/// Record type: a tenant declaration.
pub const TYPE_TENANT: u8 = 32;
/// Record type: series and their labels.
pub const TYPE_SERIES: u8 = 33;
/// Record type: float samples.
pub const TYPE_SAMPLES: u8 = 34;
/// Record type: deleted time ranges.
pub const TYPE_TOMBSTONES: u8 = 35;

/// One float sample of a series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub series: SeriesRef,
    pub t: i64,
    pub v: f64,
}

/// A deleted time range `[min_t, max_t]` of a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tombstone {
    pub series: SeriesRef,
    pub min_t: i64,
    pub max_t: i64,
}

/// Why a record (whose framing and CRC were valid) does not decode.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    #[error("empty wal record")]
    Empty,
    #[error("unknown wal record type {0}")]
    UnknownType(u8),
    #[error("wal record truncated at byte {offset}")]
    Truncated { offset: usize },
    #[error("varint at byte {offset} overflows 64 bits")]
    VarintOverflow { offset: usize },
    #[error("{field} out of range at byte {offset}")]
    OutOfRange { field: &'static str, offset: usize },
    #[error("string at byte {offset} is not valid utf-8")]
    InvalidUtf8 { offset: usize },
    #[error("{extra} unexpected bytes after the tenant record")]
    TrailingBytes { extra: usize },
}

/// A decoded record, borrowing the record's bytes and the [`Decoder`]'s buffers.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    /// Declares tenant id `id` for the records that follow in the same segment.
    Tenant {
        id: u32,
        name: &'a str,
    },
    Series {
        tenant: u32,
        series: SeriesEntries<'a>,
    },
    Samples {
        tenant: u32,
        samples: &'a [Sample],
    },
    Tombstones {
        tenant: u32,
        tombstones: &'a [Tombstone],
    },
}

impl Record<'_> {
    /// The tenant the record is about (declared, for [`Record::Tenant`]).
    pub fn tenant(&self) -> u32 {
        match *self {
            Record::Tenant { id, .. } => id,
            Record::Series { tenant, .. }
            | Record::Samples { tenant, .. }
            | Record::Tombstones { tenant, .. } => tenant,
        }
    }
}

/// The series of a Series record.
#[derive(Clone, Copy, Debug)]
pub struct SeriesEntries<'a> {
    data: &'a [u8],
    /// Per series: its ref and the range of its strings in `spans`.
    series: &'a [(SeriesRef, usize, usize)],
    /// `[start, end)` of every label string in `data`: name, value, name, value...
    spans: &'a [[usize; 2]],
}

impl<'a> SeriesEntries<'a> {
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = SeriesEntry<'a>> + 'a {
        let (data, spans) = (self.data, self.spans);
        self.series.iter().map(move |&(series, a, b)| SeriesEntry {
            series,
            data,
            spans: &spans[a..b],
        })
    }
}

/// One series of a Series record: its ref and labels.
#[derive(Clone, Copy, Debug)]
pub struct SeriesEntry<'a> {
    pub series: SeriesRef,
    data: &'a [u8],
    spans: &'a [[usize; 2]],
}

impl<'a> SeriesEntry<'a> {
    pub fn num_labels(&self) -> usize {
        self.spans.len() / 2
    }

    /// The label pairs, in the order they were logged, borrowed from the record.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a {
        let data = self.data;
        // The decoder validated every span as UTF-8; the fallback is unreachable.
        let s = move |[a, b]: [usize; 2]| std::str::from_utf8(&data[a..b]).unwrap_or_default();
        self.spans.chunks_exact(2).map(move |p| (s(p[0]), s(p[1])))
    }
}

/// Appends a uvarint.
fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push(x as u8 | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// Appends a zigzag varint.
fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, ((x << 1) ^ (x >> 63)) as u64);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends a Tenant record.
pub fn encode_tenant(buf: &mut Vec<u8>, id: u32, name: &str) {
    buf.push(TYPE_TENANT);
    put_uvarint(buf, id.into());
    put_str(buf, name);
}

/// Appends a Series record, one series at a time.
#[derive(Debug)]
pub struct SeriesEncoder<'b> {
    buf: &'b mut Vec<u8>,
    entries: usize,
}

impl<'b> SeriesEncoder<'b> {
    /// Starts a Series record of `tenant` at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>, tenant: u32) -> Self {
        buf.push(TYPE_SERIES);
        put_uvarint(buf, tenant.into());
        SeriesEncoder { buf, entries: 0 }
    }

    /// Adds series `series` with its label pairs.
    pub fn add<'l>(
        &mut self,
        series: SeriesRef,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
    ) {
        put_uvarint(self.buf, series.into());
        // The count precedes the labels; reserve one byte and widen it in the rare case of 128
        // labels or more.
        let at = self.buf.len();
        self.buf.push(0);
        let mut n = 0u64;
        for (name, value) in labels {
            put_str(self.buf, name);
            put_str(self.buf, value);
            n += 1;
        }
        if n < 0x80 {
            self.buf[at] = n as u8;
        } else {
            let mut count = Vec::with_capacity(10);
            put_uvarint(&mut count, n);
            self.buf.splice(at..=at, count);
        }
        self.entries += 1;
    }

    /// Series added so far.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Appends a Samples record, one sample at a time.
#[derive(Debug)]
pub struct SamplesEncoder<'b> {
    buf: &'b mut Vec<u8>,
    base: Option<(SeriesRef, i64)>,
    entries: usize,
}

impl<'b> SamplesEncoder<'b> {
    /// Starts a Samples record of `tenant` at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>, tenant: u32) -> Self {
        buf.push(TYPE_SAMPLES);
        put_uvarint(buf, tenant.into());
        SamplesEncoder {
            buf,
            base: None,
            entries: 0,
        }
    }

    pub fn add(&mut self, series: SeriesRef, t: i64, v: f64) {
        let (base_ref, base_t) = *self.base.get_or_insert_with(|| {
            put_uvarint(self.buf, series.into());
            put_varint(self.buf, t);
            (series, t)
        });
        put_varint(self.buf, i64::from(series) - i64::from(base_ref));
        put_varint(self.buf, t.wrapping_sub(base_t));
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
        self.entries += 1;
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Appends a Tombstones record, one range at a time.
#[derive(Debug)]
pub struct TombstonesEncoder<'b> {
    buf: &'b mut Vec<u8>,
    entries: usize,
}

impl<'b> TombstonesEncoder<'b> {
    /// Starts a Tombstones record of `tenant` at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>, tenant: u32) -> Self {
        buf.push(TYPE_TOMBSTONES);
        put_uvarint(buf, tenant.into());
        TombstonesEncoder { buf, entries: 0 }
    }

    pub fn add(&mut self, series: SeriesRef, min_t: i64, max_t: i64) {
        put_uvarint(self.buf, series.into());
        put_varint(self.buf, min_t);
        put_varint(self.buf, max_t);
        self.entries += 1;
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Reads varints and bytes off a record, with offsets for errors.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let start = self.pos;
        let mut x = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(RecordError::Truncated { offset: self.pos });
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(RecordError::VarintOverflow { offset: start });
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
        }
    }

    fn varint(&mut self) -> Result<i64, RecordError> {
        let x = self.uvarint()?;
        Ok((x >> 1) as i64 ^ -((x & 1) as i64))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let offset = self.pos;
        u32::try_from(self.uvarint()?).map_err(|_| RecordError::OutOfRange { field, offset })
    }

    fn f64(&mut self) -> Result<f64, RecordError> {
        let Some(b) = self.data.get(self.pos..self.pos + 8) else {
            return Err(RecordError::Truncated {
                offset: self.data.len(),
            });
        };
        self.pos += 8;
        let mut bits = [0; 8];
        bits.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_be_bytes(bits)))
    }

    /// A length-prefixed UTF-8 string; returns its span.
    fn str_span(&mut self) -> Result<[usize; 2], RecordError> {
        let len = self.uvarint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= self.data.len())
            .ok_or(RecordError::Truncated {
                offset: self.data.len(),
            })?;
        std::str::from_utf8(&self.data[start..end])
            .map_err(|_| RecordError::InvalidUtf8 { offset: start })?;
        self.pos = end;
        Ok([start, end])
    }
}

/// Decodes records into reusable buffers.
#[derive(Debug, Default)]
pub struct Decoder {
    samples: Vec<Sample>,
    tombstones: Vec<Tombstone>,
    series: Vec<(SeriesRef, usize, usize)>,
    spans: Vec<[usize; 2]>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one record completely; on error nothing of it is returned.
    pub fn decode<'a>(&'a mut self, rec: &'a [u8]) -> Result<Record<'a>, RecordError> {
        let Some((&typ, _)) = rec.split_first() else {
            return Err(RecordError::Empty);
        };
        let mut c = Cursor { data: rec, pos: 1 };
        match typ {
            TYPE_TENANT => {
                let id = c.u32("tenant id")?;
                let [a, b] = c.str_span()?;
                if !c.at_end() {
                    return Err(RecordError::TrailingBytes {
                        extra: rec.len() - c.pos,
                    });
                }
                let name = std::str::from_utf8(&rec[a..b])
                    .map_err(|_| RecordError::InvalidUtf8 { offset: a })?;
                Ok(Record::Tenant { id, name })
            }
            TYPE_SERIES => {
                let tenant = c.u32("tenant id")?;
                self.series.clear();
                self.spans.clear();
                while !c.at_end() {
                    let series = c.u32("series ref")?;
                    let n = c.uvarint()?;
                    let first = self.spans.len();
                    let mut i = 0;
                    while i < n {
                        let name = c.str_span()?;
                        let value = c.str_span()?;
                        self.spans.push(name);
                        self.spans.push(value);
                        i += 1;
                    }
                    self.series.push((series, first, self.spans.len()));
                }
                Ok(Record::Series {
                    tenant,
                    series: SeriesEntries {
                        data: rec,
                        series: &self.series,
                        spans: &self.spans,
                    },
                })
            }
            TYPE_SAMPLES => {
                let tenant = c.u32("tenant id")?;
                self.samples.clear();
                if !c.at_end() {
                    let base_ref = i64::from(c.u32("series ref")?);
                    let base_t = c.varint()?;
                    while !c.at_end() {
                        let offset = c.pos;
                        let series = base_ref
                            .checked_add(c.varint()?)
                            .and_then(|r| u32::try_from(r).ok())
                            .ok_or(RecordError::OutOfRange {
                                field: "series ref",
                                offset,
                            })?;
                        let t = base_t.wrapping_add(c.varint()?);
                        let v = c.f64()?;
                        self.samples.push(Sample { series, t, v });
                    }
                }
                Ok(Record::Samples {
                    tenant,
                    samples: &self.samples,
                })
            }
            TYPE_TOMBSTONES => {
                let tenant = c.u32("tenant id")?;
                self.tombstones.clear();
                while !c.at_end() {
                    let series = c.u32("series ref")?;
                    let min_t = c.varint()?;
                    let max_t = c.varint()?;
                    self.tombstones.push(Tombstone {
                        series,
                        min_t,
                        max_t,
                    });
                }
                Ok(Record::Tombstones {
                    tenant,
                    tombstones: &self.tombstones,
                })
            }
            other => Err(RecordError::UnknownType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_layout() {
        let mut buf = Vec::new();
        let mut e = SamplesEncoder::new(&mut buf, 3);
        e.add(10, 1000, 1.5);
        e.add(9, 1015, f64::NAN);
        assert_eq!(e.len(), 2);
        let mut want = vec![TYPE_SAMPLES, 3, 10, 0xd0, 0x0f, 0, 0];
        want.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[1, 30]);
        want.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
        assert_eq!(buf, want);
        let mut d = Decoder::new();
        let Ok(Record::Samples { tenant, samples }) = d.decode(&buf) else {
            panic!("not samples");
        };
        assert_eq!(tenant, 3);
        assert_eq!(samples.len(), 2);
        assert_eq!((samples[1].series, samples[1].t), (9, 1015));
        assert_eq!(samples[1].v.to_bits(), f64::NAN.to_bits());
    }

    #[test]
    fn many_labels_widen_the_count() {
        let names: Vec<String> = (0..300).map(|i| format!("l{i:03}")).collect();
        let mut buf = Vec::new();
        let mut e = SeriesEncoder::new(&mut buf, 0);
        e.add(7, names.iter().map(|n| (n.as_str(), "v")));
        e.add(8, [("a", "b")]);
        let mut d = Decoder::new();
        let Ok(Record::Series { series, .. }) = d.decode(&buf) else {
            panic!("not series");
        };
        let v: Vec<_> = series.iter().collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].num_labels(), 300);
        assert!(
            v[0].labels()
                .map(|(n, _)| n)
                .eq(names.iter().map(String::as_str))
        );
        assert_eq!(v[1].labels().collect::<Vec<_>>(), [("a", "b")]);
    }

    #[test]
    fn errors() {
        let mut d = Decoder::new();
        assert_eq!(d.decode(&[]).err(), Some(RecordError::Empty));
        assert_eq!(d.decode(&[1]).err(), Some(RecordError::UnknownType(1)));
        assert_eq!(
            d.decode(&[TYPE_TENANT, 0x80]).err(),
            Some(RecordError::Truncated { offset: 2 })
        );
        let mut overflow = vec![TYPE_SAMPLES];
        overflow.extend_from_slice(&[0xff; 9]);
        overflow.push(2);
        assert_eq!(
            d.decode(&overflow).err(),
            Some(RecordError::VarintOverflow { offset: 1 })
        );
        assert!(matches!(
            d.decode(&[TYPE_SERIES, 0xff, 0xff, 0xff, 0xff, 0x10]),
            Err(RecordError::OutOfRange { .. })
        ));
        // A huge label count with no data: an error, not an allocation.
        let huge = [
            TYPE_SERIES,
            0,
            1,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x7f,
        ];
        assert!(matches!(
            d.decode(&huge),
            Err(RecordError::Truncated { .. })
        ));
        assert_eq!(
            d.decode(&[TYPE_TENANT, 0, 2, 0xff, 0xfe]).err(),
            Some(RecordError::InvalidUtf8 { offset: 3 })
        );
        assert_eq!(
            d.decode(&[TYPE_TENANT, 0, 1, b'a', 0]).err(),
            Some(RecordError::TrailingBytes { extra: 1 })
        );
        // base ref 0, delta -1
        let mut neg = vec![TYPE_SAMPLES, 0, 0, 0, 1, 0];
        neg.extend_from_slice(&[0; 8]);
        assert!(matches!(
            d.decode(&neg),
            Err(RecordError::OutOfRange { .. })
        ));
    }
}
