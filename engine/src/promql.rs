//! The `PromQL` evaluator: parses with `promql-parser` and evaluates with Prometheus 3.x semantics
//! (lookback delta, left-open range selectors, staleness markers, `offset`, `@`, subqueries,
//! delayed `__name__` removal) over a [`Queryable`].
//!
//! Invariants:
//! - every node is evaluated once for all steps of a query: an instant vector is a list of series
//!   with one optional point per step (see `eval::Steps`); an instant query is a range query of
//!   one step;
//! - range functions run series by series over all steps with a sliding window over the sorted
//!   samples (`eval::for_each_window`), never step by step over every series; `rate` and
//!   `increase` carry running sums of counter-reset corrections at both window edges, so each
//!   window costs O(1);
//! - selectors and functions over them stream their series to aggregations, which fold them into
//!   per-group accumulators instead of materialising the input;
//! - samples held are counted against [`EngineOptions::max_samples`] as Prometheus counts them
//!   (points of evaluated vectors, the window being reduced), and the deadline is checked between
//!   series, so a query stops early on its limits; step counts of queries and subqueries are
//!   bounded by the same limit before anything is allocated.

// Numeric kernels name operands as the formulas do (`a op b`, `k`, `v`, `w`).
#![allow(clippy::many_single_char_names)]

mod aggregate;
mod binary;
mod eval;
mod fetched;
mod functions;
mod label_hash;
mod partial;
mod selections;
mod series;

use std::time::Duration;

use promql_parser::parser::value::ValueType;
use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;

pub use self::aggregate::format_value;
pub use self::fetched::Fetched;
pub use self::partial::{Partial, Partials};
pub use crate::shard::SeriesSamples;

/// What [`Queryable::select_each`] calls with each series and its samples.
pub type SeriesVisitor<'f> = &'f mut dyn FnMut(&Labels, &[(i64, f64)]) -> Result<(), EvalError>;

/// Where the evaluator reads series from. Implemented by the conformance runner over a head, by
/// shards over their heads, and by the HTTP layer over prefetched data.
pub trait Queryable {
    /// Series matching all `matchers` with their samples in `[mint, maxt]` (inclusive, ms), in
    /// any order.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples>;

    /// Calls `f` with each series matching all `matchers` and its samples in `[mint, maxt]`, in
    /// any order, stopping at the first error. The evaluator reads through this one series at a
    /// time, so an implementation that lends its samples (or decodes each series into one
    /// reused buffer) never materialises the whole selection. The default collects
    /// [`Queryable::select`].
    fn select_each(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        f: SeriesVisitor<'_>,
    ) -> Result<(), EvalError> {
        for s in self.select(matchers, mint, maxt) {
            f(&s.labels, &s.samples)?;
        }
        Ok(())
    }

    /// Aggregations already evaluated elsewhere (by every shard over its share of the series,
    /// then merged), looked up by the aggregation's text; see [`Engine::pushdowns`].
    fn partials(&self) -> Option<&Partials> {
        None
    }
}

/// Limits and defaults of the engine (Cortex's `querier.*` settings).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`querier.lookback_delta`).
    pub lookback_delta_ms: i64,
    /// The most samples a query may load (`querier.max_samples`).
    pub max_samples: usize,
    /// How long a query may run (`querier.timeout`).
    pub timeout: Duration,
    /// The step of a subquery written without one.
    pub default_subquery_step_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_mins(2),
            default_subquery_step_ms: 60_000,
        }
    }
}

/// One selection an expression needs: matchers and an inclusive time range in ms.
#[derive(Clone, Debug)]
pub struct Selection {
    pub matchers: Vec<Matcher>,
    pub mint: i64,
    pub maxt: i64,
}

/// A query's result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, s: String },
    Vector(Vec<VectorSample>),
    Matrix(Vec<SeriesSamples>),
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// A value with the warnings and infos its evaluation produced.
#[derive(Clone, Debug)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// Why a query failed; the HTTP layer maps each kind to Prometheus's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The query does not parse or is invalid (`bad_data`, 400).
    #[error("{0}")]
    Parse(String),
    /// The query failed while running (`execution`, 422).
    #[error("{0}")]
    Execution(String),
    #[error("query timed out in {0}")]
    Timeout(String),
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(String),
    #[error("query was canceled in {0}")]
    Canceled(String),
}

