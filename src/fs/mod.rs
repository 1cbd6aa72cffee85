//! The filesystem core: inodes, directory handles and file handles over an [`ObjectStore`].
//!
//! Design note: every FUSE request lands in one async method here, which the FUSE adapter
//! ([`crate::fuse`]) runs on the tokio runtime and answers from. The core holds:
//! - the [`InodeTable`] (one `std::sync::Mutex`, never held across an `.await`);
//! - directory handles, each holding a complete listing taken at the first `readdir`, so
//!   offsets stay stable while the kernel pages through it;
//! - file handles, each holding an [`ObjectReader`] bound to the ETag seen at `open`.
//!
//! Namespace rules. A directory is a common prefix (`a/…` exists) or a marker object (`a/`).
//! When a file `a` and a directory `a/` both exist, the directory wins and the file is hidden
//! (as Mountpoint does): a directory can hold many objects, a shadowed file only one.
//! `lookup` asks `HeadObject(a)` and `ListObjectsV2(prefix "a/", max 1)` at once;
//! `readdir` lists every page and fills the inode table with what the listing says (size,
//! mtime, ETag), so stat calls that follow within the metadata TTL cost no request.

pub mod inode;
pub mod names;
pub mod namespace;
pub mod write;
pub mod xattr;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fuser::{FileAttr, FileType, INodeNo};
use futures::StreamExt;
use tracing::{debug, warn};

use crate::config::FsConfig;
use crate::data::cache::BlockCache;
use crate::data::prefetch::{ObjectReader, ReadContext};
use crate::error::{FsError, FsResult};
use crate::storage::{ListPage, ListedObject, ObjectMeta, ObjectStore, StoreError};
use inode::{Entry, Inode, InodeTable, Kind, Stat};
use names::{check_name, child_key, child_prefix};

/// How many GETs may be in flight across the mount. 32: enough for several sequential readers
/// to each keep a full window in flight, few enough to stay polite to the server.
const MAX_GETS_IN_FLIGHT: usize = 32;

/// Largest file known from a listing that a lookup completes with a GET of the whole object
/// rather than a HEAD (see [`S3Fs::complete_entry`]). 64 KiB: the GET costs a HEAD's round
/// trip plus at most 64 KiB, and covers s3fs symlinks (≤ `PATH_MAX`) and the small files that
/// are usually read whole right after they are looked up.
const SMALL_FILE_GET: u64 = 64 << 10;

/// Longest symlink target read (Linux's `PATH_MAX`).
const PATH_MAX: u64 = 4096;

/// One entry of a directory listing, as handed to `readdir`/`readdirplus`.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// Name.
    pub name: String,
    /// Attributes (also giving the file type).
    pub attr: FileAttr,
    /// Whether `attr` is complete. A subdirectory seen only in a listing is not (its marker's
    /// mode, owner and times are unknown), so the kernel must not cache its attributes.
    pub attr_known: bool,
}

/// How the kernel may use its page cache for a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// Keep the cached pages: they are of this very version.
    Keep,
    /// Drop the cached pages, then cache this version's.
    Invalidate,
    /// Bypass the page cache (direct I/O): the cache holds another version's pages that an
    /// open handle may still be reading, or the file is being written.
    Direct,
}

/// An open directory.
struct DirHandle {
    ino: u64,
    entries: Option<Arc<Vec<DirEntry>>>,
}

/// An open file.
enum OpenFile {
    /// Opened read-only while nobody writes it: reads go through the block cache.
    Read {
        ino: u64,
        reader: ObjectReader,
        /// Whether it reads through the kernel's page cache (not direct I/O).
        cached: bool,
    },
    /// Opened for writing, or while someone writes it: reads and writes use the staged copy.
    Staged {
        ino: u64,
        state: Arc<tokio::sync::Mutex<write::WriteState>>,
        writable: bool,
        /// Thread group of the process that opened it (see [`S3Fs::flush`]).
        opener: Option<u32>,
    },
}

/// The filesystem.
pub struct S3Fs {
    store: Arc<dyn ObjectStore>,
    config: FsConfig,
    inodes: Mutex<InodeTable>,
    dirs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<DirHandle>>>>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    writes: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<write::WriteState>>>>,
    /// Per directory, the turn to list it for lookups that missed (see
    /// [`S3Fs::lookup_by_listing`]); present only while a lookup uses it.
    listing_gates: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    next_handle: AtomicU64,
    read_ctx: ReadContext,
    /// When the mount started: the stable time of directories without a marker.
    started: SystemTime,
}

