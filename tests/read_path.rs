//! Issue 2, "Tests (real parts)": the read path through a real mount against a real S3 server.
//!
//! Every test starts its own moto_server (s3rver for an unknown access key; moto with its IAM
//! authentication switched on for a wrong secret and for access denied), seeds it through
//! aws-sdk-s3, mounts the real s3mount binary with FUSE and checks with `std::fs`, raw libc calls
//! and real tools (`ls`, `cat`, `md5sum`, `getfattr`, `setfattr`, `touch`). The fixtures in
//! `common` unmount on drop, also when a test fails.
//!
//! What is checked: listings equal the bucket's keys (2,500 entries, implicit directories,
//! markers, the `a` / `a/…` conflict where the directory wins, odd names, unrepresentable keys
//! skipped); contents equal byte for byte around the block (256 KiB) and part (8 MiB) sizes and
//! for ~20 MiB; random-offset reads; changes made through the SDK seen after the TTL and reads
//! racing them never mixing versions; xattrs equal to tags, metadata and facts with xattr(7)'s
//! ENODATA / ERANGE / size-query behaviour; mount failures with the contract's phrases;
//! `--read-only` refusing every modification; `--prefix` and `s3://bucket/prefix/` mounts.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::DateTimeFormat;
use common::*;
use futures::future::join_all;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// s3mount's cache block size (ReadConfig::block_size).
const BLOCK: usize = 256 * KIB;
/// s3mount's default `--part-size`.
const PART: usize = 8 * MIB;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// PutObject every (key, bytes) pair, 50 at a time in parallel.
async fn seed(bucket: &Bucket, objects: &[(String, Vec<u8>)]) {
    for chunk in objects.chunks(50) {
        join_all(chunk.iter().map(|(k, v)| bucket.put(k, v))).await;
    }
}

