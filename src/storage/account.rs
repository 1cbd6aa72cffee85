//! [`AccountStore`]: every bucket of the account as one tree (`--all-buckets`).
//!
//! Design note: a store over stores, so that the filesystem core is the same for a mount of
//! the whole account. The first component of every key is a bucket name, the rest a key in
//! that bucket: `photos/2024/a.jpg` is key `2024/a.jpg` of bucket `photos`. The top level is
//! `ListBuckets` (each bucket a common prefix `NAME/`); anything below goes to the bucket's
//! own store, opened on first use by [`Buckets::open_bucket`] (one `HeadBucket`, which also
//! tells the bucket's region) and kept for the mount's life.
//!
//! A bucket is a directory whose marker is the bucket itself: a listing of `NAME/` starts with
//! a marker object `NAME/` (so that an empty bucket is still a directory to a lookup), a HEAD
//! of `NAME/` is a `HeadBucket`, a PUT of `NAME/` (what `mkdir` writes) is a `CreateBucket`,
//! and a DELETE of `NAME/` (what `rmdir` does once the listing shows nothing else) is a
//! `DeleteBucket`. A bucket's marker carries no metadata: changing a bucket directory's
//! attributes is refused (EINVAL), and so is any file at the top level. A name that breaks
//! S3's bucket naming rules is refused with EINVAL and a log line when it is created; looked
//! up, it simply does not exist. A copy between two buckets (a rename, a server-side copy)
//! fails with [`CROSS_BUCKET`], which the application sees as EXDEV: `mv` then copies and
//! deletes by itself.
//!
//! Bucket facts are asked with a key ([`ObjectStore::bucket_fact_at`]) and answered by that
//! key's bucket; the top level has none. Versions are forwarded; `--as-of` is not offered
//! with `--all-buckets`.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use tracing::{info, warn};

use super::{
    BucketFact, ByteChunks, ErrorKind, ListPage, ListedObject, ObjectMeta, ObjectStore,
    ObjectVersion, PutOptions, RestoreRequest, StoreError,
};

/// The error code of a copy between two buckets (the application sees EXDEV).
pub const CROSS_BUCKET: &str = "CrossBucketCopy";

/// The ETag of a bucket's marker (a bucket has none of its own).
const BUCKET_ETAG: &str = "\"bucket\"";

/// One bucket as `ListBuckets` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketInfo {
    /// The bucket's name.
    pub name: String,
    /// When it was created, if the server says.
    pub created: Option<SystemTime>,
}

/// What the account offers beyond one bucket's objects.
#[async_trait]
pub trait Buckets: Send + Sync + 'static {
    /// `ListBuckets`: every bucket of the account.
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError>;

    /// `CreateBucket` in the account's region.
    async fn create_bucket(&self, name: &str) -> Result<(), StoreError>;

    /// `DeleteBucket` (of an empty bucket).
    async fn delete_bucket(&self, name: &str) -> Result<(), StoreError>;

    /// A store for bucket `name` (in its own region), after proving it exists.
    async fn open_bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, StoreError>;
}

/// Where a key lies: at the top (no bucket yet), or in a bucket.
enum Place<'a> {
    /// A name at the top level, not followed by `/`.
    Top(&'a str),
    /// Bucket name and the key inside it (empty: the bucket itself).
    Bucket(&'a str, &'a str),
}

fn place(key: &str) -> Place<'_> {
    match key.split_once('/') {
        Some((bucket, rest)) => Place::Bucket(bucket, rest),
        None => Place::Top(key),
    }
}

/// Whether `name` follows S3's bucket naming rules.
fn valid_name(name: &str) -> bool {
    crate::cli::check_bucket_name(name).is_ok()
}

/// The refusal of anything but a directory at the top level.
fn not_a_bucket(what: &str) -> StoreError {
    warn!("{what}: only directories (buckets) live at the top of an --all-buckets mount");
    StoreError::invalid(format!(
        "{what}: only buckets live at the top of an --all-buckets mount"
    ))
}

