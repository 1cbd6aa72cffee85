//! The in-memory index of the block files on disk: which exist, their sizes, and how recently
//! each was used.
//!
//! Design note: the index holds no block data and no names, only a 64-bit name hash, a use
//! counter and a size per block — 24 bytes per entry in a hash table, so about 100 KiB per GiB
//! of cache with 256 KiB blocks (a 100 GiB cache costs ~10 MiB of memory). Least recently used
//! blocks are found by sorting the use counters when the cache is over its bound, and removed
//! in a batch down to a low-water mark, so the sort is rare. At start the index is rebuilt from
//! the directory, ordered by modification time: a hit refreshes its file's mtime, so the order
//! survives a remount. Temporary files (a write that never finished) are deleted then.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Suffix of finished block files.
pub const BLOCK_SUFFIX: &str = "blk";
/// Suffix of files being written.
pub const TEMP_SUFFIX: &str = "tmp";

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Last use, in the index's own counter.
    used: u64,
    /// Size of the file in bytes.
    size: u32,
}

/// Which block files exist, and their order of use.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<u64, Entry>,
    bytes: u64,
    clock: u64,
}

impl Index {
    /// Records a file of `size` bytes as just used, replacing any entry of the same hash.
    pub fn insert(&mut self, hash: u64, size: u64) {
        self.clock += 1;
        let entry = Entry {
            used: self.clock,
            size: size.min(u32::MAX as u64) as u32,
        };
        if let Some(old) = self.entries.insert(hash, entry) {
            self.bytes -= old.size as u64;
        }
        self.bytes += entry.size as u64;
    }

    /// Marks `hash` as just used; returns whether it is present.
    pub fn touch(&mut self, hash: u64) -> bool {
        self.clock += 1;
        match self.entries.get_mut(&hash) {
            Some(e) => {
                e.used = self.clock;
                true
            }
            None => false,
        }
    }

    /// Whether `hash` is present (without marking it used).
    pub fn contains(&self, hash: u64) -> bool {
        self.entries.contains_key(&hash)
    }

    /// Forgets `hash`; returns whether it was present.
    pub fn remove(&mut self, hash: u64) -> bool {
        match self.entries.remove(&hash) {
            Some(e) => {
                self.bytes -= e.size as u64;
                true
            }
            None => false,
        }
    }

    /// Bytes of every indexed file.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of indexed files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes least recently used entries until at most `target` bytes remain; returns the
    /// hashes removed (their files are the caller's to delete).
    pub fn evict_to(&mut self, target: u64) -> Vec<u64> {
        if self.bytes <= target {
            return Vec::new();
        }
        let mut order: Vec<(u64, u64)> = self.entries.iter().map(|(h, e)| (e.used, *h)).collect();
        order.sort_unstable();
        let mut gone = Vec::new();
        for (_, hash) in order {
            if self.bytes <= target {
                break;
            }
            self.remove(hash);
            gone.push(hash);
        }
        gone
    }
}

/// Where the file of `hash` lives under `blocks` (256 subdirectories by the first byte).
pub fn block_path(blocks: &Path, hash: u64) -> PathBuf {
    blocks
        .join(format!("{:02x}", hash >> 56))
        .join(format!("{hash:016x}.{BLOCK_SUFFIX}"))
}

/// What a scan of the directory found.
#[derive(Debug, Default)]
pub struct Scan {
    pub index: Index,
    /// Temporary files deleted.
    pub temp_removed: usize,
}

/// Rebuilds the index from the block files under `blocks`, deleting temporary files. Files
/// whose names are not block names are left alone and not indexed.
pub fn scan(blocks: &Path) -> io::Result<Scan> {
    let mut found: Vec<(SystemTime, u64, u64)> = Vec::new();
    let mut temp_removed = 0;
    for sub in std::fs::read_dir(blocks)? {
        let sub = sub?;
        if !sub.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(sub.path())? {
            let file = file?;
            let name = file.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(TEMP_SUFFIX) {
                if std::fs::remove_file(file.path()).is_ok() {
                    temp_removed += 1;
                }
                continue;
            }
            let Some(hash) = parse_name(&name) else {
                continue;
            };
            let meta = file.metadata()?;
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((mtime, hash, meta.len()));
        }
    }
    found.sort_unstable();
    let mut index = Index::default();
    for (_, hash, size) in found {
        index.insert(hash, size);
    }
    Ok(Scan {
        index,
        temp_removed,
    })
}

/// The hash of a block file name (`<16 hex digits>.blk`).
fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(BLOCK_SUFFIX)?.strip_suffix('.')?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_down_to_the_target() {
        let mut ix = Index::default();
        for h in 0..4 {
            ix.insert(h, 10);
        }
        assert!(ix.touch(0));
        assert_eq!(ix.evict_to(25), vec![1, 2]);
        assert_eq!((ix.bytes(), ix.len()), (20, 2));
        ix.insert(3, 30);
        assert_eq!(ix.bytes(), 40);
        assert!(ix.remove(0));
        assert!(!ix.touch(0));
    }

    #[test]
    fn names_round_trip() {
        let p = block_path(Path::new("/b"), 0xab12_0000_0000_00ff);
        assert_eq!(p, Path::new("/b/ab/ab120000000000ff.blk"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_name(name), Some(0xab12_0000_0000_00ff));
        assert_eq!(parse_name("ab12.blk"), None);
        assert_eq!(parse_name("ab120000000000ff.1234.tmp"), None);
    }
}
