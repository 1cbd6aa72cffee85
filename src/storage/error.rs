//! [`StoreError`]: a failure of the object store, already classified, with its cause kept.
//!
//! Design note: the rest of s3mount decides what to do from the [`ErrorKind`] alone (retry,
//! fall back, which errno); the other fields are there for people reading logs and for the
//! error chain: the HTTP status, the S3 error code and the request id when the server answered,
//! a human message, and the underlying error as `source()`. The source sits behind an `Arc` so
//! that a `StoreError` stays `Clone` (a failed body is reported both to the reader and to the
//! metrics). [`ErrorKind::ALL`] is the one list of kinds: the metrics' `error` labels are
//! derived from it ([`ErrorKind::LABELS`]), so no other list has to be kept in step.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A shareable underlying error.
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// What kind of failure a [`StoreError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The key (or version, or multipart upload) does not exist.
    NotFound,
    /// The bucket does not exist.
    NoSuchBucket,
    /// A condition (If-Match, If-None-Match) failed: the object changed.
    PreconditionFailed,
    /// The credentials are valid but not allowed to do this.
    AccessDenied,
    /// The server rejected the credentials themselves (unknown key, bad signature, expired token).
    BadCredentials,
    /// No credentials could be found or loaded.
    NoCredentials,
    /// The endpoint could not be reached (DNS, connection refused, TLS).
    Connect,
    /// The request timed out.
    Timeout,
    /// The server throttled us after all retries.
    Throttled,
    /// The request is invalid for the server (e.g. an entity too large).
    Invalid,
    /// The server does not implement this request.
    NotImplemented,
    /// Anything else: a broken body, an unexpected answer.
    Other,
    /// The server failed (a 5xx answer other than 503) after all retries.
    Server,
}

impl ErrorKind {
    /// Every kind, in the order metrics show them.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::NotFound,
        ErrorKind::NoSuchBucket,
        ErrorKind::PreconditionFailed,
        ErrorKind::AccessDenied,
        ErrorKind::BadCredentials,
        ErrorKind::NoCredentials,
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Throttled,
        ErrorKind::Invalid,
        ErrorKind::NotImplemented,
        ErrorKind::Other,
        ErrorKind::Server,
    ];

    /// The label of each kind, in the order of [`ErrorKind::ALL`] (index = [`ErrorKind::index`]).
    pub const LABELS: [&'static str; 13] = {
        let mut labels = [""; 13];
        let mut i = 0;
        while i < labels.len() {
            labels[i] = ErrorKind::ALL[i].label();
            i += 1;
        }
        labels
    };

    /// The kind's name in metrics and logs (`error="not_found"`).
    pub const fn label(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::NoSuchBucket => "no_such_bucket",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::BadCredentials => "bad_credentials",
            ErrorKind::NoCredentials => "no_credentials",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotImplemented => "not_implemented",
            ErrorKind::Other => "other",
            ErrorKind::Server => "server",
        }
    }

    /// The kind's position in [`ErrorKind::ALL`] and [`ErrorKind::LABELS`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A failure of the object store, already classified.
#[derive(Clone, Debug)]
pub struct StoreError {
    kind: ErrorKind,
    /// What failed, in words (for most kinds, the operation, key and S3 code).
    message: String,
    /// HTTP status of the answer, when one came.
    status: Option<u16>,
    /// S3 error code (`NoSuchKey`, `SlowDown`, ...), when the answer had one.
    code: Option<String>,
    /// The server's request id, when the answer had one.
    request_id: Option<String>,
    /// The underlying error.
    source: Option<Cause>,
}

/// The text of an error: a fixed phrase per kind, plus the message for kinds that have one.
impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.kind {
            ErrorKind::NotFound => return f.write_str("not found"),
            ErrorKind::NoSuchBucket => return f.write_str("no such bucket"),
            ErrorKind::PreconditionFailed => {
                return f.write_str("precondition failed (the object changed)")
            }
            ErrorKind::Other => return f.write_str(&self.message),
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::BadCredentials => "credentials rejected",
            ErrorKind::NoCredentials => "no credentials",
            ErrorKind::Connect => "cannot connect",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Invalid => "invalid request",
            ErrorKind::NotImplemented => "not implemented by the server",
            ErrorKind::Server => "server error",
        };
        write!(f, "{prefix}: {}", self.message)
    }
}

