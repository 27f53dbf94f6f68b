//! Label functions: `label_replace`, `label_join`, `sort_by_label`, `sort_by_label_desc`.
//! Setting `__name__` keeps the name even where an earlier function marked it for removal.

use hashbrown::HashMap;
use promql_parser::label::METRIC_NAME;
use promql_parser::parser::Expr;
use regex::Regex;
use strata_storage::labels::Labels;

use super::arg;
use crate::promql::EvalError;
use crate::promql::eval::{Ctx, Steps};
use crate::promql::series::{Series, Val, set_label};

fn string_arg(
    ctx: &mut Ctx<'_>,
    args: &[Box<Expr>],
    i: usize,
    st: &Steps,
) -> Result<String, EvalError> {
    match ctx.eval(arg(args, i)?, st)? {
        Val::Str(s) => Ok(s),
        _ => Err(EvalError::Execution("expected string argument".into())),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('\u{fffd}')
}

pub(crate) fn eval(
    ctx: &mut Ctx<'_>,
    name: &str,
    args: &[Box<Expr>],
    st: &Steps,
) -> Result<Val, EvalError> {
    let mut v = ctx.eval_vector(arg(args, 0)?, st)?;
    match name {
        "label_replace" => {
            let dst = string_arg(ctx, args, 1, st)?;
            let repl = string_arg(ctx, args, 2, st)?;
            let src = string_arg(ctx, args, 3, st)?;
            let re = string_arg(ctx, args, 4, st)?;
            let re = Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
                EvalError::Execution(format!(
                    "invalid regular expression in label_replace(): {e}"
                ))
            })?;
            if !valid_name(&dst) || ctx.invalid_utf8_literal(&dst).is_some() {
                return Err(EvalError::Execution(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            for s in &mut v {
                let value = s.labels.get(&src).unwrap_or("");
                if let Some(caps) = re.captures(value) {
                    let mut out = String::new();
                    caps.expand(&repl, &mut out);
                    s.labels = set_label(&s.labels, &dst, &out);
                    if dst == METRIC_NAME {
                        s.drop_name = false;
                    }
                }
            }
            check_unique(v)
        }
        "label_join" => {
            let dst = string_arg(ctx, args, 1, st)?;
            let sep = string_arg(ctx, args, 2, st)?;
            let mut srcs = Vec::new();
            for i in 3..args.len() {
                srcs.push(string_arg(ctx, args, i, st)?);
            }
            if !valid_name(&dst) || ctx.invalid_utf8_literal(&dst).is_some() {
                return Err(EvalError::Execution(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            for s in &mut v {
                let joined: Vec<&str> =
                    srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
                let joined = joined.join(&sep);
                s.labels = set_label(&s.labels, &dst, &joined);
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
            check_unique(v)
        }
        _ => {
            let mut names = Vec::new();
            for i in 1..args.len() {
                names.push(string_arg(ctx, args, i, st)?);
            }
            let desc = name == "sort_by_label_desc";
            if st.n == 1 {
                v.sort_by(|a, b| {
                    let mut o = std::cmp::Ordering::Equal;
                    for n in &names {
                        o = natural_cmp(
                            a.labels.get(n).unwrap_or(""),
                            b.labels.get(n).unwrap_or(""),
                        );
                        if o.is_ne() {
                            break;
                        }
                    }
                    let o = o.then_with(|| a.labels.cmp(&b.labels));
                    if desc { o.reverse() } else { o }
                });
            }
            Ok(Val::Vector(v))
        }
    }
}

/// Two series with one label set at one step is an error.
fn check_unique(v: Vec<Series>) -> Result<Val, EvalError> {
    let mut seen: HashMap<(Labels, bool), usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::with_capacity(v.len());
    for s in v {
        let key = (s.labels.clone(), s.drop_name);
        if let Some(&i) = seen.get(&key) {
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
            seen.insert(key, out.len());
            out.push(s);
        }
    }
    Ok(Val::Vector(out))
}

/// Compares strings with runs of digits compared by numeric value ("2" < "10").
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = trim_zeros(&a[si..i]);
            let nb = trim_zeros(&b[sj..j]);
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let k = s.iter().take_while(|&&c| c == b'0').count();
    &s[k..]
}
