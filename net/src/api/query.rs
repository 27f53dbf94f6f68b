//! The series metadata routes: `series`, `labels`, `label/<name>/values`, `status/buildinfo`.
//!
//! `series`, `labels` and `label/<name>/values` answer from every shard's head and from the
//! tenant's blocks (local and in the bucket), merged: sorted, without duplicates.

use http::StatusCode;
use hyper::Request;
use hyper::body::Incoming;
use serde::Serialize;
use strata_storage::labels::Labels;

use super::error::ApiError;
use super::matchers::parse_selectors;
use super::params::Params;
use super::{App, HttpResponse, json};

/// Prometheus's warning when `limit` cut the result.
const TRUNCATED: &str = "results truncated due to limit";

pub async fn series(app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let tenant = app.tenant(&req).map_err(ApiError::json)?;
    let params = Params::read(req).await?;
    let selectors = params.all("match[]");
    if selectors.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let matchers = parse_selectors(&selectors)?;
    let (start, end) = params.time_range()?;
    let limit = params.limit()?;
    let from_blocks = app
        .blocks
        .series(&tenant, &matchers, start, end, None)
        .await
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    let mut series = app
        .instance
        .series(&tenant, matchers, start, end)
        .await
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    union(&mut series, from_blocks);
    let warnings = truncate(&mut series, limit);
    Ok(success(&SeriesData(&series), warnings))
}

pub async fn labels(app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    strings(app, req, None).await
}

pub async fn label_values(
    app: &App,
    req: Request<Incoming>,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let name = decode_label_name(name)
        .ok_or_else(|| ApiError::bad_data(format!("invalid label name: {name:?}")))?;
    let scheme = app.config.name_validation_scheme;
    if !scheme.is_valid_label_name(name.as_bytes()) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    strings(app, req, Some(name)).await
}

async fn strings(
    app: &App,
    req: Request<Incoming>,
    name: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = app.tenant(&req).map_err(ApiError::json)?;
    let params = Params::read(req).await?;
    let matchers = parse_selectors(&params.all("match[]"))?;
    let (start, end) = params.time_range()?;
    let limit = params.limit()?;
    let from_blocks = match &name {
        None => app.blocks.label_names(&tenant, &matchers, start, end).await,
        Some(n) => {
            app.blocks
                .label_values(&tenant, n, &matchers, start, end)
                .await
        }
    }
    .map_err(|e| ApiError::internal(&e.to_string()))?;
    let mut values = app
        .instance
        .label_strings(&tenant, name, matchers, start, end)
        .await
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    union(&mut values, from_blocks);
    let warnings = truncate(&mut values, limit);
    Ok(success(&values, warnings))
}

pub fn buildinfo() -> HttpResponse {
    success(
        &serde_json::json!({
            "application": "strata",
            "version": env!("CARGO_PKG_VERSION"),
            "revision": option_env!("STRATA_REVISION").unwrap_or(""),
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }),
        Vec::new(),
    )
}

/// Adds the blocks' answers to the heads' (both sorted): sorted, without duplicates.
fn union<T: Ord>(heads: &mut Vec<T>, blocks: Vec<T>) {
    if blocks.is_empty() {
        return;
    }
    heads.extend(blocks);
    heads.sort_unstable();
    heads.dedup();
}

fn truncate<T>(v: &mut Vec<T>, limit: usize) -> Vec<&'static str> {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        vec![TRUNCATED]
    } else {
        Vec::new()
    }
}

#[derive(Serialize)]
struct Success<'a, T: Serialize> {
    status: &'static str,
    data: &'a T,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<&'static str>,
}

fn success<T: Serialize>(data: &T, warnings: Vec<&'static str>) -> HttpResponse {
    let body = serde_json::to_vec(&Success {
        status: "success",
        data,
        warnings,
    })
    .unwrap_or_else(|e| {
        format!(r#"{{"status":"error","errorType":"internal","error":"{e}"}}"#).into_bytes()
    });
    json(StatusCode::OK, body)
}

/// Label sets as JSON objects, keys in label order.
struct SeriesData<'a>(&'a [Labels]);

impl Serialize for SeriesData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in self.0 {
            seq.serialize_element(&LabelsJson(l))?;
        }
        seq.end()
    }
}

struct LabelsJson<'a>(&'a Labels);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for l in self.0 {
            map.serialize_entry(&l.name, &l.value)?;
        }
        map.end()
    }
}

/// A label name from the URL path: percent-decoded, and Prometheus 3.x's `U__` escaping undone
/// (`U__` prefix; `_` as `__`; other characters as `_<hex code point>_`).
fn decode_label_name(raw: &str) -> Option<String> {
    let decoded: String = percent_decode(raw)?;
    let Some(rest) = decoded.strip_prefix("U__") else {
        return Some(decoded);
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next()? {
                '_' => break,
                h if h.is_ascii_hexdigit() => hex.push(h),
                _ => return None,
            }
        }
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::decode_label_name;

    #[test]
    fn label_names_in_paths() {
        assert_eq!(decode_label_name("job").as_deref(), Some("job"));
        assert_eq!(
            decode_label_name("U__my_2e_label").as_deref(),
            Some("my.label")
        );
        assert_eq!(decode_label_name("U__a__b").as_deref(), Some("a_b"));
        assert_eq!(decode_label_name("my%2Elabel").as_deref(), Some("my.label"));
        assert_eq!(decode_label_name("U__bad_zz_"), None);
    }
}
