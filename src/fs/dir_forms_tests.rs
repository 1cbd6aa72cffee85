//! Unit tests of s3fs's older directory forms over the in-memory store: a `dir` object (no
//! slash) with Content-Type `application/x-directory` or a directory mode, and `dir_$folder$`.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use fuser::FileType;

use super::inode::ROOT_INO;
use super::S3Fs;
use crate::config::FsConfig;
use crate::storage::mem::MemStore;
use crate::storage::{ObjectStore, PutOptions};

fn fs_over(store: &Arc<MemStore>) -> crate::fs::test_fs::TestFs {
    let config = FsConfig {
        metadata_ttl: Duration::from_secs(60),
        ..FsConfig::default()
    };
    crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, config)
}

fn x_directory() -> PutOptions {
    PutOptions {
        content_type: Some("application/x-directory".into()),
        ..Default::default()
    }
}

/// A bucket with every form: `xdir` (x-directory object, with children), `xempty` (the same,
/// empty), `modedir` (directory mode only), `hdir_$folder$` (with a child), `hempty_$folder$`,
/// and an empty regular file.
fn legacy_bucket() -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    store.insert_with("xdir", "", x_directory(), vec![]);
    store.insert("xdir/a", "aa");
    store.insert("xdir/b", "bbb");
    store.insert_with("xempty", "", x_directory(), vec![]);
    let mut mode = PutOptions::default();
    mode.metadata.insert("mode".into(), "16877".into()); // 040755
    store.insert_with("modedir", "", mode, vec![]);
    store.insert("hdir_$folder$", "");
    store.insert("hdir/c", "c");
    store.insert("hempty_$folder$", "");
    store.insert("empty.txt", "");
    store
}

async fn entries(fs: &S3Fs, ino: u64) -> Vec<(String, FileType, bool)> {
    let fh = fs.opendir(ino).unwrap();
    let list = fs.readdir(fh, 0).await.unwrap();
    fs.releasedir(fh);
    list.iter()
        .skip(2)
        .map(|e| (e.name.clone(), e.attr.kind, e.attr_known))
        .collect()
}

async fn lookup(fs: &S3Fs, parent: u64, name: &str) -> fuser::FileAttr {
    fs.lookup(parent, OsStr::new(name)).await.unwrap()
}

async fn names(fs: &S3Fs, ino: u64) -> Vec<String> {
    entries(fs, ino).await.into_iter().map(|e| e.0).collect()
}

#[tokio::test]
async fn listings_show_folder_objects_as_directories_and_ask_nothing_more() {
    let store = legacy_bucket();
    let fs = fs_over(&store);
    let got = entries(&fs, ROOT_INO).await;
    use FileType::{Directory as D, RegularFile as F};
    // `_$folder$` objects are directories by name; `xdir` is one by its children; the empty
    // directory objects cannot be told from empty files by a listing. Nothing listed is
    // complete yet (s3fs's headers are unknown), so the kernel may not cache it.
    assert_eq!(
        got,
        [
            ("empty.txt".to_string(), F, false),
            ("hdir".to_string(), D, false),
            ("hempty".to_string(), D, false),
            ("modedir".to_string(), F, false),
            ("xdir".to_string(), D, false),
            ("xempty".to_string(), F, false),
        ]
    );
    assert_eq!((store.count("head"), store.count("get")), (0, 0));
    let hdir = lookup(&fs, ROOT_INO, "hdir").await;
    assert_eq!(names(&fs, hdir.ino.0).await, ["c"]);
    let hempty = lookup(&fs, ROOT_INO, "hempty").await;
    assert_eq!(hempty.kind, D);
    assert!(names(&fs, hempty.ino.0).await.is_empty());
}

#[tokio::test]
async fn directory_objects_are_directories_once_their_headers_are_known() {
    let store = legacy_bucket();
    // Looked up before any listing: resolved through S3, with their headers.
    let fs = fs_over(&store);
    let xempty = lookup(&fs, ROOT_INO, "xempty").await;
    assert_eq!(xempty.kind, FileType::Directory);
    assert_eq!(xempty.size, 0);
    let modedir = lookup(&fs, ROOT_INO, "modedir").await;
    assert_eq!((modedir.kind, modedir.perm), (FileType::Directory, 0o755));
    let file = lookup(&fs, ROOT_INO, "empty.txt").await;
    assert_eq!(file.kind, FileType::RegularFile);
    // Their children are the keys under `name/`; a listing again keeps them directories.
    store.insert("xempty/new", "n");
    assert_eq!(names(&fs, xempty.ino.0).await, ["new"]);
    let again = entries(&fs, ROOT_INO).await;
    let kind_of = |n: &str| again.iter().find(|e| e.0 == n).unwrap().1;
    assert_eq!(kind_of("modedir"), FileType::Directory);
    assert_eq!(lookup(&fs, ROOT_INO, "modedir").await.ino, modedir.ino);
    // `xdir`, looked up without a listing, is a directory with its children.
    let fresh = fs_over(&store);
    let xdir = lookup(&fresh, ROOT_INO, "xdir").await;
    assert_eq!(xdir.kind, FileType::Directory);
    assert_eq!(names(&fresh, xdir.ino.0).await, ["a", "b"]);
    let xempty = lookup(&fresh, ROOT_INO, "xempty").await;
    assert_eq!(xempty.kind, FileType::Directory);
}

#[tokio::test]
async fn rmdir_deletes_the_object_that_stands_for_the_directory() {
    let store = legacy_bucket();
    let fs = fs_over(&store);
    lookup(&fs, ROOT_INO, "xempty").await;
    lookup(&fs, ROOT_INO, "modedir").await;
    entries(&fs, ROOT_INO).await;
    for name in ["hempty", "xempty", "modedir"] {
        fs.rmdir(ROOT_INO, OsStr::new(name)).await.unwrap();
    }
    let err = fs.rmdir(ROOT_INO, OsStr::new("hdir")).await.unwrap_err();
    assert_eq!(err.errno, libc::ENOTEMPTY);
    // A mount that never listed the root learns `hdir`'s stand-in when it is removed.
    let fresh = fs_over(&store);
    let hdir = lookup(&fresh, ROOT_INO, "hdir").await;
    fresh.unlink(hdir.ino.0, OsStr::new("c")).await.unwrap();
    fresh.rmdir(ROOT_INO, OsStr::new("hdir")).await.unwrap();
    assert_eq!(store.keys(), ["empty.txt", "xdir", "xdir/a", "xdir/b"]);
    assert_eq!(
        names(&fs_over(&store), ROOT_INO).await,
        ["empty.txt", "xdir"]
    );
    // mkdir is unchanged: a `dir/` marker.
    fs.mkdir(ROOT_INO, OsStr::new("made"), 0o755, 0)
        .await
        .unwrap();
    assert!(store.keys().contains(&"made/".to_string()));
}
