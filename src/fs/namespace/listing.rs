//! Listing a directory: every page of `ListObjectsV2(prefix, delimiter "/")`, merged by the
//! namespace rules and recorded in the inode table.
//!
//! Three steps: pages from S3, [`merge`] (pure, unit-tested), which applies the rules —
//! unusable names dropped, the directory's own marker skipped, a `name_$folder$` object listed
//! as directory `name`, a directory hiding a file of the same name — and the recording of each
//! entry's size, mtime and ETag in the table, with the files being written that S3 does not
//! have yet. `readdir` streams: a task lists page after page into a [`Stream`] and publishes
//! every entry a page settles (see [`first_unsettled`]), so readers start before the last page.
//! Offsets handed to the kernel are indexes into that one growing list, taken at the first
//! `readdir` of a handle (and again when the kernel rewinds to offset 0). A lookup that lists a
//! directory for itself takes one page at most ([`Namespace::list_dir_limited`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fuser::FileAttr;
use tracing::{debug, warn};

use super::super::inode::{AttrSource, Entry, Inode, InodeTable, Kind, Stat};
use super::super::names::{check_name, child_prefix};
use super::meta_cache::{with_cached_headers, Cached};
use super::Namespace;
use crate::error::{FsError, FsResult};
use crate::storage::ListedObject;

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

/// Entries handed to one `readdirplus` at most: more than a page of the kernel's buffer holds.
pub const PLUS_BATCH: usize = 64;

/// An open directory: the listing taken for it, streaming in.
pub(super) struct DirHandle {
    ino: u64,
    listing: Option<Arc<Stream>>,
}

/// A directory listing that is handed out while its pages still arrive.
///
/// S3 lists keys in order, so once a page ending with key K has arrived, no later key can
/// yield a name below [`first_unsettled`]`(K)`: the merged entries below it are final, in
/// their final order, and cannot be hidden by a later directory of the same name. They are
/// published at once, so `ls -l` (and the HEADs it needs) starts while later pages are on
/// their way; offsets stay indexes into one growing, stable list.
pub(super) struct Stream {
    entries: std::sync::Mutex<Vec<DirEntry>>,
    /// `None` while pages still arrive; then how the listing ended.
    outcome: std::sync::Mutex<Option<FsResult<()>>>,
    /// Bumped at each change, for the readers waiting.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Stream {
    fn new() -> Arc<Self> {
        Arc::new(Stream {
            entries: std::sync::Mutex::new(Vec::new()),
            outcome: std::sync::Mutex::new(None),
            changed: tokio::sync::watch::channel(0).0,
        })
    }

    fn publish(&self, more: Vec<DirEntry>) {
        self.entries.lock().unwrap().extend(more);
        self.changed.send_modify(|n| *n += 1);
    }