/// A small deterministic PRNG (splitmix64) for offsets and lengths.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Runs a real tool with a UTF-8 locale (so `ls` prints names as they are).
fn tool(prog: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(prog)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"))
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
    !component.is_empty() && component != "." && component != ".." && component.len() <= 255
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

/// `getfattr -d -e hex PATH`: name → value bytes.
fn getfattr_hex(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = tool(
        "getfattr",
        &[
            "-d".as_ref(),
            "-e".as_ref(),
            "hex".as_ref(),
            "--absolute-names".as_ref(),
            path.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "getfattr -d {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        let value = match value.strip_prefix("0x") {
            Some(hex) => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
                .collect(),
            None => value.trim_matches('"').as_bytes().to_vec(),
        };
        map.insert(name.to_string(), value);
    }
    map
}

/// What the contract says every object shows: its facts, `user.s3.meta.*` and `user.s3.tag.*`,
/// computed from the SDK's HeadObject and GetObjectTagging.
async fn expected_xattrs(bucket: &Bucket, key: &str) -> BTreeMap<String, Vec<u8>> {
    let head = bucket.head(key).await.expect("object exists");
    let mut want = BTreeMap::new();
    want.insert(
        "user.s3.etag".to_string(),
        head.e_tag().expect("ETag").as_bytes().to_vec(),
    );
    if let Some(ct) = head.content_type() {
        want.insert("user.s3.content-type".into(), ct.as_bytes().to_vec());
    }
    want.insert(
        "user.s3.storage-class".into(),
        head.storage_class()
            .map(|c| c.as_str().to_string())
            .unwrap_or_else(|| "STANDARD".into())
            .into_bytes(),
    );
    want.insert(
        "user.s3.last-modified".into(),
        head.last_modified()
            .expect("LastModified")
            .fmt(DateTimeFormat::DateTime)
            .unwrap()
            .into_bytes(),
    );
    if let Some(v) = head.version_id().filter(|v| *v != "null") {
        want.insert("user.s3.version-id".into(), v.as_bytes().to_vec());
    }
    for (k, v) in head.metadata().cloned().unwrap_or_default() {
        want.insert(format!("user.s3.meta.{k}"), v.into_bytes());
    }
    for (k, v) in bucket.tags(key).await {
        want.insert(format!("user.s3.tag.{k}"), v.into_bytes());
    }
    want
}

/// Asserts that the one `s3mount: error:` line of a failed mount contains `phrase`.
fn assert_error_line(code: i32, stderr: &str, phrase: &str) {
    assert_eq!(code, 1, "exit status (contract: 1); stderr:\n{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("s3mount: error:"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one `s3mount: error:` line; stderr:\n{stderr}"
    );
    assert!(
        lines[0].to_lowercase().contains(phrase),
        "the error line should contain {phrase:?}: {:?}",
        lines[0]
    );
}

/// Runs s3mount in the foreground at `mountpoint` directly (not through [`Mount`], whose
/// "is it mounted yet" check cannot tell a second mount on an already-mounted directory from
/// the first), expecting it to exit; returns (exit code, stderr, how long it took).
fn run_s3mount_expecting_exit(
    endpoint: &str,
    bucket: &str,
    mountpoint: &Path,
) -> (i32, String, Duration) {
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log = log_dir.path().join("stderr");
    let mut cmd = Command::new(s3mount_bin());
    hermetic_aws_env(&mut cmd);
    cmd.args([
        "--foreground",
        "--endpoint-url",
        endpoint,
        "--force-path-style",
        "--region",
        REGION,
        bucket,
    ])
    .arg(mountpoint)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(File::create(&log).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn s3mount");
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            // It mounted on top, or hangs: SIGTERM makes it unmount its own session.
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "s3mount did not exit within 30 s; stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    (
        exit_code(status),
        std::fs::read_to_string(&log).unwrap_or_default(),
        elapsed,
    )
}

// ---------------------------------------------------------------------------------------------
// listings
// ---------------------------------------------------------------------------------------------

/// A directory of 2,500 objects (three LIST pages) lists exactly the bucket's keys, and
/// `ls -l` shows each object's size without a HeadObject per entry.
#[tokio::test]
async fn listing_of_2500_entries_equals_the_bucket_keys() {
    let Served { s3, bucket } = Served::new().await;
    let objects: Vec<(String, Vec<u8>)> = (0..2500)
        .map(|i| {
            (
                format!("big/entry-{i:05}.dat"),
                pseudo_random_bytes(i % 700, i as u64),
            )
        })
        .collect();
    let started = Instant::now();
    seed(&bucket, &objects).await;
    bucket.put("outside.txt", b"not in big/").await;
    eprintln!("seeded 2,500 objects in {:?}", started.elapsed());
    let keys = bucket.list_keys("big/").await;
    assert_eq!(keys.len(), 2500, "the bucket should hold 2,500 keys");

    let mount = Mount::new(&s3, bucket.name(), &[]);
    let big = mount.join("big");

    let mut names: Vec<String> = std::fs::read_dir(&big)
        .expect("read_dir big")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = keys
        .iter()
        .map(|k| k.strip_prefix("big/").unwrap().to_string())
        .collect();
    assert_eq!(names.len(), want.len(), "number of entries in big/");
    assert_eq!(names, want, "big/ should list exactly the bucket's keys");

    let log_before = s3.log().lines().count();
    let listed = ls_l(&big);
    let log_after: Vec<String> = s3
        .log()
        .lines()
        .skip(log_before)
        .map(String::from)
        .collect();
    assert_eq!(
        listed.len(),
        2500 + 2,
        "ls -la big: 2,500 entries plus . and .."
    );
    for (key, bytes) in &objects {
        let name = key.strip_prefix("big/").unwrap();
        let (kind, size) = listed
            .get(name)
            .unwrap_or_else(|| panic!("ls -l does not show {name}"));
        assert_eq!(*kind, '-', "{name} should be a regular file");
        assert_eq!(*size, bytes.len() as u64, "ls -l size of {name}");
    }
    let heads = log_after
        .iter()
        .filter(|l| l.contains("HEAD /") && l.contains("/big/entry-"))
        .count();
    let lists = log_after
        .iter()
        .filter(|l| l.contains("list-type=2"))
        .count();
    eprintln!("ls -l of 2,500 entries: {lists} LIST and {heads} HEAD requests");
    assert_eq!(
        heads, 0,
        "ls -l after a listing must not HEAD each entry (issue 2 point 4)"
    );
}

/// `cat` of small files named on the command line of a fresh mount (no `ls` first) costs one
/// GET per file: the directory is listed once, and each listed file is completed by a GET of
/// the whole object whose bytes the read then takes from the cache (issue 6 point 3).
#[tokio::test]
async fn cat_of_unlisted_small_files_costs_one_get_each() {
    let Served { s3, bucket } = Served::new().await;
    let objects: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| {
            (
                format!("small/f{i:02}"),
                pseudo_random_bytes(4 * KIB, i as u64),
            )
        })
        .collect();
    seed(&bucket, &objects).await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let log_before = s3.log().lines().count();
    let paths: Vec<std::ffi::OsString> = objects
        .iter()
        .map(|(k, _)| mount.join(k).into_os_string())
        .collect();
    let args: Vec<&std::ffi::OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    let out = tool("cat", &args);
    let want: Vec<u8> = objects.iter().flat_map(|(_, v)| v.clone()).collect();
    assert!(out.stdout == want, "cat must print the 30 objects in order");
    let log: Vec<String> = s3
        .log()
        .lines()
        .skip(log_before)
        .map(String::from)
        .collect();
    let count = |method: &str| {
        log.iter()
            .filter(|l| l.contains(&format!("{method} /")) && l.contains("/small/f"))
            .count()
    };
    let lists = log.iter().filter(|l| l.contains("list-type=2")).count();
    eprintln!(
        "cat of 30 unlisted files: {} GET, {} HEAD, {lists} LIST",
        count("GET"),
        count("HEAD")
    );
    // The first name is resolved alone (a GET of its first block, which its read then uses),
    // the second lists the directory.
    assert_eq!(count("GET"), 30, "one GET per file");
    assert_eq!(count("HEAD"), 0, "no HEAD: a GET tells all a HEAD would");
    assert!(lists <= 4, "the directory is listed once, not per file");
}

