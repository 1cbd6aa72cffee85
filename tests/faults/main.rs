//! Reliability under faults, through real mounts against moto with `common::fault_proxy` in
//! between.
//!
//! What every test here holds s3mount to:
//! - a read returns exactly the object's bytes, or an error — never other bytes;
//! - a write either commits the whole content (checked with the SDK, not through the mount) or
//!   returns an error from write/close/fsync with the previous object intact;
//! - nothing hangs: every file-system call runs on its own thread with a deadline
//!   ([`OP_DEADLINE`]), and a call that misses it fails the test as a hang;
//! - s3mount stays alive, with no "panicked" in its log.
//!
//! Modules:
//! - `scenarios`: per fault kind (500, 503 SlowDown, reset before the response, reset in the
//!   middle of the body, truncated body, latency) one test runs a fixed script: three rounds of
//!   reads and writes while every 4th request gets the fault (bounded: at most
//!   [`PERIODIC_FAULTS`]), then one read and one write while *every* request gets it (they must
//!   fail cleanly), then a round with no fault, which must succeed entirely. Each test prints a
//!   `FIGURES` line (and appends it to `$S3MOUNT_RELIABILITY_REPORT`), from which
//!   docs/RELIABILITY.md is written;
//! - `broken_body`: one broken GET body then no fault (the same bytes must read again);
//! - `outage`: a stopped server during reads and writes, an unresponsive server (bounded EIO);
//! - `proxy`: the fault proxy itself, through an SDK client that does not retry.
//!
//! Write failures (500s on PUT / UploadPart / Complete, a stopped server) are tests/write/failures.rs;
//! signals, unmounting and security are tests/daemon/; hostile names and the object over 5 GiB
//! are tests/read/.
//!
//! `S3MOUNT_SOAK=1` runs more rounds and faults, a longer outage with the default retries, and
//! one 35 s answer with the default timeouts. `S3MOUNT_DUMP_LOGS=DIR` keeps s3mount's `--debug`
//! log and the proxy's request log of the fault tests (evidence for bug reports).

#[path = "../common/mod.rs"]
mod common;

mod broken_body;
mod outage;
mod proxy;
mod scenarios;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Faults injected per fault kind in the periodic phase (every [`FAULT_EVERY`]-th request).
const PERIODIC_FAULTS: u32 = 40;
const FAULT_EVERY: u32 = 4;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// A mount through a fault proxy, with `--debug` (its stderr is printed when a test fails) and
/// a `--cache-dir` the test owns. Fields drop in order: the mount first.
struct Rig {
    mount: Mount,
    proxy: FaultProxy,
    /// Staging files (kept ones too) live here; removed after the mount is gone.
    _cache: tempfile::TempDir,
    bucket: Bucket,
    s3: S3Server,
}

impl Rig {
    async fn new(args: &[&str]) -> Rig {
        let Served { s3, bucket } = Served::new().await;
        Rig::with(s3, bucket, args)
    }

    fn with(s3: S3Server, bucket: Bucket, args: &[&str]) -> Rig {
        let proxy = FaultProxy::start(s3.endpoint());
        let cache = local_tempdir("s3mount-rel-cache-");
        let mount = Mount::builder(&s3, bucket.name())
            .endpoint_url(&proxy.endpoint())
            .arg("--cache-dir")
            .arg(cache.path())
            .arg("--debug")
            .args(args)
            .mount();
        Rig {
            mount,
            proxy,
            _cache: cache,
            bucket,
            s3,
        }
    }

    /// With `S3MOUNT_DUMP_LOGS=DIR`, copies s3mount's stderr and the proxy's request log to
    /// `DIR/NAME.stderr` and `DIR/NAME.requests` (evidence for bug reports).
    fn dump_logs(&self, name: &str) {
        dump_mount_log(&self.mount, name);
        if let Some(dir) = std::env::var_os("S3MOUNT_DUMP_LOGS").filter(|d| !d.is_empty()) {
            let _ = fs::write(
                Path::new(&dir).join(format!("{name}.requests")),
                self.proxy.summary(),
            );
        }
    }

