//! [`MeteredStore`]: an [`ObjectStore`] decorator that counts every request in
//! [`crate::metrics::Metrics`] and, at debug level, logs one line per request.
//!
//! The line (target `s3mount::requests`) carries the operation, the key, the HTTP status of
//! the last attempt (or the error kind when no response came), the attempts, the body bytes and
//! the latency. It never carries a credential, a signature, a header or a URL: only what the
//! store API itself sees, plus two numbers taken from the SDK by [`SdkObserver`].
//!
//! Design note: the HTTP status and the attempt count are only known inside the SDK's
//! request pipeline. [`SdkObserver`] is an SDK interceptor (installed by `s3.rs`) that writes
//! them into a task-local [`Probe`] which `MeteredStore` puts in scope around each call; the
//! SDK runs its interceptors inside the future being polled, so the probe is the right one
//! even with many requests in flight. With another store (e.g. `MemStore`) the probe simply
//! stays empty.

use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use futures::Stream;
use tracing::debug;

use super::{
    BucketFact, ByteChunks, ListPage, ObjectMeta, ObjectStore, ObjectVersion, PutOptions,
    RestoreRequest, StoreError, VersionMarker, VersionPage,
};
use crate::metrics::{Metrics, Op};

/// Target of the per-request debug lines (`RUST_LOG=s3mount::requests=debug` selects them).
pub const REQUEST_LOG_TARGET: &str = "s3mount::requests";

/// What the SDK tells about one request: attempts made and the last HTTP status.
#[derive(Debug, Default)]
pub struct Probe {
    attempts: AtomicU32,
    status: AtomicU16,
}

impl Probe {
    fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    fn status(&self) -> Option<u16> {
        match self.status.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }
}

tokio::task_local! {
    static PROBE: Arc<Probe>;
}

/// SDK interceptor that fills the [`Probe`] of the request being sent (see the module docs).
#[derive(Debug, Default)]
pub struct SdkObserver;

impl Intercept for SdkObserver {
    fn name(&self) -> &'static str {
        "s3mount-request-observer"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let _ = PROBE.try_with(|p| p.attempts.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().status().as_u16();
        let _ = PROBE.try_with(|p| p.status.store(status, Ordering::Relaxed));
        Ok(())
    }
}

/// Counts and logs every request of the wrapped store.
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>, metrics: Arc<Metrics>) -> Self {
        MeteredStore { inner, metrics }
    }

    /// Runs one request with a probe in scope and records it. `sent` is the request body size;
    /// `received` tells the response body size from the result.
    async fn call<T>(
        &self,
        op: Op,
        (key, detail): (&str, String),
        sent: u64,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
        received: impl FnOnce(&T) -> u64,
    ) -> Result<T, StoreError> {
        let (result, probe, latency) = self.timed(op, fut).await;
        let bytes_in = result.as_ref().map(received).unwrap_or(0);
        self.metrics.add_bytes_in(op, bytes_in);
        if result.is_ok() {
            self.metrics.add_bytes_out(op, sent);
        }
        log_request(
            op,
            (key, &detail),
            &probe,
            result.as_ref().err(),
            bytes_in.max(sent),
            (latency, None),
        );
        result
    }

    /// Wraps a GET's `body` so that its bytes are counted and the request is logged when the
    /// body ends (or is dropped).
    fn metered_body(
        &self,
        inner: ByteChunks,
        probe: Arc<Probe>,
        key: &str,
        detail: String,
        started: Instant,
        latency: Duration,
    ) -> ByteChunks {
        Box::pin(MeteredBody {
            inner,
            metrics: self.metrics.clone(),
            probe,
            key: key.to_string(),
            detail,
            started,
            latency,
            bytes: 0,
            error: None,
            finished: false,
        })
    }

    async fn timed<T>(
        &self,
        op: Op,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> (Result<T, StoreError>, Arc<Probe>, Duration) {
        let probe = Arc::new(Probe::default());
        self.metrics.start(op);
        let start = Instant::now();
        let result = PROBE.scope(probe.clone(), fut).await;
        let latency = start.elapsed();
        self.metrics.finish(
            op,
            latency,
            probe.attempts().saturating_sub(1) as u64,
            // The metrics' error labels are `ErrorKind::LABELS`, indexed by kind.
            result.as_ref().err().map(|e| e.kind().index()),
        );
        (result, probe, latency)
    }
}

