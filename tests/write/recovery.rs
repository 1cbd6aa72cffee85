//! Failed uploads kept on disk and sent again when the user asks: an upload fails (the server
//! is down), the mount is restarted and says what is waiting, `--list-failed-uploads` shows it,
//! `--retry-failed-uploads` fails cleanly while the server is still down and then sends it,
//! byte for byte, once it is back.

use super::*;

/// How long the release after a failed close may take to keep the data (it tries once more).
const RETRY_WINDOW: Duration = Duration::from_secs(90);

/// Runs `s3mount ARGS --cache-dir CACHE` (a command that does not mount) to its end.
fn s3mount_command(cache: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(s3mount_bin());
    hermetic_aws_env(&mut cmd);
    let out = cmd
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("run s3mount");
    eprintln!(
        "s3mount {args:?}: {}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_failed_upload_survives_a_remount_and_is_sent_again_on_request() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("doc.bin", b"old\n").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir("s3mount-wp-local-");
    let mut mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &[
            "--write-part-size",
            PART_ARG,
            "--max-attempts",
            "2",
            "--debug",
        ],
    );

    // More than one part: the retry is a multipart upload.
    let data = pseudo_random_bytes(PART + 12_345, 21);
    let mut f = File::create(mount.join("doc.bin")).unwrap();
    f.write_all(&data).unwrap();
    proxy.set_offline(true);
    let err = close(f).expect_err("close must fail while the server is down");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    wait_for_log(&mount, "kept at", 0, RETRY_WINDOW);
    proxy.set_offline(false);
    assert_eq!(
        bucket.get("doc.bin").await,
        b"old\n",
        "previous object intact"
    );

    // A restart says what is waiting.
    mount.remount();
    let log = mount.stderr();
    let notice = format!(
        "1 failed upload (1 for bucket '{}') is waiting in {}",
        bucket.name(),
        cache.path().join("failed-uploads").display()
    );
    assert!(
        log.contains(&notice),
        "no notice {notice:?} at mount:\n{log}"
    );
    assert!(log.contains("--retry-failed-uploads --cache-dir"), "{log}");
    let status = mount.unmount();
    assert!(status.is_some_and(|s| s.success()), "unmount: {status:?}");

    // Listed: one line with the key, the size and the error.
    let out = s3mount_command(cache.path(), &["--list-failed-uploads"]);
    assert!(out.status.success());
    let listed = text(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    let want = format!("s3://{}/doc.bin  {} bytes  ", bucket.name(), data.len());
    assert!(lines[0].contains(&want), "{listed}");
    let id = lines[0].split_whitespace().next().unwrap().to_string();

    // While the server is still down: one readable line, exit 1, the entry kept.
    proxy.set_offline(true);
    let out = s3mount_command(
        cache.path(),
        &["--retry-failed-uploads", "--max-attempts", "1"],
    );
    proxy.set_offline(false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 1, "one line:\n{stderr}");
    assert!(
        errors[0].starts_with(&format!("s3mount: error: {id}: upload of s3://")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Error {") && !stderr.contains("source:"),
        "{stderr}"
    );
    assert_eq!(bucket.get("doc.bin").await, b"old\n");

    // With the server up, by id: uploaded, byte for byte, with its metadata; then gone.
    let out = s3mount_command(cache.path(), &[&format!("--retry-failed-uploads={id}")]);
    assert!(out.status.success(), "retry failed:\n{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "uploaded s3://{}/doc.bin ({} bytes) from {id}",
            bucket.name(),
            data.len()
        )
    );
    assert_same_bytes(
        &bucket.get("doc.bin").await,
        &data,
        "doc.bin after the retry",
    );
    assert!(
        bucket.metadata("doc.bin").await.contains_key("mtime"),
        "the s3fs metadata of the failed upload is restored"
    );
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());
    let out = s3mount_command(cache.path(), &["--list-failed-uploads"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("no failed uploads in "),
        "{}",
        text(&out.stdout)
    );
}
