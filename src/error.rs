//! The filesystem's one error type, and the one place where store errors become errnos.
//!
//! Design note: every operation of the core returns `Result<_, FsError>`. An `FsError` carries
//! the errno the kernel will see plus a message for the log. Conversions from
//! [`StoreError`] live here and nowhere else, so "what does a 403 on a read mean to the
//! application" is answered once.

use std::fmt;

use crate::storage::StoreError;

/// An error carrying the errno to answer with and a message for the log.
#[derive(Clone, Debug)]
pub struct FsError {
    /// The errno (positive, e.g. `libc::ENOENT`).
    pub errno: i32,
    /// What happened, for the log line.
    pub message: String,
}

/// The result type of every core operation.
pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    /// An error with an errno and a message.
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        FsError {
            errno,
            message: message.into(),
        }
    }

    /// `ENOENT`.
    pub fn not_found() -> Self {
        Self::new(libc::ENOENT, "no such file or directory")
    }

    /// The errno a modification gets: `EROFS` on a read-only mount.
    pub fn read_only() -> Self {
        Self::new(libc::EROFS, "the mount is read-only")
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl std::error::Error for FsError {}

/// The errno each kind of store failure reaches the application as.
pub fn errno_for(err: &StoreError) -> i32 {
    match err {
        StoreError::NotFound | StoreError::NoSuchBucket => libc::ENOENT,
        // The object changed under an open file: its handle is stale.
        StoreError::PreconditionFailed => libc::ESTALE,
        StoreError::AccessDenied(_)
        | StoreError::BadCredentials(_)
        | StoreError::NoCredentials(_) => libc::EACCES,
        StoreError::Invalid(_) => libc::EINVAL,
        StoreError::NotImplemented(_) => libc::ENOTSUP,
        // A dead or overloaded server is an I/O error to the application, as on a disk.
        StoreError::Connect(_)
        | StoreError::Timeout(_)
        | StoreError::Throttled(_)
        | StoreError::Server(_)
        | StoreError::Other(_) => libc::EIO,
    }
}

impl From<StoreError> for FsError {
    fn from(err: StoreError) -> Self {
        FsError::new(errno_for(&err), err.to_string())
    }
}

impl From<std::io::Error> for FsError {
    fn from(err: std::io::Error) -> Self {
        FsError::new(err.raw_os_error().unwrap_or(libc::EIO), err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_errnos() {
        assert_eq!(FsError::from(StoreError::NotFound).errno, libc::ENOENT);
        assert_eq!(
            FsError::from(StoreError::PreconditionFailed).errno,
            libc::ESTALE
        );
        assert_eq!(
            FsError::from(StoreError::AccessDenied("x".into())).errno,
            libc::EACCES
        );
        assert_eq!(
            FsError::from(StoreError::Other("x".into())).errno,
            libc::EIO
        );
        assert_eq!(
            FsError::from(StoreError::Timeout("x".into())).errno,
            libc::EIO
        );
    }
}
