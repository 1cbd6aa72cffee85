//! `--acl`, `--requester-pays` and `--expected-bucket-owner`: seen on the requests at the test
//! proxy (every request carries the payer and owner headers; every upload the canned ACL) and
//! in the bucket (GetObjectAcl shows the public grant).

use common::fault_proxy::FaultProxy;

use super::*;

/// moto's account.
const ACCOUNT: &str = "123456789012";
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

#[tokio::test]
async fn acl_payer_and_owner_on_every_request() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("seed.txt", "seed").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .args(["--acl", "public-read", "--requester-pays"])
        .args(["--expected-bucket-owner", ACCOUNT])
        .mount();

    must_write(&mount.join("small.txt"), b"small\n"); // PutObject
    fs::set_permissions(mount.join("small.txt"), fs::Permissions::from_mode(0o600)).unwrap(); // CopyObject
    let big = pseudo_random_bytes(12 << 20, 4);
    must_write(&mount.join("big.bin"), &big); // multipart
    assert_eq!(fs::read_to_string(mount.join("seed.txt")).unwrap(), "seed");
    fs::rename(mount.join("seed.txt"), mount.join("moved.txt")).unwrap(); // CopyObject + Delete

    let seen = proxy.requests();
    assert!(seen.len() > 5, "{} requests", seen.len());
    for r in &seen {
        assert_eq!(
            r.header("x-amz-request-payer"),
            Some("requester"),
            "{} {}",
            r.method,
            r.target
        );
        assert_eq!(
            r.header("x-amz-expected-bucket-owner"),
            Some(ACCOUNT),
            "{} {}",
            r.method,
            r.target
        );
    }
    let uploads: Vec<_> = seen
        .iter()
        .filter(|r| r.is_put_object() || r.is_copy_object() || r.is_create_multipart())
        .collect();
    assert!(uploads.iter().any(|r| r.is_put_object()), "a PutObject");
    assert!(uploads.iter().any(|r| r.is_copy_object()), "a CopyObject");
    assert!(
        uploads.iter().any(|r| r.is_create_multipart()),
        "a multipart upload"
    );
    for r in uploads {
        assert_eq!(
            r.header("x-amz-acl"),
            Some("public-read"),
            "{} {}",
            r.method,
            r.target
        );
    }

    for key in ["small.txt", "big.bin", "moved.txt"] {
        let acl = bucket
            .client()
            .get_object_acl()
            .bucket(bucket.name())
            .key(key)
            .send()
            .await
            .unwrap();
        let public = acl.grants().iter().any(|g| {
            g.grantee().and_then(|e| e.uri()) == Some(ALL_USERS)
                && g.permission().map(|p| p.as_str()) == Some("READ")
        });
        assert!(public, "{key} is public-read: {:?}", acl.grants());
    }
    assert_eq!(bucket.get("big.bin").await, big);
}

#[tokio::test]
async fn without_the_flags_no_acl_and_no_payer_header() {
    let Served { s3, bucket } = Served::new().await;
    let proxy = FaultProxy::start(s3.endpoint());
    let mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .mount();
    must_write(&mount.join("f.txt"), b"x");
    let seen = proxy.requests();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert!(seen.iter().any(|r| r.is_put_object()), "{lines:#?}");
    assert!(seen.iter().all(|r| r.header("x-amz-acl").is_none()
        && r.header("x-amz-request-payer").is_none()
        && r.header("x-amz-expected-bucket-owner").is_none()));
}
