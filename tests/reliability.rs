//! Reliability under faults, signals, hostile names and sizes, and the security defaults
//! (issue 4), through real mounts against moto with `common::fault_proxy` in between.
//!
//! What every test here holds s3mount to:
//! - a read returns exactly the object's bytes, or an error — never other bytes;
//! - a write either commits the whole content (checked with the SDK, not through the mount) or
//!   returns an error from write/close/fsync with the previous object intact;
//! - nothing hangs: every file-system call runs on its own thread with a deadline
//!   ([`OP_DEADLINE`]), and a call that misses it fails the test as a hang;
//! - s3mount stays alive, with no "panicked" in its log.
//!
//! Per fault kind (500, 503 SlowDown, reset before the response, reset in the middle of the
//! body, truncated body, latency) one test runs a fixed script: three rounds of reads and
//! writes while every 4th request gets the fault (bounded: at most [`PERIODIC_FAULTS`]), then
//! one read and one write while *every* request gets it (they must fail cleanly), then a round
//! with no fault, which must succeed entirely. Each test prints a `FIGURES` line (and appends it
//! to `$S3MOUNT_RELIABILITY_REPORT`), from which docs/RELIABILITY.md is written.
//!
//! Also here: one broken GET body then no fault (the same bytes must read again), a stopped
//! server during reads and writes, an unresponsive server (bounded EIO), `fusermount3 -u`/`-uz`,
//! SIGTERM and SIGKILL with unsaved data, hostile names (every special character, control
//! characters, 1,024-byte keys, components over 255 bytes, 50-level trees, empty objects), an
//! object over 5 GiB (from a synthetic endpoint, [`SyntheticS3`]), secrets in `--debug` logs,
//! and the permission defaults with and without `--allow-other`.
//!
//! `S3MOUNT_SOAK=1` runs more rounds and faults, a longer outage with the default retries, and
//! one 35 s answer with the default timeouts. `S3MOUNT_DUMP_LOGS=DIR` keeps s3mount's `--debug`
//! log and the proxy's request log of the fault tests (evidence for bug reports).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Longest any single file-system call may take before it counts as a hang. With the default
/// retry settings (5 attempts, 10 s connect and 30 s read timeouts) s3mount must answer well
/// within this.
const OP_DEADLINE: Duration = Duration::from_secs(120);

/// Faults injected per fault kind in the periodic phase (every [`FAULT_EVERY`]-th request).
const PERIODIC_FAULTS: u32 = 40;
const FAULT_EVERY: u32 = 4;

