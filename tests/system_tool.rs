//! s3mount as a system tool: background mode and its readiness report, mounting
//! through `mount -t fuse.s3mount` with `-o` options, syslog and log files, `--debug` request
//! lines without secrets, Prometheus metrics, systemd notification, man page, completions and
//! the install script.
//!
//! Background mounts are started here directly (the fixtures' `Mount` always passes
//! `--foreground`). Every daemon started by a test is found by its executable and mount point
//! and stopped by a guard, so a failing assertion leaves no mount and no process behind.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// How long the parent of a background mount may take to report (the unreachable-endpoint
/// case goes through the SDK's retries).
const PARENT_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// Kill the child with `signal` if the test's thread dies first.
fn die_with_test(cmd: &mut Command, signal: libc::c_int) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0);
            Ok(())
        });
    }
}

/// Runs `cmd` to completion with stdout and stderr captured. Fails the test if it has not
/// exited *and closed both pipes* within `timeout`: a background daemon that kept the
/// caller's stderr would hang every `$(s3mount ...)`.
fn run_to_end(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for the command"),
        Err(_) => {
            // SAFETY: plain kill(2) on a process we started.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("{cmd:?} did not finish (or left its output pipes open) within {timeout:?}");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Processes running the s3mount binary with `mountpoint` among their arguments (zombies,
/// which this machine's init may never reap, do not count).
fn daemons_for(mountpoint: &Path) -> Vec<i32> {
    let exe = std::fs::canonicalize(s3mount_bin()).unwrap_or_else(|_| s3mount_bin());
    let want = mountpoint.as_os_str().as_encoded_bytes().to_vec();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let dir = entry.path();
        // A binary replaced by a rebuild while running shows as "PATH (deleted)".
        let Ok(running) = std::fs::read_link(dir.join("exe")) else {
            continue;
        };
        let running = running.to_string_lossy();
        if running.trim_end_matches(" (deleted)") != exe.to_string_lossy() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|b| *b == 0).any(|arg| arg == want.as_slice()) {
            continue;
        }
        if process_state(pid).is_some_and(|s| s != 'Z') {
            pids.push(pid);
        }
    }
    pids
}

/// The state letter of a process (R, S, Z, ...), or None once it is gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Whether the process is gone (or a zombie).
fn exited(pid: i32) -> bool {
    process_state(pid).is_none_or(|s| s == 'Z')
}

/// SIGTERM, then SIGKILL, every daemon serving `mountpoint`.
fn stop_daemons(mountpoint: &Path) {
    for pid in daemons_for(mountpoint) {
        // SAFETY: plain kill(2).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if !wait_until(Duration::from_secs(3), || exited(pid)) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Every log file in `dir`, concatenated.
fn read_logs(dir: &Path) -> String {
    let mut all = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            all.push_str(&text(&std::fs::read(e.path()).unwrap_or_default()));
        }
    }
    all
}

/// A mount point for a background s3mount, and the guard that stops whatever runs there.
struct Background {
    dir: Option<tempfile::TempDir>,
    mountpoint: PathBuf,
}

