//! Shared fixtures for s3mount's integration tests (`mod common;` in each file under tests/).
//!
//! * [`S3Server`] starts a private `moto_server` on a free 127.0.0.1 port and kills it on drop.
//!   One server per test: moto answers ~0.3 s after it starts, so tests need not share one.
//! * [`Bucket`] is a handle on one bucket of that server with seeding/inspection helpers.
//!   [`S3Server::new_bucket`] creates a bucket with a unique name.
//! * [`Mount`] runs the s3mount binary in the foreground against a server and waits until the
//!   mount point is live; on drop it unmounts (`fusermount3 -u`, falling back to SIGTERM and
//!   `umount -l`) and reaps the process. [`run_mount_expect_failure`] runs a mount that must fail.
//!
//! Everything is hermetic: the children get no `AWS_*` variable from the environment except the
//! ones set here (`AWS_EC2_METADATA_DISABLED=true`, static credentials `test`/`test`, region
//! us-east-1, no config/credentials files), and the test's own S3 client is built from explicit
//! static credentials and region, so nothing ever reaches for the instance metadata service.
//! All traffic goes to 127.0.0.1.
//!
//! moto_server is found through `S3MOUNT_MOTO_SERVER` (exported by scripts/test.sh), else
//! `$S3MOUNT_DEPS_DIR/venv/bin/moto_server`, else `~/.cache/s3mount-deps/venv/bin/moto_server`.
//! Install it with `./scripts/test.sh` or `bash -c '. scripts/lib.sh; s3m_ensure_moto'`.
//!
//! `S3MOUNT_BIN` overrides the s3mount binary under test (default: cargo's `CARGO_BIN_EXE_s3mount`).
//!
//! Children are started with `PR_SET_PDEATHSIG`, so a test process that dies without running its
//! destructors (SIGKILL, abort) takes its servers and mounts with it: moto gets SIGKILL, s3mount
//! gets SIGTERM (it unmounts itself). The signal fires when the *thread* that spawned the child
//! exits, so create fixtures on the test's own thread (as `#[tokio::test]` does), not inside
//! `spawn_blocking` or a thread that ends before the fixture is dropped.
//!
//! Typical use:
//!
//! ```ignore
//! mod common;
//! use common::*;
//!
//! #[tokio::test]
//! async fn reads_a_file() {
//!     let s3 = S3Server::start();
//!     let bucket = s3.new_bucket().await;
//!     bucket.put("hello.txt", b"hello world\n").await;
//!     let mount = Mount::new(&s3, bucket.name(), &[]);
//!     assert_eq!(std::fs::read(mount.path().join("hello.txt")).unwrap(), b"hello world\n");
//! }
//! ```

#![allow(dead_code)] // every test binary uses a different subset of these helpers

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";

/// How long a mount may take to show up in /proc/self/mountinfo (or the process to exit).
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long moto_server may take to accept connections.
const SERVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long s3mount may take to exit after an unmount request.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A short string unique within this machine for a while: pid, a counter and the clock.
pub fn unique_suffix() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{}-{:x}", std::process::id(), n, nanos & 0xfffff)
}

/// A free TCP port on 127.0.0.1 (bound, read, released: another process may still take it,
/// so callers retry on a failed start).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Strip every `AWS_*` variable a developer's environment may carry and set the hermetic ones.
pub fn hermetic_aws_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
}

/// Make the child get `signal` when the spawning thread dies (see the module docs).
fn die_with_parent(cmd: &mut Command, signal: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The parent died before prctl took effect.
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Exit code as a shell reports it: the code, or 128 + signal number when killed by a signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A test dependency: the path in the environment variable `var` (exported by
/// scripts/test.sh), else `rel` under the dependency cache that scripts/lib.sh fills.
fn dependency_path(var: &str, rel: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let deps = std::env::var_os("S3MOUNT_DEPS_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/s3mount-deps")
        });
    deps.join(rel)
}

fn moto_server_path() -> PathBuf {
    dependency_path("S3MOUNT_MOTO_SERVER", "venv/bin/moto_server")
}

// ---------------------------------------------------------------------------------------------
// S3 server
// ---------------------------------------------------------------------------------------------

