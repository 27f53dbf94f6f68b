//! Binary operators: arithmetic, comparisons (filtering or `bool`), set operators, and vector
//! matching (`on`/`ignoring`, `group_left`/`group_right`) with Prometheus's error messages.
//!
//! Matching is decided once per pair of series (label signatures do not change over steps);
//! only the presence checks (duplicates on the "one" side, repeated matches) run per step.

use hashbrown::HashMap;
use promql_parser::label::METRIC_NAME;
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use strata_storage::labels::Labels;

use super::EvalError;
use super::eval::{Ctx, SeriesSink, Steps};
use super::series::{
    Series, Val, filter_labels, labels_string, set_label, signature, signature_labels,
};

type Sig = Vec<(String, String)>;

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

fn arith(op: TokenId, a: f64, b: f64) -> f64 {
    match op {
        T_ADD => a + b,
        T_SUB => a - b,
        T_MUL => a * b,
        T_DIV => a / b,
        T_MOD => a % b,
        T_POW => a.powf(b),
        T_ATAN2 => a.atan2(b),
        _ => f64::NAN,
    }
}

fn compare(op: TokenId, a: f64, b: f64) -> bool {
    match op {
        T_EQLC => a == b,
        T_NEQ => a != b,
        T_GTR => a > b,
        T_LSS => a < b,
        T_GTE => a >= b,
        T_LTE => a <= b,
        _ => false,
    }
}

/// The value of `a op b`, or `None` when a comparison without `bool` filters the sample out.
/// `keep` is the value a filtering comparison keeps.
fn apply(op: TokenId, a: f64, b: f64, ret_bool: bool, keep: f64) -> Option<f64> {
    if is_comparison(op) {
        let c = compare(op, a, b);
        if ret_bool {
            Some(if c { 1.0 } else { 0.0 })
        } else if c {
            Some(keep)
        } else {
            None
        }
    } else {
        Some(arith(op, a, b))
    }
}

pub(crate) fn eval(ctx: &mut Ctx<'_>, b: &BinaryExpr, st: &Steps) -> Result<Val, EvalError> {
    let op = b.op.id();
    let ret_bool = b.return_bool();
    let lhs = ctx.eval(&b.lhs, st)?;
    let rhs = ctx.eval(&b.rhs, st)?;
    let drops_name = ret_bool || !is_comparison(op);
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.iter()
                .zip(&r)
                .map(|(a, c)| apply(op, *a, *c, true, *a).unwrap_or(f64::NAN))
                .collect(),
        )),
        (Val::Vector(mut v), Val::Scalar(s)) | (Val::Scalar(s), Val::Vector(mut v)) => {
            let swap = b.lhs.value_type() == ValueType::Scalar;
            for series in &mut v {
                with_scalar(series, &s, op, swap, ret_bool, drops_name);
            }
            v.retain(|s| s.points.iter().any(Option::is_some));
            Ok(Val::Vector(v))
        }
        (Val::Vector(l), Val::Vector(r)) => match op {
            T_LAND | T_LOR | T_LUNLESS => Ok(Val::Vector(set_op(ctx, op, b, l, r, st)?)),
            _ => Ok(Val::Vector(match_op(
                ctx, op, b, l, r, st, ret_bool, drops_name,
            )?)),
        },
        _ => Err(EvalError::Execution(
            "binary operator on a string or range vector".into(),
        )),
    }
}

/// Applies `series op scalar` (or `scalar op series` when `swap`) in place.
fn with_scalar(
    series: &mut Series,
    s: &[f64],
    op: TokenId,
    swap: bool,
    ret_bool: bool,
    drops_name: bool,
) {
    for (p, sv) in series.points.iter_mut().zip(s) {
        if let Some(x) = *p {
            let (a, c) = if swap { (*sv, x) } else { (x, *sv) };
            *p = apply(op, a, c, ret_bool, x);
        }
    }
    if drops_name {
        series.drop_name = true;
    }
}

/// Whether `b` is an operation between a vector and a scalar, which can stream.
pub(crate) fn streams(b: &BinaryExpr) -> bool {
    let (l, r) = (b.lhs.value_type(), b.rhs.value_type());
    matches!(
        (l, r),
        (ValueType::Vector, ValueType::Scalar) | (ValueType::Scalar, ValueType::Vector)
    )
}

/// Evaluates a vector-scalar operation ([`streams`]), handing each series to `f`.
pub(crate) fn eval_each(
    ctx: &mut Ctx<'_>,
    b: &BinaryExpr,
    st: &Steps,
    f: SeriesSink<'_>,
) -> Result<(), EvalError> {
    let op = b.op.id();
    let ret_bool = b.return_bool();
    let drops_name = ret_bool || !is_comparison(op);
    let swap = b.lhs.value_type() == ValueType::Scalar;
    let (scalar, vector) = if swap {
        (&b.lhs, &b.rhs)
    } else {
        (&b.rhs, &b.lhs)
    };
    let s = ctx.eval_scalar(scalar, st)?;
    ctx.eval_each(vector, st, &mut |mut series| {
        with_scalar(&mut series, &s, op, swap, ret_bool, drops_name);
        if series.points.iter().any(Option::is_some) {
            f(series)?;
        }
        Ok(())
    })
}

