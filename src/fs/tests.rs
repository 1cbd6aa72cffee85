//! Unit tests of the filesystem core over the in-memory store. The same behaviours are proven
//! end to end, through a real mount and a real S3 server, in `tests/`.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use super::inode::ROOT_INO;
use super::AttrChange;
use super::S3Fs;
use crate::config::{FsConfig, WriteConfig};
use crate::storage::mem::MemStore;
use crate::storage::{ObjectStore, PutOptions};

fn fs_with(store: &Arc<MemStore>, prefix: &str) -> crate::fs::test_fs::TestFs {
    crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, config(prefix))
}

/// A filesystem that takes attributes from listings alone (`--listing-attributes`).
fn fs_trusting_listings(store: &Arc<MemStore>) -> crate::fs::test_fs::TestFs {
    let config = FsConfig {
        trust_listing_attrs: true,
        ..config("")
    };
    crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, config)
}

fn config(prefix: &str) -> FsConfig {
    FsConfig {
        prefix: prefix.to_string(),
        metadata_ttl: Duration::from_secs(60),
        write: WriteConfig {
            part_size: 5 << 20,
            ..WriteConfig::default()
        },
        ..FsConfig::default()
    }
}

async fn names(fs: &S3Fs, ino: u64) -> Vec<String> {
    let fh = fs.opendir(ino).unwrap();
    let entries = fs.readdir(fh, 0).await.unwrap();
    fs.releasedir(fh);
    entries.iter().map(|e| e.name.clone()).collect()
}

async fn lookup(fs: &S3Fs, parent: u64, name: &str) -> u64 {
    fs.lookup(parent, OsStr::new(name)).await.unwrap().ino.0
}

#[tokio::test]
async fn listing_follows_the_namespace_rules_without_head_requests() {
    let store = Arc::new(MemStore::new());
    for k in [
        "a",
        "a/inner",
        "b.txt",
        "c/",
        "d//x",
        "../up",
        "./dot",
        "sub/deep/file",
    ] {
        store.insert(k, "data");
    }
    store.insert(&"n".repeat(1025), "long");
    let fs = fs_trusting_listings(&store);
    let fh = fs.opendir(ROOT_INO).unwrap();
    let entries = fs.readdir(fh, 0).await.unwrap();
    let got: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    // `a` the directory hides `a` the file; `..`, `.` and the long name are skipped.
    assert_eq!(got, [".", "..", "a", "b.txt", "c", "d", "sub"]);
    // Files carry their size from the listing, and stat of them costs no HeadObject.
    let b = entries.iter().find(|e| e.name == "b.txt").unwrap();
    assert_eq!(b.attr.size, 4);
    assert!(b.attr_known);
    assert_eq!(fs.getattr(b.ino).await.unwrap().size, 4);
    assert_eq!(store.count("head"), 0);
    // Subdirectories' marker attributes are unknown until asked for.
    assert!(!entries.iter().find(|e| e.name == "d").unwrap().attr_known);
    // The empty name of `d//x` is skipped inside `d`.
    let d = lookup(&fs, ROOT_INO, "d").await;
    assert_eq!(names(&fs, d).await, [".", ".."]);
}

#[tokio::test]
async fn listing_paginates_past_one_thousand_entries() {
    let store = Arc::new(MemStore::new());
    for i in 0..2500 {
        store.insert(&format!("big/f{i:05}"), "x");
    }
    let fs = fs_with(&store, "");
    let dir = lookup(&fs, ROOT_INO, "big").await;
    assert_eq!(names(&fs, dir).await.len(), 2502);
    // ceil(2500 / 1000) pages, plus the one-key LIST of the lookup.
    assert_eq!(store.count("list"), 3 + 1);
}

#[tokio::test]
async fn prefix_mounts_see_only_their_subtree() {
    let store = Arc::new(MemStore::new());
    store.insert("p/one", "1");
    store.insert("other", "2");
    let fs = fs_with(&store, "p/");
    assert_eq!(names(&fs, ROOT_INO).await, [".", "..", "one"]);
}

