//! Classification of aws-sdk-s3 errors into [`StoreError`]s: the only place that looks at
//! S3 error codes.
//!
//! Design note: the kind is decided from the SDK error's variant, then the S3 error code,
//! then the HTTP status, in that order of trust; a failed credentials provider is recognised
//! by its type (`CredentialsError`) anywhere in the chain of causes, because the SDK reports
//! it as a dispatch or construction failure whose text is not a contract. The returned error
//! keeps the status, the code, the request id and the SDK error itself as its source.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tracing::debug;

use super::transport::Transport;
use crate::storage::StoreError;

/// Classifies an SDK error. This is the only place that looks at S3 error codes. The error
/// keeps the HTTP status, the S3 code, the request id and the SDK error itself as its source.
pub(super) fn classify<E>(op: &'static str, key: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let request_id = err.request_id().map(str::to_string);
    let result = kind_of(op, key, &err, code.as_deref(), status)
        .with_status(status)
        .with_code(code.clone())
        .with_request_id(request_id.clone())
        .with_source(err);
    debug!(op, key, ?status, code = ?code, request_id = ?request_id, "S3 request failed: {result}");
    result
}

/// The kind and message of an SDK error (see [`classify`]): a failure before any answer by its
/// type, an answer by its S3 code and HTTP status.
fn kind_of<E>(
    op: &'static str,
    key: &str,
    err: &SdkError<E, HttpResponse>,
    code: Option<&str>,
    status: Option<u16>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(failure) = credentials_failure(err) {
        // The credentials provider failed before anything was sent (no credentials anywhere
        // in the chain, an SSO session expired, ...): the SDK reports it as a dispatch or
        // construction failure whose cause is a `CredentialsError`.
        return StoreError::no_credentials(credentials_detail(failure));
    }
    let op_key = format!("{op} {key}").trim_end().to_string();
    match err {
        SdkError::TimeoutError(_) => StoreError::timeout(op_key),
        SdkError::DispatchFailure(d) if d.is_timeout() => StoreError::timeout(op_key),
        SdkError::DispatchFailure(_) => {
            StoreError::connect(format!("{op_key}: {}", Transport::of(err)))
        }
        SdkError::ConstructionFailure(_) => {
            StoreError::other(format!("{op_key}: {}", Transport::of(err)))
        }
        _ => {
            let message = err.message().unwrap_or_default();
            let detail = format!(
                "{op_key}: {}{}",
                code.unwrap_or("no error code"),
                match message.is_empty() {
                    true => String::new(),
                    false => format!(" ({message})"),
                }
            );
            kind_of_answer(code, status, detail)
        }
    }
}

/// The kind of an S3 answer, by its error code first, then its HTTP status.
fn kind_of_answer(code: Option<&str>, status: Option<u16>, detail: String) -> StoreError {
    match (code, status) {
        (Some("NoSuchBucket"), _) => StoreError::no_such_bucket(),
        (Some("NoSuchKey" | "NoSuchVersion" | "NotFound" | "NoSuchUpload"), _) => {
            StoreError::not_found()
        }
        (Some("PreconditionFailed"), _) | (_, Some(412)) => StoreError::precondition_failed(),
        (
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "TokenRefreshRequired"
                | "AuthorizationHeaderMalformed",
            ),
            _,
        ) => StoreError::bad_credentials(detail),
        (Some("AccessDenied" | "AllAccessDisabled"), _) | (None, Some(403)) => {
            StoreError::access_denied(detail)
        }
        (None, Some(404)) => StoreError::not_found(),
        (Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded"), _)
        | (_, Some(503)) => StoreError::throttled(detail),
        (Some("NotImplemented"), _) | (_, Some(501)) => StoreError::not_implemented(detail),
        (
            Some(
                "EntityTooLarge" | "EntityTooSmall" | "InvalidArgument" | "InvalidTag"
                | "MetadataTooLarge" | "KeyTooLongError" | "InvalidRange" | "InvalidBucketName",
            ),
            _,
        ) => StoreError::invalid(detail),
        (_, Some(500..=599)) => StoreError::server(detail),
        _ => StoreError::other(format!(
            "{detail} [{}]",
            status.map(|s| s.to_string()).unwrap_or_default()
        )),
    }
}

/// The credentials provider's failure, if there is one in `err`'s chain of causes.
fn credentials_failure<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(failure) = e.downcast_ref::<CredentialsError>() {
            return Some(failure);
        }
        next = e.source();
    }
    None
}

