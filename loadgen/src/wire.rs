//! Request and response bodies of the remote-write and remote-read protocols: protobuf
//! (`strata_net::remote_write::proto`) inside a snappy block (not the framed format).
//!
//! [`WriteEncoder`] appends series straight into the `WriteRequest` bytes instead of building a
//! `Vec<TimeSeries>` first; its output is byte-identical to prost's encoding of the same message
//! (tested below), it just skips cloning every label string for every sample.

use prost::Message;
use strata_net::remote_write::proto::{
    Label, LabelMatcher, Query, ReadRequest, ReadResponse, Sample, label_matcher, read_request,
};

use crate::Error;

impl Default for WriteEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Key of a length-delimited field 1 (`WriteRequest.timeseries`, `TimeSeries.labels`).
const FIELD_1_LEN: u8 = 0x0a;
/// Key of a length-delimited field 2 (`TimeSeries.samples`).
const FIELD_2_LEN: u8 = 0x12;

/// Builds one snappy-compressed `WriteRequest` at a time.
pub struct WriteEncoder {
    raw: Vec<u8>,
    series: u32,
    snappy: snap::raw::Encoder,
}

impl WriteEncoder {
    pub fn new() -> Self {
        Self {
            raw: Vec::new(),
            series: 0,
            snappy: snap::raw::Encoder::new(),
        }
    }

    /// Appends a `TimeSeries` with one sample. `labels` must already be sorted by name.
    pub fn push(&mut self, labels: &[Label], timestamp: i64, value: f64) {
        let sample = Sample { value, timestamp };
        let delimited = |len: usize| 1 + prost::length_delimiter_len(len) + len;
        let body: usize = labels
            .iter()
            .map(|l| delimited(l.encoded_len()))
            .sum::<usize>()
            + delimited(sample.encoded_len());
        let buf = &mut self.raw;
        buf.reserve(delimited(body));
        buf.push(FIELD_1_LEN);
        // Writing into a Vec cannot run out of space, the only way these fail.
        let _ = prost::encode_length_delimiter(body, buf);
        for label in labels {
            buf.push(FIELD_1_LEN);
            let _ = label.encode_length_delimited(buf);
        }
        buf.push(FIELD_2_LEN);
        let _ = sample.encode_length_delimited(buf);
        self.series += 1;
    }

    /// Series appended since the last [`WriteEncoder::finish`].
    pub fn series(&self) -> u32 {
        self.series
    }

    /// Uncompressed size of the pending request.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// The pending request, snappy-compressed; starts a new one.
    pub fn finish(&mut self) -> Result<Vec<u8>, Error> {
        let body = self.snappy.compress_vec(&self.raw)?;
        self.raw.clear();
        self.series = 0;
        Ok(body)
    }
}

/// A snappy-compressed remote-read request for every series of `instance` in `[start, end]`,
/// answered with raw samples.
pub fn read_request(instance: &str, start_ms: i64, end_ms: i64) -> Result<Vec<u8>, Error> {
    read_request_eq(&[("instance", instance)], start_ms, end_ms)
}

/// A snappy-compressed remote-read request for every series (`__name__=~".+"`) whose labels
/// equal `eq`, in `[start, end]`, answered with raw samples.
pub fn read_request_eq(eq: &[(&str, &str)], start_ms: i64, end_ms: i64) -> Result<Vec<u8>, Error> {
    let any_name = LabelMatcher {
        r#type: label_matcher::Type::Re as i32,
        name: "__name__".into(),
        value: ".+".into(),
    };
    let matchers = std::iter::once(any_name)
        .chain(eq.iter().map(|(name, value)| LabelMatcher {
            r#type: label_matcher::Type::Eq as i32,
            name: (*name).into(),
            value: (*value).into(),
        }))
        .collect();
    let request = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: start_ms,
            end_timestamp_ms: end_ms,
            matchers,
            hints: None,
        }],
        accepted_response_types: vec![read_request::ResponseType::Samples as i32],
    };
    Ok(snap::raw::Encoder::new().compress_vec(&request.encode_to_vec())?)
}

/// Decodes a snappy-compressed `ReadResponse`.
pub fn read_response(body: &[u8]) -> Result<ReadResponse, Error> {
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(ReadResponse::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use strata_net::remote_write::proto::{QueryResult, TimeSeries, WriteRequest};

    use super::*;
    use crate::fleet::{FleetSpec, Host};

    #[test]
    fn write_encoder_matches_prost() {
        let spec = FleetSpec {
            hosts: 2,
            tenants: 1,
            rounds: 1,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 7,
        };
        let mut enc = WriteEncoder::new();
        let mut expected = WriteRequest {
            timeseries: vec![],
            metadata: vec![],
        };
        for h in 0..spec.hosts {
            let host = Host::new(&spec, h);
            let ts = host.timestamp();
            for s in host.series() {
                enc.push(&s.labels, ts, s.value(ts));
                expected.timeseries.push(TimeSeries {
                    labels: s.labels.clone(),
                    samples: vec![Sample {
                        value: s.value(ts),
                        timestamp: ts,
                    }],
                    exemplars: vec![],
                    histograms: vec![],
                });
            }
        }
        // Zero values and timestamps are omitted by proto3; cover them too.
        let zero = vec![Label {
            name: "__name__".into(),
            value: "z".into(),
        }];
        enc.push(&zero, 0, 0.0);
        expected.timeseries.push(TimeSeries {
            labels: zero,
            samples: vec![Sample {
                value: 0.0,
                timestamp: 0,
            }],
            exemplars: vec![],
            histograms: vec![],
        });
        assert_eq!(enc.series(), 2 * 100 + 1);
        assert_eq!(enc.raw, expected.encode_to_vec());
        let body = enc.finish().expect("compress");
        assert_eq!(enc.series(), 0);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("decompress");
        assert_eq!(
            WriteRequest::decode(raw.as_slice()).expect("decode"),
            expected
        );
    }

    #[test]
    fn read_round_trip() {
        let body = read_request("host-3:9100", 10, 20).expect("encode");
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("decompress");
        let req = ReadRequest::decode(raw.as_slice()).expect("decode");
        assert_eq!(req.queries.len(), 1);
        assert_eq!(req.queries[0].matchers[1].value, "host-3:9100");
        let resp = ReadResponse {
            results: vec![QueryResult { timeseries: vec![] }],
        };
        let enc = snap::raw::Encoder::new()
            .compress_vec(&resp.encode_to_vec())
            .expect("compress");
        assert_eq!(read_response(&enc).expect("decode"), resp);
        assert!(read_response(b"\xff\xff garbage").is_err());
    }
}
