//! The metadata cache of `--cache DIR` through a real mount against moto: after a remount,
//! `ls -l` of unchanged objects (some carrying s3fs's mode, owner and mtime headers, an s3fs
//! symlink) sends the LIST and no HEAD and shows the same attributes; an object changed by
//! another client between the mounts is asked about and shows its new attributes; a bare
//! `cat` after a remount asks S3 for the current version (one HEAD) and reads no byte from it.
//!
//! Requests are counted at a recording proxy between s3mount and moto ([`FaultProxy`]). The
//! cache directory is a temp dir: like the disk cache's tests, these need 5% of the space
//! under `TMPDIR` free (below that the cache stops writing, by design).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::common::fault_proxy::FaultProxy;
use crate::common::*;

/// Requests the proxy saw on object `key` (HEAD and GET of the object itself, not listings):
/// (HEADs, GETs).
fn probes(proxy: &FaultProxy, bucket: &str, key: &str) -> (usize, usize) {
    let path = format!("/{bucket}/{key}");
    let on = |r: &crate::common::fault_proxy::SeenRequest, m: &str| {
        r.method == m && r.target.split('?').next() == Some(path.as_str())
    };
    (
        proxy.count_where(|r| on(r, "HEAD")),
        proxy.count_where(|r| on(r, "GET")),
    )
}

/// Requests on any object (not the bucket): (HEADs, GETs), and the LISTs.
fn all_requests(proxy: &FaultProxy, bucket: &str) -> (usize, usize, usize) {
    let bucket_only = format!("/{bucket}");
    let object = |t: &str| {
        let path = t.split('?').next().unwrap_or("");
        path.starts_with(&format!("{bucket_only}/")) && path.len() > bucket_only.len() + 1
    };
    let heads = proxy.count_where(|r| r.method == "HEAD" && object(&r.target));
    let gets = proxy.count_where(|r| r.method == "GET" && object(&r.target));
    let lists = proxy.count_where(|r| r.method == "GET" && r.target.contains("list-type=2"));
    (heads, gets, lists)
}

fn mount(s3: &S3Server, proxy: &FaultProxy, bucket: &str, dir: &Path) -> Mount {
    Mount::builder(s3, bucket)
        .endpoint_url(&proxy.endpoint())
        .arg("--cache")
        .arg(dir)
        .mount()
}

