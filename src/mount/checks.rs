//! The checks before mounting: the mount point, the profile, credentials and region, and one
//! listing that proves the bucket exists and may be listed (with `--all-buckets`, one
//! `ListBuckets` that proves the account may be listed).
//!
//! Design note: each failure becomes one line that says what is wrong and what to do (a
//! [`StartupError`]); a connection failure is named by its [`Transport`] cause. The checks run
//! under their own limit ([`STARTUP_LIMIT`], 20 s in all) rather than a request's (5 attempts
//! of up to 30 s): a server that accepts connections and never answers must fail the mount in
//! seconds. The listing is one attempt at a time, retried here only when another attempt can
//! help (a timeout, a reset, throttling, a 5xx answer); a refused connection, an unknown host,
//! a TLS failure or a missing bucket is reported at once. After [`STARTUP_PATIENCE`] without
//! an outcome, a line says what s3mount is waiting for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info};

use crate::cli::Args;
use crate::daemon::Readiness;
use crate::metrics::Metrics;
use crate::startup::StartupError;
use crate::storage::account::AccountStore;
use crate::storage::metered::MeteredStore;
use crate::storage::s3::{self, S3Account, S3Store, Transport};
use crate::storage::{BucketLocation, ErrorKind, ObjectStore, StoreError};

/// How long the checks before mounting (credentials, region, one listing) may take in all.
pub(super) const STARTUP_LIMIT: Duration = Duration::from_secs(20);
/// After this long without an outcome, s3mount says what it is waiting for.
const STARTUP_PATIENCE: Duration = Duration::from_secs(5);
/// First pause between two listing attempts; doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(3);

/// What the checks are doing, for the waiting line and the message at the limit.
struct Progress {
    phase: &'static str,
    /// The last failed attempt that was worth retrying.
    last_error: Option<StoreError>,
}

/// Connects to the bucket and proves, with one listing, that it exists and may be listed,
/// within [`STARTUP_LIMIT`]. Every request goes through the metered store, which is returned.
pub(super) async fn connect(
    args: &Args,
    location: &BucketLocation,
    mountpoint: &Path,
    metrics: &Arc<Metrics>,
    readiness: &Readiness,
) -> Result<MeteredStore, StartupError> {
    if let Some(profile) = &args.profile {
        s3::check_profile(profile).await?;
    }
    let endpoint = args
        .endpoint_url
        .clone()
        .unwrap_or_else(|| "the AWS S3 endpoint".to_string());
    let failed = |source: StoreError| StartupError::Bucket {
        message: explain(&source, location, &endpoint),
        source: Box::new(source),
    };
    let progress = Mutex::new(Progress {
        phase: "loading credentials and finding the bucket's region",
        last_error: None,
    });
    let checks = check_bucket(args, location, metrics, &progress);
    tokio::pin!(checks);
    let patience = tokio::time::sleep(STARTUP_PATIENCE);
    tokio::pin!(patience);
    let limit = tokio::time::sleep(STARTUP_LIMIT);
    tokio::pin!(limit);
    let mut told = false;
    let (store, region) = loop {
        tokio::select! {
            result = &mut checks => break result.map_err(failed)?,
            _ = &mut patience, if !told => {
                told = true;
                let line = waiting_line(&endpoint, &progress.lock().unwrap());
                debug!("{line}");
                readiness.notice(&line);
            }
            _ = &mut limit => {
                let mut progress = progress.lock().unwrap();
                return Err(match progress.last_error.take() {
                    Some(e) => failed(e),
                    None => StartupError::NoAnswer {
                        endpoint: endpoint.clone(),
                        phase: progress.phase.to_string(),
                        limit: STARTUP_LIMIT,
                    },
                });
            }
        }
    };
    info!(%location, %region, mountpoint = %mountpoint.display(), "bucket reachable");
    Ok(store)
}

/// `waiting for ENDPOINT to answer (PHASE[, last attempt: WHY]); giving up after 20 s`.
fn waiting_line(endpoint: &str, progress: &Progress) -> String {
    let last = match &progress.last_error {
        Some(e) if e.kind() == ErrorKind::Connect => {
            format!("; last attempt: {}", Transport::of(e))
        }
        Some(e) => format!("; last attempt: {e}"),
        None => String::new(),
    };
    format!(
        "waiting for {endpoint} to answer ({}{last}); giving up after {} s",
        progress.phase,
        STARTUP_LIMIT.as_secs()
    )
}

