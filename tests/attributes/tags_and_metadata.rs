//! Tags, metadata and Content-Type: as xattrs (equal to the object's tags, metadata and facts,
//! with xattr(7)'s ENODATA / ERANGE / size-query behaviour), edited through xattrs within S3's
//! limits without rewriting the object, and kept across rewrites and renames.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::DateTimeFormat;

use super::*;

/// `getfattr -d -e hex PATH`: name → value bytes.
fn getfattr_hex(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = tool(
        "getfattr",
        &[
            "-d".as_ref(),
            "-e".as_ref(),
            "hex".as_ref(),
            "--absolute-names".as_ref(),
            path.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "getfattr -d {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        let value = match value.strip_prefix("0x") {
            Some(hex) => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
                .collect(),
            None => value.trim_matches('"').as_bytes().to_vec(),
        };
        map.insert(name.to_string(), value);
    }
    map
}

/// What the contract says every object shows: its facts, `user.s3.meta.*` and `user.s3.tag.*`,
/// computed from the SDK's HeadObject and GetObjectTagging.
async fn expected_xattrs(bucket: &Bucket, key: &str) -> BTreeMap<String, Vec<u8>> {
    let head = bucket.head(key).await.expect("object exists");
    let mut want = BTreeMap::new();
    want.insert(
        "user.s3.etag".to_string(),
        head.e_tag().expect("ETag").as_bytes().to_vec(),
    );
    if let Some(ct) = head.content_type() {
        want.insert("user.s3.content-type".into(), ct.as_bytes().to_vec());
    }
    want.insert(
        "user.s3.storage-class".into(),
        head.storage_class()
            .map(|c| c.as_str().to_string())
            .unwrap_or_else(|| "STANDARD".into())
            .into_bytes(),
    );
    want.insert(
        "user.s3.last-modified".into(),
        head.last_modified()
            .expect("LastModified")
            .fmt(DateTimeFormat::DateTime)
            .unwrap()
            .into_bytes(),
    );
    if let Some(v) = head.version_id().filter(|v| *v != "null") {
        want.insert("user.s3.version-id".into(), v.as_bytes().to_vec());
    }
    for (k, v) in head.metadata().cloned().unwrap_or_default() {
        want.insert(format!("user.s3.meta.{k}"), v.into_bytes());
    }
    for (k, v) in bucket.tags(key).await {
        want.insert(format!("user.s3.tag.{k}"), v.into_bytes());
    }
    want
}

/// `getfattr -d` and listxattr/getxattr show exactly the object's tags, metadata and facts.
#[tokio::test]
async fn xattrs_equal_tags_metadata_and_facts() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "docs/tagged.txt",
            b"tagged object\n",
            &[("color", "blue"), ("owner-team", "storage eng")],
            &[
                ("team", "storage"),
                ("env", "test run"),
                ("note", "a/b=c+d@e:f"),
            ],
            Some("text/plain"),
        )
        .await;
    bucket.put("docs/plain.bin", b"no tags, no metadata").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    for key in ["docs/tagged.txt", "docs/plain.bin"] {
        let path = mount.join(key);
        let want = expected_xattrs(&bucket, key).await;

        // getfattr -d (the user. namespace) shows exactly these.
        assert_eq!(getfattr_hex(&path), want, "getfattr -d -e hex {key}");

        // listxattr: size query, then exact names.
        let (len, _) = listxattr(&path, 0).unwrap_or_else(|e| panic!("listxattr size {key}: {e}"));
        let (got_len, buf) = listxattr(&path, len).unwrap();
        assert_eq!(got_len, len, "listxattr length equals the size query");
        assert_eq!(
            xattr_names(&buf),
            want.keys().cloned().collect::<Vec<_>>(),
            "listxattr names of {key}"
        );
        // getxattr: size query, then the value.
        for (name, value) in &want {
            let (n, _) = getxattr(&path, name, 0).unwrap_or_else(|e| panic!("{name}: errno {e}"));
            assert_eq!(n, value.len(), "size query of {name}");
            let (n, got) = getxattr(&path, name, value.len() + 10).unwrap();
            assert_eq!(n, value.len());
            assert_eq!(got, *value, "value of {name} on {key}");
        }
    }

    // The text form, as a user sees it.
    let out = tool(
        "getfattr",
        &["-d".as_ref(), mount.join("docs/tagged.txt").as_os_str()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "user.s3.tag.team=\"storage\"",
        "user.s3.tag.env=\"test run\"",
        "user.s3.meta.color=\"blue\"",
        "user.s3.content-type=\"text/plain\"",
        "user.s3.storage-class=\"STANDARD\"",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "getfattr -d lacks {line}:\n{text}"
        );
    }
}

