//! The inode table: stable inode numbers for paths, and what we last learned about each.
//!
//! Design note: an inode is a (parent, name, kind) triple. Its number is allocated the first
//! time the path is seen and kept for the life of the mount (the kernel's `forget` is not
//! needed to keep memory small at the sizes this serves: one entry per path ever seen). If a
//! path changes kind (a file replaced by a directory), it gets a new number, because the
//! kernel must not see an inode change type. Each inode carries its last known [`Stat`], where
//! that stat came from ([`AttrSource`]), and a validity deadline (the metadata TTL). Per-kind
//! state (a directory's listing bookkeeping, a file's page-cache bookkeeping) is an enum,
//! [`Body`], so a file never carries directory fields. Negative answers (no such name) are
//! cached for the same TTL.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::storage::ObjectMeta;

/// The root directory's inode number, as FUSE fixes it.
pub const ROOT_INO: u64 = 1;

/// What kind of node a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (an object).
    File,
    /// A directory (a common prefix and/or a `dir/` marker object).
    Dir,
    /// A symbolic link (an object whose s3fs mode says `S_IFLNK`; the body is the target).
    Symlink,
    /// A FIFO, socket or device: a zero-byte object whose s3fs mode carries the type.
    Special,
}

/// Where a node's attributes came from, which says how far they can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrSource {
    /// A listing: size, Last-Modified and ETag only. s3fs's mode, owner and mtime are
    /// unknown, and a listed object may even be a symlink.
    Listing,
    /// The object's (or directory marker's) own headers, or a change made through this mount.
    Headers,
    /// A directory without a marker object: the mount's defaults are the whole truth.
    NoMarker,
}

/// What we know of a node's attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time (s3fs `x-amz-meta-mtime`, else LastModified).
    pub mtime: SystemTime,
    /// Access time (`x-amz-meta-atime`, else the mtime). Reads do not move it (`noatime`).
    pub atime: SystemTime,
    /// Status change time (`x-amz-meta-ctime`, else LastModified).
    pub ctime: SystemTime,
    /// ETag of the object (or marker) this came from.
    pub etag: Option<String>,
    /// Full `st_mode` from s3fs's `x-amz-meta-mode`, if the object carries one.
    pub mode: Option<u32>,
    /// Owner from `x-amz-meta-uid`.
    pub uid: Option<u32>,
    /// Group from `x-amz-meta-gid`.
    pub gid: Option<u32>,
    /// Device number from `x-amz-meta-rdev` (character and block devices).
    pub rdev: u32,
    /// S3's Last-Modified of the version this came from, when S3 told it. With the ETag it
    /// identifies a version together with its metadata: a CopyObject onto itself (another
    /// client's chmod) keeps the ETag of a simple upload but not its Last-Modified.
    pub modified: Option<SystemTime>,
}

impl Stat {
    /// A stat with only a size and a time.
    pub fn basic(size: u64, mtime: SystemTime) -> Self {
        Stat {
            size,
            mtime,
            atime: mtime,
            ctime: mtime,
            etag: None,
            mode: None,
            uid: None,
            gid: None,
            rdev: 0,
            modified: None,
        }
    }
}

/// A tag set as read from S3.
pub type TagSet = Arc<Vec<(String, String)>>;

/// A directory's bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct DirState {
    /// Until when the table knows *every* child (after a complete listing, or for a
    /// directory we just created), so a name it does not know is absent.
    pub complete_until: Option<Instant>,
    /// Names resolved through S3 since the last listing (see the namespace's lookup).
    pub lookup_misses: u32,
    /// Until when a listing for lookups is known to need more than one page, so lookups
    /// that miss ask S3 about their name alone.
    pub too_big_until: Option<Instant>,
    /// Subdirectories counted by the last listing, kept up to date by mkdir, rmdir and
    /// rename: `st_nlink` is 2 plus this.
    pub subdirs: Option<u32>,
    /// The children in the order of the last listing (see the namespace's stat-ahead).
    pub order: Option<Arc<Vec<u64>>>,
    /// Where in `order` the last lookup was found.
    pub order_hint: usize,
    /// When an entry was last created, removed or renamed in it through this mount (and its
    /// times not set explicitly since): what S3 says later never shows it earlier.
    pub changed: Option<SystemTime>,
    /// The object that stands for this directory besides (or instead of) its `dir/` marker,
    /// when one is known: s3fs's older `dir` (no slash) object, or a `dir_$folder$` object.
    /// `rmdir` deletes it too.
    pub stand_in: Option<String>,
    /// Which of the table's recorded listings is this directory's last (see
    /// [`InodeTable::listed`]).
    pub listing_seq: u64,
}

