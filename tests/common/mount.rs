//! [`Mount`]: the s3mount binary running in the foreground with a live mount, unmounted and
//! reaped on drop; [`MountBuilder`] for its options; mountinfo helpers.

#![allow(dead_code)]

use super::*;

/// How long a mount may take to show up in /proc/self/mountinfo (or the process to exit).
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long s3mount may take to exit after an unmount request.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Path to the s3mount binary: `S3MOUNT_BIN` if set (e.g. a release build), else the one cargo
/// built for these tests.
pub fn s3mount_bin() -> PathBuf {
    std::env::var_os("S3MOUNT_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_s3mount")))
}

/// Escape a path the way the kernel writes it in /proc/self/mountinfo.
pub fn mountinfo_escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// The filesystem type of the mount at exactly `path` (e.g. `fuse.s3mount`), if any.
/// With stacked mounts, the topmost one.
pub fn mount_fstype(path: &Path) -> Option<String> {
    mountinfo_options(path).map(|(_, fstype, _)| fstype)
}

/// Whether a FUSE filesystem is mounted at exactly `path`.
pub fn is_fuse_mounted(path: &Path) -> bool {
    mount_fstype(path).is_some_and(|t| t == "fuse" || t.starts_with("fuse."))
}

/// Unmount whatever FUSE filesystem is at `path` (`fusermount3 -u`, then `umount -l`).
/// Returns whether the path is unmounted afterwards.
pub fn force_unmount(path: &Path) -> bool {
    for (prog, args) in [
        ("fusermount3", &["-u"][..]),
        ("fusermount3", &["-uz"][..]),
        ("umount", &["-l"][..]),
    ] {
        if !is_fuse_mounted(path) {
            return true;
        }
        let _ = Command::new(prog)
            .args(args)
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    !is_fuse_mounted(path)
}

/// Why a mount did not come up.
#[derive(Debug)]
pub struct MountFailure {
    /// Exit code (128 + signal if killed); -1 if it had to be killed after the timeout.
    pub code: i32,
    pub stderr: String,
    pub timed_out: bool,
}

/// Everything needed to (re)start s3mount; built by [`MountBuilder`].
#[derive(Clone)]
pub struct MountSpec {
    endpoint: Option<String>,
    bucket: String,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    mountpoint: PathBuf,
    timeout: Duration,
}

/// Builder for a mount: `Mount::builder(&s3, bucket).arg("--read-only").mount()`.
pub struct MountBuilder {
    spec: MountSpec,
    dir: Option<tempfile::TempDir>,
}

impl MountBuilder {
    /// One extra command-line argument (placed before BUCKET MOUNTPOINT).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.spec.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spec
            .args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set (or override) an environment variable for s3mount.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.spec
            .env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Remove an environment variable for s3mount.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.spec.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Use another endpoint URL than the server's (e.g. a closed port).
    pub fn endpoint_url(mut self, url: &str) -> Self {
        self.spec.endpoint = Some(url.to_string());
        self
    }

    /// Pass no `--endpoint-url` at all.
    pub fn no_endpoint_url(mut self) -> Self {
        self.spec.endpoint = None;
        self
    }

    /// Mount at this path instead of a fresh temporary directory. The path is used as given
    /// (not created), so tests can pass a missing path or a regular file.
    pub fn mountpoint(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        // mountinfo shows canonical paths
        self.spec.mountpoint = path.canonicalize().unwrap_or(path);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.timeout = timeout;
        self
    }

    /// Mount, panicking with s3mount's stderr if it does not come up.
    pub fn mount(self) -> Mount {
        match self.try_mount() {
            Ok(m) => m,
            Err(f) => panic!(
                "s3mount did not mount (exit code {}{}); stderr:\n{}",
                f.code,
                if f.timed_out { ", timed out" } else { "" },
                f.stderr
            ),
        }
    }

    /// Mount; on failure return s3mount's exit code and stderr.
    pub fn try_mount(self) -> Result<Mount, MountFailure> {
        let MountBuilder { spec, dir } = self;
        let dir = match dir {
            Some(d) => d,
            None => new_tempdir(),
        };
        let mut mount = Mount {
            spec,
            dir: Some(dir),
            child: None,
            generation: 0,
        };
        mount.start()?;
        Ok(mount)
    }

    /// Run a mount that must fail: returns (exit code, stderr). Panics if it mounts instead.
    pub fn expect_failure(self) -> (i32, String) {
        match self.try_mount() {
            Ok(mut m) => {
                let log = m.stderr();
                m.unmount();
                panic!("expected s3mount to fail, but it mounted; stderr:\n{log}");
            }
            Err(f) if f.timed_out => panic!(
                "expected s3mount to fail, but it neither mounted nor exited within the timeout; \
                 stderr:\n{}",
                f.stderr
            ),
            Err(f) => (f.code, f.stderr),
        }
    }
}

pub fn new_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("s3mount-test-")
        .tempdir()
        .expect("tempdir")
}