    /// Panics unless s3mount is still running and never logged a panic.
    #[track_caller]
    fn assert_healthy(&self, when: &str) {
        let pid = self.mount.pid().expect("s3mount pid");
        assert!(
            process_alive(pid),
            "{when}: s3mount (pid {pid}) is gone; stderr tail:\n{}",
            tail(&self.mount.stderr(), 60)
        );
        assert_no_panic(&self.mount, when);
    }
}

/// Where two byte strings first differ (for messages), or None if equal.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// What an operation was, for the error counts.
#[derive(Clone, Copy, Debug)]
enum Cat {
    Read,
    Write,
    Meta,
}

/// Running totals for one fault kind (or one stress/offline test).
#[derive(Default, Debug)]
struct Tally {
    reads: u64,
    writes: u64,
    meta: u64,
    /// Operations that returned an error, by errno.
    errors: BTreeMap<String, u64>,
    read_errors: u64,
    write_errors: u64,
    meta_errors: u64,
    wrong_bytes: u64,
    lost_writes: u64,
    hangs: u64,
    /// Writes that returned an error although the server had applied them (the fault hit the
    /// answer after the server acted): allowed, counted for the record.
    failed_but_applied: u64,
    /// Human-readable descriptions of every violation, for the failure message.
    violations: Vec<String>,
}

impl Tally {
    fn ops(&self) -> u64 {
        self.reads + self.writes + self.meta
    }

