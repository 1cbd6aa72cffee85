//! Command-line interface. Flag names follow Mountpoint's `mount-s3` where the meaning is the
//! same, so users can switch between the two.
//!
//! Most of this file is the documented clap definition of each flag (its help is the man
//! page, which `man.rs` renders); `options.rs` turns `-o` mount options into flags,
//! `values.rs` parses and checks flag values and BUCKET, `all_buckets.rs` handles the one
//! positional of `--all-buckets`, and `tests.rs` holds the tests.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::config::{FsConfig, ReadConfig, WriteConfig};
use crate::startup::StartupError;
use crate::storage::s3::S3Settings;
use crate::storage::BucketLocation;

mod all_buckets;
mod man;
mod options;
mod values;

pub use options::translate_mount_options;

pub(crate) use values::check_bucket_name;
pub use values::parse_location;
use values::{
    byte_size, parse_as_of, parse_endpoint_url, parse_octal, seconds, MAX_PART, MIN_READ_PART,
    MIN_WRITE_PART,
};

pub use man::write_man_page;

/// Mount an S3 bucket (or a prefix of it) as a local directory.
///
/// s3mount checks the mount point and the bucket, mounts, and then goes to the background:
/// the command returns once the mount is ready (exit status 0), or prints one line saying what
/// is wrong (exit status 1). With `-f/--foreground` it stays attached to the terminal and logs
/// to stderr. Stop it with `umount MOUNTPOINT`, `fusermount3 -u MOUNTPOINT`, SIGINT or SIGTERM.
///
/// From /etc/fstab or `mount -t fuse.s3mount BUCKET MOUNTPOINT -o OPTIONS`, every flag can be
/// given as a mount option without its dashes (`endpoint-url=URL`, `allow_other`, `ro`).
#[derive(Debug, Parser)]
#[command(
    name = "s3mount",
    version,
    about,
    args_override_self = true,
    override_usage = "s3mount [OPTIONS] <BUCKET> <MOUNTPOINT> [-o OPTIONS]\n       \
                      s3mount --all-buckets [OPTIONS] <MOUNTPOINT>\n       \
                      s3mount --generate-man <DIR>\n       \
                      s3mount --generate-completions <SHELL>\n       \
                      s3mount --list-failed-uploads [--cache-dir DIR]\n       \
                      s3mount --retry-failed-uploads[=ID,...] [--cache-dir DIR] [OPTIONS]"
)]
pub struct Args {
    /// Bucket to mount: `NAME`, `NAME/PREFIX/` or `s3://NAME/PREFIX/`.
    // Required, so that --help shows `<BUCKET>`; the --generate-* flags are `exclusive`, which
    // lifts the requirement, and the failed-upload commands are parsed without it
    // (`command_for`).
    #[arg(value_name = "BUCKET", required = true)]
    pub bucket: Option<String>,

    /// Directory to mount the bucket at.
    #[arg(value_name = "MOUNTPOINT", required = true)]
    pub mountpoint: Option<PathBuf>,

