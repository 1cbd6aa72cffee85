//! s3fs-fuse beside s3mount: the interoperability tests mount the same bucket with both.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::*;

/// An `s3fs -f` mount of a moto bucket, unmounted and reaped on drop (Debian's s3fs-fuse:
/// tests that compare with it skip when [`have_s3fs`] says it is not installed).
pub struct S3fsMount {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl S3fsMount {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    pub fn start(s3: &S3Server, bucket: &str) -> S3fsMount {
        S3fsMount::start_with(s3, bucket, "")
    }

    /// An s3fs mount with extra `-o` options (`opts`, comma-separated, e.g. `use_xattr`).
    pub fn start_with(s3: &S3Server, bucket: &str, opts: &str) -> S3fsMount {
        use std::os::unix::process::CommandExt;
        let dir = new_tempdir();
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let passwd = dir.path().join("passwd");
        fs::write(&passwd, format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}\n")).unwrap();
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600)).unwrap();
        let mut cmd = Command::new("s3fs");
        hermetic_aws_env(&mut cmd);
        cmd.arg(bucket)
            .arg(&mnt)
            .arg("-f")
            .arg("-o")
            .arg(format!(
                "{opts}{}url={},use_path_request_style,endpoint={REGION},passwd_file={}",
                if opts.is_empty() { "" } else { "," },
                s3.endpoint(),
                passwd.display()
            ))
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("s3fs.log")).unwrap())
            .stderr(File::create(dir.path().join("s3fs.err")).unwrap());
        // SAFETY: prctl is async-signal-safe; s3fs gets SIGTERM if the test thread dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGTERM as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn s3fs");
        let mnt = mnt.canonicalize().unwrap();
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        while !is_fuse_mounted(&mnt) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "s3fs exited ({status}): {}",
                    fs::read_to_string(dir.path().join("s3fs.err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "s3fs did not mount");
            sleep(Duration::from_millis(50));
        }
        S3fsMount { child, dir }
    }
}

impl Drop for S3fsMount {
    fn drop(&mut self) {
        let mnt = self.path();
        force_unmount(&mnt);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_fuse_mounted(&mnt) {
            // never let TempDir's cleanup walk into a live mount
            let dir = std::mem::replace(&mut self.dir, new_tempdir());
            let _ = dir.keep();
        }
    }
}

pub fn have_s3fs() -> bool {
    Command::new("s3fs")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
