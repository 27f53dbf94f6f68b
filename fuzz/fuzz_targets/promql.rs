//! Fuzzes PromQL end to end: any string is parsed and evaluated (instant and range) over a small
//! fixed data set with tight limits. A query may fail, but never panic, hang or exceed them.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use strata_engine::promql::{Engine, EngineOptions, Queryable};
use strata_engine::shard::SeriesSamples;
use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;

struct Fixed(Vec<SeriesSamples>);

impl Queryable for Fixed {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        self.0
            .iter()
            .filter(|s| matchers.iter().all(|m| m.matches(s.labels.get(m.name()).unwrap_or(""))))
            .map(|s| SeriesSamples {
                labels: s.labels.clone(),
                samples: s.samples.iter().copied().filter(|(t, _)| *t >= mint && *t <= maxt).collect(),
            })
            .collect()
    }
}

fn data() -> Fixed {
    let mut out = Vec::new();
    for (i, name) in ["a", "b", "c_bucket"].iter().enumerate() {
        for le in ["0.1", "1", "+Inf"] {
            let labels = Labels::from_pairs([("__name__", *name), ("le", le), ("job", "j")]);
            let samples = (0..60i64).map(|k| (k * 15_000, (k * (i as i64 + 1)) as f64)).collect();
            out.push(SeriesSamples { labels, samples });
        }
    }
    Fixed(out)
}

fuzz_target!(|input: &[u8]| {
    let Ok(expr) = std::str::from_utf8(input) else { return };
    let engine = Engine::new(EngineOptions {
        max_samples: 200_000,
        timeout: Duration::from_millis(500),
        ..EngineOptions::default()
    });
    let q = data();
    let _ = engine.instant(&q, expr, 600_000);
    let _ = engine.range(&q, expr, 0, 900_000, 15_000);
    let _ = engine.selections(expr, 0, 900_000, &[]);
    let _ = engine.pushdowns(expr);
});
