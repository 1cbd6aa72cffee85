//! Unmount and signals: `fusermount3 -u`/`-uz` with a file open for writing, SIGTERM with
//! unsaved data, SIGKILL with `auto_unmount`.

use super::*;

/// `fusermount3 -u` while a file is open for writing with unsaved data: the unmount is refused
/// (EBUSY), the mount keeps working, and the data is uploaded when the file is closed. A lazy
/// unmount (`fusermount3 -uz`) detaches the mount at once, but the open file keeps working and
/// its data is uploaded on close, before s3mount exits.
#[tokio::test]
async fn unmount_with_a_file_open_for_writing_never_drops_it() {
    let Served { s3, bucket } = Served::new().await;
    let cache = local_tempdir("s3mount-rel-cache-");
    let mut mount = Mount::builder(&s3, bucket.name())
        .arg("--cache-dir")
        .arg(cache.path())
        .mount();
    let path = mount.join("open.txt");
    let mut f = File::create(&path).expect("create");
    f.write_all(b"written before the unmount;").unwrap();
    let (ok, err) = run_quiet("fusermount3", &["-u".as_ref(), mount.path().as_os_str()]);
    assert!(!ok, "fusermount3 -u must refuse a busy mount");
    assert!(err.contains("busy"), "fusermount3 -u: {err}");
    assert!(is_fuse_mounted(mount.path()), "still mounted");
    f.write_all(b" and after it").unwrap();
    close(f).expect("close uploads");
    assert_eq!(
        bucket.get("open.txt").await,
        b"written before the unmount; and after it"
    );

    // lazy unmount with unsaved data
    let path = mount.join("lazy.txt");
    let mut f = File::create(&path).expect("create");
    f.write_all(b"lazy: before;").unwrap();
    let pid = mount.pid().unwrap();
    let (ok, err) = run_quiet("fusermount3", &["-uz".as_ref(), mount.path().as_os_str()]);
    assert!(ok, "fusermount3 -uz: {err}");
    assert!(!is_fuse_mounted(mount.path()), "detached at once");
    f.write_all(b" after the lazy unmount").unwrap();
    assert!(
        process_alive(pid),
        "s3mount serves the open file until it is closed"
    );
    close(f).expect("close after a lazy unmount uploads");
    assert_eq!(
        bucket.get("lazy.txt").await,
        b"lazy: before; after the lazy unmount"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !process_alive(pid)),
        "s3mount exits once the last file of a lazily unmounted mount is closed"
    );
    let status = mount.unmount();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}; stderr:\n{}",
        mount.stderr()
    );
    assert_no_panic(&mount, "after the lazy unmount");
}

