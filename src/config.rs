//! Configuration of the filesystem core, with every default documented next to its reason.
//!
//! The CLI ([`crate::cli`]) builds these structs; the core reads only them, so unit tests can
//! construct a filesystem without parsing arguments.

use std::path::PathBuf;
use std::time::Duration;

use crate::data::salvage::Origin;

/// How the filesystem behaves.
#[derive(Clone, Debug)]
pub struct FsConfig {
    /// Key prefix the mount's root maps to: empty, or ending with `/`.
    pub prefix: String,
    /// Refuse every modification with `EROFS`. Default off.
    pub read_only: bool,
    /// Owner of every inode. Default: the user who mounts.
    pub uid: u32,
    /// Group of every inode. Default: the mounting user's group.
    pub gid: u32,
    /// Permission bits of files without an s3fs `x-amz-meta-mode`. Default 0644: the owner
    /// may write, everyone may read, as a fresh file under a usual umask.
    pub file_mode: u16,
    /// Permission bits of directories. Default 0755, for the same reason.
    pub dir_mode: u16,
    /// How long a lookup/stat answer (positive or negative) is trusted, by us and by the
    /// kernel. Default 5 s: long enough that `ls -l` followed by reading the listed files
    /// needs no `HeadObject` per file, short enough that changes made by other clients show
    /// up quickly. Use 0 for strict freshness.
    pub metadata_ttl: Duration,
    /// Whether attributes from a listing may be handed to the kernel as they are
    /// (`--listing-attributes`). Default false: a listing lacks s3fs's stored mode, owner and
    /// times, so `stat` would show defaults and the upload time instead of the truth; each
    /// entry whose headers are unknown is completed (HEAD, in parallel) before its
    /// attributes reach the kernel. True trades that for listing speed, as mount-s3 does, for
    /// buckets that never carry s3fs headers.
    pub trust_listing_attrs: bool,
    /// Whether users other than the mounting one can reach the mount (`--allow-other`,
    /// `--allow-root`). Default false. When true, what a user creates is stored as theirs
    /// (`x-amz-meta-uid`/`gid` from the request), so it stays theirs to chmod.
    pub other_users: bool,
    /// Block cache and read-ahead settings.
    pub read: ReadConfig,
    /// Upload settings.
    pub write: WriteConfig,
    /// The root holds buckets, not objects (`--all-buckets`): a file created there is refused
    /// with EINVAL at once, not at its first flush. Default false.
    pub buckets_at_root: bool,
}

impl FsConfig {
    /// `EROFS` on a read-only mount: the one check every change makes first.
    pub fn check_writable(&self) -> crate::error::FsResult<()> {
        match self.read_only {
            true => Err(crate::error::FsError::read_only()),
            false => Ok(()),
        }
    }
}

/// Read path settings.
#[derive(Clone, Debug)]
pub struct ReadConfig {
    /// Bound of the in-memory block cache, in bytes, blocks still in flight included (each
    /// reserves its length when its GET starts). Default 128 MiB: room for the read-ahead
    /// window of a few sequential readers plus a working set of random reads, while keeping
    /// the process well under 256 MiB of RSS.
    pub cache_bytes: u64,
    /// Size of one cache block, in bytes. Default 256 KiB: random reads of 4-256 KiB fetch
    /// little more than they need, while sequential reads still use large requests.
    pub block_size: u64,
    /// Size of one ranged GET during sequential reads (`--part-size`). Default 8 MiB, S3's
    /// sweet spot between per-request latency and throughput.
    pub part_size: u64,
    /// Largest read-ahead window of one sequential reader. Default 64 MiB: eight 8 MiB GETs
    /// in flight, enough to fill a fast link; capped at half the cache so read-ahead never
    /// evicts what is about to be read.
    pub max_window: u64,
    /// First read-ahead window, doubled on each sequential read up to `max_window`.
    /// Default 1 MiB: a small file or a short read costs little.
    pub initial_window: u64,
    /// The disk tier behind the memory cache (`--cache DIR`). Default none: a disk cache
    /// costs disk space and writes, and pays off only for data read again after it has left
    /// memory (a remount, a working set larger than `cache_bytes`), so it is asked for.
    pub disk_cache: Option<crate::data::disk_cache::DiskCacheConfig>,
}

/// Write path settings.
#[derive(Clone, Debug)]
pub struct WriteConfig {
    /// Size of each part of a multipart upload. Default 8 MiB.
    pub part_size: u64,
    /// Parts uploaded at once per file. Default 4: bounds memory at 4 parts per writer.
    pub max_parts_in_flight: usize,
    /// Directory for staged files, and (under `failed-uploads/`) for the copies of uploads
    /// that failed. The CLI always sets it: `--cache-dir`, else a persistent state directory
    /// (`crate::recovery::default_dir`). `None`, for library use, means the system temp dir.
    pub cache_dir: Option<PathBuf>,
    /// Where objects go, recorded with each failed upload so a retry can default to it.
    pub origin: Origin,
}

impl WriteConfig {
    /// The directory staging files are created in.
    pub fn staging_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}

impl Default for ReadConfig {
    fn default() -> Self {
        ReadConfig {
            cache_bytes: 128 << 20,
            block_size: 256 << 10,
            part_size: 8 << 20,
            max_window: 64 << 20,
            initial_window: 1 << 20,
            disk_cache: None,
        }
    }
}

impl ReadConfig {
    /// The largest window actually used: never more than half the cache.
    pub fn effective_max_window(&self) -> u64 {
        self.max_window
            .min(self.cache_bytes / 2)
            .max(self.block_size)
    }
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            part_size: 8 << 20,
            max_parts_in_flight: 4,
            cache_dir: None,
            origin: Origin::default(),
        }
    }
}

impl Default for FsConfig {
    fn default() -> Self {
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        FsConfig {
            prefix: String::new(),
            read_only: false,
            uid,
            gid,
            file_mode: 0o644,
            dir_mode: 0o755,
            metadata_ttl: Duration::from_secs(5),
            trust_listing_attrs: false,
            other_users: false,
            read: ReadConfig::default(),
            write: WriteConfig::default(),
            buckets_at_root: false,
        }
    }
}