/// Implicit directories, markers, the `a` / `a/…` conflict, odd names and unrepresentable keys:
/// the mount shows exactly what the documented rules derive from the bucket's keys.
#[tokio::test]
async fn listing_handles_implicit_dirs_markers_conflicts_and_odd_names() {
    let Served { s3, bucket } = Served::new().await;
    let y255 = "y".repeat(255);
    let z256 = "z".repeat(256);
    let q256 = "q".repeat(256);
    let keys: Vec<String> = vec![
        "implicit/child.txt".into(),
        "implicit/sub/deep.txt".into(),
        "marker/".into(),
        "marker2/".into(),
        "marker2/inside.txt".into(),
        "a".into(),
        "a/b.txt".into(),
        "with space.txt".into(),
        "dir with space/x y.txt".into(),
        "ünïcødé-日本語.txt".into(),
        "100%.txt".into(),
        "%41%2F.txt".into(),
        "a+b.txt".into(),
        "c + d.txt".into(),
        "x//y".into(),
        "./z".into(),
        "../w".into(),
        "dup/./z".into(),
        "dup/fine.txt".into(),
        y255.clone(),
        z256.clone(),
        format!("long/{q256}"),
        "long/ok.txt".into(),
    ];
    let objects: Vec<(String, Vec<u8>)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let body = if k.ends_with('/') {
                Vec::new()
            } else {
                format!("object {k}\n").repeat(i + 1).into_bytes()
            };
            (k.clone(), body)
        })
        .collect();
    seed(&bucket, &objects).await;
    assert_eq!(
        bucket.list_keys("").await.len(),
        keys.len(),
        "every key should be in the bucket"
    );

    let mount = Mount::new(&s3, bucket.name(), &[]);

    // Hand-written expectations for the root (independent of the model below).
    let root = ls_l(mount.path());
    let mut want_root: BTreeMap<String, char> = [
        (".", 'd'),
        ("..", 'd'),
        ("a", 'd'),
        ("implicit", 'd'),
        ("marker", 'd'),
        ("marker2", 'd'),
        ("with space.txt", '-'),
        ("dir with space", 'd'),
        ("ünïcødé-日本語.txt", '-'),
        ("100%.txt", '-'),
        ("%41%2F.txt", '-'),
        ("a+b.txt", '-'),
        ("c + d.txt", '-'),
        ("x", 'd'),
        ("dup", 'd'),
        ("long", 'd'),
    ]
    .into_iter()
    .map(|(n, k)| (n.to_string(), k))
    .collect();
    want_root.insert(y255.clone(), '-');
    let got_root: BTreeMap<String, char> = root.iter().map(|(n, (k, _))| (n.clone(), *k)).collect();
    assert_eq!(
        got_root, want_root,
        "ls -la of the root (`a` must be a directory, `.`/`..`/256-byte names skipped)"
    );
    // ls -l sizes equal the objects' sizes, everywhere.
    let sizes: HashMap<&str, usize> = objects.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    for (dir, prefix) in [
        (mount.path().to_path_buf(), ""),
        (mount.join("implicit"), "implicit/"),
        (mount.join("marker2"), "marker2/"),
        (mount.join("a"), "a/"),
        (mount.join("dir with space"), "dir with space/"),
        (mount.join("long"), "long/"),
        (mount.join("dup"), "dup/"),
    ] {
        for (name, (kind, size)) in ls_l(&dir) {
            if kind != '-' {
                continue;
            }
            let key = format!("{prefix}{name}");
            let want = sizes
                .get(key.as_str())
                .unwrap_or_else(|| panic!("ls -l shows {key:?}, which is not a key"));
            assert_eq!(size, *want as u64, "ls -l size of {key:?}");
        }
    }

    // The file `a` is hidden by the directory `a/`.
    assert!(mount.join("a").is_dir(), "`a` should be a directory");
    let err = std::fs::read(mount.join("a")).expect_err("reading the directory `a`");
    assert_eq!(errno(&err), libc::EISDIR, "read of `a`: {err}");
    assert_eq!(
        std::fs::read(mount.join("a/b.txt")).unwrap(),
        bucket.get("a/b.txt").await
    );
    // Markers: an empty one is an empty directory; a directory's own marker is not an entry.
    assert_eq!(std::fs::read_dir(mount.join("marker")).unwrap().count(), 0);
    // `x//y`: the directory `x` exists, its only child has an empty name and is skipped.
    assert!(mount.join("x").is_dir());
    assert_eq!(
        ls_l(&mount.join("x")).keys().cloned().collect::<Vec<_>>(),
        [".", ".."],
        "x/ holds only the unreachable `x//y`"
    );
    assert_eq!(
        ls_l(&mount.join("long"))
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        [".", "..", "ok.txt"],
        "long/ skips the 256-byte name"
    );
    assert_eq!(
        ls_l(&mount.join("dup")).keys().cloned().collect::<Vec<_>>(),
        [".", "..", "fine.txt"],
        "dup/ skips `dup/./z`"
    );

    // The whole tree, contents included, equals what the rules derive from the bucket's keys.
    let listed_keys = bucket.list_keys("").await;
    let mut from_bucket = Vec::new();
    for k in &listed_keys {
        from_bucket.push((k.clone(), bucket.get(k).await));
    }
    let (want_dirs, want_files) = expected_tree(&from_bucket);
    let (dirs, files) = walk(mount.path());
    assert_eq!(dirs, want_dirs, "directories of the mount");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        want_files.keys().collect::<Vec<_>>(),
        "files of the mount"
    );
    for (path, bytes) in &want_files {
        assert!(files[path] == *bytes, "contents of {path:?}");
    }
    let log = mount.stderr();
    assert!(
        log.contains(&z256) && log.contains(&q256),
        "each skipped key should get a log line naming it; stderr:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// contents
// ---------------------------------------------------------------------------------------------

/// Whole-file reads (std::fs, `cat`, `md5sum`) equal the objects byte for byte at the block
/// (256 KiB) and part (8 MiB) boundaries, and for ~20 MiB.
#[tokio::test]
async fn contents_equal_byte_for_byte_at_block_and_part_boundaries() {
    let Served { s3, bucket } = Served::new().await;
    let sizes = [
        0,
        1,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        PART - 1,
        PART,
        PART + 1,
        20 * MIB + 12_345,
    ];
    let objects: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (
                format!("sizes/obj-{n}"),
                pseudo_random_bytes(n, 100 + i as u64),
            )
        })
        .collect();
    join_all(objects.iter().map(|(k, v)| bucket.put(k, v))).await;

    let mount = Mount::new(&s3, bucket.name(), &[]);
    let local = tempfile::tempdir().unwrap();
    for (key, bytes) in &objects {
        let path = mount.join(key);
        assert_eq!(
            std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("stat {key}: {e}"))
                .len(),
            bytes.len() as u64,
            "st_size of {key}"
        );
        let read = std::fs::read(&path).unwrap_or_else(|e| panic!("read {key}: {e}"));
        assert_eq!(read.len(), bytes.len(), "length read from {key}");
        if let Some(i) = read.iter().zip(bytes).position(|(a, b)| a != b) {
            panic!("{key}: first differing byte at offset {i}");
        }

        let cat = tool("cat", &[path.as_os_str()]);
        assert!(cat.status.success(), "cat {key}");
        assert!(cat.stdout == *bytes, "cat {key} differs from the object");

        let copy = local.path().join("copy");
        std::fs::write(&copy, bytes).unwrap();
        let want_md5 = md5sum(&copy);
        assert_eq!(md5sum(&path), want_md5, "md5sum of {key}");
        // A single PutObject's ETag is the MD5 of the body.
        let etag = bucket.head(key).await.unwrap().e_tag().unwrap().to_string();
        assert_eq!(etag.trim_matches('"'), want_md5, "ETag of {key}");
    }
}

