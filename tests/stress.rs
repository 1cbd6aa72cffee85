//! Concurrency stress: many threads on one real mount against moto.
//!
//! - many readers on the same and on different files, with a small block cache so blocks are
//!   evicted and fetched again while others wait for them;
//! - parallel writers, each on its own files, every result checked through the SDK;
//! - readers while the object is overwritten through the SDK: every whole-file read returns
//!   exactly one version (versions differ in size and bytes), never a mixture;
//! - listing a directory of a few thousand entries while files are created in it.
//!
//! Every file-system call runs with a deadline (a miss is a hang); s3mount must stay alive and
//! never log "panicked". Each test prints a `FIGURES` line (also appended to
//! `$S3MOUNT_RELIABILITY_REPORT`). `S3MOUNT_SOAK=1` multiplies the operation counts.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use common::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Deadline for one file-system call: a miss is a hang.
const OP_DEADLINE: Duration = Duration::from_secs(120);

fn scale() -> usize {
    if soak() {
        8
    } else {
        1
    }
}

/// Counters shared by the threads of one test.
#[derive(Default)]
struct Counts {
    ops: AtomicU64,
    errors: AtomicU64,
    wrong: AtomicU64,
    hangs: AtomicU64,
    lost: AtomicU64,
    problems: Mutex<Vec<String>>,
    errnos: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    fn problem(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::SeqCst);
        let mut p = self.problems.lock().unwrap();
        if p.len() < 50 {
            p.push(what);
        }
    }

    fn error(&self, e: &io::Error) {
        self.errors.fetch_add(1, Ordering::SeqCst);
        *self
            .errnos
            .lock()
            .unwrap()
            .entry(errno_label(os_errno(e)))
            .or_default() += 1;
    }

    /// Runs one call with the deadline; None (and a hang counted) if it missed it.
    fn call<T: Send + 'static>(
        &self,
        what: String,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        match with_deadline(what, OP_DEADLINE, work) {
            Ok(v) => Some(v),
            Err(h) => {
                self.problem(&self.hangs, format!("HANG: {h}"));
                None
            }
        }
    }

    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }

    fn summary(&self) -> String {
        format!(
            "ops={} errors={} errnos={:?} wrong_bytes={} lost_writes={} hangs={}",
            Self::get(&self.ops),
            Self::get(&self.errors),
            self.errnos.lock().unwrap(),
            Self::get(&self.wrong),
            Self::get(&self.lost),
            Self::get(&self.hangs)
        )
    }

    #[track_caller]
    fn assert_clean(&self, mount: &Mount, what: &str) {
        let pid = mount.pid().expect("pid");
        assert!(process_alive(pid), "{what}: s3mount died");
        let log = mount.stderr();
        assert!(!log.contains("panicked"), "{what}: s3mount logged a panic");
        let problems = self.problems.lock().unwrap();
        assert!(
            problems.is_empty(),
            "{what}: {}\n{}\n--- s3mount stderr (tail) ---\n{}",
            self.summary(),
            problems.join("\n"),
            log.lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Waits for every thread, failing (as a hang) if they are not done by `limit`.
fn join_all<T>(threads: Vec<JoinHandle<T>>, limit: Duration) -> Vec<T> {
    let deadline = Instant::now() + limit;
    threads
        .into_iter()
        .map(|t| {
            while !t.is_finished() {
                assert!(Instant::now() < deadline, "threads still running: a hang");
                sleep(Duration::from_millis(20));
            }
            t.join().expect("worker thread panicked")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// readers
// ---------------------------------------------------------------------------------------------

/// 16 threads read 8 files (half of the reads go to one hot file): whole-file reads and
/// random preads through one handle, with a 16 MiB cache that keeps evicting.
#[tokio::test]
async fn many_readers_on_the_same_and_different_files() {
    let started = Instant::now();
    let Served { s3, bucket } = Served::new().await;
    let mut files = Vec::new();
    for i in 0..8 {
        let key = format!("r/f{i}.bin");
        let data = Arc::new(pseudo_random_bytes(
            256 * KIB + i * 397 * KIB,
            100 + i as u64,
        ));
        bucket.put(&key, data.as_slice()).await;
        files.push((key, data));
    }
    let mount = Mount::new(
        &s3,
        bucket.name(),
        &["--cache-size", "16", "--part-size", "524288"],
    );
    let counts = Arc::new(Counts::default());
    let threads = 16;
    let per_thread = 25 * scale();
    let mut workers = Vec::new();
    for t in 0..threads {
        let files = files.clone();
        let root = mount.path().to_path_buf();
        let counts = counts.clone();
        workers.push(std::thread::spawn(move || {
            let mut rng = Rng::new(0x5EAD + t as u64);
            for _ in 0..per_thread {
                let i = if rng.chance(50) {
                    0
                } else {
                    rng.below(files.len() as u64) as usize
                };
                let (key, data) = files[i].clone();
                let path = root.join(&key);
                if rng.chance(50) {
                    let d = data.clone();
                    let c = counts.clone();
                    counts.call(format!("read {key}"), move || match fs::read(&path) {
                        Ok(got) if got == *d => {}
                        Ok(got) => c.problem(
                            &c.wrong,
                            format!("read {key}: {} bytes, not the object", got.len()),
                        ),
                        Err(e) => c.error(&e),
                    });
                } else {
                    let reads: Vec<(u64, usize)> = (0..4)
                        .map(|_| {
                            (
                                rng.below(data.len() as u64),
                                rng.range(1, 256 * KIB as u64) as usize,
                            )
                        })
                        .collect();
                    let c = counts.clone();
                    counts.call(format!("preads {key}"), move || {
                        let f = match File::open(&path) {
                            Ok(f) => f,
                            Err(e) => return c.error(&e),
                        };
                        for (off, len) in reads {
                            match pread_all(&f, off, len) {
                                Ok(got) => {
                                    let end = (off as usize + len).min(data.len());
                                    if got[..] != data[off as usize..end] {
                                        c.problem(
                                            &c.wrong,
                                            format!("pread({off}, {len}) of {key}: other bytes"),
                                        );
                                    }
                                }
                                Err(e) => c.error(&e),
                            }
                        }
                    });
                }
            }
        }));
    }
    join_all(workers, OP_DEADLINE * 4);
    report_figures(&format!(
        "test=stress-readers threads={threads} operations={} {} secs={:.0}",
        threads * per_thread,
        counts.summary(),
        started.elapsed().as_secs_f64()
    ));
    counts.assert_clean(&mount, "many readers");
    assert_eq!(Counts::get(&counts.errors), 0, "no read failed");
}

// ---------------------------------------------------------------------------------------------
// writers
// ---------------------------------------------------------------------------------------------

/// 8 threads each rewrite, append to and patch their own two files; after every close the
/// object in S3 (read through the thread's own SDK client) is exactly what was written.
#[tokio::test]
async fn parallel_writers_to_different_files() {
    let started = Instant::now();
    let Served { s3, bucket } = Served::new().await;
    let cache = tempfile::Builder::new()
        .prefix("s3mount-stress-cache-")
        .tempdir()
        .unwrap();
    let mount = Mount::builder(&s3, bucket.name())
        .args(["--write-part-size", "5242880", "--cache-dir"])
        .arg(cache.path())
        .mount();
    fs::create_dir(mount.join("w")).unwrap();
    let counts = Arc::new(Counts::default());
    let threads = 8;
    let per_thread = 8 * scale();
    let mut workers = Vec::new();
    for t in 0..threads {
        let root = mount.path().to_path_buf();
        let counts = counts.clone();
        let endpoint = s3.endpoint().to_string();
        let name = bucket.name().to_string();
        workers.push(std::thread::spawn(move || {
            let rt = thread_runtime();
            let bucket = bucket_with_own_client(&endpoint, &name);
            let mut rng = Rng::new(0x3417E + t as u64);
            let mut content: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for i in 0..per_thread {
                let key = format!("w/t{t}-{}.bin", i % 2);
                let path = root.join(&key);
                let old = content.get(&key).cloned();
                // (new content, what, offset of the write, bytes written, O_TRUNC)
                let (new, what, off, bytes, trunc): (Vec<u8>, &str, u64, Vec<u8>, bool) =
                    match (rng.below(4), &old) {
                        (0, Some(old)) => {
                            let add = rng.bytes(10 * KIB + 3);
                            let mut n = old.clone();
                            n.extend(&add);
                            (n, "append", old.len() as u64, add, false)
                        }
                        (1, Some(old)) if !old.is_empty() => {
                            let off = rng.below(old.len() as u64) as usize;
                            let patch = rng.bytes(3000);
                            let mut n = old.clone();
                            let end = off + patch.len();
                            if n.len() < end {
                                n.resize(end, 0);
                            }
                            n[off..end].copy_from_slice(&patch);
                            (n, "patch", off as u64, patch, false)
                        }
                        (2, _) => {
                            let n = rng.bytes(5 * MIB + 77 * KIB);
                            (n.clone(), "replace (multipart)", 0, n, true)
                        }
                        _ => {
                            let len = rng.range(0, 300 * KIB as u64) as usize;
                            let n = rng.bytes(len);
                            (n.clone(), "replace", 0, n, true)
                        }
                    };
                let p = path.clone();
                let append = what == "append";
                let res = counts.call(format!("{what} {key}"), move || -> io::Result<()> {
                    if append {
                        let mut f = OpenOptions::new().append(true).open(&p)?;
                        f.write_all(&bytes)?;
                        close(f)
                    } else if trunc {
                        let mut f = File::create(&p)?;
                        for chunk in bytes.chunks(MIB) {
                            f.write_all(chunk)?;
                        }
                        close(f)
                    } else {
                        let f = OpenOptions::new().read(true).write(true).open(&p)?;
                        f.write_all_at(&bytes, off)?;
                        close(f)
                    }
                });
                match res {
                    None => {}
                    Some(Ok(())) => {
                        let in_s3 = rt.block_on(bucket.try_get(&key)).unwrap_or_default();
                        if in_s3 != new {
                            counts.problem(
                                &counts.lost,
                                format!(
                                    "{what} of {key}: acknowledged, S3 holds {} bytes, not the \
                                     {} written",
                                    in_s3.len(),
                                    new.len()
                                ),
                            );
                        }
                        content.insert(key, new);
                    }
                    Some(Err(e)) => {
                        counts.error(&e);
                        let in_s3 = rt.block_on(bucket.try_get(&key));
                        content.insert(key, in_s3.unwrap_or_default());
                    }
                }
            }
            content
        }));
    }
    let finals = join_all(workers, OP_DEADLINE * 8);
    // everything acknowledged is there at the end, and reads back through the mount
    for content in finals {
        for (key, want) in content {
            let got = bucket.get(&key).await;
            if got != want {
                counts.problem(&counts.lost, format!("{key} at the end: S3 differs"));
            }
            match fs::read(mount.join(&key)) {
                Ok(b) if b == want => {}
                Ok(_) => counts.problem(&counts.wrong, format!("{key}: mount reads other bytes")),
                Err(e) => counts.error(&e),
            }
        }
    }
    report_figures(&format!(
        "test=stress-writers threads={threads} operations={} {} secs={:.0}",
        threads * per_thread,
        counts.summary(),
        started.elapsed().as_secs_f64()
    ));
    counts.assert_clean(&mount, "parallel writers");
    assert_eq!(Counts::get(&counts.errors), 0, "no write failed");
}

// ---------------------------------------------------------------------------------------------
// readers while the object changes behind the mount's back
// ---------------------------------------------------------------------------------------------

/// Version `v` of the hot object: its own size and bytes, so that any mixture shows.
fn version(v: u64) -> Vec<u8> {
    let mut d = pseudo_random_bytes(200 * KIB + (v as usize) * 4099, 7000 + v);
    d[..8].copy_from_slice(&v.to_le_bytes());
    d
}

/// Describes bytes that are no single version: which version has that size, and, page by page
/// (4 KiB), which version each page's bytes come from.
fn describe_mixture(got: &[u8], all: &[Vec<u8>]) -> String {
    let by_size: Vec<usize> = (0..all.len())
        .filter(|v| all[*v].len() == got.len())
        .collect();
    let mut runs: Vec<(usize, usize, String)> = Vec::new(); // (first page, last page, source)
    for (i, page) in got.chunks(4096).enumerate() {
        let off = i * 4096;
        let src: Vec<String> = (0..all.len())
            .filter(|v| all[*v].get(off..off + page.len()) == Some(page))
            .map(|v| format!("v{v}"))
            .collect();
        let src = if src.is_empty() {
            "none".to_string()
        } else {
            src.join("|")
        };
        match runs.last_mut() {
            Some(r) if r.2 == src => r.1 = i,
            _ => runs.push((i, i, src)),
        }
    }
    format!(
        "a read returned {} bytes that are no single version (the size of {:?}); pages: {}",
        got.len(),
        by_size.iter().map(|v| format!("v{v}")).collect::<Vec<_>>(),
        runs.iter()
            .map(|(a, b, s)| format!("{a}-{b}:{s}"))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// 8 threads read the whole object again and again while the test overwrites it through the
/// SDK every 500 ms (`--metadata-ttl 0`, so the mount notices at once): each read returns
/// exactly one version (or fails, e.g. ESTALE when the version changed under an open handle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_during_sdk_overwrites_see_one_version() {
    let started = Instant::now();
    let Served { s3, bucket } = Served::new().await;
    let versions = 12 * scale() as u64;
    let all: Arc<Vec<Vec<u8>>> = Arc::new((0..=versions).map(version).collect());
    bucket.put("hot.bin", &all[0]).await;
    let mount = Mount::new(
        &s3,
        bucket.name(),
        &["--metadata-ttl", "0", "--cache-size", "8"],
    );
    let counts = Arc::new(Counts::default());
    let seen: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let threads = 8;
    let mut workers = Vec::new();
    for t in 0..threads {
        let path = mount.join("hot.bin");
        let (counts, seen, all, done) = (counts.clone(), seen.clone(), all.clone(), done.clone());
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) || n < 3 {
                n += 1;
                let p = path.clone();
                let (c, s, a) = (counts.clone(), seen.clone(), all.clone());
                counts.call(format!("reader {t} read #{n}"), move || {
                    match fs::read(&p) {
                        Ok(got) => match a.iter().position(|v| *v == got) {
                            Some(v) => *s.lock().unwrap().entry(v as u64).or_default() += 1,
                            None => c.problem(&c.wrong, describe_mixture(&got, &a)),
                        },
                        Err(e) => c.error(&e),
                    }
                });
            }
            n
        }));
    }
    for v in 1..=versions {
        sleep(Duration::from_millis(500));
        bucket.put("hot.bin", &all[v as usize]).await;
    }
    sleep(Duration::from_millis(300));
    done.store(true, Ordering::SeqCst);
    let reads: usize = join_all(workers, OP_DEADLINE * 4).into_iter().sum();
    // once the overwrites stop, a new read (TTL 0) returns the last version
    let last = fs::read(mount.join("hot.bin")).expect("read after the overwrites");
    if last != all[versions as usize] {
        counts.problem(
            &counts.wrong,
            format!(
                "the read after the last overwrite is not the last version: {}",
                if all.contains(&last) {
                    format!(
                        "it is v{}",
                        all.iter().position(|v| *v == last).unwrap_or_default()
                    )
                } else {
                    describe_mixture(&last, &all)
                }
            ),
        );
    }
    let seen = seen.lock().unwrap().clone();
    report_figures(&format!(
        "test=stress-overwrite threads={threads} versions={versions} reads={reads} \
         distinct_versions_seen={} {} secs={:.0}",
        seen.len(),
        counts.summary(),
        started.elapsed().as_secs_f64()
    ));
    counts.assert_clean(&mount, "readers during overwrites");
}

// ---------------------------------------------------------------------------------------------
// a large directory listed while it grows
// ---------------------------------------------------------------------------------------------

/// 3,000 objects in one directory; 2 threads list it over and over (every 200 ms) while 2
/// threads create 40 files each in it through the mount. Every listing holds every pre-existing name exactly
/// once, and nothing but pre-existing and created names; at the end the listing and the bucket
/// hold all 3,080.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_a_large_directory_while_files_are_created() {
    let started = Instant::now();
    let Served { s3, bucket } = Served::new().await;
    let seeded = 3000;
    let mut set = tokio::task::JoinSet::new();
    let names: Vec<String> = (0..seeded).map(|i| format!("seed-{i:05}")).collect();
    for chunk in names.chunks(seeded / 16) {
        let b = bucket.clone();
        let chunk = chunk.to_vec();
        set.spawn(async move {
            for n in chunk {
                b.put(&format!("big/{n}"), n.as_bytes()).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("seeding task");
    }
    let seeded_at = started.elapsed();
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let dir: PathBuf = mount.join("big");
    let counts = Arc::new(Counts::default());
    let pre: Arc<BTreeSet<String>> = Arc::new(names.iter().cloned().collect());
    let created: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let per_creator = 40 * scale();
    let creators_done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for t in 0..2 {
        let (dir, counts, created, creators_done) = (
            dir.clone(),
            counts.clone(),
            created.clone(),
            creators_done.clone(),
        );
        workers.push(std::thread::spawn(move || {
            for i in 0..per_creator {
                let name = format!("new-{t}-{i:04}");
                created.lock().unwrap().insert(name.clone());
                let p = dir.join(&name);
                let c = counts.clone();
                let body = name.clone();
                counts.call(format!("create {name}"), move || {
                    if let Err(e) = fs::write(&p, body.as_bytes()) {
                        c.error(&e);
                    }
                });
            }
            creators_done.fetch_add(1, Ordering::SeqCst);
            0usize
        }));
    }
    for _ in 0..2 {
        let (dir, counts, pre, created, creators_done) = (
            dir.clone(),
            counts.clone(),
            pre.clone(),
            created.clone(),
            creators_done.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let mut listings = 0;
            while creators_done.load(Ordering::SeqCst) < 2 || listings < 2 {
                listings += 1;
                sleep(Duration::from_millis(200));
                let d = dir.clone();
                let c = counts.clone();
                let (pre, created) = (pre.clone(), created.clone());
                counts.call(format!("listing #{listings}"), move || {
                    let names = match fs::read_dir(&d).and_then(|rd| {
                        rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                            .collect::<io::Result<Vec<String>>>()
                    }) {
                        Ok(n) => n,
                        Err(e) => return c.error(&e),
                    };
                    let set: BTreeSet<&String> = names.iter().collect();
                    if set.len() != names.len() {
                        c.problem(&c.wrong, "a listing holds a name twice".into());
                    }
                    let missing = pre.iter().filter(|n| !set.contains(n)).count();
                    if missing > 0 {
                        c.problem(&c.wrong, format!("a listing misses {missing} seeded names"));
                    }
                    let created = created.lock().unwrap();
                    let strange: Vec<&&String> = set
                        .iter()
                        .filter(|n| !pre.contains(**n) && !created.contains(**n))
                        .collect();
                    if !strange.is_empty() {
                        c.problem(
                            &c.wrong,
                            format!("a listing holds unknown names {strange:?}"),
                        );
                    }
                });
            }
            listings
        }));
    }
    let results = join_all(workers, OP_DEADLINE * 6);
    let listings: usize = results.iter().sum();
    // at the end: every name, once, through the mount and in the bucket
    let mut want: BTreeSet<String> = pre.iter().cloned().collect();
    want.extend(created.lock().unwrap().iter().cloned());
    let final_names: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(final_names.len(), seeded + 2 * per_creator);
    assert!(final_names == want, "final listing");
    let keys: BTreeSet<String> = bucket
        .list_keys("big/")
        .await
        .into_iter()
        .map(|k| k["big/".len()..].to_string())
        .collect();
    assert!(keys == want, "bucket keys");
    for n in created.lock().unwrap().iter().take(10) {
        assert_eq!(fs::read(dir.join(n)).unwrap(), n.as_bytes());
    }
    report_figures(&format!(
        "test=stress-listing entries={} creators=2 listers=2 files_created={} listings={listings} \
         {} seed_secs={:.0} secs={:.0}",
        seeded,
        2 * per_creator,
        counts.summary(),
        seeded_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    counts.assert_clean(&mount, "listing while creating");
    assert_eq!(Counts::get(&counts.errors), 0, "no call failed");
}