/// A file's (or symlink's) page-cache bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct FileState {
    /// The version whose pages may be in the kernel's page cache (set by an open that let
    /// the kernel cache; cleared when the file is opened for writing).
    pub cache_etag: Option<String>,
    /// Open handles that read through the kernel's page cache.
    pub cached_opens: u32,
    /// Unlinked while still open: `st_nlink` is 0 until the last handle closes.
    pub unlinked: bool,
    /// Opens so far that read through the kernel's page cache: a handle that finds it
    /// unchanged since its own open knows that no other handle has put pages there since.
    pub cache_epoch: u64,
    /// The size of the version in the page cache (`cache_etag`): while handles read that
    /// version through the cache, the kernel must not believe in another version's size, or a
    /// read past the old end would come back zero-padded.
    pub cache_size: u64,
}

/// Per-kind state of a node.
#[derive(Clone, Debug)]
pub enum Body {
    /// A directory (boxed: most nodes are files, and a file's state is half the size).
    Dir(Box<DirState>),
    /// A regular file.
    File(FileState),
    /// A symbolic link.
    Symlink(FileState),
    /// A FIFO, socket or device.
    Special(FileState),
}

impl Body {
    fn of(kind: Kind) -> Body {
        match kind {
            Kind::Dir => Body::Dir(Box::default()),
            Kind::File => Body::File(FileState::default()),
            Kind::Symlink => Body::Symlink(FileState::default()),
            Kind::Special => Body::Special(FileState::default()),
        }
    }
}

/// What a lookup, listing or change says a path is, for [`InodeTable::upsert`].
#[derive(Clone, Debug)]
pub struct Entry {
    /// Kind of node.
    pub kind: Kind,
    /// Full key (files) or prefix (directories).
    pub key: String,
    /// Attributes learned.
    pub stat: Stat,
    /// Where they came from.
    pub source: AttrSource,
    /// A fresh `HeadObject` answer, when the attributes came from one.
    pub meta: Option<Arc<ObjectMeta>>,
}

impl Entry {
    /// An entry whose attributes come from the object's own headers (or our own change).
    pub fn known(kind: Kind, key: String, stat: Stat, meta: Option<Arc<ObjectMeta>>) -> Self {
        Entry {
            kind,
            key,
            stat,
            source: AttrSource::Headers,
            meta,
        }
    }
}

/// One node.
#[derive(Clone, Debug)]
pub struct Inode {
    /// Inode number.
    pub ino: u64,
    /// Parent's inode number (the root is its own parent).
    pub parent: u64,
    /// Name in the parent.
    pub name: String,
    /// Full key for files and symlinks; full prefix (ending in `/`, or empty) for directories.
    pub key: String,
    /// Last known attributes.
    pub stat: Stat,
    /// Where `stat` came from.
    pub source: AttrSource,
    /// Until when `stat` may be served without asking S3 again.
    pub valid_until: Instant,
    /// Last `HeadObject` answer, if any (its ETag tells whether it still applies).
    pub meta: Option<Arc<ObjectMeta>>,
    /// Last tag set read, with its deadline.
    pub tags: Option<(Instant, TagSet)>,
    /// Per-kind state.
    pub body: Body,
    /// References the kernel holds (entries it was given, less what it forgot): at zero the
    /// node may leave the table.
    pub lookups: u64,
}

