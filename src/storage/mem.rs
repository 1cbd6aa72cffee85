//! An in-process [`ObjectStore`] for fast unit tests of the filesystem core.
//!
//! It follows S3's listing rules (lexicographic order, delimiter grouping, pagination by
//! `max_keys`), ETags change on every write, and `If-Match` is honoured. It also counts requests
//! by kind so tests can assert that, say, a listing issued no `HeadObject`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use super::{ByteChunks, ListPage, ListedObject, ObjectMeta, ObjectStore, PutOptions, StoreError};

#[derive(Clone, Debug)]
struct MemObject {
    body: Bytes,
    etag: String,
    modified: SystemTime,
    opts: PutOptions,
    tags: Vec<(String, String)>,
}

/// A multipart upload in progress: key, options, parts by number.
type PendingUpload = (String, PutOptions, BTreeMap<i32, Bytes>);

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemStore {
    objects: Mutex<BTreeMap<String, MemObject>>,
    uploads: Mutex<HashMap<String, PendingUpload>>,
    counter: AtomicU64,
    requests: Mutex<HashMap<&'static str, u64>>,
    failing: Mutex<std::collections::HashSet<&'static str>>,
    /// GET bodies still to break off (see [`break_next_bodies`](Self::break_next_bodies)).
    bodies_to_break: AtomicU64,
    /// Requests answered as not implemented (see [`refuse`](Self::refuse)).
    refusing: Mutex<std::collections::HashSet<&'static str>>,
    /// Body bytes served by GETs.
    bytes_out: AtomicU64,
    /// Body bytes received by PUTs and part uploads.
    bytes_in: AtomicU64,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `body` at `key` (test seeding; not counted as a request).
    pub fn insert(&self, key: &str, body: impl Into<Bytes>) {
        self.insert_with(key, body, PutOptions::default(), vec![]);
    }

    /// Stores an object with options and tags.
    pub fn insert_with(
        &self,
        key: &str,
        body: impl Into<Bytes>,
        opts: PutOptions,
        tags: Vec<(String, String)>,
    ) {
        let etag = self.next_etag();
        self.objects.lock().unwrap().insert(
            key.to_string(),
            MemObject {
                body: body.into(),
                etag,
                modified: SystemTime::now(),
                opts,
                tags,
            },
        );
    }

    /// The body at `key`, if any.
    pub fn body(&self, key: &str) -> Option<Bytes> {
        self.objects
            .lock()
            .unwrap()
            .get(key)
            .map(|o| o.body.clone())
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    /// How many requests of `kind` (e.g. "head", "list", "get") were made.
    pub fn count(&self, kind: &str) -> u64 {
        self.requests
            .lock()
            .unwrap()
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    /// Makes every request of `kind` fail (`true`) or succeed again (`false`).
    pub fn fail(&self, kind: &'static str, on: bool) {
        let mut f = self.failing.lock().unwrap();
        if on {
            f.insert(kind);
        } else {
            f.remove(kind);
        }
    }

    /// Makes every request of `kind` answer "not implemented" (`true`), as a server without
    /// that request does, or succeed again (`false`).
    pub fn refuse(&self, kind: &'static str, on: bool) {
        let mut f = self.refusing.lock().unwrap();
        if on {
            f.insert(kind);
        } else {
            f.remove(kind);
        }
    }

    /// Body bytes the store has served to GETs so far.
    pub fn bytes_served(&self) -> u64 {
        self.bytes_out.load(Ordering::SeqCst)
    }

    /// Body bytes the store has received in PUTs and part uploads so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_in.load(Ordering::SeqCst)
    }

    /// Makes the next `n` GET bodies break off after their first chunk, as a connection
    /// reset mid-body would.
    pub fn break_next_bodies(&self, n: u64) {
        self.bodies_to_break.store(n, Ordering::SeqCst);
    }

    /// Multipart uploads begun and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        self.uploads.lock().unwrap().len()
    }

    fn note(&self, kind: &'static str) -> Result<(), StoreError> {
        *self.requests.lock().unwrap().entry(kind).or_default() += 1;
        if self.failing.lock().unwrap().contains(kind) {
            return Err(StoreError::other(format!("injected {kind} failure")));
        }
        if self.refusing.lock().unwrap().contains(kind) {
            return Err(StoreError::not_implemented(format!("{kind} refused")));
        }
        Ok(())
    }

    /// `body` in small chunks, as a network body would arrive, or broken off after its first
    /// chunk (see [`break_next_bodies`](Self::break_next_bodies)).
    fn chunked(&self, body: Bytes) -> ByteChunks {
        self.bytes_out
            .fetch_add(body.len() as u64, Ordering::SeqCst);
        let mut chunks: Vec<Result<Bytes, StoreError>> = body
            .chunks(16 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let broken = self
            .bodies_to_break
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if broken {
            chunks.truncate(1);
            chunks.push(Err(StoreError::other("injected body failure")));
        }
        Box::pin(futures::stream::iter(chunks))
    }

    fn next_etag(&self) -> String {
        format!("\"etag-{}\"", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    fn store(
        &self,
        key: &str,
        body: Bytes,
        opts: PutOptions,
        tags: Vec<(String, String)>,
    ) -> String {
        let etag = self.next_etag();
        self.objects.lock().unwrap().insert(
            key.to_string(),
            MemObject {
                body,
                etag: etag.clone(),
                modified: SystemTime::now(),
                opts,
                tags,
            },
        );
        etag
    }
}

#[async_trait]
impl ObjectStore for MemStore {
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<ListPage, StoreError> {
        self.note("list")?;
        let max = max_keys.unwrap_or(1000).max(1) as usize;
        let objects = self.objects.lock().unwrap();
        let mut page = ListPage::default();
        let mut count = 0;
        let mut last_prefix: Option<String> = None;
        let start = token.unwrap_or_default();
        for (key, obj) in objects.range(prefix.to_string()..) {
            if !key.starts_with(prefix) {
                break;
            }
            if key.as_str() <= start.as_str() && !start.is_empty() {
                continue;
            }
            let rest = &key[prefix.len()..];
            let grouped = delimiter.and_then(|d| {
                rest.find(d)
                    .map(|i| format!("{prefix}{}", &rest[..i + d.len()]))
            });
            if let Some(p) = grouped {
                if last_prefix.as_deref() == Some(p.as_str()) {
                    continue;
                }
                if p.as_str() <= start.as_str() {
                    continue;
                }
                if count == max {
                    page.next_token = Some(last_key(&page));
                    return Ok(page);
                }
                last_prefix = Some(p.clone());
                page.prefixes.push(p);
            } else {
                if count == max {
                    page.next_token = Some(last_key(&page));
                    return Ok(page);
                }
                page.objects.push(ListedObject {
                    key: key.clone(),
                    size: obj.body.len() as u64,
                    last_modified: obj.modified,
                    etag: obj.etag.clone(),
                    storage_class: Some("STANDARD".into()),
                });
            }
            count += 1;
        }
        Ok(page)
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.note("head")?;
        let objects = self.objects.lock().unwrap();
        Ok(meta_of(objects.get(key).ok_or_else(StoreError::not_found)?))
    }

    async fn head_and_start(
        &self,
        key: &str,
        len: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        self.note("get")?;
        let objects = self.objects.lock().unwrap();
        let o = objects.get(key).ok_or_else(StoreError::not_found)?;
        let end = (len as usize).min(o.body.len());
        Ok((meta_of(o), self.chunked(o.body.slice(..end))))
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks, StoreError> {
        self.note("get")?;
        let objects = self.objects.lock().unwrap();
        let o = objects.get(key).ok_or_else(StoreError::not_found)?;
        if let Some(etag) = if_match {
            if etag != o.etag {
                return Err(StoreError::precondition_failed());
            }
        }
        if range.is_empty() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        // As S3: a range that starts at or past the end cannot be satisfied (416).
        if range.start >= o.body.len() as u64 {
            return Err(StoreError::invalid("InvalidRange"));
        }
        let end = range.end.min(o.body.len() as u64) as usize;
        Ok(self.chunked(o.body.slice(range.start as usize..end)))
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> Result<String, StoreError> {
        self.note("put")?;
        self.bytes_in.fetch_add(body.len() as u64, Ordering::SeqCst);
        let tags = opts.tags.clone().unwrap_or_default();
        Ok(self.store(key, body, opts.clone(), tags))
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> Result<String, StoreError> {
        self.note("create_multipart")?;
        let id = format!("upload-{}", self.counter.fetch_add(1, Ordering::Relaxed));
        self.uploads
            .lock()
            .unwrap()
            .insert(id.clone(), (key.to_string(), opts.clone(), BTreeMap::new()));
        Ok(id)
    }

    async fn upload_part(
        &self,
        _key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        self.note("upload_part")?;
        self.bytes_in.fetch_add(body.len() as u64, Ordering::SeqCst);
        let mut uploads = self.uploads.lock().unwrap();
        let up = uploads
            .get_mut(upload_id)
            .ok_or_else(StoreError::not_found)?;
        up.2.insert(part_number, body);
        Ok(format!("\"part-{part_number}\""))
    }

    async fn upload_part_copy(
        &self,
        _key: &str,
        upload_id: &str,
        part_number: i32,
        src_key: &str,
        src_etag: &str,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        self.note("upload_part_copy")?;
        let src = {
            let objects = self.objects.lock().unwrap();
            let o = objects.get(src_key).ok_or_else(StoreError::not_found)?;
            if o.etag != src_etag {
                return Err(StoreError::precondition_failed());
            }
            o.body.slice(range.start as usize..range.end as usize)
        };
        let mut uploads = self.uploads.lock().unwrap();
        let up = uploads
            .get_mut(upload_id)
            .ok_or_else(StoreError::not_found)?;
        up.2.insert(part_number, src);
        Ok(format!("\"part-{part_number}\""))
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<String, StoreError> {
        self.note("complete_multipart")?;
        let (_, opts, stored) = self
            .uploads
            .lock()
            .unwrap()
            .remove(upload_id)
            .ok_or_else(StoreError::not_found)?;
        let mut body = BytesMut::new();
        for (n, _) in parts {
            body.extend_from_slice(
                stored
                    .get(n)
                    .ok_or_else(|| StoreError::invalid("missing part"))?,
            );
        }
        let tags = opts.tags.clone().unwrap_or_default();
        Ok(self.store(key, body.freeze(), opts, tags))
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.note("abort_multipart")?;
        self.uploads.lock().unwrap().remove(upload_id);
        Ok(())
    }

    async fn copy(
        &self,
        src_key: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        self.note("copy")?;
        let src = self
            .objects
            .lock()
            .unwrap()
            .get(src_key)
            .cloned()
            .ok_or_else(StoreError::not_found)?;
        let tags = replace.and_then(|o| o.tags.clone()).unwrap_or(src.tags);
        let opts = replace.cloned().unwrap_or(src.opts);
        Ok(self.store(dst_key, src.body, opts, tags))
    }

    async fn copy_if_match(
        &self,
        src_key: &str,
        src_etag: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        let current = self
            .objects
            .lock()
            .unwrap()
            .get(src_key)
            .map(|o| o.etag.clone());
        match current {
            Some(etag) if etag != src_etag => {
                self.note("copy")?;
                Err(StoreError::precondition_failed())
            }
            _ => self.copy(src_key, dst_key, replace).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.note("delete")?;
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    async fn get_tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.note("get_tags")?;
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .get(key)
            .ok_or_else(StoreError::not_found)?
            .tags
            .clone())
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> Result<(), StoreError> {
        self.note("put_tags")?;
        let mut objects = self.objects.lock().unwrap();
        objects.get_mut(key).ok_or_else(StoreError::not_found)?.tags = tags.to_vec();
        Ok(())
    }

    async fn check_access(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn last_key(page: &ListPage) -> String {
    let o = page.objects.last().map(|o| o.key.as_str()).unwrap_or("");
    let p = page.prefixes.last().map(|p| p.as_str()).unwrap_or("");
    o.max(p).to_string()
}

/// What a `HeadObject` of `o` answers.
fn meta_of(o: &MemObject) -> ObjectMeta {
    ObjectMeta {
        size: o.body.len() as u64,
        last_modified: o.modified,
        etag: o.etag.clone(),
        content_type: o.opts.content_type.clone(),
        storage_class: None,
        version_id: None,
        metadata: o.opts.metadata.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn list_groups_and_paginates() {
        let s = MemStore::new();
        for k in ["a", "a/x", "a/y", "b", "c/d/e", "c/f"] {
            s.insert(k, "x");
        }
        let p = s.list("", Some("/"), None, Some(2)).await.unwrap();
        assert_eq!(
            p.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(p.prefixes, ["a/"]);
        let p2 = s.list("", Some("/"), p.next_token, Some(2)).await.unwrap();
        assert_eq!(
            p2.objects
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(p2.prefixes, ["c/"]);
        assert!(p2.next_token.is_none());
    }
}
