//! Reading one version of one object through the block cache, with adaptive read-ahead.
//!
//! Design note: an [`ObjectReader`] belongs to one open file handle and one ETag. Each read
//! is classified as sequential (the second or later read in a row that starts near where the
//! previous one ended) or random. A random read fetches exactly the blocks it covers and
//! resets the window. A sequential read doubles the read-ahead window (from `initial_window` up to the effective maximum) and
//! makes sure every block up to `end + window` is cached or in flight, issuing the missing
//! ones as ranged GETs of at most `part_size` bytes each, all at once — so a large window
//! means several GETs in parallel. Fetches run as tokio tasks; as a GET's body streams in it
//! is cut into blocks that are handed to the cache (and to waiting readers) one by one, so the
//! first block of a large GET is usable before the GET ends. Every GET carries `If-Match`
//! with the reader's ETag: if the object changed, the read fails (ESTALE) instead of mixing
//! versions. A block missing from memory is asked of the block tiers (the disk cache) before
//! S3; a block fetched from S3 is offered to them, which stores it in the background.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::{oneshot, Semaphore};
use tracing::{debug, trace};

use super::cache::{pending_from, BlockCache, BlockKey, Lookup};
use super::tier::BlockTier;
use from_tiers::{serve_from_tiers, split_contiguous};

mod from_tiers;
use crate::config::ReadConfig;
use crate::error::{FsError, FsResult};
use crate::storage::{ByteChunks, ObjectMeta, ObjectStore};

/// Shared pieces every reader uses.
#[derive(Clone)]
pub struct ReadContext {
    /// The store to GET from.
    pub store: Arc<dyn ObjectStore>,
    /// The shared block cache.
    pub cache: Arc<BlockCache>,
    /// Settings.
    pub config: ReadConfig,
    /// Bounds the number of GETs in flight across the whole mount.
    pub get_permits: Arc<Semaphore>,
    /// Readers open right now: they share the cache, so each one's window shrinks as more
    /// read at once (memory stays bounded by the cache, and read-ahead is not evicted
    /// before it is read).
    pub readers: Arc<std::sync::atomic::AtomicUsize>,
    /// Tiers asked, in order, for a block missing from memory before S3 is.
    pub tiers: Arc<[Arc<dyn BlockTier>]>,
}

impl ReadContext {
    /// A context over `store` with a fresh cache of `config.cache_bytes`.
    pub fn new(store: Arc<dyn ObjectStore>, config: ReadConfig, max_gets: usize) -> Self {
        ReadContext {
            store,
            cache: Arc::new(BlockCache::new(config.cache_bytes)),
            config,
            get_permits: Arc::new(Semaphore::new(max_gets)),
            readers: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            tiers: Arc::new([]),
        }
    }

    /// The same context, asking `tiers` before S3.
    pub fn with_tiers(mut self, tiers: Vec<Arc<dyn BlockTier>>) -> Self {
        self.tiers = tiers.into();
        self
    }

    /// Hands a block read from S3 to every tier (see [`BlockTier::offer`] for the wait).
    async fn offer_to_tiers(&self, key: &BlockKey, data: &Bytes) {
        // Without an ETag a block cannot be told from a later version's: memory only.
        if key.etag.is_empty() {
            return;
        }
        for tier in self.tiers.iter() {
            tier.offer(key, data).await;
        }
    }

    /// Whether block 0 of version `etag` of `key` is cached (or on its way), in memory or in
    /// a tier.
    pub fn has_first_block(&self, key: &str, etag: &str) -> bool {
        if etag.is_empty() {
            return false;
        }
        let block = BlockKey::new(key, etag, 0);
        self.cache.contains(&block) || self.tiers.iter().any(|t| t.contains(&block))
    }

