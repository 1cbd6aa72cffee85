//! Appending without downloading: a staged file that holds only the tail of its content.
//!
//! Design note: an object of at least one part, opened without `O_TRUNC` and first written at
//! or past its end (`>>`, `O_APPEND`, a log), does not need its bytes here. Cut into parts of
//! the upload's size, its whole parts stay as they are and can be copied on the server
//! (`UploadPartCopy`, conditional on the base's ETag, so a concurrent change is never mixed
//! in); only its last partial part (`from` = the base's size rounded down to a part) is
//! downloaded, and the staging file holds the content from `from` on ([`Content::Tail`]; the
//! file is sparse below). At upload, the parts below `from` are copies of the base and the
//! rest is sent: less than a part fetched, the partial part plus the new bytes sent.
//!
//! Everything that needs a byte below `from` (a write or truncate there, a read of it, a
//! rename, an upload that would read it) first downloads that range, which makes the file an
//! ordinary fully staged one ([`StagedFile::ensure_staged`]): the behaviour of every other
//! write. If the server refuses `UploadPartCopy` (`NotImplemented`), the base is staged whole
//! and sent without copies; if the base changed (412), the close fails with `ESTALE` and the
//! previous object stays. A tail that cannot be completed after a failed upload is kept where
//! it is with its offsets logged, never handed to `--retry-failed-uploads` as a whole object.

use tracing::{debug, error, info, warn};

use super::{download, Content, StagedFile, Sync};
use crate::data::upload::{PartPlan, Staged};
use crate::error::FsResult;
use crate::storage::{ErrorKind, StoreError};

impl StagedFile {
    fn plan(&self) -> PartPlan {
        PartPlan {
            part_size: self.ctx.config.part_size,
            max_in_flight: self.ctx.config.max_parts_in_flight,
        }
    }

    /// Where a tail would begin if the file, not staged yet, were first changed at `offset`:
    /// at or past the end of a base of at least one part, nothing else pending.
    fn tail_start_for(&self, offset: u64) -> Option<u64> {
        let base = self.base.as_ref()?;
        let ps = self.ctx.config.part_size;
        let appends = matches!(self.content, Content::Lazy)
            && base.key == self.key
            && !self.rekeyed
            && self.size == base.size
            && base.size >= ps
            && offset >= base.size
            && self.stream.is_none()
            && !matches!(self.sync, Sync::Unlinked | Sync::Truncated);
        appends.then(|| base.size / ps * ps)
    }

    /// Whether the staging file holds byte `offset` as the file is now (fully staged, or a
    /// tail that begins at or below it).
    pub(super) fn tail_holds(&self, offset: u64) -> bool {
        match &self.content {
            Content::Tail { from, .. } => offset >= *from,
            Content::Staged(_) => true,
            Content::Lazy | Content::MovedAside => false,
        }
    }

    /// Makes the staging file hold what a change at `offset` (a write there, or a truncate to
    /// that size) touches: a tail when it appends, else the whole file.
    pub(super) async fn stage_for(&mut self, offset: u64) -> FsResult<()> {
        if let Some(from) = self.tail_start_for(offset) {
            return self.start_tail(from).await;
        }
        if matches!(self.content, Content::Tail { .. }) && self.tail_holds(offset) {
            return Ok(());
        }
        self.ensure_staged().await
    }

    /// Downloads the base's last partial part, `[from, base size)`, into a new staging file.
    async fn start_tail(&mut self, from: u64) -> FsResult<()> {
        let Some(base) = self.base.clone() else {
            return self.ensure_staged().await;
        };
        let file = self.ctx.temp_file()?;
        download(&self.ctx, &base, from..base.size, &file).await?;
        file.as_file().set_len(base.size)?;
        debug!(key = %self.key, from, size = base.size, "staged the tail for an append");
        self.content = Content::Tail { file, from };
        Ok(())
    }

    /// Downloads what is below the tail: the file becomes fully staged.
    pub(super) async fn stage_below_tail(&mut self) -> FsResult<()> {
        let Content::Tail { file, from } = &self.content else {
            return Ok(());
        };
        let Some(base) = self.base.as_ref() else {
            return Err(crate::error::FsError::new(
                libc::EIO,
                "a staged tail has lost its base version",
            ));
        };
        download(&self.ctx, base, 0..*from, file).await?;
        debug!(key = %self.key, below = *from, "staged the rest of an appended file");
        if let Content::Tail { file, .. } =
            std::mem::replace(&mut self.content, Content::MovedAside)
        {
            self.content = Content::Staged(file);
        }
        Ok(())
    }

    /// Before an upload: the file is staged (wholly, or as a tail that the upload's copies
    /// complete).
    pub(super) async fn stage_for_upload(&mut self) -> FsResult<()> {
        let Content::Tail { from, .. } = &self.content else {
            return self.ensure_staged().await;
        };
        let staged = Staged {
            file: self.file()?,
            size: self.size,
            base: self.base.as_ref(),
            dirty_parts: &self.dirty_parts,
        };
        let first = staged.first_byte_read(self.plan());
        if first.is_some_and(|b| b < *from) {
            debug!(key = %self.key, ?first, from, "the upload needs bytes below the tail");
            return self.stage_below_tail().await;
        }
        Ok(())
    }

    /// Uploads; if the server refused to copy parts, stages the base whole and sends it all.
    /// After any failure a tail is completed if it can be, so what is kept is the whole file.
    pub(super) async fn upload_or_fall_back(&mut self) -> FsResult<String> {
        let copied = self.base.is_some();
        let err = match self.upload(true).await {
            Ok(etag) => return Ok(etag),
            Err(e) => e,
        };
        let was_tail = matches!(self.content, Content::Tail { .. });
        if was_tail {
            if let Err(e) = self.stage_below_tail().await {
                warn!(key = %self.key, "cannot download the base of a failed append: {e}");
                return Err(err);
            }
        }
        if !(copied && refused(&err)) {
            return Err(err);
        }
        info!(key = %self.key, "the server does not copy parts; uploading the whole file: {err}");
        self.upload(false).await
    }

    /// Keeps a tail that could not be completed where it is, and logs where: it is not an
    /// object a retry could send (the bytes below `from` are the base's).
    pub(super) fn keep_tail(&mut self, file: tempfile::NamedTempFile, from: u64, error: &str) {
        let etag = self.base.as_ref().map_or("?", |b| b.etag.as_str());
        let path = match file.keep() {
            Ok((_, path)) => path.display().to_string(),
            Err(e) => format!(
                "{} (could not be kept: {})",
                e.file.path().display(),
                e.error
            ),
        };
        error!(
            key = %self.key,
            "unsaved appended data kept at {path}: {error}; it holds bytes {from}..{} of the \
             file at the same offsets, bytes 0..{from} are those of version {etag}",
            self.size
        );
    }
}

/// Whether an upload failed because the server does not implement a request it used (a part
/// copy), so that sending the bytes instead can succeed.
fn refused(e: &crate::error::FsError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<StoreError>())
        .is_some_and(|s| s.kind() == ErrorKind::NotImplemented)
}
