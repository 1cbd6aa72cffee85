//! The storage layer: everything s3mount asks of an object store, as one trait.
//!
//! Design note: the filesystem core never sees an SDK type. It talks to [`ObjectStore`], whose
//! requests mirror S3's own (ListObjectsV2 with a delimiter, HeadObject, ranged GetObject,
//! PutObject, multipart upload, CopyObject, DeleteObject, object tagging). Errors come back as a
//! [`StoreError`] that already says what kind of failure it was; turning that into an errno
//! happens in exactly one place, [`crate::error`]. Two implementations exist:
//! [`s3::S3Store`] (aws-sdk-s3, used by the real mount) and [`mem::MemStore`] (in-process, for
//! fast unit tests of the core — never the only proof: integration tests use a real server).

pub mod account;
pub mod as_of;
mod error;
pub mod fault;
pub mod mem;
pub mod metered;
pub mod ops;
pub mod s3;

pub use as_of::filter::{VersionEntry, VersionMarker, VersionPage};
pub use error::{Cause, ErrorKind, StoreError};
pub use ops::{BucketFact, ObjectVersion, RestoreRequest};

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A stream of body chunks as they arrive from the server.
pub type ByteChunks = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// One object as a listing reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub last_modified: SystemTime,
    /// ETag, with its quotes, as S3 sends it.
    pub etag: String,
    /// Storage class, when the listing names one.
    pub storage_class: Option<String>,
}

/// One page of a `ListObjectsV2` answer.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// Objects directly under the prefix.
    pub objects: Vec<ListedObject>,
    /// Common prefixes (sub-"directories"), each ending with the delimiter.
    pub prefixes: Vec<String>,
    /// Token for the next page; `None` when this was the last.
    pub next_token: Option<String>,
}

/// What `HeadObject` tells about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub last_modified: SystemTime,
    /// ETag, with its quotes.
    pub etag: String,
    /// Content-Type, if set.
    pub content_type: Option<String>,
    /// Storage class; S3 omits it for STANDARD.
    pub storage_class: Option<String>,
    /// Version id, on versioned buckets.
    pub version_id: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys lower-case without the prefix.
    pub metadata: HashMap<String, String>,
}

/// Options applied to objects we write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Content-Type to store.
    pub content_type: Option<String>,
    /// User metadata to store.
    pub metadata: HashMap<String, String>,
    /// Tags to set (`x-amz-tagging`). For a PutObject or CreateMultipartUpload `None` sets
    /// none; for a CopyObject with replaced metadata `None` copies the source's tags and
    /// `Some` sets these instead.
    pub tags: Option<Vec<(String, String)>>,
}

/// A location in an object store: a bucket plus an optional key prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketLocation {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix, empty or ending with `/`.
    pub prefix: String,
}

