//! The local disk tier: blocks kept in a directory (`--cache DIR`) so that they survive a
//! remount and a working set larger than the memory cache.
//!
//! Design note:
//! * **Keys.** A block file is named after a hash of its identity — source (endpoint, bucket,
//!   prefix), key, ETag, block index — and carries that identity and a CRC32C of it and the
//!   data ([`block_file`]). A changed object has another ETag, so its old blocks are never
//!   asked for; they age out by LRU.
//! * **Integrity.** Every read checks magic, length, identity and CRC. A damaged, truncated
//!   or unreadable block is logged, deleted and reported as a miss: the read goes to S3.
//! * **Crash safety.** A block is written under a temporary name and renamed once complete,
//!   so a block file is either whole or absent; a mount killed mid-write leaves only
//!   temporary files, which the next mount deletes. There is no fsync: after a power loss a
//!   renamed file may be empty or partly zero, which the length and CRC checks catch.
//! * **Bounds.** The index ([`index`]) counts the bytes of every block file; when a write
//!   takes them over `max_bytes`, the least recently used blocks are deleted down to 95% of
//!   it. While the filesystem under DIR has less than 5% of its space free (or 2 GiB if that
//!   is smaller), nothing is written (one log line when caching stops, one when it resumes).
//! * **Writes keep up.** Reads run in `spawn_blocking`. Writes go through a bounded queue to
//!   two writer threads, after the block has reached its reader. A full queue makes the fetch
//!   that offers the next block wait for room (up to [`OFFER_WAIT`]): a cold read with a
//!   cache runs at most as fast as the disk takes its blocks, and the cache holds the whole
//!   object afterwards (dropping them made a later re-read GET what the cache had skipped).
//!   A disk that cannot take a block within [`OFFER_WAIT`] is given up on: offers are then
//!   dropped without waiting until the queue is half empty again, so a stalled disk costs a
//!   reader one wait, not one per block.
//! * **One owner.** The directory is locked (`flock` on `DIR/s3mount.lock`) for the life of
//!   the mount; a second mount on it is refused. The lock goes away with the process, even
//!   after SIGKILL.

pub mod block_file;
pub mod index;
pub mod meta;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use nix::fcntl::{Flock, FlockArg};
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tracing::{debug, info, warn};

use self::block_file::{BlockFileError, HEADER_LEN};
use self::index::{block_path, Index, TEMP_SUFFIX};
use super::cache::BlockKey;
use super::tier::{BlockTier, TierCounters, TierStats};

/// Name of the lock file in DIR.
pub const LOCK_FILE: &str = "s3mount.lock";
/// Subdirectory of DIR holding the block files.
pub const BLOCKS_DIR: &str = "blocks";
/// Blocks waiting for the writers; beyond this, an offer waits. 64 blocks of 256 KiB cap the
/// queue's memory at 16 MiB.
const QUEUE_BLOCKS: usize = 64;
/// Writer threads: on a busy 2-core machine one fell behind a cold sequential read.
const WRITERS: usize = 2;
/// How long an offer waits for room in a full queue before the disk is deemed stalled. A
/// healthy disk frees a slot in well under a millisecond; this only bounds the cost of a
/// stalled one.
pub const OFFER_WAIT: Duration = Duration::from_millis(250);
/// A block file read whose mtime is older than this gets it refreshed (the LRU order the next
/// mount rebuilds from mtimes); a younger one is left alone, which saves a metadata write per
/// block on a re-read of what was just cached.
const TOUCH_AFTER: Duration = Duration::from_secs(60);
/// While there is room, free space is measured again at most this often (a statvfs per block
/// written was measurable); while paused, at every offer, so that caching resumes at once.
const ROOM_RECHECK: Duration = Duration::from_secs(1);
/// Caching pauses while less than this share (percent) of the filesystem is free...
const MIN_FREE_PERCENT: u64 = 5;
/// ...or less than this many bytes, if that is smaller: 5% of a large disk is more room than
/// "nearly full" means (12 GiB of a 250 GiB disk).
const MIN_FREE_BYTES: u64 = 2 << 30;
/// Without `--max-cache-size`: this share (percent) of the space the cache may use when it
/// opens (free space plus what the cache already holds).
pub const DEFAULT_SHARE_PERCENT: u64 = 50;
/// Eviction removes blocks down to this share (percent) of the bound, so it runs in batches.
const LOW_WATER_PERCENT: u64 = 95;

