//! [`AsOfStore`] over a fake versioned store whose pages are tiny, so that pages end inside a
//! key's versions and between a prefix's keys.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::storage::VersionPage;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Versions sorted as S3 lists them, served `page` entries at a time.
struct Fake {
    entries: Vec<VersionEntry>,
    page: usize,
    requests: Mutex<Vec<String>>,
}

impl Fake {
    fn new(page: usize, list: &[(&str, u64, bool)]) -> Fake {
        let mut entries: Vec<VersionEntry> = list
            .iter()
            .map(|&(key, secs, marker)| VersionEntry {
                key: key.into(),
                version_id: format!("{key}@{secs}"),
                last_modified: at(secs),
                size: secs,
                etag: format!("\"{secs}\""),
                storage_class: None,
                is_latest: false,
                is_delete_marker: marker,
            })
            .collect();
        entries.sort_by(|a, b| {
            (a.key.as_str(), std::cmp::Reverse(a.last_modified))
                .cmp(&(b.key.as_str(), std::cmp::Reverse(b.last_modified)))
        });
        Fake {
            entries,
            page,
            requests: Mutex::new(Vec::new()),
        }
    }

    fn log(&self, what: String) {
        self.requests.lock().unwrap().push(what);
    }
}

fn nope<T>() -> Result<T, StoreError> {
    Err(StoreError::not_implemented("not in the fake"))
}

#[async_trait]
impl ObjectStore for Fake {
    async fn list_versions_page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<VersionMarker>,
    ) -> Result<VersionPage, StoreError> {
        self.log(format!("page {prefix}"));
        let mut page = VersionPage::default();
        let mut started = marker.is_none();
        let mut items = 0;
        for e in self.entries.iter().filter(|e| e.key.starts_with(prefix)) {
            if !started {
                let m = marker.as_ref().unwrap();
                match &m.version_id {
                    Some(v) => started = e.key == m.key && e.version_id == *v,
                    None => started = e.key > m.key && !e.key.starts_with(&m.key),
                }
                if m.version_id.is_some() || !started {
                    continue;
                }
            }
            if items == self.page {
                let last = page
                    .entries
                    .last()
                    .map(|l| (l.key.clone(), l.version_id.clone()));
                page.next = Some(match (page.prefixes.last(), last) {
                    (Some(p), Some((k, _))) if *p > k => VersionMarker {
                        key: p.clone(),
                        version_id: None,
                    },
                    (Some(p), None) => VersionMarker {
                        key: p.clone(),
                        version_id: None,
                    },
                    (_, Some((key, v))) => VersionMarker {
                        key,
                        version_id: Some(v),
                    },
                    (None, None) => unreachable!(),
                });
                return Ok(page);
            }
            let rest = &e.key[prefix.len()..];
            match delimiter.and_then(|d| rest.find(d)) {
                Some(i) => {
                    let p = format!("{prefix}{}", &rest[..=i]);
                    if page.prefixes.last() != Some(&p) {
                        page.prefixes.push(p);
                        items += 1;
                    }
                }
                None => {
                    page.entries.push(e.clone());
                    items += 1;
                }
            }
        }
        Ok(page)
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        self.log(format!("versions {key}"));
        Ok(self
            .entries
            .iter()
            .filter(|e| e.key == key)
            .map(|e| ObjectVersion {
                version_id: e.version_id.clone(),
                last_modified: e.last_modified,
                size: e.size,
                is_latest: false,
                is_delete_marker: e.is_delete_marker,
            })
            .collect())
    }

    async fn head_version(&self, key: &str, version_id: &str) -> Result<ObjectMeta, StoreError> {
        self.log(format!("head {version_id}"));
        let e = self.entries.iter().find(|e| e.version_id == version_id);
        let e = e
            .filter(|e| e.key == key)
            .ok_or_else(StoreError::not_found)?;
        Ok(ObjectMeta {
            size: e.size,
            last_modified: e.last_modified,
            etag: e.etag.clone(),
            content_type: None,
            storage_class: None,
            version_id: Some(e.version_id.clone()),
            metadata: Default::default(),
        })
    }

    async fn list(
        &self,
        _: &str,
        _: Option<&str>,
        _: Option<String>,
        _: Option<i32>,
    ) -> Result<ListPage, StoreError> {
        nope()
    }
    async fn head(&self, _: &str) -> Result<ObjectMeta, StoreError> {
        nope()
    }
    async fn head_and_start(
        &self,
        _: &str,
        _: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        nope()
    }
    async fn get_range(
        &self,
        _: &str,
        _: Range<u64>,
        _: Option<&str>,
    ) -> Result<ByteChunks, StoreError> {
        nope()
    }
    async fn put(&self, _: &str, _: Bytes, _: &PutOptions) -> Result<String, StoreError> {
        nope()
    }
    async fn create_multipart(&self, _: &str, _: &PutOptions) -> Result<String, StoreError> {
        nope()
    }
    async fn upload_part(&self, _: &str, _: &str, _: i32, _: Bytes) -> Result<String, StoreError> {
        nope()
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
        nope()
    }
    async fn complete_multipart(
        &self,
        _: &str,
        _: &str,
        _: &[(i32, String)],
    ) -> Result<String, StoreError> {
        nope()
    }
    async fn abort_multipart(&self, _: &str, _: &str) -> Result<(), StoreError> {
        nope()
    }
    async fn copy(&self, _: &str, _: &str, _: Option<&PutOptions>) -> Result<String, StoreError> {
        nope()
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        nope()
    }
    async fn get_tags(&self, _: &str) -> Result<Vec<(String, String)>, StoreError> {
        nope()
    }
    async fn put_tags(&self, _: &str, _: &[(String, String)]) -> Result<(), StoreError> {
        nope()
    }
    async fn check_access(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Every page of `prefix` through the store: (keys with sizes, prefixes, pages).
async fn list_all(store: &AsOfStore, prefix: &str) -> (Vec<(String, u64)>, Vec<String>, usize) {
    let (mut objects, mut prefixes, mut pages, mut token) = (vec![], vec![], 0, None);
    loop {
        let page = store.list(prefix, Some("/"), token, None).await.unwrap();
        pages += 1;
        objects.extend(page.objects.into_iter().map(|o| (o.key, o.size)));
        prefixes.extend(page.prefixes);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return (objects, prefixes, pages),
        }
    }
}

