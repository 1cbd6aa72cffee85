//! [`AsOfStore`]: the bucket as it was at a past moment (`--as-of TIME`), read-only.
//!
//! Design note: a decorator over the real store, so that the filesystem core is the same for
//! a point-in-time mount. Its listings are `ListObjectVersions` pages (same prefix, same
//! delimiter) filtered by [`filter::choose`]: each key at its newest version not after TIME;
//! keys whose version at TIME is a delete marker, or that did not exist yet, left out. The
//! version chosen for each key is remembered (key → version id, or absent), and HEAD and GET
//! name it (`versionId`); a key no listing has shown yet (a lookup goes straight to HEAD) is
//! settled by its own `ListObjectVersions` (prefix = key). What the bucket was at TIME cannot
//! change, so these answers never go stale: they are kept for the mount's life, one small
//! entry per key seen, like the inode table's. The block cache is keyed by ETag, which each
//! version carries, so blocks of two versions never mix.
//!
//! Directories: a delimiter listing names a common prefix if any version of any key lies under
//! it, including keys deleted before TIME or written after it. A prefix is shown only if some
//! key under it is shown at TIME. That is known without a request once such a key has been
//! seen (every key shown marks its parent prefixes); otherwise the prefix's versions are
//! listed without a delimiter until the first key shown at TIME, for at most
//! [`CHECK_PAGES`] pages, a few prefixes at a time. A prefix still undecided after that is
//! shown, and may turn out empty: a bounded cost per directory was preferred to an exact
//! answer that could mean reading every version of a large deleted tree for one `ls`.
//!
//! Writes are refused here too, though `--as-of` implies `--read-only`, so the core refuses
//! them with EROFS first.

pub mod filter;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tracing::debug;

use self::filter::{choose, Token, VersionEntry, VersionMarker};
use super::{
    BucketFact, ByteChunks, ListPage, ListedObject, ObjectMeta, ObjectStore, ObjectVersion,
    PutOptions, RestoreRequest, StoreError,
};

/// How many pages of a prefix's versions are read to find whether anything under it is shown.
pub const CHECK_PAGES: usize = 10;

/// How many prefixes of one listing page are checked at once.
const CHECKS_AT_ONCE: usize = 8;

/// The store as it was at one moment; see the module notes.
pub struct AsOfStore {
    inner: Arc<dyn ObjectStore>,
    as_of: SystemTime,
    /// Each key's version at TIME (`None`: absent then), as learned.
    versions: Mutex<HashMap<String, Option<String>>>,
    /// Whether a prefix (ending with `/`) holds a key shown at TIME.
    dirs: Mutex<HashMap<String, bool>>,
}

impl AsOfStore {
    /// `inner` as it was at `as_of`.
    pub fn new(inner: Arc<dyn ObjectStore>, as_of: SystemTime) -> Self {
        AsOfStore {
            inner,
            as_of,
            versions: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
        }
    }

    /// Records what a page settled and returns the keys shown, as listed objects.
    fn record(&self, chosen: Vec<filter::Chosen>) -> Vec<ListedObject> {
        let mut shown = Vec::new();
        let mut versions = self.versions.lock().unwrap();
        let mut dirs = self.dirs.lock().unwrap();
        for c in chosen {
            versions.insert(
                c.key.clone(),
                c.version.as_ref().map(|v| v.version_id.clone()),
            );
            let Some(v) = c.version else { continue };
            for (i, _) in v.key.match_indices('/') {
                dirs.insert(v.key[..=i].to_string(), true);
            }
            shown.push(listed(v));
        }
        shown
    }

    /// The version of `key` at TIME (`None`: absent then), from a listing or its own.
    async fn version_at(&self, key: &str) -> Result<Option<String>, StoreError> {
        if let Some(v) = self.versions.lock().unwrap().get(key) {
            return Ok(v.clone());
        }
        let entries = self
            .inner
            .list_versions(key)
            .await?
            .into_iter()
            .map(|v| entry_of(key, v))
            .collect();
        let settled = choose(entries, None, self.as_of, true);
        let version = settled
            .chosen
            .into_iter()
            .find_map(|c| c.version)
            .map(|v| v.version_id);
        debug!(key, ?version, "version at the mount's time");
        self.versions
            .lock()
            .unwrap()
            .insert(key.to_string(), version.clone());
        Ok(version)
    }

    /// The version of `key` at TIME, or not found.
    async fn shown_version(&self, key: &str) -> Result<String, StoreError> {
        self.version_at(key)
            .await?
            .ok_or_else(StoreError::not_found)
    }

    /// Whether anything under `prefix` is shown at TIME (see the module notes).
    async fn prefix_shown(&self, prefix: &str) -> Result<bool, StoreError> {
        if let Some(known) = self.dirs.lock().unwrap().get(prefix) {
            return Ok(*known);
        }
        let mut token: Option<Token> = None;
        for _ in 0..CHECK_PAGES {
            let (marker, skip) = match token.take() {
                Some(t) => (Some(t.marker), t.skip),
                None => (None, None),
            };
            let page = self.inner.list_versions_page(prefix, None, marker).await?;
            let settled = choose(
                page.entries,
                skip.as_deref(),
                self.as_of,
                page.next.is_none(),
            );
            let skip = settled.settled_last.clone();
            if !self.record(settled.chosen).is_empty() {
                return Ok(true);
            }
            match page.next {
                Some(marker) => token = Some(Token { marker, skip }),
                None => {
                    self.dirs.lock().unwrap().insert(prefix.to_string(), false);
                    return Ok(false);
                }
            }
        }
        debug!(
            prefix,
            "shown without knowing whether anything under it existed then"
        );
        Ok(true)
    }