impl std::fmt::Debug for S3Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Fs")
            .field("config", &self.config)
            .finish()
    }
}

impl S3Fs {
    /// A filesystem over `store` configured by `config`.
    pub fn new(store: Arc<dyn ObjectStore>, config: FsConfig) -> Self {
        let read_ctx = ReadContext::new(store.clone(), config.read.clone(), MAX_GETS_IN_FLIGHT);
        S3Fs {
            inodes: Mutex::new(InodeTable::new(&config.prefix)),
            store,
            config,
            dirs: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            writes: Mutex::new(HashMap::new()),
            listing_gates: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            read_ctx,
            started: SystemTime::now(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// The shared block cache (for statistics).
    pub fn cache(&self) -> &BlockCache {
        &self.read_ctx.cache
    }

    // ----- attributes -------------------------------------------------------------------

    fn attr_of(&self, node: &Inode) -> FileAttr {
        let (kind, default_perm) = match node.kind {
            Kind::Dir => (FileType::Directory, self.config.dir_mode),
            Kind::File => (FileType::RegularFile, self.config.file_mode),
            Kind::Symlink => (FileType::Symlink, 0o777),
        };
        let perm = node
            .stat
            .mode
            .map(|m| (m & 0o7777) as u16)
            .unwrap_or(default_perm);
        let mtime = node.stat.mtime;
        FileAttr {
            ino: INodeNo(node.ino),
            size: node.stat.size,
            blocks: node.stat.size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind,
            perm,
            nlink: if node.kind == Kind::Dir { 2 } else { 1 },
            uid: node.stat.uid.unwrap_or(self.config.uid),
            gid: node.stat.gid.unwrap_or(self.config.gid),
            rdev: 0,
            blksize: self.config.read.block_size as u32,
            flags: 0,
        }
    }

    fn valid_until(&self) -> Instant {
        Instant::now() + self.config.metadata_ttl
    }

    fn node(&self, ino: u64) -> FsResult<Inode> {
        self.inodes
            .lock()
            .unwrap()
            .get(ino)
            .cloned()
            .ok_or_else(|| FsError::new(libc::ESTALE, format!("unknown inode {ino}")))
    }

    fn dir_node(&self, ino: u64) -> FsResult<Inode> {
        let node = self.node(ino)?;
        if node.kind != Kind::Dir {
            return Err(FsError::new(libc::ENOTDIR, "not a directory"));
        }
        Ok(node)
    }

    // ----- lookup / getattr --------------------------------------------------------------

    /// Looks `name` up in directory `parent`.
    pub async fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<FileAttr> {
        let name = name
            .to_str()
            .ok_or_else(|| FsError::new(libc::ENOENT, "name is not UTF-8"))?;
        if name.len() > names::NAME_MAX {
            return Err(FsError::new(libc::ENAMETOOLONG, "name too long"));
        }
        check_name(name).map_err(|e| FsError::new(libc::ENOENT, e.to_string()))?;
        let dir = self.dir_node(parent)?;
        let now = Instant::now();
        let partial = {
            let table = self.inodes.lock().unwrap();
            let mut partial = None;
            if let Some(child) = table.child(parent, name) {
                if self.is_local(child.ino) {
                    return Ok(self.attr_of(child));
                }
                if child.valid_until > now {
                    if !is_partial(child) {
                        return Ok(self.attr_of(child));
                    }
                    partial = Some(child.clone());
                }
            }
            if table.is_negative(parent, name, now) {
                return Err(FsError::not_found());
            }
            // A directory listed (or created) within the TTL has no children we don't know.
            let complete = table
                .get(parent)
                .and_then(|d| d.complete_until)
                .is_some_and(|until| until > now);
            if complete && table.child(parent, name).is_none() {
                return Err(FsError::not_found());
            }
            partial
        };
        if let Some(child) = partial {
            // Known from a listing only (no LIST needed).
            return self.complete_entry(child).await;
        }
        // The second name in a row that a directory cannot answer: list the directory once
        // (when it fits in one page) so the names that follow cost no request at all — the
        // pattern of `cat dir/*`, `cp -r` and `tar x`.
        let misses = {
            let mut table = self.inodes.lock().unwrap();
            table.get_mut(parent).map_or(0, |d| {
                d.lookup_misses += 1;
                d.lookup_misses
            })
        };
        if misses >= 2 && !self.too_big_to_list(parent) {
            if let Some(found) = self.lookup_by_listing(parent, name).await? {
                return match found {
                    Some(child) if is_partial(&child) => self.complete_entry(child).await,
                    Some(child) => Ok(self.attr_of(&child)),
                    None => Err(FsError::not_found()),
                };
            }
        }
        self.resolve(&dir, name).await
    }

    /// Whether directory `dir` was found, within the TTL, to need more than one listing page.
    fn too_big_to_list(&self, dir: u64) -> bool {
        self.inodes
            .lock()
            .unwrap()
            .get(dir)
            .and_then(|d| d.too_big_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Answers a lookup of `name` in `parent` from a listing of the whole directory, taken
    /// now unless a concurrent lookup has just taken one: lookups that miss at the same time
    /// (`xargs -P`, a parallel build, 16 readers opening their files) wait for one listing
    /// instead of each sending their own. `None` when the directory needs more than one page
    /// (then the caller asks S3 about the name alone); `Some(None)` when it has no such child.
    async fn lookup_by_listing(&self, parent: u64, name: &str) -> FsResult<Option<Option<Inode>>> {
        let gate = self
            .listing_gates
            .lock()
            .unwrap()
            .entry(parent)
            .or_default()
            .clone();
        let result = async {
            let _turn = gate.lock().await;
            let complete = self
                .inodes
                .lock()
                .unwrap()
                .get(parent)
                .and_then(|d| d.complete_until)
                .is_some_and(|until| until > Instant::now());
            if self.too_big_to_list(parent) {
                return Ok(None);
            }
            if !complete && self.list_dir_limited(parent, Some(1)).await?.is_none() {
                // Remember it for the TTL: lookups waiting behind us, and those that
                // follow, go straight to S3 instead of each listing a first page again.
                let until = self.valid_until();
                if let Some(d) = self.inodes.lock().unwrap().get_mut(parent) {
                    d.too_big_until = Some(until);
                }
                return Ok(None);
            }
            Ok(Some(
                self.inodes.lock().unwrap().child(parent, name).cloned(),
            ))
        }
        .await;
        let mut gates = self.listing_gates.lock().unwrap();
        // Two references: the map's and ours; nobody else waits, so the gate can go.
        if Arc::strong_count(&gate) == 2 {
            gates.remove(&parent);
        }
        result
    }

    /// Completes an entry known from a listing only with its object's (or marker's) headers:
    /// s3fs's mode, owner, time and symlink type are not in listings.
    ///
    /// A small file (up to [`SMALL_FILE_GET`]) is completed with a GET of the whole object
    /// instead of a HEAD: one request of the same cost that also puts its bytes in the block
    /// cache, so `cat` of a listed file costs one request, as `curl` would, and an s3fs
    /// symlink (whose target is at most `PATH_MAX` bytes) is still seen as one. A larger file
    /// keeps its listing attributes when they may be trusted (see
    /// [`FsConfig::trust_listing_attrs`]): its first GET follows at once anyway.
    async fn complete_entry(&self, node: Inode) -> FsResult<FileAttr> {
        if node.kind == Kind::Dir {
            let stat = self.dir_stat(&node.key, true).await?;
            let mut table = self.inodes.lock().unwrap();
            let n = table.get_mut(node.ino).ok_or_else(FsError::not_found)?;
            n.stat = stat;
            return Ok(self.attr_of(n));
        }
        let small = SMALL_FILE_GET.min(self.config.read.block_size);
        let fetched = if node.stat.size > 0 && node.stat.size <= small {
            self.read_ctx
                .head_with_first_block(&node.key, small, node.stat.etag.as_deref())
                .await
        } else if self.config.trust_listing_attrs {
            return Ok(self.attr_of(&node));
        } else {
            self.store.head(&node.key).await
        };
        self.record_object(node.parent, &node.name, node.key.clone(), fetched)
    }

    /// Records what S3 answered about the object `key`, named `name` in `parent`: its
    /// attributes (a file, or an s3fs symlink by its mode) or, for "not found", a negative
    /// entry; both fresh for the TTL.
    fn record_object(
        &self,
        parent: u64,
        name: &str,
        key: String,
        answer: Result<ObjectMeta, StoreError>,
    ) -> FsResult<FileAttr> {
        let mut table = self.inodes.lock().unwrap();
        match answer {
            Ok(meta) => {
                let stat = stat_from_meta(&meta);
                let kind = kind_from_mode(stat.mode);
                let entry = Entry {
                    kind,
                    key,
                    stat,
                    meta: Some(Arc::new(meta)),
                };
                let ino = table.upsert(parent, name, entry, self.valid_until());
                Ok(self.attr_of(table.get(ino).unwrap()))
            }
            Err(StoreError::NotFound) => {
                table.set_negative(parent, name, self.valid_until());
                Err(FsError::not_found())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records fresh headers `meta` of `node`'s object (its kind kept) for the TTL.
    fn refresh(&self, node: &Inode, meta: Arc<ObjectMeta>) {
        let entry = Entry {
            kind: node.kind,
            key: node.key.clone(),
            stat: stat_from_meta(&meta),
            meta: Some(meta),
        };
        let mut table = self.inodes.lock().unwrap();
        table.upsert(node.parent, &node.name, entry, self.valid_until());
    }

    /// Asks S3 what `name` in `dir` is, and records the answer: a LIST of `name/` (is it a
    /// directory?) and, at the same time, what a HEAD of `name` would tell, from a GET of its
    /// first block (see [`ReadContext::head_with_first_block`]): a file looked up by name is
    /// most often opened and read next, and its first read then waits for no request.
    async fn resolve(&self, dir: &Inode, name: &str) -> FsResult<FileAttr> {
        let key = child_key(&dir.key, name);
        let prefix = child_prefix(&dir.key, name);
        let says_dir = |list: &Result<ListPage, StoreError>| {
            list.as_ref()
                .is_ok_and(|page| !page.objects.is_empty() || !page.prefixes.is_empty())
        };
        // The version seen last, if the name is being looked up again.
        let seen = self
            .inodes
            .lock()
            .unwrap()
            .child(dir.ino, name)
            .and_then(|c| c.stat.etag.clone());
        // Both at once; a LIST that finds the directory settles it without waiting for the
        // GET (whose object the directory would hide anyway). The GET runs as its own task so
        // that it still completes then: dropping a request mid-flight would close its pooled
        // connection (a new TLS handshake for the next request).
        let mut head = tokio::spawn({
            let ctx = self.read_ctx.clone();
            let key = key.clone();
            async move {
                ctx.head_with_first_block(&key, u64::MAX, seen.as_deref())
                    .await
            }
        });
        let joined = |r: Result<_, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| Err(StoreError::Other(format!("GET task failed: {e}"))))
        };
        let (head, list) = {
            let list = self.store.list(&prefix, Some("/"), None, Some(1));
            tokio::pin!(list);
            tokio::select! {
                list = &mut list => {
                    if says_dir(&list) { (None, list) } else { (Some(joined(head.await)), list) }
                }
                h = &mut head => (Some(joined(h)), list.await),
            }
        };
        if says_dir(&list) {
            let has_marker = list
                .as_ref()
                .is_ok_and(|p| p.objects.first().is_some_and(|o| o.key == prefix));
            let stat = self.dir_stat(&prefix, has_marker).await?;
            let mut table = self.inodes.lock().unwrap();
            let ino = table.upsert(
                dir.ino,
                name,
                Entry {
                    kind: Kind::Dir,
                    key: prefix,
                    stat,
                    meta: None,
                },
                self.valid_until(),
            );
            return Ok(self.attr_of(table.get(ino).unwrap()));
        }
        let head = head.expect("the object's answer unless the LIST found a directory");
        if let (Err(StoreError::NotFound), Err(e)) = (&head, list) {
            // "Not found" is only known when the LIST could say there is no directory either.
            return Err(e.into());
        }
        self.record_object(dir.ino, name, key, head)
    }

    /// A directory's attributes: from its marker's s3fs headers when it has a marker
    /// (`has_marker`: known from a listing), else the mount's defaults. `etag` records what was
    /// learned (the marker's ETag, or empty for "no marker"), so a directory whose attributes
    /// are still unknown (`etag: None`, seen only in a listing) can be told apart.
    async fn dir_stat(&self, prefix: &str, has_marker: bool) -> FsResult<Stat> {
        let no_marker = Stat {
            etag: Some(String::new()),
            ..Stat::basic(0, self.started)
        };
        if !has_marker {
            return Ok(no_marker);
        }
        match self.store.head(prefix).await {
            Ok(meta) => Ok(Stat {
                size: 0,
                ..stat_from_meta(&meta)
            }),
            Err(StoreError::NotFound) => Ok(no_marker),
            Err(e) => Err(e.into()),
        }
    }

    /// The attributes of `ino`, refreshed from S3 when older than the metadata TTL.
    pub async fn getattr(&self, ino: u64) -> FsResult<FileAttr> {
        let node = self.node(ino)?;
        if node.kind == Kind::Dir && node.stat.etag.is_none() && node.ino != inode::ROOT_INO {
            // Seen only in a listing: read its marker once for mode, owner and times.
            let stat = self.dir_stat(&node.key, true).await?;
            let mut table = self.inodes.lock().unwrap();
            if let Some(n) = table.get_mut(ino) {
                n.stat = stat;
                n.valid_until = Instant::now() + self.config.metadata_ttl;
                return Ok(self.attr_of(n));
            }
        }
        if !self.config.trust_listing_attrs && node.listing_only && !self.is_local(ino) {
            return self.complete_entry(node).await;
        }
        if node.valid_until > Instant::now() || node.kind == Kind::Dir || self.is_local(ino) {
            return Ok(self.attr_of(&node));
        }
        let parent = self.node(node.parent)?;
        match self.resolve(&parent, &node.name).await {
            // The path now names another inode (e.g. it became a directory): this one is gone.
            Ok(attr) if attr.ino.0 != ino => Err(FsError::new(libc::ESTALE, "replaced")),
            other => other,
        }
    }

    // ----- directories --------------------------------------------------------------------

    /// Opens directory `ino`.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        self.dir_node(ino)?;
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().unwrap().insert(
            fh,
            Arc::new(tokio::sync::Mutex::new(DirHandle { ino, entries: None })),
        );
        Ok(fh)
    }

    /// Entries of open directory `fh` from index `offset` on. The listing is taken at the
    /// first call (and again when the kernel rewinds to offset 0).
    pub async fn readdir(&self, fh: u64, offset: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        let handle = self
            .dirs
            .lock()
            .unwrap()
            .get(&fh)
            .cloned()
            .ok_or_else(|| FsError::new(libc::EBADF, "unknown directory handle"))?;
        let mut handle = handle.lock().await;
        if handle.entries.is_none() || offset == 0 {
            handle.entries = Some(Arc::new(self.list_dir(handle.ino).await?));
        }
        Ok(handle.entries.clone().unwrap())
    }

    /// Closes directory handle `fh`.
    pub fn releasedir(&self, fh: u64) {
        self.dirs.lock().unwrap().remove(&fh);
    }

    /// Lists directory `ino` completely (every page), records what the listing says about each
    /// child, and returns the entries, `.` and `..` first.
    async fn list_dir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        Ok(self
            .list_dir_limited(ino, None)
            .await?
            .expect("an unlimited listing completes"))
    }

    /// [`Self::list_dir`], giving up (with `None`, recording nothing) when the directory
    /// needs more than `max_pages` pages.
    async fn list_dir_limited(
        &self,
        ino: u64,
        max_pages: Option<u32>,
    ) -> FsResult<Option<Vec<DirEntry>>> {
        let dir = self.dir_node(ino)?;
        let prefix = dir.key.clone();
        let mut files: BTreeMap<String, ListedObject> = BTreeMap::new();
        let mut dirs: BTreeMap<String, ()> = BTreeMap::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = self.store.list(&prefix, Some("/"), token, None).await?;
            pages += 1;
            for p in page.prefixes {
                let name = &p[prefix.len()..p.len() - 1];
                match check_name(name) {
                    Ok(()) => {
                        dirs.insert(name.to_string(), ());
                    }
                    Err(why) => {
                        warn!(prefix = %p, "skipping a prefix that cannot be a directory name: {why}")
                    }
                }
            }
            for o in page.objects {
                if o.key == prefix {
                    continue; // this directory's own marker
                }
                let name = o.key[prefix.len()..].to_string();
                match check_name(&name) {
                    Ok(()) => {
                        files.insert(name, o);
                    }
                    Err(why) => {
                        warn!(key = %o.key, "skipping a key that cannot be a file name: {why}")
                    }
                }
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
            if max_pages.is_some_and(|m| pages >= m) {
                return Ok(None);
            }
        }
        debug!(prefix = %prefix, pages, dirs = dirs.len(), files = files.len(), "listed");

        let until = self.valid_until();
        let mut table = self.inodes.lock().unwrap();
        if let Some(d) = table.get_mut(ino) {
            d.complete_until = Some(until);
            d.lookup_misses = 0;
        }
        let mut entries = Vec::with_capacity(dirs.len() + files.len() + 2);
        entries.push(DirEntry {
            ino,
            name: ".".into(),
            attr: self.attr_of(&dir),
            attr_known: self.attr_known(&dir),
        });
        let parent = table
            .get(dir.parent)
            .cloned()
            .unwrap_or_else(|| dir.clone());
        entries.push(DirEntry {
            ino: parent.ino,
            name: "..".into(),
            attr: self.attr_of(&parent),
            attr_known: self.attr_known(&parent),
        });
        let mut names: Vec<(String, Option<ListedObject>)> = Vec::new();
        let mut files = files.into_iter().peekable();
        let mut dir_iter = dirs.into_keys().peekable();
        // Merge the two sorted lists; a directory shadows a file of the same name.
        loop {
            let take_dir = match (dir_iter.peek(), files.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(d), Some((f, _))) => d <= f,
            };
            if take_dir {
                let d = dir_iter.next().unwrap();
                if files.peek().is_some_and(|(f, _)| *f == d) {
                    let (_, o) = files.next().unwrap();
                    debug!(key = %o.key, "file hidden by a directory of the same name");
                }
                names.push((d, None));
            } else {
                let (f, o) = files.next().unwrap();
                names.push((f, Some(o)));
            }
        }
        // Files being written that S3 does not have yet belong in the listing too.
        let listed: std::collections::HashSet<&str> =
            names.iter().map(|(n, _)| n.as_str()).collect();
        let mut local: Vec<u64> = table
            .children_of(ino)
            .into_iter()
            .filter(|c| self.is_local(*c))
            .filter(|c| {
                table
                    .get(*c)
                    .is_some_and(|n| !listed.contains(n.name.as_str()))
            })
            .collect();
        local.sort();
        for c in local {
            let node = table.get(c).unwrap();
            entries.push(DirEntry {
                ino: c,
                name: node.name.clone(),
                attr: self.attr_of(node),
                attr_known: self.attr_known(node),
            });
        }
        for (name, obj) in names {
            if let Some(c) = table.child(ino, &name) {
                if self.is_local(c.ino) && c.kind == Kind::File {
                    let c = c.clone();
                    entries.push(DirEntry {
                        ino: c.ino,
                        name,
                        attr: self.attr_of(&c),
                        attr_known: self.attr_known(&c),
                    });
                    continue;
                }
            }
            let child_ino = match obj {
                None => {
                    // A listing says nothing about a subdirectory's marker: keep what an
                    // earlier lookup learned, else mark its attributes as unknown.
                    let stat = match table.child(ino, &name) {
                        Some(c) if c.kind == Kind::Dir && c.stat.etag.is_some() => c.stat.clone(),
                        _ => Stat::basic(0, self.started),
                    };
                    table.upsert(
                        ino,
                        &name,
                        Entry {
                            kind: Kind::Dir,
                            key: child_prefix(&prefix, &name),
                            stat,
                            meta: None,
                        },
                        until,
                    )
                }
                Some(o) => {
                    let stat = Stat {
                        size: o.size,
                        mtime: o.last_modified,
                        etag: Some(o.etag.clone()),
                        mode: None,
                        uid: None,
                        gid: None,
                    };
                    // A listing cannot tell a symlink from a file, nor carries s3fs's headers:
                    // keep what a HEAD taught us while the object is unchanged, else mark the
                    // entry as known from the listing only.
                    let (kind, complete) = match table.child(ino, &name) {
                        Some(c) if c.stat.etag == stat.etag && !c.listing_only => (c.kind, true),
                        _ => (Kind::File, false),
                    };
                    let child = table.upsert(
                        ino,
                        &name,
                        Entry {
                            kind,
                            key: o.key,
                            stat,
                            meta: None,
                        },
                        until,
                    );
                    if let Some(n) = table.get_mut(child) {
                        n.listing_only = !complete;
                    }
                    child
                }
            };
            let node = table.get(child_ino).unwrap();
            entries.push(DirEntry {
                ino: child_ino,
                name,
                attr: self.attr_of(node),
                attr_known: self.attr_known(node),
            });
        }
        Ok(Some(entries))
    }

    // ----- files --------------------------------------------------------------------------

    /// Opens file `ino` with open(2) `flags`; returns the handle and how the kernel may use
    /// its page cache: kept only while it can hold no other version's pages.
    /// `pid` is the caller's (0 when unknown).
    pub async fn open(&self, ino: u64, flags: i32, pid: u32) -> FsResult<(u64, CacheMode)> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Ok((
                self.open_for_write(ino, flags, pid).await?,
                CacheMode::Direct,
            ));
        }
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return Err(FsError::new(libc::EISDIR, "is a directory"));
        }
        // Someone is writing this file: read their staged bytes (read-your-writes).
        let staged = self.writes.lock().unwrap().get(&ino).cloned();
        if let Some(state) = staged {
            state.lock().await.add_handle();
            let fh = self.add_handle(OpenFile::Staged {
                ino,
                state,
                writable: false,
                opener: write::tgid_of(pid),
            });
            return Ok((fh, CacheMode::Direct));
        }
        let node = if node.valid_until > Instant::now() && node.stat.etag.is_some() {
            node
        } else {
            // Stale: ask again, with the GET of the first block that the read which follows
            // wants anyway (see `ReadContext::head_with_first_block`).
            let meta = self
                .read_ctx
                .head_with_first_block(&node.key, u64::MAX, node.stat.etag.as_deref())
                .await
                .map_err(|e| {
                    if matches!(e, StoreError::NotFound) {
                        self.inodes
                            .lock()
                            .unwrap()
                            .forget_child(node.parent, &node.name);
                    }
                    FsError::from(e)
                })?;
            self.refresh(&node, Arc::new(meta));
            self.inodes
                .lock()
                .unwrap()
                .get(ino)
                .cloned()
                .unwrap_or(node)
        };
        let etag = node.stat.etag.clone().unwrap_or_default();
        // The page cache is per inode, not per version: never let two versions' pages meet.
        let keep_cache = {
            let mut table = self.inodes.lock().unwrap();
            let n = table.get_mut(ino).unwrap();
            let same = n.cache_etag.as_deref() == Some(etag.as_str()) && !etag.is_empty();
            if n.cached_opens > 0 && !same {
                CacheMode::Direct
            } else {
                n.cached_opens += 1;
                n.cache_etag = Some(etag.clone());
                if same {
                    CacheMode::Keep
                } else {
                    CacheMode::Invalidate
                }
            }
        };
        let reader = ObjectReader::new(self.read_ctx.clone(), &node.key, &etag, node.stat.size);
        let cached = keep_cache != CacheMode::Direct;
        let fh = self.add_handle(OpenFile::Read {
            ino,
            reader,
            cached,
        });
        debug!(ino, fh, key = %node.key, size = node.stat.size, cache = ?keep_cache, "open");
        Ok((fh, keep_cache))
    }