/// A key used in a FIGURES line, so `grep FIGURES` finds every figure of a run.
fn figures_prefix(test: &str) -> String {
    format!("test={test}")
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn local_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

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

/// With `S3MOUNT_DUMP_LOGS=DIR`, copies s3mount's stderr to `DIR/NAME.stderr`.
fn dump_mount_log(mount: &Mount, name: &str) {
    if let Some(dir) = std::env::var_os("S3MOUNT_DUMP_LOGS").filter(|d| !d.is_empty()) {
        let _ = fs::create_dir_all(&dir);
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let _ = fs::write(
            Path::new(&dir).join(format!("{name}.stderr")),
            mount.stderr(),
        );
    }
}

#[track_caller]
fn assert_no_panic(mount: &Mount, when: &str) {
    let log = mount.stderr();
    assert!(
        !log.contains("panicked"),
        "{when}: s3mount logged a panic:\n{}",
        log.lines()
            .filter(|l| l.contains("panicked"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
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

// ---------------------------------------------------------------------------------------------
// the fault scenario, per fault kind
// ---------------------------------------------------------------------------------------------

/// Sizes of the files each round reads: empty, small, a few blocks, past the 256 KiB part size
/// these mounts read with, and several parts.
const READ_SIZES: [usize; 5] = [0, 1500, 300 * KIB + 3, MIB + 17, 3 * MIB + 5];

/// Seeds round `r`'s files (`rR/fI`) through the SDK; returns their bytes.
async fn seed_round(bucket: &Bucket, r: usize) -> Vec<(String, Arc<Vec<u8>>)> {
    let mut files = Vec::new();
    for (i, &size) in READ_SIZES.iter().enumerate() {
        let key = format!("r{r}/f{i}.bin");
        let data = Arc::new(pseudo_random_bytes(size, (r * 100 + i) as u64 + 1));
        bucket.put(&key, data.as_slice()).await;
        files.push((key, data));
    }
    files
}

/// One round: list, stat, read whole, read at random offsets, then write each target once.
async fn run_round(
    tally: &mut Tally,
    rig: &Rig,
    files: &[(String, Arc<Vec<u8>>)],
    targets: &mut [Target],
    rng: &mut Rng,
    forwarded: bool,
    big_write: bool,
) {
    let dir = files[0].0.split('/').next().unwrap().to_string();
    let names: BTreeSet<String> = files
        .iter()
        .map(|(k, _)| k.rsplit('/').next().unwrap().to_string())
        .collect();
    check_listing(tally, &rig.mount.join(&dir), &names);
    for (key, data) in files {
        let path = rig.mount.join(key);
        check_stat(tally, &path, data.len() as u64);
        check_full_read(tally, &path, data);
        if !data.is_empty() {
            check_random_preads(tally, &path, data, rng, 6);
        }
    }
    for (i, target) in targets.iter_mut().enumerate() {
        let size = target.committed.len() as u64;
        let kind = match i % 4 {
            0 => {
                let n = rng.range(1, 64 * KIB as u64) as usize;
                WriteKind::Replace(rng.bytes(n))
            }
            1 => WriteKind::Patch(rng.below(size.max(1)), rng.bytes(4 * KIB)),
            2 => WriteKind::Append(rng.bytes(10 * KIB + 7)),
            _ if big_write => WriteKind::Replace(rng.bytes(5 * MIB + 100 * KIB)),
            _ => {
                let n = rng.range(1, 300 * KIB as u64) as usize;
                WriteKind::ReplaceFsync(rng.bytes(n))
            }
        };
        checked_write(tally, rig, target, kind, forwarded).await;
    }
}

/// Every fault kind of the issue, with its name in the figures.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Status500,
    SlowDown503,
    ResetBeforeResponse,
    ResetMidBody,
    TruncatedBody,
    Latency,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Status500 => "500 InternalError",
            Kind::SlowDown503 => "503 SlowDown",
            Kind::ResetBeforeResponse => "reset before response",
            Kind::ResetMidBody => "reset mid-body",
            Kind::TruncatedBody => "truncated body",
            Kind::Latency => "latency",
        }
    }

    fn fault(self) -> Fault {
        match self {
            Kind::Status500 => Fault::Status500,
            Kind::SlowDown503 => Fault::Status503,
            Kind::ResetBeforeResponse => Fault::ResetBeforeResponse,
            Kind::ResetMidBody => Fault::ResetMidBody,
            Kind::TruncatedBody => Fault::TruncatedBody,
            Kind::Latency => Fault::Latency(Duration::from_millis(400)),
        }
    }

    /// Whether the server applies the request before the fault hits the answer.
    fn forwarded(self) -> bool {
        matches!(
            self,
            Kind::ResetMidBody | Kind::TruncatedBody | Kind::Latency
        )
    }
}

/// The fixed script for one fault kind; see the module docs.
async fn fault_scenario(kind: Kind) {
    let started = Instant::now();
    let rounds = if soak() { 8 } else { 3 };
    // 256 KiB GETs and a 1 MiB block cache: reads keep going to S3, so the faults meet them.
    let rig = Rig::new(&["--part-size", "262144", "--cache-size", "1"]).await;
    let mut rng = Rng::new(0xFA017 + kind as u64);
    let mut targets = Vec::new();
    for i in 0..4 {
        let key = format!("w/t{i}.bin");
        let data = pseudo_random_bytes(700 * KIB + i, 900 + i as u64);
        rig.bucket.put(&key, &data).await;
        targets.push(Target {
            key,
            committed: data,
        });
    }
    let mut rounds_files = Vec::new();
    for r in 0..=rounds {
        rounds_files.push(seed_round(&rig.bucket, r).await);
    }
    let untouched_key = "p/never-read.bin";
    let untouched = Arc::new(pseudo_random_bytes(2 * MIB, 77));
    rig.bucket.put(untouched_key, untouched.as_slice()).await;
    let mut tally = Tally::default();

    // 1. Periodic faults: every 4th request, PERIODIC_FAULTS in all.
    let periodic = if soak() {
        PERIODIC_FAULTS * 3
    } else {
        PERIODIC_FAULTS
    };
    rig.proxy.reset_log();
    let rules = add_periodic_faults(&rig.proxy, "", "", kind.fault(), FAULT_EVERY, periodic);
    for files in rounds_files.iter().take(rounds) {
        let big = rng.chance(50);
        run_round(
            &mut tally,
            &rig,
            files,
            &mut targets,
            &mut rng,
            kind.forwarded(),
            big,
        )
        .await;
    }
    for r in rules {
        rig.proxy.remove(r);
    }
    let periodic_faults = rig.proxy.faulted();
    let periodic_requests = rig.proxy.seen();
    rig.assert_healthy("after the periodic faults");

    // 2. Every request faulted: one read of a file never read before and one write, at once.
    //    Both must fail (or, for latency, succeed) within the deadline, never with wrong bytes.
    let mut persistent = String::from("-");
    if !matches!(kind, Kind::Latency) {
        rig.proxy.reset_log();
        let rule = rig.proxy.fail(Rule::new("", "", kind.fault()));
        let t0 = Instant::now();
        let read_path = rig.mount.join(untouched_key);
        let reader = std::thread::spawn(move || {
            let t = Instant::now();
            (fs::read(&read_path), t.elapsed())
        });
        let target = &mut targets[0];
        let new = rng.bytes(20 * KIB);
        let wpath = rig.mount.join(&target.key);
        let k = WriteKind::Replace(new.clone());
        tally.writes += 1;
        let wres = op(
            &mut tally,
            "write while every request fails".into(),
            move || {
                let t = Instant::now();
                (k.run(&wpath), t.elapsed())
            },
        );
        let rres = op(
            &mut tally,
            "read while every request fails".into(),
            move || reader.join().expect("reader thread"),
        );
        tally.reads += 1;
        let in_s3 = rig.bucket.try_get(&target.key).await.unwrap_or_default();
        let mut note = Vec::new();
        if let Some((res, took)) = wres {
            match res {
                Ok(()) => {
                    tally.violations.push(format!(
                        "a write succeeded while every request got {}",
                        kind.name()
                    ));
                    if in_s3 != new {
                        tally.lost("write acknowledged while every request failed".into());
                    }
                    target.committed = in_s3;
                }
                Err(e) => {
                    tally.error(Cat::Write, &e);
                    note.push(format!(
                        "write: {} after {:.1}s",
                        errno_label(os_errno(&e)),
                        took.as_secs_f64()
                    ));
                    if in_s3 == target.committed {
                    } else if in_s3 == new && kind.forwarded() {
                        tally.failed_but_applied += 1;
                        target.committed = in_s3;
                    } else {
                        tally.wrong(format!(
                            "failed write left {} bytes in S3, neither previous nor new",
                            in_s3.len()
                        ));
                    }
                }
            }
        }
        if let Some((res, took)) = rres {
            match res {
                Ok(got) => {
                    if got != *untouched {
                        tally.wrong("read while every request fails".into());
                    }
                    note.push(format!("read: ok after {:.1}s", took.as_secs_f64()));
                }
                Err(e) => {
                    tally.error(Cat::Read, &e);
                    note.push(format!(
                        "read: {} after {:.1}s",
                        errno_label(os_errno(&e)),
                        took.as_secs_f64()
                    ));
                }
            }
        }
        rig.proxy.remove(rule);
        persistent = format!(
            "{} in {:.1}s, {} faults",
            note.join("; "),
            t0.elapsed().as_secs_f64(),
            rig.proxy.faulted()
        );
        rig.assert_healthy("after every request failed");
    }
    let persistent_faults = if matches!(kind, Kind::Latency) {
        0
    } else {
        rig.proxy.faulted()
    };

    // 3. No fault: a full round, every operation must succeed.
    rig.proxy.reset_log();
    let errors_before = tally.error_count();
    let hangs_before = tally.hangs;
    let recovered_files = rounds_files.last().unwrap().clone();
    run_round(
        &mut tally,
        &rig,
        &recovered_files,
        &mut targets,
        &mut rng,
        kind.forwarded(),
        true,
    )
    .await;
    check_full_read(&mut tally, &rig.mount.join(untouched_key), &untouched);
    let recovery_errors = tally.error_count() - errors_before;
    assert_eq!(
        rig.proxy.faulted(),
        0,
        "no fault in the recovery round:\n{}",
        rig.proxy.summary()
    );

    // Every acknowledged write is in S3 at the end.
    for t in &targets {
        let in_s3 = rig.bucket.try_get(&t.key).await.unwrap_or_default();
        if in_s3 != t.committed {
            tally.lost(format!(
                "{} at the end: S3 holds {} bytes, expected {}",
                t.key,
                in_s3.len(),
                t.committed.len()
            ));
        }
    }
    rig.assert_healthy("at the end");

    rig.dump_logs(&format!("fault-{}", kind.name()));
    report_figures(&format!(
        "{} fault=\"{}\" ops={} reads={} writes={} meta={} requests={} faults_injected={} \
         persistent_faults={} errors={} read_errors={} write_errors={} meta_errors={} errors_by_errno={} failed_but_applied={} wrong_bytes={} \
         lost_writes={} hangs={} recovery_errors={} persistent=\"{}\" secs={:.0}",
        figures_prefix("fault"),
        kind.name(),
        tally.ops(),
        tally.reads,
        tally.writes,
        tally.meta,
        periodic_requests,
        periodic_faults + persistent_faults,
        persistent_faults,
        tally.error_count(),
        tally.read_errors,
        tally.write_errors,
        tally.meta_errors,
        tally.errors_text(),
        tally.failed_but_applied,
        tally.wrong_bytes,
        tally.lost_writes,
        tally.hangs,
        recovery_errors,
        persistent,
        started.elapsed().as_secs_f64()
    ));
    assert!(
        tally.violations.is_empty(),
        "{} violation(s) under {}:\n{}\n--- s3mount stderr (tail) ---\n{}",
        tally.violations.len(),
        kind.name(),
        tally.violations.join("\n"),
        tail(&rig.mount.stderr(), 80)
    );
    assert!(periodic_faults > 0, "the periodic faults fired");
    assert_eq!(tally.hangs, hangs_before, "no hang");
    assert_eq!(
        recovery_errors,
        0,
        "once the fault stopped, every operation succeeded ({}); stderr tail:\n{}",
        tally.errors_text(),
        tail(&rig.mount.stderr(), 80)
    );
}

#[tokio::test]
async fn fault_500_internal_error() {
    fault_scenario(Kind::Status500).await;
}

#[tokio::test]
async fn fault_503_slowdown() {
    fault_scenario(Kind::SlowDown503).await;
}

#[tokio::test]
async fn fault_reset_before_response() {
    fault_scenario(Kind::ResetBeforeResponse).await;
}

#[tokio::test]
async fn fault_reset_mid_body() {
    fault_scenario(Kind::ResetMidBody).await;
}

#[tokio::test]
async fn fault_truncated_body() {
    fault_scenario(Kind::TruncatedBody).await;
}

#[tokio::test]
async fn fault_latency() {
    fault_scenario(Kind::Latency).await;
}

// ---------------------------------------------------------------------------------------------
// a failed GET body, then the same bytes again
// ---------------------------------------------------------------------------------------------

/// One GET whose body breaks off (truncated, or reset mid-body), then no fault at all: the
/// read that met the fault may fail, but the next read of the same bytes must fetch them again
/// and succeed. (A block whose fetch failed mid-body must not stay "in flight" for ever.)
#[tokio::test]
async fn a_broken_get_body_does_not_poison_later_reads() {
    let rig = Rig::new(&["--part-size", "262144"]).await;
    let mut outcomes = Vec::new();
    for (i, fault) in [Fault::TruncatedBody, Fault::ResetMidBody]
        .into_iter()
        .enumerate()
    {
        let key = format!("poison/{i}.bin");
        let data = pseudo_random_bytes(MIB, 500 + i as u64);
        rig.bucket.put(&key, &data).await;
        let path = rig.mount.join(&key);
        // look the file up first, so that only the GET meets the fault
        fs::metadata(&path).expect("stat before the fault");
        rig.proxy.fail(Rule::new("GET", "poison/", fault).times(1));
        let p = path.clone();
        let first = with_deadline("read with one broken GET", OP_DEADLINE, move || {
            fs::read(&p)
        })
        .expect("no hang");
        match &first {
            Ok(got) => assert!(
                *got == data,
                "{fault:?}: a successful read returned other bytes"
            ),
            Err(e) => eprintln!("{fault:?}: first read failed with {e} (allowed)"),
        }
        assert_eq!(
            rig.proxy.faulted(),
            i + 1,
            "the fault fired:\n{}",
            rig.proxy.summary()
        );
        // no fault any more: every later read must succeed, through a new open each time
        let mut later = Vec::new();
        for _ in 0..3 {
            let p = path.clone();
            let r = with_deadline("read after the fault", OP_DEADLINE, move || fs::read(&p))
                .expect("no hang");
            later.push(match r {
                Ok(got) => {
                    assert!(got == data, "{fault:?}: a later read returned other bytes");
                    "ok".to_string()
                }
                Err(e) => errno_label(os_errno(&e)),
            });
        }
        outcomes.push(format!(
            "{fault:?}: first read {}, later reads {later:?}",
            first
                .as_ref()
                .map(|_| "ok".into())
                .unwrap_or_else(|e| errno_label(os_errno(e)))
        ));
    }
    rig.dump_logs("poison");
    rig.assert_healthy("after the broken bodies");
    assert!(
        outcomes.iter().all(|o| !o.contains("E")),
        "reads after a broken GET body must succeed once the fault is gone:\n{}\n--- s3mount \
         stderr (tail) ---\n{}",
        outcomes.join("\n"),
        tail(&rig.mount.stderr(), 40)
    );
}

/// One broken GET body while a file is being staged for a write (an append downloads the
/// object first): a single reset or truncation is retried like any other reset, so the append
/// succeeds; whatever happens, a failed append leaves the object as it was, and the next append
/// succeeds.
#[tokio::test]
async fn a_broken_get_body_while_staging_is_retried() {
    let rig = Rig::new(&[]).await;
    let old = pseudo_random_bytes(600 * KIB, 61);
    rig.bucket.put("stage.bin", &old).await;
    let path = rig.mount.join("stage.bin");
    fs::metadata(&path).expect("stat");
    let mut outcomes = Vec::new();
    let mut committed = old.clone();
    for fault in [Fault::TruncatedBody, Fault::ResetMidBody] {
        rig.proxy
            .fail(Rule::new("GET", "stage.bin", fault).times(1));
        let k = WriteKind::Append(b"appended".to_vec());
        let p = path.clone();
        let res = with_deadline("append with a broken staging GET", OP_DEADLINE, move || {
            k.run(&p)
        })
        .expect("no hang");
        let in_s3 = rig.bucket.get("stage.bin").await;
        match &res {
            Ok(()) => {
                committed.extend_from_slice(b"appended");
                assert!(
                    in_s3 == committed,
                    "{fault:?}: acknowledged append is not in S3"
                );
            }
            Err(e) => {
                assert!(
                    in_s3 == committed,
                    "{fault:?}: failed append ({e}) changed the object"
                );
            }
        }
        outcomes.push(format!(
            "{fault:?}: {:?}",
            res.as_ref().map_err(|e| errno_label(os_errno(e)))
        ));
        // and without a fault it works
        let k = WriteKind::Append(b"+after".to_vec());
        let p = path.clone();
        with_deadline("append after the fault", OP_DEADLINE, move || k.run(&p))
            .expect("no hang")
            .unwrap_or_else(|e| panic!("{fault:?}: append after the fault failed: {e}"));
        committed.extend_from_slice(b"+after");
        assert!(
            rig.bucket.get("stage.bin").await == committed,
            "{fault:?}: append after"
        );
    }
    eprintln!("staging with a broken body: {outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.ends_with("Ok(())")),
        "one broken body while staging must be retried, not fail the write: {outcomes:?}"
    );
    rig.assert_healthy("after the staging faults");
}

// ---------------------------------------------------------------------------------------------
// the server goes away and comes back
// ---------------------------------------------------------------------------------------------

/// Readers and writers run while the server is stopped (the proxy closes its port and every
/// connection) for a few seconds, then started again. Operations caught by the outage fail
/// cleanly (or succeed if their retries outlive it), never with other bytes; acknowledged
/// writes are in S3; everything after the outage succeeds; s3mount stays alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_during_reads_and_writes() {
    let started = Instant::now();
    // Quick run: 2 attempts per request (at most ~1 s of backoff) against a 5 s outage, so
    // operations caught by it fail. Soak run: the default 5 attempts against a 30 s outage.
    let mut args = vec!["--part-size", "262144", "--cache-size", "1"];
    if !soak() {
        args.extend(["--max-attempts", "2"]);
    }
    let rig = Rig::new(&args).await;
    let n_files = 6;
    let mut files = Vec::new();
    for i in 0..n_files {
        let key = format!("o/f{i}.bin");
        let data = Arc::new(pseudo_random_bytes(MIB + i * 1000, 300 + i as u64));
        rig.bucket.put(&key, data.as_slice()).await;
        files.push((key, data));
    }
    let n_writers = 3;
    for w in 0..n_writers {
        rig.bucket.put(&format!("ow/t{w}.bin"), b"initial").await;
    }
    let outage = Duration::from_secs(if soak() { 30 } else { 5 });
    let mut readers = Vec::new();
    let reads_per_reader = if soak() { 60 } else { 12 };
    for r in 0..3u64 {
        let files = files.clone();
        let root = rig.mount.path().to_path_buf();
        readers.push(std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut rng = Rng::new(0x0FF + r);
            for _ in 0..reads_per_reader {
                let (key, data) = rng.pick(&files).clone();
                check_full_read(&mut tally, &root.join(&key), &data);
                sleep(Duration::from_millis(100));
            }
            tally
        }));
    }
    let writes_per_writer = if soak() { 30 } else { 6 };
    let mut writers = Vec::new();
    for w in 0..n_writers {
        let root = rig.mount.path().to_path_buf();
        let endpoint = rig.s3.endpoint().to_string();
        let bucket_name = rig.bucket.name().to_string();
        writers.push(std::thread::spawn(move || {
            let rt = thread_runtime();
            let bucket = bucket_with_own_client(&endpoint, &bucket_name);
            let key = format!("ow/t{w}.bin");
            let path = root.join(&key);
            let mut tally = Tally::default();
            let mut committed = b"initial".to_vec();
            let mut rng = Rng::new(0xBAD + w as u64);
            for i in 0..writes_per_writer {
                let len = if i % 3 == 2 {
                    5 * MIB + 3
                } else {
                    rng.range(1, 300_000) as usize
                };
                let new = rng.bytes(len);
                let k = WriteKind::Replace(new.clone());
                let p = path.clone();
                tally.writes += 1;
                let Some(res) = op(&mut tally, format!("write {key}"), move || k.run(&p)) else {
                    continue;
                };
                let in_s3 = rt.block_on(bucket.try_get(&key)).unwrap_or_default();
                match res {
                    Ok(()) => {
                        if in_s3 != new {
                            tally.lost(format!("{key}: acknowledged write #{i} is not in S3"));
                        }
                    }
                    Err(e) => {
                        tally.error(Cat::Write, &e);
                        if in_s3 == new {
                            tally.failed_but_applied += 1;
                        } else if in_s3 != committed {
                            tally.wrong(format!(
                                "{key}: failed write #{i} ({e}) left {} bytes that are neither \
                                 version",
                                in_s3.len()
                            ));
                        }
                    }
                }
                committed = in_s3;
                sleep(Duration::from_millis(300));
            }
            (tally, committed)
        }));
    }
    sleep(Duration::from_millis(700));
    rig.proxy.set_offline(true);
    let outage_started = Instant::now();
    sleep(outage);
    rig.proxy.set_offline(false);
    let outage_secs = outage_started.elapsed().as_secs_f64();
    rig.assert_healthy("right after the outage");

    // Every worker finishes (each of its calls has its own deadline; this bounds the rest).
    let deadline = Instant::now() + OP_DEADLINE * 3;
    let wait = |finished: &dyn Fn() -> bool| {
        while !finished() {
            assert!(Instant::now() < deadline, "a worker did not finish: a hang");
            sleep(Duration::from_millis(50));
        }
    };
    let mut tally = Tally::default();
    for r in readers {
        wait(&|| r.is_finished());
        merge(&mut tally, r.join().expect("reader thread"));
    }
    let mut finals = Vec::new();
    for w in writers {
        wait(&|| w.is_finished());
        let (t, committed) = w.join().expect("writer thread");
        merge(&mut tally, t);
        finals.push(committed);
    }
    let during = format!(
        "ops={} errors={} ({})",
        tally.ops(),
        tally.error_count(),
        tally.errors_text()
    );

    // After the outage: every read and write succeeds.
    let errors_before = tally.error_count();
    for (key, data) in &files {
        check_full_read(&mut tally, &rig.mount.join(key), data);
    }
    for (w, last) in finals.iter().enumerate() {
        let key = format!("ow/t{w}.bin");
        let mut target = Target {
            key: key.clone(),
            committed: rig.bucket.get(&key).await,
        };
        assert!(
            target.committed == *last,
            "{key} changed after its writer ended"
        );
        checked_write(
            &mut tally,
            &rig,
            &mut target,
            WriteKind::Replace(pseudo_random_bytes(100_000, 9000 + w as u64)),
            true,
        )
        .await;
    }
    let after_errors = tally.error_count() - errors_before;
    rig.dump_logs("offline");
    rig.assert_healthy("after the outage");
    report_figures(&format!(
        "{} settings=\"{}\" outage_secs={outage_secs:.1} reads={} writes={} during_outage=\"{during}\" \
         failed_but_applied={} wrong_bytes={} lost_writes={} hangs={} errors_after={after_errors} \
         secs={:.0}",
        figures_prefix("offline"),
        if soak() { "defaults" } else { "--max-attempts 2" },
        tally.reads,
        tally.writes,
        tally.failed_but_applied,
        tally.wrong_bytes,
        tally.lost_writes,
        tally.hangs,
        started.elapsed().as_secs_f64()
    ));
    assert!(
        tally.violations.is_empty(),
        "violations:\n{}\n--- s3mount stderr (tail) ---\n{}",
        tally.violations.join("\n"),
        tail(&rig.mount.stderr(), 60)
    );
    assert_eq!(
        after_errors,
        0,
        "every operation after the outage succeeds; stderr tail:\n{}",
        tail(&rig.mount.stderr(), 60)
    );
}

