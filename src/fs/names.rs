//! Which keys can be file names, and how names and keys map to each other.
//!
//! A key maps to a path by splitting at `/`. A component that cannot be a file name through
//! FUSE — empty (from `//` or a leading `/`), `.` or `..`, longer than 1,024 bytes (FUSE's
//! limit; S3's whole key has the same), or holding a NUL —
//! makes the key (or the whole prefix) unreachable through the mount; such entries are skipped
//! with a log line instead of failing the listing.
//!
//! Names that come from the kernel go through [`parse_name`], the one validator: the same
//! rules, and one errno for each way a name can be wrong.

use std::ffi::OsStr;

use crate::error::{FsError, FsResult};

/// The longest name component FUSE passes, in bytes (`FUSE_NAME_MAX`). Longer than most
/// local file systems' 255, because an S3 key's components may be: the whole key is bounded
/// by [`KEY_MAX`] anyway.
pub const NAME_MAX: usize = 1024;

/// The longest key S3 accepts, in bytes.
pub const KEY_MAX: usize = 1024;

/// Why a name cannot appear in the mount.
#[derive(Debug, PartialEq, Eq)]
pub enum BadName {
    /// Empty component (from `//` or a leading `/`).
    Empty,
    /// `.` or `..`.
    Dot,
    /// Longer than [`NAME_MAX`] bytes.
    TooLong,
    /// Contains a NUL byte.
    Nul,
    /// Not UTF-8 (S3 keys are UTF-8).
    NotUtf8,
}

impl BadName {
    /// The errno a request with such a name gets.
    pub fn errno(&self) -> i32 {
        match self {
            BadName::TooLong => libc::ENAMETOOLONG,
            _ => libc::EINVAL,
        }
    }
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadName::Empty => "empty path component",
            BadName::Dot => "'.' or '..' component",
            BadName::TooLong => "component longer than 1,024 bytes",
            BadName::Nul => "NUL byte in name",
            BadName::NotUtf8 => "S3 keys must be UTF-8",
        })
    }
}

/// Checks that `name` (one path component) can be a file name.
pub fn check_name(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        Err(BadName::Empty)
    } else if name == "." || name == ".." {
        Err(BadName::Dot)
    } else if name.len() > NAME_MAX {
        Err(BadName::TooLong)
    } else if name.contains('\0') {
        Err(BadName::Nul)
    } else {
        Ok(())
    }
}

/// A name from the kernel, checked: the one validator of names asked for by a request.
pub fn parse_name(name: &OsStr) -> FsResult<&str> {
    let bad = |why: BadName| FsError::new(why.errno(), why.to_string());
    let name = name.to_str().ok_or_else(|| bad(BadName::NotUtf8))?;
    check_name(name).map_err(bad)?;
    Ok(name)
}

/// A name the kernel looks up: one that no object can have is simply absent (ENOENT), except
/// a name too long for any file system (ENAMETOOLONG).
pub fn lookup_name(name: &OsStr) -> FsResult<&str> {
    parse_name(name).map_err(|e| match e.errno {
        libc::ENAMETOOLONG => e,
        _ => FsError::not_found(),
    })
}

/// Checks that a key stays within S3's limit.
pub fn check_key(key: &str) -> FsResult<()> {
    if key.len() > KEY_MAX {
        return Err(FsError::new(
            libc::ENAMETOOLONG,
            "the key would exceed S3's 1,024 bytes",
        ));
    }
    Ok(())
}

/// The key of child `name` of the directory whose prefix is `dir_prefix` (empty or ending in `/`).
pub fn child_key(dir_prefix: &str, name: &str) -> String {
    format!("{dir_prefix}{name}")
}

/// The prefix of child directory `name`.
pub fn child_prefix(dir_prefix: &str, name: &str) -> String {
    format!("{dir_prefix}{name}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unrepresentable_names() {
        assert_eq!(check_name(""), Err(BadName::Empty));
        assert_eq!(check_name("."), Err(BadName::Dot));
        assert_eq!(check_name(".."), Err(BadName::Dot));
        assert_eq!(check_name(&"x".repeat(1025)), Err(BadName::TooLong));
        assert!(check_name(&"x".repeat(1024)).is_ok());
        assert!(check_name("a b%+ü").is_ok());
        assert!(check_name("...").is_ok());
    }

    #[test]
    fn parse_name_gives_one_errno_per_fault() {
        use std::os::unix::ffi::OsStrExt;
        let errno = |n: &[u8]| parse_name(OsStr::from_bytes(n)).unwrap_err().errno;
        assert_eq!(errno(&[b'x'; 1025]), libc::ENAMETOOLONG);
        assert_eq!(errno(b".."), libc::EINVAL);
        assert_eq!(errno(&[0xff, 0xfe]), libc::EINVAL);
        assert_eq!(parse_name(OsStr::new("ok.txt")).unwrap(), "ok.txt");
    }
}