/// The checks themselves: the client (credentials, region), then the listing, tried again
/// while [`worth_retrying`]. Returns the store and the region in use.
async fn check_bucket(
    args: &Args,
    location: &BucketLocation,
    metrics: &Arc<Metrics>,
    progress: &Mutex<Progress>,
) -> Result<(MeteredStore, String), StoreError> {
    let (s3, region): (Arc<dyn ObjectStore>, String) = match args.all_buckets {
        true => {
            let account = S3Account::connect(args.s3_settings()).await?;
            let region = account.region().to_string();
            (Arc::new(AccountStore::new(Arc::new(account))), region)
        }
        false => {
            let s3 = S3Store::connect(location, args.s3_settings()).await?;
            let region = s3.region().to_string();
            (Arc::new(s3), region)
        }
    };
    let store = MeteredStore::new(s3, metrics.clone());
    progress.lock().unwrap().phase = match args.all_buckets {
        true => "listing the buckets",
        false => "listing the bucket",
    };
    let mut pause = FIRST_PAUSE;
    loop {
        match store.check_access().await {
            Ok(()) => return Ok((store, region)),
            Err(e) if worth_retrying(&e) => {
                debug!("the bucket check will be tried again: {e}");
                progress.lock().unwrap().last_error = Some(e);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether another attempt at the listing could succeed: not for a refused connection, an
/// unknown host, a TLS failure, or an answer that says no.
fn worth_retrying(e: &StoreError) -> bool {
    match e.kind() {
        ErrorKind::Timeout | ErrorKind::Throttled | ErrorKind::Server => true,
        ErrorKind::Connect => matches!(
            Transport::of(e),
            Transport::Reset | Transport::TimedOut | Transport::Other { .. }
        ),
        _ => false,
    }
}

/// Checks that `path` exists, is a directory and is not already a mount point.
pub(super) fn check_mountpoint(path: &Path) -> Result<PathBuf, StartupError> {
    let meta = std::fs::metadata(path).map_err(|source| {
        let path = path.to_path_buf();
        match source.kind() {
            std::io::ErrorKind::NotFound => StartupError::MountpointMissing { path, source },
            std::io::ErrorKind::NotConnected => StartupError::DeadMount { path, source },
            _ => StartupError::MountpointUnusable { path, source },
        }
    })?;
    if !meta.is_dir() {
        return Err(StartupError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    let canonical =
        std::fs::canonicalize(path).map_err(|source| StartupError::ResolveMountpoint {
            path: path.to_path_buf(),
            source,
        })?;
    if is_mounted(&canonical) {
        return Err(StartupError::AlreadyMounted { path: canonical });
    }
    Ok(canonical)
}

/// Warns when the mount point has entries: the mount hides them until it is unmounted (as
/// mount(8) would, silently; other mount helpers warn too).
pub(super) fn warn_if_not_empty(path: &Path, readiness: &Readiness) {
    let entries = std::fs::read_dir(path).map_or(0, |d| d.count());
    if entries > 0 {
        let line = format!(
            "warning: mount point {} is not empty: its {entries} {} will be hidden until \
             the bucket is unmounted",
            path.display(),
            if entries == 1 { "entry" } else { "entries" }
        );
        debug!("{line}");
        readiness.notice(&line);
    }
}

/// Whether `path` (canonical) is listed as a mount point in /proc/self/mountinfo.
pub(super) fn is_mounted(path: &Path) -> bool {
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
    use crate::storage::ErrorKind;
    let bucket = match location.bucket.as_str() {
        "" => "(--all-buckets: ListBuckets)",
        name => name,
    };
    let detail = err.message();
    match err.kind() {
        ErrorKind::NoSuchBucket | ErrorKind::NotFound => format!(
            "bucket '{bucket}' does not exist at {endpoint}: check the bucket name, --region \
             and --endpoint-url"
        ),
        ErrorKind::AccessDenied => format!(
            "access denied to bucket '{bucket}' ({detail}): the credentials in use may not \
             list it; check the IAM policy or --profile, or use --no-sign-request for a \
             public bucket"
        ),
        ErrorKind::BadCredentials => format!(
            "the server rejected the credentials ({detail}): check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or --profile"
        ),
        ErrorKind::NoCredentials if detail.is_empty() => "no AWS credentials found: set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, give --profile NAME, or use \
             --no-sign-request for a public bucket"
            .to_string(),
        ErrorKind::NoCredentials => format!(
            "cannot load AWS credentials ({detail}): check the environment's AWS_* variables \
             or --profile, or use --no-sign-request for a public bucket"
        ),
        ErrorKind::Timeout => format!(
            "no answer from {endpoint} (timed out): check --endpoint-url and the network, or \
             raise --connect-timeout/--read-timeout"
        ),
        ErrorKind::Connect => explain_transport(err, endpoint),
        _ => format!("cannot access bucket '{bucket}' at {endpoint}: {err}"),
    }
}

/// The line for a request that got no answer, by its cause.
fn explain_transport(err: &StoreError, endpoint: &str) -> String {
    let cause = Transport::of(err);
    let fix = match &cause {
        Transport::Refused => "check --endpoint-url and that the server is running",
        Transport::UnknownHost { .. } => "check the host name in --endpoint-url (or --region)",
        Transport::Tls { .. } => {
            "check http:// or https:// in --endpoint-url, and that the server's certificate \
             is trusted (AWS_CA_BUNDLE)"
        }
        Transport::TimedOut => "check --endpoint-url and the network, or raise --connect-timeout",
        Transport::Reset => {
            "check http:// or https:// in --endpoint-url, and that it is an S3 server"
        }
        Transport::Other { .. } => {
            "check --endpoint-url and that the server is running and reachable"
        }
    };
    format!("cannot connect to {endpoint}: {cause}: {fix}")
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
    fn only_failures_another_attempt_could_cure_are_retried() {
        let io = |kind| std::io::Error::from(kind);
        let refused =
            StoreError::connect("x").with_source(io(std::io::ErrorKind::ConnectionRefused));
        let reset = StoreError::connect("x").with_source(io(std::io::ErrorKind::ConnectionReset));
        assert!(!worth_retrying(&refused));
        assert!(worth_retrying(&reset));
        assert!(worth_retrying(&StoreError::timeout("x")));
        assert!(worth_retrying(&StoreError::server("x")));
        assert!(!worth_retrying(&StoreError::no_such_bucket()));
        assert!(!worth_retrying(&StoreError::access_denied("x")));
        let progress = Progress {
            phase: "listing the bucket",
            last_error: Some(reset),
        };
        assert_eq!(
            waiting_line("http://h:9", &progress),
            "waiting for http://h:9 to answer (listing the bucket; last attempt: connection \
             reset); giving up after 20 s"
        );
    }

    #[test]
    fn mount_point_checks() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(check_mountpoint(&missing)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_mountpoint(&file)
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        assert!(check_mountpoint(dir.path()).is_ok());
        assert!(check_mountpoint(Path::new("/proc"))
            .unwrap_err()
            .to_string()
            .contains("already a mount point"));
    }
}
