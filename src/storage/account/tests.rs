//! Unit tests of [`AccountStore`] over in-memory buckets.

use std::collections::BTreeMap;

use super::*;
use crate::storage::mem::MemStore;

/// An account whose buckets are [`MemStore`]s.
#[derive(Default)]
struct MemBuckets {
    buckets: Mutex<BTreeMap<String, Arc<MemStore>>>,
    opened: Mutex<Vec<String>>,
}

impl MemBuckets {
    fn with(names: &[&str]) -> Arc<Self> {
        let account = MemBuckets::default();
        for name in names {
            account
                .buckets
                .lock()
                .unwrap()
                .insert(name.to_string(), Arc::new(MemStore::new()));
        }
        Arc::new(account)
    }

    fn store(&self, name: &str) -> Arc<MemStore> {
        self.buckets.lock().unwrap()[name].clone()
    }

    fn names(&self) -> Vec<String> {
        self.buckets.lock().unwrap().keys().cloned().collect()
    }
}

#[async_trait]
impl Buckets for MemBuckets {
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        Ok(self
            .names()
            .into_iter()
            .map(|name| BucketInfo {
                name,
                created: None,
            })
            .collect())
    }

    async fn create_bucket(&self, name: &str) -> Result<(), StoreError> {
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.contains_key(name) {
            return Err(StoreError::other("BucketAlreadyOwnedByYou"));
        }
        buckets.insert(name.to_string(), Arc::new(MemStore::new()));
        Ok(())
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let mut buckets = self.buckets.lock().unwrap();
        let Some(store) = buckets.get(name) else {
            return Err(StoreError::no_such_bucket());
        };
        if !store.keys().is_empty() {
            return Err(
                StoreError::other("BucketNotEmpty").with_code(Some("BucketNotEmpty".into()))
            );
        }
        buckets.remove(name);
        Ok(())
    }

    async fn open_bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        self.opened.lock().unwrap().push(name.to_string());
        match self.buckets.lock().unwrap().get(name) {
            Some(store) => Ok(store.clone() as Arc<dyn ObjectStore>),
            None => Err(StoreError::no_such_bucket()),
        }
    }
}

#[tokio::test]
async fn the_top_level_lists_the_buckets_as_directories() {
    let account = MemBuckets::with(&["alpha", "beta"]);
    let store = AccountStore::new(account.clone());
    let page = store.list("", Some("/"), None, None).await.unwrap();
    assert_eq!(page.prefixes, vec!["alpha/", "beta/"]);
    assert!(page.objects.is_empty());
    let page = store.list("be", Some("/"), None, None).await.unwrap();
    assert_eq!(page.prefixes, vec!["beta/"]);
    store.check_access().await.unwrap();
}

#[tokio::test]
async fn keys_below_a_bucket_go_to_its_store() {
    let account = MemBuckets::with(&["alpha", "beta"]);
    account.store("alpha").insert("dir/a.txt", "hello");
    account.store("beta").insert("b.txt", "other");
    let store = AccountStore::new(account.clone());

    let page = store.list("alpha/", Some("/"), None, None).await.unwrap();
    let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["alpha/"], "the bucket's own marker first");
    assert_eq!(page.prefixes, vec!["alpha/dir/"]);
    let page = store
        .list("alpha/dir/", Some("/"), None, None)
        .await
        .unwrap();
    let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["alpha/dir/a.txt"],
        "no marker below the bucket's top"
    );

    assert_eq!(store.head("alpha/dir/a.txt").await.unwrap().size, 5);
    assert!(store
        .head("beta/dir/a.txt")
        .await
        .unwrap_err()
        .is_not_found());
    store
        .put(
            "beta/new",
            Bytes::from_static(b"xyz"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(account.store("beta").body("new").unwrap(), "xyz");
    store.copy("beta/new", "beta/copy", None).await.unwrap();
    assert_eq!(account.store("beta").body("copy").unwrap(), "xyz");
    store.delete("beta/new").await.unwrap();
    assert!(account.store("beta").body("new").is_none());
    // One HeadBucket per bucket, then the store is kept.
    assert_eq!(*account.opened.lock().unwrap(), vec!["alpha", "beta"]);
}

#[tokio::test]
async fn a_bucket_is_a_directory_whose_marker_is_the_bucket() {
    let account = MemBuckets::with(&["alpha"]);
    let store = AccountStore::new(account.clone());
    let meta = store.head("alpha/").await.unwrap();
    assert_eq!(
        meta.content_type.as_deref(),
        Some("application/x-directory")
    );
    assert!(store.head("gamma/").await.unwrap_err().is_not_found());
    assert!(store.head("alpha").await.unwrap_err().is_not_found());
    // A bucket that is not there lists as nothing: a lookup then says ENOENT.
    let page = store
        .list("gamma/", Some("/"), None, Some(1))
        .await
        .unwrap();
    assert!(page.objects.is_empty() && page.prefixes.is_empty());
    let page = store
        .list("Not_Valid/", Some("/"), None, Some(1))
        .await
        .unwrap();
    assert!(page.objects.is_empty() && page.prefixes.is_empty());
}

#[tokio::test]
async fn putting_and_deleting_a_bucket_marker_creates_and_deletes_the_bucket() {
    let account = MemBuckets::with(&[]);
    let store = AccountStore::new(account.clone());
    store
        .put("gamma/", Bytes::new(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(account.names(), vec!["gamma"]);
    store.head("gamma/").await.unwrap();
    // A second PUT of the marker is a change of the bucket's attributes: refused.
    let err = store
        .put("gamma/", Bytes::new(), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(crate::error::errno_for(&err), libc::EINVAL);

    account.store("gamma").insert("k", "v");
    let err = store.delete("gamma/").await.unwrap_err();
    assert_eq!(crate::error::errno_for(&err), libc::ENOTEMPTY);
    account.store("gamma").delete("k").await.unwrap();
    store.delete("gamma/").await.unwrap();
    assert!(account.names().is_empty());
    assert!(store.delete("gamma/").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn invalid_names_and_files_at_the_top_are_einval() {
    let account = MemBuckets::with(&[]);
    let store = AccountStore::new(account.clone());
    for name in ["Upper/", "ab/", "has_underscore/", "-dash/", "192.168.1.1/"] {
        let err = store
            .put(name, Bytes::new(), &PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(crate::error::errno_for(&err), libc::EINVAL, "{name}");
    }
    let err = store
        .put("file.txt", Bytes::from_static(b"x"), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(crate::error::errno_for(&err), libc::EINVAL);
    let err = store
        .create_multipart("file.txt", &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(crate::error::errno_for(&err), libc::EINVAL);
    assert!(account.names().is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_copy_between_buckets_is_exdev() {
    let account = MemBuckets::with(&["alpha", "beta"]);
    account.store("alpha").insert("a", "hello");
    let store = AccountStore::new(account.clone());
    let err = store.copy("alpha/a", "beta/a", None).await.unwrap_err();
    assert_eq!(crate::error::errno_for(&err), libc::EXDEV);
    assert!(account.store("beta").body("a").is_none());
}
