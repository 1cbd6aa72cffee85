//! Any `user.*` xattr outside the `user.s3.*` scheme, kept the s3fs way in one
//! `x-amz-meta-xattr` header: setfattr/getfattr and the raw header, binary values,
//! XATTR_CREATE/XATTR_REPLACE, removal, a remount, E2BIG over S3's 2 KB, `cp --preserve=xattr`
//! and `rsync -X`, directories (their markers), and s3fs reading and writing the same header.

use super::*;

#[tokio::test]
async fn user_xattrs_are_kept_in_s3fs_header_and_survive_a_remount() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket
        .put_with(
            "f.txt",
            b"content",
            &[("keep", "me")],
            &[("team", "x")],
            Some("text/plain"),
        )
        .await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("f.txt");

    sh(mount.path(), "setfattr -n user.key1 -v hello f.txt");
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("xattr").map(String::as_str),
        Some("%7B%22user.key1%22%3A%22aGVsbG8%3D%22%7D"),
        "s3fs's exact header: {meta:?}"
    );
    assert_eq!(
        decode_header(&meta["xattr"]),
        [("user.key1".to_string(), b"hello".to_vec())]
    );
    assert_eq!(
        meta.get("keep").map(String::as_str),
        Some("me"),
        "other metadata kept"
    );
    assert_eq!(bucket.get("f.txt").await, b"content");
    assert_eq!(
        bucket.tags("f.txt").await,
        [("team".to_string(), "x".to_string())]
    );

    let dump = sh(mount.path(), "getfattr -d f.txt");
    assert!(dump.contains("user.key1=\"hello\""), "getfattr -d:\n{dump}");
    assert!(
        dump.contains("user.s3.tag.team=\"x\""),
        "the scheme still shows:\n{dump}"
    );
    assert!(
        !dump.contains("user.s3.meta.xattr"),
        "the header itself is not shown:\n{dump}"
    );

    // binary values, listed beside the user.s3.* names
    let all: Vec<u8> = (0..=255).collect();
    set_xattr(&f, "user.bin", &all, 0).unwrap();
    assert_eq!(get_xattr(&f, "user.bin").unwrap(), all);
    let names = list_xattr(&f);
    for n in [
        "user.key1",
        "user.bin",
        "user.s3.etag",
        "user.s3.meta.keep",
        "user.s3.tag.team",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    assert_eq!(
        decode_header(&bucket.metadata("f.txt").await["xattr"]),
        [
            ("user.bin".to_string(), all.clone()),
            ("user.key1".to_string(), b"hello".to_vec())
        ]
    );

    // XATTR_CREATE / XATTR_REPLACE, removal
    assert_errno(
        set_xattr(&f, "user.key1", b"x", libc::XATTR_CREATE),
        libc::EEXIST,
        "create",
    );
    assert_errno(
        set_xattr(&f, "user.nope", b"x", libc::XATTR_REPLACE),
        libc::ENODATA,
        "replace",
    );
    set_xattr(&f, "user.key1", b"world", libc::XATTR_REPLACE).unwrap();
    set_xattr(&f, "user.empty", b"", libc::XATTR_CREATE).unwrap();
    assert_eq!(get_xattr(&f, "user.empty").unwrap(), b"");
    remove_xattr(&f, "user.bin").unwrap();
    assert_errno(remove_xattr(&f, "user.bin"), libc::ENODATA, "remove twice");
    assert_errno(get_xattr(&f, "user.bin"), libc::ENODATA, "get removed");
    // names s3fs could not read back, and other namespaces
    assert_errno(set_xattr(&f, "user.a,b", b"x", 0), libc::ENOTSUP, "a comma");
    assert_errno(
        set_xattr(&f, "trusted.x", b"x", 0),
        libc::ENOTSUP,
        "trusted.*",
    );
    assert_errno(
        set_xattr(&f, "user.s3.meta.xattr", b"x", 0),
        libc::EPERM,
        "the header",
    );

    // after a fresh mount
    mount.remount();
    let f = mount.join("f.txt");
    assert_eq!(get_xattr(&f, "user.key1").unwrap(), b"world");
    assert_eq!(get_xattr(&f, "user.empty").unwrap(), b"");
    assert_errno(get_xattr(&f, "user.bin"), libc::ENODATA, "after remount");
    assert_eq!(fs::read(&f).unwrap(), b"content");
    assert_eq!(
        get_xattr(&f, "user.s3.content-type").unwrap(),
        b"text/plain"
    );

    // the header goes with the last attribute
    remove_xattr(&f, "user.key1").unwrap();
    remove_xattr(&f, "user.empty").unwrap();
    let meta = bucket.metadata("f.txt").await;
    assert!(!meta.contains_key("xattr"), "{meta:?}");
    assert_eq!(meta.get("keep").map(String::as_str), Some("me"));
}

