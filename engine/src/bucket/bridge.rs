//! The bridge between strata's executors and the tokio runtime that `object_store` needs.
//!
//! One current-thread tokio runtime per process, on its own thread (`bucket-io`), started by the
//! first [`Bridge::get`] and never stopped. A call builds its future on the caller's thread,
//! spawns it on that runtime through the runtime's handle (a channel into the runtime's queue;
//! it never blocks) and awaits the answer on a `futures_channel::oneshot`, which any executor can
//! poll. Dropping the waiting future aborts the tokio task.
//!
//! tokio runs only object store I/O and the local file reads done for uploads (on its blocking
//! pool, at most [`MAX_BLOCKING_THREADS`] threads), never the data path.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use futures_channel::oneshot;
use tokio::runtime::Handle;

use super::{BucketError, Result};

/// Threads for blocking file work (reads of block files, shipper state, local file stores).
const MAX_BLOCKING_THREADS: usize = 8;

/// The process's bridge runtime; `Err` holds why it could not start.
static RUNTIME: OnceLock<std::result::Result<Handle, String>> = OnceLock::new();

/// A handle on the bridge runtime.
#[derive(Clone, Debug)]
pub(crate) struct Bridge {
    handle: Handle,
}

impl Bridge {
    /// The bridge, started on first use.
    pub(crate) fn get() -> Result<Bridge> {
        RUNTIME
            .get_or_init(start)
            .clone()
            .map(|handle| Bridge { handle })
            .map_err(BucketError::Runtime)
    }

    /// Runs `fut` on the bridge runtime; the returned future resolves to its output. `fut` is
    /// created on the caller's thread, outside any tokio context: wrap calls that need one
    /// (timers, `spawn_blocking`, object store calls) in an `async move` block.
    pub(crate) fn run<F>(&self, fut: F) -> Call<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let task = self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        Call {
            rx,
            abort: Some(task.abort_handle()),
        }
    }

    /// Runs blocking `f` on the bridge's blocking pool.
    pub(crate) fn blocking<F, T>(&self, f: F) -> Call<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        // A blocking task cannot be aborted once it runs; there is nothing to keep.
        drop(self.handle.spawn_blocking(move || {
            let _ = tx.send(f());
        }));
        Call { rx, abort: None }
    }
}

/// Builds the runtime and starts the thread that drives it.
fn start() -> std::result::Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("bucket-io-blocking")
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .map_err(|e| format!("cannot build the bucket runtime: {e}"))?;
    let handle = runtime.handle().clone();
    // The one thread outside engine::rt: tokio's runtime for object_store, never the data path.
    std::thread::Builder::new()
        .name("bucket-io".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the bucket runtime thread: {e}"))?;
    Ok(handle)
}

/// The answer to a call made through the [`Bridge`].
#[must_use = "a call does nothing useful unless awaited"]
pub(crate) struct Call<T> {
    rx: oneshot::Receiver<T>,
    abort: Option<tokio::task::AbortHandle>,
}

impl<T> Future for Call<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|answer| {
            answer.map_err(|_| {
                BucketError::Runtime("the call ended without an answer (it panicked)".into())
            })
        })
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}
