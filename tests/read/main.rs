//! The read path through a real mount against a real S3 server.
//!
//! Every test starts its own moto_server (s3rver for an unknown access key), seeds it through
//! aws-sdk-s3, mounts the real s3mount binary with FUSE and checks with `std::fs`, raw libc calls
//! and real tools (`ls`, `cat`, `md5sum`, `getfattr`, `touch`). The fixtures in `common` unmount
//! on drop, also when a test fails.
//!
//! Modules:
//! - `listing`: listings equal the bucket's keys (2,500 entries, implicit directories, markers,
//!   the `a` / `a/…` conflict where the directory wins, odd names, unrepresentable keys skipped);
//! - `contents`: contents equal byte for byte around the block (256 KiB) and part (8 MiB) sizes
//!   and for ~20 MiB; random-offset reads;
//! - `huge_object`: an object over 5 GiB from a synthetic endpoint, read at every offset;
//! - `freshness`: changes made through the SDK seen after the TTL, a handle that has returned
//!   nothing yet reading the new version, reads racing changes never mixing versions, s3fs's
//!   older directory forms;
//! - `names`: hostile names (every special character, control characters, 1,024-byte keys,
//!   components over 255 bytes, 50-level trees, empty objects);
//! - `inodes`: nodes the kernel forgets (`drop_caches`) leave the inode table; an open file
//!   stays; forgotten names come back with the same contents and attributes;
//! - `lookups`: concurrent lookups in one directory share a listing (LISTs counted at the
//!   proxy); an open costs one round trip per path component;
//! - `options`: `--read-only` refusing every modification; `--prefix` and `s3://bucket/prefix/`
//!   mounts.
//!
//! Xattrs are tests/attributes/, mount failures tests/daemon/mount_errors.rs.

#[path = "../common/mod.rs"]
mod common;

mod contents;
mod freshness;
mod huge_object;
mod inodes;
mod listing;
mod lookups;
mod names;
mod options;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use futures::future::join_all;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// s3mount's cache block size (ReadConfig::block_size).
const BLOCK: usize = 256 * KIB;
/// s3mount's default `--part-size`.
const PART: usize = 8 * MIB;

/// PutObject every (key, bytes) pair, 50 at a time in parallel.
async fn seed(bucket: &Bucket, objects: &[(String, Vec<u8>)]) {
    for chunk in objects.chunks(50) {
        join_all(chunk.iter().map(|(k, v)| bucket.put(k, v))).await;
    }
}

/// `ls -lna` of `dir`: name → (type char, size). `.` and `..` included.
fn ls_l(dir: &Path) -> BTreeMap<String, (char, u64)> {
    let out = tool(
        "ls",
        &[
            "-lna".as_ref(),
            "--time-style=+%s".as_ref(),
            "--quoting-style=literal".as_ref(),
            dir.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "ls -l {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("ls output is UTF-8");
    let mut entries = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with("total ")) {
        // MODE LINKS UID GID SIZE EPOCH NAME (the name may hold spaces)
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..6 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let name = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("unexpected ls line: {line:?}"));
        let kind = fields[0].chars().next().unwrap();
        let size: u64 = fields[4]
            .parse()
            .unwrap_or_else(|_| panic!("size in ls line {line:?}"));
        let dup = entries.insert(name.to_string(), (kind, size));
        assert!(dup.is_none(), "ls lists {name:?} twice:\n{text}");
    }
    entries
}

/// Walks the mount: (every directory, every file with its bytes), as '/'-joined relative paths.
fn walk(root: &Path) -> (BTreeSet<String>, BTreeMap<String, Vec<u8>>) {
    let mut dirs = BTreeSet::new();
    let mut files = BTreeMap::new();
    let mut todo = vec![(root.to_path_buf(), String::new())];
    while let Some((path, rel)) = todo.pop() {
        let rd =
            std::fs::read_dir(&path).unwrap_or_else(|e| panic!("read_dir {}: {e}", path.display()));
        for entry in rd {
            let entry = entry.unwrap_or_else(|e| panic!("entry of {}: {e}", path.display()));
            let name = entry.file_name().into_string().expect("UTF-8 name");
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry
                .file_type()
                .unwrap_or_else(|e| panic!("file type of {child_rel}: {e}"));
            if ft.is_dir() {
                assert!(dirs.insert(child_rel.clone()), "{child_rel} listed twice");
                todo.push((entry.path(), child_rel));
            } else {
                let bytes =
                    std::fs::read(entry.path()).unwrap_or_else(|e| panic!("read {child_rel}: {e}"));
                assert!(
                    files.insert(child_rel.clone(), bytes).is_none(),
                    "{child_rel} listed twice"
                );
            }
        }
    }
    (dirs, files)
}

fn representable(component: &str) -> bool {
    !component.is_empty() && component != "." && component != ".." && component.len() <= 1024
}

/// What the mount should show for these objects (the rules of src/fs/names.rs and
/// src/fs/mod.rs): a key maps to a path by splitting at `/`; every representable leading
/// component is a directory; a key with an unrepresentable component is not reachable past it;
/// a key ending in `/` is a marker (a directory); a file and a directory of the same path —
/// the directory wins, the file is hidden.
fn expected_tree(objects: &[(String, Vec<u8>)]) -> (BTreeSet<String>, BTreeMap<String, Vec<u8>>) {
    let mut dirs = BTreeSet::new();
    let mut files = BTreeMap::new();
    for (key, bytes) in objects {
        let comps: Vec<&str> = key.split('/').collect();
        let (dir_comps, file) = match key.strip_suffix('/') {
            Some(_) => (&comps[..comps.len() - 1], None),
            None => (&comps[..comps.len() - 1], Some(comps[comps.len() - 1])),
        };
        let mut ok = true;
        for i in 0..dir_comps.len() {
            if !representable(dir_comps[i]) {
                ok = false;
                break;
            }
            dirs.insert(dir_comps[..=i].join("/"));
        }
        if let (true, Some(name)) = (ok, file) {
            if representable(name) {
                files.insert(comps.join("/"), bytes.clone());
            }
        }
    }
    files.retain(|path, _| !dirs.contains(path));
    (dirs, files)
}

/// The hex MD5 `md5sum` prints for `path`.
fn md5sum(path: &Path) -> String {
    let out = tool("md5sum", &[path.as_os_str()]);
    assert!(
        out.status.success(),
        "md5sum {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("md5sum output")
        .to_string()
}
