//! The disk tier (`--cache DIR`) through a real mount against moto: blocks reused after a
//! remount with no GET to the bucket, a changed object never served from old blocks, damaged
//! block files dropped, a SIGKILL mid-write, the size bound, and one mount per directory.
//!
//! GETs are counted at a recording proxy between s3mount and moto ([`FaultProxy`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::fault_proxy::FaultProxy;
use crate::common::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// s3mount's block size.
const BLOCK: u64 = 256 * 1024;

/// GetObject requests for `key` the proxy saw.
fn gets(proxy: &FaultProxy, bucket: &str, key: &str) -> usize {
    let path = format!("/{bucket}/{key}");
    proxy.count_where(|r| r.method == "GET" && r.target.split('?').next() == Some(path.as_str()))
}

/// A mount through `proxy` with `--cache dir` and `extra` arguments.
fn mount(s3: &S3Server, proxy: &FaultProxy, bucket: &str, dir: &Path, extra: &[&str]) -> Mount {
    Mount::builder(s3, bucket)
        .endpoint_url(&proxy.endpoint())
        .arg("--cache")
        .arg(dir)
        .args(extra)
        .mount()
}

/// Every file under `dir/blocks` whose name ends with `suffix`.
fn block_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(subs) = std::fs::read_dir(dir.join("blocks")) else {
        return out;
    };
    for sub in subs.flatten() {
        for f in std::fs::read_dir(sub.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().to_string_lossy().ends_with(suffix) {
                out.push(f.path());
            }
        }
    }
    out
}

/// Lists the mount's root (as `ls` would before a read), then reads `name`.
fn list_and_read(mount: &Mount, name: &str) -> Vec<u8> {
    let _ = std::fs::read_dir(mount.path()).unwrap().count();
    std::fs::read(mount.join(name)).unwrap()
}

#[tokio::test]
async fn a_remount_rereads_from_disk_with_no_get() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(3 * MIB + 1000, 1);
    bucket.put("big.bin", &data).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-cache-");
    let mut m = mount(&s3, &proxy, bucket.name(), cache.path(), &["--log-metrics"]);
    assert!(list_and_read(&m, "big.bin") == data, "first read differs");
    let cold = gets(&proxy, bucket.name(), "big.bin");
    assert!(cold > 0);
    m.remount();
    proxy.reset_log();
    assert!(list_and_read(&m, "big.bin") == data, "re-read differs");
    let warm = gets(&proxy, bucket.name(), "big.bin");
    eprintln!("figures: cold read {cold} GETs, re-read after remount {warm} GETs");
    assert_eq!(warm, 0, "the re-read must come from the disk cache");
    m.unmount();
    // --log-metrics shows the tier: all 13 blocks (3 MiB + 1000 bytes) from disk.
    let log = m.stderr();
    assert!(
        log.contains("metrics: disk cache 13 hits, 0 misses"),
        "{log}"
    );
}

#[tokio::test]
async fn a_changed_object_gives_the_new_bytes() {
    let Served { s3, bucket } = Served::new().await;
    let old = pseudo_random_bytes(MIB, 2);
    let new = pseudo_random_bytes(MIB, 3);
    bucket.put("f.bin", &old).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-cache-");
    let mut m = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    assert!(list_and_read(&m, "f.bin") == old);
    m.unmount();
    bucket.put("f.bin", &new).await;
    let mut m = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    assert!(list_and_read(&m, "f.bin") == new, "old blocks served");
    m.unmount();
    // Both versions' blocks are on disk now; the old ones simply age out.
    assert_eq!(block_files(cache.path(), ".blk").len(), 8);
}