fn merge(into: &mut Tally, t: Tally) {
    into.reads += t.reads;
    into.writes += t.writes;
    into.meta += t.meta;
    for (k, v) in t.errors {
        *into.errors.entry(k).or_default() += v;
    }
    into.read_errors += t.read_errors;
    into.write_errors += t.write_errors;
    into.meta_errors += t.meta_errors;
    into.wrong_bytes += t.wrong_bytes;
    into.lost_writes += t.lost_writes;
    into.hangs += t.hangs;
    into.failed_but_applied += t.failed_but_applied;
    into.violations.extend(t.violations);
}

// ---------------------------------------------------------------------------------------------
// timeouts: an unresponsive server becomes EIO in a bounded time
// ---------------------------------------------------------------------------------------------

/// The server accepts requests but answers none (every request waits longer than the read
/// timeout): a read fails with EIO within attempts × timeout + backoff, and once the server
/// answers again the same file reads correctly. Short settings (`--read-timeout 2
/// --max-attempts 3`) keep this quick; the soak run also checks the defaults (30 s, 5 attempts)
/// with one slow answer.
#[tokio::test]
async fn an_unresponsive_server_gives_eio_within_the_timeouts() {
    let rig = Rig::new(&["--read-timeout", "2", "--max-attempts", "3"]).await;
    let data = Arc::new(pseudo_random_bytes(MIB, 4242));
    rig.bucket.put("slow/a.bin", data.as_slice()).await;
    rig.bucket.put("slow/b.bin", b"small file").await;
    let path = rig.mount.join("slow/a.bin");
    fs::metadata(&path).expect("stat before the server hangs");
    // 3 attempts × 2 s + backoff (at most 1 s + 2 s): about 9 s at worst.
    let bound = Duration::from_secs(30);

    let rule = rig
        .proxy
        .fail(Rule::new("", "", Fault::Latency(Duration::from_secs(5))));
    let p = path.clone();
    let t = Instant::now();
    let res = with_deadline("read from a hung server", OP_DEADLINE, move || fs::read(&p))
        .expect("a read from a hung server must not hang");
    let read_took = t.elapsed();
    let p = rig.mount.join("slow/b.bin");
    let t = Instant::now();
    let wres = with_deadline("write to a hung server", OP_DEADLINE, move || {
        WriteKind::Replace(b"new".to_vec()).run(&p)
    })
    .expect("a write to a hung server must not hang");
    let write_took = t.elapsed();
    rig.proxy.remove(rule);
    let read_err = res.as_ref().err().map(|e| errno_label(os_errno(e)));
    let write_err = wres.as_ref().err().map(|e| errno_label(os_errno(e)));
    report_figures(&format!(
        "{} settings=\"--read-timeout 2 --max-attempts 3\" read={:?} read_secs={:.1} \
         write={:?} write_secs={:.1}",
        figures_prefix("hung-server"),
        read_err,
        read_took.as_secs_f64(),
        write_err,
        write_took.as_secs_f64()
    ));
    assert_eq!(read_err.as_deref(), Some("EIO"), "read from a hung server");
    assert!(read_took < bound, "EIO took {read_took:?}");
    assert_eq!(write_err.as_deref(), Some("EIO"), "write to a hung server");
    assert!(write_took < bound * 2, "EIO took {write_took:?}");
    assert_eq!(
        rig.bucket.get("slow/b.bin").await,
        b"small file",
        "previous object intact"
    );

    // the server answers again: everything works
    let got = fs::read(&path).expect("read once the server answers");
    assert!(got == *data, "bytes after the hang");
    WriteKind::Replace(b"new".to_vec())
        .run(&rig.mount.join("slow/b.bin"))
        .expect("write once the server answers");
    assert_eq!(rig.bucket.get("slow/b.bin").await, b"new");
    rig.assert_healthy("after the hung server");

    if soak() {
        // defaults: one answer slower than the 30 s read timeout is retried and succeeds
        let mount = Mount::builder(&rig.s3, rig.bucket.name())
            .endpoint_url(&rig.proxy.endpoint())
            .mount();
        let p = mount.join("slow/a.bin");
        fs::metadata(&p).expect("stat");
        rig.proxy.reset_log();
        rig.proxy
            .fail(Rule::new("GET", "slow/a.bin", Fault::Latency(Duration::from_secs(35))).times(1));
        let t = Instant::now();
        let got = with_deadline("read with one 35 s answer", OP_DEADLINE, move || {
            fs::read(&p)
        })
        .expect("no hang")
        .expect("one slow answer is retried");
        assert!(got == *data);
        report_figures(&format!(
            "{} settings=defaults one_35s_answer_read_secs={:.1}",
            figures_prefix("hung-server"),
            t.elapsed().as_secs_f64()
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// unmount and signals
// ---------------------------------------------------------------------------------------------

fn run_quiet(prog: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child process, which has not been reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes; returns whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// `fusermount3 -u` while a file is open for writing with unsaved data: the unmount is refused
/// (EBUSY), the mount keeps working, and the data is uploaded when the file is closed. A lazy
/// unmount (`fusermount3 -uz`) detaches the mount at once, but the open file keeps working and
/// its data is uploaded on close, before s3mount exits.
#[tokio::test]
async fn unmount_with_a_file_open_for_writing_never_drops_it() {
    let Served { s3, bucket } = Served::new().await;
    let cache = local_tempdir("s3mount-rel-cache-");
    let mut mount = Mount::builder(&s3, bucket.name())
        .arg("--cache-dir")
        .arg(cache.path())
        .mount();
    let path = mount.join("open.txt");
    let mut f = File::create(&path).expect("create");
    f.write_all(b"written before the unmount;").unwrap();
    let (ok, err) = run_quiet("fusermount3", &["-u".as_ref(), mount.path().as_os_str()]);
    assert!(!ok, "fusermount3 -u must refuse a busy mount");
    assert!(err.contains("busy"), "fusermount3 -u: {err}");
    assert!(is_fuse_mounted(mount.path()), "still mounted");
    f.write_all(b" and after it").unwrap();
    close(f).expect("close uploads");
    assert_eq!(
        bucket.get("open.txt").await,
        b"written before the unmount; and after it"
    );

    // lazy unmount with unsaved data
    let path = mount.join("lazy.txt");
    let mut f = File::create(&path).expect("create");
    f.write_all(b"lazy: before;").unwrap();
    let pid = mount.pid().unwrap();
    let (ok, err) = run_quiet("fusermount3", &["-uz".as_ref(), mount.path().as_os_str()]);
    assert!(ok, "fusermount3 -uz: {err}");
    assert!(!is_fuse_mounted(mount.path()), "detached at once");
    f.write_all(b" after the lazy unmount").unwrap();
    assert!(
        process_alive(pid),
        "s3mount serves the open file until it is closed"
    );
    close(f).expect("close after a lazy unmount uploads");
    assert_eq!(
        bucket.get("lazy.txt").await,
        b"lazy: before; after the lazy unmount"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !process_alive(pid)),
        "s3mount exits once the last file of a lazily unmounted mount is closed"
    );
    let status = mount.unmount();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}; stderr:\n{}",
        mount.stderr()
    );
    assert_no_panic(&mount, "after the lazy unmount");
}

/// SIGTERM while a file is open for writing with unsaved data: s3mount uploads it before it
/// tries to unmount. If the upload is impossible (server down) the log says where the bytes
/// are kept, and they are there.
#[tokio::test]
async fn sigterm_uploads_unsaved_data_or_says_where_it_is_kept() {
    let Served { s3, bucket } = Served::new().await;
    let cache = local_tempdir("s3mount-rel-cache-");
    let proxy = FaultProxy::start(s3.endpoint());
    let mut mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["--max-attempts", "2", "--connect-timeout", "2"])
        .mount();
    let pid = mount.pid().unwrap();

    // 1. the server is up: SIGTERM uploads the open file's data
    let mut f = File::create(mount.join("term.txt")).expect("create");
    let data = pseudo_random_bytes(3 * MIB + 11, 71);
    f.write_all(&data).unwrap();
    signal(pid, libc::SIGTERM);
    let mut uploaded = false;
    for _ in 0..200 {
        if bucket.try_get("term.txt").await.is_some_and(|b| b == data) {
            uploaded = true;
            break;
        }
        sleep(Duration::from_millis(100));
    }
    assert!(
        uploaded,
        "SIGTERM must upload the open file's unsaved data; stderr:\n{}",
        mount.stderr()
    );
    // The mount is busy (the file is still open): what happens to the process is recorded.
    let alive_while_open = process_alive(pid) && is_fuse_mounted(mount.path());
    let closed = close(f);
    let exited_after_close = wait_until(Duration::from_secs(5), || !process_alive(pid));
    report_figures(&format!(
        "{} sigterm_with_open_file: uploaded=true still_mounted_while_open={alive_while_open} \
         close={:?} exited_within_5s_after_close={exited_after_close}",
        figures_prefix("signals"),
        closed.as_ref().map_err(|e| errno_label(os_errno(e)))
    ));
    dump_mount_log(&mount, "sigterm-server-up");
    assert_no_panic(&mount, "after SIGTERM");
    let _ = mount.unmount();

    // 2. the server is down: SIGTERM cannot upload; the log must say where the bytes are
    mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["--max-attempts", "2", "--connect-timeout", "2"])
        .mount();
    let pid = mount.pid().unwrap();
    let mut f = File::create(mount.join("down.txt")).expect("create");
    f.write_all(b"unsaved while the server is down").unwrap();
    proxy.set_offline(true);
    signal(pid, libc::SIGTERM);
    let kept = wait_until(Duration::from_secs(60), || {
        mount.stderr().contains("kept at")
    });
    let log = mount.stderr();
    proxy.set_offline(false);
    assert!(
        kept,
        "the log must say where unsaved data is kept; stderr:\n{log}"
    );
    let line = log.lines().rev().find(|l| l.contains("kept at")).unwrap();
    let rest = &line[line.find("kept at ").unwrap() + "kept at ".len()..];
    let kept_path = PathBuf::from(rest[..rest.find(": ").unwrap_or(rest.len())].trim());
    assert_eq!(
        fs::read(&kept_path).unwrap_or_default(),
        b"unsaved while the server is down",
        "the bytes are at {}",
        kept_path.display()
    );
    drop(f);
    assert!(
        !bucket.exists("down.txt").await,
        "nothing half-written appeared"
    );
    dump_mount_log(&mount, "sigterm-server-down");
    assert_no_panic(&mount, "after SIGTERM with the server down");
}