/// SIGTERM while a file is open for writing with unsaved data: s3mount uploads it before it
/// tries to unmount. If the upload is impossible (server down) the log says where the bytes
/// are kept, and they are there.
#[tokio::test]
async fn sigterm_uploads_unsaved_data_or_says_where_it_is_kept() {
    let Served { s3, bucket } = Served::new().await;
    let cache = local_tempdir("s3mount-rel-cache-");
    let proxy = FaultProxy::start(s3.endpoint());
    let mut mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["--max-attempts", "2", "--connect-timeout", "2"])
        .mount();
    let pid = mount.pid().unwrap();

    // 1. the server is up: SIGTERM uploads the open file's data
    let mut f = File::create(mount.join("term.txt")).expect("create");
    let data = pseudo_random_bytes(3 * MIB + 11, 71);
    f.write_all(&data).unwrap();
    signal(pid, libc::SIGTERM);
    let mut uploaded = false;
    for _ in 0..200 {
        if bucket.try_get("term.txt").await.is_some_and(|b| b == data) {
            uploaded = true;
            break;
        }
        sleep(Duration::from_millis(100));
    }
    assert!(
        uploaded,
        "SIGTERM must upload the open file's unsaved data; stderr:\n{}",
        mount.stderr()
    );
    // The mount is busy (the file is still open): what happens to the process is recorded.
    let alive_while_open = process_alive(pid) && is_fuse_mounted(mount.path());
    let closed = close(f);
    let exited_after_close = wait_until(Duration::from_secs(5), || !process_alive(pid));
    report_figures(&format!(
        "{} sigterm_with_open_file: uploaded=true still_mounted_while_open={alive_while_open} \
         close={:?} exited_within_5s_after_close={exited_after_close}",
        figures_prefix("signals"),
        closed.as_ref().map_err(|e| errno_label(os_errno(e)))
    ));
    dump_mount_log(&mount, "sigterm-server-up");
    assert_no_panic(&mount, "after SIGTERM");
    let _ = mount.unmount();

    // 2. the server is down: SIGTERM cannot upload; the log must say where the bytes are
    mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["--max-attempts", "2", "--connect-timeout", "2"])
        .mount();
    let pid = mount.pid().unwrap();
    let mut f = File::create(mount.join("down.txt")).expect("create");
    f.write_all(b"unsaved while the server is down").unwrap();
    proxy.set_offline(true);
    signal(pid, libc::SIGTERM);
    let kept = wait_until(Duration::from_secs(60), || {
        mount.stderr().contains("kept at")
    });
    let log = mount.stderr();
    proxy.set_offline(false);
    assert!(
        kept,
        "the log must say where unsaved data is kept; stderr:\n{log}"
    );
    let line = log.lines().rev().find(|l| l.contains("kept at")).unwrap();
    let rest = &line[line.find("kept at ").unwrap() + "kept at ".len()..];
    let kept_path = PathBuf::from(rest[..rest.find(": ").unwrap_or(rest.len())].trim());
    assert_eq!(
        fs::read(&kept_path).unwrap_or_default(),
        b"unsaved while the server is down",
        "the bytes are at {}",
        kept_path.display()
    );
    drop(f);
    assert!(
        !bucket.exists("down.txt").await,
        "nothing half-written appeared"
    );
    dump_mount_log(&mount, "sigterm-server-down");
    assert_no_panic(&mount, "after SIGTERM with the server down");
}

/// SIGKILL with `--auto-unmount`: the mount goes away by itself (no "Transport endpoint is not
/// connected"), and the mount point is usable again. Unsaved data of a killed process cannot
/// be uploaded; its staging file stays in `--cache-dir` (recorded in the figures).
#[tokio::test]
async fn sigkill_with_auto_unmount_leaves_no_dead_mount() {
    let Served { s3, bucket } = Served::new().await;
    let cache = local_tempdir("s3mount-rel-cache-");
    let mut mount = Mount::builder(&s3, bucket.name())
        .arg("--auto-unmount")
        .arg("--cache-dir")
        .arg(cache.path())
        .mount();
    fs::write(mount.join("saved.txt"), b"saved").unwrap();
    let mut f = File::create(mount.join("unsaved.txt")).unwrap();
    f.write_all(b"never closed").unwrap();
    let pid = mount.pid().unwrap();
    signal(pid, libc::SIGKILL);
    // fusermount3's auto-unmount process notices the closed session and detaches; under the
    // load of the whole suite on two cores that has once taken more than 15 s.
    let gone = wait_until(Duration::from_secs(45), || !is_fuse_mounted(mount.path()));
    drop(f);
    assert!(gone, "--auto-unmount: the mount must go away after SIGKILL");
    let meta = fs::metadata(mount.path()).expect("stat of the mount point after SIGKILL");
    assert!(meta.is_dir());
    assert_eq!(
        fs::read_dir(mount.path()).unwrap().count(),
        0,
        "plain empty directory again"
    );
    assert_eq!(bucket.get("saved.txt").await, b"saved");
    let staged: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| fs::read(e.path()).is_ok_and(|b| b == b"never closed"))
        .collect();
    report_figures(&format!(
        "{} sigkill_auto_unmount: unmounted=true unsaved_bytes_left_in_cache_dir={}",
        figures_prefix("signals"),
        !staged.is_empty()
    ));
    let _ = mount.unmount();
}
