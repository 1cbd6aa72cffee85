//! The shared tier: blocks kept as objects in a second bucket (`--cache-xz BUCKET`), so that
//! every machine reading the same data fetches each block from the source bucket once.
//!
//! Design note:
//! * **Objects.** Block `index` of version `etag` of `key` is the object
//!   `s3mount-blocks/v1/<h>`, where `<h>` is 32 hex digits: the CRC-64/NVME and the
//!   CRC-64/ECMA-182 of the block's identity — the source (endpoint as given to
//!   `--endpoint-url`, or `aws`; bucket; block size), the key, the ETag and the block index
//!   ([`block_file::identity`]). Machines share blocks when they name the source alike.
//! * **Format.** An object is a block file ([`block_file`]): magic, lengths, a CRC32C of
//!   identity and data, the identity (which holds the source ETag and the block index), then
//!   the data. Every read checks all of it; an object that fails is never served: the block
//!   comes from the source and is written again, which repairs the object.
//! * **Reads.** One ranged GET of exactly the expected object size, under [`GET_LIMIT`]. A
//!   missing object is a miss; any other failure (unreachable, 403, 5xx, no answer in time)
//!   is a miss too, logged once at `warn` (then at `debug`) until the tier answers again.
//! * **Back-off.** After [`FAILURES_BEFORE_PAUSE`] failures in a row the tier is skipped
//!   (reads go straight to the source, offers are dropped) for a pause that starts at
//!   [`FIRST_PAUSE`] and doubles up to [`MAX_PAUSE`]; then one request tries it again. So a
//!   dead tier costs a few slow reads, not one per block.
//! * **Writes.** Off the reader's path: `offer` puts the block on a bounded queue
//!   ([`QUEUE_BLOCKS`]) and returns; a task PUTs up to [`PUTS_IN_FLIGHT`] at a time. A full
//!   queue drops the block (counted as skipped). [`SharedCache::flush_and_stop`] writes what
//!   is queued before unmounting, within a limit.
//! * The tier never says what it holds without asking the bucket; [`BlockTier::contains`]
//!   answers "worth asking" while the tier is not paused, so that opening a file whose first
//!   block the tier may hold costs a HEAD of the source rather than a GET.

#[cfg(test)]
mod tests;

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use crc_fast::CrcAlgorithm;
use futures::channel::mpsc;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::cache::BlockKey;
use super::disk_cache::block_file::{self, BlockFileError, HEADER_LEN};
use super::tier::{BlockTier, TierCounters, TierStats};
use crate::storage::{ErrorKind, ObjectStore, PutOptions, StoreError};

/// The prefix of every object the tier writes.
pub const OBJECT_PREFIX: &str = "s3mount-blocks/v1/";
/// Blocks waiting to be written; beyond this, offers are dropped (16 blocks of 256 KiB: at
/// most 4 MiB of memory).
pub const QUEUE_BLOCKS: usize = 16;
/// PUTs to the shared bucket at once.
pub const PUTS_IN_FLIGHT: usize = 4;
/// How long a read of the tier may take before it counts as a failure (and a miss).
pub const GET_LIMIT: Duration = Duration::from_secs(5);
/// How long a write may take.
pub const PUT_LIMIT: Duration = Duration::from_secs(30);
/// Failures in a row after which the tier is paused.
pub const FAILURES_BEFORE_PAUSE: u32 = 3;
/// The first pause; each further failure doubles it, up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_secs(1);
pub const MAX_PAUSE: Duration = Duration::from_secs(30);

/// How to use the shared bucket.
#[derive(Clone, Debug)]
pub struct SharedCacheConfig {
    /// The bucket (`--cache-xz`), for logs.
    pub bucket: String,
    /// Identifies the source (endpoint, bucket, block size) in every block's identity.
    pub source: String,
}

/// The shared tier.
pub struct SharedCache {
    inner: Arc<Inner>,
    queue: Mutex<Option<mpsc::Sender<(BlockKey, Bytes)>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("bucket", &self.inner.bucket)
            .finish()
    }
}

/// State shared by readers and the writer task.
struct Inner {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    source: String,
    counters: TierCounters,
    health: Health,
}