/// `n` reads at offsets drawn from a PRNG seeded with `seed` (seek + read_exact on one handle,
/// pread on another), plus reads straddling a block boundary, the part boundary and the end:
/// every one must equal the object's bytes.
fn check_random_reads(path: &Path, data: &[u8], seed: u64, n: usize) {
    let size = data.len() as u64;
    let mut file = File::open(path).expect("open");
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 300 * KIB];
    let mut reads: Vec<(u64, usize)> = (0..n)
        .map(|_| {
            let off = rng.range(0, size - 1);
            let len = rng.range(1, 300 * KIB as u64).min(size - off) as usize;
            (off, len)
        })
        .collect();
    reads.push((BLOCK as u64 - 10, 20));
    reads.push((PART as u64 - 100, 200));
    reads.push((size - 17, 17));
    reads.push((0, 1));
    for &(off, len) in &reads {
        file.seek(SeekFrom::Start(off)).unwrap();
        file.read_exact(&mut buf[..len])
            .unwrap_or_else(|e| panic!("read_exact({off}, {len}): {e}"));
        assert!(
            buf[..len] == data[off as usize..off as usize + len],
            "bytes at offset {off}, length {len} differ from the object"
        );
    }
    file.seek(SeekFrom::Start(size)).unwrap();
    assert_eq!(file.read(&mut buf).unwrap(), 0, "read at EOF");

    let second = File::open(path).unwrap();
    for _ in 0..n / 3 {
        let off = rng.range(0, size - 1);
        let len = rng.range(1, 64 * KIB as u64).min(size - off) as usize;
        second
            .read_exact_at(&mut buf[..len], off)
            .unwrap_or_else(|e| panic!("pread({off}, {len}): {e}"));
        assert!(
            buf[..len] == data[off as usize..off as usize + len],
            "pread at offset {off}, length {len} differs from the object"
        );
    }
}

/// Random-offset reads equal the object's bytes: with the default cache, and with a 1 MiB
/// cache (`--cache-size 1`) where blocks are evicted all the time, so reads keep fetching
/// ranges and re-fetching evicted blocks.
#[tokio::test]
async fn random_offset_reads_equal_the_object() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(PART + 4 * MIB + 333, 7);
    bucket.put("random.bin", &data).await;

    for (args, n, seed) in [
        (&[][..], 150, 0x5EED_0002),
        (&["--cache-size", "1"][..], 45, 0x5EED_0003),
    ] {
        let mount = Mount::new(&s3, bucket.name(), args);
        let gets_before = s3.log().matches("GET /").count();
        let started = Instant::now();
        check_random_reads(&mount.join("random.bin"), &data, seed, n);
        eprintln!(
            "{args:?}: {} random reads in {:?}, {} GETs",
            n + n / 3 + 4,
            started.elapsed(),
            s3.log().matches("GET /").count() - gets_before
        );
    }
}

// ---------------------------------------------------------------------------------------------
// changes behind the mount's back
// ---------------------------------------------------------------------------------------------

/// Objects overwritten (same size and different size), deleted or created through the SDK are
/// seen through the mount once the metadata TTL has passed.
#[tokio::test]
async fn overwrite_delete_and_create_are_seen_after_the_ttl() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("same-size.txt", b"AAAA-version-1").await;
    bucket.put("grows.txt", b"short").await;
    bucket.put("doomed.txt", b"about to be deleted").await;
    let mount = Mount::new(&s3, bucket.name(), &["--metadata-ttl", "1"]);

    // Read everything once (the kernel and s3mount now cache it), via a listing too.
    assert_eq!(std::fs::read_dir(mount.path()).unwrap().count(), 3);
    assert_eq!(
        std::fs::read(mount.join("same-size.txt")).unwrap(),
        b"AAAA-version-1"
    );
    assert_eq!(std::fs::read(mount.join("grows.txt")).unwrap(), b"short");
    assert_eq!(
        std::fs::read(mount.join("doomed.txt")).unwrap(),
        b"about to be deleted"
    );

    bucket.put("same-size.txt", b"BBBB-version-2").await;
    let longer = pseudo_random_bytes(3 * BLOCK + 5, 9);
    bucket.put("grows.txt", &longer).await;
    bucket.delete("doomed.txt").await;
    bucket
        .put("newcomer.txt", b"created behind the mount's back")
        .await;
    std::thread::sleep(Duration::from_millis(1500));

    assert_eq!(
        std::fs::read(mount.join("same-size.txt")).unwrap(),
        b"BBBB-version-2",
        "a same-size overwrite must be seen after the TTL (no stale page cache)"
    );
    assert_eq!(
        std::fs::metadata(mount.join("grows.txt")).unwrap().len(),
        longer.len() as u64,
        "st_size after the overwrite"
    );
    assert!(
        std::fs::read(mount.join("grows.txt")).unwrap() == longer,
        "contents after the overwrite"
    );
    let err = std::fs::metadata(mount.join("doomed.txt")).expect_err("stat of a deleted object");
    assert_eq!(errno(&err), libc::ENOENT, "stat of a deleted object: {err}");
    let err = std::fs::read(mount.join("doomed.txt")).expect_err("read of a deleted object");
    assert_eq!(errno(&err), libc::ENOENT, "open of a deleted object: {err}");
    let mut names: Vec<String> = std::fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["grows.txt", "newcomer.txt", "same-size.txt"],
        "listing after the changes"
    );
    assert_eq!(
        std::fs::read(mount.join("newcomer.txt")).unwrap(),
        b"created behind the mount's back"
    );
}