    fn finish(&self, outcome: FsResult<()>) {
        *self.outcome.lock().unwrap() = Some(outcome);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Entries `from..from + max`, once that many exist or the listing has ended.
    async fn entries_from(&self, from: usize, max: usize) -> FsResult<Vec<DirEntry>> {
        let mut rx = self.changed.subscribe();
        loop {
            {
                let entries = self.entries.lock().unwrap();
                let outcome = self.outcome.lock().unwrap();
                if entries.len() >= from.saturating_add(max) || outcome.is_some() {
                    if entries.len() <= from {
                        if let Some(Err(e)) = outcome.as_ref() {
                            return Err(e.clone());
                        }
                    }
                    let end = entries.len().min(from.saturating_add(max));
                    return Ok(entries.get(from..end).unwrap_or_default().to_vec());
                }
                if entries.len() > from && max != usize::MAX {
                    return Ok(entries[from..].to_vec());
                }
            }
            if rx.changed().await.is_err() {
                return Err(FsError::new(libc::EIO, "the listing was abandoned"));
            }
        }
    }
}

/// What S3 listed under a prefix, before the namespace rules.
#[derive(Clone, Debug, Default)]
pub struct RawListing {
    /// Common prefixes, each ending with `/`.
    pub prefixes: Vec<String>,
    /// Objects directly under the prefix.
    pub objects: Vec<ListedObject>,
}

impl RawListing {
    /// Drops every key and prefix whose name in the directory `prefix` is below `bound`:
    /// merged and handed out already (see [`first_unsettled`]).
    fn retain_unsettled(&mut self, prefix: &str, bound: &str) {
        let rel = |k: &str| k.get(prefix.len()..).unwrap_or("").to_string();
        self.prefixes.retain(|p| {
            let name = rel(p);
            name.strip_suffix('/').unwrap_or(&name) >= bound
        });
        self.objects.retain(|o| {
            let name = rel(&o.key);
            name.strip_suffix(FOLDER_SUFFIX).unwrap_or(&name) >= bound
        });
    }
}

/// Suffix of the objects that stand for directories in s3fs's and Hadoop's older buckets.
const FOLDER_SUFFIX: &str = "_$folder$";

/// What recording a listing has gathered so far.
#[derive(Default)]
struct Recorded {
    subdirs: u32,
    names: HashSet<String>,
    order: Vec<u64>,
}

/// The last key or common prefix of a page (S3 returns both in one order).
fn last_item(page: &crate::storage::ListPage) -> Option<&str> {
    let object = page.objects.last().map(|o| o.key.as_str());
    let prefix = page.prefixes.last().map(String::as_str);
    object.max(prefix)
}

/// One name of a merged listing: a directory, or a file with what the listing said of it.
#[derive(Debug, PartialEq)]
pub enum Listed {
    /// A subdirectory, with the key of the `name_$folder$` object standing for it, if any.
    Dir(String, Option<String>),
    /// An object.
    File(String, ListedObject),
}

impl Listed {
    fn name(&self) -> &str {
        match self {
            Listed::Dir(n, _) | Listed::File(n, _) => n,
        }
    }
}

/// Applies the namespace rules to what S3 listed under `prefix`, in name order.
pub fn merge(prefix: &str, raw: RawListing) -> Vec<Listed> {
    let mut dirs = BTreeMap::new();
    for p in raw.prefixes {
        let name = &p[prefix.len()..p.len() - 1];
        match check_name(name) {
            Ok(()) => {
                dirs.insert(name.to_string(), None);
            }
            Err(why) => {
                warn!(prefix = %p, "skipping a prefix that cannot be a directory name: {why}")
            }
        }
    }
    let (folders, objects): (Vec<_>, Vec<_>) = raw
        .objects
        .into_iter()
        .partition(|o| o.key.len() > prefix.len() && o.key.ends_with(FOLDER_SUFFIX));
    for o in folders {
        let name = &o.key[prefix.len()..o.key.len() - FOLDER_SUFFIX.len()];
        match check_name(name) {
            Ok(()) => {
                dirs.insert(name.to_string(), Some(o.key));
            }
            Err(why) => warn!(key = %o.key, "skipping a folder object: {why}"),
        }
    }
    let mut files = BTreeMap::new();
    for o in objects {
        if o.key == prefix {
            continue; // this directory's own marker
        }
        let name = o.key[prefix.len()..].to_string();
        match check_name(&name) {
            Ok(()) if dirs.contains_key(&name) => {
                debug!(key = %o.key, "file hidden by a directory of the same name");
            }
            Ok(()) => {
                files.insert(name, o);
            }
            Err(why) => warn!(key = %o.key, "skipping a key that cannot be a file name: {why}"),
        }
    }
    let mut out: Vec<Listed> = dirs.into_iter().map(|(n, s)| Listed::Dir(n, s)).collect();
    out.extend(files.into_iter().map(|(n, o)| Listed::File(n, o)));
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

/// The lowest name a key after `last` (a key or common prefix, relative to the directory)
/// can still yield: `x/` after `x-1` names `x`, and so does `x_$folder$`. Names below it are
/// final. Its end is a char boundary: the byte it stops before is ASCII.
pub fn first_unsettled(last: &str) -> &str {
    let b = last.as_bytes();
    let end = (1..b.len()).find(|&i| b[i] <= b'_').unwrap_or(b.len());
    &last[..end]
}

impl Namespace {
    /// Opens directory `ino`.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        self.dir_node(ino)?;
        let fh = self.next_dir_handle.fetch_add(1, Ordering::Relaxed);
        let handle = DirHandle { ino, listing: None };
        self.dirs
            .lock()
            .unwrap()
            .insert(fh, (ino, Arc::new(tokio::sync::Mutex::new(handle))));
        Ok(fh)
    }

    /// The listing of open directory `fh`, started at the first call (and again when the
    /// kernel rewinds to offset 0).
    async fn listing(&self, fh: u64, offset: u64) -> FsResult<Arc<Stream>> {
        let handle = self
            .dirs
            .lock()
            .unwrap()
            .get(&fh)
            .map(|(_, h)| h.clone())
            .ok_or_else(|| FsError::new(libc::EBADF, "unknown directory handle"))?;
        let mut handle = handle.lock().await;
        if handle.listing.is_none() || offset == 0 {
            handle.listing = Some(self.start_listing(handle.ino)?);
        }
        Ok(handle.listing.clone().unwrap())
    }

    /// Every entry of open directory `fh`, once its listing is complete.
    pub async fn readdir(&self, fh: u64, offset: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        let stream = self.listing(fh, offset).await?;
        Ok(Arc::new(stream.entries_from(0, usize::MAX).await?))
    }

    /// Entries of open directory `fh` from index `offset` on, as soon as there are some (at
    /// most [`PLUS_BATCH`] × 4: more than the kernel's buffer holds).
    pub async fn readdir_from(&self, fh: u64, offset: u64) -> FsResult<Vec<DirEntry>> {
        let stream = self.listing(fh, offset).await?;
        stream.entries_from(offset as usize, PLUS_BATCH * 4).await
    }

    /// Entries of open directory `fh` from index `offset` on (at most [`PLUS_BATCH`]), with
    /// their attributes, for `readdirplus`. Past the first batch the kernel asks for these
    /// only when the entries it got were stat'ed (`ls -l`): then the partial entries of this
    /// batch are completed before the answer, in parallel, and the next ones start.
    pub async fn readdirplus(&self, fh: u64, offset: u64) -> FsResult<Vec<DirEntry>> {
        let stream = self.listing(fh, offset).await?;
        let window = PLUS_BATCH + super::ahead::STAT_AHEAD;
        let all = stream.entries_from(offset as usize, window).await?;
        let batch = &all[..PLUS_BATCH.min(all.len())];
        if offset == 0 || self.config.trust_listing_attrs {
            return Ok(batch.to_vec());
        }
        let partial = |e: &&DirEntry| !e.attr_known;
        let wanted: Vec<u64> = all.iter().filter(partial).map(|e| e.ino).collect();
        self.complete_in_background(wanted, super::ahead::Probe::Head);
        let mut out = Vec::with_capacity(batch.len());
        for e in batch {
            if !e.attr_known {
                self.wait_ahead(e.ino).await;
            }
            out.push(self.current_entry(e));
        }
        Ok(out)
    }

    /// `e` as the table knows it now (its inode may be completed, or renumbered as another
    /// kind).
    fn current_entry(&self, e: &DirEntry) -> DirEntry {
        let table = self.table();
        let Some(dir_ino) = table.get(e.ino).map(|n| n.parent) else {
            return e.clone();
        };
        match table.child(dir_ino, &e.name) {
            Some(node) if e.name != "." && e.name != ".." => self.dir_entry(node, &e.name),
            _ => e.clone(),
        }
    }

    /// Closes directory handle `fh`.
    pub fn releasedir(&self, fh: u64) {
        self.dirs.lock().unwrap().remove(&fh);
    }

    /// Lists directory `ino` completely, records what the listing says about each child, and
    /// returns the entries, `.` and `..` first; `None` (recording nothing) when the directory
    /// needs more than `max_pages` pages.
    pub(super) async fn list_dir_limited(
        &self,
        ino: u64,
        max_pages: Option<u32>,
    ) -> FsResult<Option<Vec<DirEntry>>> {
        let dir = self.dir_node(ino)?;
        let Some(raw) = self.fetch_pages(&dir.key, max_pages).await? else {
            return Ok(None);
        };
        let merged = merge(&dir.key, raw);
        let cached = self.cached_headers(&merged).await;
        Ok(Some(self.record_listing(&dir, merged, &cached)))
    }

    /// Every page of the listing of `prefix`, or `None` past `max_pages`.
    async fn fetch_pages(
        &self,
        prefix: &str,
        max_pages: Option<u32>,
    ) -> FsResult<Option<RawListing>> {
        let mut raw = RawListing::default();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = self.store.list(prefix, Some("/"), token, None).await?;
            pages += 1;
            raw.prefixes.extend(page.prefixes);
            raw.objects.extend(page.objects);
            token = page.next_token;
            if token.is_none() {
                break;
            }
            if max_pages.is_some_and(|m| pages >= m) {
                return Ok(None);
            }
        }
        debug!(
            prefix,
            pages,
            prefixes = raw.prefixes.len(),
            objects = raw.objects.len(),
            "listed"
        );
        Ok(Some(raw))
    }

