//! The `PromQL` query routes: `query`, `query_range`, `format_query` and `parse_query`.
//!
//! A query is answered in three steps: the engine lists the selections the expression needs
//! ([`Engine::selections`]), each is fetched from every shard ([`Instance::samples`]) and from
//! the tenant's blocks ([`BlockCatalog::select`]) into a [`Fetched`] set, and the engine
//! evaluates over that set. Results are written as Prometheus's
//! JSON straight into the response buffer ([`json`]), gzip-compressed when the client accepts it.
//!
//! `parse_query` answers the syntax tree as Prometheus's JSON (promql-parser's serialisation,
//! which follows Prometheus's field names); `format_query` the prettified expression.
//!
//! [`Instance::samples`]: strata_engine::instance::Instance::samples
//! [`BlockCatalog::select`]: strata_engine::blocks::BlockCatalog::select

pub mod json;

use std::time::{Duration, Instant};

use tracing::debug;

use std::io::Write as _;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use http::StatusCode;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HeaderValue};
use hyper::Request;
use hyper::body::Incoming;
use strata_engine::instance::{PartialError, now_ms};
use strata_engine::promql::{
    Engine, EngineOptions, EvalError, Fetched, Partials, QueryResult, Selection, Value,
};
use strata_engine::shard::EvalPart;
use strata_engine::tenant::TenantId;

use super::error::ApiError;
use super::params::{Params, parse_time};
use super::{App, HttpResponse};

/// Prometheus's limit on the points of one series in a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// The warning when `limit` cut the result.
const TRUNCATED: &str = "results truncated due to limit";

/// `GET|POST query`: `query`, `time` (default now), `timeout`, `limit`, `lookback_delta`.
pub async fn query(app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let tenant = app.tenant(&req).map_err(ApiError::json)?;
    let gzip = accepts_gzip(&req);
    let params = Params::read(req).await?;
    let t = match params.get("time") {
        None | Some("") => now_ms(),
        Some(v) => parse_time(v).ok_or_else(|| invalid_time("time", v))?,
    };
    let opts = engine_options(app, &params)?;
    let max_samples = opts.max_samples;
    let engine = Engine::new(opts);
    let limit = params.limit()?;
    let expr = params.get("query").unwrap_or_default();
    let mut timing = Timing::start();
    let data = fetch(app, &tenant, &engine, max_samples, expr, (t, t, 0)).await?;
    timing.fetched();
    let res = engine.instant(&data, expr, t).map_err(eval_error)?;
    timing.evaluated();
    let response = respond(res, limit, gzip);
    timing.log(&tenant, "instant query");
    Ok(response)
}

/// `GET|POST query_range`: `query`, `start`, `end`, `step`, `timeout`, `limit`,
/// `lookback_delta`.
pub async fn query_range(app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let tenant = app.tenant(&req).map_err(ApiError::json)?;
    let gzip = accepts_gzip(&req);
    let params = Params::read(req).await?;
    let start = required_time(&params, "start")?;
    let end = required_time(&params, "end")?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step_s = params.get("step").unwrap_or_default();
    let step = parse_duration_ms(step_s).ok_or_else(|| invalid_duration("step", step_s))?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (i128::from(end) - i128::from(start)) / i128::from(step) > i128::from(MAX_POINTS_PER_SERIES)
    {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let opts = engine_options(app, &params)?;
    let max_samples = opts.max_samples;
    let engine = Engine::new(opts);
    let limit = params.limit()?;
    let expr = params.get("query").unwrap_or_default();
    let mut timing = Timing::start();
    let data = fetch(app, &tenant, &engine, max_samples, expr, (start, end, step)).await?;
    timing.fetched();
    let res = engine
        .range(&data, expr, start, end, step)
        .map_err(eval_error)?;
    timing.evaluated();
    let response = respond(res, limit, gzip);
    timing.log(&tenant, "range query");
    Ok(response)
}

/// Where a query's time went (fetching from the shards, evaluating, encoding), logged at debug.
struct Timing {
    began: Instant,
    fetched: Duration,
    evaluated: Duration,
}

impl Timing {
    fn start() -> Self {
        Timing {
            began: Instant::now(),
            fetched: Duration::ZERO,
            evaluated: Duration::ZERO,
        }
    }

    fn fetched(&mut self) {
        self.fetched = self.began.elapsed();
    }

    fn evaluated(&mut self) {
        self.evaluated = self.began.elapsed();
    }

    fn log(&self, tenant: &TenantId, what: &'static str) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        debug!(
            tenant = %tenant,
            fetch_ms = ms(self.fetched),
            eval_ms = ms(self.evaluated.saturating_sub(self.fetched)),
            encode_ms = ms(self.began.elapsed().saturating_sub(self.evaluated)),
            "{what}"
        );
    }
}

