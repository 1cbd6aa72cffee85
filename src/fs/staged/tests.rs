//! Tests of staged files over the in-memory store.

use super::*;
use crate::data::salvage;
use crate::fs::test_fs::StagingDir;
use crate::storage::mem::MemStore;

/// A context staging in a directory of its own (checked and removed when it drops).
fn ctx(store: &Arc<MemStore>) -> (Arc<WriteCtx>, StagingDir) {
    let dir = StagingDir::new();
    let ctx = Arc::new(WriteCtx {
        store: store.clone() as Arc<dyn ObjectStore>,
        config: WriteConfig {
            part_size: 5 << 20,
            cache_dir: Some(dir.path().to_path_buf()),
            ..WriteConfig::default()
        },
    });
    (ctx, dir)
}

#[tokio::test]
async fn a_staged_edit_is_clean_after_commit_and_uploads_the_edit() {
    let store = Arc::new(MemStore::new());
    store.insert("k", "hello world");
    let meta = store.head("k").await.unwrap();
    let (ctx, _dir) = ctx(&store);
    let mut f = StagedFile::opened(ctx, 2, "k".into(), Some(&meta), Default::default());
    assert_eq!(f.sync(), Sync::Clean);
    assert!(f.commit().await.unwrap().is_none(), "nothing to upload yet");
    f.write_at(0, b"HELLO").await.unwrap();
    assert_eq!(f.sync(), Sync::Dirty);
    assert_eq!(&f.read_at(0, 100).await.unwrap()[..], b"HELLO world");
    let new = f.commit().await.unwrap().expect("uploaded");
    assert_eq!(new.size, 11);
    assert_eq!(f.sync(), Sync::Clean);
    assert_eq!(store.body("k").unwrap(), &b"HELLO world"[..]);
}

#[tokio::test]
async fn open_trunc_defers_a_flush_until_something_is_written() {
    let store = Arc::new(MemStore::new());
    store.insert("k", "old");
    let meta = store.head("k").await.unwrap();
    let (ctx, _dir) = ctx(&store);
    let mut f = StagedFile::opened(ctx, 2, "k".into(), Some(&meta), Default::default());
    f.truncate_on_open().await.unwrap();
    assert_eq!(f.sync(), Sync::Truncated);
    assert!(f.defers_flush());
    f.write_at(0, b"new").await.unwrap();
    assert!(!f.defers_flush());
}

#[tokio::test]
async fn an_unlinked_file_is_never_uploaded() {
    let store = Arc::new(MemStore::new());
    let (ctx, _dir) = ctx(&store);
    let mut f = StagedFile::created(ctx, 2, "gone".into(), Default::default()).unwrap();
    f.write_at(0, b"data").await.unwrap();
    f.unlink();
    f.write_at(4, b"more").await.unwrap();
    assert_eq!(f.sync(), Sync::Unlinked);
    assert!(f.commit().await.unwrap().is_none());
    assert!(store.body("gone").is_none());
    assert_eq!(&f.read_at(0, 100).await.unwrap()[..], b"datamore");
}

/// Appends: a staged tail, server-side copies of the whole parts, fallbacks.
mod tail {
    use super::*;

