//! Listing a directory: every page of `ListObjectsV2(prefix, delimiter "/")`, merged by the
//! namespace rules and recorded in the inode table.
//!
//! Three steps: [`Namespace::fetch_pages`] asks S3, [`merge`] (pure, unit-tested) applies the
//! rules — unusable names dropped, the directory's own marker skipped, a `name_$folder$`
//! object listed as directory `name`, a directory hiding a file of the same name — and [`Namespace::record_listing`] records each entry's size, mtime
//! and ETag in the table and adds the files being written that S3 does not have yet. Offsets
//! handed to the kernel are indexes into that snapshot, taken at the first `readdir` of a
//! handle (and again when the kernel rewinds to offset 0).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fuser::FileAttr;
use tracing::{debug, warn};

use super::super::inode::{AttrSource, Entry, Inode, InodeTable, Kind, Stat};
use super::super::names::{check_name, child_prefix};
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

/// An open directory.
pub(super) struct DirHandle {
    ino: u64,
    entries: Option<Arc<Vec<DirEntry>>>,
}

/// What S3 listed under a prefix, before the namespace rules.
#[derive(Debug, Default)]
pub struct RawListing {
    /// Common prefixes, each ending with `/`.
    pub prefixes: Vec<String>,
    /// Objects directly under the prefix.
    pub objects: Vec<ListedObject>,
}

/// Suffix of the objects that stand for directories in s3fs's and Hadoop's older buckets.
const FOLDER_SUFFIX: &str = "_$folder$";

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

impl Namespace {
    /// Opens directory `ino`.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        self.dir_node(ino)?;
        let fh = self.next_dir_handle.fetch_add(1, Ordering::Relaxed);
        let handle = DirHandle { ino, entries: None };
        self.dirs
            .lock()
            .unwrap()
            .insert(fh, Arc::new(tokio::sync::Mutex::new(handle)));
        Ok(fh)
    }

    /// Entries of open directory `fh`. The listing is taken at the first call (and again
    /// when the kernel rewinds to offset 0).
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
            let entries = self
                .list_dir_limited(handle.ino, None)
                .await?
                .expect("an unlimited listing completes");
            handle.entries = Some(Arc::new(entries));
        }
        Ok(handle.entries.clone().unwrap())
    }

    /// Entries of open directory `fh` from index `offset` on (at most [`PLUS_BATCH`]), with
    /// their attributes, for `readdirplus`. Past the first batch the kernel asks for these
    /// only when the entries it got were stat'ed (`ls -l`): then the partial entries of this
    /// batch are completed before the answer, in parallel, and the next ones start.
    pub async fn readdirplus(&self, fh: u64, offset: u64) -> FsResult<Vec<DirEntry>> {
        let all = self.readdir(fh, offset).await?;
        let start = (offset as usize).min(all.len());
        let batch = &all[start..(start + PLUS_BATCH).min(all.len())];
        if offset == 0 || self.config.trust_listing_attrs {
            return Ok(batch.to_vec());
        }
        let ahead_end = (start + PLUS_BATCH + super::ahead::STAT_AHEAD).min(all.len());
        let partial = |e: &&DirEntry| !e.attr_known;
        let wanted: Vec<u64> = all[start..ahead_end]
            .iter()
            .filter(partial)
            .map(|e| e.ino)
            .collect();
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
        Ok(Some(self.record_listing(&dir, merged)))
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
    fn record_listing(&self, dir: &Inode, merged: Vec<Listed>) -> Vec<DirEntry> {
        let until = self.valid_until();
        let mut table = self.table();
        let subdirs = merged
            .iter()
            .filter(|l| matches!(l, Listed::Dir(..)))
            .count();
        if let Some(d) = table.dir_mut(dir.ino) {
            d.complete_until = Some(until);
            d.lookup_misses = 0;
            d.subdirs = Some(subdirs as u32);
        }
        let parent = table
            .get(dir.parent)
            .cloned()
            .unwrap_or_else(|| dir.clone());
        let mut entries = Vec::with_capacity(merged.len() + 2);
        entries.push(self.dir_entry(dir, "."));
        entries.push(self.dir_entry(&parent, ".."));
        // Files being written that S3 does not have yet belong in the listing too.
        let listed: HashSet<&str> = merged.iter().map(Listed::name).collect();
        let mut local: Vec<u64> = table
            .children_of(dir.ino)
            .into_iter()
            .filter(|c| self.writes.is_local(*c))
            .filter(|c| {
                table
                    .get(*c)
                    .is_some_and(|n| !listed.contains(n.name.as_str()))
            })
            .collect();
        local.sort();
        for c in local {
            let node = table.get(c).unwrap();
            entries.push(self.dir_entry(node, &node.name));
        }
        let mut order = Vec::with_capacity(merged.len());
        for item in merged {
            let ino = self.record_listed(&mut table, dir, item, until);
            let node = table.get(ino).unwrap();
            entries.push(self.dir_entry(node, &node.name));
            order.push(ino);
        }
        if let Some(d) = table.dir_mut(dir.ino) {
            d.order = Some(Arc::new(order));
            d.order_hint = 0;
        }
        entries
    }

    /// Records one listed name in `dir`; returns its inode number.
    fn record_listed(
        &self,
        table: &mut InodeTable,
        dir: &Inode,
        item: Listed,
        until: std::time::Instant,
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
