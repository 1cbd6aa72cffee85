//! Lookup: answering a name from the table when it can, from S3 when it must.
//!
//! A fresh entry is answered as it is; one known from a listing only is completed with its
//! headers; a name absent from a directory listed within the TTL, or cached as missing, is
//! ENOENT with no request. Otherwise the name is resolved: `ListObjectsV2(prefix "name/",
//! max 1)` (is it a directory?) and a probe of the object run at the same time. When a
//! directory has to resolve a second name through S3, it is listed once instead, so the
//! names that follow cost nothing: the pattern of `cat dir/*`, `cp -r` and `tar x`.

use std::time::Instant;

use fuser::FileAttr;

use super::super::inode::{AttrSource, Entry, Inode, Kind, ROOT_INO};
use super::super::names::{child_key, child_prefix};
use super::flight::Fit;
use super::Namespace;
use crate::error::{FsError, FsResult};
use crate::storage::{ListPage, StoreError};

/// Largest file known from a listing that a lookup completes with a GET of the whole object
/// rather than a HEAD (see [`Namespace::complete_entry`]). 64 KiB: the GET costs a HEAD's
/// round trip plus at most 64 KiB, and covers s3fs symlinks (≤ `PATH_MAX`) and the small files
/// that are usually read whole right after they are looked up.
const SMALL_FILE_GET: u64 = 64 << 10;

/// The largest file completed with a GET of the whole object.
pub(super) fn small_file_get(config: &crate::config::FsConfig) -> u64 {
    SMALL_FILE_GET.min(config.read.block_size)
}

/// What the table alone says about a name.
enum Known {
    /// Fresh and complete: the answer.
    Fresh(FileAttr),
    /// Fresh, but known from a listing only.
    Partial(Box<Inode>),
    /// Known not to exist.
    Absent,
    /// The table cannot tell.
    Unknown,
}

/// What the caller of a lookup expects to find, which decides what is asked at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Want {
    /// Anything: a path being walked, a file being opened.
    Any,
    /// The file it knew (a revalidation).
    File,
    /// Nothing: a name about to be created.
    Nothing,
}

/// What a listing taken for a lookup says about the name.
enum Listed {
    /// The directory needs more than one page: ask S3 about the name alone.
    TooBig,
    /// The name is this child.
    Found(Box<Inode>),
    /// The directory has no such child.
    Absent,
}

impl Namespace {
    /// Looks `name` (already validated) up in directory `parent`.
    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<FileAttr> {
        self.lookup_for(parent, name, Want::Any).await
    }

    /// Looks `name` up in `parent` for a caller who expects `want` there.
    async fn lookup_for(&self, parent: u64, name: &str, want: Want) -> FsResult<FileAttr> {
        let dir = self.dir_node(parent)?;
        match self.known(parent, name) {
            Known::Fresh(attr) => {
                self.stat_ahead(parent, attr.ino.0);
                return Ok(attr);
            }
            Known::Partial(child) => {
                self.stat_ahead(parent, child.ino);
                return self.complete_entry(*child).await;
            }
            Known::Absent => return Err(FsError::not_found()),
            Known::Unknown => {}
        }
        // A name last seen as a file is most likely one still.
        let was_file = self
            .table()
            .child(parent, name)
            .is_some_and(|c| c.kind() == Kind::File);
        let want = if was_file && want == Want::Any {
            Want::File
        } else {
            want
        };
        self.ask(&dir, name, want).await
    }

    /// Asks S3 about `name` in `dir`, which the table cannot answer (unknown, or older than
    /// the TTL): alone ([`Self::resolve`]) the first time; from a listing of the whole
    /// directory when it is the second name there since the last listing, shared with the
    /// lookups and revalidations in flight at the same time.
    pub(super) async fn ask(&self, dir: &Inode, name: &str, want: Want) -> FsResult<FileAttr> {
        if self.second_miss(dir.ino) {
            match self.lookup_by_listing(dir.ino, name).await? {
                Listed::Found(child) if child.is_partial() => {
                    return self.complete_entry(*child).await
                }
                Listed::Found(child) => return Ok(self.attr_of(&child)),
                Listed::Absent => return Err(FsError::not_found()),
                Listed::TooBig => {}
            }
        }
        self.resolve(dir, name, want).await
    }

