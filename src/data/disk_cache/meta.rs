//! The metadata store of the disk cache: the headers a HEAD (or a GET) answered for each
//! object, kept under `DIR/meta/` so that a remount's `ls -l` of unchanged objects needs no
//! HEAD.
//!
//! Design note:
//! * **What is kept.** The whole [`ObjectMeta`] of the last version of each key seen with its
//!   headers: size, ETag, Last-Modified, Content-Type, storage class, version id and the user
//!   metadata (s3fs's mode, owner, times, and whatever else the attributes are built from).
//! * **Keys.** One file per key, named after the CRC-64 of (source, key) and laid out as the
//!   block files are ([`super::index::block_path`], under `meta/`). An entry is served only
//!   for the version asked for: the same ETag and the same Last-Modified second (a HEAD's
//!   Last-Modified is an HTTP date, whole seconds), so a changed object — new ETag, or a
//!   metadata change by CopyObject, which keeps a simple upload's ETag but not its
//!   Last-Modified — is a miss, and its next HEAD replaces the entry. The caller must know
//!   the current version (from a listing or a HEAD): [`MetaCache::last_etag`] is only a hint
//!   for which request to send, never an answer.
//! * **Integrity.** A file is `magic | body length | CRC32C | body`; a file that fails any
//!   check is deleted and is a miss. A file holding another key (a hash collision) is a miss.
//! * **Crash safety.** Written under a temporary name and renamed into place (as blocks are).
//! * **Bounds.** Separate from the blocks' bound: [`meta_bound`] — 1/16 of `--max-cache-size`,
//!   within [16 MiB, 1 GiB] — counting each file as the 4 KiB its disk blocks take; least
//!   recently used entries go first. The in-memory index holds 24 bytes an entry, no names.
//! * **Space.** Like blocks, nothing is written while the filesystem under DIR has less than
//!   5% free (or 2 GiB if that is smaller; `Space::nearly_full`) (one log line when writing stops, one when it resumes).
//! * **Off the critical path.** Writes go through a bounded queue to a writer thread (a full
//!   queue drops the entry: a later HEAD writes it again). Reads are small and synchronous;
//!   callers run them in `spawn_blocking`.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crc_fast::{CrcAlgorithm, Digest};
use tracing::{debug, info, warn};

use super::index::{block_path, scan, Index, TEMP_SUFFIX};
use super::{statvfs_space, RoomGate, SpaceProbe};
use crate::storage::ObjectMeta;

/// Subdirectory of DIR holding the metadata files.
pub const META_DIR: &str = "meta";
/// First bytes of every metadata file.
const MAGIC: &[u8; 8] = b"S3MMETA1";
/// Bytes before the body: magic, body length (u32), CRC32C of the body (u32).
const HEADER_LEN: usize = 16;
/// What a file is counted as: the disk block it takes at least.
const DISK_BLOCK: u64 = 4096;
/// Entries waiting for the writer; beyond this, entries are dropped.
const QUEUE_ENTRIES: usize = 4096;
/// Eviction removes entries down to this share (percent) of the bound.
const LOW_WATER_PERCENT: u64 = 95;

/// The bound of the metadata store for a block bound of `block_bytes`.
pub fn meta_bound(block_bytes: u64) -> u64 {
    (block_bytes / 16).clamp(16 << 20, 1 << 30)
}

/// Counters of the metadata store.
#[derive(Debug, Default)]
pub struct MetaCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

struct Shared {
    dir: PathBuf,
    source: String,
    max_bytes: u64,
    index: Mutex<Index>,
    counters: MetaCounters,
    room: RoomGate,
}

/// An entry on its way to the writer.
struct Job {
    hash: u64,
    file: Vec<u8>,
}