impl SharedCache {
    /// The tier over `store` (a store of the shared bucket). Starts the writer task, so it
    /// must be called inside a tokio runtime.
    pub fn new(store: Arc<dyn ObjectStore>, config: &SharedCacheConfig) -> Arc<SharedCache> {
        let inner = Arc::new(Inner {
            store,
            bucket: config.bucket.clone(),
            source: config.source.clone(),
            counters: TierCounters::default(),
            health: Health::default(),
        });
        // The channel holds QUEUE_BLOCKS plus one per sender (there is one).
        let (tx, rx) = mpsc::channel::<(BlockKey, Bytes)>(QUEUE_BLOCKS - 1);
        let worker = inner.clone();
        let writer = tokio::spawn(async move {
            rx.for_each_concurrent(PUTS_IN_FLIGHT, |(key, data)| {
                let worker = worker.clone();
                async move { worker.write(&key, data).await }
            })
            .await;
        });
        Arc::new(SharedCache {
            inner,
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The name of the object holding `key`.
    pub fn object_name(&self, key: &BlockKey) -> String {
        self.inner.object(key).1
    }

    /// Writes what is queued (within `limit`), then stops the writer; later offers are
    /// dropped.
    pub async fn flush_and_stop(&self, limit: Duration) {
        drop(self.queue.lock().unwrap().take());
        let writer = self.writer.lock().unwrap().take();
        if let Some(mut writer) = writer {
            if tokio::time::timeout(limit, &mut writer).await.is_err() {
                writer.abort();
                warn!(
                    bucket = %self.inner.bucket,
                    "shared cache: blocks still queued after {} s were not written",
                    limit.as_secs()
                );
            }
        }
    }
}

impl Inner {
    /// The identity of `key` and the name of its object.
    fn object(&self, key: &BlockKey) -> (Vec<u8>, String) {
        let id = block_file::identity(&self.source, &key.key, &key.etag, key.index);
        let a = crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &id);
        let b = crc_fast::checksum(CrcAlgorithm::Crc64Ecma182, &id);
        (id, format!("{OBJECT_PREFIX}{a:016x}{b:016x}"))
    }

    /// The first `len` bytes of object `name`.
    async fn fetch(&self, name: &str, len: u64) -> Result<Bytes, StoreError> {
        let mut chunks = self.store.get_range(name, 0..len, None).await?;
        let mut buf = BytesMut::with_capacity(len as usize);
        while let Some(chunk) = chunks.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    /// Reads and checks the object of `key`; `None` for anything that is not a sound copy.
    async fn read(&self, key: &BlockKey, len: u64) -> Option<Bytes> {
        let (identity, name) = self.object(key);
        let size = (HEADER_LEN + identity.len()) as u64 + len;
        let body = match tokio::time::timeout(GET_LIMIT, self.fetch(&name, size)).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) if e.kind() == ErrorKind::NotFound => {
                self.health.answered(&self.bucket);
                return None;
            }
            Ok(Err(e)) => {
                self.health.failed(&self.bucket, "a read", &e);
                return None;
            }
            Err(_) => {
                let why = format!("no answer within {} s", GET_LIMIT.as_secs());
                self.health.failed(&self.bucket, "a read", &why);
                return None;
            }
        };
        self.health.answered(&self.bucket);
        match block_file::verify(&body, &identity, len) {
            Ok(start) => Some(body.slice(start..)),
            Err(BlockFileError::OtherBlock) => None,
            Err(e) => {
                TierCounters::bump(&self.counters.checksum_failures);
                let first = !self.health.corrupt_logged.swap(true, Ordering::Relaxed);
                let line = "shared cache: a damaged object was not served; the block comes \
                            from the source and is written again";
                if first {
                    warn!(bucket = %self.bucket, object = %name, key = %key.key,
                          block = key.index, "{line} ({e}); further ones are logged at debug level");
                } else {
                    debug!(bucket = %self.bucket, object = %name, key = %key.key,
                           block = key.index, "{line} ({e})");
                }
                None
            }
        }
    }

    /// The writer's work for one block.
    async fn write(&self, key: &BlockKey, data: Bytes) {
        if self.health.paused() {
            TierCounters::bump(&self.counters.skipped);
            return;
        }
        let (identity, name) = self.object(key);
        let mut body = BytesMut::from(&block_file::header(&identity, &data)[..]);
        body.extend_from_slice(&data);
        let opts = PutOptions::default();
        let put = self.store.put(&name, body.freeze(), &opts);
        let failure = match tokio::time::timeout(PUT_LIMIT, put).await {
            Ok(Ok(_)) => {
                self.health.answered(&self.bucket);
                let n = data.len() as u64;
                self.counters.bytes_written.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", PUT_LIMIT.as_secs()),
        };
        TierCounters::bump(&self.counters.skipped);
        self.health.failed(&self.bucket, "a write", &failure);
    }
}

#[async_trait]
impl BlockTier for SharedCache {
    fn name(&self) -> &'static str {
        "shared"
    }

    /// Not known without a request: "worth asking" while the tier is not paused.
    fn contains(&self, _key: &BlockKey) -> bool {
        !self.inner.health.paused()
    }

    async fn get(&self, key: &BlockKey, len: u64) -> Option<Bytes> {
        let inner = &self.inner;
        let found = match inner.health.paused() {
            true => None,
            false => inner.read(key, len).await,
        };
        match &found {
            Some(_) => {
                TierCounters::bump(&inner.counters.hits);
                inner.counters.bytes_read.fetch_add(len, Ordering::Relaxed);
            }
            None => TierCounters::bump(&inner.counters.misses),
        }
        found
    }

    async fn offer(&self, key: &BlockKey, data: &Bytes) {
        // Never waits: a PUT costs a round trip, which a reader should not pay.
        let sent = match self.queue.lock().unwrap().as_mut() {
            Some(tx) if !self.inner.health.paused() => {
                tx.try_send((key.clone(), data.clone())).is_ok()
            }
            _ => false,
        };
        if !sent {
            TierCounters::bump(&self.inner.counters.skipped);
        }
    }

    fn stats(&self) -> TierStats {
        // What the bucket holds is not known here (its lifecycle rules decide).
        self.inner.counters.snapshot(0)
    }
}

/// Whether the tier answers, and what has been logged about it.
#[derive(Default)]
struct Health {
    /// Failures in a row.
    failures: AtomicU32,
    /// Until when the tier is skipped.
    paused_until: Mutex<Option<Instant>>,
    /// Whether the current outage was logged at `warn`.
    failure_logged: AtomicBool,
    /// Whether a damaged object was logged at `warn`.
    corrupt_logged: AtomicBool,
}

impl Health {
    /// Whether the tier is being skipped now.
    fn paused(&self) -> bool {
        let until = *self.paused_until.lock().unwrap();
        until.is_some_and(|t| Instant::now() < t)
    }

