//! Real tools: cp -r, rsync -a, tar x, mv, sed -i, rm -r.

use super::*;

/// A local tree: a.txt, run.sh, sub/b.json, sub/deeper/c.bin (6 MiB), empty/.
fn make_local_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let files = vec![
        ("a.txt".to_string(), b"alpha\n".to_vec()),
        ("run.sh".to_string(), b"#!/bin/sh\necho hi\n".to_vec()),
        ("sub/b.json".to_string(), b"{\"b\": 1}\n".to_vec()),
        (
            "sub/deeper/c.bin".to_string(),
            pseudo_random_bytes(6 * MIB, 77),
        ),
    ];
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    for (name, data) in &files {
        fs::write(root.join(name), data).unwrap();
    }
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    files
}

#[track_caller]
fn assert_diff_clean(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .expect("run diff");
    assert!(
        out.status.success(),
        "diff -r {} {}:\n{}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn cp_r_copies_a_local_tree() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let local = local_tempdir("s3mount-wp-local-");
    let src = local.path().join("src");
    let files = make_local_tree(&src);

    let out = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(mount.join("dst"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut keys = bucket.list_keys("dst/").await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "dst/",
            "dst/a.txt",
            "dst/empty/",
            "dst/run.sh",
            "dst/sub/",
            "dst/sub/b.json",
            "dst/sub/deeper/",
            "dst/sub/deeper/c.bin"
        ]
    );
    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("dst/{name}")).await,
            data,
            &format!("dst/{name} in S3"),
        );
    }
    assert_eq!(
        content_type(&bucket, "dst/sub/b.json").await,
        "application/json"
    );
    assert_diff_clean(&src, &mount.join("dst"));
}

#[tokio::test]
async fn rsync_a_keeps_modes_and_times_and_a_second_run_transfers_nothing() {
    let Served { s3, bucket } = Served::new().await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let local = local_tempdir("s3mount-wp-local-");
    let src = local.path().join("src");
    let files = make_local_tree(&src);
    fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    // a fixed past time on everything (directories last)
    sh(
        &src,
        "find . -type f -exec touch -d '2021-06-01 12:00:00 UTC' {} + && \
         find . -depth -type d -exec touch -d '2021-06-01 12:00:00 UTC' {} +",
    );
    let dst = mount.join("dst");
    let rsync = |extra: &str| {
        sh(
            local.path(),
            &format!("rsync -a {extra} src/ '{}/'", dst.display()),
        )
    };
    rsync("");

    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("dst/{name}")).await,
            data,
            &format!("dst/{name} in S3"),
        );
    }
    let meta = bucket.metadata("dst/a.txt").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1622548800"),
        "{meta:?}"
    );
    let meta = bucket.metadata("dst/run.sh").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33261"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1622548800"),
        "{meta:?}"
    );
    let keys = bucket.list_keys("").await;
    assert!(
        !keys.iter().any(|k| k.contains("/.") || k.starts_with('.')),
        "no rsync temp file left: {keys:?}"
    );
    assert_diff_clean(&src, &dst);

    let again = rsync("--itemize-changes");
    assert_eq!(again.trim(), "", "second rsync -a should transfer nothing");
    mount.remount();
    let again = rsync("--itemize-changes");
    assert_eq!(
        again.trim(),
        "",
        "after a remount, rsync -a should still transfer nothing"
    );
}