/// A running `s3mount --foreground` process with a live mount. Its staging directory
/// (`--cache-dir`) is in its temporary directory unless the test gives its own. Dropping it
/// unmounts, reaps the process, asserts after a clean exit that no staging file was left
/// behind (see [`Mount::staging_dir`]), and removes the temporary directory (never while
/// something is still mounted there).
pub struct Mount {
    spec: MountSpec,
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    generation: u32,
}

impl Mount {
    /// Mount `bucket` (a name, `bucket/prefix/` or `s3://…`) from `server` with extra CLI args.
    /// Panics with s3mount's stderr if it does not mount.
    pub fn new(server: &S3Server, bucket: &str, extra_args: &[&str]) -> Mount {
        Mount::builder(server, bucket).args(extra_args).mount()
    }

    /// A builder with the defaults: `--foreground --endpoint-url SERVER --force-path-style
    /// --region us-east-1`, mounted at a fresh `…/s3mount-test-XXXX/mnt` directory.
    pub fn builder(server: &S3Server, bucket: &str) -> MountBuilder {
        let dir = new_tempdir();
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).expect("create mount point");
        // mountinfo shows canonical paths
        let mountpoint = mountpoint.canonicalize().expect("canonicalize mount point");
        MountBuilder {
            spec: MountSpec {
                endpoint: Some(server.endpoint().to_string()),
                bucket: bucket.to_string(),
                args: Vec::new(),
                env: Vec::new(),
                mountpoint,
                timeout: MOUNT_TIMEOUT,
            },
            dir: Some(dir),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.spec.mountpoint
    }

