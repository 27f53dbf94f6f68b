//! `blocks::owner_shard` is the push path's choice of shard: series pushed through
//! `Instance::push` on a 3-shard runtime end up, each, in the head of the shard `owner_shard`
//! names. (Block partitions rely on this to hand each shard its own share of a block.)

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;

use strata_engine::blocks::owner_shard;
use strata_engine::instance::{Instance, now_ms};
use strata_engine::limits::{Limits, TenantRegistry};
use strata_engine::metrics::Metrics;
use strata_engine::rt::{Runtime, RuntimeOptions};
use strata_engine::shard::{SelectKind, SelectResult, Shard, ShardMsg, serve_inbox};
use strata_engine::tenant::TenantId;
use strata_engine::validation::NameValidationScheme;
use strata_storage::batch::{LabelSpan, Sample, SeriesEntry, WriteBatch};
use strata_storage::head::HeadOptions;
use strata_storage::labels::{LabelHasher, Labels};

const SHARDS: usize = 3;

/// A batch of `series`, one sample each, labels laid out as the decoder lays them out.
fn batch(series: &[Labels], t: i64) -> WriteBatch {
    let mut b = WriteBatch::default();
    for (i, labels) in series.iter().enumerate() {
        let first = b.labels.len() as u32;
        let mut h = LabelHasher::new();
        for l in labels {
            let name_start = b.buf.len() as u32;
            b.buf.extend_from_slice(l.name.as_bytes());
            let value_start = b.buf.len() as u32;
            b.buf.extend_from_slice(l.value.as_bytes());
            b.labels.push(LabelSpan {
                name_start,
                name_len: l.name.len() as u32,
                value_start,
                value_len: l.value.len() as u32,
            });
            h.add(l.name.as_bytes(), l.value.as_bytes());
        }
        let s = b.samples.len() as u32;
        b.samples.push(Sample { t, v: i as f64 });
        b.series.push(SeriesEntry {
            hash: h.finish(),
            labels: first..b.labels.len() as u32,
            samples: s..s + 1,
            exemplars: 0,
            histograms: 0,
        });
    }
    b.len = b.buf.len();
    b
}

#[test]
fn owner_shard_is_where_the_push_path_puts_a_series() {
    let tenant = TenantId::parse("team-a").unwrap();
    let series: Vec<Labels> = (0..200)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("metric_{}", i % 7)),
                ("instance", format!("host-{i}")),
                ("job", "node".to_string()),
            ])
        })
        .collect();
    let metrics = Arc::new(Metrics::new());
    let registry = Arc::new(TenantRegistry::new(Limits::default(), metrics.clone()));
    let (report_tx, report_rx) = mpsc::channel::<(usize, Vec<Labels>)>();
    let (go_tx, go_rx) = async_channel::unbounded::<()>();
    let opts = RuntimeOptions {
        shards: SHARDS,
        pin: false,
        ..RuntimeOptions::default()
    };
    let pushed = series.clone();
    let t = tenant.clone();
    let _rt = Runtime::start::<ShardMsg, _>(&opts, "127.0.0.1:0".parse().unwrap(), move |env| {
        let id = env.mesh.id();
        let shard = Rc::new(RefCell::new(Shard::new(
            id,
            HeadOptions::default(),
            NameValidationScheme::Utf8,
        )));
        let instance = Instance::new(
            shard.clone(),
            env.mesh.clone(),
            registry.clone(),
            metrics.clone(),
        );
        let (report, go_tx, go_rx) = (report_tx.clone(), go_tx.clone(), go_rx.clone());
        let (tenant, series) = (t.clone(), pushed.clone());
        Box::pin(async move {
            compio::runtime::spawn(serve_inbox(shard.clone(), env.inbox)).detach();
            if id == 0 {
                let result = instance
                    .push(&tenant, batch(&series, now_ms()))
                    .await
                    .unwrap();
                assert_eq!(result.appended, series.len() as u64);
                for _ in 1..SHARDS {
                    go_tx.send(()).await.unwrap();
                }
            } else {
                go_rx.recv().await.unwrap();
            }
            let held =
                shard
                    .borrow()
                    .handle_select(&tenant, &[], i64::MIN, i64::MAX, SelectKind::Series);
            let SelectResult::Series(held) = held else {
                panic!("shard {id} answered {held:?}");
            };
            report.send((id, held)).unwrap();
        })
    })
    .unwrap();
    let mut total = 0;
    for _ in 0..SHARDS {
        let (id, held) = report_rx.recv().unwrap();
        assert!(!held.is_empty(), "shard {id} holds no series");
        for labels in &held {
            assert_eq!(owner_shard(&tenant, labels, SHARDS), id, "{labels}");
        }
        total += held.len();
    }
    assert_eq!(total, series.len());
}
