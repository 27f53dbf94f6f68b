//! Memory per series for a realistic fleet: 1,000 node-exporter hosts × 100 series each
//! (~7.8 labels per series: metric name, instance, job, env, region, cluster and the
//! metric's own labels), measured through `Head::memory`. Prints the figures
//! (`cargo test -p strata-storage --test head_memory -- --nocapture`).

use strata_storage::head::{Head, HeadOptions, SeriesRef};
use strata_storage::labels::LabelHasher;

/// The label sets of one node-exporter host, each sorted by name.
fn host_series(host: usize) -> Vec<Vec<(String, String)>> {
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
    let mut out = Vec::new();
    let mut add = |name: &str, extra: &[(&str, String)]| {
        let mut l: Vec<(String, String)> = common
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        l.push(("__name__".to_owned(), name.to_owned()));
        l.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
        l.sort();
        out.push(l);
    };
    for cpu in 0..8 {
        for mode in [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ] {
            add(
                "node_cpu_seconds_total",
                &[("cpu", cpu.to_string()), ("mode", mode.to_owned())],
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
                &format!("node_filesystem_{m}"),
                &[
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
            "receive_errs",
            "transmit_errs",
        ] {
            add(
                &format!("node_network_{m}_total"),
                &[("device", dev.to_owned())],
            );
        }
    }
    for dev in ["nvme0n1", "nvme1n1"] {
        for m in [
            "read_bytes_total",
            "written_bytes_total",
            "io_time_seconds_total",
        ] {
            add(&format!("node_disk_{m}"), &[("device", dev.to_owned())]);
        }
    }
    for m in ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached"] {
        add(&format!("node_memory_{m}_bytes"), &[]);
    }
    for m in ["node_load1", "node_load5", "node_load15"] {
        add(m, &[]);
    }
    out
}

fn hash(l: &[(String, String)]) -> u64 {
    let mut h = LabelHasher::new();
    for (n, v) in l {
        h.add(n.as_bytes(), v.as_bytes());
    }
    h.finish()
}

#[test]
fn bytes_per_series_for_a_node_exporter_fleet() {
    const HOSTS: usize = 1000;
    let mut head = Head::new(HeadOptions::default());
    let mut refs: Vec<SeriesRef> = Vec::new();
    let mut labels = 0usize;
    for host in 0..HOSTS {
        for l in host_series(host) {
            labels += l.len();
            let h = hash(&l);
            assert_eq!(
                head.lookup(h, l.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))),
                None
            );
            refs.push(head.create(h, l.iter().map(|(n, v)| (n.as_str(), v.as_str()))));
        }
    }
    let n = head.num_series();
    assert_eq!(n, HOSTS * 100);
    let empty = head.memory();

    // One scrape: one sample per series opens a chunk per series.
    let t0 = 1_700_000_000_000;
    for (i, &s) in refs.iter().enumerate() {
        head.append(s, t0, i as f64).expect("append");
    }
    let one = head.memory();
    // Two hours of 15s scrapes of counters: 480 samples, four closed chunks per series... use a
    // tenth of the fleet to keep the test quick.
    for k in 1..480i64 {
        for (i, &s) in refs.iter().enumerate().take(n / 10) {
            head.append(s, t0 + k * 15_000, (i as i64 * 1000 + k * 7) as f64)
                .expect("append");
        }
    }
    let full = head.memory();

    let per = |b: usize| b as f64 / n as f64;
    println!(
        "series: {n}, labels per series: {:.2}, symbols: {}",
        labels as f64 / n as f64,
        head.symbols().len()
    );
    println!(
        "bytes/series without chunks: {:.1} (series {:.1}, labels {:.1}, index {:.1}, postings {:.1}, symbols {:.1})",
        per(one.without_chunks()),
        per(one.series),
        per(one.labels),
        per(one.series_index),
        per(one.postings),
        per(one.symbols),
    );
    println!("bytes/series before any sample: {:.1}", per(empty.total()));
    println!(
        "bytes/series with one open chunk each: {:.1}",
        per(one.total())
    );
    println!(
        "chunk bytes/sample over 480 counter samples: {:.2}",
        (full.chunks - one.chunks) as f64 / (n / 10 * 479) as f64
    );
    assert!(
        per(one.without_chunks()) < 600.0,
        "{} bytes/series",
        per(one.without_chunks())
    );
    assert_eq!(
        one.without_chunks(),
        full.without_chunks(),
        "appends leave the index alone"
    );
}