/// xattr(7) error behaviour: ENODATA for absent names, ERANGE for short buffers (getxattr and
/// listxattr), and directories (implicit or marker) list no attributes.
#[tokio::test]
async fn xattr_enodata_erange_and_directories() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with("f.txt", b"x", &[("k", "value")], &[("t", "tagvalue")], None)
        .await;
    bucket.put("implicit/child.txt", b"c").await;
    bucket.put("marked/", b"").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("f.txt");

    for absent in [
        "user.s3.tag.nope",
        "user.s3.meta.nope",
        "user.other",
        "user.s3.version-id",
    ] {
        assert_eq!(
            getxattr(&f, absent, 64).map(|r| r.0),
            Err(libc::ENODATA),
            "getxattr {absent}"
        );
        assert_eq!(
            getxattr(&f, absent, 0).map(|r| r.0),
            Err(libc::ENODATA),
            "size query of {absent}"
        );
    }
    let out = tool(
        "getfattr",
        &["-n".as_ref(), "user.s3.tag.nope".as_ref(), f.as_os_str()],
    );
    assert!(
        !out.status.success(),
        "getfattr -n of an absent name should fail"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such attribute"),
        "getfattr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ERANGE: a buffer one byte too small.
    assert_eq!(getxattr(&f, "user.s3.tag.t", 0).map(|r| r.0), Ok(8));
    assert_eq!(
        getxattr(&f, "user.s3.tag.t", 7).map(|r| r.0),
        Err(libc::ERANGE)
    );
    assert_eq!(
        getxattr(&f, "user.s3.tag.t", 8),
        Ok((8, b"tagvalue".to_vec()))
    );
    assert_eq!(
        getxattr(&f, "user.s3.meta.k", 4).map(|r| r.0),
        Err(libc::ERANGE)
    );
    let (len, _) = listxattr(&f, 0).unwrap();
    assert!(len > 0);
    assert_eq!(listxattr(&f, len - 1).map(|r| r.0), Err(libc::ERANGE));
    assert_eq!(listxattr(&f, len).map(|r| r.0), Ok(len));

    // Directories: an empty list, and ENODATA for any name.
    for dir in [
        mount.path().to_path_buf(),
        mount.join("implicit"),
        mount.join("marked"),
    ] {
        assert_eq!(
            listxattr(&dir, 0),
            Ok((0, Vec::new())),
            "listxattr size of {}",
            dir.display()
        );
        assert_eq!(
            listxattr(&dir, 256).map(|r| r.0),
            Ok(0),
            "listxattr of {}",
            dir.display()
        );
        assert_eq!(
            getxattr(&dir, "user.s3.etag", 64).map(|r| r.0),
            Err(libc::ENODATA),
            "getxattr on {}",
            dir.display()
        );
        let out = tool("getfattr", &["-d".as_ref(), dir.as_os_str()]);
        assert!(out.status.success());
        assert!(
            out.stdout.is_empty(),
            "getfattr -d of a directory should print nothing: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test]
async fn xattrs_edit_tags_without_rewriting_the_object() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with("x.txt", b"content", &[], &[], Some("text/plain"))
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let x = mount.join("x.txt");
    let etag0 = etag(&bucket, "x.txt").await;

    set_xattr(&x, "user.s3.tag.team", b"blue", 0).unwrap();
    assert_eq!(bucket.tags("x.txt").await, tags(&[("team", "blue")]));
    assert_eq!(get_xattr(&x, "user.s3.tag.team").unwrap(), b"blue");
    assert_eq!(etag(&bucket, "x.txt").await, etag0, "object not rewritten");

    // with the command-line tools
    sh(mount.path(), "setfattr -n user.s3.tag.env -v prod x.txt");
    assert_eq!(
        bucket.tags("x.txt").await,
        tags(&[("team", "blue"), ("env", "prod")])
    );
    let dump = sh(mount.path(), "getfattr -d x.txt");
    assert!(
        dump.contains("user.s3.tag.team=\"blue\"") && dump.contains("user.s3.tag.env=\"prod\""),
        "getfattr -d:\n{dump}"
    );

    // XATTR_CREATE / XATTR_REPLACE
    assert_errno(
        set_xattr(&x, "user.s3.tag.team", b"red", libc::XATTR_CREATE),
        libc::EEXIST,
        "XATTR_CREATE on an existing tag",
    );
    assert_errno(
        set_xattr(&x, "user.s3.tag.nope", b"v", libc::XATTR_REPLACE),
        libc::ENODATA,
        "XATTR_REPLACE on a missing tag",
    );
    set_xattr(&x, "user.s3.tag.team", b"green", libc::XATTR_REPLACE).unwrap();
    assert_eq!(
        bucket.tags("x.txt").await,
        tags(&[("team", "green"), ("env", "prod")])
    );

    remove_xattr(&x, "user.s3.tag.team").unwrap();
    assert_eq!(bucket.tags("x.txt").await, tags(&[("env", "prod")]));
    assert_errno(
        remove_xattr(&x, "user.s3.tag.team"),
        libc::ENODATA,
        "removing a missing tag",
    );
    assert_eq!(bucket.get("x.txt").await, b"content");
    assert_eq!(
        etag(&bucket, "x.txt").await,
        etag0,
        "object never rewritten"
    );

    // removing the last tag leaves an empty tag set
    sh(mount.path(), "setfattr -x user.s3.tag.env x.txt");
    assert_eq!(bucket.tags("x.txt").await, Vec::new());
    assert_eq!(etag(&bucket, "x.txt").await, etag0);
}

#[tokio::test]
async fn xattrs_edit_metadata_and_content_type() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "m.txt",
            b"content",
            &[("keep", "me")],
            &[("team", "x")],
            Some("text/plain"),
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let m = mount.join("m.txt");

    set_xattr(&m, "user.s3.meta.color", b"red", 0).unwrap();
    let meta = bucket.metadata("m.txt").await;
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("red"),
        "{meta:?}"
    );
    assert_eq!(meta.get("keep").map(String::as_str), Some("me"), "{meta:?}");
    assert_eq!(bucket.get("m.txt").await, b"content", "content unchanged");
    assert_eq!(
        bucket.tags("m.txt").await,
        tags(&[("team", "x")]),
        "tags kept"
    );
    assert_eq!(content_type(&bucket, "m.txt").await, "text/plain");
    assert_eq!(get_xattr(&m, "user.s3.meta.color").unwrap(), b"red");

    assert_errno(
        set_xattr(&m, "user.s3.meta.color", b"blue", libc::XATTR_CREATE),
        libc::EEXIST,
        "XATTR_CREATE on existing metadata",
    );
    assert_errno(
        set_xattr(&m, "user.s3.meta.missing", b"v", libc::XATTR_REPLACE),
        libc::ENODATA,
        "XATTR_REPLACE on missing metadata",
    );
    assert_eq!(
        bucket
            .metadata("m.txt")
            .await
            .get("color")
            .map(String::as_str),
        Some("red")
    );

    set_xattr(&m, "user.s3.content-type", b"application/x-s3mount-test", 0).unwrap();
    assert_eq!(
        content_type(&bucket, "m.txt").await,
        "application/x-s3mount-test"
    );
    assert_eq!(
        bucket.tags("m.txt").await,
        tags(&[("team", "x")]),
        "tags kept"
    );
    assert_eq!(
        bucket
            .metadata("m.txt")
            .await
            .get("color")
            .map(String::as_str),
        Some("red")
    );

    remove_xattr(&m, "user.s3.meta.color").unwrap();
    let meta = bucket.metadata("m.txt").await;
    assert!(!meta.contains_key("color"), "{meta:?}");
    assert_eq!(meta.get("keep").map(String::as_str), Some("me"), "{meta:?}");

    let etag_before = etag(&bucket, "m.txt").await;
    assert_errno(
        set_xattr(&m, "user.s3.etag", b"\"forged\"", 0),
        libc::EPERM,
        "user.s3.etag is read-only",
    );
    assert_eq!(etag(&bucket, "m.txt").await, etag_before);
    assert_eq!(bucket.get("m.txt").await, b"content");
}

