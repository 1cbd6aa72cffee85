//! The shared tier (`--cache-xz BUCKET`) through real mounts against moto: a second mount
//! with an empty local cache reads everything through the shared bucket with no GET to the
//! source bucket; a shared bucket that fails or disappears mid-run costs no read; a damaged
//! shared object is detected by its checksum and not served; a missing cache bucket refuses
//! the mount.
//!
//! Both buckets are on one moto server behind one recording proxy ([`FaultProxy`]); GETs are
//! counted per bucket from the request paths (`/BUCKET/KEY`).

use crate::common::fault_proxy::{Fault, FaultProxy, Rule};
use crate::common::*;

const MIB: usize = 1024 * 1024;

/// GetObject requests (listings excluded) the proxy saw for objects of `bucket`.
fn object_gets(proxy: &FaultProxy, bucket: &str) -> usize {
    let prefix = format!("/{bucket}/");
    proxy.count_where(|r| {
        r.method == "GET"
            && r.target
                .split('?')
                .next()
                .and_then(|p| p.strip_prefix(prefix.as_str()))
                .is_some_and(|k| !k.is_empty())
    })
}

/// A mount of `bucket` through `proxy` sharing blocks through `shared`, with `extra` args.
fn mount(s3: &S3Server, proxy: &FaultProxy, bucket: &str, shared: &str, extra: &[&str]) -> Mount {
    Mount::builder(s3, bucket)
        .endpoint_url(&proxy.endpoint())
        .arg("--cache-xz")
        .arg(shared)
        .args(extra)
        .mount()
}

/// Lists the directory of `name` (as `ls` would before a read, so that the ETag is known
/// when the file is opened), then reads `name`.
fn list_and_read(mount: &Mount, name: &str) -> Vec<u8> {
    let path = mount.join(name);
    let _ = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    std::fs::read(path).unwrap()
}

/// A directory for the local cache on a filesystem with room (/dev/shm when there is one):
/// the disk tier pauses while its filesystem is nearly full, which a shared build machine's
/// may be.
fn roomy_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    match shm.is_dir() {
        true => tempfile::Builder::new()
            .prefix("s3mount-cache-")
            .tempdir_in(shm)
            .expect("tempdir in /dev/shm"),
        false => local_tempdir("s3mount-cache-"),
    }
}

/// Files of 3 MiB + 1000 bytes (13 blocks), 1 MiB (4 blocks) and 1000 bytes (1 block).
async fn seed(bucket: &Bucket) -> Vec<(String, Vec<u8>)> {
    let files = vec![
        (
            "big.bin".to_string(),
            pseudo_random_bytes(3 * MIB + 1000, 1),
        ),
        ("dir/mid.bin".to_string(), pseudo_random_bytes(MIB, 2)),
        ("small.txt".to_string(), pseudo_random_bytes(1000, 3)),
    ];
    for (k, v) in &files {
        bucket.put(k, v).await;
    }
    files
}

/// Reads every file through a first mount, which fills the shared bucket (written in full
/// by the time it has unmounted).
fn fill_shared(
    s3: &S3Server,
    proxy: &FaultProxy,
    src: &str,
    shared: &str,
    files: &[(String, Vec<u8>)],
) {
    let mut m = mount(s3, proxy, src, shared, &[]);
    for (k, v) in files {
        assert!(list_and_read(&m, k) == *v, "{k} differs on the first read");
    }
    m.unmount();
}

#[tokio::test]
async fn a_second_mount_reads_through_the_shared_bucket_with_no_source_get() {
    let Served { s3, bucket } = Served::new().await;
    let shared = s3.new_bucket().await;
    let files = seed(&bucket).await;
    let proxy = FaultProxy::start(s3.endpoint());
    fill_shared(&s3, &proxy, bucket.name(), shared.name(), &files);
    let cold = object_gets(&proxy, bucket.name());
    let objects = shared.list_keys("").await;
    assert_eq!(objects.len(), 18, "one object per block: {objects:?}");
    assert!(objects.iter().all(|k| k.starts_with("s3mount-blocks/v1/")));

    // Another machine: an empty local cache.
    proxy.reset_log();
    let local = roomy_tempdir();
    let mut m = mount(
        &s3,
        &proxy,
        bucket.name(),
        shared.name(),
        &["--cache", local.path().to_str().unwrap(), "--log-metrics"],
    );
    for (k, v) in &files {
        assert!(
            list_and_read(&m, k) == *v,
            "{k} differs through the shared bucket"
        );
    }
    let source_gets = object_gets(&proxy, bucket.name());
    let shared_gets = object_gets(&proxy, shared.name());
    m.unmount();
    eprintln!(
        "figures: first mount {cold} source GETs; second mount {source_gets} source GETs, \
         {shared_gets} shared GETs"
    );
    assert_eq!(source_gets, 0, "{}", proxy.summary());
    assert_eq!(shared_gets, 18);
    let log = m.stderr();
    assert!(
        log.contains("metrics: shared cache 18 hits, 0 misses"),
        "{log}"
    );

    // The blocks went into the local cache too: a remount needs neither bucket.
    proxy.reset_log();
    let mut m = mount(
        &s3,
        &proxy,
        bucket.name(),
        shared.name(),
        &["--cache", local.path().to_str().unwrap()],
    );
    for (k, v) in &files {
        assert!(
            list_and_read(&m, k) == *v,
            "{k} differs from the local cache"
        );
    }
    let gets = (
        object_gets(&proxy, bucket.name()),
        object_gets(&proxy, shared.name()),
    );
    m.unmount();
    assert_eq!(gets, (0, 0), "{}", proxy.summary());
}