fn matching(b: &BinaryExpr) -> (bool, Vec<String>) {
    match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (false, Vec::new()),
    }
}

fn set_op(
    ctx: &mut Ctx<'_>,
    op: TokenId,
    b: &BinaryExpr,
    l: Vec<Series>,
    r: Vec<Series>,
    st: &Steps,
) -> Result<Vec<Series>, EvalError> {
    let (on, names) = matching(b);
    let mut rsigs: HashMap<Sig, Vec<usize>> = HashMap::new();
    for (i, s) in r.iter().enumerate() {
        rsigs
            .entry(signature(&s.labels, on, &names))
            .or_default()
            .push(i);
    }
    let present = |idx: Option<&Vec<usize>>, series: &[Series], i: usize| {
        idx.is_some_and(|g| g.iter().any(|&j| series[j].points[i].is_some()))
    };
    match op {
        T_LAND | T_LUNLESS => {
            let mut out = Vec::with_capacity(l.len());
            for mut s in l {
                ctx.check_deadline()?;
                let g = rsigs.get(&signature(&s.labels, on, &names));
                for i in 0..st.n {
                    if s.points[i].is_some() && present(g, &r, i) != (op == T_LAND) {
                        s.points[i] = None;
                    }
                }
                if s.points.iter().any(Option::is_some) {
                    out.push(s);
                }
            }
            Ok(out)
        }
        _ => {
            let mut lsigs: HashMap<Sig, Vec<usize>> = HashMap::new();
            for (i, s) in l.iter().enumerate() {
                lsigs
                    .entry(signature(&s.labels, on, &names))
                    .or_default()
                    .push(i);
            }
            let mut extra = Vec::new();
            for mut s in r {
                ctx.check_deadline()?;
                let g = lsigs.get(&signature(&s.labels, on, &names));
                for i in 0..st.n {
                    if s.points[i].is_some() && present(g, &l, i) {
                        s.points[i] = None;
                    }
                }
                if s.points.iter().any(Option::is_some) {
                    extra.push(s);
                }
            }
            let mut out = l;
            out.extend(extra);
            Ok(merge_by_labels(out))
        }
    }
}

