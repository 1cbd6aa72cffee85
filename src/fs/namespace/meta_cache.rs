//! Completing listed entries from the disk cache's metadata store instead of a HEAD.
//!
//! Design note: with `--cache DIR`, every object's headers learned from S3 (a HEAD, or the
//! GET standing in for one: [`Namespace::record_object`], [`Namespace::refresh`]) are kept in
//! the [`MetaCache`] under DIR. A listing tells each object's ETag and Last-Modified, which
//! name its current version; when the store holds the headers of exactly that version, the
//! entry is recorded complete at once, as the HEAD would have completed it, and `ls -l` after a
//! remount sends the LIST and no HEAD. Headers are never served without S3's word on the
//! current version:
//! - a **lookup without a listing** (`cat dir/file` right after a remount) still asks S3 —
//!   the version may have changed while unmounted. The store tells the ETag seen last, so
//!   when block 0 of that version is in the disk cache the probe is a HEAD rather than a GET
//!   of the first block ([`super::probe::Probe::headers`]); an unchanged object is then read
//!   with 0 GETs, and a changed one is seen by that HEAD;
//! - **subdirectories' markers** are not in their parent's listing (only their prefix is), so
//!   their ETag is unknown there and they are HEADed as before;
//! - s3fs **directory objects** (`dir` with no slash) found in the store are left to their
//!   HEAD (they change the entry's key and kind);
//! - headers this mount made up after its own CopyObject ([`Namespace::refresh_written`],
//!   whose Last-Modified only S3 knows) are not stored.

use std::collections::HashMap;
use std::sync::Arc;

use super::listing::Listed;
use super::Namespace;
use crate::data::disk_cache::meta::MetaCache;
use crate::fs::attr::{kind_from_mode, stat_from_meta};
use crate::fs::inode::{finer, Entry, Kind};
use crate::storage::ObjectMeta;

/// Headers found in the store for the files of a listing, by name.
pub(super) type Cached = HashMap<String, ObjectMeta>;

impl Namespace {
    /// Uses `cache` for the headers of objects (once, before the mount serves).
    pub fn set_meta_cache(&self, cache: Arc<MetaCache>) {
        let _ = self.meta_cache.set(cache);
    }

    /// Keeps the headers S3 answered for `key`.
    pub(super) fn remember_headers(&self, key: &str, meta: &ObjectMeta) {
        if let Some(cache) = self.meta_cache.get() {
            cache.put(key, meta);
        }
    }

    /// The headers the store holds for the current version of each file of `items`.
    pub(super) async fn cached_headers(&self, items: &[Listed]) -> Cached {
        let Some(cache) = self.meta_cache.get().cloned() else {
            return Cached::new();
        };
        let wanted: Vec<_> = items
            .iter()
            .filter_map(|l| match l {
                Listed::File(name, o) => Some((name.clone(), o.clone())),
                Listed::Dir(..) => None,
            })
            .collect();
        if wanted.is_empty() {
            return Cached::new();
        }
        let found = tokio::task::spawn_blocking(move || {
            let get = |(name, o): (String, crate::storage::ListedObject)| {
                Some((name, cache.get(&o.key, &o.etag, o.last_modified)?))
            };
            wanted.into_iter().filter_map(get).collect::<Cached>()
        });
        found.await.unwrap_or_default()
    }

    /// The ETag of the version of `key` whose headers were seen last, if the store has it: a
    /// hint for which request to send, never an answer.
    pub(super) async fn last_seen_etag(&self, key: &str) -> Option<String> {
        let cache = self.meta_cache.get()?.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || cache.last_etag(&key))
            .await
            .ok()
            .flatten()
    }
}

