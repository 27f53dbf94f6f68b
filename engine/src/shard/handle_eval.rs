//! Pushed-down aggregations: a shard evaluates one over its own series of a tenant (see
//! `promql::partial`), reading its head in place, one series at a time.

use strata_storage::head::Head;
use strata_storage::matcher::Matcher;

use super::{SeriesSamples, Shard};
use crate::promql::{Engine, EngineOptions, EvalError, Partial, Queryable, SeriesVisitor};
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