impl Inode {
    /// The node's kind.
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Dir(_) => Kind::Dir,
            Body::File(_) => Kind::File,
            Body::Symlink(_) => Kind::Symlink,
            Body::Special(_) => Kind::Special,
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    /// A directory's bookkeeping (`None` for files).
    pub fn dir(&self) -> Option<&DirState> {
        match &self.body {
            Body::Dir(d) => Some(&**d),
            _ => None,
        }
    }

    /// A directory's bookkeeping, mutably.
    pub fn dir_mut(&mut self) -> Option<&mut DirState> {
        match &mut self.body {
            Body::Dir(d) => Some(&mut **d),
            _ => None,
        }
    }

    /// A file's page-cache bookkeeping (`None` for directories).
    pub fn file_mut(&mut self) -> Option<&mut FileState> {
        match &mut self.body {
            Body::File(f) | Body::Symlink(f) | Body::Special(f) => Some(f),
            Body::Dir(_) => None,
        }
    }

    /// Whether the table knows every child of this directory as of `now`.
    pub fn is_complete(&self, now: Instant) -> bool {
        self.dir()
            .and_then(|d| d.complete_until)
            .is_some_and(|until| until > now)
    }

    /// Whether the attributes are known from a listing only (the root never is).
    pub fn is_partial(&self) -> bool {
        self.source == AttrSource::Listing && self.ino != ROOT_INO
    }
}

/// The name → inode mapping, indexed by parent, so that a directory's children are found
/// without a scan of the whole table (a scan per listing made `find` over a million objects
/// quadratic) and a lookup by name needs no allocation.
#[derive(Debug, Default)]
struct Children(HashMap<u64, HashMap<String, u64>>);

impl Children {
    fn get(&self, parent: u64, name: &str) -> Option<u64> {
        self.0.get(&parent)?.get(name).copied()
    }

    fn insert(&mut self, parent: u64, name: &str, ino: u64) {
        self.0
            .entry(parent)
            .or_default()
            .insert(name.to_string(), ino);
    }

    fn remove(&mut self, parent: u64, name: &str) {
        if let Some(names) = self.0.get_mut(&parent) {
            names.remove(name);
            if names.is_empty() {
                self.0.remove(&parent);
            }
        }
    }

    fn has(&self, parent: u64) -> bool {
        self.0.contains_key(&parent)
    }

    fn of(&self, parent: u64) -> Vec<u64> {
        self.0
            .get(&parent)
            .map(|names| names.values().copied().collect())
            .unwrap_or_default()
    }
}

/// How many nodes the table keeps before it forgets what old listings taught: past it, the
/// directories listed longest ago drop their children that the kernel does not hold and
/// that only a listing described (about 600 bytes each, so about 60 MB), and are listed again
/// when needed. What the kernel holds is never dropped: that costs its bytes per node.
pub const NODES_KEPT: usize = 100_000;

/// Hands the allocator's free memory back to the system: glibc keeps what a large table freed
/// (its nodes are small allocations) for reuse, so without this RSS would not drop after the
/// kernel let go of a million nodes. Runs only when the table has shrunk fourfold.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas; it takes no
    // pointer and is thread-safe (it locks each arena).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The table of every inode of the mount.
#[derive(Debug)]
pub struct InodeTable {
    /// Boxed: the map's slots stay small, so growing it copies 16 bytes per node, not 300.
    by_ino: HashMap<u64, Box<Inode>>,
    by_name: Children,
    negative: HashMap<(u64, String), Instant>,
    next_ino: u64,
    /// Directories in the order their listings were recorded, each with its listing's
    /// number (a directory listed again is found later in the queue under a newer number).
    listings: VecDeque<(u64, u64)>,
    /// The number of the last recorded listing.
    listing_seq: u64,
    /// See [`NODES_KEPT`] (a parameter for tests).
    nodes_kept: usize,
}

