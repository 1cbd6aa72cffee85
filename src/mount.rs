//! Mounting: check everything that can be checked before the mount exists, then run the FUSE
//! session until it is unmounted or the process is told to stop.
//!
//! Design note: every check here turns a failure into one line that says what is wrong and
//! what to do (a [`StartupError`], whose `Display` is that line), because a mount that fails
//! later, inside `ls`, only says "Input/output error".
//! The order is: mount point (cheap, local), credentials and region, then one
//! `ListObjectsV2` that proves the bucket exists and that we may list it (`checks.rs`, under
//! a limit of their own; with `--all-buckets`, one `ListBuckets` over an `AccountStore`).
//!
//! Readiness (see [`crate::daemon`]) is declared only once the kernel answers a `stat` of the
//! mount point through the new session; until then every failure is still reported to
//! whoever started s3mount.
//!
//! [`run`] is a list of steps, each a function below. mount(2) and umount2(2) go through
//! `nix`, so nothing here calls libc directly.

use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuser::{Config, MountOption, SessionACL};
use nix::errno::Errno;
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::unistd::{getgid, getuid};
use tokio::runtime::Runtime;
use tracing::{debug, error, info, warn};

mod caches;
mod checks;
mod shared;

use self::caches::Caches;
use self::checks::{check_mountpoint, connect, is_mounted, warn_if_not_empty};
use self::shared::open_shared_cache;
use crate::cli::{parse_location, Args};
use crate::daemon::Readiness;
use crate::fs::S3Fs;
use crate::fuse::{FuseAdapter, KernelNotifier};
use crate::metrics::Metrics;
use crate::startup::StartupError;
use crate::storage::as_of::AsOfStore;
use crate::storage::{BucketLocation, ObjectStore};

/// Mounts as `args` say and serves until unmounted. The error's `Display` is a one-line
/// message. `readiness` is told once the mount answers; `notes` are passed on with it.
pub fn run(args: Args, readiness: Readiness, notes: Vec<String>) -> Result<(), StartupError> {
    let location = match args.all_buckets {
        // Every key's first component is its bucket (storage/account.rs).
        true => BucketLocation {
            bucket: String::new(),
            prefix: String::new(),
        },
        false => parse_location(args.bucket(), args.prefix.as_deref())?,
    };
    let mountpoint = check_mountpoint(args.mountpoint())?;
    warn_if_not_empty(&mountpoint, &readiness);
    // Bound before mounting, so a taken port fails the mount rather than the metrics.
    let metrics_listener = args
        .metrics_addr
        .map(|addr| crate::metrics::bind(addr, args.metrics_allow_remote))
        .transpose()
        .map_err(StartupError::Metrics)?;
    let config = args.fs_config(&location);
    // Locked before connecting: a directory in use fails the mount at once.
    let mut caches = Caches::open_local(&config)?;
    let runtime = start_runtime()?;
    let metrics = Arc::new(Metrics::new(&crate::storage::ErrorKind::LABELS));
    let store = runtime.block_on(connect(&args, &location, &mountpoint, &metrics, &readiness))?;
    let mut notes = notes;
    notes.extend(failed_uploads_notice(&args, &location));
    caches.shared =
        runtime.block_on(open_shared_cache(&args, &location, config.read.block_size))?;
    let store: Arc<dyn ObjectStore> = match args.as_of {
        Some(time) => Arc::new(AsOfStore::new(Arc::new(store), time)),
        None => Arc::new(store),
    };
    let fs = caches.filesystem(store, config);
    let background = start_metrics(&runtime, &args, &metrics, &fs, metrics_listener);
    let adapter = FuseAdapter::new(fs.clone(), runtime.handle().clone());

    let fsname = format!("s3mount:{}", location.bucket);
    let fuse_config = fuse_config(&args, &fsname);
    let (session, unmounter) = open_session(adapter, &mountpoint, &fuse_config, &fsname)?;
    fs.set_kernel_cache(Arc::new(KernelNotifier(session.notifier())));
    let unmounter_after = unmounter.after_session();
    runtime.spawn(unmount_on_signal(
        fs.clone(),
        unmounter,
        readiness.clone(),
        mountpoint.clone(),
    ));

    // The session answers from its own threads once `run` starts; this thread proves it.
    let what = match args.all_buckets {
        true => "every bucket".to_string(),
        false => location.to_string(),
    };
    let status = format!("mounted {what} at {}", mountpoint.display());
    let probe = spawn_readiness_probe(readiness.clone(), mountpoint.clone(), status, notes)?;
    let result = session_outcome(session.run(), &mountpoint);
    let _ = probe.join();
    // The session ended by itself (not by an unmount): never leave a dead mount behind.
    unmounter_after.detach_if_still_mounted();
    readiness.stopping();
    info!("unmounted");
    runtime.block_on(background.shutdown());
    caches.flush_and_stop(&runtime);
    if args.log_metrics.is_some() {
        for line in crate::metrics::summary_lines(&metrics.snapshot()) {
            info!(target: "s3mount::metrics", "{line}");
        }
    }
    // Held until here: the last metrics read the caches' counters through it (once the
    // session and the signal task had let go, they found nothing to report).
    drop(fs);
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// The notice about failed uploads waiting in the staging directory (also logged), if any.
fn failed_uploads_notice(args: &Args, location: &BucketLocation) -> Option<String> {
    let dir = crate::recovery::dir_for(args);
    let note = crate::recovery::notice(&dir, &location.bucket, args.cache_dir.is_none())?;
    warn!("{note}");
    Some(note)
}

/// How the FUSE session ended. Reading /dev/fuse fails with ENODEV once the filesystem is
/// unmounted, which fuser takes as a clean end; after a lazy unmount (`fusermount3 -uz`) the
/// kernel may instead mark the connection aborted when the last file is closed, and the read
/// fails with ECONNABORTED. With the mount point gone, that too is the end of a clean unmount;
/// with it still mounted (an administrator aborted the connection), it is an error.
fn session_outcome(result: std::io::Result<()>, mountpoint: &Path) -> Result<(), StartupError> {
    match result {
        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) && !is_mounted(mountpoint) => {
            info!("the kernel closed the FUSE connection after the unmount");
            Ok(())
        }
        other => other.map_err(StartupError::Session),
    }
}