    /// Mount options, comma-separated, as mount(8) and /etc/fstab pass them: any s3mount flag
    /// without its dashes (`endpoint-url=URL`, `region=R`, `allow_other`, `uid=1000`; `_` and
    /// `-` are the same), `ro` for --read-only, `noexec`; standard options that do not concern
    /// s3mount (rw, nodev, nosuid, noatime, _netdev, nofail, defaults, x-systemd.*, ...) are
    /// ignored. Repeatable.
    #[arg(short = 'o', value_name = "OPTIONS", action = clap::ArgAction::Append,
          help_heading = "Mount options")]
    pub options: Vec<String>,

    /// Set by the `noexec` mount option: the kernel refuses to execute files from the mount.
    #[arg(skip)]
    pub noexec: bool,

    /// Mount only the keys under this prefix (a trailing `/` is added if missing).
    #[arg(long, help_heading = "Bucket options")]
    pub prefix: Option<String>,

    /// AWS region of the bucket [default: from the environment or profile, else discovered
    /// from the bucket, else us-east-1].
    #[arg(long, help_heading = "Bucket options")]
    pub region: Option<String>,

    /// S3 endpoint URL, for S3-compatible servers: `http://HOST:PORT` or `https://HOST`.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_parser = parse_endpoint_url,
          help_heading = "Bucket options")]
    pub endpoint_url: Option<String>,

    /// Use path-style addressing (`http://host/bucket/key`), as most local servers need.
    #[arg(long, help_heading = "Bucket options")]
    pub force_path_style: bool,

    /// Use this profile from the shared AWS config and credentials files.
    #[arg(long, help_heading = "AWS credentials options")]
    pub profile: Option<String>,

    /// Send anonymous requests (public buckets); no credentials are loaded.
    #[arg(long, help_heading = "AWS credentials options")]
    pub no_sign_request: bool,

    /// Refuse every modification (EROFS).
    #[arg(long, help_heading = "Mount options")]
    pub read_only: bool,

    /// Allow other users, root included, to access the mount (needs `user_allow_other` in
    /// /etc/fuse.conf when not mounting as root).
    #[arg(long, help_heading = "Mount options")]
    pub allow_other: bool,

    /// Allow root to access the mount.
    #[arg(long, help_heading = "Mount options", conflicts_with = "allow_other")]
    pub allow_root: bool,

    /// Unmount automatically when the s3mount process exits, even if it is killed.
    #[arg(long, help_heading = "Mount options")]
    pub auto_unmount: bool,

    /// Stay in the foreground and log to stderr, instead of going to the background once the
    /// mount is ready.
    #[arg(short, long, help_heading = "Mount options")]
    pub foreground: bool,

    /// Owner user id of every file [default: the current user].
    #[arg(long, help_heading = "Mount options")]
    pub uid: Option<u32>,

    /// Owner group id of every file [default: the current group].
    #[arg(long, help_heading = "Mount options")]
    pub gid: Option<u32>,

    /// Permission bits of files, in octal.
    #[arg(long, value_parser = parse_octal, default_value = "0644", help_heading = "Mount options")]
    pub file_mode: u16,

    /// Permission bits of directories, in octal.
    #[arg(long, value_parser = parse_octal, default_value = "0755", help_heading = "Mount options")]
    pub dir_mode: u16,

    /// Seconds a stat or lookup answer is trusted before S3 is asked again (0 or more).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0,
          value_parser = seconds(0.0), help_heading = "Caching options")]
    pub metadata_ttl: f64,

    /// Take attributes from listings alone (the defaults plus Last-Modified, as mount-s3
    /// does) instead of reading each object's stored mode, owner and times: faster `ls -l`
    /// for buckets that never carry s3fs headers.
    #[arg(long, help_heading = "Caching options")]
    pub listing_attributes: bool,

    /// Memory for the block cache, in MiB (at least 1; a cache smaller than two --part-size
    /// parts works, but sequential reads then fetch parts they evict before reading).
    #[arg(long, value_name = "MiB", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30),
          help_heading = "Caching options")]
    pub cache_size: u64,

    /// Size of each ranged GET and of each multipart upload part, in bytes (256 KiB to
    /// 5 GiB; a suffix KiB, MiB or GiB may be given).
    #[arg(long, alias = "read-part-size", value_name = "BYTES", default_value = "8388608",
          value_parser = byte_size(MIN_READ_PART, MAX_PART), help_heading = "Client options")]
    pub part_size: u64,

    /// Part size for multipart uploads, in bytes (5 MiB to 5 GiB, S3's limits; a suffix KiB,
    /// MiB or GiB may be given) [default: --part-size, or 5 MiB if that is smaller].
    #[arg(long, value_name = "BYTES", value_parser = byte_size(MIN_WRITE_PART, MAX_PART),
          help_heading = "Client options")]
    pub write_part_size: Option<u64>,

    /// Attempts per S3 request, the first included; throttling, 5xx answers, resets and
    /// timeouts are retried with exponential backoff.
    #[arg(long, env = "AWS_MAX_ATTEMPTS", value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Client options")]
    pub max_attempts: u32,

    /// Seconds to wait for a connection to the endpoint (more than 0).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0,
          value_parser = seconds(0.001), help_heading = "Client options")]
    pub connect_timeout: f64,

    /// Seconds to wait for the first byte of an answer (more than 0). With the defaults an
    /// unresponsive server becomes EIO after at most about 3 minutes (5 × 30 s plus
    /// backoff); the checks before mounting give up after 20 s whatever this is.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0,
          value_parser = seconds(0.001), help_heading = "Client options")]
    pub read_timeout: f64,

    /// Directory for staging files being written [default: the system temp dir].
    #[arg(long, value_name = "DIR", help_heading = "Caching options")]
    pub cache_dir: Option<PathBuf>,

    /// Storage class for new objects (e.g. STANDARD_IA, INTELLIGENT_TIERING).
    #[arg(long, help_heading = "Bucket options")]
    pub storage_class: Option<String>,

    /// Server-side encryption for new objects.
    #[arg(long, value_parser = ["AES256", "aws:kms", "aws:kms:dsse"], help_heading = "Bucket options")]
    pub sse: Option<String>,

    /// KMS key for `--sse aws:kms`.
    #[arg(long, requires = "sse", help_heading = "Bucket options")]
    pub sse_kms_key_id: Option<String>,

    /// Accepted for compatibility with mount-s3: deleting is always allowed unless
    /// --read-only.
    #[arg(long, help_heading = "Mount options")]
    pub allow_delete: bool,

    /// Accepted for compatibility with mount-s3: overwriting is always allowed unless
    /// --read-only.
    #[arg(long, help_heading = "Mount options")]
    pub allow_overwrite: bool,

    /// Log debug messages, including one line per S3 request (operation, key, HTTP status,
    /// attempts, bytes, latency; never a credential).
    #[arg(short, long, help_heading = "Logging options")]
    pub debug: bool,

    /// Write logs to rotating daily files in this directory (s3mount.YYYY-MM-DD.log, 7 kept)
    /// [default: stderr with --foreground, else syslog/journald].
    #[arg(short, long, value_name = "DIR", help_heading = "Logging options")]
    pub log_directory: Option<PathBuf>,

    /// Log a summary of S3 requests, bytes, errors, retries, latency percentiles and cache
    /// hits every SECONDS [default when given without a value: 60].
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, require_equals = true,
          default_missing_value = "60", value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "Logging options")]
    pub log_metrics: Option<u64>,

    /// Serve metrics in the Prometheus text format at http://ADDR/metrics (e.g.
    /// 127.0.0.1:9464). Only loopback addresses unless --metrics-allow-remote.
    #[arg(long, value_name = "ADDR", help_heading = "Logging options")]
    pub metrics_addr: Option<SocketAddr>,

    /// Allow --metrics-addr to listen on a non-loopback address (the endpoint has no
    /// authentication).
    #[arg(long, requires = "metrics_addr", help_heading = "Logging options")]
    pub metrics_allow_remote: bool,

    /// Write the man page (s3mount.1) into DIR and exit.
    #[arg(
        long,
        value_name = "DIR",
        exclusive = true,
        help_heading = "Installation"
    )]
    pub generate_man: Option<PathBuf>,

    /// Print the completion script for SHELL to stdout and exit.
    #[arg(
        long,
        value_name = "SHELL",
        exclusive = true,
        help_heading = "Installation"
    )]
    pub generate_completions: Option<clap_complete::Shell>,

    /// List the uploads that failed and were kept (in --cache-dir DIR, by default
    /// /var/lib/s3mount for root, else ~/.local/state/s3mount), one line each, and exit.
    #[arg(
        long,
        help_heading = "Failed uploads",
        conflicts_with = "retry_failed_uploads"
    )]
    pub list_failed_uploads: bool,

    /// Upload again the failed uploads with these IDs (all of them when none is given), with
    /// the connection flags given here, else those the mount used; remove each one S3 took,
    /// and exit (status 1 if any failed: those are kept).
    #[arg(long, value_name = "ID,...", num_args = 0..=1, require_equals = true,
          value_delimiter = ',', help_heading = "Failed uploads")]
    pub retry_failed_uploads: Option<Vec<String>>,

    /// With --retry-failed-uploads: upload even where the object changed since the upload
    /// failed (saved again, or changed by another client), overwriting it.
    #[arg(
        long,
        requires = "retry_failed_uploads",
        help_heading = "Failed uploads"
    )]
    pub overwrite_changed: bool,

    /// Keep the blocks read from S3 in DIR as well as in memory, so that they survive a
    /// remount and a working set larger than --cache-size (every block checksummed, keyed by
    /// the object's ETag). DIR is locked: one mount per DIR.
    #[arg(long = "cache", value_name = "DIR", help_heading = "Caching options")]
    pub disk_cache: Option<PathBuf>,

    /// Bound of the --cache directory, in MiB [default: half of the space free under DIR
    /// when mounting, plus what the cache already holds].
    #[arg(long, value_name = "MiB", requires = "disk_cache",
          value_parser = clap::value_parser!(u64).range(1..=1 << 40),
          help_heading = "Caching options")]
    pub max_cache_size: Option<u64>,

    /// Share blocks between machines through BUCKET (on AWS, an S3 Express One Zone directory
    /// bucket in the readers' zone; any bucket works, reached with the same connection flags):
    /// a block missing locally is read from BUCKET before the source bucket, and a block read
    /// from the source is written to BUCKET in the background. Every block is checksummed and
    /// keyed by the object's ETag; a failing BUCKET costs speed, never a read.
    #[arg(
        long = "cache-xz",
        value_name = "BUCKET",
        help_heading = "Caching options"
    )]
    pub cache_xz: Option<String>,

    /// Lifetime of the URLs `getfattr -n user.s3.presigned-url FILE` gives.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=604_800),
          help_heading = "Bucket options")]
    pub presign_expiry: u64,

    /// Canned ACL for new objects (PutObject, multipart uploads, copies).
    #[arg(long, value_parser = ["private", "public-read", "public-read-write",
          "authenticated-read", "aws-exec-read", "bucket-owner-read",
          "bucket-owner-full-control"], help_heading = "Bucket options")]
    pub acl: Option<String>,

    /// The requester pays for requests and transfers (RequestPayer on every request).
    #[arg(long, help_heading = "Bucket options")]
    pub requester_pays: bool,

    /// Fail every request unless the bucket belongs to this account (12 digits).
    #[arg(long, value_name = "ACCOUNT", help_heading = "Bucket options")]
    pub expected_bucket_owner: Option<String>,

    /// Mount the bucket read-only as it was at TIME (RFC 3339: 2024-05-01T12:00:00Z, or with
    /// an offset): each key at its newest version not after TIME, keys deleted then (or not
    /// yet written) absent, reads of those versions. Needs ListObjectVersions (a versioned
    /// bucket keeps what was overwritten or deleted). `cp -a` out of it recovers a tree.
    /// Implies --read-only.
    #[arg(long, value_name = "TIME", value_parser = parse_as_of,
          help_heading = "Bucket options")]
    pub as_of: Option<std::time::SystemTime>,

    /// Mount every bucket of the account (ListBuckets), each as a directory at the top; give
    /// MOUNTPOINT alone (`s3mount --all-buckets MOUNTPOINT`). Each bucket is reached in its own
    /// region, with the same flags. `mkdir NAME` at the top creates bucket NAME in --region;
    /// `rmdir NAME` deletes an empty bucket; a name S3 does not allow is refused (EINVAL).
    #[arg(long, conflicts_with_all = ["prefix", "as_of"], help_heading = "Bucket options")]
    pub all_buckets: bool,
}

