//! Running scripts: each `eval` is one unit that passes only if the query and all its variants
//! pass. An instant eval is also run (a) as a range query from `t-1m` to `t+1m` with step `1m`,
//! whose middle step must equal the expected result (not for `ordered` evals, whose order a range
//! query does not define, nor for evals expecting a string or a range vector, which a range query
//! cannot return, nor for expressions mentioning `start()`, `end()`, `range()` or `step()`,
//! whose value depends on the query's range), and (b) with `@` pinned on its selectors at other
//! evaluation times (see [`crate::at_modifier`]), and (c) when the query has aggregations that
//! shards evaluate over their own series ([`Engine::pushdowns`]), with those aggregations
//! evaluated over two halves of the series and merged, as the server does over its shards. A
//! range eval is also run as (c). An instant eval with `expect range vector from .. to ..` runs at
//! the end of that range.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Duration;

use strata_engine::promql::{
    Engine, EngineOptions, EvalError, Partials, QueryResult, Queryable, SeriesSamples, Value,
    VectorSample,
};
use strata_storage::matcher::Matcher;

use crate::at_modifier;
use crate::compare::{Grid, check_annotations, check_failure, compare};
use crate::script::{Command, Eval, EvalKind, Expected, parse_script};
use crate::series::Point;
use crate::skips::Skips;
use crate::store::Store;

/// Files whose syntax or semantics are experimental in Prometheus; reported apart from the rest.
pub const EXPERIMENTAL: &[&str] = &[
    "duration_expression",
    "extended_vectors",
    "fill-modifier",
    "info",
    "start_timestamps",
    "type_and_unit",
];

/// The reason written for evals that need native histograms.
pub const HISTOGRAM_REASON: &str = "needs native-histogram samples";

/// The reason written for evals that need start timestamps.
pub const START_TIMESTAMP_REASON: &str =
    "needs start timestamps (`@st` load lines), which strata's storage does not keep";

/// The engine settings the scripts assume.
pub fn engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta_ms: 5 * 60_000,
        max_samples: 10_000,
        timeout: Duration::from_secs(100),
        default_subquery_step_ms: 60_000,
    })
}

/// The outcome of one eval.
#[derive(Debug)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One eval's outcome with what the runner learnt about it.
#[derive(Debug)]
pub struct EvalReport {
    pub line: usize,
    pub text: String,
    pub outcome: Outcome,
    /// The eval reached series holding native histograms, or expects histograms.
    pub needs_histograms: bool,
    /// The eval reaches series with start timestamps (`@st`), which storage does not keep.
    pub needs_start_timestamps: bool,
    /// promql-parser's error, when it rejects the expression.
    pub parse_error: Option<String>,
}

/// The outcome of one file.
#[derive(Debug)]
pub struct FileReport {
    /// The file name (without directories).
    pub name: String,
    pub experimental: bool,
    pub evals: Vec<EvalReport>,
    /// A failure outside any eval: the script does not parse, or a load is rejected.
    pub errors: Vec<String>,
}

impl FileReport {
    /// `(passed, failed, skipped)`; a file-level error counts as one failure.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, self.errors.len(), 0);
        for e in &self.evals {
            match e.outcome {
                Outcome::Passed => c.0 += 1,
                Outcome::Failed(_) => c.1 += 1,
                Outcome::Skipped(_) => c.2 += 1,
            }
        }
        c
    }
}

/// Runs one script file.
pub fn run_file(path: &Path, skips: &Skips, engine: &Engine) -> FileReport {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let stem = name.strip_suffix(".test").unwrap_or(&name);
    let mut report = FileReport {
        experimental: EXPERIMENTAL.contains(&stem),
        name: name.clone(),
        evals: Vec::new(),
        errors: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(format!("cannot read: {e}"));
            return report;
        }
    };
    run_script(&text, &name, skips, engine, &mut report);
    report
}

/// Runs a script's text, appending to `report`.
pub fn run_script(text: &str, name: &str, skips: &Skips, engine: &Engine, report: &mut FileReport) {
    let cmds = match parse_script(text) {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(format!("script does not parse: {e}"));
            return;
        }
    };
    let mut store = Store::new();
    for cmd in cmds {
        match cmd {
            Command::Clear { .. } => store = Store::new(),
            Command::Load(l) => {
                if let Err(e) = store.load(&l) {
                    report
                        .errors
                        .push(format!("line {}: load failed: {e}", l.line));
                }
            }
            Command::Eval(eval) => {
                let parse_error = promql_parser::parser::parse(&eval.expr).err();
                let expects_histograms = match &eval.expected {
                    Expected::Series(s) => s.iter().any(|(_, p)| p.contains(&Point::Histogram)),
                    _ => false,
                };
                let selections = selections(&eval, engine);
                let needs_histograms = expects_histograms
                    || selections.iter().any(|m| store.selects_histograms(m))
                    || (parse_error.is_some() && store.names_histogram_series(&eval.expr));
                let needs_start_timestamps =
                    selections.iter().any(|m| store.selects_start_timestamps(m));
                let outcome = if let Some(reason) = skips.reason(name, eval.line) {
                    Outcome::Skipped(reason.to_owned())
                } else {
                    store.take_touched_histograms();
                    match catch_unwind(AssertUnwindSafe(|| run_eval(&eval, &store, engine))) {
                        Ok(Ok(())) => Outcome::Passed,
                        Ok(Err(e)) => Outcome::Failed(e),
                        Err(_) => Outcome::Failed("the evaluator panicked".into()),
                    }
                };
                report.evals.push(EvalReport {
                    line: eval.line,
                    text: eval.text.clone(),
                    outcome,
                    needs_histograms: needs_histograms || store.take_touched_histograms(),
                    needs_start_timestamps,
                    parse_error,
                });
            }
        }
    }
}