/// Reads `file` to the end in 128 KiB reads, checking every chunk against `old`; an error ends
/// the read. Returns (bytes read, the error if any). Panics on bytes that are not the old ones.
fn read_rest_checking(
    file: &mut File,
    mut pos: usize,
    old: &[u8],
    new: &[u8],
) -> (usize, Option<io::Error>) {
    let mut buf = vec![0u8; 128 * KIB];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return (pos, None),
            Ok(n) => {
                assert!(pos + n <= old.len(), "read past the old version's end");
                if buf[..n] != old[pos..pos + n] {
                    let is_new = new.len() >= pos + n && buf[..n] == new[pos..pos + n];
                    panic!(
                        "bytes {pos}..{} of one open handle are not the old version's ({}): \
                         versions mixed in one read",
                        pos + n,
                        if is_new {
                            "they are the new version's"
                        } else {
                            "neither version's"
                        }
                    );
                }
                pos += n;
            }
            Err(e) => return (pos, Some(e)),
        }
    }
}

/// A handle opened before an overwrite returns only the old version's bytes, or an error —
/// never the new bytes after old ones. A small cache (`--cache-size 4`) forces fetches after the
/// overwrite. After the TTL a new open reads the new version entirely.
#[tokio::test]
async fn read_racing_an_overwrite_never_mixes_versions() {
    let Served { s3, bucket } = Served::new().await;
    let size = 20 * MIB;
    let old = pseudo_random_bytes(size, 21);
    let new = pseudo_random_bytes(size, 22);
    bucket.put("race.bin", &old).await;
    let mount = Mount::new(
        &s3,
        bucket.name(),
        &["--metadata-ttl", "1", "--cache-size", "4"],
    );

    let mut file = File::open(mount.join("race.bin")).expect("open race.bin");
    let mut head = vec![0u8; MIB];
    file.read_exact(&mut head).expect("read the first MiB");
    assert!(head == old[..MIB], "the first MiB is the old version's");

    bucket.put("race.bin", &new).await; // same size, different bytes
    let (pos, err) = read_rest_checking(&mut file, MIB, &old, &new);
    match &err {
        None => {
            assert_eq!(pos, size, "the handle ended early without an error");
            eprintln!("racing read: completed with the old version's bytes only");
        }
        Some(e) => eprintln!("racing read: failed at offset {pos} with {e} (allowed)"),
    }
    drop(file);

    std::thread::sleep(Duration::from_millis(1500));
    let after = std::fs::read(mount.join("race.bin")).expect("read after the TTL");
    assert_eq!(after.len(), size);
    if let Some(i) = after.iter().zip(&new).position(|(a, b)| a != b) {
        panic!(
            "a fresh open after the TTL must read the new version; first difference at {i} \
             ({})",
            if after[i..i + 16] == old[i..i + 16] {
                "old bytes: stale cache"
            } else {
                "neither version"
            }
        );
    }
}

/// A handle opened before the object is deleted returns only the old bytes or an error.
#[tokio::test]
async fn read_racing_a_delete_returns_old_bytes_or_an_error() {
    let Served { s3, bucket } = Served::new().await;
    let size = 12 * MIB;
    let old = pseudo_random_bytes(size, 31);
    bucket.put("gone.bin", &old).await;
    let mount = Mount::new(
        &s3,
        bucket.name(),
        &["--metadata-ttl", "1", "--cache-size", "4"],
    );

    let mut file = File::open(mount.join("gone.bin")).expect("open gone.bin");
    let mut head = vec![0u8; MIB];
    file.read_exact(&mut head).unwrap();
    assert!(head == old[..MIB]);
    bucket.delete("gone.bin").await;
    let (pos, err) = read_rest_checking(&mut file, MIB, &old, &[]);
    match &err {
        None => assert_eq!(pos, size, "the handle ended early without an error"),
        Some(e) => eprintln!("read after delete: failed at offset {pos} with {e} (allowed)"),
    }
    drop(file);
    std::thread::sleep(Duration::from_millis(1500));
    let err = File::open(mount.join("gone.bin")).expect_err("open after delete + TTL");
    assert_eq!(errno(&err), libc::ENOENT, "{err}");
}

// ---------------------------------------------------------------------------------------------
// extended attributes
// ---------------------------------------------------------------------------------------------

