//! Lookups through a real mount, counted at the test proxy: concurrent lookups of different
//! names in one directory share one listing instead of each sending their own.

use std::sync::{Arc, Barrier};

use super::*;
use common::fault_proxy::{Fault, FaultProxy, Rule, SeenRequest};

/// ListObjectsV2 (`GET ?list-type=2`).
fn is_list(r: &SeenRequest) -> bool {
    r.method == "GET" && r.target.contains("list-type=2")
}

/// 16 threads open and read 16 different, never looked-up files of directory `dir` (relative
/// to the mount, "" for its root) at once, check every byte, and assert that the server saw
/// two LIST requests at most meanwhile: the first lookup asks about its own name alone (a LIST
/// of `name/` beside the GET of its first block, one round trip, as a lone lookup should); a
/// second lookup that misses lists the directory, and every other one shares that listing.
fn sixteen_opens(mount: &Mount, proxy: &FaultProxy, dir: &str, files: &[(String, Vec<u8>)]) {
    let barrier = Arc::new(Barrier::new(files.len()));
    let threads: Vec<_> = files
        .iter()
        .map(|(name, bytes)| {
            let path = mount.join(dir).join(name);
            let (barrier, bytes, name) = (barrier.clone(), bytes.clone(), name.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let got = fs::read(&path).unwrap_or_else(|e| panic!("read {name}: {e}"));
                assert!(
                    got == bytes,
                    "{name}: {} bytes, not the object's",
                    got.len()
                );
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a reader failed");
    }
    let lists = proxy.count_where(is_list);
    eprintln!(
        "{lists} LIST for 16 concurrent opens in {dir:?}\n{}",
        proxy.summary()
    );
    assert!(
        lists <= 2,
        "{lists} LIST requests for 16 concurrent lookups in one directory:\n{}",
        proxy.summary()
    );
}

fn sixteen_files(dir: &str) -> Vec<(String, Vec<u8>)> {
    (0..16)
        .map(|i| {
            let len = 1000 + i * 3000;
            (
                format!("f{i:02}.bin"),
                pseudo_random_bytes(len, i as u64 + 7),
            )
        })
        .map(|(n, b)| (format!("{dir}{n}"), b))
        .collect()
}

#[tokio::test]
async fn concurrent_lookups_in_one_directory_share_one_listing() {
    let Served { s3, bucket } = Served::new().await;
    let objects = sixteen_files("d/");
    seed(&bucket, &objects).await;
    bucket.put("d/sub/other", b"x").await;
    let proxy = FaultProxy::start(s3.endpoint());
    // Every request takes a while, as against a real S3: the lookups overlap.
    proxy.fail(Rule::new("", "", Fault::Latency(Duration::from_millis(30))));
    let mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .mount();
    assert!(fs::metadata(mount.join("d")).unwrap().is_dir());
    proxy.reset_log();
    let files: Vec<_> = objects
        .into_iter()
        .map(|(k, b)| (k.trim_start_matches("d/").to_string(), b))
        .collect();
    sixteen_opens(&mount, &proxy, "d", &files);
}

#[tokio::test]
async fn concurrent_lookups_at_the_root_of_a_fresh_mount_share_one_listing() {
    let Served { s3, bucket } = Served::new().await;
    let objects = sixteen_files("");
    seed(&bucket, &objects).await;
    let proxy = FaultProxy::start(s3.endpoint());
    proxy.fail(Rule::new("", "", Fault::Latency(Duration::from_millis(30))));
    let mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .mount();
    proxy.reset_log();
    sixteen_opens(&mount, &proxy, "", &objects);
}

/// 16 files held open past the TTL and `fstat`ed at once: their revalidations share one
/// listing of the directory (which tells that each object is unchanged), instead of each
/// sending a LIST of its name and a HEAD.
#[tokio::test]
async fn concurrent_revalidations_in_one_directory_share_one_listing() {
    let Served { s3, bucket } = Served::new().await;
    let objects = sixteen_files("d/");
    seed(&bucket, &objects).await;
    let proxy = FaultProxy::start(s3.endpoint());
    proxy.fail(Rule::new("", "", Fault::Latency(Duration::from_millis(30))));
    let mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .args(["--metadata-ttl", "1"])
        .mount();
    let (opened, go) = (Arc::new(Barrier::new(17)), Arc::new(Barrier::new(17)));
    let threads: Vec<_> = objects
        .iter()
        .map(|(key, bytes)| {
            let path = mount.join(key);
            let (opened, go, bytes) = (opened.clone(), go.clone(), bytes.clone());
            std::thread::spawn(move || {
                let mut f = File::open(&path).unwrap();
                let mut got = Vec::new();
                f.read_to_end(&mut got).unwrap();
                assert!(got == bytes, "{}: first read", path.display());
                opened.wait();
                go.wait();
                assert_eq!(f.metadata().unwrap().len(), bytes.len() as u64);
                got.clear();
                f.seek(SeekFrom::Start(0)).unwrap();
                f.read_to_end(&mut got).unwrap();
                assert!(got == bytes, "{}: read after the TTL", path.display());
            })
        })
        .collect();
    opened.wait();
    sleep(Duration::from_millis(1600)); // past the TTL of every attribute
    proxy.reset_log();
    go.wait();
    for t in threads {
        t.join().expect("a reader failed");
    }
    let (lists, heads) = (
        proxy.count_where(is_list),
        proxy.count_where(|r| r.method == "HEAD"),
    );
    eprintln!(
        "{lists} LIST, {heads} HEAD for 16 concurrent revalidations\n{}",
        proxy.summary()
    );
    assert!(
        lists <= 2 && heads <= 1,
        "{lists} LIST and {heads} HEAD for 16 revalidations in one directory:\n{}",
        proxy.summary()
    );
}

/// What the proxy adds to each request in the tests of round trips.
const LATENCY: Duration = Duration::from_millis(50);

/// The requests of each kind the server saw, as "N LIST, N GET, N HEAD".
fn by_kind(proxy: &FaultProxy) -> (usize, usize, usize) {
    let lists = proxy.count_where(is_list);
    let gets = proxy.count_where(|r| r.method == "GET") - lists;
    (lists, gets, proxy.count_where(|r| r.method == "HEAD"))
}

/// Opens `rel` in `mount` and reads its first byte; returns the requests this cost, and the
/// time it took.
fn first_byte(
    mount: &Mount,
    proxy: &FaultProxy,
    rel: &str,
    want: u8,
) -> ((usize, usize, usize), Duration) {
    proxy.reset_log();
    let start = Instant::now();
    let mut f = File::open(mount.join(rel)).unwrap_or_else(|e| panic!("open {rel}: {e}"));
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    let took = start.elapsed();
    assert_eq!(b[0], want, "first byte of {rel}");
    let counts = by_kind(proxy);
    eprintln!(
        "{rel}: {counts:?} (LIST, GET, HEAD) in {took:?}\n{}",
        proxy.summary()
    );
    (counts, took)
}

/// Requests per open on a fresh mount: a file at the root costs one LIST (of `name/`: is it a
/// directory?) and one GET (of its first block, which the read then finds), sent together;
/// each directory above a file costs the same pair, and a directory with a marker one HEAD
/// more (of the marker, for its mode and owner), sent with the pair once its parent has a
/// marker too.
#[tokio::test]
async fn an_open_costs_one_list_and_one_get_per_path_component() {
    let Served { s3, bucket } = Served::new().await;
    let body = pseudo_random_bytes(3 * BLOCK, 5);
    for key in ["top.bin", "a/b/c/file.bin", "m/n/o/file.bin"] {
        bucket.put(key, &body).await;
    }
    for marker in ["m/", "m/n/", "m/n/o/"] {
        bucket.put(marker, b"").await;
    }
    let proxy = FaultProxy::start(s3.endpoint());
    proxy.fail(Rule::new("", "", Fault::Latency(LATENCY)));
    let mut mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .mount();
    let (top, one) = first_byte(&mount, &proxy, "top.bin", body[0]);
    assert_eq!(top, (1, 1, 0));
    mount.remount();
    let (deep, plain) = first_byte(&mount, &proxy, "a/b/c/file.bin", body[0]);
    assert_eq!(deep, (4, 4, 0));
    mount.remount();
    // `m/`'s HEAD follows its LIST (the root has no marker); `n/` and `o/`'s go with theirs,
    // and so does a HEAD of `file.bin/`, which finds nothing.
    let (marked, markers) = first_byte(&mount, &proxy, "m/n/o/file.bin", body[0]);
    assert_eq!(marked, (4, 4, 4));
    // For the reader only (not asserted): every request waits LATENCY at the proxy, so the
    // times tell the round trips in a row (expected: 1, 4 and 5).
    let trips = |t: Duration| t.as_secs_f64() / one.as_secs_f64();
    eprintln!(
        "round trips, in units of the root file's open: a/b/c/file.bin {:.1}, m/n/o/file.bin {:.1}",
        trips(plain),
        trips(markers)
    );
}
