//! What `stat` and `ls -l` show, and how it is kept (s3fs's headers): times (mtime and ctime
//! on writes, ctime alone on chmod/chown/rename, atime as set), modes and owners after a
//! remount, chmod/chown/touch on files and directories, other users' files, special files,
//! nlink, set-user-ID clearing, long names.

use super::*;

const JAN_2024: i64 = 1_704_067_200;

#[tokio::test]
async fn writes_move_mtime_even_after_an_explicit_one() {
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::new().await;
    let f = mount.join("f");
    fs::write(&f, b"v1\n").unwrap();
    let writes = [
        "echo v2 > f",
        "echo more >> f",
        "printf X | dd of=f bs=1 seek=1 conv=notrunc status=none",
        "cp /etc/hostname f",
    ];
    for cmd in writes {
        sh(mount.path(), "touch -d '2024-01-01 00:00:00 UTC' f");
        assert_eq!(mtime(&f).0, JAN_2024, "touch -d before `{cmd}`");
        let before = now_secs();
        sh(mount.path(), cmd);
        let after_write = mtime(&f);
        assert!(
            after_write.0 >= before - 1,
            "`{cmd}` after an explicit mtime must move it to now: {after_write:?}"
        );
        assert_eq!(ctime(&f).0, after_write.0, "a write moves ctime with mtime");
        let stored = bucket.metadata("f").await;
        assert_eq!(
            header_time(&stored["mtime"]),
            after_write,
            "x-amz-meta-mtime after `{cmd}`: {stored:?}"
        );
        mount.remount();
        assert_eq!(mtime(&f), after_write, "mtime after `{cmd}` and a remount");
    }
}

#[tokio::test]
async fn chmod_chown_and_rename_keep_mtime_and_move_ctime() {
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::new().await;
    // Written by another tool: no mtime header, so mtime is the upload's Last-Modified.
    bucket.put("plain.txt", b"data").await;
    sh(mount.path(), "ls -l >/dev/null");
    let f = mount.join("plain.txt");
    let m0 = mtime(&f);
    sleep(Duration::from_millis(1100));
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(mtime(&f), m0, "chmod keeps mtime");
    assert!(ctime(&f).0 > m0.0, "chmod moves ctime: {:?}", ctime(&f));
    std::os::unix::fs::chown(&f, Some(NOBODY), Some(NOBODY)).unwrap();
    assert_eq!(mtime(&f), m0, "chown keeps mtime");
    let moved = mount.join("moved.txt");
    fs::rename(&f, &moved).unwrap();
    assert_eq!(mtime(&moved), m0, "rename keeps mtime");
    let stored = bucket.metadata("moved.txt").await;
    assert_eq!(header_time(&stored["mtime"]), m0, "{stored:?}");
    assert_eq!(stored["mode"], (libc::S_IFREG | 0o600).to_string());
    assert_eq!(stored["uid"], NOBODY.to_string());
    mount.remount();
    assert_eq!(mtime(&moved), m0, "mtime after a remount");
    assert_eq!(mode(&moved), libc::S_IFREG | 0o600);
    assert_eq!(fs::metadata(&moved).unwrap().uid(), NOBODY);
}

#[tokio::test]
async fn listings_show_the_stored_mode_owner_and_mtime_after_a_remount() {
    let Env {
        s3: _s3,
        bucket: _bucket,
        mut mount,
    } = Env::new().await;
    sh(
        mount.path(),
        "mkdir bin && printf '#!/bin/sh\\necho ran\\n' > bin/run.sh && chmod +x bin/run.sh && \
         echo old > bin/old.txt && touch -d '2022-02-02 02:02:02 UTC' bin/old.txt",
    );
    mount.remount();
    let listing = sh(mount.path(), "ls -l bin");
    let line = listing.lines().find(|l| l.ends_with("run.sh")).unwrap();
    assert!(
        line.starts_with("-rwxr-xr-x"),
        "ls -l after a remount: {listing}"
    );
    let out = Command::new(mount.join("bin/run.sh")).output().unwrap();
    assert_eq!(
        out.stdout, b"ran\n",
        "the script runs after a remount: {out:?}"
    );
    // cp -a and rsync -a out of the mount carry the stored mtime, not the upload time.
    let local = tempfile::tempdir().unwrap();
    sh(
        local.path(),
        &format!(
            "cp -a '{}' cp-a && rsync -a '{}/' rsync-a/",
            mount.join("bin").display(),
            mount.join("bin").display()
        ),
    );
    for copy in ["cp-a/old.txt", "rsync-a/old.txt"] {
        assert_eq!(mtime(&local.path().join(copy)).0, 1_643_767_322, "{copy}");
    }
    assert_eq!(mode(&local.path().join("cp-a/run.sh")) & 0o777, 0o755);
}

