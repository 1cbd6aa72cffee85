//! What a new user meets on a first mount, through the real binary: which credentials win,
//! one readable line per failure cause (no Rust debug text), a silent endpoint that fails
//! within the startup limit and says what it waits for, mistyped buckets and flag values
//! refused with the reason, and a warning for a mount point that is not empty.

use super::*;

/// A line printed for a failure must not carry Rust's debug forms.
fn assert_readable(line: &str) {
    for noise in [
        "DispatchFailure",
        "ConnectorError",
        "Some(",
        " { ",
        "Os {",
        "Attempted:",
    ] {
        assert!(!line.contains(noise), "debug text {noise:?} in {line:?}");
    }
}

/// The one `s3mount: error:` line of `stderr`.
fn error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("s3mount: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected; stderr:\n{stderr}");
    assert_readable(lines[0]);
    lines[0].to_string()
}

/// Runs the binary with `args` alone (no server needed); returns (exit code, stderr).
fn run_cli(args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(s3mount_bin());
    hermetic_aws_env(&mut cmd);
    let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
    (
        exit_code(out.status),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A shared credentials file with profile `prof1` holding `keys`.
fn credentials_file(dir: &Path, keys: &(String, String)) -> PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        format!(
            "[prof1]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            keys.0, keys.1
        ),
    )
    .unwrap();
    path
}

/// With a denied user's keys in the environment, `--profile` with good keys still mounts (as
/// `aws --profile` does); without it the environment's keys are used and refused (control).
#[tokio::test]
async fn an_explicit_profile_wins_over_keys_in_the_environment() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("hello.txt", b"hello").await;
    let keys = s3.enable_iam_auth();
    let dir = tempfile::tempdir().unwrap();
    let file = credentials_file(dir.path(), &keys.allowed);
    let with_denied_env = |builder: MountBuilder| {
        builder
            .env("AWS_ACCESS_KEY_ID", &keys.denied.0)
            .env("AWS_SECRET_ACCESS_KEY", &keys.denied.1)
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
    };

    let (code, stderr) = with_denied_env(Mount::builder(&s3, bucket.name())).expect_failure();
    assert_eq!(code, 1);
    assert!(error_line(&stderr).contains("access denied"), "{stderr}");

    let mount = with_denied_env(Mount::builder(&s3, bucket.name()))
        .args(["--profile", "prof1"])
        .mount();
    assert_eq!(std::fs::read(mount.join("hello.txt")).unwrap(), b"hello");
}

/// An unknown profile is an error that names it, the files looked in and the profiles there.
#[tokio::test]
async fn an_unknown_profile_is_refused_by_name() {
    let Served { s3, bucket } = Served::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = credentials_file(dir.path(), &("AKIA0".into(), "secret0".into()));
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .env("AWS_SHARED_CREDENTIALS_FILE", &file)
        .args(["--profile", "prod1"])
        .expect_failure();
    assert_eq!(code, 1);
    let line = error_line(&stderr);
    assert!(line.contains("profile 'prod1' is not in"), "{line}");
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(line.contains("(profiles there: prof1)"), "{line}");
    assert!(!line.contains("secret0"), "{line}");
}

/// No credentials anywhere: one whole line that names the ways to give them.
#[tokio::test]
async fn no_credentials_is_one_line_naming_the_ways_to_give_them() {
    let Served { s3, bucket } = Served::new().await;
    let (code, stderr) = Mount::builder(&s3, bucket.name())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .expect_failure();
    assert_eq!(code, 1);
    assert_eq!(
        error_line(&stderr),
        "s3mount: error: no AWS credentials found: set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, give --profile NAME, or use --no-sign-request for a public \
         bucket"
    );
}

/// One readable line per cause: refused, TLS spoken to a plain-http server, timed out, and a
/// URL without a scheme (refused by the flag's own check, exit status 2). A DNS failure is
/// covered by the unit tests of `Transport`: resolving a name would leave loopback.
#[tokio::test]
async fn connection_failures_are_one_readable_line_each() {
    let Served { s3, bucket } = Served::new().await;
    let refused = format!("http://127.0.0.1:{}", free_port());
    let (code, stderr) = Mount::builder_for_endpoint(&refused, bucket.name()).expect_failure();
    assert_eq!(code, 1);
    assert_eq!(
        error_line(&stderr),
        format!(
            "s3mount: error: cannot connect to {refused}: connection refused: check \
             --endpoint-url and that the server is running"
        )
    );

    let https = s3.endpoint().replace("http://", "https://");
    let (_, stderr) = Mount::builder_for_endpoint(&https, bucket.name()).expect_failure();
    let line = error_line(&stderr);
    assert!(line.contains("TLS handshake failed"), "{line}");
    assert!(line.contains("http:// or https://"), "{line}");

    // Each attempt times out after 0.5 s; timeouts are tried again until the 20 s limit.
    let silent = SilentServer::start();
    let (_, stderr) = Mount::builder_for_endpoint(&silent.endpoint(), bucket.name())
        .args(["--read-timeout", "0.5", "--max-attempts", "2"])
        .timeout(Duration::from_secs(60))
        .expect_failure();
    let line = error_line(&stderr);
    assert!(line.contains("(timed out)"), "{line}");
    assert!(line.contains("--read-timeout"), "{line}");

    let (code, stderr) = run_cli(&["--endpoint-url", "127.0.0.1:5555", "bkt", "/mnt"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "'--endpoint-url <ENDPOINT_URL>': the URL has no scheme: write it as \
                         http://127.0.0.1:5555"
        ),
        "{stderr}"
    );
}