/// Why the disk cache could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DiskCacheError {
    #[error("cannot create cache directory {}: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cache directory {} is in use by another s3mount (its lock file {} is held): \
             give each mount its own --cache DIR", .dir.display(), .lock.display())]
    Busy { dir: PathBuf, lock: PathBuf },
    #[error("cannot lock cache directory {}: {source}", .path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("cannot read cache directory {}: {source}", .path.display())]
    Scan { path: PathBuf, source: io::Error },
    #[error("cannot find the free space under cache directory {}: {source}", .path.display())]
    Space { path: PathBuf, source: io::Error },
}

/// How to open the disk cache.
#[derive(Clone, Debug)]
pub struct DiskCacheConfig {
    /// The directory (`--cache`).
    pub dir: PathBuf,
    /// Bound in bytes (`--max-cache-size`); `None` for [`DEFAULT_SHARE_PERCENT`] of the space
    /// available when the cache opens.
    pub max_bytes: Option<u64>,
    /// Identifies the source bucket (endpoint, bucket, prefix) in every block's identity.
    pub source: String,
}

/// Space on the filesystem under the cache directory.
#[derive(Clone, Copy, Debug)]
pub struct Space {
    pub total: u64,
    pub available: u64,
}

impl Space {
    /// Whether the filesystem is nearly full: less than [`MIN_FREE_PERCENT`] of it free, or
    /// less than [`MIN_FREE_BYTES`] if that is smaller.
    pub fn nearly_full(&self) -> bool {
        self.available < (self.total / 100 * MIN_FREE_PERCENT).min(MIN_FREE_BYTES)
    }
}

/// Measures the space under a directory (a parameter so tests can fake a full disk).
pub type SpaceProbe = Box<dyn Fn(&Path) -> io::Result<Space> + Send + Sync>;

/// The real probe: statvfs(3).
pub fn statvfs_space(path: &Path) -> io::Result<Space> {
    let s = nix::sys::statvfs::statvfs(path)?;
    let frag = s.fragment_size() as u64;
    Ok(Space {
        total: s.blocks() as u64 * frag,
        available: s.blocks_available() as u64 * frag,
    })
}

/// Pauses writing while the filesystem is nearly full and resumes when space returns, with one
/// log line each way; shared by the block and metadata stores. A probe that fails counts as
/// room: the cache's own bound still holds, and a write that fails only costs a miss.
pub struct RoomGate {
    space: SpaceProbe,
    paused: AtomicBool,
    /// When room was last found (re-measured after [`ROOM_RECHECK`]).
    room_seen: Mutex<Option<Instant>>,
    /// What is paused, for the log lines ("disk cache", "metadata cache").
    what: &'static str,
}

impl RoomGate {
    pub fn new(space: SpaceProbe, what: &'static str) -> Self {
        RoomGate {
            space,
            paused: AtomicBool::new(false),
            room_seen: Mutex::new(None),
            what,
        }
    }

    /// Whether there is room to write under `dir`.
    pub fn has_room(&self, dir: &Path) -> bool {
        let mut seen = self.room_seen.lock().unwrap();
        if seen.is_some_and(|at| at.elapsed() < ROOM_RECHECK) {
            return true;
        }
        let full = match (self.space)(dir) {
            Ok(s) => s.nearly_full(),
            Err(e) => {
                debug!("{}: cannot measure free space: {e}", self.what);
                false
            }
        };
        let was = self.paused.swap(full, Ordering::Relaxed);
        if full && !was {
            warn!(
                dir = %dir.display(),
                "{} paused: the filesystem is nearly full; reads go to S3 until space returns",
                self.what
            );
        } else if !full && was {
            info!(dir = %dir.display(), "{} resumed: space is available again", self.what);
        }
        *seen = (!full).then(Instant::now);
        !full
    }
}