/// Written by hand rather than with thiserror's `#[source]`: that would hand out the `Arc`
/// itself as the source, which a caller cannot downcast to the concrete error inside.
impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl StoreError {
    /// An error of `kind` with a message and nothing else.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            status: None,
            code: None,
            request_id: None,
            source: None,
        }
    }

    /// [`ErrorKind::NotFound`].
    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound, "")
    }

    /// [`ErrorKind::NoSuchBucket`].
    pub fn no_such_bucket() -> Self {
        Self::new(ErrorKind::NoSuchBucket, "")
    }

    /// [`ErrorKind::PreconditionFailed`].
    pub fn precondition_failed() -> Self {
        Self::new(ErrorKind::PreconditionFailed, "")
    }

    /// [`ErrorKind::AccessDenied`].
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, message)
    }

    /// [`ErrorKind::BadCredentials`].
    pub fn bad_credentials(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadCredentials, message)
    }

    /// [`ErrorKind::NoCredentials`].
    pub fn no_credentials(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NoCredentials, message)
    }

    /// [`ErrorKind::Connect`].
    pub fn connect(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Connect, message)
    }

    /// [`ErrorKind::Timeout`].
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// [`ErrorKind::Throttled`].
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Throttled, message)
    }

    /// [`ErrorKind::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// [`ErrorKind::NotImplemented`].
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }

    /// [`ErrorKind::Server`].
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Server, message)
    }

    /// [`ErrorKind::Other`].
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// With the HTTP status of the answer.
    pub fn with_status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    /// With the S3 error code of the answer.
    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }

    /// With the request id of the answer.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// With the underlying error, returned by `source()`.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the object (or upload) does not exist: the one kind callers often expect.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The message alone, without the kind's phrase (empty for the kinds that have none).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// HTTP status of the answer, when one came.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// S3 error code, when the answer had one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The server's request id, when the answer had one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_all() {
        assert_eq!(ErrorKind::LABELS.len(), ErrorKind::ALL.len());
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
            assert_eq!(ErrorKind::LABELS[i], kind.label());
        }
        let mut unique = ErrorKind::LABELS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ErrorKind::LABELS.len(), "labels are distinct");
        assert_eq!(ErrorKind::Throttled.label(), "throttled");
        assert_eq!(ErrorKind::NotFound.label(), "not_found");
    }

    #[test]
    fn display_is_the_kind_phrase_and_message() {
        assert_eq!(StoreError::not_found().to_string(), "not found");
        assert_eq!(StoreError::no_such_bucket().to_string(), "no such bucket");
        assert_eq!(
            StoreError::precondition_failed().to_string(),
            "precondition failed (the object changed)"
        );
        assert_eq!(
            StoreError::access_denied("GetObject k: AccessDenied").to_string(),
            "access denied: GetObject k: AccessDenied"
        );
        assert_eq!(
            StoreError::timeout("HeadObject k").to_string(),
            "timed out: HeadObject k"
        );
        assert_eq!(StoreError::other("broken body").to_string(), "broken body");
        assert_eq!(
            StoreError::not_implemented("x").to_string(),
            "not implemented by the server: x"
        );
    }

    #[test]
    fn keeps_its_fields_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let err = StoreError::server("PutObject k: InternalError")
            .with_status(Some(500))
            .with_code(Some("InternalError".into()))
            .with_request_id(Some("REQ123".into()))
            .with_source(io);
        let copy = err.clone();
        assert_eq!(copy.kind(), ErrorKind::Server);
        assert_eq!(copy.status(), Some(500));
        assert_eq!(copy.code(), Some("InternalError"));
        assert_eq!(copy.request_id(), Some("REQ123"));
        assert_eq!(copy.message(), "PutObject k: InternalError");
        let source = StdError::source(&copy).expect("the source is kept");
        assert_eq!(source.to_string(), "reset by peer");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the concrete source");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::not_found().is_not_found());
        assert!(StdError::source(&StoreError::not_found()).is_none());
    }
}
