//! Mount failures, each with the contract's phrase and exit status: a missing bucket, an
//! unreachable endpoint, an unknown access key, a wrong secret, access denied, a bad mount point.

use super::*;

#[tokio::test]
async fn mount_fails_for_a_missing_bucket() {
    let s3 = S3Server::start();
    let _other = s3.new_bucket().await;
    let (code, stderr) = run_mount_expect_failure(&s3, "no-such-bucket-s3mount", &[]);
    assert_error_line(code, &stderr, "does not exist");
}

/// Nobody listens on the port: "cannot connect", and quickly (the 30 s bound is only a hang
/// guard, not a performance target).
#[tokio::test]
async fn mount_fails_fast_for_an_unreachable_endpoint() {
    let port = free_port(); // bound and released: nobody listens there
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let (code, stderr) = Mount::builder_for_endpoint(&endpoint, "some-bucket")
        .timeout(Duration::from_secs(90))
        .expect_failure();
    let took = started.elapsed();
    assert_error_line(code, &stderr, "cannot connect");
    assert!(
        took < Duration::from_secs(30),
        "an unreachable endpoint should fail fast, took {took:?}"
    );
    eprintln!("unreachable endpoint reported in {took:?}");
}

/// s3rver checks the access key (moto, by default, accepts any): an unknown access key fails
/// the mount with "credentials"; s3rver's own key mounts (control). s3rver does not verify
/// SigV4 signatures (lib/middleware/authentication.js: "Signature version 4 calculation is
/// unimplemented"), so the wrong-secret case is tested against moto with IAM auth below.
#[tokio::test]
async fn mount_fails_for_an_unknown_access_key() {
    let server = S3rverServer::start();
    let bucket = server.create_bucket("creds-bucket").await;
    bucket.put("hello.txt", b"hello").await;

    {
        let mount = Mount::builder_for_endpoint(server.endpoint(), "creds-bucket")
            .env("AWS_ACCESS_KEY_ID", S3RVER_ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3RVER_SECRET_ACCESS_KEY)
            .mount();
        assert_eq!(std::fs::read(mount.join("hello.txt")).unwrap(), b"hello");
    }

    let secret = "wrong-secret-0123456789";
    let (code, stderr) = Mount::builder_for_endpoint(server.endpoint(), "creds-bucket")
        .env("AWS_ACCESS_KEY_ID", "WRONGKEY")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .expect_failure();
    assert_error_line(code, &stderr, "credentials");
    assert!(!stderr.contains(secret), "the secret must never be printed");
}

/// moto with IAM authentication on (`/moto-api/reset-auth`, i.e. INITIAL_NO_AUTH_ACTION_COUNT
/// = 0) checks keys, signatures and policies: a wrong secret (SignatureDoesNotMatch) and an
/// unknown key fail with "credentials", a key without permissions with "access denied", and
/// the permitted key mounts (control).
#[tokio::test]
async fn mount_fails_for_a_wrong_secret_and_for_access_denied() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("hello.txt", b"hello").await;
    let keys = s3.enable_iam_auth();
    let (good_id, good_secret) = keys.allowed.clone();
    let (denied_id, denied_secret) = keys.denied.clone();

    {
        let mount = Mount::builder(&s3, bucket.name())
            .env("AWS_ACCESS_KEY_ID", &good_id)
            .env("AWS_SECRET_ACCESS_KEY", &good_secret)
            .mount();
        assert_eq!(std::fs::read(mount.join("hello.txt")).unwrap(), b"hello");
    }

    let wrong_secret = format!("{}x", &good_secret[..good_secret.len() - 1]);
    for (what, id, secret, phrase) in [
        (
            "wrong secret",
            good_id.as_str(),
            wrong_secret.as_str(),
            "credentials",
        ),
        (
            "unknown key",
            "AKIAUNKNOWNKEY000000",
            good_secret.as_str(),
            "credentials",
        ),
        (
            "no permission",
            denied_id.as_str(),
            denied_secret.as_str(),
            "access denied",
        ),
    ] {
        let (code, stderr) = Mount::builder(&s3, bucket.name())
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .expect_failure();
        eprintln!("{what}: {}", stderr.lines().last().unwrap_or(""));
        assert_error_line(code, &stderr, phrase);
        assert!(
            !stderr.contains(secret),
            "{what}: the secret must never be printed"
        );
    }
}

#[tokio::test]
async fn mount_fails_for_a_missing_mount_point() {
    let Served { s3, bucket } = Served::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .mountpoint(dir.path().join("missing"))
        .expect_failure();
    assert_error_line(code, &stderr, "does not exist");
}

#[tokio::test]
async fn mount_fails_for_a_mount_point_that_is_not_a_directory() {
    let Served { s3, bucket } = Served::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regular-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .mountpoint(&file)
        .expect_failure();
    assert_error_line(code, &stderr, "not a directory");
}

#[tokio::test]
async fn mount_fails_for_a_mount_point_already_mounted() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("still-here.txt", b"first mount").await;
    let first = Mount::new(&s3, bucket.name(), &[]);
    let (code, stderr, _) = run_s3mount_expecting_exit(s3.endpoint(), bucket.name(), first.path());
    assert_error_line(code, &stderr, "already a mount point");
    // The first mount is untouched.
    assert!(
        is_fuse_mounted(first.path()),
        "the first mount is still there"
    );
    assert_eq!(
        std::fs::read(first.join("still-here.txt")).unwrap(),
        b"first mount"
    );
}

/// The contract: a live mount shows in /proc/self/mountinfo as `fuse.s3mount`.
#[tokio::test]
async fn live_mount_shows_as_fuse_s3mount_in_mountinfo() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    assert_eq!(mount.fstype().as_deref(), Some("fuse.s3mount"));
}