/// State shared by readers and the writer thread.
struct Shared {
    blocks: PathBuf,
    source: String,
    max_bytes: u64,
    index: Mutex<Index>,
    counters: TierCounters,
    room: RoomGate,
}

/// A block on its way to the writer.
struct Job {
    hash: u64,
    identity: Vec<u8>,
    data: Bytes,
}

/// The disk tier.
pub struct DiskCache {
    shared: Arc<Shared>,
    writer: Mutex<Option<Writers>>,
    /// Set when an offer found the queue full for [`OFFER_WAIT`]; offers then skip the wait
    /// until the queue is half empty.
    stalled: AtomicBool,
    _lock: Flock<File>,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("blocks", &self.shared.blocks)
            .field("max_bytes", &self.shared.max_bytes)
            .finish()
    }
}

impl DiskCache {
    /// Opens (creating it if needed) and locks the cache directory, and rebuilds the index.
    pub fn open(config: &DiskCacheConfig) -> Result<Arc<DiskCache>, DiskCacheError> {
        Self::open_with_probe(config, Box::new(statvfs_space))
    }

    /// As [`open`](Self::open), measuring free space with `space`.
    pub fn open_with_probe(
        config: &DiskCacheConfig,
        space: SpaceProbe,
    ) -> Result<Arc<DiskCache>, DiskCacheError> {
        let dir = &config.dir;
        let blocks = dir.join(BLOCKS_DIR);
        std::fs::create_dir_all(&blocks).map_err(|source| DiskCacheError::Create {
            path: blocks.clone(),
            source,
        })?;
        let lock = lock_dir(dir)?;
        let scan = index::scan(&blocks).map_err(|source| DiskCacheError::Scan {
            path: blocks.clone(),
            source,
        })?;
        let held = scan.index.bytes();
        let max_bytes = match config.max_bytes {
            Some(max) => max,
            None => {
                let s = space(dir).map_err(|source| DiskCacheError::Space {
                    path: dir.clone(),
                    source,
                })?;
                (s.available + held) / 100 * DEFAULT_SHARE_PERCENT
            }
        };
        info!(
            dir = %dir.display(),
            blocks = scan.index.len(),
            held,
            max_bytes,
            temp_removed = scan.temp_removed,
            "disk cache opened"
        );
        let shared = Arc::new(Shared {
            blocks,
            source: config.source.clone(),
            max_bytes,
            index: Mutex::new(scan.index),
            counters: TierCounters::default(),
            room: RoomGate::new(space, "disk cache"),
        });
        shared.evict_over(max_bytes);
        let (tx, rx) = channel::<Job>(QUEUE_BLOCKS);
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..WRITERS)
            .map(|_| spawn_writer(shared.clone(), rx.clone()))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|source| DiskCacheError::Create {
                path: dir.clone(),
                source,
            })?;
        Ok(Arc::new(DiskCache {
            shared,
            writer: Mutex::new(Some((tx, handles))),
            stalled: AtomicBool::new(false),
            _lock: lock,
        }))
    }

    /// The bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.shared.max_bytes
    }

    /// Bytes of block files held now.
    pub fn bytes(&self) -> u64 {
        self.shared.index.lock().unwrap().bytes()
    }

    /// Writes what is queued, then stops the writer; later offers are dropped.
    pub fn flush_and_stop(&self) {
        let writer = self.writer.lock().unwrap().take();
        if let Some((tx, handles)) = writer {
            drop(tx);
            for handle in handles {
                if handle.join().is_err() {
                    warn!("disk cache writer panicked");
                }
            }
        }
    }

    fn identity(&self, key: &BlockKey) -> (Vec<u8>, u64) {
        let id = block_file::identity(&self.shared.source, &key.key, &key.etag, key.index);
        let hash = block_file::name_hash(&id);
        (id, hash)
    }
}