/// `getfattr -d` and listxattr/getxattr show exactly the object's tags, metadata and facts.
#[tokio::test]
async fn xattrs_equal_tags_metadata_and_facts() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "docs/tagged.txt",
            b"tagged object\n",
            &[("color", "blue"), ("owner-team", "storage eng")],
            &[
                ("team", "storage"),
                ("env", "test run"),
                ("note", "a/b=c+d@e:f"),
            ],
            Some("text/plain"),
        )
        .await;
    bucket.put("docs/plain.bin", b"no tags, no metadata").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    for key in ["docs/tagged.txt", "docs/plain.bin"] {
        let path = mount.join(key);
        let want = expected_xattrs(&bucket, key).await;

        // getfattr -d (the user. namespace) shows exactly these.
        assert_eq!(getfattr_hex(&path), want, "getfattr -d -e hex {key}");

        // listxattr: size query, then exact names.
        let (len, _) = listxattr(&path, 0).unwrap_or_else(|e| panic!("listxattr size {key}: {e}"));
        let (got_len, buf) = listxattr(&path, len).unwrap();
        assert_eq!(got_len, len, "listxattr length equals the size query");
        assert_eq!(
            xattr_names(&buf),
            want.keys().cloned().collect::<Vec<_>>(),
            "listxattr names of {key}"
        );
        // getxattr: size query, then the value.
        for (name, value) in &want {
            let (n, _) = getxattr(&path, name, 0).unwrap_or_else(|e| panic!("{name}: errno {e}"));
            assert_eq!(n, value.len(), "size query of {name}");
            let (n, got) = getxattr(&path, name, value.len() + 10).unwrap();
            assert_eq!(n, value.len());
            assert_eq!(got, *value, "value of {name} on {key}");
        }
    }

    // The text form, as a user sees it.
    let out = tool(
        "getfattr",
        &["-d".as_ref(), mount.join("docs/tagged.txt").as_os_str()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "user.s3.tag.team=\"storage\"",
        "user.s3.tag.env=\"test run\"",
        "user.s3.meta.color=\"blue\"",
        "user.s3.content-type=\"text/plain\"",
        "user.s3.storage-class=\"STANDARD\"",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "getfattr -d lacks {line}:\n{text}"
        );
    }
}