impl Background {
    fn new() -> Background {
        let dir = tempfile::Builder::new()
            .prefix("s3mount-test-")
            .tempdir()
            .expect("tempdir");
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).expect("mkdir mnt");
        let mountpoint = mountpoint.canonicalize().expect("canonicalize");
        Background {
            dir: Some(dir),
            mountpoint,
        }
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("tempdir").path()
    }

    /// `s3mount BUCKET MOUNTPOINT --endpoint-url ... EXTRA` without `--foreground`.
    fn command(&self, endpoint: &str, bucket: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(s3mount_bin());
        hermetic_aws_env(&mut cmd);
        cmd.arg(bucket)
            .arg(&self.mountpoint)
            .args(["--endpoint-url", endpoint, "--force-path-style"])
            .args(["--region", REGION])
            .args(extra);
        cmd
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        force_unmount(&self.mountpoint);
        stop_daemons(&self.mountpoint);
        force_unmount(&self.mountpoint);
        if is_fuse_mounted(&self.mountpoint) {
            // Never let TempDir's cleanup walk into a live mount.
            if let Some(dir) = self.dir.take() {
                eprintln!("warning: leaving {} in place", dir.keep().display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// background mode
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn background_mount_is_live_when_the_parent_returns() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put("hello.txt", b"hello from the background\n")
        .await;
    let bg = Background::new();
    let logs = bg.dir().join("logs");

    let started = Instant::now();
    let out = run_to_end(
        bg.command(
            s3.endpoint(),
            bucket.name(),
            &["--log-directory", logs.to_str().unwrap()],
        ),
        PARENT_TIMEOUT,
    );
    assert_eq!(
        exit_code(out.status),
        0,
        "stderr:\n{}\nlog:\n{}",
        text(&out.stderr),
        read_logs(&logs)
    );
    assert!(
        out.stderr.is_empty() && out.stdout.is_empty(),
        "a successful background mount prints nothing; stderr:\n{}",
        text(&out.stderr)
    );
    // No waiting: the mount must be usable the moment the parent has returned.
    assert_eq!(
        mount_fstype(&bg.mountpoint).as_deref(),
        Some("fuse.s3mount"),
        "not mounted (as fuse.s3mount) when the parent returned"
    );
    assert_eq!(
        std::fs::read(bg.mountpoint.join("hello.txt")).expect("read through the mount"),
        b"hello from the background\n"
    );
    eprintln!("background mount ready in {:?}", started.elapsed());

    // One daemon, detached: its own session, stdio on /dev/null, logs in the directory.
    let pids = daemons_for(&bg.mountpoint);
    assert_eq!(pids.len(), 1, "daemons: {pids:?}");
    let pid = pids[0];
    // SAFETY: getsid has no memory arguments.
    assert_eq!(
        unsafe { libc::getsid(pid) },
        pid,
        "the daemon leads its own session"
    );
    for fd in 0..=2 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("fd link");
        assert_eq!(target, Path::new("/dev/null"), "fd {fd} of the daemon");
    }
    let log = read_logs(&logs);
    assert!(log.contains("mounted s3://"), "log:\n{log}");
    assert!(log.contains(&format!("s3mount[{pid}]")), "log:\n{log}");

    // fusermount3 -u ends the daemon.
    let status = Command::new("fusermount3")
        .arg("-u")
        .arg(&bg.mountpoint)
        .status()
        .expect("fusermount3");
    assert!(status.success(), "fusermount3 -u failed");
    assert!(
        wait_until(Duration::from_secs(15), || exited(pid)),
        "the daemon did not exit after the unmount"
    );
    assert!(!is_fuse_mounted(&bg.mountpoint));
    assert!(read_logs(&logs).contains("unmounted"));
}

#[tokio::test]
async fn background_mount_failures_reach_the_parent() {
    let Served { s3, bucket } = Served::new().await;
    let closed_port = free_port();
    let unreachable = format!("http://127.0.0.1:{closed_port}");

    struct Case<'a> {
        what: &'a str,
        endpoint: &'a str,
        bucket: &'a str,
        missing_mountpoint: bool,
        extra: &'a [&'a str],
        phrase: &'a str,
    }
    let cases = [
        Case {
            what: "missing bucket",
            endpoint: s3.endpoint(),
            bucket: "no-such-bucket-for-s3mount",
            missing_mountpoint: false,
            extra: &[],
            phrase: "does not exist",
        },
        Case {
            what: "unreachable endpoint",
            endpoint: &unreachable,
            bucket: bucket.name(),
            missing_mountpoint: false,
            extra: &[],
            phrase: "cannot connect",
        },
        Case {
            what: "missing mount point",
            endpoint: s3.endpoint(),
            bucket: bucket.name(),
            missing_mountpoint: true,
            extra: &[],
            phrase: "does not exist",
        },
        Case {
            what: "unknown -o option",
            endpoint: s3.endpoint(),
            bucket: bucket.name(),
            missing_mountpoint: false,
            extra: &["-o", "ro,bogus_option=1"],
            phrase: "unknown mount option 'bogus_option'",
        },
        Case {
            what: "metrics on a non-loopback address",
            endpoint: s3.endpoint(),
            bucket: bucket.name(),
            missing_mountpoint: false,
            extra: &["--metrics-addr", "0.0.0.0:9"],
            phrase: "not a loopback address",
        },
    ];
    for case in cases {
        let mut bg = Background::new();
        if case.missing_mountpoint {
            bg.mountpoint = bg.dir().join("missing");
        }
        let logs = bg.dir().join("logs");
        let mut extra = vec!["--log-directory", logs.to_str().unwrap()];
        extra.extend_from_slice(case.extra);
        let out = run_to_end(
            bg.command(case.endpoint, case.bucket, &extra),
            PARENT_TIMEOUT,
        );
        let stderr = text(&out.stderr);
        assert_eq!(exit_code(out.status), 1, "{}: stderr:\n{stderr}", case.what);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{}: one line expected:\n{stderr}",
            case.what
        );
        assert!(
            lines[0].starts_with("s3mount: error: "),
            "{}: {stderr}",
            case.what
        );
        assert!(
            lines[0].to_lowercase().contains(case.phrase),
            "{}: expected {:?} in:\n{stderr}",
            case.what,
            case.phrase
        );
        assert!(
            !is_fuse_mounted(&bg.mountpoint),
            "{}: something got mounted",
            case.what
        );
        assert!(
            wait_until(Duration::from_secs(5), || daemons_for(&bg.mountpoint)
                .is_empty()),
            "{}: a daemon was left running",
            case.what
        );
    }
}

