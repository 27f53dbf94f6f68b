//! API errors and their HTTP mapping: the one place where an error becomes a status code.
//!
//! Prometheus API routes answer `{"status":"error","errorType":"...","error":"..."}`; the
//! remote-write and remote-read routes answer plain text, as Cortex does.

use http::{Method, StatusCode};

use super::promql::json::write_string;
use super::{HttpResponse, json, text};

/// How the error is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Prometheus's JSON error object.
    Json,
    /// A plain-text message.
    Text,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Prometheus's `errorType`.
    pub error_type: &'static str,
    pub message: String,
    pub shape: Shape,
}

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: String, shape: Shape) -> Self {
        ApiError {
            status,
            error_type,
            message,
            shape,
        }
    }

    /// Invalid query parameters (400, `bad_data`).
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_data",
            message.into(),
            Shape::Json,
        )
    }

    /// Invalid pushed data (400, text).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_data",
            message.into(),
            Shape::Text,
        )
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "bad_data",
            message.into(),
            Shape::Text,
        )
    }

    /// An invalid tenant ID (400): it never reaches a path or a prefix.
    pub fn tenant(message: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_data",
            format!("invalid tenant ID: {message}"),
            Shape::Text,
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_data",
            message.into(),
            Shape::Text,
        )
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_data",
            message.into(),
            Shape::Text,
        )
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            message.into(),
            Shape::Text,
        )
    }

    /// A query that failed while running (422, `execution`).
    pub fn execution(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            message.into(),
            Shape::Json,
        )
    }

    /// The process is shutting down (503): the client retries elsewhere or later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message.into(),
            Shape::Text,
        )
    }

    /// A query that ran out of time (503, `timeout`).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            message.into(),
            Shape::Json,
        )
    }

    /// A query the client gave up on (499, `canceled`, as Prometheus answers).
    pub fn canceled(message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(499).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        Self::new(status, "canceled", message.into(), Shape::Json)
    }

    /// Our own failure (500).
    pub fn internal(message: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.into(),
            Shape::Json,
        )
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("404 page not found: {path}"),
            Shape::Text,
        )
    }

    pub fn method_not_allowed(m: &Method) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "bad_data",
            format!("method {m} not allowed"),
            Shape::Text,
        )
    }

    /// The same error in Prometheus's JSON shape (for the query API routes).
    #[must_use]
    pub fn json(mut self) -> Self {
        self.shape = Shape::Json;
        self
    }

    /// Renders the error.
    pub fn into_response(self) -> HttpResponse {
        match self.shape {
            Shape::Text => {
                let mut m = self.message;
                m.push('\n');
                text(self.status, m)
            }
            Shape::Json => {
                // Prometheus's field order and string escaping (Go's encoder escapes `<>&`).
                let mut body = Vec::with_capacity(self.message.len() + 64);
                body.extend_from_slice(br#"{"status":"error","errorType":"#);
                write_string(&mut body, self.error_type, true);
                body.extend_from_slice(br#","error":"#);
                write_string(&mut body, &self.message, true);
                body.push(b'}');
                json(self.status, body)
            }
        }
    }
}
