//! POSIX attributes in s3fs's headers: how they are read from an object, written back, and
//! shown to the kernel.
//!
//! Design note: s3fs keeps what S3 has no place for in user metadata (`x-amz-meta-mode`,
//! `-uid`, `-gid`, `-mtime`; see `shared/INTEROP.md`). This module is the one place that
//! knows those names and formats: [`stat_from_meta`] reads them, [`apply_change`] writes them,
//! and [`file_attr`] turns a node into what `stat` shows, filling what is unknown with the
//! mount's defaults. Nothing here does I/O.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use super::inode::{Body, Inode, Kind, Stat};
use crate::config::FsConfig;
use crate::error::{FsError, FsResult};
use crate::storage::{ObjectMeta, PutOptions};

/// S3 allows 2 KB of user metadata (keys and values together).
pub const MAX_METADATA_BYTES: usize = 2048;

/// A change of attributes asked by `setattr`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttrChange {
    /// New permission bits (and type bits, ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
    /// New access time.
    pub atime: Option<SystemTime>,
}

impl AttrChange {
    /// Whether the change touches what is kept in metadata (anything but the size).
    pub fn touches_metadata(&self) -> bool {
        self.mode.is_some()
            || self.uid.is_some()
            || self.gid.is_some()
            || self.mtime.is_some()
            || self.atime.is_some()
    }
}

/// What `stat` shows for `node`, with the mount's defaults where the object says nothing.
pub fn file_attr(node: &Inode, config: &FsConfig) -> FileAttr {
    let (kind, default_perm) = match node.kind() {
        Kind::Dir => (FileType::Directory, config.dir_mode),
        Kind::File => (FileType::RegularFile, config.file_mode),
        Kind::Symlink => (FileType::Symlink, 0o777),
        Kind::Special => (special_type(node.stat.mode.unwrap_or(0)), config.file_mode),
    };
    let perm = node
        .stat
        .mode
        .map(|m| (m & 0o7777) as u16)
        .unwrap_or(default_perm);
    let mtime = node.stat.mtime;
    let mut nlink = 1;
    match &node.body {
        Body::Dir(d) => nlink = 2 + d.subdirs.unwrap_or(0),
        Body::File(f) | Body::Symlink(f) | Body::Special(f) if f.unlinked => nlink = 0,
        _ => {}
    }
    let size = page_cache_size(node).unwrap_or(node.stat.size);
    FileAttr {
        ino: INodeNo(node.ino),
        size,
        blocks: size.div_ceil(512),
        atime: node.stat.atime,
        mtime,
        ctime: node.stat.ctime,
        crtime: mtime,
        kind,
        perm,
        nlink,
        uid: node.stat.uid.unwrap_or(config.uid),
        gid: node.stat.gid.unwrap_or(config.gid),
        rdev: node.stat.rdev,
        blksize: config.read.block_size as u32,
        flags: 0,
    }
}

/// The size the kernel must see while handles read another version than the newest through
/// its page cache: that version's (see [`super::inode::FileState::cache_size`]).
fn page_cache_size(node: &Inode) -> Option<u64> {
    match &node.body {
        Body::File(f) if f.cached_opens > 0 && f.cache_etag.is_some() => {
            (f.cache_etag != node.stat.etag).then_some(f.cache_size)
        }
        _ => None,
    }
}

