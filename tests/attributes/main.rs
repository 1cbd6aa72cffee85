//! Attributes you can trust: what `stat`, `ls -l`, `getfattr`, `cp -a` and `rsync -a` see
//! through a real mount against moto, checked again after an unmount and a fresh mount, and in
//! the bucket through the AWS SDK (s3fs's headers, `shared/INTEROP.md`).
//!
//! Modules:
//! - `stat`: times (mtime and ctime on writes, ctime alone on chmod/chown/rename, atime as set),
//!   modes and owners after a remount and in s3fs's headers, directories' attributes on their
//!   marker, special files, nlink, set-user-ID clearing, long names;
//! - `tags_and_metadata`: tags, metadata and facts as `user.s3.*` xattrs with xattr(7)'s
//!   ENODATA / ERANGE / size-query behaviour and S3's limits, Content-Type and tags across
//!   rewrites and renames;
//! - `user_xattrs`: any other `user.*` name, kept the s3fs way in one `x-amz-meta-xattr` header
//!   (`urlencode({"name":"base64(value)",...})`): setfattr/getfattr, binary values,
//!   XATTR_CREATE/XATTR_REPLACE, removal, a remount, E2BIG over S3's 2 KB, `cp --preserve=xattr`
//!   and `rsync -X`, directories, and s3fs reading and writing the same header when installed;
//! - `acls`: setfacl/getfacl stored like s3fs, with the kernel enforcing the ACL;
//! - `acl_inherit`: default ACLs inherited by what is created, the umask elsewhere;
//! - `presign`: `user.s3.presigned-url`, fetched with curl, its lifetime, never listed;
//! - `versions`: `user.s3.versions` and `user.s3.revert` on versioned and unversioned buckets;
//! - `as_of`: `--as-of TIME`, the bucket as it was then, read-only; `cp -a` of a deleted tree;
//! - `bucket_facts`: `user.s3.bucket.*` on the root, present and absent, read-only;
//! - `restore`: `user.s3.restore` on a GLACIER object: its state, a restore requested; an
//!   archived object refused at open (EACCES) until restored, then readable;
//! - `request_flags`: `--acl`, `--requester-pays` and `--expected-bucket-owner` on the
//!   requests (through the test proxy) and in the bucket.

#[path = "../common/mod.rs"]
mod common;

mod acl_inherit;
mod acls;
mod as_of;
mod bucket_facts;
mod presign;
mod request_flags;
mod restore;
mod stat;
mod tags_and_metadata;
mod user_xattrs;
mod versions;

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;

/// The uid and gid of `nobody` on Debian.
const NOBODY: u32 = 65534;

/// Runs `script` with `sh -c` as `nobody` in `dir`.
fn as_nobody(dir: &Path, script: &str) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["sh", "-c", script])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv")
}

/// (seconds, nanoseconds) of a time.
fn parts(secs: i64, nsec: i64) -> (i64, i64) {
    (secs, nsec)
}

fn mtime(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    parts(m.mtime(), m.mtime_nsec())
}

fn ctime(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    parts(m.ctime(), m.ctime_nsec())
}

fn atime(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    parts(m.atime(), m.atime_nsec())
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// s3fs's `sec[.nsec]` header value as (seconds, nanoseconds).
fn header_time(v: &str) -> (i64, i64) {
    let (s, f) = v.split_once('.').unwrap_or((v, ""));
    let nanos = if f.is_empty() {
        0
    } else {
        format!("{f:0<9}")[..9].parse().unwrap()
    };
    (s.parse().unwrap(), nanos)
}

/// The mount's parent directory made reachable for other users (the fixture's temp dir is 0700).
fn open_to_others(mount: &Mount) {
    let parent = mount.path().parent().unwrap();
    fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
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

/// `getfattr --only-values -n NAME PATH`: the value, or getfattr's complaint.
fn getfattr_value(path: &Path, name: &str) -> Result<String, String> {
    let out = tool(
        "getfattr",
        &[
            "--only-values".as_ref(),
            "--absolute-names".as_ref(),
            "-n".as_ref(),
            name.as_ref(),
            path.as_os_str(),
        ],
    );
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// `setfattr -n NAME -v VALUE PATH`: success, or setfattr's complaint.
fn setfattr(path: &Path, name: &str, value: &str) -> Result<(), String> {
    let out = tool(
        "setfattr",
        &[
            "-n".as_ref(),
            name.as_ref(),
            "-v".as_ref(),
            value.as_ref(),
            path.as_os_str(),
        ],
    );
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}