#[tokio::test]
async fn rsync_of_an_edit_in_place_reaches_the_backup() {
    let Env {
        s3: _s3,
        bucket: _bucket,
        mount,
    } = Env::new().await;
    let local = tempfile::tempdir().unwrap();
    sh(
        local.path(),
        "mkdir src && echo 'first version' > src/notes.txt && echo keep > src/other.txt && \
         touch -d '2023-01-01 00:00:00 UTC' src/*",
    );
    let mnt = mount.join("tree");
    sh(local.path(), &format!("rsync -a src/ '{}/'", mnt.display()));
    sh(
        local.path(),
        &format!("rsync -a '{}/' back/", mnt.display()),
    );
    // The same size, edited in place: only mtime tells rsync.
    sh(
        &mnt,
        "printf F | dd of=notes.txt bs=1 seek=0 conv=notrunc status=none",
    );
    let out = sh(
        local.path(),
        &format!("rsync -ai '{}/' back/", mnt.display()),
    );
    assert!(out.contains("notes.txt"), "rsync sees the edit: {out}");
    assert_eq!(
        fs::read(local.path().join("back/notes.txt")).unwrap(),
        b"First version\n"
    );
}

#[tokio::test]
async fn chmod_chown_and_touch_persist_in_s3fs_headers() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "f.txt",
            b"content\n",
            &[("color", "blue")],
            &[("team", "x")],
            Some("text/plain"),
        )
        .await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("f.txt");

    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );

    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("1234"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("gid").map(String::as_str),
        Some("5678"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );

    sh(mount.path(), "touch -d '2020-01-02 03:04:05 UTC' f.txt");
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1577934245"),
        "{meta:?}"
    );
    // everything else kept
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("blue"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("1234"),
        "{meta:?}"
    );
    assert_eq!(bucket.get("f.txt").await, b"content\n");
    assert_eq!(bucket.tags("f.txt").await, tags(&[("team", "x")]));
    assert_eq!(content_type(&bucket, "f.txt").await, "text/plain");

    // on a file open for writing, the attributes ride along with the upload
    let mut w = File::create(mount.join("open.txt")).unwrap();
    w.write_all(b"being written").unwrap();
    w.set_permissions(fs::Permissions::from_mode(0o640))
        .unwrap();
    close(w).unwrap();
    assert_eq!(bucket.get("open.txt").await, b"being written");
    let ometa = bucket.metadata("open.txt").await;
    assert_eq!(
        ometa.get("mode").map(String::as_str),
        Some(&*(libc::S_IFREG | 0o640).to_string()),
        "{ometa:?}"
    );

    mount.remount();
    let st = fs::metadata(mount.join("f.txt")).unwrap();
    assert_eq!(st.mode(), libc::S_IFREG | 0o600, "mode after remount");
    assert_eq!((st.uid(), st.gid()), (1234, 5678), "owner after remount");
    assert_eq!(st.mtime(), 1_577_934_245, "mtime after remount");
    assert_eq!(
        fs::metadata(mount.join("open.txt")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(fs::read(&f).unwrap(), b"content\n");
}

#[tokio::test]
async fn directory_attributes_persist_on_the_marker() {
    let Served { s3, bucket } = Served::new().await;
    let mut mount = Mount::new(&s3, bucket.name(), &["--metadata-ttl", "1"]);
    let d = mount.join("d");
    fs::create_dir(&d).unwrap();
    must_write(&mount.join("d/inside.txt"), b"i");

    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&d, Some(4321), Some(8765)).unwrap();
    sh(mount.path(), "touch -d '2020-01-02 03:04:05 UTC' d");
    let meta = bucket.metadata("d/").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some(&*(libc::S_IFDIR | 0o700).to_string()),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("4321"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("gid").map(String::as_str),
        Some("8765"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1577934245"),
        "{meta:?}"
    );
    assert_eq!(bucket.get("d/inside.txt").await, b"i", "content kept");

    // still so once the cached attributes expired, and after a remount
    sleep(Duration::from_millis(1500));
    let st = fs::metadata(&d).unwrap();
    assert_eq!(
        (st.mode(), st.uid(), st.gid(), st.mtime()),
        (libc::S_IFDIR | 0o700, 4321, 8765, 1_577_934_245),
        "directory mode, owner and mtime after the metadata TTL"
    );
    mount.remount();
    let st = fs::metadata(&d).unwrap();
    assert_eq!(
        (st.mode(), st.uid(), st.gid(), st.mtime()),
        (libc::S_IFDIR | 0o700, 4321, 8765, 1_577_934_245),
        "directory mode, owner and mtime after a remount"
    );
}

#[tokio::test]
async fn what_another_user_creates_is_theirs() {
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::with_args(&["--allow-other"]).await;
    open_to_others(&mount);
    sh(mount.path(), "mkdir shared && chmod 1777 shared");
    let shared = mount.join("shared");
    let out = as_nobody(
        &shared,
        "touch mine && mkdir mydir && ln -s mine mylink && chmod 600 mine && chmod 700 mydir",
    );
    assert!(
        out.status.success(),
        "nobody creates and chmods its own files: {out:?}"
    );
    for name in ["mine", "mydir", "mylink"] {
        let m = fs::symlink_metadata(shared.join(name)).unwrap();
        assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY), "{name}");
    }
    assert_eq!(mode(&shared.join("mine")), libc::S_IFREG | 0o600);
    let stored = bucket.metadata("shared/mine").await;
    assert_eq!(stored["uid"], NOBODY.to_string(), "{stored:?}");
    assert_eq!(
        bucket.metadata("shared/mydir/").await["gid"],
        NOBODY.to_string()
    );
    mount.remount_with(&["--allow-other"]);
    open_to_others(&mount);
    let shared = mount.join("shared");
    assert_eq!(fs::metadata(shared.join("mine")).unwrap().uid(), NOBODY);
    assert_eq!(fs::metadata(shared.join("mydir")).unwrap().uid(), NOBODY);
    let out = as_nobody(&shared, "chmod 640 mine");
    assert!(out.status.success(), "after a remount too: {out:?}");
}

