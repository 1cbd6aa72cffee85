//! The `--profile` check: a named profile must exist before it is used.
//!
//! Design note: aws-config treats a missing profile like an empty one and moves on, so a typo
//! in `--profile` would silently fall through to other credentials. s3mount loads the shared
//! config and credentials files the way the SDK does (`aws_config::profile::load`, honouring
//! `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`) and refuses a name that is in neither,
//! naming the files and the profiles that do exist.

use std::borrow::Cow;
use std::path::PathBuf;

use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

/// Why `--profile` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile of that name in either file.
    #[error(
        "profile '{name}' is not in {} or {}{}: check --profile",
        .files.0.display(), .files.1.display(), known_list(.known)
    )]
    Missing {
        name: String,
        files: (PathBuf, PathBuf),
        known: Vec<String>,
    },
    /// The files could not be read or parsed.
    #[error("cannot read the AWS profiles ({source}): check {} and {}",
            .files.0.display(), .files.1.display())]
    Unreadable {
        files: (PathBuf, PathBuf),
        #[source]
        source: aws_config::profile::ProfileFileLoadError,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (no profiles are defined)".to_string()
    } else {
        format!(" (profiles there: {})", known.join(", "))
    }
}

/// The config and credentials file paths, as the SDK chooses them (for messages).
fn profile_files() -> (PathBuf, PathBuf) {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("~"), PathBuf::from);
    let pick = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| home.join(".aws").join(default), PathBuf::from)
    };
    (
        pick("AWS_CONFIG_FILE", "config"),
        pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    )
}

/// Checks that the profile `name` is defined in the shared config or credentials file.
pub async fn check_profile(name: &str) -> Result<(), ProfileError> {
    let set = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        Some(Cow::Owned(name.to_string())),
    )
    .await
    .map_err(|source| ProfileError::Unreadable {
        files: profile_files(),
        source,
    })?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<String> = set.profiles().map(str::to_string).collect();
    known.sort();
    Err(ProfileError::Missing {
        name: name.to_string(),
        files: profile_files(),
        known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_known_profiles() {
        let e = ProfileError::Missing {
            name: "prd".into(),
            files: ("/h/.aws/config".into(), "/h/.aws/credentials".into()),
            known: vec!["default".into(), "prod".into()],
        };
        assert_eq!(
            e.to_string(),
            "profile 'prd' is not in /h/.aws/config or /h/.aws/credentials (profiles there: \
             default, prod): check --profile"
        );
    }
}