    /// A request got an answer (a missing object included).
    fn answered(&self, bucket: &str) {
        if self.failures.swap(0, Ordering::Relaxed) == 0 {
            return;
        }
        *self.paused_until.lock().unwrap() = None;
        if self.failure_logged.swap(false, Ordering::Relaxed) {
            info!(bucket, "shared cache answers again");
        }
    }

    /// A request failed: logs it (at `warn` once per outage) and pauses the tier after
    /// [`FAILURES_BEFORE_PAUSE`] failures in a row.
    fn failed(&self, bucket: &str, what: &str, why: &dyn Display) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.failure_logged.swap(true, Ordering::Relaxed) {
            warn!(
                bucket,
                "shared cache: {what} failed ({why}); reads fall back to the source bucket \
                 (further failures are logged at debug level)"
            );
        } else {
            debug!(bucket, failures = n, "shared cache: {what} failed ({why})");
        }
        if n >= FAILURES_BEFORE_PAUSE {
            let doublings = (n - FAILURES_BEFORE_PAUSE).min(5);
            let pause = (FIRST_PAUSE * 2u32.pow(doublings)).min(MAX_PAUSE);
            *self.paused_until.lock().unwrap() = Some(Instant::now() + pause);
            debug!(
                bucket,
                "shared cache skipped for {} ms after {n} failures",
                pause.as_millis()
            );
        }
    }
}