#[tokio::test]
async fn fifos_sockets_and_devices_are_stored_as_s3fs_stores_them() {
    let Env {
        s3,
        bucket,
        mut mount,
    } = Env::new().await;
    sh(
        mount.path(),
        "mkfifo -m 640 fifo && mknod chr c 1 3 && mknod blk b 7 0 && \
         python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('sock')\"",
    );
    // `with_rdev`: s3fs 1.90 keeps the type bits but neither stores nor reads device numbers.
    let check = |root: &Path, with_rdev: bool| {
        let t = |n: &str| fs::symlink_metadata(root.join(n)).unwrap();
        assert!(
            t("fifo").file_type().is_fifo(),
            "fifo in {}",
            root.display()
        );
        assert_eq!(t("fifo").mode() & 0o777, 0o640);
        assert!(t("chr").file_type().is_char_device());
        assert!(t("blk").file_type().is_block_device());
        assert!(t("sock").file_type().is_socket());
        if with_rdev {
            assert_eq!(t("chr").rdev(), libc::makedev(1, 3));
            assert_eq!(t("blk").rdev(), libc::makedev(7, 0));
        }
    };
    check(mount.path(), true);
    mount.remount();
    check(mount.path(), true);
    let stored = bucket.metadata("chr").await;
    assert_eq!(
        stored["mode"],
        (libc::S_IFCHR | 0o644).to_string(),
        "{stored:?}"
    );
    assert_eq!(stored["rdev"], libc::makedev(1, 3).to_string());
    assert_eq!(
        bucket.get("fifo").await,
        b"",
        "a special file is a zero-byte object"
    );
    assert_eq!(
        bucket.metadata("fifo").await["mode"],
        (libc::S_IFIFO | 0o640).to_string()
    );
    if !have_s3fs() {
        eprintln!("skipped the s3fs half: s3fs is not installed (apt-get install s3fs)");
        return;
    }
    drop(mount);
    let s3fs = S3fsMount::start(&s3, bucket.name());
    check(&s3fs.path(), false);
    sh(&s3fs.path(), "mkfifo s3fs-fifo && mknod s3fs-chr c 4 5");
    drop(s3fs);
    let mount = Mount::new(&s3, bucket.name(), &[]);
    assert!(fs::symlink_metadata(mount.join("s3fs-fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let chr = fs::symlink_metadata(mount.join("s3fs-chr")).unwrap();
    assert!(chr.file_type().is_char_device());
}

#[tokio::test]
async fn atime_is_stored_and_directory_times_follow_their_entries() {
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::new().await;
    sh(
        mount.path(),
        "echo t > t && touch -a -d @1000000000 t && cat t >/dev/null",
    );
    assert_eq!(
        atime(&mount.join("t")),
        (1_000_000_000, 0),
        "reads do not move atime"
    );
    assert_eq!(bucket.metadata("t").await["atime"], "1000000000");
    mount.remount();
    assert_eq!(atime(&mount.join("t")), (1_000_000_000, 0));

    let d = mount.join("d");
    fs::create_dir(&d).unwrap();
    let mut last = (mtime(&d), ctime(&d));
    for cmd in [
        "touch d/x",
        "mv d/x d/y",
        "rm d/y",
        "mkdir d/sub",
        "rmdir d/sub",
    ] {
        sleep(Duration::from_millis(20));
        sh(mount.path(), cmd);
        let now = (mtime(&d), ctime(&d));
        assert!(
            now.0 > last.0 && now.1 > last.1,
            "`{cmd}` moves d's times: {last:?} -> {now:?}"
        );
        last = now;
    }
    // The root has no marker object: its times live as long as the mount.
    sh(mount.path(), "touch -d '2020-02-02 00:00:00 UTC' .");
    assert_eq!(mtime(mount.path()).0, 1_580_601_600);
}

#[tokio::test]
async fn nlink_counts_subdirectories_and_an_open_unlinked_file_has_none() {
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::new().await;
    sh(mount.path(), "mkdir -p a/b a/c && touch a/f");
    assert_eq!(fs::metadata(mount.join("a")).unwrap().nlink(), 4);
    mount.remount();
    sh(mount.path(), "ls a >/dev/null");
    assert_eq!(
        fs::metadata(mount.join("a")).unwrap().nlink(),
        4,
        "after a remount"
    );

    // Create, unlink, use: the temp-file pattern.
    let path = mount.join("scratch");
    let mut f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    fs::remove_file(&path).unwrap();
    f.write_all(b"still here").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "still here");
    assert_eq!(f.metadata().unwrap().nlink(), 0);
    drop(f);
    assert!(!path.exists());
    assert!(!bucket.exists("scratch").await);
}

#[tokio::test]
async fn a_write_or_chown_clears_set_user_id() {
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = Env::with_args(&["--allow-other"]).await;
    open_to_others(&mount);
    sh(
        mount.path(),
        "echo x > prog && chmod 4777 prog && echo y > other && chmod 4755 other",
    );
    assert_eq!(mode(&mount.join("prog")) & 0o7777, 0o4777);
    let out = as_nobody(mount.path(), "echo more >> prog");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        mode(&mount.join("prog")) & 0o7777,
        0o777,
        "write by another user"
    );
    assert_eq!(
        bucket.metadata("prog").await["mode"],
        (libc::S_IFREG | 0o777).to_string()
    );
    std::os::unix::fs::chown(mount.join("other"), Some(NOBODY), None).unwrap();
    assert_eq!(mode(&mount.join("other")) & 0o7777, 0o755, "chown");
}

#[tokio::test]
async fn names_up_to_1024_bytes_are_listed_and_kept() {
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::new().await;
    let long = "n".repeat(300);
    fs::write(mount.join(&long), b"long").unwrap();
    bucket.put(&format!("{}.s3", "m".repeat(400)), b"put").await;
    mount.remount();
    let names: Vec<String> = fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&long), "{names:?}");
    assert!(names.iter().any(|n| n.len() == 403));
    assert_eq!(fs::read(mount.join(&long)).unwrap(), b"long");
    assert!(bucket.exists(&long).await);
    let err = fs::write(mount.join("x".repeat(1025)), b"x").unwrap_err();
    assert_eq!(errno(&err), libc::ENAMETOOLONG);
}

