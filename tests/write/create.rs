//! Creating and writing files: round trips around part boundaries, Content-Type guessing,
//! O_TRUNC overwrite, appends, writes in the middle and past the end, truncate, UploadPartCopy
//! reuse for a large object, read-your-writes before close, fsync committing.

use super::*;

#[tokio::test]
async fn sizes_around_part_boundaries_round_trip() {
    let Served { s3, bucket } = Served::new().await;
    let mut mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);
    let sizes = [0, 1, PART - 1, PART, PART + 1, 2 * PART + 7];
    for (i, &size) in sizes.iter().enumerate() {
        let data = pseudo_random_bytes(size, i as u64 + 1);
        let name = format!("size-{size}.bin");
        must_write(&mount.join(&name), &data);
        // the object is in the bucket once close returned
        assert_same_bytes(
            &bucket.get(&name).await,
            &data,
            &format!("S3 body of {name}"),
        );
        let etag = etag(&bucket, &name).await;
        if size < PART {
            assert!(
                !etag.contains('-'),
                "{name}: smaller than a part, one PutObject expected (ETag {etag})"
            );
        } else if size > PART {
            let parts = size.div_ceil(PART);
            assert!(
                etag.trim_matches('"').ends_with(&format!("-{parts}")),
                "{name}: expected a {parts}-part upload of --write-part-size parts (ETag {etag})"
            );
        }
        assert_eq!(fs::metadata(mount.join(&name)).unwrap().len(), size as u64);
    }
    mount.remount();
    for (i, &size) in sizes.iter().enumerate() {
        let data = pseudo_random_bytes(size, i as u64 + 1);
        let name = format!("size-{size}.bin");
        assert_same_bytes(
            &fs::read(mount.join(&name)).unwrap(),
            &data,
            &format!("{name} read back after remount"),
        );
    }
}

#[tokio::test]
async fn content_type_is_guessed_from_the_name() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);
    must_write(&mount.join("notes.txt"), b"plain\n");
    must_write(&mount.join("data.json"), b"{}\n");
    must_write(&mount.join("page.html"), b"<p>\n");
    must_write(&mount.join("blob"), b"\x00\x01");
    // a multipart upload carries it too
    must_write(&mount.join("large.txt"), &vec![b'a'; PART + 1]);
    assert_eq!(content_type(&bucket, "notes.txt").await, "text/plain");
    assert_eq!(content_type(&bucket, "data.json").await, "application/json");
    assert_eq!(content_type(&bucket, "page.html").await, "text/html");
    assert_eq!(
        content_type(&bucket, "blob").await,
        "application/octet-stream"
    );
    assert_eq!(content_type(&bucket, "large.txt").await, "text/plain");
}

#[tokio::test]
async fn overwrite_with_o_trunc_replaces_the_content() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "f.txt",
            b"the old content, longer than the new one\n",
            &[("mode", "33152"), ("color", "blue")],
            &[],
            Some("text/plain"),
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    must_write(&mount.join("f.txt"), b"new\n");
    assert_eq!(bucket.get("f.txt").await, b"new\n");
    assert_eq!(fs::read(mount.join("f.txt")).unwrap(), b"new\n");
    // the file's mode and other metadata are the file's, not the content's
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("blue"),
        "{meta:?}"
    );
    // overwrite with shell redirection too
    sh(mount.path(), "echo replaced > f.txt");
    assert_eq!(bucket.get("f.txt").await, b"replaced\n");
}

#[tokio::test]
async fn appends_with_the_shell_and_with_o_append() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("log.txt", b"line1\n").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(mount.path(), "echo line2 >> log.txt");
    assert_eq!(bucket.get("log.txt").await, b"line1\nline2\n");
    write_with(
        OpenOptions::new().append(true),
        &mount.join("log.txt"),
        b"line3\n",
    )
    .unwrap();
    assert_eq!(bucket.get("log.txt").await, b"line1\nline2\nline3\n");
    // >> on a missing file creates it
    sh(
        mount.path(),
        "echo first >> new.txt && echo second >> new.txt",
    );
    assert_eq!(bucket.get("new.txt").await, b"first\nsecond\n");
    assert_eq!(
        fs::read(mount.join("log.txt")).unwrap(),
        b"line1\nline2\nline3\n"
    );
}

#[tokio::test]
async fn writes_in_the_middle_and_past_the_end() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("mid.bin", vec![b'a'; 100]).await;
    bucket.put("hole.bin", b"abc").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    let mut f = OpenOptions::new()
        .write(true)
        .open(mount.join("mid.bin"))
        .unwrap();
    f.seek(SeekFrom::Start(40)).unwrap();
    f.write_all(b"XYZ").unwrap();
    close(f).unwrap();
    let mut want = vec![b'a'; 100];
    want[40..43].copy_from_slice(b"XYZ");
    assert_eq!(bucket.get("mid.bin").await, want);

    let mut f = OpenOptions::new()
        .write(true)
        .open(mount.join("hole.bin"))
        .unwrap();
    f.seek(SeekFrom::Start(10)).unwrap();
    f.write_all(b"Z").unwrap();
    close(f).unwrap();
    assert_eq!(bucket.get("hole.bin").await, b"abc\0\0\0\0\0\0\0Z");
    assert_eq!(
        fs::read(mount.join("hole.bin")).unwrap(),
        b"abc\0\0\0\0\0\0\0Z"
    );

    // a new file written with a hole in front
    let mut f = File::create(mount.join("sparse.bin")).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(b"end").unwrap();
    close(f).unwrap();
    let mut want = vec![0u8; 4096];
    want.extend_from_slice(b"end");
    assert_eq!(bucket.get("sparse.bin").await, want);
}