#[tokio::test]
async fn tar_x_extracts_into_the_bucket() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let local = local_tempdir("s3mount-wp-local-");
    let src = local.path().join("tree");
    let files = make_local_tree(&src);
    sh(&src, "ln -s sub/b.json link.json");
    sh(
        &src,
        "find . -type f -exec touch -d '2019-05-05 05:05:05 UTC' {} +",
    );
    sh(local.path(), "tar cf tree.tar tree");
    let tarball = local.path().join("tree.tar");
    sh(mount.path(), &format!("tar xf '{}'", tarball.display()));

    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("tree/{name}")).await,
            data,
            &format!("tree/{name} in S3"),
        );
    }
    assert_eq!(bucket.get("tree/link.json").await, b"sub/b.json");
    assert_eq!(
        bucket
            .metadata("tree/link.json")
            .await
            .get("mode")
            .map(String::as_str),
        Some(SYMLINK_MODE)
    );
    assert!(bucket.exists("tree/empty/").await, "empty directory kept");
    assert_eq!(
        bucket
            .metadata("tree/a.txt")
            .await
            .get("mtime")
            .map(String::as_str),
        Some("1557032705"),
        "tar restores mtime"
    );
    assert_eq!(
        bucket
            .metadata("tree/run.sh")
            .await
            .get("mode")
            .map(String::as_str),
        Some("33261"),
        "tar restores the mode"
    );
    assert_diff_clean(&src, &mount.join("tree"));
}

#[tokio::test]
async fn mv_moves_a_directory_tree() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(
        mount.path(),
        "mkdir -p a/b/c a/empty && echo 1 > a/one.txt && echo 2 > a/b/two.txt && \
         echo 3 > a/b/c/three.txt",
    );
    let before = bucket.list_keys("a/").await;
    sh(mount.path(), "mv a z");
    assert_eq!(bucket.list_keys("a/").await, Vec::<String>::new());
    let mut want: Vec<String> = before.iter().map(|k| format!("z/{}", &k[2..])).collect();
    want.sort();
    let mut got = bucket.list_keys("z/").await;
    got.sort();
    assert_eq!(got, want);
    for k in ["z/", "z/empty/", "z/b/c/"] {
        assert!(got.contains(&k.to_string()), "{k} in {got:?}");
    }
    assert_eq!(bucket.get("z/b/c/three.txt").await, b"3\n");

    // from a local directory into the mount (copy, then remove the source)
    let local = local_tempdir("s3mount-wp-local-");
    let src = local.path().join("moving");
    let files = make_local_tree(&src);
    let reference = local.path().join("reference");
    sh(local.path(), "cp -a moving reference");
    sh(
        local.path(),
        &format!("mv moving '{}'", mount.join("moved").display()),
    );
    assert!(!src.exists());
    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("moved/{name}")).await,
            data,
            &format!("moved/{name}"),
        );
    }
    assert_diff_clean(&reference, &mount.join("moved"));
}

#[tokio::test]
async fn sed_i_edits_in_place() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put("conf/app.conf", b"name=demo\nport=80\nmode=test\n")
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(mount.path(), "sed -i 's/port=80/port=8080/' conf/app.conf");
    assert_eq!(
        bucket.get("conf/app.conf").await,
        b"name=demo\nport=8080\nmode=test\n"
    );
    sh(mount.path(), "sed -i '/mode=/d' conf/app.conf");
    assert_eq!(bucket.get("conf/app.conf").await, b"name=demo\nport=8080\n");
    assert_eq!(
        bucket.list_keys("").await,
        vec!["conf/app.conf".to_string()],
        "no temporary file left behind"
    );
}

#[tokio::test]
async fn rm_r_removes_a_tree() {
    let Served { s3, bucket } = Served::new().await;
    for k in [
        "t/",
        "t/a.txt",
        "t/b/c.txt",
        "t/d/",
        "t/d/e/f.txt",
        "keep.txt",
    ] {
        bucket
            .put(k, if k.ends_with('/') { &b""[..] } else { b"x" })
            .await;
    }
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(
        mount.path(),
        "mkdir -p t/new/deeper && echo n > t/new/deeper/n.txt",
    );
    sh(mount.path(), "rm -r t");
    assert_eq!(bucket.list_keys("t/").await, Vec::<String>::new());
    assert_eq!(bucket.list_keys("").await, vec!["keep.txt".to_string()]);
    assert!(!mount.join("t").exists());
}
