//! `--as-of TIME`: the bucket as it was at TIME, read-only. A file deleted since is there with
//! its old bytes, an overwritten one shows its older content, what was written after TIME (or
//! deleted before it) is absent, and `cp -a` of a deleted tree gives back its bytes and the
//! mode and mtime its versions carried in s3fs's headers. A bad TIME is one line, exit 2.

use super::*;

/// `t` as RFC 3339, as a user would type it.
fn rfc3339(t: SystemTime) -> String {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    DateTime::from(t).fmt(DateTimeFormat::DateTime).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn shows_the_bucket_as_it_was_and_cp_a_recovers_a_deleted_tree() {
    let served = Served::new().await;
    let bucket = &served.bucket;
    bucket.set_versioning("Enabled").await;
    let big = pseudo_random_bytes(600 << 10, 7); // more than one block
    let a_meta = [("mode", "33152"), ("mtime", "1600000000")]; // 0600
    let b_meta = [("mode", "33184"), ("mtime", "1500000000")]; // 0640
    bucket.put("notes.txt", "the old content\n").await;
    bucket
        .put_with("tree/a.txt", "a, version 1\n", &a_meta, &[], None)
        .await;
    bucket
        .put_with("tree/sub/b.bin", &big, &b_meta, &[], None)
        .await;
    bucket.put("gone.txt", "deleted later\n").await;
    bucket.put("early.txt", "deleted before TIME\n").await;
    bucket.delete("early.txt").await;
    sleep(Duration::from_millis(1100)); // distinct Last-Modified times
    let time = rfc3339(SystemTime::now());
    sleep(Duration::from_millis(1100));
    bucket.put("notes.txt", "a newer content, longer\n").await;
    bucket.put("tree/a.txt", "a, version 2\n").await;
    bucket.delete("tree/a.txt").await;
    bucket.delete("tree/sub/b.bin").await;
    bucket.delete("gone.txt").await;
    bucket.put("later.txt", "written after TIME\n").await;
    bucket.put("later-dir/x.txt", "written after TIME\n").await;
    let Env {
        s3: _s3,
        bucket: _bucket,
        mount,
    } = served.mount(&["--as-of", &time]);

    assert_eq!(names(mount.path()), ["gone.txt", "notes.txt", "tree"]);
    assert_eq!(
        fs::read_to_string(mount.join("notes.txt")).unwrap(),
        "the old content\n",
        "the older content"
    );
    assert_eq!(fs::metadata(mount.join("notes.txt")).unwrap().len(), 16);
    assert_eq!(
        fs::read_to_string(mount.join("gone.txt")).unwrap(),
        "deleted later\n"
    );
    for absent in ["later.txt", "early.txt", "later-dir", "later-dir/x.txt"] {
        assert_errno(
            fs::metadata(mount.join(absent)),
            libc::ENOENT,
            &format!("{absent} did not exist at TIME"),
        );
    }
    assert_eq!(names(&mount.join("tree")), ["a.txt", "sub"]);

    // Read-only: nothing can be written into the past.
    assert_errno(
        fs::write(mount.join("new.txt"), "x"),
        libc::EROFS,
        "creating a file",
    );
    assert_errno(
        fs::OpenOptions::new()
            .write(true)
            .open(mount.join("notes.txt")),
        libc::EROFS,
        "opening for writing",
    );
    assert_errno(
        fs::remove_file(mount.join("gone.txt")),
        libc::EROFS,
        "unlink",
    );

    // Recover the deleted tree.
    let out = new_tempdir();
    let restored = out.path().join("tree");
    let cp = tool(
        "cp",
        &[
            "-a".as_ref(),
            mount.join("tree").as_os_str(),
            restored.as_os_str(),
        ],
    );
    assert!(
        cp.status.success(),
        "cp -a: {}",
        String::from_utf8_lossy(&cp.stderr)
    );
    let a = restored.join("a.txt");
    let b = restored.join("sub/b.bin");
    assert_eq!(fs::read(&a).unwrap(), b"a, version 1\n");
    assert!(fs::read(&b).unwrap() == big, "the big file's old bytes");
    assert_eq!((mode(&a) & 0o7777, mtime(&a).0), (0o600, 1_600_000_000));
    assert_eq!((mode(&b) & 0o7777, mtime(&b).0), (0o640, 1_500_000_000));
    assert_no_panic(&mount, "after cp -a");
}

#[tokio::test]
async fn a_bad_time_is_one_line_and_exit_status_2() {
    let served = Served::new().await;
    for (time, says) in [
        ("2999-01-01T00:00:00Z", "in the future"),
        ("last tuesday", "not an RFC 3339 time"),
    ] {
        let (code, stderr) = Mount::builder(&served.s3, served.bucket.name())
            .args(["--as-of", time])
            .expect_failure();
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
