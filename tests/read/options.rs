//! `--read-only` refuses every modification; `--prefix` and `s3://bucket/prefix/` mounts.

use super::*;

/// Under `--read-only` every modification fails with EROFS and the bucket is unchanged.
#[tokio::test]
async fn read_only_mount_refuses_every_modification() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with("file.txt", b"original", &[("m", "1")], &[("t", "1")], None)
        .await;
    bucket.put("dir/inner.txt", b"inner").await;
    bucket.put("empty/", b"").await;
    let before_keys = bucket.list_keys("").await;

    let mount = Mount::new(&s3, bucket.name(), &["--read-only"]);
    let file = mount.join("file.txt");
    let expect_erofs = |what: &str, r: io::Result<()>| match r {
        Ok(()) => panic!("{what} succeeded on a read-only mount"),
        Err(e) => assert_eq!(errno(&e), libc::EROFS, "{what}: {e}"),
    };
    let c = |p: &Path| cpath(p);
    let libc_result = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };

    expect_erofs("create", File::create(mount.join("new.txt")).map(drop));
    expect_erofs(
        "create_new",
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(mount.join("new2.txt"))
            .map(drop),
    );
    expect_erofs(
        "open existing for write",
        OpenOptions::new()
            .write(true)
            .open(&file)
            .and_then(|mut f| f.write_all(b"x")),
    );
    expect_erofs(
        "open existing for append",
        OpenOptions::new()
            .append(true)
            .open(&file)
            .and_then(|mut f| f.write_all(b"x")),
    );
    expect_erofs(
        "open with O_TRUNC",
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .map(drop),
    );
    expect_erofs("mkdir", std::fs::create_dir(mount.join("newdir")));
    expect_erofs(
        "mkdir in a subdirectory",
        std::fs::create_dir(mount.join("dir/sub")),
    );
    expect_erofs("rm", std::fs::remove_file(&file));
    expect_erofs(
        "rm in a subdirectory",
        std::fs::remove_file(mount.join("dir/inner.txt")),
    );
    expect_erofs("rmdir", std::fs::remove_dir(mount.join("empty")));
    expect_erofs("mv", std::fs::rename(&file, mount.join("renamed.txt")));
    expect_erofs(
        "mv a directory",
        std::fs::rename(mount.join("dir"), mount.join("dir2")),
    );
    expect_erofs(
        "chmod",
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)),
    );
    // SAFETY: valid C strings.
    expect_erofs(
        "chown",
        libc_result(unsafe { libc::chown(c(&file).as_ptr(), 1, 1) }),
    );
    expect_erofs(
        "truncate",
        libc_result(unsafe { libc::truncate(c(&file).as_ptr(), 0) }),
    );
    expect_erofs(
        "symlink",
        std::os::unix::fs::symlink("file.txt", mount.join("link")),
    );
    expect_erofs("hard link", std::fs::hard_link(&file, mount.join("hard")));
    let name = CString::new("user.s3.tag.new").unwrap();
    expect_erofs(
        "setxattr",
        // SAFETY: valid C strings and a 1-byte value.
        libc_result(unsafe {
            libc::setxattr(c(&file).as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0)
        }),
    );
    let existing = CString::new("user.s3.tag.t").unwrap();
    expect_erofs(
        "removexattr",
        // SAFETY: valid C strings.
        libc_result(unsafe { libc::removexattr(c(&file).as_ptr(), existing.as_ptr()) }),
    );
    // Real tools.
    for (prog, args) in [
        ("setfattr", vec!["-n", "user.s3.meta.m", "-v", "2"]),
        ("touch", vec![]),
        ("truncate", vec!["-s", "0"]),
    ] {
        let mut a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_ref()).collect();
        a.push(file.as_os_str());
        let out = tool(prog, &a);
        assert!(
            !out.status.success(),
            "{prog} succeeded on a read-only mount"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Read-only file system"), "{prog}: {err}");
    }

    // Reading still works.
    assert_eq!(std::fs::read(&file).unwrap(), b"original");

    // The bucket is unchanged.
    assert_eq!(
        bucket.list_keys("").await,
        before_keys,
        "keys after the attempts"
    );
    assert_eq!(bucket.get("file.txt").await, b"original");
    assert_eq!(bucket.get("dir/inner.txt").await, b"inner");
    assert_eq!(
        bucket.tags("file.txt").await,
        [("t".to_string(), "1".to_string())]
    );
    assert_eq!(
        bucket.metadata("file.txt").await,
        HashMap::from([("m".to_string(), "1".to_string())])
    );
}

async fn seed_prefix_bucket(s3: &S3Server) -> Bucket {
    let bucket = s3.new_bucket().await;
    for (k, v) in [
        ("outside.txt", "outside"),
        ("sub/inside.txt", "inside"),
        ("sub/deeper/x.txt", "deeper x"),
        (
            "subway/not-sub.txt",
            "a sibling prefix sharing the first letters",
        ),
        ("sub.txt", "a file named like the prefix"),
    ] {
        bucket.put(k, v).await;
    }
    bucket
}

fn assert_shows_only_sub(mount: &Mount) {
    let (dirs, files) = walk(mount.path());
    assert_eq!(dirs, BTreeSet::from(["deeper".to_string()]), "directories");
    let want: BTreeMap<String, Vec<u8>> = [
        ("inside.txt".to_string(), b"inside".to_vec()),
        ("deeper/x.txt".to_string(), b"deeper x".to_vec()),
    ]
    .into_iter()
    .collect();
    assert_eq!(files, want, "files of the prefix mount");
    let err = std::fs::metadata(mount.join("outside.txt")).expect_err("outside.txt");
    assert_eq!(errno(&err), libc::ENOENT);
}

/// `--prefix sub/` and `--prefix sub` (normalised) mount only the keys under `sub/`.
#[tokio::test]
async fn prefix_flag_mounts_only_the_subtree() {
    let s3 = S3Server::start();
    let bucket = seed_prefix_bucket(&s3).await;
    for prefix in ["sub/", "sub"] {
        let mount = Mount::new(&s3, bucket.name(), &["--prefix", prefix]);
        assert_shows_only_sub(&mount);
    }
}

/// `s3://bucket/sub/` and `bucket/sub/` mount only the keys under `sub/`.
#[tokio::test]
async fn bucket_url_with_a_prefix_mounts_only_the_subtree() {
    let s3 = S3Server::start();
    let bucket = seed_prefix_bucket(&s3).await;
    for location in [
        format!("s3://{}/sub/", bucket.name()),
        format!("{}/sub/", bucket.name()),
    ] {
        let mount = Mount::new(&s3, &location, &[]);
        assert_shows_only_sub(&mount);
    }
}