    /// Reads `body`, the first `asked` bytes of version `meta` of `key`, into the cache as
    /// block 0 when they make the whole block (an object that grew since a listing said it
    /// was small does not), in a task of its own. If the body breaks off, a reader waiting for
    /// the block does not see that: the block is fetched again as the read path would. An
    /// unwanted body is read to its end (as far as `asked`), because a response dropped
    /// mid-body would close its pooled connection.
    pub fn adopt_first_block(&self, key: &str, meta: &ObjectMeta, body: ByteChunks, asked: u64) {
        let len = meta.size.min(self.config.block_size);
        let mut owed = Owed {
            cache: self.cache.clone(),
            blocks: Default::default(),
        };
        if !meta.etag.is_empty() && len > 0 && asked >= len {
            let bkey = BlockKey::new(key, &meta.etag, 0);
            let (tx, rx) = oneshot::channel();
            if self
                .cache
                .begin_speculative_fetch(&bkey, pending_from(rx), len)
            {
                owed.blocks.push_back((bkey, tx));
            }
        }
        let ctx = self.clone();
        let (key, size) = (key.to_string(), meta.size);
        tokio::spawn(async move {
            if owed.blocks.is_empty() {
                drain(body, asked).await;
            } else if let Err(e) = fill_blocks(&ctx, body, &mut owed, 0, size).await {
                debug!(key, "first block's body failed ({e}); fetching it again");
                let rest: Vec<_> = owed.blocks.drain(..).collect();
                if !rest.is_empty() {
                    fetch_run(ctx, size, rest).await;
                }
            }
        });
    }

    /// The largest window one reader may use now.
    fn max_window(&self) -> u64 {
        let readers = self
            .readers
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1) as u64;
        (self.config.effective_max_window() / readers).max(self.config.block_size)
    }
}

/// Read-ahead state of one reader.
#[derive(Debug)]
struct Window {
    /// Where the last read ended.
    last_end: u64,
    /// Current read-ahead window in bytes; 0 after a random read.
    window: u64,
    /// One past the last block index this reader has asked the cache for.
    requested_end: u64,
    /// Reads so far.
    reads: u64,
    /// Consecutive reads that continued the previous one.
    streak: u32,
}

/// Reads one object version for one file handle.
pub struct ObjectReader {
    ctx: ReadContext,
    key: Arc<str>,
    etag: Arc<str>,
    size: u64,
    window: Mutex<Window>,
}

impl ObjectReader {
    /// A reader of `key` at version `etag`, which is `size` bytes long.
    pub fn new(ctx: ReadContext, key: &str, etag: &str, size: u64) -> Self {
        ctx.readers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ObjectReader {
            ctx,
            key: key.into(),
            etag: etag.into(),
            size,
            window: Mutex::new(Window {
                last_end: 0,
                window: 0,
                requested_end: 0,
                reads: 0,
                streak: 0,
            }),
        }
    }

    /// The object's size as of this version.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The key read.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The version read (its ETag).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// Reads up to `len` bytes at `offset` (fewer at the end of the object).
    pub async fn read(&self, offset: u64, len: u32) -> FsResult<Bytes> {
        if offset >= self.size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + len as u64).min(self.size);
        let bs = self.ctx.config.block_size;
        let ahead = self.advance_window(offset, end);
        let first = offset / bs;
        let last = (end - 1) / bs;
        self.ensure_fetching(first..last + 1);
        if let Some(more) = self.top_up(end, ahead) {
            self.ensure_fetching(more);
        }

