//! Aggregation operators with `by`/`without`.
//!
//! The input streams in series by series ([`Ctx::eval_each`]) and is never held whole: a series
//! joins its group once (grouping labels do not change over steps) and each group keeps one
//! accumulator per step. `topk`, `bottomk` and `limitk` keep per group and step only their `k`
//! current candidates; `limit_ratio` decides each series on its own (by Prometheus's label hash).

use hashbrown::HashMap;
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK, TokenId,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use strata_storage::labels::{Labels, METRIC_NAME};

use super::EvalError;
use super::eval::{Ctx, Steps};
use super::label_hash::prometheus_hash;
use super::series::{Series, Val, filter_labels, set_label};

/// Neumaier's compensated addition: returns the new sum and compensation.
#[inline]
pub(crate) fn kahan_add(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    // The larger magnitude first: `(big - t) + small` is Prometheus's `(sum - t) + inc` or
    // `(inc - t) + sum`, chosen by a select rather than a branch on the data.
    let (big, small) = if sum.abs() >= inc.abs() {
        (sum, inc)
    } else {
        (inc, sum)
    };
    let c = if t.is_infinite() {
        0.0
    } else {
        c + ((big - t) + small)
    };
    (t, c)
}

/// Prometheus's quantile over sorted-in-place values: linear interpolation between ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as Go's sort does.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - rank.floor();
    values[lower as usize] * (1.0 - w) + values[upper as usize] * w
}

/// The labels of the group a series with `labels` belongs to.
fn group_labels(labels: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(by)) => {
            filter_labels(labels, |n| by.labels.iter().any(|b| b == n))
        }
        Some(LabelModifier::Exclude(without)) => filter_labels(labels, |n| {
            n != METRIC_NAME && !without.labels.iter().any(|b| b == n)
        }),
    }
}

pub(crate) fn eval(ctx: &mut Ctx<'_>, a: &AggregateExpr, st: &Steps) -> Result<Val, EvalError> {
    let op = a.op.id();
    let param = match &a.param {
        Some(p) if op == T_COUNT_VALUES => match ctx.eval(p, st)? {
            Val::Str(s) => Some(Val::Str(s)),
            _ => return Err(EvalError::Execution("count_values needs a string".into())),
        },
        Some(p) => {
            let v = ctx.eval_scalar(p, st)?;
            if op == T_QUANTILE
                && let Some(q) = v.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0)
            {
                let pos = ctx.position(p);
                ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {q} {pos}"
                ));
            }
            if op == T_LIMIT_RATIO
                && let Some(r) = v.iter().find(|r| r.abs() > 1.0)
            {
                let pos = ctx.position(p);
                let cap = r.clamp(-1.0, 1.0);
                ctx.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {r}, capping to {cap} {pos}"
                ));
            }
            Some(Val::Scalar(v))
        }
        None => None,
    };
    let n = st.n;
    if !matches!(
        op,
        T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO | T_COUNT_VALUES
    ) {
        // Reductions consume the input series by series into per-group accumulators.
        let q = match param {
            Some(Val::Scalar(q)) => q,
            _ => Vec::new(),
        };
        let accs = match ctx.pushed_down(a, st) {
            Some(accs) => accs,
            None => accumulate(ctx, a, st)?,
        };
        let mut out = Vec::with_capacity(accs.len());
        for acc in accs {
            ctx.check_deadline()?;
            let s = acc.finish(op, &q);
            if s.points.iter().any(Option::is_some) {
                out.push(s);
            }
        }
        return Ok(Val::Vector(out));
    }
    if op != T_COUNT_VALUES {
        let Some(Val::Scalar(k)) = param else {
            return Err(EvalError::Execution("missing parameter".into()));
        };
        return select_series(ctx, op, &k, &a.expr, a.modifier.as_ref(), st);
    }
    // count_values: one output series per group and value.
    let Some(Val::Str(label)) = param else {
        return Err(EvalError::Execution("missing parameter".into()));
    };
    if let Some(quoted) = ctx.invalid_utf8_literal(&label) {
        return Err(EvalError::Execution(format!("invalid label name {quoted}")));
    }
    if !valid_label_name(&label) {
        return Err(EvalError::Execution(format!(
            "invalid label name {label:?}"
        )));
    }
    let mut out: Vec<Series> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let modifier = a.modifier.as_ref();
    ctx.eval_each(&a.expr, st, &mut |s| {
        let group = group_labels(&s.labels, modifier);
        for (i, p) in s.points.iter().enumerate() {
            let Some(v) = *p else { continue };
            let labels = set_label(&group, &label, &format_value(v));
            let o = *index.entry(labels).or_insert_with_key(|l| {
                out.push(Series {
                    labels: l.clone(),
                    drop_name: false,
                    points: vec![None; n],
                });
                out.len() - 1
            });
            *out[o].points[i].get_or_insert(0.0) += 1.0;
        }
        Ok(())
    })?;
    Ok(Val::Vector(out))
}

