//! `POST /api/v1/read`: Prometheus remote read with the SAMPLES response type, so stored
//! samples can be read back (by Prometheus, or by `strata-loadgen verify`).

use http::StatusCode;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use prost::Message;
use strata_storage::matcher::{MatchType, Matcher};

use super::error::ApiError;
use super::{App, HttpResponse};
use crate::http::body::read_limited;
use crate::remote_write::proto::{
    self, QueryResult, ReadRequest, ReadResponse, label_matcher, read_request,
};

pub async fn handle(app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let tenant = app.tenant(&req)?;
    let limit = app.config.max_recv_msg_size;
    let mut body = Vec::new();
    read_limited(req.into_body(), &mut body, limit)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let declared = snap::raw::decompress_len(&body)
        .map_err(|e| ApiError::bad_request(format!("error decompressing snappy body: {e}")))?;
    if declared > limit {
        return Err(ApiError::too_large(format!(
            "request too large: {declared} bytes exceeds the limit of {limit} bytes"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .map_err(|e| ApiError::bad_request(format!("error decompressing snappy body: {e}")))?;
    let request = ReadRequest::decode(raw.as_slice())
        .map_err(|e| ApiError::bad_request(format!("error decoding remote read request: {e}")))?;
    let samples_ok = request.accepted_response_types.is_empty()
        || request
            .accepted_response_types
            .contains(&(read_request::ResponseType::Samples as i32));
    if !samples_ok {
        return Err(ApiError::bad_request(
            "none of the accepted response types is supported: this server answers SAMPLES",
        ));
    }
    let mut results = Vec::with_capacity(request.queries.len());
    for q in &request.queries {
        let matchers = q
            .matchers
            .iter()
            .map(to_matcher)
            .collect::<Result<Vec<_>, _>>()?;
        let series = app
            .instance
            .samples(&tenant, matchers, q.start_timestamp_ms, q.end_timestamp_ms)
            .await
            .map_err(|e| ApiError::internal(&e.to_string()))?;
        let timeseries = series
            .into_iter()
            .map(|s| proto::TimeSeries {
                labels: s
                    .labels
                    .into_vec()
                    .into_iter()
                    .map(|l| proto::Label {
                        name: l.name,
                        value: l.value,
                    })
                    .collect(),
                samples: s
                    .samples
                    .into_iter()
                    .map(|(t, v)| proto::Sample {
                        value: v,
                        timestamp: t,
                    })
                    .collect(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            })
            .collect();
        results.push(QueryResult { timeseries });
    }
    let encoded = ReadResponse { results }.encode_to_vec();
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&encoded)
        .map_err(|e| ApiError::internal(&format!("snappy: {e}")))?;
    let mut r = Response::new(Full::new(Bytes::from(compressed)));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    r.headers_mut()
        .insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    Ok(r)
}

fn to_matcher(m: &proto::LabelMatcher) -> Result<Matcher, ApiError> {
    let t = match label_matcher::Type::try_from(m.r#type) {
        Ok(label_matcher::Type::Eq) => MatchType::Equal,
        Ok(label_matcher::Type::Neq) => MatchType::NotEqual,
        Ok(label_matcher::Type::Re) => MatchType::Regexp,
        Ok(label_matcher::Type::Nre) => MatchType::NotRegexp,
        Err(_) => {
            return Err(ApiError::bad_request(format!(
                "unknown label matcher type {}",
                m.r#type
            )));
        }
    };
    Matcher::new(t, m.name.as_str(), m.value.as_str())
        .map_err(|e| ApiError::bad_request(format!("invalid matcher for label {:?}: {e}", m.name)))
}