/// The FUSE file type of a special file's mode.
fn special_type(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// The file type bits of `node` (a special file's come from its mode).
pub fn type_bits(node: &Inode) -> u32 {
    match node.kind() {
        Kind::Dir => libc::S_IFDIR,
        Kind::Symlink => libc::S_IFLNK,
        Kind::File => libc::S_IFREG,
        Kind::Special => node.stat.mode.unwrap_or(0) & libc::S_IFMT,
    }
}

/// The kind of an object with s3fs mode `mode`.
pub fn kind_from_mode(mode: Option<u32>) -> Kind {
    match mode.map(|m| m & libc::S_IFMT) {
        Some(libc::S_IFLNK) => Kind::Symlink,
        Some(libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK) => Kind::Special,
        // s3fs's older directory objects (`dir`, no slash) may say so by their mode alone.
        Some(libc::S_IFDIR) => Kind::Dir,
        _ => Kind::File,
    }
}

/// Builds a [`Stat`] from a `HeadObject` answer, honouring s3fs's attribute headers.
pub fn stat_from_meta(meta: &ObjectMeta) -> Stat {
    let mut stat = stat_from_metadata(&meta.metadata, meta.last_modified);
    stat.size = meta.size;
    stat.etag = Some(meta.etag.clone());
    stat.modified = Some(meta.last_modified);
    stat
}

/// The s3fs attributes in `metadata`, with `last_modified` as the time when none is stored.
pub fn stat_from_metadata(metadata: &HashMap<String, String>, last_modified: SystemTime) -> Stat {
    let num = |k: &str| metadata.get(k).and_then(|v| v.trim().parse::<u32>().ok());
    let time = |k: &str| metadata.get(k).and_then(|v| parse_s3fs_time(v));
    let mtime = time("mtime").unwrap_or(last_modified);
    Stat {
        mode: num("mode"),
        uid: num("uid"),
        gid: num("gid"),
        rdev: num("rdev").unwrap_or(0),
        atime: time("atime").unwrap_or(mtime),
        ctime: time("ctime").unwrap_or(last_modified.max(mtime)),
        ..Stat::basic(0, mtime)
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
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// The s3fs metadata value for a time: `sec` or `sec.nsec`.
pub fn s3fs_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    }
}

/// Applies `change` to user metadata in s3fs's scheme; `file_type` is `S_IFREG`, `S_IFDIR`...
/// and `current` what the node shows now. Like every metadata change, it moves ctime.
pub fn apply_change(
    opts: &mut PutOptions,
    change: &AttrChange,
    file_type: u32,
    perm: u32,
    current: &Stat,
) {
    if let Some(mode) = change.mode {
        opts.metadata
            .insert("mode".into(), (file_type | (mode & 0o7777)).to_string());
        // An access ACL follows the new permission bits, as on a local filesystem.
        super::s3fs_xattr::chmod(&mut opts.metadata, mode);
    } else if change.uid.is_some() || change.gid.is_some() {
        opts.metadata
            .entry("mode".into())
            .or_insert_with(|| (file_type | (perm & 0o7777)).to_string());
    }
    if let Some(uid) = change.uid {
        opts.metadata.insert("uid".into(), uid.to_string());
    }
    if let Some(gid) = change.gid {
        opts.metadata.insert("gid".into(), gid.to_string());
    }
    if let Some(mtime) = change.mtime {
        opts.metadata.insert("mtime".into(), s3fs_time(mtime));
    }
    if let Some(atime) = change.atime {
        opts.metadata.insert("atime".into(), s3fs_time(atime));
    }
    stamp_change(opts, current, SystemTime::now());
}

/// Records a change of metadata (not content) at `now`: ctime moves, and mtime stays what it
/// was — stored explicitly, since the copy that applies the change gets a new Last-Modified.
pub fn stamp_change(opts: &mut PutOptions, current: &Stat, now: SystemTime) {
    opts.metadata
        .entry("mtime".into())
        .or_insert_with(|| s3fs_time(current.mtime));
    opts.metadata.insert("ctime".into(), s3fs_time(now));
}

/// Records a change of content at `now`: mtime and ctime move together.
pub fn stamp_write(opts: &mut PutOptions, now: SystemTime) {
    let t = s3fs_time(now);
    opts.metadata.insert("mtime".into(), t.clone());
    opts.metadata.insert("ctime".into(), t);
}

/// The attributes a new node starts with, stored as s3fs stores them: type and permission
/// bits, owner when it differs from the mount's, and all three times.
pub fn initial_metadata(
    opts: &mut PutOptions,
    mode: u32,
    owner: Option<(u32, u32)>,
    now: SystemTime,
) {
    opts.metadata.insert("mode".into(), mode.to_string());
    if let Some((uid, gid)) = owner {
        opts.metadata.insert("uid".into(), uid.to_string());
        opts.metadata.insert("gid".into(), gid.to_string());
    }
    let t = s3fs_time(now);
    for k in ["atime", "mtime", "ctime"] {
        opts.metadata.insert(k.into(), t.clone());
    }
}

/// Refuses metadata over S3's 2 KB limit (E2BIG), before anything is sent.
pub fn check_metadata_size(opts: &PutOptions) -> FsResult<()> {
    let total: usize = opts.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_METADATA_BYTES {
        tracing::warn!(total, "refusing a metadata change over S3's 2 KB limit");
        return Err(FsError::new(
            libc::E2BIG,
            format!("user metadata would be {total} bytes; S3 allows {MAX_METADATA_BYTES}"),
        ));
    }
    Ok(())
}

/// The options to rewrite an object with the same metadata and content type.
pub fn put_options_of(meta: &ObjectMeta) -> PutOptions {
    PutOptions {
        content_type: meta.content_type.clone(),
        metadata: meta.metadata.clone(),
        tags: None,
    }
}

/// Content-Type for a new object, from its name (as `aws s3 cp` does).
pub fn guess_content_type(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3fs_times_round_trip_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(s3fs_time(t), "1700000000.123456789");
        assert_eq!(parse_s3fs_time(&s3fs_time(t)), Some(t));
        assert_eq!(
            parse_s3fs_time("12.5"),
            Some(UNIX_EPOCH + Duration::new(12, 500_000_000))
        );
        assert_eq!(parse_s3fs_time("x"), None);
    }

    #[test]
    fn a_chown_keeps_the_current_mode_in_metadata() {
        let mut opts = PutOptions::default();
        let change = AttrChange {
            uid: Some(7),
            ..Default::default()
        };
        let current = Stat::basic(0, UNIX_EPOCH + Duration::new(5, 250_000_000));
        apply_change(&mut opts, &change, libc::S_IFREG, 0o640, &current);
        assert_eq!(opts.metadata["mode"], (libc::S_IFREG | 0o640).to_string());
        assert_eq!(opts.metadata["uid"], "7");
        // The mtime stays (with its fraction) and ctime moves.
        assert_eq!(opts.metadata["mtime"], "5.250000000");
        assert!(parse_s3fs_time(&opts.metadata["ctime"]).unwrap() > current.mtime);
    }
}
