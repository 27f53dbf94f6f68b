//! A write request decoded in place.
//!
//! The push path walks the protobuf once and records, for every series, where its label strings
//! lie in the decompressed buffer (no copy) and its samples as decoded `(t, v)` pairs. The batch is
//! then shared, read-only, by every shard that owns some of its series; each shard reads only the
//! series it was handed. All vectors are reused between requests (`clear` keeps capacity).

use std::ops::Range;

/// Where one label's name and value lie in [`WriteBatch::buf`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelSpan {
    pub name_start: u32,
    pub name_len: u32,
    pub value_start: u32,
    pub value_len: u32,
}

/// One decoded sample: timestamp in milliseconds, value (stale markers kept bit for bit).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// One series of the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesEntry {
    /// [`crate::labels::LabelHasher`] over the label pairs in wire order.
    pub hash: u64,
    /// Range into [`WriteBatch::labels`].
    pub labels: Range<u32>,
    /// Range into [`WriteBatch::samples`].
    pub samples: Range<u32>,
    /// Exemplars carried by the series (accepted, not stored yet).
    pub exemplars: u32,
    /// Native histogram samples carried by the series (accepted, not stored yet).
    pub histograms: u32,
}

/// A decoded remote-write request: the buffer and the index over it.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// The decompressed protobuf bytes.
    pub buf: Vec<u8>,
    /// How many bytes of `buf` are the request (the rest is reused capacity).
    pub len: usize,
    pub series: Vec<SeriesEntry>,
    pub labels: Vec<LabelSpan>,
    pub samples: Vec<Sample>,
    /// Metadata entries in the request (accepted, not stored yet).
    pub metadata: u32,
}

impl WriteBatch {
    /// Forgets the previous request, keeping every allocation.
    pub fn clear(&mut self) {
        self.len = 0;
        self.series.clear();
        self.labels.clear();
        self.samples.clear();
        self.metadata = 0;
    }

    /// The request bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The label pairs of series `i`, as raw bytes in wire order.
    pub fn labels_of(&self, i: usize) -> impl Iterator<Item = (&[u8], &[u8])> + Clone + '_ {
        let r = &self.series[i].labels;
        self.labels[r.start as usize..r.end as usize]
            .iter()
            .map(|s| {
                (
                    &self.buf[s.name_start as usize..(s.name_start + s.name_len) as usize],
                    &self.buf[s.value_start as usize..(s.value_start + s.value_len) as usize],
                )
            })
    }

    /// The samples of series `i`, in wire order.
    pub fn samples_of(&self, i: usize) -> &[Sample] {
        let r = &self.series[i].samples;
        &self.samples[r.start as usize..r.end as usize]
    }

    /// Samples in the whole request.
    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }
}
