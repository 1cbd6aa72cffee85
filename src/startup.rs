//! Why s3mount could not start: parsing the flags, going to the background, setting up
//! logging, checking the mount point and the bucket, mounting.
//!
//! Design note: each variant's `Display` is the one line the user sees after
//! `s3mount: error: `, so it says what is wrong and what to do, and it already includes the
//! underlying error's text where that helps. The underlying error is also kept as the
//! variant's `source`, for code that wants to look at it; the line printed to the user is the
//! `Display` alone, never the whole chain (which would repeat it). Failures while serving, after
//! the mount is ready, are not start-up errors: they become errnos (`crate::error`) or log lines.

use std::io;
use std::path::PathBuf;

use crate::storage::StoreError;

/// A failure before the mount is ready (or of the FUSE session as a whole).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    // ----- flags and -o options -----
    /// An `-o` option that is not an s3mount flag.
    #[error(
        "unknown mount option '{name}': use s3mount's flags without their dashes \
         (e.g. endpoint-url=URL, region=REGION, allow_other, uid=1000), or ro; see \
         `s3mount --help`"
    )]
    UnknownMountOption { name: String },

    /// An `-o` option for a flag without a value, given a value.
    #[error("mount option '{name}' takes no value: write just '{name}'")]
    MountOptionTakesNoValue { name: String },

    /// An `-o` option for a flag with a value, given none.
    #[error("mount option '{name}' needs a value: write '{name}=VALUE'")]
    MountOptionNeedsValue { name: String },

    /// clap refused the flags the `-o` options became; `reason` is the first line of its error.
    #[error("in the -o options: {reason}")]
    MountOptionsRejected {
        reason: String,
        #[source]
        source: clap::Error,
    },

    /// `--file-mode`/`--dir-mode` that is not an octal mode.
    #[error("'{value}' is not an octal permission mode like 0644")]
    NotOctalMode { value: String },

    /// BUCKET without a bucket name (`s3://`).
    #[error("'{bucket}' does not name a bucket")]
    NoBucketName { bucket: String },

    /// BUCKET with a `:` that is not `s3://` (`s3:/photos`, `https://...`).
    #[error("'{bucket}' is not a bucket name or an s3:// URI: {reason}")]
    InvalidBucketUri { bucket: String, reason: String },

    /// A bucket name that breaks S3's naming rules.
    #[error("'{name}' is not a valid bucket name: {reason}")]
    InvalidBucketName { name: String, reason: String },

    /// `--profile` names a profile that does not exist (or the files cannot be read).
    #[error(transparent)]
    Profile(#[from] crate::storage::s3::ProfileError),

    /// The checks before mounting got no answer within their limit.
    #[error("no answer from {endpoint} in {} s (the limit of the checks before mounting) \
             while {phase}: check --endpoint-url and that the server is working",
            .limit.as_secs())]
    NoAnswer {
        endpoint: String,
        phase: String,
        limit: std::time::Duration,
    },

    /// A prefix both in BUCKET and in `--prefix`.
    #[error("give the prefix either in BUCKET or with --prefix, not both")]
    PrefixTwice,

    /// A relative path that could not be made absolute.
    #[error("cannot resolve {}: {source}", .path.display())]
    ResolvePath { path: PathBuf, source: io::Error },

    // ----- --generate-man -----
    /// The directory for the man page could not be created.
    #[error("cannot create {}: {source}", .path.display())]
    CreateDirectory { path: PathBuf, source: io::Error },

    /// Rendering the man page failed.
    #[error("cannot render the man page: {0}")]
    RenderManPage(#[source] io::Error),

    /// The man page could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    WriteFile { path: PathBuf, source: io::Error },

    // ----- going to the background -----
    /// `daemonize` was called with threads running (a bug).
    #[error("internal error: cannot go to the background with {threads} threads running")]
    ThreadsRunning { threads: usize },

    /// The pipe to the waiting parent could not be created.
    #[error("cannot create a pipe: {0}")]
    Pipe(#[source] io::Error),

    /// fork(2) failed.
    #[error("cannot fork into the background: {0}")]
    Fork(#[source] io::Error),

    // ----- logging -----
    /// The log directory could not be created.
    #[error("cannot create log directory {}: {source}", .dir.display())]
    CreateLogDirectory { dir: PathBuf, source: io::Error },

    /// The rotating log files could not be opened.
    #[error("cannot write logs in {}: {source}", .dir.display())]
    LogFiles {
        dir: PathBuf,
        source: tracing_appender::rolling::InitError,
    },

    // ----- mount point -----
    /// The mount point does not exist.
    #[error("mount point {} does not exist: create it with `mkdir -p {}`", .path.display(), .path.display())]
    MountpointMissing { path: PathBuf, source: io::Error },

    /// The mount point is a FUSE mount whose process is gone.
    #[error("mount point {} is already a mount point (a dead FUSE mount): clear it with \
             `fusermount3 -u {}`", .path.display(), .path.display())]
    DeadMount { path: PathBuf, source: io::Error },

    /// The mount point cannot be examined.
    #[error("cannot use mount point {}: {source}", .path.display())]
    MountpointUnusable { path: PathBuf, source: io::Error },

    /// The mount point is not a directory.
    #[error("mount point {} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },

    /// The mount point could not be canonicalized.
    #[error("cannot resolve mount point {}: {source}", .path.display())]
    ResolveMountpoint { path: PathBuf, source: io::Error },

    /// Something is already mounted there.
    #[error("mount point {} is already a mount point: unmount it first (`fusermount3 -u {}`)",
            .path.display(), .path.display())]
    AlreadyMounted { path: PathBuf },

    // ----- resources, bucket, mount -----
    /// The `--cache` directory cannot be used (in use by another mount, not writable, ...).
    #[error(transparent)]
    DiskCache(#[from] crate::data::disk_cache::DiskCacheError),

    /// The metrics listener could not be bound; the message comes from `metrics::bind`.
    #[error("{0}")]
    Metrics(String),

    /// The tokio runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] io::Error),

    /// Connecting to the bucket or listing it failed; `message` says what to fix.
    #[error("{message}")]
    Bucket {
        message: String,
        #[source]
        source: Box<StoreError>,
    },

    /// mount(2), fusermount3 or the FUSE handshake failed.
    #[error("cannot mount at {}: {source}", .path.display())]
    Mount { path: PathBuf, source: io::Error },

    /// The readiness probe thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] io::Error),

    /// The mount exists but a `stat` of it through the kernel failed.
    #[error("mounted at {} but the mount does not answer: {source}", .path.display())]
    NotAnswering { path: PathBuf, source: io::Error },

    /// The FUSE session failed while serving.
    #[error("FUSE session ended with an error: {0}")]
    Session(#[source] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message_and_the_source_is_kept() {
        use std::error::Error;
        let e = StartupError::Mount {
            path: PathBuf::from("/mnt/x"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            e.to_string(),
            "cannot mount at /mnt/x: Permission denied (os error 13)"
        );
        let source = e.source().expect("the io::Error is kept");
        assert_eq!(
            source
                .downcast_ref::<io::Error>()
                .and_then(|e| e.raw_os_error()),
            Some(libc::EACCES)
        );
        let e = StartupError::DeadMount {
            path: PathBuf::from("/mnt/y"),
            source: io::Error::from(io::ErrorKind::NotConnected),
        };
        assert_eq!(
            e.to_string(),
            "mount point /mnt/y is already a mount point (a dead FUSE mount): clear it with \
             `fusermount3 -u /mnt/y`"
        );
    }
}