/// Merges series with equal label sets (and equal name-dropping) into one.
fn merge_by_labels(series: Vec<Series>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
    for s in series {
        let key = (s.labels.clone(), s.drop_name);
        if let Some(&i) = index.get(&key) {
            let o: &mut Series = &mut out[i];
            for (a, b) in o.points.iter_mut().zip(s.points) {
                if a.is_none() {
                    *a = b;
                }
            }
        } else {
            index.insert(key, out.len());
            out.push(s);
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn match_op(
    ctx: &mut Ctx<'_>,
    op: TokenId,
    b: &BinaryExpr,
    l: Vec<Series>,
    r: Vec<Series>,
    st: &Steps,
    ret_bool: bool,
    drops_name: bool,
) -> Result<Vec<Series>, EvalError> {
    let (on, names) = matching(b);
    let card = b
        .modifier
        .as_ref()
        .map_or(VectorMatchCardinality::OneToOne, |m| m.card.clone());
    let (swap, include, one_to_one) = match &card {
        VectorMatchCardinality::OneToOne => (false, Vec::new(), true),
        VectorMatchCardinality::ManyToOne(ls) => (false, ls.labels.clone(), false),
        VectorMatchCardinality::OneToMany(ls) => (true, ls.labels.clone(), false),
        VectorMatchCardinality::ManyToMany => {
            return Err(EvalError::Execution(
                "many-to-many only allowed for set operators".into(),
            ));
        }
    };
    let (many, one) = if swap { (r, l) } else { (l, r) };
    let side = if swap { "left" } else { "right" };

    let mut one_sigs: HashMap<Sig, Vec<usize>> = HashMap::new();
    for (i, s) in one.iter().enumerate() {
        one_sigs
            .entry(signature(&s.labels, on, &names))
            .or_default()
            .push(i);
    }
    // Duplicates on the "one" side at any step are an error.
    for (sig, g) in &one_sigs {
        if g.len() < 2 {
            continue;
        }
        for i in 0..st.n {
            let mut present: Vec<&Labels> = g
                .iter()
                .filter(|&&j| one[j].points[i].is_some())
                .map(|&j| &one[j].labels)
                .collect();
            if present.len() > 1 {
                present.sort();
                return Err(EvalError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels_string(&signature_labels(sig)),
                    labels_string(present[0]),
                    labels_string(present[1]),
                )));
            }
        }
    }

    let mut out = Output {
        series: Vec::new(),
        index: HashMap::new(),
        n: st.n,
        one_to_one,
    };
    let mut matched_sig: HashMap<Sig, Vec<bool>> = HashMap::new();
    let fill = b.modifier.as_ref().map(|m| &m.fill_values);
    let (fill_one, fill_many) = (fill.and_then(|f| f.rhs), fill.and_then(|f| f.lhs));
    // Which steps of each "many" series found a match, for `fill_right`/`fill`.
    let mut many_matched: Vec<Vec<bool>> = Vec::new();
    for ms in &many {
        ctx.check_deadline()?;
        let sig = signature(&ms.labels, on, &names);
        let mut matched = vec![false; if fill_one.is_some() { st.n } else { 0 }];
        for &j in one_sigs.get(&sig).map_or(&[][..], Vec::as_slice) {
            let os = &one[j];
            let mut target: Option<usize> = None;
            for i in 0..st.n {
                let (Some(mv), Some(ov)) = (ms.points[i], os.points[i]) else {
                    continue;
                };
                if let Some(m) = matched.get_mut(i) {
                    *m = true;
                }
                if one_to_one {
                    let m = matched_sig
                        .entry(sig.clone())
                        .or_insert_with(|| vec![false; st.n]);
                    if m[i] {
                        return Err(EvalError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                        ));
                    }
                    m[i] = true;
                }
                let (a, c) = if swap { (ov, mv) } else { (mv, ov) };
                let Some(v) = apply(op, a, c, ret_bool, a) else {
                    continue;
                };
                let idx = *target.get_or_insert_with(|| {
                    out.slot(result_labels(
                        &ms.labels, &os.labels, on, &names, one_to_one, &include,
                    ))
                });
                out.put(idx, i, v, drops_name || ms.drop_name)?;
            }
        }
        many_matched.push(matched);
    }
    // `fill_right` (or `fill_left` under `group_right`): a "many" series without a match meets
    // the fill value.
    if let Some(fv) = fill_one {
        let empty = Labels::default();
        for (ms, matched) in many.iter().zip(&many_matched) {
            let mut target = None;
            for (i, (p, &m)) in ms.points.iter().zip(matched).enumerate() {
                let Some(mv) = *p else { continue };
                if m {
                    continue;
                }
                let (a, c) = if swap { (fv, mv) } else { (mv, fv) };
                let Some(v) = apply(op, a, c, ret_bool, a) else {
                    continue;
                };
                let idx = *target.get_or_insert_with(|| {
                    out.slot(result_labels(
                        &ms.labels, &empty, on, &names, one_to_one, &include,
                    ))
                });
                out.put(idx, i, v, drops_name || ms.drop_name)?;
            }
        }
    }
    // `fill_left` (or `fill_right` under `group_right`): a "one" series without any "many"
    // series of its group gives one result labelled by the group.
    if let Some(fv) = fill_many {
        let mut many_sigs: HashMap<Sig, Vec<usize>> = HashMap::new();
        for (i, s) in many.iter().enumerate() {
            many_sigs
                .entry(signature(&s.labels, on, &names))
                .or_default()
                .push(i);
        }
        for os in &one {
            let sig = signature(&os.labels, on, &names);
            let group = many_sigs.get(&sig).map_or(&[][..], Vec::as_slice);
            let mut target = None;
            for i in 0..st.n {
                let Some(ov) = os.points[i] else { continue };
                if group.iter().any(|&m| many[m].points[i].is_some()) {
                    continue;
                }
                let (a, c) = if swap { (ov, fv) } else { (fv, ov) };
                let Some(v) = apply(op, a, c, ret_bool, a) else {
                    continue;
                };
                let idx = *target.get_or_insert_with(|| out.slot(signature_labels(&sig)));
                out.put(idx, i, v, drops_name)?;
            }
        }
    }
    Ok(out.series)
}

/// The result series of a vector match, keyed by label set.
struct Output {
    series: Vec<Series>,
    index: HashMap<Labels, usize>,
    n: usize,
    one_to_one: bool,
}

impl Output {
    fn slot(&mut self, labels: Labels) -> usize {
        if let Some(&t) = self.index.get(&labels) {
            return t;
        }
        self.index.insert(labels.clone(), self.series.len());
        self.series.push(Series {
            labels,
            drop_name: false,
            points: vec![None; self.n],
        });
        self.series.len() - 1
    }

    fn put(&mut self, idx: usize, i: usize, v: f64, drop_name: bool) -> Result<(), EvalError> {
        let o = &mut self.series[idx];
        if o.points[i].is_some() {
            return Err(EvalError::Execution(if self.one_to_one {
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into()
            } else {
                "multiple matches for labels: grouping labels must ensure unique matches".into()
            }));
        }
        o.points[i] = Some(v);
        o.drop_name |= drop_name;
        Ok(())
    }
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    on: bool,
    names: &[String],
    one_to_one: bool,
    include: &[String],
) -> Labels {
    let mut labels = if one_to_one {
        if on {
            filter_labels(many, |n| names.iter().any(|x| x == n))
        } else {
            filter_labels(many, |n| !names.iter().any(|x| x == n))
        }
    } else {
        many.clone()
    };
    for n in include {
        labels = set_label(&labels, n, one.get(n).unwrap_or(""));
    }
    if one_to_one && on && !names.iter().any(|n| n == METRIC_NAME) {
        labels = filter_labels(&labels, |n| n != METRIC_NAME);
    }
    labels
}
