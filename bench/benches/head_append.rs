//! The head's push path on a node-exporter-like fleet of 100k series (1,000 hosts × 100 series,
//! ~7.8 labels each):
//! - `append_existing`: one scrape's worth of samples, one per existing series — find the series
//!   by hash and label comparison, then append (timestamps advance 15s per iteration, so chunks
//!   are cut as in production). Once in creation order (how a Prometheus sends its series) and
//!   once shuffled (no locality at all). Throughput is in samples.
//! - `create`: creating the 100k series in an empty head (interning, postings, hash index).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata_storage::head::{Head, HeadOptions, SeriesRef};
use strata_storage::labels::LabelHasher;

const HOSTS: usize = 1000;

/// The fleet's label sets laid out as a decoded write request holds them: all label bytes in one
/// buffer, each series a run of `(name, value)` spans, plus its hash.
struct Fleet {
    buf: Vec<u8>,
    spans: Vec<[u32; 4]>,
    series: Vec<(std::ops::Range<usize>, u64)>,
}

impl Fleet {
    fn len(&self) -> usize {
        self.series.len()
    }

    fn hash(&self, i: usize) -> u64 {
        self.series[i].1
    }

    fn bytes(&self, i: usize) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.spans[self.series[i].0.clone()]
            .iter()
            .map(|&[n, nl, v, vl]| {
                (
                    &self.buf[n as usize..(n + nl) as usize],
                    &self.buf[v as usize..(v + vl) as usize],
                )
            })
    }

    fn strs(&self, i: usize) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.bytes(i).map(|(n, v)| {
            (
                std::str::from_utf8(n).expect("utf-8 by construction"),
                std::str::from_utf8(v).expect("utf-8 by construction"),
            )
        })
    }

    fn push(&mut self, pairs: &[(String, String)]) {
        let start = self.spans.len();
        let mut h = LabelHasher::new();
        for (n, v) in pairs {
            h.add(n.as_bytes(), v.as_bytes());
            let at = |buf: &Vec<u8>| u32::try_from(buf.len()).expect("small buffer");
            let n_at = at(&self.buf);
            self.buf.extend_from_slice(n.as_bytes());
            let v_at = at(&self.buf);
            self.buf.extend_from_slice(v.as_bytes());
            self.spans
                .push([n_at, n.len() as u32, v_at, v.len() as u32]);
        }
        self.series.push((start..self.spans.len(), h.finish()));
    }
}

fn fleet() -> Fleet {
    let mut out = Fleet {
        buf: Vec::new(),
        spans: Vec::new(),
        series: Vec::new(),
    };
    for host in 0..HOSTS {
        let region = ["eu-west-1", "us-east-1", "ap-south-1"][host % 3];
        let common = [
            ("cluster", format!("k8s-{region}-{}", host % 7)),
            (
                "env",
                if host.is_multiple_of(10) {
                    "staging"
                } else {
                    "prod"
                }
                .to_owned(),
            ),
            (
                "instance",
                format!(
                    "10.{}.{}.{}:9100",
                    host / 65_536,
                    host / 256 % 256,
                    host % 256
                ),
            ),
            ("job", "node".to_owned()),
            ("region", region.to_owned()),
        ];
        let mut add = |name: String, extra: Vec<(&str, String)>| {
            let mut pairs: Vec<(String, String)> = common
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect();
            pairs.push(("__name__".to_owned(), name));
            pairs.extend(extra.into_iter().map(|(n, v)| (n.to_owned(), v)));
            pairs.sort();
            out.push(&pairs);
        };
        for cpu in 0..8 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                add(
                    "node_cpu_seconds_total".to_owned(),
                    vec![("cpu", cpu.to_string()), ("mode", mode.to_owned())],
                );
            }
        }
        for (dev, mnt, fs) in [
            ("/dev/nvme0n1p1", "/", "ext4"),
            ("/dev/nvme1n1", "/data", "xfs"),
        ] {
            for m in [
                "avail_bytes",
                "size_bytes",
                "free_bytes",
                "files",
                "files_free",
            ] {
                add(
                    format!("node_filesystem_{m}"),
                    vec![
                        ("device", dev.to_owned()),
                        ("fstype", fs.to_owned()),
                        ("mountpoint", mnt.to_owned()),
                    ],
                );
            }
        }
        for dev in ["eth0", "lo"] {
            for m in [
                "receive_bytes",
                "transmit_bytes",
                "receive_packets",
                "transmit_packets",
            ] {
                add(
                    format!("node_network_{m}_total"),
                    vec![("device", dev.to_owned())],
                );
            }
            for m in ["receive_errs", "transmit_errs"] {
                add(
                    format!("node_network_{m}_total"),
                    vec![("device", dev.to_owned())],
                );
            }
        }
        for dev in ["nvme0n1", "nvme1n1"] {
            for m in [
                "read_bytes_total",
                "written_bytes_total",
                "io_time_seconds_total",
            ] {
                add(format!("node_disk_{m}"), vec![("device", dev.to_owned())]);
            }
        }
        for m in ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached"] {
            add(format!("node_memory_{m}_bytes"), vec![]);
        }
        for m in ["node_load1", "node_load5", "node_load15"] {
            add(m.to_owned(), vec![]);
        }
    }
    out
}

fn create_all(fleet: &Fleet) -> Head {
    let mut head = Head::new(HeadOptions::default());
    for i in 0..fleet.len() {
        if head.lookup(fleet.hash(i), fleet.bytes(i)).is_none() {
            head.create(fleet.hash(i), fleet.strs(i));
        }
    }
    head
}

/// A fixed permutation of `0..n` (splitmix64-driven Fisher-Yates), the same every run.
fn shuffled(n: usize) -> Vec<usize> {
    let mut state = 0x5EED_u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    order
}

fn bench_append(c: &mut Criterion) {
    let fleet = fleet();
    let mut group = c.benchmark_group("head");
    group.throughput(Throughput::Elements(fleet.len() as u64));
    group.sample_size(30);
    for (name, order) in [
        (
            "append_existing_100k_in_order",
            (0..fleet.len()).collect::<Vec<_>>(),
        ),
        ("append_existing_100k_shuffled", shuffled(fleet.len())),
    ] {
        let mut head = create_all(&fleet);
        let mut now = 1_700_000_000_000_i64;
        group.bench_function(name, |b| {
            b.iter(|| {
                now += 15_000;
                for &i in &order {
                    let r: SeriesRef = head
                        .lookup(fleet.hash(i), fleet.bytes(i))
                        .expect("series exists");
                    // Counter-like values: what node exporter mostly sends.
                    let v = (now / 15_000 * 3 + i as i64) as f64;
                    head.append(r, now, v).expect("in order");
                }
                black_box(head.max_time())
            });
        });
        println!("{name}: head holds {} MiB", head.memory_bytes() >> 20);
    }
    group.bench_function("create_100k", |b| {
        b.iter_batched(|| (), |()| create_all(&fleet), BatchSize::PerIteration);
    });
    group.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
