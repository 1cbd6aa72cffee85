//! The disk tier over a temporary directory.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::*;

fn config(dir: &Path, max: u64) -> DiskCacheConfig {
    DiskCacheConfig {
        dir: dir.to_path_buf(),
        max_bytes: Some(max),
        source: "http://s3\nbucket\n".into(),
    }
}

/// Opens with a probe that always finds room, so the tests do not depend on the real disk.
fn open(config: &DiskCacheConfig) -> Result<Arc<DiskCache>, DiskCacheError> {
    let roomy: SpaceProbe = Box::new(|_| {
        Ok(Space {
            total: 1 << 40,
            available: 1 << 39,
        })
    });
    DiskCache::open_with_probe(config, roomy)
}

fn key(i: u64) -> BlockKey {
    BlockKey::new("dir/obj", "etag-1", i)
}

fn data(i: u64, n: usize) -> Bytes {
    (0..n).map(|j| (j as u64 * 31 + i) as u8).collect()
}

/// Offers and waits until the writer has stored everything.
async fn store(c: &DiskCache, blocks: &[(BlockKey, Bytes)]) {
    let want = c.stats().bytes_written + blocks.iter().map(|(_, d)| d.len() as u64).sum::<u64>();
    for (k, d) in blocks {
        c.offer(k, d).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while c.stats().bytes_written < want {
        assert!(
            std::time::Instant::now() < deadline,
            "writer stuck: {:?}, want {want} written",
            c.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir.join(BLOCKS_DIR)).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn round_trip_and_other_versions_miss() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&config(dir.path(), 1 << 20)).unwrap();
    store(&c, &[(key(0), data(0, 1000)), (key(1), data(1, 10))]).await;
    assert_eq!(c.get(&key(0), 1000).await, Some(data(0, 1000)));
    assert_eq!(c.get(&key(1), 10).await, Some(data(1, 10)));
    let other = BlockKey::new("dir/obj", "etag-2", 0);
    assert_eq!(c.get(&other, 1000).await, None);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.bytes_read), (2, 1, 1010));
}

#[tokio::test]
async fn a_damaged_block_is_dropped_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&config(dir.path(), 1 << 20)).unwrap();
    store(&c, &[(key(0), data(0, 4096)), (key(1), data(1, 4096))]).await;
    let paths = files(dir.path(), ".blk");
    assert_eq!(paths.len(), 2);
    // Flip one byte of the data in one file, cut the other short.
    let mut bytes = std::fs::read(&paths[0]).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 1;
    std::fs::write(&paths[0], bytes).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&paths[1])
        .unwrap();
    f.set_len(500).unwrap();
    assert_eq!(c.get(&key(0), 4096).await, None);
    assert_eq!(c.get(&key(1), 4096).await, None);
    assert_eq!(c.stats().checksum_failures, 2);
    assert!(
        files(dir.path(), ".blk").is_empty(),
        "damaged files are deleted"
    );
    assert_eq!(c.bytes(), 0);
    // Fetched again, it is stored again.
    store(&c, &[(key(0), data(0, 4096))]).await;
    assert_eq!(c.get(&key(0), 4096).await, Some(data(0, 4096)));
}

#[tokio::test]
async fn least_recently_used_blocks_are_evicted_to_stay_in_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let per_file = (HEADER_LEN
        + block_file::identity("http://s3\nbucket\n", "dir/obj", "etag-1", 0).len()
        + 1000) as u64;
    let c = open(&config(dir.path(), 4 * per_file)).unwrap();
    // One at a time: two writers could store a batch in any order, and the order is the LRU's.
    for i in 0..4 {
        store(&c, &[(key(i), data(i, 1000))]).await;
    }
    assert!(c.get(&key(0), 1000).await.is_some()); // 0 is now the most recent
    store(&c, &[(key(4), data(4, 1000))]).await;
    assert!(c.bytes() <= 4 * per_file, "{} bytes", c.bytes());
    assert_eq!(c.stats().evictions, 2, "down to 95%: two blocks go");
    assert_eq!(c.get(&key(1), 1000).await, None);
    assert_eq!(c.get(&key(2), 1000).await, None);
    assert!(c.get(&key(0), 1000).await.is_some());
    assert!(c.get(&key(4), 1000).await.is_some());
    assert_eq!(files(dir.path(), ".blk").len(), 3);
}

#[tokio::test]
async fn the_index_is_rebuilt_after_a_restart_and_temp_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = open(&config(dir.path(), 1 << 20)).unwrap();
        store(&c, &[(key(0), data(0, 100)), (key(1), data(1, 100))]).await;
        c.flush_and_stop();
    }
    // A write interrupted by a crash: a temp file named like the block it would have been.
    let (id, hash) = {
        let id = block_file::identity("http://s3\nbucket\n", "dir/obj", "etag-1", 2);
        let hash = block_file::name_hash(&id);
        (id, hash)
    };
    let temp = block_path(&dir.path().join(BLOCKS_DIR), hash).with_extension(TEMP_SUFFIX);
    std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
    let mut partial = block_file::header(&id, &data(2, 100));
    partial.extend_from_slice(&data(2, 100)[..40]);
    std::fs::write(&temp, partial).unwrap();

    let c = open(&config(dir.path(), 1 << 20)).unwrap();
    assert!(!temp.exists(), "temp files are removed at start");
    assert_eq!(c.get(&key(0), 100).await, Some(data(0, 100)));
    assert_eq!(c.get(&key(1), 100).await, Some(data(1, 100)));
    assert_eq!(c.get(&key(2), 100).await, None);
    assert_eq!(c.stats().checksum_failures, 0);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(&config(dir.path(), 1 << 20)).unwrap();
    let err = open(&config(dir.path(), 1 << 20)).unwrap_err();
    assert!(matches!(err, DiskCacheError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("in use by another s3mount"));
    drop(first);
    open(&config(dir.path(), 1 << 20)).expect("free again once closed");
}

