//! Store conformance: one set of behaviour checks that both `MemStore` (the in-process store
//! the core's unit tests run on) and [`S3Store`] (against moto) must pass, so that what the
//! unit tests prove over `MemStore` holds over S3 too.
//!
//! Each check is an `async fn(&dyn ObjectStore)` working under its own keys; the
//! `conformance!` macro turns every check into two tests, `mem::NAME` and `s3::NAME` (the
//! latter on a private moto server). Errors are compared by the errno the core would answer
//! with (`FsError::from(err).errno`), which is what the application sees.

mod common;

use std::collections::HashMap;
use std::sync::Once;

use bytes::Bytes;
use futures::StreamExt;
use s3mount::error::FsError;
use s3mount::storage::s3::{S3Settings, S3Store};
use s3mount::storage::{BucketLocation, ByteChunks, ObjectStore, PutOptions, StoreError};

/// S3's smallest part (every part but the last).
const PART: usize = 5 << 20;

static HERMETIC_ENV: Once = Once::new();

/// S3Store resolves credentials through the SDK's default chain: give it the static test
/// credentials and nothing else to find (no files, no instance metadata service). Done once,
/// before any test of this binary reads the environment.
fn hermetic_env() {
    HERMETIC_ENV.call_once(|| {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                std::env::remove_var(&k);
            }
        }
        for (k, v) in [
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ACCESS_KEY_ID", common::ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", common::SECRET_ACCESS_KEY),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ] {
            std::env::set_var(k, v);
        }
    });
}

/// A moto server with a fresh bucket, and an `S3Store` on it built as the mount builds one.
async fn s3_store() -> (common::S3Server, S3Store) {
    hermetic_env();
    let server = common::S3Server::start();
    let bucket = server.new_bucket().await;
    let settings = S3Settings {
        region: Some(common::REGION.to_string()),
        endpoint_url: Some(server.endpoint().to_string()),
        force_path_style: true,
        max_attempts: 1,
        ..S3Settings::new()
    };
    let location = BucketLocation {
        bucket: bucket.name().to_string(),
        prefix: String::new(),
    };
    let store = S3Store::connect(&location, settings)
        .await
        .expect("connect to moto");
    store.check_access().await.expect("bucket reachable");
    (server, store)
}

/// Which store a check runs on. moto (5.2.5) answers a few requests differently from S3; each
/// such difference is named here and asserted exactly, so a check never accepts "anything".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Mem,
    Moto,
}

impl Backend {
    /// The errno of a request on an upload that is gone (aborted, completed, never begun). S3
    /// answers `NoSuchUpload` (404, ENOENT); moto answers a 500 without an error code (EIO).
    fn no_such_upload(self) -> i32 {
        match self {
            Backend::Mem => libc::ENOENT,
            Backend::Moto => libc::EIO,
        }
    }

    /// Whether `UploadPartCopy` and `CopyObject` honour `x-amz-copy-source-if-match` (S3
    /// does, with a 412; moto ignores the header; S3Store sends it).
    fn checks_copy_source_if_match(self) -> bool {
        self == Backend::Mem
    }
}

/// Every check, run once per store.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod mem {
            $(
                #[tokio::test]
                async fn $check() {
                    let store = s3mount::storage::mem::MemStore::new();
                    super::$check(&store, super::Backend::Mem).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $check() {
                    let (_server, store) = super::s3_store().await;
                    super::$check(&store, super::Backend::Moto).await;
                }
            )*
        }
    };
}