/// The runtime every S3 request and every FUSE request's future runs on.
fn start_runtime() -> Result<Runtime, StartupError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(4, |n| n.get().max(4)))
        .thread_name("s3mount-io")
        .enable_all()
        .build()
        .map_err(StartupError::Runtime)
}

/// Lets the metrics read the block cache's counters, and starts the Prometheus endpoint and
/// the periodic log summary when asked for; the teardown stops them through what is returned.
fn start_metrics(
    runtime: &Runtime,
    args: &Args,
    metrics: &Arc<Metrics>,
    fs: &Arc<S3Fs>,
    listener: Option<TcpListener>,
) -> crate::metrics::Background {
    let weak = Arc::downgrade(fs);
    metrics.set_cache_stats(move || weak.upgrade().map(|fs| fs.cache().stats()));
    let weak = Arc::downgrade(fs);
    metrics.set_tier_stats(move || weak.upgrade().map(|fs| fs.tier_stats()).unwrap_or_default());
    let weak = Arc::downgrade(fs);
    metrics.set_inode_count(move || weak.upgrade().map(|fs| fs.inode_count() as u64));
    let mut background = crate::metrics::Background::new(runtime.handle().clone());
    if let Some(listener) = listener {
        let metrics = metrics.clone();
        background.spawn(|stop| crate::metrics::serve(listener, metrics, stop));
    }
    if let Some(secs) = args.log_metrics {
        let (metrics, every) = (metrics.clone(), Duration::from_secs(secs));
        background.spawn(|stop| crate::metrics::log_periodically(metrics, every, stop));
    }
    background
}

