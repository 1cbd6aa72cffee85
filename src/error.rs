//! The filesystem's one error type, and the one place where store errors become errnos.
//!
//! Design note: every operation of the core returns `Result<_, FsError>`. An `FsError` carries
//! the errno the kernel will see plus a message for the log. Conversions from
//! [`StoreError`] live here and nowhere else, so "what does a 403 on a read mean to the
//! application" is answered once.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::storage::{Cause, ErrorKind, StoreError};

/// An error carrying the errno to answer with, a message for the log, and what caused it.
#[derive(Clone, Debug)]
pub struct FsError {
    /// The errno (positive, e.g. `libc::ENOENT`).
    pub errno: i32,
    /// What happened, for the log line.
    pub message: String,
    /// The store or I/O error this one comes from, if any.
    cause: Option<Cause>,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

/// By hand rather than with thiserror's `#[source]`, so that the source is the concrete error
/// (which a caller can downcast), not the `Arc` that makes `FsError` cheap to clone.
impl StdError for FsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The result type of every core operation.
pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    /// An error with an errno and a message.
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        FsError {
            errno,
            message: message.into(),
            cause: None,
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

    /// With the error that caused this one (returned by `source()`).
    pub fn with_cause(mut self, cause: impl StdError + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }
}

/// The errno each kind of store failure reaches the application as.
pub fn errno_for(err: &StoreError) -> i32 {
    match err.code() {
        Some(ARCHIVED) => return libc::EACCES, // see fs/files/archived.rs
        // The bucket answers of an --all-buckets mount (storage/account.rs).
        Some("BucketNotEmpty") => return libc::ENOTEMPTY,
        Some("BucketAlreadyExists" | "BucketAlreadyOwnedByYou") => return libc::EEXIST,
        Some(crate::storage::account::CROSS_BUCKET) => return libc::EXDEV,
        _ => {}
    }
    match err.kind() {
        ErrorKind::NotFound | ErrorKind::NoSuchBucket => libc::ENOENT,
        // The object changed under an open file: its handle is stale.
        ErrorKind::PreconditionFailed => libc::ESTALE,
        ErrorKind::AccessDenied | ErrorKind::BadCredentials | ErrorKind::NoCredentials => {
            libc::EACCES
        }
        ErrorKind::Invalid => libc::EINVAL,
        ErrorKind::NotImplemented => libc::ENOTSUP,
        // A dead or overloaded server is an I/O error to the application, as on a disk.
        ErrorKind::Connect
        | ErrorKind::Timeout
        | ErrorKind::Throttled
        | ErrorKind::Server
        | ErrorKind::Other => libc::EIO,
    }
}

/// S3's refusal of a GET of an archived object that has no restored copy.
const ARCHIVED: &str = "InvalidObjectState";

impl From<StoreError> for FsError {
    fn from(err: StoreError) -> Self {
        if err.code() == Some(ARCHIVED) {
            let hint = crate::fs::files::RESTORE_HINT;
            let message = format!("{err}: the object is archived; {hint}");
            return FsError::new(libc::EACCES, message).with_cause(err);
        }
        FsError::new(errno_for(&err), err.to_string()).with_cause(err)
    }
}

impl From<std::io::Error> for FsError {
    fn from(err: std::io::Error) -> Self {
        FsError::new(err.raw_os_error().unwrap_or(libc::EIO), err.to_string()).with_cause(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_errnos() {
        assert_eq!(FsError::from(StoreError::not_found()).errno, libc::ENOENT);
        assert_eq!(
            FsError::from(StoreError::precondition_failed()).errno,
            libc::ESTALE
        );
        assert_eq!(
            FsError::from(StoreError::access_denied("x")).errno,
            libc::EACCES
        );
        assert_eq!(FsError::from(StoreError::other("x")).errno, libc::EIO);
        assert_eq!(FsError::from(StoreError::timeout("x")).errno, libc::EIO);
    }

    #[test]
    fn a_refused_get_of_an_archived_object_is_eacces_with_the_restore_command() {
        let code = Some("InvalidObjectState".to_string());
        let err = FsError::from(StoreError::other("GetObject k").with_code(code));
        assert_eq!(err.errno, libc::EACCES);
        assert!(
            err.message.contains("setfattr -n user.s3.restore"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bucket_answers_have_their_own_errnos() {
        let coded = |code: &str| StoreError::other("x").with_code(Some(code.to_string()));
        assert_eq!(errno_for(&coded("BucketNotEmpty")), libc::ENOTEMPTY);
        assert_eq!(errno_for(&coded("BucketAlreadyOwnedByYou")), libc::EEXIST);
        assert_eq!(errno_for(&coded("BucketAlreadyExists")), libc::EEXIST);
        assert_eq!(errno_for(&coded("CrossBucketCopy")), libc::EXDEV);
        assert_eq!(errno_for(&coded("SomethingElse")), libc::EIO);
    }

    #[test]
    fn every_kind_has_an_errno() {
        for kind in ErrorKind::ALL {
            let errno = errno_for(&StoreError::new(kind, "x"));
            assert!(errno > 0, "{kind:?}");
        }
        assert_eq!(errno_for(&StoreError::not_implemented("x")), libc::ENOTSUP);
        assert_eq!(errno_for(&StoreError::no_credentials("x")), libc::EACCES);
    }

    #[test]
    fn keeps_the_cause() {
        let err = FsError::from(StoreError::throttled("GetObject k: SlowDown"));
        assert_eq!(err.errno, libc::EIO);
        assert_eq!(err.message, "throttled: GetObject k: SlowDown");
        let cause = StdError::source(&err).expect("a cause");
        assert_eq!(
            cause.downcast_ref::<StoreError>().map(StoreError::kind),
            Some(ErrorKind::Throttled)
        );

        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let err = FsError::from(io);
        assert_eq!(err.errno, libc::ENOSPC);
        let cause = StdError::source(&err).expect("a cause");
        assert_eq!(
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|e| e.raw_os_error()),
            Some(libc::ENOSPC)
        );
        assert!(StdError::source(&FsError::new(libc::EIO, "x")).is_none());
        assert_eq!(FsError::new(libc::EIO, "x").to_string(), "x (errno 5)");
    }
}