#[tokio::test]
async fn background_logs_go_to_syslog() {
    let Served { s3, bucket } = Served::new().await;
    let bg = Background::new();
    let socket_path = bg.dir().join("log.sock");
    let syslog = UnixDatagram::bind(&socket_path).expect("bind a syslog socket");
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let mut cmd = bg.command(s3.endpoint(), bucket.name(), &[]);
    cmd.env("S3MOUNT_SYSLOG_SOCKET", &socket_path);
    let out = run_to_end(cmd, PARENT_TIMEOUT);
    assert_eq!(exit_code(out.status), 0, "stderr:\n{}", text(&out.stderr));
    assert!(is_fuse_mounted(&bg.mountpoint));

    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline
        && !messages
            .iter()
            .any(|m: &String| m.contains("mounted s3://"))
    {
        if let Ok(n) = syslog.recv(&mut buf) {
            messages.push(text(&buf[..n]));
        }
    }
    assert!(
        messages.iter().any(|m| m.contains("mounted s3://")),
        "syslog got: {messages:#?}"
    );
    let pid = daemons_for(&bg.mountpoint)[0];
    for m in &messages {
        // <daemon.info>s3mount[PID]: ...
        assert!(
            m.starts_with('<') && m.contains(&format!(">s3mount[{pid}]: ")),
            "not a syslog line: {m:?}"
        );
    }
    assert!(
        messages.iter().any(|m| m.starts_with("<30>")),
        "{messages:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// fstab: mount -t fuse.s3mount
// ---------------------------------------------------------------------------------------------

/// A private mount namespace in which /usr/local/sbin holds only a symlink `s3mount` to the
/// binary under test, so that `mount -t fuse.s3mount` (whose helper, mount.fuse3, looks the
/// program up in the standard PATH that mount(8) resets) runs this build without installing
/// anything on the machine. A `sleep` keeps the namespace; commands enter it with nsenter.
struct Namespace {
    holder: Child,
    mountpoint: PathBuf,
}

impl Namespace {
    fn new(bin_dir: &Path, mountpoint: &Path) -> Namespace {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind \"$1\" /usr/local/sbin && echo ready && exec sleep 600")
            .arg("sh")
            .arg(bin_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        die_with_test(&mut cmd, libc::SIGKILL);
        let mut holder = cmd.spawn().expect("unshare (util-linux)");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "could not set up a mount namespace");
        Namespace {
            holder,
            mountpoint: mountpoint.to_path_buf(),
        }
    }

    /// `nsenter --target HOLDER --mount -- PROGRAM ARGS...`, with the hermetic AWS variables.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        hermetic_aws_env(&mut cmd);
        cmd.arg("--target")
            .arg(self.holder.id().to_string())
            .args(["--mount", "--", program]);
        cmd
    }

    /// Whether `path` is an s3mount mount point (type fuse.s3mount) inside the namespace.
    fn is_mounted(&self, path: &Path) -> bool {
        let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.holder.id()))
            .unwrap_or_default();
        info.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(4) == Some(&path.to_str().unwrap())
                && l.split(" - ")
                    .nth(1)
                    .is_some_and(|t| t.starts_with("fuse.s3mount "))
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if self.is_mounted(&self.mountpoint) {
            let _ = self
                .command("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .stderr(Stdio::null())
                .status();
        }
        stop_daemons(&self.mountpoint);
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[tokio::test]
async fn mounts_through_mount_t_fuse_s3mount_and_umount() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("docs/hello.txt", b"hello from fstab\n").await;
    let bg = Background::new(); // its guard also stops the daemon if anything below fails
    let bin_dir = bg.dir().join("sbin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(s3mount_bin(), bin_dir.join("s3mount")).unwrap();
    let logs = bg.dir().join("logs");
    let ns = Namespace::new(&bin_dir, &bg.mountpoint);

    // What an /etc/fstab line `BUCKET/docs MNT fuse.s3mount OPTIONS 0 0` makes mount(8) do.
    let options = format!(
        "ro,allow_other,uid=4242,endpoint-url={},force_path_style,region={REGION},\
         log_directory={},_netdev,nofail,noatime,defaults,x-systemd.automount",
        s3.endpoint(),
        logs.display()
    );
    let mut mount = ns.command("mount");
    mount
        .args(["-t", "fuse.s3mount"])
        .arg(format!("{}/docs/", bucket.name()))
        .arg(&bg.mountpoint)
        .args(["-o", &options]);
    let out = run_to_end(mount, PARENT_TIMEOUT);
    assert_eq!(
        exit_code(out.status),
        0,
        "mount -t fuse.s3mount failed; stderr:\n{}\nlog:\n{}",
        text(&out.stderr),
        read_logs(&logs)
    );
    // mount(8) returned, so the mount is live.
    assert!(
        ns.is_mounted(&bg.mountpoint),
        "not mounted after mount(8) returned"
    );
    let pids = daemons_for(&bg.mountpoint);
    assert_eq!(pids.len(), 1, "daemons: {pids:?}");

    let cat = ns
        .command("cat")
        .arg(bg.mountpoint.join("hello.txt"))
        .output()
        .unwrap();
    assert_eq!(
        text(&cat.stdout),
        "hello from fstab\n",
        "{}",
        text(&cat.stderr)
    );
    // uid=4242 became --uid, ro became --read-only.
    let stat = ns
        .command("stat")
        .args(["-c", "%u"])
        .arg(bg.mountpoint.join("hello.txt"))
        .output()
        .unwrap();
    assert_eq!(text(&stat.stdout).trim(), "4242");
    let write = ns
        .command("sh")
        .arg("-c")
        .arg("echo x > \"$1\"")
        .arg("sh")
        .arg(bg.mountpoint.join("new.txt"))
        .output()
        .unwrap();
    assert!(!write.status.success(), "a write succeeded on an ro mount");
    assert!(
        text(&write.stderr).contains("Read-only file system"),
        "{}",
        text(&write.stderr)
    );

    // umount(8) unmounts, and the daemon exits.
    let umount = ns.command("umount").arg(&bg.mountpoint).output().unwrap();
    assert!(umount.status.success(), "umount: {}", text(&umount.stderr));
    assert!(!ns.is_mounted(&bg.mountpoint));
    let pid = pids[0];
    assert!(
        wait_until(Duration::from_secs(15), || exited(pid)),
        "the daemon did not exit after umount"
    );
}

// ---------------------------------------------------------------------------------------------
// metrics, debug log, systemd notification
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_endpoint_counts_reads() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(3 << 20, 5);
    bucket.put("data.bin", &data).await;

    let (mount, port) =
        mount_with_metrics(|| Mount::builder(&s3, bucket.name()).arg("--log-metrics=1"));

    let (status, before) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(before.contains("# TYPE s3mount_requests_total counter"));
    let get = "s3mount_requests_total{operation=\"GetObject\"}";
    let received = "s3mount_received_bytes_total{operation=\"GetObject\"}";
    let get_count = "s3mount_request_duration_seconds_count{operation=\"GetObject\"}";
    let cache = |body: &str| {
        sample(body, "s3mount_block_cache_hits_total")
            + sample(body, "s3mount_block_cache_misses_total")
    };

    assert_eq!(std::fs::read(mount.join("data.bin")).unwrap(), data);

    let (_, after) = http_get(port, "/metrics");
    assert!(
        sample(&after, get) > sample(&before, get),
        "GetObject count did not move:\n{after}"
    );
    assert!(
        sample(&after, received) - sample(&before, received) >= data.len() as f64,
        "received bytes did not move by the file size:\n{after}"
    );
    assert_eq!(sample(&after, get_count), sample(&after, get));
    assert!(
        cache(&after) > cache(&before),
        "cache counters did not move"
    );
    assert!(
        sample(
            &after,
            "s3mount_requests_total{operation=\"ListObjectsV2\"}"
        ) >= 1.0,
        "the mount-time check is a ListObjectsV2"
    );
    assert!(after.contains(
        "s3mount_request_duration_quantile_seconds{operation=\"GetObject\",quantile=\"0.99\"}"
    ));
    assert_eq!(http_get(port, "/nope").0, 404);

    // --log-metrics=1 logs a summary every second.
    assert!(
        wait_until(Duration::from_secs(5), || mount
            .stderr()
            .contains("metrics: GetObject")),
        "stderr:\n{}",
        mount.stderr()
    );
}

