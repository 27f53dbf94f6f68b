//! The evaluation context and the tree walk: literals, selectors, subqueries and the result.
//!
//! A node is evaluated once over a [`Steps`] grid; selectors load their series once for the whole
//! grid and walk each series' samples with one cursor (instant selectors) or two (range selectors),
//! since evaluation times only grow along the grid.

use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use promql_parser::label::{MatchOp, Matchers};
use promql_parser::parser::ast::{AtModifier, Offset};
use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use strata_storage::labels::Labels;
use strata_storage::matcher::{MatchType, Matcher};

use super::series::{RangeSeries, Series, Val, any_stale, filter_labels, is_stale, without_name};
use super::{
    EngineOptions, EvalError, QueryResult, Queryable, SeriesSamples, Value, VectorSample,
    aggregate, binary, functions,
};

/// The evaluation times of a node: `start + i * step` for `i < n`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steps {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Steps {
    pub fn t(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// Where a streaming evaluation hands its series.
pub(crate) type SeriesSink<'f> = &'f mut dyn FnMut(Series) -> Result<(), EvalError>;

/// What [`Ctx::select_each`] calls with each selected series and its samples.
type SelectVisitor<'f, 'a> =
    &'f mut dyn FnMut(&mut Ctx<'a>, &Labels, &[(i64, f64)]) -> Result<(), EvalError>;

/// What [`Ctx::each_range_series`] calls with each series and `(range, offset, at)`.
type RangeVisitor<'f, 'a> = &'f mut dyn FnMut(
    &mut Ctx<'a>,
    &RangeSeriesRef<'_>,
    (i64, i64, Option<i64>),
) -> Result<(), EvalError>;

/// One series of a range vector, borrowed: from storage or from an evaluated subquery.
pub(crate) struct RangeSeriesRef<'s> {
    pub labels: &'s Labels,
    pub drop_name: bool,
    pub samples: &'s [(i64, f64)],
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        e => e,
    }
}

