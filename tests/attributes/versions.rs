//! `user.s3.versions` and `user.s3.revert`: listing an object's versions newest first, making
//! an older one current again with its metadata and tags (the mount shows it at once, even
//! after reading the newer one), and ENODATA / ENOTSUP on a bucket that was never versioned.

use super::*;

/// The lines of `user.s3.versions` as (id, last-modified, size, flags).
fn versions(path: &Path) -> Vec<(String, String, u64, String)> {
    let text = getfattr_value(path, "user.s3.versions").expect("user.s3.versions");
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "id, time, size, flags: {l:?}");
            (f[0].into(), f[1].into(), f[2].parse().unwrap(), f[3].into())
        })
        .collect()
}

#[tokio::test]
async fn lists_versions_and_reverts_a_bad_edit() {
    let served = Served::new().await;
    let bucket = &served.bucket;
    bucket.set_versioning("Enabled").await;
    let v1 = bucket
        .put_version(
            "notes.txt",
            "good\n",
            &[("color", "blue")],
            &[("team", "a")],
        )
        .await;
    sleep(Duration::from_millis(1100)); // distinct Last-Modified seconds
    let v2 = bucket
        .put_version(
            "notes.txt",
            "a bad edit, longer\n",
            &[("color", "red")],
            &[],
        )
        .await;
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = served.mount(&[]);
    let path = mount.join("notes.txt");

    let listed = versions(&path);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        (listed[0].0.as_str(), listed[0].2, listed[0].3.as_str()),
        (v2.as_str(), 19, "latest")
    );
    assert_eq!(
        (listed[1].0.as_str(), listed[1].2, listed[1].3.as_str()),
        (v1.as_str(), 5, "-")
    );
    assert!(
        listed[0].1 > listed[1].1 && listed[0].1.ends_with('Z'),
        "{listed:?}"
    );
    assert!(!list_xattr(&path)
        .iter()
        .any(|n| n.contains("versions") || n.contains("revert")));

    // Read the bad edit through the mount (page cache, attribute cache), then revert.
    assert_eq!(fs::read_to_string(&path).unwrap(), "a bad edit, longer\n");
    setfattr(&path, "user.s3.revert", &v1).expect("revert");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "good\n",
        "the mount shows the revert"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 5);
    assert_eq!(getfattr_value(&path, "user.s3.meta.color").unwrap(), "blue");
    assert_eq!(getfattr_value(&path, "user.s3.tag.team").unwrap(), "a");

    // In the bucket: a third version, current, with v1's bytes, metadata and tags.
    assert_eq!(bucket.get("notes.txt").await, b"good\n");
    assert_eq!(
        bucket
            .metadata("notes.txt")
            .await
            .get("color")
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(bucket.tags("notes.txt").await, tags(&[("team", "a")]));
    assert_eq!(bucket.version_count("notes.txt").await, 3);
    let listed = versions(&path);
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].3, "latest");
    assert!(listed[0].0 != v1 && listed[0].0 != v2);

    // A delete marker shows as such; an unknown version cannot be reverted to.
    bucket.put("other.txt", "x").await;
    sleep(Duration::from_millis(1100));
    bucket.delete("other.txt").await;
    sleep(Duration::from_millis(1100));
    bucket.put("other.txt", "y").await;
    let other = versions(&mount.join("other.txt"));
    let flags: Vec<&str> = other.iter().map(|v| v.3.as_str()).collect();
    assert_eq!(flags, ["latest", "delete-marker", "-"], "{other:?}");
    assert!(setfattr(&path, "user.s3.revert", "no-such-version").is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), "good\n");
}

#[tokio::test]
async fn unversioned_buckets_have_no_versions() {
    let served = Served::new().await;
    served.bucket.put("plain.txt", "plain").await;
    let Env {
        s3: _s3,
        bucket: _bucket,
        mount,
    } = served.mount(&[]);
    let path = mount.join("plain.txt");
    assert_errno(
        get_xattr(&path, "user.s3.versions"),
        libc::ENODATA,
        "versions",
    );
    assert_errno(
        set_xattr(&path, "user.s3.revert", b"null", 0),
        libc::ENOTSUP,
        "revert on an unversioned bucket",
    );
    assert_errno(
        get_xattr(&path, "user.s3.revert"),
        libc::ENODATA,
        "reading revert",
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "plain");
}