#[tokio::test]
async fn a_shared_bucket_failing_or_deleted_mid_run_costs_no_read() {
    let Served { s3, bucket } = Served::new().await;
    let shared = s3.new_bucket().await;
    let files = seed(&bucket).await;
    let proxy = FaultProxy::start(s3.endpoint());
    fill_shared(&s3, &proxy, bucket.name(), shared.name(), &files);

    proxy.reset_log();
    let mut m = mount(&s3, &proxy, bucket.name(), shared.name(), &[]);
    assert!(list_and_read(&m, "small.txt") == files[2].1);
    assert_eq!(object_gets(&proxy, bucket.name()), 0, "{}", proxy.summary());

    // Every request to the shared bucket fails.
    let target: &'static str = Box::leak(format!("/{}/", shared.name()).into_boxed_str());
    let rule = proxy.fail(Rule::new("", target, Fault::Status500));
    assert!(
        list_and_read(&m, "big.bin") == files[0].1,
        "big.bin differs"
    );
    assert!(object_gets(&proxy, bucket.name()) > 0);
    proxy.remove(rule);

    // The shared bucket is gone.
    for k in shared.list_keys("").await {
        shared.delete(&k).await;
    }
    shared
        .client()
        .delete_bucket()
        .bucket(shared.name())
        .send()
        .await
        .unwrap();
    assert!(
        list_and_read(&m, "dir/mid.bin") == files[1].1,
        "mid.bin differs"
    );
    m.unmount();
    let log = m.stderr();
    assert_eq!(
        log.matches("reads fall back to the source bucket").count(),
        1,
        "the failure is logged once: {log}"
    );
}

#[tokio::test]
async fn a_damaged_shared_object_is_not_served_and_is_written_again() {
    let Served { s3, bucket } = Served::new().await;
    let shared = s3.new_bucket().await;
    let data = pseudo_random_bytes(MIB, 4);
    bucket.put("f.bin", &data).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let files = vec![("f.bin".to_string(), data.clone())];
    fill_shared(&s3, &proxy, bucket.name(), shared.name(), &files);
    let objects = shared.list_keys("").await;
    assert_eq!(objects.len(), 4);
    let victim = &objects[0];
    let sound = shared.get(victim).await;
    let mut bad = sound.clone();
    let at = bad.len() - 1000;
    bad[at] ^= 0x01;
    shared.put(victim, &bad).await;

    proxy.reset_log();
    let mut m = mount(
        &s3,
        &proxy,
        bucket.name(),
        shared.name(),
        &["--log-metrics"],
    );
    assert!(list_and_read(&m, "f.bin") == data, "damaged data served");
    let refetched = object_gets(&proxy, bucket.name());
    m.unmount();
    let log = m.stderr();
    assert!(log.contains("a damaged object was not served"), "{log}");
    assert!(
        log.contains("metrics: shared cache 3 hits, 1 misses")
            && log.contains("1 checksum failures"),
        "{log}"
    );
    assert_eq!(
        refetched,
        1,
        "one block from the source: {}",
        proxy.summary()
    );
    // The block fetched from the source replaced the damaged object.
    assert!(
        shared.get(victim).await == sound,
        "the object is not repaired"
    );
}

#[tokio::test]
async fn a_missing_cache_bucket_refuses_the_mount() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("a", b"x").await;
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .arg("--cache-xz")
        .arg("no-such-cache-bucket")
        .expect_failure();
    assert_eq!(code, 1, "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one line: {stderr}");
    assert!(
        errors[0].starts_with(
            "s3mount: error: cache bucket 'no-such-cache-bucket' (--cache-xz) \
                               does not exist"
        ),
        "{stderr}"
    );
}
