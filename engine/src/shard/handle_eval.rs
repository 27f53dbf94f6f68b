//! Pushed-down aggregations: a shard evaluates one over its own series of a tenant (see
//! `promql::partial`): its head, read in place one series at a time, and, when the tenant has
//! blocks in the aggregation's range, its partition of the blocks' series (the series the push
//! path routes to it, [`crate::blocks::owner_shard`]) merged with its head's.

use strata_storage::head::Head;
use strata_storage::matcher::Matcher;

use super::{SeriesSamples, Shard, ShardRef};
use crate::instance::{PartialError, ReadError};
use crate::promql::{Engine, EngineOptions, EvalError, Fetched, Partial, Queryable, SeriesVisitor};
use crate::tenant::TenantId;

/// An aggregation of a query for every shard to evaluate over its series.
#[derive(Clone, Debug)]
pub struct EvalPart {
    pub tenant: TenantId,
    /// The whole query (its text places annotations).
    pub query: std::sync::Arc<str>,
    /// The aggregation's text, from `Engine::pushdowns`.
    pub agg: String,
    pub start: i64,
    pub end: i64,
    /// 0 for an instant query.
    pub step: i64,
    pub opts: EngineOptions,
}

/// A head read by the evaluator: each series' samples are decoded into one reused buffer.
#[derive(Clone, Copy, Debug)]
pub struct HeadQueryable<'a> {
    head: Option<&'a Head>,
}

impl<'a> HeadQueryable<'a> {
    /// Reads `head`; `None` reads as empty.
    pub fn new(head: Option<&'a Head>) -> Self {
        HeadQueryable { head }
    }
}

impl Queryable for HeadQueryable<'_> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let Some(head) = self.head else {
            return Vec::new();
        };
        head.select(matchers, mint, maxt)
            .into_iter()
            .map(|s| {
                let mut samples = Vec::new();
                head.samples(s, mint, maxt, &mut samples);
                SeriesSamples {
                    labels: head.labels(s),
                    samples,
                }
            })
            .collect()
    }

    fn select_each(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        f: SeriesVisitor<'_>,
    ) -> Result<(), EvalError> {
        let Some(head) = self.head else {
            return Ok(());
        };
        let mut samples = Vec::new();
        for s in head.select(matchers, mint, maxt) {
            samples.clear();
            head.samples(s, mint, maxt, &mut samples);
            if !samples.is_empty() {
                f(&head.labels(s), &samples)?;
            }
        }
        Ok(())
    }
}

impl Shard {
    pub fn handle_eval(&self, req: &EvalPart) -> Result<Partial, EvalError> {
        let q = HeadQueryable::new(self.tenants.get(&req.tenant).map(|t| &t.head));
        Engine::new(req.opts.clone())
            .partial(&q, &req.query, &req.agg, req.start, req.end, req.step)
    }
}

/// This shard's part of a pushed-down aggregation: over its head alone when the tenant has no
/// block in the aggregation's range, else over its partition of the blocks and its head, fetched
/// first (the head as it is once the blocks are read).
pub async fn eval_part(shard: &ShardRef, req: &EvalPart) -> Result<Partial, PartialError> {
    let (id, blocks) = {
        let s = shard.borrow();
        (s.id, s.blocks.clone())
    };
    let engine = Engine::new(req.opts.clone());
    let Some((catalog, shards)) = blocks.filter(|(c, _)| c.is_enabled()) else {
        return Ok(shard.borrow().handle_eval(req)?);
    };
    let selections = engine.selections(&req.agg, req.start, req.end, &[])?;
    let span = selections
        .iter()
        .map(|s| (s.mint, s.maxt))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    let read = |e: crate::blocks::BlocksError| PartialError::Read(ReadError(e.to_string()));
    let with_blocks = match span {
        Some((mint, maxt)) => catalog
            .has_blocks(&req.tenant, mint, maxt)
            .await
            .map_err(read)?,
        None => false,
    };
    if !with_blocks {
        return Ok(shard.borrow().handle_eval(req)?);
    }
    let mut fetched = Fetched::default();
    for s in &selections {
        let series = catalog
            .select_chunks(&req.tenant, &s.matchers, s.mint, s.maxt, Some((id, shards)))
            .await
            .map_err(read)?;
        for one in series {
            fetched.add_chunks(one);
        }
    }
    {
        let s = shard.borrow();
        let head = HeadQueryable::new(s.tenants.get(&req.tenant).map(|t| &t.head));
        for sel in &selections {
            for one in head.select(&sel.matchers, sel.mint, sel.maxt) {
                fetched.add(one);
            }
        }
    }
    Ok(engine.partial(&fetched, &req.query, &req.agg, req.start, req.end, req.step)?)
}
