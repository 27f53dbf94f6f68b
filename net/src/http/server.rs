//! Accept loop and per-connection service.

use std::convert::Infallible;
use std::rc::Rc;

use cyper_core::{CompioTimer, HyperStream};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tracing::{debug, warn};

use crate::api::App;

/// Serves HTTP on `listener` until it fails; one task per connection on this shard's executor.
pub async fn serve(listener: std::net::TcpListener, app: Rc<App>) {
    let listener = match compio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot register listener with the executor");
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the open connections.
                warn!(error = %e, "accept failed");
                compio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        compio::runtime::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let app = app.clone();
                async move { Ok::<Response<Full<Bytes>>, Infallible>(app.handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(CompioTimer)
                .keep_alive(true)
                .serve_connection(HyperStream::new_plain(stream), service);
            if let Err(e) = conn.await {
                // A client closing between requests shows up as an incomplete message.
                if !e.is_incomplete_message() {
                    debug!(error = %e, "connection ended with an error");
                }
            }
        })
        .detach();
    }
}