/// The queue's sending end and the writer threads behind it.
type Writers = (Sender<Job>, Vec<JoinHandle<()>>);

/// A writer thread: takes jobs off the shared queue until every sender is gone.
fn spawn_writer(shared: Arc<Shared>, rx: Arc<Mutex<Receiver<Job>>>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("s3mount-cache".into())
        .spawn(move || loop {
            // The lock is held only while waiting for the next job, not while writing it.
            let job = rx.lock().unwrap().blocking_recv();
            match job {
                Some(job) => shared.write(job),
                None => return,
            }
        })
}

impl Drop for DiskCache {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

/// Takes the lock on `dir`, or says who holds it.
fn lock_dir(dir: &Path) -> Result<Flock<File>, DiskCacheError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DiskCacheError::Lock {
            path: path.clone(),
            source,
        })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(DiskCacheError::Busy {
            dir: dir.to_path_buf(),
            lock: path,
        }),
        Err((_, e)) => Err(DiskCacheError::Lock {
            path,
            source: e.into(),
        }),
    }
}

/// Sets the mtime of a block file just read to now, unless it is younger than [`TOUCH_AFTER`].
fn refresh_mtime(file: &File, meta: &std::fs::Metadata) {
    let now = SystemTime::now();
    let young = meta
        .modified()
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age < TOUCH_AFTER));
    if !young {
        let _ = file.set_modified(now);
    }
}

/// Why a block could not be read.
enum ReadFailure {
    /// No file (evicted or dropped meanwhile).
    Absent,
    /// The file is sound but holds another block.
    Other,
    /// The file is damaged or unreadable: drop it.
    Damaged(String),
}