#[tokio::test]
async fn missing_names_are_cached_negatively() {
    let store = Arc::new(MemStore::new());
    let fs = fs_with(&store, "");
    for _ in 0..3 {
        let err = fs.lookup(ROOT_INO, OsStr::new("nope")).await.unwrap_err();
        assert_eq!(err.errno, libc::ENOENT);
    }
    // One GET (asked instead of a HEAD, see `head_with_first_block`) answered 404.
    assert_eq!(store.count("get"), 1);
    assert_eq!(store.count("head"), 0);
}

#[tokio::test]
async fn a_file_looked_up_by_name_brings_its_first_block() {
    let store = Arc::new(MemStore::new());
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    store.insert("big", body.clone());
    let fs = fs_with(&store, "");
    let attr = fs.lookup(ROOT_INO, OsStr::new("big")).await.unwrap();
    assert_eq!(attr.size, 3_000_000);
    assert_eq!((store.count("get"), store.count("head")), (1, 0));
    // The first read is served by the lookup's GET (in flight or cached): no request of its
    // own, and the right bytes.
    let (fh, _) = fs.open(attr.ino.0, libc::O_RDONLY, 0).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 4096).await.unwrap()[..], &body[..4096]);
    assert_eq!(store.count("get"), 1);
    // Elsewhere, reads fetch as usual (a random read: its own block only).
    let at = 2_500_000;
    let got = fs.read(fh, at as u64, 4096).await.unwrap();
    assert_eq!(&got[..], &body[at..at + 4096]);
    assert_eq!(store.count("get"), 2);
    fs.release(fh).await;
}

#[tokio::test]
async fn a_first_block_whose_body_breaks_off_is_fetched_again_for_its_reader() {
    let store = Arc::new(MemStore::new());
    let body: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    store.insert("d/f", body.clone());
    let fs = fs_with(&store, "");
    let d = lookup(&fs, ROOT_INO, "d").await;
    names(&fs, d).await;
    tokio::task::yield_now().await; // the GET of `d` (a 404) in its own task
    let gets = store.count("get");
    // A listed small file is completed by a GET of the whole object, whose body breaks off
    // after its first chunk while the read below is already waiting for it.
    store.break_next_bodies(1);
    let ino = lookup(&fs, d, "f").await;
    let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 40_000).await.unwrap()[..], &body[..]);
    // The lookup's GET, then one GET of block 0 again: the reader never saw the failure.
    assert_eq!(store.count("get") - gets, 2);
    fs.release(fh).await;
}

#[tokio::test]
async fn a_listed_small_file_that_has_grown_reads_whole() {
    let store = Arc::new(MemStore::new());
    store.insert("d/small", "four");
    let fs = fs_with(&store, "");
    let d = lookup(&fs, ROOT_INO, "d").await;
    names(&fs, d).await;
    // Rewritten by another client after the listing: the lookup's GET of the first 64 KiB is
    // not the whole block any more, so it must not be cached as block 0.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 249) as u8).collect();
    store.insert("d/small", body.clone());
    let attr = fs.lookup(d, OsStr::new("small")).await.unwrap();
    assert_eq!(attr.size, 100_000);
    let (fh, _) = fs.open(attr.ino.0, libc::O_RDONLY, 0).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 100_000).await.unwrap()[..], &body[..]);
    fs.release(fh).await;
}

