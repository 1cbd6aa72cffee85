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