/// The commands that work on failed uploads instead of mounting: BUCKET and MOUNTPOINT are not
/// needed with them. (The --generate-* flags need no such list: they are `exclusive`.)
const NO_MOUNT: [&str; 2] = ["--list-failed-uploads", "--retry-failed-uploads"];

/// The clap command for `argv`: BUCKET and MOUNTPOINT are required, so --help shows them as
/// such, except when `argv` asks for one of the [`NO_MOUNT`] commands.
fn command_for(argv: &[OsString]) -> clap::Command {
    let command = Args::command();
    let no_mount = argv.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        NO_MOUNT
            .iter()
            .any(|flag| a == *flag || a.starts_with(&format!("{flag}=")))
    });
    // With --all-buckets, the one positional is MOUNTPOINT (see `all_buckets.rs`).
    let all_buckets = argv.iter().skip(1).any(|a| a == "--all-buckets");
    match no_mount || all_buckets {
        true => command
            .mut_arg("bucket", |a| a.required(false))
            .mut_arg("mountpoint", |a| a.required(false)),
        false => command,
    }
}

/// Parses `argv` with [`command_for`].
fn try_parse(argv: &[OsString]) -> Result<Args, clap::Error> {
    use clap::FromArgMatches;
    let mut matches = command_for(argv).try_get_matches_from(argv)?;
    let mut args = Args::from_arg_matches_mut(&mut matches)?;
    // A mount of the past cannot be written.
    args.read_only |= args.as_of.is_some();
    all_buckets::mountpoint_alone(&mut args)?;
    Ok(args)
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// clap's own error (usage, --help, --version): it knows how to print itself and its
    /// exit code.
    #[error(transparent)]
    Clap(clap::Error),
    /// A bad `-o` option: one line, exit status 1.
    #[error(transparent)]
    Options(StartupError),
}