    fn known(&self, parent: u64, name: &str) -> Known {
        let now = Instant::now();
        let table = self.table();
        if let Some(child) = table.child(parent, name) {
            if self.writes.is_local(child.ino) {
                return Known::Fresh(self.attr_of(child));
            }
            if child.valid_until > now {
                return match child.is_partial() {
                    false => Known::Fresh(self.attr_of(child)),
                    true => Known::Partial(Box::new(child.clone())),
                };
            }
            if self.ahead_in_flight(child.ino) {
                // Being asked about right now: its answer is as fresh as any.
                return Known::Partial(Box::new(child.clone()));
            }
        }
        if table.is_negative(parent, name, now) {
            return Known::Absent;
        }
        // A directory listed (or created) within the TTL has no children we don't know.
        let complete = table.get(parent).is_some_and(|d| d.is_complete(now));
        if complete && table.child(parent, name).is_none() {
            return Known::Absent;
        }
        Known::Unknown
    }

    /// Counts a name `parent` could not answer; whether it is the second since its last
    /// listing and the directory may be listed in one page.
    fn second_miss(&self, parent: u64) -> bool {
        let misses = self.table().dir_mut(parent).map_or(0, |d| {
            d.lookup_misses += 1;
            d.lookup_misses
        });
        misses >= 2 && !self.too_big_to_list(parent)
    }