    /// Reads from open file `fh`.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        match &*self.file(fh)? {
            OpenFile::Read { ino, reader, .. } => {
                // Once someone writes the file, every handle reads the staged copy, as on a
                // local file system: a short read of the older version would make the kernel
                // shrink the file under the writer.
                let staged = self.writes.lock().unwrap().get(ino).cloned();
                match staged {
                    Some(state) => self.read_staged(&state, offset, size).await,
                    None => reader.read(offset, size).await,
                }
            }
            OpenFile::Staged { state, .. } => self.read_staged(state, offset, size).await,
        }
    }

    /// Whether `fh` is a handle that only reads S3 (no staged copy behind it): closing it
    /// does no I/O.
    pub fn is_read_handle(&self, fh: u64) -> bool {
        self.file(fh)
            .is_ok_and(|f| matches!(*f, OpenFile::Read { .. }))
    }

    fn add_handle(&self, file: OpenFile) -> u64 {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.files.lock().unwrap().insert(fh, Arc::new(file));
        fh
    }

    fn file(&self, fh: u64) -> FsResult<Arc<OpenFile>> {
        self.files
            .lock()
            .unwrap()
            .get(&fh)
            .cloned()
            .ok_or_else(|| FsError::new(libc::EBADF, "unknown file handle"))
    }

    /// The target of symlink `ino` (the object's body).
    pub async fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let node = self.node(ino)?;
        if node.kind != Kind::Symlink {
            return Err(FsError::new(libc::EINVAL, "not a symlink"));
        }
        // Through the block cache (a lookup that found the symlink has usually cached it)
        // when its version is known; otherwise, or if it changed since, straight from S3.
        if let Some(etag) = node.stat.etag.as_deref().filter(|e| !e.is_empty()) {
            let size = node.stat.size;
            let reader = ObjectReader::new(self.read_ctx.clone(), &node.key, etag, size);
            match reader.read(0, size.min(u32::MAX as u64) as u32).await {
                Ok(target) => return Ok(target.to_vec()),
                Err(e) if e.errno == libc::ESTALE => {}
                Err(e) => return Err(e),
            }
        }
        let mut body = self.store.get_range(&node.key, 0..PATH_MAX, None).await?;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    // ----- extended attributes ------------------------------------------------------------

    /// The `HeadObject` answer for `node`, from the inode if still valid.
    async fn meta_of(&self, node: &Inode) -> FsResult<Arc<ObjectMeta>> {
        if let Some(meta) = &node.meta {
            if node.valid_until > Instant::now() && Some(&meta.etag) == node.stat.etag.as_ref() {
                return Ok(meta.clone());
            }
        }
        let meta = Arc::new(self.store.head(&node.key).await?);
        if self.is_local(node.ino) {
            // The object is the version before the pending writes: its size and ETag must
            // not replace what the writes made.
            return Ok(meta);
        }
        self.refresh(node, meta.clone());
        Ok(meta)
    }

    /// The tag set of `node`, from the inode if read within the TTL.
    async fn tags_of(&self, node: &Inode) -> FsResult<Arc<Vec<(String, String)>>> {
        if let Some((until, tags)) = &node.tags {
            if *until > Instant::now() {
                return Ok(tags.clone());
            }
        }
        let tags = match self.store.get_tags(&node.key).await {
            Ok(t) => Arc::new(t),
            Err(StoreError::NotImplemented(e)) => {
                debug!("tagging not supported by the server: {e}");
                Arc::new(Vec::new())
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(n) = self.inodes.lock().unwrap().get_mut(node.ino) {
            n.tags = Some((self.valid_until(), tags.clone()));
        }
        Ok(tags)
    }

    /// The value of extended attribute `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &OsStr) -> FsResult<Vec<u8>> {
        let node = self.node(ino)?;
        let name = name.to_str().unwrap_or("");
        if node.kind == Kind::Dir || !name.starts_with("user.s3.") {
            return Err(no_data());
        }
        let meta = match self.meta_of(&node).await {
            // Created here and not uploaded yet: it has no S3 attributes so far.
            Err(e) if e.errno == libc::ENOENT && self.is_local(ino) => return Err(no_data()),
            other => other?,
        };
        let tags = if xattr::needs_tags(name) {
            self.tags_of(&node).await?
        } else {
            Arc::new(Vec::new())
        };
        xattr::all(&meta, &tags)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(no_data)
    }

    /// The NUL-separated list of extended attribute names of `ino`.
    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return Ok(Vec::new());
        }
        let meta = match self.meta_of(&node).await {
            Err(e) if e.errno == libc::ENOENT && self.is_local(ino) => return Ok(Vec::new()),
            other => other?,
        };
        let tags = self.tags_of(&node).await?;
        let all = xattr::all(&meta, &tags);
        Ok(xattr::name_list(all.iter().map(|(n, _)| n.as_str())))
    }
}

