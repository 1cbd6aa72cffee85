//! Interoperability with s3fs (Debian's s3fs-fuse), when it is installed: files and symlinks
//! written by s3fs read back in s3mount and the other way round.

use super::*;

#[tokio::test]
async fn files_and_symlinks_round_trip_with_s3fs() {
    if !have_s3fs() {
        eprintln!("skipped: s3fs is not installed (apt-get install s3fs)");
        return;
    }
    let Served { s3, bucket } = Served::new().await;

    // s3fs writes, s3mount reads
    {
        let s3fs = S3fsMount::start(&s3, bucket.name());
        sh(
            &s3fs.path(),
            "echo 'from s3fs' > by-s3fs.txt && chmod 600 by-s3fs.txt && \
             ln -s by-s3fs.txt s3fs-link && mkdir s3fs-dir && \
             touch -d '2022-02-02 02:02:02 UTC' by-s3fs.txt",
        );
    }
    assert_eq!(bucket.get("by-s3fs.txt").await, b"from s3fs\n");
    let mount = Mount::new(&s3, bucket.name(), &[]);
    assert_eq!(fs::read(mount.join("by-s3fs.txt")).unwrap(), b"from s3fs\n");
    let st = fs::metadata(mount.join("by-s3fs.txt")).unwrap();
    assert_eq!(st.mode(), libc::S_IFREG | 0o600, "s3fs's mode");
    assert_eq!(st.mtime(), 1_643_767_322, "s3fs's mtime");
    assert_eq!(
        fs::read_link(mount.join("s3fs-link")).unwrap(),
        Path::new("by-s3fs.txt")
    );
    assert_eq!(fs::read(mount.join("s3fs-link")).unwrap(), b"from s3fs\n");
    assert!(mount.join("s3fs-dir").is_dir());

    // s3mount writes, s3fs reads
    sh(
        mount.path(),
        "echo 'from s3mount' > by-s3mount.txt && chmod 640 by-s3mount.txt && \
         ln -s by-s3mount.txt s3mount-link && mkdir s3mount-dir && \
         touch -d '2023-03-03 03:03:03 UTC' by-s3mount.txt",
    );
    drop(mount);
    let s3fs = S3fsMount::start(&s3, bucket.name());
    let p = s3fs.path();
    assert_eq!(
        fs::read(p.join("by-s3mount.txt")).unwrap(),
        b"from s3mount\n"
    );
    let st = fs::metadata(p.join("by-s3mount.txt")).unwrap();
    assert_eq!(st.mode() & 0o7777, 0o640, "s3mount's mode seen by s3fs");
    assert_eq!(st.mtime(), 1_677_812_583, "s3mount's mtime seen by s3fs");
    assert!(fs::symlink_metadata(p.join("s3mount-link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_link(p.join("s3mount-link")).unwrap(),
        Path::new("by-s3mount.txt")
    );
    assert!(p.join("s3mount-dir").is_dir());
}