    /// Whether directory `dir` was found, within the TTL, to need more than one listing page.
    pub(super) fn too_big_to_list(&self, dir: u64) -> bool {
        self.table()
            .get(dir)
            .and_then(|d| d.dir()?.too_big_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Answers a lookup of `name` in `parent` from a listing of the whole directory, taken
    /// now unless one is in flight or was taken within the TTL: lookups that miss at the same
    /// time (`xargs -P`, a parallel build, 16 readers opening their files) share one listing
    /// instead of each sending their own (see `flight.rs`).
    async fn lookup_by_listing(&self, parent: u64, name: &str) -> FsResult<Listed> {
        if self.list_for_lookups(parent).await? == Fit::TooBig {
            return Ok(Listed::TooBig);
        }
        Ok(match self.table().child(parent, name) {
            Some(child) => Listed::Found(Box::new(child.clone())),
            None => Listed::Absent,
        })
    }

    /// Completes an entry known from a listing only with its object's (or marker's) headers:
    /// s3fs's mode, owner, time and symlink type are not in listings.
    ///
    /// A small file (up to [`SMALL_FILE_GET`]) is completed with a GET of the whole object
    /// instead of a HEAD: one request of the same cost that also puts its bytes in the block
    /// cache, so `cat` of a listed file costs one request, as `curl` would, and an s3fs
    /// symlink (whose target is at most `PATH_MAX` bytes) is still seen as one. A larger file
    /// keeps its listing attributes when they may be trusted (see
    /// [`crate::config::FsConfig::trust_listing_attrs`]): its first GET follows at once anyway.
    /// Unless listings are trusted, a zero-byte object is asked with a HEAD, like a larger
    /// file: it may be an s3fs directory object, which only its headers tell.
    pub(super) async fn complete_entry(&self, node: Inode) -> FsResult<FileAttr> {
        self.wait_ahead(node.ino).await;
        let node = match self.table().get(node.ino) {
            Some(n) if !n.is_partial() => return Ok(self.attr_of(n)),
            // Completed meanwhile into another kind: the name now has another inode.
            None => return Err(FsError::new(libc::ESTALE, "replaced")),
            Some(n) => n.clone(),
        };
        if node.is_dir() {
            let attrs = self.dir_stat(&node.key, true).await?;
            let mut table = self.table();
            let n = table.get_mut(node.ino).ok_or_else(FsError::not_found)?;
            attrs.apply(n);
            return Ok(self.attr_of(n));
        }
        let small = small_file_get(&self.config);
        let fetched = if node.stat.size > 0 && node.stat.size <= small {
            self.probe
                .headers(&node.key, small, node.stat.etag.as_deref())
                .await
        } else if self.config.trust_listing_attrs {
            // Taken from the listing as it is, even an empty object that an older s3fs may
            // have meant as a directory: the user chose listing attributes.
            return Ok(self.attr_of(&node));
        } else {
            self.probe.head(&node.key).await
        };
        self.record_object(node.parent, &node.name, node.key.clone(), fetched)
    }

    /// Asks S3 what `name` in `dir` is, and records the answer: a LIST of `name/` (is it a
    /// directory?) and, at the same time, a probe of the object `name`: a file looked up by
    /// name is most often opened and read next, and its first read then waits for no request.
    pub(super) async fn resolve(&self, dir: &Inode, name: &str, want: Want) -> FsResult<FileAttr> {
        let key = child_key(&dir.key, name);
        let prefix = child_prefix(&dir.key, name);
        // The version seen last, if the name is being looked up again.
        let seen = self
            .table()
            .child(dir.ino, name)
            .and_then(|c| c.stat.etag.clone());
        // Or, after a remount, the one whose headers the disk cache kept: a hint only.
        let seen = match seen {
            Some(etag) => Some(etag),
            None => self.last_seen_etag(&key).await,
        };
        // Both at once; a LIST that finds the directory settles it without waiting for the
        // probe (whose object the directory would hide anyway). The probe runs as its own task
        // so that it still completes then: dropping a request mid-flight would close its
        // pooled connection (a new TLS handshake for the next request).
        let mut head = tokio::spawn({
            let probe = self.probe.clone();
            let key = key.clone();
            async move { probe.headers(&key, u64::MAX, seen.as_deref()).await }
        });
        // In a directory that has a marker (s3fs's, or ours from mkdir), a subdirectory most
        // likely has one too: its HEAD goes out now rather than after the LIST has told so, a
        // round trip less per path component (a HEAD more for a file; so not for a name
        // known to be a file, nor one about to be created).
        let has_marker = dir.source == AttrSource::Headers && dir.ino != ROOT_INO;
        let marker = (has_marker && want == Want::Any).then(|| {
            let probe = self.probe.clone();
            let prefix = prefix.clone();
            tokio::spawn(async move { probe.head(&prefix).await })
        });
        let joined = |r: Result<_, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| Err(StoreError::other(format!("request task failed: {e}"))))
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
            let attrs = match (has_marker, marker) {
                (true, Some(head)) => self.marker_attrs(joined(head.await))?,
                _ => self.dir_stat(&prefix, has_marker).await?,
            };
            let entry = Entry {
                kind: Kind::Dir,
                key: prefix,
                stat: attrs.stat,
                source: attrs.source,
                meta: attrs.meta,
            };
            return Ok(self.record(dir.ino, name, entry));
        }
        let head = head.expect("the object's answer unless the LIST found a directory");
        if let (true, Err(e)) = (head.as_ref().is_err_and(StoreError::is_not_found), list) {
            // "Not found" is only known when the LIST could say there is no directory either.
            return Err(e.into());
        }
        self.record_object(dir.ino, name, key, head)
    }
}

/// Whether a LIST of `name/` found anything under it.
fn says_dir(list: &Result<ListPage, StoreError>) -> bool {
    list.as_ref()
        .is_ok_and(|page| !page.objects.is_empty() || !page.prefixes.is_empty())
}

impl Namespace {
    /// Validates `name` for a new entry in `parent` and checks that nothing of that name
    /// exists (EEXIST) and that its key fits in S3's 1,024 bytes (ENAMETOOLONG).
    pub async fn new_name<'a>(&self, parent: u64, name: &'a std::ffi::OsStr) -> FsResult<&'a str> {
        let name = super::super::names::parse_name(name)?;
        let dir = self.dir_node(parent)?;
        super::super::names::check_key(&child_key(&dir.key, name))?;
        match self.lookup_for(parent, name, Want::Nothing).await {
            Ok(_) => Err(FsError::new(libc::EEXIST, format!("{name} exists"))),
            Err(e) if e.errno == libc::ENOENT => Ok(name),
            Err(e) => Err(e),
        }
    }
}
