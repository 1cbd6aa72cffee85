//! The shared tier over a [`MemStore`] standing for the shared bucket.

use crate::storage::mem::MemStore;

use super::*;

fn config() -> SharedCacheConfig {
    SharedCacheConfig {
        bucket: "cache".into(),
        source: "http://s3\nbucket\n262144".into(),
    }
}

fn open() -> (Arc<MemStore>, Arc<SharedCache>) {
    let store = Arc::new(MemStore::new());
    let tier = SharedCache::new(store.clone() as Arc<dyn ObjectStore>, &config());
    (store, tier)
}

fn key(i: u64) -> BlockKey {
    BlockKey::new("dir/obj", "etag-1", i)
}

fn data(i: u64, n: usize) -> Bytes {
    (0..n).map(|j| (j as u64 * 31 + i) as u8).collect()
}

/// Offers every block and waits until the writer has stored them.
async fn store_blocks(tier: &SharedCache, blocks: &[(BlockKey, Bytes)]) {
    let want = tier.stats().bytes_written + blocks.iter().map(|(_, d)| d.len() as u64).sum::<u64>();
    for (k, d) in blocks {
        tier.offer(k, d).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while tier.stats().bytes_written < want {
        assert!(Instant::now() < deadline, "blocks not written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_block_comes_back_as_it_was_stored() {
    let (store, tier) = open();
    let blocks = [(key(0), data(0, 4096)), (key(1), data(1, 100))];
    store_blocks(&tier, &blocks).await;
    let names = store.keys();
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().all(|n| n.starts_with(OBJECT_PREFIX)),
        "{names:?}"
    );
    assert!(names.contains(&tier.object_name(&key(0))));
    assert_eq!(tier.get(&key(0), 4096).await.unwrap(), blocks[0].1);
    assert_eq!(tier.get(&key(1), 100).await.unwrap(), blocks[1].1);
    // Absent, or of another version: misses, not damage.
    assert!(tier.get(&key(2), 100).await.is_none());
    let other_version = BlockKey::new("dir/obj", "etag-2", 0);
    assert!(tier.get(&other_version, 4096).await.is_none());
    let s = tier.stats();
    assert_eq!((s.hits, s.misses, s.checksum_failures), (2, 2, 0));
    assert_eq!(s.bytes_read, 4196);
    assert_eq!(s.bytes_written, 4196);
}

#[tokio::test]
async fn names_differ_by_source_key_etag_and_index() {
    let (_, tier) = open();
    let other_source = SharedCache::new(
        Arc::new(MemStore::new()) as Arc<dyn ObjectStore>,
        &SharedCacheConfig {
            bucket: "cache".into(),
            source: "http://s3\nother\n262144".into(),
        },
    );
    let names = [
        tier.object_name(&key(0)),
        tier.object_name(&key(1)),
        tier.object_name(&BlockKey::new("dir/obj", "etag-2", 0)),
        tier.object_name(&BlockKey::new("dir/ob", "etag-1", 0)),
        other_source.object_name(&key(0)),
    ];
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert_eq!(names[0].len(), OBJECT_PREFIX.len() + 32);
}

#[tokio::test]
async fn a_damaged_object_or_one_of_another_version_is_not_served() {
    let (store, tier) = open();
    let block = data(7, 2048);
    store_blocks(&tier, &[(key(0), block.clone()), (key(1), block.clone())]).await;
    // A flipped data byte: the checksum catches it.
    let name = tier.object_name(&key(0));
    let mut body = store.body(&name).unwrap().to_vec();
    let last = body.len() - 1;
    body[last] ^= 0x01;
    store.insert(&name, body);
    assert!(tier.get(&key(0), 2048).await.is_none());
    // Truncated.
    let name1 = tier.object_name(&key(1));
    let body1 = store.body(&name1).unwrap();
    store.insert(&name1, body1.slice(..body1.len() - 10));
    assert!(tier.get(&key(1), 2048).await.is_none());
    assert_eq!(tier.stats().checksum_failures, 2);
    // A sound object of another ETag stored under this block's name: a miss, not data.
    let other = BlockKey::new("dir/obj", "etag-old", 0);
    let (other_id, _) = tier.inner.object(&other);
    let mut forged = block_file::header(&other_id, &block);
    forged.extend_from_slice(&block);
    store.insert(&name, forged);
    assert!(tier.get(&key(0), 2048).await.is_none());
    assert_eq!(tier.stats().hits, 0);
    // Written again from the source, it is served.
    store_blocks(&tier, &[(key(0), block.clone())]).await;
    assert_eq!(tier.get(&key(0), 2048).await.unwrap(), block);
}

#[tokio::test]
async fn a_failing_store_is_a_miss_and_is_paused_after_repeated_failures() {
    let (store, tier) = open();
    store_blocks(&tier, &[(key(0), data(0, 512))]).await;
    store.fail("get", true);
    let before = store.count("get");
    for _ in 0..FAILURES_BEFORE_PAUSE {
        assert!(tier.get(&key(0), 512).await.is_none());
    }
    assert_eq!(store.count("get") - before, FAILURES_BEFORE_PAUSE as u64);
    // Paused: no request, no offer queued.
    assert!(!tier.contains(&key(0)));
    assert!(tier.get(&key(0), 512).await.is_none());
    assert_eq!(store.count("get") - before, FAILURES_BEFORE_PAUSE as u64);
    let skipped = tier.stats().skipped;
    tier.offer(&key(1), &data(1, 512)).await;
    assert_eq!(tier.stats().skipped, skipped + 1);
    // After the pause, one read tries again, and a store that answers ends the outage.
    store.fail("get", false);
    tokio::time::sleep(FIRST_PAUSE + Duration::from_millis(50)).await;
    assert!(tier.contains(&key(0)));
    assert_eq!(tier.get(&key(0), 512).await.unwrap(), data(0, 512));
    assert_eq!(tier.inner.health.failures.load(Ordering::Relaxed), 0);
    let s = tier.stats();
    assert_eq!((s.hits, s.misses), (1, FAILURES_BEFORE_PAUSE as u64 + 1));
}

#[tokio::test]
async fn a_failing_write_is_skipped_and_flush_waits_for_the_queue() {
    let (store, tier) = open();
    store.fail("put", true);
    tier.offer(&key(0), &data(0, 512)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tier.stats().skipped == 0 {
        assert!(Instant::now() < deadline, "the failed write is not counted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(store.keys().is_empty());
    store.fail("put", false);
    // The failure above is not yet a pause (one failure): offers are written on flush.
    for i in 1..4 {
        tier.offer(&key(i), &data(i, 512)).await;
    }
    tier.flush_and_stop(Duration::from_secs(20)).await;
    assert_eq!(store.keys().len(), 3);
    // Stopped: later offers are dropped.
    tier.offer(&key(9), &data(9, 512)).await;
    assert_eq!(store.keys().len(), 3);
    assert_eq!(tier.stats().skipped, 2);
}