/// xattr(7) error behaviour: ENODATA for absent names, ERANGE for short buffers (getxattr and
/// listxattr), and directories (implicit or marker) list no attributes.
#[tokio::test]
async fn xattr_enodata_erange_and_directories() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with("f.txt", b"x", &[("k", "value")], &[("t", "tagvalue")], None)
        .await;
    bucket.put("implicit/child.txt", b"c").await;
    bucket.put("marked/", b"").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("f.txt");

    for absent in [
        "user.s3.tag.nope",
        "user.s3.meta.nope",
        "user.other",
        "user.s3.version-id",
    ] {
        assert_eq!(
            getxattr(&f, absent, 64).map(|r| r.0),
            Err(libc::ENODATA),
            "getxattr {absent}"
        );
        assert_eq!(
            getxattr(&f, absent, 0).map(|r| r.0),
            Err(libc::ENODATA),
            "size query of {absent}"
        );
    }
    let out = tool(
        "getfattr",
        &["-n".as_ref(), "user.s3.tag.nope".as_ref(), f.as_os_str()],
    );
    assert!(
        !out.status.success(),
        "getfattr -n of an absent name should fail"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such attribute"),
        "getfattr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ERANGE: a buffer one byte too small.
    assert_eq!(getxattr(&f, "user.s3.tag.t", 0).map(|r| r.0), Ok(8));
    assert_eq!(
        getxattr(&f, "user.s3.tag.t", 7).map(|r| r.0),
        Err(libc::ERANGE)
    );
    assert_eq!(
        getxattr(&f, "user.s3.tag.t", 8),
        Ok((8, b"tagvalue".to_vec()))
    );
    assert_eq!(
        getxattr(&f, "user.s3.meta.k", 4).map(|r| r.0),
        Err(libc::ERANGE)
    );
    let (len, _) = listxattr(&f, 0).unwrap();
    assert!(len > 0);
    assert_eq!(listxattr(&f, len - 1).map(|r| r.0), Err(libc::ERANGE));
    assert_eq!(listxattr(&f, len).map(|r| r.0), Ok(len));

    // Directories: an empty list, and ENODATA for any name.
    for dir in [
        mount.path().to_path_buf(),
        mount.join("implicit"),
        mount.join("marked"),
    ] {
        assert_eq!(
            listxattr(&dir, 0),
            Ok((0, Vec::new())),
            "listxattr size of {}",
            dir.display()
        );
        assert_eq!(
            listxattr(&dir, 256).map(|r| r.0),
            Ok(0),
            "listxattr of {}",
            dir.display()
        );
        assert_eq!(
            getxattr(&dir, "user.s3.etag", 64).map(|r| r.0),
            Err(libc::ENODATA),
            "getxattr on {}",
            dir.display()
        );
        let out = tool("getfattr", &["-d".as_ref(), dir.as_os_str()]);
        assert!(out.status.success());
        assert!(
            out.stdout.is_empty(),
            "getfattr -d of a directory should print nothing: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// mount failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn mount_fails_for_a_missing_bucket() {
    let s3 = S3Server::start();
    let _other = s3.new_bucket().await;
    let (code, stderr) = run_mount_expect_failure(&s3, "no-such-bucket-s3mount", &[]);
    assert_error_line(code, &stderr, "does not exist");
}

/// Nobody listens on the port: "cannot connect", and quickly (the 30 s bound is only a hang
/// guard, not a performance target).
#[tokio::test]
async fn mount_fails_fast_for_an_unreachable_endpoint() {
    let port = free_port(); // bound and released: nobody listens there
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let (code, stderr) = Mount::builder_for_endpoint(&endpoint, "some-bucket")
        .timeout(Duration::from_secs(90))
        .expect_failure();
    let took = started.elapsed();
    assert_error_line(code, &stderr, "cannot connect");
    assert!(
        took < Duration::from_secs(30),
        "an unreachable endpoint should fail fast, took {took:?}"
    );
    eprintln!("unreachable endpoint reported in {took:?}");
}

/// s3rver checks the access key (moto, by default, accepts any): an unknown access key fails
/// the mount with "credentials"; s3rver's own key mounts (control). s3rver does not verify
/// SigV4 signatures (lib/middleware/authentication.js: "Signature version 4 calculation is
/// unimplemented"), so the wrong-secret case is tested against moto with IAM auth below.
#[tokio::test]
async fn mount_fails_for_an_unknown_access_key() {
    let server = S3rverServer::start();
    let bucket = server.create_bucket("creds-bucket").await;
    bucket.put("hello.txt", b"hello").await;

    {
        let mount = Mount::builder_for_endpoint(server.endpoint(), "creds-bucket")
            .env("AWS_ACCESS_KEY_ID", S3RVER_ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3RVER_SECRET_ACCESS_KEY)
            .mount();
        assert_eq!(std::fs::read(mount.join("hello.txt")).unwrap(), b"hello");
    }

    let secret = "wrong-secret-0123456789";
    let (code, stderr) = Mount::builder_for_endpoint(server.endpoint(), "creds-bucket")
        .env("AWS_ACCESS_KEY_ID", "WRONGKEY")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .expect_failure();
    assert_error_line(code, &stderr, "credentials");
    assert!(!stderr.contains(secret), "the secret must never be printed");
}

/// moto with IAM authentication on (`/moto-api/reset-auth`, i.e. INITIAL_NO_AUTH_ACTION_COUNT
/// = 0) checks keys, signatures and policies: a wrong secret (SignatureDoesNotMatch) and an
/// unknown key fail with "credentials", a key without permissions with "access denied", and
/// the permitted key mounts (control).
#[tokio::test]
async fn mount_fails_for_a_wrong_secret_and_for_access_denied() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("hello.txt", b"hello").await;
    let keys = s3.enable_iam_auth();
    let (good_id, good_secret) = keys.allowed.clone();
    let (denied_id, denied_secret) = keys.denied.clone();

    {
        let mount = Mount::builder(&s3, bucket.name())
            .env("AWS_ACCESS_KEY_ID", &good_id)
            .env("AWS_SECRET_ACCESS_KEY", &good_secret)
            .mount();
        assert_eq!(std::fs::read(mount.join("hello.txt")).unwrap(), b"hello");
    }

    let wrong_secret = format!("{}x", &good_secret[..good_secret.len() - 1]);
    for (what, id, secret, phrase) in [
        (
            "wrong secret",
            good_id.as_str(),
            wrong_secret.as_str(),
            "credentials",
        ),
        (
            "unknown key",
            "AKIAUNKNOWNKEY000000",
            good_secret.as_str(),
            "credentials",
        ),
        (
            "no permission",
            denied_id.as_str(),
            denied_secret.as_str(),
            "access denied",
        ),
    ] {
        let (code, stderr) = Mount::builder(&s3, bucket.name())
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .expect_failure();
        eprintln!("{what}: {}", stderr.lines().last().unwrap_or(""));
        assert_error_line(code, &stderr, phrase);
        assert!(
            !stderr.contains(secret),
            "{what}: the secret must never be printed"
        );
    }
}

#[tokio::test]
async fn mount_fails_for_a_missing_mount_point() {
    let Served { s3, bucket } = Served::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .mountpoint(dir.path().join("missing"))
        .expect_failure();
    assert_error_line(code, &stderr, "does not exist");
}

#[tokio::test]
async fn mount_fails_for_a_mount_point_that_is_not_a_directory() {
    let Served { s3, bucket } = Served::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regular-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .mountpoint(&file)
        .expect_failure();
    assert_error_line(code, &stderr, "not a directory");
}

#[tokio::test]
async fn mount_fails_for_a_mount_point_already_mounted() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("still-here.txt", b"first mount").await;
    let first = Mount::new(&s3, bucket.name(), &[]);
    let (code, stderr, _) = run_s3mount_expecting_exit(s3.endpoint(), bucket.name(), first.path());
    assert_error_line(code, &stderr, "already a mount point");
    // The first mount is untouched.
    assert!(
        is_fuse_mounted(first.path()),
        "the first mount is still there"
    );
    assert_eq!(
        std::fs::read(first.join("still-here.txt")).unwrap(),
        b"first mount"
    );
}

/// The contract: a live mount shows in /proc/self/mountinfo as `fuse.s3mount`.
#[tokio::test]
async fn live_mount_shows_as_fuse_s3mount_in_mountinfo() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    assert_eq!(mount.fstype().as_deref(), Some("fuse.s3mount"));
}

// ---------------------------------------------------------------------------------------------
// --read-only
// ---------------------------------------------------------------------------------------------