impl InodeTable {
    /// A table holding only the root, which maps to `root_prefix`.
    pub fn new(root_prefix: &str) -> Self {
        let root = Inode {
            ino: ROOT_INO,
            parent: ROOT_INO,
            name: String::new(),
            key: root_prefix.to_string(),
            stat: Stat::basic(0, SystemTime::now()),
            source: AttrSource::NoMarker,
            valid_until: Instant::now() + Duration::from_secs(100 * 365 * 86400),
            meta: None,
            tags: None,
            body: Body::of(Kind::Dir),
            lookups: 1,
        };
        InodeTable {
            by_ino: HashMap::from([(ROOT_INO, Box::new(root))]),
            by_name: Children::default(),
            negative: HashMap::new(),
            next_ino: ROOT_INO + 1,
            listings: VecDeque::new(),
            listing_seq: 0,
            nodes_kept: NODES_KEPT,
        }
    }

    /// The same table, keeping `n` nodes instead of [`NODES_KEPT`].
    pub fn keeping(mut self, n: usize) -> Self {
        self.nodes_kept = n;
        self
    }

    /// Notes that a listing of `dir` was recorded. While the table holds more than
    /// [`NODES_KEPT`] nodes, the directories listed longest ago (not `dir`, and none that
    /// `is_open` says a handle is reading: `ls -l` of a directory larger than the bound stats
    /// its entries while it reads them) forget their children that the kernel does not hold
    /// and that only a listing described, and with them their completeness (a lookup there
    /// asks S3 again; a readdir lists again).
    pub fn listed(&mut self, dir: u64, is_open: impl Fn(u64) -> bool) {
        self.listing_seq += 1;
        let seq = self.listing_seq;
        let Some(d) = self.dir_mut(dir) else {
            return;
        };
        d.listing_seq = seq;
        self.listings.push_back((dir, seq));
        let mut spared = Vec::new();
        while self.by_ino.len() > self.nodes_kept {
            let Some((old, old_seq)) = self.listings.pop_front() else {
                break;
            };
            let current = self.get(old).and_then(Inode::dir).map(|d| d.listing_seq);
            if current != Some(old_seq) {
                continue; // listed again since: a later entry stands for it
            }
            if old == dir || is_open(old) {
                spared.push((old, old_seq));
                continue;
            }
            self.forget_listing(old);
        }
        for kept in spared.into_iter().rev() {
            self.listings.push_front(kept);
        }
        self.give_back_memory();
    }

    /// Drops the children of `dir` that the kernel does not hold, that only a listing
    /// described and that have no children of their own; `dir` is no longer complete.
    fn forget_listing(&mut self, dir: u64) {
        for child in self.by_name.of(dir) {
            let droppable = self.get(child).is_some_and(|c| {
                c.lookups == 0 && c.source != AttrSource::Headers && !self.by_name.has(child)
            });
            if droppable {
                if let Some(c) = self.by_ino.remove(&child) {
                    self.by_name.remove(dir, &c.name);
                }
            }
        }
        if let Some(d) = self.dir_mut(dir) {
            d.complete_until = None;
            d.order = None;
        }
    }

    /// Gives memory back once most of the table is gone: a hash map never shrinks by itself.
    fn give_back_memory(&mut self) {
        if self.by_ino.capacity() > 4 * self.by_ino.len() + 4096 {
            self.by_ino.shrink_to(2 * self.by_ino.len());
            trim_heap();
        }
    }

    /// The inode numbered `ino`.
    pub fn get(&self, ino: u64) -> Option<&Inode> {
        self.by_ino.get(&ino).map(|n| &**n)
    }

    /// The inode numbered `ino`, mutably.
    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Inode> {
        self.by_ino.get_mut(&ino).map(|n| &mut **n)
    }

    /// The directory state of `ino`, mutably, if it is a directory.
    pub fn dir_mut(&mut self, ino: u64) -> Option<&mut DirState> {
        self.by_ino.get_mut(&ino).and_then(|n| n.dir_mut())
    }

    /// The child `name` of `parent`, if known (fresh or not).
    pub fn child(&self, parent: u64, name: &str) -> Option<&Inode> {
        self.by_name
            .get(parent, name)
            .and_then(|i| self.by_ino.get(&i))
            .map(|n| &**n)
    }

    /// Whether `name` in `parent` is known not to exist as of `now`.
    pub fn is_negative(&self, parent: u64, name: &str, now: Instant) -> bool {
        self.negative
            .get(&(parent, name.to_string()))
            .is_some_and(|until| *until > now)
    }

