//! Tests of flag parsing, `-o` options and the documentation flags.

use super::*;

#[test]
fn values_outside_what_works_are_refused() {
    let err = |argv: &[&str]| match Args::parse_from_args(argv) {
        Err(ArgsError::Clap(e)) => e.to_string(),
        Err(ArgsError::Options(e)) => e.to_string(),
        Ok(_) => panic!("{argv:?} was accepted"),
    };
    let e = err(&["s3mount", "bkt", "/m", "--write-part-size", "1000"]);
    assert!(
        e.contains("1000 bytes is outside the valid range, 5 MiB (5242880 bytes) to 5 GiB"),
        "{e}"
    );
    let e = err(&["s3mount", "bkt", "/m", "--cache-size", "0"]);
    assert!(e.contains("'0' for '--cache-size"), "{e}");
    let e = err(&["s3mount", "bkt", "/m", "--part-size", "6GiB"]);
    assert!(e.contains("outside the valid range"), "{e}");
    let e = err(&["s3mount", "bkt", "/m", "--part-size", "8XB"]);
    assert!(e.contains("unknown unit 'xb'"), "{e}");
    let e = err(&["s3mount", "bkt", "/m", "--metadata-ttl=-1"]);
    assert!(e.contains("must be 0 seconds or more"), "{e}");
    let e = err(&["s3mount", "bkt", "/m", "--read-timeout", "0"]);
    assert!(e.contains("must be more than 0 seconds"), "{e}");
    let e = err(&["s3mount", "bkt", "/m", "--endpoint-url", "127.0.0.1:5555"]);
    assert!(e.contains("write it as http://127.0.0.1:5555"), "{e}");
    let e = err(&["s3mount", "bkt", "/m", "--endpoint-url", "ftp://h"]);
    assert!(e.contains("'ftp' is not http or https"), "{e}");
    let e = err(&["s3mount", "bkt", "/m", "--endpoint-url", "http:///x"]);
    assert!(e.contains("no host"), "{e}");

    // In range: taken as given, suffixes included; a small --part-size leaves writes at
    // S3's 5 MiB minimum.
    let a = Args::parse_from_args([
        "s3mount",
        "bkt",
        "/m",
        "--part-size",
        "1MiB",
        "--cache-size",
        "2",
        "--endpoint-url",
        "https://s3.example.com:9000",
    ])
    .unwrap();
    let config = a.fs_config(&parse_location("bkt", None).unwrap());
    assert_eq!(config.read.part_size, 1 << 20);
    assert_eq!(config.write.part_size, 5 << 20);
}

#[test]
fn help_shows_bucket_and_mountpoint_as_required() {
    let help = Args::command().render_help().to_string();
    assert!(
        help.contains("<BUCKET>") && help.contains("<MOUNTPOINT>"),
        "{help}"
    );
    assert!(
        !help.contains("[BUCKET]") && !help.contains("[MOUNTPOINT]"),
        "{help}"
    );
    // Still not needed for the documentation flags, and not accepted with them.
    assert!(parse(&["s3mount", "--generate-man", "/tmp/x"]).is_ok());
    assert!(parse(&["s3mount", "bkt", "/m", "--generate-completions", "bash"]).is_err());
}

#[test]
fn unknown_option_message_has_no_runs_of_spaces() {
    let e = parse(&["s3mount", "bkt", "/m", "-o", "bogus"]).unwrap_err();
    assert!(!e.contains("  "), "{e:?}");
    assert!(
        e.contains("without their dashes (e.g. endpoint-url=URL"),
        "{e}"
    );
}

#[test]
fn parses_modes_and_flags() {
    let a = Args::parse_from_args([
        "s3mount",
        "bucket",
        "/mnt",
        "--file-mode",
        "600",
        "--read-part-size",
        "1048576",
        "--metadata-ttl",
        "0.5",
    ])
    .unwrap();
    assert_eq!(a.file_mode, 0o600);
    assert_eq!(a.part_size, 1 << 20);
    let loc = parse_location(a.bucket(), None).unwrap();
    assert_eq!(a.fs_config(&loc).metadata_ttl, Duration::from_millis(500));
    assert!(parse_octal("999").is_err());
}

fn parse(argv: &[&str]) -> Result<Args, String> {
    Args::parse_from_args(argv).map_err(|e| match e {
        ArgsError::Clap(e) => e.to_string(),
        ArgsError::Options(m) => m.to_string(),
    })
}