/// The refusal of a copy from one bucket to another.
fn cross_bucket(src: &str, dst: &str) -> StoreError {
    StoreError::not_implemented(format!("copy from {src} to {dst}: not within one bucket"))
        .with_code(Some(CROSS_BUCKET.to_string()))
}

/// Every bucket of an account as one store; see the module notes.
pub struct AccountStore {
    buckets: Arc<dyn Buckets>,
    /// Stores of the buckets opened so far.
    open: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    /// Creation times seen in listings, for the buckets' directory times.
    created: Mutex<HashMap<String, SystemTime>>,
    /// The time of a bucket no listing has dated (HeadBucket tells none): when this store
    /// was made, as for a directory without a marker.
    started: SystemTime,
}

impl AccountStore {
    /// The account `buckets` reaches.
    pub fn new(buckets: Arc<dyn Buckets>) -> Self {
        AccountStore {
            buckets,
            open: Mutex::new(HashMap::new()),
            created: Mutex::new(HashMap::new()),
            started: SystemTime::now(),
        }
    }

    /// The store of bucket `name`, opened on first use.
    async fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::no_such_bucket());
        }
        if let Some(store) = self.open.lock().unwrap().get(name) {
            return Ok(store.clone());
        }
        let store = self.buckets.open_bucket(name).await?;
        let mut open = self.open.lock().unwrap();
        Ok(open.entry(name.to_string()).or_insert(store).clone())
    }

    /// The store of the bucket `key` lies in and the key inside it; an object key is needed
    /// (not the top level, not a bucket itself).
    async fn object<'k>(
        &self,
        key: &'k str,
    ) -> Result<(Arc<dyn ObjectStore>, &'k str), StoreError> {
        match place(key) {
            Place::Bucket(bucket, inner) if !inner.is_empty() => {
                Ok((self.bucket(bucket).await.map_err(absent)?, inner))
            }
            _ => Err(StoreError::not_found()),
        }
    }

    /// Like [`AccountStore::object`], for a change: refused at the top and on a bucket.
    async fn writable<'k>(
        &self,
        key: &'k str,
    ) -> Result<(Arc<dyn ObjectStore>, &'k str), StoreError> {
        match place(key) {
            Place::Bucket(bucket, inner) if !inner.is_empty() => {
                Ok((self.bucket(bucket).await.map_err(absent)?, inner))
            }
            Place::Bucket(bucket, _) => Err(not_a_bucket(&format!("bucket {bucket}"))),
            Place::Top(name) => Err(not_a_bucket(name)),
        }
    }

    /// The top level: the buckets whose names start with `start`.
    async fn list_top(&self, start: &str, delimiter: Option<&str>) -> Result<ListPage, StoreError> {
        let buckets = self.buckets.list_buckets().await?;
        let mut created = self.created.lock().unwrap();
        let mut page = ListPage::default();
        for b in buckets.into_iter().filter(|b| b.name.starts_with(start)) {
            let when = b.created.unwrap_or(self.started);
            created.insert(b.name.clone(), when);
            let dir = format!("{}/", b.name);
            match delimiter {
                Some("/") => page.prefixes.push(dir),
                _ => page.objects.push(marker(dir, when)),
            }
        }
        Ok(page)
    }

    /// `name`'s marker headers, once `HeadBucket` (through opening it) proved it exists.
    async fn head_bucket(&self, name: &str) -> Result<ObjectMeta, StoreError> {
        self.bucket(name).await.map_err(absent)?;
        Ok(ObjectMeta {
            size: 0,
            last_modified: self.created_at(name),
            etag: BUCKET_ETAG.to_string(),
            content_type: Some("application/x-directory".to_string()),
            storage_class: None,
            version_id: None,
            metadata: HashMap::new(),
        })
    }

    fn created_at(&self, name: &str) -> SystemTime {
        let created = self.created.lock().unwrap();
        created.get(name).copied().unwrap_or(self.started)
    }

    /// `mkdir NAME` at the top: `CreateBucket`.
    async fn create(&self, name: &str) -> Result<String, StoreError> {
        if let Err(why) = crate::cli::check_bucket_name(name) {
            warn!(bucket = name, "not a valid bucket name: {why}");
            return Err(StoreError::invalid(format!(
                "{name:?} is not a valid bucket name: {why}"
            )));
        }
        if self.open.lock().unwrap().contains_key(name) {
            // The bucket exists: this is a change of its directory's attributes.
            return Err(not_a_bucket(&format!("attributes of bucket {name}")));
        }
        self.buckets.create_bucket(name).await?;
        info!(bucket = name, "created bucket");
        self.created
            .lock()
            .unwrap()
            .insert(name.to_string(), SystemTime::now());
        Ok(BUCKET_ETAG.to_string())
    }

    /// `rmdir NAME` at the top: `DeleteBucket`.
    async fn remove(&self, name: &str) -> Result<(), StoreError> {
        if !valid_name(name) {
            return Err(StoreError::not_found());
        }
        self.buckets.delete_bucket(name).await.map_err(absent)?;
        info!(bucket = name, "deleted bucket");
        self.open.lock().unwrap().remove(name);
        self.created.lock().unwrap().remove(name);
        Ok(())
    }
}

