//! `copy_file_range(2)` inside the mount: `cp` of a whole file is a CopyObject at the server
//! (counted at the test proxy), with the destination's own mode and times and the source's
//! Content-Type; a range is copied by the kernel through reads and writes; a source with
//! unsaved writes is saved first.

use super::*;

/// Runs a Python snippet with `args` as `sys.argv[1:]`; panics with its stderr on failure.
fn python(script: &str, args: &[&Path]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cp(from: &Path, to: &Path) {
    let out = Command::new("cp").arg(from).arg(to).output().expect("cp");
    assert!(
        out.status.success(),
        "cp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode_and_mtime(p: &Path) -> (u32, i64, i64) {
    let m = fs::metadata(p).unwrap();
    (m.mode(), m.mtime(), m.mtime_nsec())
}

#[tokio::test]
async fn cp_inside_the_mount_is_a_copy_on_the_server() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(2 * PART + 3 * MIB, 21);
    let custom = Some("application/x-custom");
    bucket.put_with("big.data", &data, &[], &[], custom).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-copy-");
    let mut mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG],
    );
    assert_eq!(
        fs::metadata(mount.join("big.data")).unwrap().len(),
        data.len() as u64
    );
    proxy.reset_log();

    cp(&mount.join("big.data"), &mount.join("copy.txt"));

    let seen = proxy.requests();
    let copies = seen.iter().filter(|r| r.is_copy_object()).count();
    let uploads: Vec<_> = seen
        .iter()
        .filter(|r| r.is_put_object() || r.is_upload_part() || r.is_create_multipart())
        .map(|r| format!("{} {} ({} bytes)", r.method, r.target, r.body_len))
        .collect();
    assert_eq!(copies, 1, "one CopyObject:\n{}", proxy.summary());
    assert!(uploads.is_empty(), "no upload of data: {uploads:?}");
    let sent: usize = seen.iter().map(|r| r.body_len).sum();
    assert!(sent < 64 << 10, "{sent} bytes sent to the server");
    let gets = seen.iter().filter(|r| r.method == "GET").count();
    eprintln!(
        "requests for cp: {} ({gets} GET)\n{}",
        seen.len(),
        proxy.summary()
    );

    assert!(bucket.get("copy.txt").await == data, "byte-identical copy");
    assert_eq!(
        content_type(&bucket, "copy.txt").await,
        "application/x-custom"
    );
    let meta = bucket.metadata("copy.txt").await;
    assert!(
        meta.contains_key("mode") && meta.contains_key("mtime"),
        "{meta:?}"
    );

    let made = mode_and_mtime(&mount.join("copy.txt"));
    mount.remount();
    assert_eq!(
        mode_and_mtime(&mount.join("copy.txt")),
        made,
        "stat after a remount"
    );
    assert!(fs::read(mount.join("copy.txt")).unwrap() == data);
}

#[tokio::test]
async fn a_partial_copy_file_range_is_copied_by_the_kernel() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(3 * MIB, 22);
    bucket.put("src.bin", &data).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-copy-");
    let mount = mount_via(&s3, &bucket, &proxy, &cache, &["--debug"]);
    // 1 MiB from offset 1000 of the source into a new file.
    let script = "import os, sys\n\
        s = os.open(sys.argv[1], os.O_RDONLY)\n\
        d = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n\
        left = 1 << 20\n\
        off = 1000\n\
        while left:\n\
        \x20   n = os.copy_file_range(s, d, left, offset_src=off)\n\
        \x20   assert n > 0\n\
        \x20   left -= n\n\
        \x20   off += n\n\
        os.close(d)\n";
    python(script, &[&mount.join("src.bin"), &mount.join("part.bin")]);
    assert!(bucket.get("part.bin").await == data[1000..1000 + MIB]);
    assert_eq!(proxy.count_where(|r| r.is_copy_object()), 0);
    assert_eq!(
        proxy.count_where(|r| r.is_put_object()),
        1,
        "written through the mount"
    );
}

#[tokio::test]
async fn a_copy_of_a_file_with_unsaved_writes_has_the_new_bytes() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(2 * MIB, 23);
    bucket.put("src.bin", &data).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-copy-");
    let mount = mount_via(&s3, &bucket, &proxy, &cache, &[]);
    // The writer still holds the file open, its write not saved, while cp copies it.
    let script = "import os, subprocess, sys\n\
        f = os.open(sys.argv[1], os.O_RDWR)\n\
        os.pwrite(f, b'NEW BYTES', 0)\n\
        subprocess.run(['cp', sys.argv[1], sys.argv[2]], check=True)\n\
        os.close(f)\n";
    python(script, &[&mount.join("src.bin"), &mount.join("dst.bin")]);
    let mut want = data.clone();
    want[..9].copy_from_slice(b"NEW BYTES");
    assert!(
        bucket.get("dst.bin").await == want,
        "the copy has the new bytes"
    );
    assert!(bucket.get("src.bin").await == want);
    assert_eq!(
        proxy.count_where(|r| r.is_copy_object()),
        1,
        "{}",
        proxy.summary()
    );
}