    /// The prefixes of a page that are shown, in order.
    async fn shown_prefixes(&self, prefixes: Vec<String>) -> Result<Vec<String>, StoreError> {
        let checked: Vec<Result<Option<String>, StoreError>> = futures::stream::iter(prefixes)
            .map(|p| async move { Ok(self.prefix_shown(&p).await?.then_some(p)) })
            .buffered(CHECKS_AT_ONCE)
            .collect()
            .await;
        checked.into_iter().filter_map(Result::transpose).collect()
    }
}

/// A listed object from the version shown.
fn listed(v: VersionEntry) -> ListedObject {
    ListedObject {
        key: v.key,
        size: v.size,
        last_modified: v.last_modified,
        etag: v.etag,
        storage_class: v.storage_class,
    }
}

/// A version of `key` from `ListObjectVersions` of that key alone.
fn entry_of(key: &str, v: ObjectVersion) -> VersionEntry {
    VersionEntry {
        key: key.to_string(),
        version_id: v.version_id,
        last_modified: v.last_modified,
        size: v.size,
        etag: String::new(),
        storage_class: None,
        is_latest: v.is_latest,
        is_delete_marker: v.is_delete_marker,
    }
}

fn read_only() -> StoreError {
    StoreError::not_implemented("changes to a point-in-time (--as-of) mount")
}

#[async_trait]
impl ObjectStore for AsOfStore {
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
        _max_keys: Option<i32>,
    ) -> Result<ListPage, StoreError> {
        let mut token = match token {
            Some(t) => Some(
                Token::decode(&t)
                    .ok_or_else(|| StoreError::invalid(format!("not a listing token: {t:?}")))?,
            ),
            None => None,
        };
        // Pages whose keys are all hidden at TIME are passed over: an empty page with a token
        // would look, to a caller asking for one key, like an empty directory.
        loop {
            let (marker, skip): (Option<VersionMarker>, _) = match token.take() {
                Some(t) => (Some(t.marker), t.skip),
                None => (None, None),
            };
            let page = self
                .inner
                .list_versions_page(prefix, delimiter, marker)
                .await?;
            let settled = choose(
                page.entries,
                skip.as_deref(),
                self.as_of,
                page.next.is_none(),
            );
            let skip = settled.settled_last.clone();
            let objects = self.record(settled.chosen);
            let prefixes = self.shown_prefixes(page.prefixes).await?;
            token = page.next.map(|marker| Token { marker, skip });
            if !objects.is_empty() || !prefixes.is_empty() || token.is_none() {
                return Ok(ListPage {
                    objects,
                    prefixes,
                    next_token: token.map(|t| t.encode()),
                });
            }
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let version = self.shown_version(key).await?;
        self.inner.head_version(key, &version).await
    }

    async fn head_and_start(
        &self,
        key: &str,
        len: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let version = self.shown_version(key).await?;
        self.inner.get_version(key, &version, 0..len.max(1)).await
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        _if_match: Option<&str>,
    ) -> Result<ByteChunks, StoreError> {
        // A version never changes: the ETag the caller holds is that version's.
        if range.is_empty() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let version = self.shown_version(key).await?;
        Ok(self.inner.get_version(key, &version, range).await?.1)
    }

    async fn put(&self, _: &str, _: Bytes, _: &PutOptions) -> Result<String, StoreError> {
        Err(read_only())
    }

    async fn create_multipart(&self, _: &str, _: &PutOptions) -> Result<String, StoreError> {
        Err(read_only())
    }

    async fn upload_part(&self, _: &str, _: &str, _: i32, _: Bytes) -> Result<String, StoreError> {
        Err(read_only())
    }

    async fn upload_part_copy(
        &self,
        _: &str,
        _: &str,
        _: i32,
        _: &str,
        _: &str,
        _: Range<u64>,
    ) -> Result<String, StoreError> {
        Err(read_only())
    }

    async fn complete_multipart(
        &self,
        _: &str,
        _: &str,
        _: &[(i32, String)],
    ) -> Result<String, StoreError> {
        Err(read_only())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        // Nothing is uploaded through this store; an abort only cleans up.
        self.inner.abort_multipart(key, upload_id).await
    }

    async fn copy(&self, _: &str, _: &str, _: Option<&PutOptions>) -> Result<String, StoreError> {
        Err(read_only())
    }

    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        Err(read_only())
    }

    async fn get_tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let version = self.shown_version(key).await?;
        self.inner.get_version_tags(key, &version).await
    }

    async fn put_tags(&self, _: &str, _: &[(String, String)]) -> Result<(), StoreError> {
        Err(read_only())
    }

    async fn check_access(&self) -> Result<(), StoreError> {
        self.inner.check_access().await
    }

    async fn presign_get(&self, key: &str, version_id: Option<&str>) -> Result<String, StoreError> {
        // The URL must give what the mount shows: the version at TIME (possibly `null`).
        let shown = match version_id {
            Some(v) => v.to_string(),
            None => self.shown_version(key).await?,
        };
        self.inner.presign_get(key, Some(&shown)).await
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        self.inner.list_versions(key).await
    }

    async fn copy_version(&self, _: &str, _: &str) -> Result<String, StoreError> {
        Err(read_only())
    }

    async fn restore(&self, _: &str, _: &RestoreRequest) -> Result<(), StoreError> {
        Err(read_only())
    }

    async fn bucket_fact(&self, fact: &BucketFact) -> Result<Option<String>, StoreError> {
        self.inner.bucket_fact(fact).await
    }

    async fn bucket_fact_at(
        &self,
        key: &str,
        fact: &BucketFact,
    ) -> Result<Option<String>, StoreError> {
        self.inner.bucket_fact_at(key, fact).await
    }

    async fn retry_pending(&self) {
        self.inner.retry_pending().await
    }
}

#[cfg(test)]
mod tests;
