//! Uploads: turning a staged local file into an object, as one PutObject or a multipart
//! upload, and streaming parts while the application is still writing.
//!
//! Design note: the staged file (see [`crate::fs::staged`]) is always the source of truth; the
//! code here only reads it. Two paths lead to S3:
//! - [`StreamingUpload`]: while a new file is written front to back, every part that fills up
//!   is uploaded at once, with at most `max_parts_in_flight` parts in flight (a writer that
//!   gets ahead waits for the oldest part), so memory stays bounded and the upload overlaps
//!   the writing. The upload is created lazily, when the first part is full, so a file
//!   smaller than one part costs a single PutObject. The writes are mirrored in memory
//!   ([`pending`]), so a full part goes out without being read back from the staging file.
//! - [`upload_staged`]: the whole staged file at once (random writes, appends, truncates).
//!   Parts that are unchanged since the object version the file was staged from are copied
//!   server-side (`UploadPartCopy`) instead of being sent again.
//!
//! Nothing is acknowledged before `CompleteMultipartUpload`/`PutObject` succeeded, and every
//! failure aborts the multipart upload so no parts are left behind; the previous object
//! version is untouched until the final call commits the new one.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::error::{FsError, FsResult};
use crate::storage::{ObjectStore, PutOptions, StoreError};

mod pending;

use pending::PendingPart;

/// The object version a staged file started from, for server-side copies of unchanged parts.
#[derive(Clone, Debug)]
pub struct BaseVersion {
    /// Key of the base object (the same key, unless renamed).
    pub key: String,
    /// Its ETag (copies are conditional on it).
    pub etag: String,
    /// Its size.
    pub size: u64,
}

/// Reads `len` bytes at `offset` of the staged file.
pub fn read_at(file: &File, offset: u64, len: usize) -> FsResult<Bytes> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(Bytes::from(buf))
}

type PartTask = JoinHandle<Result<(i32, String), StoreError>>;

/// A multipart upload fed part by part while a new file is written sequentially.
pub struct StreamingUpload {
    store: Arc<dyn ObjectStore>,
    key: String,
    part_size: u64,
    max_in_flight: usize,
    upload_id: Option<String>,
    /// The content type and metadata the upload was created with (fixed from then on).
    opts: Option<PutOptions>,
    /// Bytes handed to part uploads so far (always a multiple of `part_size`).
    pub uploaded: u64,
    in_flight: VecDeque<PartTask>,
    done: Vec<(i32, String)>,
    failed: Option<StoreError>,
    /// What was written past `uploaded`, in memory.
    pending: PendingPart,
}