/// The metadata store.
pub struct MetaCache {
    shared: Arc<Shared>,
    writer: Mutex<Option<(SyncSender<Job>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaCache")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl MetaCache {
    /// Opens the store under `cache_dir` (already locked by the disk cache) for the objects of
    /// `source`, bounded to `max_bytes`.
    pub fn open(cache_dir: &Path, source: &str, max_bytes: u64) -> io::Result<Arc<MetaCache>> {
        Self::open_with_probe(cache_dir, source, max_bytes, Box::new(statvfs_space))
    }

    /// As [`open`](Self::open), measuring free space with `space`.
    pub fn open_with_probe(
        cache_dir: &Path,
        source: &str,
        max_bytes: u64,
        space: SpaceProbe,
    ) -> io::Result<Arc<MetaCache>> {
        let dir = cache_dir.join(META_DIR);
        std::fs::create_dir_all(&dir)?;
        let scan = scan(&dir)?;
        info!(
            dir = %dir.display(),
            entries = scan.index.len(),
            max_bytes,
            "metadata cache opened"
        );
        let shared = Arc::new(Shared {
            dir,
            source: source.to_string(),
            max_bytes,
            index: Mutex::new(scan.index),
            counters: MetaCounters::default(),
            room: RoomGate::new(space, "metadata cache"),
        });
        shared.evict_over();
        let (tx, rx) = sync_channel::<Job>(QUEUE_ENTRIES);
        let worker = shared.clone();
        let handle = std::thread::Builder::new()
            .name("s3mount-meta".into())
            .spawn(move || {
                for job in rx {
                    worker.write(job);
                }
            })?;
        Ok(Arc::new(MetaCache {
            shared,
            writer: Mutex::new(Some((tx, handle))),
        }))
    }

    /// The headers of `key` if the entry is of the version with `etag` and `last_modified`
    /// (same second). Blocking: reads a file.
    pub fn get(&self, key: &str, etag: &str, last_modified: SystemTime) -> Option<ObjectMeta> {
        let found = self
            .load(key)
            .filter(|m| m.etag == etag && same_second(m.last_modified, last_modified));
        let counter = match found {
            Some(_) => &self.shared.counters.hits,
            None => &self.shared.counters.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The ETag of the last version of `key` seen with its headers: a hint only (the object
    /// may have changed since). Blocking: reads a file.
    pub fn last_etag(&self, key: &str) -> Option<String> {
        self.load(key).map(|m| m.etag)
    }

    /// Keeps `meta` as the headers of `key` (replacing any older version), in the background.
    pub fn put(&self, key: &str, meta: &ObjectMeta) {
        let hash = self.hash(key);
        let file = encode_file(&self.shared.source, key, meta);
        let writer = self.writer.lock().unwrap();
        let sent = writer
            .as_ref()
            .is_some_and(|(tx, _)| tx.try_send(Job { hash, file }).is_ok());
        if !sent {
            self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters.
    pub fn counters(&self) -> &MetaCounters {
        &self.shared.counters
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shared.index.lock().unwrap().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes what is queued, then stops the writer; later entries are dropped.
    pub fn flush_and_stop(&self) {
        let writer = self.writer.lock().unwrap().take();
        if let Some((tx, handle)) = writer {
            drop(tx);
            if handle.join().is_err() {
                warn!("metadata cache writer panicked");
            }
            let c = &self.shared.counters;
            info!(
                hits = c.hits.load(Ordering::Relaxed),
                misses = c.misses.load(Ordering::Relaxed),
                written = c.written.load(Ordering::Relaxed),
                dropped = c.dropped.load(Ordering::Relaxed),
                "metadata cache closed"
            );
        }
    }

    fn hash(&self, key: &str) -> u64 {
        let mut id = Vec::with_capacity(self.shared.source.len() + key.len() + 8);
        put_str(&mut id, &self.shared.source);
        put_str(&mut id, key);
        crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &id)
    }

    /// The entry of `key`, whatever its version.
    fn load(&self, key: &str) -> Option<ObjectMeta> {
        let hash = self.hash(key);
        if !self.shared.index.lock().unwrap().touch(hash) {
            return None;
        }
        let path = block_path(&self.shared.dir, hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.shared.index.lock().unwrap().remove(hash);
                return None;
            }
            Err(e) => return self.shared.drop_entry(hash, &path, &e),
        };
        match decode_file(&bytes) {
            Ok((source, k, meta)) if source == self.shared.source && k == key => Some(meta),
            Ok(_) => None, // another key with the same hash
            Err(e) => self.shared.drop_entry(hash, &path, &e),
        }
    }
}

impl Drop for MetaCache {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

impl Shared {
    /// Forgets and deletes a damaged entry; a miss.
    fn drop_entry(
        &self,
        hash: u64,
        path: &Path,
        why: &dyn std::fmt::Display,
    ) -> Option<ObjectMeta> {
        warn!(file = %path.display(), "metadata cache: dropped a damaged entry ({why})");
        self.index.lock().unwrap().remove(hash);
        let _ = std::fs::remove_file(path);
        None
    }

    fn write(&self, job: Job) {
        if !self.room.has_room(&self.dir) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let path = block_path(&self.dir, job.hash);
        let temp = path.with_extension(TEMP_SUFFIX);
        let result = (|| {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&temp, &job.file)?;
            std::fs::rename(&temp, &path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            debug!("metadata cache: cannot write an entry: {e}");
            return;
        }
        let size = (job.file.len() as u64).div_ceil(DISK_BLOCK) * DISK_BLOCK;
        self.index.lock().unwrap().insert(job.hash, size);
        self.counters.written.fetch_add(1, Ordering::Relaxed);
        self.evict_over();
    }

    fn evict_over(&self) {
        let gone = {
            let mut index = self.index.lock().unwrap();
            if index.bytes() <= self.max_bytes {
                return;
            }
            index.evict_to(self.max_bytes / 100 * LOW_WATER_PERCENT)
        };
        for hash in &gone {
            let _ = std::fs::remove_file(block_path(&self.dir, *hash));
        }
        debug!(evicted = gone.len(), "metadata cache over its bound");
    }
}

/// Whether two times name the same whole second.
fn same_second(a: SystemTime, b: SystemTime) -> bool {
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs(a) == secs(b)
}

/// Why a metadata file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaFileError {
    #[error("not a metadata file (bad magic)")]
    BadMagic,
    #[error("truncated or padded")]
    WrongSize,
    #[error("checksum mismatch")]
    Checksum,
    #[error("malformed body")]
    Malformed,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    out.push(s.is_some() as u8);
    put_str(out, s.unwrap_or_default());
}

/// The whole file for `meta` of `key` from `source`.
pub fn encode_file(source: &str, key: &str, meta: &ObjectMeta) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    put_str(&mut body, source);
    put_str(&mut body, key);
    put_str(&mut body, &meta.etag);
    let lm = meta
        .last_modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    body.extend_from_slice(&lm.as_secs().to_le_bytes());
    body.extend_from_slice(&lm.subsec_nanos().to_le_bytes());
    body.extend_from_slice(&meta.size.to_le_bytes());
    put_opt(&mut body, meta.content_type.as_deref());
    put_opt(&mut body, meta.storage_class.as_deref());
    put_opt(&mut body, meta.version_id.as_deref());
    let mut pairs: Vec<_> = meta.metadata.iter().collect();
    pairs.sort();
    body.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        put_str(&mut body, k);
        put_str(&mut body, v);
    }
    let mut file = Vec::with_capacity(HEADER_LEN + body.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc32c(&body).to_le_bytes());
    file.extend_from_slice(&body);
    file
}

fn crc32c(body: &[u8]) -> u32 {
    let mut d = Digest::new(CrcAlgorithm::Crc32Iscsi);
    d.update(body);
    d.finalize() as u32
}

/// Reads fields off a body, front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MetaFileError> {
        if self.0.len() < n {
            return Err(MetaFileError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, MetaFileError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, MetaFileError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String, MetaFileError> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| MetaFileError::Malformed)
    }
    fn opt(&mut self) -> Result<Option<String>, MetaFileError> {
        let some = self.take(1)?[0];
        let s = self.string()?;
        match some {
            0 => Ok(None),
            1 => Ok(Some(s)),
            _ => Err(MetaFileError::Malformed),
        }
    }
}

/// Checks and parses a whole file: its source, key and headers.
pub fn decode_file(file: &[u8]) -> Result<(String, String, ObjectMeta), MetaFileError> {
    if file.len() < HEADER_LEN || &file[..8] != MAGIC {
        return Err(MetaFileError::BadMagic);
    }
    let len = u32::from_le_bytes(file[8..12].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(file[12..16].try_into().unwrap());
    let body = &file[HEADER_LEN..];
    if body.len() != len {
        return Err(MetaFileError::WrongSize);
    }
    if crc32c(body) != crc {
        return Err(MetaFileError::Checksum);
    }
    let mut r = Reader(body);
    let (source, key, etag) = (r.string()?, r.string()?, r.string()?);
    let (secs, nanos) = (r.u64()?, r.u32()?);
    let last_modified = UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999));
    let size = r.u64()?;
    let (content_type, storage_class, version_id) = (r.opt()?, r.opt()?, r.opt()?);
    let count = r.u32()?;
    let mut metadata = HashMap::new();
    for _ in 0..count {
        metadata.insert(r.string()?, r.string()?);
    }
    if !r.0.is_empty() {
        return Err(MetaFileError::Malformed);
    }
    let meta = ObjectMeta {
        size,
        last_modified,
        etag,
        content_type,
        storage_class,
        version_id,
        metadata,
    };
    Ok((source, key, meta))
}

#[cfg(test)]
#[path = "meta_tests.rs"]
mod tests;