/// Logs one request: `(key, detail)`, and `(latency to headers, total time with the body)`.
fn log_request(
    op: Op,
    (key, detail): (&str, &str),
    probe: &Probe,
    error: Option<&StoreError>,
    bytes: u64,
    (latency, total): (Duration, Option<Duration>),
) {
    let status = match (probe.status(), error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => e.kind().label().to_string(),
        (None, None) => "ok".to_string(),
    };
    let latency_ms = latency.as_secs_f64() * 1e3;
    let attempts = probe.attempts().max(1);
    match (error, total) {
        (Some(e), _) => debug!(
            target: REQUEST_LOG_TARGET,
            "{} {key:?}{detail} status={status} error={} attempts={attempts} bytes={bytes} \
             latency={latency_ms:.1}ms: {e}",
            op.name(),
            e.kind().label(),
        ),
        (None, Some(total)) => debug!(
            target: REQUEST_LOG_TARGET,
            "{} {key:?}{detail} status={status} attempts={attempts} bytes={bytes} \
             latency={latency_ms:.1}ms total={:.1}ms",
            op.name(),
            total.as_secs_f64() * 1e3,
        ),
        (None, None) => debug!(
            target: REQUEST_LOG_TARGET,
            "{} {key:?}{detail} status={status} attempts={attempts} bytes={bytes} \
             latency={latency_ms:.1}ms",
            op.name(),
        ),
    }
}

/// Logs a GET that failed before its body, and returns its error.
fn failed_get(
    key: &str,
    detail: &str,
    probe: &Probe,
    e: StoreError,
    latency: Duration,
) -> StoreError {
    log_request(
        Op::GetObject,
        (key, detail),
        probe,
        Some(&e),
        0,
        (latency, None),
    );
    e
}

/// A GET body: counts bytes as they arrive and logs the request when the body ends (or is
/// dropped early).
struct MeteredBody {
    inner: ByteChunks,
    metrics: Arc<Metrics>,
    probe: Arc<Probe>,
    key: String,
    detail: String,
    started: Instant,
    latency: Duration,
    bytes: u64,
    error: Option<StoreError>,
    finished: bool,
}

impl Stream for MeteredBody {
    type Item = Result<Bytes, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = this.inner.as_mut().poll_next(cx);
        match &item {
            Poll::Ready(Some(Ok(chunk))) => {
                this.bytes += chunk.len() as u64;
                this.metrics.add_bytes_in(Op::GetObject, chunk.len() as u64);
            }
            Poll::Ready(Some(Err(e))) => this.error = Some(e.clone()),
            Poll::Ready(None) => this.finished = true,
            Poll::Pending => {}
        }
        item
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        let detail = if self.finished || self.error.is_some() {
            self.detail.clone()
        } else {
            format!("{} (body dropped before its end)", self.detail)
        };
        log_request(
            Op::GetObject,
            (&self.key, &detail),
            &self.probe,
            self.error.as_ref(),
            self.bytes,
            (self.latency, Some(self.started.elapsed())),
        );
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<ListPage, StoreError> {
        self.call(
            Op::ListObjectsV2,
            (prefix, String::new()),
            0,
            self.inner.list(prefix, delimiter, token, max_keys),
            |_| 0,
        )
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.call(
            Op::HeadObject,
            (key, String::new()),
            0,
            self.inner.head(key),
            |_| 0,
        )
        .await
    }

