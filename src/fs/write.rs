//! Writing files: staging, read-your-writes, commit on flush/fsync, and attribute changes.
//!
//! Design note: a file open for writing has one [`WriteState`] per inode, shared by all its
//! handles (so a second descriptor reads what the first wrote). The state owns a staged copy
//! of the file in a temp file (under `--cache-dir`, else the system temp dir):
//! - created files and `O_TRUNC` opens start empty, and stream their parts to S3 while the
//!   application writes front to back ([`StreamingUpload`]);
//! - other opens stage the current object lazily — on the first write, read or truncate — so
//!   `touch` or an open that never writes costs no download.
//!
//! `flush` (every `close`) and `fsync` commit: nothing is reported written before S3 answered
//! success, and a failure reaches `close`/`fsync` as an errno while the previous object stays
//! as it was (S3 replaces objects atomically). If the last handle closes while the state is
//! still dirty after a failed upload, the staged file is moved aside and its path logged, so
//! what the user wrote is never silently dropped.
//!
//! chmod/chown/utimes are kept as s3fs does (`x-amz-meta-mode`, `-uid`, `-gid`, `-mtime`):
//! on a file with unsaved writes they ride along with the upload; otherwise they are applied
//! by copying the object onto itself with replaced metadata, which keeps its content, content
//! type and tags.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fuser::FileAttr;
use futures::StreamExt;
use tempfile::NamedTempFile;
use tracing::{debug, error, info};

use super::inode::{Entry, Kind, Stat};
use super::names::{check_name, child_key};
use super::{stat_from_meta, OpenFile, S3Fs};
use crate::data::upload::{
    read_staged, upload_staged, BaseVersion, PartPlan, Staged, StreamingUpload,
};
use crate::error::{FsError, FsResult};
use crate::storage::{ObjectMeta, PutOptions, StoreError};

/// Attempts at downloading an object for staging when its body breaks off.
const STAGING_ATTEMPTS: u32 = 3;

/// Shared write state of one inode open for writing.
pub struct WriteState {
    ino: u64,
    key: String,
    file: Option<NamedTempFile>,
    staged: bool,
    size: u64,
    dirty: bool,
    dirty_parts: BTreeSet<u64>,
    base: Option<BaseVersion>,
    stream: Option<StreamingUpload>,
    opts: PutOptions,
    handles: usize,
    unlinked: bool,
    /// The last commit failed and the application was told so: the data is kept on disk,
    /// but not uploaded behind the application's back when the file is closed.
    commit_failed: bool,
    /// Emptied by `open(O_TRUNC)` and nothing done since (see [`S3Fs::flush`]).
    only_open_trunc: bool,
}

/// A change of attributes asked by `setattr`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttrChange {
    /// New permission bits (and type bits, ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
}

impl AttrChange {
    fn touches_metadata(&self) -> bool {
        self.mode.is_some() || self.uid.is_some() || self.gid.is_some() || self.mtime.is_some()
    }
}

/// The s3fs metadata value for a modification time: `sec` or `sec.nsec`.
pub fn s3fs_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    }
}

/// Applies `change` to user metadata in s3fs's scheme; `file_type` is `S_IFREG`, `S_IFDIR`...
fn apply_attr_metadata(
    opts: &mut PutOptions,
    change: &AttrChange,
    file_type: u32,
    current_mode: u32,
) {
    if let Some(mode) = change.mode {
        opts.metadata
            .insert("mode".into(), (file_type | (mode & 0o7777)).to_string());
    } else if change.uid.is_some() || change.gid.is_some() {
        opts.metadata
            .entry("mode".into())
            .or_insert_with(|| (file_type | (current_mode & 0o7777)).to_string());
    }
    if let Some(uid) = change.uid {
        opts.metadata.insert("uid".into(), uid.to_string());
    }
    if let Some(gid) = change.gid {
        opts.metadata.insert("gid".into(), gid.to_string());
    }
    if let Some(mtime) = change.mtime {
        opts.metadata.insert("mtime".into(), s3fs_time(mtime));
    }
}

