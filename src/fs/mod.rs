//! The filesystem core: a façade over components that own their state.
//!
//! Design note: every FUSE request lands in one short async method of [`S3Fs`], which the FUSE
//! adapter ([`crate::fuse`]) runs and answers from. Each method validates what it must and
//! delegates to the component that owns the state involved:
//! - [`Namespace`] (`namespace/`): the inode table, lookup, getattr, directory listings and
//!   handles, and the metadata probe;
//! - [`Writes`] (`writes.rs`) and [`staged::StagedFile`] (`staged.rs`): the files being
//!   written, each a staged copy with its lifecycle as an enum;
//! - [`Files`] (`files.rs`): open file handles, reads, writes, flush and release;
//! - [`Attributes`] (`attributes.rs`): chmod, chown, utimes, truncate, extended attributes;
//! - [`Changes`] (`changes.rs`): unlink, mkdir, rmdir, symlink, rename.
//!
//! Pure helpers sit beside them: `attr.rs` (s3fs's attribute headers), `xattr.rs` (the
//! `user.s3.*` scheme), `s3fs_xattr.rs` (other `user.*` attributes and POSIX ACLs in s3fs's
//! `x-amz-meta-xattr`), `acl.rs` (the ACLs' xattr form), `names.rs` (which names and keys
//! are valid), `inode.rs` (the table).
//! Components hold `Arc`s of the ones they use: Namespace → Writes; Files → Namespace,
//! Writes; Attributes and Changes → Namespace, Writes, Files. No cycle.

pub mod acl;
pub mod attr;
pub mod attributes;
pub mod changes;
pub mod files;
pub mod inherit;
pub mod inode;
pub mod names;
pub mod namespace;
pub mod s3fs_xattr;
pub mod staged;
pub mod writes;
pub mod xattr;

use std::ffi::OsStr;
use std::sync::Arc;

use bytes::Bytes;
use fuser::FileAttr;

use crate::config::FsConfig;
use crate::data::cache::BlockCache;
use crate::data::prefetch::ReadContext;
use crate::data::tier::{BlockTier, TierStats};
use crate::error::{FsError, FsResult};
use crate::storage::ObjectStore;
pub use attr::AttrChange;
use attributes::Attributes;
use changes::Changes;
use files::Files;
pub use files::{CacheMode, KernelCache};
use names::{lookup_name, parse_name};
pub use namespace::DirEntry;
use namespace::{probe::Probe, Namespace};
use writes::Writes;

/// Who asks: the process and credentials of a FUSE request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// Thread id of the caller (0 when unknown).
    pub pid: u32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
    /// Its umask, on requests that create a node (0 otherwise): it applies unless the new
    /// node inherits its directory's default ACL (see [`inherit`]).
    pub umask: u32,
}

impl From<u32> for Caller {
    /// A caller known only by its pid, with root's credentials: the mount itself, or a test.
    fn from(pid: u32) -> Self {
        Caller {
            pid,
            ..Caller::default()
        }
    }
}

/// How many GETs may be in flight across the mount. 32: enough for several sequential readers
/// to each keep a full window in flight, few enough to stay polite to the server.
const MAX_GETS_IN_FLIGHT: usize = 32;

/// The filesystem.
pub struct S3Fs {
    store: Arc<dyn ObjectStore>,
    config: Arc<FsConfig>,
    read_ctx: ReadContext,
    ns: Arc<Namespace>,
    files: Arc<Files>,
    attrs: Attributes,
    changes: Changes,
}

impl std::fmt::Debug for S3Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Fs")
            .field("config", &self.config)
            .finish()
    }
}

impl S3Fs {
    /// A filesystem over `store` configured by `config`.
    pub fn new(store: Arc<dyn ObjectStore>, config: FsConfig) -> Self {
        Self::with_tiers(store, config, Vec::new())
    }