/// `GET|POST format_query`: the expression, prettified.
pub async fn format_query(_app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let params = Params::read(req).await?;
    let expr = parse(params.get("query").unwrap_or_default())?;
    let mut out = Vec::new();
    out.extend_from_slice(br#"{"status":"success","data":"#);
    json::write_string(&mut out, &expr.prettify(), true);
    out.push(b'}');
    Ok(super::json(StatusCode::OK, out))
}

/// `GET|POST parse_query`: the syntax tree in Prometheus's JSON shape.
pub async fn parse_query(_app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let params = Params::read(req).await?;
    let expr = parse(params.get("query").unwrap_or_default())?;
    let tree = serde_json::to_vec(&expr).map_err(|e| ApiError::internal(&e.to_string()))?;
    let mut out = Vec::with_capacity(tree.len() + 32);
    out.extend_from_slice(br#"{"status":"success","data":"#);
    out.extend_from_slice(&tree);
    out.push(b'}');
    Ok(super::json(StatusCode::OK, out))
}

fn parse(expr: &str) -> Result<promql_parser::parser::Expr, ApiError> {
    promql_parser::parser::parse(expr)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))
}

/// The engine's settings for one request: the configured `querier.*`, with `timeout` lowering
/// the time limit and `lookback_delta` (when positive) replacing the lookback delta.
fn engine_options(app: &App, params: &Params) -> Result<EngineOptions, ApiError> {
    let mut opts = app.config.engine.clone();
    match params.get("lookback_delta") {
        None | Some("") => {}
        Some(v) => {
            let ms = parse_duration_ms(v).ok_or_else(|| invalid_duration("lookback_delta", v))?;
            if ms > 0 {
                opts.lookback_delta_ms = ms;
            }
        }
    }
    match params.get("timeout") {
        None | Some("") => {}
        Some(v) => {
            let ms = parse_duration_ms(v).ok_or_else(|| invalid_duration("timeout", v))?;
            let requested = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            opts.timeout = opts.timeout.min(requested);
        }
    }
    Ok(opts)
}

fn required_time(params: &Params, name: &str) -> Result<i64, ApiError> {
    let v = params.get(name).unwrap_or_default();
    parse_time(v).ok_or_else(|| invalid_time(name, v))
}

fn invalid_time(name: &str, v: &str) -> ApiError {
    ApiError::bad_data(format!(
        "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid timestamp"
    ))
}

fn invalid_duration(name: &str, v: &str) -> ApiError {
    ApiError::bad_data(format!(
        "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid duration"
    ))
}

/// A duration parameter in ms: float seconds (`15`, `0.5`) or a Prometheus duration (`1m30s`).
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if let Ok(f) = s.parse::<f64>() {
        let ms = (f * 1000.0).round();
        return (f.is_finite() && ms >= i64::MIN as f64 && ms <= i64::MAX as f64)
            .then_some(ms as i64);
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = rest.get(..digits)?.parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let i = UNITS.iter().position(|(u, _)| *u == &rest[..unit_len])?;
        rest = &rest[unit_len..];
        if i < next_unit {
            return None;
        }
        next_unit = i + 1;
        total = total.checked_add(n.checked_mul(UNITS[i].1)?)?;
    }
    Some(total)
}

/// Maps an evaluation error to Prometheus's error type and status.
fn eval_error(e: EvalError) -> ApiError {
    match e {
        EvalError::Parse(m) => ApiError::bad_data(format!("invalid parameter \"query\": {m}")),
        e @ (EvalError::Execution(_) | EvalError::TooManySamples(_)) => {
            ApiError::execution(e.to_string())
        }
        e @ EvalError::Timeout(_) => ApiError::timeout(e.to_string()),
        e @ EvalError::Canceled(_) => ApiError::canceled(e.to_string()),
        e => ApiError::execution(e.to_string()),
    }
}