#[tokio::test]
async fn a_file_whose_first_block_is_cached_is_revalidated_with_a_head() {
    let store = Arc::new(MemStore::new());
    let body: Vec<u8> = (0..600_000u32).map(|i| (i % 247) as u8).collect();
    store.insert("d/big", body.clone());
    for i in 0..1000 {
        store.insert(&format!("d/f{i:04}"), "x"); // too big to list for a lookup
    }
    let config = FsConfig {
        metadata_ttl: Duration::ZERO, // every lookup asks S3 again
        ..FsConfig::default()
    };
    let fs = crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, config);
    let d = lookup(&fs, ROOT_INO, "d").await;
    tokio::task::yield_now().await; // the GET of `d` (a 404) in its own task
    let gets = store.count("get");
    let attr = fs.lookup(d, OsStr::new("big")).await.unwrap();
    let (fh, _) = fs.open(attr.ino.0, libc::O_RDONLY, 0).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 4096).await.unwrap()[..], &body[..4096]);
    fs.release(fh).await;
    // The lookup's GET brought block 0; the open, past the TTL, asked again with a HEAD.
    assert_eq!((store.count("get") - gets, store.count("head")), (1, 1));
    // Block 0 of this version is cached: a HEAD is enough to ask whether it is still current.
    fs.lookup(d, OsStr::new("big")).await.unwrap();
    assert_eq!((store.count("get") - gets, store.count("head")), (1, 2));
    // Changed meanwhile: the HEAD tells the new size, and the new version's read fetches it.
    store.insert("d/big", vec![9u8; 1000]);
    assert_eq!(fs.lookup(d, OsStr::new("big")).await.unwrap().size, 1000);
    let (fh, _) = fs.open(attr.ino.0, libc::O_RDONLY, 0).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 4096).await.unwrap()[..], &[9u8; 1000][..]);
    fs.release(fh).await;
}

#[tokio::test]
async fn a_name_whose_get_is_refused_is_looked_up_with_a_head() {
    let store = Arc::new(MemStore::new());
    store.insert("archived", "cold bytes");
    let fs = fs_with(&store, "");
    // As S3 refuses a GET of an archived object that was not restored, or without KMS rights.
    store.fail("get", true);
    let attr = fs.lookup(ROOT_INO, OsStr::new("archived")).await.unwrap();
    assert_eq!(attr.size, 10);
    assert_eq!(store.count("head"), 1);
}

#[tokio::test]
async fn open_and_read_return_the_object() {
    let store = Arc::new(MemStore::new());
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    store.insert("f", body.clone());
    let fs = fs_with(&store, "");
    let ino = lookup(&fs, ROOT_INO, "f").await;
    let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
    let mut got = Vec::new();
    while got.len() < body.len() {
        got.extend_from_slice(&fs.read(fh, got.len() as u64, 131_072).await.unwrap());
    }
    assert_eq!(got, body);
    fs.release(fh).await;
}

#[tokio::test]
async fn create_write_flush_uploads_and_reads_back_before_close() {
    let store = Arc::new(MemStore::new());
    let fs = fs_with(&store, "");
    let (attr, fh) = fs
        .create(ROOT_INO, OsStr::new("new.txt"), 0o644, libc::O_WRONLY, 0)
        .await
        .unwrap();
    fs.write(fh, 0, b"hello ").await.unwrap();
    fs.write(fh, 6, b"world").await.unwrap();
    // A second descriptor sees the bytes before the first closes.
    let (rfh, _) = fs.open(attr.ino.0, libc::O_RDONLY, 0).await.unwrap();
    assert_eq!(&fs.read(rfh, 0, 100).await.unwrap()[..], b"hello world");
    assert!(
        store.body("new.txt").is_none(),
        "nothing is uploaded before flush"
    );
    fs.flush(fh, 0).await.unwrap();
    assert_eq!(store.body("new.txt").unwrap(), &b"hello world"[..]);
    fs.release(fh).await;
    fs.release(rfh).await;
    let meta = store.head("new.txt").await.unwrap();
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_sequential_write_streams_a_multipart_upload() {
    let store = Arc::new(MemStore::new());
    let fs = fs_with(&store, "");
    let (_, fh) = fs
        .create(ROOT_INO, OsStr::new("big"), 0o644, libc::O_WRONLY, 0)
        .await
        .unwrap();
    let data: Vec<u8> = (0..12_000_000u32).map(|i| (i % 253) as u8).collect();
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, chunk).await.unwrap();
    }
    assert_eq!(
        store.count("create_multipart"),
        1,
        "the upload starts while writing"
    );
    fs.flush(fh, 0).await.unwrap();
    assert_eq!(store.count("upload_part"), 3);
    fs.release(fh).await;
    assert_eq!(store.body("big").unwrap(), &data[..]);
    assert_eq!(store.count("put"), 0);
    assert_eq!(store.open_uploads(), 0);
}

