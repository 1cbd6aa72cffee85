//! `s3mount --all-buckets MOUNTPOINT` against moto: every bucket a directory at the top,
//! each behaving as a mount of that bucket (in its own region); `mkdir` and `rmdir` at the
//! top create and delete buckets; names S3 refuses, and files at the top, are EINVAL.

use std::collections::BTreeSet;
use std::fs;

use crate::common::fault_proxy::FaultProxy;
use crate::common::*;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

/// The names at the top of the mount.
fn top(mount: &Mount) -> BTreeSet<String> {
    fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The account's buckets, as the SDK sees them.
async fn buckets(s3: &S3Server) -> BTreeSet<String> {
    let out = s3.client().list_buckets().send().await.unwrap();
    out.buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect()
}

/// The region the first `method` request for `path` (without its query) was signed for.
fn signing_region(proxy: &FaultProxy, method: &str, path: &str) -> String {
    let seen = proxy.requests();
    let request = seen
        .iter()
        .find(|r| r.method == method && r.target.split('?').next() == Some(path))
        .unwrap_or_else(|| panic!("no {method} {path} among {}", proxy.summary()));
    let auth = request.header("authorization").expect("a signed request");
    // `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/s3/aws4_request, ...`
    let scope = auth.split("Credential=").nth(1).unwrap();
    scope.split('/').nth(2).unwrap().to_string()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn all_buckets_lists_creates_and_removes_buckets() {
    let s3 = S3Server::start();
    let alpha = s3.create_bucket("alpha-bucket").await;
    alpha.put("dir/a.txt", b"hello alpha\n").await;
    // A bucket in another region than the mount's --region (us-east-1).
    let config = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::EuWest1)
        .build();
    s3.client()
        .create_bucket()
        .bucket("west-bucket")
        .create_bucket_configuration(config)
        .send()
        .await
        .unwrap();
    s3.bucket("west-bucket")
        .put("w.txt", b"from the west\n")
        .await;
    // --region names where new buckets go; each existing one is reached in its own region.
    let proxy = FaultProxy::start(s3.endpoint());
    let mut mount = Mount::builder(&s3, "")
        .endpoint_url(&proxy.endpoint())
        .args([
            "--all-buckets",
            "--region",
            "eu-central-1",
            "--metadata-ttl",
            "1",
        ])
        .mount();

    // Listing: every bucket a directory; inside, each is a mount of that bucket.
    assert_eq!(top(&mount), set(&["alpha-bucket", "west-bucket"]));
    assert!(fs::metadata(mount.join("alpha-bucket")).unwrap().is_dir());
    assert_eq!(
        fs::read(mount.join("alpha-bucket/dir/a.txt")).unwrap(),
        b"hello alpha\n"
    );
    assert_eq!(
        fs::read(mount.join("west-bucket/w.txt")).unwrap(),
        b"from the west\n"
    );
    fs::write(
        mount.join("west-bucket/new.txt"),
        b"written through the mount",
    )
    .unwrap();
    assert_eq!(
        s3.bucket("west-bucket").get("new.txt").await,
        b"written through the mount"
    );
    assert_errno(
        fs::metadata(mount.join("no-such-bucket")),
        libc::ENOENT,
        "stat",
    );
    // Bucket facts on each bucket's directory (the top itself is no bucket).
    let region = |path: &str| get_xattr(&mount.join(path), "user.s3.bucket.region");
    assert_eq!(region("west-bucket").unwrap(), b"eu-west-1");
    assert_eq!(region("alpha-bucket").unwrap(), b"us-east-1");
    assert_errno(region(""), libc::ENODATA, "a fact of the top");
    assert_errno(
        region("alpha-bucket/dir"),
        libc::ENODATA,
        "a fact below a bucket",
    );
    alpha.set_versioning("Enabled").await;
    fs::write(mount.join("alpha-bucket/v.txt"), b"one").unwrap();
    fs::write(mount.join("alpha-bucket/v.txt"), b"two").unwrap();
    let versions = get_xattr(&mount.join("alpha-bucket/v.txt"), "user.s3.versions").unwrap();
    assert_eq!(
        String::from_utf8(versions).unwrap().lines().count(),
        2,
        "versions of a file in a versioned bucket"
    );
    assert_eq!(
        signing_region(&proxy, "GET", "/west-bucket/w.txt"),
        "eu-west-1"
    );
    assert_eq!(
        signing_region(&proxy, "GET", "/alpha-bucket/dir/a.txt"),
        "us-east-1"
    );
    assert_eq!(
        signing_region(&proxy, "GET", "/"),
        "eu-central-1",
        "ListBuckets"
    );

    // mkdir at the top creates a bucket; an empty bucket stays a directory.
    fs::create_dir(mount.join("gamma-bucket")).unwrap();
    assert!(buckets(&s3).await.contains("gamma-bucket"));
    let location = s3
        .client()
        .get_bucket_location()
        .bucket("gamma-bucket")
        .send()
        .await
        .unwrap();
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some("eu-central-1"),
        "created in --region"
    );
    assert!(fs::metadata(mount.join("gamma-bucket")).unwrap().is_dir());
    assert_errno(
        fs::create_dir(mount.join("gamma-bucket")),
        libc::EEXIST,
        "mkdir of an existing bucket",
    );
    fs::write(mount.join("gamma-bucket/g.txt"), b"g").unwrap();
    assert_eq!(s3.bucket("gamma-bucket").get("g.txt").await, b"g");

    // Names S3 refuses, and files at the top: EINVAL, with a log line for the name.
    for bad in ["Upper-Case", "under_score", "ab"] {
        assert_errno(fs::create_dir(mount.join(bad)), libc::EINVAL, bad);
    }
    assert_errno(
        fs::write(mount.join("file-at-top.txt"), b"x"),
        libc::EINVAL,
        "a file at the top",
    );
    assert_errno(
        std::os::unix::fs::symlink("alpha-bucket", mount.join("link-at-top")),
        libc::EINVAL,
        "a symlink at the top",
    );
    assert_errno(
        fs::set_permissions(
            mount.join("alpha-bucket"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        ),
        libc::EINVAL,
        "chmod of a bucket",
    );
    assert_errno(
        fs::metadata(mount.join("Upper-Case")),
        libc::ENOENT,
        "an invalid name looked up",
    );
    assert_eq!(
        buckets(&s3).await,
        set(&["alpha-bucket", "gamma-bucket", "west-bucket"]),
        "nothing else was created"
    );

    // A rename between two buckets is EXDEV (mv then copies and deletes by itself).
    assert_errno(
        fs::rename(
            mount.join("alpha-bucket/dir/a.txt"),
            mount.join("gamma-bucket/a.txt"),
        ),
        libc::EXDEV,
        "rename across buckets",
    );
    // A copy between buckets goes through the client (the server-side copy is refused).
    fs::copy(
        mount.join("alpha-bucket/dir/a.txt"),
        mount.join("gamma-bucket/a.txt"),
    )
    .unwrap();
    assert_eq!(
        s3.bucket("gamma-bucket").get("a.txt").await,
        b"hello alpha\n"
    );
    fs::remove_file(mount.join("gamma-bucket/a.txt")).unwrap();

    // rmdir deletes an empty bucket only.
    assert_errno(
        fs::remove_dir(mount.join("gamma-bucket")),
        libc::ENOTEMPTY,
        "rmdir of a bucket with an object",
    );
    fs::remove_file(mount.join("gamma-bucket/g.txt")).unwrap();
    fs::remove_dir(mount.join("gamma-bucket")).unwrap();
    assert_eq!(buckets(&s3).await, set(&["alpha-bucket", "west-bucket"]));
    assert_errno(
        fs::metadata(mount.join("gamma-bucket")),
        libc::ENOENT,
        "stat",
    );
    assert_eq!(top(&mount), set(&["alpha-bucket", "west-bucket"]));

    // A bucket made elsewhere shows up once the top's listing is older than the TTL.
    s3.create_bucket("late-bucket").await;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        top(&mount),
        set(&["alpha-bucket", "late-bucket", "west-bucket"])
    );

    let log = mount.stderr();
    assert!(
        log.contains("not a valid bucket name"),
        "{}",
        tail(&log, 30)
    );
    assert!(log.contains("Upper-Case"), "{}", tail(&log, 30));
    mount.unmount();
    drop(mount);
    drop(proxy);
    drop(s3);
}

#[test]
fn all_buckets_takes_no_bucket_argument() {
    let out = std::process::Command::new(s3mount_bin())
        .args(["--all-buckets", "some-bucket", "/nonexistent-mountpoint"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("give MOUNTPOINT alone"), "{err}");
}