fn no_data() -> FsError {
    FsError::new(libc::ENODATA, "no such attribute")
}

/// Whether a node is known from a listing only (see [`S3Fs::complete_entry`]).
fn is_partial(node: &Inode) -> bool {
    match node.kind {
        Kind::Dir => node.stat.etag.is_none() && node.ino != inode::ROOT_INO,
        _ => node.listing_only,
    }
}

impl S3Fs {
    /// Whether the kernel may cache `node`'s attributes (see [`DirEntry::attr_known`]).
    fn attr_known(&self, node: &Inode) -> bool {
        match node.kind {
            Kind::Dir => node.stat.etag.is_some() || node.ino == inode::ROOT_INO,
            _ => self.config.trust_listing_attrs || !node.listing_only,
        }
    }
}

fn kind_from_mode(mode: Option<u32>) -> Kind {
    match mode {
        Some(m) if m & libc::S_IFMT == libc::S_IFLNK => Kind::Symlink,
        _ => Kind::File,
    }
}

/// Builds a [`Stat`] from a `HeadObject` answer, honouring s3fs's attribute headers.
pub fn stat_from_meta(meta: &ObjectMeta) -> Stat {
    let num = |k: &str| {
        meta.metadata
            .get(k)
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let mtime = meta
        .metadata
        .get("mtime")
        .and_then(|v| parse_s3fs_time(v))
        .unwrap_or(meta.last_modified);
    Stat {
        size: meta.size,
        mtime,
        etag: Some(meta.etag.clone()),
        mode: num("mode"),
        uid: num("uid"),
        gid: num("gid"),
    }
}

/// Parses s3fs's `x-amz-meta-mtime`: seconds, `sec.nsec`, or a float.
pub fn parse_s3fs_time(v: &str) -> Option<SystemTime> {
    let v = v.trim();
    let (secs, frac) = match v.split_once('.') {
        Some((s, f)) => (s, f),
        None => (v, ""),
    };
    let secs: u64 = secs.parse().ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<9}").parse::<u32>().ok()?
    };
    Some(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests;
