//! Extended attributes as POSIX users know them, through a real mount against moto: any
//! `user.*` name outside the `user.s3.*` scheme and the POSIX ACLs, kept the s3fs way in one
//! `x-amz-meta-xattr` header (`urlencode({"name":"base64(value)",...})`).
//!
//! Covered: setfattr/getfattr and the raw header as the SDK reads it; binary values;
//! XATTR_CREATE/XATTR_REPLACE; removal; persistence across a remount; `cp --preserve=xattr`
//! and `rsync -X` into the mount; E2BIG over S3's 2 KB with the object untouched; attributes
//! on directories (their marker objects); setfacl/getfacl with the kernel enforcing the ACL;
//! and, when Debian's s3fs is installed, the same header read and written by s3fs.

mod common;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

fn set_xattr(path: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    let (p, n) = (cstr(path), CString::new(name).unwrap());
    // SAFETY: valid C strings and a buffer of value.len() bytes.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn get_xattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (p, n) = (cstr(path), CString::new(name).unwrap());
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: valid C strings and a buffer of buf.len() bytes.
    let rc = unsafe {
        libc::getxattr(
            p.as_ptr(),
            n.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(rc as usize);
    Ok(buf)
}

fn remove_xattr(path: &Path, name: &str) -> io::Result<()> {
    let (p, n) = (cstr(path), CString::new(name).unwrap());
    // SAFETY: valid C strings.
    if unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The names listxattr(2) gives.
fn list_xattr(path: &Path) -> Vec<String> {
    let p = cstr(path);
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: a valid C string and a buffer of buf.len() bytes.
    let rc =
        unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    assert!(
        rc >= 0,
        "listxattr {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
    buf.truncate(rc as usize);
    buf.split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

#[track_caller]
fn assert_errno<T: std::fmt::Debug>(result: io::Result<T>, expected: i32, what: &str) {
    match result {
        Ok(v) => panic!("{what}: expected errno {expected}, got success ({v:?})"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(expected), "{what}: {e}"),
    }
}

fn sh_output(dir: &Path, script: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run sh -c {script}: {e}"))
}

/// Runs `script` in `dir`, asserting success; returns its stdout.
#[track_caller]
fn sh(dir: &Path, script: &str) -> String {
    let out = sh_output(dir, script);
    assert!(
        out.status.success(),
        "`{script}` in {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Decodes an `x-amz-meta-xattr` value independently of s3mount's code: percent-decoding,
/// then the JSON object of base64 strings s3fs writes.
fn decode_header(header: &str) -> Vec<(String, Vec<u8>)> {
    let mut json = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            json.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            json.push(bytes[i]);
            i += 1;
        }
    }
    let json = String::from_utf8(json).unwrap();
    let body = json
        .strip_prefix('{')
        .and_then(|j| j.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a JSON object: {json}"));
    body.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once(':').unwrap();
            let unq = |s: &str| s.trim_matches('"').to_string();
            let value = base64::engine::general_purpose::STANDARD
                .decode(unq(v))
                .unwrap_or_else(|e| panic!("{pair}: {e}"));
            (unq(k), value)
        })
        .collect()
}

async fn etag(bucket: &Bucket, key: &str) -> String {
    bucket
        .head(key)
        .await
        .and_then(|h| h.e_tag().map(str::to_string))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// files
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_xattrs_are_kept_in_s3fs_header_and_survive_a_remount() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket
        .put_with(
            "f.txt",
            b"content",
            &[("keep", "me")],
            &[("team", "x")],
            Some("text/plain"),
        )
        .await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("f.txt");

    sh(mount.path(), "setfattr -n user.key1 -v hello f.txt");
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("xattr").map(String::as_str),
        Some("%7B%22user.key1%22%3A%22aGVsbG8%3D%22%7D"),
        "s3fs's exact header: {meta:?}"
    );
    assert_eq!(
        decode_header(&meta["xattr"]),
        [("user.key1".to_string(), b"hello".to_vec())]
    );
    assert_eq!(
        meta.get("keep").map(String::as_str),
        Some("me"),
        "other metadata kept"
    );
    assert_eq!(bucket.get("f.txt").await, b"content");
    assert_eq!(
        bucket.tags("f.txt").await,
        [("team".to_string(), "x".to_string())]
    );

    let dump = sh(mount.path(), "getfattr -d f.txt");
    assert!(dump.contains("user.key1=\"hello\""), "getfattr -d:\n{dump}");
    assert!(
        dump.contains("user.s3.tag.team=\"x\""),
        "the scheme still shows:\n{dump}"
    );
    assert!(
        !dump.contains("user.s3.meta.xattr"),
        "the header itself is not shown:\n{dump}"
    );

    // binary values, listed beside the user.s3.* names
    let all: Vec<u8> = (0..=255).collect();
    set_xattr(&f, "user.bin", &all, 0).unwrap();
    assert_eq!(get_xattr(&f, "user.bin").unwrap(), all);
    let names = list_xattr(&f);
    for n in [
        "user.key1",
        "user.bin",
        "user.s3.etag",
        "user.s3.meta.keep",
        "user.s3.tag.team",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    assert_eq!(
        decode_header(&bucket.metadata("f.txt").await["xattr"]),
        [
            ("user.bin".to_string(), all.clone()),
            ("user.key1".to_string(), b"hello".to_vec())
        ]
    );

    // XATTR_CREATE / XATTR_REPLACE, removal
    assert_errno(
        set_xattr(&f, "user.key1", b"x", libc::XATTR_CREATE),
        libc::EEXIST,
        "create",
    );
    assert_errno(
        set_xattr(&f, "user.nope", b"x", libc::XATTR_REPLACE),
        libc::ENODATA,
        "replace",
    );
    set_xattr(&f, "user.key1", b"world", libc::XATTR_REPLACE).unwrap();
    set_xattr(&f, "user.empty", b"", libc::XATTR_CREATE).unwrap();
    assert_eq!(get_xattr(&f, "user.empty").unwrap(), b"");
    remove_xattr(&f, "user.bin").unwrap();
    assert_errno(remove_xattr(&f, "user.bin"), libc::ENODATA, "remove twice");
    assert_errno(get_xattr(&f, "user.bin"), libc::ENODATA, "get removed");
    // names s3fs could not read back, and other namespaces
    assert_errno(set_xattr(&f, "user.a,b", b"x", 0), libc::ENOTSUP, "a comma");
    assert_errno(
        set_xattr(&f, "trusted.x", b"x", 0),
        libc::ENOTSUP,
        "trusted.*",
    );
    assert_errno(
        set_xattr(&f, "user.s3.meta.xattr", b"x", 0),
        libc::EPERM,
        "the header",
    );

    // after a fresh mount
    mount.remount();
    let f = mount.join("f.txt");
    assert_eq!(get_xattr(&f, "user.key1").unwrap(), b"world");
    assert_eq!(get_xattr(&f, "user.empty").unwrap(), b"");
    assert_errno(get_xattr(&f, "user.bin"), libc::ENODATA, "after remount");
    assert_eq!(fs::read(&f).unwrap(), b"content");
    assert_eq!(
        get_xattr(&f, "user.s3.content-type").unwrap(),
        b"text/plain"
    );

    // the header goes with the last attribute
    remove_xattr(&f, "user.key1").unwrap();
    remove_xattr(&f, "user.empty").unwrap();
    let meta = bucket.metadata("f.txt").await;
    assert!(!meta.contains_key("xattr"), "{meta:?}");
    assert_eq!(meta.get("keep").map(String::as_str), Some("me"));
}

#[tokio::test]
async fn over_2kb_is_e2big_and_nothing_changes() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("big.txt", b"data").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("big.txt");

    // 1,000 bytes: about 1,350 in base64, under the limit
    let fits = vec![b'a'; 1000];
    set_xattr(&f, "user.fits", &fits, 0).unwrap();
    let etag_before = etag(&bucket, "big.txt").await;
    let meta_before = bucket.metadata("big.txt").await;

    // another 1,000 bytes would take the header past 2 KB
    assert_errno(
        set_xattr(&f, "user.more", &fits, 0),
        libc::E2BIG,
        "over 2 KB",
    );
    assert_errno(
        set_xattr(&f, "user.huge", &vec![7u8; 4000], 0),
        libc::E2BIG,
        "4 KB",
    );
    assert_eq!(
        etag(&bucket, "big.txt").await,
        etag_before,
        "object untouched"
    );
    assert_eq!(
        bucket.metadata("big.txt").await,
        meta_before,
        "metadata untouched"
    );
    assert_eq!(get_xattr(&f, "user.fits").unwrap(), fits);
    assert_errno(
        get_xattr(&f, "user.more"),
        libc::ENODATA,
        "not half applied",
    );
    assert_eq!(bucket.get("big.txt").await, b"data");
}

#[tokio::test]
async fn xattrs_set_on_a_file_being_written_ride_with_its_upload() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("new.txt");
    {
        use std::io::Write;
        let mut file = fs::File::create(&f).unwrap();
        file.write_all(b"written").unwrap();
        set_xattr(&f, "user.early", b"1", 0).unwrap();
        assert_eq!(
            get_xattr(&f, "user.early").unwrap(),
            b"1",
            "seen before the upload"
        );
        assert!(list_xattr(&f).contains(&"user.early".to_string()));
    }
    assert_eq!(bucket.get("new.txt").await, b"written");
    let meta = bucket.metadata("new.txt").await;
    assert_eq!(
        decode_header(meta.get("xattr").map(String::as_str).unwrap_or("{}")),
        [("user.early".to_string(), b"1".to_vec())],
        "{meta:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// copying tools
// ---------------------------------------------------------------------------------------------

/// A local tree with user xattrs; `None` if the local filesystem does not take them.
fn local_tree_with_xattrs() -> Option<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("s3mount-xattrs-local-")
        .tempdir()
        .unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.bin"), b"beta\n").unwrap();
    if set_xattr(&src.join("a.txt"), "user.color", b"blue", 0).is_err() {
        return None;
    }
    set_xattr(&src.join("sub/b.bin"), "user.raw", b"\x00\xff\x10", 0).unwrap();
    set_xattr(&src.join("sub"), "user.dir", b"d1", 0).unwrap();
    Some(dir)
}

#[tokio::test]
async fn cp_and_rsync_copy_xattrs_into_the_mount() {
    let Some(local) = local_tree_with_xattrs() else {
        eprintln!("skipped: the local filesystem does not take user xattrs");
        return;
    };
    let src = local.path().join("src");
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);

    let cp = format!("cp --preserve=xattr {}/a.txt cp-a.txt", src.display());
    sh(mount.path(), &cp);
    assert_eq!(
        get_xattr(&mount.join("cp-a.txt"), "user.color").unwrap(),
        b"blue"
    );
    assert_eq!(
        decode_header(&bucket.metadata("cp-a.txt").await["xattr"]),
        [("user.color".to_string(), b"blue".to_vec())]
    );

    if have("rsync") {
        // rsync -X also removes the destination's names the source lacks: the filter keeps
        // it off the user.s3.* facts (which cannot be removed) and metadata.
        let rsync = format!("rsync -aX --filter='-x user.s3.*' {}/ rs/", src.display());
        sh(mount.path(), &rsync);
        mount.remount();
        assert_eq!(
            get_xattr(&mount.join("rs/a.txt"), "user.color").unwrap(),
            b"blue"
        );
        assert_eq!(
            get_xattr(&mount.join("rs/sub/b.bin"), "user.raw").unwrap(),
            b"\x00\xff\x10"
        );
        assert_eq!(get_xattr(&mount.join("rs/sub"), "user.dir").unwrap(), b"d1");
        assert_eq!(fs::read(mount.join("rs/sub/b.bin")).unwrap(), b"beta\n");
        assert_eq!(
            decode_header(&bucket.metadata("rs/sub/").await["xattr"]),
            [("user.dir".to_string(), b"d1".to_vec())],
            "the directory's attribute is on its marker"
        );
    } else {
        eprintln!("rsync part skipped: rsync is not installed");
    }
}

// ---------------------------------------------------------------------------------------------
// directories
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn directories_keep_xattrs_on_their_marker() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("implicit/child.txt", b"c").await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let imp = mount.join("implicit");
    fs::create_dir(mount.join("made")).unwrap();
    let made = mount.join("made");

    // no marker: nothing to read, nothing to remove
    assert!(!bucket.exists("implicit/").await);
    assert_errno(get_xattr(&imp, "user.d"), libc::ENODATA, "no marker");
    assert_errno(
        remove_xattr(&imp, "user.d"),
        libc::ENODATA,
        "no marker to remove from",
    );
    assert!(
        !bucket.exists("implicit/").await,
        "no marker made by a failed removal"
    );

    sh(
        mount.path(),
        "setfattr -n user.d -v one implicit && setfattr -n user.d -v two made",
    );
    assert!(bucket.exists("implicit/").await, "the marker was made");
    assert_eq!(
        decode_header(&bucket.metadata("implicit/").await["xattr"]),
        [("user.d".to_string(), b"one".to_vec())]
    );
    set_xattr(&made, "user.s3.meta.color", b"red", 0).unwrap();
    assert_eq!(
        bucket
            .metadata("made/")
            .await
            .get("color")
            .map(String::as_str),
        Some("red")
    );
    assert_errno(
        set_xattr(&made, "user.s3.tag.t", b"x", 0),
        libc::ENOTSUP,
        "tags on a dir",
    );
    assert_errno(
        set_xattr(mount.path(), "user.d", b"x", 0),
        libc::ENOTSUP,
        "the root",
    );
    assert_eq!(
        fs::read(imp.join("child.txt")).unwrap(),
        b"c",
        "the directory still works"
    );

    mount.remount();
    let (imp, made) = (mount.join("implicit"), mount.join("made"));
    assert_eq!(get_xattr(&imp, "user.d").unwrap(), b"one");
    assert_eq!(get_xattr(&made, "user.d").unwrap(), b"two");
    assert_eq!(get_xattr(&made, "user.s3.meta.color").unwrap(), b"red");
    let names = list_xattr(&made);
    assert!(names.contains(&"user.d".to_string()), "{names:?}");
    let dump = sh(mount.path(), "getfattr -d implicit");
    assert!(dump.contains("user.d=\"one\""), "{dump}");
    assert!(fs::metadata(&imp).unwrap().is_dir());

    remove_xattr(&imp, "user.d").unwrap();
    assert!(!bucket.metadata("implicit/").await.contains_key("xattr"));
    assert_errno(get_xattr(&imp, "user.d"), libc::ENODATA, "removed");
}

// ---------------------------------------------------------------------------------------------
// POSIX ACLs
// ---------------------------------------------------------------------------------------------

/// Whether uid 65534 can read `path` (run through setpriv).
fn nobody_can_read(path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run setpriv")
        .success()
}

#[tokio::test]
async fn acls_are_stored_like_s3fs_and_enforced_by_the_kernel() {
    if !have("setfacl") {
        eprintln!("skipped: setfacl is not installed (apt-get install acl)");
        return;
    }
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("f.txt", b"secret\n").await;
    bucket.put("d/inner.txt", b"i").await;
    // --allow-other so that uid 65534 reaches the mount at all
    let mut mount = Mount::new(&s3, bucket.name(), &["--allow-other"]);
    let dir = mount.path().to_path_buf();
    let f = mount.join("f.txt");

    sh(&dir, "chmod 640 f.txt && setfacl -m u:nobody:r f.txt");
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(acl.contains("user:nobody:r--"), "getfacl:\n{acl}");
    assert!(acl.contains("mask::r--"), "getfacl:\n{acl}");
    let header = decode_header(&bucket.metadata("f.txt").await["xattr"]);
    assert_eq!(header.len(), 1, "{header:?}");
    assert_eq!(header[0].0, "system.posix_acl_access");
    assert_eq!(
        header[0].1.len(),
        4 + 5 * 8,
        "the xattr form: header and five entries"
    );

    // the kernel enforces it (needs root to switch users, and a path uid 65534 may walk)
    let root = nix_is_root();
    if root {
        fs::set_permissions(dir.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(nobody_can_read(&f), "u:nobody:r grants reading");
    }

    // chmod rewrites the mask, as on a local filesystem
    sh(&dir, "chmod 600 f.txt");
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(acl.contains("mask::---"), "after chmod 600:\n{acl}");
    if root {
        assert!(!nobody_can_read(&f), "the mask now denies it");
    }
    sh(&dir, "chmod 640 f.txt && setfacl -d -m u:nobody:rx d");

    mount.remount();
    let dir = mount.path().to_path_buf();
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(
        acl.contains("user:nobody:r--") && acl.contains("mask::r--"),
        "after a remount:\n{acl}"
    );
    let st = fs::metadata(mount.join("f.txt")).unwrap();
    assert_eq!(st.permissions().mode() & 0o777, 0o640);
    let dacl = sh(&dir, "getfacl -c d");
    assert!(
        dacl.contains("default:user:nobody:r-x"),
        "default ACL on d:\n{dacl}"
    );
    if root {
        assert!(
            nobody_can_read(&mount.join("f.txt")),
            "enforced after a remount"
        );
    }

    // removing the ACL leaves the mode bits
    sh(&dir, "setfacl -b f.txt");
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(!acl.contains("nobody"), "{acl}");
    assert!(!bucket.metadata("f.txt").await.contains_key("xattr"));
    if root {
        assert!(!nobody_can_read(&mount.join("f.txt")));
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------------
// s3fs
// ---------------------------------------------------------------------------------------------

fn is_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| mp == want))
}

/// An `s3fs -f -o use_xattr` mount of a moto bucket, unmounted and reaped on drop.
struct S3fsMount {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl S3fsMount {
    fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn start(s3: &S3Server, bucket: &str) -> S3fsMount {
        let dir = tempfile::Builder::new()
            .prefix("s3mount-xattrs-s3fs-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("mnt")).unwrap();
        let mnt = dir.path().join("mnt").canonicalize().unwrap();
        let passwd = dir.path().join("passwd");
        fs::write(&passwd, format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}\n")).unwrap();
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600)).unwrap();
        let mut child = Command::new("s3fs")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg(bucket)
            .arg(&mnt)
            .arg("-f")
            .arg("-o")
            .arg(format!(
                "use_xattr,url={},use_path_request_style,endpoint={REGION},passwd_file={}",
                s3.endpoint(),
                passwd.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("s3fs.err")).unwrap())
            .spawn()
            .expect("spawn s3fs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(&mnt) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "s3fs exited ({status}): {}",
                    fs::read_to_string(dir.path().join("s3fs.err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "s3fs did not mount");
            sleep(Duration::from_millis(50));
        }
        S3fsMount { child, dir }
    }
}

impl Drop for S3fsMount {
    fn drop(&mut self) {
        let mnt = self.path();
        let _ = Command::new("fusermount3").arg("-u").arg(&mnt).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(&mnt) {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
    }
}

#[tokio::test]
async fn s3fs_reads_and_writes_the_same_header() {
    if !have("s3fs") {
        eprintln!("skipped: s3fs is not installed (apt-get install s3fs)");
        return;
    }
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("shared.txt", b"shared\n").await;

    // s3mount writes, s3fs reads
    {
        let mount = Mount::new(&s3, bucket.name(), &[]);
        sh(
            mount.path(),
            "setfattr -n user.from_s3mount -v hello shared.txt && mkdir d && \
             setfattr -n user.on_dir -v yes d",
        );
    }
    {
        let s3fs = S3fsMount::start(&s3, bucket.name());
        let p = s3fs.path();
        assert_eq!(
            get_xattr(&p.join("shared.txt"), "user.from_s3mount").unwrap(),
            b"hello"
        );
        assert_eq!(get_xattr(&p.join("d"), "user.on_dir").unwrap(), b"yes");
        sh(&p, "setfattr -n user.from_s3fs -v 0x00ff shared.txt");
    }

    // s3fs wrote, s3mount reads
    let meta = bucket.metadata("shared.txt").await;
    assert_eq!(
        decode_header(&meta["xattr"]),
        [
            ("user.from_s3fs".to_string(), b"\x00\xff".to_vec()),
            ("user.from_s3mount".to_string(), b"hello".to_vec())
        ],
        "{meta:?}"
    );
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("shared.txt");
    assert_eq!(get_xattr(&f, "user.from_s3fs").unwrap(), b"\x00\xff");
    assert_eq!(get_xattr(&f, "user.from_s3mount").unwrap(), b"hello");
    assert_eq!(fs::read(&f).unwrap(), b"shared\n");
}
