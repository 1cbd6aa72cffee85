//! The namespace: the inode table, and how names become inodes (lookup, getattr, listings).
//!
//! Design note: [`Namespace`] owns the [`InodeTable`] (one `std::sync::Mutex`, never held
//! across an `.await`), the open directory handles and the listings in flight for lookups. It
//! asks S3 through the [`Probe`] (a GET of the first block standing in for a HEAD) and
//! `ListObjectsV2`; it reads the [`Writes`] registry only to know which files are being
//! written (their attributes are local). Namespace rules:
//! - a directory is a common prefix (`a/…` exists) or a marker object (`a/`), or one of
//!   s3fs's older forms: a `a_$folder$` object (also Hadoop's), known by its name from a
//!   listing, or an object `a` (no slash) whose Content-Type is `application/x-directory` or
//!   whose s3fs mode says directory, known once its headers are: a listing cannot tell it
//!   from an empty file and asks nothing more, so it lists as one (unless it has children,
//!   which make it a directory by its prefix) until a lookup reads its headers (a zero-byte
//!   object is completed with a HEAD when looked up);
//! - when a file `a` and a directory `a/` both exist, the directory wins and the file is
//!   hidden (as Mountpoint does): a directory can hold many objects, a shadowed file only one;
//! - what was learned is fresh for the metadata TTL, and so are negative answers.
//!
//! `lookup.rs` answers names, `listing.rs` lists directories, `flight.rs` shares one listing
//! among the lookups that need it at once, `probe.rs` asks about objects.

mod ahead;
mod flight;
mod listing;
mod lookup;
mod meta_cache;
pub mod probe;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Instant, SystemTime};

use fuser::FileAttr;

use super::attr::{file_attr, kind_from_mode, stat_from_meta};
use super::inode::{AttrSource, Entry, Inode, InodeTable, Kind, Stat};
use super::writes::Writes;
use crate::config::FsConfig;
use crate::error::{FsError, FsResult};
use crate::storage::{ObjectMeta, ObjectStore, PutOptions, StoreError};
pub use listing::DirEntry;
use listing::DirHandle;
use probe::Probe;

/// What a directory's marker (or its absence) says.
struct DirAttrs {
    stat: Stat,
    source: AttrSource,
    meta: Option<Arc<ObjectMeta>>,
}

impl DirAttrs {
    /// Puts these attributes on directory `node`.
    fn apply(self, node: &mut Inode) {
        node.stat = self.stat;
        node.source = self.source;
        node.meta = self.meta;
    }
}

/// An open directory handle: the directory's inode, and the handle's listing state.
type OpenDir = (u64, Arc<tokio::sync::Mutex<DirHandle>>);

/// The namespace component.
pub struct Namespace {
    store: Arc<dyn ObjectStore>,
    config: Arc<FsConfig>,
    table: Mutex<InodeTable>,
    /// Open directory handles by handle number.
    dirs: Mutex<HashMap<u64, OpenDir>>,
    /// The listings in flight for lookups that missed, one per directory.
    flights: flight::Flights,
    next_dir_handle: AtomicU64,
    probe: Probe,
    writes: Arc<Writes>,
    /// When the mount started: the stable time of directories without a marker.
    started: SystemTime,
    /// Completions running ahead of `ls -l`'s stats.
    ahead: ahead::Ahead,
    /// This namespace, for the tasks it spawns.
    me: Weak<Namespace>,
    /// Headers kept on disk (`--cache DIR`), if any.
    meta_cache: OnceLock<Arc<crate::data::disk_cache::meta::MetaCache>>,
}

