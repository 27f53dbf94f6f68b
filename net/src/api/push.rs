//! `POST /api/v1/push`: Prometheus remote write 1.0.
//!
//! Checks, in order: tenant (401/400), Content-Encoding and Content-Type (415), declared and
//! actual size (413), snappy and protobuf (400); then the engine appends every valid series and
//! the answer is 204, or 400 naming the tenant, the series and the rule when some series were
//! invalid (the valid ones are kept, as Cortex does), or 429 when the tenant's rate is exceeded.

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use hyper::Request;
use hyper::body::Incoming;
use strata_engine::instance::PushError;

use super::error::ApiError;
use super::{App, HttpResponse, text};
use crate::http::body::{BodyError, read_limited};
use crate::remote_write::decode::decode_write_request;
use crate::remote_write::snappy::{SnappyError, decompress_into};

pub async fn handle(app: &App, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    // Answered (whatever the answer) before the shutdown syncs the WAL and exits.
    let Some(_in_flight) = app.drain.begin() else {
        return Err(ApiError::unavailable(
            "shutting down: the push was not taken, send it again",
        ));
    };
    let tenant = app.tenant(&req)?;
    check_headers(req.headers())?;
    let limit = app.config.max_recv_msg_size;
    if let Some(len) = content_length(req.headers())
        && len > limit
    {
        return Err(too_large(len, limit));
    }
    let mut body = app.take_body_buf();
    let read = read_limited(req.into_body(), &mut body, limit).await;
    let mut batch = app.instance.take_batch();
    let decoded = read
        .map_err(|e| match e {
            BodyError::TooLarge { limit } => ApiError::too_large(format!(
                "request body too large: more than {limit} bytes (distributor.max_recv_msg_size)"
            )),
            BodyError::Read(e) => ApiError::bad_request(format!("error reading request body: {e}")),
        })
        .and_then(|()| {
            decompress_into(&body, &mut batch.buf, limit).map_err(|e| match e {
                SnappyError::TooLarge { declared, limit } => too_large(declared, limit),
                e => ApiError::bad_request(format!("error decompressing snappy body: {e}")),
            })
        })
        .and_then(|n| {
            batch.len = n;
            decode_write_request(&mut batch).map_err(|e| {
                ApiError::bad_request(format!("error decoding remote write request: {e}"))
            })
        });
    app.give_body_buf(body);
    if let Err(e) = decoded {
        app.instance.give_batch(batch);
        return Err(e);
    }
    let status = match app.instance.push(&tenant, batch).await {
        Ok(result) => match result.first_error {
            None => Ok(empty(StatusCode::NO_CONTENT)),
            Some(msg) => Err(ApiError::bad_request(format!("user={tenant}: {msg}"))),
        },
        Err(e @ PushError::RateLimited { .. }) => {
            Err(ApiError::too_many_requests(format!("user={tenant}: {e}")))
        }
        Err(e) => Err(ApiError::internal(&e.to_string())),
    };
    let code = match &status {
        Ok(r) => r.status(),
        Err(e) => e.status,
    };
    app.instance.metrics().push_request(code.as_u16());
    status
}

/// Remote write 1.0 bodies are snappy-compressed protobuf. A missing header is taken as the
/// default (Prometheus always sends both); anything else is refused with 415.
fn check_headers(h: &HeaderMap) -> Result<(), ApiError> {
    if let Some(enc) = h.get(CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("").trim();
        if !enc.eq_ignore_ascii_case("snappy") {
            return Err(ApiError::unsupported_media(format!(
                "unsupported Content-Encoding {enc:?}: remote write bodies must be snappy-compressed"
            )));
        }
    }
    if let Some(ct) = h.get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").trim();
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !media.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(ApiError::unsupported_media(format!(
                "unsupported Content-Type {ct:?}: expected application/x-protobuf"
            )));
        }
        for p in parts {
            if let Some(proto) = p.strip_prefix("proto=")
                && proto != "prometheus.WriteRequest"
            {
                return Err(ApiError::unsupported_media(format!(
                    "unsupported remote write message {proto:?}: this receiver accepts prometheus.WriteRequest (remote write 1.0)"
                )));
            }
        }
    }
    Ok(())
}

fn content_length(h: &HeaderMap) -> Option<usize> {
    h.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn too_large(size: usize, limit: usize) -> ApiError {
    ApiError::too_large(format!(
        "request too large: {size} bytes exceeds the limit of {limit} bytes (distributor.max_recv_msg_size)"
    ))
}

fn empty(status: StatusCode) -> HttpResponse {
    let mut r = text(status, "");
    r.headers_mut().remove(CONTENT_TYPE);
    r
}
