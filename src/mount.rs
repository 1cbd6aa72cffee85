//! Mounting: check everything that can be checked before the mount exists, then run the FUSE
//! session until it is unmounted or the process is told to stop.
//!
//! Design note: every check here turns a failure into one line that says what is wrong and
//! what to do, because a mount that fails later, inside `ls`, only says "Input/output error".
//! The order is: mount point (cheap, local), credentials and region, then one
//! `ListObjectsV2` that proves the bucket exists and that we may list it.
//!
//! Readiness (see [`crate::daemon`]) is declared only once the kernel answers a `stat` of the
//! mount point through the new session; until then every failure is still reported to
//! whoever started s3mount.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuser::{Config, MountOption, SessionACL};
use tracing::{debug, error, info, warn};

use crate::cli::{parse_location, Args};
use crate::daemon::Readiness;
use crate::fs::S3Fs;
use crate::fuse::FuseAdapter;
use crate::metrics::Metrics;
use crate::storage::metered::MeteredStore;
use crate::storage::s3::S3Store;
use crate::storage::{BucketLocation, ObjectStore, StoreError};

/// Mounts as `args` say and serves until unmounted. The error is a one-line message.
/// `readiness` is told once the mount answers; `notes` are passed on with it.
pub fn run(args: Args, readiness: Readiness, notes: Vec<String>) -> Result<(), String> {
    let location = parse_location(args.bucket(), args.prefix.as_deref())?;
    let mountpoint = check_mountpoint(args.mountpoint())?;
    // Bound before mounting, so a taken port fails the mount rather than the metrics.
    let metrics_listener = args
        .metrics_addr
        .map(|addr| crate::metrics::bind(addr, args.metrics_allow_remote))
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(4, |n| n.get().max(4)))
        .thread_name("s3mount-io")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;

    let settings = args.s3_settings();
    let endpoint = settings
        .endpoint_url
        .clone()
        .unwrap_or_else(|| "the AWS S3 endpoint".to_string());
    let metrics = Arc::new(Metrics::new());
    let store = runtime.block_on(async {
        let s3 = S3Store::connect(&location, settings)
            .await
            .map_err(|e| explain(&e, &location, &endpoint))?;
        let region = s3.region().to_string();
        let store = MeteredStore::new(Arc::new(s3), metrics.clone());
        store
            .check_access()
            .await
            .map_err(|e| explain(&e, &location, &endpoint))?;
        info!(%location, %region, mountpoint = %mountpoint.display(), "bucket reachable");
        Ok::<_, String>(store)
    })?;

    let config = args.fs_config(&location);
    let read_only = config.read_only;
    let fs = Arc::new(S3Fs::new(Arc::new(store) as Arc<dyn ObjectStore>, config));
    let weak = Arc::downgrade(&fs);
    metrics.set_cache_stats(move || weak.upgrade().map(|fs| fs.cache().stats()));
    if let Some(listener) = metrics_listener {
        runtime.spawn(crate::metrics::serve(listener, metrics.clone()));
    }
    if let Some(secs) = args.log_metrics {
        runtime.spawn(crate::metrics::log_periodically(
            metrics.clone(),
            Duration::from_secs(secs),
        ));
    }
    let adapter = FuseAdapter::new(fs.clone(), runtime.handle().clone());

    let mut options = vec![
        MountOption::FSName(format!("s3mount:{}", location.bucket)),
        MountOption::Subtype("s3mount".to_string()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    options.push(if read_only {
        MountOption::RO
    } else {
        MountOption::RW
    });
    if args.noexec {
        options.push(MountOption::NoExec);
    }
    if args.auto_unmount {
        options.push(MountOption::AutoUnmount);
    }
    let mut fuse_config = Config::default();
    fuse_config.mount_options = options;
    fuse_config.acl = if args.allow_other {
        SessionACL::All
    } else if args.allow_root || args.auto_unmount {
        // fusermount's auto_unmount needs allow_other or allow_root.
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    fuse_config.n_threads = Some(2);

    let fsname = format!("s3mount:{}", location.bucket);
    let (session, mut unmounter) = open_session(adapter, &mountpoint, &fuse_config, &fsname)?;
    let unmounter_after = unmounter.after_session();
    let on_signal = readiness.clone();
    let lazy_path = mountpoint.clone();
    runtime.spawn(async move {
        wait_for_signal().await;
        info!("signal received: saving open files, then unmounting");
        on_signal.stopping();
        for (key, err) in fs.commit_all().await {
            warn!(key = %key, "could not save before unmounting: {err}");
        }
        if let Err(e) = unmounter.unmount() {
            // Files are still open (EBUSY): detach now, as `fusermount3 -uz` would; the
            // session ends, and s3mount exits, once the last of them is closed.
            warn!("unmount failed ({e}): detaching lazily; s3mount exits when the open files are closed");
            lazy_unmount(&lazy_path);
        }
    });

    // The session answers from its own threads once `run` starts; this thread proves it.
    let status = format!("mounted {location} at {}", mountpoint.display());
    let probe = {
        let readiness = readiness.clone();
        let mountpoint = mountpoint.clone();
        std::thread::Builder::new()
            .name("s3mount-ready".into())
            .spawn(move || match std::fs::metadata(&mountpoint) {
                Ok(meta) => {
                    raise_kernel_read_ahead(meta.dev());
                    info!(mountpoint = %mountpoint.display(), "{status}");
                    readiness.ready(&status, &notes);
                }
                Err(e) => {
                    let message = format!(
                        "mounted at {} but the mount does not answer: {e}",
                        mountpoint.display()
                    );
                    error!("{message}");
                    readiness.fail(&message);
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?
    };
    let result = session
        .run()
        .map_err(|e| format!("FUSE session ended with an error: {e}"));
    let _ = probe.join();
    if let Unmounter::Direct(path) = &unmounter_after {
        // The session ended by itself (not by an unmount): never leave a dead mount behind.
        if is_mounted(path) {
            // SAFETY: umount2 with a valid C string.
            if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
    readiness.stopping();
    info!("unmounted");
    if args.log_metrics.is_some() {
        for line in crate::metrics::summary_lines(&metrics.snapshot()) {
            info!(target: "s3mount::metrics", "{line}");
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// The kernel's read-ahead for this mount, in KiB. The kernel offers FUSE 128 KiB at INIT
/// and lets a file system only lower it, so a sequential reader's data arrives in 128 KiB
/// READ requests: 8,192 round trips through `/dev/fuse` per GiB. 1024 (the largest FUSE
/// request, 256 pages) cuts that to 1,024; measured on a 512 MiB read, s3mount then used
/// 15-20 % less CPU per byte.
const KERNEL_READ_AHEAD_KB: u32 = 1024;

/// Raises the read-ahead of the mount's backing device info (`/sys/class/bdi/MAJ:MIN`) to
/// [`KERNEL_READ_AHEAD_KB`]. Only root may write it; otherwise the kernel's default stays,
/// which is slower but correct.
fn raise_kernel_read_ahead(dev: u64) {
    let path = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(dev),
        libc::minor(dev)
    );
    let current = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    if current.is_some_and(|kb| kb >= KERNEL_READ_AHEAD_KB) {
        return;
    }
    match std::fs::write(&path, KERNEL_READ_AHEAD_KB.to_string()) {
        Ok(()) => debug!(%path, kb = KERNEL_READ_AHEAD_KB, "kernel read-ahead raised"),
        Err(e) => debug!(%path, ?current, "kernel read-ahead left as it is: {e}"),
    }
}

/// How the mount was made, and so how to undo it.
enum Unmounter {
    /// fuser mounted (mount(2) with the type `fuse`, or fusermount3).
    Fuser(fuser::SessionUnmounter),
    /// We mounted with mount(2) and the type `fuse.s3mount`.
    Direct(PathBuf),
    /// Nothing to do (fuser's own session cleans up).
    Nothing,
}

impl Unmounter {
    fn unmount(&mut self) -> std::io::Result<()> {
        match self {
            Unmounter::Fuser(u) => u.unmount(),
            Unmounter::Direct(path) => {
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                    .map_err(std::io::Error::other)?;
                // SAFETY: umount2 with a valid C string.
                if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            }
            Unmounter::Nothing => Ok(()),
        }
    }

    /// What is left to check once the session has ended.
    fn after_session(&self) -> Unmounter {
        match self {
            Unmounter::Direct(path) => Unmounter::Direct(path.clone()),
            _ => Unmounter::Nothing,
        }
    }
}

/// Mounts and completes the FUSE handshake.
///
/// As root (and without --auto-unmount, which needs fusermount3), s3mount calls mount(2)
/// itself, so that the mount has the type `fuse.s3mount` (fuser 0.18 would use plain `fuse`):
/// that is the type fstab, systemd and `findmnt -t` expect. Otherwise, and if the kernel says
/// EPERM (e.g. in a user namespace), fuser mounts, through fusermount3 when not root, which
/// also sets the type from the subtype.
fn open_session(
    adapter: FuseAdapter,
    mountpoint: &Path,
    config: &Config,
    fsname: &str,
) -> Result<(fuser::Session<FuseAdapter>, Unmounter), String> {
    let failed = |e: std::io::Error| format!("cannot mount at {}: {e}", mountpoint.display());
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && !config.mount_options.contains(&MountOption::AutoUnmount) {
        match mount_directly(mountpoint, config, fsname) {
            Ok(fd) => {
                return match fuser::Session::from_fd(adapter, fd, config.acl, config.clone()) {
                    Ok(session) => Ok((session, Unmounter::Direct(mountpoint.to_path_buf()))),
                    Err(e) => {
                        let _ = Unmounter::Direct(mountpoint.to_path_buf()).unmount();
                        Err(failed(e))
                    }
                };
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    let mut session = fuser::Session::new(adapter, mountpoint, config).map_err(failed)?;
    let unmounter = Unmounter::Fuser(session.unmount_callable());
    Ok((session, unmounter))
}

/// mount(2) of a new /dev/fuse connection at `mountpoint`, type `fuse.s3mount`, with the
/// flags and kernel options fuser would use. Returns the connection.
fn mount_directly(
    mountpoint: &Path,
    config: &Config,
    fsname: &str,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;

    let root_mode = std::fs::metadata(mountpoint)?.permissions().mode();
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let fd = std::os::fd::OwnedFd::from(dev);
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!(
        "fd={},rootmode={root_mode:o},user_id={uid},group_id={gid}",
        fd.as_raw_fd()
    );
    let opts = &config.mount_options;
    if opts.contains(&MountOption::DefaultPermissions) {
        data.push_str(",default_permissions");
    }
    if config.acl != SessionACL::Owner {
        data.push_str(",allow_other");
    }
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    for (option, flag) in [
        (MountOption::RO, libc::MS_RDONLY),
        (MountOption::NoExec, libc::MS_NOEXEC),
        (MountOption::NoAtime, libc::MS_NOATIME),
    ] {
        if opts.contains(&option) {
            flags |= flag;
        }
    }
    let c = |s: &[u8]| CString::new(s).map_err(std::io::Error::other);
    let (source, target, fstype, data) = (
        c(fsname.as_bytes())?,
        c(mountpoint.as_os_str().as_encoded_bytes())?,
        c(b"fuse.s3mount")?,
        c(data.as_bytes())?,
    );
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Detaches the mount at `path` even though it is busy.
fn lazy_unmount(path: &Path) {
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
        // SAFETY: umount2 with a valid C string.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            return;
        }
    }
    match std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(path)
        .status()
    {
        Ok(s) if s.success() => {}
        other => warn!("lazy unmount of {} failed: {other:?}", path.display()),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Checks that `path` exists, is a directory and is not already a mount point.
fn check_mountpoint(path: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "mount point {} does not exist: create it with `mkdir -p {}`",
            path.display(),
            path.display()
        ),
        std::io::ErrorKind::NotConnected => format!(
            "mount point {} is already a mount point (a dead FUSE mount): clear it with \
             `fusermount3 -u {}`",
            path.display(),
            path.display()
        ),
        _ => format!("cannot use mount point {}: {e}", path.display()),
    })?;
    if !meta.is_dir() {
        return Err(format!("mount point {} is not a directory", path.display()));
    }
    let canonical = std::fs::canonicalize(path)
        .map_err(|e| format!("cannot resolve mount point {}: {e}", path.display()))?;
    if is_mounted(&canonical) {
        return Err(format!(
            "mount point {} is already a mount point: unmount it first (`fusermount3 -u {}`)",
            canonical.display(),
            canonical.display()
        ));
    }
    Ok(canonical)
}

/// Whether `path` (canonical) is listed as a mount point in /proc/self/mountinfo.
fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == wanted)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Turns a failure of the mount-time checks into one line saying what to fix.
fn explain(err: &StoreError, location: &BucketLocation, endpoint: &str) -> String {
    let bucket = &location.bucket;
    match err {
        StoreError::NoSuchBucket => format!(
            "bucket '{bucket}' does not exist at {endpoint}: check the bucket name, --region \
             and --endpoint-url"
        ),
        StoreError::AccessDenied(detail) => format!(
            "access denied to bucket '{bucket}' ({detail}): the credentials in use may not \
             list it; check the IAM policy or --profile, or use --no-sign-request for a \
             public bucket"
        ),
        StoreError::BadCredentials(detail) => format!(
            "the server rejected the credentials ({detail}): check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or --profile"
        ),
        StoreError::NoCredentials(detail) => format!(
            "no AWS credentials found ({detail}): set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, use --profile, or --no-sign-request for a public bucket"
        ),
        StoreError::Connect(detail) | StoreError::Timeout(detail) => format!(
            "cannot connect to {endpoint} ({detail}): check --endpoint-url and that the \
             server is running and reachable"
        ),
        StoreError::NotFound => format!(
            "bucket '{bucket}' does not exist at {endpoint}: check the bucket name, --region \
             and --endpoint-url"
        ),
        other => format!("cannot access bucket '{bucket}' at {endpoint}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn mount_point_checks() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(check_mountpoint(&missing)
            .unwrap_err()
            .contains("does not exist"));
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_mountpoint(&file)
            .unwrap_err()
            .contains("not a directory"));
        assert!(check_mountpoint(dir.path()).is_ok());
        assert!(check_mountpoint(Path::new("/proc"))
            .unwrap_err()
            .contains("already a mount point"));
    }
}