impl Shared {
    /// Reads and checks the file of `hash`; refreshes its mtime (the LRU order of the next
    /// mount) when it is sound.
    fn read(&self, hash: u64, identity: &[u8], len: u64) -> Result<Bytes, ReadFailure> {
        let path = block_path(&self.blocks, hash);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadFailure::Absent),
            Err(e) => return Err(ReadFailure::Damaged(e.to_string())),
        };
        let damaged = |e: &dyn std::fmt::Display| ReadFailure::Damaged(e.to_string());
        let meta = file.metadata().map_err(|e| damaged(&e))?;
        let size = meta.len();
        let expected = (HEADER_LEN + identity.len()) as u64 + len;
        if size != expected {
            let e = BlockFileError::WrongSize {
                expected,
                actual: size,
            };
            return Err(damaged(&e));
        }
        let mut buf = Vec::with_capacity(size as usize);
        file.read_to_end(&mut buf).map_err(|e| damaged(&e))?;
        match block_file::verify(&buf, identity, len) {
            Ok(start) => {
                refresh_mtime(&file, &meta);
                Ok(Bytes::from(buf).slice(start..))
            }
            Err(BlockFileError::OtherBlock) => Err(ReadFailure::Other),
            Err(e) => Err(damaged(&e)),
        }
    }

    /// Forgets and deletes the file of `hash`.
    fn drop_block(&self, hash: u64) {
        self.index.lock().unwrap().remove(hash);
        let _ = std::fs::remove_file(block_path(&self.blocks, hash));
    }

    /// The writer thread's work for one block.
    fn write(&self, job: Job) {
        if self.index.lock().unwrap().touch(job.hash) || !self.room.has_room(&self.blocks) {
            TierCounters::bump(&self.counters.skipped);
            return;
        }
        match self.write_file(&job) {
            Ok(size) => {
                self.index.lock().unwrap().insert(job.hash, size);
                self.counters
                    .bytes_written
                    .fetch_add(job.data.len() as u64, Ordering::Relaxed);
                self.evict_over(self.max_bytes);
            }
            Err(e) => {
                TierCounters::bump(&self.counters.skipped);
                debug!("disk cache: cannot write a block: {e}");
            }
        }
    }

    /// Writes the file of `job` under a temporary name, then renames it into place.
    fn write_file(&self, job: &Job) -> io::Result<u64> {
        let path = block_path(&self.blocks, job.hash);
        // Unique per write: two writers may be handed the same block.
        static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_extension(format!("{n}.{TEMP_SUFFIX}"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let header = block_file::header(&job.identity, &job.data);
        let result = (|| {
            let mut f = File::create(&temp)?;
            f.write_all(&header)?;
            f.write_all(&job.data)?;
            drop(f);
            std::fs::rename(&temp, &path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok((header.len() + job.data.len()) as u64)
    }

    /// Deletes least recently used blocks while the cache is over `max`.
    fn evict_over(&self, max: u64) {
        let gone = {
            let mut index = self.index.lock().unwrap();
            if index.bytes() <= max {
                return;
            }
            index.evict_to(max / 100 * LOW_WATER_PERCENT)
        };
        for hash in &gone {
            let _ = std::fs::remove_file(block_path(&self.blocks, *hash));
        }
        self.counters
            .evictions
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
        debug!(evicted = gone.len(), "disk cache over its bound");
    }
}

#[async_trait]
impl BlockTier for DiskCache {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn contains(&self, key: &BlockKey) -> bool {
        let (_, hash) = self.identity(key);
        self.shared.index.lock().unwrap().contains(hash)
    }

    async fn get(&self, key: &BlockKey, len: u64) -> Option<Bytes> {
        let (identity, hash) = self.identity(key);
        let counters = &self.shared.counters;
        if !self.shared.index.lock().unwrap().touch(hash) {
            TierCounters::bump(&counters.misses);
            return None;
        }
        let shared = self.shared.clone();
        let read = tokio::task::spawn_blocking(move || shared.read(hash, &identity, len)).await;
        match read {
            Ok(Ok(data)) => {
                TierCounters::bump(&counters.hits);
                counters.bytes_read.fetch_add(len, Ordering::Relaxed);
                return Some(data);
            }
            Ok(Err(ReadFailure::Absent)) => {
                self.shared.index.lock().unwrap().remove(hash);
            }
            Ok(Err(ReadFailure::Other)) => {}
            Ok(Err(ReadFailure::Damaged(why))) => {
                TierCounters::bump(&counters.checksum_failures);
                warn!(
                    key = %key.key,
                    block = key.index,
                    file = %block_path(&self.shared.blocks, hash).display(),
                    "disk cache: dropped a damaged block ({why}); fetching it again"
                );
                self.shared.drop_block(hash);
            }
            Err(e) => warn!("disk cache: a read task failed: {e}"),
        }
        TierCounters::bump(&counters.misses);
        None
    }

    async fn offer(&self, key: &BlockKey, data: &Bytes) {
        let (identity, hash) = self.identity(key);
        let job = Job {
            hash,
            identity,
            data: data.clone(),
        };
        let Some(tx) = self
            .writer
            .lock()
            .unwrap()
            .as_ref()
            .map(|(tx, _)| tx.clone())
        else {
            TierCounters::bump(&self.shared.counters.skipped);
            return;
        };
        if self.stalled.load(Ordering::Relaxed) && tx.capacity() >= QUEUE_BLOCKS / 2 {
            self.stalled.store(false, Ordering::Relaxed);
            info!("disk cache: the writers caught up; offers wait for room again");
        }
        let sent = match self.stalled.load(Ordering::Relaxed) {
            true => tx.try_send(job).is_ok(),
            false => match tx.send_timeout(job, OFFER_WAIT).await {
                Ok(()) => true,
                Err(SendTimeoutError::Timeout(_)) => {
                    self.stalled.store(true, Ordering::Relaxed);
                    warn!(
                        "disk cache: the disk took no block for {OFFER_WAIT:?}; blocks are \
                         dropped instead of waited for until the writers catch up"
                    );
                    false
                }
                Err(SendTimeoutError::Closed(_)) => false,
            },
        };
        if !sent {
            TierCounters::bump(&self.shared.counters.skipped);
        }
    }

    fn stats(&self) -> TierStats {
        self.shared.counters.snapshot(self.bytes())
    }
}
