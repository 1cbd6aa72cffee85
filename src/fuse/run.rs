//! How a FUSE handler runs: its core call and its reply in one future, polled once on the
//! session thread and continued on the runtime if it has to wait; errors and panics become
//! errnos, logged once.

use std::future::Future;
use std::sync::Arc;

use fuser::{
    Errno, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, ReplyXattr,
};
use futures::FutureExt;
use tracing::{debug, warn, Instrument};

use super::FuseAdapter;
use crate::error::{FsError, FsResult};
use crate::fs::S3Fs;

/// Where a handler's future is first polled (see [`FuseAdapter::run`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Poll {
    /// On the session thread, then on the runtime if it has to wait.
    HereFirst,
    /// On the runtime from the start.
    OnRuntime,
}

impl FuseAdapter {
    /// Runs `work`, whose result `done` sends as the reply; errors and panics become errnos.
    /// [`Poll::HereFirst`] polls it once on this session thread (a table or block-cache hit
    /// replies at once) and on the runtime only if it has to wait; [`Poll::OnRuntime`] runs
    /// it on the runtime from the start, for requests that change things: they do staging
    /// I/O or S3 requests, which must not hold up the session threads.
    pub(super) fn run<T, F, Fut, R, D>(
        &self,
        mode: Poll,
        op: &'static str,
        work: F,
        reply: R,
        done: D,
    ) where
        F: FnOnce(Arc<S3Fs>) -> Fut + Send + 'static,
        D: FnOnce(R, T) + Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
        T: Send + 'static,
        R: ErrorReply + Send + 'static,
    {
        let fs = self.fs.clone();
        let span = tracing::debug_span!("fuse", op);
        let mut handler = Box::pin(
            async move {
                let result = std::panic::AssertUnwindSafe(work(fs)).catch_unwind().await;
                match result {
                    Ok(Ok(value)) => {
                        let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            done(reply, value)
                        }));
                        if sent.is_err() {
                            // The reply, dropped unsent, answers EIO by itself.
                            warn!(op, "reply panicked");
                        }
                    }
                    Ok(Err(err)) => {
                        log_error(op, &err);
                        reply.fail(err.errno);
                    }
                    Err(_) => {
                        warn!(op, "handler panicked; answering EIO");
                        reply.fail(libc::EIO);
                    }
                }
            }
            .instrument(span),
        );
        // First poll here, on the FUSE thread: a handler that needs no I/O (a lookup or
        // getattr the inode table answers, an open, a read from the block cache, a release)
        // replies at once, without a hand-off to a runtime thread and back, which costs more
        // than the work itself. A handler that has to wait continues as a task on the
        // runtime; its next poll registers the task's waker (every future re-registers the
        // waker of its latest poll).
        let finished = mode == Poll::HereFirst && {
            let _runtime = self.rt.enter();
            let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
            handler.as_mut().poll(&mut cx).is_ready()
        };
        if !finished {
            self.rt.spawn(handler);
        }
    }
}

pub(super) fn log_error(op: &str, err: &FsError) {
    match err.errno {
        libc::ENOENT | libc::ENODATA | libc::EEXIST | libc::ENOTEMPTY => {
            debug!(op, "{err}")
        }
        // The kernel copies the bytes itself then: a normal answer.
        libc::EOPNOTSUPP if op == "copy_file_range" => debug!(op, "{err}"),
        _ => warn!(op, "{err}"),
    }
}

/// Replies that can carry an errno.
pub(super) trait ErrorReply {
    fn fail(self, errno: i32);
}

macro_rules! error_reply {
    ($($t:ty),*) => {$(
        impl ErrorReply for $t {
            fn fail(self, errno: i32) {
                self.error(Errno::from_i32(errno));
            }
        }
    )*};
}
error_reply!(
    ReplyEntry,
    ReplyAttr,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyOpen,
    ReplyWrite,
    ReplyXattr,
    ReplyCreate
);

/// Answers a getxattr/listxattr as xattr(7) expects: the size for a size-0 query, ERANGE when
/// the caller's buffer is too small, else the bytes.
pub(super) fn reply_xattr(size: u32, reply: ReplyXattr, value: Vec<u8>) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(&value);
    }
}
