//! `--all-buckets MOUNTPOINT`: the one positional argument is the mount point.
//!
//! Design note: clap assigns positionals in order, so the one given with `--all-buckets` lands
//! in BUCKET (whose requirement `command_for` lifts, with MOUNTPOINT's); it is moved here, and
//! a BUCKET given as well, or no positional at all, is a usage error (exit 2).

use std::path::PathBuf;

use clap::CommandFactory;

use super::Args;

/// With --all-buckets there is no BUCKET: clap took the one positional for it, and it is
/// the MOUNTPOINT.
pub(super) fn mountpoint_alone(args: &mut Args) -> Result<(), clap::Error> {
    if !args.all_buckets {
        return Ok(());
    }
    let usage = |message: &str| {
        Args::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            message.to_string(),
        )
    };
    match (args.bucket.take(), &args.mountpoint) {
        (Some(mountpoint), None) => {
            args.mountpoint = Some(PathBuf::from(mountpoint));
            Ok(())
        }
        (Some(bucket), Some(_)) => Err(usage(&format!(
            "--all-buckets mounts every bucket: give MOUNTPOINT alone, not BUCKET '{bucket}'"
        ))),
        (None, Some(_)) => Ok(()),
        (None, None) => Err(Args::command().error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "--all-buckets needs MOUNTPOINT",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Args, ArgsError};

    fn parse(argv: &[&str]) -> Result<Args, String> {
        Args::parse_from_args(argv).map_err(|e| match e {
            ArgsError::Clap(e) => e.to_string(),
            ArgsError::Options(m) => m.to_string(),
        })
    }

    #[test]
    fn all_buckets_takes_the_mountpoint_alone() {
        let a = parse(&["s3mount", "--all-buckets", "/mnt"]).unwrap();
        assert!(a.all_buckets && a.bucket.is_none());
        assert_eq!(a.mountpoint(), Path::new("/mnt"));
        let a = parse(&["s3mount", "/mnt", "--all-buckets", "--region", "eu-west-1"]).unwrap();
        assert_eq!(a.mountpoint(), Path::new("/mnt"));
        let e = parse(&["s3mount", "--all-buckets", "b", "/mnt"]).unwrap_err();
        assert!(e.contains("give MOUNTPOINT alone"), "{e}");
        let e = parse(&["s3mount", "--all-buckets"]).unwrap_err();
        assert!(e.contains("needs MOUNTPOINT"), "{e}");
        let e = parse(&["s3mount", "--all-buckets", "--prefix", "p/", "/mnt"]).unwrap_err();
        assert!(e.contains("cannot be used with"), "{e}");
        assert!(!parse(&["s3mount", "b", "/mnt"]).unwrap().all_buckets);
        assert!(
            parse(&["s3mount", "/mnt"]).is_err(),
            "BUCKET is still needed without it"
        );
    }
}
