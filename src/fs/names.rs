//! Which keys can be file names, and how names and keys map to each other.
//!
//! A key maps to a path by splitting at `/`. A component that cannot be a file name on Linux
//! — empty (from `//` or a leading `/`), `.` or `..`, longer than 255 bytes, or holding a NUL —
//! makes the key (or the whole prefix) unreachable through the mount; such entries are skipped
//! with a log line instead of failing the listing.

/// The longest file name Linux accepts, in bytes.
pub const NAME_MAX: usize = 255;

/// The longest key S3 accepts, in bytes.
pub const KEY_MAX: usize = 1024;

/// Why a listed name cannot appear in the mount.
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
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadName::Empty => "empty path component",
            BadName::Dot => "'.' or '..' component",
            BadName::TooLong => "component longer than 255 bytes",
            BadName::Nul => "NUL byte in name",
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
        assert_eq!(check_name(&"x".repeat(256)), Err(BadName::TooLong));
        assert!(check_name(&"x".repeat(255)).is_ok());
        assert!(check_name("a b%+ü").is_ok());
        assert!(check_name("...").is_ok());
    }
}
