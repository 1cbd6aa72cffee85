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