/// The matchers of the selections the engine reports for the eval (none if it cannot say).
fn selections(eval: &Eval, engine: &Engine) -> Vec<Vec<strata_storage::matcher::Matcher>> {
    let (start, end) = match eval.kind {
        EvalKind::Instant { t_ms } => (t_ms, t_ms),
        EvalKind::Range {
            start_ms, end_ms, ..
        } => (start_ms, end_ms),
    };
    let Ok(Ok(sels)) = catch_unwind(AssertUnwindSafe(|| {
        engine.selections(&eval.expr, start, end, &[])
    })) else {
        return Vec::new();
    };
    sels.into_iter().map(|s| s.matchers).collect()
}

/// Runs one eval with all its variants.
pub fn run_eval(eval: &Eval, store: &Store, engine: &Engine) -> Result<(), String> {
    match eval.kind {
        EvalKind::Range {
            start_ms,
            end_ms,
            step_ms,
        } => {
            let res = engine.range(store, &eval.expr, start_ms, end_ms, step_ms);
            let Some(res) = check_outcome(eval, res, "")? else {
                return Ok(());
            };
            let grid = Some((start_ms, end_ms, step_ms));
            compare(eval, &res.value, grid)?;
            if let Some(split) = pushed_down(store, engine, &eval.expr, start_ms, end_ms, step_ms) {
                let res =
                    split.and_then(|q| engine.range(&q, &eval.expr, start_ms, end_ms, step_ms));
                let what = "pushed down to two shards: ";
                if let Some(res) = check_outcome(eval, res, what)? {
                    compare(eval, &res.value, grid).map_err(|e| format!("{what}{e}"))?;
                }
            }
            Ok(())
        }
        EvalKind::Instant { t_ms } => {
            // With `expect range vector`, the query runs at the end of that range.
            let t_ms = eval.range_vector.map_or(t_ms, |(_, end, _)| end);
            run_instant(eval, &eval.expr, t_ms, store, engine)?;
            for (expr, t) in at_modifier::variants(&eval.expr, t_ms) {
                run_instant(eval, &expr, t, store, engine)
                    .map_err(|e| format!("with @ at t={t}ms ({expr}): {e}"))?;
            }
            Ok(())
        }
    }
}

/// Checks an evaluation's error or annotations against the eval; `Ok(None)` when it failed as
/// expected.
fn check_outcome(
    eval: &Eval,
    res: Result<QueryResult, EvalError>,
    what: &str,
) -> Result<Option<QueryResult>, String> {
    match res {
        Err(e) if eval.expect_fail => check_failure(eval, &e.to_string()).map(|()| None),
        Err(e) => Err(format!("{what}error: {e}")),
        Ok(_) if eval.expect_fail => Err(format!("{what}expected an error but got none")),
        Ok(r) => {
            check_annotations(eval, &r).map_err(|e| format!("{what}{e}"))?;
            Ok(Some(r))
        }
    }
}

fn run_instant(
    eval: &Eval,
    expr: &str,
    t: i64,
    store: &Store,
    engine: &Engine,
) -> Result<(), String> {
    let res = engine.instant(store, expr, t);
    let Some(res) = check_outcome(eval, res, "")? else {
        return Ok(());
    };
    let grid: Option<Grid> = eval.range_vector;
    compare(eval, &res.value, grid)?;
    if let Some(split) = pushed_down(store, engine, expr, t, t, 0) {
        let res = split.and_then(|q| engine.instant(&q, expr, t));
        let what = "pushed down to two shards: ";
        if let Some(res) = check_outcome(eval, res, what)? {
            compare(eval, &res.value, grid).map_err(|e| format!("{what}{e}"))?;
        }
    }
    if eval.ordered
        || eval.range_vector.is_some()
        || matches!(eval.expected, Expected::String(_))
        || at_modifier::depends_on_range(expr)
    {
        return Ok(());
    }
    // The same query as a range query must give the same middle step.
    let range = engine
        .range(store, expr, t - 60_000, t + 60_000, 60_000)
        .map_err(|e| format!("in range mode: error: {e}"))?;
    let Value::Matrix(m) = range.value else {
        return Err("in range mode: the result is not a matrix".into());
    };
    let mut vector = Vec::with_capacity(m.len());
    for s in m {
        if let Some(&(pt, v)) = s.samples.iter().find(|p| p.0 == t) {
            vector.push(VectorSample {
                labels: s.labels,
                t: pt,
                v,
            });
        }
    }
    let value = if matches!(res.value, Value::Scalar { .. }) {
        let Some(first) = vector.first() else {
            return Err("in range mode: no value at the middle step of a scalar".into());
        };
        Value::Scalar { t, v: first.v }
    } else {
        Value::Vector(vector)
    };
    compare(eval, &value, None).map_err(|e| format!("in range mode: {e}"))
}