#[tokio::test]
async fn failed_upload_reaches_flush_and_keeps_the_old_object() {
    let store = Arc::new(MemStore::new());
    store.insert("f", "old");
    let fs = fs_with(&store, "");
    let ino = lookup(&fs, ROOT_INO, "f").await;
    let (fh, _) = fs
        .open(ino, libc::O_WRONLY | libc::O_TRUNC, 0)
        .await
        .unwrap();
    fs.write(fh, 0, b"new content").await.unwrap();
    store.fail("put", true);
    let err = fs.flush(fh, 0).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    assert_eq!(store.body("f").unwrap(), &b"old"[..]);
    // Once the store recovers, the next flush saves the same bytes.
    store.fail("put", false);
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    assert_eq!(store.body("f").unwrap(), &b"new content"[..]);
}

#[tokio::test]
async fn append_and_truncate_stage_the_existing_object() {
    let store = Arc::new(MemStore::new());
    store.insert("f", "abc");
    let fs = fs_with(&store, "");
    let ino = lookup(&fs, ROOT_INO, "f").await;
    let (fh, _) = fs.open(ino, libc::O_WRONLY, 0).await.unwrap();
    fs.write(fh, 3, b"def").await.unwrap();
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    assert_eq!(store.body("f").unwrap(), &b"abcdef"[..]);
    let change = AttrChange {
        size: Some(2),
        ..Default::default()
    };
    fs.setattr(ino, None, change).await.unwrap();
    assert_eq!(store.body("f").unwrap(), &b"ab"[..]);
}

#[tokio::test]
async fn directories_rename_and_rmdir() {
    let store = Arc::new(MemStore::new());
    let fs = fs_with(&store, "");
    let d = fs
        .mkdir(ROOT_INO, OsStr::new("d"), 0o755, 0)
        .await
        .unwrap()
        .ino
        .0;
    let (_, fh) = fs
        .create(d, OsStr::new("x"), 0o644, libc::O_WRONLY, 0)
        .await
        .unwrap();
    fs.write(fh, 0, b"1").await.unwrap();
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    assert_eq!(
        fs.rmdir(ROOT_INO, OsStr::new("d")).await.unwrap_err().errno,
        libc::ENOTEMPTY
    );
    fs.rename(ROOT_INO, OsStr::new("d"), ROOT_INO, OsStr::new("e"), 0)
        .await
        .unwrap();
    assert_eq!(store.keys(), ["e/", "e/x"]);
    let e = lookup(&fs, ROOT_INO, "e").await;
    fs.unlink(e, OsStr::new("x")).await.unwrap();
    fs.rmdir(ROOT_INO, OsStr::new("e")).await.unwrap();
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn tags_respect_s3_limits_and_xattr_flags() {
    let store = Arc::new(MemStore::new());
    store.insert_with("f", "x", PutOptions::default(), vec![]);
    let fs = fs_with(&store, "");
    let ino = lookup(&fs, ROOT_INO, "f").await;
    for i in 0..10 {
        fs.setxattr(ino, OsStr::new(&format!("user.s3.tag.k{i}")), b"v", 0)
            .await
            .unwrap();
    }
    let err = fs
        .setxattr(ino, OsStr::new("user.s3.tag.k10"), b"v", 0)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::ENOSPC);
    let err = fs
        .setxattr(ino, OsStr::new("user.s3.tag.k0"), b"v", 1)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EEXIST);
    let err = fs
        .setxattr(ino, OsStr::new("user.s3.etag"), b"v", 0)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EPERM);
    assert_eq!(store.get_tags("f").await.unwrap().len(), 10);
    let big = "x".repeat(3000);
    let err = fs
        .setxattr(ino, OsStr::new("user.s3.meta.big"), big.as_bytes(), 0)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::E2BIG);
}