#[test]
fn mount_options_map_to_flags() {
    // What mount.fuse3 passes for `mount -t fuse.s3mount b /mnt -o ro,allow_other,...`.
    let a = parse(&[
        "s3mount",
        "b",
        "/mnt",
        "-o",
        "ro,noatime,noexec,nosuid,nodev,allow_other,uid=1000,endpoint-url=http://127.0.0.1:9,\
         force_path_style,region=eu-west-1,_netdev,x-systemd.automount,dev,suid",
        "-o",
        "metadata_ttl=2,log-metrics,gid=7",
    ])
    .unwrap();
    assert!(a.read_only && a.allow_other && a.force_path_style && a.noexec);
    assert_eq!(a.uid, Some(1000));
    assert_eq!(a.gid, Some(7));
    assert_eq!(a.endpoint_url.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(a.region.as_deref(), Some("eu-west-1"));
    assert_eq!(a.metadata_ttl, 2.0);
    assert_eq!(a.log_metrics, Some(60));
    assert_eq!(a.bucket(), "b");

    // Aliases work, `rw` after `ro` wins, and the command line wins over -o.
    let a = parse(&[
        "s3mount",
        "b",
        "/mnt",
        "-o",
        "ro,rw,read_part_size=1048576,uid=5",
        "--uid",
        "6",
    ])
    .unwrap();
    assert!(!a.read_only);
    assert_eq!(a.part_size, 1 << 20);
    assert_eq!(a.uid, Some(6));

    // The standard options alone change nothing.
    let a = parse(&["s3mount", "b", "/mnt", "-o", "rw,dev,suid,defaults,nofail"]).unwrap();
    assert!(!a.read_only && !a.noexec);
}

#[test]
fn bad_mount_options_are_named() {
    let e = parse(&["s3mount", "b", "/mnt", "-o", "rw,bogus=1"]).unwrap_err();
    assert!(e.contains("unknown mount option 'bogus'"), "{e}");
    let e = parse(&["s3mount", "b", "/mnt", "-o", "region"]).unwrap_err();
    assert!(e.contains("'region' needs a value"), "{e}");
    let e = parse(&["s3mount", "b", "/mnt", "-o", "read-only=yes"]).unwrap_err();
    assert!(e.contains("'read-only' takes no value"), "{e}");
    let e = parse(&["s3mount", "b", "/mnt", "-o", "uid=abc"]).unwrap_err();
    assert!(e.contains("in the -o options") && e.contains("abc"), "{e}");
    let e = parse(&["s3mount", "b", "/mnt", "-o", "generate_man=/tmp"]).unwrap_err();
    assert!(e.contains("unknown mount option"), "{e}");
}

#[test]
fn docs_need_no_bucket() {
    let a = parse(&["s3mount", "--generate-completions", "bash"]).unwrap();
    assert!(a.bucket.is_none());
    assert!(parse(&["s3mount"]).is_err());
    let a = parse(&["s3mount", "--list-failed-uploads", "--cache-dir", "/d"]).unwrap();
    assert!(a.list_failed_uploads && a.bucket.is_none());
    let a = parse(&["s3mount", "--retry-failed-uploads"]).unwrap();
    assert_eq!(a.retry_failed_uploads, Some(vec![]));
    let a = parse(&["s3mount", "--retry-failed-uploads=a,b", "--region", "r"]).unwrap();
    assert_eq!(a.retry_failed_uploads, Some(vec!["a".into(), "b".into()]));
    assert!(parse(&["s3mount", "b", "/mnt", "-o", "list_failed_uploads"]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let page = std::fs::read_to_string(write_man_page(dir.path()).unwrap()).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH s3mount"),
        "{page:.200}"
    );
    assert!(page.contains("endpoint\\-url"), "man page lists the flags");
    assert!(page.contains("FSTAB AND MOUNT(8)") && page.contains("fuse.s3mount"));
}

#[test]
fn log_metrics_value_needs_equals() {
    let a = parse(&["s3mount", "--log-metrics", "b", "/mnt"]).unwrap();
    assert_eq!((a.log_metrics, a.bucket()), (Some(60), "b"));
    let a = parse(&["s3mount", "--log-metrics=5", "b", "/mnt"]).unwrap();
    assert_eq!(a.log_metrics, Some(5));
}

#[test]
fn as_of_takes_a_past_rfc3339_time_and_implies_read_only() {
    use std::time::{Duration, UNIX_EPOCH};
    let a = parse(&["s3mount", "--as-of", "2024-05-01T12:00:00Z", "b", "/mnt"]).unwrap();
    assert_eq!(
        a.as_of,
        Some(UNIX_EPOCH + Duration::from_secs(1_714_564_800))
    );
    assert!(a.read_only, "--as-of implies --read-only");
    let a = parse(&[
        "s3mount",
        "b",
        "/mnt",
        "-o",
        "as-of=2024-05-01T14:00:00.5+02:00",
    ])
    .unwrap();
    assert_eq!(
        a.as_of,
        Some(UNIX_EPOCH + Duration::from_millis(1_714_564_800_500))
    );
    assert!(a.read_only);
    assert!(!parse(&["s3mount", "b", "/mnt"]).unwrap().read_only);

    let e = parse(&["s3mount", "--as-of", "yesterday", "b", "/mnt"]).unwrap_err();
    assert!(e.contains("not an RFC 3339 time"), "{e}");
    let e = parse(&["s3mount", "--as-of", "2999-01-01T00:00:00Z", "b", "/mnt"]).unwrap_err();
    assert!(e.contains("in the future"), "{e}");
    let err = Args::parse_from_args(["s3mount", "--as-of", "2024-05-01", "b", "/mnt"]);
    match err {
        Err(ArgsError::Clap(e)) => assert_eq!(e.exit_code(), 2),
        other => panic!("a usage error: {other:?}"),
    }
}