    /// A filesystem whose reads ask `tiers` (e.g. the disk cache), in order, for blocks
    /// missing from memory before they ask `store`.
    pub fn with_tiers(
        store: Arc<dyn ObjectStore>,
        config: FsConfig,
        tiers: Vec<Arc<dyn BlockTier>>,
    ) -> Self {
        let config = Arc::new(config);
        let read_ctx = ReadContext::new(store.clone(), config.read.clone(), MAX_GETS_IN_FLIGHT)
            .with_tiers(tiers);
        let writes = Arc::new(Writes::new(store.clone(), config.write.clone()));
        let probe = Probe::new(read_ctx.clone());
        let ns = Namespace::new(store.clone(), config.clone(), probe, writes.clone());
        let files = Arc::new(Files::new(
            store.clone(),
            config.clone(),
            ns.clone(),
            writes.clone(),
            read_ctx.clone(),
        ));
        let attrs = Attributes::new(
            store.clone(),
            config.clone(),
            ns.clone(),
            writes.clone(),
            files.clone(),
        );
        let changes = Changes::new(
            store.clone(),
            config.clone(),
            ns.clone(),
            writes,
            files.clone(),
        );
        S3Fs {
            store,
            config,
            read_ctx,
            ns,
            files,
            attrs,
            changes,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// Gives the core the kernel's caches to drop (once the FUSE session exists).
    pub fn set_kernel_cache(&self, kernel: Arc<dyn KernelCache>) {
        self.files.set_kernel_cache(kernel)
    }

    /// Keeps objects' headers in `cache` and completes listed entries from it (`--cache`).
    pub fn set_meta_cache(&self, cache: Arc<crate::data::disk_cache::meta::MetaCache>) {
        self.ns.set_meta_cache(cache)
    }

    /// The shared block cache (for statistics).
    pub fn cache(&self) -> &BlockCache {
        &self.read_ctx.cache
    }

    /// The counters of each block tier behind the memory cache, by name.
    pub fn tier_stats(&self) -> Vec<(&'static str, TierStats)> {
        self.read_ctx
            .tiers
            .iter()
            .map(|t| (t.name(), t.stats()))
            .collect()
    }

    // ----- names and attributes -----------------------------------------------------------

    /// Looks `name` up in directory `parent` for the kernel, which takes a reference to the
    /// entry (see [`forget`](Self::forget)).
    pub async fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<FileAttr> {
        let name = lookup_name(name)?;
        // A FORGET between the lookup and the count may have just dropped the node: then the
        // lookup is made again, which records it anew.
        for _ in 0..3 {
            let attr = self.ns.lookup(parent, name).await?;
            if self.ns.table().remember(attr.ino.0) {
                return Ok(attr);
            }
        }
        Err(FsError::new(libc::EIO, "the node kept being forgotten"))
    }

    /// Counts the reference the kernel takes to an entry it is handed by a creation.
    fn hand_out(&self, attr: &FileAttr) {
        if !self.ns.table().remember(attr.ino.0) {
            tracing::warn!(ino = attr.ino.0, "a node just created is not in the table");
        }
    }

    /// Counts the reference the kernel takes to an entry of a `readdirplus` it was sent;
    /// false when the node is no longer in the table (the entry must not be sent).
    pub fn remember(&self, ino: u64) -> bool {
        self.ns.table().remember(ino)
    }

    /// Takes back a [`remember`](Self::remember) whose entry was not sent after all.
    pub fn unremember(&self, ino: u64) {
        self.ns.table().unremember(ino);
    }

    /// The kernel dropped `count` references to `ino` (FORGET): once it holds none, the node
    /// leaves the table, unless a file is being written there.
    pub fn forget(&self, ino: u64, count: u64) {
        let files = &self.files;
        self.ns
            .table()
            .forget(ino, count, |i| files.is_being_written(i));
    }

    /// Inodes in the table.
    pub fn inode_count(&self) -> usize {
        self.ns.table().len()
    }

    /// The attributes of `ino`, refreshed from S3 when older than the metadata TTL.
    pub async fn getattr(&self, ino: u64) -> FsResult<FileAttr> {
        self.ns.getattr(ino).await
    }

    /// Applies `setattr` (chmod, chown, utimes, truncate).
    pub async fn setattr(
        &self,
        ino: u64,
        _fh: Option<u64>,
        change: AttrChange,
    ) -> FsResult<FileAttr> {
        self.config.check_writable()?;
        self.attrs.setattr(ino, change).await
    }

    /// The value of extended attribute `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &OsStr) -> FsResult<Vec<u8>> {
        self.attrs.getxattr(ino, name).await
    }

    /// The NUL-separated list of extended attribute names of `ino`.
    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        self.attrs.listxattr(ino).await
    }