#[tokio::test]
async fn over_2kb_is_e2big_and_nothing_changes() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("big.txt", b"data").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("big.txt");

    // 1,000 bytes: about 1,350 in base64, under the limit
    let fits = vec![b'a'; 1000];
    set_xattr(&f, "user.fits", &fits, 0).unwrap();
    let etag_before = etag(&bucket, "big.txt").await;
    let meta_before = bucket.metadata("big.txt").await;

    // another 1,000 bytes would take the header past 2 KB
    assert_errno(
        set_xattr(&f, "user.more", &fits, 0),
        libc::E2BIG,
        "over 2 KB",
    );
    assert_errno(
        set_xattr(&f, "user.huge", &vec![7u8; 4000], 0),
        libc::E2BIG,
        "4 KB",
    );
    assert_eq!(
        etag(&bucket, "big.txt").await,
        etag_before,
        "object untouched"
    );
    assert_eq!(
        bucket.metadata("big.txt").await,
        meta_before,
        "metadata untouched"
    );
    assert_eq!(get_xattr(&f, "user.fits").unwrap(), fits);
    assert_errno(
        get_xattr(&f, "user.more"),
        libc::ENODATA,
        "not half applied",
    );
    assert_eq!(bucket.get("big.txt").await, b"data");
}

#[tokio::test]
async fn xattrs_set_on_a_file_being_written_ride_with_its_upload() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("new.txt");
    {
        use std::io::Write;
        let mut file = fs::File::create(&f).unwrap();
        file.write_all(b"written").unwrap();
        set_xattr(&f, "user.early", b"1", 0).unwrap();
        assert_eq!(
            get_xattr(&f, "user.early").unwrap(),
            b"1",
            "seen before the upload"
        );
        assert!(list_xattr(&f).contains(&"user.early".to_string()));
    }
    assert_eq!(bucket.get("new.txt").await, b"written");
    let meta = bucket.metadata("new.txt").await;
    assert_eq!(
        decode_header(meta.get("xattr").map(String::as_str).unwrap_or("{}")),
        [("user.early".to_string(), b"1".to_vec())],
        "{meta:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// copying tools
// ---------------------------------------------------------------------------------------------

/// A local tree with user xattrs; `None` if the local filesystem does not take them.
fn local_tree_with_xattrs() -> Option<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("s3mount-xattrs-local-")
        .tempdir()
        .unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.bin"), b"beta\n").unwrap();
    if set_xattr(&src.join("a.txt"), "user.color", b"blue", 0).is_err() {
        return None;
    }
    set_xattr(&src.join("sub/b.bin"), "user.raw", b"\x00\xff\x10", 0).unwrap();
    set_xattr(&src.join("sub"), "user.dir", b"d1", 0).unwrap();
    Some(dir)
}

#[tokio::test]
async fn cp_and_rsync_copy_xattrs_into_the_mount() {
    let Some(local) = local_tree_with_xattrs() else {
        eprintln!("skipped: the local filesystem does not take user xattrs");
        return;
    };
    let src = local.path().join("src");
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);

    let cp = format!("cp --preserve=xattr {}/a.txt cp-a.txt", src.display());
    sh(mount.path(), &cp);
    assert_eq!(
        get_xattr(&mount.join("cp-a.txt"), "user.color").unwrap(),
        b"blue"
    );
    assert_eq!(
        decode_header(&bucket.metadata("cp-a.txt").await["xattr"]),
        [("user.color".to_string(), b"blue".to_vec())]
    );

    if have("rsync") {
        // rsync -X also removes the destination's names the source lacks: the filter keeps
        // it off the user.s3.* facts (which cannot be removed) and metadata.
        let rsync = format!("rsync -aX --filter='-x user.s3.*' {}/ rs/", src.display());
        sh(mount.path(), &rsync);
        mount.remount();
        assert_eq!(
            get_xattr(&mount.join("rs/a.txt"), "user.color").unwrap(),
            b"blue"
        );
        assert_eq!(
            get_xattr(&mount.join("rs/sub/b.bin"), "user.raw").unwrap(),
            b"\x00\xff\x10"
        );
        assert_eq!(get_xattr(&mount.join("rs/sub"), "user.dir").unwrap(), b"d1");
        assert_eq!(fs::read(mount.join("rs/sub/b.bin")).unwrap(), b"beta\n");
        assert_eq!(
            decode_header(&bucket.metadata("rs/sub/").await["xattr"]),
            [("user.dir".to_string(), b"d1".to_vec())],
            "the directory's attribute is on its marker"
        );
    } else {
        eprintln!("rsync part skipped: rsync is not installed");
    }
}