/// Folds the input of the reduction `a` (not `topk`, `bottomk`, `limitk`, `limit_ratio` or
/// `count_values`) into one accumulator per group.
pub(crate) fn accumulate(
    ctx: &mut Ctx<'_>,
    a: &AggregateExpr,
    st: &Steps,
) -> Result<Vec<Acc>, EvalError> {
    let op = a.op.id();
    let mut accs: Vec<Acc> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let modifier = a.modifier.as_ref();
    ctx.eval_each(&a.expr, st, &mut |s| {
        let key = group_labels(&s.labels, modifier);
        let g = *index.entry(key).or_insert_with_key(|k| {
            accs.push(Acc::new(k.clone(), op, st.n));
            accs.len() - 1
        });
        accs[g].add(op, &s);
        Ok(())
    })?;
    Ok(accs)
}

/// The state of one group of a reduction, one slot per step.
#[derive(Clone, Debug)]
pub(crate) struct Acc {
    labels: Labels,
    drop_name: bool,
    count: Vec<u32>,
    /// sum / mean / min / max, by operator.
    a: Vec<f64>,
    /// Kahan compensation.
    c: Vec<f64>,
    /// Welford's M2 (stddev, stdvar).
    m2: Vec<f64>,
    /// avg: whether the sum overflowed and the mean is kept incrementally.
    incremental: Vec<bool>,
    /// quantile: the values.
    values: Vec<Vec<f64>>,
}

impl Acc {
    fn new(labels: Labels, op: TokenId, n: usize) -> Self {
        Acc {
            labels,
            drop_name: false,
            count: vec![0; n],
            a: vec![0.0; n],
            c: vec![0.0; n],
            m2: if matches!(op, T_STDDEV | T_STDVAR) {
                vec![0.0; n]
            } else {
                Vec::new()
            },
            incremental: if op == T_AVG {
                vec![false; n]
            } else {
                Vec::new()
            },
            values: if op == T_QUANTILE {
                vec![Vec::new(); n]
            } else {
                Vec::new()
            },
        }
    }

    /// Adds another accumulator of the same group, evaluated over other series (`sum`, `count`,
    /// `group`, `min`, `max` only: see [`super::partial`]).
    pub(crate) fn merge(&mut self, op: TokenId, o: &Acc) {
        self.drop_name |= o.drop_name;
        for i in 0..self.count.len().min(o.count.len()) {
            if o.count[i] == 0 {
                continue;
            }
            let first = self.count[i] == 0;
            self.count[i] += o.count[i];
            match op {
                T_SUM => {
                    (self.a[i], self.c[i]) = kahan_add(o.a[i], self.a[i], self.c[i]);
                    self.c[i] += o.c[i];
                }
                T_MIN if first || self.a[i].is_nan() || o.a[i] < self.a[i] => self.a[i] = o.a[i],
                T_MAX if first || self.a[i].is_nan() || o.a[i] > self.a[i] => self.a[i] = o.a[i],
                _ => {}
            }
        }
    }