        let mut blocks = Vec::with_capacity((last - first + 1) as usize);
        for index in first..=last {
            blocks.push(self.block(index).await?);
        }
        Ok(assemble(&blocks, first * bs, offset, end))
    }

    /// Decides which blocks to read ahead after a read ending at `end`, with a window of
    /// `ahead` bytes. Hysteresis keeps requests large: the window is topped up only once the
    /// lead of requested-but-unread bytes has shrunk by a whole part (or half the window while
    /// it is small), and then up to a part-aligned end, so a steady sequential reader issues
    /// `part_size` GETs rather than one small GET per block consumed.
    fn top_up(&self, end: u64, ahead: u64) -> Option<Range<u64>> {
        let bs = self.ctx.config.block_size;
        let part = self.ctx.config.part_size.max(bs);
        let mut w = self.window.lock().unwrap();
        let end_block = end.div_ceil(bs);
        if ahead == 0 || end >= self.size {
            w.requested_end = w.requested_end.max(end_block);
            return None;
        }
        if w.requested_end < end_block || w.requested_end * bs > end + 2 * ahead + part {
            // Behind the reader (start, or a jump): start the lead afresh from here.
            w.requested_end = end_block;
        }
        let lead = (w.requested_end * bs).saturating_sub(end);
        if lead + part.min(ahead / 2).max(bs) > ahead {
            return None;
        }
        let target = if ahead < part {
            end + ahead
        } else {
            (end + ahead).div_ceil(part) * part
        };
        let target_block = target.min(self.size).div_ceil(bs);
        if target_block <= w.requested_end {
            return None;
        }
        let range = w.requested_end..target_block;
        w.requested_end = target_block;
        Some(range)
    }

    /// Updates the sequential-read detector and returns how far to read ahead.
    fn advance_window(&self, offset: u64, end: u64) -> u64 {
        let cfg = &self.ctx.config;
        let mut w = self.window.lock().unwrap();
        // The kernel issues read-ahead asynchronously, so sequential reads may arrive a little
        // out of order: tolerate a small step back and a jump within the current window.
        let slack = cfg.block_size.max(1 << 20);
        let continues = w.reads > 0
            && offset + slack >= w.last_end
            && offset <= w.last_end + w.window.max(slack);
        w.streak = match (w.reads, continues) {
            (0, _) if offset == 0 => 1, // reading from the start: likely a whole-file read
            (_, true) => w.streak + 1,
            _ => 0,
        };
        w.reads += 1;
        // A window opens only on the second read in a row that continues the last one, so a
        // random reader that happens to land near its previous read fetches no extra bytes.
        if w.streak >= 2 {
            w.window = if w.window == 0 {
                cfg.initial_window
            } else {
                (w.window * 2).min(self.ctx.max_window())
            };
            w.last_end = w.last_end.max(end);
        } else {
            if w.streak == 0 {
                trace!(key = %self.key, offset, "random read");
            }
            w.window = 0;
            w.last_end = end;
        }
        w.window
    }

    /// Length of block `index` (the last one may be short).
    fn block_len(&self, index: u64) -> u64 {
        let bs = self.ctx.config.block_size;
        self.size.saturating_sub(index * bs).min(bs)
    }

    fn block_key(&self, index: u64) -> BlockKey {
        BlockKey {
            key: self.key.clone(),
            etag: self.etag.clone(),
            index,
        }
    }

    /// Gets one block: from the cache, from a fetch in flight, or by fetching it now.
    async fn block(&self, index: u64) -> FsResult<Bytes> {
        loop {
            match self.ctx.cache.lookup(&self.block_key(index)) {
                Lookup::Ready(b) => return Ok(b),
                Lookup::Pending(p) => return p.await,
                // Evicted (or never fetched) since `ensure_fetching`: fetch it alone and wait
                // on that very fetch, so eviction pressure cannot make us loop.
                Lookup::Missing => {
                    let key = self.block_key(index);
                    let (tx, rx) = oneshot::channel();
                    let pending = pending_from(rx);
                    if self
                        .ctx
                        .cache
                        .begin_fetch(&key, pending.clone(), self.block_len(index))
                    {
                        self.spawn_fetch(vec![(key, tx)]);
                        return pending.await;
                    }
                }
            }
        }
    }

    /// Starts fetches for every block in `blocks` that is neither cached nor in flight,
    /// grouping contiguous missing blocks into GETs of at most `part_size` bytes.
    fn ensure_fetching(&self, blocks: Range<u64>) {
        let bs = self.ctx.config.block_size;
        let per_get = (self.ctx.config.part_size / bs).max(1);
        let mut run: Vec<(BlockKey, oneshot::Sender<FsResult<Bytes>>)> = Vec::new();
        for index in blocks {
            let key = self.block_key(index);
            if self.ctx.cache.contains(&key) {
                if !run.is_empty() {
                    self.spawn_fetch(std::mem::take(&mut run));
                }
                continue;
            }
            let (tx, rx) = oneshot::channel();
            if self
                .ctx
                .cache
                .begin_fetch(&key, pending_from(rx), self.block_len(index))
            {
                // A run ends where the blocks stop being contiguous, and at part boundaries so
                // GETs line up with `part_size`.
                if run.last().is_some_and(|(k, _)| k.index + 1 != index)
                    || (!run.is_empty() && index % per_get == 0)
                {
                    self.spawn_fetch(std::mem::take(&mut run));
                }
                run.push((key, tx));
                if run.len() as u64 == per_get {
                    self.spawn_fetch(std::mem::take(&mut run));
                }
            } else if !run.is_empty() {
                self.spawn_fetch(std::mem::take(&mut run));
            }
        }
        if !run.is_empty() {
            self.spawn_fetch(run);
        }
    }

    fn spawn_fetch(&self, run: Vec<(BlockKey, oneshot::Sender<FsResult<Bytes>>)>) {
        let ctx = self.ctx.clone();
        let size = self.size;
        tokio::spawn(fetch_run(ctx, size, run));
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.ctx
            .readers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Attempts at a GET whose body breaks off (the SDK retries failures before the body, not
/// inside it): each new attempt resumes at the first block not yet received.
const BODY_ATTEMPTS: u32 = 3;

/// Fetches a run of contiguous blocks: those the tiers hold from them, the rest with one ranged
/// GET per stretch of consecutive blocks, handing each block over as soon as its bytes have
/// arrived. If a body breaks off, the rest is fetched again (up to
/// [`BODY_ATTEMPTS`] times); a block that cannot be fetched is failed and forgotten by the
/// cache, so a later read asks S3 again.
async fn fetch_run(
    ctx: ReadContext,
    size: u64,
    run: Vec<(BlockKey, oneshot::Sender<FsResult<Bytes>>)>,
) {
    let owed = Owed {
        cache: ctx.cache.clone(),
        blocks: run.into(),
    };
    // A version without an ETag is never asked of the persistent tiers (see `offer_to_tiers`).
    let no_etag = owed.blocks.front().is_some_and(|(k, _)| k.etag.is_empty());
    let owed = if ctx.tiers.is_empty() || no_etag {
        owed
    } else {
        serve_from_tiers(&ctx, size, owed).await
    };
    let mut runs = split_contiguous(owed);
    let last = runs.pop();
    for run in runs {
        tokio::spawn(fetch_from_store(ctx.clone(), size, run));
    }
    if let Some(run) = last {
        fetch_from_store(ctx, size, run).await;
    }
}

/// Fetches the run of consecutive blocks `pending` from S3 (see [`fetch_run`]).
async fn fetch_from_store(ctx: ReadContext, size: u64, mut pending: Owed) {
    let Some((front, _)) = pending.blocks.front() else {
        return;
    };
    let bs = ctx.config.block_size;
    let first = front.index;
    let end = ((first + pending.blocks.len() as u64) * bs).min(size);
    let key = front.key.clone();
    let etag = front.etag.clone();
    let _permit = ctx.get_permits.acquire().await;
    let if_match = if etag.is_empty() { None } else { Some(&*etag) };
    let mut attempt = 0;
    let err = loop {
        attempt += 1;
        let Some((front, _)) = pending.blocks.front() else {
            return;
        };
        let start = front.index * bs;
        debug!(key = %key, start, end, attempt, "GET range");
        // Failures before the body were already retried by the S3 client; only a body that
        // breaks off is resumed here.
        let mut in_body = false;
        let result: FsResult<()> = async {
            let body = ctx.store.get_range(&key, start..end, if_match).await?;
            in_body = true;
            fill_blocks(&ctx, body, &mut pending, start, size).await
        }
        .await;
        match result {
            Ok(()) => return,
            // The object changed or vanished: retrying cannot help.
            Err(e) if e.errno == libc::ESTALE || e.errno == libc::ENOENT => break e,
            Err(e) if !in_body || attempt >= BODY_ATTEMPTS => break e,
            Err(e) => debug!(key = %key, attempt, "GET body broke off, resuming: {e}"),
        }
    };
    debug!(key = %key, end, "GET failed: {err}");
    pending.fail(&err);
}

/// Reads and drops a body of at most `limit` bytes. A server that sent more than was asked
/// (one that ignores `Range`) is cut off instead: closing the connection is cheaper than
/// reading a whole object for nothing.
async fn drain(mut body: ByteChunks, limit: u64) {
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        seen += chunk.len() as u64;
        if seen > limit {
            return;
        }
    }
}

/// Cuts a GET body that starts at `start` (a block boundary) into the blocks `owed` waits for,
/// handing each to the cache and its waiters as soon as its last byte has arrived.
async fn fill_blocks(
    ctx: &ReadContext,
    mut body: ByteChunks,
    owed: &mut Owed,
    start: u64,
    size: u64,
) -> FsResult<()> {
    let bs = ctx.config.block_size;
    let mut buf = BytesMut::new();
    let mut block_start = start;
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk?;
        while !chunk.is_empty() {
            if owed.blocks.is_empty() {
                return Err(FsError::new(libc::EIO, "server sent more bytes than asked"));
            }
            let want = ((block_start + bs).min(size) - block_start) as usize;
            let take = (want - buf.len()).min(chunk.len());
            buf.extend_from_slice(&chunk.split_to(take));
            if buf.len() == want {
                let data = std::mem::take(&mut buf).freeze();
                let (bkey, tx) = owed.blocks.pop_front().unwrap();
                ctx.cache.complete(&bkey, data.clone());
                let _ = tx.send(Ok(data.clone()));
                ctx.offer_to_tiers(&bkey, &data).await;
                block_start += want as u64;
                buf = BytesMut::with_capacity(bs as usize);
            }
        }
    }
    match owed.blocks.front() {
        None => Ok(()),
        Some((k, _)) => Err(FsError::new(libc::EIO, format!("short body for {}", k.key))),
    }
}