#[tokio::test]
async fn xattrs_respect_s3_limits() {
    let Served { s3, bucket } = Served::new().await;
    let ten: Vec<(String, String)> = (0..10)
        .map(|i| (format!("t{i}"), format!("v{i}")))
        .collect();
    let ten_ref: Vec<(&str, &str)> = ten.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    bucket
        .put_with("full.txt", b"ten tags", &[], &ten_ref, None)
        .await;
    bucket
        .put_with("meta.txt", b"some metadata", &[("small", "1")], &[], None)
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let full = mount.join("full.txt");
    let mut want = ten.clone();
    want.sort();

    assert_errno(
        set_xattr(&full, "user.s3.tag.eleventh", b"x", 0),
        libc::ENOSPC,
        "an 11th tag",
    );
    assert_eq!(bucket.tags("full.txt").await, want, "tag set unchanged");

    let v256 = "v".repeat(256);
    set_xattr(&full, "user.s3.tag.t0", v256.as_bytes(), 0).expect("a 256-character value");
    want[0].1 = v256.clone();
    assert_eq!(bucket.tags("full.txt").await, want);
    assert_errno(
        set_xattr(&full, "user.s3.tag.t1", "w".repeat(257).as_bytes(), 0),
        libc::E2BIG,
        "a 257-character tag value",
    );
    assert_errno(
        set_xattr(&full, &format!("user.s3.tag.{}", "k".repeat(129)), b"v", 0),
        libc::E2BIG,
        "a 129-character tag key",
    );
    assert_eq!(bucket.tags("full.txt").await, want, "tag set unchanged");

    let m = mount.join("meta.txt");
    let etag_before = etag(&bucket, "meta.txt").await;
    assert_errno(
        set_xattr(&m, "user.s3.meta.big", "x".repeat(2100).as_bytes(), 0),
        libc::E2BIG,
        "over 2 KB of user metadata",
    );
    let meta = bucket.metadata("meta.txt").await;
    assert!(!meta.contains_key("big"), "{meta:?}");
    assert_eq!(
        etag(&bucket, "meta.txt").await,
        etag_before,
        "object untouched"
    );
    set_xattr(&m, "user.s3.meta.fits", "y".repeat(1000).as_bytes(), 0).unwrap();
    assert_eq!(
        bucket
            .metadata("meta.txt")
            .await
            .get("fits")
            .map(String::len),
        Some(1000)
    );
    assert_eq!(bucket.get("meta.txt").await, b"some metadata");
}