conformance!(
    list_groups_by_delimiter_and_paginates,
    list_reports_size_and_etag_of_each_object,
    head_tells_size_etag_type_and_metadata,
    head_and_start_returns_headers_and_the_first_bytes,
    ranged_get_returns_exactly_the_range,
    if_match_fails_once_the_object_changed,
    put_replaces_the_object_and_its_etag,
    multipart_upload_assembles_parts_and_copied_ranges,
    aborted_multipart_upload_leaves_no_object,
    copy_keeps_or_replaces_metadata_and_keeps_tags,
    a_conditional_copy_copies_only_the_version_named,
    delete_removes_the_key_and_is_idempotent,
    tags_are_replaced_as_a_set_and_reset_by_a_put,
    missing_keys_are_not_found_everywhere,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The errno the application would see for a failed request.
#[track_caller]
fn errno_of<T>(r: Result<T, StoreError>) -> i32 {
    match r {
        Ok(_) => panic!("expected an error, the request succeeded"),
        Err(e) => FsError::from(e).errno,
    }
}

async fn read_all(mut chunks: ByteChunks) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    while let Some(c) = chunks.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

async fn get(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    let size = store.head(key).await.unwrap().size;
    let chunks = store.get_range(key, 0..size, None).await.unwrap();
    read_all(chunks).await.unwrap()
}

async fn put(store: &dyn ObjectStore, key: &str, body: impl Into<Bytes>) -> String {
    store
        .put(key, body.into(), &PutOptions::default())
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"))
}

fn opts(content_type: &str, metadata: &[(&str, &str)]) -> PutOptions {
    PutOptions {
        content_type: Some(content_type.to_string()),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tags: None,
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn sorted_tags(store: &dyn ObjectStore, key: &str) -> Vec<(String, String)> {
    let mut t = store.get_tags(key).await.unwrap();
    t.sort();
    t
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

async fn list_groups_by_delimiter_and_paginates(store: &dyn ObjectStore, _: Backend) {
    for k in ["a", "a/x", "a/y", "b", "c/d/e", "c/f"] {
        put(store, &format!("l/{k}"), "x").await;
    }
    put(store, "other", "x").await;
    let keys = |p: &s3mount::storage::ListPage| -> Vec<String> {
        p.objects.iter().map(|o| o.key.clone()).collect()
    };
    // Objects and common prefixes together count against max-keys, in key order.
    let p1 = store.list("l/", Some("/"), None, Some(2)).await.unwrap();
    assert_eq!(keys(&p1), ["l/a"]);
    assert_eq!(p1.prefixes, ["l/a/"]);
    assert!(p1.next_token.is_some(), "first page must be truncated");
    let p2 = store
        .list("l/", Some("/"), p1.next_token, Some(2))
        .await
        .unwrap();
    assert_eq!(keys(&p2), ["l/b"]);
    assert_eq!(p2.prefixes, ["l/c/"]);
    assert!(p2.next_token.is_none(), "second page is the last");
    // One level down.
    let sub = store.list("l/c/", Some("/"), None, None).await.unwrap();
    assert_eq!(keys(&sub), ["l/c/f"]);
    assert_eq!(sub.prefixes, ["l/c/d/"]);
    // Without a delimiter: every key under the prefix, page by page.
    let mut all = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let p = store.list("l/", None, token, Some(4)).await.unwrap();
        assert!(p.prefixes.is_empty());
        all.extend(keys(&p));
        pages += 1;
        token = p.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(all, ["l/a", "l/a/x", "l/a/y", "l/b", "l/c/d/e", "l/c/f"]);
    assert_eq!(pages, 2);
    // A prefix nothing is under.
    let none = store.list("nothing/", Some("/"), None, None).await.unwrap();
    assert!(none.objects.is_empty() && none.prefixes.is_empty() && none.next_token.is_none());
}

async fn list_reports_size_and_etag_of_each_object(store: &dyn ObjectStore, _: Backend) {
    let e1 = put(store, "s/one", vec![7u8; 1234]).await;
    let e2 = put(store, "s/empty", Bytes::new()).await;
    let page = store.list("s/", Some("/"), None, None).await.unwrap();
    let got: HashMap<&str, (u64, &str)> = page
        .objects
        .iter()
        .map(|o| (o.key.as_str(), (o.size, o.etag.as_str())))
        .collect();
    assert_eq!(got["s/one"], (1234, e1.as_str()));
    assert_eq!(got["s/empty"], (0, e2.as_str()));
    assert_eq!(got.len(), 2);
}

async fn head_tells_size_etag_type_and_metadata(store: &dyn ObjectStore, _: Backend) {
    let o = opts("text/plain", &[("mode", "33188"), ("uid", "1000")]);
    let etag = store
        .put("h/file.txt", Bytes::from_static(b"hello"), &o)
        .await
        .unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let meta = store.head("h/file.txt").await.unwrap();
    assert_eq!(meta.size, 5);
    assert_eq!(meta.etag, etag);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(meta.metadata, o.metadata);
    assert_eq!(errno_of(store.head("h/missing").await), libc::ENOENT);
    // A "directory" (a prefix with keys under it) is not an object.
    assert_eq!(errno_of(store.head("h").await), libc::ENOENT);
}

async fn head_and_start_returns_headers_and_the_first_bytes(store: &dyn ObjectStore, _: Backend) {
    let data = pattern(10_000, 3);
    let o = opts("application/x-test", &[("k", "v")]);
    let etag = store
        .put("hs/obj", Bytes::from(data.clone()), &o)
        .await
        .unwrap();
    // Shorter than the object: the whole object's headers, the first bytes.
    let (meta, body) = store.head_and_start("hs/obj", 4096).await.unwrap();
    assert_eq!(meta.size, 10_000);
    assert_eq!(meta.etag, etag);
    assert_eq!(meta.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(meta.metadata, o.metadata);
    assert_eq!(read_all(body).await.unwrap(), &data[..4096]);
    // Longer than the object: all of it.
    let (meta, body) = store.head_and_start("hs/obj", 1 << 20).await.unwrap();
    assert_eq!(meta.size, 10_000);
    assert_eq!(read_all(body).await.unwrap(), data);
    // An empty object: its headers and no byte.
    let e = put(store, "hs/empty", Bytes::new()).await;
    let (meta, body) = store.head_and_start("hs/empty", 4096).await.unwrap();
    assert_eq!((meta.size, meta.etag), (0, e));
    assert!(read_all(body).await.unwrap().is_empty());
    let missing = store.head_and_start("hs/missing", 4096).await;
    assert_eq!(errno_of(missing.map(|(m, _)| m)), libc::ENOENT);
}

async fn ranged_get_returns_exactly_the_range(store: &dyn ObjectStore, _: Backend) {
    let data = pattern(300_000, 9);
    put(store, "r/obj", data.clone()).await;
    for (start, end) in [(0, 1), (0, 300_000), (1000, 2000), (262_143, 262_145)] {
        let chunks = store.get_range("r/obj", start..end, None).await.unwrap();
        let got = read_all(chunks).await.unwrap();
        assert_eq!(got, &data[start as usize..end as usize], "{start}..{end}");
    }
    // A range running past the end stops at the end.
    let chunks = store.get_range("r/obj", 299_000..400_000, None).await;
    assert_eq!(read_all(chunks.unwrap()).await.unwrap(), &data[299_000..]);
    // An empty range is no bytes.
    let chunks = store.get_range("r/obj", 5..5, None).await.unwrap();
    assert!(read_all(chunks).await.unwrap().is_empty());
    // A range starting at or past the end cannot be satisfied (S3: 416 InvalidRange).
    let past = store.get_range("r/obj", 300_000..300_010, None).await;
    assert_eq!(errno_of(past.map(|_| ())), libc::EINVAL);
}

async fn if_match_fails_once_the_object_changed(store: &dyn ObjectStore, _: Backend) {
    let old = put(store, "m/obj", "version one").await;
    let chunks = store.get_range("m/obj", 0..7, Some(&old)).await.unwrap();
    assert_eq!(read_all(chunks).await.unwrap(), b"version");
    let new = put(store, "m/obj", "version two").await;
    assert_ne!(old, new);
    let stale = store.get_range("m/obj", 0..7, Some(&old)).await;
    assert_eq!(errno_of(stale.map(|_| ())), libc::ESTALE);
    let chunks = store.get_range("m/obj", 8..11, Some(&new)).await.unwrap();
    assert_eq!(read_all(chunks).await.unwrap(), b"two");
}

async fn put_replaces_the_object_and_its_etag(store: &dyn ObjectStore, _: Backend) {
    let o = opts("text/plain", &[("a", "1")]);
    let e1 = store
        .put("p/obj", Bytes::from_static(b"first"), &o)
        .await
        .unwrap();
    let e2 = put(store, "p/obj", "second, longer").await;
    assert_ne!(e1, e2);
    let meta = store.head("p/obj").await.unwrap();
    assert_eq!((meta.size, meta.etag.as_str()), (14, e2.as_str()));
    // A put replaces the metadata too.
    assert!(meta.metadata.is_empty(), "{:?}", meta.metadata);
    assert_eq!(get(store, "p/obj").await, b"second, longer");
}

async fn multipart_upload_assembles_parts_and_copied_ranges(
    store: &dyn ObjectStore,
    backend: Backend,
) {
    let src = pattern(PART + 1000, 1);
    let src_etag = put(store, "mp/src", src.clone()).await;
    let o = opts("application/octet-stream", &[("mode", "33152")]);
    let id = store.create_multipart("mp/dst", &o).await.unwrap();
    // Nothing shows until the upload completes.
    assert_eq!(errno_of(store.head("mp/dst").await), libc::ENOENT);
    let p1 = store
        .upload_part_copy("mp/dst", &id, 1, "mp/src", &src_etag, 0..PART as u64)
        .await
        .unwrap();
    let tail = pattern(777, 2);
    let p2 = store
        .upload_part("mp/dst", &id, 2, Bytes::from(tail.clone()))
        .await
        .unwrap();
    // A part copied from a source that changed since is refused.
    let stale = store
        .upload_part_copy("mp/dst", &id, 3, "mp/src", "\"0000\"", 0..10)
        .await;
    if backend.checks_copy_source_if_match() {
        assert_eq!(errno_of(stale), libc::ESTALE);
    } else {
        assert!(
            stale.is_ok(),
            "moto started to check the source ETag: update Backend"
        );
    }
    let etag = store
        .complete_multipart("mp/dst", &id, &[(1, p1), (2, p2)])
        .await
        .unwrap();
    let meta = store.head("mp/dst").await.unwrap();
    assert_eq!(meta.etag, etag);
    assert_eq!(meta.size, (PART + 777) as u64);
    assert_eq!(meta.metadata, o.metadata);
    assert_eq!(meta.content_type, o.content_type);
    let mut want = src[..PART].to_vec();
    want.extend_from_slice(&tail);
    assert!(get(store, "mp/dst").await == want, "assembled bytes differ");
    // The upload is gone once complete.
    let again = store.upload_part("mp/dst", &id, 3, Bytes::from_static(b"x"));
    assert_eq!(errno_of(again.await), backend.no_such_upload());
}

async fn aborted_multipart_upload_leaves_no_object(store: &dyn ObjectStore, backend: Backend) {
    put(store, "ab/kept", "old").await;
    for key in ["ab/new", "ab/kept"] {
        let id = store
            .create_multipart(key, &PutOptions::default())
            .await
            .unwrap();
        let p1 = store
            .upload_part(key, &id, 1, Bytes::from_static(b"part"))
            .await
            .unwrap();
        store.abort_multipart(key, &id).await.unwrap();
        let done = store.complete_multipart(key, &id, &[(1, p1)]).await;
        assert_eq!(errno_of(done), backend.no_such_upload(), "{key}");
    }
    assert_eq!(errno_of(store.head("ab/new").await), libc::ENOENT);
    assert_eq!(get(store, "ab/kept").await, b"old");
}

/// `copy_if_match`: the source's current ETag copies; a stale one fails with 412 (ESTALE) and
/// writes nothing (moto ignores the condition and copies: see [`Backend`]).
async fn a_conditional_copy_copies_only_the_version_named(store: &dyn ObjectStore, b: Backend) {
    let o = opts("text/plain", &[("mode", "33188")]);
    let old = store
        .put("cc/src", Bytes::from_static(b"first"), &o)
        .await
        .unwrap();
    let new = store
        .put("cc/src", Bytes::from_static(b"second"), &o)
        .await
        .unwrap();
    assert_ne!(old, new);
    let stale = store
        .copy_if_match("cc/src", &old, "cc/dst", Some(&o))
        .await;
    if b.checks_copy_source_if_match() {
        assert_eq!(errno_of(stale), libc::ESTALE);
        assert_eq!(errno_of(store.head("cc/dst").await), libc::ENOENT);
    } else {
        stale.expect("moto ignores x-amz-copy-source-if-match");
    }
    store
        .copy_if_match("cc/src", &new, "cc/dst", Some(&o))
        .await
        .unwrap();
    assert_eq!(get(store, "cc/dst").await, b"second");
}

async fn copy_keeps_or_replaces_metadata_and_keeps_tags(store: &dyn ObjectStore, _: Backend) {
    let o = opts("text/plain", &[("mode", "33188"), ("x", "1")]);
    store
        .put("c/src", Bytes::from_static(b"copied bytes"), &o)
        .await
        .unwrap();
    let t = tags(&[("k1", "v1"), ("k2", "v2")]);
    store.put_tags("c/src", &t).await.unwrap();
    // Without replace: bytes, metadata, type and tags all copied.
    let e = store.copy("c/src", "c/same", None).await.unwrap();
    let meta = store.head("c/same").await.unwrap();
    assert_eq!(meta.etag, e);
    assert_eq!(meta.metadata, o.metadata);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(sorted_tags(store, "c/same").await, t);
    assert_eq!(get(store, "c/same").await, b"copied bytes");
    // With replace: new metadata and type, the tags still copied.
    let n = opts("application/json", &[("y", "2")]);
    store.copy("c/src", "c/new", Some(&n)).await.unwrap();
    let meta = store.head("c/new").await.unwrap();
    assert_eq!(meta.metadata, n.metadata);
    assert_eq!(meta.content_type.as_deref(), Some("application/json"));
    assert_eq!(sorted_tags(store, "c/new").await, t);
    assert_eq!(get(store, "c/new").await, b"copied bytes");
    // Onto itself with replace: how metadata is edited in place.
    store.copy("c/src", "c/src", Some(&n)).await.unwrap();
    assert_eq!(store.head("c/src").await.unwrap().metadata, n.metadata);
    assert_eq!(get(store, "c/src").await, b"copied bytes");
    let missing = store.copy("c/missing", "c/dst", None).await;
    assert_eq!(errno_of(missing), libc::ENOENT);
    assert_eq!(errno_of(store.head("c/dst").await), libc::ENOENT);
}

async fn delete_removes_the_key_and_is_idempotent(store: &dyn ObjectStore, _: Backend) {
    put(store, "d/obj", "x").await;
    put(store, "d/objx", "y").await;
    store.delete("d/obj").await.unwrap();
    assert_eq!(errno_of(store.head("d/obj").await), libc::ENOENT);
    assert_eq!(get(store, "d/objx").await, b"y");
    // Deleting what is not there succeeds, as S3's DeleteObject does.
    store.delete("d/obj").await.unwrap();
    store.delete("d/never").await.unwrap();
    let page = store.list("d/", Some("/"), None, None).await.unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["d/objx"]);
}

async fn tags_are_replaced_as_a_set_and_reset_by_a_put(store: &dyn ObjectStore, _: Backend) {
    put(store, "t/obj", "x").await;
    assert!(store.get_tags("t/obj").await.unwrap().is_empty());
    store
        .put_tags("t/obj", &tags(&[("b", "2"), ("a", "1")]))
        .await
        .unwrap();
    assert_eq!(
        sorted_tags(store, "t/obj").await,
        tags(&[("a", "1"), ("b", "2")])
    );
    store.put_tags("t/obj", &tags(&[("c", "3")])).await.unwrap();
    assert_eq!(sorted_tags(store, "t/obj").await, tags(&[("c", "3")]));
    store.put_tags("t/obj", &[]).await.unwrap();
    assert!(store.get_tags("t/obj").await.unwrap().is_empty());
    // Tagging is not content: the ETag stays; a new put drops the tags.
    let etag = store.head("t/obj").await.unwrap().etag;
    store.put_tags("t/obj", &tags(&[("d", "4")])).await.unwrap();
    assert_eq!(store.head("t/obj").await.unwrap().etag, etag);
    put(store, "t/obj", "y").await;
    assert!(store.get_tags("t/obj").await.unwrap().is_empty());
}

async fn missing_keys_are_not_found_everywhere(store: &dyn ObjectStore, backend: Backend) {
    put(store, "n/present", "x").await;
    let k = "n/absent";
    assert_eq!(errno_of(store.head(k).await), libc::ENOENT);
    let get = store.get_range(k, 0..1, None).await;
    assert_eq!(errno_of(get.map(|_| ())), libc::ENOENT);
    let get = store.get_range(k, 0..1, Some("\"abc\"")).await;
    assert_eq!(errno_of(get.map(|_| ())), libc::ENOENT);
    assert_eq!(errno_of(store.get_tags(k).await), libc::ENOENT);
    assert_eq!(
        errno_of(store.put_tags(k, &tags(&[("a", "b")])).await),
        libc::ENOENT
    );
    assert_eq!(errno_of(store.copy(k, "n/dst", None).await), libc::ENOENT);
    let id = store.create_multipart("n/up", &PutOptions::default()).await;
    let id = id.unwrap();
    let copy = store
        .upload_part_copy("n/up", &id, 1, k, "\"abc\"", 0..1)
        .await;
    assert_eq!(errno_of(copy), libc::ENOENT);
    store.abort_multipart("n/up", &id).await.unwrap();
    let upload = store.upload_part("n/up", "no-such-upload", 1, Bytes::from_static(b"x"));
    assert_eq!(errno_of(upload.await), backend.no_such_upload());
}