/// A missing bucket is, to the filesystem, a missing key.
fn absent(e: StoreError) -> StoreError {
    match e.kind() {
        ErrorKind::NoSuchBucket => StoreError::not_found(),
        _ => e,
    }
}

/// A bucket's marker object as a listing shows it.
fn marker(key: String, when: SystemTime) -> ListedObject {
    ListedObject {
        key,
        size: 0,
        last_modified: when,
        etag: BUCKET_ETAG.to_string(),
        storage_class: None,
    }
}

/// `page` of bucket `bucket`, with its keys made full keys.
fn in_bucket(bucket: &str, mut page: ListPage) -> ListPage {
    for o in &mut page.objects {
        o.key = format!("{bucket}/{}", o.key);
    }
    for p in &mut page.prefixes {
        *p = format!("{bucket}/{p}");
    }
    page
}

#[async_trait]
impl ObjectStore for AccountStore {
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<ListPage, StoreError> {
        let (bucket, inner) = match place(prefix) {
            Place::Top(start) => return self.list_top(start, delimiter).await,
            Place::Bucket(bucket, inner) => (bucket, inner),
        };
        let store = match self.bucket(bucket).await {
            Ok(store) => store,
            // Listing a bucket that is not there finds nothing under it.
            Err(e) if e.kind() == ErrorKind::NoSuchBucket => return Ok(ListPage::default()),
            Err(e) => return Err(e),
        };
        let first = token.is_none();
        let mut page = in_bucket(bucket, store.list(inner, delimiter, token, max_keys).await?);
        if inner.is_empty() && first {
            let dir = format!("{bucket}/");
            page.objects.insert(0, marker(dir, self.created_at(bucket)));
        }
        Ok(page)
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        match place(key) {
            Place::Bucket(bucket, "") => self.head_bucket(bucket).await,
            _ => {
                let (store, inner) = self.object(key).await?;
                store.head(inner).await
            }
        }
    }