/// The `PromQL` engine.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `expr` at `t_ms`.
    pub fn instant(
        &self,
        q: &dyn Queryable,
        expr: &str,
        t_ms: i64,
    ) -> Result<QueryResult, EvalError> {
        let parsed = parse(expr)?;
        eval::run(&self.opts, q, expr, &parsed, t_ms, t_ms, 0, true)
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms`; the result is a matrix.
    pub fn range(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, EvalError> {
        if step_ms <= 0 {
            return Err(EvalError::Parse(
                "zero or negative query resolution step widths are not accepted".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(EvalError::Parse(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end_ms - start_ms) / step_ms >= i64::try_from(self.opts.max_samples).unwrap_or(i64::MAX)
        {
            return Err(EvalError::TooManySamples("query evaluation".into()));
        }
        let query = expr;
        let expr = parse(expr)?;
        let vt = expr.value_type();
        if !matches!(vt, ValueType::Scalar | ValueType::Vector) {
            let t = if vt == ValueType::String {
                "string"
            } else {
                "range vector"
            };
            return Err(EvalError::Parse(format!(
                "invalid expression type \"{t}\" for range query, must be Scalar or instant Vector"
            )));
        }
        eval::run(
            &self.opts, q, query, &expr, start_ms, end_ms, step_ms, false,
        )
    }

    /// The selections `expr` needs over `[start_ms, end_ms]`, so a caller can prefetch them;
    /// selections under the aggregations listed in `skip` (texts from [`Engine::pushdowns`])
    /// are left out.
    pub fn selections(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        skip: &[String],
    ) -> Result<Vec<Selection>, EvalError> {
        let expr = parse(expr)?;
        let mut out = Vec::new();
        selections::selections(&self.opts, &expr, start_ms, end_ms, skip, &mut out)?;
        Ok(out)
    }

    /// The aggregations of `expr` that can be evaluated by every shard over its own series and
    /// merged (`sum`, `count`, `min`, `max`, `group` over series-local expressions, evaluated at
    /// the query's own steps), as texts for [`Engine::partial`] and [`Partials`].
    pub fn pushdowns(&self, expr: &str) -> Result<Vec<String>, EvalError> {
        let expr = parse(expr)?;
        let mut out = Vec::new();
        partial::pushdowns(&expr, &mut out);
        Ok(out)
    }

    /// Evaluates the pushed-down aggregation `agg` (a text from [`Engine::pushdowns`] of
    /// `query`) over `q`, up to its per-group accumulators, at the steps of `query` over
    /// `[start_ms, end_ms]` (`step_ms` 0: an instant query at `start_ms`).
    pub fn partial(
        &self,
        q: &dyn Queryable,
        query: &str,
        agg: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Partial, EvalError> {
        let expr = parse(agg)?;
        partial::evaluate(&self.opts, q, query, agg, &expr, start_ms, end_ms, step_ms)
    }
}

fn parse(expr: &str) -> Result<promql_parser::parser::Expr, EvalError> {
    promql_parser::parser::parse(expr).map_err(EvalError::Parse)
}

#[cfg(test)]
mod tests {
    use strata_storage::matcher::Matcher;

    use super::*;

    /// An in-memory [`Queryable`].
    struct Mem(Vec<SeriesSamples>);

    impl Queryable for Mem {
        fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
            self.0
                .iter()
                .filter(|s| {
                    matchers
                        .iter()
                        .all(|m| m.matches(s.labels.get(m.name()).unwrap_or("")))
                })
                .map(|s| SeriesSamples {
                    labels: s.labels.clone(),
                    samples: s
                        .samples
                        .iter()
                        .copied()
                        .filter(|p| p.0 >= mint && p.0 <= maxt)
                        .collect(),
                })
                .collect()
        }
    }

    /// `name{job=..}` with one sample a minute, values from `values`.
    fn series(name: &str, job: &str, values: &[f64]) -> SeriesSamples {
        SeriesSamples {
            labels: Labels::from_pairs([("__name__", name), ("job", job)]),
            samples: values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as i64 * 60_000, *v))
                .collect(),
        }
    }

    fn data() -> Mem {
        let counter: Vec<f64> = (0..=30).map(|i| f64::from(i) * 60.0).collect();
        Mem(vec![
            series("reqs_total", "a", &counter),
            series(
                "reqs_total",
                "b",
                &counter.iter().map(|v| v * 2.0).collect::<Vec<_>>(),
            ),
            series(
                "gauge",
                "a",
                &[1.0, 2.0, 3.0, f64::from_bits(0x7ff0_0000_0000_0002)],
            ),
        ])
    }

    fn instant(q: &str, t: i64) -> Value {
        Engine::default().instant(&data(), q, t).expect(q).value
    }

    fn scalar_of(v: &Value) -> f64 {
        match v {
            Value::Scalar { v, .. } => *v,
            Value::Vector(s) if s.len() == 1 => s[0].v,
            other => panic!("not a single value: {other:?}"),
        }
    }

    #[test]
    fn literals_and_arithmetic() {
        assert_eq!(scalar_of(&instant("1 + 2 * 3 ^ 2", 0)), 19.0);
        assert_eq!(scalar_of(&instant("-(2) % 3", 0)), -2.0);
        assert_eq!(
            instant(r#""hi""#, 5),
            Value::String {
                t: 5,
                s: "hi".into()
            }
        );
    }

    #[test]
    fn rate_and_aggregation() {
        // 60 per minute is 1 per second; b grows twice as fast.
        let v = instant("sum(rate(reqs_total[5m]))", 20 * 60_000);
        assert!((scalar_of(&v) - 3.0).abs() < 1e-9);
        let v = instant(
            r#"sum by (job) (increase(reqs_total{job="b"}[10m]))"#,
            20 * 60_000,
        );
        assert!((scalar_of(&v) - 1200.0).abs() < 1e-9);
    }

    #[test]
    fn staleness_ends_a_series() {
        assert_eq!(scalar_of(&instant("gauge", 2 * 60_000 + 30_000)), 3.0);
        assert_eq!(
            instant("gauge", 3 * 60_000 + 30_000),
            Value::Vector(Vec::new())
        );
    }

    #[test]
    fn range_query_is_a_sorted_matrix() {
        let r = Engine::default()
            .range(&data(), "reqs_total / 60", 0, 120_000, 60_000)
            .unwrap();
        let Value::Matrix(m) = r.value else {
            panic!("not a matrix")
        };
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].labels, Labels::from_pairs([("job", "a")]));
        assert_eq!(m[0].samples, vec![(0, 0.0), (60_000, 1.0), (120_000, 2.0)]);
    }

    #[test]
    fn vector_matching_errors() {
        let e = Engine::default()
            .instant(&data(), "reqs_total + on() reqs_total", 60_000)
            .unwrap_err();
        assert!(
            e.to_string().contains("many-to-many matching not allowed"),
            "{e}"
        );
    }

    #[test]
    fn subquery_in_function() {
        let v = instant(
            "max_over_time(rate(reqs_total{job=\"a\"}[2m])[10m:1m])",
            20 * 60_000,
        );
        assert!((scalar_of(&v) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn selections_apply_offset_range_and_lookback() {
        let sels = Engine::default()
            .selections("rate(x[5m] offset 1m) + y @ 100", 600_000, 900_000, &[])
            .unwrap();
        assert_eq!(sels.len(), 2);
        assert_eq!(
            (sels[0].mint, sels[0].maxt),
            (600_000 - 60_000 - 300_000 + 1, 840_000)
        );
        assert_eq!(
            (sels[1].mint, sels[1].maxt),
            (100_000 - 300_000 + 1, 100_000)
        );
    }

    #[test]
    fn limits_stop_the_query() {
        let small = Engine::new(EngineOptions {
            max_samples: 10,
            ..EngineOptions::default()
        });
        let e = small.instant(&data(), "count_over_time(reqs_total[30m])", 1_800_000);
        assert!(matches!(e, Err(EvalError::TooManySamples(_))), "{e:?}");
        let slow = Engine::new(EngineOptions {
            timeout: Duration::ZERO,
            ..EngineOptions::default()
        });
        let e = slow.instant(&data(), "reqs_total", 0);
        assert!(matches!(e, Err(EvalError::Timeout(_))), "{e:?}");
    }

    #[test]
    fn odd_queries_fail_cleanly() {
        let engine = Engine::new(EngineOptions {
            max_samples: 100_000,
            ..EngineOptions::default()
        });
        for q in [
            "reqs_total offset 1000000y",
            "reqs_total @ -1e15",
            "rate(reqs_total[100y:1ms])",
            "max_over_time(reqs_total[1y:1s])",
            "topk(1e20, reqs_total)",
            "quantile(NaN, reqs_total)",
            "histogram_quantile(0.5, reqs_total)",
            "histogram_fraction(-Inf, Inf, reqs_total)",
            r#"label_replace(reqs_total, "a", "$99", "job", "(.*)")"#,
            "round(reqs_total, 0)",
            "clamp(reqs_total, NaN, 1)",
            "reqs_total / on() group_left count(reqs_total)",
            "sum by (job) (reqs_total) and on(job) reqs_total",
            "count_values(\"v\", reqs_total) * 1e308 * 1e308",
            "predict_linear(reqs_total[1y], 1e300)",
            "double_exponential_smoothing(reqs_total[5m], 0.5, 0.5)",
            "absent_over_time(nothing[1y:1s])",
            "scalar(reqs_total) + vector(1) ^ 1e10",
            "sort_by_label_desc(reqs_total, \"job\", \"nope\")",
            "limit_ratio(-2, reqs_total)",
        ] {
            let _ = engine.instant(&data(), q, 1_800_000);
            let _ = engine.range(&data(), q, 0, 1_800_000, 15_000);
        }
    }

    #[test]
    fn parse_errors_are_parse_errors() {
        assert!(matches!(
            Engine::default().instant(&data(), "sum(", 0),
            Err(EvalError::Parse(_))
        ));
        assert!(matches!(
            Engine::default().range(&data(), "reqs_total[5m]", 0, 10, 1),
            Err(EvalError::Parse(_))
        ));
    }
}
