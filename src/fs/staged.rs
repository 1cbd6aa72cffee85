//! A staged file: the local copy of one object being written, and its way back to S3.
//!
//! Design note: a file open for writing has one [`StagedFile`] per inode, shared by all its
//! handles (so a second descriptor reads what the first wrote). Its bytes live in a temp file
//! (under `--cache-dir`, else the system temp dir); where they stand is [`Content`], and how
//! they relate to S3 is [`Sync`]:
//! - created files and `O_TRUNC` opens start empty, and stream their parts to S3 while the
//!   application writes front to back ([`StreamingUpload`]);
//! - other opens stage the current object lazily — on the first write, read or truncate — so
//!   `touch` or an open that never writes costs no download;
//! - an append to an object of at least one part stages only the object's last partial part
//!   and what is written past it ([`Content::Tail`], see [`tail`]): the whole parts before it
//!   are copied on the server at upload, so `echo x >> big` moves less than a part each way.
//!
//! [`StagedFile::commit`] uploads: nothing is reported written before S3 answered success,
//! and a failure comes back as an errno while the previous object stays as it was (S3
//! replaces objects atomically). The staged bytes stay on disk until they are uploaded; a file
//! closed after a failed upload is moved, with a manifest, to the failed uploads of the staging
//! directory ([`StagedFile::keep_aside`], [`crate::data::salvage`]) and its path logged, so
//! what the user wrote is never silently dropped, and `s3mount --retry-failed-uploads` can
//! send it later. This module knows nothing of inodes:
//! the caller records what a commit produced.

use std::collections::BTreeSet;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use tempfile::NamedTempFile;
use tracing::{debug, error, info};

use super::attr::stamp_write;
use crate::config::WriteConfig;
use crate::data::salvage::{self, Manifest, Replaces};
use crate::data::upload::{read_at, upload_staged, BaseVersion, PartPlan, Staged, StreamingUpload};
use crate::error::{FsError, FsResult};
use crate::storage::{ObjectMeta, ObjectStore, PutOptions};

mod server_copy;
mod tail;

/// Attempts at downloading an object for staging when its body breaks off.
const STAGING_ATTEMPTS: u32 = 3;

/// What a staged file needs from the rest of the mount.
pub struct WriteCtx {
    /// The store to upload to.
    pub store: Arc<dyn ObjectStore>,
    /// Upload settings.
    pub config: WriteConfig,
}

impl WriteCtx {
    fn new_stream(&self, key: &str) -> StreamingUpload {
        StreamingUpload::new(
            self.store.clone(),
            key,
            self.config.part_size,
            self.config.max_parts_in_flight,
        )
    }

    fn temp_file(&self) -> FsResult<NamedTempFile> {
        let dir = self.config.staging_dir();
        let cannot = |e: std::io::Error| {
            FsError::new(
                libc::EIO,
                format!("cannot create a staging file in {}: {e}", dir.display()),
            )
        };
        if !dir.is_dir() {
            // The default state directory is made on first use, private to its user.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(cannot)?;
        }
        tempfile::Builder::new()
            .prefix(salvage::STAGING_PREFIX)
            .tempfile_in(&dir)
            .map_err(cannot)
    }

    /// Keeps `tmp` as a failed upload of `key` with its manifest; returns the data's path.
    fn keep_failed(
        &self,
        tmp: NamedTempFile,
        key: &str,
        size: u64,
        opts: &PutOptions,
        error: &str,
        replaces: Replaces,
    ) -> String {
        let dir = self.config.staging_dir();
        let manifest =
            Manifest::new(&self.config.origin, key, size, opts, error).replacing(replaces);
        match salvage::keep(&dir, tmp.path(), &manifest) {
            Ok(entry) => {
                // Moved away: the temp file's own clean-up has nothing left to delete.
                let _ = tmp.keep();
                entry.join(salvage::DATA_FILE).display().to_string()
            }
            Err(e) => match tmp.keep() {
                Ok((_, path)) => format!(
                    "{} (not moved to {}: {e})",
                    path.display(),
                    salvage::failed_dir(&dir).display()
                ),
                Err(k) => format!(
                    "{} (could not be kept: {})",
                    k.file.path().display(),
                    k.error
                ),
            },
        }
    }
}

/// Where the bytes of a staged file are.
enum Content {
    /// Not downloaded yet: the base object is the content.
    Lazy,
    /// Bytes from `from` (a part boundary inside the base) on are in the temp file; those
    /// below are the base's, unchanged and not downloaded (see [`tail`]).
    Tail {
        /// The staging file (sparse below `from`).
        file: NamedTempFile,
        /// Where the staged bytes begin.
        from: u64,
    },
    /// In the temp file.
    Staged(NamedTempFile),
    /// The temp file was moved aside after a failed save (its path was logged).
    MovedAside,
}

