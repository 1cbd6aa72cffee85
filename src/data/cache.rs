//! An LRU cache of object blocks, bounded in bytes, shared by every open file.
//!
//! Design note: a block is identified by (key, ETag, index), so bytes of two versions of an
//! object can never be served together: a reader opened on version A only ever asks for A's
//! blocks, and the GETs that fill them carry `If-Match: A`. Blocks being fetched are tracked as
//! in-flight futures next to the cached ones, under the same lock, so two readers wanting the
//! same block share one request. Eviction is least-recently-used by bytes. A block in flight
//! reserves its length when its fetch begins, so the bound covers read-ahead that has not
//! arrived yet too: a reservation evicts old blocks to make room, and cached plus reserved
//! bytes stay within the capacity unless the blocks in flight alone exceed it (a tiny
//! `--cache-size` with many readers), in which case the newest block is still kept.

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
    /// Bytes of the cached blocks.
    bytes: u64,
    /// Bytes reserved by the blocks in flight.
    reserved: u64,
    /// Blocks in flight.
    inflight: HashMap<BlockKey, Flight>,
}

/// A block in flight.
struct Flight {
    pending: PendingBlock,
    /// The bytes it reserved.
    len: u64,
    /// Fetched before anyone asked for it (see [`BlockCache::begin_speculative_fetch`]).
    speculative: bool,
}

impl Inner {
    /// Evicts least-recently-used blocks until cached plus reserved bytes fit `capacity`,
    /// keeping at least `keep` blocks (the most recent ones): a block that has just arrived is
    /// not thrown away because blocks still in flight alone fill the bound.
    fn make_room(&mut self, capacity: u64, keep: usize) {
        while self.bytes + self.reserved > capacity && self.lru.len() > keep {
            match self.lru.pop_lru() {
                Some((_, b)) => self.bytes -= b.len() as u64,
                None => break,
            }
        }
    }

    /// Caches `data` as `key`, then evicts to fit `capacity`, keeping the new block.
    fn store(&mut self, key: &BlockKey, data: Bytes, capacity: u64) {
        let len = data.len() as u64;
        if let Some(old) = self.lru.put(key.clone(), data) {
            self.bytes -= old.len() as u64;
        }
        self.bytes += len;
        self.make_room(capacity, 1);
    }

