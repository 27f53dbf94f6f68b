//! The HTTP API: routing and the handlers behind each route.
//!
//! Routes (each under both `/api/v1/` and `/prometheus/api/v1/`):
//! `POST push` and `POST write` (remote write 1.0), `POST read` (remote read, samples),
//! `GET|POST series`, `labels`, `label/<name>/values`, `GET status/buildinfo`; and `/ready`,
//! `/metrics`; block upload under `upload/block/<ULID>/` (see [`upload`]). Errors map to HTTP
//! status in one place, [`error::ApiError`].

pub mod drain;
pub mod error;
pub mod matchers;
pub mod params;
pub mod promql;
pub mod push;
pub mod query;
pub mod read;
pub mod upload;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use strata_engine::blocks::BlockCatalog;
use strata_engine::instance::Instance;
use strata_engine::tenant::TenantId;
use strata_engine::validation::NameValidationScheme;

use self::error::ApiError;

/// The header that carries the tenant.
pub const ORG_ID_HEADER: &str = "X-Scope-OrgID";

/// Settings the handlers need.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub auth_enabled: bool,
    pub max_recv_msg_size: usize,
    pub name_validation_scheme: NameValidationScheme,
    /// The PromQL engine's settings (`querier.*`).
    pub engine: strata_engine::promql::EngineOptions,
}

/// One shard's handlers and what they share.
pub struct App {
    pub instance: Instance,
    pub config: ApiConfig,
    /// Set once every shard is serving.
    pub ready: Arc<AtomicBool>,
    /// This shard's catalog of the tenants' blocks (local and in the bucket); disabled until
    /// the binary sets it. An `Rc` so that the shard's inbox loop can share it.
    pub blocks: Rc<BlockCatalog>,
    /// Cuts blocks from the heads (`/ingester/flush`); set by the binary.
    pub compactor: Option<strata_engine::compact::Compactor>,
    /// Block upload (`/api/v1/upload/block/...`): staging and bucket; set by the binary.
    pub uploads: Option<upload::Uploads>,
    /// Pushes in flight and the shutdown's drain, shared by every shard.
    pub drain: Arc<drain::Drain>,
    /// Reused buffer for compressed request bodies.
    body_buf: RefCell<Vec<u8>>,
}

/// A response with a fully built body.
pub type HttpResponse = Response<Full<Bytes>>;

impl App {
    pub fn new(instance: Instance, config: ApiConfig, ready: Arc<AtomicBool>) -> Self {
        App {
            instance,
            config,
            ready,
            blocks: Rc::new(BlockCatalog::disabled()),
            compactor: None,
            uploads: None,
            drain: Arc::new(drain::Drain::default()),
            body_buf: RefCell::new(Vec::new()),
        }
    }

    /// Routes one request.
    pub async fn handle(self: Rc<Self>, req: Request<Incoming>) -> HttpResponse {
        let path = req.uri().path().to_owned();
        let api = path.strip_prefix("/prometheus").unwrap_or(&path);
        let result = match (req.method(), api) {
            (&Method::POST, "/api/v1/push" | "/api/v1/write") => push::handle(&self, req).await,
            (&Method::POST, "/api/v1/read") => read::handle(&self, req).await,
            (&Method::GET | &Method::POST, "/api/v1/series") => query::series(&self, req).await,
            (&Method::GET | &Method::POST, "/api/v1/labels") => query::labels(&self, req).await,
            (&Method::GET | &Method::POST, p)
                if p.starts_with("/api/v1/label/") && p.ends_with("/values") =>
            {
                let name = p["/api/v1/label/".len()..p.len() - "/values".len()].to_owned();
                query::label_values(&self, req, &name).await
            }
            (&Method::GET | &Method::POST, "/api/v1/query") => promql::query(&self, req).await,
            (&Method::GET | &Method::POST, "/api/v1/query_range") => {
                promql::query_range(&self, req).await
            }
            (&Method::GET | &Method::POST, "/api/v1/format_query") => {
                promql::format_query(&self, req).await
            }
            (&Method::GET | &Method::POST, "/api/v1/parse_query") => {
                promql::parse_query(&self, req).await
            }
            (&Method::GET, "/api/v1/status/buildinfo") => Ok(query::buildinfo()),
            (_, p) if p.starts_with(upload::PREFIX) => upload::handle(&self, req, p).await,
            (&Method::GET, "/ready") => Ok(self.readiness()),
            (&Method::GET | &Method::POST, "/ingester/flush") => self.flush(false).await,
            (&Method::GET | &Method::POST, "/ingester/shutdown") => self.flush(true).await,
            (&Method::GET, "/metrics") => self.metrics().await,
            (_, "/api/v1/push" | "/api/v1/write" | "/api/v1/read" | "/ready" | "/metrics") => {
                Err(ApiError::method_not_allowed(req.method()))
            }
            _ => Err(ApiError::not_found(&path)),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    /// The tenant of a request: `X-Scope-OrgID`, or `anonymous` when auth is disabled.
    pub fn tenant(&self, req: &Request<Incoming>) -> Result<TenantId, ApiError> {
        if !self.config.auth_enabled {
            return Ok(TenantId::anonymous());
        }
        let Some(v) = req.headers().get(ORG_ID_HEADER) else {
            return Err(ApiError::unauthorized(
                "no org id: the X-Scope-OrgID header is required (auth_enabled: true)",
            ));
        };
        let v = v
            .to_str()
            .map_err(|_| ApiError::tenant("X-Scope-OrgID is not valid ASCII"))?;
        TenantId::parse(v).map_err(|e| ApiError::tenant(&e.to_string()))
    }

    /// Takes the shard's reusable body buffer (give it back with [`App::give_body_buf`]).
    pub fn take_body_buf(&self) -> Vec<u8> {
        std::mem::take(&mut *self.body_buf.borrow_mut())
    }

    pub fn give_body_buf(&self, buf: Vec<u8>) {
        *self.body_buf.borrow_mut() = buf;
    }

    /// `/ingester/flush`: cuts every tenant's head into blocks now and ships them, as Cortex's
    /// ingester does; `/ingester/shutdown` (`stop`) then stops the process (SIGTERM to itself:
    /// the WAL is synced and the process exits).
    async fn flush(&self, stop: bool) -> Result<HttpResponse, ApiError> {
        let Some(c) = &self.compactor else {
            return Err(ApiError::internal("this process cuts no blocks"));
        };
        let blocks = c.compact(true).await.map_err(|e| ApiError::internal(&e))?;
        if stop {
            // SAFETY: kill(2) on our own pid; the main thread waits for SIGTERM in sigwait.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
        }
        Ok(text(
            StatusCode::OK,
            format!("flushed: {} blocks cut\n", blocks.len()),
        ))
    }

    fn readiness(&self) -> HttpResponse {
        if self.ready.load(Ordering::Acquire) {
            text(StatusCode::OK, "ready\n")
        } else {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: shards are starting\n",
            )
        }
    }

    async fn metrics(&self) -> Result<HttpResponse, ApiError> {
        self.instance
            .stats()
            .await
            .map_err(|e| ApiError::internal(&e.to_string()))?;
        let body = self.instance.metrics().encode();
        let mut r = Response::new(Full::new(Bytes::from(body)));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        Ok(r)
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A JSON response.
pub fn json(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