    /// `path().join(rel)`
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.spec.mountpoint.join(rel)
    }

    /// The s3mount process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// What s3mount wrote to stderr since it was (re)started.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path())
    }

    /// What s3mount wrote to stdout since it was (re)started.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path())
    }

    /// The filesystem type of the live mount (the contract says `fuse.s3mount`).
    pub fn fstype(&self) -> Option<String> {
        mount_fstype(self.path())
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("tempdir").path()
    }

    /// The staging directory s3mount uses: the test's own `--cache-dir` if it gave one,
    /// else `staging/` in this mount's temporary directory (removed with it), so no test
    /// leaves staging files or failed uploads in /tmp or in the user's state directory.
    pub fn staging_dir(&self) -> PathBuf {
        self.own_cache_dir()
            .unwrap_or_else(|| self.dir().join("staging"))
    }

    /// The `--cache-dir` among the test's own arguments, if any.
    fn own_cache_dir(&self) -> Option<PathBuf> {
        let args: Vec<String> = self
            .spec
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        args.iter().enumerate().find_map(|(i, a)| match a.as_str() {
            "--cache-dir" => args.get(i + 1).map(PathBuf::from),
            a => a.strip_prefix("--cache-dir=").map(PathBuf::from),
        })
    }

    /// Asserts that s3mount, having exited cleanly, left no staging file behind in its
    /// staging directory: each was uploaded and deleted, or moved to `failed-uploads/`.
    fn assert_no_staging_files_left(&self) {
        let left: Vec<String> = std::fs::read_dir(self.staging_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("s3mount-staged-"))
            .collect();
        assert!(
            left.is_empty(),
            "s3mount exited but left staging files in {}: {left:?}",
            self.staging_dir().display()
        );
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir()
            .join(format!("s3mount.{}.stderr", self.generation))
    }

    fn stdout_path(&self) -> PathBuf {
        self.dir()
            .join(format!("s3mount.{}.stdout", self.generation))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(s3mount_bin());
        hermetic_aws_env(&mut cmd);
        cmd.env("RUST_BACKTRACE", "1");
        for (k, v) in &self.spec.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.arg("--foreground");
        if let Some(endpoint) = &self.spec.endpoint {
            cmd.args(["--endpoint-url", endpoint]);
        }
        cmd.args(["--force-path-style", "--region", REGION]);
        if self.own_cache_dir().is_none() {
            cmd.arg("--cache-dir").arg(self.staging_dir());
        }
        cmd.args(&self.spec.args);
        if !self.spec.bucket.is_empty() {
            cmd.arg(&self.spec.bucket); // none with --all-buckets
        }
        cmd.arg(&self.spec.mountpoint);
        cmd
    }

    fn start(&mut self) -> Result<(), MountFailure> {
        self.generation += 1;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(File::create(self.stdout_path()).expect("create stdout log"))
            .stderr(File::create(self.stderr_path()).expect("create stderr log"));
        die_with_parent(&mut cmd, libc::SIGTERM);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", s3mount_bin().display()));
        let deadline = Instant::now() + self.spec.timeout;
        loop {
            if is_fuse_mounted(&self.spec.mountpoint) {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(MountFailure {
                    code: exit_code(status),
                    stderr: self.stderr(),
                    timed_out: false,
                });
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                // it may have mounted in the last instant
                force_unmount(&self.spec.mountpoint);
                return Err(MountFailure {
                    code: -1,
                    stderr: self.stderr(),
                    timed_out: true,
                });
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Unmount with `fusermount3 -u` and wait for s3mount to exit; returns its exit status
    /// (None if it had to be killed or had already been reaped). Idempotent.
    ///
    /// If the mount is busy (a file still open), s3mount gets SIGTERM, then the mount is
    /// detached lazily and s3mount killed: the mount never outlives this call.
    pub fn unmount(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let path = self.spec.mountpoint.clone();
        let quiet = |prog: &str, args: &[&str]| {
            let _ = Command::new(prog)
                .args(args)
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        if is_fuse_mounted(&path) {
            quiet("fusermount3", &["-u"]);
        }
        if is_fuse_mounted(&path) {
            // Busy: ask s3mount itself (contract: SIGTERM unmounts and exits 0)...
            // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            if let Some(status) = wait_timeout(&mut child, Duration::from_secs(2)) {
                force_unmount(&path);
                return Some(status);
            }
            // ...and if it cannot (EBUSY too), detach the mount and stop the process.
            quiet("fusermount3", &["-uz"]);
            if is_fuse_mounted(&path) {
                quiet("umount", &["-l"]);
            }
            let status = wait_timeout(&mut child, Duration::from_secs(2));
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            return status;
        }
        let status = wait_timeout(&mut child, EXIT_TIMEOUT);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        force_unmount(&path);
        status
    }

    /// Unmount (asserting that s3mount exits 0) and mount again at the same path with the
    /// same arguments.
    pub fn remount(&mut self) {
        self.remount_impl(None);
    }

    /// Unmount (asserting that s3mount exits 0) and mount again at the same path, with `args`
    /// replacing the extra arguments.
    pub fn remount_with(&mut self, args: &[&str]) {
        self.remount_impl(Some(args));
    }

    fn remount_impl(&mut self, args: Option<&[&str]>) {
        let status = self.unmount();
        assert!(
            status.is_some_and(|s| s.success()),
            "s3mount did not exit cleanly on unmount ({status:?}); stderr:\n{}",
            self.stderr()
        );
        if let Some(args) = args {
            self.spec.args = args.iter().map(OsString::from).collect();
        }
        if let Err(f) = self.start() {
            panic!(
                "remount failed (exit code {}{}); stderr:\n{}",
                f.code,
                if f.timed_out { ", timed out" } else { "" },
                f.stderr
            );
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        let status = self.unmount();
        if std::thread::panicking() && was_running {
            eprintln!(
                "--- s3mount stderr ({}, exit status {status:?}) ---\n{}",
                self.path().display(),
                self.stderr()
            );
        } else if status.is_some_and(|s| s.success()) {
            self.assert_no_staging_files_left();
        }
        if is_fuse_mounted(self.path()) {
            // Never let TempDir's remove_dir_all walk into a live mount: it would delete objects.
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "warning: could not unmount {}; leaving {} in place",
                    self.path().display(),
                    kept.display()
                );
            }
        }
    }
}

/// Run s3mount against `server` for `bucket` with `extra_args` and expect it to fail before
/// mounting: returns (exit code, stderr). Panics if it mounts or hangs.
pub fn run_mount_expect_failure(
    server: &S3Server,
    bucket: &str,
    extra_args: &[&str],
) -> (i32, String) {
    Mount::builder(server, bucket)
        .args(extra_args)
        .expect_failure()
}

impl Mount {
    /// Like [`Mount::builder`], for any endpoint (an s3rver, a closed port, ...).
    pub fn builder_for_endpoint(endpoint: &str, bucket: &str) -> MountBuilder {
        let dir = new_tempdir();
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).expect("create mount point");
        let mountpoint = mountpoint.canonicalize().expect("canonicalize mount point");
        MountBuilder {
            spec: MountSpec {
                endpoint: Some(endpoint.to_string()),
                bucket: bucket.to_string(),
                args: Vec::new(),
                env: Vec::new(),
                mountpoint,
                timeout: MOUNT_TIMEOUT,
            },
            dir: Some(dir),
        }
    }
}

