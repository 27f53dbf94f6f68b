//! Reading request bodies with a size limit, into reusable buffers.

use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body too large: more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("error reading request body: {0}")]
    Read(#[from] hyper::Error),
}

/// Appends the body to `out` (which is cleared first), refusing more than `limit` bytes.
pub async fn read_limited(
    body: Incoming,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), BodyError> {
    out.clear();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            out.extend_from_slice(data);
        }
    }
    Ok(())
}