    /// Remembers that `name` does not exist in `parent` until `until`.
    pub fn set_negative(&mut self, parent: u64, name: &str, until: Instant) {
        self.forget_child(parent, name);
        if self.negative.len() > 100_000 {
            let now = Instant::now();
            self.negative.retain(|_, t| *t > now);
        }
        self.negative.insert((parent, name.to_string()), until);
    }

    /// Drops the name → inode mapping of `name` in `parent` (the inode number stays valid for
    /// handles still open on it).
    pub fn forget_child(&mut self, parent: u64, name: &str) {
        self.by_name.remove(parent, name);
    }

    /// Records that `name` in `parent` is what `entry` says, valid until `valid_until`, and
    /// returns its inode number.
    ///
    /// A listing carries less than the object's headers: when `entry` comes from one and the
    /// object is unchanged (same ETag), what the headers taught is kept and only the deadline
    /// moves.
    pub fn upsert(&mut self, parent: u64, name: &str, entry: Entry, valid_until: Instant) -> u64 {
        self.negative.remove(&(parent, name.to_string()));
        if let Some(ino) = self.by_name.get(parent, name) {
            let node = self.by_ino.get_mut(&ino).expect("named inode exists");
            if node.kind() == entry.kind {
                update_node(node, entry, valid_until);
                return ino;
            }
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let Entry {
            kind,
            key,
            stat,
            source,
            meta,
        } = entry;
        let node = Inode {
            ino,
            parent,
            name: name.to_string(),
            key,
            stat,
            source,
            valid_until,
            meta,
            tags: None,
            body: Body::of(kind),
            lookups: 0,
        };
        self.by_ino.insert(ino, Box::new(node));
        self.by_name.insert(parent, name, ino);
        ino
    }

    /// Moves inode `ino` to `new_name` in `new_parent` (rename), replacing any mapping there.
    pub fn move_node(&mut self, ino: u64, new_parent: u64, new_name: &str, new_key: String) {
        if let Some(n) = self.by_ino.get(&ino) {
            if self.by_name.get(n.parent, &n.name) == Some(ino) {
                self.by_name.remove(n.parent, &n.name);
            }
        }
        self.by_name.insert(new_parent, new_name, ino);
        self.negative.remove(&(new_parent, new_name.to_string()));
        if let Some(n) = self.by_ino.get_mut(&ino) {
            n.parent = new_parent;
            n.name = new_name.to_string();
            n.key = new_key;
        }
    }

    /// Rewrites the key of every inode under `old_prefix` to lie under `new_prefix` (after a
    /// directory rename), so open handles and cached entries follow the move.
    pub fn rekey_prefix(&mut self, old_prefix: &str, new_prefix: &str) {
        if old_prefix.is_empty() {
            return;
        }
        let now = Instant::now();
        for n in self.by_ino.values_mut() {
            if let Some(rest) = n.key.strip_prefix(old_prefix) {
                n.key = format!("{new_prefix}{rest}");
                // The copies have new ETags: ask S3 again before trusting the old ones.
                if !n.is_dir() {
                    n.valid_until = now;
                    n.meta = None;
                }
            }
        }
    }

    /// Inode numbers of the children of `parent` that the table knows.
    pub fn children_of(&self, parent: u64) -> Vec<u64> {
        self.by_name.of(parent)
    }

    /// Counts one more reference of the kernel to `ino` (an entry handed to it by lookup,
    /// create, mkdir, mknod, symlink or readdirplus).
    /// False when `ino` is not in the table (forgotten meanwhile): the kernel must not get it.
    pub fn remember(&mut self, ino: u64) -> bool {
        let Some(n) = self.by_ino.get_mut(&ino) else {
            return false;
        };
        n.lookups += 1;
        true
    }

    /// Takes back a [`remember`](Self::remember) whose entry did not reach the kernel (the
    /// node stays, even at zero: the entry may be sent next time).
    pub fn unremember(&mut self, ino: u64) {
        if let Some(n) = self.by_ino.get_mut(&ino) {
            n.lookups = n.lookups.saturating_sub(1);
        }
    }

    /// The kernel dropped `count` references to `ino` (FORGET). At zero the node leaves the
    /// table, unless `keep` says something of ours still uses it (a file being written), and
    /// so do those of its children the kernel never held. The root stays. Returns how many
    /// nodes left.
    pub fn forget(&mut self, ino: u64, count: u64, keep: impl Fn(u64) -> bool) -> usize {
        let Some(n) = self.by_ino.get_mut(&ino) else {
            return 0;
        };
        n.lookups = n.lookups.saturating_sub(count);
        if n.lookups > 0 || ino == ROOT_INO || keep(ino) {
            return 0;
        }
        let gone = self.drop_node(ino, &keep);
        self.give_back_memory();
        gone
    }

    /// Removes `ino` (and, for a directory, its children the kernel does not hold); returns
    /// how many nodes left.
    fn drop_node(&mut self, ino: u64, keep: &impl Fn(u64) -> bool) -> usize {
        let Some(node) = self.by_ino.remove(&ino) else {
            return 0;
        };
        if self.by_name.get(node.parent, &node.name) == Some(ino) {
            self.by_name.remove(node.parent, &node.name);
            // The parent's listing no longer has every child in the table: a lookup must not
            // take a name's absence for a miss, nor readdir serve the table.
            if let Some(d) = self.dir_mut(node.parent) {
                d.complete_until = None;
                d.order = None;
            }
        }
        let mut gone = 1;
        if node.is_dir() {
            for child in self.by_name.of(ino) {
                let unheld = self.by_ino.get(&child).is_some_and(|c| c.lookups == 0);
                if unheld && !keep(child) {
                    gone += self.drop_node(child, keep);
                }
            }
        }
        gone
    }

    /// Number of inodes known.
    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    /// Whether only the root is known.
    pub fn is_empty(&self) -> bool {
        self.by_ino.len() <= 1
    }
}

/// Applies `entry` to an existing node of the same kind.
fn update_node(node: &mut Inode, entry: Entry, valid_until: Instant) {
    let Entry {
        key,
        stat,
        source,
        meta,
        ..
    } = entry;
    let unchanged = node.stat.etag.is_some()
        && node.stat.etag == stat.etag
        && same_second(node.stat.modified, stat.modified);
    // A listing says nothing of a directory's marker, nor more than a HEAD did of an
    // unchanged object: what was learned earlier still holds.
    let keep = unchanged || node.is_dir();
    if source == AttrSource::Listing && node.source != AttrSource::Listing && keep {
        node.stat.size = stat.size;
        // What we wrote ourselves has no Last-Modified yet: learn it now.
        node.stat.modified = node.stat.modified.or(stat.modified);
    } else {
        if !unchanged {
            node.tags = None;
        }
        node.meta = meta.or_else(|| node.meta.take().filter(|_| unchanged));
        let mut stat = stat;
        if unchanged {
            // A HEAD's Last-Modified is an HTTP date, whole seconds; a listing's has
            // milliseconds. Keep the finer one, so mtime does not jump back and forth.
            stat.mtime = finer(node.stat.mtime, stat.mtime);
            stat.ctime = finer(node.stat.ctime, stat.ctime);
        }
        if let Some(changed) = node.dir().and_then(|d| d.changed) {
            // Entries changed here since: the directory's times do not go back.
            stat.mtime = stat.mtime.max(changed);
            stat.ctime = stat.ctime.max(changed);
        }
        node.stat = stat;
        node.source = source;
    }
    node.valid_until = valid_until;
    node.key = key;
}

/// Whether two Last-Modified times (either unknown counts as the same) name the same whole
/// second: a HEAD's is an HTTP date, a listing's has milliseconds.
fn same_second(a: Option<SystemTime>, b: Option<SystemTime>) -> bool {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    match (a, b) {
        (Some(a), Some(b)) => secs(a) == secs(b),
        _ => true,
    }
}

/// `new`, or `old` when both name the same whole second and only `old` has a fraction.
pub(crate) fn finer(old: SystemTime, new: SystemTime) -> SystemTime {
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let (o, n) = (secs(old), secs(new));
    if n.subsec_nanos() == 0 && o.as_secs() == n.as_secs() {
        old
    } else {
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, key: &str, source: AttrSource, etag: &str) -> Entry {
        Entry {
            kind,
            key: key.into(),
            stat: Stat {
                etag: Some(etag.into()),
                ..Stat::basic(1, SystemTime::UNIX_EPOCH)
            },
            source,
            meta: None,
        }
    }

    #[test]
    fn inode_numbers_are_stable_and_kind_changes_renumber() {
        let mut t = InodeTable::new("");
        let later = Instant::now() + Duration::from_secs(5);
        let a = t.upsert(
            ROOT_INO,
            "a",
            entry(Kind::File, "a", AttrSource::Listing, "e"),
            later,
        );
        let a2 = t.upsert(
            ROOT_INO,
            "a",
            entry(Kind::File, "a", AttrSource::Listing, "e"),
            later,
        );
        assert_eq!(a, a2);
        let d = t.upsert(
            ROOT_INO,
            "a",
            entry(Kind::Dir, "a/", AttrSource::Listing, "e"),
            later,
        );
        assert_ne!(a, d);
        assert_eq!(t.child(ROOT_INO, "a").unwrap().kind(), Kind::Dir);
    }

    #[test]
    fn a_listing_keeps_what_headers_said_while_the_object_is_unchanged() {
        let mut t = InodeTable::new("");
        let later = Instant::now() + Duration::from_secs(5);
        let mut known = entry(Kind::File, "f", AttrSource::Headers, "v1");
        known.stat.mode = Some(libc::S_IFREG | 0o755);
        let f = t.upsert(ROOT_INO, "f", known, later);
        t.upsert(
            ROOT_INO,
            "f",
            entry(Kind::File, "f", AttrSource::Listing, "v1"),
            later,
        );
        let n = t.get(f).unwrap();
        assert_eq!(n.stat.mode, Some(libc::S_IFREG | 0o755));
        assert_eq!(n.source, AttrSource::Headers);
        // A new version seen in a listing makes the attributes partial again.
        t.upsert(
            ROOT_INO,
            "f",
            entry(Kind::File, "f", AttrSource::Listing, "v2"),
            later,
        );
        let n = t.get(f).unwrap();
        assert_eq!(n.stat.mode, None);
        assert!(n.is_partial());
    }

    #[test]
    fn a_copy_onto_itself_is_a_new_version_though_the_etag_stays() {
        let mut t = InodeTable::new("");
        let later = Instant::now() + Duration::from_secs(5);
        let at = |secs| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        let mut known = entry(Kind::File, "f", AttrSource::Headers, "v1");
        known.stat.mode = Some(libc::S_IFREG | 0o755);
        known.stat.modified = at(100);
        let f = t.upsert(ROOT_INO, "f", known, later);
        let mut listed = entry(Kind::File, "f", AttrSource::Listing, "v1");
        listed.stat.modified = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(100_250));
        t.upsert(ROOT_INO, "f", listed.clone(), later);
        assert!(
            !t.get(f).unwrap().is_partial(),
            "the same second: unchanged"
        );
        listed.stat.modified = at(160);
        t.upsert(ROOT_INO, "f", listed, later);
        assert!(
            t.get(f).unwrap().is_partial(),
            "another client's chmod: ask again"
        );
    }

