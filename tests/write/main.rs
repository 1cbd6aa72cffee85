//! The write path through a real mount against moto: every check looks at the bucket through
//! the SDK, not only through the mount.
//!
//! Modules:
//! - `append`: appending to a large object copies its whole parts on the server and fetches
//!   only the last partial one; the result through the mount, after a remount, in S3;
//! - `create`: round trips around part boundaries, Content-Type guessing, O_TRUNC overwrite,
//!   appends, writes in the middle and past the end, truncate/ftruncate, UploadPartCopy reuse
//!   for a large object, read-your-writes before close, fsync committing;
//! - `namespace`: unlink, mkdir/rmdir markers, rename (file, tree, onto a file,
//!   RENAME_NOREPLACE/RENAME_EXCHANGE), symlinks the s3fs way, hard links refused;
//! - `tools`: real tools (cp -r, rsync -a, tar x, mv, sed -i, echo >>, truncate, rm -r, ln -s);
//! - `failures`: failures injected by `common::fault_proxy` (500s on PUT / UploadPart /
//!   Complete, a stopped server) reaching close/fsync with the old object intact and no
//!   multipart upload left;
//! - `recovery`: a failed upload kept across a remount, listed and sent again on request
//!   (`--list-failed-uploads`, `--retry-failed-uploads`);
//! - `server_copy`: `cp` inside the mount as a CopyObject (counted at the test proxy), a
//!   partial `copy_file_range` copied by the kernel, a source with unsaved writes saved first;
//! - `s3fs_interop`: files and symlinks written by s3fs read back in s3mount and the other way
//!   round (when Debian's s3fs is installed; skipped otherwise).
//!
//! Mounts that go through the fault proxy use `--debug` (its stderr is printed when a test
//! fails) and a `--cache-dir` the test owns, so staging files kept after a failed upload are
//! cleaned up with the test. A failed close is followed by one more upload attempt when the
//! file is released, so those tests wait for its "kept at" log line before clearing a fault.
//!
//! chmod/chown/utimes and xattrs are tests/attributes/; the fault proxy's own test is
//! tests/faults/proxy.rs.

#[path = "../common/mod.rs"]
mod common;

mod all_buckets;
mod append;
mod create;
mod failures;
mod namespace;
mod recovery;
mod s3fs_interop;
mod server_copy;
mod tools;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::*;

const MIB: usize = 1 << 20;
/// The part size these tests mount with (`--write-part-size`): S3's minimum.
const PART: usize = 5 * MIB;
const PART_ARG: &str = "5242880";

/// S_IFLNK | 0777, as s3fs writes it in `x-amz-meta-mode`.
const SYMLINK_MODE: &str = "41471";

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (a, b) = (cpath(from), cpath(to));
    // SAFETY: valid C strings; AT_FDCWD with absolute paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The multipart uploads in progress in the bucket, as "key uploadId".
async fn multipart_uploads(bucket: &Bucket) -> Vec<String> {
    let out = bucket
        .client()
        .list_multipart_uploads()
        .bucket(bucket.name())
        .send()
        .await
        .expect("list_multipart_uploads");
    out.uploads()
        .iter()
        .map(|u| {
            format!(
                "{} {}",
                u.key().unwrap_or_default(),
                u.upload_id().unwrap_or_default()
            )
        })
        .collect()
}

/// Asserts the bytes are equal without printing megabytes on failure.
#[track_caller]
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let show = |b: &[u8]| {
        let end = (first + 16).min(b.len());
        format!("{:?}", &b[first.min(b.len())..end])
    };
    panic!(
        "{what}: {} bytes, expected {}; first difference at offset {first}: got {} want {}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// Waits until the mount's stderr contains `needle` more than `before` times (e.g. the log line
/// of a background retry); returns the stderr.
#[track_caller]
fn wait_for_log(mount: &Mount, needle: &str, before: usize, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = mount.stderr();
        if log.matches(needle).count() > before {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "s3mount did not log `{needle}` (a {}th time) within {timeout:?}; stderr:\n{log}",
            before + 1
        );
        sleep(Duration::from_millis(100));
    }
}

/// How many times the mount's stderr contains `needle` so far.
fn log_count(mount: &Mount, needle: &str) -> usize {
    mount.stderr().matches(needle).count()
}

/// The path in the last "... kept at PATH: ..." log line (where unsaved bytes were kept).
fn kept_path(log: &str) -> Option<PathBuf> {
    let line = log.lines().rev().find(|l| l.contains("kept at "))?;
    let rest = &line[line.find("kept at ")? + "kept at ".len()..];
    let end = rest.find(": ").unwrap_or(rest.len());
    Some(PathBuf::from(rest[..end].trim()))
}

/// A mount through `proxy` with extra args. Staging files (and those kept after a failed
/// upload) go to `cache_dir`, which the test owns: declare it before the mount.
fn mount_via(
    s3: &S3Server,
    bucket: &Bucket,
    proxy: &FaultProxy,
    cache_dir: &tempfile::TempDir,
    args: &[&str],
) -> Mount {
    Mount::builder(s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .arg("--cache-dir")
        .arg(cache_dir.path())
        .args(args)
        .mount()
}