    const MIB: usize = 1 << 20;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
            .collect()
    }

    /// A store holding `len` bytes at "k", and the file opened for writing over it.
    async fn opened(len: usize) -> (Arc<MemStore>, StagingDir, StagedFile, Vec<u8>) {
        let store = Arc::new(MemStore::new());
        let old = bytes(len, 7);
        store.insert("k", old.clone());
        let meta = store.head("k").await.unwrap();
        let (ctx, dir) = ctx(&store);
        let f = StagedFile::opened(ctx, 2, "k".into(), Some(&meta), Default::default());
        (store, dir, f, old)
    }

    fn is_tail(f: &StagedFile) -> bool {
        matches!(f.content, Content::Tail { .. })
    }

    #[tokio::test]
    async fn an_append_fetches_only_the_last_partial_part_and_copies_the_rest() {
        let (store, _dir, mut f, old) = opened(12 * MIB + 100).await;
        let new = bytes(1024, 9);
        f.write_at(old.len() as u64, &new).await.unwrap();
        assert!(is_tail(&f));
        assert_eq!(
            store.bytes_served(),
            (2 * MIB + 100) as u64,
            "the partial part"
        );
        // A read of the staged tail needs nothing more from the store.
        let at = old.len() as u64 - 10;
        let got = f.read_at(at, 4096).await.unwrap();
        assert_eq!(&got[..10], &old[old.len() - 10..]);
        assert_eq!(&got[10..], &new[..]);
        assert_eq!(store.bytes_served(), (2 * MIB + 100) as u64);

        let meta = f.commit().await.unwrap().expect("uploaded");
        let mut want = old.clone();
        want.extend_from_slice(&new);
        assert_eq!(meta.size, want.len() as u64);
        assert!(store.body("k").unwrap() == want, "old bytes + new bytes");
        assert_eq!(store.count("upload_part_copy"), 2, "two whole parts copied");
        assert_eq!(store.count("upload_part"), 1);
        assert_eq!(store.bytes_received(), (2 * MIB + 100 + 1024) as u64);
        assert_eq!(
            store.bytes_served(),
            (2 * MIB + 100) as u64,
            "nothing more fetched"
        );
        let stored = store.head("k").await.unwrap();
        assert!(
            stored.metadata.contains_key("mtime"),
            "{:?}",
            stored.metadata
        );
        assert_eq!(f.sync(), Sync::Clean);
    }

    #[tokio::test]
    async fn appends_after_a_commit_copy_from_the_new_version() {
        let (store, _dir, mut f, old) = opened(10 * MIB).await;
        let mut want = old.clone();
        for round in 0..2u8 {
            let new = bytes(3 * MIB, round);
            f.write_at(want.len() as u64, &new).await.unwrap();
            want.extend_from_slice(&new);
            f.commit().await.unwrap().expect("uploaded");
            assert!(store.body("k").unwrap() == want, "round {round}");
        }
        // Round 0: parts 1-2 copied, the 3 MiB of part 3 sent. Round 1: parts 1-2 copied
        // again from the new version, part 3 (its 3 MiB from the staged tail, 2 MiB new) and
        // the 1 MiB of part 4 sent.
        assert_eq!(store.bytes_served(), 0, "the base ended on a part boundary");
        assert_eq!(store.count("upload_part_copy"), 4);
        assert_eq!(store.bytes_received(), (3 + 6) as u64 * MIB as u64);
    }

    #[tokio::test]
    async fn a_read_below_the_tail_stages_the_rest() {
        let (store, _dir, mut f, old) = opened(11 * MIB).await;
        f.write_at(old.len() as u64, b"tail").await.unwrap();
        let got = f.read_at(3, 5).await.unwrap();
        assert_eq!(&got[..], &old[3..8]);
        assert!(!is_tail(&f));
        assert_eq!(
            store.bytes_served(),
            old.len() as u64,
            "tail, then the rest once"
        );
        f.commit().await.unwrap().expect("uploaded");
        let mut want = old;
        want.extend_from_slice(b"tail");
        assert!(store.body("k").unwrap() == want);
    }

    #[tokio::test]
    async fn a_write_or_truncate_below_the_tail_falls_back_to_the_whole_file() {
        let (store, _dir, mut f, old) = opened(11 * MIB).await;
        f.write_at(old.len() as u64, b"tail").await.unwrap();
        f.truncate(old.len() as u64 - 5).await.unwrap();
        assert!(is_tail(&f), "a truncate inside the tail keeps it");
        f.write_at(1, b"XY").await.unwrap();
        assert!(!is_tail(&f));
        f.commit().await.unwrap().expect("uploaded");
        let mut want = old[..old.len() - 5].to_vec();
        want[1..3].copy_from_slice(b"XY");
        assert!(store.body("k").unwrap() == want);

        let (store, _dir, mut f, old) = opened(11 * MIB).await;
        f.write_at(old.len() as u64, b"tail").await.unwrap();
        f.truncate(MIB as u64).await.unwrap();
        assert!(!is_tail(&f));
        f.commit().await.unwrap().expect("uploaded");
        assert!(store.body("k").unwrap() == old[..MIB]);
    }

    #[tokio::test]
    async fn a_small_object_is_staged_whole() {
        let (store, _dir, mut f, old) = opened(MIB).await;
        f.write_at(old.len() as u64, b"more").await.unwrap();
        assert!(!is_tail(&f));
        assert_eq!(store.bytes_served(), MIB as u64);
        f.commit().await.unwrap().expect("uploaded");
        assert_eq!(store.count("put"), 1);
        assert_eq!(store.body("k").unwrap().len(), MIB + 4);
    }

    #[tokio::test]
    async fn a_refused_part_copy_sends_the_whole_file() {
        let (store, _dir, mut f, old) = opened(12 * MIB).await;
        store.refuse("upload_part_copy", true);
        f.write_at(old.len() as u64, b"tail").await.unwrap();
        f.commit().await.unwrap().expect("uploaded without copies");
        let mut want = old.clone();
        want.extend_from_slice(b"tail");
        assert!(store.body("k").unwrap() == want);
        assert_eq!(store.bytes_served(), old.len() as u64);
        assert_eq!(store.open_uploads(), 0, "the refused upload was aborted");
        assert!(!is_tail(&f));
    }

    #[tokio::test]
    async fn a_changed_base_fails_the_commit_and_keeps_the_other_object() {
        let (store, dir, mut f, old) = opened(12 * MIB).await;
        f.write_at(old.len() as u64, b"tail").await.unwrap();
        store.insert("k", "changed behind the mount's back");
        let err = f.commit().await.unwrap_err();
        assert_eq!(err.errno, libc::ESTALE, "{err}");
        assert_eq!(
            &store.body("k").unwrap()[..],
            b"changed behind the mount's back"
        );
        assert_eq!(store.open_uploads(), 0);
        assert!(f.save_on_close().await.is_err());
        // The tail is kept in place (not as a failed upload a retry would send whole).
        let kept = salvage::staging_files(dir.path());
        assert_eq!(kept.len(), 1, "{kept:?}");
        let data = std::fs::read(&kept[0]).unwrap();
        assert_eq!(&data[old.len()..], b"tail");
        assert!(data[10 * MIB..old.len()] == old[10 * MIB..]);
        assert!(salvage::list(dir.path()).unwrap().is_empty());
        std::fs::remove_file(&kept[0]).unwrap();
    }
}