impl S3Fs {
    fn staging_file(&self) -> FsResult<NamedTempFile> {
        let dir = self
            .config
            .write
            .cache_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        tempfile::Builder::new()
            .prefix("s3mount-staged-")
            .tempfile_in(&dir)
            .map_err(|e| {
                FsError::new(
                    libc::EIO,
                    format!("cannot create a staging file in {}: {e}", dir.display()),
                )
            })
    }

    fn new_stream(&self, key: &str) -> StreamingUpload {
        StreamingUpload::new(
            self.store.clone(),
            key,
            self.config.write.part_size,
            self.config.write.max_parts_in_flight,
        )
    }

    pub(super) fn check_writable(&self) -> FsResult<()> {
        if self.config.read_only {
            Err(FsError::read_only())
        } else {
            Ok(())
        }
    }

    /// Whether `ino` has unsaved or open-for-write state (its attributes are local then).
    pub(super) fn is_local(&self, ino: u64) -> bool {
        self.writes.lock().unwrap().contains_key(&ino)
    }

    fn write_state(&self, ino: u64) -> Option<Arc<tokio::sync::Mutex<WriteState>>> {
        self.writes.lock().unwrap().get(&ino).cloned()
    }

    /// Records the staged size and a fresh mtime in the inode table.
    fn note_local_size(&self, ino: u64, size: u64) {
        if let Some(n) = self.inodes.lock().unwrap().get_mut(ino) {
            n.stat.size = size;
            n.stat.mtime = SystemTime::now();
        }
    }

