//! Open files: the handle table, and reading and writing through it.
//!
//! Design note: a handle is an [`OpenFile`]: `Read` reads one object version through the
//! block cache ([`ObjectReader`], bound to the ETag seen at open; until it has returned a
//! byte, a handle whose version S3 no longer has adopts the current one: see
//! [`read_handle`]), `Staged` reads and writes
//! the file's [`StagedFile`](super::staged::StagedFile). Once a file is being written, every
//! handle of it reads the staged copy (read-your-writes), as on a local disk: a short read of
//! the older version would make the kernel shrink the file under the writer.
//!
//! `flush` (every `close`) and `fsync` commit; a flush from a process other than the opener
//! is ignored (after fork and exec, the child's copy of the descriptor is closed while the
//! writer still writes). The last handle to close saves what is still unsaved.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use fuser::FileAttr;
use futures::StreamExt;
use tracing::debug;

use super::attr::{check_metadata_size, guess_content_type, initial_metadata, put_options_of};
use super::inherit;
use super::inode::{Entry, Inode, Kind, Stat};
use super::names::child_key;
use super::namespace::Namespace;
use super::staged::StagedFile;
use super::writes::{SharedStaged, Writes};
use super::Caller;
use crate::config::FsConfig;
use crate::data::prefetch::{ObjectReader, ReadContext};
use crate::error::{FsError, FsResult};
use crate::storage::{ObjectStore, PutOptions};
pub use archived::RESTORE_HINT;
pub use read_handle::KernelCache;
use read_handle::ReadHandle;

mod archived;
mod read_handle;
mod server_copy;

/// Longest symlink target read (Linux's `PATH_MAX`).
const PATH_MAX: u64 = 4096;

/// How the kernel may use its page cache for a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// Keep the cached pages: they are of this very version.
    Keep,
    /// Drop the cached pages, then cache this version's.
    Invalidate,
    /// Bypass the page cache (direct I/O): the cache holds another version's pages that an
    /// open handle may still be reading, or the file is being written.
    Direct,
}

/// An open file.
enum OpenFile {
    /// Opened read-only while nobody writes it: reads go through the block cache.
    Read(ReadHandle),
    /// Opened for writing, or while someone writes it: reads and writes use the staged copy.
    Staged {
        state: SharedStaged,
        writable: bool,
        /// Thread group of the process that opened it (see [`Files::flush`]).
        opener: Option<u32>,
        /// The user who opened it: writes through the handle are theirs.
        uid: u32,
    },
}

/// The open-file component.
pub struct Files {
    store: Arc<dyn ObjectStore>,
    config: Arc<FsConfig>,
    ns: Arc<Namespace>,
    writes: Arc<Writes>,
    read_ctx: ReadContext,
    handles: Mutex<HashMap<u64, Arc<OpenFile>>>,
    next_handle: AtomicU64,
    /// The kernel's caches, once the FUSE session is there.
    kernel: OnceLock<Arc<dyn KernelCache>>,
}