/// The blocks a fetch still owes. Whatever is left when the fetch ends without them (an
/// error, a panic, a task dropped at shutdown) is failed to its waiters and forgotten by the
/// cache, which releases its reservation: a later read asks S3 again.
struct Owed {
    cache: Arc<BlockCache>,
    blocks: std::collections::VecDeque<(BlockKey, oneshot::Sender<FsResult<Bytes>>)>,
}

impl Owed {
    fn fail(&mut self, err: &FsError) {
        for (key, tx) in self.blocks.drain(..) {
            self.cache.abandon(&key);
            let _ = tx.send(Err(err.clone()));
        }
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        self.fail(&FsError::new(libc::EIO, "block fetch ended early"));
    }
}

/// Cuts `[offset, end)` out of consecutive blocks starting at `blocks_start`.
fn assemble(blocks: &[Bytes], blocks_start: u64, offset: u64, end: u64) -> Bytes {
    let skip = (offset - blocks_start) as usize;
    let len = (end - offset) as usize;
    if blocks.len() == 1 {
        return blocks[0].slice(skip..skip + len);
    }
    let mut out = BytesMut::with_capacity(len);
    let mut skip = skip;
    for b in blocks {
        if skip >= b.len() {
            skip -= b.len();
            continue;
        }
        let take = (b.len() - skip).min(len - out.len());
        out.extend_from_slice(&b[skip..skip + take]);
        skip = 0;
        if out.len() == len {
            break;
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemStore;

    fn reader(store: Arc<MemStore>, key: &str, cache_bytes: u64) -> ObjectReader {
        let cfg = ReadConfig {
            cache_bytes,
            block_size: 1024,
            part_size: 4096,
            max_window: 16 * 1024,
            initial_window: 1024,
            ..ReadConfig::default()
        };
        let etag = futures::executor::block_on(store.head(key)).unwrap().etag;
        let size = store.body(key).unwrap().len() as u64;
        ObjectReader::new(ReadContext::new(store, cfg, 4), key, &etag, size)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[tokio::test]
    async fn sequential_and_random_reads_return_exact_bytes() {
        let store = Arc::new(MemStore::new());
        let body = data(50_000);
        store.insert("k", body.clone());
        let r = reader(store.clone(), "k", 1 << 20);
        let mut got = Vec::new();
        let mut off = 0u64;
        while off < body.len() as u64 {
            let b = r.read(off, 3000).await.unwrap();
            off += b.len() as u64;
            got.extend_from_slice(&b);
        }
        assert_eq!(got, body);
        for (o, l) in [
            (0u64, 1u32),
            (1023, 2),
            (49_999, 10),
            (12_345, 7000),
            (50_000, 5),
        ] {
            let b = r.read(o, l).await.unwrap();
            let end = (o as usize + l as usize).min(body.len());
            assert_eq!(
                &b[..],
                &body[(o as usize).min(end)..end],
                "offset {o} len {l}"
            );
        }
    }

    #[tokio::test]
    async fn steady_sequential_reads_use_part_sized_gets() {
        let store = Arc::new(MemStore::new());
        let body = data(400_000);
        store.insert("k", body.clone());
        // block 1 KiB, part 4 KiB, window up to 8 KiB (half the 16 KiB cache)
        let r = reader(store.clone(), "k", 16 * 1024);
        let mut got = Vec::new();
        while got.len() < body.len() {
            got.extend_from_slice(&r.read(got.len() as u64, 512).await.unwrap());
            tokio::task::yield_now().await;
        }
        assert_eq!(got, body);
        // ~98 parts of 4 KiB, plus a few smaller GETs while the window ramps up; one GET per
        // 1 KiB block would be ~390.
        let gets = store.count("get");
        assert!(gets <= 110, "{gets} GETs");
    }

    #[tokio::test]
    async fn cached_reads_do_not_touch_the_store() {
        let store = Arc::new(MemStore::new());
        store.insert("k", data(8000));
        let r = reader(store.clone(), "k", 1 << 20);
        r.read(0, 8000).await.unwrap();
        let gets = store.count("get");
        r.read(100, 5000).await.unwrap();
        assert_eq!(store.count("get"), gets);
    }

    #[tokio::test]
    async fn changed_object_fails_instead_of_mixing() {
        let store = Arc::new(MemStore::new());
        store.insert("k", data(8000));
        let r = reader(store.clone(), "k", 1 << 20);
        r.read(0, 100).await.unwrap();
        store.insert("k", vec![1u8; 8000]);
        let err = r.read(6000, 100).await.unwrap_err();
        assert_eq!(err.errno, libc::ESTALE);
    }

    #[tokio::test]
    async fn blocks_come_back_from_the_disk_tier_without_gets() {
        use crate::data::disk_cache::{DiskCache, DiskCacheConfig};
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskCache::open(&DiskCacheConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: Some(1 << 20),
            source: "mem".into(),
        })
        .unwrap();
        let store = Arc::new(MemStore::new());
        let body = data(20_000);
        store.insert("k", body.clone());
        let with_disk = |store: Arc<MemStore>| {
            let r = reader(store, "k", 1 << 20);
            let ctx = r
                .ctx
                .clone()
                .with_tiers(vec![disk.clone() as Arc<dyn BlockTier>]);
            ObjectReader::new(ctx, "k", &r.etag, r.size)
        };
        let r = with_disk(store.clone());
        assert_eq!(r.read(0, 20_000).await.unwrap(), body);
        disk.flush_and_stop();
        let gets = store.count("get");
        // A fresh memory cache: every block comes from disk.
        let r = with_disk(store.clone());
        assert_eq!(r.read(0, 20_000).await.unwrap(), body);
        assert_eq!(r.read(5000, 3000).await.unwrap(), &body[5000..8000]);
        assert_eq!(store.count("get"), gets);
        assert_eq!(disk.stats().hits, 20);
    }

    /// A version without an ETag cannot be told from a later one: its blocks never go to a
    /// persistent tier, and are never served from one.
    #[tokio::test]
    async fn blocks_without_an_etag_stay_out_of_the_tiers() {
        use crate::data::disk_cache::{DiskCache, DiskCacheConfig};
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskCache::open(&DiskCacheConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: Some(1 << 20),
            source: "mem".into(),
        })
        .unwrap();
        let store = Arc::new(MemStore::new());
        let body = data(20_000);
        store.insert("k", body.clone());
        let r = reader(store.clone(), "k", 1 << 20);
        let ctx = r
            .ctx
            .clone()
            .with_tiers(vec![disk.clone() as Arc<dyn BlockTier>]);
        let r = ObjectReader::new(ctx, "k", "", r.size);
        assert_eq!(r.read(0, 20_000).await.unwrap(), body);
        disk.flush_and_stop();
        assert_eq!(
            disk.bytes(),
            0,
            "nothing written for a version without an ETag"
        );
        let stats = disk.stats();
        assert_eq!(
            (stats.hits, stats.misses),
            (0, 0),
            "the tier was never asked"
        );
    }

    #[tokio::test]
    async fn tiny_cache_still_reads_correctly() {
        let store = Arc::new(MemStore::new());
        let body = data(40_000);
        store.insert("k", body.clone());
        let r = reader(store.clone(), "k", 2048);
        let mut got = Vec::new();
        while got.len() < body.len() {
            got.extend_from_slice(&r.read(got.len() as u64, 1500).await.unwrap());
        }
        assert_eq!(got, body);
    }
}