/// A server that accepts connections and never answers: the checks before mounting give up
/// within their 20 s limit (not the 2.5 minutes of a request's retries), and say what they
/// are waiting for after a few seconds.
#[tokio::test]
async fn a_silent_endpoint_fails_within_the_startup_limit_and_says_what_it_waits_for() {
    let silent = SilentServer::start();
    let started = Instant::now();
    let (code, stderr) = Mount::builder_for_endpoint(&silent.endpoint(), "quiet-bucket")
        .timeout(Duration::from_secs(90))
        .expect_failure();
    let took = started.elapsed();
    assert_eq!(code, 1);
    let line = error_line(&stderr);
    assert!(
        line.contains(&format!("no answer from {} in 20 s", silent.endpoint())),
        "{line}"
    );
    assert!(
        stderr.contains(&format!(
            "s3mount: waiting for {} to answer (listing the bucket); giving up after 20 s",
            silent.endpoint()
        )),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(40), "took {took:?}");
    eprintln!("a silent endpoint was reported in {took:?}");
}

/// Mistyped bucket names and URIs are refused with the reason, before any request.
#[test]
fn mistyped_buckets_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().to_str().unwrap();
    for (bucket, expected) in [
        (
            "s3:/photos",
            "'s3:/photos' is not a bucket name or an s3:// URI: write s3://photos",
        ),
        (
            "Photos_Bad",
            "'Photos_Bad' is not a valid bucket name: uppercase letters ('P') are not allowed",
        ),
    ] {
        let (code, stderr) = run_cli(&["--endpoint-url", "http://127.0.0.1:9", bucket, mnt]);
        assert_eq!(code, 1, "{stderr}");
        assert!(error_line(&stderr).contains(expected), "{stderr}");
    }
}

/// Flag values outside what works are refused with the valid range (exit status 2), not
/// silently adjusted.
#[test]
fn flag_values_outside_what_works_are_refused_with_the_range() {
    for (args, expected) in [
        (
            &["--write-part-size", "1000"][..],
            "1000 bytes is outside the valid range, 5 MiB (5242880 bytes) to 5 GiB",
        ),
        (
            &["--cache-size", "0"][..],
            "invalid value '0' for '--cache-size",
        ),
        (
            &["--part-size", "100KiB"][..],
            "102400 bytes is outside the valid range, 256 KiB (262144 bytes) to 5 GiB",
        ),
    ] {
        let mut argv = args.to_vec();
        argv.extend(["bkt", "/mnt"]);
        let (code, stderr) = run_cli(&argv);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// `--help` shows BUCKET and MOUNTPOINT as required, and a bad `-o` option's line has no
/// runs of spaces from a string continuation.
#[test]
fn help_and_option_errors_read_cleanly() {
    let out = Command::new(s3mount_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("  <BUCKET>") && help.contains("  <MOUNTPOINT>"),
        "{help}"
    );
    assert!(
        !help.contains("[BUCKET]") && !help.contains("[MOUNTPOINT]"),
        "{help}"
    );

    let (code, stderr) = run_cli(&["bkt", "/mnt", "-o", "bogus"]);
    assert_eq!(code, 1);
    let line = error_line(&stderr);
    assert!(!line.contains("  "), "{line:?}");
}

/// Mounting over a directory that has files warns that they will be hidden; the mount works.
#[tokio::test]
async fn a_mount_point_that_is_not_empty_gets_a_warning() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("remote.txt", b"remote").await;
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(mnt.join("local.txt"), b"local").unwrap();
    let mount = Mount::builder(&s3, bucket.name()).mountpoint(&mnt).mount();
    assert_eq!(std::fs::read(mount.join("remote.txt")).unwrap(), b"remote");
    let canonical = mnt.canonicalize().unwrap();
    assert!(
        mount.stderr().contains(&format!(
            "s3mount: warning: mount point {} is not empty: its 1 entry will be hidden until \
             the bucket is unmounted",
            canonical.display()
        )),
        "{}",
        mount.stderr()
    );
    drop(mount);
    assert_eq!(std::fs::read(mnt.join("local.txt")).unwrap(), b"local");

    // An empty mount point: no warning.
    let empty = Mount::new(&s3, bucket.name(), &[]);
    assert!(!empty.stderr().contains("not empty"), "{}", empty.stderr());
}

/// Accepts TCP connections on 127.0.0.1 and never answers, until dropped.
struct SilentServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