    #[test]
    fn negative_entries_expire_and_are_cleared_by_upsert() {
        let mut t = InodeTable::new("");
        let now = Instant::now();
        t.set_negative(ROOT_INO, "x", now + Duration::from_secs(5));
        assert!(t.is_negative(ROOT_INO, "x", now));
        assert!(!t.is_negative(ROOT_INO, "x", now + Duration::from_secs(6)));
        t.upsert(
            ROOT_INO,
            "x",
            entry(Kind::File, "x", AttrSource::Listing, "e"),
            now,
        );
        assert!(!t.is_negative(ROOT_INO, "x", now));
    }

    #[test]
    fn past_the_bound_old_listings_forget_what_the_kernel_does_not_hold() {
        let mut t = InodeTable::new("").keeping(8);
        let later = Instant::now() + Duration::from_secs(5);
        // Lists `dir` with `names` while the directory `open` (0: none) has a handle reading it.
        let list = |t: &mut InodeTable, dir: &str, names: &[&str], open: u64| {
            let d = t.upsert(
                ROOT_INO,
                dir,
                entry(Kind::Dir, dir, AttrSource::Listing, ""),
                later,
            );
            let kids: Vec<u64> = names
                .iter()
                .map(|n| t.upsert(d, n, entry(Kind::File, n, AttrSource::Listing, "e"), later))
                .collect();
            t.dir_mut(d).unwrap().complete_until = Some(later);
            t.listed(d, |x| x == open);
            (d, kids)
        };
        let complete = |t: &InodeTable, d: u64| t.get(d).unwrap().is_complete(Instant::now());
        let (a, a_kids) = list(&mut t, "a", &["1", "2", "3"], 0);
        assert!(t.remember(a_kids[0]), "the kernel holds a/1");
        assert_eq!(t.len(), 5, "under the bound: nothing forgotten");
        let (b, _) = list(&mut t, "b", &["1", "2", "3"], 0);
        // 9 nodes > 8: a (listed first) forgets a/2 and a/3, keeps a/1 (held), and is no
        // longer complete; b, just listed, keeps everything.
        assert_eq!(t.len(), 7);
        assert!(t.get(a_kids[0]).is_some() && t.get(a_kids[1]).is_none());
        assert!(!complete(&t, a) && complete(&t, b));
        // b listed again, then c while b is open (being read): b is spared.
        t.listed(b, |_| false);
        let (c, _) = list(&mut t, "c", &["1", "2"], b);
        assert!(complete(&t, b) && complete(&t, c));
        // Once b is closed, the next listing trims it.
        let (d, _) = list(&mut t, "d", &[], 0);
        assert!(!complete(&t, b) && complete(&t, d));
        assert!(t.len() <= 8, "{} nodes", t.len());
    }