#[tokio::test]
async fn save_by_rename_keeps_the_content_type() {
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = Env::new().await;
    bucket
        .put_with("index.html", b"<p>a</p>\n", &[], &[], Some("text/html"))
        .await;
    bucket
        .put_with("data", b"a\n", &[], &[], Some("application/x-custom"))
        .await;
    sh(
        mount.path(),
        "sed -i s/a/b/ index.html && sed -i s/a/b/ data",
    );
    let ct = |key: &'static str| {
        let bucket = &bucket;
        async move {
            bucket
                .head(key)
                .await
                .unwrap()
                .content_type()
                .map(str::to_string)
        }
    };
    assert_eq!(bucket.get("index.html").await, b"<p>b</p>\n");
    assert_eq!(ct("index.html").await.as_deref(), Some("text/html"));
    // A type that was not guessed from the old name is kept as it is.
    assert_eq!(ct("data").await.as_deref(), Some("application/x-custom"));
}

#[tokio::test]
async fn rewrites_in_place_keep_tags_and_metadata_and_a_rename_over_replaces_them() {
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = Env::new().await;
    bucket
        .put_with(
            "f.txt",
            b"one\n",
            &[("color", "blue")],
            &[("team", "core")],
            Some("text/plain"),
        )
        .await;
    let tags = vec![("team".to_string(), "core".to_string())];
    for cmd in [
        "echo two >> f.txt",
        "echo three > f.txt",
        "truncate -s 2 f.txt",
    ] {
        sh(mount.path(), cmd);
        assert_eq!(bucket.tags("f.txt").await, tags, "tags after `{cmd}`");
        let meta = bucket.metadata("f.txt").await;
        assert_eq!(
            meta.get("color").map(String::as_str),
            Some("blue"),
            "{cmd}: {meta:?}"
        );
    }
    assert_eq!(bucket.get("f.txt").await, b"th");
    sh(mount.path(), "echo g > g.txt && mv g.txt f.txt");
    assert_eq!(
        bucket.tags("f.txt").await,
        vec![],
        "a rename over replaces the tags"
    );
    assert!(!bucket.metadata("f.txt").await.contains_key("color"));
}