/// SIGKILL with `--auto-unmount`: the mount goes away by itself (no "Transport endpoint is not
/// connected"), and the mount point is usable again. Unsaved data of a killed process cannot
/// be uploaded; its staging file stays in `--cache-dir` (recorded in the figures).
#[tokio::test]
async fn sigkill_with_auto_unmount_leaves_no_dead_mount() {
    let Served { s3, bucket } = Served::new().await;
    let cache = local_tempdir("s3mount-rel-cache-");
    let mut mount = Mount::builder(&s3, bucket.name())
        .arg("--auto-unmount")
        .arg("--cache-dir")
        .arg(cache.path())
        .mount();
    fs::write(mount.join("saved.txt"), b"saved").unwrap();
    let mut f = File::create(mount.join("unsaved.txt")).unwrap();
    f.write_all(b"never closed").unwrap();
    let pid = mount.pid().unwrap();
    signal(pid, libc::SIGKILL);
    // fusermount3's auto-unmount process notices the closed session and detaches; under the
    // load of the whole suite on two cores that has once taken more than 15 s.
    let gone = wait_until(Duration::from_secs(45), || !is_fuse_mounted(mount.path()));
    drop(f);
    assert!(gone, "--auto-unmount: the mount must go away after SIGKILL");
    let meta = fs::metadata(mount.path()).expect("stat of the mount point after SIGKILL");
    assert!(meta.is_dir());
    assert_eq!(
        fs::read_dir(mount.path()).unwrap().count(),
        0,
        "plain empty directory again"
    );
    assert_eq!(bucket.get("saved.txt").await, b"saved");
    let staged: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| fs::read(e.path()).is_ok_and(|b| b == b"never closed"))
        .collect();
    report_figures(&format!(
        "{} sigkill_auto_unmount: unmounted=true unsaved_bytes_left_in_cache_dir={}",
        figures_prefix("signals"),
        !staged.is_empty()
    ));
    let _ = mount.unmount();
}

