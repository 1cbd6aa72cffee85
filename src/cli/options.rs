//! `-o` mount options, as mount(8) and /etc/fstab pass them, turned into s3mount's flags.
//!
//! Design note: every flag is also a mount option without its dashes (`_` and `-` alike),
//! found through clap's own definition of the flags, so the two cannot drift apart. Standard
//! options that do not concern s3mount are accepted and ignored; anything else is an error
//! that names it.

use std::ffi::OsString;

use clap::CommandFactory;

use super::Args;
use crate::startup::StartupError;

/// Standard mount options that s3mount accepts and ignores: they are either handled by
/// mount(8)/mount.fuse3, always in force (s3mount always mounts nodev,nosuid,noatime with
/// default_permissions), or meaningless for S3.
const IGNORED_OPTIONS: &[&str] = &[
    "rw",
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "diratime",
    "nodiratime",
    "async",
    "silent",
    "loud",
    "default_permissions",
];

/// Flags that make no sense as mount options.
const NOT_MOUNT_OPTIONS: &[&str] = &[
    "help",
    "version",
    "generate-man",
    "generate-completions",
    "list-failed-uploads",
    "retry-failed-uploads",
];

/// Turns `-o` option strings into the equivalent flags. Returns the flags and whether
/// `noexec` is in force.
pub fn translate_mount_options(options: &[String]) -> Result<(Vec<OsString>, bool), StartupError> {
    let cmd = Args::command();
    let mut flags = Vec::new();
    let mut read_only = None;
    let mut noexec = false;
    for opt in options.iter().flat_map(|o| o.split(',')) {
        let opt = opt.trim();
        if opt.is_empty() {
            continue;
        }
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        match name {
            "ro" if value.is_none() => read_only = Some(true),
            "rw" if value.is_none() => read_only = Some(false),
            "noexec" if value.is_none() => noexec = true,
            "exec" if value.is_none() => noexec = false,
            n if IGNORED_OPTIONS.contains(&n) && value.is_none() => {}
            // x-systemd.*, x-gvfs-*, ...: userspace-only options, meant for other programs.
            n if n.starts_with("x-") || n == "comment" => {}
            _ => flags.push(option_to_flag(&cmd, name, value)?),
        }
    }
    if read_only == Some(true) {
        flags.push("--read-only".into());
    }
    Ok((flags, noexec))
}

/// One `name[=value]` mount option as a `--flag[=value]` argument.
fn option_to_flag(
    cmd: &clap::Command,
    name: &str,
    value: Option<&str>,
) -> Result<OsString, StartupError> {
    let long = name.replace('_', "-");
    let arg = cmd
        .get_arguments()
        .filter(|a| !NOT_MOUNT_OPTIONS.contains(&a.get_id().as_str().replace('_', "-").as_str()))
        .find(|a| {
            a.get_long() == Some(long.as_str())
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&long.as_str()))
        })
        .ok_or_else(|| StartupError::UnknownMountOption { name: name.into() })?;
    let canonical = arg.get_long().unwrap_or(long.as_str());
    let takes_value = arg.get_action().takes_values();
    let optional_value = arg
        .get_num_args()
        .is_some_and(|n| n.min_values() == 0 && n.max_values() > 0);
    match (takes_value, value) {
        (false, None) => Ok(format!("--{canonical}").into()),
        (false, Some(_)) => Err(StartupError::MountOptionTakesNoValue { name: name.into() }),
        (true, Some(v)) => Ok(format!("--{canonical}={v}").into()),
        (true, None) if optional_value => Ok(format!("--{canonical}").into()),
        (true, None) => Err(StartupError::MountOptionNeedsValue { name: name.into() }),
    }
}
