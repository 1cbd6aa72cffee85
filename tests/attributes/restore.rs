//! `user.s3.restore`: the state of an archived (GLACIER) object, a restore requested through
//! setxattr (RestoreObject), and ENODATA for an object that needs no restore; an archived
//! object refused at open with EACCES (the log naming it and the restore command) until it is
//! restored, then read normally.

use aws_sdk_s3::types::StorageClass;

use super::*;

#[tokio::test]
async fn restore_through_setfattr() {
    let served = Served::new().await;
    served.bucket.put("plain.txt", "plain").await;
    served
        .bucket
        .client()
        .put_object()
        .bucket(served.bucket.name())
        .key("cold.tar")
        .storage_class(StorageClass::Glacier)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"archived bytes",
        ))
        .send()
        .await
        .unwrap();
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = served.mount(&[]);
    let path = mount.join("cold.tar");

    assert_eq!(
        getfattr_value(&path, "user.s3.storage-class").unwrap(),
        "GLACIER"
    );
    assert_eq!(
        getfattr_value(&path, "user.s3.restore").unwrap(),
        "not-restored"
    );
    assert_errno(
        set_xattr(&path, "user.s3.restore", b"days=0", 0),
        libc::EINVAL,
        "a restore of 0 days",
    );
    setfattr(&path, "user.s3.restore", "days=7,tier=Bulk").expect("restore");
    let state = getfattr_value(&path, "user.s3.restore").unwrap();
    assert!(
        state == "in-progress" || state.starts_with("restored until 20"),
        "{state}"
    );
    let head = bucket.head("cold.tar").await.unwrap();
    assert!(head.restore().is_some(), "S3 got the RestoreObject");

    assert_errno(
        get_xattr(&mount.join("plain.txt"), "user.s3.restore"),
        libc::ENODATA,
        "a STANDARD object",
    );
}

#[tokio::test]
async fn an_archived_object_is_refused_until_restored() {
    let served = Served::new().await;
    served
        .bucket
        .client()
        .put_object()
        .bucket(served.bucket.name())
        .key("deep/cold.tar")
        .storage_class(StorageClass::DeepArchive)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"archived bytes",
        ))
        .send()
        .await
        .unwrap();
    let Env {
        s3: _s3,
        bucket: _bucket,
        mount,
    } = served.mount(&[]);
    let path = mount.join("deep/cold.tar");

    let refused = File::open(&path).map(|_| ());
    assert_errno(refused, libc::EACCES, "open of an archived object");
    let cat = tool("cat", &[path.as_os_str()]);
    assert!(!cat.status.success());
    let said = String::from_utf8_lossy(&cat.stderr);
    assert!(said.contains("Permission denied"), "cat: {said}");
    let log = mount.stderr();
    assert!(
        log.contains("deep/cold.tar") && log.contains("setfattr -n user.s3.restore -v 'days=7'"),
        "the log names the object and the command:\n{}",
        tail(&log, 20)
    );

    setfattr(&path, "user.s3.restore", "days=7").expect("restore");
    let state = getfattr_value(&path, "user.s3.restore").unwrap();
    assert!(
        state.starts_with("restored until 20"),
        "moto restores at once: {state}"
    );
    assert_eq!(fs::read(&path).unwrap(), b"archived bytes");
}