#[tokio::test]
async fn read_only_mounts_refuse_every_change() {
    let store = Arc::new(MemStore::new());
    store.insert("f", "x");
    let config = FsConfig {
        read_only: true,
        ..FsConfig::default()
    };
    let fs = crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, config);
    let ino = lookup(&fs, ROOT_INO, "f").await;
    fn erofs<T: std::fmt::Debug>(r: Result<T, crate::error::FsError>) -> i32 {
        r.unwrap_err().errno
    }
    assert_eq!(erofs(fs.open(ino, libc::O_WRONLY, 0).await), libc::EROFS);
    assert_eq!(
        erofs(fs.unlink(ROOT_INO, OsStr::new("f")).await),
        libc::EROFS
    );
    assert_eq!(
        erofs(fs.mkdir(ROOT_INO, OsStr::new("d"), 0o755, 0).await),
        libc::EROFS
    );
    assert_eq!(
        erofs(
            fs.create(ROOT_INO, OsStr::new("n"), 0o644, libc::O_WRONLY, 0)
                .await
        ),
        libc::EROFS
    );
    assert_eq!(store.keys(), ["f"]);
}

#[tokio::test]
async fn a_run_of_lookups_lists_the_directory_once() {
    let store = Arc::new(MemStore::new());
    for i in 0..50 {
        store.insert(&format!("d/f{i}"), "x");
    }
    let fs = fs_trusting_listings(&store);
    let d = lookup(&fs, ROOT_INO, "d").await;
    // The GET of `d` goes on in its own task after the LIST found the directory.
    tokio::task::yield_now().await;
    let (gets, lists) = (store.count("get"), store.count("list"));
    for i in 0..50 {
        lookup(&fs, d, &format!("f{i}")).await;
    }
    let err = fs.lookup(d, OsStr::new("absent")).await.unwrap_err();
    assert_eq!(err.errno, libc::ENOENT);
    // The first name is resolved alone (GET + LIST); the second lists the directory; after
    // that each existing small name costs one GET of the whole object (for s3fs's headers,
    // which listings lack; its bytes go to the cache) and a missing name costs nothing.
    assert_eq!(store.count("head"), 0);
    assert_eq!(store.count("get") - gets, 50);
    assert_eq!(store.count("list") - lists, 2);
}

