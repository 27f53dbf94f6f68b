//! Times the head's garbage collection (`Head::gc`, run once per block range after a cut) on a
//! head of Kubernetes-like series: `series` series (1M by default) of pods with 10 series each, 8
//! labels per series, where the pods of `dropped` percent of the series stopped before the cut.
//!
//! ```sh
//! cargo run --release -p strata-bench --example head_gc [series] [dropped %] [runs]
//! ```
//!
//! Each run builds a fresh head, truncates it and collects it; after a warm-up run it prints the
//! best, median and worst collection, the time of a second collection (nothing to drop: one scan)
//! and the head's memory before and after.

use std::time::{Duration, Instant};

use strata_storage::head::{Head, HeadOptions};
use strata_storage::labels::LabelHasher;

/// The cut: samples before it are in a block.
const CUT: i64 = 7_200_000;

fn build(series: usize, dropped_pct: usize) -> Head {
    let mut head = Head::new(HeadOptions::default());
    let pods = series / 10;
    let mut labels: Vec<(String, String)> = Vec::with_capacity(8);
    for pod in 0..pods {
        // Pods of a churned deployment stopped before the cut; the others go on after it.
        let gone = pod * 100 < pods * dropped_pct;
        let t = if gone { CUT - 60_000 } else { CUT + 60_000 };
        for metric in 0..10 {
            labels.clear();
            labels.extend(
                [
                    ("__name__", format!("container_metric_{metric}")),
                    ("container", format!("app-{}", pod % 7)),
                    (
                        "instance",
                        format!("10.{}.{}.{}:9100", pod >> 16, (pod >> 8) & 255, pod & 255),
                    ),
                    ("job", "kubernetes-pods".to_owned()),
                    ("namespace", format!("ns-{}", pod % 50)),
                    ("node", format!("node-{}", pod % 200)),
                    ("pod", format!("deploy-{}-{pod:08x}", pod % 300)),
                    ("zone", format!("zone-{}", pod % 3)),
                ]
                .map(|(n, v)| (n.to_owned(), v)),
            );
            let mut h = LabelHasher::new();
            for (n, v) in &labels {
                h.add(n.as_bytes(), v.as_bytes());
            }
            let r = head.create(
                h.finish(),
                labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            );
            head.append(r, t, f64::from(metric)).expect("append");
        }
    }
    head
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (series, dropped_pct, runs) = (num(0, 1_000_000), num(1, 50).min(100), num(2, 5).max(1));
    let mut times = Vec::new();
    let mut again = Vec::new();
    let mut report = None;
    for run in 0..=runs {
        let mut head = build(series, dropped_pct);
        let before = head.memory();
        head.truncate_before(CUT);
        let started = Instant::now();
        let dropped = head.gc(CUT);
        let took = started.elapsed();
        let started = Instant::now();
        assert_eq!(head.gc(CUT), 0);
        let noop = started.elapsed();
        if run == 0 {
            continue; // warm-up
        }
        times.push(took);
        again.push(noop);
        report = Some((dropped, head.num_series(), before, head.memory()));
    }
    times.sort();
    again.sort();
    let (dropped, live, before, after) = report.expect("at least one run");
    println!(
        "head_gc: {series} series, {dropped} dropped, {live} live; {runs} runs after a warm-up"
    );
    println!(
        "gc:        best {:.1} ms, median {:.1} ms, worst {:.1} ms",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    println!(
        "second gc: best {:.1} ms, median {:.1} ms, worst {:.1} ms (nothing to drop)",
        ms(again[0]),
        ms(again[again.len() / 2]),
        ms(again[again.len() - 1])
    );
    println!(
        "memory without chunks: {:.1} MiB before, {:.1} MiB after (symbols {:.1} -> {:.1}, \
         postings {:.1} -> {:.1}, series {:.1} -> {:.1})",
        mib(before.without_chunks()),
        mib(after.without_chunks()),
        mib(before.symbols),
        mib(after.symbols),
        mib(before.postings),
        mib(after.postings),
        mib(before.series),
        mib(after.series),
    );
}

fn mib(b: usize) -> f64 {
    b as f64 / f64::from(1 << 20)
}