/// The mount options and access rule of the FUSE session.
fn fuse_config(args: &Args, fsname: &str) -> Config {
    let mut options = vec![
        MountOption::FSName(fsname.to_string()),
        MountOption::Subtype("s3mount".to_string()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    options.push(if args.read_only {
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
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if args.allow_other {
        SessionACL::All
    } else if args.allow_root || args.auto_unmount {
        // fusermount's auto_unmount needs allow_other or allow_root.
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(2);
    config
}

/// On SIGTERM or SIGINT: saves the open files, then unmounts, which ends the session.
async fn unmount_on_signal(
    fs: Arc<S3Fs>,
    mut unmounter: Unmounter,
    readiness: Readiness,
    mountpoint: PathBuf,
) {
    wait_for_signal().await;
    info!("signal received: saving open files, then unmounting");
    readiness.stopping();
    for (key, err) in fs.commit_all().await {
        warn!(key = %key, "could not save before unmounting: {err}");
    }
    if let Err(e) = unmounter.unmount() {
        // Files are still open (EBUSY): detach now, as `fusermount3 -uz` would; the
        // session ends, and s3mount exits, once the last of them is closed.
        warn!(
            "unmount failed ({e}): detaching lazily; s3mount exits when the open files are closed"
        );
        lazy_unmount(&mountpoint);
    }
}

/// Starts the thread that `stat`s the mount point through the kernel and then declares the
/// mount ready (or reports that it does not answer).
fn spawn_readiness_probe(
    readiness: Readiness,
    mountpoint: PathBuf,
    status: String,
    notes: Vec<String>,
) -> Result<std::thread::JoinHandle<()>, StartupError> {
    std::thread::Builder::new()
        .name("s3mount-ready".into())
        .spawn(move || match std::fs::metadata(&mountpoint) {
            Ok(meta) => {
                raise_kernel_read_ahead(meta.dev());
                info!(mountpoint = %mountpoint.display(), "{status}");
                readiness.ready(&status, &notes);
            }
            Err(source) => {
                let err = StartupError::NotAnswering {
                    path: mountpoint,
                    source,
                };
                error!("{err}");
                readiness.fail(&err.to_string());
            }
        })
        .map_err(StartupError::Thread)
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
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
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
            Unmounter::Direct(path) => Ok(umount2(path.as_path(), MntFlags::empty())?),
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

    /// Once the session has ended by itself: detaches a mount of ours that is still there
    /// (the kernel would otherwise keep a dead mount, "Transport endpoint is not connected").
    fn detach_if_still_mounted(&self) {
        if let Unmounter::Direct(path) = self {
            if is_mounted(path) {
                let _ = umount2(path.as_path(), MntFlags::MNT_DETACH);
            }
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
) -> Result<(fuser::Session<FuseAdapter>, Unmounter), StartupError> {
    let failed = |source: std::io::Error| StartupError::Mount {
        path: mountpoint.to_path_buf(),
        source,
    };
    let root = nix::unistd::geteuid().is_root();
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
            Err(e) if e.raw_os_error() == Some(Errno::EPERM as i32) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    let mut session = fuser::Session::new(adapter, mountpoint, config).map_err(failed)?;
    let unmounter = Unmounter::Fuser(session.unmount_callable());
    Ok((session, unmounter))
}

/// mount(2) of a new /dev/fuse connection at `mountpoint`, type `fuse.s3mount`, with the
/// flags and kernel options fuser would use. Returns the connection.
fn mount_directly(mountpoint: &Path, config: &Config, fsname: &str) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::PermissionsExt;

    let root_mode = std::fs::metadata(mountpoint)?.permissions().mode();
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let fd = OwnedFd::from(dev);
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
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
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (option, flag) in [
        (MountOption::RO, MsFlags::MS_RDONLY),
        (MountOption::NoExec, MsFlags::MS_NOEXEC),
        (MountOption::NoAtime, MsFlags::MS_NOATIME),
    ] {
        if opts.contains(&option) {
            flags |= flag;
        }
    }
    nix::mount::mount(
        Some(fsname),
        mountpoint,
        Some("fuse.s3mount"),
        flags,
        Some(data.as_str()),
    )?;
    Ok(fd)
}

/// Detaches the mount at `path` even though it is busy.
fn lazy_unmount(path: &Path) {
    if umount2(path, MntFlags::MNT_DETACH).is_ok() {
        return;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aborted_connection_after_the_unmount_is_a_clean_end() {
        let aborted = || Err(std::io::Error::from_raw_os_error(libc::ECONNABORTED));
        let gone = tempfile::tempdir().unwrap();
        assert!(session_outcome(aborted(), gone.path()).is_ok());
        // Still mounted: an administrator aborted it.
        assert!(session_outcome(aborted(), Path::new("/proc")).is_err());
        let other = Err(std::io::Error::from_raw_os_error(libc::EIO));
        assert!(session_outcome(other, gone.path()).is_err());
        assert!(session_outcome(Ok(()), gone.path()).is_ok());
    }
}
