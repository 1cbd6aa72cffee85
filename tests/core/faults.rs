//! The core over `FaultStore<MemStore>`: what a failing store does to flush and read.

use std::sync::Arc;

use s3mount::data::salvage::{self, staging_files};
use s3mount::storage::fault::{FaultStore, Op, Rule};
use s3mount::storage::mem::MemStore;
use s3mount::storage::{ObjectStore, StoreError};

use super::{fs_over, injected, lookup_root, pattern, read_all, PART};

fn stores() -> (Arc<MemStore>, Arc<FaultStore<MemStore>>) {
    let mem = Arc::new(MemStore::new());
    let faulty = Arc::new(FaultStore::new(mem.clone()));
    (mem, faulty)
}

#[tokio::test]
async fn a_failed_put_reaches_flush_and_the_next_put_saves() {
    let (mem, faulty) = stores();
    mem.insert("f", "old");
    let fs = fs_over(faulty.clone() as Arc<dyn ObjectStore>);
    let rule = faulty.add(Rule::fail(Op::Put, injected).nth(1));
    let ino = lookup_root(&fs, "f").await;
    let (fh, _) = fs
        .open(ino, libc::O_WRONLY | libc::O_TRUNC, 0)
        .await
        .unwrap();
    fs.write(fh, 0, b"new content").await.unwrap();
    let err = fs.flush(fh, 0).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    assert_eq!(faulty.fired(rule), 1);
    assert_eq!(
        mem.body("f").unwrap(),
        &b"old"[..],
        "the old object is intact"
    );
    // The rule is spent: the next flush saves the same bytes.
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    assert_eq!(mem.body("f").unwrap(), &b"new content"[..]);
    assert_eq!(faulty.count(Op::Put), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_complete_multipart_reaches_flush_and_leaves_no_upload() {
    let (mem, faulty) = stores();
    let old = pattern(1000, 1);
    mem.insert("big", old.clone());
    let fs = fs_over(faulty.clone() as Arc<dyn ObjectStore>);
    faulty.add(Rule::fail(Op::CompleteMultipart, injected));
    let ino = lookup_root(&fs, "big").await;
    let (fh, _) = fs
        .open(ino, libc::O_WRONLY | libc::O_TRUNC, 0)
        .await
        .unwrap();
    let data = pattern(2 * PART as usize + 123, 2);
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, chunk).await.unwrap();
    }
    let err = fs.flush(fh, 0).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    assert!(faulty.count(Op::CompleteMultipart) >= 1);
    assert_eq!(
        mem.body("big").unwrap(),
        &old[..],
        "the old object is intact"
    );
    assert_eq!(mem.open_uploads(), 0, "the failed upload is aborted");
    // Once the store recovers, the same bytes are saved.
    faulty.clear();
    fs.flush(fh, 0).await.unwrap();
    fs.release(fh).await;
    assert!(
        mem.body("big").unwrap() == data,
        "the new bytes are saved whole"
    );
    assert_eq!(mem.open_uploads(), 0);
}

#[tokio::test]
async fn a_failing_get_gives_eio_to_read_and_does_not_stick() {
    let (mem, faulty) = stores();
    let body = pattern(3 << 20, 3);
    mem.insert("f", body.clone());
    let fs = fs_over(faulty.clone() as Arc<dyn ObjectStore>);
    let ino = lookup_root(&fs, "f").await;
    let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
    let get = faulty.add(Rule::fail(Op::GetRange, injected));
    let start = faulty.add(Rule::fail(Op::HeadAndStart, injected));
    // Past whatever the lookup may have fetched: this needs a GET.
    let err = fs.read(fh, 2 << 20, 4096).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    assert!(faulty.fired(get) + faulty.fired(start) >= 1);
    faulty.clear();
    assert!(read_all(&fs, fh, body.len()).await.unwrap() == body);
    fs.release(fh).await;
}

#[tokio::test]
async fn a_broken_get_body_never_reads_as_other_bytes() {
    let (mem, faulty) = stores();
    let body = pattern(2 << 20, 4);
    mem.insert("f", body.clone());
    let fs = fs_over(faulty.clone() as Arc<dyn ObjectStore>);
    let ino = lookup_root(&fs, "f").await;
    let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.unwrap();
    let cut = || StoreError::other("connection reset");
    faulty.add(Rule::break_body(Op::GetRange, 100_000, cut).times(3));
    faulty.add(Rule::break_body(Op::HeadAndStart, 1000, cut).times(3));
    // Every read returns exactly the object's bytes or EIO (how many fail depends on whether
    // the core retries a broken body; either is allowed).
    for off in (0..body.len()).step_by(256 << 10) {
        match fs.read(fh, off as u64, 128 << 10).await {
            Ok(got) => assert!(
                got[..] == body[off..off + got.len()],
                "read at {off} returned other bytes"
            ),
            Err(e) => assert_eq!(e.errno, libc::EIO, "read at {off}"),
        }
    }
    faulty.clear();
    assert!(read_all(&fs, fh, body.len()).await.unwrap() == body);
    fs.release(fh).await;
}

/// A file closed after its upload failed leaves nothing in the staging directory but its
/// kept copy: `failed-uploads/ID/data`, byte for byte, with a manifest naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_at_close_is_kept_and_leaves_no_staging_file() {
    let (mem, faulty) = stores();
    mem.insert("big", "old");
    let fs = fs_over(faulty.clone() as Arc<dyn ObjectStore>);
    faulty.add(Rule::fail(Op::CompleteMultipart, injected));
    faulty.add(Rule::fail(Op::Put, injected));
    let ino = lookup_root(&fs, "big").await;
    let (fh, _) = fs
        .open(ino, libc::O_WRONLY | libc::O_TRUNC, 0)
        .await
        .unwrap();
    let data = pattern(PART as usize + 77, 5);
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, chunk).await.unwrap();
    }
    assert_eq!(fs.flush(fh, 0).await.unwrap_err().errno, libc::EIO);
    fs.release(fh).await;
    assert_eq!(mem.body("big").unwrap(), &b"old"[..], "old object intact");

    let staging = fs.staging.0.path();
    assert_eq!(staging_files(staging), Vec::<std::path::PathBuf>::new());
    let entries = salvage::list(staging).unwrap();
    assert_eq!(entries.len(), 1, "one kept copy");
    let manifest = entries[0].manifest.as_ref().unwrap();
    assert_eq!(
        (manifest.key.as_str(), manifest.size),
        ("big", data.len() as u64)
    );
    assert!(std::fs::read(entries[0].data_path()).unwrap() == data);
}