// ---------------------------------------------------------------------------------------------
// hostile names and sizes
// ---------------------------------------------------------------------------------------------

/// Every printable ASCII character S3 allows in a key except `/`, and a few others.
const SPECIALS: &[char] = &[
    ' ', '%', '+', '#', '?', '&', '=', ';', ':', '@', '!', '$', '\'', '(', ')', '*', ',', '~', '[',
    ']', '{', '}', '^', '`', '|', '\\', '<', '>', '"', '-', '_', '.',
];

/// Names (one path component each) that S3 allows and Linux can name.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = SPECIALS.iter().map(|c| format!("c{c}x")).collect();
    names.push(SPECIALS.iter().collect::<String>().replace('.', "dot"));
    names.extend(
        [
            "sp ace",
            " leading space",
            "trailing space ",
            "ünïcødé-日本語-🎉",
            "e\u{301}-combining",
            "rtl-\u{05d0}\u{05d1}",
            "%41%2F%25-percent-encoded-looking",
            "a+b c%20d",
            "?q=1&r=2#frag",
            "...",
            "..x",
            "-dash",
            "~tilde",
            "semi;colon:at@",
            "tab\tinside",
            "del\u{7f}inside",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    names
}

/// Names S3 allows that XML 1.0 cannot carry raw in a listing (control characters), or that
/// XML parsers change (`\r` becomes `\n`).
fn control_names() -> Vec<String> {
    ["cr\rinside", "bell\u{7}inside", "esc\u{1b}inside"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn names_in(dir: &Path) -> io::Result<BTreeSet<String>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Keys with every special character (seeded through the SDK) list, stat and read back through
/// the mount; files of those names created through the mount appear in S3 under exactly that
/// key; they rename and unlink. Keys with control characters must not break the listing of
/// their directory for the other names (and read back if listed).
#[tokio::test]
async fn hostile_names_round_trip() {
    let Served { s3, bucket } = Served::new().await;
    let names = hostile_names();
    for (i, n) in names.iter().enumerate() {
        bucket
            .put(&format!("seeded/{n}"), format!("content {i} of {n:?}"))
            .await;
    }
    bucket
        .put(&format!("seeded/dir {}/inner", "&+%"), b"inner")
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let mut problems = Vec::new();

    // seeded through the SDK, read through the mount
    let listed = names_in(&mount.join("seeded")).expect("listing of seeded/");
    let mut want: BTreeSet<String> = names.iter().cloned().collect();
    want.insert("dir &+%".into());
    if listed != want {
        problems.push(format!(
            "listing of seeded/: missing {:?}, unexpected {:?}",
            want.difference(&listed).collect::<Vec<_>>(),
            listed.difference(&want).collect::<Vec<_>>()
        ));
    }
    for (i, n) in names.iter().enumerate() {
        let want = format!("content {i} of {n:?}");
        match fs::read(mount.join("seeded").join(n)) {
            Ok(b) if b == want.as_bytes() => {}
            Ok(b) => problems.push(format!("seeded/{n:?}: read {} other bytes", b.len())),
            Err(e) => problems.push(format!("seeded/{n:?}: read failed: {e}")),
        }
        match fs::metadata(mount.join("seeded").join(n)) {
            Ok(m) if m.len() == want.len() as u64 => {}
            Ok(m) => problems.push(format!("seeded/{n:?}: size {}", m.len())),
            Err(e) => problems.push(format!("seeded/{n:?}: stat failed: {e}")),
        }
    }
    match fs::read(mount.join("seeded/dir &+%/inner")) {
        Ok(b) if b == b"inner" => {}
        other => problems.push(format!("seeded/dir &+%/inner: {other:?}")),
    }

    // created through the mount, checked through the SDK
    fs::create_dir(mount.join("made")).expect("mkdir made");
    for (i, n) in names.iter().enumerate() {
        let body = format!("made {i}");
        if let Err(e) = fs::write(mount.join("made").join(n), &body) {
            problems.push(format!("create made/{n:?}: {e}"));
        }
    }
    let keys: BTreeSet<String> = bucket.list_keys("made/").await.into_iter().collect();
    let mut want_keys: BTreeSet<String> = names.iter().map(|n| format!("made/{n}")).collect();
    want_keys.insert("made/".into());
    if keys != want_keys {
        problems.push(format!(
            "keys under made/: missing {:?}, unexpected {:?}",
            want_keys.difference(&keys).collect::<Vec<_>>(),
            keys.difference(&want_keys).collect::<Vec<_>>()
        ));
    }
    for (i, n) in names.iter().enumerate() {
        if bucket.try_get(&format!("made/{n}")).await.as_deref()
            != Some(format!("made {i}").as_bytes())
        {
            problems.push(format!("made/{n:?}: S3 content differs"));
        }
    }
    // rename each to another hostile name, then unlink
    for n in &names {
        let from = mount.join("made").join(n);
        let to = mount.join("made").join(format!("{n} (renamed)"));
        if let Err(e) = fs::rename(&from, &to) {
            problems.push(format!("rename made/{n:?}: {e}"));
            continue;
        }
        if !bucket.exists(&format!("made/{n} (renamed)")).await
            || bucket.exists(&format!("made/{n}")).await
        {
            problems.push(format!("rename made/{n:?}: keys not moved"));
        }
        if let Err(e) = fs::remove_file(&to) {
            problems.push(format!("unlink made/{n:?} (renamed): {e}"));
        }
    }
    let left = bucket.list_keys("made/").await;
    if left != ["made/"] {
        problems.push(format!("after unlinking, keys under made/: {left:?}"));
    }

    assert_no_panic(&mount, "after hostile names");
    assert!(
        problems.is_empty(),
        "{} problem(s) with hostile names:\n{}\n--- s3mount stderr (tail) ---\n{}",
        problems.len(),
        problems.join("\n"),
        tail(&mount.stderr(), 30)
    );
}

/// Keys with control characters are legal in S3, but XML 1.0 cannot carry them raw in a
/// listing (`encoding-type=url` exists for that). They must not make their directory
/// unlistable for the other entries, nor make the mount fail when one is the bucket's first key.
#[tokio::test]
async fn keys_with_control_characters_do_not_break_listings() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("aaa-first.txt", b"first").await;
    bucket.put("ctl/plain.txt", b"plain").await;
    for (i, n) in control_names().iter().enumerate() {
        bucket.put(&format!("ctl/{n}"), format!("ctl {i}")).await;
    }
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let mut problems = Vec::new();
    // control characters: the other entries of the directory must still list and read
    match names_in(&mount.join("ctl")) {
        Ok(listed) => {
            if !listed.contains("plain.txt") {
                problems.push(format!("ctl/: plain.txt not listed among {listed:?}"));
            }
            for (i, n) in control_names().iter().enumerate() {
                if listed.contains(n) {
                    match fs::read(mount.join("ctl").join(n)) {
                        Ok(b) if b == format!("ctl {i}").as_bytes() => {}
                        other => problems.push(format!("ctl/{n:?} is listed but reads {other:?}")),
                    }
                }
            }
            for n in &listed {
                if n != "plain.txt" && !control_names().contains(n) {
                    problems.push(format!("ctl/: listed a name that is no key: {n:?}"));
                }
            }
        }
        Err(e) => problems.push(format!(
            "listing a directory holding keys with control characters fails: {e} (the other \
             entries are unreachable)"
        )),
    }
    match fs::read(mount.join("ctl/plain.txt")) {
        Ok(b) if b == b"plain" => {}
        other => problems.push(format!("ctl/plain.txt: {other:?}")),
    }
    assert_no_panic(&mount, "after control characters");
    drop(mount);

    // the bucket's first key holds a control character: the mount-time check lists one key
    let bucket2 = s3.new_bucket().await;
    bucket2.put("\u{7}bell-first", b"bell").await;
    bucket2.put("plain.txt", b"plain").await;
    match Mount::builder(&s3, bucket2.name()).try_mount() {
        Ok(m) => {
            if fs::read(m.join("plain.txt")).ok().as_deref() != Some(&b"plain"[..]) {
                problems.push(
                    "bucket whose first key has a control character: plain.txt unreadable".into(),
                );
            }
        }
        Err(f) => {
            problems.push(format!(
            "a bucket whose first key holds a control character cannot be mounted (exit {}): {}",
            f.code,
            f.stderr.lines().filter(|l| l.contains("error")).collect::<Vec<_>>().join(" | ")
        ))
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with control characters in keys:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Key length and depth limits: a 1,024-byte key (S3's maximum) seeded through the SDK lists
/// and reads; one created through the mount works, one byte more is ENAMETOOLONG. A component
/// over 255 bytes is ENAMETOOLONG on create and skipped in listings (file or directory).
/// 50-level trees work both ways and `rm -r` removes them. Zero-byte objects read as empty
/// files, and empty files created through the mount are zero-byte objects.
#[tokio::test]
async fn long_keys_deep_trees_and_empty_objects() {
    let Served { s3, bucket } = Served::new().await;

    // a 1,024-byte key: four 250-byte directories and a file name to fill it up
    let dirs: Vec<String> = (0..4).map(|i| format!("{i}").repeat(250)).collect();
    let prefix = format!("long1024/{}/", dirs.join("/"));
    let file = "f".repeat(1024 - prefix.len());
    let key1024 = format!("{prefix}{file}");
    assert_eq!(key1024.len(), 1024);
    bucket.put(&key1024, b"at the limit").await;

    // components over 255 bytes, as a file and as a directory
    bucket.put("toolong/ok.txt", b"ok").await;
    bucket
        .put(&format!("toolong/{}", "x".repeat(256)), b"x")
        .await;
    bucket
        .put(&format!("toolong/{}/inner.txt", "y".repeat(300)), b"y")
        .await;

    // a 50-level tree seeded through the SDK
    let deep: Vec<String> = (0..50).map(|i| format!("d{i:02}")).collect();
    let deep_key = format!("seeded-deep/{}/leaf.txt", deep.join("/"));
    bucket.put(&deep_key, b"deep leaf").await;

    bucket.put("zero/empty.bin", b"").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    // 1,024 bytes: listed at every level and read
    let mut p = mount.join("long1024");
    for d in &dirs {
        assert_eq!(
            names_in(&p).unwrap(),
            BTreeSet::from([d.clone()]),
            "listing {}",
            p.display()
        );
        p = p.join(d);
    }
    assert_eq!(names_in(&p).unwrap(), BTreeSet::from([file.clone()]));
    assert_eq!(fs::read(p.join(&file)).unwrap(), b"at the limit");

    // over 255 bytes: skipped in the listing, ENAMETOOLONG on create
    assert_eq!(
        names_in(&mount.join("toolong")).unwrap(),
        BTreeSet::from(["ok.txt".to_string()]),
        "components over 255 bytes are skipped"
    );
    let err = fs::write(mount.join("toolong").join("z".repeat(256)), b"z").expect_err("256 bytes");
    assert_eq!(os_errno(&err), libc::ENAMETOOLONG, "{err}");
    let err = fs::create_dir(mount.join("toolong").join("z".repeat(256))).expect_err("256 bytes");
    assert_eq!(os_errno(&err), libc::ENAMETOOLONG, "{err}");
    fs::write(mount.join("toolong").join("z".repeat(255)), b"255").expect("255 bytes is fine");
    assert_eq!(
        bucket.get(&format!("toolong/{}", "z".repeat(255))).await,
        b"255"
    );

    // 50 levels, seeded
    let leaf = mount.join(format!("seeded-deep/{}/leaf.txt", deep.join("/")));
    assert_eq!(fs::read(&leaf).unwrap(), b"deep leaf");
    // 50 levels, made through the mount, then removed with rm -r
    let made_deep = mount.join(format!("made-deep/{}", deep.join("/")));
    fs::create_dir_all(&made_deep).expect("mkdir -p of 50 levels");
    fs::write(made_deep.join("leaf.txt"), b"made deep").unwrap();
    let made_key = format!("made-deep/{}/leaf.txt", deep.join("/"));
    assert_eq!(bucket.get(&made_key).await, b"made deep");
    assert_eq!(
        bucket.list_keys("made-deep/").await.len(),
        52,
        "50 directory markers below made-deep/, its own, and the leaf"
    );
    let (ok, err) = run_quiet("rm", &["-r".as_ref(), mount.join("made-deep").as_os_str()]);
    assert!(ok, "rm -r of a 50-level tree: {err}");
    assert_eq!(bucket.list_keys("made-deep/").await, Vec::<String>::new());

    // zero-byte objects
    let m = fs::metadata(mount.join("zero/empty.bin")).unwrap();
    assert_eq!(m.len(), 0);
    assert!(m.is_file());
    assert_eq!(fs::read(mount.join("zero/empty.bin")).unwrap(), b"");
    File::create(mount.join("zero/created-empty")).unwrap();
    assert_eq!(bucket.get("zero/created-empty").await, b"");
    OpenOptions::new()
        .append(true)
        .open(mount.join("zero/empty.bin"))
        .unwrap()
        .write_all(b"now not empty")
        .unwrap();
    assert_eq!(bucket.get("zero/empty.bin").await, b"now not empty");
    fs::write(mount.join("zero/created-empty"), b"").unwrap();
    assert_eq!(bucket.get("zero/created-empty").await, b"");
    // through the mount: a key of exactly 1,024 bytes works, one byte more does not
    let made = mount.join(format!("long1024/{}", dirs.join("/")));
    let name_ok = "g".repeat(file.len());
    fs::write(made.join(&name_ok), b"made at the limit").expect("create a 1,024-byte key");
    assert_eq!(
        bucket.get(&format!("{prefix}{name_ok}")).await,
        b"made at the limit"
    );
    let err = fs::write(made.join(format!("{name_ok}g")), b"x").expect_err("1,025 bytes");
    assert_eq!(
        os_errno(&err),
        libc::ENAMETOOLONG,
        "a 1,025-byte key: {err}"
    );
    assert_no_panic(&mount, "after long keys and deep trees");
}

// ---------------------------------------------------------------------------------------------
// an object over 5 GiB, served by a synthetic S3 endpoint
// ---------------------------------------------------------------------------------------------

/// Size of the synthetic object: over 5 GiB (S3's single-PUT limit) and over 2^32.
const HUGE: u64 = 6 * (1 << 30) + 12_345;
const HUGE_ETAG: &str = "\"5ca1ab1e0000000000000000000000-1\"";

/// The synthetic object's byte at `offset`: the little-endian bytes of a hash of the 8-byte
/// word index, so that a read from the wrong offset can never look right.
fn huge_bytes(offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut word = offset / 8;
    let skip = (offset % 8) as usize;
    while out.len() < len + skip {
        let mut z = word.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED;
        z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        out.extend_from_slice(&(z ^ (z >> 29)).to_le_bytes());
        word += 1;
    }
    out.drain(..skip);
    out.truncate(len);
    out
}

/// A minimal S3 endpoint on 127.0.0.1 serving one bucket `huge` with one object `huge.bin` of
/// [`HUGE`] bytes, generated on the fly: ListObjectsV2, HeadObject, ranged GetObject (with
/// If-Match; NoSuchKey for any other key), GetObjectTagging. With `stall` set, a GET sends its headers and half its body,
/// then goes silent (a server that hangs in the middle of a body).
struct SyntheticS3 {
    port: u16,
    stop: Arc<AtomicBool>,
    stall: Arc<AtomicBool>,
    gets: Arc<AtomicU64>,
    full_gets: Arc<AtomicU64>,
}

impl SyntheticS3 {
    fn start() -> SyntheticS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = SyntheticS3 {
            port,
            stop: Arc::new(AtomicBool::new(false)),
            stall: Arc::new(AtomicBool::new(false)),
            gets: Arc::new(AtomicU64::new(0)),
            full_gets: Arc::new(AtomicU64::new(0)),
        };
        let (stop, stall, gets, full) = (
            s.stop.clone(),
            s.stall.clone(),
            s.gets.clone(),
            s.full_gets.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (stop, stall, gets, full) =
                            (stop.clone(), stall.clone(), gets.clone(), full.clone());
                        std::thread::spawn(move || {
                            let _ = serve_synthetic(conn, &stop, &stall, &gets, &full);
                        });
                    }
                    Err(_) => sleep(Duration::from_millis(5)),
                }
            }
        });
        s
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SyntheticS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.stall.store(false, Ordering::SeqCst);
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 && i + 2 <= b.len() - 1 + 1 {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..(i + 3).min(s.len())], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_synthetic(
    conn: TcpStream,
    stop: &AtomicBool,
    stall: &AtomicBool,
    gets: &AtomicU64,
    full_gets: &AtomicU64,
) -> io::Result<()> {
    use std::io::BufRead;
    conn.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut reader = io::BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        if let Some(n) = headers
            .get("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut body = vec![0u8; n];
            reader.read_exact(&mut body)?;
        }
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (url_decode(k), url_decode(v))
            })
            .collect();
        let path = url_decode(path);
        let send = |out: &mut TcpStream, status: &str, hdrs: &[(&str, String)], body: &[u8]| {
            let mut head = format!("HTTP/1.1 {status}\r\nx-amz-request-id: SYNTH\r\n");
            for (k, v) in hdrs {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            if !hdrs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes())?;
            out.write_all(body)
        };
        let object = path == "/huge/huge.bin";
        match (method.as_str(), object) {
            ("GET", false) if path == "/huge" || path == "/huge/" => {
                let prefix = params.get("prefix").cloned().unwrap_or_default();
                let delimiter = params.get("delimiter").cloned().unwrap_or_default();
                let listed = "huge.bin".starts_with(&prefix)
                    && (delimiter.is_empty() || !"huge.bin"[prefix.len()..].contains(&delimiter));
                let contents = if listed {
                    format!(
                        "<Contents><Key>huge.bin</Key><LastModified>2024-01-01T00:00:00.000Z\
                         </LastModified><ETag>{}</ETag><Size>{HUGE}</Size><StorageClass>STANDARD\
                         </StorageClass></Contents>",
                        HUGE_ETAG.replace('"', "&quot;")
                    )
                } else {
                    String::new()
                };
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult \
                     xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>huge</Name>\
                     <Prefix>{prefix}</Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys>\
                     <IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
                    listed as u8
                );
                send(
                    &mut out,
                    "200 OK",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
            ("HEAD", true) => {
                send(
                    &mut out,
                    "200 OK",
                    &[
                        ("Content-Length", HUGE.to_string()),
                        ("ETag", HUGE_ETAG.into()),
                        ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT".into()),
                        ("Content-Type", "application/octet-stream".into()),
                        ("Accept-Ranges", "bytes".into()),
                    ],
                    b"",
                )?;
            }
            ("GET", true) if params.contains_key("tagging") => {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging \
                            xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet></TagSet>\
                            </Tagging>";
                send(
                    &mut out,
                    "200 OK",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
            ("GET", true) => {
                gets.fetch_add(1, Ordering::SeqCst);
                if headers.get("if-match").is_some_and(|m| m != HUGE_ETAG) {
                    send(&mut out, "412 Precondition Failed", &[], b"")?;
                    continue;
                }
                let (start, end) = match headers.get("range").and_then(|r| r.strip_prefix("bytes="))
                {
                    Some(r) => {
                        let (a, b) = r.split_once('-').unwrap_or((r, ""));
                        let a: u64 = a.parse().unwrap_or(0);
                        let b: u64 = b.parse().unwrap_or(HUGE - 1).min(HUGE - 1);
                        (a, b + 1)
                    }
                    None => {
                        full_gets.fetch_add(1, Ordering::SeqCst);
                        (0, HUGE)
                    }
                };
                let len = end - start;
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\nx-amz-request-id: SYNTH\r\nContent-Length: \
                     {len}\r\nContent-Range: bytes {start}-{}/{HUGE}\r\nETag: {HUGE_ETAG}\r\n\
                     Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: \
                     application/octet-stream\r\n\r\n",
                    end - 1
                );
                out.write_all(head.as_bytes())?;
                let stall_at = if stall.load(Ordering::SeqCst) {
                    start + len / 2
                } else {
                    u64::MAX
                };
                let mut pos = start;
                while pos < end {
                    if pos >= stall_at {
                        out.flush()?;
                        // silent until the test ends or lifts the stall; then drop the
                        // connection without finishing the body
                        while stall.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                            sleep(Duration::from_millis(50));
                        }
                        return Ok(());
                    }
                    let n = (end - pos)
                        .min(256 * 1024)
                        .min(stall_at.saturating_sub(pos).max(1));
                    out.write_all(&huge_bytes(pos, n as usize))?;
                    pos += n;
                }
            }
            ("HEAD", false) => send(&mut out, "404 Not Found", &[], b"")?,
            ("GET", false) => {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey\
                            </Code><Message>no such key</Message></Error>";
                send(
                    &mut out,
                    "404 Not Found",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
            _ => {
                let body =
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented\
                            </Code><Message>synthetic server</Message></Error>";
                send(
                    &mut out,
                    "501 Not Implemented",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}

/// An object over 5 GiB (and over 2^32 bytes): its size shows exactly in stat and `ls -l`,
/// reads at offsets around 2^31, 2^32, 5 GiB and the end return the right bytes (each byte
/// depends on its offset), reads past the end return nothing, and every GET is ranged.
/// moto would have to hold 6 GiB; a synthetic endpoint generates the bytes instead.
/// Then the server stalls in the middle of a body: the read fails within the deadline
/// (no hang), and once the server is back, the same bytes read correctly.
#[tokio::test]
async fn an_object_over_5_gib_reads_at_every_offset() {
    let server = SyntheticS3::start();
    let mount = Mount::builder_for_endpoint(&server.endpoint(), "huge")
        .args(["--debug", "--read-timeout", "5", "--max-attempts", "2"])
        .mount();
    let path = mount.join("huge.bin");
    let m = fs::metadata(&path).expect("stat of the huge object");
    assert_eq!(m.len(), HUGE, "st_size of a {HUGE}-byte object");
    let (ok, out) = {
        let o = Command::new("ls")
            .arg("-ln")
            .arg(mount.path())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert!(
        ok && out.contains(&HUGE.to_string()),
        "ls -l shows the size:\n{out}"
    );

    let file = File::open(&path).unwrap();
    let offsets: [(u64, usize); 9] = [
        (0, 4096),
        ((1 << 31) - 5, 10),
        ((1 << 32) - 7, 4096 + 14),
        (1 << 32, 100),
        (5 * (1 << 30) - 3, 70_000),
        (5 * (1 << 30) + 12_345, MIB),
        (HUGE - 100, 100),
        (HUGE - 10, 4096),
        (HUGE, 10),
    ];
    for (off, len) in offsets {
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            let n = file
                .read_at(&mut buf[got..], off + got as u64)
                .unwrap_or_else(|e| panic!("pread at {off}: {e}"));
            if n == 0 {
                break;
            }
            got += n;
        }
        let want_len = HUGE.saturating_sub(off).min(len as u64) as usize;
        assert_eq!(got, want_len, "bytes returned at offset {off}");
        assert!(
            buf[..got] == huge_bytes(off, got)[..],
            "bytes at offset {off}, length {len}"
        );
    }
    // 8 MiB sequentially from 5 GiB
    let mut f = File::open(&path).unwrap();
    let mut seq = vec![0u8; 8 * MIB];
    std::io::Seek::seek(&mut f, io::SeekFrom::Start(5 << 30)).unwrap();
    f.read_exact(&mut seq).unwrap();
    assert!(
        seq == huge_bytes(5 << 30, 8 * MIB),
        "sequential 8 MiB at 5 GiB"
    );
    assert_eq!(
        server.full_gets.load(Ordering::SeqCst),
        0,
        "every GET is ranged"
    );

    // the server stalls in the middle of a body
    server.stall.store(true, Ordering::SeqCst);
    let off = 3 * (1 << 30) + 777;
    let p = path.clone();
    let t = Instant::now();
    let stalled = with_deadline("read from a stalled body", OP_DEADLINE, move || {
        let f = File::open(&p)?;
        let mut buf = vec![0u8; 64 * KIB];
        f.read_exact_at(&mut buf, off).map(|_| buf)
    });
    let stalled_secs = t.elapsed().as_secs_f64();
    server.stall.store(false, Ordering::SeqCst);
    let stalled_result = match &stalled {
        Err(h) => format!("HANG ({h})"),
        Ok(Ok(buf)) => {
            assert!(*buf == huge_bytes(off, buf.len()), "bytes after a stall");
            "ok".into()
        }
        Ok(Err(e)) => errno_label(os_errno(e)),
    };
    // once the server answers again, the same bytes read
    let p = path.clone();
    let after = with_deadline("read after the stall", OP_DEADLINE, move || {
        let f = File::open(&p)?;
        let mut buf = vec![0u8; 64 * KIB];
        f.read_exact_at(&mut buf, off).map(|_| buf)
    });
    let after_result = match &after {
        Err(h) => format!("HANG ({h})"),
        Ok(Ok(buf)) => {
            assert!(*buf == huge_bytes(off, buf.len()), "bytes after the stall");
            "ok".into()
        }
        Ok(Err(e)) => errno_label(os_errno(e)),
    };
    report_figures(&format!(
        "{} size={HUGE} offsets_checked={} ranged_gets={} stalled_body_read={stalled_result} \
         stalled_secs={stalled_secs:.1} read_after_stall={after_result}",
        figures_prefix("huge-object"),
        offsets.len() + 1,
        server.gets.load(Ordering::SeqCst)
    ));
    dump_mount_log(&mount, "huge-object");
    assert!(
        stalled.is_ok(),
        "a read from a body that stalls must not hang: {stalled_result}"
    );
    assert_eq!(after_result, "ok", "the read after the stall must succeed");
    assert_no_panic(&mount, "after the huge object");
}

// ---------------------------------------------------------------------------------------------
// security
// ---------------------------------------------------------------------------------------------

const SECRET: &str = "SECRETdoNotLog1234567890abcdef";
const SESSION_TOKEN: &str = "TOKENdoNotLog0987654321fedcba";

/// With `--debug`, neither the secret access key nor the session token nor a request signature
/// appears in stderr or in the `--log-directory` files — also when requests fail (500s,
/// resets, a stopped server, a missing object) and when the mount itself fails.
#[tokio::test]
async fn secrets_never_appear_in_logs() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("f.txt", b"content").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let logs = local_tempdir("s3mount-rel-logs-");
    let build = |b: MountBuilder| {
        b.env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
            .args(["--debug", "--max-attempts", "2"])
    };
    let mount = build(Mount::builder(&s3, bucket.name()).endpoint_url(&proxy.endpoint())).mount();
    let mount2 = build(Mount::builder(&s3, bucket.name()).endpoint_url(&proxy.endpoint()))
        .arg("--log-directory")
        .arg(logs.path())
        .mount();
    for m in [&mount, &mount2] {
        assert_eq!(fs::read(m.join("f.txt")).unwrap(), b"content");
        let _ = fs::read(m.join("missing.txt"));
        let r = proxy.fail(Rule::new("", "", Fault::Status500));
        let _ = fs::write(m.join("g.txt"), b"fails");
        let _ = fs::read_dir(m.join("nodir"));
        proxy.remove(r);
        let r = proxy.fail(Rule::new("", "", Fault::ResetMidBody));
        let _ = fs::write(m.join("h.txt"), b"fails too");
        proxy.remove(r);
        proxy.set_offline(true);
        let _ = fs::write(m.join("i.txt"), b"fails while offline");
        proxy.set_offline(false);
        fs::write(m.join("ok.txt"), b"works").unwrap();
    }
    // a mount that fails (wrong bucket), in the foreground
    let (_, failed_stderr) = build(Mount::builder(&s3, "no-such-bucket-here")).expect_failure();
    let mut texts = vec![
        ("stderr".to_string(), mount.stderr()),
        ("stderr (log-directory mount)".to_string(), mount2.stderr()),
        ("stderr of a failed mount".to_string(), failed_stderr),
    ];
    drop(mount);
    drop(mount2);
    for e in fs::read_dir(logs.path()).unwrap() {
        let e = e.unwrap();
        texts.push((
            e.path().display().to_string(),
            String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned(),
        ));
    }
    let total: usize = texts.iter().map(|(_, t)| t.len()).sum();
    assert!(
        texts.len() >= 4,
        "a log file was written: {:?}",
        texts.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert!(
        texts[0].1.contains("s3mount::requests"),
        "--debug logs the requests (so the check means something)"
    );
    for (name, text) in &texts {
        for needle in [
            SECRET,
            SESSION_TOKEN,
            "Signature=",
            "AWS4-HMAC-SHA256 Credential",
            "x-amz-security-token",
        ] {
            assert!(
                !text.contains(needle),
                "{name} contains {needle:?}:\n{}",
                text.lines()
                    .filter(|l| l.contains(needle))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    report_figures(&format!(
        "{} secret_checked_in_bytes={total} files={} secret_found=0",
        figures_prefix("security"),
        texts.len()
    ));
}

/// Defaults are safe: no allow_other (other users get EACCES even on stat), the kernel checks
/// permissions (`default_permissions`), files are 0644 and directories 0755 unless set.
/// With `--allow-other`, another user can read a 0644 file but not a 0600 one, and cannot
/// write a file that is not writable for it.
#[tokio::test]
async fn safe_defaults_and_kernel_permission_checks() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("public.txt", b"readable by all").await;
    bucket.put("dir/inner.txt", b"inner").await;
    // written by another tool (s3fs headers): mode 0600, owner root
    bucket
        .put_with(
            "s3fs-secret.txt",
            b"0600 by s3fs",
            &[("mode", "33152"), ("uid", "0"), ("gid", "0")],
            &[],
            None,
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let (opts, fstype, superopts) = mountinfo_options(mount.path()).expect("mountinfo line");
    assert!(fstype.starts_with("fuse"), "{fstype}");
    for o in [&opts, &superopts] {
        assert!(
            !o.split(',').any(|x| x == "allow_other"),
            "allow_other by default: {o}"
        );
    }
    assert!(
        superopts.split(',').any(|x| x == "default_permissions"),
        "default_permissions: {superopts}"
    );
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&mount.join("public.txt")), 0o644);
    assert_eq!(mode(&mount.join("dir")), 0o755);
    assert_eq!(mode(mount.path()), 0o755);
    fs::write(mount.join("made.txt"), b"x").unwrap();
    fs::create_dir(mount.join("madedir")).unwrap();
    assert_eq!(
        mode(&mount.join("made.txt")) & 0o7777,
        0o644,
        "created with umask 022"
    );
    assert_eq!(mode(&mount.join("madedir")), 0o755);
    let secret = mount.join("secret.txt");
    fs::write(&secret, b"only for root").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(mode(&secret), 0o600);

    // Another user cannot use the mount at all without --allow-other.
    let parent = mount.path().parent().unwrap().to_path_buf();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("setpriv")
    };
    let public = mount.join("public.txt").display().to_string();
    let out = as_nobody(&["cat", &public]);
    assert!(
        !out.status.success(),
        "another user must not read the mount without --allow-other"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(mount);

    let mount = Mount::new(&s3, bucket.name(), &["--allow-other"]);
    let (opts, _, superopts) = mountinfo_options(mount.path()).unwrap();
    assert!(
        superopts.split(',').any(|x| x == "allow_other")
            || opts.split(',').any(|x| x == "allow_other"),
        "--allow-other shows in mountinfo: {opts} / {superopts}"
    );
    assert!(
        superopts.split(',').any(|x| x == "default_permissions"),
        "{superopts}"
    );
    let parent = mount.path().parent().unwrap().to_path_buf();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o755)).unwrap();
    let public = mount.join("public.txt").display().to_string();
    let secret = mount.join("secret.txt").display().to_string();
    let out = as_nobody(&["cat", &public]);
    assert!(
        out.status.success(),
        "--allow-other: another user reads a 0644 file: {out:?}"
    );
    assert_eq!(out.stdout, b"readable by all");
    let out = as_nobody(&["cat", &secret]);
    assert!(
        !out.status.success(),
        "a 0600 file is not readable by another user: {out:?}; mode through the mount {:o}, \
         x-amz-meta-mode {:?}",
        mode(&mount.join("secret.txt")),
        bucket.metadata("secret.txt").await.get("mode")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let out = as_nobody(&["sh", "-c", &format!("echo x >> '{public}'")]);
    assert!(
        !out.status.success(),
        "a 0644 file is not writable by another user"
    );
    let out = as_nobody(&["touch", &mount.join("new-by-nobody").display().to_string()]);
    assert!(
        !out.status.success(),
        "a 0755 root-owned directory refuses another user's create"
    );
    assert_eq!(bucket.get("public.txt").await, b"readable by all");
    assert!(!bucket.exists("new-by-nobody").await);

    // A listing carries no user metadata: after `ls -l` (readdirplus) the kernel must still not
    // let another user read a file whose stored mode is 0600.
    let (ok, _) = run_quiet("ls", &["-l".as_ref(), mount.path().as_os_str()]);
    assert!(ok);
    let s3fs_secret = mount.join("s3fs-secret.txt").display().to_string();
    let out = as_nobody(&["cat", &s3fs_secret]);
    assert!(
        !out.status.success(),
        "after `ls -l`, another user read a file stored with mode 0600 (x-amz-meta-mode 33152): \
         {out:?}; mode through the mount {:o}",
        mode(&mount.join("s3fs-secret.txt"))
    );
}