/// How a staged file stands against S3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// S3 has what the file holds.
    Clean,
    /// Changed and not uploaded yet.
    Dirty,
    /// Emptied by `open(O_TRUNC)` and nothing done since (dirty; see [`StagedFile::defers_flush`]).
    Truncated,
    /// Dirty, and the last upload failed and was reported: kept, not retried behind the
    /// application's back.
    Failed,
    /// Unlinked (or replaced by a rename) while open: never uploaded again.
    Unlinked,
}

/// The staged copy of one file open for writing.
pub struct StagedFile {
    ctx: Arc<WriteCtx>,
    /// The inode it belongs to.
    pub ino: u64,
    /// The key it uploads to.
    pub key: String,
    content: Content,
    /// Size of the content.
    pub size: u64,
    dirty_parts: BTreeSet<u64>,
    /// The version the content started from, for server-side copies of unchanged parts.
    pub base: Option<BaseVersion>,
    stream: Option<StreamingUpload>,
    /// Content type and user metadata the upload will carry.
    pub opts: PutOptions,
    handles: usize,
    sync: Sync,
    /// Whether `opts.tags` holds the base object's tags (an in-place rewrite keeps them).
    tags_known: bool,
    /// Renamed since it was opened: what its new key holds is not known to this file.
    rekeyed: bool,
    /// `opts` were edited (chmod, utimes, xattrs) since the last write: a streaming upload,
    /// whose metadata was fixed when it started, must apply them after completing.
    edited: bool,
    /// Why the last upload failed (for the manifest of a copy kept after it).
    last_error: Option<String>,
    /// The source version a server-side copy made this file's content, while nothing has
    /// changed it since (see [`server_copy`]).
    copied_from: Option<BaseVersion>,
}

impl StagedFile {
    /// What S3 holds now that this file's content was stored as `etag` (`size` bytes): its
    /// own options, stamped now (S3's Last-Modified is not known without asking).
    fn written_meta(&self, size: u64, etag: String) -> ObjectMeta {
        ObjectMeta {
            size,
            last_modified: SystemTime::now(),
            etag,
            content_type: self.opts.content_type.clone(),
            storage_class: None,
            version_id: None,
            metadata: self.opts.metadata.clone(),
        }
    }

    /// A new, empty file (create): dirty, streaming from its first full part.
    pub fn created(ctx: Arc<WriteCtx>, ino: u64, key: String, opts: PutOptions) -> FsResult<Self> {
        let file = ctx.temp_file()?;
        let stream = Some(ctx.new_stream(&key));
        Ok(StagedFile {
            ino,
            key,
            content: Content::Staged(file),
            size: 0,
            dirty_parts: BTreeSet::new(),
            base: None,
            stream,
            opts,
            handles: 1,
            sync: Sync::Dirty,
            tags_known: true,
            rekeyed: false,
            edited: false,
            last_error: None,
            copied_from: None,
            ctx,
        })
    }

    /// An existing object (or none yet) opened for writing: staged when first needed.
    pub fn opened(
        ctx: Arc<WriteCtx>,
        ino: u64,
        key: String,
        base: Option<&ObjectMeta>,
        opts: PutOptions,
    ) -> Self {
        StagedFile {
            ino,
            size: base.map_or(0, |m| m.size),
            base: base.map(|m| BaseVersion {
                key: key.clone(),
                etag: m.etag.clone(),
                size: m.size,
            }),
            key,
            content: Content::Lazy,
            dirty_parts: BTreeSet::new(),
            stream: None,
            opts,
            handles: 1,
            sync: Sync::Clean,
            tags_known: base.is_none(),
            rekeyed: false,
            edited: false,
            last_error: None,
            copied_from: None,
            ctx,
        }
    }

    /// Replaces the content type and metadata the next upload carries.
    pub fn set_opts(&mut self, opts: PutOptions) {
        self.opts = opts;
        self.edited = true;
    }

    /// Sets the tags the next upload carries (after a tag was changed through the mount).
    pub fn set_tags(&mut self, tags: Vec<(String, String)>) {
        self.opts.tags = Some(tags);
        self.tags_known = true;
    }