#[tokio::test]
async fn another_clients_chmod_shows_after_the_ttl_though_the_etag_stays() {
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = Env::with_args(&["--metadata-ttl", "1"]).await;
    bucket
        .put_with("tool.sh", b"#!/bin/sh\n", &[("mode", "33188")], &[], None)
        .await;
    sh(mount.path(), "ls -l >/dev/null");
    assert_eq!(mode(&mount.join("tool.sh")), libc::S_IFREG | 0o644);
    let etag = bucket
        .head("tool.sh")
        .await
        .unwrap()
        .e_tag()
        .map(str::to_string);
    sleep(Duration::from_millis(1100)); // a new Last-Modified second
                                        // s3fs's chmod from another machine: a copy onto itself with new metadata.
    bucket
        .client()
        .copy_object()
        .bucket(bucket.name())
        .key("tool.sh")
        .copy_source(format!("{}/tool.sh", bucket.name()))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("mode", "33261")
        .send()
        .await
        .unwrap();
    let after = bucket
        .head("tool.sh")
        .await
        .unwrap()
        .e_tag()
        .map(str::to_string);
    assert_eq!(etag, after, "the copy keeps the ETag of a simple upload");
    sleep(Duration::from_millis(1100));
    let listing = sh(mount.path(), "ls -l tool.sh");
    assert!(listing.starts_with("-rwxr-xr-x"), "{listing}");
}