/// A range vector argument: series with samples, and how each step's window is placed.
pub(crate) struct RangeArg {
    pub series: Vec<RangeSeries>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

/// State of one query: the storage, limits, and notes for the result.
pub(crate) struct Ctx<'a> {
    pub q: &'a dyn Queryable,
    /// The query text, to place annotations.
    pub query: &'a str,
    pub opts: &'a EngineOptions,
    pub query_start: i64,
    pub query_end: i64,
    /// The query's step in ms; 0 for an instant query.
    pub query_step: i64,
    deadline: Instant,
    samples: usize,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// The context and top-level steps of a query over `[start, end]` (an instant query at
    /// `start` when `instant`).
    pub(crate) fn new(
        opts: &'a EngineOptions,
        q: &'a dyn Queryable,
        query: &'a str,
        start: i64,
        end: i64,
        step: i64,
        instant: bool,
    ) -> (Self, Steps) {
        let ctx = Ctx {
            q,
            query,
            opts,
            query_start: start,
            query_end: end,
            query_step: if instant { 0 } else { step },
            deadline: Instant::now() + opts.timeout,
            samples: 0,
            warnings: Vec::new(),
            infos: Vec::new(),
        };
        let n = if instant {
            1
        } else {
            ((end - start) / step) as usize + 1
        };
        let st = Steps {
            start,
            step: step.max(1),
            n,
        };
        (ctx, st)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    opts: &EngineOptions,
    q: &dyn Queryable,
    query: &str,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    instant: bool,
) -> Result<QueryResult, EvalError> {
    let (mut ctx, st) = Ctx::new(opts, q, query, start, end, step, instant);
    let val = ctx.eval(expr, &st)?;
    let value = match val {
        Val::Scalar(v) if instant => Value::Scalar { t: start, v: v[0] },
        Val::Scalar(v) => Value::Matrix(vec![SeriesSamples {
            labels: Labels::default(),
            samples: v.iter().enumerate().map(|(i, v)| (st.t(i), *v)).collect(),
        }]),
        Val::Str(s) => Value::String { t: start, s },
        Val::Vector(series) => {
            let series = finish_names(series)?;
            if instant {
                Value::Vector(
                    series
                        .into_iter()
                        .filter_map(|s| {
                            s.points[0].map(|v| VectorSample {
                                labels: s.labels,
                                t: start,
                                v,
                            })
                        })
                        .collect(),
                )
            } else {
                let mut out: Vec<SeriesSamples> = series
                    .into_iter()
                    .map(|s| SeriesSamples {
                        labels: s.labels,
                        samples: s
                            .points
                            .iter()
                            .enumerate()
                            .filter_map(|(i, p)| p.map(|v| (st.t(i), v)))
                            .collect(),
                    })
                    .filter(|s| !s.samples.is_empty())
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
        }
        Val::Matrix(series) => {
            let mut out: Vec<SeriesSamples> = series
                .into_iter()
                .map(|s| SeriesSamples {
                    labels: if s.drop_name {
                        without_name(&s.labels)
                    } else {
                        s.labels
                    },
                    samples: s.samples,
                })
                .filter(|s| !s.samples.is_empty())
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(out)
        }
    };
    Ok(QueryResult {
        value,
        warnings: ctx.warnings,
        infos: ctx.infos,
    })
}

/// Drops the names of series marked for it; two series left with one label set at one step is
/// an error, as in Prometheus.
pub(crate) fn finish_names(series: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    if !series.iter().any(|s| s.drop_name) {
        return Ok(series);
    }
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut index: hashbrown::HashMap<Labels, usize> = hashbrown::HashMap::new();
    for mut s in series {
        if s.drop_name {
            // The type and unit labels describe the metric and go with its name.
            s.labels = filter_labels(&s.labels, |n| {
                !matches!(n, "__name__" | "__type__" | "__unit__")
            });
            s.drop_name = false;
        }
        if let Some(&i) = index.get(&s.labels) {
            let o: &mut Series = &mut out[i];
            for (a, b) in o.points.iter_mut().zip(s.points) {
                if b.is_some() {
                    if a.is_some() {
                        return Err(EvalError::Execution(
                            "vector cannot contain metrics with the same labelset".into(),
                        ));
                    }
                    *a = b;
                }
            }
        } else {
            index.insert(s.labels.clone(), out.len());
            out.push(s);
        }
    }
    Ok(out)
}

/// A duration in ms, saturating: absurd durations must not wrap into negative times.
pub(crate) fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

pub(crate) fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(*d),
        Some(Offset::Neg(d)) => -ms(*d),
    }
}

pub(crate) fn at_ms(at: Option<&AtModifier>, start: i64, end: i64) -> Option<i64> {
    match at? {
        AtModifier::Start => Some(start),
        AtModifier::End => Some(end),
        AtModifier::At(t) => Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => ms(d),
            Err(e) => -ms(e.duration()),
        }),
    }
}

/// Converts the parser's matchers (plus the metric name) into storage matchers; one set per `or`
/// alternative.
pub(crate) fn matcher_sets(
    name: Option<&String>,
    m: &Matchers,
) -> Result<Vec<Vec<Matcher>>, EvalError> {
    let conv = |set: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, EvalError> {
        let mut out = Vec::with_capacity(set.len() + 1);
        if let Some(n) = name {
            out.push(
                Matcher::new(MatchType::Equal, "__name__", n.as_str())
                    .map_err(|e| EvalError::Parse(e.to_string()))?,
            );
        }
        for m in set {
            let t = match m.op {
                MatchOp::Equal => MatchType::Equal,
                MatchOp::NotEqual => MatchType::NotEqual,
                MatchOp::Re(_) => MatchType::Regexp,
                MatchOp::NotRe(_) => MatchType::NotRegexp,
            };
            out.push(
                Matcher::new(t, m.name.as_str(), m.value.as_str())
                    .map_err(|e| EvalError::Parse(e.to_string()))?,
            );
        }
        Ok(out)
    };
    if m.or_matchers.is_empty() {
        Ok(vec![conv(&m.matchers)?])
    } else {
        m.or_matchers.iter().map(|s| conv(s)).collect()
    }
}