impl Args {
    /// Parses a command line (`argv[0]` first), `-o` options included.
    pub fn parse_from_args<I, T>(argv: I) -> Result<Args, ArgsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let args = try_parse(&argv).map_err(ArgsError::Clap)?;
        if args.options.is_empty() {
            return Ok(args);
        }
        let (flags, noexec) = translate_mount_options(&args.options).map_err(ArgsError::Options)?;
        // The options go first, so flags given on the command line itself win.
        let mut full = Vec::with_capacity(argv.len() + flags.len());
        full.extend(argv.first().cloned());
        full.extend(flags);
        full.extend(argv.iter().skip(1).cloned());
        let mut args = try_parse(&full).map_err(|source| {
            let reason = source
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid option")
                .trim_start_matches("error: ")
                .to_string();
            ArgsError::Options(StartupError::MountOptionsRejected { reason, source })
        })?;
        args.noexec = noexec;
        Ok(args)
    }

    /// The BUCKET argument (present unless generating docs).
    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or("")
    }

    /// The MOUNTPOINT argument (present unless generating docs).
    pub fn mountpoint(&self) -> &Path {
        self.mountpoint.as_deref().unwrap_or(Path::new(""))
    }

    /// Makes every path absolute, so that they keep their meaning after the background
    /// process moves to `/`.
    pub fn absolutize_paths(&mut self) -> Result<(), StartupError> {
        for path in [
            self.mountpoint.as_mut(),
            self.log_directory.as_mut(),
            self.cache_dir.as_mut(),
            self.disk_cache.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path =
                    std::path::absolute(&*path).map_err(|source| StartupError::ResolvePath {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
        Ok(())
    }
}

/// Prints the completion script for `shell` to stdout.
pub fn print_completions(shell: clap_complete::Shell) {
    let mut cmd = Args::command();
    clap_complete::generate(shell, &mut cmd, "s3mount", &mut std::io::stdout());
}

impl Args {
    /// The filesystem configuration these flags describe.
    pub fn fs_config(&self, location: &BucketLocation) -> FsConfig {
        let defaults = FsConfig::default();
        FsConfig {
            prefix: location.prefix.clone(),
            read_only: self.read_only,
            uid: self.uid.unwrap_or(defaults.uid),
            gid: self.gid.unwrap_or(defaults.gid),
            file_mode: self.file_mode,
            dir_mode: self.dir_mode,
            metadata_ttl: Duration::from_secs_f64(self.metadata_ttl),
            trust_listing_attrs: self.listing_attributes,
            other_users: self.allow_other || self.allow_root,
            read: ReadConfig {
                cache_bytes: self.cache_size << 20,
                part_size: self.part_size,
                disk_cache: self.disk_cache_config(location),
                ..ReadConfig::default()
            },
            write: WriteConfig {
                part_size: self
                    .write_part_size
                    .unwrap_or(self.part_size.max(MIN_WRITE_PART)),
                cache_dir: Some(crate::recovery::dir_for(self)),
                origin: crate::recovery::origin(self, location),
                ..WriteConfig::default()
            },
            buckets_at_root: self.all_buckets,
        }
    }

    /// The disk tier `--cache` asks for; the source (endpoint, bucket, prefix) is part of every
    /// block's identity, so one directory never mixes up blocks of two buckets.
    fn disk_cache_config(
        &self,
        location: &BucketLocation,
    ) -> Option<crate::data::disk_cache::DiskCacheConfig> {
        let dir = self.disk_cache.clone()?;
        let endpoint = self.endpoint_url.as_deref().unwrap_or("aws");
        Some(crate::data::disk_cache::DiskCacheConfig {
            dir,
            max_bytes: self.max_cache_size.map(|mib| mib << 20),
            source: format!("{endpoint}\n{}\n{}", location.bucket, location.prefix),
        })
    }

    /// How to reach S3.
    pub fn s3_settings(&self) -> S3Settings {
        S3Settings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            force_path_style: self.force_path_style,
            profile: self.profile.clone(),
            no_sign_request: self.no_sign_request,
            storage_class: self.storage_class.clone(),
            sse: self.sse.clone(),
            sse_kms_key_id: self.sse_kms_key_id.clone(),
            max_attempts: self.max_attempts,
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            read_timeout: Duration::from_secs_f64(self.read_timeout),
            presign_expiry: Duration::from_secs(self.presign_expiry),
            acl: self.acl.clone(),
            requester_pays: self.requester_pays,
            expected_bucket_owner: self.expected_bucket_owner.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