/// Streaming uploads: parts sent from the writes mirrored in memory, the staging file kept.
mod streaming {
    use super::*;

    const PART: usize = 5 << 20;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_246_822_519).to_be_bytes()[1] ^ seed)
            .collect()
    }

    /// Bytes handed to part uploads while writing.
    fn sent(f: &StagedFile) -> u64 {
        f.stream.as_ref().map_or(0, |s| s.uploaded)
    }

    /// Writes `data` at `at` both to `f` and to the model `want`.
    async fn write(f: &mut StagedFile, want: &mut Vec<u8>, at: usize, data: &[u8]) {
        f.write_at(at as u64, data).await.unwrap();
        if want.len() < at + data.len() {
            want.resize(at + data.len(), 0);
        }
        want[at..at + data.len()].copy_from_slice(data);
    }

    #[tokio::test]
    async fn a_file_flushed_empty_then_written_streams_its_parts() {
        // `dd of=f`: create, a flush of the empty file (the first descriptor closed), writes.
        let store = Arc::new(MemStore::new());
        let (ctx, _dir) = ctx(&store);
        let mut f = StagedFile::created(ctx, 2, "f".into(), Default::default()).unwrap();
        f.commit().await.unwrap().expect("the empty object");
        let data = bytes(3 * PART + 123, 1);
        for (i, chunk) in data.chunks(1 << 20).enumerate() {
            f.write_at((i << 20) as u64, chunk).await.unwrap();
        }
        assert_eq!(sent(&f), 3 * PART as u64, "parts sent while writing");
        f.commit().await.unwrap().expect("uploaded");
        assert!(store.body("f").unwrap() == data);
        assert_eq!(store.count("upload_part"), 4);
        assert_eq!(store.bytes_received(), data.len() as u64);
    }

    #[tokio::test]
    async fn a_file_renamed_after_its_empty_commit_streams_to_its_new_key() {
        let store = Arc::new(MemStore::new());
        let (ctx, _dir) = ctx(&store);
        let mut f = StagedFile::created(ctx, 2, "f".into(), Default::default()).unwrap();
        f.commit().await.unwrap().expect("the empty object");
        f.rekey("g");
        let data = bytes(2 * PART + 5, 7);
        f.write_at(0, &data).await.unwrap();
        assert_eq!(sent(&f), 2 * PART as u64);
        f.commit().await.unwrap().expect("uploaded");
        assert!(store.body("g").unwrap() == data);
        assert_eq!(
            store.body("f").unwrap().len(),
            0,
            "the old key is left alone"
        );
    }

    #[tokio::test]
    async fn rewrites_holes_and_truncates_past_the_sent_parts_reach_the_object() {
        let store = Arc::new(MemStore::new());
        let (ctx, _dir) = ctx(&store);
        let mut f = StagedFile::created(ctx, 2, "f".into(), Default::default()).unwrap();
        let mut want = Vec::new();
        write(&mut f, &mut want, 0, &bytes(PART - 10, 2)).await;
        write(&mut f, &mut want, 100, b"rewritten inside the pending part").await;
        write(&mut f, &mut want, PART + 50, &bytes(1000, 3)).await; // a hole, then a part
        assert_eq!(sent(&f), PART as u64);
        f.truncate((PART + 500) as u64).await.unwrap();
        want.truncate(PART + 500);
        f.truncate((PART + 700) as u64).await.unwrap();
        want.resize(PART + 700, 0);
        write(&mut f, &mut want, PART + 600, b"over the zeros").await;
        // A jump of more than two parts: sent from the staging file, then mirrored again.
        write(&mut f, &mut want, 4 * PART + 7, &bytes(PART, 4)).await;
        assert_eq!(sent(&f), 5 * PART as u64);
        write(&mut f, &mut want, 5 * PART + 7, &bytes(PART / 2, 5)).await;
        f.commit().await.unwrap().expect("uploaded");
        assert!(store.body("f").unwrap() == want);
        assert_eq!(store.count("create_multipart"), 1, "one streaming upload");
        assert_eq!(store.count("upload_part"), 6);
    }

    #[tokio::test]
    async fn a_failed_part_keeps_every_byte_and_the_old_object() {
        let store = Arc::new(MemStore::new());
        store.insert("f", "old");
        let (ctx, dir) = ctx(&store);
        let mut f = StagedFile::created(ctx, 2, "f".into(), Default::default()).unwrap();
        let data = bytes(2 * PART + 9, 6);
        f.write_at(0, &data[..PART]).await.unwrap();
        store.fail("upload_part", true);
        f.write_at(PART as u64, &data[PART..]).await.unwrap();
        assert!(f.commit().await.is_err());
        assert!(f.save_on_close().await.is_err());
        assert_eq!(&store.body("f").unwrap()[..], b"old");
        assert_eq!(store.open_uploads(), 0);
        let kept = salvage::list(dir.path()).unwrap();
        assert_eq!(kept.len(), 1);
        let on_disk = std::fs::read(kept[0].dir.join(salvage::DATA_FILE)).unwrap();
        assert!(on_disk == data, "the staging file holds what was written");
        kept[0].remove().unwrap();
    }
}
