//! Command-line interface. Flag names follow Mountpoint's `mount-s3` where the meaning is the
//! same, so users can switch between the two.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::config::{FsConfig, ReadConfig, WriteConfig};
use crate::storage::s3::S3Settings;
use crate::storage::BucketLocation;

/// Mount an S3 bucket (or a prefix of it) as a local directory.
///
/// s3mount stays attached to the terminal; run it with `&`, under systemd, or from a
/// terminal multiplexer to keep it running. `-f/--foreground` is accepted for compatibility.
/// Stop it with Ctrl-C, SIGTERM or `fusermount3 -u MOUNTPOINT`.
#[derive(Debug, Parser)]
#[command(name = "s3mount", version, about, long_about = None)]
pub struct Args {
    /// Bucket to mount: `NAME`, `NAME/PREFIX/` or `s3://NAME/PREFIX/`.
    #[arg(value_name = "BUCKET")]
    pub bucket: String,

    /// Directory to mount the bucket at.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,

    /// Mount only the keys under this prefix (a trailing `/` is added if missing).
    #[arg(long, help_heading = "Bucket options")]
    pub prefix: Option<String>,

    /// AWS region of the bucket [default: from the environment or profile, else discovered
    /// from the bucket, else us-east-1].
    #[arg(long, help_heading = "Bucket options")]
    pub region: Option<String>,

    /// S3 endpoint URL, for S3-compatible servers.
    #[arg(long, env = "AWS_ENDPOINT_URL", help_heading = "Bucket options")]
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

    /// Stay in the foreground (s3mount currently always does).
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

    /// Seconds a stat or lookup answer is trusted before S3 is asked again.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 5.0,
        help_heading = "Caching options"
    )]
    pub metadata_ttl: f64,

    /// Memory for the block cache, in MiB.
    #[arg(
        long,
        value_name = "MiB",
        default_value_t = 128,
        help_heading = "Caching options"
    )]
    pub cache_size: u64,

    /// Size of each ranged GET and of each multipart upload part, in bytes.
    #[arg(long, alias = "read-part-size", value_name = "BYTES", default_value_t = 8 << 20,
          help_heading = "Client options")]
    pub part_size: u64,

    /// Part size for multipart uploads, in bytes [default: --part-size]; at least 5 MiB.
    #[arg(long, value_name = "BYTES", help_heading = "Client options")]
    pub write_part_size: Option<u64>,

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

    /// Log debug messages (including one line per S3 request failure).
    #[arg(short, long, help_heading = "Logging options")]
    pub debug: bool,

    /// Write logs to a file in this directory instead of stderr.
    #[arg(short, long, value_name = "DIR", help_heading = "Logging options")]
    pub log_directory: Option<PathBuf>,
}

fn parse_octal(s: &str) -> Result<u16, String> {
    u16::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("'{s}' is not an octal permission mode like 0644"))
}

/// Splits `BUCKET` (and `--prefix`) into a bucket location.
pub fn parse_location(bucket: &str, prefix: Option<&str>) -> Result<BucketLocation, String> {
    let rest = bucket.strip_prefix("s3://").unwrap_or(bucket);
    let (name, inline_prefix) = match rest.split_once('/') {
        Some((n, p)) => (n, p),
        None => (rest, ""),
    };
    if name.is_empty() {
        return Err(format!("'{bucket}' does not name a bucket"));
    }
    if !inline_prefix.is_empty() && prefix.is_some() {
        return Err("give the prefix either in BUCKET or with --prefix, not both".into());
    }
    let mut p = prefix
        .unwrap_or(inline_prefix)
        .trim_start_matches('/')
        .to_string();
    if !p.is_empty() && !p.ends_with('/') {
        p.push('/');
    }
    Ok(BucketLocation {
        bucket: name.to_string(),
        prefix: p,
    })
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
            metadata_ttl: Duration::from_secs_f64(self.metadata_ttl.max(0.0)),
            read: ReadConfig {
                cache_bytes: self.cache_size.max(1) << 20,
                part_size: self.part_size.max(256 << 10),
                ..ReadConfig::default()
            },
            write: WriteConfig {
                part_size: self.write_part_size.unwrap_or(self.part_size).max(5 << 20),
                cache_dir: self.cache_dir.clone(),
                ..WriteConfig::default()
            },
        }
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
            ..S3Settings::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_forms() {
        let l = parse_location("s3://b/p/q", None).unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", "p/q/"));
        let l = parse_location("b", Some("x")).unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", "x/"));
        let l = parse_location("b/", None).unwrap();
        assert_eq!(l.prefix, "");
        assert!(parse_location("s3://", None).is_err());
        assert!(parse_location("b/p", Some("q")).is_err());
    }

    #[test]
    fn parses_modes_and_flags() {
        let a = Args::parse_from([
            "s3mount",
            "bucket",
            "/mnt",
            "--file-mode",
            "600",
            "--read-part-size",
            "1048576",
            "--metadata-ttl",
            "0.5",
        ]);
        assert_eq!(a.file_mode, 0o600);
        assert_eq!(a.part_size, 1 << 20);
        let loc = parse_location(&a.bucket, None).unwrap();
        assert_eq!(a.fs_config(&loc).metadata_ttl, Duration::from_millis(500));
        assert!(parse_octal("999").is_err());
    }
}