    #[test]
    fn a_node_leaves_when_the_kernel_forgets_its_last_reference() {
        let mut t = InodeTable::new("");
        let later = Instant::now() + Duration::from_secs(5);
        let d = t.upsert(
            ROOT_INO,
            "d",
            entry(Kind::Dir, "d/", AttrSource::Listing, ""),
            later,
        );
        let f = t.upsert(
            d,
            "f",
            entry(Kind::File, "d/f", AttrSource::Listing, "e"),
            later,
        );
        let g = t.upsert(
            d,
            "g",
            entry(Kind::File, "d/g", AttrSource::Listing, "e"),
            later,
        );
        t.dir_mut(d).unwrap().complete_until = Some(later);
        assert!(t.remember(d) && t.remember(f) && t.remember(f));
        assert_eq!(t.forget(f, 1, |_| false), 0, "one reference left");
        assert_eq!(t.forget(f, 1, |_| false), 1);
        assert!(t.get(f).is_none() && t.child(d, "f").is_none());
        assert!(!t.remember(f), "a forgotten node is not handed out again");
        // The directory no longer knows every child: absence is not a miss any more.
        assert!(!t.get(d).unwrap().is_complete(Instant::now()));
        // A node something of ours still uses stays at zero.
        assert!(t.remember(g));
        assert_eq!(t.forget(g, 1, |i| i == g), 0);
        assert!(t.get(g).is_some());
        // A directory leaves with the children the kernel never held; the root never leaves.
        assert_eq!(t.forget(d, 1, |_| false), 2);
        assert!(t.get(g).is_none() && t.child(ROOT_INO, "d").is_none());
        assert_eq!(t.forget(ROOT_INO, 1, |_| false), 0);
        assert_eq!(t.len(), 1);
        // A reference taken back leaves the node in place, even at zero.
        let h = t.upsert(
            ROOT_INO,
            "h",
            entry(Kind::File, "h", AttrSource::Listing, "e"),
            later,
        );
        assert!(t.remember(h));
        t.unremember(h);
        assert_eq!(t.get(h).unwrap().lookups, 0);
    }
}
