//! A read-only handle: one object version at a time, the current one until a byte is returned.
//!
//! Design note: a handle opened read-only reads through an [`ObjectReader`] bound to the ETag
//! the inode table knew at open, and every GET carries `If-Match`. Within the metadata TTL the
//! object may have been overwritten behind the mount's back: the first GET then fails with
//! 412 (ESTALE). A handle that has returned no byte yet has promised nothing about the
//! version, so it asks S3 once more (a probe of the key), records the new version in the inode
//! table, and reads through a new reader bound to it. Once a byte has been returned, a change
//! still fails the read with ESTALE: one handle never returns bytes of two versions.
//!
//! The reader and the "returned a byte" flag sit behind one lock. A read marks the flag only
//! if the reader it used is still the handle's, and the reader is swapped only while the flag
//! is clear: bytes that raced an adoption are read again from the new version, never returned.
//!
//! The kernel holds a version too, in its page cache and its idea of the size:
//! - a handle opened with `FOPEN_KEEP_CACHE` may have been served pages of the old version
//!   without asking us: it never adopts;
//! - a handle that reads through the page cache adopts only while no other handle has put
//!   pages there since its open (the inode's cache epoch unchanged), and makes the new version
//!   the cached one;
//! - the kernel cuts cached reads at the size it believes. When the version grew (or kept its
//!   size), the inode's attributes are dropped ([`KernelCache`]) before any byte of it is
//!   returned, so the next read past the old end asks `getattr` (and drops the pages read so
//!   far) and sees the new size. When it shrank, the short read itself makes the kernel shrink
//!   the file; dropping the attributes first would stop that.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tracing::{debug, info};

use super::super::inode::Inode;
use super::super::namespace::Namespace;
use super::{CacheMode, Files};
use crate::data::prefetch::ObjectReader;
use crate::error::{FsError, FsResult};
use crate::storage::ObjectMeta;

/// Versions one handle adopts at most for one read (an object rewritten without pause).
const MAX_ADOPTIONS: u32 = 3;

/// The kernel's caches of what the filesystem told it, as far as the core may drop them.
pub trait KernelCache: Send + Sync {
    /// Drops the kernel's cached attributes of `ino` (not its pages).
    fn invalidate_attrs(&self, ino: u64);
}

/// An open read-only handle.
pub(super) struct ReadHandle {
    /// The inode read.
    pub ino: u64,
    /// How the kernel uses its page cache for this handle.
    mode: CacheMode,
    /// The inode's cache epoch right after this handle's open (page-cached handles).
    epoch: u64,
    state: Mutex<State>,
    /// One adoption at a time: reads failing together wait for one probe.
    adopting: tokio::sync::Mutex<()>,
}

struct State {
    reader: Arc<ObjectReader>,
    /// Whether any byte has been returned (or may have been, from the kernel's page cache).
    returned: bool,
}