#[tokio::test]
async fn truncate_shrinks_and_grows() {
    let Served { s3, bucket } = Served::new().await;
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    bucket.put("t.bin", &body).await;
    bucket.put("ft.bin", &body).await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    sh(mount.path(), "truncate -s 10 t.bin");
    assert_eq!(bucket.get("t.bin").await, &body[..10]);
    sh(mount.path(), "truncate -s 20 t.bin");
    let mut want = body[..10].to_vec();
    want.resize(20, 0);
    assert_eq!(bucket.get("t.bin").await, want);
    assert_eq!(fs::metadata(mount.join("t.bin")).unwrap().len(), 20);
    sh(mount.path(), "truncate -s 0 t.bin");
    assert_eq!(bucket.get("t.bin").await, b"");

    // ftruncate on an open descriptor, then a write, then close
    let f = OpenOptions::new()
        .write(true)
        .open(mount.join("ft.bin"))
        .unwrap();
    f.set_len(5).unwrap();
    f.set_len(8).unwrap();
    close(f).unwrap();
    let mut want = body[..5].to_vec();
    want.resize(8, 0);
    assert_eq!(bucket.get("ft.bin").await, want);
}

#[tokio::test]
async fn changing_the_last_part_of_a_large_object_copies_the_rest_server_side() {
    let Served { s3, bucket } = Served::new().await;
    let size = 12 * MIB;
    let old = pseudo_random_bytes(size, 42);
    bucket.put("large.bin", &old).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-wp-local-");
    let mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG, "--debug"],
    );

    let mut f = OpenOptions::new()
        .write(true)
        .open(mount.join("large.bin"))
        .unwrap();
    f.seek(SeekFrom::Start((size - 100) as u64)).unwrap();
    f.write_all(&[b'#'; 50]).unwrap();
    proxy.reset_log();
    close(f).unwrap();

    let mut want = old.clone();
    want[size - 100..size - 50].fill(b'#');
    assert_same_bytes(&bucket.get("large.bin").await, &want, "large.bin in S3");
    let copies = proxy.count_where(|r| r.is_upload_part_copy());
    let uploads = proxy.count_where(|r| r.is_upload_part());
    assert_eq!(
        (copies, uploads),
        (2, 1),
        "parts 1-2 (10 MiB) unchanged should be UploadPartCopy, part 3 uploaded; requests:\n{}",
        proxy.summary()
    );
    assert_eq!(
        proxy.count_where(|r| r.is_complete_multipart()),
        1,
        "{}",
        proxy.summary()
    );
    let uploaded: usize = proxy
        .requests()
        .iter()
        .filter(|r| r.is_upload_part())
        .map(|r| r.body_len)
        .sum();
    assert_eq!(
        uploaded,
        size - 2 * PART,
        "only the last part's bytes are sent"
    );
    assert_same_bytes(
        &fs::read(mount.join("large.bin")).unwrap(),
        &want,
        "large.bin through the mount",
    );
}

#[tokio::test]
async fn a_file_reads_back_before_it_is_closed() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("existing.txt", b"0123456789").await;
    let mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);

    // a new file, through the same descriptor and through a second one
    let path = mount.join("rw.txt");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    f.write_all(b"hello, ").unwrap();
    f.write_all(b"world").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "hello, world", "same descriptor");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"hello, world",
        "second descriptor"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 12, "stat while open");
    close(f).unwrap();
    assert_eq!(bucket.get("rw.txt").await, b"hello, world");

    // an existing object changed in the middle
    let path = mount.join("existing.txt");
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(3)).unwrap();
    f.write_all(b"abc").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"012abc6789", "second descriptor");
    close(f).unwrap();
    assert_eq!(bucket.get("existing.txt").await, b"012abc6789");

    // a multipart-sized file whose first part is already streaming
    let path = mount.join("big.bin");
    let data = pseudo_random_bytes(PART + MIB, 3);
    let mut f = File::create(&path).unwrap();
    f.write_all(&data).unwrap();
    assert_same_bytes(&fs::read(&path).unwrap(), &data, "big.bin before close");
    close(f).unwrap();
    assert_same_bytes(&bucket.get("big.bin").await, &data, "big.bin in S3");
}

#[tokio::test]
async fn fsync_returns_once_the_object_is_in_the_bucket() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);

    let mut f = File::create(mount.join("synced.txt")).unwrap();
    f.write_all(b"first").unwrap();
    f.sync_all().unwrap();
    assert_eq!(
        bucket.try_get("synced.txt").await.as_deref(),
        Some(&b"first"[..])
    );
    f.write_all(b" second").unwrap();
    f.sync_data().unwrap();
    assert_eq!(bucket.get("synced.txt").await, b"first second");
    close(f).unwrap();
    assert_eq!(bucket.get("synced.txt").await, b"first second");

    // a multipart upload, and writing on after the fsync
    let data = pseudo_random_bytes(PART + MIB, 9);
    let mut f = File::create(mount.join("big.bin")).unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    assert_same_bytes(&bucket.get("big.bin").await, &data, "after fsync");
    let more = pseudo_random_bytes(MIB, 10);
    f.write_all(&more).unwrap();
    close(f).unwrap();
    let mut want = data;
    want.extend_from_slice(&more);
    assert_same_bytes(&bucket.get("big.bin").await, &want, "after close");
}