    /// Sets extended attribute `name` of `ino`.
    pub async fn setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> FsResult<()> {
        self.attrs.setxattr(ino, name, value, flags).await
    }

    /// Removes extended attribute `name` of `ino`.
    pub async fn removexattr(&self, ino: u64, name: &OsStr) -> FsResult<()> {
        self.attrs.removexattr(ino, name).await
    }

    // ----- directories --------------------------------------------------------------------

    /// Opens directory `ino`.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        self.ns.opendir(ino)
    }

    /// Every entry of open directory `fh`, once its listing is complete.
    pub async fn readdir(&self, fh: u64, offset: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        self.ns.readdir(fh, offset).await
    }

    /// Entries of open directory `fh` from `offset` on, as soon as the listing has them.
    pub async fn readdir_from(&self, fh: u64, offset: u64) -> FsResult<Vec<DirEntry>> {
        self.ns.readdir_from(fh, offset).await
    }

    /// Entries of open directory `fh` from `offset` on, with attributes (`readdirplus`).
    /// A node forgotten since the listing is looked up again by name (a new inode number).
    pub async fn readdirplus(&self, dir: u64, fh: u64, offset: u64) -> FsResult<Vec<DirEntry>> {
        let mut entries = self.ns.readdirplus(fh, offset).await?;
        for e in entries.iter_mut() {
            let gone = self.ns.table().get(e.ino).is_none();
            if gone && e.name != "." && e.name != ".." {
                e.attr = self.ns.lookup(dir, &e.name).await?;
                e.ino = e.attr.ino.0;
            }
        }
        Ok(entries)
    }

    /// Closes directory handle `fh`.
    pub fn releasedir(&self, fh: u64) {
        self.ns.releasedir(fh)
    }

    // ----- files --------------------------------------------------------------------------

    /// Opens file `ino` with open(2) `flags`; `pid` is the caller's (0 when unknown).
    pub async fn open(
        &self,
        ino: u64,
        flags: i32,
        caller: impl Into<Caller>,
    ) -> FsResult<(u64, CacheMode)> {
        self.files.open(ino, flags, caller.into()).await
    }

    /// Creates and opens `name` in `parent`: the object appears on the first flush.
    pub async fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: impl Into<Caller>,
    ) -> FsResult<(FileAttr, u64)> {
        self.config.check_writable()?;
        if self.config.buckets_at_root && parent == inode::ROOT_INO {
            let what = name.to_string_lossy();
            tracing::warn!(
                "{what}: only directories (buckets) live at the top of an --all-buckets mount"
            );
            return Err(FsError::new(
                libc::EINVAL,
                format!("{what}: a file at the top of --all-buckets"),
            ));
        }
        let name = self.ns.new_name(parent, name).await?;
        let attr = self
            .files
            .create(parent, name, mode, flags, caller.into())
            .await?;
        self.ns.touch_dir(parent);
        self.hand_out(&attr.0);
        Ok(attr)
    }

    /// Reads from open file `fh`.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        self.files.read(fh, offset, size).await
    }

    /// Writes `data` at `offset` through handle `fh`.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        self.files.write(fh, offset, data).await
    }

    /// `copy_file_range` from handle `fh_in` to handle `fh_out`: a copy on the server, or
    /// `EOPNOTSUPP` for the kernel to copy the bytes itself.
    pub async fn copy_file_range(
        &self,
        (fh_in, off_in): (u64, u64),
        (fh_out, off_out): (u64, u64),
        len: u64,
    ) -> FsResult<u32> {
        self.files
            .copy_file_range(fh_in, off_in, fh_out, off_out, len)
            .await
    }

    /// `flush` (every `close`) from process `pid`.
    pub async fn flush(&self, fh: u64, pid: u32) -> FsResult<()> {
        self.files.flush(fh, pid).await
    }

    /// `fsync`: returns once S3 has the object.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        self.files.fsync(fh).await
    }

    /// Closes handle `fh`.
    pub async fn release(&self, fh: u64) {
        self.files.release(fh).await
    }

    /// Whether closing `fh` does no I/O (a handle that only reads S3).
    pub fn is_read_handle(&self, fh: u64) -> bool {
        self.files.is_read_handle(fh)
    }

    /// The target of symlink `ino`.
    pub async fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        self.files.readlink(ino).await
    }

    // ----- namespace changes --------------------------------------------------------------

    /// Removes file (or symlink) `name` from `parent`.
    pub async fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        self.config.check_writable()?;
        self.changes.unlink(parent, lookup_name(name)?).await
    }

    /// Creates directory `name` in `parent`.
    pub async fn mkdir(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        caller: impl Into<Caller>,
    ) -> FsResult<FileAttr> {
        self.config.check_writable()?;
        let name = self.ns.new_name(parent, name).await?;
        let attr = self
            .changes
            .mkdir(parent, name, mode, caller.into())
            .await?;
        self.hand_out(&attr);
        Ok(attr)
    }

    /// Creates a special file (FIFO, socket, device) or an empty regular file `name` in
    /// `parent`, stored as s3fs stores it.
    pub async fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        caller: impl Into<Caller>,
    ) -> FsResult<FileAttr> {
        self.config.check_writable()?;
        let name = self.ns.new_name(parent, name).await?;
        let attr = self
            .changes
            .mknod(parent, name, mode, rdev, caller.into())
            .await?;
        self.hand_out(&attr);
        Ok(attr)
    }

    /// Removes empty directory `name` from `parent`.
    pub async fn rmdir(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        self.config.check_writable()?;
        self.changes.rmdir(parent, lookup_name(name)?).await
    }

    /// Creates symlink `name` in `parent` pointing at `target`.
    pub async fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &[u8],
        caller: impl Into<Caller>,
    ) -> FsResult<FileAttr> {
        self.config.check_writable()?;
        let name = self.ns.new_name(parent, name).await?;
        let attr = self
            .changes
            .symlink(parent, name, target, caller.into())
            .await?;
        self.hand_out(&attr);
        Ok(attr)
    }

    /// Renames `name` in `parent` to `new_name` in `new_parent` (`renameat2` flags).
    pub async fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> FsResult<()> {
        self.config.check_writable()?;
        let name = lookup_name(name)?.to_string();
        let new_name = parse_name(new_name)?.to_string();
        self.changes
            .rename(parent, &name, new_parent, &new_name, flags)
            .await
    }

    // ----- shutdown -----------------------------------------------------------------------

    /// Before unmounting: saves every dirty file and retries the clean-up requests that
    /// failed earlier.
    pub async fn shutdown(&self) -> Vec<(String, FsError)> {
        let failures = self.commit_all().await;
        self.store.retry_pending().await;
        failures
    }

    /// Commits every dirty file (used at unmount); returns the failures.
    pub async fn commit_all(&self) -> Vec<(String, FsError)> {
        self.files.commit_all().await
    }
}

#[cfg(test)]
mod acl_tests;
#[cfg(test)]
mod dir_forms_tests;
#[cfg(test)]
pub(crate) mod test_fs;
#[cfg(test)]
mod tests;
