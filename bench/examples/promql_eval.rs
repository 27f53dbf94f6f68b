//! Times the `PromQL` engine alone (no HTTP) over a head holding a fleet of counters:
//! `node_cpu_seconds_total` for H hosts × 2 cpus × 8 modes (16 series per host), 15s samples,
//! read as a shard reads its head (each series decoded from its XOR chunks into one buffer).
//! Used to measure the evaluator before and after a change, and under callgrind:
//!
//! ```sh
//! cargo run --release -p strata-bench --example promql_eval -- [hosts] [hours] [runs] [query...]
//! valgrind --tool=callgrind target/release/examples/promql_eval 20 24 1
//! ```
//!
//! Prints, per query, the best and median wall time of `runs` evaluations over a 15s-step range
//! covering the data's last `hours - 10m`.

use std::time::Instant;

use strata_engine::promql::{Engine, EngineOptions, SeriesSamples};
use strata_engine::shard::HeadQueryable;
use strata_storage::head::{Head, HeadOptions};
use strata_storage::labels::Labels;

/// A xorshift generator: the data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];

fn fleet(hosts: usize, rounds: usize, start: i64) -> Vec<SeriesSamples> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for h in 0..hosts {
        let phase = (rng.next() % 15_000) as i64;
        for cpu in 0..2 {
            for mode in MODES {
                let labels = Labels::from_pairs([
                    ("__name__", "node_cpu_seconds_total".to_string()),
                    ("cpu", cpu.to_string()),
                    ("instance", format!("host-{h:04}:9100")),
                    ("job", "node".to_string()),
                    ("mode", mode.to_string()),
                ]);
                let mut v = 0.0;
                let samples = (0..rounds)
                    .map(|r| {
                        v += (rng.next() % 1500) as f64 / 100.0;
                        (start + phase + r as i64 * 15_000, v)
                    })
                    .collect();
                out.push(SeriesSamples { labels, samples });
            }
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (hosts, hours, runs) = (num(0, 200), num(1, 24), num(2, 5));
    let mut queries: Vec<String> = args.iter().skip(3).cloned().collect();
    if queries.is_empty() {
        queries = [
            "sum(rate(node_cpu_seconds_total[5m]))",
            "sum by (instance)(rate(node_cpu_seconds_total[5m]))",
            "topk(5, rate(node_cpu_seconds_total[5m]))",
        ]
        .map(String::from)
        .to_vec();
    }
    let rounds = hours * 240;
    let start = 1_700_000_000_000;
    let data = fleet(hosts, rounds, start);
    let mut head = Head::new(HeadOptions::default());
    for s in &data {
        let pairs: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        let r = head.create(s.labels.hash(), pairs.iter().copied());
        for &(t, v) in &s.samples {
            head.append(r, t, v).expect("in-order samples");
        }
    }
    let q = HeadQueryable::new(Some(&head));
    let end = start + rounds as i64 * 15_000;
    let qstart = start + 600_000;
    let engine = Engine::new(EngineOptions::default());
    println!(
        "{} series x {rounds} samples, range {:.1}h at 15s",
        data.len(),
        (end - qstart) as f64 / 3.6e6
    );
    for query in &queries {
        let mut times = Vec::new();
        let mut points = 0;
        for _ in 0..runs {
            let t0 = Instant::now();
            let r = engine
                .range(&q, query, qstart, end, 15_000)
                .expect("query evaluates");
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            points = match r.value {
                strata_engine::promql::Value::Matrix(m) => m.iter().map(|s| s.samples.len()).sum(),
                _ => 0,
            };
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{query}: best {:.1} ms, median {:.1} ms, {points} points",
            times[0],
            times[times.len() / 2]
        );
    }
}
