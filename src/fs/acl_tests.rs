//! Unit tests of default-ACL inheritance over the in-memory store: what a new node's mode and
//! ACLs are, what is stored, and how many requests reading the directory's default ACL costs.
//! The same is proven through a real mount in `tests/acl_inherit.rs`.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use super::acl::{self, Entry, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ};
use super::inode::ROOT_INO;
use super::s3fs_xattr::{self, ACL_ACCESS, ACL_DEFAULT, HEADER};
use super::{Caller, S3Fs};
use crate::config::FsConfig;
use crate::storage::mem::MemStore;
use crate::storage::ObjectStore;

fn fs_over(store: &Arc<MemStore>) -> crate::fs::test_fs::TestFs {
    let config = FsConfig {
        metadata_ttl: Duration::from_secs(60),
        ..FsConfig::default()
    };
    crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, config)
}

/// A creating process with umask `umask`.
fn with_umask(umask: u32) -> Caller {
    Caller {
        umask,
        ..Caller::default()
    }
}

/// What `setfacl -d -m u:65534:rwx` sets on a 0755 directory.
fn default_acl() -> Vec<u8> {
    let e = |tag, perm, id| Entry { tag, perm, id };
    acl::to_bytes(&[
        e(USER_OBJ, 7, u32::MAX),
        e(USER, 7, 65534),
        e(GROUP_OBJ, 5, u32::MAX),
        e(MASK, 7, u32::MAX),
        e(OTHER, 5, u32::MAX),
    ])
}

fn named_entry(value: &[u8]) -> Option<Entry> {
    acl::parse(value)
        .unwrap()
        .into_iter()
        .find(|e| e.tag == USER && e.id == 65534)
}

/// The stored attributes of object `key`.
async fn stored(store: &MemStore, key: &str) -> s3fs_xattr::Xattrs {
    s3fs_xattr::read(&store.head(key).await.unwrap().metadata)
}

/// Directory `d` (made here) with the default ACL above.
async fn dir_with_default(fs: &S3Fs) -> u64 {
    let d = fs.mkdir(ROOT_INO, OsStr::new("d"), 0o755, 0).await.unwrap();
    let d = d.ino.0;
    fs.setxattr(d, OsStr::new(ACL_DEFAULT), &default_acl(), 0)
        .await
        .unwrap();
    d
}

#[tokio::test]
async fn new_nodes_inherit_the_default_acl_instead_of_the_umask() {
    let store = Arc::new(MemStore::new());
    let fs = fs_over(&store);
    let d = dir_with_default(&fs).await;

    let (attr, fh) = fs
        .create(d, OsStr::new("f"), 0o666, libc::O_WRONLY, with_umask(0o077))
        .await
        .unwrap();
    assert_eq!(attr.perm, 0o664, "masked by the ACL, not by the umask");
    let access = fs
        .getxattr(attr.ino.0, OsStr::new(ACL_ACCESS))
        .await
        .unwrap();
    assert_eq!(named_entry(&access).unwrap().perm, 7);
    assert!(fs
        .getxattr(attr.ino.0, OsStr::new(ACL_DEFAULT))
        .await
        .is_err());
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    let f = stored(&store, "d/f").await;
    assert_eq!(f[ACL_ACCESS], access, "uploaded with the object");
    assert!(!f.contains_key(ACL_DEFAULT));

    let sub = fs
        .mkdir(d, OsStr::new("sub"), 0o777, with_umask(0o077))
        .await
        .unwrap();
    assert_eq!(sub.perm, 0o775);
    let s = stored(&store, "d/sub/").await;
    assert_eq!(s[ACL_DEFAULT], default_acl(), "a directory passes it on");
    assert_eq!(
        acl::mode_bits(&acl::parse(&s[ACL_ACCESS]).unwrap()).unwrap(),
        0o775
    );
    // ... to its own children, two levels down.
    let deep = fs
        .mknod(
            sub.ino.0,
            OsStr::new("fifo"),
            libc::S_IFIFO | 0o640,
            0,
            with_umask(0o077),
        )
        .await
        .unwrap();
    assert_eq!(deep.perm, 0o640);
    let fifo = stored(&store, "d/sub/fifo").await;
    assert_eq!(named_entry(&fifo[ACL_ACCESS]).unwrap().perm, 7);

    let link = fs
        .symlink(d, OsStr::new("l"), b"f", with_umask(0o077))
        .await
        .unwrap();
    assert_eq!(link.perm, 0o777);
    let meta = store.head("d/l").await.unwrap();
    assert!(!meta.metadata.contains_key(HEADER), "symlinks have no ACL");
}

#[tokio::test]
async fn without_a_default_acl_the_umask_applies_and_nothing_is_stored() {
    let store = Arc::new(MemStore::new());
    let fs = fs_over(&store);
    let d = fs
        .mkdir(ROOT_INO, OsStr::new("d"), 0o777, with_umask(0o022))
        .await
        .unwrap();
    assert_eq!(d.perm, 0o755);
    let (attr, fh) = fs
        .create(
            d.ino.0,
            OsStr::new("f"),
            0o666,
            libc::O_WRONLY,
            with_umask(0o027),
        )
        .await
        .unwrap();
    assert_eq!(attr.perm, 0o640);
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    let node = fs
        .mknod(
            d.ino.0,
            OsStr::new("n"),
            libc::S_IFREG | 0o666,
            0,
            with_umask(0o002),
        )
        .await
        .unwrap();
    assert_eq!(node.perm, 0o664);
    assert_eq!(
        store.count("head"),
        0,
        "a directory made here has known headers"
    );
    for key in ["d/", "d/f", "d/n"] {
        let meta = store.head(key).await.unwrap();
        assert!(!meta.metadata.contains_key(HEADER), "{key}");
    }
}

#[tokio::test]
async fn the_default_acl_costs_at_most_one_head_and_none_once_known() {
    let store = Arc::new(MemStore::new());
    let fs = fs_over(&store);
    let d = dir_with_default(&fs).await;
    // Its marker was just rewritten here: its headers are known.
    let heads = store.count("head");
    for name in ["a", "b"] {
        fs.mknod(d, OsStr::new(name), libc::S_IFREG | 0o644, 0, 0)
            .await
            .unwrap();
    }
    assert_eq!(store.count("head"), heads, "no request for the default ACL");

    // Another mount: the lookup HEADs the marker, and creation reuses its answer.
    let fs = fs_over(&store);
    let d = fs.lookup(ROOT_INO, OsStr::new("d")).await.unwrap().ino.0;
    let heads = store.count("head");
    let c = fs
        .mknod(
            d,
            OsStr::new("c"),
            libc::S_IFREG | 0o600,
            0,
            with_umask(0o077),
        )
        .await
        .unwrap();
    assert_eq!(store.count("head"), heads, "no request for the default ACL");
    assert_eq!(c.perm, 0o600);
    assert!(named_entry(&stored(&store, "d/c").await[ACL_ACCESS]).is_some());

    // A directory without a marker has no default ACL, and asking costs nothing.
    store.insert("bare/x", "1");
    let bare = fs.lookup(ROOT_INO, OsStr::new("bare")).await.unwrap().ino.0;
    let heads = store.count("head");
    let n = fs
        .mknod(
            bare,
            OsStr::new("n"),
            libc::S_IFREG | 0o666,
            0,
            with_umask(0o022),
        )
        .await
        .unwrap();
    assert_eq!(n.perm, 0o644);
    assert_eq!(store.count("head"), heads);
}