#[tokio::test]
async fn a_plain_ls_or_find_asks_nothing_per_entry_and_ls_l_asks_once() {
    let Env { s3, bucket, mount } = Env::new().await;
    for i in 0..300 {
        bucket
            .put_with(
                &format!("many/f{i:03}"),
                b"x",
                &[("mode", "33216")],
                &[],
                None,
            )
            .await;
    }
    let per_entry = |from: usize| {
        s3.log()
            .lines()
            .skip(from)
            .filter(|l| (l.contains("HEAD /") || l.contains("GET /")) && l.contains("/many/f"))
            .count()
    };
    let before = s3.log().lines().count();
    sh(
        mount.path(),
        "ls many >/dev/null && find many -type f >/dev/null",
    );
    assert_eq!(
        per_entry(before),
        0,
        "ls and find without stat read no object's headers"
    );
    let before = s3.log().lines().count();
    let listing = sh(mount.path(), "ls -l many");
    let asked = per_entry(before);
    assert!(
        (1..=300).contains(&asked),
        "ls -l: {asked} requests for 300 entries"
    );
    // 33216 = S_IFREG | 0700: every line shows the stored mode, none the default 0644.
    let lines: Vec<&str> = listing.lines().filter(|l| l.contains(" f")).collect();
    assert_eq!(lines.len(), 300);
    assert!(
        lines.iter().all(|l| l.starts_with("-rwx------")),
        "{listing}"
    );
}

#[tokio::test]
async fn entries_of_a_set_group_id_directory_take_its_group() {
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::new().await;
    sh(
        mount.path(),
        "mkdir g && chgrp 65534 g && chmod 2775 g && touch g/f && mkdir g/d",
    );
    let check = |root: &Path| {
        let f = fs::metadata(root.join("g/f")).unwrap();
        let d = fs::metadata(root.join("g/d")).unwrap();
        assert_eq!(f.gid(), NOBODY, "a file in a set-group-ID directory");
        assert_eq!(d.gid(), NOBODY, "a directory in a set-group-ID directory");
        assert_ne!(
            d.mode() & libc::S_ISGID,
            0,
            "and it is set-group-ID in turn"
        );
    };
    check(mount.path());
    assert_eq!(bucket.metadata("g/f").await["gid"], NOBODY.to_string());
    mount.remount();
    check(mount.path());
}
