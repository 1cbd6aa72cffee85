//! `user.s3.presigned-url`: a URL that curl fetches the object's bytes with, signed for
//! `--presign-expiry`, and never listed (so `getfattr -d` and `cp --preserve` skip it).

use super::*;

#[tokio::test]
async fn curl_of_the_presigned_url_returns_the_bytes() {
    let served = Served::new().await;
    let body = pseudo_random_bytes(70_000, 9);
    served.bucket.put("dir/data file.bin", &body).await;
    let Env {
        s3,
        bucket: _bucket,
        mount,
    } = served.mount(&["--presign-expiry", "120"]);
    let path = mount.join("dir/data file.bin");

    let url = getfattr_value(&path, "user.s3.presigned-url").expect("a presigned URL");
    assert!(url.starts_with(s3.endpoint()), "{url}");
    assert!(
        url.contains("X-Amz-Expires=120"),
        "lifetime from the flag: {url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let out = tool("curl", &["-sS".as_ref(), "-f".as_ref(), url.as_ref()]);
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, body, "curl got the object's bytes");

    // Signed with the mount's credentials (the test's static key), for this object.
    assert!(url.contains("X-Amz-Credential=test%2F"), "{url}");
    assert!(url.contains("/dir/data%20file.bin?"), "{url}");

    // Not listed; a directory has none.
    assert!(!list_xattr(&path).iter().any(|n| n.contains("presigned")));
    assert_errno(
        get_xattr(&mount.join("dir"), "user.s3.presigned-url"),
        libc::ENODATA,
        "presigned URL of a directory",
    );
    assert_errno(
        set_xattr(&path, "user.s3.presigned-url", b"x", 0),
        libc::EPERM,
        "writing the presigned URL",
    );
}

#[tokio::test]
async fn a_file_written_through_the_mount_is_presigned_after_upload() {
    let Env {
        s3: _s3,
        bucket: _bucket,
        mount,
    } = Env::new().await;
    let path = mount.join("new.txt");
    must_write(&path, b"written here\n");
    let url = getfattr_value(&path, "user.s3.presigned-url").expect("a presigned URL");
    assert!(
        url.contains("X-Amz-Expires=3600"),
        "default lifetime: {url}"
    );
    let out = tool("curl", &["-sS".as_ref(), "-f".as_ref(), url.as_ref()]);
    assert_eq!(out.stdout, b"written here\n");
}