    async fn head_and_start(
        &self,
        key: &str,
        len: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let started = Instant::now();
        let detail = format!(" range=0-{} with headers", len.max(1) - 1);
        let (result, probe, latency) = self
            .timed(Op::GetObject, self.inner.head_and_start(key, len))
            .await;
        match result {
            Ok((meta, body)) => Ok((
                meta,
                self.metered_body(body, probe, key, detail, started, latency),
            )),
            Err(e) => Err(failed_get(key, &detail, &probe, e, latency)),
        }
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks, StoreError> {
        let started = Instant::now();
        let detail = format!(" range={}-{}", range.start, range.end.max(1) - 1);
        let (result, probe, latency) = self
            .timed(Op::GetObject, self.inner.get_range(key, range, if_match))
            .await;
        match result {
            Ok(body) => Ok(self.metered_body(body, probe, key, detail, started, latency)),
            Err(e) => Err(failed_get(key, &detail, &probe, e, latency)),
        }
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> Result<String, StoreError> {
        let sent = body.len() as u64;
        self.call(
            Op::PutObject,
            (key, String::new()),
            sent,
            self.inner.put(key, body, opts),
            |_| 0,
        )
        .await
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> Result<String, StoreError> {
        self.call(
            Op::CreateMultipartUpload,
            (key, String::new()),
            0,
            self.inner.create_multipart(key, opts),
            |_| 0,
        )
        .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let sent = body.len() as u64;
        let label = (key, format!(" part={part_number}"));
        self.call(
            Op::UploadPart,
            label,
            sent,
            self.inner.upload_part(key, upload_id, part_number, body),
            |_| 0,
        )
        .await
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src_key: &str,
        src_etag: &str,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        let label = format!(
            " part={part_number} from={src_key:?} range={}-{}",
            range.start,
            range.end.max(1) - 1
        );
        let label = (key, label);
        self.call(
            Op::UploadPartCopy,
            label,
            0,
            self.inner
                .upload_part_copy(key, upload_id, part_number, src_key, src_etag, range),
            |_| 0,
        )
        .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<String, StoreError> {
        let label = (key, format!(" parts={}", parts.len()));
        self.call(
            Op::CompleteMultipartUpload,
            label,
            0,
            self.inner.complete_multipart(key, upload_id, parts),
            |_| 0,
        )
        .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.call(
            Op::AbortMultipartUpload,
            (key, String::new()),
            0,
            self.inner.abort_multipart(key, upload_id),
            |_| 0,
        )
        .await
    }

    async fn copy(
        &self,
        src_key: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        let label = (dst_key, format!(" from={src_key:?}"));
        self.call(
            Op::CopyObject,
            label,
            0,
            self.inner.copy(src_key, dst_key, replace),
            |_| 0,
        )
        .await
    }

    async fn copy_if_match(
        &self,
        src_key: &str,
        src_etag: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        let label = (dst_key, format!(" from={src_key:?} if-match"));
        let copy = self
            .inner
            .copy_if_match(src_key, src_etag, dst_key, replace);
        self.call(Op::CopyObject, label, 0, copy, |_| 0).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call(
            Op::DeleteObject,
            (key, String::new()),
            0,
            self.inner.delete(key),
            |_| 0,
        )
        .await
    }

    async fn get_tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.call(
            Op::GetObjectTagging,
            (key, String::new()),
            0,
            self.inner.get_tags(key),
            |_| 0,
        )
        .await
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> Result<(), StoreError> {
        self.call(
            Op::PutObjectTagging,
            (key, String::new()),
            0,
            self.inner.put_tags(key, tags),
            |_| 0,
        )
        .await
    }

    async fn presign_get(&self, key: &str, version_id: Option<&str>) -> Result<String, StoreError> {
        // Signed locally: no request to count.
        self.inner.presign_get(key, version_id).await
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        let label = (key, String::new());
        let fut = self.inner.list_versions(key);
        self.call(Op::ListObjectVersions, label, 0, fut, |_| 0)
            .await
    }

    async fn list_versions_page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<VersionMarker>,
    ) -> Result<VersionPage, StoreError> {
        let label = (prefix, String::new());
        let fut = self.inner.list_versions_page(prefix, delimiter, marker);
        self.call(Op::ListObjectVersions, label, 0, fut, |_| 0)
            .await
    }

    async fn head_version(&self, key: &str, version_id: &str) -> Result<ObjectMeta, StoreError> {
        let label = (key, format!(" version={version_id:?}"));
        let fut = self.inner.head_version(key, version_id);
        self.call(Op::HeadObject, label, 0, fut, |_| 0).await
    }

    async fn get_version(
        &self,
        key: &str,
        version_id: &str,
        range: Range<u64>,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let started = Instant::now();
        let detail = format!(
            " version={version_id:?} range={}-{}",
            range.start,
            range.end.max(1) - 1
        );
        let (result, probe, latency) = self
            .timed(
                Op::GetObject,
                self.inner.get_version(key, version_id, range),
            )
            .await;
        match result {
            Ok((meta, body)) => Ok((
                meta,
                self.metered_body(body, probe, key, detail, started, latency),
            )),
            Err(e) => Err(failed_get(key, &detail, &probe, e, latency)),
        }
    }

    async fn get_version_tags(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let label = (key, format!(" version={version_id:?}"));
        let fut = self.inner.get_version_tags(key, version_id);
        self.call(Op::GetObjectTagging, label, 0, fut, |_| 0).await
    }

    async fn copy_version(&self, key: &str, version_id: &str) -> Result<String, StoreError> {
        let label = (key, format!(" version={version_id:?}"));
        let fut = self.inner.copy_version(key, version_id);
        self.call(Op::CopyObject, label, 0, fut, |_| 0).await
    }

    async fn restore(&self, key: &str, req: &RestoreRequest) -> Result<(), StoreError> {
        let label = (key, format!(" days={}", req.days));
        let fut = self.inner.restore(key, req);
        self.call(Op::RestoreObject, label, 0, fut, |_| 0).await
    }

    async fn restore_status(&self, key: &str) -> Result<Option<String>, StoreError> {
        let fut = self.inner.restore_status(key);
        self.call(Op::HeadObject, (key, String::new()), 0, fut, |_| 0)
            .await
    }

    async fn bucket_fact(&self, fact: &BucketFact) -> Result<Option<String>, StoreError> {
        let label = ("", format!(" {fact:?}"));
        let fut = self.inner.bucket_fact(fact);
        self.call(Op::GetBucketConfiguration, label, 0, fut, |_| 0)
            .await
    }

    async fn bucket_fact_at(
        &self,
        key: &str,
        fact: &BucketFact,
    ) -> Result<Option<String>, StoreError> {
        let label = (key, format!(" {fact:?}"));
        let fut = self.inner.bucket_fact_at(key, fact);
        self.call(Op::GetBucketConfiguration, label, 0, fut, |_| 0)
            .await
    }

    async fn retry_pending(&self) {
        self.inner.retry_pending().await
    }

    async fn check_access(&self) -> Result<(), StoreError> {
        self.call(
            Op::ListObjectsV2,
            ("", String::new()),
            0,
            self.inner.check_access(),
            |_| 0,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemStore;
    use crate::storage::ErrorKind;
    use futures::StreamExt;

    #[tokio::test]
    async fn counts_requests_bytes_and_errors() {
        let metrics = Arc::new(Metrics::new(&ErrorKind::LABELS));
        let mem: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
        let store = MeteredStore::new(mem, metrics.clone());
        store
            .put("a", Bytes::from_static(b"hello"), &PutOptions::default())
            .await
            .unwrap();
        let mut body = store.get_range("a", 0..5, None).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = body.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        drop(body);
        assert_eq!(got, b"hello");
        assert!(matches!(
            store.head("missing").await,
            Err(e) if e.is_not_found()
        ));
        let snap = metrics.snapshot();
        assert_eq!(snap.op(Op::PutObject).requests, 1);
        assert_eq!(snap.op(Op::PutObject).bytes_out, 5);
        assert_eq!(snap.op(Op::GetObject).requests, 1);
        assert_eq!(snap.op(Op::GetObject).bytes_in, 5);
        assert_eq!(snap.op(Op::HeadObject).error_total(), 1);
        assert_eq!(
            snap.op(Op::HeadObject).errors[ErrorKind::NotFound.index()],
            1
        );
        assert_eq!(snap.error_labels[ErrorKind::NotFound.index()], "not_found");
        assert_eq!(snap.op(Op::HeadObject).in_flight, 0);
    }
}
