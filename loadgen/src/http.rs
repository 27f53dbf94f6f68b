//! The blocking HTTP client both modes share: one keep-alive connection per thread, non-2xx
//! statuses returned as values (the caller counts them), never as errors.

use std::time::Duration;

use ureq::Agent;
use ureq::http::HeaderName;

use crate::Error;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("strata-loadgen/", env!("CARGO_PKG_VERSION"));

/// Largest response body read (remote-read answers for one host are far smaller).
const MAX_BODY: u64 = 1 << 30;

/// A status and the whole response body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text for an error message, cut to `max` bytes.
    pub fn body_text(&self, max: usize) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(max)]);
        text.trim().to_owned()
    }
}

/// A client for one thread.
#[derive(Clone, Debug)]
pub struct Client {
    agent: Agent,
    tenant_header: Option<HeaderName>,
}

impl Client {
    /// `tenant_header`: the header carrying the tenant id, or `None` to send no tenant.
    pub fn new(timeout: Duration, tenant_header: Option<&str>) -> Result<Self, Error> {
        let tenant_header = tenant_header
            .map(|h| {
                HeaderName::from_bytes(h.as_bytes())
                    .map_err(|e| Error::Invalid(format!("--tenant-header {h:?}: {e}")))
            })
            .transpose()?;
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_global(Some(timeout))
            .no_delay(true)
            .build()
            .into();
        Ok(Self {
            agent,
            tenant_header,
        })
    }

    /// POSTs `body` with `headers`, as `tenant` when a tenant header is configured.
    pub fn post(
        &self,
        url: &str,
        tenant: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ureq::Error> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(name) = &self.tenant_header {
            request = request.header(name, tenant);
        }
        let mut response = request.send(body)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()?;
        Ok(Reply { status, body })
    }
}