#[tokio::test]
async fn a_listed_small_file_costs_one_get_from_lookup_to_last_byte() {
    let store = Arc::new(MemStore::new());
    store.insert("d/small", "four");
    store.insert_with(
        "d/link",
        "small",
        PutOptions {
            metadata: [("mode".to_string(), "41471".to_string())].into(), // 0o120777
            ..PutOptions::default()
        },
        vec![],
    );
    store.insert("d/large", vec![7u8; 200 << 10]);
    let fs = fs_trusting_listings(&store);
    let d = lookup(&fs, ROOT_INO, "d").await;
    names(&fs, d).await;
    tokio::task::yield_now().await; // the GET of `d` (a 404) in its own task
    let before = (store.count("head"), store.count("list"));
    let gets = store.count("get");

    let ino = lookup(&fs, d, "small").await;
    let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
    assert_eq!(&fs.read(fh, 0, 4096).await.unwrap()[..], b"four");
    fs.release(fh).await;
    assert_eq!(store.count("get") - gets, 1);

    // An s3fs symlink, listed as a plain object, is still seen as a symlink.
    let attr = fs.lookup(d, OsStr::new("link")).await.unwrap();
    assert_eq!(attr.kind, fuser::FileType::Symlink);
    assert_eq!(fs.readlink(attr.ino.0).await.unwrap(), b"small");
    assert_eq!(store.count("get") - gets, 2);

    // A larger file keeps the listing's attributes: no request until it is read.
    assert_eq!(
        fs.lookup(d, OsStr::new("large")).await.unwrap().size,
        200 << 10
    );
    assert_eq!(store.count("get") - gets, 2);
    assert_eq!((store.count("head"), store.count("list")), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lookups_that_miss_share_one_listing() {
    let store = Arc::new(MemStore::new());
    for i in 0..16 {
        store.insert(&format!("d/f{i:02}"), "x");
    }
    let fs = Arc::new(fs_with(&store, ""));
    let d = lookup(&fs, ROOT_INO, "d").await;
    lookup(&fs, d, "f00").await; // a first miss, resolved alone
    let lists = store.count("list");
    let tasks: Vec<_> = (1..16)
        .map(|i| {
            let fs = fs.clone();
            tokio::spawn(async move { lookup(&fs, d, &format!("f{i:02}")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.count("list") - lists, 1);
}

#[tokio::test]
async fn a_flush_from_another_process_does_not_commit() {
    let store = Arc::new(MemStore::new());
    let fs = fs_with(&store, "");
    let me = std::process::id();
    let (_, fh) = fs
        .create(ROOT_INO, OsStr::new("f"), 0o644, libc::O_WRONLY, me)
        .await
        .unwrap();
    fs.write(fh, 0, b"half").await.unwrap();
    // A child that inherited the descriptor closes it (fork + exec): pid 1 stands in for it.
    fs.flush(fh, 1).await.unwrap();
    assert!(store.body("f").is_none());
    fs.write(fh, 4, b" and the rest").await.unwrap();
    fs.flush(fh, me).await.unwrap();
    assert_eq!(store.body("f").unwrap(), &b"half and the rest"[..]);
    fs.release(fh).await;
}

#[tokio::test]
async fn a_flush_before_the_first_write_after_o_trunc_keeps_the_object() {
    let store = Arc::new(MemStore::new());
    store.insert("f", "old content");
    let fs = fs_with(&store, "");
    let ino = lookup(&fs, ROOT_INO, "f").await;
    // `cmd > f`: open(O_TRUNC), dup to stdout, close the original, then write.
    let (fh, _) = fs
        .open(ino, libc::O_WRONLY | libc::O_TRUNC, 0)
        .await
        .unwrap();
    fs.flush(fh, 0).await.unwrap();
    assert_eq!(store.body("f").unwrap(), &b"old content"[..]);
    fs.write(fh, 0, b"new").await.unwrap();
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    assert_eq!(store.body("f").unwrap(), &b"new"[..]);
}

#[tokio::test]
async fn a_listed_small_file_whose_get_is_refused_is_completed_with_a_head() {
    let store = Arc::new(MemStore::new());
    store.insert("d/archived", "cold bytes");
    let fs = fs_with(&store, "");
    let d = lookup(&fs, ROOT_INO, "d").await;
    names(&fs, d).await;
    // As S3 refuses a GET of an archived object that was not restored, or without KMS rights.
    store.fail("get", true);
    let attr = fs.lookup(d, OsStr::new("archived")).await.unwrap();
    assert_eq!(attr.size, 10);
    assert_eq!(store.count("head"), 1);
}

#[tokio::test]
async fn a_directory_too_big_to_list_in_one_page_is_not_listed_per_lookup() {
    let store = Arc::new(MemStore::new());
    for i in 0..1500 {
        store.insert(&format!("d/f{i:04}"), "x");
    }
    let fs = fs_with(&store, "");
    let d = lookup(&fs, ROOT_INO, "d").await;
    lookup(&fs, d, "f0000").await; // first miss: GET + LIST of the name
    lookup(&fs, d, "f0001").await; // second: one page says "too big", then the name alone
    let lists = store.count("list");
    for name in ["f0002", "f0003", "f0004"] {
        lookup(&fs, d, name).await;
    }
    // Each later miss costs only its own `LIST prefix=name/ max-keys=1`, no page of `d/`.
    assert_eq!(store.count("list") - lists, 3);
}

#[tokio::test]
async fn a_rename_keeps_mtime_and_a_save_by_rename_keeps_the_replaced_content_type() {
    let store = Arc::new(MemStore::new());
    let mut html = PutOptions {
        content_type: Some("text/html".into()),
        ..PutOptions::default()
    };
    html.metadata.insert("mtime".into(), "1600000000.5".into());
    store.insert_with(
        "index.html",
        "<p>a</p>",
        html,
        vec![("k".into(), "v".into())],
    );
    let fs = fs_with(&store, "");
    // An editor's save: a temp file written, then renamed over the original.
    let (_, fh) = fs
        .create(
            ROOT_INO,
            OsStr::new(".index.html.swp1"),
            0o644,
            libc::O_WRONLY,
            0,
        )
        .await
        .unwrap();
    fs.write(fh, 0, b"<p>b</p>").await.unwrap();
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    let written = store.head(".index.html.swp1").await.unwrap();
    let mtime = written.metadata["mtime"].clone();
    fs.rename(
        ROOT_INO,
        OsStr::new(".index.html.swp1"),
        ROOT_INO,
        OsStr::new("index.html"),
        0,
    )
    .await
    .unwrap();
    let saved = store.head("index.html").await.unwrap();
    assert_eq!(saved.content_type.as_deref(), Some("text/html"));
    assert_eq!(
        saved.metadata["mtime"], mtime,
        "the rename keeps the written mtime"
    );
    assert!(saved.metadata["ctime"] >= mtime, "and moves ctime");
    assert!(
        store.get_tags("index.html").await.unwrap().is_empty(),
        "a rename over replaces the tags with the source's"
    );
}

#[tokio::test]
async fn a_chmod_keeps_mtime_and_a_write_moves_it() {
    let store = Arc::new(MemStore::new());
    let mut opts = PutOptions::default();
    opts.metadata.insert("mtime".into(), "1600000000".into());
    store.insert_with("f", "data", opts, vec![]);
    let fs = fs_with(&store, "");
    let ino = lookup(&fs, ROOT_INO, "f").await;
    let chmod = AttrChange {
        mode: Some(0o600),
        ..Default::default()
    };
    fs.setattr(ino, None, chmod).await.unwrap();
    let meta = store.head("f").await.unwrap();
    assert_eq!(meta.metadata["mtime"], "1600000000");
    assert_eq!(meta.metadata["mode"], (libc::S_IFREG | 0o600).to_string());
    let (fh, _) = fs.open(ino, libc::O_WRONLY, 0).await.unwrap();
    fs.write(fh, 4, b"!").await.unwrap();
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    let meta = store.head("f").await.unwrap();
    let secs: u64 = meta.metadata["mtime"]
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs > 1_700_000_000, "a write moves mtime to now: {meta:?}");
    assert_eq!(meta.metadata["mode"], (libc::S_IFREG | 0o600).to_string());
}

#[tokio::test]
async fn a_file_closed_after_a_failed_upload_is_kept_with_its_manifest() {
    use crate::data::salvage;
    let store = Arc::new(MemStore::new());
    store.insert("p/f", "old");
    let fs = fs_with(&store, "p/");
    let ino = lookup(&fs, ROOT_INO, "f").await;
    let (fh, _) = fs
        .open(ino, libc::O_WRONLY | libc::O_TRUNC, 0)
        .await
        .unwrap();
    fs.write(fh, 0, b"new bytes").await.unwrap();
    store.fail("put", true);
    assert_eq!(fs.flush(fh, 0).await.unwrap_err().errno, libc::EIO);
    fs.release(fh).await;
    assert_eq!(store.body("p/f").unwrap(), &b"old"[..], "old object intact");
    let entries = salvage::list(fs.staging_dir()).unwrap();
    assert_eq!(entries.len(), 1, "one failed upload kept");
    let m = entries[0].manifest.as_ref().unwrap();
    assert_eq!((m.key.as_str(), m.size), ("p/f", 9));
    assert!(m.metadata.contains_key("mtime"), "{m:?}");
    assert!(
        !m.error.is_empty() && m.error != "the last upload failed",
        "{m:?}"
    );
    assert_eq!(std::fs::read(entries[0].data_path()).unwrap(), b"new bytes");
    assert!(salvage::staging_files(fs.staging_dir()).is_empty());
}