impl StreamingUpload {
    /// A streaming upload of `key` for a file that is empty now (the mirror of its writes
    /// starts at byte 0); nothing is sent until the first part is full.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        key: &str,
        part_size: u64,
        max_in_flight: usize,
    ) -> Self {
        StreamingUpload {
            store,
            key: key.to_string(),
            part_size,
            max_in_flight: max_in_flight.max(1),
            upload_id: None,
            opts: None,
            uploaded: 0,
            in_flight: VecDeque::new(),
            done: Vec::new(),
            failed: None,
            pending: PendingPart::new(part_size, max_in_flight.max(1)),
        }
    }

    /// Mirrors a write of the staging file (`data` at `offset`), so that the part it fills
    /// can be sent from memory.
    pub fn note_write(&mut self, offset: u64, data: &[u8]) {
        match offset.checked_sub(self.uploaded) {
            Some(at) => self.pending.write(at, data),
            None => self.pending.lose_track(),
        }
    }

    /// Mirrors a truncate of the staging file to `size` bytes.
    pub fn note_truncate(&mut self, size: u64) {
        match size.checked_sub(self.uploaded) {
            Some(len) => self.pending.set_len(len),
            None => self.pending.lose_track(),
        }
    }

    /// Uploads every complete part of `file` below `written` bytes that is not uploaded yet.
    /// Waits for the oldest part when too many are in flight.
    pub async fn advance(&mut self, file: &File, written: u64, opts: &PutOptions) -> FsResult<()> {
        while written >= self.uploaded + self.part_size {
            if self.failed.is_some() {
                break;
            }
            if self.upload_id.is_none() {
                self.upload_id = Some(self.store.create_multipart(&self.key, opts).await?);
                self.opts = Some(opts.clone());
            }
            while self.in_flight.len() >= self.max_in_flight {
                self.reap_one().await;
            }
            let body = match self.pending.take_part() {
                Some(body) => body,
                None => read_at(file, self.uploaded, self.part_size as usize)?,
            };
            let part_number = (self.uploaded / self.part_size) as i32 + 1;
            let store = self.store.clone();
            let key = self.key.clone();
            let id = self.upload_id.clone().unwrap();
            debug!(key = %key, part_number, "uploading part while writing");
            self.in_flight.push_back(tokio::spawn(async move {
                let etag = store.upload_part(&key, &id, part_number, body).await?;
                Ok((part_number, etag))
            }));
            self.uploaded += self.part_size;
        }
        let in_step = written
            .checked_sub(self.uploaded)
            .is_some_and(|rest| rest <= self.part_size);
        if !self.pending.tracking() && self.failed.is_none() && in_step {
            // Back in step: what is past the last part sent, from the file once.
            let rest = read_at(file, self.uploaded, (written - self.uploaded) as usize)?;
            self.pending.reset(&rest);
        }
        Ok(())
    }

    async fn reap_one(&mut self) {
        if let Some(task) = self.in_flight.pop_front() {
            match task.await {
                Ok(Ok(part)) => self.done.push(part),
                Ok(Err(e)) => self.failed = Some(e),
                Err(e) => self.failed = Some(StoreError::other(format!("part task: {e}"))),
            }
        }
    }

    /// The content type and metadata the object will carry, once the upload was started.
    pub fn options(&self) -> Option<&PutOptions> {
        self.opts.as_ref()
    }

    /// Whether a multipart upload was started (the file outgrew one part).
    pub fn started(&self) -> bool {
        self.upload_id.is_some()
    }

    /// Whether a part upload has failed (after the client's retries).
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Uploads the tail `[uploaded, size)` and completes the upload; returns the new ETag.
    /// On failure the multipart upload is aborted.
    pub async fn finish(mut self, file: &File, size: u64) -> FsResult<String> {
        let result = self.finish_inner(file, size).await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    async fn finish_inner(&mut self, file: &File, size: u64) -> FsResult<String> {
        let id = self
            .upload_id
            .clone()
            .ok_or_else(|| FsError::new(libc::EIO, "no multipart upload to finish"))?;
        if size > self.uploaded || self.uploaded == 0 {
            let len = size - self.uploaded;
            let body = match self.pending.take_rest(len) {
                Some(body) => body,
                None => read_at(file, self.uploaded, len as usize)?,
            };
            let n = (self.uploaded / self.part_size) as i32 + 1;
            let etag = self.store.upload_part(&self.key, &id, n, body).await?;
            self.done.push((n, etag));
        }
        while !self.in_flight.is_empty() {
            self.reap_one().await;
        }
        if let Some(e) = self.failed.take() {
            return Err(e.into());
        }
        self.done.sort();
        Ok(self
            .store
            .complete_multipart(&self.key, &id, &self.done)
            .await?)
    }

    /// Abandons the upload: waits for parts in flight and aborts it on the server.
    pub async fn abort(mut self) {
        while !self.in_flight.is_empty() {
            self.reap_one().await;
        }
        if let Some(id) = self.upload_id.take() {
            if let Err(e) = self.store.abort_multipart(&self.key, &id).await {
                warn!(key = %self.key, "could not abort multipart upload {id}: {e}");
            }
        }
    }
}

/// A staged file ready to upload: its bytes, and what is known about how they differ from the
/// object version they started from.
#[derive(Clone, Copy, Debug)]
pub struct Staged<'a> {
    /// The staging file.
    pub file: &'a File,
    /// How many bytes of it make the object.
    pub size: u64,
    /// The version the staging started from, if any.
    pub base: Option<&'a BaseVersion>,
    /// Indexes of the parts written since then.
    pub dirty_parts: &'a BTreeSet<u64>,
}

