//! Object bodies sent unsigned over HTTPS, as the AWS CLI sends them.
//!
//! Design note: SigV4 signs a request's body by putting its SHA-256 in
//! `x-amz-content-sha256`. For PutObject and UploadPart that hash covers every byte written,
//! and it cost more CPU than all the rest of the write path (about 0.55 s per GiB here, with
//! the SHA extensions). Over HTTPS, TLS already guards the bytes on the wire, and S3 accepts
//! `UNSIGNED-PAYLOAD`, which the AWS CLI and boto3 send there. Over plain HTTP nothing else
//! guards them, so the body stays signed. The choice is made per request from the URL the
//! request is about to be sent to, whichever way the endpoint was configured (flag,
//! environment, profile, or S3's own HTTPS endpoints), and only where nothing else (such as
//! the SDK's own checksum framing) chose how the payload is signed.

use aws_runtime::auth::PayloadSigningOverride;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The requests whose body is the object's bytes.
const BODY_UPLOADS: [&str; 2] = ["PutObject", "UploadPart"];

/// Marks PutObject and UploadPart requests to an `https://` URL as unsigned payloads.
#[derive(Debug)]
pub(crate) struct UnsignedOverHttps;

/// Whether a request of `operation` to `uri` may go with an unsigned payload.
fn unsigned(operation: &str, uri: &str) -> bool {
    BODY_UPLOADS.contains(&operation)
        && uri
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

impl Intercept for UnsignedOverHttps {
    fn name(&self) -> &'static str {
        "UnsignedOverHttps"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map(|m| m.name().to_string());
        let chosen = cfg.load::<PayloadSigningOverride>().is_some();
        if !chosen && operation.is_some_and(|op| unsigned(&op, context.request().uri())) {
            cfg.interceptor_state()
                .store_put(PayloadSigningOverride::unsigned_payload());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uploads_over_https_go_unsigned() {
        assert!(unsigned(
            "UploadPart",
            "https://s3.us-east-1.amazonaws.com/b/k?partNumber=1"
        ));
        assert!(unsigned("PutObject", "HTTPS://minio.local/b/k"));
        assert!(
            !unsigned("PutObject", "http://127.0.0.1:9000/b/k"),
            "plain HTTP"
        );
        assert!(!unsigned("GetObject", "https://s3.amazonaws.com/b/k"));
        assert!(!unsigned("UploadPart", "http"));
    }
}
