//! Smoke test: mount a small bucket, list it and read a file; a missing bucket fails cleanly.

mod common;

use common::*;

#[tokio::test]
async fn lists_and_reads_a_small_bucket() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("hello.txt", b"hello world\n").await;
    bucket.put("dir/nested.txt", b"nested\n").await;

    let mount = Mount::new(&s3, bucket.name(), &[]);

    let mut names: Vec<String> = std::fs::read_dir(mount.path())
        .expect("read_dir of the mount point")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert!(
        names.contains(&"hello.txt".to_string()),
        "entries: {names:?}"
    );
    assert!(names.contains(&"dir".to_string()), "entries: {names:?}");
    assert!(mount.join("dir").is_dir(), "dir should be a directory");

    let hello = std::fs::read(mount.join("hello.txt")).expect("read hello.txt");
    assert_eq!(hello, b"hello world\n");
    let nested = std::fs::read(mount.join("dir/nested.txt")).expect("read dir/nested.txt");
    assert_eq!(nested, b"nested\n");
}

#[tokio::test]
async fn mounting_a_missing_bucket_fails() {
    let s3 = S3Server::start();
    let (code, stderr) = run_mount_expect_failure(&s3, "no-such-bucket-for-s3mount", &[]);
    assert_eq!(code, 1, "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains("s3mount: error:"),
        "stderr should have an `s3mount: error:` line:\n{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("does not exist"),
        "stderr should say the bucket does not exist:\n{stderr}"
    );
}