impl Staged<'_> {
    /// The version part `index` (ending at byte `end`) is copied from on the server, when it
    /// is not read from the staging file: unchanged and wholly inside the base.
    fn copy_source(&self, index: u64, end: u64) -> Option<&BaseVersion> {
        self.base
            .filter(|b| !self.dirty_parts.contains(&index) && end <= b.size)
    }

    /// The lowest offset of the staging file that [`upload_staged`] reads with `plan`, or
    /// `None` when every part is copied on the server. A staging file that holds only a tail
    /// of the content may be uploaded only if this is inside that tail.
    pub fn first_byte_read(&self, plan: PartPlan) -> Option<u64> {
        if self.size <= plan.part_size {
            return (self.size > 0).then_some(0);
        }
        let count = self.size.div_ceil(plan.part_size);
        (0..count).find_map(|index| {
            let start = index * plan.part_size;
            let end = (start + plan.part_size).min(self.size);
            self.copy_source(index, end).is_none().then_some(start)
        })
    }
}

/// How to cut an upload into parts.
#[derive(Clone, Copy, Debug)]
pub struct PartPlan {
    /// Part size in bytes (at least 5 MiB on S3).
    pub part_size: u64,
    /// Parts in flight at once.
    pub max_in_flight: usize,
}

/// Uploads the whole staged file to `key`. Parts not in `dirty_parts` that lie wholly inside
/// `base` are copied server-side from it. Returns the new ETag.
pub async fn upload_staged(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    staged: Staged<'_>,
    plan: PartPlan,
    opts: &PutOptions,
) -> FsResult<String> {
    if staged.size <= plan.part_size {
        let body = read_at(staged.file, 0, staged.size as usize)?;
        return Ok(store.put(key, body, opts).await?);
    }
    let id = store.create_multipart(key, opts).await?;
    match upload_parts(store, key, &id, staged, plan).await {
        Ok(parts) => match store.complete_multipart(key, &id, &parts).await {
            Ok(etag) => Ok(etag),
            Err(e) => {
                let _ = store.abort_multipart(key, &id).await;
                Err(e.into())
            }
        },
        Err(e) => {
            if let Err(abort) = store.abort_multipart(key, &id).await {
                warn!(key, "could not abort multipart upload {id}: {abort}");
            }
            Err(e)
        }
    }
}

async fn upload_parts(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    id: &str,
    staged: Staged<'_>,
    plan: PartPlan,
) -> FsResult<Vec<(i32, String)>> {
    let Staged { file, size, .. } = staged;
    let part_size = plan.part_size;
    let count = size.div_ceil(part_size);
    let mut tasks: VecDeque<PartTask> = VecDeque::new();
    let mut parts = Vec::with_capacity(count as usize);
    let mut copied = 0u64;
    for index in 0..count {
        let start = index * part_size;
        let end = (start + part_size).min(size);
        let number = index as i32 + 1;
        let copy_from = staged.copy_source(index, end);
        let store = store.clone();
        let key = key.to_string();
        let id = id.to_string();
        let task = match copy_from {
            Some(b) => {
                copied += 1;
                let b = b.clone();
                tokio::spawn(async move {
                    let etag = store
                        .upload_part_copy(&key, &id, number, &b.key, &b.etag, start..end)
                        .await?;
                    Ok((number, etag))
                })
            }
            None => {
                let body = read_at(file, start, (end - start) as usize)?;
                tokio::spawn(async move {
                    let etag = store.upload_part(&key, &id, number, body).await?;
                    Ok((number, etag))
                })
            }
        };
        tasks.push_back(task);
        if tasks.len() >= plan.max_in_flight.max(1) {
            parts.push(join_part(tasks.pop_front().unwrap()).await?);
        }
    }
    while let Some(t) = tasks.pop_front() {
        parts.push(join_part(t).await?);
    }
    debug!(key, parts = count, copied, "uploaded staged file");
    Ok(parts)
}