// ---------------------------------------------------------------------------------------------
// directories
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn directories_keep_xattrs_on_their_marker() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("implicit/child.txt", b"c").await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let imp = mount.join("implicit");
    fs::create_dir(mount.join("made")).unwrap();
    let made = mount.join("made");

    // no marker: nothing to read, nothing to remove
    assert!(!bucket.exists("implicit/").await);
    assert_errno(get_xattr(&imp, "user.d"), libc::ENODATA, "no marker");
    assert_errno(
        remove_xattr(&imp, "user.d"),
        libc::ENODATA,
        "no marker to remove from",
    );
    assert!(
        !bucket.exists("implicit/").await,
        "no marker made by a failed removal"
    );

    sh(
        mount.path(),
        "setfattr -n user.d -v one implicit && setfattr -n user.d -v two made",
    );
    assert!(bucket.exists("implicit/").await, "the marker was made");
    assert_eq!(
        decode_header(&bucket.metadata("implicit/").await["xattr"]),
        [("user.d".to_string(), b"one".to_vec())]
    );
    set_xattr(&made, "user.s3.meta.color", b"red", 0).unwrap();
    assert_eq!(
        bucket
            .metadata("made/")
            .await
            .get("color")
            .map(String::as_str),
        Some("red")
    );
    assert_errno(
        set_xattr(&made, "user.s3.tag.t", b"x", 0),
        libc::ENOTSUP,
        "tags on a dir",
    );
    assert_errno(
        set_xattr(mount.path(), "user.d", b"x", 0),
        libc::ENOTSUP,
        "the root",
    );
    assert_eq!(
        fs::read(imp.join("child.txt")).unwrap(),
        b"c",
        "the directory still works"
    );

    mount.remount();
    let (imp, made) = (mount.join("implicit"), mount.join("made"));
    assert_eq!(get_xattr(&imp, "user.d").unwrap(), b"one");
    assert_eq!(get_xattr(&made, "user.d").unwrap(), b"two");
    assert_eq!(get_xattr(&made, "user.s3.meta.color").unwrap(), b"red");
    let names = list_xattr(&made);
    assert!(names.contains(&"user.d".to_string()), "{names:?}");
    let dump = sh(mount.path(), "getfattr -d implicit");
    assert!(dump.contains("user.d=\"one\""), "{dump}");
    assert!(fs::metadata(&imp).unwrap().is_dir());

    remove_xattr(&imp, "user.d").unwrap();
    assert!(!bucket.metadata("implicit/").await.contains_key("xattr"));
    assert_errno(get_xattr(&imp, "user.d"), libc::ENODATA, "removed");
}

#[tokio::test]
async fn s3fs_reads_and_writes_the_same_header() {
    if !have("s3fs") {
        eprintln!("skipped: s3fs is not installed (apt-get install s3fs)");
        return;
    }
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("shared.txt", b"shared\n").await;

    // s3mount writes, s3fs reads
    {
        let mount = Mount::new(&s3, bucket.name(), &[]);
        sh(
            mount.path(),
            "setfattr -n user.from_s3mount -v hello shared.txt && mkdir d && \
             setfattr -n user.on_dir -v yes d",
        );
    }
    {
        let s3fs = S3fsMount::start_with(&s3, bucket.name(), "use_xattr");
        let p = s3fs.path();
        assert_eq!(
            get_xattr(&p.join("shared.txt"), "user.from_s3mount").unwrap(),
            b"hello"
        );
        assert_eq!(get_xattr(&p.join("d"), "user.on_dir").unwrap(), b"yes");
        sh(&p, "setfattr -n user.from_s3fs -v 0x00ff shared.txt");
    }

    // s3fs wrote, s3mount reads
    let meta = bucket.metadata("shared.txt").await;
    assert_eq!(
        decode_header(&meta["xattr"]),
        [
            ("user.from_s3fs".to_string(), b"\x00\xff".to_vec()),
            ("user.from_s3mount".to_string(), b"hello".to_vec())
        ],
        "{meta:?}"
    );
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("shared.txt");
    assert_eq!(get_xattr(&f, "user.from_s3fs").unwrap(), b"\x00\xff");
    assert_eq!(get_xattr(&f, "user.from_s3mount").unwrap(), b"hello");
    assert_eq!(fs::read(&f).unwrap(), b"shared\n");
}