#[test]
fn nearly_full_is_five_percent_or_two_gib_whichever_is_smaller() {
    let gib = 1u64 << 30;
    let space = |total, available| Space { total, available };
    // A 20 GiB disk: 5% (1 GiB) is the rule.
    assert!(space(20 * gib, gib / 2).nearly_full());
    assert!(!space(20 * gib, gib + (1 << 20)).nearly_full());
    // A 250 GiB disk: 2 GiB is, not 12.5 GiB.
    assert!(!space(250 * gib, 7 * gib).nearly_full());
    assert!(space(250 * gib, 2 * gib - 1).nearly_full());
}

#[tokio::test]
async fn caching_pauses_while_the_disk_is_nearly_full_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let available = Arc::new(AtomicU64::new(1000));
    let probe_available = available.clone();
    let probe: SpaceProbe = Box::new(move |_| {
        Ok(Space {
            total: 100_000,
            available: probe_available.load(Ordering::Relaxed),
        })
    });
    let c = DiskCache::open_with_probe(&config(dir.path(), 1 << 20), probe).unwrap();
    c.offer(&key(0), &data(0, 100)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while c.stats().skipped == 0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        c.get(&key(0), 100).await,
        None,
        "nothing written while full"
    );
    available.store(50_000, Ordering::Relaxed);
    store(&c, &[(key(0), data(0, 100))]).await;
    assert_eq!(c.get(&key(0), 100).await, Some(data(0, 100)));
}

#[test]
fn the_default_bound_is_a_share_of_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let probe: SpaceProbe = Box::new(|_| {
        Ok(Space {
            total: 10_000_000,
            available: 4_000_000,
        })
    });
    let cfg = DiskCacheConfig {
        max_bytes: None,
        ..config(dir.path(), 0)
    };
    let c = DiskCache::open_with_probe(&cfg, probe).unwrap();
    assert_eq!(c.max_bytes(), 2_000_000);
}

/// A cache whose writers block (in the free-space probe) while the returned gate is closed.
fn open_with_gate(dir: &Path) -> (Arc<DiskCache>, Arc<(Mutex<bool>, std::sync::Condvar)>) {
    let gate = Arc::new((Mutex::new(true), std::sync::Condvar::new()));
    let held = gate.clone();
    let probe: SpaceProbe = Box::new(move |_| {
        let (closed, cv) = &*held;
        let _open = cv.wait_while(closed.lock().unwrap(), |c| *c).unwrap();
        Ok(Space {
            total: 1 << 40,
            available: 1 << 39,
        })
    });
    let c = DiskCache::open_with_probe(&config(dir, 1 << 30), probe).unwrap();
    (c, gate)
}

fn open_gate(gate: &(Mutex<bool>, std::sync::Condvar)) {
    *gate.0.lock().unwrap() = false;
    gate.1.notify_all();
}

/// Offers blocks from `from` on until one is not taken at once (the queue is full); returns
/// the index of the first block not offered.
async fn fill_queue(c: &DiskCache, from: u64) -> u64 {
    let mut i = from;
    loop {
        let (k, d) = (key(i), data(i, 64));
        if tokio::time::timeout(Duration::from_millis(50), c.offer(&k, &d))
            .await
            .is_err()
        {
            return i;
        }
        i += 1;
        assert!(
            i < from + 10 * QUEUE_BLOCKS as u64,
            "the queue never filled"
        );
    }
}

#[tokio::test]
async fn a_full_queue_makes_the_offer_wait_instead_of_dropping_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let (c, gate) = open_with_gate(dir.path());
    let next = fill_queue(&c, 0).await;
    // The block cut off by the timeout above was not queued; this one waits for room.
    let opener = {
        let gate = gate.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            open_gate(&gate);
        })
    };
    let skipped = c.stats().skipped;
    c.offer(&key(next), &data(next, 64)).await;
    opener.await.unwrap();
    assert_eq!(
        c.stats().skipped,
        skipped,
        "the offer was dropped, not waited for"
    );
    c.flush_and_stop();
    assert!(
        c.get(&key(next), 64).await.is_some(),
        "the waited-for block is stored"
    );
}

#[tokio::test]
async fn a_stalled_disk_costs_one_wait_then_offers_are_dropped_until_it_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (c, gate) = open_with_gate(dir.path());
    let next = fill_queue(&c, 0).await;
    let started = std::time::Instant::now();
    c.offer(&key(next), &data(next, 64)).await;
    assert!(
        started.elapsed() >= OFFER_WAIT,
        "gave up before {OFFER_WAIT:?}"
    );
    assert_eq!(c.stats().skipped, 1);
    // Stalled: the next offer does not wait (a wait would be cut off by the timeout).
    let (k, d) = (key(next + 1), data(next + 1, 64));
    let quick = tokio::time::timeout(OFFER_WAIT / 2, c.offer(&k, &d)).await;
    assert!(quick.is_ok(), "a second offer waited on a stalled disk");
    assert_eq!(c.stats().skipped, 2);
    // Once the writers drain the queue, offers wait (and are stored) again.
    open_gate(&gate);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.stats().bytes_written < next * 64 {
        assert!(
            std::time::Instant::now() < deadline,
            "writers stuck: {:?}",
            c.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.offer(&key(next + 2), &data(next + 2, 64)).await;
    c.flush_and_stop();
    assert_eq!(c.stats().skipped, 2);
    assert!(c.get(&key(next + 2), 64).await.is_some());
}