/// The largest object a single `CopyObject` may copy (S3's limit); larger ones are copied
/// part by part with `UploadPartCopy`.
pub const MAX_COPY_OBJECT: u64 = 5 << 30;

/// S3's limit on the parts of one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// Copies the whole of `src` onto `key` on the server, with `opts` as the new object's
/// metadata, content type and tags: one `CopyObject` up to `single_limit` bytes (S3 allows
/// [`MAX_COPY_OBJECT`]), a multipart upload of `UploadPartCopy` parts beyond it, conditional
/// on the source's ETag. No object bytes pass through the client. Returns the new ETag.
pub async fn copy_whole(
    store: &Arc<dyn ObjectStore>,
    src: &BaseVersion,
    key: &str,
    opts: &PutOptions,
    single_limit: u64,
    plan: PartPlan,
) -> FsResult<String> {
    if src.size <= single_limit {
        // Conditional, as the parts are below: a source changed since its HEAD is not copied.
        return Ok(store
            .copy_if_match(&src.key, &src.etag, key, Some(opts))
            .await?);
    }
    let part_size = plan
        .part_size
        .max(src.size.div_ceil(MAX_PARTS))
        .min(MAX_COPY_OBJECT);
    let id = store.create_multipart(key, opts).await?;
    let mut parts = Vec::new();
    let mut tasks: VecDeque<PartTask> = VecDeque::new();
    let mut failed = None;
    for (index, start) in (0..src.size).step_by(part_size as usize).enumerate() {
        let (store, key, id, src) = (store.clone(), key.to_string(), id.clone(), src.clone());
        let end = (start + part_size).min(src.size);
        let number = index as i32 + 1;
        tasks.push_back(tokio::spawn(async move {
            let copy = store.upload_part_copy(&key, &id, number, &src.key, &src.etag, start..end);
            Ok((number, copy.await?))
        }));
        if tasks.len() >= plan.max_in_flight.max(1) {
            match join_part(tasks.pop_front().unwrap()).await {
                Ok(p) => parts.push(p),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    while let Some(t) = tasks.pop_front() {
        match join_part(t).await {
            Ok(p) => parts.push(p),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    let done = match failed {
        Some(e) => Err(e),
        None => store
            .complete_multipart(key, &id, &parts)
            .await
            .map_err(FsError::from),
    };
    if done.is_err() {
        if let Err(abort) = store.abort_multipart(key, &id).await {
            warn!(key, "could not abort multipart copy {id}: {abort}");
        }
    }
    done
}

async fn join_part(task: PartTask) -> FsResult<(i32, String)> {
    match task.await {
        Ok(r) => Ok(r?),
        Err(e) => Err(FsError::new(libc::EIO, format!("part upload task: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemStore;
    use std::io::Write;

    fn staged(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        f
    }

    #[tokio::test]
    async fn a_whole_copy_is_one_copy_object_or_copied_parts() {
        let mem = Arc::new(MemStore::new());
        let store: Arc<dyn ObjectStore> = mem.clone();
        let body: Vec<u8> = (0..100u8).collect();
        mem.insert("src", body.clone());
        let src = BaseVersion {
            key: "src".into(),
            etag: store.head("src").await.unwrap().etag,
            size: 100,
        };
        let plan = PartPlan {
            part_size: 30,
            max_in_flight: 2,
        };
        let opts = PutOptions::default();
        copy_whole(&store, &src, "one", &opts, 100, plan)
            .await
            .unwrap();
        assert_eq!(mem.body("one").unwrap(), &body[..]);
        assert_eq!(mem.count("copy"), 1);
        copy_whole(&store, &src, "parts", &opts, 99, plan)
            .await
            .unwrap();
        assert_eq!(mem.body("parts").unwrap(), &body[..]);
        assert_eq!(mem.count("upload_part_copy"), 4);
        assert_eq!((mem.count("upload_part"), mem.count("put")), (0, 0));
        let stale = BaseVersion {
            etag: "\"other\"".into(),
            ..src
        };
        assert!(copy_whole(&store, &stale, "no", &opts, 10, plan)
            .await
            .is_err());
        assert!(mem.body("no").is_none());
        assert_eq!(mem.count("abort_multipart"), 1);
        // One CopyObject is conditional too: a source changed since its HEAD is not copied.
        let err = copy_whole(&store, &stale, "no-either", &opts, 100, plan)
            .await
            .unwrap_err();
        assert_eq!(err.errno, libc::ESTALE, "{err}");
        assert!(mem.body("no-either").is_none());
    }

    #[tokio::test]
    async fn small_file_is_one_put() {
        let mem = Arc::new(MemStore::new());
        let store: Arc<dyn ObjectStore> = mem.clone();
        let f = staged(b"hello");
        let none = BTreeSet::new();
        let staged = Staged {
            file: &f,
            size: 5,
            base: None,
            dirty_parts: &none,
        };
        let plan = PartPlan {
            part_size: 8,
            max_in_flight: 2,
        };
        upload_staged(&store, "k", staged, plan, &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(mem.body("k").unwrap(), &b"hello"[..]);
        assert_eq!(mem.count("put"), 1);
        assert_eq!(mem.count("create_multipart"), 0);
    }

    #[tokio::test]
    async fn unchanged_parts_are_copied() {
        let mem = Arc::new(MemStore::new());
        let store: Arc<dyn ObjectStore> = mem.clone();
        let old: Vec<u8> = (0..40u8).collect();
        mem.insert("k", old.clone());
        let etag = store.head("k").await.unwrap().etag;
        let mut new = old.clone();
        new.extend_from_slice(b"appended");
        let f = staged(&new);
        let dirty = BTreeSet::from([4u64]);
        let base = BaseVersion {
            key: "k".into(),
            etag,
            size: 40,
        };
        let staged = Staged {
            file: &f,
            size: new.len() as u64,
            base: Some(&base),
            dirty_parts: &dirty,
        };
        let plan = PartPlan {
            part_size: 10,
            max_in_flight: 2,
        };
        upload_staged(&store, "k", staged, plan, &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(mem.body("k").unwrap(), &new[..]);
        assert_eq!(mem.count("upload_part_copy"), 4);
        assert_eq!(mem.count("upload_part"), 1);
    }

    #[test]
    fn the_first_byte_read_is_that_of_the_first_part_not_copied() {
        let f = staged(b"");
        let base = BaseVersion {
            key: "k".into(),
            etag: "\"e\"".into(),
            size: 25,
        };
        let plan = PartPlan {
            part_size: 10,
            max_in_flight: 2,
        };
        let first = |size: u64, base: Option<&BaseVersion>, dirty: &[u64]| {
            let dirty: BTreeSet<u64> = dirty.iter().copied().collect();
            let staged = Staged {
                file: &f,
                size,
                base,
                dirty_parts: &dirty,
            };
            staged.first_byte_read(plan)
        };
        assert_eq!(first(30, Some(&base), &[2]), Some(20), "an append past 25");
        assert_eq!(first(30, Some(&base), &[1, 2]), Some(10));
        assert_eq!(first(30, None, &[]), Some(0), "no base: all sent");
        assert_eq!(first(20, Some(&base), &[]), None, "all copied");
        assert_eq!(first(8, Some(&base), &[]), Some(0), "one PutObject");
        assert_eq!(first(0, Some(&base), &[]), None, "nothing at all");
    }

    #[tokio::test]
    async fn streaming_upload_round_trips() {
        let mem = Arc::new(MemStore::new());
        let store: Arc<dyn ObjectStore> = mem.clone();
        let data: Vec<u8> = (0..95u32).map(|i| i as u8).collect();
        let f = staged(&data);
        let mut up = StreamingUpload::new(store, "k", 10, 2);
        for written in [5u64, 25, 60, 95] {
            up.advance(&f, written, &PutOptions::default())
                .await
                .unwrap();
        }
        assert!(up.started());
        up.finish(&f, 95).await.unwrap();
        assert_eq!(mem.body("k").unwrap(), &data[..]);
    }
}