/// `entry`, a file as a listing described it, completed with the stored headers `cached` of
/// the same version when there are some — exactly as a HEAD completing it would have (see
/// the table's update of an unchanged object: the listing's finer times are kept).
pub(super) fn with_cached_headers(entry: Entry, cached: Option<&ObjectMeta>) -> Entry {
    let Some(meta) = cached else {
        return entry;
    };
    if entry.kind != Kind::File || super::is_dir_object(meta) {
        return entry;
    }
    let mut stat = stat_from_meta(meta);
    let kind = kind_from_mode(stat.mode);
    if kind == Kind::File {
        stat.mtime = finer(entry.stat.mtime, stat.mtime);
        stat.ctime = finer(entry.stat.ctime, stat.ctime);
    }
    Entry::known(kind, entry.key, stat, Some(Arc::new(meta.clone())))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;
    use crate::config::FsConfig;
    use crate::fs::inode::ROOT_INO;
    use crate::storage::mem::MemStore;
    use crate::storage::{ObjectStore, PutOptions};

    fn s3fs_opts(mode: u32) -> PutOptions {
        let mut o = PutOptions::default();
        for (k, v) in [("mode", mode.to_string()), ("uid", "1234".into())] {
            o.metadata.insert(k.into(), v);
        }
        o.metadata.insert("mtime".into(), "1700000000".into());
        o
    }

    /// Lists the root and stats every entry, as `ls -l` does; returns (name, mode, uid, mtime).
    async fn ls_l(fs: &crate::fs::S3Fs) -> Vec<(String, u16, u32, std::time::SystemTime)> {
        let fh = fs.opendir(ROOT_INO).unwrap();
        let names: Vec<String> = fs.readdir(fh, 0).await.unwrap()[2..]
            .iter()
            .map(|e| e.name.clone())
            .collect();
        fs.releasedir(fh);
        let mut out = Vec::new();
        for n in names {
            let a = fs.lookup(ROOT_INO, OsStr::new(&n)).await.unwrap();
            out.push((n, a.perm, a.uid, a.mtime));
        }
        out
    }

    /// HEADs and GETs the store has answered.
    fn probes(store: &MemStore) -> u64 {
        store.count("head") + store.count("get")
    }

    #[tokio::test]
    async fn a_second_mount_completes_listed_files_from_the_store() {
        let store = Arc::new(MemStore::new());
        store.insert("plain", vec![1u8; 100 << 10]);
        store.insert_with("s3fs", vec![7u8; 100 << 10], s3fs_opts(0o100640), vec![]);
        store.insert_with("link", "plain", s3fs_opts(0o120777), vec![]);
        let dir = tempfile::tempdir().unwrap();
        let mount = || {
            let roomy = |_: &std::path::Path| {
                Ok(crate::data::disk_cache::Space {
                    total: 100,
                    available: 50,
                })
            };
            let cache =
                MetaCache::open_with_probe(dir.path(), "src", 1 << 30, Box::new(roomy)).unwrap();
            let dyn_store = store.clone() as Arc<dyn ObjectStore>;
            let fs = crate::fs::test_fs::test_fs(dyn_store, FsConfig::default());
            fs.set_meta_cache(cache.clone());
            (fs, cache)
        };
        let (fs, cache) = mount();
        let before = ls_l(&fs).await;
        assert_eq!(before[0].1, 0o777, "{before:?}");
        assert_eq!((before[2].1, before[2].2), (0o640, 1234));
        cache.flush_and_stop();
        drop((fs, cache));
        let asked = probes(&store);
        let (fs, cache) = mount();
        let after = ls_l(&fs).await;
        assert_eq!(after, before);
        assert_eq!(probes(&store), asked, "no HEAD (or GET) after the remount");
        let hits = cache
            .counters()
            .hits
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(hits, 3);
        cache.flush_and_stop();
        drop((fs, cache));
        // Another client changes one object: its new headers are asked for, not the stored.
        store.insert_with("s3fs", vec![8u8; 100 << 10], s3fs_opts(0o100600), vec![]);
        let asked = probes(&store);
        let (fs, _cache) = mount();
        let again = ls_l(&fs).await;
        assert_eq!(
            probes(&store),
            asked + 1,
            "one request for the changed object"
        );
        assert_eq!(again[2].1, 0o600, "the changed object's new mode");
        assert_eq!(again[..2], before[..2], "the unchanged ones");
    }
}