#[tokio::test]
async fn damaged_block_files_are_dropped_and_fetched_again() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(MIB, 4);
    bucket.put("f.bin", &data).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-cache-");
    let mut m = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    assert!(list_and_read(&m, "f.bin") == data);
    m.unmount();
    let files = block_files(cache.path(), ".blk");
    assert_eq!(files.len(), 4);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0x01;
    std::fs::write(&files[0], bytes).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap();
    f.set_len(100_000).unwrap();
    drop(f);

    let mut m = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    proxy.reset_log();
    assert!(list_and_read(&m, "f.bin") == data, "damaged data served");
    let refetched = gets(&proxy, bucket.name(), "f.bin");
    m.unmount();
    let log = m.stderr();
    assert_eq!(
        log.matches("dropped a damaged block").count(),
        2,
        "both damaged blocks are logged: {log}"
    );
    assert!(
        (1..=2).contains(&refetched),
        "{refetched} GETs for 2 blocks"
    );
    // Stored again, sound.
    let mut m = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    proxy.reset_log();
    assert!(list_and_read(&m, "f.bin") == data);
    assert_eq!(gets(&proxy, bucket.name(), "f.bin"), 0);
    m.unmount();
}

#[tokio::test]
async fn a_sigkill_while_writing_blocks_leaves_nothing_wrong() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(24 * MIB, 5);
    bucket.put("big.bin", &data).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-cache-");
    let m = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    let path = m.join("big.bin");
    let reader = std::thread::spawn(move || std::fs::read(path));
    let deadline = Instant::now() + Duration::from_secs(60);
    while block_files(cache.path(), ".blk").len() < 8 {
        assert!(Instant::now() < deadline, "no blocks written");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = m.pid().unwrap() as libc::pid_t;
    // SAFETY: kill(2) on our own child process, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = reader.join();
    let written = block_files(cache.path(), ".blk").len();
    drop(m);

    let mut m = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    assert!(
        block_files(cache.path(), ".tmp").is_empty(),
        "temporary files are removed"
    );
    assert!(
        list_and_read(&m, "big.bin") == data,
        "wrong data after a crash"
    );
    m.unmount();
    eprintln!("figures: {written} block files on disk at SIGKILL");
}

#[tokio::test]
async fn the_directory_stays_within_max_cache_size() {
    let Served { s3, bucket } = Served::new().await;
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("f{i}.bin"), pseudo_random_bytes(2 * MIB, 10 + i)))
        .collect();
    for (k, v) in &files {
        bucket.put(k, v).await;
    }
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-cache-");
    let mut m = mount(
        &s3,
        &proxy,
        bucket.name(),
        cache.path(),
        &["--max-cache-size", "2"],
    );
    let limit = 2 * MIB as u64;
    // Apparent size of the block files, plus one file being written: the documented slack.
    let within = |when: &str| {
        let held: u64 = block_files(cache.path(), "")
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|md| md.len())
            .sum();
        assert!(
            held <= limit + BLOCK + 4 * KIB as u64,
            "{when}: {held} bytes"
        );
        held
    };
    for (k, v) in &files {
        assert!(list_and_read(&m, k) == *v, "{k}");
        within(k);
    }
    m.unmount();
    let held = within("after unmount");
    assert!(held > limit / 2, "the cache is used: {held} bytes");
    let mut m = mount(
        &s3,
        &proxy,
        bucket.name(),
        cache.path(),
        &["--max-cache-size", "2"],
    );
    for (k, v) in &files {
        assert!(list_and_read(&m, k) == *v, "{k} after evictions");
    }
    m.unmount();
    within("after the second pass");
}

#[tokio::test]
async fn a_second_mount_on_the_same_directory_is_refused() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("a", b"x").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-cache-");
    let mut first = mount(&s3, &proxy, bucket.name(), cache.path(), &[]);
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .arg("--cache")
        .arg(cache.path())
        .expect_failure();
    assert_eq!(code, 1, "{stderr}");
    let line = stderr.trim_end();
    assert!(
        line.starts_with("s3mount: error: cache directory") && line.contains("in use"),
        "{stderr}"
    );
    assert_eq!(line.lines().count(), 1, "one line: {stderr}");
    assert_eq!(std::fs::read(first.join("a")).unwrap(), b"x");
    first.unmount();
}