impl Files {
    /// The open-file component over its collaborators.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        config: Arc<FsConfig>,
        ns: Arc<Namespace>,
        writes: Arc<Writes>,
        read_ctx: ReadContext,
    ) -> Self {
        Files {
            store,
            config,
            ns,
            writes,
            read_ctx,
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            kernel: OnceLock::new(),
        }
    }

    /// Gives the component the kernel's caches to drop when a handle adopts a new version.
    pub fn set_kernel_cache(&self, kernel: Arc<dyn KernelCache>) {
        let _ = self.kernel.set(kernel);
    }

    /// Drops the kernel's cached attributes of `ino`, after a change S3 made on our request
    /// that no write of ours went through (a revert to an older version).
    pub fn invalidate_kernel_attrs(&self, ino: u64) {
        if let Some(kernel) = self.kernel.get() {
            kernel.invalidate_attrs(ino);
        }
    }

    fn add_handle(&self, file: OpenFile) -> u64 {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().unwrap().insert(fh, Arc::new(file));
        fh
    }

    fn file(&self, fh: u64) -> FsResult<Arc<OpenFile>> {
        self.handles
            .lock()
            .unwrap()
            .get(&fh)
            .cloned()
            .ok_or_else(|| FsError::new(libc::EBADF, "unknown file handle"))
    }

    /// Whether file `ino` has a staged copy (open for writing, or not yet saved).
    pub fn is_being_written(&self, ino: u64) -> bool {
        self.writes.get(ino).is_some()
    }

    /// Whether `fh` is a handle that only reads S3 (no staged copy behind it): closing it
    /// does no I/O.
    pub fn is_read_handle(&self, fh: u64) -> bool {
        self.file(fh).is_ok_and(|f| matches!(*f, OpenFile::Read(_)))
    }

    /// Opens file `ino` with open(2) `flags`; returns the handle and how the kernel may use
    /// its page cache: kept only while it can hold no other version's pages.
    pub async fn open(&self, ino: u64, flags: i32, caller: Caller) -> FsResult<(u64, CacheMode)> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            let fh = self.open_for_write(ino, flags, caller).await?;
            return Ok((fh, CacheMode::Direct));
        }
        let node = self.ns.node(ino)?;
        if node.is_dir() {
            return Err(FsError::new(libc::EISDIR, "is a directory"));
        }
        // Someone is writing this file: read their staged bytes (read-your-writes).
        if let Some(state) = self.join_staged(ino).await {
            let file = OpenFile::Staged {
                state,
                writable: false,
                opener: tgid_of(caller.pid),
                uid: caller.uid,
            };
            return Ok((self.add_handle(file), CacheMode::Direct));
        }
        let node = self.current_version(node).await?;
        self.refuse_archived(&node).await?;
        let etag = node.stat.etag.clone().unwrap_or_default();
        let (mode, epoch) = self.page_cache_mode(ino, &etag, node.stat.size);
        let reader = ObjectReader::new(self.read_ctx.clone(), &node.key, &etag, node.stat.size);
        let fh = self.add_handle(OpenFile::Read(ReadHandle::new(ino, reader, mode, epoch)));
        debug!(ino, fh, key = %node.key, size = node.stat.size, cache = ?mode, "open");
        Ok((fh, mode))
    }

    /// `node` as it is in S3 now: from the table while fresh, else asked again with the GET
    /// of the first block that the read which follows wants anyway.
    async fn current_version(&self, node: Inode) -> FsResult<Inode> {
        if node.valid_until > Instant::now() && node.stat.etag.is_some() {
            return Ok(node);
        }
        let seen = node.stat.etag.as_deref();
        let meta = match self.ns.probe().headers(&node.key, u64::MAX, seen).await {
            Ok(meta) => meta,
            Err(e) => {
                if e.is_not_found() {
                    self.ns.table().forget_child(node.parent, &node.name);
                }
                return Err(e.into());
            }
        };
        self.ns.refresh(&node, Arc::new(meta));
        Ok(self.ns.node(node.ino).unwrap_or(node))
    }

    /// The page cache is per inode, not per version: never let two versions' pages meet.
    /// Also returns the inode's cache epoch after this open.
    fn page_cache_mode(&self, ino: u64, etag: &str, size: u64) -> (CacheMode, u64) {
        let mut table = self.ns.table();
        let Some(f) = table.get_mut(ino).and_then(Inode::file_mut) else {
            return (CacheMode::Direct, 0);
        };
        let same = f.cache_etag.as_deref() == Some(etag) && !etag.is_empty();
        if f.cached_opens > 0 && !same {
            return (CacheMode::Direct, f.cache_epoch);
        }
        f.cached_opens += 1;
        f.cache_epoch += 1;
        f.cache_etag = Some(etag.to_string());
        f.cache_size = size;
        let mode = match same {
            true => CacheMode::Keep,
            false => CacheMode::Invalidate,
        };
        (mode, f.cache_epoch)
    }

    /// Creates and opens `name` (validated, known to be new) in `parent`: the object appears
    /// on the first flush.
    pub async fn create(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> FsResult<(FileAttr, u64)> {
        let dir = self.ns.dir_node(parent)?;
        let key = child_key(&dir.key, name);
        let mut opts = PutOptions {
            content_type: Some(guess_content_type(name)),
            ..Default::default()
        };
        let default_acl = inherit::default_acl(&*self.store, &self.ns, &dir).await?;
        let mode = libc::S_IFREG | (mode & 0o7777);
        let mode = inherit::initial_mode(&mut opts, mode, caller.umask, default_acl.as_deref())?;
        check_metadata_size(&opts)?;
        let owner = new_owner(&self.config, caller, &dir);
        let now = std::time::SystemTime::now();
        initial_metadata(&mut opts, mode, owner, now);
        let stat = Stat {
            mode: Some(mode),
            uid: owner.map(|o| o.0),
            gid: owner.map(|o| o.1),
            ..Stat::basic(0, now)
        };
        let entry = Entry::known(Kind::File, key.clone(), stat, None);
        let attr = self.ns.record(parent, name, entry);
        let ino = attr.ino.0;
        let staged = StagedFile::created(self.writes.ctx(), ino, key, opts)?;
        let state = self.writes.insert_or_get(ino, staged);
        let fh = self.add_handle(OpenFile::Staged {
            state,
            writable: flags & libc::O_ACCMODE != libc::O_RDONLY,
            opener: tgid_of(caller.pid),
            uid: caller.uid,
        });
        debug!(ino, fh, name, "created");
        Ok((attr, fh))
    }

    /// Opens `ino` for writing (and maybe reading): joins or creates its staged file.
    pub async fn open_for_write(&self, ino: u64, flags: i32, caller: Caller) -> FsResult<u64> {
        self.config.check_writable()?;
        let state = self.staged_for_write(ino).await?;
        if flags & libc::O_TRUNC != 0 {
            let mut st = state.lock().await;
            st.truncate_on_open().await?;
            self.ns.note_local_size(ino, 0);
        }
        Ok(self.add_handle(OpenFile::Staged {
            state,
            writable: flags & libc::O_ACCMODE != libc::O_RDONLY,
            opener: tgid_of(caller.pid),
            uid: caller.uid,
        }))
    }

    /// The staged file of `ino`, joined (one more handle) or made.
    async fn staged_for_write(&self, ino: u64) -> FsResult<SharedStaged> {
        let node = self.ns.node(ino)?;
        if node.kind() != Kind::File {
            return Err(FsError::new(
                libc::EISDIR,
                "only regular files can be written",
            ));
        }
        if let Some(state) = self.join_staged(ino).await {
            return Ok(state);
        }
        // Only "no such object" means there is nothing to keep: any other failure must not
        // turn into an empty upload over the existing object.
        let meta = match self.store.head(&node.key).await {
            Ok(m) => Some(m),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let opts = meta
            .as_ref()
            .map(put_options_of)
            .unwrap_or_else(|| PutOptions {
                content_type: Some(guess_content_type(&node.name)),
                ..Default::default()
            });
        let staged = StagedFile::opened(self.writes.ctx(), ino, node.key, meta.as_ref(), opts);
        if let Some(f) = self.ns.table().get_mut(ino).and_then(Inode::file_mut) {
            f.cache_etag = None;
        }
        Ok(self.writes.insert_or_get(ino, staged))
    }

    /// Joins the staged file of `ino` with one more handle, if one is registered and still
    /// is once locked (its last handle may be closing it at that very moment).
    async fn join_staged(&self, ino: u64) -> Option<SharedStaged> {
        loop {
            let state = self.writes.get(ino)?;
            let mut st = state.lock().await;
            if self.writes.is_current(ino, &state) {
                st.add_handle();
                drop(st);
                return Some(state);
            }
        }
    }

    /// Reads from open file `fh`.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        match &*self.file(fh)? {
            OpenFile::Read(handle) => match self.writes.get(handle.ino) {
                Some(state) => state.lock().await.read_at(offset, size).await,
                None => handle.read(self, offset, size).await,
            },
            OpenFile::Staged { state, .. } => state.lock().await.read_at(offset, size).await,
        }
    }

    /// Writes `data` at `offset` through handle `fh`.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let file = self.file(fh)?;
        let OpenFile::Staged {
            state,
            writable: true,
            uid,
            ..
        } = &*file
        else {
            return Err(FsError::new(libc::EBADF, "not open for writing"));
        };
        let mut st = state.lock().await;
        let size = st.write_at(offset, data).await?;
        self.ns.note_local_size(st.ino, size);
        self.drop_privileges(&mut st, *uid);
        Ok(data.len() as u32)
    }

    /// A write by anyone but root clears set-user-ID (and set-group-ID on a group-executable
    /// file), as the kernel expects of a file system: a changed program must not keep them.
    fn drop_privileges(&self, st: &mut StagedFile, writer: u32) {
        let mode = self
            .ns
            .table()
            .get(st.ino)
            .and_then(|n| n.stat.mode)
            .unwrap_or(0);
        let cleared = without_privileges(mode);
        if writer == 0 || cleared == mode {
            return;
        }
        let mut opts = st.opts.clone();
        opts.metadata.insert("mode".into(), cleared.to_string());
        self.ns.note_attrs(st.ino, &opts);
        st.opts = opts;
    }

    /// `flush` (every `close`) from process `pid`: commits the file of handle `fh`, unless
    /// another process flushes or an `open(O_TRUNC)` with nothing written yet would empty it.
    pub async fn flush(&self, fh: u64, pid: u32) -> FsResult<()> {
        let file = self.file(fh)?;
        let OpenFile::Staged { state, opener, .. } = &*file else {
            return Ok(());
        };
        if opener.is_some_and(|o| tgid_of(pid).is_some_and(|t| t != o)) {
            debug!(fh, pid, "flush from another process: not committing");
            return Ok(());
        }
        let mut st = state.lock().await;
        if st.defers_flush() {
            debug!(fh, key = %st.key, "flush of a truncated, unwritten file deferred");
            return Ok(());
        }
        self.commit(&mut st).await
    }

    /// `fsync`: commits the file of handle `fh`; returns once S3 has the object.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        let file = self.file(fh)?;
        let OpenFile::Staged { state, .. } = &*file else {
            return Ok(());
        };
        let mut st = state.lock().await;
        self.commit(&mut st).await
    }

    /// Commits `st` and records the new object.
    pub async fn commit(&self, st: &mut StagedFile) -> FsResult<()> {
        if let Some(meta) = st.commit().await? {
            self.ns.record_commit(st.ino, &meta);
        }
        Ok(())
    }

    /// Commits pending writes of `ino`, if it is being written.
    pub async fn commit_pending(&self, ino: u64) -> FsResult<()> {
        match self.writes.get(ino) {
            Some(state) => self.commit(&mut *state.lock().await).await,
            None => Ok(()),
        }
    }

    /// Closes handle `fh`. The last handle of a staged file saves what is still unsaved.
    pub async fn release(&self, fh: u64) {
        let Some(file) = self.handles.lock().unwrap().remove(&fh) else {
            return;
        };
        match &*file {
            OpenFile::Read(handle) => {
                if handle.cached() {
                    let ino = handle.ino;
                    if let Some(f) = self.ns.table().get_mut(ino).and_then(Inode::file_mut) {
                        f.cached_opens = f.cached_opens.saturating_sub(1);
                    }
                }
            }
            OpenFile::Staged { state, .. } => {
                let mut st = state.lock().await;
                if st.drop_handle() > 0 {
                    return;
                }
                if let Ok(Some(meta)) = st.save_on_close().await {
                    self.ns.record_commit(st.ino, &meta);
                }
                // Still holding its lock: an open that found it waits, then sees it is gone.
                self.writes.remove(st.ino, state);
            }
        }
    }

    /// Before unmounting: saves every dirty file. Files whose last upload failed are not
    /// retried behind the application's back: their staged data is kept and logged.
    pub async fn commit_all(&self) -> Vec<(String, FsError)> {
        let mut failures = Vec::new();
        for (_, state) in self.writes.all() {
            let mut st = state.lock().await;
            match st.save_on_close().await {
                Ok(Some(meta)) => self.ns.record_commit(st.ino, &meta),
                Ok(None) => {}
                Err(e) => failures.push((st.key.clone(), e)),
            }
        }
        failures
    }

    /// The target of symlink `ino` (the object's body).
    pub async fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let node = self.ns.node(ino)?;
        if node.kind() != Kind::Symlink {
            return Err(FsError::new(libc::EINVAL, "not a symlink"));
        }
        // Through the block cache (a lookup that found the symlink has usually cached it)
        // when its version is known; otherwise, or if it changed since, straight from S3.
        if let Some(etag) = node.stat.etag.as_deref().filter(|e| !e.is_empty()) {
            let size = node.stat.size;
            let reader = ObjectReader::new(self.read_ctx.clone(), &node.key, etag, size);
            match reader.read(0, size.min(u32::MAX as u64) as u32).await {
                Ok(target) => return Ok(target.to_vec()),
                Err(e) if e.errno == libc::ESTALE => {}
                Err(e) => return Err(e),
            }
        }
        let mut body = self.store.get_range(&node.key, 0..PATH_MAX, None).await?;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// `mode` without the bits a write or a chown clears: S_ISUID, and S_ISGID when the group