impl Namespace {
    /// A namespace rooted at `config.prefix`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        config: Arc<FsConfig>,
        probe: Probe,
        writes: Arc<Writes>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Namespace {
            table: Mutex::new(InodeTable::new(&config.prefix)),
            store,
            config,
            dirs: Mutex::new(HashMap::new()),
            flights: flight::Flights::default(),
            next_dir_handle: AtomicU64::new(1),
            probe,
            writes,
            started: SystemTime::now(),
            ahead: ahead::Ahead::default(),
            me: me.clone(),
            meta_cache: OnceLock::new(),
        })
    }

    /// The inode table, locked. Never hold it across an `.await`.
    pub fn table(&self) -> MutexGuard<'_, InodeTable> {
        self.table.lock().unwrap()
    }

    /// The metadata probe.
    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    /// A copy of inode `ino`, or ESTALE.
    pub fn node(&self, ino: u64) -> FsResult<Inode> {
        self.table()
            .get(ino)
            .cloned()
            .ok_or_else(|| FsError::new(libc::ESTALE, format!("unknown inode {ino}")))
    }

    /// A copy of directory inode `ino`, or ENOTDIR.
    pub fn dir_node(&self, ino: u64) -> FsResult<Inode> {
        let node = self.node(ino)?;
        if !node.is_dir() {
            return Err(FsError::new(libc::ENOTDIR, "not a directory"));
        }
        Ok(node)
    }

    /// What `stat` shows for `node`.
    pub fn attr_of(&self, node: &Inode) -> FileAttr {
        file_attr(node, &self.config)
    }

    /// What `stat` shows for `ino` as the table knows it now.
    pub fn attr(&self, ino: u64) -> FsResult<FileAttr> {
        Ok(self.attr_of(&self.node(ino)?))
    }

    /// Whether the kernel may cache `node`'s attributes: not while a subdirectory's marker,
    /// or (unless listings are trusted) a file's headers, are still unknown.
    pub fn attr_known(&self, node: &Inode) -> bool {
        !node.is_partial() || (!node.is_dir() && self.config.trust_listing_attrs)
    }

    /// The deadline of what is learned now.
    pub fn valid_until(&self) -> Instant {
        Instant::now() + self.config.metadata_ttl
    }

    /// Records `entry` as `name` in `parent`, fresh for the TTL; returns its attributes.
    pub fn record(&self, parent: u64, name: &str, entry: Entry) -> FileAttr {
        let mut table = self.table();
        let ino = table.upsert(parent, name, entry, self.valid_until());
        self.attr_of(table.get(ino).expect("just recorded"))
    }

    /// Records that `name` in `parent` does not exist, for the TTL.
    pub fn record_absent(&self, parent: u64, name: &str) {
        self.table().set_negative(parent, name, self.valid_until());
    }

    /// Records what S3 answered about the object `key`, named `name` in `parent`: its
    /// attributes (a file, or an s3fs symlink by its mode) or, for "not found", a negative
    /// entry; both fresh for the TTL.
    pub fn record_object(
        &self,
        parent: u64,
        name: &str,
        key: String,
        answer: Result<ObjectMeta, StoreError>,
    ) -> FsResult<FileAttr> {
        match answer {
            Ok(meta) => {
                self.remember_headers(&key, &meta);
                let stat = stat_from_meta(&meta);
                if is_dir_object(&meta) {
                    return Ok(self.record_dir_object(parent, name, key, stat));
                }
                let kind = kind_from_mode(stat.mode);
                let entry = Entry::known(kind, key, stat, Some(Arc::new(meta)));
                Ok(self.record(parent, name, entry))
            }
            Err(e) if e.is_not_found() => {
                self.record_absent(parent, name);
                Err(FsError::not_found())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records the object `key` (no slash), which its headers `stat` say is a directory, as
    /// directory `name` in `parent`: its children are the keys under `key/`.
    fn record_dir_object(&self, parent: u64, name: &str, key: String, stat: Stat) -> FileAttr {
        let entry = Entry::known(Kind::Dir, format!("{key}/"), Stat { size: 0, ..stat }, None);
        let mut table = self.table();
        let ino = table.upsert(parent, name, entry, self.valid_until());
        if let Some(d) = table.dir_mut(ino) {
            d.stand_in = Some(key);
        }
        self.attr_of(table.get(ino).expect("just recorded"))
    }

    /// Records the headers `meta` of a version of `node`'s object that this mount has just
    /// written by a copy (whose Last-Modified only S3 knows), for the TTL.
    pub fn refresh_written(&self, node: &Inode, meta: Arc<ObjectMeta>) {
        self.record_headers(node, meta);
        if let Some(n) = self.table().get_mut(node.ino) {
            n.stat.modified = None;
        }
    }

    /// Records fresh headers `meta` of `node`'s object (its kind kept), as S3 answered them,
    /// for the TTL.
    pub fn refresh(&self, node: &Inode, meta: Arc<ObjectMeta>) {
        self.remember_headers(&node.key, &meta);
        self.record_headers(node, meta);
    }

    /// Records headers `meta` of `node`'s object (its kind kept) for the TTL.
    fn record_headers(&self, node: &Inode, meta: Arc<ObjectMeta>) {
        let entry = Entry::known(
            node.kind(),
            node.key.clone(),
            stat_from_meta(&meta),
            Some(meta),
        );
        self.table()
            .upsert(node.parent, &node.name, entry, self.valid_until());
    }

    /// Records the object a commit of `ino` produced.
    pub fn record_commit(&self, ino: u64, meta: &ObjectMeta) {
        let until = self.valid_until();
        if let Some(n) = self.table().get_mut(ino) {
            n.stat = stat_from_meta(meta);
            // Our clock, not S3's: the next listing tells the real Last-Modified.
            n.stat.modified = None;
            n.source = AttrSource::Headers;
            n.meta = None;
            n.tags = None;
            n.valid_until = until;
        }
    }

    /// Records a staged file's new size, written now.
    pub fn note_local_size(&self, ino: u64, size: u64) {
        let now = SystemTime::now();
        if let Some(n) = self.table().get_mut(ino) {
            n.stat.size = size;
            n.stat.mtime = now;
            n.stat.ctime = now;
        }
    }

    /// Reflects the s3fs attributes of `opts` into the inode's stat.
    pub fn note_attrs(&self, ino: u64, opts: &PutOptions) {
        let stored = super::attr::stat_from_metadata(&opts.metadata, SystemTime::UNIX_EPOCH);
        let has = |k: &str| opts.metadata.contains_key(k);
        if let Some(n) = self.table().get_mut(ino) {
            n.stat.mode = stored.mode.or(n.stat.mode);
            n.stat.uid = stored.uid.or(n.stat.uid);
            n.stat.gid = stored.gid.or(n.stat.gid);
            if has("mtime") {
                n.stat.mtime = stored.mtime;
                if let Some(d) = n.dir_mut() {
                    d.changed = None; // set explicitly: that is the time now
                }
            }
            if has("atime") {
                n.stat.atime = stored.atime;
            }
            if has("ctime") {
                n.stat.ctime = stored.ctime;
            }
        }
    }

    /// Records that an entry of directory `dir` was created, removed or renamed just now:
    /// its mtime and ctime follow (see [`super::inode::DirState::changed`]).
    pub fn touch_dir(&self, dir: u64) {
        let now = SystemTime::now();
        let mut table = self.table();
        if let Some(n) = table.get_mut(dir).filter(|n| n.is_dir()) {
            n.stat.mtime = now;
            n.stat.ctime = now;
        }
        if let Some(d) = table.dir_mut(dir) {
            d.changed = Some(now);
        }
    }

    /// Counts a subdirectory more (`+1`) or less (`-1`) in `dir`, if its count is known.
    pub fn count_subdir(&self, dir: u64, delta: i32) {
        if let Some(d) = self.table().dir_mut(dir) {
            d.subdirs = d.subdirs.map(|n| n.saturating_add_signed(delta));
        }
    }

    /// Marks `ino` unlinked while handles may still be open on it (`st_nlink` 0).
    pub fn mark_unlinked(&self, ino: u64) {
        if let Some(f) = self.table().get_mut(ino).and_then(Inode::file_mut) {
            f.unlinked = true;
        }
    }

    /// A directory's attributes: from its marker's s3fs headers when it has a marker
    /// (`has_marker`: known from a listing), else the mount's defaults. The marker's headers
    /// are kept too: its xattrs and ACLs (which `ls -l` asks of every entry) need no request.
    async fn dir_stat(&self, prefix: &str, has_marker: bool) -> FsResult<DirAttrs> {
        let no_marker = DirAttrs {
            stat: Stat::basic(0, self.started),
            source: AttrSource::NoMarker,
            meta: None,
        };
        if !has_marker {
            return Ok(no_marker);
        }
        self.marker_attrs(self.probe.head(prefix).await)
    }

    /// A directory's attributes from what a HEAD of its marker answered.
    fn marker_attrs(&self, head: Result<ObjectMeta, StoreError>) -> FsResult<DirAttrs> {
        let no_marker = DirAttrs {
            stat: Stat::basic(0, self.started),
            source: AttrSource::NoMarker,
            meta: None,
        };
        match head {
            Ok(meta) => Ok(DirAttrs {
                stat: Stat {
                    size: 0,
                    ..stat_from_meta(&meta)
                },
                source: AttrSource::Headers,
                meta: Some(Arc::new(meta)),
            }),
            Err(e) if e.is_not_found() => Ok(no_marker),
            Err(e) => Err(e.into()),
        }
    }

    /// The attributes of `ino`, refreshed from S3 when older than the metadata TTL.
    pub async fn getattr(&self, ino: u64) -> FsResult<FileAttr> {
        let node = self.node(ino)?;
        let local = self.writes.is_local(ino);
        if matches!(&node.body, super::inode::Body::File(f) if f.unlinked) {
            return Ok(self.attr_of(&node)); // gone from S3, alive through its handles
        }
        if node.is_partial() && (node.is_dir() || !(self.config.trust_listing_attrs || local)) {
            // Seen only in a listing: read its headers (a directory's marker) once.
            return self.complete_entry(node).await;
        }
        if node.valid_until > Instant::now() || node.is_dir() || local {
            return Ok(self.attr_of(&node));
        }
        let parent = self.node(node.parent)?;
        match self.ask(&parent, &node.name, lookup::Want::File).await {
            // The path now names another inode (e.g. it became a directory): this one is gone.
            Ok(attr) if attr.ino.0 != ino => Err(FsError::new(libc::ESTALE, "replaced")),
            other => other,
        }
    }
}

/// Whether the object `meta` describes stands for a directory, as s3fs's older `dir` (no
/// slash) objects do: by Content-Type `application/x-directory`, or by their s3fs mode.
pub fn is_dir_object(meta: &ObjectMeta) -> bool {
    let x_directory = meta.content_type.as_deref().is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/x-directory")
    });
    x_directory || kind_from_mode(stat_from_meta(meta).mode) == Kind::Dir
}