impl fmt::Display for BucketLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Everything the filesystem asks of an object store. Keys are full keys (prefix included).
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// One page of `ListObjectsV2` under `prefix`, with `delimiter` (usually `/`).
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<ListPage, StoreError>;

    /// `HeadObject`.
    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError>;

    /// `GetObject` of the first `len` bytes (`len` > 0) with the object's headers: what a
    /// `HeadObject` tells, plus the start of the body, in one request. Returns once the
    /// headers are in; the body streams on (up to `len` bytes; fewer for a shorter object,
    /// none for an empty one). Dropping it before its end closes the connection.
    async fn head_and_start(
        &self,
        key: &str,
        len: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError>;

    /// Ranged `GetObject`; with `if_match`, fails with [`ErrorKind::PreconditionFailed`] when
    /// the object's ETag is no longer that one, so bytes of two versions never mix.
    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks, StoreError>;

    /// `PutObject` of a whole body; returns the new ETag.
    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> Result<String, StoreError>;

    /// `CreateMultipartUpload`; returns the upload id.
    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> Result<String, StoreError>;

    /// `UploadPart` (part numbers start at 1); returns the part's ETag.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
    ) -> Result<String, StoreError>;

    /// `UploadPartCopy` of `range` of `src_key` (as of ETag `src_etag`); returns the part's ETag.
    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src_key: &str,
        src_etag: &str,
        range: Range<u64>,
    ) -> Result<String, StoreError>;

    /// `CompleteMultipartUpload` with `(part number, ETag)` in order; returns the new ETag.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<String, StoreError>;

    /// `AbortMultipartUpload`.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError>;

    /// `CopyObject`. With `replace = Some(opts)` the metadata and content type are replaced
    /// (`MetadataDirective: REPLACE`), and so are the tags when `opts.tags` is set; with
    /// `None` they are copied.
    async fn copy(
        &self,
        src_key: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError>;

    /// [`copy`](Self::copy) of `src_key` only while its ETag is `src_etag`
    /// (`x-amz-copy-source-if-match`): a source changed since it was looked at fails with
    /// [`ErrorKind::PreconditionFailed`] instead of copying another version. Stores that
    /// cannot check it answer [`ErrorKind::NotImplemented`], and callers fall back.
    async fn copy_if_match(
        &self,
        _src_key: &str,
        _src_etag: &str,
        _dst_key: &str,
        _replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        Err(StoreError::not_implemented(
            "CopyObject with a source condition",
        ))
    }

    /// `DeleteObject`.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// `GetObjectTagging`, in the server's order.
    async fn get_tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// `PutObjectTagging`: replaces the whole tag set.
    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> Result<(), StoreError>;

    /// Checks that the bucket exists and that we may list it (used before mounting). One
    /// attempt, no retries: the caller decides what is worth trying again, within its own
    /// limit, so a refused connection or a missing bucket is reported at once.
    async fn check_access(&self) -> Result<(), StoreError>;

    /// A presigned GET URL of `key` (at `version_id`), signed locally for the mount's
    /// presign lifetime. The default: not implemented (stores that cannot sign URLs).
    async fn presign_get(&self, key: &str, version_id: Option<&str>) -> Result<String, StoreError> {
        let _ = (key, version_id);
        Err(StoreError::not_implemented("presigned URLs"))
    }

    /// `ListObjectVersions` of exactly `key`: its versions and delete markers, newest first.
    /// The default: not implemented (a store without versions).
    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        let _ = key;
        Err(StoreError::not_implemented("object versions"))
    }

    /// One page of `ListObjectVersions` under `prefix`, with `delimiter`, starting at
    /// `marker` (the previous page's end). The default: not implemented.
    async fn list_versions_page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<VersionMarker>,
    ) -> Result<VersionPage, StoreError> {
        let _ = (prefix, delimiter, marker);
        Err(StoreError::not_implemented("object versions"))
    }

    /// `HeadObject` of `key` at `version_id`. The default: not implemented.
    async fn head_version(&self, key: &str, version_id: &str) -> Result<ObjectMeta, StoreError> {
        let _ = (key, version_id);
        Err(StoreError::not_implemented("object versions"))
    }

    /// Ranged `GetObject` of `key` at `version_id` (`range` not empty), with that version's
    /// headers; like [`ObjectStore::head_and_start`], a range past the end gives the bytes
    /// there are (none for an empty object). The default: not implemented.
    async fn get_version(
        &self,
        key: &str,
        version_id: &str,
        range: Range<u64>,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let _ = (key, version_id, range);
        Err(StoreError::not_implemented("object versions"))
    }

    /// `GetObjectTagging` of `key` at `version_id`. The default: not implemented.
    async fn get_version_tags(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let _ = (key, version_id);
        Err(StoreError::not_implemented("object versions"))
    }

    /// `CopyObject` of `key` at `version_id` onto `key`, with that version's metadata and
    /// tags; returns the new ETag. The default: not implemented.
    async fn copy_version(&self, key: &str, version_id: &str) -> Result<String, StoreError> {
        let _ = (key, version_id);
        Err(StoreError::not_implemented("object versions"))
    }

    /// `RestoreObject` of an archived `key`. The default: not implemented.
    async fn restore(&self, key: &str, req: &RestoreRequest) -> Result<(), StoreError> {
        let _ = (key, req);
        Err(StoreError::not_implemented("restoring archived objects"))
    }

    /// The `x-amz-restore` header of `key` (`HeadObject`), if any. The default: none (a
    /// store without archive classes).
    async fn restore_status(&self, key: &str) -> Result<Option<String>, StoreError> {
        let _ = key;
        Ok(None)
    }

    /// One fact about the bucket (see [`BucketFact`]); `None` when it has no such
    /// configuration. The default: none of them (a bucket with no configuration).
    async fn bucket_fact(&self, fact: &BucketFact) -> Result<Option<String>, StoreError> {
        let _ = fact;
        Ok(None)
    }

    /// [`ObjectStore::bucket_fact`] of the bucket `key` lies in. The default: the store's one
    /// bucket; a store over several (`--all-buckets`) asks the key's, and decorators pass the
    /// key on.
    async fn bucket_fact_at(
        &self,
        key: &str,
        fact: &BucketFact,
    ) -> Result<Option<String>, StoreError> {
        let _ = key;
        self.bucket_fact(fact).await
    }

    /// Retries, once and now, clean-up requests that failed earlier (aborts of multipart
    /// uploads while the server was unreachable). Called before unmounting.
    async fn retry_pending(&self) {}
}