    fn error(&mut self, cat: Cat, e: &io::Error) {
        *self.errors.entry(errno_label(os_errno(e))).or_default() += 1;
        match cat {
            Cat::Read => self.read_errors += 1,
            Cat::Write => self.write_errors += 1,
            Cat::Meta => self.meta_errors += 1,
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn wrong(&mut self, what: String) {
        self.wrong_bytes += 1;
        self.violations.push(format!("WRONG BYTES: {what}"));
    }

    fn lost(&mut self, what: String) {
        self.lost_writes += 1;
        self.violations.push(format!("LOST WRITE: {what}"));
    }

    fn hang(&mut self, h: &Hung) {
        self.hangs += 1;
        self.violations.push(format!("HANG: {h}"));
    }

    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        self.errors
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Runs a file-system call with [`OP_DEADLINE`]; a miss is tallied as a hang (None).
fn op<T: Send + 'static>(
    tally: &mut Tally,
    what: String,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match with_deadline(what, OP_DEADLINE, work) {
        Ok(v) => Some(v),
        Err(h) => {
            tally.hang(&h);
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// reads and writes, checked
// ---------------------------------------------------------------------------------------------

/// Reads the whole file through the mount and checks it against `want`.
fn check_full_read(tally: &mut Tally, path: &Path, want: &Arc<Vec<u8>>) {
    tally.reads += 1;
    let p = path.to_path_buf();
    let Some(result) = op(tally, format!("read {}", path.display()), move || {
        fs::read(&p)
    }) else {
        return;
    };
    match result {
        Ok(got) => {
            if let Some(i) = first_difference(&got, want) {
                tally.wrong(format!(
                    "read of {} returned {} bytes, the object has {}; first difference at {i}",
                    path.display(),
                    got.len(),
                    want.len()
                ));
            }
        }
        Err(e) => tally.error(Cat::Read, &e),
    }
}

/// Opens the file once and does `n` preads at random offsets; every one is checked.
fn check_random_preads(
    tally: &mut Tally,
    path: &Path,
    want: &Arc<Vec<u8>>,
    rng: &mut Rng,
    n: usize,
) {
    let reads: Vec<(u64, usize)> = (0..n)
        .map(|_| {
            let size = want.len() as u64;
            let off = rng.below(size + 1);
            let len = rng.range(1, 200 * KIB as u64) as usize;
            (off, len)
        })
        .collect();
    let p = path.to_path_buf();
    let w = want.clone();
    tally.reads += n as u64;
    // One thread per handle (so that a hang anywhere is caught); the reads inside are checked
    // one by one and reported back.
    let Some(result) = op(tally, format!("preads of {}", path.display()), move || {
        let file = File::open(&p)?;
        let mut outcomes = Vec::new();
        for (off, len) in reads {
            let mut buf = vec![0u8; len];
            let mut got = 0;
            let outcome = loop {
                match file.read_at(&mut buf[got..], off + got as u64) {
                    Ok(0) => break Ok(got),
                    Ok(k) => {
                        got += k;
                        if got == len {
                            break Ok(got);
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            let outcome = outcome.map(|got| {
                let start = (off as usize).min(w.len());
                let end = (off as usize + len).min(w.len());
                (buf[..got] == w[start..end], got, end - start)
            });
            outcomes.push((off, len, outcome));
            drop_page_cache(&file);
        }
        Ok::<_, io::Error>(outcomes)
    }) else {
        return;
    };
    match result {
        Err(e) => {
            // open failed: every planned read counts as failed
            for _ in 0..n {
                tally.error(Cat::Read, &e);
            }
        }
        Ok(outcomes) => {
            for (off, len, outcome) in outcomes {
                match outcome {
                    Ok((true, _, _)) => {}
                    Ok((false, got, want_len)) => tally.wrong(format!(
                        "pread({off}, {len}) of {} returned {got} bytes that are not the \
                         object's {want_len} bytes there",
                        path.display()
                    )),
                    Err(e) => tally.error(Cat::Read, &e),
                }
            }
        }
    }
}

/// The ways a write op changes a file.
#[derive(Clone, Debug)]
enum WriteKind {
    /// open(O_TRUNC), write, close.
    Replace(Vec<u8>),
    /// open(O_TRUNC), write, fsync, close.
    ReplaceFsync(Vec<u8>),
    /// open(O_RDWR), pwrite at an offset, close.
    Patch(u64, Vec<u8>),
    /// open(O_APPEND), write, close.
    Append(Vec<u8>),
}

impl WriteKind {
    fn apply(&self, old: &[u8]) -> Vec<u8> {
        match self {
            WriteKind::Replace(d) | WriteKind::ReplaceFsync(d) => d.clone(),
            WriteKind::Patch(off, d) => {
                let mut v = old.to_vec();
                let end = *off as usize + d.len();
                if v.len() < end {
                    v.resize(end, 0);
                }
                v[*off as usize..end].copy_from_slice(d);
                v
            }
            WriteKind::Append(d) => {
                let mut v = old.to_vec();
                v.extend_from_slice(d);
                v
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            WriteKind::Replace(_) => "replace",
            WriteKind::ReplaceFsync(_) => "replace+fsync",
            WriteKind::Patch(..) => "patch",
            WriteKind::Append(_) => "append",
        }
    }

    /// Runs the write; the first error of open/write/fsync/close.
    fn run(&self, path: &Path) -> io::Result<()> {
        let mut opts = OpenOptions::new();
        match self {
            WriteKind::Replace(_) | WriteKind::ReplaceFsync(_) => {
                opts.write(true).truncate(true).create(true)
            }
            WriteKind::Patch(..) => opts.read(true).write(true),
            WriteKind::Append(_) => opts.append(true),
        };
        let mut f = opts.open(path)?;
        let written = match self {
            WriteKind::Replace(d) | WriteKind::ReplaceFsync(d) | WriteKind::Append(d) => {
                d.chunks(MIB).try_for_each(|c| f.write_all(c))
            }
            WriteKind::Patch(off, d) => f.write_all_at(d, *off),
        };
        let synced = match (&written, self) {
            (Ok(()), WriteKind::ReplaceFsync(_)) => f.sync_all(),
            _ => Ok(()),
        };
        let closed = close(f);
        written.and(synced).and(closed)
    }
}

/// One file the fault tests write to, and what S3 must hold for it.
struct Target {
    key: String,
    /// The last content acknowledged (or found applied): S3 must hold exactly this.
    committed: Vec<u8>,
}

/// Runs `kind` on `target` through the mount, then checks S3 (through the SDK) and reads the
/// file back through the mount. `forwarded`: the fault kind lets the server apply a request
/// whose answer is then lost, so a failed write may still have been applied.
async fn checked_write(
    tally: &mut Tally,
    rig: &Rig,
    target: &mut Target,
    kind: WriteKind,
    forwarded: bool,
) {
    let path = rig.mount.join(&target.key);
    let new = kind.apply(&target.committed);
    tally.writes += 1;
    let k = kind.clone();
    let p = path.clone();
    let what = format!("{} of {}", kind.name(), target.key);
    let Some(result) = op(tally, what.clone(), move || k.run(&p)) else {
        return;
    };
    let in_s3 = rig.bucket.try_get(&target.key).await.unwrap_or_default();
    match result {
        Ok(()) => {
            if in_s3 != new {
                tally.lost(format!(
                    "{what}: acknowledged, but S3 holds {} bytes ({}), not the {} written",
                    in_s3.len(),
                    if in_s3 == target.committed {
                        "the previous content"
                    } else {
                        "neither the previous nor the new content"
                    },
                    new.len()
                ));
            }
            target.committed = in_s3;
        }
        Err(e) => {
            tally.error(Cat::Write, &e);
            if in_s3 == target.committed {
                // previous object intact
            } else if in_s3 == new && forwarded {
                tally.failed_but_applied += 1;
                target.committed = in_s3;
            } else {
                tally.wrong(format!(
                    "{what} failed ({e}) and S3 now holds {} bytes that are neither the previous \
                     ({} bytes) nor the whole new content ({} bytes)",
                    in_s3.len(),
                    target.committed.len(),
                    new.len()
                ));
                target.committed = in_s3;
            }
        }
    }
    // Whatever happened, reading the file back through the mount gives what S3 holds (or an
    // error).
    let want = Arc::new(target.committed.clone());
    check_full_read(tally, &path, &want);
}

/// Lists `dir` through the mount; the names must be exactly `want` (or the call fails).
fn check_listing(tally: &mut Tally, dir: &Path, want: &BTreeSet<String>) {
    tally.meta += 1;
    let d = dir.to_path_buf();
    let Some(result) = op(tally, format!("readdir {}", dir.display()), move || {
        fs::read_dir(&d)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<Vec<String>>>()
    }) else {
        return;
    };
    match result {
        Ok(names) => {
            let got: BTreeSet<String> = names.iter().cloned().collect();
            if got != *want || names.len() != got.len() {
                tally.violations.push(format!(
                    "WRONG LISTING of {}: {names:?}, expected {want:?}",
                    dir.display()
                ));
                tally.wrong_bytes += 1;
            }
        }
        Err(e) => tally.error(Cat::Meta, &e),
    }
}

/// stat through the mount; the size must be `size` (or the call fails).
fn check_stat(tally: &mut Tally, path: &Path, size: u64) {
    tally.meta += 1;
    let p = path.to_path_buf();
    let Some(result) = op(tally, format!("stat {}", path.display()), move || {
        fs::metadata(&p)
    }) else {
        return;
    };
    match result {
        Ok(m) if m.len() == size && m.is_file() => {}
        Ok(m) => {
            tally.violations.push(format!(
                "WRONG STAT of {}: size {} (file: {}), expected {size}",
                path.display(),
                m.len(),
                m.is_file()
            ));
            tally.wrong_bytes += 1;
        }
        Err(e) => tally.error(Cat::Meta, &e),
    }
}
