//! An LRU cache of object blocks, bounded in bytes, shared by every open file.
//!
//! Design note: a block is identified by (key, ETag, index), so bytes of two versions of an
//! object can never be served together: a reader opened on version A only ever asks for A's
//! blocks, and the GETs that fill them carry `If-Match: A`. Blocks being fetched are tracked as
//! in-flight futures next to the cached ones, under the same lock, so two readers wanting the
//! same block share one request. Eviction is least-recently-used by bytes; a block that is in
//! flight is not counted until it arrives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;

use crate::error::FsResult;

/// Identifies one block of one version of one object.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct BlockKey {
    /// Object key.
    pub key: Arc<str>,
    /// The object version's ETag.
    pub etag: Arc<str>,
    /// Block index (offset / block size).
    pub index: u64,
}

impl BlockKey {
    /// Block `index` of the version `etag` of `key`.
    pub fn new(key: &str, etag: &str, index: u64) -> Self {
        BlockKey {
            key: key.into(),
            etag: etag.into(),
            index,
        }
    }
}

/// A block that is being fetched; awaiting it yields the block or the fetch's error.
pub type PendingBlock = Shared<BoxFuture<'static, FsResult<Bytes>>>;

/// What the cache knows about a block.
pub enum Lookup {
    /// Cached: here are its bytes.
    Ready(Bytes),
    /// Being fetched: await this.
    Pending(PendingBlock),
    /// Neither.
    Missing,
}

struct Inner {
    lru: LruCache<BlockKey, Bytes>,
    bytes: u64,
    inflight: HashMap<BlockKey, PendingBlock>,
}

/// The shared block cache.
pub struct BlockCache {
    inner: Mutex<Inner>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most `capacity` bytes of blocks.
    pub fn new(capacity: u64) -> Self {
        BlockCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                inflight: HashMap::new(),
            }),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The block if it is cached, marking it recently used; hits are counted by
    /// [`Self::count_hits`] once the caller has every block it needs.
    pub fn ready(&self, key: &BlockKey) -> Option<Bytes> {
        self.inner.lock().unwrap().lru.get(key).cloned()
    }

    /// Counts `n` cache hits (see [`Self::ready`]).
    pub fn count_hits(&self, n: u64) {
        self.hits.fetch_add(n, Ordering::Relaxed);
    }

    /// Looks a block up, marking it recently used.
    pub fn lookup(&self, key: &BlockKey) -> Lookup {
        let mut inner = self.inner.lock().unwrap();
        if let Some(b) = inner.lru.get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Ready(b.clone());
        }
        if let Some(p) = inner.inflight.get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Pending(p.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Missing
    }

    /// Whether a block is cached or in flight (does not touch the LRU order).
    pub fn contains(&self, key: &BlockKey) -> bool {
        let inner = self.inner.lock().unwrap();
        inner.lru.contains(key) || inner.inflight.contains_key(key)
    }

    /// Registers `pending` as the fetch of `key` unless the block is already cached or in
    /// flight; returns whether it was registered (and so whether the caller must fetch it).
    pub fn begin_fetch(&self, key: &BlockKey, pending: PendingBlock) -> bool {
        let mut inner = self.inner.lock().unwrap();
        if inner.lru.contains(key) || inner.inflight.contains_key(key) {
            return false;
        }
        inner.inflight.insert(key.clone(), pending);
        true
    }

    /// Stores a fetched block and ends its in-flight entry, evicting old blocks as needed.
    pub fn complete(&self, key: &BlockKey, data: Bytes) {
        let mut inner = self.inner.lock().unwrap();
        inner.inflight.remove(key);
        let len = data.len() as u64;
        if let Some(old) = inner.lru.put(key.clone(), data) {
            inner.bytes -= old.len() as u64;
        }
        inner.bytes += len;
        while inner.bytes > self.capacity {
            match inner.lru.pop_lru() {
                Some((_, b)) => inner.bytes -= b.len() as u64,
                None => break,
            }
        }
    }

    /// Stores a block fetched outside the read path (a lookup's GET of a small object),
    /// unless it is already cached or being fetched.
    pub fn insert(&self, key: &BlockKey, data: Bytes) {
        if !self.contains(key) {
            self.complete(key, data);
        }
    }

    /// Ends a failed fetch: the block is neither cached nor in flight any more.
    pub fn abandon(&self, key: &BlockKey) {
        self.inner.lock().unwrap().inflight.remove(key);
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().unwrap().bytes
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Wraps a oneshot receiver as a shareable pending block.
pub fn pending_from(rx: tokio::sync::oneshot::Receiver<FsResult<Bytes>>) -> PendingBlock {
    rx.map(|r| {
        r.unwrap_or_else(|_| {
            Err(crate::error::FsError::new(
                libc::EIO,
                "block fetch was cancelled",
            ))
        })
    })
    .boxed()
    .shared()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> BlockKey {
        BlockKey {
            key: "k".into(),
            etag: "e".into(),
            index: i,
        }
    }

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let c = BlockCache::new(10);
        c.complete(&key(0), Bytes::from(vec![0u8; 4]));
        c.complete(&key(1), Bytes::from(vec![1u8; 4]));
        assert!(matches!(c.lookup(&key(0)), Lookup::Ready(_)));
        c.complete(&key(2), Bytes::from(vec![2u8; 4]));
        assert_eq!(c.bytes(), 8);
        assert!(matches!(c.lookup(&key(1)), Lookup::Missing));
        assert!(matches!(c.lookup(&key(0)), Lookup::Ready(_)));
    }

    #[test]
    fn versions_do_not_mix() {
        let c = BlockCache::new(100);
        c.complete(&key(0), Bytes::from_static(b"old"));
        let other = BlockKey {
            etag: "f".into(),
            ..key(0)
        };
        assert!(matches!(c.lookup(&other), Lookup::Missing));
    }
}
