//! The thread-per-core runtime: one compio executor per shard, each on its own thread pinned to a
//! core, each accepting connections on the same port (`SO_REUSEPORT`), and bounded queues between
//! shards.
//!
//! Invariants:
//! - this module is the only place that creates threads;
//! - a shard's state never leaves its thread; shards talk only through [`Mesh`] messages;
//! - every queue is bounded: a sender that finds the owner's queue full waits (backpressure),
//!   it never grows the queue.
//!
//! The executor prefers io_uring and falls back to epoll (compio's `polling` driver) where
//! io_uring is unavailable (for instance under a default container seccomp profile);
//! [`Driver::Polling`] forces the fallback.

#![allow(clippy::disallowed_methods)] // the one place that spawns threads

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;

use compio::driver::{DriverType, ProactorBuilder};
use socket2::{Domain, Protocol, Socket, Type};

/// Which I/O driver the shards use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Driver {
    /// io_uring when the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    /// Always epoll (the fallback), for tests and restricted environments.
    Polling,
}

/// How to start the shards.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Number of shards; 0 means one per available core.
    pub shards: usize,
    pub driver: Driver,
    /// Pin shard `i` to the `i`-th available core.
    pub pin: bool,
    /// Capacity of each shard's inbox.
    pub queue_capacity: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            shards: 0,
            driver: Driver::Auto,
            pin: true,
            queue_capacity: 1024,
        }
    }
}

/// A shard's view of all shards: its id and a bounded sender to every shard's inbox.
pub struct Mesh<M> {
    id: usize,
    senders: Arc<[async_channel::Sender<M>]>,
}

impl<M> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        Mesh {
            id: self.id,
            senders: self.senders.clone(),
        }
    }
}

/// The shard a message was sent to has stopped.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("shard {0} has stopped")]
pub struct ShardStopped(pub usize);

impl<M> Mesh<M> {
    /// This shard's id, `0..shards()`.
    pub fn id(&self) -> usize {
        self.id
    }

    pub fn shards(&self) -> usize {
        self.senders.len()
    }

    /// Sends `msg` to shard `to`, waiting while its inbox is full.
    /// Sends from a thread that is not a shard (the main thread, at shutdown), blocking it.
    pub fn send_blocking(&self, to: usize, msg: M) -> Result<(), ShardStopped> {
        self.senders[to]
            .send_blocking(msg)
            .map_err(|_| ShardStopped(to))
    }

    pub async fn send(&self, to: usize, msg: M) -> Result<(), ShardStopped> {
        self.senders[to]
            .send(msg)
            .await
            .map_err(|_| ShardStopped(to))
    }
}

/// What a shard's main future is given.
pub struct ShardEnv<M> {
    pub mesh: Mesh<M>,
    /// This shard's inbox.
    pub inbox: async_channel::Receiver<M>,
    /// This shard's listener, bound with `SO_REUSEPORT` to the shared address.
    pub listener: TcpListener,
    /// The driver the executor actually uses.
    pub driver: DriverType,
}

/// A shard's main future. It runs on the shard's own executor and need not be `Send`.
pub type ShardMain = Pin<Box<dyn Future<Output = ()>>>;