/// A private moto_server on 127.0.0.1, killed (and reaped) on drop.
pub struct S3Server {
    child: Child,
    port: u16,
    endpoint: String,
    client: Client,
    dir: tempfile::TempDir,
}

impl S3Server {
    /// Start moto_server on a free port and wait until it accepts connections.
    pub fn start() -> S3Server {
        let exe = moto_server_path();
        assert!(
            exe.exists(),
            "moto_server not found at {} — run ./scripts/test.sh (or `bash -c '. scripts/lib.sh; \
             s3m_ensure_moto'`), or set S3MOUNT_MOTO_SERVER",
            exe.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("s3mount-moto-")
            .tempdir()
            .expect("tempdir");
        let log = dir.path().join("moto.log");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&exe);
            hermetic_aws_env(&mut cmd);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(File::create(&log).expect("create moto log"))
                .stderr(File::create(&log).expect("create moto log"));
            die_with_parent(&mut cmd, libc::SIGKILL);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
            if wait_for_port(&mut child, port, SERVER_TIMEOUT) {
                let endpoint = format!("http://127.0.0.1:{port}");
                let client = s3_client(&endpoint);
                return S3Server {
                    child,
                    port,
                    endpoint,
                    client,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = read_lossy(&log);
        }
        panic!("moto_server did not start; last log:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An aws-sdk-s3 client for this server (path style, static credentials, us-east-1).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The server's request log so far.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("moto.log"))
    }

    /// Create a bucket with this exact name.
    pub async fn create_bucket(&self, name: &str) -> Bucket {
        self.client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_bucket {name}: {}", DisplayErrorContext(&e)));
        self.bucket(name)
    }

    /// Create a bucket with a fresh unique name (`s3mount-test-…`).
    pub async fn new_bucket(&self) -> Bucket {
        let name = format!("s3mount-test-{}", unique_suffix());
        self.create_bucket(&name).await
    }

    /// A handle on a bucket that may or may not exist.
    pub fn bucket(&self, name: &str) -> Bucket {
        Bucket {
            client: self.client.clone(),
            name: name.to_string(),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false; // exited: port taken, or broken install
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    false
}

/// An aws-sdk-s3 client for a local endpoint, built without the default provider chains (so it
/// never consults the environment, config files or the instance metadata service).
pub fn s3_client(endpoint: &str) -> Client {
    Client::from_conf(s3_client_config(endpoint).build())
}

/// The settings of [`s3_client`], for a test that changes one of them.
pub fn s3_client_config(endpoint: &str) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "s3mount-tests",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
}

/// URL-encode a tag key or value for the `x-amz-tagging` header.
fn encode_tag(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One bucket on an [`S3Server`]; every helper panics with the SDK's error on failure.
#[derive(Clone)]
pub struct Bucket {
    client: Client,
    name: String,
}

impl Bucket {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// PutObject with no metadata or tags.
    pub async fn put(&self, key: &str, bytes: impl AsRef<[u8]>) {
        self.put_with(key, bytes, &[], &[], None).await
    }

    /// PutObject with user metadata (`x-amz-meta-K: V`), tags and an optional content type.
    pub async fn put_with(
        &self,
        key: &str,
        bytes: impl AsRef<[u8]>,
        metadata: &[(&str, &str)],
        tags: &[(&str, &str)],
        content_type: Option<&str>,
    ) {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(bytes.as_ref().to_vec()));
        if !metadata.is_empty() {
            let map: HashMap<String, String> = metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            req = req.set_metadata(Some(map));
        }
        if !tags.is_empty() {
            let tagging = tags
                .iter()
                .map(|(k, v)| format!("{}={}", encode_tag(k), encode_tag(v)))
                .collect::<Vec<_>>()
                .join("&");
            req = req.tagging(tagging);
        }
        if let Some(ct) = content_type {
            req = req.content_type(ct);
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("put {}/{key}: {}", self.name, DisplayErrorContext(&e)));
    }

    /// The object's bytes (panics if it does not exist).
    pub async fn get(&self, key: &str) -> Vec<u8> {
        self.try_get(key)
            .await
            .unwrap_or_else(|| panic!("get {}/{key}: no such key", self.name))
    }

    /// The object's bytes, or None if there is no such key.
    pub async fn try_get(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Some(
                out.body
                    .collect()
                    .await
                    .unwrap_or_else(|e| panic!("read body of {}/{key}: {e}", self.name))
                    .into_bytes()
                    .to_vec(),
            ),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => None,
            Err(e) => panic!("get {}/{key}: {}", self.name, DisplayErrorContext(&e)),
        }
    }

    /// Whether the key exists (HeadObject).
    pub async fn exists(&self, key: &str) -> bool {
        self.head(key).await.is_some()
    }

    /// HeadObject, or None if there is no such key.
    pub async fn head(
        &self,
        key: &str,
    ) -> Option<aws_sdk_s3::operation::head_object::HeadObjectOutput> {
        match self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Some(out),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => None,
            Err(e) => panic!("head {}/{key}: {}", self.name, DisplayErrorContext(&e)),
        }
    }

    /// The object's user metadata (keys without the `x-amz-meta-` prefix).
    pub async fn metadata(&self, key: &str) -> HashMap<String, String> {
        self.head(key)
            .await
            .unwrap_or_else(|| panic!("metadata {}/{key}: no such key", self.name))
            .metadata()
            .cloned()
            .unwrap_or_default()
    }

    /// The object's tags, sorted by key.
    pub async fn tags(&self, key: &str) -> Vec<(String, String)> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("tags {}/{key}: {}", self.name, DisplayErrorContext(&e)));
        let mut tags: Vec<(String, String)> = out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        tags.sort();
        tags
    }

    pub async fn delete(&self, key: &str) {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete {}/{key}: {}", self.name, DisplayErrorContext(&e)));
    }

    /// Every key under `prefix` (all pages, no delimiter), in S3's order.
    pub async fn list_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("list {}/{prefix}: {}", self.name, DisplayErrorContext(&e))
                });
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys
    }
}