/// Under `--read-only` every modification fails with EROFS and the bucket is unchanged.
#[tokio::test]
async fn read_only_mount_refuses_every_modification() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with("file.txt", b"original", &[("m", "1")], &[("t", "1")], None)
        .await;
    bucket.put("dir/inner.txt", b"inner").await;
    bucket.put("empty/", b"").await;
    let before_keys = bucket.list_keys("").await;

    let mount = Mount::new(&s3, bucket.name(), &["--read-only"]);
    let file = mount.join("file.txt");
    let expect_erofs = |what: &str, r: io::Result<()>| match r {
        Ok(()) => panic!("{what} succeeded on a read-only mount"),
        Err(e) => assert_eq!(errno(&e), libc::EROFS, "{what}: {e}"),
    };
    let c = |p: &Path| cpath(p);
    let libc_result = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };

    expect_erofs("create", File::create(mount.join("new.txt")).map(drop));
    expect_erofs(
        "create_new",
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(mount.join("new2.txt"))
            .map(drop),
    );
    expect_erofs(
        "open existing for write",
        OpenOptions::new()
            .write(true)
            .open(&file)
            .and_then(|mut f| f.write_all(b"x")),
    );
    expect_erofs(
        "open existing for append",
        OpenOptions::new()
            .append(true)
            .open(&file)
            .and_then(|mut f| f.write_all(b"x")),
    );
    expect_erofs(
        "open with O_TRUNC",
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .map(drop),
    );
    expect_erofs("mkdir", std::fs::create_dir(mount.join("newdir")));
    expect_erofs(
        "mkdir in a subdirectory",
        std::fs::create_dir(mount.join("dir/sub")),
    );
    expect_erofs("rm", std::fs::remove_file(&file));
    expect_erofs(
        "rm in a subdirectory",
        std::fs::remove_file(mount.join("dir/inner.txt")),
    );
    expect_erofs("rmdir", std::fs::remove_dir(mount.join("empty")));
    expect_erofs("mv", std::fs::rename(&file, mount.join("renamed.txt")));
    expect_erofs(
        "mv a directory",
        std::fs::rename(mount.join("dir"), mount.join("dir2")),
    );
    expect_erofs(
        "chmod",
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)),
    );
    // SAFETY: valid C strings.
    expect_erofs(
        "chown",
        libc_result(unsafe { libc::chown(c(&file).as_ptr(), 1, 1) }),
    );
    expect_erofs(
        "truncate",
        libc_result(unsafe { libc::truncate(c(&file).as_ptr(), 0) }),
    );
    expect_erofs(
        "symlink",
        std::os::unix::fs::symlink("file.txt", mount.join("link")),
    );
    expect_erofs("hard link", std::fs::hard_link(&file, mount.join("hard")));
    let name = CString::new("user.s3.tag.new").unwrap();
    expect_erofs(
        "setxattr",
        // SAFETY: valid C strings and a 1-byte value.
        libc_result(unsafe {
            libc::setxattr(c(&file).as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0)
        }),
    );
    let existing = CString::new("user.s3.tag.t").unwrap();
    expect_erofs(
        "removexattr",
        // SAFETY: valid C strings.
        libc_result(unsafe { libc::removexattr(c(&file).as_ptr(), existing.as_ptr()) }),
    );
    // Real tools.
    for (prog, args) in [
        ("setfattr", vec!["-n", "user.s3.meta.m", "-v", "2"]),
        ("touch", vec![]),
        ("truncate", vec!["-s", "0"]),
    ] {
        let mut a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_ref()).collect();
        a.push(file.as_os_str());
        let out = tool(prog, &a);
        assert!(
            !out.status.success(),
            "{prog} succeeded on a read-only mount"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Read-only file system"), "{prog}: {err}");
    }

    // Reading still works.
    assert_eq!(std::fs::read(&file).unwrap(), b"original");

    // The bucket is unchanged.
    assert_eq!(
        bucket.list_keys("").await,
        before_keys,
        "keys after the attempts"
    );
    assert_eq!(bucket.get("file.txt").await, b"original");
    assert_eq!(bucket.get("dir/inner.txt").await, b"inner");
    assert_eq!(
        bucket.tags("file.txt").await,
        [("t".to_string(), "1".to_string())]
    );
    assert_eq!(
        bucket.metadata("file.txt").await,
        HashMap::from([("m".to_string(), "1".to_string())])
    );
}

// ---------------------------------------------------------------------------------------------
// prefix mounts
// ---------------------------------------------------------------------------------------------

async fn seed_prefix_bucket(s3: &S3Server) -> Bucket {
    let bucket = s3.new_bucket().await;
    for (k, v) in [
        ("outside.txt", "outside"),
        ("sub/inside.txt", "inside"),
        ("sub/deeper/x.txt", "deeper x"),
        (
            "subway/not-sub.txt",
            "a sibling prefix sharing the first letters",
        ),
        ("sub.txt", "a file named like the prefix"),
    ] {
        bucket.put(k, v).await;
    }
    bucket
}

fn assert_shows_only_sub(mount: &Mount) {
    let (dirs, files) = walk(mount.path());
    assert_eq!(dirs, BTreeSet::from(["deeper".to_string()]), "directories");
    let want: BTreeMap<String, Vec<u8>> = [
        ("inside.txt".to_string(), b"inside".to_vec()),
        ("deeper/x.txt".to_string(), b"deeper x".to_vec()),
    ]
    .into_iter()
    .collect();
    assert_eq!(files, want, "files of the prefix mount");
    let err = std::fs::metadata(mount.join("outside.txt")).expect_err("outside.txt");
    assert_eq!(errno(&err), libc::ENOENT);
}

/// `--prefix sub/` and `--prefix sub` (normalised) mount only the keys under `sub/`.
#[tokio::test]
async fn prefix_flag_mounts_only_the_subtree() {
    let s3 = S3Server::start();
    let bucket = seed_prefix_bucket(&s3).await;
    for prefix in ["sub/", "sub"] {
        let mount = Mount::new(&s3, bucket.name(), &["--prefix", prefix]);
        assert_shows_only_sub(&mount);
    }
}

/// `s3://bucket/sub/` and `bucket/sub/` mount only the keys under `sub/`.
#[tokio::test]
async fn bucket_url_with_a_prefix_mounts_only_the_subtree() {
    let s3 = S3Server::start();
    let bucket = seed_prefix_bucket(&s3).await;
    for location in [
        format!("s3://{}/sub/", bucket.name()),
        format!("{}/sub/", bucket.name()),
    ] {
        let mount = Mount::new(&s3, &location, &[]);
        assert_shows_only_sub(&mount);
    }
}
