//! Metrics: what the mount asked of S3 and how it went, kept in atomics and shown two ways.
//!
//! * `--log-metrics[=SECONDS]` logs a summary of each interval ([`summary`]).
//! * `--metrics-addr 127.0.0.1:PORT` serves the totals in the Prometheus text format
//!   (`GET /metrics`) from a tiny HTTP/1.0 responder on the tokio runtime ([`server`], which
//!   renders with [`exposition`]).
//!
//! Design note: recording is a handful of relaxed atomic adds per S3 request, so it is always
//! on ([`crate::storage::metered::MeteredStore`] feeds it); [`registry`] holds the counters
//! and the latency histogram. This module depends on nothing of the storage layer: the error
//! kinds are handed in as labels when [`Metrics`] is made (the storage layer's
//! `ErrorKind::LABELS`). The block-cache counters live in the cache itself and are read
//! through a callback at snapshot time. The two background tasks (server and periodic log)
//! run under a [`Background`], whose [`Background::shutdown`] stops them and waits for them.

pub mod exposition;
pub mod registry;
pub mod server;
pub mod summary;

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub use exposition::render_prometheus;
pub use registry::{HistSnapshot, Metrics, Op, OpSnapshot, Snapshot};
pub use server::{bind, serve};
pub use summary::{log_periodically, summary_lines};

/// Background tasks that share one shutdown signal.
#[derive(Debug)]
pub struct Background {
    runtime: Handle,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// How long [`Background::shutdown`] waits for the tasks before leaving them to the runtime.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

impl Background {
    /// No tasks yet; they will run on `runtime`.
    pub fn new(runtime: Handle) -> Self {
        Background {
            runtime,
            shutdown: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// Spawns the future `task` makes from the shutdown signal; the future must end soon
    /// after the signal is cancelled.
    pub fn spawn<F>(&mut self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let future = task(self.shutdown.clone());
        self.tasks.push(self.runtime.spawn(future));
    }

    /// Signals every task to stop and waits for them (a few seconds at most).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let all = futures::future::join_all(self.tasks);
        match tokio::time::timeout(SHUTDOWN_WAIT, all).await {
            Ok(results) => {
                for e in results.into_iter().filter_map(Result::err) {
                    warn!("a background task failed: {e}");
                }
            }
            Err(_) => warn!("background tasks did not stop in {SHUTDOWN_WAIT:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn shutdown_stops_and_awaits_the_tasks() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut background = Background::new(runtime.handle().clone());
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        background.spawn(|shutdown| async move {
            shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
        });
        let metrics = Arc::new(Metrics::new(&[]));
        background.spawn(|shutdown| log_periodically(metrics, Duration::from_secs(60), shutdown));
        assert!(!stopped.load(Ordering::SeqCst));
        runtime.block_on(background.shutdown());
        assert!(
            stopped.load(Ordering::SeqCst),
            "shutdown returned before the task ended"
        );
    }
}
