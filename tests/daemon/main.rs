//! s3mount as a daemon through real mounts against moto: mount failures with the contract's
//! phrases and exit status (`mount_errors`), `fusermount3 -u`/`-uz`, SIGTERM and SIGKILL with
//! unsaved data (`signals`), secrets in `--debug` logs and the permission defaults with and
//! without `--allow-other` (`security`), colour in foreground logs only on a terminal
//! (`logging`). Running it as a system tool (background mode, mount(8),
//! syslog, sd_notify) is tests/system_tool.rs.

#[path = "../common/mod.rs"]
mod common;

mod first_contact;
mod logging;
mod mount_errors;
mod security;
mod signals;

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::*;

const MIB: usize = 1 << 20;

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child process, which has not been reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Asserts that the one `s3mount: error:` line of a failed mount contains `phrase`.
fn assert_error_line(code: i32, stderr: &str, phrase: &str) {
    assert_eq!(code, 1, "exit status (contract: 1); stderr:\n{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("s3mount: error:"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one `s3mount: error:` line; stderr:\n{stderr}"
    );
    assert!(
        lines[0].to_lowercase().contains(phrase),
        "the error line should contain {phrase:?}: {:?}",
        lines[0]
    );
}

/// Runs s3mount in the foreground at `mountpoint` directly (not through [`Mount`], whose
/// "is it mounted yet" check cannot tell a second mount on an already-mounted directory from
/// the first), expecting it to exit; returns (exit code, stderr, how long it took).
fn run_s3mount_expecting_exit(
    endpoint: &str,
    bucket: &str,
    mountpoint: &Path,
) -> (i32, String, Duration) {
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log = log_dir.path().join("stderr");
    let mut cmd = Command::new(s3mount_bin());
    hermetic_aws_env(&mut cmd);
    cmd.args([
        "--foreground",
        "--endpoint-url",
        endpoint,
        "--force-path-style",
        "--region",
        REGION,
        bucket,
    ])
    .arg(mountpoint)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(File::create(&log).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn s3mount");
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            // It mounted on top, or hangs: SIGTERM makes it unmount its own session.
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "s3mount did not exit within 30 s; stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    (
        exit_code(status),
        std::fs::read_to_string(&log).unwrap_or_default(),
        elapsed,
    )
}