impl<'a> Ctx<'a> {
    /// Prometheus's `(line:column)` of `expr` in the query text, found by its printed form.
    pub fn position(&self, expr: &Expr) -> String {
        let text = expr.to_string();
        let off = self.query.find(&text).unwrap_or(0);
        let before = &self.query[..off];
        let line = before.matches('\n').count() + 1;
        let col = off - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("({line}:{col})")
    }

    /// Whether `s`, a string literal as the parser decoded it, was written with `\x` escapes
    /// that make invalid UTF-8 (Prometheus reads `\xNN` as a raw byte; promql-parser as the
    /// character U+00NN). Returns Prometheus's quoted form of the bytes when so.
    pub fn invalid_utf8_literal(&self, s: &str) -> Option<String> {
        let q = self.query.as_bytes();
        let mut i = 0;
        while i < q.len() {
            let quote = q[i];
            if quote != b'"' && quote != b'\'' {
                i += 1;
                continue;
            }
            let (mut bytes, mut chars) = (Vec::new(), String::new());
            i += 1;
            while i < q.len() && q[i] != quote {
                if q[i] == b'\\' && i + 1 < q.len() {
                    if q[i + 1] == b'x'
                        && let Some(b) = q
                            .get(i + 2..i + 4)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        bytes.push(b);
                        chars.push(char::from(b));
                        i += 4;
                        continue;
                    }
                    bytes.push(q[i + 1]);
                    chars.push(char::from(q[i + 1]));
                    i += 2;
                    continue;
                }
                bytes.push(q[i]);
                if q[i].is_ascii() {
                    chars.push(char::from(q[i]));
                }
                i += 1;
            }
            i += 1;
            if chars == s && std::str::from_utf8(&bytes).is_err() {
                let mut out = String::from("\"");
                for b in bytes {
                    if b.is_ascii() {
                        out.push(char::from(b));
                    } else {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                out.push('"');
                return Some(out);
            }
        }
        None
    }

    /// Adds a warning once.
    pub fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    /// Adds an info once.
    pub fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    pub fn check_deadline(&self) -> Result<(), EvalError> {
        if Instant::now() > self.deadline {
            return Err(EvalError::Timeout("expression evaluation".into()));
        }
        Ok(())
    }

    /// Returns samples counted with [`Ctx::add_samples`] that are no longer held.
    pub fn release_samples(&mut self, n: usize) {
        self.samples = self.samples.saturating_sub(n);
    }

    /// Counts samples the query holds (as Prometheus does: points of evaluated vectors and the
    /// samples of the windows being reduced), failing past `max_samples`.
    pub fn add_samples(&mut self, n: usize) -> Result<(), EvalError> {
        self.samples += n;
        if self.samples > self.opts.max_samples {
            return Err(EvalError::TooManySamples("query execution".into()));
        }
        Ok(())
    }

    /// The evaluation time of step `i` under `@` and `offset`.
    fn eval_time(st: &Steps, i: usize, at: Option<i64>, offset: i64) -> i64 {
        at.unwrap_or_else(|| st.t(i)).saturating_sub(offset)
    }

    pub fn eval(&mut self, expr: &Expr, st: &Steps) -> Result<Val, EvalError> {
        self.check_deadline()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; st.n])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, st),
            Expr::Unary(u) => match self.eval(&u.expr, st)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(mut series) => {
                    for s in &mut series {
                        s.drop_name = true;
                        for p in s.points.iter_mut().flatten() {
                            *p = -*p;
                        }
                    }
                    Ok(Val::Vector(series))
                }
                _ => Err(EvalError::Execution(
                    "unary minus on a non-numeric value".into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_selector(vs, st, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                // Only reached for a range vector at the top of an instant query.
                let arg = self.eval_range(expr, st)?;
                let mut out = Vec::new();
                for s in arg.series {
                    let mut samples = Vec::new();
                    for_each_window(
                        &s.samples,
                        st,
                        arg.at,
                        arg.offset,
                        arg.range,
                        |_, _, _, w| {
                            samples.extend_from_slice(w);
                        },
                    );
                    self.add_samples(samples.len())?;
                    out.push(RangeSeries {
                        labels: s.labels,
                        drop_name: s.drop_name,
                        samples,
                    });
                }
                Ok(Val::Matrix(out))
            }
            Expr::Binary(b) => binary::eval(self, b, st),
            Expr::Aggregate(a) => aggregate::eval(self, a, st),
            Expr::Call(c) => functions::eval(self, c, st),
            Expr::Extension(_) => Err(EvalError::Execution("unsupported expression".into())),
        }
    }

    /// Evaluates an instant vector expression; a scalar is an error.
    pub fn eval_vector(&mut self, expr: &Expr, st: &Steps) -> Result<Vec<Series>, EvalError> {
        match self.eval(expr, st)? {
            Val::Vector(v) => Ok(v),
            _ => Err(EvalError::Execution("expected instant vector".into())),
        }
    }

    /// Evaluates a scalar expression to one value per step.
    pub fn eval_scalar(&mut self, expr: &Expr, st: &Steps) -> Result<Vec<f64>, EvalError> {
        match self.eval(expr, st)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(EvalError::Execution("expected scalar".into())),
        }
    }

    fn select(
        &mut self,
        name: Option<&String>,
        m: &Matchers,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>, EvalError> {
        let sets = matcher_sets(name, m)?;
        let mut out = Vec::new();
        for set in &sets {
            for mut s in self.q.select(set, mint, maxt) {
                if !s.samples.is_sorted_by_key(|p| p.0) {
                    s.samples.sort_by_key(|p| p.0);
                }
                out.push(s);
            }
        }
        if sets.len() > 1 {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            out.dedup_by(|a, b| a.labels == b.labels);
        }
        Ok(out)
    }

    /// Calls `f` with each series the selector `name{m}` selects in `[mint, maxt]` and its
    /// samples, sorted by time, one series at a time as the storage lends them. Series of an
    /// `or` of matcher sets are merged first (each once).
    fn select_each(
        &mut self,
        name: Option<&String>,
        m: &Matchers,
        mint: i64,
        maxt: i64,
        f: SelectVisitor<'_, 'a>,
    ) -> Result<(), EvalError> {
        let sets = matcher_sets(name, m)?;
        if sets.len() > 1 {
            for s in self.select(name, m, mint, maxt)? {
                f(self, &s.labels, &s.samples)?;
            }
            return Ok(());
        }
        let q = self.q;
        let mut unsorted = Vec::new();
        q.select_each(&sets[0], mint, maxt, &mut |labels, samples| {
            if samples.is_sorted_by_key(|p| p.0) {
                return f(self, labels, samples);
            }
            unsorted.clear();
            unsorted.extend_from_slice(samples);
            unsorted.sort_by_key(|p| p.0);
            f(self, labels, &unsorted)
        })
    }

    /// An instant selector over all steps: per step, the newest sample in
    /// `(t - lookback, t]` unless it is a staleness marker. With `timestamps`, the value is the
    /// sample's time in seconds.
    pub fn eval_selector(
        &mut self,
        vs: &VectorSelector,
        st: &Steps,
        timestamps: bool,
    ) -> Result<Vec<Series>, EvalError> {
        let mut out = Vec::new();
        self.each_selected(vs, st, timestamps, &mut |s| {
            out.push(s);
            Ok(())
        })?;
        Ok(out)
    }

    /// Evaluates an instant vector expression, handing each result series to `f` as soon as
    /// it is computed. Selectors and functions over them stream (so an aggregation over them
    /// holds one input series at a time); other expressions are evaluated whole first.
    pub fn eval_each(
        &mut self,
        expr: &Expr,
        st: &Steps,
        f: SeriesSink<'_>,
    ) -> Result<(), EvalError> {
        match expr {
            Expr::Paren(p) => self.eval_each(&p.expr, st, f),
            Expr::VectorSelector(vs) => self.each_selected(vs, st, false, f),
            Expr::Call(c) if functions::streams(c) => functions::eval_each(self, c, st, f),
            Expr::Binary(b) if binary::streams(b) => binary::eval_each(self, b, st, f),
            _ => {
                for s in self.eval_vector(expr, st)? {
                    f(s)?;
                }
                Ok(())
            }
        }
    }

    fn each_selected(
        &mut self,
        vs: &VectorSelector,
        st: &Steps,
        timestamps: bool,
        f: SeriesSink<'_>,
    ) -> Result<(), EvalError> {
        let offset = offset_ms(vs.offset.as_ref());
        let at = at_ms(vs.at.as_ref(), self.query_start, self.query_end);
        let lookback = self.opts.lookback_delta_ms;
        let first = Self::eval_time(st, 0, at, offset);
        let last = Self::eval_time(st, st.n.saturating_sub(1), at, offset);
        self.select_each(
            vs.name.as_ref(),
            &vs.matchers,
            first.saturating_sub(lookback) + 1,
            last,
            &mut |ctx, labels, samples| {
                ctx.check_deadline()?;
                let mut points = vec![None; st.n];
                let mut j = 0usize; // samples[..j] are at or before the current time
                let mut held = 0;
                for (i, p) in points.iter_mut().enumerate() {
                    let t = Self::eval_time(st, i, at, offset);
                    while j < samples.len() && samples[j].0 <= t {
                        j += 1;
                    }
                    if j > 0 {
                        let (ts, v) = samples[j - 1];
                        if ts > t.saturating_sub(lookback) && !is_stale(v) {
                            *p = Some(if timestamps { ts as f64 / 1000.0 } else { v });
                            held += 1;
                        }
                    }
                }
                if held > 0 {
                    ctx.add_samples(held)?;
                    f(Series {
                        labels: labels.clone(),
                        drop_name: false,
                        points,
                    })?;
                }
                Ok(())
            },
        )
    }

    /// Calls `f` with each series of the range vector `expr` (a range selector, possibly in
    /// parentheses, streamed from storage without its staleness markers; or a subquery,
    /// evaluated whole first) and how its windows are placed: `(range, offset, at)`.
    pub fn each_range_series(
        &mut self,
        expr: &Expr,
        st: &Steps,
        f: RangeVisitor<'_, 'a>,
    ) -> Result<(), EvalError> {
        let Expr::MatrixSelector(ms_sel) = unparen(expr) else {
            let arg = self.eval_range(expr, st)?;
            let w = (arg.range, arg.offset, arg.at);
            for s in &arg.series {
                let r = RangeSeriesRef {
                    labels: &s.labels,
                    drop_name: s.drop_name,
                    samples: &s.samples,
                };
                f(self, &r, w)?;
            }
            return Ok(());
        };
        let vs = &ms_sel.vs;
        let offset = offset_ms(vs.offset.as_ref());
        let at = at_ms(vs.at.as_ref(), self.query_start, self.query_end);
        let range = ms(ms_sel.range);
        let first = Self::eval_time(st, 0, at, offset);
        let last = Self::eval_time(st, st.n.saturating_sub(1), at, offset);
        let mut fresh = Vec::new();
        self.select_each(
            vs.name.as_ref(),
            &vs.matchers,
            first.saturating_sub(range) + 1,
            last,
            &mut |ctx, labels, samples| {
                let samples = if any_stale(samples) {
                    fresh.clear();
                    fresh.extend(samples.iter().filter(|p| !is_stale(p.1)));
                    &fresh[..]
                } else {
                    samples
                };
                if samples.is_empty() {
                    return Ok(());
                }
                let r = RangeSeriesRef {
                    labels,
                    drop_name: false,
                    samples,
                };
                f(ctx, &r, (range, offset, at))
            },
        )
    }

    /// Evaluates a matrix selector or subquery (possibly in parentheses) into its series.
    pub fn eval_range(&mut self, expr: &Expr, st: &Steps) -> Result<RangeArg, EvalError> {
        match expr {
            Expr::Paren(p) => self.eval_range(&p.expr, st),
            Expr::MatrixSelector(m) => self.eval_matrix_selector(m, st),
            Expr::Subquery(sq) => self.eval_subquery(sq, st),
            _ => Err(EvalError::Execution("expected range vector".into())),
        }
    }

    fn eval_matrix_selector(
        &mut self,
        ms_sel: &MatrixSelector,
        st: &Steps,
    ) -> Result<RangeArg, EvalError> {
        let vs = &ms_sel.vs;
        let offset = offset_ms(vs.offset.as_ref());
        let at = at_ms(vs.at.as_ref(), self.query_start, self.query_end);
        let range = ms(ms_sel.range);
        let first = Self::eval_time(st, 0, at, offset);
        let last = Self::eval_time(st, st.n.saturating_sub(1), at, offset);
        let selected = self.select(
            vs.name.as_ref(),
            &vs.matchers,
            first.saturating_sub(range) + 1,
            last,
        )?;
        let series = selected
            .into_iter()
            .map(|s| RangeSeries {
                labels: s.labels,
                drop_name: false,
                samples: s.samples.into_iter().filter(|p| !is_stale(p.1)).collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        Ok(RangeArg {
            series,
            range,
            offset,
            at,
        })
    }

    fn eval_subquery(&mut self, sq: &SubqueryExpr, st: &Steps) -> Result<RangeArg, EvalError> {
        let offset = offset_ms(sq.offset.as_ref());
        let at = at_ms(sq.at.as_ref(), self.query_start, self.query_end);
        let range = ms(sq.range);
        let step = sq
            .step
            .map_or(self.opts.default_subquery_step_ms, ms)
            .max(1);
        let first = Self::eval_time(st, 0, at, offset);
        let last = Self::eval_time(st, st.n.saturating_sub(1), at, offset);
        let lo = first.saturating_sub(range);
        let mut start = lo.div_euclid(step) * step;
        if start <= lo {
            start = start.saturating_add(step);
        }
        let n = if last < start {
            0
        } else {
            ((last - start) / step) as usize + 1
        };
        if n > self.opts.max_samples {
            return Err(EvalError::TooManySamples("subquery evaluation".into()));
        }
        let n = { n };
        let inner = Steps { start, step, n };
        let series = if n == 0 {
            Vec::new()
        } else {
            match self.eval(&sq.expr, &inner)? {
                Val::Vector(v) => v
                    .into_iter()
                    .map(|s| RangeSeries {
                        labels: s.labels,
                        drop_name: s.drop_name,
                        samples: s
                            .points
                            .iter()
                            .enumerate()
                            .filter_map(|(i, p)| p.map(|v| (inner.t(i), v)))
                            .collect(),
                    })
                    .filter(|s| !s.samples.is_empty())
                    .collect(),
                Val::Scalar(v) => vec![RangeSeries {
                    labels: Labels::default(),
                    drop_name: false,
                    samples: v
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (inner.t(i), *v))
                        .collect(),
                }],
                _ => return Err(EvalError::Execution("subquery of a non-vector".into())),
            }
        };
        Ok(RangeArg {
            series,
            range,
            offset,
            at,
        })
    }
}

/// Calls `f(step, eval_time, first_index, window)` for each step with the samples in
/// `(te - range, te]`, advancing two indices over `samples` (sorted by time).
pub(crate) fn for_each_window(
    samples: &[(i64, f64)],
    st: &Steps,
    at: Option<i64>,
    offset: i64,
    range: i64,
    mut f: impl FnMut(usize, i64, usize, &[(i64, f64)]),
) {
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..st.n {
        let te = Ctx::eval_time(st, i, at, offset);
        while hi < samples.len() && samples[hi].0 <= te {
            hi += 1;
        }
        while lo < hi && samples[lo].0 <= te.saturating_sub(range) {
            lo += 1;
        }
        f(i, te, lo, &samples[lo..hi]);
    }
}
