//! The push-path decoder of remote-write 1.0 against prost, the oracle.
//!
//! Two oracles: `proto::WriteRequest` itself (strings, UTF-8-checked) for requests generated with
//! valid UTF-8, and `oracle::WriteRequest`, the same messages with `bytes` in place of `string`,
//! which decodes every wire encoding exactly as prost does minus the UTF-8 check. Our decoder
//! must agree with the latter on every input: same success or failure, and on success the same
//! series, label bytes, sample bits, counts and hashes. The one documented exception: we refuse
//! groups (wire types 3 and 4) where prost skips a well-formed group in an unknown field.
//!
//! Inputs: generated requests (canonical prost encoding), the same requests re-encoded
//! non-canonically (fields interleaved, unknown fields, padded varints, duplicated scalars,
//! packed and unpacked repeated scalars), their truncations and mutations, random wire-format
//! trees, and random bytes.

use proptest::prelude::*;
use prost::Message;
use strata_net::remote_write::decode::{DecodeError, decode_write_request};
use strata_net::remote_write::proto::{self, histogram};
use strata_net::remote_write::snappy;
use strata_storage::batch::WriteBatch;
use strata_storage::labels::LabelHasher;

/// `proto`'s messages with `bytes` for `string`: prost's wire semantics without the UTF-8 check.
mod oracle {
    use strata_net::remote_write::proto;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(bytes = "vec", tag = "2")]
        pub metric_family_name: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub help: Vec<u8>,
        #[prost(bytes = "vec", tag = "5")]
        pub unit: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<proto::Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<proto::Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(bytes = "vec", tag = "1")]
        pub name: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison with the oracles
// ---------------------------------------------------------------------------------------------

fn batch_of(bytes: &[u8]) -> WriteBatch {
    let mut batch = WriteBatch::default();
    batch.buf.extend_from_slice(bytes);
    batch.len = bytes.len();
    batch
}

/// `(name, value)` byte pairs of one series, as the oracle decoded them.
type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

fn hash_of(pairs: &Pairs<'_>) -> u64 {
    let mut h = LabelHasher::new();
    for (n, v) in pairs {
        h.add(n, v);
    }
    h.finish()
}

/// Asserts that `batch` indexes exactly what the oracle decoded.
fn assert_same(req: &oracle::WriteRequest, batch: &WriteBatch) -> Result<(), TestCaseError> {
    prop_assert_eq!(batch.series.len(), req.timeseries.len());
    prop_assert_eq!(batch.metadata as usize, req.metadata.len());
    let total: usize = req.timeseries.iter().map(|ts| ts.samples.len()).sum();
    prop_assert_eq!(batch.num_samples(), total);
    for (i, ts) in req.timeseries.iter().enumerate() {
        let want: Pairs<'_> = ts
            .labels
            .iter()
            .map(|l| (l.name.as_slice(), l.value.as_slice()))
            .collect();
        let got: Pairs<'_> = batch.labels_of(i).collect();
        prop_assert_eq!(&got, &want, "labels of series {}", i);
        prop_assert_eq!(batch.series[i].hash, hash_of(&want), "hash of series {}", i);
        let want: Vec<(i64, u64)> = ts
            .samples
            .iter()
            .map(|s| (s.timestamp, s.value.to_bits()))
            .collect();
        let got: Vec<(i64, u64)> = batch
            .samples_of(i)
            .iter()
            .map(|s| (s.t, s.v.to_bits()))
            .collect();
        prop_assert_eq!(got, want, "samples of series {}", i);
        prop_assert_eq!(batch.series[i].exemplars as usize, ts.exemplars.len());
        prop_assert_eq!(batch.series[i].histograms as usize, ts.histograms.len());
    }
    Ok(())
}

/// Decodes `bytes` with ours and with the bytes oracle and asserts they agree (see the module
/// docs for the one allowed difference). Returns whether the request decoded.
fn check(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let want = oracle::WriteRequest::decode(bytes);
    let mut batch = batch_of(bytes);
    let got = decode_write_request(&mut batch);
    match (want, got) {
        (Ok(req), Ok(())) => {
            assert_same(&req, &batch)?;
            Ok(true)
        }
        (Err(_), Err(e)) => {
            prop_assert!(batch.series.is_empty() && batch.labels.is_empty());
            prop_assert!(e.to_string().contains("at byte"), "no offset in {e}");
            Ok(false)
        }
        // Documented: groups are refused, prost skips them in unknown fields.
        (Ok(_), Err(DecodeError::Group { .. })) => Ok(false),
        (Ok(_), Err(e)) => Err(TestCaseError::fail(format!(
            "prost accepts, we refuse: {e}"
        ))),
        (Err(e), Ok(())) => Err(TestCaseError::fail(format!(
            "prost refuses ({e}), we accept"
        ))),
    }
}