    /// Records a merged listing of `dir` in the table; returns the entries to hand out.
    fn record_listing(&self, dir: &Inode, merged: Vec<Listed>, cached: &Cached) -> Vec<DirEntry> {
        let mut progress = Recorded::default();
        let mut entries = self.record_start(dir);
        entries.extend(self.record_items(dir, merged, &mut progress, cached));
        entries.extend(self.record_end(dir, progress));
        entries
    }

    /// `.` and `..` of `dir`.
    fn record_start(&self, dir: &Inode) -> Vec<DirEntry> {
        let table = self.table();
        let parent = table
            .get(dir.parent)
            .cloned()
            .unwrap_or_else(|| dir.clone());
        vec![self.dir_entry(dir, "."), self.dir_entry(&parent, "..")]
    }

    /// Records merged names of `dir` in the table (files completed with the headers `cached`
    /// for their version, if any); returns their entries.
    fn record_items(
        &self,
        dir: &Inode,
        items: Vec<Listed>,
        progress: &mut Recorded,
        cached: &Cached,
    ) -> Vec<DirEntry> {
        let until = self.valid_until();
        let mut table = self.table();
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            progress.subdirs += matches!(item, Listed::Dir(..)) as u32;
            progress.names.insert(item.name().to_string());
            let ino = self.record_listed(&mut table, dir, item, until, cached);
            let node = table.get(ino).unwrap();
            entries.push(self.dir_entry(node, &node.name));
            progress.order.push(ino);
        }
        entries
    }

    /// Marks `dir`'s listing complete; returns the entries of files being written there that
    /// S3 does not have yet (they belong in the listing too).
    fn record_end(&self, dir: &Inode, progress: Recorded) -> Vec<DirEntry> {
        let until = self.valid_until();
        let open: HashSet<u64> = self
            .dirs
            .lock()
            .unwrap()
            .values()
            .map(|(i, _)| *i)
            .collect();
        let mut table = self.table();
        if let Some(d) = table.dir_mut(dir.ino) {
            d.complete_until = Some(until);
            d.lookup_misses = 0;
            d.subdirs = Some(progress.subdirs);
            d.order = Some(Arc::new(progress.order));
            d.order_hint = 0;
        }
        table.listed(dir.ino, |d| open.contains(&d));
        let mut local: Vec<u64> = table
            .children_of(dir.ino)
            .into_iter()
            .filter(|c| self.writes.is_local(*c))
            .filter(|c| {
                table
                    .get(*c)
                    .is_some_and(|n| !progress.names.contains(n.name.as_str()))
            })
            .collect();
        local.sort();
        local
            .into_iter()
            .map(|c| {
                let node = table.get(c).unwrap();
                self.dir_entry(node, &node.name)
            })
            .collect()
    }

    /// Starts listing directory `ino` into a new [`Stream`], in a task of its own.
    fn start_listing(&self, ino: u64) -> FsResult<Arc<Stream>> {
        let dir = self.dir_node(ino)?;
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| FsError::new(libc::EIO, "unmounting"))?;
        let stream = Stream::new();
        let task = stream.clone();
        tokio::spawn(async move {
            let outcome = me.stream_pages(&dir, &task).await;
            task.finish(outcome);
        });
        Ok(stream)
    }

    /// Lists `dir` page by page into `stream`, publishing what each page settles.
    async fn stream_pages(&self, dir: &Inode, stream: &Stream) -> FsResult<()> {
        // `.` and `..` go out with the first page: a listing that fails at once fails the
        // first `readdir`, as before streaming.
        let mut start = Some(self.record_start(dir));
        let mut raw = RawListing::default();
        let mut progress = Recorded::default();
        let (mut token, mut pages, mut published) = (None, 0, 0usize);
        loop {
            let page = self.store.list(&dir.key, Some("/"), token, None).await?;
            pages += 1;
            let last = last_item(&page).map(|k| k[dir.key.len().min(k.len())..].to_string());
            raw.prefixes.extend(page.prefixes);
            raw.objects.extend(page.objects);
            token = page.next_token;
            let last = token.as_ref().and(last);
            let bound = last.as_deref().map(first_unsettled);
            let settled: Vec<Listed> = merge(&dir.key, raw.clone())
                .into_iter()
                .take_while(|l| bound.is_none_or(|b| l.name() < b))
                .collect();
            // Keep only what is not settled yet: the next page merges with that alone, not
            // with the whole directory again.
            if let Some(b) = bound {
                raw.retain_unsettled(&dir.key, b);
            }
            published += settled.len();
            let cached = self.cached_headers(&settled).await;
            let mut entries = start.take().unwrap_or_default();
            entries.extend(self.record_items(dir, settled, &mut progress, &cached));
            stream.publish(entries);
            if token.is_none() {
                break;
            }
        }
        debug!(prefix = %dir.key, pages, entries = published, "listed");
        stream.publish(self.record_end(dir, progress));
        Ok(())
    }

    /// Records one listed name in `dir`; returns its inode number.
    fn record_listed(
        &self,
        table: &mut InodeTable,
        dir: &Inode,
        item: Listed,
        until: std::time::Instant,
        cached: &Cached,
    ) -> u64 {
        let mut stand_in = None;
        let (name, kind, key, stat) = match item {
            Listed::Dir(name, folder) => {
                stand_in = folder;
                let key = child_prefix(&dir.key, &name);
                (name, Kind::Dir, key, Stat::basic(0, self.started))
            }
            Listed::File(name, o) => {
                if let Some(c) = table.child(dir.ino, &name) {
                    if self.writes.is_local(c.ino) && c.kind() == Kind::File {
                        return c.ino; // being written: its staged state is the truth
                    }
                }
                let stat = Stat {
                    etag: Some(o.etag.clone()),
                    modified: Some(o.last_modified),
                    ..Stat::basic(o.size, o.last_modified)
                };
                // A listing cannot tell a symlink or an s3fs directory object from a file: an
                // unchanged object keeps the kind its headers gave it.
                let kind = match table.child(dir.ino, &name) {
                    Some(c) if c.stat.etag == stat.etag && !c.is_partial() => c.kind(),
                    _ => Kind::File,
                };
                let key = match kind {
                    Kind::Dir => child_prefix(&dir.key, &name),
                    _ => o.key,
                };
                (name, kind, key, stat)
            }
        };
        let entry = Entry {
            kind,
            key,
            stat,
            source: AttrSource::Listing,
            meta: None,
        };
        let entry = with_cached_headers(entry, cached.get(&name));
        let ino = table.upsert(dir.ino, &name, entry, until);
        if let (Some(key), Some(d)) = (stand_in, table.dir_mut(ino)) {
            d.stand_in = Some(key);
        }
        ino
    }

    fn dir_entry(&self, node: &Inode, name: &str) -> DirEntry {
        DirEntry {
            ino: node.ino,
            name: name.to_string(),
            attr: self.attr_of(node),
            attr_known: self.attr_known(node),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn obj(key: &str) -> ListedObject {
        ListedObject {
            key: key.into(),
            size: 1,
            last_modified: SystemTime::UNIX_EPOCH,
            etag: "\"e\"".into(),
            storage_class: None,
        }
    }

    #[test]
    fn merge_applies_the_namespace_rules_in_name_order() {
        let raw = RawListing {
            prefixes: vec!["d/a/".into(), "d/c/".into(), "d//".into()],
            objects: vec![obj("d/"), obj("d/a"), obj("d/b"), obj("d/.."), obj("d/z")],
        };
        let merged = merge("d/", raw);
        let names: Vec<(&str, bool)> = merged
            .iter()
            .map(|l| (l.name(), matches!(l, Listed::Dir(..))))
            .collect();
        // The marker `d/`, the empty name and `..` are dropped; directory `a` hides file `a`.
        assert_eq!(
            names,
            [("a", true), ("b", false), ("c", true), ("z", false)]
        );
    }

    #[test]
    fn merge_lists_folder_objects_as_directories() {
        let raw = RawListing {
            prefixes: vec!["d/both/".into()],
            objects: vec![
                obj("d/both_$folder$"),
                obj("d/h_$folder$"),
                obj("d/h"),
                obj("d/_$folder$"),
                obj("d/x"),
            ],
        };
        assert_eq!(
            merge("d/", raw),
            [
                Listed::Dir("both".into(), Some("d/both_$folder$".into())),
                Listed::Dir("h".into(), Some("d/h_$folder$".into())),
                Listed::File("x".into(), obj("d/x")),
            ],
            "a folder object names a directory (hiding a file of that name); an empty name is skipped"
        );
    }
}

#[cfg(test)]
mod stream_tests {
    use std::ffi::OsStr;
    use std::sync::Arc;

    use super::first_unsettled;
    use crate::config::FsConfig;
    use crate::fs::inode::ROOT_INO;
    use crate::storage::mem::MemStore;
    use crate::storage::ObjectStore;

    #[test]
    fn names_below_the_first_unsettled_one_are_final() {
        assert_eq!(first_unsettled("x-1"), "x");
        assert_eq!(first_unsettled("x_$folder$"), "x");
        assert_eq!(first_unsettled("sub/"), "sub");
        assert_eq!(first_unsettled("abc"), "abc");
        assert_eq!(first_unsettled("ab~c"), "ab~c");
    }

    #[tokio::test]
    async fn a_streamed_listing_equals_the_whole_one_across_page_boundaries() {
        let store = Arc::new(MemStore::new());
        for i in 0..2500 {
            store.insert(&format!("d/f{i:04}"), "x");
        }
        // Around the page boundaries: a file hidden by a later directory, names that sort
        // before a directory listed later, an s3fs folder object.
        for k in [
            "d/f0999",
            "d/f0999-1",
            "d/f0999/in",
            "d/f1999_$folder$",
            "d/f1999.t",
        ] {
            store.insert(k, "y");
        }
        let fs =
            crate::fs::test_fs::test_fs(store.clone() as Arc<dyn ObjectStore>, FsConfig::default());
        let d = fs.lookup(ROOT_INO, OsStr::new("d")).await.unwrap().ino.0;
        let fh = fs.opendir(d).unwrap();
        let mut streamed = Vec::new();
        loop {
            let more = fs.readdir_from(fh, streamed.len() as u64).await.unwrap();
            if more.is_empty() {
                break;
            }
            streamed.extend(more.into_iter().map(|e| (e.name, e.attr.kind)));
        }
        fs.releasedir(fh);
        let fh = fs.opendir(d).unwrap();
        let whole: Vec<_> = fs
            .readdir(fh, 0)
            .await
            .unwrap()
            .iter()
            .map(|e| (e.name.clone(), e.attr.kind))
            .collect();
        assert_eq!(streamed, whole);
        let names: Vec<&str> = whole.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 2 + 2500 + 2, "{:?}", &names[..5]);
        let kind = |n: &str| whole.iter().find(|(m, _)| m == n).unwrap().1;
        assert_eq!(kind("f0999"), fuser::FileType::Directory, "hidden file");
        assert_eq!(kind("f1999"), fuser::FileType::Directory, "folder object");
        let mut sorted = names[2..].to_vec();
        sorted.sort();
        assert_eq!(names[2..], sorted[..], "name order, as the whole listing");
    }
}
