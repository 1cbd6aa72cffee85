//! Block tiers: stores of blocks behind the in-memory [`BlockCache`](super::cache::BlockCache)
//! and in front of the bucket itself.
//!
//! Design note: on a memory miss the read path asks each tier in order (the local disk first;
//! a shared tier such as another bucket would come after it) and only then the source bucket.
//! A tier is an optimisation, never a source of truth: `get` answers `None` for anything it
//! cannot vouch for (a miss, a damaged block, an I/O error), so a broken tier costs speed,
//! never a read. `offer` hands a block fetched elsewhere to a tier, after the block reached
//! its reader: storing it is the tier's background work. A tier may make the offer wait a
//! bounded time for room (the disk tier does, so that a cold read leaves the whole object
//! cached); one that cannot keep up drops the offer.
//! Every tier counts what it did in [`TierCounters`], which the metrics read by name.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::cache::BlockKey;

/// A store of blocks the read path consults before the source bucket.
#[async_trait]
pub trait BlockTier: Send + Sync + 'static {
    /// Short name for logs and metrics (`disk`).
    fn name(&self) -> &'static str;

    /// Whether the tier says it holds `key`, without any I/O (a hint: `get` may still miss).
    fn contains(&self, key: &BlockKey) -> bool;

    /// The block `key`, which must be `len` bytes long, if the tier holds a sound copy.
    async fn get(&self, key: &BlockKey, len: u64) -> Option<Bytes>;

    /// Offers a block that was read elsewhere; returns once the tier has queued or dropped it
    /// (after a bounded wait at most).
    async fn offer(&self, key: &BlockKey, data: &Bytes);

    /// What the tier did so far.
    fn stats(&self) -> TierStats;
}

/// Counters of one tier at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Blocks served.
    pub hits: u64,
    /// Blocks asked for and not served (absent or dropped).
    pub misses: u64,
    /// Bytes served.
    pub bytes_read: u64,
    /// Bytes stored.
    pub bytes_written: u64,
    /// Blocks removed to stay within the tier's bound.
    pub evictions: u64,
    /// Blocks dropped because their checksum, length or identity did not match.
    pub checksum_failures: u64,
    /// Offers not stored (queue full, no space, write error).
    pub skipped: u64,
    /// Bytes held now.
    pub bytes_held: u64,
}

/// The live counters of a tier.
#[derive(Debug, Default)]
pub struct TierCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub evictions: AtomicU64,
    pub checksum_failures: AtomicU64,
    pub skipped: AtomicU64,
}

impl TierCounters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now, with `bytes_held` as given.
    pub fn snapshot(&self, bytes_held: u64) -> TierStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TierStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.bytes_written),
            evictions: get(&self.evictions),
            checksum_failures: get(&self.checksum_failures),
            skipped: get(&self.skipped),
            bytes_held,
        }
    }
}