/// Like [`check`], and also against `proto::WriteRequest` for inputs known to be valid UTF-8.
fn check_utf8(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let ok = check(bytes)?;
    let strict = proto::WriteRequest::decode(bytes);
    prop_assert_eq!(strict.is_ok(), oracle::WriteRequest::decode(bytes).is_ok());
    if let Ok(req) = strict {
        // The string oracle's labels are the same bytes.
        let mut batch = batch_of(bytes);
        prop_assert!(decode_write_request(&mut batch).is_ok());
        for (i, ts) in req.timeseries.iter().enumerate() {
            let want: Pairs<'_> = ts
                .labels
                .iter()
                .map(|l| (l.name.as_bytes(), l.value.as_bytes()))
                .collect();
            prop_assert_eq!(batch.labels_of(i).collect::<Pairs<'_>>(), want);
        }
    }
    Ok(ok)
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z_]{1,12}",
        "[a-zA-Z0-9_.:/ -]{0,40}",
        any::<String>(),
        // 128+ bytes: two-byte length prefixes
        "[a-z]{120,200}",
    ]
}

fn f64_any() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(0.0),
        Just(-0.0),
        Just(f64::from_bits(0x7ff0_0000_0000_0002)), // Prometheus stale marker
        Just(f64::NAN),
        (-1e6..1e6f64),
    ]
}

fn i64_any() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(0),
        1_600_000_000_000..1_800_000_000_000i64,
        -100..100i64
    ]
}

fn label() -> impl Strategy<Value = proto::Label> {
    (text(), text()).prop_map(|(name, value)| proto::Label { name, value })
}

fn sample() -> impl Strategy<Value = proto::Sample> {
    (f64_any(), i64_any()).prop_map(|(value, timestamp)| proto::Sample { value, timestamp })
}

fn exemplar() -> impl Strategy<Value = proto::Exemplar> {
    (prop::collection::vec(label(), 0..3), f64_any(), i64_any()).prop_map(
        |(labels, value, timestamp)| proto::Exemplar {
            labels,
            value,
            timestamp,
        },
    )
}

fn bucket_spans() -> impl Strategy<Value = Vec<proto::BucketSpan>> {
    prop::collection::vec(
        (any::<i32>(), any::<u32>())
            .prop_map(|(offset, length)| proto::BucketSpan { offset, length }),
        0..3,
    )
}

fn histogram() -> impl Strategy<Value = proto::Histogram> {
    let count = prop::option::of(prop_oneof![
        any::<u64>().prop_map(histogram::Count::CountInt),
        f64_any().prop_map(histogram::Count::CountFloat),
    ]);
    let zero_count = prop::option::of(prop_oneof![
        any::<u64>().prop_map(histogram::ZeroCount::ZeroCountInt),
        f64_any().prop_map(histogram::ZeroCount::ZeroCountFloat),
    ]);
    let deltas = || prop::collection::vec(any::<i64>(), 0..4);
    let counts = || prop::collection::vec(f64_any(), 0..4);
    (
        (count, f64_any(), any::<i32>(), f64_any(), zero_count),
        (
            bucket_spans(),
            deltas(),
            counts(),
            bucket_spans(),
            deltas(),
            counts(),
        ),
        (any::<i32>(), i64_any(), counts()),
    )
        .prop_map(
            |(
                (count, sum, schema, zero_threshold, zero_count),
                (
                    negative_spans,
                    negative_deltas,
                    negative_counts,
                    positive_spans,
                    positive_deltas,
                    positive_counts,
                ),
                (reset_hint, timestamp, custom_values),
            )| proto::Histogram {
                count,
                sum,
                schema,
                zero_threshold,
                zero_count,
                negative_spans,
                negative_deltas,
                negative_counts,
                positive_spans,
                positive_deltas,
                positive_counts,
                reset_hint,
                timestamp,
                custom_values,
            },
        )
}

fn time_series() -> impl Strategy<Value = proto::TimeSeries> {
    (
        prop::collection::vec(label(), 0..8),
        prop::collection::vec(sample(), 0..5),
        prop::collection::vec(exemplar(), 0..3),
        prop::collection::vec(histogram(), 0..2),
    )
        .prop_map(
            |(labels, samples, exemplars, histograms)| proto::TimeSeries {
                labels,
                samples,
                exemplars,
                histograms,
            },
        )
}

fn metadata() -> impl Strategy<Value = proto::MetricMetadata> {
    (prop_oneof![0..8i32, any::<i32>()], text(), text(), text()).prop_map(
        |(r#type, metric_family_name, help, unit)| proto::MetricMetadata {
            r#type,
            metric_family_name,
            help,
            unit,
        },
    )
}

fn request() -> impl Strategy<Value = proto::WriteRequest> {
    (
        prop::collection::vec(time_series(), 0..10),
        prop::collection::vec(metadata(), 0..3),
    )
        .prop_map(|(timeseries, metadata)| proto::WriteRequest {
            timeseries,
            metadata,
        })
}

/// A protobuf wire-format tree with arbitrary field numbers and wire types: well-formed framing,
/// arbitrary meaning. Reaches nested messages with wrong wire types, unknown fields and groups.
#[derive(Clone, Debug)]
enum Node {
    Varint(u32, u64),
    I64(u32, u64),
    I32(u32, u32),
    Bytes(u32, Vec<u8>),
    Message(u32, Vec<Node>),
    Group(u32, Vec<Node>),
    /// A raw key, possibly with field 0 or wire type 6 or 7, with nothing after it.
    Key(u64),
}