#[tokio::test]
async fn retries_and_errors_are_counted() {
    use common::fault_proxy::{Fault, FaultProxy, Rule};
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put("flaky.bin", pseudo_random_bytes(100 << 10, 3))
        .await;
    bucket.put("down.bin", b"never read").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let port = free_port();
    let mount = Mount::builder(&s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .args(["--debug", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .mount();

    // Two 503s, then the GET goes through: 2 retries, no error.
    proxy.fail(Rule::new("GET", "/flaky.bin", Fault::Status503).times(2));
    assert_eq!(
        std::fs::read(mount.join("flaky.bin")).unwrap(),
        pseudo_random_bytes(100 << 10, 3)
    );
    // Every attempt refused: the read fails, and the failure is counted by kind.
    proxy.fail(Rule::new("GET", "/down.bin", Fault::Status503));
    assert!(std::fs::read(mount.join("down.bin")).is_err());

    let (_, body) = http_get(port, "/metrics");
    let retries = sample(
        &body,
        "s3mount_request_retries_total{operation=\"GetObject\"}",
    );
    // 2 for flaky.bin, 4 (5 attempts) for down.bin.
    assert!(retries >= 6.0, "retries {retries}:\n{body}");
    assert!(
        sample(
            &body,
            "s3mount_request_errors_total{operation=\"GetObject\",error=\"throttled\"}"
        ) >= 1.0,
        "{body}"
    );
    let stderr = mount.stderr();
    assert!(
        stderr.lines().any(|l| l.contains("GetObject \"flaky.bin\"")
            && l.contains("status=206")
            && l.contains("attempts=3")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.contains("GetObject \"down.bin\"")
            && l.contains("status=503")
            && l.contains("error=throttled")
            && l.contains("attempts=5")),
        "{stderr}"
    );
}

#[tokio::test]
async fn debug_log_has_request_lines_and_no_secret() {
    const SECRET: &str = "sEcReT-s3mount-Zq8tL2vWx9Yk4Jm6Pn3Rb7Hd5Gf1";
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put("dir/data.bin", pseudo_random_bytes(300 << 10, 7))
        .await;
    let logs = tempfile::tempdir().unwrap();

    let mut mount = Mount::builder(&s3, bucket.name())
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .args(["--debug", "--log-directory"])
        .arg(logs.path())
        .mount();
    // First thing in the root, so it is resolved with a HEAD (a later miss in the same
    // directory would list the directory instead).
    assert!(std::fs::metadata(mount.join("missing.txt")).is_err());
    let _ = std::fs::read_dir(mount.join("dir")).unwrap().count();
    assert_eq!(
        std::fs::read(mount.join("dir/data.bin")).unwrap().len(),
        300 << 10
    );
    std::fs::write(mount.join("new.txt"), b"twelve bytes").unwrap();
    let stderr = mount.stderr();
    let status = mount.unmount();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    let log = read_logs(logs.path());
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("s3mount::requests:"))
        .collect();
    let has = |op: &str, key: &str, rest: &[&str]| {
        lines
            .iter()
            .any(|l| l.contains(&format!("{op} \"{key}\"")) && rest.iter().all(|r| l.contains(r)))
    };
    assert!(
        has("ListObjectsV2", "dir/", &["status=200", "latency="]),
        "{lines:#?}"
    );
    assert!(
        has(
            "GetObject",
            "dir/data.bin",
            &["status=206", "bytes=", "latency=", "total="]
        ),
        "{lines:#?}"
    );
    assert!(
        has(
            "GetObject",
            "missing.txt",
            &["status=404", "error=not_found"]
        ),
        "{lines:#?}"
    );
    assert!(
        has("PutObject", "new.txt", &["status=200", "bytes=12"]),
        "{lines:#?}"
    );
    for (what, haystack) in [("log", &log), ("stderr", &stderr)] {
        for needle in [
            SECRET,
            "Signature=",
            "X-Amz-Signature",
            "Authorization",
            "X-Amz-Credential",
        ] {
            assert!(!haystack.contains(needle), "{what} contains {needle:?}");
        }
    }
}

#[tokio::test]
async fn notifies_systemd_when_ready_and_stopping() {
    let Served { s3, bucket } = Served::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut mount = Mount::builder(&s3, bucket.name())
        .env("NOTIFY_SOCKET", &path)
        .mount();
    let mut buf = [0u8; 1024];
    let n = socket.recv(&mut buf).expect("READY=1 from s3mount");
    let ready = text(&buf[..n]);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains(&format!("MAINPID={}", mount.pid().unwrap())),
        "{ready:?}"
    );
    // SIGTERM: s3mount unmounts itself and exits 0.
    // SAFETY: plain kill(2) on the s3mount child.
    unsafe {
        libc::kill(mount.pid().unwrap() as libc::pid_t, libc::SIGTERM);
    }
    let n = socket.recv(&mut buf).expect("STOPPING=1 from s3mount");
    assert_eq!(text(&buf[..n]), "STOPPING=1");
    assert!(
        wait_until(Duration::from_secs(10), || !is_fuse_mounted(mount.path())),
        "still mounted after SIGTERM"
    );
    let status = mount.unmount();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// man page, completions, install script
// ---------------------------------------------------------------------------------------------

#[test]
fn generates_man_page_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(s3mount_bin())
        .arg("--generate-man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(dir.path().join("s3mount.1")).unwrap();
    assert!(page.contains(".TH s3mount 1"), "{page:.300}");
    for needle in [
        "endpoint\\-url",
        "FSTAB AND MOUNT(8)",
        "fuse.s3mount",
        "EXIT STATUS",
    ] {
        assert!(page.contains(needle), "man page lacks {needle:?}");
    }
    for (shell, needle) in [
        ("bash", "_s3mount()"),
        ("zsh", "#compdef s3mount"),
        ("fish", "complete -c s3mount"),
    ] {
        let out = Command::new(s3mount_bin())
            .args(["--generate-completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(
            script.contains(needle),
            "{shell} completion:\n{script:.300}"
        );
        assert!(
            script.contains("endpoint-url"),
            "{shell} completion lacks flags"
        );
    }
}

#[test]
fn install_script_installs_into_a_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--prefix")
        .arg(prefix.path())
        .arg("--binary")
        .arg(s3mount_bin())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let p = prefix.path();
    for file in [
        "bin/s3mount",
        "share/man/man1/s3mount.1",
        "share/bash-completion/completions/s3mount",
        "share/zsh/site-functions/_s3mount",
        "share/fish/vendor_completions.d/s3mount.fish",
    ] {
        assert!(p.join(file).is_file(), "{file} not installed");
    }
    let version = Command::new(p.join("bin/s3mount"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(text(&version.stdout).starts_with("s3mount "));
}