/// Empty when there were simply no credentials anywhere (the caller says where to put them);
/// otherwise why the provider failed, one line per cause joined by ": " (an expired SSO
/// session, a broken profile, ...).
fn credentials_detail(failure: &CredentialsError) -> String {
    if matches!(failure, CredentialsError::CredentialsNotLoaded(_)) {
        return String::new();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(failure);
    while let Some(e) = next {
        let line = e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if !line.is_empty() && !parts.iter().any(|p| p.contains(&line)) {
            parts.push(line);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use crate::storage::ErrorKind;

    type GetError = SdkError<GetObjectError, HttpResponse>;

    /// A service error as the SDK makes it from an S3 answer.
    fn answer(status: u16, code: Option<&str>, message: &str) -> GetError {
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let mut raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        raw.headers_mut()
            .insert("x-amz-request-id", "4442587FB7D0A2F9");
        SdkError::service_error(GetObjectError::generic(meta.build()), raw)
    }

    #[test]
    fn classifies_answers_and_keeps_their_details() {
        let err = classify("GetObject", "a/b", answer(404, Some("NoSuchKey"), "gone"));
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "not found");
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some("NoSuchKey"));
        assert_eq!(err.request_id(), Some("4442587FB7D0A2F9"));
        let source = std::error::Error::source(&err).expect("the SDK error is the source");
        assert!(source.is::<GetError>(), "{source:?}");

        let err = classify(
            "GetObject",
            "k",
            answer(503, Some("SlowDown"), "Reduce your rate"),
        );
        assert_eq!(err.kind(), ErrorKind::Throttled);
        assert_eq!(
            err.to_string(),
            "throttled: GetObject k: SlowDown (Reduce your rate)"
        );

        let err = classify("GetObject", "k", answer(403, None, ""));
        assert_eq!(err.kind(), ErrorKind::AccessDenied);
        assert_eq!(err.to_string(), "access denied: GetObject k: no error code");

        let err = classify(
            "GetObject",
            "k",
            answer(403, Some("SignatureDoesNotMatch"), ""),
        );
        assert_eq!(err.kind(), ErrorKind::BadCredentials);
        let err = classify("GetObject", "k", answer(412, None, ""));
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed);
        let err = classify("GetObject", "k", answer(500, Some("InternalError"), ""));
        assert_eq!(err.kind(), ErrorKind::Server);
        let err = classify("GetObject", "k", answer(418, Some("Teapot"), ""));
        assert_eq!(err.kind(), ErrorKind::Other);
        assert_eq!(err.to_string(), "GetObject k: Teapot [418]");
    }

    #[test]
    fn a_credentials_provider_failure_is_no_credentials() {
        // What the SDK returns when the provider chain finds nothing: the identity resolver's
        // error, wrapped in a connector error, as a dispatch failure.
        let missing = CredentialsError::not_loaded("no providers in chain provided credentials");
        let sdk: GetError =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(missing), None));
        let err = classify("ListObjectsV2", "", sdk);
        assert_eq!(err.kind(), ErrorKind::NoCredentials);
        assert_eq!(
            err.message(),
            "",
            "nothing to add to 'no credentials found'"
        );
        assert_eq!(err.status(), None);

        // Also when it is further down the chain, and as a construction failure.
        #[derive(Debug, thiserror::Error)]
        #[error("identity resolution failed")]
        struct Wrapper(#[source] CredentialsError);
        let wrapped = Wrapper(CredentialsError::not_loaded("expired SSO session"));
        let sdk: GetError = SdkError::construction_failure(wrapped);
        assert_eq!(
            classify("HeadObject", "k", sdk).kind(),
            ErrorKind::NoCredentials
        );

        // The word alone proves nothing: it is the type that counts.
        let sdk: GetError = SdkError::construction_failure("credentials: a made-up failure");
        assert_eq!(classify("HeadObject", "k", sdk).kind(), ErrorKind::Other);
    }

    #[test]
    fn classifies_transport_failures() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let sdk: GetError = SdkError::dispatch_failure(ConnectorError::io(Box::new(refused)));
        let err = classify("GetObject", "k", sdk);
        assert_eq!(err.kind(), ErrorKind::Connect);
        assert_eq!(
            err.to_string(),
            "cannot connect: GetObject k: connection refused"
        );

        let sdk: GetError =
            SdkError::dispatch_failure(ConnectorError::timeout("connect timed out".into()));
        assert_eq!(classify("GetObject", "k", sdk).kind(), ErrorKind::Timeout);
        let sdk: GetError = SdkError::timeout_error("operation timed out");
        let err = classify("GetObject", "k", sdk);
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(err.to_string(), "timed out: GetObject k");
    }
}