/// The store's series split in two by label hash, as a server's shards split them.
struct Half<'a> {
    store: &'a Store,
    half: u64,
}

impl Queryable for Half<'_> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let mut v = self.store.select(matchers, mint, maxt);
        v.retain(|s| s.labels.hash() % 2 == self.half);
        v
    }
}

/// The store, with pushed-down aggregations already evaluated.
struct WithPartials<'a> {
    store: &'a Store,
    partials: Partials,
}

impl Queryable for WithPartials<'_> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        self.store.select(matchers, mint, maxt)
    }

    fn partials(&self) -> Option<&Partials> {
        Some(&self.partials)
    }
}

/// The query's pushed-down aggregations evaluated over each half of the store and merged
/// (`step_ms` 0: an instant query); `None` when nothing is pushed down.
fn pushed_down<'a>(
    store: &'a Store,
    engine: &Engine,
    expr: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Option<Result<WithPartials<'a>, EvalError>> {
    let aggs = engine.pushdowns(expr).ok()?;
    if aggs.is_empty() {
        return None;
    }
    let run = || {
        let mut partials = Partials::default();
        for agg in aggs {
            let part =
                |half| engine.partial(&Half { store, half }, expr, &agg, start_ms, end_ms, step_ms);
            let mut p = part(0)?;
            p.merge(part(1)?);
            partials.insert(agg, p);
        }
        Ok(WithPartials { store, partials })
    };
    Some(run())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Command;

    fn setup(script: &str) -> (Store, Vec<Eval>) {
        let mut store = Store::new();
        let mut evals = Vec::new();
        for c in parse_script(script).unwrap() {
            match c {
                Command::Load(l) => store.load(&l).unwrap(),
                Command::Eval(e) => evals.push(*e),
                Command::Clear { .. } => {}
            }
        }
        (store, evals)
    }

    #[test]
    fn instant_evals_run_in_range_mode_and_with_at() {
        let (store, evals) = setup("load 1m\n  foo 1+1x10\n\neval instant at 1m foo\n  foo 2\n");
        let engine = engine();
        run_eval(&evals[0], &store, &engine).unwrap();
        // The query, its range form, and five `@` variants with their range forms.
        assert_eq!(store.selects(), 12);
    }

    #[test]
    fn time_dependent_evals_have_no_at_variants() {
        let (store, evals) =
            setup("load 1m\n  foo 1+1x10\n\neval instant at 1m timestamp(foo)\n  {} 60\n");
        run_eval(&evals[0], &store, &engine()).unwrap();
        assert_eq!(store.selects(), 2);
    }

    #[test]
    fn range_vector_evals_run_at_the_end_of_their_range() {
        let (store, evals) = setup(concat!(
            "load 10s\n  m{env=\"a\"} 1+1x5\n\n",
            "eval instant at 5m m[1m]\n  expect range vector from 10s to 1m step 10s\n",
            "  m{env=\"a\"} 2 3 4 5 6\n",
        ));
        run_eval(&evals[0], &store, &engine()).unwrap();
    }

    #[test]
    fn wrong_expectations_fail() {
        let (store, evals) = setup(concat!(
            "load 1m\n  foo{a=\"x\"} 1+1x10\n\n",
            "eval instant at 1m foo\n  foo{a=\"x\"} 3\n\n",
            "eval instant at 1m foo\n  foo{a=\"y\"} 2\n\n",
            "eval instant at 1m foo\n  expect fail\n\n",
            "eval range from 0 to 2m step 1m foo\n  foo{a=\"x\"} 1 2\n\n",
            "eval range from 0 to 2m step 1m foo\n  foo{a=\"x\"} 1 _ 3\n\n",
            "eval range from 0 to 2m step 1m foo\n  foo{a=\"x\"} 1 2 3\n\n",
        ));
        let engine = engine();
        let results: Vec<bool> = evals
            .iter()
            .map(|e| run_eval(e, &store, &engine).is_ok())
            .collect();
        assert_eq!(results, [false, false, false, false, false, true]);
    }
}
