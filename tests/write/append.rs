//! Appending to a large object without fetching it: the whole parts are UploadPartCopy at the
//! server (counted at the test proxy, with their ranges and If-Match), only the last partial
//! part is fetched and sent again with the new bytes; the result reads back through the open
//! mount, after close and after a remount, with the s3fs headers carried over; a read of the
//! old bytes while the file is open falls back to staging it whole.

use super::*;

/// s3fs's `x-amz-meta-mode` of a regular file with permissions 0640.
const MODE_0640: &str = "33184";

/// The bytes of GET bodies the proxy let through, from their `Range` headers (every GET the
/// mount makes is ranged; one without a range fails the test).
fn get_bytes(proxy: &FaultProxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.target.contains("tagging"))
        .map(|r| {
            let range = r
                .header("range")
                .unwrap_or_else(|| panic!("a GET without a range: {}", r.target));
            let (a, b) = range
                .trim_start_matches("bytes=")
                .split_once('-')
                .expect("bytes=A-B");
            b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1
        })
        .sum()
}

/// Reads `len` bytes at `offset` through a new handle.
fn read_range(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

async fn seeded(bucket: &Bucket, key: &str, len: usize) -> Vec<u8> {
    let old = pseudo_random_bytes(len, 16);
    let meta = [
        ("mode", MODE_0640),
        ("uid", "1234"),
        ("gid", "4321"),
        ("mtime", "1600000000"),
    ];
    bucket.put_with(key, &old, &meta, &[], None).await;
    old
}

#[tokio::test]
async fn an_append_copies_the_whole_parts_and_fetches_only_the_last_partial_one() {
    let Served { s3, bucket } = Served::new().await;
    let tail = 300 << 10;
    let old = seeded(&bucket, "big.log", 4 * PART + tail).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-append-");
    let mut mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG],
    );
    let path = mount.join("big.log");
    assert_eq!(fs::metadata(&path).unwrap().len(), old.len() as u64);
    proxy.reset_log();

    let new = pseudo_random_bytes(1024, 17);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&new).unwrap();
    // Read-your-writes while open, from the staged tail.
    let at = (old.len() - 100) as u64;
    let seen = read_range(&path, at, 100 + new.len());
    assert_same_bytes(&seen[..100], &old[old.len() - 100..], "old end while open");
    assert_same_bytes(&seen[100..], &new, "new bytes while open");
    drop(f);

    let mut want = old.clone();
    want.extend_from_slice(&new);
    assert_same_bytes(&bucket.get("big.log").await, &want, "big.log in S3");
    let requests = proxy.requests();
    let copies: Vec<_> = requests
        .iter()
        .filter(|r| r.is_upload_part_copy())
        .collect();
    assert_eq!(copies.len(), 4, "parts 1-4 copied:\n{}", proxy.summary());
    for c in &copies {
        let range = c.header("x-amz-copy-source-range").unwrap_or_default();
        assert!(range.starts_with("bytes="), "{range:?}");
        assert!(
            c.header("x-amz-copy-source-if-match").is_some(),
            "a copy conditional on the source's ETag: {:?}",
            c.headers
        );
    }
    let sent: Vec<usize> = requests
        .iter()
        .filter(|r| r.is_upload_part() || r.is_put_object())
        .map(|r| r.body_len)
        .collect();
    assert_eq!(sent, vec![tail + new.len()], "{}", proxy.summary());
    let fetched = get_bytes(&proxy);
    assert!(
        fetched <= PART,
        "{fetched} bytes fetched:\n{}",
        proxy.summary()
    );
    assert_eq!(fetched, tail, "the last partial part");
    eprintln!(
        "append: {} requests, {fetched} bytes fetched\n{}",
        requests.len(),
        proxy.summary()
    );

    // The s3fs headers are carried over; mtime moved.
    let meta = bucket.metadata("big.log").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some(MODE_0640),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("1234"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("gid").map(String::as_str),
        Some("4321"),
        "{meta:?}"
    );
    let mtime: f64 = meta["mtime"].parse().unwrap();
    assert!(mtime > 1_600_000_000.0, "{meta:?}");

    // After close, and after a remount.
    assert_same_bytes(&fs::read(&path).unwrap(), &want, "after close");
    mount.remount();
    let st = fs::metadata(&path).unwrap();
    assert_eq!(st.len(), want.len() as u64);
    assert_eq!(st.mtime(), mtime as i64, "stat shows the stored mtime");
    assert_eq!(st.mode() & 0o7777, 0o640);
    assert_eq!((st.uid(), st.gid()), (1234, 4321));
    assert_same_bytes(&fs::read(&path).unwrap(), &want, "after a remount");
}

#[tokio::test]
async fn a_read_of_the_old_bytes_while_appending_stages_the_whole_file() {
    let Served { s3, bucket } = Served::new().await;
    let old = seeded(&bucket, "b.log", 2 * PART + 10).await;
    let mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);
    let path = mount.join("b.log");
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"one\n").unwrap();
    assert_same_bytes(&read_range(&path, 0, 4096), &old[..4096], "head while open");
    f.write_all(b"two\n").unwrap();
    drop(f);
    sh(mount.path(), "echo three >> b.log");
    let mut want = old;
    want.extend_from_slice(b"one\ntwo\nthree\n");
    assert_same_bytes(&bucket.get("b.log").await, &want, "b.log in S3");
    assert_same_bytes(&fs::read(&path).unwrap(), &want, "b.log through the mount");
}