    pub(crate) fn labels(&self) -> &Labels {
        &self.labels
    }

    fn add(&mut self, op: TokenId, s: &Series) {
        self.drop_name |= s.drop_name;
        // One loop per operator: the operator is fixed for the whole series, and a match inside
        // the per-step loop costs more than the arithmetic it selects.
        let points = &s.points[..self.count.len().min(s.points.len())];
        match op {
            T_SUM => {
                let slots = self.count.iter_mut().zip(&mut self.a).zip(&mut self.c);
                for (((n, a), c), p) in slots.zip(points) {
                    if let Some(v) = *p {
                        *n += 1;
                        (*a, *c) = kahan_add(v, *a, *c);
                    }
                }
            }
            T_COUNT | T_GROUP => {
                for (n, p) in self.count.iter_mut().zip(points) {
                    *n += u32::from(p.is_some());
                }
            }
            T_MIN | T_MAX => {
                let min = op == T_MIN;
                for (i, p) in points.iter().enumerate() {
                    let Some(v) = *p else { continue };
                    self.count[i] += 1;
                    let a = &mut self.a[i];
                    if self.count[i] == 1 || a.is_nan() || (if min { v < *a } else { v > *a }) {
                        *a = v;
                    }
                }
            }
            _ => {
                for (i, p) in points.iter().enumerate() {
                    if let Some(v) = *p {
                        self.add_slow(op, i, v);
                    }
                }
            }
        }
    }

    /// `avg`, `stddev`, `stdvar` and `quantile` at step `i`.
    fn add_slow(&mut self, op: TokenId, i: usize, v: f64) {
        self.count[i] += 1;
        let k = f64::from(self.count[i]);
        let first = self.count[i] == 1;
        match op {
            T_AVG => {
                if !self.incremental[i] {
                    let (ns, nc) = kahan_add(v, self.a[i], self.c[i]);
                    if first || !ns.is_infinite() {
                        (self.a[i], self.c[i]) = (ns, nc);
                        return;
                    }
                    // The sum overflowed: continue with an incremental mean.
                    self.incremental[i] = true;
                    self.a[i] /= k - 1.0;
                    self.c[i] /= k - 1.0;
                }
                let q = (k - 1.0) / k;
                (self.a[i], self.c[i]) = kahan_add(v / k, q * self.a[i], q * self.c[i]);
            }
            T_STDDEV | T_STDVAR => {
                let delta = v - (self.a[i] + self.c[i]);
                (self.a[i], self.c[i]) = kahan_add(delta / k, self.a[i], self.c[i]);
                self.m2[i] += delta * (v - (self.a[i] + self.c[i]));
            }
            T_QUANTILE => self.values[i].push(v),
            _ => {}
        }
    }

    fn finish(mut self, op: TokenId, q: &[f64]) -> Series {
        let points = (0..self.count.len())
            .map(|i| {
                if self.count[i] == 0 {
                    return None;
                }
                let k = f64::from(self.count[i]);
                Some(match op {
                    T_SUM => self.a[i] + self.c[i],
                    T_AVG if self.incremental[i] => self.a[i] + self.c[i],
                    T_AVG => self.a[i] / k + self.c[i] / k,
                    T_MIN | T_MAX => self.a[i],
                    T_COUNT => k,
                    T_GROUP => 1.0,
                    T_STDVAR => self.m2[i] / k,
                    T_STDDEV => (self.m2[i] / k).sqrt(),
                    T_QUANTILE => {
                        quantile(q.get(i).copied().unwrap_or(f64::NAN), &mut self.values[i])
                    }
                    _ => f64::NAN,
                })
            })
            .collect();
        Series {
            labels: self.labels,
            drop_name: self.drop_name,
            points,
        }
    }
}