/// `ls -l --full-time` of the mount's root (checked to succeed).
fn ls_l(m: &Mount) -> String {
    let out = Command::new("ls")
        .args(["-l", "--full-time"])
        .arg(m.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// What `stat` shows of each entry: name, mode, uid, gid, size, mtime (ns), ctime (ns).
fn stats(m: &Mount) -> Vec<(String, u32, u32, u32, u64, i128, i128)> {
    let mut names: Vec<String> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
    names
        .into_iter()
        .map(|n| {
            let md = std::fs::symlink_metadata(m.join(&n)).unwrap();
            let (mt, ct) = (
                ns(md.mtime(), md.mtime_nsec()),
                ns(md.ctime(), md.ctime_nsec()),
            );
            (n, md.mode(), md.uid(), md.gid(), md.size(), mt, ct)
        })
        .collect()
}

/// A bucket of plain files, small and large, files with s3fs headers, and an s3fs symlink.
async fn seed(bucket: &Bucket) {
    for i in 0..12 {
        bucket
            .put(&format!("plain{i:02}"), vec![b'p'; 100 + i * 30_000])
            .await;
    }
    for (i, mode) in ["33188", "33261", "33152"].iter().enumerate() {
        let (uid, gid) = ((1000 + i).to_string(), (2000 + i).to_string());
        let mtime = (1_600_000_000 + i as u64 * 1000).to_string();
        let meta = [
            ("mode", *mode),
            ("uid", &uid),
            ("gid", &gid),
            ("mtime", &mtime),
        ];
        let body = vec![b's'; 10 + i * 100_000];
        bucket
            .put_with(&format!("s3fs{i}"), body, &meta, &[], None)
            .await;
    }
    let link = [("mode", "41471"), ("mtime", "1600000000")];
    bucket.put_with("link", "plain00", &link, &[], None).await;
}

#[tokio::test]
async fn ls_l_after_a_remount_sends_no_head_and_shows_the_same_attributes() {
    let Served { s3, bucket } = Served::new().await;
    seed(&bucket).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-meta-");
    let mut m = mount(&s3, &proxy, bucket.name(), cache.path());
    let listed = ls_l(&m);
    let before = stats(&m);
    let cold = all_requests(&proxy, bucket.name());
    assert!(
        cold.0 + cold.1 >= 16,
        "the first ls -l asks every object: {cold:?}"
    );
    assert_eq!(before.iter().find(|s| s.0 == "s3fs1").unwrap().1, 0o100755);
    assert_eq!(before.iter().find(|s| s.0 == "s3fs2").unwrap().2, 1002);

    m.remount();
    proxy.reset_log();
    let relisted = ls_l(&m);
    let after = stats(&m);
    let warm = all_requests(&proxy, bucket.name());
    eprintln!("figures: first ls -l {cold:?}, after a remount {warm:?} (HEADs, GETs, LISTs)");
    assert_eq!(after, before, "stat after the remount");
    assert_eq!(relisted, listed, "ls -l after the remount");
    assert_eq!(warm.0, 0, "no HEAD after the remount: {}", proxy.summary());
    assert_eq!(warm.1, 0, "no GET after the remount: {}", proxy.summary());
    assert!(warm.2 >= 1, "the listing is asked for");

    // Another client changes an object (new body and mode) and another one's metadata only
    // (CopyObject onto itself: a simple upload keeps its ETag, not its Last-Modified).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let changed = [("mode", "33216"), ("uid", "4321"), ("mtime", "1700000000")];
    bucket.put_with("s3fs0", "new", &changed, &[], None).await;
    let etag1 = etag(&bucket, "s3fs1").await;
    let replaced: std::collections::HashMap<String, String> = changed
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    bucket
        .client()
        .copy_object()
        .bucket(bucket.name())
        .key("s3fs1")
        .copy_source(format!("{}/s3fs1", bucket.name()))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .set_metadata(Some(replaced))
        .send()
        .await
        .unwrap();
    eprintln!(
        "figures: s3fs1's ETag {etag1} before its copy, {} after",
        etag(&bucket, "s3fs1").await
    );
    m.remount();
    proxy.reset_log();
    let again = stats(&m);
    let mut asked = 0;
    for name in ["s3fs0", "s3fs1"] {
        let s = again.iter().find(|s| s.0 == name).unwrap();
        assert_eq!((s.1, s.2), (0o100700, 4321), "{name}'s new attributes");
        let (h, g) = probes(&proxy, bucket.name(), name);
        assert!(h + g >= 1, "{name}, changed, is asked about");
        asked += h + g;
    }
    let changed_names =
        |s: &&(String, u32, u32, u32, u64, i128, i128)| !s.0.starts_with("s3fs0") && s.0 != "s3fs1";
    let others: Vec<_> = again.iter().filter(changed_names).collect();
    let unchanged: Vec<_> = before.iter().filter(changed_names).collect();
    assert_eq!(others, unchanged);
    let warm = all_requests(&proxy, bucket.name());
    assert_eq!(
        warm.0 + warm.1,
        asked,
        "only the changed objects: {}",
        proxy.summary()
    );
    m.unmount();
}

#[tokio::test]
async fn a_bare_cat_after_a_remount_reads_nothing_from_s3_but_checks_the_version() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(700_000, 3);
    bucket.put("f.bin", &data).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-meta-");
    let mut m = mount(&s3, &proxy, bucket.name(), cache.path());
    assert!(std::fs::read(m.join("f.bin")).unwrap() == data);
    m.remount();
    proxy.reset_log();
    assert!(
        std::fs::read(m.join("f.bin")).unwrap() == data,
        "re-read differs"
    );
    let (heads, gets) = probes(&proxy, bucket.name(), "f.bin");
    eprintln!("figures: bare cat after a remount: {heads} HEADs, {gets} GETs");
    assert_eq!(gets, 0, "the bytes come from the disk cache");
    assert_eq!(heads, 1, "the current version is asked for once");

    let new = pseudo_random_bytes(700_000, 4);
    bucket.put("f.bin", &new).await;
    m.remount();
    assert!(
        std::fs::read(m.join("f.bin")).unwrap() == new,
        "stale bytes"
    );
    m.unmount();
}
