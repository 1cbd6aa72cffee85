//! Failures reach the application, and nothing is lost: 500s on PUT / UploadPart / Complete
//! and a stopped server reach close/fsync with the old object intact and no multipart upload
//! left.

use super::*;

/// How long a background retry (release after a failed close) may take: 5 attempts with
/// exponential backoff, several requests.
const RETRY_WINDOW: Duration = Duration::from_secs(90);

#[tokio::test]
async fn failed_put_gives_eio_on_close_and_fsync_and_keeps_the_old_object() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("f.txt", b"old\n").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-wp-local-");
    let mount = mount_via(&s3, &bucket, &proxy, &cache, &["--debug"]);
    let path = mount.join("f.txt");

    let rule = proxy.fail(Rule::new("PUT", "", Fault::Status500));
    let err = write_file(&path, b"new\n").expect_err("close must report the failed upload");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    assert!(
        proxy.faulted() >= 5,
        "the upload was retried:\n{}",
        proxy.summary()
    );
    assert_eq!(
        bucket.get("f.txt").await,
        b"old\n",
        "previous object intact"
    );
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());

    // release retries once more, then keeps the bytes and says where
    let log = wait_for_log(&mount, "kept at", 0, RETRY_WINDOW);
    let kept = kept_path(&log).expect("path of the kept staging file in the log");
    assert_eq!(
        fs::read(&kept).unwrap_or_default(),
        b"new\n",
        "the written bytes are kept at {}",
        kept.display()
    );
    assert!(
        kept.starts_with(cache.path()),
        "staging files live under --cache-dir {}, not {}",
        cache.path().display(),
        kept.display()
    );
    assert_eq!(bucket.get("f.txt").await, b"old\n", "still intact");
    let _ = fs::remove_file(&kept);

    proxy.remove(rule);
    must_write(&path, b"newer\n");
    assert_eq!(
        bucket.get("f.txt").await,
        b"newer\n",
        "works again once the fault is gone"
    );

    // fsync reports it too
    let before_logs = log_count(&mount, "kept at");
    let rule = proxy.fail(Rule::new("PUT", "", Fault::Status503));
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(b"never committed\n").unwrap();
    let err = f
        .sync_all()
        .expect_err("fsync must report the failed upload");
    assert_eq!(errno(&err), libc::EIO, "fsync: {err}");
    assert_eq!(bucket.get("f.txt").await, b"newer\n");
    let err = close(f).expect_err("close after a failed fsync, still failing");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    wait_for_log(&mount, "kept at", before_logs, RETRY_WINDOW);
    proxy.remove(rule);
    assert_eq!(bucket.get("f.txt").await, b"newer\n");
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());
}

#[tokio::test]
async fn failed_multipart_upload_is_aborted_and_the_old_object_kept() {
    let Served { s3, bucket } = Served::new().await;
    let old = pseudo_random_bytes(PART + MIB, 1);
    bucket.put("big.bin", &old).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-wp-local-");
    let mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG, "--debug"],
    );
    let path = mount.join("big.bin");
    let new = pseudo_random_bytes(2 * PART + MIB, 2);

    // every UploadPart fails
    let rule = proxy.fail(Rule::new("PUT", "partNumber=", Fault::Status500));
    let err = write_file(&path, &new).expect_err("close must fail");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    assert_same_bytes(
        &bucket.get("big.bin").await,
        &old,
        "old object after failed parts",
    );
    wait_for_log(&mount, "kept at", 0, RETRY_WINDOW);
    assert_eq!(
        multipart_uploads(&bucket).await,
        Vec::<String>::new(),
        "aborted; requests:\n{}",
        proxy.summary()
    );
    assert!(proxy.count_where(|r| r.is_abort_multipart()) >= 1);
    proxy.remove(rule);

    // CompleteMultipartUpload fails
    let before_logs = log_count(&mount, "kept at");
    let rule = proxy.fail(Rule::new("POST", "uploadId=", Fault::Status500));
    let err = write_file(&path, &new).expect_err("close must fail");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    assert_same_bytes(
        &bucket.get("big.bin").await,
        &old,
        "old object after failed complete",
    );
    wait_for_log(&mount, "kept at", before_logs, RETRY_WINDOW);
    assert_eq!(
        multipart_uploads(&bucket).await,
        Vec::<String>::new(),
        "aborted; requests:\n{}",
        proxy.summary()
    );
    proxy.remove(rule);

    // and it works once the server behaves
    must_write(&path, &new);
    assert_same_bytes(
        &bucket.get("big.bin").await,
        &new,
        "after the faults are gone",
    );
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());
}