    async fn head_and_start(
        &self,
        key: &str,
        len: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let (store, inner) = self.object(key).await?;
        store.head_and_start(inner, len).await
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks, StoreError> {
        let (store, inner) = self.object(key).await?;
        store.get_range(inner, range, if_match).await
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> Result<String, StoreError> {
        match place(key) {
            Place::Bucket(bucket, "") => self.create(bucket).await,
            _ => {
                let (store, inner) = self.writable(key).await?;
                store.put(inner, body, opts).await
            }
        }
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> Result<String, StoreError> {
        let (store, inner) = self.writable(key).await?;
        store.create_multipart(inner, opts).await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let (store, inner) = self.writable(key).await?;
        store.upload_part(inner, upload_id, part_number, body).await
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src_key: &str,
        src_etag: &str,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        let (store, inner) = self.writable(key).await?;
        let src = same_bucket(src_key, key)?;
        store
            .upload_part_copy(inner, upload_id, part_number, src, src_etag, range)
            .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<String, StoreError> {
        let (store, inner) = self.writable(key).await?;
        store.complete_multipart(inner, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let (store, inner) = self.writable(key).await?;
        store.abort_multipart(inner, upload_id).await
    }

    async fn copy(
        &self,
        src_key: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        let (store, inner) = self.writable(dst_key).await?;
        let src = same_bucket(src_key, dst_key)?;
        store.copy(src, inner, replace).await
    }

    async fn copy_if_match(
        &self,
        src_key: &str,
        src_etag: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        let (store, inner) = self.writable(dst_key).await?;
        let src = same_bucket(src_key, dst_key)?;
        store.copy_if_match(src, src_etag, inner, replace).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match place(key) {
            Place::Bucket(bucket, "") => self.remove(bucket).await,
            Place::Top(_) => Err(StoreError::not_found()),
            Place::Bucket(..) => {
                let (store, inner) = self.object(key).await?;
                store.delete(inner).await
            }
        }
    }

    async fn get_tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        if let Place::Bucket(bucket, "") = place(key) {
            self.bucket(bucket).await.map_err(absent)?;
            return Ok(Vec::new()); // a bucket's marker has no tags
        }
        let (store, inner) = self.object(key).await?;
        store.get_tags(inner).await
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> Result<(), StoreError> {
        let (store, inner) = self.writable(key).await?;
        store.put_tags(inner, tags).await
    }

    /// One `ListBuckets`.
    async fn check_access(&self) -> Result<(), StoreError> {
        self.buckets.list_buckets().await.map(|_| ())
    }

    async fn presign_get(&self, key: &str, version_id: Option<&str>) -> Result<String, StoreError> {
        let (store, inner) = self.object(key).await?;
        store.presign_get(inner, version_id).await
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        let (store, inner) = self.object(key).await?;
        store.list_versions(inner).await
    }

    async fn copy_version(&self, key: &str, version_id: &str) -> Result<String, StoreError> {
        let (store, inner) = self.writable(key).await?;
        store.copy_version(inner, version_id).await
    }

    async fn restore(&self, key: &str, req: &RestoreRequest) -> Result<(), StoreError> {
        let (store, inner) = self.object(key).await?;
        store.restore(inner, req).await
    }

    async fn restore_status(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self.object(key).await {
            Ok((store, inner)) => store.restore_status(inner).await,
            Err(_) => Ok(None),
        }
    }

    /// The facts of the key's bucket; the top level is no bucket and has none.
    async fn bucket_fact_at(
        &self,
        key: &str,
        fact: &BucketFact,
    ) -> Result<Option<String>, StoreError> {
        match place(key) {
            Place::Bucket(bucket, _) => {
                let store = self.bucket(bucket).await.map_err(absent)?;
                store.bucket_fact(fact).await
            }
            Place::Top(_) => Ok(None),
        }
    }

    async fn retry_pending(&self) {
        let stores: Vec<_> = self.open.lock().unwrap().values().cloned().collect();
        for store in stores {
            store.retry_pending().await;
        }
    }
}

/// The key of `src` inside its bucket, when that is `dst`'s bucket.
fn same_bucket<'k>(src: &'k str, dst: &str) -> Result<&'k str, StoreError> {
    match (place(src), place(dst)) {
        (Place::Bucket(a, inner), Place::Bucket(b, _)) if a == b && !inner.is_empty() => Ok(inner),
        _ => Err(cross_bucket(src, dst)),
    }
}

#[cfg(test)]
mod tests;