    /// Reads the base object's tags before the first upload that would replace it: S3 drops
    /// tags with a new version, a local disk keeps xattrs across writes.
    async fn keep_base_tags(&mut self) -> FsResult<()> {
        if self.tags_known {
            return Ok(());
        }
        if let Some(base) = &self.base {
            match self.ctx.store.get_tags(&base.key).await {
                Ok(tags) => self.opts.tags = (!tags.is_empty()).then_some(tags),
                Err(e) if e.kind() == crate::storage::ErrorKind::NotImplemented => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.tags_known = true;
        Ok(())
    }

    /// Counts one more handle on this file.
    pub fn add_handle(&mut self) {
        self.handles += 1;
    }

    /// Counts one handle less; returns how many are left.
    pub fn drop_handle(&mut self) -> usize {
        self.handles = self.handles.saturating_sub(1);
        self.handles
    }

    /// How the file stands against S3.
    pub fn sync(&self) -> Sync {
        self.sync
    }

    /// Whether there is something to upload.
    pub fn is_dirty(&self) -> bool {
        matches!(self.sync, Sync::Dirty | Sync::Truncated | Sync::Failed)
    }

    /// Marks the file unlinked: it will not be uploaded.
    pub fn unlink(&mut self) {
        self.sync = Sync::Unlinked;
    }

    /// Points the file at `key` after a rename; it uploads whole from now on.
    pub fn rekey(&mut self, key: &str) {
        // A move stages the file whole first (a tail needs its base under the old key).
        debug_assert!(!matches!(self.content, Content::Tail { .. }));
        self.key = key.to_string();
        // A streaming upload not started yet is aimed at the new key; its mirror of the
        // writes starts at byte 0, so only an empty file keeps one.
        if self.stream.as_ref().is_some_and(|s| !s.started()) {
            self.stream = (self.size == 0).then(|| self.ctx.new_stream(key));
        }
        self.base = None;
        self.rekeyed = true;
        self.dirty_parts.clear();
        self.copied_from = None;
    }

    /// Whether a flush now should be left to a later one: `cmd > file` opens with O_TRUNC,
    /// moves the descriptor to stdout and closes the original before writing anything, and
    /// committing then would replace the object with an empty one for a moment.
    pub fn defers_flush(&self) -> bool {
        self.sync == Sync::Truncated && self.base.as_ref().is_some_and(|b| b.size > 0)
    }

    /// Downloads the current object into the staging file, once (for a tail, what is
    /// below it).
    pub async fn ensure_staged(&mut self) -> FsResult<()> {
        if matches!(self.content, Content::Tail { .. }) {
            return self.stage_below_tail().await;
        }
        if !matches!(self.content, Content::Lazy) {
            return Ok(());
        }
        let file = self.ctx.temp_file()?;
        if let Some(base) = &self.base {
            download(&self.ctx, base, 0..base.size, &file).await?;
            self.size = base.size;
        }
        debug!(key = %self.key, size = self.size, "staged");
        self.content = Content::Staged(file);
        Ok(())
    }

    fn file(&self) -> FsResult<&std::fs::File> {
        match &self.content {
            Content::Staged(f) | Content::Tail { file: f, .. } => Ok(f.as_file()),
            Content::Lazy => Err(FsError::new(libc::EIO, "the file is not staged")),
            Content::MovedAside => Err(FsError::new(
                libc::EIO,
                "the unsaved data was moved aside (see the log)",
            )),
        }
    }

    fn mark_dirty(&mut self, from: u64, to: u64) {
        if self.sync != Sync::Unlinked {
            self.sync = Sync::Dirty;
        }
        // A change of content moves mtime and ctime, stored with the upload (a later
        // utimensat before the commit overrides it, as on a local disk).
        stamp_write(&mut self.opts, SystemTime::now());
        self.edited = false;
        self.copied_from = None;
        let ps = self.ctx.config.part_size;
        if to > from {
            self.dirty_parts.extend(from / ps..=(to - 1) / ps);
        }
    }

    /// Writes `data` at `offset`; returns the new size.
    pub async fn write_at(&mut self, offset: u64, data: &[u8]) -> FsResult<u64> {
        self.stage_for(offset).await?;
        let end = offset + data.len() as u64;
        self.file()?.write_all_at(data, offset)?;
        if let Some(stream) = self.stream.as_mut() {
            stream.note_write(offset, data);
        }
        if self.stream.as_ref().is_some_and(|s| offset < s.uploaded) {
            // Rewriting bytes already sent: fall back to uploading the staged file whole.
            debug!(key = %self.key, offset, "non-sequential write; streaming upload dropped");
            self.drop_stream().await;
        }
        self.size = self.size.max(end);
        self.mark_dirty(offset, end);
        self.advance_stream().await;
        Ok(self.size)
    }

    /// Uploads the parts that have filled up, when streaming.
    async fn advance_stream(&mut self) {
        let starts = self
            .stream
            .as_ref()
            .is_some_and(|s| !s.started() && self.size >= self.ctx.config.part_size);
        if starts {
            if let Err(e) = self.keep_base_tags().await {
                debug!("cannot read the tags to keep, will upload the file whole at commit: {e}");
                self.drop_stream().await;
            }
        }
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let Content::Staged(file) = &self.content else {
            return; // a tail's stream never starts: only created and emptied files stream
        };
        if let Err(e) = stream.advance(file.as_file(), self.size, &self.opts).await {
            debug!("streaming part failed, will upload the file whole at commit: {e}");
            self.drop_stream().await;
        }
    }

    async fn drop_stream(&mut self) {
        if let Some(s) = self.stream.take() {
            s.abort().await;
        }
    }

    /// Reads up to `len` bytes at `offset` (read-your-writes).
    pub async fn read_at(&mut self, offset: u64, len: u32) -> FsResult<Bytes> {
        if !self.tail_holds(offset) {
            self.ensure_staged().await?;
        }
        if offset >= self.size {
            return Ok(Bytes::new());
        }
        let len = (len as u64).min(self.size - offset) as usize;
        read_at(self.file()?, offset, len)
    }

    /// Sets the size to `size`, as truncate(2) does.
    pub async fn truncate(&mut self, size: u64) -> FsResult<()> {
        if size == 0 && matches!(self.content, Content::Lazy | Content::Tail { .. }) {
            // Nothing to download: the new content is empty.
            self.content = Content::Staged(self.ctx.temp_file()?);
        } else {
            self.stage_for(size).await?;
        }
        self.file()?.set_len(size)?;
        if let Some(stream) = self.stream.as_mut() {
            stream.note_truncate(size);
        }
        if self.stream.as_ref().is_some_and(|s| size < s.uploaded) {
            self.drop_stream().await;
        }
        let old = self.size;
        self.size = size;
        let ps = self.ctx.config.part_size;
        let from = old.min(size) / ps * ps;
        self.mark_dirty(from, old.max(size).max(from + 1));
        Ok(())
    }

    /// `open(O_TRUNC)`: empties the file and streams what is written next.
    pub async fn truncate_on_open(&mut self) -> FsResult<()> {
        self.truncate(0).await?;
        if self.sync == Sync::Dirty {
            self.sync = Sync::Truncated;
        }
        if self.stream.is_none() {
            self.stream = Some(self.ctx.new_stream(&self.key));
        }
        Ok(())
    }

    /// Uploads the file if it is dirty. Returns once S3 has the new object, with what it now
    /// says about it (`None` when there was nothing to upload), or with the error.
    pub async fn commit(&mut self) -> FsResult<Option<ObjectMeta>> {
        if !self.is_dirty() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let uploaded = async {
            self.stage_for_upload().await?;
            self.keep_base_tags().await?;
            self.upload_or_fall_back().await
        };
        match uploaded.await {
            Ok(etag) => {
                info!(key = %self.key, size = self.size, ms = started.elapsed().as_millis() as u64, "uploaded");
                self.sync = Sync::Clean;
                self.edited = false;
                self.dirty_parts.clear();
                self.base = Some(BaseVersion {
                    key: self.key.clone(),
                    etag: etag.clone(),
                    size: self.size,
                });
                self.stream_again_if_empty();
                Ok(Some(self.written_meta(self.size, etag)))
            }
            Err(e) => {
                self.sync = Sync::Failed;
                let endpoint = self.ctx.config.origin.endpoint_url.as_deref();
                self.last_error = Some(salvage::readable_error(&e, endpoint));
                error!(
                    key = %self.key,
                    staged = %self.staged_path(),
                    "upload failed; the previous object is unchanged and the written data is \
                     kept in the staging file: {e}"
                );
                Err(e)
            }
        }
    }

    /// An empty file just committed streams what is written next, as a created one does:
    /// `dd of=f` (and any shell redirection) creates the file, moves the descriptor and
    /// closes the first one, whose flush stores the empty object before the first write.
    fn stream_again_if_empty(&mut self) {
        if self.size == 0 && self.stream.is_none() && matches!(self.content, Content::Staged(_)) {
            self.stream = Some(self.ctx.new_stream(&self.key));
        }
    }

    /// Uploads the staged file; `copies`: whether unchanged parts of the base may be copied on
    /// the server.
    async fn upload(&mut self, copies: bool) -> FsResult<String> {
        let stream = self.stream.take();
        let file = self.file()?;
        match stream {
            Some(stream) if stream.started() && !stream.failed() => {
                let created_with = stream.options().cloned().unwrap_or_default();
                let etag = stream.finish(file, self.size).await?;
                self.settle_streamed_metadata(created_with, etag).await
            }
            other => {
                if let Some(s) = other {
                    s.abort().await;
                }
                let staged = Staged {
                    file,
                    size: self.size,
                    base: self.base.as_ref().filter(|_| copies),
                    dirty_parts: &self.dirty_parts,
                };
                let plan = PartPlan {
                    part_size: self.ctx.config.part_size,
                    max_in_flight: self.ctx.config.max_parts_in_flight,
                };
                upload_staged(&self.ctx.store, &self.key, staged, plan, &self.opts).await
            }
        }
    }

    /// A streamed object carries the metadata its upload started with. Writes since then only
    /// moved mtime, and that time is kept as stored (so `stat` shows what a remount will);
    /// anything else changed since (chmod, chown, utimes, xattrs) is applied by copying the
    /// object onto itself.
    async fn settle_streamed_metadata(
        &mut self,
        created_with: PutOptions,
        etag: String,
    ) -> FsResult<String> {
        let untimed = |o: &PutOptions| {
            let mut o = o.clone();
            o.metadata.remove("mtime");
            o.metadata.remove("ctime");
            o
        };
        if !self.edited && untimed(&created_with) == untimed(&self.opts) {
            self.opts = created_with;
            return Ok(etag);
        }
        debug!(key = %self.key, "applying metadata changed during a streaming upload");
        Ok(self
            .ctx
            .store
            .copy(&self.key, &self.key, Some(&self.opts))
            .await?)
    }

    /// Saves the file when its last handle closes (or at unmount). A file whose last upload
    /// failed is not retried behind the application's back, which was told; its data is
    /// moved aside and the path logged instead.
    pub async fn save_on_close(&mut self) -> FsResult<Option<ObjectMeta>> {
        let result = match self.sync {
            Sync::Failed => Err(FsError::new(libc::EIO, "the last upload failed")),
            _ => self.commit().await,
        };
        if let Err(e) = &result {
            if let Err(full) = self.stage_below_tail().await {
                debug!(key = %self.key, "cannot complete an appended file to keep it: {full}");
            }
            let why = self.last_error.clone().unwrap_or_else(|| e.message.clone());
            if let Some(kept) = self.keep_aside(&why) {
                error!(
                    key = %self.key,
                    "unsaved data kept at {kept}: {e}; upload it again with \
                     's3mount --retry-failed-uploads' (list: 's3mount --list-failed-uploads')"
                );
            }
        }
        result
    }

    /// Keeps the staging file as a failed upload (see [`salvage`]); returns where its data is.
    fn keep_aside(&mut self, error: &str) -> Option<String> {
        let tmp = match std::mem::replace(&mut self.content, Content::MovedAside) {
            Content::Staged(tmp) => tmp,
            Content::Tail { file, from } => {
                self.keep_tail(file, from, error);
                return None;
            }
            other => {
                self.content = other;
                return None;
            }
        };
        let replaces = match (&self.base, self.rekeyed) {
            (Some(base), _) => Replaces::Version(base.etag.clone()),
            (None, false) => Replaces::Nothing,
            (None, true) => Replaces::Unknown,
        };
        Some(
            self.ctx
                .keep_failed(tmp, &self.key, self.size, &self.opts, error, replaces),
        )
    }

    fn staged_path(&self) -> String {
        match &self.content {
            Content::Staged(f) | Content::Tail { file: f, .. } => f.path().display().to_string(),
            _ => String::new(),
        }
    }
}

/// Downloads `range` of `base` into `file` at the same offsets. A body that breaks off is
/// resumed where it stopped (failures before the body were already retried by the S3 client).
async fn download(
    ctx: &WriteCtx,
    base: &BaseVersion,
    range: std::ops::Range<u64>,
    file: &NamedTempFile,
) -> FsResult<()> {
    let mut offset = range.start;
    let mut attempt = 0;
    while offset < range.end {
        attempt += 1;
        let mut body = ctx
            .store
            .get_range(&base.key, offset..range.end, Some(&base.etag))
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
        if offset < range.end && attempt >= STAGING_ATTEMPTS {
            return Err(
                broke.unwrap_or_else(|| FsError::new(libc::EIO, "short download while staging"))
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