#[tokio::test]
async fn transient_faults_are_ridden_out() {
    let Served { s3, bucket } = Served::new().await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-wp-local-");
    let mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG],
    );

    proxy.fail(Rule::new("PUT", "", Fault::Status503).times(2));
    must_write(&mount.join("small.txt"), b"small");
    assert_eq!(bucket.get("small.txt").await, b"small");

    proxy.fail(Rule::new("PUT", "partNumber=", Fault::ResetBeforeResponse).times(1));
    proxy.fail(Rule::new("PUT", "partNumber=", Fault::Status500).times(1));
    proxy.fail(Rule::new("POST", "uploads", Fault::Status503).times(1));
    proxy.fail(Rule::new("PUT", "", Fault::Latency(Duration::from_millis(300))).times(2));
    let data = pseudo_random_bytes(2 * PART + 11, 5);
    must_write(&mount.join("big.bin"), &data);
    assert_same_bytes(&bucket.get("big.bin").await, &data, "big.bin");
    assert_eq!(proxy.faulted(), 7, "every rule fired:\n{}", proxy.summary());
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_stopped_server_gives_eio_and_loses_nothing() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("f.txt", b"old\n").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-wp-local-");
    let mut mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG, "--debug"],
    );

    let mut f = File::create(mount.join("f.txt")).unwrap();
    f.write_all(b"written while the server is down\n").unwrap();
    proxy.set_offline(true);
    let err = close(f).expect_err("close must fail while the server is down");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    let log = wait_for_log(&mount, "kept at", 0, RETRY_WINDOW);
    let kept = kept_path(&log).expect("kept path in the log");
    assert_eq!(
        fs::read(&kept).unwrap_or_default(),
        b"written while the server is down\n"
    );
    let _ = fs::remove_file(&kept);
    proxy.set_offline(false);
    assert_eq!(
        bucket.get("f.txt").await,
        b"old\n",
        "previous object intact"
    );
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());

    // mid-way through a multipart upload
    let before_logs = log_count(&mount, "kept at");
    let mut f = File::create(mount.join("big.bin")).unwrap();
    f.write_all(&pseudo_random_bytes(PART + MIB, 8)).unwrap();
    proxy.set_offline(true);
    f.write_all(&pseudo_random_bytes(MIB, 9)).unwrap();
    let err = close(f).expect_err("close must fail while the server is down");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    wait_for_log(&mount, "kept at", before_logs, RETRY_WINDOW);
    proxy.set_offline(false);
    assert!(!bucket.exists("big.bin").await, "no object appeared");

    // back to normal
    must_write(&mount.join("f.txt"), b"after\n");
    assert_eq!(bucket.get("f.txt").await, b"after\n");

    // The upload was created before the server went away, so its abort could not reach the
    // server then; once the server is back (at the latest when the mount ends) it must not be
    // left behind.
    let left_while_mounted = multipart_uploads(&bucket).await;
    let status = mount.unmount();
    assert!(
        status.is_some_and(|s| s.success()),
        "unmount: {status:?}\n{}",
        mount.stderr()
    );
    assert_eq!(
        multipart_uploads(&bucket).await,
        Vec::<String>::new(),
        "multipart upload left behind after the server came back and the mount ended \
         (while mounted: {left_while_mounted:?}); s3mount's log about it:\n{}",
        mount
            .stderr()
            .lines()
            .filter(|l| l.contains("abort") || l.contains("kept at") || l.contains("upload failed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