fn accepts_gzip(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// Truncates to `limit` series (0: no limit) and writes the answer.
fn respond(mut res: QueryResult, limit: usize, gzip: bool) -> HttpResponse {
    let mut extra = Vec::new();
    if limit > 0 {
        let cut = match &mut res.value {
            Value::Vector(v) if v.len() > limit => {
                v.truncate(limit);
                true
            }
            Value::Matrix(m) if m.len() > limit => {
                m.truncate(limit);
                true
            }
            _ => false,
        };
        if cut {
            extra.push(TRUNCATED.to_owned());
        }
    }
    let mut body = Vec::with_capacity(256);
    json::write_result(&mut body, &res, &extra);
    if gzip {
        let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
        if enc.write_all(&body).is_ok()
            && let Ok(compressed) = enc.finish()
        {
            let mut r = super::json(StatusCode::OK, compressed);
            r.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return r;
        }
    }
    super::json(StatusCode::OK, body)
}

/// Fetches what `expr` needs over `(start, end, step)` (step 0: an instant query at `start`):
/// the aggregations that can be pushed down, evaluated by every shard over its own series (its
/// head and its partition of the tenant's blocks, see `shard::eval_part`), and the selections
/// the rest of `expr` needs, from every shard's head and from the tenant's blocks (local and in
/// the bucket), merged by label set in [`Fetched`].
async fn fetch(
    app: &App,
    tenant: &TenantId,
    engine: &Engine,
    max_samples: usize,
    expr: &str,
    (start, end, step): (i64, i64, i64),
) -> Result<Fetched, ApiError> {
    let aggs = engine.pushdowns(expr).map_err(eval_error)?;
    let selections = engine
        .selections(expr, start, end, &aggs)
        .map_err(eval_error)?;
    let with_blocks = match time_span(&selections) {
        Some((mint, maxt)) => app
            .blocks
            .has_blocks(tenant, mint, maxt)
            .await
            .map_err(|e| ApiError::internal(&e.to_string()))?,
        None => false,
    };
    let query: Arc<str> = Arc::from(expr);
    let mut partials = Partials::default();
    for agg in aggs {
        let part = EvalPart {
            tenant: tenant.clone(),
            query: query.clone(),
            agg: agg.clone(),
            start,
            end,
            step,
            opts: engine.options().clone(),
        };
        let p = app.instance.partial(part).await.map_err(|e| match e {
            PartialError::Eval(e) => eval_error(e),
            PartialError::Read(e) => ApiError::internal(&e.to_string()),
        })?;
        partials.insert(agg, p);
    }
    let mut data = Fetched::with_partials(partials);
    let mut loaded = 0usize;
    for s in selections {
        if with_blocks {
            let series = app
                .blocks
                .select_chunks(tenant, &s.matchers, s.mint, s.maxt, None)
                .await
                .map_err(|e| ApiError::internal(&e.to_string()))?;
            // Held compressed and decoded a series at a time: the engine's own count of the
            // samples it holds bounds them, not this fetch's.
            for one in series {
                data.add_chunks(one);
            }
        }
        let from_heads = app
            .instance
            .samples(tenant, s.matchers, s.mint, s.maxt)
            .await
            .map_err(|e| ApiError::internal(&e.to_string()))?;
        for one in from_heads {
            loaded = loaded.saturating_add(one.samples.len());
            data.add(one);
        }
        // The engine counts what it reads; this bounds the decoded samples fetched for it.
        if loaded > max_samples {
            return Err(eval_error(EvalError::TooManySamples(
                "query execution".into(),
            )));
        }
    }
    Ok(data)
}

/// The time range all `selections` together cover, or `None` when there are none.
fn time_span(selections: &[Selection]) -> Option<(i64, i64)> {
    let mint = selections.iter().map(|s| s.mint).min()?;
    let maxt = selections.iter().map(|s| s.maxt).max()?;
    Some((mint, maxt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15"), Some(15_000));
        assert_eq!(parse_duration_ms("0.5"), Some(500));
        assert_eq!(parse_duration_ms("15s"), Some(15_000));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms(""), None);
        assert_eq!(parse_duration_ms("1x"), None);
        assert_eq!(parse_duration_ms("1s1m"), None);
        assert_eq!(parse_duration_ms("NaN"), None);
    }
}
