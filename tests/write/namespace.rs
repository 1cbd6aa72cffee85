//! The namespace: unlink, mkdir/rmdir markers, rename (file, tree, onto a file,
//! RENAME_NOREPLACE/RENAME_EXCHANGE); symlinks stored the s3fs way, hard links refused.

use super::*;

#[tokio::test]
async fn unlink_deletes_the_key() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("gone.txt", b"x").await;
    bucket.put("dir/inner.txt", b"y").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::remove_file(mount.join("gone.txt")).unwrap();
    fs::remove_file(mount.join("dir/inner.txt")).unwrap();
    assert!(!bucket.exists("gone.txt").await);
    assert!(!bucket.exists("dir/inner.txt").await);
    assert!(!mount.join("gone.txt").exists());
    assert_errno(
        fs::remove_file(mount.join("gone.txt")),
        libc::ENOENT,
        "unlink again",
    );
    // a file created and removed through the mount
    must_write(&mount.join("tmp.txt"), b"tmp");
    assert!(bucket.exists("tmp.txt").await);
    fs::remove_file(mount.join("tmp.txt")).unwrap();
    assert!(!bucket.exists("tmp.txt").await);
}

#[tokio::test]
async fn mkdir_and_rmdir_keep_directory_markers() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("implicit/child.txt", b"c").await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);

    fs::create_dir(mount.join("empty")).unwrap();
    assert!(
        bucket.exists("empty/").await,
        "mkdir writes the `empty/` marker"
    );
    assert_eq!(bucket.get("empty/").await, b"");
    fs::create_dir_all(mount.join("p/q/r")).unwrap();
    for k in ["p/", "p/q/", "p/q/r/"] {
        assert!(bucket.exists(k).await, "marker {k}");
    }
    assert_errno(
        fs::create_dir(mount.join("empty")),
        libc::EEXIST,
        "mkdir again",
    );

    mount.remount();
    assert!(mount.join("empty").is_dir(), "an empty directory persists");
    assert_eq!(fs::read_dir(mount.join("empty")).unwrap().count(), 0);
    assert!(mount.join("p/q/r").is_dir());

    must_write(&mount.join("p/q/r/f.txt"), b"f");
    assert_errno(
        fs::remove_dir(mount.join("p/q/r")),
        libc::ENOTEMPTY,
        "rmdir with a file inside",
    );
    assert_errno(
        fs::remove_dir(mount.join("implicit")),
        libc::ENOTEMPTY,
        "rmdir of a directory that only exists as a prefix",
    );
    assert!(bucket.exists("p/q/r/").await && bucket.exists("p/q/r/f.txt").await);

    // a file still being written counts too
    fs::create_dir(mount.join("busy")).unwrap();
    let mut f = File::create(mount.join("busy/open.txt")).unwrap();
    f.write_all(b"not closed yet").unwrap();
    assert_errno(
        fs::remove_dir(mount.join("busy")),
        libc::ENOTEMPTY,
        "rmdir with a file open for writing inside",
    );
    close(f).unwrap();

    fs::remove_file(mount.join("p/q/r/f.txt")).unwrap();
    fs::remove_dir(mount.join("p/q/r")).unwrap();
    assert!(!bucket.exists("p/q/r/").await, "rmdir removes the marker");
    assert!(bucket.exists("p/q/").await);
    fs::remove_dir(mount.join("empty")).unwrap();
    assert!(!bucket.exists("empty/").await);
    assert!(!mount.join("empty").exists());
    assert_errno(
        fs::remove_dir(mount.join("busy/open.txt")),
        libc::ENOTDIR,
        "rmdir of a file",
    );
}

#[tokio::test]
async fn rename_of_a_file_keeps_metadata_and_tags() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "a.txt",
            b"payload\n",
            &[("color", "blue"), ("mode", "33152")],
            &[("team", "storage"), ("env", "test")],
            Some("text/x-custom"),
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::create_dir(mount.join("sub")).unwrap();

    fs::rename(mount.join("a.txt"), mount.join("b.txt")).unwrap();
    assert!(!bucket.exists("a.txt").await, "old key gone");
    assert_eq!(bucket.get("b.txt").await, b"payload\n");
    let meta = bucket.metadata("b.txt").await;
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("blue"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );
    assert_eq!(
        bucket.tags("b.txt").await,
        tags(&[("team", "storage"), ("env", "test")])
    );
    assert_eq!(content_type(&bucket, "b.txt").await, "text/x-custom");

    // into another directory, with `mv`
    sh(mount.path(), "mv b.txt sub/c.txt");
    assert!(!bucket.exists("b.txt").await);
    assert_eq!(bucket.get("sub/c.txt").await, b"payload\n");
    assert_eq!(
        bucket.tags("sub/c.txt").await,
        tags(&[("team", "storage"), ("env", "test")])
    );
    assert_eq!(
        bucket
            .metadata("sub/c.txt")
            .await
            .get("color")
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(fs::read(mount.join("sub/c.txt")).unwrap(), b"payload\n");
    assert!(!mount.join("a.txt").exists() && !mount.join("b.txt").exists());
}

