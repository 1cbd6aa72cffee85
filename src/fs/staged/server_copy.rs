//! A staged file whose content becomes a copy made on the server.
//!
//! Design note: `copy_file_range(2)` of a whole object into a file that holds nothing yet (just
//! created, opened with `O_TRUNC`, or an empty object) needs no byte to pass through the
//! mount: S3 copies the source ([`copy_whole`]) onto the file's key with the file's own s3fs
//! headers (its mode, owner and times, as the `open(O_CREAT)` made them, the mtime moved to
//! now as a write would) and the source's content type. The staged file then is clean, its
//! content that new version and not downloaded ([`Content::Lazy`]), so the close that follows
//! uploads nothing. The source version it copied is remembered until anything changes the
//! file: the kernel cuts large copies into calls of at most 2 GiB, and the calls after the
//! first ask for bytes the file already holds, from the same offsets of the same version.

use std::time::SystemTime;

use tracing::info;

use super::{Content, StagedFile, Sync};
use crate::data::upload::{copy_whole, BaseVersion, PartPlan, MAX_COPY_OBJECT};
use crate::error::{FsError, FsResult};
use crate::fs::attr::stamp_write;
use crate::storage::ObjectMeta;

impl StagedFile {
    /// Whether the file holds nothing and nothing of it is being uploaded: a server-side copy
    /// may become its whole content.
    pub fn takes_a_copy(&self) -> bool {
        self.size == 0
            && !matches!(self.sync, Sync::Unlinked | Sync::Failed)
            && !matches!(self.content, Content::MovedAside)
            && self.stream.as_ref().is_none_or(|s| !s.started())
    }

    /// How many bytes a copy of `len` bytes from `src` at `off_in` to `off_out` finds already
    /// in place: the file is, unchanged, the copy of that very version, and the offsets match.
    pub fn already_copied(
        &self,
        src: &BaseVersion,
        off_in: u64,
        off_out: u64,
        len: u64,
    ) -> Option<u64> {
        let from = self.copied_from.as_ref()?;
        let same = from.key == src.key && from.etag == src.etag && from.size == src.size;
        (same && off_in == off_out && self.sync == Sync::Clean && self.size == src.size)
            .then(|| len.min(src.size.saturating_sub(off_in)))
    }

    /// Makes the file's content a server-side copy of `src` (whose content type is
    /// `content_type`). Returns what S3 now holds at the file's key, for the inode table.
    pub async fn copy_from(
        &mut self,
        src: &BaseVersion,
        content_type: Option<String>,
    ) -> FsResult<ObjectMeta> {
        if !self.takes_a_copy() {
            return Err(FsError::new(libc::EOPNOTSUPP, "the file is not empty"));
        }
        let started = std::time::Instant::now();
        // An existing object rewritten keeps its tags, as a write does; a new file has none
        // (a CopyObject without tags would copy the source's).
        self.keep_base_tags().await?;
        let mut opts = self.opts.clone();
        opts.tags.get_or_insert_with(Vec::new);
        opts.content_type = content_type;
        stamp_write(&mut opts, SystemTime::now());
        let plan = PartPlan {
            part_size: self.ctx.config.part_size,
            max_in_flight: self.ctx.config.max_parts_in_flight,
        };
        let store = &self.ctx.store;
        let etag = copy_whole(store, src, &self.key, &opts, MAX_COPY_OBJECT, plan).await?;
        info!(
            key = %self.key,
            from = %src.key,
            size = src.size,
            ms = started.elapsed().as_millis() as u64,
            "copied on the server"
        );
        self.drop_stream().await;
        self.content = Content::Lazy;
        self.size = src.size;
        self.dirty_parts.clear();
        self.base = Some(BaseVersion {
            key: self.key.clone(),
            etag: etag.clone(),
            size: src.size,
        });
        self.sync = Sync::Clean;
        self.edited = false;
        self.opts = opts;
        self.copied_from = Some(src.clone());
        Ok(self.written_meta(src.size, etag))
    }
}
