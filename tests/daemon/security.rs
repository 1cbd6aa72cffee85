//! Security: secrets never in logs (with `--debug` and `--log-directory`), the permission
//! defaults with and without `--allow-other`.

use super::*;

const SECRET: &str = "SECRETdoNotLog1234567890abcdef";
const SESSION_TOKEN: &str = "TOKENdoNotLog0987654321fedcba";

/// With `--debug`, neither the secret access key nor the session token nor a request signature
/// appears in stderr or in the `--log-directory` files — also when requests fail (500s,
/// resets, a stopped server, a missing object) and when the mount itself fails.
#[tokio::test]
async fn secrets_never_appear_in_logs() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("f.txt", b"content").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let logs = local_tempdir("s3mount-rel-logs-");
    let build = |b: MountBuilder| {
        b.env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
            .args(["--debug", "--max-attempts", "2"])
    };
    let mount = build(Mount::builder(&s3, bucket.name()).endpoint_url(&proxy.endpoint())).mount();
    let mount2 = build(Mount::builder(&s3, bucket.name()).endpoint_url(&proxy.endpoint()))
        .arg("--log-directory")
        .arg(logs.path())
        .mount();
    for m in [&mount, &mount2] {
        assert_eq!(fs::read(m.join("f.txt")).unwrap(), b"content");
        let _ = fs::read(m.join("missing.txt"));
        let r = proxy.fail(Rule::new("", "", Fault::Status500));
        let _ = fs::write(m.join("g.txt"), b"fails");
        let _ = fs::read_dir(m.join("nodir"));
        proxy.remove(r);
        let r = proxy.fail(Rule::new("", "", Fault::ResetMidBody));
        let _ = fs::write(m.join("h.txt"), b"fails too");
        proxy.remove(r);
        proxy.set_offline(true);
        let _ = fs::write(m.join("i.txt"), b"fails while offline");
        proxy.set_offline(false);
        fs::write(m.join("ok.txt"), b"works").unwrap();
    }
    // a mount that fails (wrong bucket), in the foreground
    let (_, failed_stderr) = build(Mount::builder(&s3, "no-such-bucket-here")).expect_failure();
    let mut texts = vec![
        ("stderr".to_string(), mount.stderr()),
        ("stderr (log-directory mount)".to_string(), mount2.stderr()),
        ("stderr of a failed mount".to_string(), failed_stderr),
    ];
    drop(mount);
    drop(mount2);
    for e in fs::read_dir(logs.path()).unwrap() {
        let e = e.unwrap();
        texts.push((
            e.path().display().to_string(),
            String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned(),
        ));
    }
    let total: usize = texts.iter().map(|(_, t)| t.len()).sum();
    assert!(
        texts.len() >= 4,
        "a log file was written: {:?}",
        texts.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert!(
        texts[0].1.contains("s3mount::requests"),
        "--debug logs the requests (so the check means something)"
    );
    for (name, text) in &texts {
        for needle in [
            SECRET,
            SESSION_TOKEN,
            "Signature=",
            "AWS4-HMAC-SHA256 Credential",
            "x-amz-security-token",
        ] {
            assert!(
                !text.contains(needle),
                "{name} contains {needle:?}:\n{}",
                text.lines()
                    .filter(|l| l.contains(needle))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    report_figures(&format!(
        "{} secret_checked_in_bytes={total} files={} secret_found=0",
        figures_prefix("security"),
        texts.len()
    ));
}

/// Defaults are safe: no allow_other (other users get EACCES even on stat), the kernel checks
/// permissions (`default_permissions`), files are 0644 and directories 0755 unless set.
/// With `--allow-other`, another user can read a 0644 file but not a 0600 one, and cannot
/// write a file that is not writable for it.
#[tokio::test]
async fn safe_defaults_and_kernel_permission_checks() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("public.txt", b"readable by all").await;
    bucket.put("dir/inner.txt", b"inner").await;
    // written by another tool (s3fs headers): mode 0600, owner root
    bucket
        .put_with(
            "s3fs-secret.txt",
            b"0600 by s3fs",
            &[("mode", "33152"), ("uid", "0"), ("gid", "0")],
            &[],
            None,
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let (opts, fstype, superopts) = mountinfo_options(mount.path()).expect("mountinfo line");
    assert!(fstype.starts_with("fuse"), "{fstype}");
    for o in [&opts, &superopts] {
        assert!(
            !o.split(',').any(|x| x == "allow_other"),
            "allow_other by default: {o}"
        );
    }
    assert!(
        superopts.split(',').any(|x| x == "default_permissions"),
        "default_permissions: {superopts}"
    );
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&mount.join("public.txt")), 0o644);
    assert_eq!(mode(&mount.join("dir")), 0o755);
    assert_eq!(mode(mount.path()), 0o755);
    fs::write(mount.join("made.txt"), b"x").unwrap();
    fs::create_dir(mount.join("madedir")).unwrap();
    assert_eq!(
        mode(&mount.join("made.txt")) & 0o7777,
        0o644,
        "created with umask 022"
    );
    assert_eq!(mode(&mount.join("madedir")), 0o755);
    let secret = mount.join("secret.txt");
    fs::write(&secret, b"only for root").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(mode(&secret), 0o600);

    // Another user cannot use the mount at all without --allow-other.
    let parent = mount.path().parent().unwrap().to_path_buf();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("setpriv")
    };
    let public = mount.join("public.txt").display().to_string();
    let out = as_nobody(&["cat", &public]);
    assert!(
        !out.status.success(),
        "another user must not read the mount without --allow-other"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(mount);

    let mount = Mount::new(&s3, bucket.name(), &["--allow-other"]);
    let (opts, _, superopts) = mountinfo_options(mount.path()).unwrap();
    assert!(
        superopts.split(',').any(|x| x == "allow_other")
            || opts.split(',').any(|x| x == "allow_other"),
        "--allow-other shows in mountinfo: {opts} / {superopts}"
    );
    assert!(
        superopts.split(',').any(|x| x == "default_permissions"),
        "{superopts}"
    );
    let parent = mount.path().parent().unwrap().to_path_buf();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o755)).unwrap();
    let public = mount.join("public.txt").display().to_string();
    let secret = mount.join("secret.txt").display().to_string();
    let out = as_nobody(&["cat", &public]);
    assert!(
        out.status.success(),
        "--allow-other: another user reads a 0644 file: {out:?}"
    );
    assert_eq!(out.stdout, b"readable by all");
    let out = as_nobody(&["cat", &secret]);
    assert!(
        !out.status.success(),
        "a 0600 file is not readable by another user: {out:?}; mode through the mount {:o}, \
         x-amz-meta-mode {:?}",
        mode(&mount.join("secret.txt")),
        bucket.metadata("secret.txt").await.get("mode")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let out = as_nobody(&["sh", "-c", &format!("echo x >> '{public}'")]);
    assert!(
        !out.status.success(),
        "a 0644 file is not writable by another user"
    );
    let out = as_nobody(&["touch", &mount.join("new-by-nobody").display().to_string()]);
    assert!(
        !out.status.success(),
        "a 0755 root-owned directory refuses another user's create"
    );
    assert_eq!(bucket.get("public.txt").await, b"readable by all");
    assert!(!bucket.exists("new-by-nobody").await);

    // A listing carries no user metadata: after `ls -l` (readdirplus) the kernel must still not
    // let another user read a file whose stored mode is 0600.
    let (ok, _) = run_quiet("ls", &["-l".as_ref(), mount.path().as_os_str()]);
    assert!(ok);
    let s3fs_secret = mount.join("s3fs-secret.txt").display().to_string();
    let out = as_nobody(&["cat", &s3fs_secret]);
    assert!(
        !out.status.success(),
        "after `ls -l`, another user read a file stored with mode 0600 (x-amz-meta-mode 33152): \
         {out:?}; mode through the mount {:o}",
        mode(&mount.join("s3fs-secret.txt"))
    );
}