fn field_number() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1..=5u32, 3 => 1..=17u32, 1 => 1..=(u32::MAX >> 3)]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => (field_number(), prop_oneof![any::<u64>(), 0..300u64]).prop_map(|(f, v)| Node::Varint(f, v)),
        4 => (field_number(), any::<u64>()).prop_map(|(f, v)| Node::I64(f, v)),
        4 => (field_number(), any::<u32>()).prop_map(|(f, v)| Node::I32(f, v)),
        4 => (field_number(), prop::collection::vec(any::<u8>(), 0..12)).prop_map(|(f, v)| Node::Bytes(f, v)),
        1 => prop_oneof![0..64u64, any::<u64>()].prop_map(Node::Key),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            6 => (field_number(), prop::collection::vec(inner.clone(), 0..6))
                .prop_map(|(f, v)| Node::Message(f, v)),
            1 => (field_number(), prop::collection::vec(inner, 0..3)).prop_map(|(f, v)| Node::Group(f, v)),
        ]
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn encode_nodes(nodes: &[Node], out: &mut Vec<u8>) {
    for n in nodes {
        match n {
            Node::Varint(f, v) => {
                put_key(out, *f, 0);
                put_varint(out, *v);
            }
            Node::I64(f, v) => {
                put_key(out, *f, 1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Node::I32(f, v) => {
                put_key(out, *f, 5);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Node::Bytes(f, v) => {
                put_key(out, *f, 2);
                put_varint(out, v.len() as u64);
                out.extend_from_slice(v);
            }
            Node::Message(f, v) => {
                let mut inner = Vec::new();
                encode_nodes(v, &mut inner);
                put_key(out, *f, 2);
                put_varint(out, inner.len() as u64);
                out.extend_from_slice(&inner);
            }
            Node::Group(f, v) => {
                put_key(out, *f, 3);
                encode_nodes(v, out);
                put_key(out, *f, 4);
            }
            Node::Key(k) => put_varint(out, *k),
        }
    }
}

/// A valid but non-canonical encoder driven by a seed: interleaves fields (keeping the order of
/// each repeated field), adds unknown fields of every wire type, pads varints, writes zero values
/// explicitly, writes a scalar twice (the first a decoy, the last the real value), and writes
/// repeated scalars packed, unpacked, or both in several runs.
struct Noncanonical {
    state: u64,
}

/// An encoded field and its field number, before interleaving.
type Field = (u32, Vec<u8>);

/// Field numbers no message of `remote.proto` uses, so the interleaving may put them anywhere.
const UNKNOWN: u32 = u32::MAX >> 3;

impl Noncanonical {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn varint(&mut self, out: &mut Vec<u8>, v: u64) {
        let start = out.len();
        put_varint(out, v);
        let len = out.len() - start;
        if len < 10 && self.one_in(6) {
            // Same value, more bytes: continue the last byte, then 0x80s, then 0x00.
            let extra = 1 + self.below((10 - len) as u64) as usize;
            if let Some(last) = out.last_mut() {
                *last |= 0x80;
            }
            out.extend(std::iter::repeat_n(0x80, extra - 1));
            out.push(0);
        }
    }

    fn key(&mut self, out: &mut Vec<u8>, field: u32, wire_type: u8) {
        self.varint(out, (u64::from(field) << 3) | u64::from(wire_type));
    }

    fn bytes_field(&mut self, field: u32, payload: &[u8]) -> Field {
        let mut out = Vec::new();
        self.key(&mut out, field, 2);
        self.varint(&mut out, payload.len() as u64);
        out.extend_from_slice(payload);
        (field, out)
    }

    fn varint_field(&mut self, field: u32, v: u64) -> Field {
        let mut out = Vec::new();
        self.key(&mut out, field, 0);
        self.varint(&mut out, v);
        (field, out)
    }

    fn fixed64_field(&mut self, field: u32, bits: u64) -> Field {
        let mut out = Vec::new();
        self.key(&mut out, field, 1);
        out.extend_from_slice(&bits.to_le_bytes());
        (field, out)
    }

    fn unknown_field(&mut self) -> Field {
        let field = if self.one_in(2) {
            17 + self.below(24) as u32
        } else {
            1000 + self.below(100_000) as u32
        };
        let mut out = Vec::new();
        match self.below(4) {
            0 => {
                self.key(&mut out, field, 0);
                let v = self.next() >> self.below(64);
                self.varint(&mut out, v);
            }
            1 => {
                self.key(&mut out, field, 1);
                out.extend_from_slice(&self.next().to_le_bytes());
            }
            2 => {
                self.key(&mut out, field, 2);
                let len = self.below(6) as usize;
                self.varint(&mut out, len as u64);
                out.extend(self.next().to_le_bytes().iter().take(len));
            }
            _ => {
                self.key(&mut out, field, 5);
                out.extend_from_slice(&(self.next() as u32).to_le_bytes());
            }
        }
        (UNKNOWN, out)
    }

    /// Scalar field: written if non-default or by chance, possibly after a decoy.
    fn scalar(
        &mut self,
        fields: &mut Vec<Field>,
        is_default: bool,
        make: impl Fn(&mut Self, bool) -> Field,
    ) {
        let decoy = self.one_in(4);
        if decoy {
            let f = make(self, true);
            fields.push(f);
        }
        if !is_default || decoy || self.one_in(4) {
            let f = make(self, false);
            fields.push(f);
        }
    }

    /// Interleaves the fields at random (each field number keeps its own order), adds unknown
    /// fields, and concatenates.
    fn message(&mut self, mut fields: Vec<Field>) -> Vec<u8> {
        for _ in 0..self.below(3) {
            let f = self.unknown_field();
            fields.push(f);
        }
        let mut prio: Vec<u64> = fields.iter().map(|_| self.next()).collect();
        let mut numbers: Vec<u32> = fields.iter().map(|f| f.0).collect();
        numbers.sort_unstable();
        numbers.dedup();
        for n in numbers.into_iter().filter(|&n| n != UNKNOWN) {
            let idx: Vec<usize> = (0..fields.len()).filter(|&i| fields[i].0 == n).collect();
            let mut p: Vec<u64> = idx.iter().map(|&i| prio[i]).collect();
            p.sort_unstable();
            for (&i, v) in idx.iter().zip(p) {
                prio[i] = v;
            }
        }
        let mut order: Vec<usize> = (0..fields.len()).collect();
        order.sort_by_key(|&i| prio[i]);
        order
            .into_iter()
            .flat_map(|i| fields[i].1.clone())
            .collect()
    }

    fn string_field(&mut self, fields: &mut Vec<Field>, field: u32, s: &str) {
        self.scalar(fields, s.is_empty(), |e, decoy| {
            e.bytes_field(field, if decoy { b"decoy" } else { s.as_bytes() })
        });
    }

    fn label(&mut self, l: &proto::Label) -> Vec<u8> {
        let mut fields = Vec::new();
        self.string_field(&mut fields, 1, &l.name);
        self.string_field(&mut fields, 2, &l.value);
        self.message(fields)
    }

    fn double(&mut self, fields: &mut Vec<Field>, field: u32, v: f64) {
        let bits = v.to_bits();
        self.scalar(fields, v == 0.0, |e, decoy| {
            let b = if decoy { e.next() } else { bits };
            e.fixed64_field(field, b)
        });
    }

    fn int(&mut self, fields: &mut Vec<Field>, field: u32, v: u64) {
        self.scalar(fields, v == 0, |e, decoy| {
            let x = if decoy { e.next() } else { v };
            e.varint_field(field, x)
        });
    }

    fn sample(&mut self, s: &proto::Sample) -> Vec<u8> {
        let mut fields = Vec::new();
        self.double(&mut fields, 1, s.value);
        self.int(&mut fields, 2, s.timestamp as u64);
        self.message(fields)
    }

    fn exemplar(&mut self, x: &proto::Exemplar) -> Vec<u8> {
        let mut fields = Vec::new();
        for l in &x.labels {
            let m = self.label(l);
            fields.push(self.bytes_field(1, &m));
        }
        self.double(&mut fields, 2, x.value);
        self.int(&mut fields, 3, x.timestamp as u64);
        self.message(fields)
    }

    fn spans(&mut self, fields: &mut Vec<Field>, field: u32, spans: &[proto::BucketSpan]) {
        for s in spans {
            let mut inner = Vec::new();
            self.int(&mut inner, 1, u64::from(zigzag32(s.offset)));
            self.int(&mut inner, 2, u64::from(s.length));
            let m = self.message(inner);
            fields.push(self.bytes_field(field, &m));
        }
    }

    /// A repeated scalar in runs, each packed or unpacked. `wire_type` 0 (varint) or 1 (double).
    fn repeated(&mut self, fields: &mut Vec<Field>, field: u32, wire_type: u8, values: &[u64]) {
        let mut rest = values;
        while !rest.is_empty() || self.one_in(8) {
            let n = if rest.is_empty() {
                0
            } else {
                1 + self.below(rest.len() as u64) as usize
            };
            let (run, tail) = rest.split_at(n);
            rest = tail;
            if self.one_in(2) && !run.is_empty() {
                for &v in run {
                    fields.push(if wire_type == 0 {
                        self.varint_field(field, v)
                    } else {
                        self.fixed64_field(field, v)
                    });
                }
            } else {
                let mut payload = Vec::new();
                for &v in run {
                    if wire_type == 0 {
                        self.varint(&mut payload, v);
                    } else {
                        payload.extend_from_slice(&v.to_le_bytes());
                    }
                }
                fields.push(self.bytes_field(field, &payload));
            }
        }
    }

    fn histogram(&mut self, h: &proto::Histogram) -> Vec<u8> {
        let mut fields = Vec::new();
        match h.count {
            Some(histogram::Count::CountInt(v)) => fields.push(self.varint_field(1, v)),
            Some(histogram::Count::CountFloat(v)) => {
                fields.push(self.fixed64_field(2, v.to_bits()));
            }
            None => {}
        }
        self.double(&mut fields, 3, h.sum);
        self.int(&mut fields, 4, u64::from(zigzag32(h.schema)));
        self.double(&mut fields, 5, h.zero_threshold);
        match h.zero_count {
            Some(histogram::ZeroCount::ZeroCountInt(v)) => fields.push(self.varint_field(6, v)),
            Some(histogram::ZeroCount::ZeroCountFloat(v)) => {
                fields.push(self.fixed64_field(7, v.to_bits()));
            }
            None => {}
        }
        let deltas = |d: &[i64]| d.iter().map(|&x| zigzag64(x)).collect::<Vec<_>>();
        let counts = |c: &[f64]| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.spans(&mut fields, 8, &h.negative_spans);
        self.repeated(&mut fields, 9, 0, &deltas(&h.negative_deltas));
        self.repeated(&mut fields, 10, 1, &counts(&h.negative_counts));
        self.spans(&mut fields, 11, &h.positive_spans);
        self.repeated(&mut fields, 12, 0, &deltas(&h.positive_deltas));
        self.repeated(&mut fields, 13, 1, &counts(&h.positive_counts));
        self.int(&mut fields, 14, i64::from(h.reset_hint) as u64);
        self.int(&mut fields, 15, h.timestamp as u64);
        self.repeated(&mut fields, 16, 1, &counts(&h.custom_values));
        self.message(fields)
    }

    fn time_series(&mut self, ts: &proto::TimeSeries) -> Vec<u8> {
        let mut fields = Vec::new();
        for l in &ts.labels {
            let m = self.label(l);
            fields.push(self.bytes_field(1, &m));
        }
        for s in &ts.samples {
            let m = self.sample(s);
            fields.push(self.bytes_field(2, &m));
        }
        for x in &ts.exemplars {
            let m = self.exemplar(x);
            fields.push(self.bytes_field(3, &m));
        }
        for h in &ts.histograms {
            let m = self.histogram(h);
            fields.push(self.bytes_field(4, &m));
        }
        self.message(fields)
    }

    fn metadata(&mut self, m: &proto::MetricMetadata) -> Vec<u8> {
        let mut fields = Vec::new();
        self.int(&mut fields, 1, i64::from(m.r#type) as u64);
        self.string_field(&mut fields, 2, &m.metric_family_name);
        self.string_field(&mut fields, 4, &m.help);
        self.string_field(&mut fields, 5, &m.unit);
        self.message(fields)
    }

    fn request(&mut self, req: &proto::WriteRequest) -> Vec<u8> {
        let mut fields = Vec::new();
        for ts in &req.timeseries {
            let m = self.time_series(ts);
            fields.push(self.bytes_field(1, &m));
        }
        for md in &req.metadata {
            let m = self.metadata(md);
            fields.push(self.bytes_field(3, &m));
        }
        self.message(fields)
    }
}

fn zigzag32(n: i32) -> u32 {
    ((n << 1) ^ (n >> 31)) as u32
}

fn zigzag64(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let byte = prop_oneof![
        any::<u8>(),
        Just(0x80),
        Just(0xff),
        Just(0x0a),
        Just(0x12),
        0..16u8
    ];
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
            (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Remove),
            any::<usize>().prop_map(Edit::Truncate),
        ],
        1..4,
    )
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Set(i, b) if n > 0 => bytes[i % n] = b,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Remove(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Canonical prost encodings: we decode exactly what prost decodes.
    #[test]
    fn prop_generated_requests_agree_with_prost(req in request()) {
        let bytes = req.encode_to_vec();
        prop_assert!(check_utf8(&bytes)?);
        // And the string oracle round-trips to the generated request (bit for bit).
        let back = proto::WriteRequest::decode(bytes.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.encode_to_vec(), bytes);
    }

    /// Non-canonical encodings of the same request: prost recovers the request, and so do we.
    #[test]
    fn prop_noncanonical_encodings_agree_with_prost(req in request(), seed in any::<u64>()) {
        let bytes = Noncanonical { state: seed }.request(&req);
        let back = proto::WriteRequest::decode(bytes.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.encode_to_vec(), req.encode_to_vec(), "the encoder is valid");
        prop_assert!(check_utf8(&bytes)?);
    }

    /// Every truncation of a (non-canonical) request decodes or fails as prost does.
    #[test]
    fn prop_truncated_requests_agree_with_prost(
        req in request(),
        seed in any::<u64>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 1..16),
    ) {
        let bytes = Noncanonical { state: seed }.request(&req);
        for cut in cuts {
            check(&bytes[..cut.index(bytes.len() + 1)])?;
        }
    }

    /// Small edits of a (non-canonical) request decode or fail as prost does.
    #[test]
    fn prop_mutated_requests_agree_with_prost(req in request(), seed in any::<u64>(), edits in edits()) {
        let mut bytes = Noncanonical { state: seed }.request(&req);
        apply(&mut bytes, &edits);
        check(&bytes)?;
    }

    /// Well-framed protobuf of random meaning: wrong wire types, unknown fields, groups, field 0.
    #[test]
    fn prop_random_wire_trees_agree_with_prost(nodes in prop::collection::vec(node(), 0..8), edits in prop::option::of(edits())) {
        let mut bytes = Vec::new();
        encode_nodes(&nodes, &mut bytes);
        if let Some(edits) = edits {
            apply(&mut bytes, &edits);
        }
        check(&bytes)?;
    }

    /// Random bytes never panic and decode or fail as prost does.
    #[test]
    fn prop_random_bytes_agree_with_prost(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes)?;
    }

    /// Snappy, then decode: the end-to-end push path over generated requests.
    #[test]
    fn prop_snappy_then_decode(req in request()) {
        let body = snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.clear();
        batch.len = snappy::decompress_into(&body, &mut batch.buf, 64 << 20).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(decode_write_request(&mut batch).is_ok());
        let want = oracle::WriteRequest::decode(batch.bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        assert_same(&want, &batch)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-written cases
// ---------------------------------------------------------------------------------------------

fn decode(bytes: &[u8]) -> (Result<(), DecodeError>, WriteBatch) {
    let mut batch = batch_of(bytes);
    let r = decode_write_request(&mut batch);
    (r, batch)
}

fn len_field(field: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_key(&mut out, field, 2);
    put_varint(&mut out, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// A request with one series holding `series_body`.
fn one_series(series_body: &[u8]) -> Vec<u8> {
    len_field(1, series_body)
}

fn assert_agrees(bytes: &[u8]) {
    if let Err(e) = check(bytes) {
        panic!("{e}");
    }
}

#[test]
fn empty_request_is_an_empty_batch() {
    let (r, batch) = decode(&[]);
    assert_eq!(r, Ok(()));
    assert!(batch.series.is_empty() && batch.samples.is_empty() && batch.metadata == 0);
}

#[test]
fn missing_sample_fields_are_zero() {
    let bytes = one_series(&[len_field(2, &[]), len_field(2, &[0x10, 0x07])].concat());
    let (r, batch) = decode(&bytes);
    assert_eq!(r, Ok(()));
    let s = batch.samples_of(0);
    assert_eq!((s[0].t, s[0].v.to_bits()), (0, 0));
    assert_eq!((s[1].t, s[1].v.to_bits()), (7, 0));
    assert_agrees(&bytes);
}

#[test]
fn sample_fields_given_twice_last_wins() {
    let mut sample = vec![0x09];
    sample.extend_from_slice(&1.0f64.to_le_bytes());
    sample.extend_from_slice(&[0x10, 0x01, 0x10, 0x02, 0x09]);
    sample.extend_from_slice(&2.5f64.to_le_bytes());
    let bytes = one_series(&len_field(2, &sample));
    let (r, batch) = decode(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!((batch.samples[0].t, batch.samples[0].v), (2, 2.5));
    assert_agrees(&bytes);
}

#[test]
fn label_name_given_twice_last_wins() {
    let label = [
        len_field(1, b"first"),
        len_field(2, b"v"),
        len_field(1, b"second"),
    ]
    .concat();
    let bytes = one_series(&len_field(1, &label));
    let (r, batch) = decode(&bytes);
    assert_eq!(r, Ok(()));
    let pairs: Vec<_> = batch.labels_of(0).collect();
    assert_eq!(pairs, vec![(&b"second"[..], &b"v"[..])]);
    let mut h = LabelHasher::new();
    h.add(b"second", b"v");
    assert_eq!(batch.series[0].hash, h.finish());
    assert_agrees(&bytes);
}

#[test]
fn interleaved_labels_and_samples_keep_wire_order() {
    let l = |n: &[u8], v: &[u8]| len_field(1, &[len_field(1, n), len_field(2, v)].concat());
    let s = |t: u8| len_field(2, &[0x10, t]);
    let series = [s(1), l(b"a", b"1"), s(2), l(b"b", b"2"), s(3)].concat();
    let bytes = [
        one_series(&series),
        one_series(&[l(b"c", b"3"), s(4)].concat()),
    ]
    .concat();
    let (r, batch) = decode(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(
        batch.labels_of(0).collect::<Vec<_>>(),
        vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])]
    );
    assert_eq!(
        batch.samples_of(0).iter().map(|s| s.t).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        batch.labels_of(1).collect::<Vec<_>>(),
        vec![(&b"c"[..], &b"3"[..])]
    );
    assert_eq!(
        batch.samples_of(1).iter().map(|s| s.t).collect::<Vec<_>>(),
        vec![4]
    );
    assert_agrees(&bytes);
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let mut unknown = Vec::new();
    put_key(&mut unknown, 9, 0);
    put_varint(&mut unknown, u64::MAX);
    put_key(&mut unknown, 10, 1);
    unknown.extend_from_slice(&[1; 8]);
    unknown.extend(len_field(11, b"xyz"));
    put_key(&mut unknown, 12, 5);
    unknown.extend_from_slice(&[2; 4]);
    put_key(&mut unknown, 100_000, 0); // multi-byte key
    put_varint(&mut unknown, 1);
    let label = [
        unknown.clone(),
        len_field(1, b"n"),
        unknown.clone(),
        len_field(2, b"v"),
    ]
    .concat();
    let sample = [unknown.clone(), vec![0x10, 0x05]].concat();
    let series = [unknown.clone(), len_field(1, &label), len_field(2, &sample)].concat();
    // Field 2 of WriteRequest is reserved: unknown.
    let bytes = [
        unknown.clone(),
        len_field(2, b"cortex"),
        one_series(&series),
        unknown,
    ]
    .concat();
    let (r, batch) = decode(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(
        batch.labels_of(0).collect::<Vec<_>>(),
        vec![(&b"n"[..], &b"v"[..])]
    );
    assert_eq!(batch.samples[0].t, 5);
    assert_agrees(&bytes);
}

#[test]
fn histogram_repeated_scalars_packed_and_unpacked() {
    let mut h = Vec::new();
    h.extend(len_field(9, &[0x01, 0x02, 0x03])); // packed sint64
    h.extend([0x48, 0x04]); // unpacked sint64, field 9
    h.extend(len_field(10, &[0u8; 16])); // packed doubles
    h.push(0x51); // unpacked double, field 10
    h.extend_from_slice(&[0; 8]);
    h.extend(len_field(16, &[])); // empty packed custom_values
    let bytes = one_series(&len_field(4, &h));
    let (r, batch) = decode(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(batch.series[0].histograms, 1);
    assert_agrees(&bytes);
}

#[test]
fn packed_doubles_with_a_partial_value_are_refused() {
    let bytes = one_series(&len_field(4, &len_field(13, &[0; 12])));
    assert!(matches!(
        decode(&bytes).0,
        Err(DecodeError::TruncatedFixed { width: 8, .. })
    ));
    assert_agrees(&bytes);
}

#[test]
fn groups_are_refused_where_prost_skips_them() {
    // An unknown field 9 as a well-formed group inside a series.
    let mut series = Vec::new();
    put_key(&mut series, 9, 3);
    put_key(&mut series, 1, 0);
    put_varint(&mut series, 5);
    put_key(&mut series, 9, 4);
    let bytes = one_series(&series);
    assert!(
        oracle::WriteRequest::decode(bytes.as_slice()).is_ok(),
        "prost skips the group"
    );
    let err = decode(&bytes).0.unwrap_err();
    assert_eq!(
        err,
        DecodeError::Group {
            offset: 2,
            field: 9,
            wire_type: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "field 9 at byte 2 is a group (wire type 3), which is not supported"
    );
    // A stray end-group is refused by both.
    let mut bytes = Vec::new();
    put_key(&mut bytes, 9, 4);
    assert!(matches!(
        decode(&bytes).0,
        Err(DecodeError::Group { wire_type: 4, .. })
    ));
    assert_agrees(&bytes);
}

#[test]
fn undefined_wire_types_and_field_zero_are_refused() {
    for (bytes, want) in [
        (
            vec![0x0e],
            DecodeError::InvalidWireType {
                offset: 0,
                field: 1,
                wire_type: 6,
            },
        ),
        (
            vec![0x0f],
            DecodeError::InvalidWireType {
                offset: 0,
                field: 1,
                wire_type: 7,
            },
        ),
        (vec![0x02, 0x00], DecodeError::ZeroFieldNumber { offset: 0 }),
    ] {
        assert_eq!(decode(&bytes).0, Err(want));
        assert_agrees(&bytes);
    }
}

#[test]
fn malformed_varints_are_refused() {
    // A sample whose timestamp varint is truncated at the end of the request.
    let truncated = [0x0a, 0x04, 0x12, 0x02, 0x10, 0x80];
    assert_eq!(
        decode(&truncated).0,
        Err(DecodeError::TruncatedVarint { offset: 5 })
    );
    assert_agrees(&truncated);
    // 11 bytes of varint as a timestamp.
    let mut sample = vec![0x10];
    sample.extend_from_slice(&[0x80; 10]);
    sample.push(0x00);
    let overlong = one_series(&len_field(2, &sample));
    assert_eq!(
        decode(&overlong).0,
        Err(DecodeError::OverlongVarint { offset: 5 })
    );
    assert_agrees(&overlong);
    // 10 bytes whose last overflows 64 bits.
    let mut sample = vec![0x10];
    sample.extend_from_slice(&[0xff; 9]);
    sample.push(0x02);
    let overflow = one_series(&len_field(2, &sample));
    assert_eq!(
        decode(&overflow).0,
        Err(DecodeError::OverlongVarint { offset: 5 })
    );
    assert_agrees(&overflow);
    // A key beyond u32.
    let mut key = Vec::new();
    put_varint(&mut key, 1 << 35);
    assert_eq!(
        decode(&key).0,
        Err(DecodeError::KeyTooLarge {
            offset: 0,
            key: 1 << 35
        })
    );
    assert_agrees(&key);
}

#[test]
fn bad_lengths_are_refused() {
    let beyond = [0x0a, 0x05, 0x12];
    assert_eq!(
        decode(&beyond).0,
        Err(DecodeError::LengthOutOfBounds {
            offset: 1,
            len: 5,
            remaining: 1
        })
    );
    assert_agrees(&beyond);
    let mut huge = vec![0x0a];
    put_varint(&mut huge, 1 << 40);
    assert_eq!(
        decode(&huge).0,
        Err(DecodeError::LengthTooLarge {
            offset: 1,
            len: 1 << 40
        })
    );
    assert_agrees(&huge);
    // A nested length that fits the request but not its enclosing message.
    let nested = [0x0a, 0x02, 0x0a, 0x03, 0x00, 0x00, 0x00];
    assert!(matches!(
        decode(&nested).0,
        Err(DecodeError::LengthOutOfBounds { offset: 3, .. })
    ));
    assert_agrees(&nested);
}

#[test]
fn known_fields_with_wrong_wire_types_are_refused() {
    // sample.value as a varint
    let bytes = one_series(&len_field(2, &[0x08, 0x01]));
    let err = decode(&bytes).0.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Sample field 1 at byte 4 has wire type varint, expected 64-bit"
    );
    assert_agrees(&bytes);
    // timeseries as a varint
    let bytes = [0x08, 0x01];
    assert!(matches!(
        decode(&bytes).0,
        Err(DecodeError::UnexpectedWireType { field: 1, .. })
    ));
    assert_agrees(&bytes);
}

#[test]
fn invalid_utf8_is_accepted_here_and_refused_by_prost() {
    let label = [len_field(1, b"__name__"), len_field(2, &[0xff, 0xfe])].concat();
    let bytes = one_series(&len_field(1, &label));
    let err = proto::WriteRequest::decode(bytes.as_slice()).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
    let (r, batch) = decode(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(
        batch.labels_of(0).next(),
        Some((&b"__name__"[..], &[0xff, 0xfe][..]))
    );
    assert_agrees(&bytes);
}

#[test]
fn batch_is_reused_between_requests() {
    let l = |n: &[u8], v: &[u8]| len_field(1, &[len_field(1, n), len_field(2, v)].concat());
    let big: Vec<u8> = (0..100u8)
        .flat_map(|i| {
            one_series(
                &[
                    l(b"__name__", b"up"),
                    l(b"i", &[b'a' + i % 26]),
                    len_field(2, &[0x10, i]),
                ]
                .concat(),
            )
        })
        .collect();
    let small = one_series(&l(b"x", b"y"));
    let mut batch = batch_of(&big);
    decode_write_request(&mut batch).unwrap();
    assert_eq!(batch.series.len(), 100);
    let caps = (
        batch.series.capacity(),
        batch.labels.capacity(),
        batch.samples.capacity(),
    );
    batch.clear();
    batch.buf[..small.len()].copy_from_slice(&small);
    batch.len = small.len();
    decode_write_request(&mut batch).unwrap();
    assert_eq!(batch.series.len(), 1);
    assert_eq!(
        batch.labels_of(0).collect::<Vec<_>>(),
        vec![(&b"x"[..], &b"y"[..])]
    );
    assert!(batch.samples.is_empty());
    assert_eq!(
        (
            batch.series.capacity(),
            batch.labels.capacity(),
            batch.samples.capacity()
        ),
        caps
    );
    // A second decode of the same bytes without `clear` gives the same index, not a doubled one.
    decode_write_request(&mut batch).unwrap();
    assert_eq!((batch.series.len(), batch.labels.len()), (1, 1));
}

#[test]
fn oversized_snappy_body_is_refused_before_decoding() {
    let mut body = Vec::new();
    put_varint(&mut body, 200 << 20);
    body.extend_from_slice(&[0x00, b'a']);
    let mut batch = WriteBatch::default();
    let err = snappy::decompress_into(&body, &mut batch.buf, 64 << 20).unwrap_err();
    assert_eq!(
        err,
        snappy::SnappyError::TooLarge {
            declared: 200 << 20,
            limit: 64 << 20
        }
    );
    assert_eq!(batch.buf.capacity(), 0);
    assert_eq!(snappy::declared_len(&body), Ok(200 << 20));
}

#[test]
fn truncated_snappy_body_is_corrupt() {
    let req = proto::WriteRequest {
        timeseries: vec![proto::TimeSeries {
            labels: vec![proto::Label {
                name: "__name__".into(),
                value: "up".into(),
            }],
            samples: vec![proto::Sample {
                value: 1.0,
                timestamp: 1_700_000_000_000,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let mut out = Vec::new();
    for cut in 0..body.len() {
        let r = snappy::decompress_into(&body[..cut], &mut out, 1 << 20);
        assert!(
            matches!(r, Err(snappy::SnappyError::Corrupt(_))),
            "cut {cut}: {r:?}"
        );
    }
}