fn bucket(page: usize) -> Arc<Fake> {
    Arc::new(Fake::new(
        page,
        &[
            ("a", 10, false),
            ("k", 30, false), // after TIME
            ("k", 20, false), // k at TIME (the size tells the version)
            ("k", 10, false),
            ("gone", 5, false),
            ("gone", 15, true), // deleted before TIME
            ("kept", 5, false),
            ("kept", 30, true), // deleted after TIME: shown
            ("new/x", 30, false),
            ("old/deleted", 5, false),
            ("old/deleted", 6, true),
            ("old/y", 8, false),
            ("z", 1, false),
        ],
    ))
}

#[tokio::test]
async fn pages_of_any_size_give_the_same_view_at_time() {
    for page in [1, 2, 3, 100] {
        let fake = bucket(page);
        let store = AsOfStore::new(fake.clone(), at(25));
        let (objects, prefixes, _) = list_all(&store, "").await;
        let objects: Vec<(&str, u64)> = objects.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        assert_eq!(
            objects,
            [("a", 10), ("k", 20), ("kept", 5), ("z", 1)],
            "page size {page}"
        );
        assert_eq!(
            prefixes,
            ["old/"],
            "new/ has nothing at TIME (page size {page})"
        );
        let (objects, _, _) = list_all(&store, "old/").await;
        assert_eq!(objects, [("old/y".to_string(), 8)], "page size {page}");
    }
}

#[tokio::test]
async fn reads_name_the_version_at_time_learned_from_listings_or_asked() {
    let fake = bucket(100);
    let store = AsOfStore::new(fake.clone(), at(25));
    list_all(&store, "").await;
    fake.requests.lock().unwrap().clear();
    assert_eq!(
        store.head("k").await.unwrap().version_id.as_deref(),
        Some("k@20")
    );
    assert!(store.head("gone").await.unwrap_err().is_not_found());
    assert_eq!(
        *fake.requests.lock().unwrap(),
        ["head k@20"],
        "listed keys need no version listing of their own"
    );
    // Keys the listing of the root did not show: the check of old/ settled two of them; a
    // key never seen gets its own ListObjectVersions, once.
    assert_eq!(store.head("old/y").await.unwrap().size, 8);
    assert!(store.head("old/deleted").await.unwrap_err().is_not_found());
    assert!(store.head("never").await.unwrap_err().is_not_found());
    assert!(store.head("never").await.unwrap_err().is_not_found());
    let asked = fake.requests.lock().unwrap().clone();
    assert_eq!(
        asked,
        ["head k@20", "head old/y@8", "versions never"],
        "checking old/ settled old/y and old/deleted; a key never seen is asked once"
    );

    assert!(store
        .put("k", Bytes::new(), &PutOptions::default())
        .await
        .is_err());
    assert!(store.delete("k").await.is_err());
}