/// may execute (without group execute it marks mandatory locking and stays).
pub fn without_privileges(mode: u32) -> u32 {
    let mut m = mode & !libc::S_ISUID;
    if m & libc::S_IXGRP != 0 {
        m &= !libc::S_ISGID;
    }
    m
}

/// Who owns a new node in directory `dir`: the caller, when other users can reach the mount
/// and the caller is not the mount's default owner; otherwise nobody in particular (the
/// mount's defaults). In a set-group-ID directory the group is the directory's, as on a
/// local disk.
pub fn new_owner(config: &FsConfig, caller: Caller, dir: &Inode) -> Option<(u32, u32)> {
    let (uid, mut gid) = match config.other_users {
        true => (caller.uid, caller.gid),
        false => (config.uid, config.gid),
    };
    if setgid_dir(dir) {
        gid = dir.stat.gid.unwrap_or(config.gid);
    }
    ((uid, gid) != (config.uid, config.gid)).then_some((uid, gid))
}

/// Whether `dir` is a set-group-ID directory (its new entries take its group).
pub fn setgid_dir(dir: &Inode) -> bool {
    dir.stat.mode.is_some_and(|m| m & libc::S_ISGID != 0)
}

/// The thread group (process id) of thread `pid`, from /proc; `None` if unknown.
fn tgid_of(pid: u32) -> Option<u32> {
    if pid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}