    /// Ends `key`'s in-flight entry, if any, releasing its reservation; returns whether the
    /// block was fetched speculatively.
    fn end_flight(&mut self, key: &BlockKey) -> bool {
        match self.inflight.remove(key) {
            Some(f) => {
                self.reserved -= f.len;
                f.speculative
            }
            None => false,
        }
    }
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
                reserved: 0,
                inflight: HashMap::new(),
            }),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Looks a block up, marking it recently used.
    pub fn lookup(&self, key: &BlockKey) -> Lookup {
        let mut inner = self.inner.lock().unwrap();
        if let Some(b) = inner.lru.get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Ready(b.clone());
        }
        if let Some(f) = inner.inflight.get_mut(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            // Someone wants it after all: it arrives as an ordinary block.
            f.speculative = false;
            return Lookup::Pending(f.pending.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Missing
    }

    /// Whether a block is cached or in flight (does not touch the LRU order).
    pub fn contains(&self, key: &BlockKey) -> bool {
        let inner = self.inner.lock().unwrap();
        inner.lru.contains(key) || inner.inflight.contains_key(key)
    }

    /// Registers `pending` as the fetch of `key`, a block of `len` bytes, unless the block is
    /// already cached or in flight; returns whether it was registered (and so whether the
    /// caller must fetch it). Its `len` bytes are reserved until it completes or is abandoned.
    pub fn begin_fetch(&self, key: &BlockKey, pending: PendingBlock, len: u64) -> bool {
        self.begin(key, pending, len, false)
    }

    /// As [`begin_fetch`](Self::begin_fetch), for a block nobody has asked for yet (the first
    /// block of a file that was only looked up): once it arrives, it is the first to be
    /// evicted, unless a reader asked for it meanwhile. Its reservation evicts like any
    /// other, but the next speculative block then evicts this one first, so a run of `stat`s
    /// costs the cache about one block per fetch in flight, not one per file, and leaves
    /// read-ahead (the most recently fetched blocks) alone. A read of it marks it used like
    /// any other block.
    pub fn begin_speculative_fetch(&self, key: &BlockKey, pending: PendingBlock, len: u64) -> bool {
        self.begin(key, pending, len, true)
    }

    fn begin(&self, key: &BlockKey, pending: PendingBlock, len: u64, speculative: bool) -> bool {
        let mut inner = self.inner.lock().unwrap();
        if inner.lru.contains(key) || inner.inflight.contains_key(key) {
            return false;
        }
        inner.inflight.insert(
            key.clone(),
            Flight {
                pending,
                len,
                speculative,
            },
        );
        inner.reserved += len;
        inner.make_room(self.capacity, 0);
        true
    }

    /// Stores a fetched block and ends its in-flight entry, evicting old blocks as needed.
    pub fn complete(&self, key: &BlockKey, data: Bytes) {
        let mut inner = self.inner.lock().unwrap();
        let speculative = inner.end_flight(key);
        inner.store(key, data, self.capacity);
        if speculative {
            inner.lru.demote(key);
        }
    }

    /// Ends a failed fetch: the block is neither cached nor in flight any more.
    pub fn abandon(&self, key: &BlockKey) {
        self.inner.lock().unwrap().end_flight(key);
    }

    /// Bytes held by cached blocks.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().unwrap().bytes
    }

    /// Bytes reserved by blocks in flight.
    pub fn reserved(&self) -> u64 {
        self.inner.lock().unwrap().reserved
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
    fn a_speculative_block_is_evicted_first_unless_it_is_read() {
        let c = BlockCache::new(12);
        let never = || {
            futures::future::pending::<FsResult<Bytes>>()
                .boxed()
                .shared()
        };
        c.complete(&key(0), Bytes::from(vec![0u8; 4]));
        assert!(c.begin_speculative_fetch(&key(1), never(), 4));
        c.complete(&key(1), Bytes::from(vec![1u8; 4]));
        c.complete(&key(2), Bytes::from(vec![2u8; 4]));
        // Full: the next block pushes out the speculative one, though block 0 is older.
        c.complete(&key(3), Bytes::from(vec![3u8; 4]));
        assert!(matches!(c.lookup(&key(1)), Lookup::Missing));
        assert!(matches!(c.lookup(&key(0)), Lookup::Ready(_)));
        // Wanted while in flight: it arrives as an ordinary block.
        assert!(c.begin_speculative_fetch(&key(6), never(), 4));
        assert!(matches!(c.lookup(&key(6)), Lookup::Pending(_)));
        c.complete(&key(6), Bytes::from(vec![6u8; 4]));
        c.complete(&key(7), Bytes::from(vec![7u8; 4]));
        assert!(matches!(c.lookup(&key(6)), Lookup::Ready(_)));
        // Once read, a speculative block is an ordinary one.
        assert!(c.begin_speculative_fetch(&key(4), never(), 4));
        c.complete(&key(4), Bytes::from(vec![4u8; 4]));
        assert!(matches!(c.lookup(&key(4)), Lookup::Ready(_)));
        c.complete(&key(5), Bytes::from(vec![5u8; 4]));
        assert!(matches!(c.lookup(&key(4)), Lookup::Ready(_)));
    }

    #[test]
    fn blocks_in_flight_count_against_the_bound() {
        let c = BlockCache::new(10);
        c.complete(&key(0), Bytes::from(vec![0u8; 4]));
        c.complete(&key(1), Bytes::from(vec![1u8; 4]));
        let never = futures::future::pending::<FsResult<Bytes>>()
            .boxed()
            .shared();
        // Reserving 4 bytes makes room by evicting the oldest block.
        assert!(c.begin_fetch(&key(2), never.clone(), 4));
        assert_eq!((c.bytes(), c.reserved()), (4, 4));
        assert!(matches!(c.lookup(&key(0)), Lookup::Missing));
        assert!(!c.begin_fetch(&key(2), never, 4), "already in flight");
        c.complete(&key(2), Bytes::from(vec![2u8; 4]));
        assert_eq!((c.bytes(), c.reserved()), (8, 0));
        let never = futures::future::pending::<FsResult<Bytes>>()
            .boxed()
            .shared();
        assert!(c.begin_fetch(&key(3), never, 4));
        c.abandon(&key(3));
        assert_eq!(c.reserved(), 0);
    }

    #[test]
    fn a_block_that_arrives_is_kept_even_when_reservations_fill_the_bound() {
        let c = BlockCache::new(10);
        for i in 0..3 {
            let never = futures::future::pending::<FsResult<Bytes>>()
                .boxed()
                .shared();
            assert!(c.begin_fetch(&key(i), never, 4));
        }
        assert_eq!(c.reserved(), 12);
        c.complete(&key(0), Bytes::from(vec![0u8; 4]));
        assert!(matches!(c.lookup(&key(0)), Lookup::Ready(_)));
        c.complete(&key(1), Bytes::from(vec![1u8; 4]));
        // Over the bound with one block still in flight: the older block makes room.
        assert!(matches!(c.lookup(&key(1)), Lookup::Ready(_)));
        assert!(matches!(c.lookup(&key(0)), Lookup::Missing));
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