    /// Creates and opens `name` in `parent`: the object appears on the first flush.
    pub async fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        pid: u32,
    ) -> FsResult<(FileAttr, u64)> {
        self.check_writable()?;
        let name = self.new_name(parent, name).await?;
        let dir = self.dir_node(parent)?;
        let key = child_key(&dir.key, &name);
        let mut opts = PutOptions {
            content_type: Some(guess_content_type(&name)),
            ..Default::default()
        };
        let perm = (mode & 0o7777) as u16;
        if perm != self.config.file_mode {
            opts.metadata
                .insert("mode".into(), (libc::S_IFREG | perm as u32).to_string());
        }
        let state = WriteState {
            ino: 0,
            key: key.clone(),
            file: Some(self.staging_file()?),
            staged: true,
            size: 0,
            dirty: true,
            dirty_parts: BTreeSet::new(),
            base: None,
            stream: Some(self.new_stream(&key)),
            opts,
            handles: 1,
            unlinked: false,
            commit_failed: false,
            only_open_trunc: false,
        };
        let stat = Stat {
            mode: (perm != self.config.file_mode).then_some(libc::S_IFREG | perm as u32),
            ..Stat::basic(0, SystemTime::now())
        };
        let (ino, attr) = {
            let mut table = self.inodes.lock().unwrap();
            let ino = table.upsert(
                parent,
                &name,
                Entry {
                    kind: Kind::File,
                    key,
                    stat,
                    meta: None,
                },
                self.valid_until(),
            );
            (ino, self.attr_of(table.get(ino).unwrap()))
        };
        let state = Arc::new(tokio::sync::Mutex::new(WriteState { ino, ..state }));
        self.writes.lock().unwrap().insert(ino, state.clone());
        let fh = self.add_handle(OpenFile::Staged {
            ino,
            state,
            writable: flags & libc::O_ACCMODE != libc::O_RDONLY,
            opener: tgid_of(pid),
        });
        debug!(ino, fh, name, "created");
        Ok((attr, fh))
    }

    /// Validates a name for a new entry and checks that nothing of that name exists.
    pub(super) async fn new_name(&self, parent: u64, name: &OsStr) -> FsResult<String> {
        let name = name
            .to_str()
            .ok_or_else(|| FsError::new(libc::EINVAL, "S3 keys must be UTF-8"))?
            .to_string();
        if name.len() > super::names::NAME_MAX {
            return Err(FsError::new(libc::ENAMETOOLONG, "name too long"));
        }
        check_name(&name).map_err(|e| FsError::new(libc::EINVAL, e.to_string()))?;
        let dir = self.dir_node(parent)?;
        if dir.key.len() + name.len() > super::names::KEY_MAX {
            return Err(FsError::new(
                libc::ENAMETOOLONG,
                "the key would exceed S3's 1,024 bytes",
            ));
        }
        match self.lookup(parent, OsStr::new(&name)).await {
            Ok(_) => Err(FsError::new(libc::EEXIST, format!("{name} exists"))),
            Err(e) if e.errno == libc::ENOENT => Ok(name),
            Err(e) => Err(e),
        }
    }

    /// Opens `ino` for writing (and maybe reading): joins or creates its write state.
    pub(super) async fn open_for_write(&self, ino: u64, flags: i32, pid: u32) -> FsResult<u64> {
        self.check_writable()?;
        let node = self.node(ino)?;
        if node.kind != Kind::File {
            return Err(FsError::new(
                libc::EISDIR,
                "only regular files can be written",
            ));
        }
        let truncate = flags & libc::O_TRUNC != 0;
        let state = match self.write_state(ino) {
            Some(state) => {
                state.lock().await.handles += 1;
                state
            }
            None => {
                // Only "no such object" means there is nothing to keep: any other failure
                // must not turn into an empty upload over the existing object.
                let meta = match self.store.head(&node.key).await {
                    Ok(m) => Some(m),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                };
                let opts = meta
                    .as_ref()
                    .map(put_options_of)
                    .unwrap_or_else(|| PutOptions {
                        content_type: Some(guess_content_type(&node.name)),
                        ..Default::default()
                    });
                let state = Arc::new(tokio::sync::Mutex::new(WriteState {
                    ino,
                    key: node.key.clone(),
                    file: None,
                    staged: false,
                    size: meta.as_ref().map_or(0, |m| m.size),
                    dirty: false,
                    dirty_parts: BTreeSet::new(),
                    base: meta.as_ref().map(|m| BaseVersion {
                        key: node.key.clone(),
                        etag: m.etag.clone(),
                        size: m.size,
                    }),
                    stream: None,
                    opts,
                    handles: 1,
                    unlinked: false,
                    commit_failed: false,
                    only_open_trunc: false,
                }));
                if let Some(n) = self.inodes.lock().unwrap().get_mut(ino) {
                    n.cache_etag = None;
                }
                let mut writes = self.writes.lock().unwrap();
                writes.entry(ino).or_insert(state).clone()
            }
        };
        if truncate {
            let mut st = state.lock().await;
            self.truncate_state(&mut st, 0).await?;
            st.only_open_trunc = true;
            if st.stream.is_none() {
                st.stream = Some(self.new_stream(&st.key));
            }
        }
        let fh = self.add_handle(OpenFile::Staged {
            ino,
            state,
            writable: flags & libc::O_ACCMODE != libc::O_RDONLY,
            opener: tgid_of(pid),
        });
        Ok(fh)
    }

    /// Downloads the current object into the staging file, once.
    async fn ensure_staged(&self, st: &mut WriteState) -> FsResult<()> {
        if st.staged {
            return Ok(());
        }
        let file = self.staging_file()?;
        if let Some(base) = &st.base {
            // A body that breaks off is resumed where it stopped (failures before the body
            // were already retried by the S3 client).
            let mut offset = 0u64;
            let mut attempt = 0;
            while offset < base.size {
                attempt += 1;
                let mut body = self
                    .store
                    .get_range(&base.key, offset..base.size, Some(&base.etag))
                    .await?;
                let mut broke = None;
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(chunk) => {
                            file.as_file().write_all_at(&chunk, offset)?;
                            offset += chunk.len() as u64;
                        }
                        Err(e) => {
                            broke = Some(FsError::from(e));
                            break;
                        }
                    }
                }
                if offset < base.size && attempt >= STAGING_ATTEMPTS {
                    return Err(broke.unwrap_or_else(|| {
                        FsError::new(libc::EIO, "short download while staging")
                    }));
                }
            }
            st.size = base.size;
        }
        debug!(key = %st.key, size = st.size, "staged");
        st.file = Some(file);
        st.staged = true;
        Ok(())
    }

    fn mark_dirty(&self, st: &mut WriteState, from: u64, to: u64) {
        st.dirty = true;
        let ps = self.config.write.part_size;
        if to > from {
            for p in from / ps..=(to - 1) / ps {
                st.dirty_parts.insert(p);
            }
        }
    }

    /// Writes `data` at `offset` through handle `fh`.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let OpenFile::Staged {
            state, writable, ..
        } = &*self.file(fh)?
        else {
            return Err(FsError::new(libc::EBADF, "not open for writing"));
        };
        if !writable {
            return Err(FsError::new(libc::EBADF, "not open for writing"));
        }
        let mut st = state.lock().await;
        self.ensure_staged(&mut st).await?;
        let end = offset + data.len() as u64;
        st.only_open_trunc = false;
        staged_file(&st.file)?.write_all_at(data, offset)?;
        if let Some(stream) = &st.stream {
            if offset < stream.uploaded {
                // Rewriting bytes already sent: fall back to uploading the staged file whole.
                debug!(key = %st.key, offset, "non-sequential write; streaming upload dropped");
                let stream = st.stream.take().unwrap();
                stream.abort().await;
            }
        }
        st.size = st.size.max(end);
        self.mark_dirty(&mut st, offset, end);
        let size = st.size;
        let st_ref: &mut WriteState = &mut st;
        let mut stream_failed = false;
        if let Some(stream) = st_ref.stream.as_mut() {
            let file = staged_file(&st_ref.file)?;
            if let Err(e) = stream.advance(file, size, &st_ref.opts).await {
                debug!("streaming part failed, will upload the file whole at commit: {e}");
                stream_failed = true;
            }
        }
        if stream_failed {
            if let Some(s) = st.stream.take() {
                s.abort().await;
            }
        }
        drop(st);
        self.note_local_size(self.file(fh)?.ino(), size);
        Ok(data.len() as u32)
    }

    /// Reads through a staged handle (read-your-writes).
    pub(super) async fn read_staged(
        &self,
        state: &Arc<tokio::sync::Mutex<WriteState>>,
        offset: u64,
        size: u32,
    ) -> FsResult<Bytes> {
        let mut st = state.lock().await;
        self.ensure_staged(&mut st).await?;
        if offset >= st.size {
            return Ok(Bytes::new());
        }
        let len = (size as u64).min(st.size - offset) as usize;
        read_staged(staged_file(&st.file)?, offset, len)
    }

    async fn truncate_state(&self, st: &mut WriteState, size: u64) -> FsResult<()> {
        st.only_open_trunc = false;
        if size == 0 && !st.staged {
            // Nothing to download: the new content is empty.
            st.file = Some(self.staging_file()?);
            st.staged = true;
        } else {
            self.ensure_staged(st).await?;
        }
        staged_file(&st.file)?.set_len(size)?;
        if let Some(stream) = &st.stream {
            if size < stream.uploaded {
                let s = st.stream.take().unwrap();
                s.abort().await;
            }
        }
        let old = st.size;
        st.size = size;
        let ps = self.config.write.part_size;
        let from = old.min(size) / ps * ps;
        self.mark_dirty(st, from, old.max(size).max(from + 1));
        self.note_local_size(st.ino, size);
        Ok(())
    }

    /// `flush` (every `close`) from process `pid`: commits the state of handle `fh`.
    ///
    /// A flush from another process is ignored: when a program forks and the child execs,
    /// the child's copy of the descriptor is closed, and committing then would upload a file
    /// that its writer is still writing (and break its streaming upload). The opener's own
    /// close commits, and so does the last release.
    pub async fn flush(&self, fh: u64, pid: u32) -> FsResult<()> {
        let file = self.file(fh)?;
        if let OpenFile::Staged {
            opener: Some(opener),
            ..
        } = &*file
        {
            if tgid_of(pid).is_some_and(|t| t != *opener) {
                debug!(fh, pid, "flush from another process: not committing");
                return Ok(());
            }
        }
        if let OpenFile::Staged { state, .. } = &*file {
            let st = state.lock().await;
            // `cmd > file` opens with O_TRUNC, moves the descriptor to stdout and closes the
            // original before writing anything. Committing then would replace the object with
            // an empty one for a moment: leave the truncation to the next flush, an fsync or
            // the last close.
            if st.only_open_trunc && st.dirty && st.base.as_ref().is_some_and(|b| b.size > 0) {
                debug!(fh, key = %st.key, "flush of a truncated, unwritten file deferred");
                return Ok(());
            }
        }
        self.fsync(fh).await
    }

    /// `fsync`: commits the state of handle `fh`; returns once S3 has the object.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        let file = self.file(fh)?;
        let OpenFile::Staged { state, .. } = &*file else {
            return Ok(());
        };
        let mut st = state.lock().await;
        self.commit(&mut st).await
    }

    /// Uploads a dirty state. Returns only once S3 has the new object (or with the error).
    pub(super) async fn commit(&self, st: &mut WriteState) -> FsResult<()> {
        if !st.dirty || st.unlinked {
            return Ok(());
        }
        if !st.staged {
            self.ensure_staged(st).await?;
        }
        let file = staged_file(&st.file)?;
        let started = std::time::Instant::now();
        let result = match st.stream.take() {
            Some(stream) if stream.started() && !stream.failed() => {
                stream.finish(file, st.size).await
            }
            other => {
                if let Some(s) = other {
                    s.abort().await;
                }
                let staged = Staged {
                    file,
                    size: st.size,
                    base: st.base.as_ref(),
                    dirty_parts: &st.dirty_parts,
                };
                let plan = PartPlan {
                    part_size: self.config.write.part_size,
                    max_in_flight: self.config.write.max_parts_in_flight,
                };
                upload_staged(&self.store, &st.key, staged, plan, &st.opts).await
            }
        };
        match result {
            Ok(etag) => {
                info!(key = %st.key, size = st.size, ms = started.elapsed().as_millis() as u64, "uploaded");
                st.commit_failed = false;
                st.dirty = false;
                st.dirty_parts.clear();
                st.base = Some(BaseVersion {
                    key: st.key.clone(),
                    etag: etag.clone(),
                    size: st.size,
                });
                let meta = ObjectMeta {
                    size: st.size,
                    last_modified: SystemTime::now(),
                    etag,
                    content_type: st.opts.content_type.clone(),
                    storage_class: None,
                    version_id: None,
                    metadata: st.opts.metadata.clone(),
                };
                let mut table = self.inodes.lock().unwrap();
                if let Some(n) = table.get_mut(st.ino) {
                    n.stat = stat_from_meta(&meta);
                    n.meta = None;
                    n.tags = None;
                    n.valid_until = Instant::now() + self.config.metadata_ttl;
                }
                Ok(())
            }
            Err(e) => {
                st.commit_failed = true;
                error!(
                    key = %st.key,
                    staged = %st.file.as_ref().map(|f| f.path().display().to_string()).unwrap_or_default(),
                    "upload failed; the previous object is unchanged and the written data is \
                     kept in the staging file: {e}"
                );
                Err(e)
            }
        }
    }

    /// Closes handle `fh`. The last handle of a write state retries a pending commit and, if
    /// that fails too, keeps the staged file and logs where it is.
    pub async fn release(&self, fh: u64) {
        let Some(file) = self.files.lock().unwrap().remove(&fh) else {
            return;
        };
        let (ino, state) = match &*file {
            OpenFile::Staged { ino, state, .. } => (ino, state),
            OpenFile::Read { ino, cached, .. } => {
                if *cached {
                    if let Some(n) = self.inodes.lock().unwrap().get_mut(*ino) {
                        n.cached_opens = n.cached_opens.saturating_sub(1);
                    }
                }
                return;
            }
        };
        let mut st = state.lock().await;
        st.handles -= 1;
        if st.handles > 0 {
            return;
        }
        if st.dirty && !st.unlinked {
            // A failed commit was already reported to the application: keep the data, don't
            // upload it later behind its back. Otherwise (writes never flushed) save it now.
            let result = if st.commit_failed {
                Err(FsError::new(libc::EIO, "the last upload failed"))
            } else {
                self.commit(&mut st).await
            };
            if let Err(e) = result {
                if let Some(tmp) = st.file.take() {
                    let kept = keep_staged(tmp);
                    error!(key = %st.key, "unsaved data of a closed file kept at {kept}: {e}");
                }
            }
        }
        self.writes.lock().unwrap().remove(ino);
    }

    /// Applies `setattr`: size changes go through a write state; mode, owner and times are
    /// kept in s3fs's metadata.
    pub async fn setattr(
        &self,
        ino: u64,
        fh: Option<u64>,
        change: AttrChange,
    ) -> FsResult<FileAttr> {
        self.check_writable()?;
        let node = self.node(ino)?;
        if let Some(size) = change.size {
            if node.kind == Kind::Dir {
                return Err(FsError::new(libc::EISDIR, "is a directory"));
            }
            let (state, temporary) = match self.write_state(ino) {
                Some(s) => (s, None),
                None => {
                    let tmp_fh = self.open_for_write(ino, libc::O_WRONLY, 0).await?;
                    (self.write_state(ino).unwrap(), Some(tmp_fh))
                }
            };
            let result = async {
                let mut st = state.lock().await;
                self.truncate_state(&mut st, size).await?;
                if temporary.is_some() {
                    self.commit(&mut st).await?;
                }
                Ok::<_, FsError>(())
            }
            .await;
            if let Some(tmp) = temporary {
                self.release(tmp).await;
            }
            result?;
        }
        let _ = fh;
        if change.touches_metadata() {
            self.change_metadata(ino, &change).await?;
        }
        let node = self.node(ino)?;
        Ok(self.attr_of(&node))
    }

    async fn change_metadata(&self, ino: u64, change: &AttrChange) -> FsResult<()> {
        let node = self.node(ino)?;
        let current = self.attr_of(&node);
        let file_type = match node.kind {
            Kind::Dir => libc::S_IFDIR,
            Kind::Symlink => libc::S_IFLNK,
            Kind::File => libc::S_IFREG,
        };
        match node.kind {
            Kind::Dir => {
                // Directories keep their attributes on their marker object, created if needed.
                let marker = node.key.clone();
                if marker.is_empty() {
                    return Ok(()); // the bucket root has nowhere to keep them
                }
                let mut opts = match self.store.head(&marker).await {
                    Ok(meta) => put_options_of(&meta),
                    Err(StoreError::NotFound) => PutOptions::default(),
                    Err(e) => return Err(e.into()),
                };
                apply_attr_metadata(&mut opts, change, file_type, current.perm as u32);
                self.store.put(&marker, Bytes::new(), &opts).await?;
                self.note_attrs(ino, &opts);
            }
            Kind::File | Kind::Symlink => {
                let perm = current.perm as u32;
                self.rewrite_metadata(ino, |opts| {
                    apply_attr_metadata(opts, change, file_type, perm);
                    Ok(())
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Changes the metadata (user metadata, content type) of file `ino` with `edit`: into the
    /// pending upload when the file has unsaved writes, else by copying the object onto
    /// itself with `MetadataDirective: REPLACE` (content, tags and the rest are kept).
    /// S3's 2 KB limit on user metadata is checked first (E2BIG), so a change is never
    /// half-applied.
    pub(super) async fn rewrite_metadata(
        &self,
        ino: u64,
        edit: impl FnOnce(&mut PutOptions) -> FsResult<()>,
    ) -> FsResult<()> {
        if let Some(state) = self.write_state(ino) {
            let mut st = state.lock().await;
            if st.dirty && !st.unlinked {
                let mut opts = st.opts.clone();
                edit(&mut opts)?;
                check_metadata_size(&opts)?;
                st.opts = opts;
                self.note_attrs(ino, &st.opts);
                return Ok(());
            }
        }
        let node = self.node(ino)?;
        let meta = self.store.head(&node.key).await?;
        let mut opts = put_options_of(&meta);
        edit(&mut opts)?;
        check_metadata_size(&opts)?;
        let etag = self.store.copy(&node.key, &node.key, Some(&opts)).await?;
        let meta = ObjectMeta {
            etag: etag.clone(),
            metadata: opts.metadata.clone(),
            content_type: opts.content_type.clone(),
            ..meta
        };
        {
            let mut table = self.inodes.lock().unwrap();
            if let Some(n) = table.get_mut(ino) {
                n.stat = stat_from_meta(&meta);
                n.meta = Some(Arc::new(meta));
                n.valid_until = Instant::now() + self.config.metadata_ttl;
            }
        }
        if let Some(state) = self.write_state(ino) {
            let mut st = state.lock().await;
            st.opts = opts;
            if let Some(b) = &mut st.base {
                b.etag = etag;
            }
        }
        Ok(())
    }

    /// Reflects s3fs attributes from `opts` into the inode's stat.
    fn note_attrs(&self, ino: u64, opts: &PutOptions) {
        let num = |k: &str| opts.metadata.get(k).and_then(|v| v.parse::<u32>().ok());
        if let Some(n) = self.inodes.lock().unwrap().get_mut(ino) {
            n.stat.mode = num("mode").or(n.stat.mode);
            n.stat.uid = num("uid").or(n.stat.uid);
            n.stat.gid = num("gid").or(n.stat.gid);
            if let Some(t) = opts
                .metadata
                .get("mtime")
                .and_then(|v| super::parse_s3fs_time(v))
            {
                n.stat.mtime = t;
            }
        }
    }

    /// Marks the write state of `ino` (if any) as unlinked: it will not be uploaded.
    pub(super) async fn forget_writes(&self, ino: u64) {
        if let Some(state) = self.write_state(ino) {
            state.lock().await.unlinked = true;
        }
    }

    /// Commits pending writes of `ino` before a rename copies it, and points them at `new_key`.
    pub(super) async fn commit_pending(&self, ino: u64) -> FsResult<()> {
        if let Some(state) = self.write_state(ino) {
            let mut st = state.lock().await;
            self.commit(&mut st).await?;
        }
        Ok(())
    }

    /// Downloads the object behind an open write state before a rename or unlink takes it
    /// away, so later writes through the open handle keep the content.
    pub(super) async fn stage_before_move(&self, ino: u64) -> FsResult<()> {
        if let Some(state) = self.write_state(ino) {
            let mut st = state.lock().await;
            if !st.unlinked {
                self.ensure_staged(&mut st).await?;
            }
        }
        Ok(())
    }

    /// Write states whose key lies under `prefix`, with their inode numbers.
    pub(super) fn writes_under(&self, prefix: &str) -> Vec<u64> {
        let inos: Vec<u64> = self.writes.lock().unwrap().keys().copied().collect();
        inos.into_iter()
            .filter(|i| self.node(*i).is_ok_and(|n| n.key.starts_with(prefix)))
            .collect()
    }

    /// Points the write state of `ino` (if any) at its new key after a rename.
    pub(super) async fn rekey_writes(&self, ino: u64, new_key: &str) {
        if let Some(state) = self.write_state(ino) {
            let mut st = state.lock().await;
            st.key = new_key.to_string();
            st.base = None;
            st.dirty_parts.clear();
        }
    }

    /// Before unmounting: saves every dirty file (see [`S3Fs::commit_all`]) and retries the
    /// clean-up requests that failed earlier.
    pub async fn shutdown(&self) -> Vec<(String, FsError)> {
        let failures = self.commit_all().await;
        self.store.retry_pending().await;
        failures
    }

    /// Commits every dirty file (used at unmount). Files whose last upload failed are not
    /// retried behind the application's back: their staged data is kept and logged.
    pub async fn commit_all(&self) -> Vec<(String, FsError)> {
        let states: Vec<_> = self.writes.lock().unwrap().values().cloned().collect();
        let mut failures = Vec::new();
        for state in states {
            let mut st = state.lock().await;
            let result = if st.commit_failed && st.dirty && !st.unlinked {
                Err(FsError::new(libc::EIO, "the last upload failed"))
            } else {
                self.commit(&mut st).await
            };
            if let Err(e) = result {
                let key = st.key.clone();
                if let Some(tmp) = st.file.take() {
                    let kept = keep_staged(tmp);
                    error!(key = %key, "unsaved data kept at {kept}: {e}");
                }
                failures.push((key, e));
            }
        }
        failures
    }
}

/// The staging file of a staged state. After a failed save at unmount the file has been moved
/// aside (and its path logged): the handle then fails with EIO instead of touching it.
fn staged_file(file: &Option<NamedTempFile>) -> FsResult<&std::fs::File> {
    file.as_ref()
        .map(|f| f.as_file())
        .ok_or_else(|| FsError::new(libc::EIO, "the unsaved data was moved aside (see the log)"))
}

/// The thread group (process id) of thread `pid`, from /proc; `None` if unknown.
pub(super) fn tgid_of(pid: u32) -> Option<u32> {
    if pid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Keeps a staged file past its handle's life; returns where it is.
fn keep_staged(tmp: NamedTempFile) -> String {
    match tmp.keep() {
        Ok((_, path)) => path.display().to_string(),
        Err(e) => {
            let path: PathBuf = e.file.path().to_path_buf();
            format!("{} (could not be kept: {})", path.display(), e.error)
        }
    }
}

/// S3 allows 2 KB of user metadata (keys and values together).
pub const MAX_METADATA_BYTES: usize = 2048;

fn check_metadata_size(opts: &PutOptions) -> FsResult<()> {
    let total: usize = opts.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_METADATA_BYTES {
        tracing::warn!(total, "refusing a metadata change over S3's 2 KB limit");
        return Err(FsError::new(
            libc::E2BIG,
            format!("user metadata would be {total} bytes; S3 allows {MAX_METADATA_BYTES}"),
        ));
    }
    Ok(())
}

/// The options to rewrite an object with the same metadata and content type.
pub(super) fn put_options_of(meta: &ObjectMeta) -> PutOptions {
    PutOptions {
        content_type: meta.content_type.clone(),
        metadata: meta.metadata.clone(),
    }
}

/// Content-Type for a new object, from its name (as `aws s3 cp` does).
pub fn guess_content_type(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

impl WriteState {
    /// Counts one more handle on this state.
    pub(super) fn add_handle(&mut self) {
        self.handles += 1;
    }
}

impl OpenFile {
    pub(super) fn ino(&self) -> u64 {
        match self {
            OpenFile::Read { ino, .. } | OpenFile::Staged { ino, .. } => *ino,
        }
    }
}