/// Deterministic pseudo-random bytes (xorshift), for large test objects.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// Mount
// ---------------------------------------------------------------------------------------------

/// Path to the s3mount binary: `S3MOUNT_BIN` if set (e.g. a release build), else the one cargo
/// built for these tests.
pub fn s3mount_bin() -> PathBuf {
    std::env::var_os("S3MOUNT_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_s3mount")))
}

/// Escape a path the way the kernel writes it in /proc/self/mountinfo.
fn mountinfo_escape(path: &Path) -> String {
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
struct MountSpec {
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

fn new_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("s3mount-test-")
        .tempdir()
        .expect("tempdir")
}

/// A running `s3mount --foreground` process with a live mount. Dropping it unmounts, reaps the
/// process and removes the temporary directory (never while something is still mounted there).
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
        cmd.args(&self.spec.args);
        cmd.arg(&self.spec.bucket).arg(&self.spec.mountpoint);
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

// =============================================================================================
// Additions for tests/read_path.rs: an s3rver fixture (a server that checks access keys), a
// mount builder that needs only an endpoint, and moto's IAM authentication (keys, signatures,
// policies). Additive only; nothing above depends on them.
// =============================================================================================

/// s3rver's built-in credentials. s3rver rejects any other access key (InvalidAccessKeyId) but
/// does not verify SigV4 signatures, so a wrong secret goes unnoticed: use
/// [`S3Server::enable_iam_auth`] for that.
pub const S3RVER_ACCESS_KEY_ID: &str = "S3RVER";
pub const S3RVER_SECRET_ACCESS_KEY: &str = "S3RVER";

/// An aws-sdk-s3 client for a local endpoint with the given static credentials (path style,
/// us-east-1, request checksums only when required: s3rver stores aws-chunked framing raw).
pub fn s3_client_with_credentials(endpoint: &str, access_key: &str, secret: &str) -> Client {
    let config = s3_client_config(endpoint)
        .credentials_provider(Credentials::new(
            access_key,
            secret,
            None,
            None,
            "s3mount-tests",
        ))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    Client::from_conf(config)
}

fn s3rver_path() -> PathBuf {
    dependency_path("S3MOUNT_S3RVER", "s3rver/node_modules/s3rver/bin/s3rver.js")
}

/// A private s3rver (npm, found through `S3MOUNT_S3RVER`, exported by scripts/test.sh) on a
/// free 127.0.0.1 port, storing into a temporary directory; killed (and reaped) on drop.
/// Unlike a default moto it checks the access key (S3RVER); it does not verify signatures.
pub struct S3rverServer {
    child: Child,
    endpoint: String,
    client: Client,
    dir: tempfile::TempDir,
}

impl S3rverServer {
    pub fn start() -> S3rverServer {
        let script = s3rver_path();
        assert!(
            script.exists(),
            "s3rver not found at {} — run ./scripts/test.sh (or `bash -c '. scripts/lib.sh; \
             s3m_ensure_s3rver'`), or set S3MOUNT_S3RVER",
            script.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("s3mount-s3rver-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create s3rver data dir");
        let log = dir.path().join("s3rver.log");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("node");
            hermetic_aws_env(&mut cmd);
            cmd.env("NODE_OPTIONS", "--openssl-legacy-provider")
                .arg(&script)
                .arg("-d")
                .arg(&data)
                .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--silent"])
                .stdin(Stdio::null())
                .stdout(File::create(&log).expect("create s3rver log"))
                .stderr(File::create(&log).expect("create s3rver log"));
            die_with_parent(&mut cmd, libc::SIGKILL);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn node {}: {e}", script.display()));
            if wait_for_port(&mut child, port, SERVER_TIMEOUT) {
                let endpoint = format!("http://127.0.0.1:{port}");
                let client = s3_client_with_credentials(
                    &endpoint,
                    S3RVER_ACCESS_KEY_ID,
                    S3RVER_SECRET_ACCESS_KEY,
                );
                return S3rverServer {
                    child,
                    endpoint,
                    client,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = read_lossy(&log);
        }
        panic!("s3rver did not start; last log:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client with s3rver's credentials.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Create a bucket with this exact name (with the right credentials).
    pub async fn create_bucket(&self, name: &str) -> Bucket {
        self.client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_bucket {name}: {}", DisplayErrorContext(&e)));
        Bucket {
            client: self.client.clone(),
            name: name.to_string(),
        }
    }
}

impl Drop for S3rverServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Access keys created in a moto server's IAM by [`S3Server::enable_iam_auth`].
#[derive(Clone, Debug)]
pub struct IamKeys {
    /// A user whose inline policy allows `s3:*`.
    pub allowed: (String, String),
    /// A user with no policy at all (every S3 call is denied).
    pub denied: (String, String),
}

impl S3Server {
    /// Turns on moto's request authentication (`/moto-api/reset-auth`, the server-mode form of
    /// `INITIAL_NO_AUTH_ACTION_COUNT=0`): from then on moto checks that the access key exists in
    /// its IAM, that the SigV4 signature matches the secret, and the user's IAM policies.
    /// Creates two users first (through boto3 from moto's own venv); returns their keys.
    /// Seed the server before calling this: the default `test`/`test` client is refused after.
    pub fn enable_iam_auth(&self) -> IamKeys {
        let python = moto_server_path().with_file_name("python");
        let script = r#"
import json, sys, urllib.request
import boto3
ep = sys.argv[1]
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
keys = []
for user, policy in (("s3mount-allowed", True), ("s3mount-denied", False)):
    iam.create_user(UserName=user)
    if policy:
        iam.put_user_policy(UserName=user, PolicyName="all-s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    keys += [k["AccessKeyId"], k["SecretAccessKey"]]
req = urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0", method="POST",
                             headers={"Content-Type": "application/octet-stream"})
urllib.request.urlopen(req).read()
print(" ".join(keys))
"#;
        let mut cmd = Command::new(&python);
        hermetic_aws_env(&mut cmd);
        let out = cmd
            .args(["-c", script, &self.endpoint])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
        assert!(
            out.status.success(),
            "enabling moto's IAM auth failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let k: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(k.len(), 4, "unexpected output: {text}");
        IamKeys {
            allowed: (k[0].to_string(), k[1].to_string()),
            denied: (k[2].to_string(), k[3].to_string()),
        }
    }
}

// ----- end of the tests/read_path.rs additions -----

// ---------------------------------------------------------------------------------------------
// Fault injection (tests/common/fault_proxy.rs): an HTTP/1.1 proxy between s3mount and moto.
// ---------------------------------------------------------------------------------------------
pub mod fault_proxy;

// =============================================================================================
// Additions for tests/reliability.rs, tests/model.rs and tests/stress.rs (issue 4: faults,
// reference model, stress). Additive only; nothing above depends on them.
// =============================================================================================

/// A small seeded PRNG (splitmix64): the same seed gives the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `len` bytes from this generator.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// The errno of an I/O error (-1 when it carries none).
pub fn os_errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// `EIO (5)`-style name of an errno, for messages and tallies.
pub fn errno_label(n: i32) -> String {
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::ENOTSUP => "ENOTSUP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ESTALE => "ESTALE",
        libc::ENOTCONN => "ENOTCONN",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::E2BIG => "E2BIG",
        libc::EXDEV => "EXDEV",
        libc::EINTR => "EINTR",
        _ => "",
    };
    if name.is_empty() {
        format!("errno {n}")
    } else {
        name.to_string()
    }
}

/// What [`with_deadline`] reports when the work did not finish in time.
#[derive(Debug)]
pub struct Hung {
    pub what: String,
    pub limit: Duration,
}

impl std::fmt::Display for Hung {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} did not finish within {:?}", self.what, self.limit)
    }
}

/// Runs `work` on its own thread and waits at most `limit` for it. On a timeout the thread is
/// left behind (blocked in the kernel, typically) and `Err(Hung)` is returned: tests count that
/// as a hang. A panic inside `work` is propagated.
pub fn with_deadline<T: Send + 'static>(
    what: impl Into<String>,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Hung> {
    let what = what.into();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("deadline".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(result);
        })
        .expect("spawn a deadline thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            let _ = handle.join();
            Ok(v)
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(Hung { what, limit }),
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // PID (COMM) STATE ...; COMM may hold spaces and parentheses
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
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

/// Drops the kernel's page cache for an open file (POSIX_FADV_DONTNEED), so the next reads
/// reach the filesystem again.
pub fn drop_page_cache(file: &File) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: posix_fadvise on a valid descriptor; it only drops clean cached pages.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// Adds `faults` one-shot rules to `proxy` so that every `every`-th request matching
/// (`method`, `contains`) gets `fault`: request `every`, `2 × every`, … up to `faults` of them.
/// Deterministic in the order requests arrive, and bounded: after `faults` faults the rules are
/// spent. Returns the rule ids (for [`fault_proxy::FaultProxy::remove`]).
pub fn add_periodic_faults(
    proxy: &fault_proxy::FaultProxy,
    method: &'static str,
    contains: &'static str,
    fault: fault_proxy::Fault,
    every: u32,
    faults: u32,
) -> Vec<fault_proxy::RuleId> {
    assert!(every >= 2, "every request faulted is not a periodic fault");
    // Rule i sees every matching request except the ones earlier rules fault (i - 1 of them
    // before its turn), so it skips i × (every - 1) requests to fire on request i × every.
    (1..=faults)
        .map(|i| {
            proxy.fail(fault_proxy::Rule {
                method,
                contains,
                fault,
                count: Some(1),
                skip: i * (every - 1),
            })
        })
        .collect()
}

/// Prints one line of figures and, when `S3MOUNT_RELIABILITY_REPORT` names a file, appends it
/// there too (docs/RELIABILITY.md is written from those lines).
pub fn report_figures(line: &str) {
    println!("FIGURES {line}");
    eprintln!("FIGURES {line}");
    if let Some(path) = std::env::var_os("S3MOUNT_RELIABILITY_REPORT").filter(|p| !p.is_empty()) {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Whether `S3MOUNT_SOAK` asks for the long runs.
pub fn soak() -> bool {
    std::env::var("S3MOUNT_SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A handle on bucket `name` at `endpoint` with a client of its own, for threads that run
/// their own tokio runtime (a client's pooled connections belong to the runtime that made them).
pub fn bucket_with_own_client(endpoint: &str, name: &str) -> Bucket {
    Bucket {
        client: s3_client(endpoint),
        name: name.to_string(),
    }
}

/// A current-thread tokio runtime for a test's worker thread.
pub fn thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ----- end of the issue 4 additions -----

/// close(2) the file and return close's result (dropping a `File` hides it).
pub fn close(file: File) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: we own fd (just taken out of the File) and close it exactly once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Up to `len` bytes of `f` at `off` (fewer only at the end of the file), by pread(2).
pub fn pread_all(f: &File, off: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = f.read_at(&mut buf[got..], off + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}