/// The running shards.
pub struct Runtime {
    threads: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Runtime {
    /// How many shards run.
    pub fn shards(&self) -> usize {
        self.threads.len()
    }
}

impl Runtime {
    /// Binds `addr` once per shard and starts the shards; `main` builds each shard's future on
    /// its own thread.
    pub fn start<M, F>(opts: &RuntimeOptions, addr: SocketAddr, main: F) -> io::Result<Runtime>
    where
        M: Send + 'static,
        F: Fn(ShardEnv<M>) -> ShardMain + Send + Sync + 'static,
    {
        let cores = available_cores();
        let shards = if opts.shards == 0 {
            cores.len().max(1)
        } else {
            opts.shards
        };
        let listeners = bind_shared(addr, shards)?;
        let addr = listeners[0].local_addr()?;
        let (senders, inboxes): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| async_channel::bounded(opts.queue_capacity.max(1)))
            .unzip();
        let senders: Arc<[async_channel::Sender<M>]> = senders.into();
        let main = Arc::new(main);
        let mut threads = Vec::with_capacity(shards);
        for (id, (inbox, listener)) in inboxes.into_iter().zip(listeners).enumerate() {
            let mesh = Mesh {
                id,
                senders: senders.clone(),
            };
            let main = main.clone();
            let core = if opts.pin && !cores.is_empty() {
                Some(cores[id % cores.len()])
            } else {
                None
            };
            let driver = opts.driver;
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
            let thread = std::thread::Builder::new()
                .name(format!("shard-{id}"))
                .spawn(move || {
                    let rt = match build_executor(driver, core) {
                        Ok(rt) => {
                            let _ = ready_tx.send(Ok(()));
                            rt
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let env = ShardEnv {
                        mesh,
                        inbox,
                        listener,
                        driver: rt.driver_type(),
                    };
                    rt.block_on(main(env));
                })?;
            ready_rx
                .recv()
                .map_err(|_| io::Error::other("shard thread died while starting"))??;
            threads.push(thread);
        }
        Ok(Runtime { threads, addr })
    }

    /// The address every shard listens on (with the port resolved when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for every shard's main future to end.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Runs `f` on a thread of its own and awaits its result from a shard without blocking it: for
/// rare, long, blocking work (writing a block with `std::fs`), never per request.
pub async fn run_blocking<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| io::Error::other(format!("{name}: the thread panicked")))
}

/// Lets the shard's other tasks run before the caller goes on: for long loops of work on a shard
/// (a checkpoint's encoding) that would otherwise hold the thread between two awaits.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// An executor like a shard's (unpinned), for tests of code that runs on shards.
#[doc(hidden)]
pub fn build_executor_for_tests(driver: Driver) -> io::Result<compio::runtime::Runtime> {
    build_executor(driver, None)
}

fn build_executor(driver: Driver, core: Option<usize>) -> io::Result<compio::runtime::Runtime> {
    let mut proactor = ProactorBuilder::new();
    if driver == Driver::Polling {
        proactor.driver_type(DriverType::Poll);
    }
    let mut builder = compio::runtime::RuntimeBuilder::new();
    builder.with_proactor(proactor);
    if let Some(core) = core {
        builder.thread_affinity(HashSet::from([core]));
    }
    builder.build()
}

/// The cores this process may run on.
fn available_cores() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, usize::from)).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// How long a start waits for its port while the port is in use: a process that just exited
/// on it can hold its listeners for a moment longer while its threads are torn down (seen here
/// when a restart followed an exit within a few milliseconds).
const BIND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Binds `addr` alone and returns the address bound (port 0 resolved), retrying for
/// [`BIND_PATIENCE`] while the port is in use.
fn probe_bind(addr: SocketAddr) -> io::Result<SocketAddr> {
    let deadline = std::time::Instant::now() + BIND_PATIENCE;
    loop {
        match TcpListener::bind(addr) {
            Ok(probe) => return probe.local_addr(),
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline =>
            {
                // The main thread, before any shard runs.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Binds `shards` listeners to one address with `SO_REUSEPORT`, so the kernel spreads incoming
/// connections over the shards. The address is first bound without `SO_REUSEPORT`, which fails if
/// another process already holds the port (with or without `SO_REUSEPORT`); port 0 is resolved by
/// the first listener and reused by the others.
fn bind_shared(addr: SocketAddr, shards: usize) -> io::Result<Vec<TcpListener>> {
    let addr = probe_bind(addr)?;
    let mut out = Vec::with_capacity(shards);
    for _ in 0..shards {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        out.push(socket.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_exchange_messages_on_both_drivers() {
        for driver in [Driver::Auto, Driver::Polling] {
            let opts = RuntimeOptions {
                shards: 2,
                driver,
                pin: false,
                queue_capacity: 1,
            };
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let rt = Runtime::start::<(usize, u64), _>(
                &opts,
                "127.0.0.1:0".parse().unwrap(),
                move |env| {
                    let done = done_tx.clone();
                    Box::pin(async move {
                        let other = 1 - env.mesh.id();
                        // More messages than the inbox holds: the sender must wait, not fail.
                        for i in 0..100 {
                            env.mesh.send(other, (env.mesh.id(), i)).await.unwrap();
                            let (from, n) = env.inbox.recv().await.unwrap();
                            assert_eq!((from, n), (other, i));
                        }
                        done.send((env.mesh.id(), env.driver)).unwrap();
                    })
                },
            )
            .unwrap();
            assert_ne!(rt.addr().port(), 0);
            let mut seen = [done_rx.recv().unwrap(), done_rx.recv().unwrap()];
            seen.sort_by_key(|s| s.0);
            if driver == Driver::Polling {
                assert!(seen.iter().all(|s| s.1 == DriverType::Poll));
            }
            rt.join();
        }
    }
}