impl ReadHandle {
    /// A handle of `ino` reading through `reader`, opened with page cache `mode` at `epoch`.
    pub fn new(ino: u64, reader: ObjectReader, mode: CacheMode, epoch: u64) -> Self {
        ReadHandle {
            ino,
            mode,
            epoch,
            state: Mutex::new(State {
                reader: Arc::new(reader),
                returned: mode == CacheMode::Keep,
            }),
            adopting: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether it reads through the kernel's page cache (not direct I/O).
    pub fn cached(&self) -> bool {
        self.mode != CacheMode::Direct
    }

    /// Reads up to `size` bytes at `offset`, adopting the object's current version while no
    /// byte has been returned.
    pub async fn read(&self, files: &Files, offset: u64, size: u32) -> FsResult<Bytes> {
        let mut adoptions = 0;
        loop {
            let reader = self.state.lock().unwrap().reader.clone();
            let result = reader.read(offset, size).await;
            {
                let mut st = self.state.lock().unwrap();
                if !Arc::ptr_eq(&st.reader, &reader) {
                    continue; // another read adopted a newer version meanwhile: read that
                }
                match result {
                    Ok(bytes) => {
                        st.returned |= !bytes.is_empty();
                        return Ok(bytes);
                    }
                    Err(e)
                        if e.errno == libc::ESTALE && !st.returned && adoptions < MAX_ADOPTIONS => {
                    }
                    Err(e) => {
                        drop(st);
                        if e.errno == libc::ESTALE {
                            self.give_up(files, &reader);
                        }
                        return Err(e);
                    }
                }
            }
            adoptions += 1;
            if let Err(e) = self.adopt(files, &reader).await {
                if e.errno == libc::ESTALE {
                    self.give_up(files, &reader);
                }
                return Err(e);
            }
        }
    }

    /// After this handle failed with ESTALE: the table's version of the inode (if it is still
    /// `stale`'s) and what the kernel caches of its attributes are out of date, so the next
    /// open asks S3 again instead of failing the same way until the TTL passes.
    fn give_up(&self, files: &Files, stale: &ObjectReader) {
        let expired = {
            let mut table = files.ns.table();
            match table.get_mut(self.ino) {
                Some(n) if n.stat.etag.as_deref() == Some(stale.etag()) => {
                    n.valid_until = std::time::Instant::now();
                    true
                }
                _ => false,
            }
        };
        if let (true, Some(kernel)) = (expired, files.kernel.get()) {
            kernel.invalidate_attrs(self.ino);
        }
    }

    /// Replaces `stale` (whose version S3 no longer has) by a reader of the current version,
    /// unless another read did so first or a byte has been returned since.
    async fn adopt(&self, files: &Files, stale: &Arc<ObjectReader>) -> FsResult<()> {
        let _turn = self.adopting.lock().await;
        if !Arc::ptr_eq(&self.state.lock().unwrap().reader, stale) {
            return Ok(());
        }
        let changed = || FsError::new(libc::ESTALE, "the object changed since it was opened");
        let (key, old) = (stale.key(), stale.etag());
        let meta = match files.ns.probe().headers(key, u64::MAX, Some(old)).await {
            Ok(meta) => meta,
            Err(e) if e.is_not_found() => {
                forget(&files.ns, self.ino, key);
                return Err(changed());
            }
            Err(e) => return Err(e.into()),
        };
        if meta.etag == old || meta.etag.is_empty() {
            return Err(changed()); // nothing to adopt that If-Match would accept
        }
        let (etag, size) = (meta.etag.clone(), meta.size);
        let reader = ObjectReader::new(files.read_ctx.clone(), key, &etag, size);
        {
            let mut st = self.state.lock().unwrap();
            if st.returned || !self.take_page_cache(&files.ns, old, &etag, size) {
                return Err(changed());
            }
            record_version(&files.ns, self.ino, key, meta);
            st.reader = Arc::new(reader);
        }
        info!(ino = self.ino, key, old, new = %etag, size, "adopted the object's new version");
        if self.mode == CacheMode::Direct || size >= stale.size() {
            if let Some(kernel) = files.kernel.get() {
                kernel.invalidate_attrs(self.ino);
            }
        }
        Ok(())
    }

    /// Makes version `new` the one in the kernel's page cache of the inode, if this handle may:
    /// always when it bypasses the page cache; else only while the cache holds `old` pages put
    /// there by this handle alone.
    fn take_page_cache(&self, ns: &Namespace, old: &str, new: &str, size: u64) -> bool {
        if self.mode == CacheMode::Direct {
            return true;
        }
        let mut table = ns.table();
        let Some(f) = table.get_mut(self.ino).and_then(Inode::file_mut) else {
            return false;
        };
        if f.cache_epoch != self.epoch || f.cache_etag.as_deref() != Some(old) {
            debug!(ino = self.ino, "page cache shared since open: not adopting");
            return false;
        }
        f.cache_etag = Some(new.to_string());
        f.cache_size = size;
        true
    }
}

/// Records the new version `meta` of `key` for inode `ino`, if the inode still names `key`.
fn record_version(ns: &Namespace, ino: u64, key: &str, meta: ObjectMeta) {
    let Ok(node) = ns.node(ino) else {
        return;
    };
    let named = ns
        .table()
        .child(node.parent, &node.name)
        .is_some_and(|c| c.ino == ino);
    if named && node.key == key {
        ns.refresh(&node, Arc::new(meta));
    }
}

/// Forgets the name of inode `ino` (if it still names `key`): its object is gone.
fn forget(ns: &Namespace, ino: u64, key: &str) {
    let mut table = ns.table();
    let Some((parent, name)) = table
        .get(ino)
        .filter(|n| n.key == key)
        .map(|n| (n.parent, n.name.clone()))
    else {
        return;
    };
    if table.child(parent, &name).is_some_and(|c| c.ino == ino) {
        table.forget_child(parent, &name);
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::super::inode::ROOT_INO;
    use super::super::super::{CacheMode, S3Fs};
    use crate::config::{FsConfig, ReadConfig};
    use crate::storage::mem::MemStore;
    use crate::storage::ObjectStore;

    /// A filesystem with 1 KiB blocks and a cache of four of them, and a long TTL.
    fn small_cache_fs(store: &Arc<MemStore>) -> crate::fs::test_fs::TestFs {
        let config = FsConfig {
            metadata_ttl: Duration::from_secs(60),
            read: ReadConfig {
                cache_bytes: 4096,
                block_size: 1024,
                part_size: 1024,
                max_window: 2048,
                initial_window: 1024,
                ..ReadConfig::default()
            },
            ..FsConfig::default()
        };
        crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, config)
    }

    /// Writes `body` to `name` through the mount, as `echo body > name` does.
    async fn write_through(fs: &S3Fs, name: &str, body: &[u8]) -> u64 {
        let (attr, fh) = fs
            .create(ROOT_INO, OsStr::new(name), 0o644, libc::O_WRONLY, 0)
            .await
            .unwrap();
        fs.write(fh, 0, body).await.unwrap();
        fs.flush(fh, 0).await.unwrap();
        fs.release(fh).await;
        attr.ino.0
    }

    #[tokio::test]
    async fn a_handle_that_returned_nothing_reads_the_new_version() {
        let store = Arc::new(MemStore::new());
        let fs = small_cache_fs(&store);
        let ino = write_through(&fs, "f", b"old\n").await;
        let new = b"the new version, longer than the old one\n";
        store.insert("f", &new[..]);
        // The table still holds the old version (fresh for the TTL): the open asks nothing.
        let (fh, mode) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!(mode, CacheMode::Invalidate);
        assert_eq!(&fs.read(fh, 0, 4096).await.unwrap()[..], &new[..]);
        fs.release(fh).await;
        // The table learned the new version: stat and the next open agree with it.
        assert_eq!(fs.getattr(ino).await.unwrap().size, new.len() as u64);
        let gets = store.count("get");
        let (fh, mode) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!(
            mode,
            CacheMode::Keep,
            "the cached pages are the new version's"
        );
        assert_eq!(&fs.read(fh, 0, 4096).await.unwrap()[..], &new[..]);
        assert_eq!(store.count("get"), gets, "read from the block cache");
        fs.release(fh).await;
    }

    #[tokio::test]
    async fn a_handle_that_returned_bytes_fails_with_estale_and_never_mixes() {
        let store = Arc::new(MemStore::new());
        let old: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        store.insert("big", old.clone());
        let fs = small_cache_fs(&store);
        let ino = fs.lookup(ROOT_INO, OsStr::new("big")).await.unwrap().ino.0;
        let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!(&fs.read(fh, 0, 1024).await.unwrap()[..], &old[..1024]);
        store.insert("big", vec![7u8; 64 * 1024]);
        let err = fs.read(fh, 32 * 1024, 1024).await.unwrap_err();
        assert_eq!(err.errno, libc::ESTALE);
        // Still failing, never the new bytes, for the rest of this handle's life.
        let err = fs.read(fh, 48 * 1024, 1024).await.unwrap_err();
        assert_eq!(err.errno, libc::ESTALE);
        fs.release(fh).await;
        // The next open (within the TTL) asks S3 again and reads the new version.
        let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!(&fs.read(fh, 32 * 1024, 16).await.unwrap()[..], &[7u8; 16]);
        fs.release(fh).await;
    }

    #[tokio::test]
    async fn a_handle_sharing_the_page_cache_does_not_adopt() {
        let store = Arc::new(MemStore::new());
        let fs = small_cache_fs(&store);
        let ino = write_through(&fs, "f", b"old\n").await;
        let (a, mode_a) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        let (b, mode_b) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!((mode_a, mode_b), (CacheMode::Invalidate, CacheMode::Keep));
        store.insert("f", &b"new content"[..]);
        // `b` may have been served the old version's pages by the kernel without asking, and
        // `a` shares those pages: neither may switch to the new version.
        assert_eq!(fs.read(b, 0, 4096).await.unwrap_err().errno, libc::ESTALE);
        assert_eq!(fs.read(a, 0, 4096).await.unwrap_err().errno, libc::ESTALE);
        fs.release(a).await;
        fs.release(b).await;
    }

    #[tokio::test]
    async fn a_direct_handle_adopts_while_another_reads_the_old_version() {
        let store = Arc::new(MemStore::new());
        let old: Vec<u8> = (0..8 * 1024).map(|i| (i % 251) as u8).collect();
        store.insert("f", old.clone());
        let fs = small_cache_fs(&store);
        let ino = fs.lookup(ROOT_INO, OsStr::new("f")).await.unwrap().ino.0;
        let (a, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!(&fs.read(a, 0, 16).await.unwrap()[..], &old[..16]);
        // Another version, which a second open learns (the entry expired): its pages cannot
        // share the page cache with the first handle's, so it gets direct I/O.
        store.insert("f", vec![8u8; 50]);
        fs.ns.table().get_mut(ino).unwrap().valid_until = std::time::Instant::now();
        let (b, mode) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!(mode, CacheMode::Direct);
        // A third version, which the table has not seen: a third handle is opened on the
        // second, with direct I/O too, and adopts the third at its first read.
        store.insert("f", vec![9u8; 100]);
        let (c, mode) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
        assert_eq!(mode, CacheMode::Direct);
        assert_eq!(&fs.read(c, 0, 4096).await.unwrap()[..], &[9u8; 100]);
        // While the first handle reads the old version through the page cache, the kernel
        // keeps that version's size: a read past the new end must not come back padded.
        assert_eq!(fs.getattr(ino).await.unwrap().size, 8 * 1024);
        // The second handle, which has returned nothing yet either, follows; the first, which
        // returned old bytes, does not.
        assert_eq!(&fs.read(b, 0, 4096).await.unwrap()[..], &[9u8; 100]);
        // The first handle, which returned old bytes, does not follow.
        assert_eq!(fs.read(a, 4096, 16).await.unwrap_err().errno, libc::ESTALE);
        fs.release(a).await;
        assert_eq!(fs.getattr(ino).await.unwrap().size, 100, "then the newest");
        fs.release(b).await;
        fs.release(c).await;
    }
}