/// `topk`, `bottomk`, `limitk`, `limit_ratio`: the input streams by; each group keeps, per step,
/// only its current `k` candidates (series ids and values), so the input is never held whole.
fn select_series(
    ctx: &mut Ctx<'_>,
    op: TokenId,
    k: &[f64],
    expr: &Expr,
    modifier: Option<&LabelModifier>,
    st: &Steps,
) -> Result<Val, EvalError> {
    if k.iter().any(|p| p.is_nan()) {
        return Err(EvalError::Execution(if op == T_LIMIT_RATIO {
            "Ratio value is NaN".into()
        } else {
            "Parameter value is NaN".into()
        }));
    }
    let n = st.n;
    if op == T_LIMIT_RATIO {
        let mut out = Vec::new();
        ctx.eval_each(expr, st, &mut |mut s| {
            let x = prometheus_hash(&s.labels) as f64 / u64::MAX as f64;
            for (p, r) in s.points.iter_mut().zip(k) {
                let r = r.clamp(-1.0, 1.0);
                if !(if r >= 0.0 { x < r } else { x >= 1.0 + r }) {
                    *p = None;
                }
            }
            if s.points.iter().any(Option::is_some) {
                out.push(s);
            }
            Ok(())
        })?;
        return Ok(Val::Vector(out));
    }
    let limits: Vec<usize> = k
        .iter()
        .map(|&p| {
            if p >= 9.0e18 {
                usize::MAX
            } else if p < 1.0 {
                0
            } else {
                p as usize
            }
        })
        .collect();
    // Whether candidate `a` ranks before `b`.
    let order = |metas: &[(Labels, bool)], a: (usize, f64), b: (usize, f64)| match op {
        T_TOPK => desc_nan_last(a.1, b.1),
        T_BOTTOMK => asc_nan_last(a.1, b.1),
        _ => metas[a.0].0.cmp(&metas[b.0].0),
    };
    let mut metas: Vec<(Labels, bool)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut cands: Vec<Vec<Vec<(usize, f64)>>> = Vec::new();
    ctx.eval_each(expr, st, &mut |s| {
        let key = group_labels(&s.labels, modifier);
        let g = *index.entry(key).or_insert_with(|| {
            cands.push(vec![Vec::new(); n]);
            cands.len() - 1
        });
        let id = metas.len();
        metas.push((s.labels, s.drop_name));
        for (i, p) in s.points.iter().enumerate() {
            let (Some(v), kk) = (*p, limits[i]) else {
                continue;
            };
            if kk == 0 {
                continue;
            }
            let c = &mut cands[g][i];
            if c.len() < kk {
                c.push((id, v));
                continue;
            }
            // Replace the worst candidate if the new one ranks before it.
            let mut worst = 0;
            for w in 1..c.len() {
                if order(&metas, c[w], c[worst]).is_gt() {
                    worst = w;
                }
            }
            if order(&metas, (id, v), c[worst]).is_lt() {
                c[worst] = (id, v);
            }
        }
        Ok(())
    })?;
    let mut out: Vec<Series> = Vec::new();
    let mut slot: HashMap<usize, usize> = HashMap::new();
    for group in &mut cands {
        ctx.check_deadline()?;
        for (i, c) in group.iter_mut().enumerate() {
            c.sort_by(|a, b| order(&metas, *a, *b));
            for &(id, v) in c.iter() {
                let o = *slot.entry(id).or_insert_with(|| {
                    out.push(Series {
                        labels: metas[id].0.clone(),
                        drop_name: metas[id].1,
                        points: vec![None; n],
                    });
                    out.len() - 1
                });
                out[o].points[i] = Some(v);
            }
        }
    }
    Ok(Val::Vector(out))
}

/// Descending with NaN last.
fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Ascending with NaN last.
fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

pub(crate) fn valid_label_name(s: &str) -> bool {
    !s.is_empty() && std::str::from_utf8(s.as_bytes()).is_ok() && !s.contains('\u{fffd}')
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` as Prometheus prints values into labels and
/// scalar results: the shortest `'f'` form (`1000000`, `0.0000001`), `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}
