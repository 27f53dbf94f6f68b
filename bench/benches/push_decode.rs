//! The push path's decode step: snappy + our zero-copy remote-write decoder, side by side with
//! snappy + prost (owned `String`s), over one realistic request: 2000 series of a `node_exporter`
//! fleet, 6-8 labels each (sorted, as Prometheus sends them), one sample each.
//!
//! `cargo bench -p strata-bench --bench push_decode`; throughput is in samples.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use strata_net::remote_write::decode::decode_write_request;
use strata_net::remote_write::proto;
use strata_net::remote_write::snappy::decompress_into;
use strata_storage::batch::WriteBatch;

const SERIES: usize = 2000;
const MAX_LEN: usize = 64 << 20;

/// One host's series: metric name and its own labels (beyond the target labels).
fn host_series() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let mut v = Vec::new();
    for cpu in 0..4 {
        for mode in ["idle", "iowait", "system", "user"] {
            v.push((
                "node_cpu_seconds_total",
                vec![("cpu", cpu.to_string()), ("mode", mode.to_owned())],
            ));
        }
    }
    for name in [
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "node_filesystem_files_free",
    ] {
        for (device, mountpoint) in [("/dev/nvme0n1p1", "/"), ("/dev/nvme1n1", "/var/lib/data")] {
            v.push((
                name,
                vec![
                    ("device", device.to_owned()),
                    ("mountpoint", mountpoint.to_owned()),
                ],
            ));
        }
    }
    for name in [
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
    ] {
        for device in ["eth0", "eth1"] {
            v.push((name, vec![("device", device.to_owned())]));
        }
    }
    for name in [
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_memory_Cached_bytes",
        "node_load1",
        "node_load5",
        "node_load15",
    ] {
        v.push((name, vec![]));
    }
    v
}

/// A remote-write request as a Prometheus scraping a fleet of `node_exporter`s sends it.
fn fleet_request() -> proto::WriteRequest {
    let shapes = host_series();
    let mut timeseries = Vec::with_capacity(SERIES);
    for i in 0..SERIES {
        let host = i / shapes.len();
        let (name, own) = &shapes[i % shapes.len()];
        let mut labels: Vec<(&str, String)> = vec![
            ("__name__", (*name).to_owned()),
            ("cluster", "prod-eu-west-1".to_owned()),
            ("env", "production".to_owned()),
            (
                "instance",
                format!("10.12.{}.{}:9100", host / 250, host % 250 + 2),
            ),
            ("job", "node-exporter".to_owned()),
            ("region", "eu-west-1".to_owned()),
        ];
        labels.extend(own.iter().cloned());
        labels.sort();
        let value = if name.ends_with("_total") {
            (i as f64) * 7_919.25 + 1_234_567.5
        } else {
            (i as f64) * 1_048_576.0
        };
        timeseries.push(proto::TimeSeries {
            labels: labels
                .into_iter()
                .map(|(n, v)| proto::Label {
                    name: n.to_owned(),
                    value: v,
                })
                .collect(),
            samples: vec![proto::Sample {
                value,
                timestamp: 1_760_000_000_000 + (i as i64 % 15_000),
            }],
            exemplars: vec![],
            histograms: vec![],
        });
    }
    proto::WriteRequest {
        timeseries,
        metadata: vec![],
    }
}

fn bench_push_decode(c: &mut Criterion) {
    let req = fleet_request();
    let raw = req.encode_to_vec();
    let body = snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses");
    let samples = req
        .timeseries
        .iter()
        .map(|ts| ts.samples.len())
        .sum::<usize>();
    eprintln!(
        "push_decode: {} series, {samples} samples, {} bytes of protobuf, {} bytes of snappy",
        req.timeseries.len(),
        raw.len(),
        body.len()
    );

    let mut group = c.benchmark_group("push_decode");
    group.throughput(Throughput::Elements(samples as u64));

    let mut batch = WriteBatch::default();
    group.bench_function("snappy+strata", |b| {
        b.iter(|| {
            batch.clear();
            batch.len =
                decompress_into(black_box(&body), &mut batch.buf, MAX_LEN).expect("valid snappy");
            decode_write_request(&mut batch).expect("valid request");
            black_box(batch.num_samples())
        });
    });

    let mut buf = Vec::new();
    group.bench_function("snappy+prost", |b| {
        b.iter(|| {
            let n = decompress_into(black_box(&body), &mut buf, MAX_LEN).expect("valid snappy");
            let req = proto::WriteRequest::decode(&buf[..n]).expect("valid request");
            black_box(req.timeseries.len())
        });
    });

    // The protobuf walk alone, without snappy.
    batch.clear();
    batch.buf.clear();
    batch.buf.extend_from_slice(&raw);
    batch.len = raw.len();
    group.bench_function("strata", |b| {
        b.iter(|| {
            decode_write_request(black_box(&mut batch)).expect("valid request");
            black_box(batch.num_samples())
        });
    });
    group.bench_function("prost", |b| {
        b.iter(|| {
            let req =
                proto::WriteRequest::decode(black_box(raw.as_slice())).expect("valid request");
            black_box(req.timeseries.len())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_push_decode);
criterion_main!(benches);