/// The mountinfo line of the mount at exactly `path`: (per-mount options, fs type, super
/// options), e.g. `("rw,nosuid,nodev,noatime", "fuse.s3mount", "rw,user_id=0,...")`.
pub fn mountinfo_options(path: &Path) -> Option<(String, String, String)> {
    let want = mountinfo_escape(path);
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.get(4) != Some(&want.as_str()) {
            continue;
        }
        if let Some(sep) = fields.iter().skip(6).position(|f| *f == "-") {
            let fstype = fields.get(6 + sep + 1).copied().unwrap_or("");
            let superopts = fields.get(6 + sep + 3).copied().unwrap_or("");
            found = Some((
                fields[5].to_string(),
                fstype.to_string(),
                superopts.to_string(),
            ));
        }
    }
    found
}

/// A temporary directory on the local disk (outside any mount) named `prefix…`.
pub fn local_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

/// With `S3MOUNT_DUMP_LOGS=DIR`, copies s3mount's stderr to `DIR/NAME.stderr`.
pub fn dump_mount_log(mount: &Mount, name: &str) {
    if let Some(dir) = std::env::var_os("S3MOUNT_DUMP_LOGS").filter(|d| !d.is_empty()) {
        let _ = std::fs::create_dir_all(&dir);
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let _ = std::fs::write(
            Path::new(&dir).join(format!("{name}.stderr")),
            mount.stderr(),
        );
    }
}

/// Asserts s3mount's log holds no "panicked" line.
#[track_caller]
pub fn assert_no_panic(mount: &Mount, when: &str) {
    let log = mount.stderr();
    assert!(
        !log.contains("panicked"),
        "{when}: s3mount logged a panic:\n{}",
        log.lines()
            .filter(|l| l.contains("panicked"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