#[tokio::test]
async fn rename_of_a_directory_moves_every_key() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("d/", b"").await; // the directory's marker
    bucket.put("d/seeded.bin", b"seeded").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::create_dir_all(mount.join("d/sub/empty")).unwrap();
    must_write(&mount.join("d/a.txt"), b"a");
    must_write(&mount.join("d/sub/b.txt"), b"b");
    bucket.put("dx/not-under-d.txt", b"neighbour").await;
    let before = bucket.list_keys("d/").await;
    assert!(before.contains(&"d/".to_string()), "{before:?}");

    fs::rename(mount.join("d"), mount.join("e")).unwrap();
    assert_eq!(
        bucket.list_keys("d/").await,
        Vec::<String>::new(),
        "old keys gone"
    );
    let mut want: Vec<String> = before.iter().map(|k| format!("e/{}", &k[2..])).collect();
    want.sort();
    let mut got = bucket.list_keys("e/").await;
    got.sort();
    assert_eq!(got, want, "every key moved, marker included");
    assert_eq!(bucket.get("e/a.txt").await, b"a");
    assert_eq!(bucket.get("e/sub/b.txt").await, b"b");
    assert_eq!(bucket.get("e/seeded.bin").await, b"seeded");
    assert!(
        bucket.exists("dx/not-under-d.txt").await,
        "a key that merely shares the prefix `d` stays"
    );
    assert!(!mount.join("d").exists());
    assert_eq!(fs::read(mount.join("e/sub/b.txt")).unwrap(), b"b");
    assert!(mount.join("e/sub/empty").is_dir());
}

#[tokio::test]
async fn rename_onto_an_existing_file_replaces_it() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "src.txt",
            b"source",
            &[("from", "src")],
            &[("side", "src")],
            None,
        )
        .await;
    bucket
        .put_with("dst.txt", b"destination", &[("from", "dst")], &[], None)
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::rename(mount.join("src.txt"), mount.join("dst.txt")).unwrap();
    assert!(!bucket.exists("src.txt").await);
    assert_eq!(bucket.get("dst.txt").await, b"source");
    // The source's metadata and tags. (Not tested the other way round: moto 5.2.5 keeps the
    // destination's old tags when CopyObject's source has none, unlike S3.)
    assert_eq!(
        bucket
            .metadata("dst.txt")
            .await
            .get("from")
            .map(String::as_str),
        Some("src")
    );
    assert_eq!(bucket.tags("dst.txt").await, tags(&[("side", "src")]));
    assert_eq!(fs::read(mount.join("dst.txt")).unwrap(), b"source");
}

#[tokio::test]
async fn renameat2_noreplace_and_exchange() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("one.txt", b"one").await;
    bucket.put("two.txt", b"two").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let (one, two) = (mount.join("one.txt"), mount.join("two.txt"));

    assert_errno(
        renameat2(&one, &two, libc::RENAME_NOREPLACE),
        libc::EEXIST,
        "RENAME_NOREPLACE onto an existing file",
    );
    assert_eq!(bucket.get("one.txt").await, b"one");
    assert_eq!(bucket.get("two.txt").await, b"two");

    let r = renameat2(&one, &two, libc::RENAME_EXCHANGE);
    assert!(r.is_err(), "RENAME_EXCHANGE must be refused");
    let e = r.unwrap_err();
    assert!(
        [libc::EINVAL, libc::ENOTSUP, libc::ENOSYS].contains(&errno(&e)),
        "RENAME_EXCHANGE: unexpected error {e}"
    );
    assert_eq!(bucket.get("one.txt").await, b"one", "nothing changed");
    assert_eq!(bucket.get("two.txt").await, b"two", "nothing changed");
    assert_eq!(fs::read(&one).unwrap(), b"one");

    // RENAME_NOREPLACE onto a free name is an ordinary rename
    renameat2(&one, &mount.join("three.txt"), libc::RENAME_NOREPLACE).unwrap();
    assert!(!bucket.exists("one.txt").await);
    assert_eq!(bucket.get("three.txt").await, b"one");
}

#[tokio::test]
async fn symlinks_are_stored_as_s3fs_stores_them() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("target.txt", b"pointed at").await;
    bucket
        .put_with(
            "s3fs-link",
            b"dir/elsewhere",
            &[("mode", SYMLINK_MODE)],
            &[],
            None,
        )
        .await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);

    sh(mount.path(), "ln -s target.txt link");
    assert_eq!(
        bucket.get("link").await,
        b"target.txt",
        "body is the target"
    );
    let meta = bucket.metadata("link").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some(SYMLINK_MODE),
        "x-amz-meta-mode = S_IFLNK|0777: {meta:?}"
    );
    assert_eq!(
        fs::read_link(mount.join("link")).unwrap(),
        Path::new("target.txt")
    );
    assert_eq!(fs::read(mount.join("link")).unwrap(), b"pointed at");

    mount.remount();
    assert!(fs::symlink_metadata(mount.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_link(mount.join("link")).unwrap(),
        Path::new("target.txt")
    );
    // one written the s3fs way through the SDK
    let md = fs::symlink_metadata(mount.join("s3fs-link")).unwrap();
    assert!(
        md.file_type().is_symlink(),
        "s3fs-style object is a symlink"
    );
    assert_eq!(
        fs::read_link(mount.join("s3fs-link")).unwrap(),
        Path::new("dir/elsewhere")
    );
    // unlink removes the link, not its target
    fs::remove_file(mount.join("link")).unwrap();
    assert!(!bucket.exists("link").await);
    assert!(bucket.exists("target.txt").await);
}

#[tokio::test]
async fn hard_links_are_refused() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("file.txt", b"x").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    assert_errno(
        fs::hard_link(mount.join("file.txt"), mount.join("hard")),
        libc::EPERM,
        "link(2)",
    );
    assert!(!bucket.exists("hard").await);
    assert_eq!(bucket.list_keys("").await, vec!["file.txt".to_string()]);
}
