//! The requests beyond reading and writing objects: presigned GETs, versions, reverts,
//! restores and the bucket's configuration; and the headers every request carries for
//! `--requester-pays` and `--expected-bucket-owner`.
//!
//! Design note: these are methods of [`S3Store`] that the `ObjectStore` impl in `s3.rs` calls,
//! so that file stays one request per trait method. A configuration S3 says is absent
//! (`NoSuchBucketPolicy`, `NoSuchLifecycleConfiguration`, ...) is `Ok(None)`, never an error:
//! the caller shows it as ENODATA. The mount-wide headers are added by an interceptor, before
//! signing, so that no request can miss them; presigned URLs are made by a client without it
//! (their user would otherwise have to send the headers too).

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{
    GlacierJobParameters, MetadataDirective, RestoreRequest as SdkRestore, TaggingDirective, Tier,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::classify::classify;
use super::config_json;
use super::{copy_source, to_system_time, S3Settings, S3Store};
use crate::storage::ops::{BucketFact, ObjectVersion, RestoreRequest};
use crate::storage::StoreError;

/// The default lifetime of a presigned URL.
pub const DEFAULT_PRESIGN_EXPIRY: Duration = Duration::from_secs(3600);

/// Adds `x-amz-request-payer` and `x-amz-expected-bucket-owner` to every request.
#[derive(Debug)]
pub(super) struct MountHeaders {
    requester_pays: bool,
    expected_owner: Option<String>,
}

impl MountHeaders {
    /// The interceptor the settings ask for, if any.
    pub(super) fn for_settings(settings: &S3Settings) -> Option<MountHeaders> {
        (settings.requester_pays || settings.expected_bucket_owner.is_some()).then(|| {
            MountHeaders {
                requester_pays: settings.requester_pays,
                expected_owner: settings.expected_bucket_owner.clone(),
            }
        })
    }
}

impl Intercept for MountHeaders {
    fn name(&self) -> &'static str {
        "s3mount-mount-headers"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        if self.requester_pays {
            headers.insert("x-amz-request-payer", "requester");
        }
        if let Some(owner) = &self.expected_owner {
            headers.insert("x-amz-expected-bucket-owner", owner.clone());
        }
        Ok(())
    }
}

/// `Ok(None)` for an error whose code says the configuration is absent.
fn absent_or<T, E>(
    result: Result<T, aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
    op: &'static str,
    absent: &[&str],
) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code().is_some_and(|c| absent.contains(&c)) => Ok(None),
        Err(e) => Err(classify(op, "", e)),
    }
}

/// The body of a 200 answer that the SDK could not read. Some S3-compatible servers (moto)
/// name the root element of a few answers after the operation
/// (`<GetBucketVersioningResponse>`, not `<VersioningConfiguration>`), which the SDK refuses;
/// the few fields s3mount needs from those are read from the body itself.
fn unread_ok_body<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<String> {
    let raw = err.raw_response()?;
    if raw.status().as_u16() != 200 {
        return None;
    }
    Some(String::from_utf8_lossy(raw.body().bytes()?).into_owned())
}

/// The text of the first `<tag>text</tag>` in `xml`.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].trim())
}

impl S3Store {
    /// A presigned GET of `key` (at `version_id`), valid for `--presign-expiry`.
    pub(super) async fn presign_get_url(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(self.settings.presign_expiry)
            .map_err(|e| StoreError::invalid(format!("presign expiry: {e}")))?;
        let req = self
            .presigner
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .presigned(config)
            .await
            .map_err(|e| classify("GetObject (presigned)", key, e))?;
        Ok(req.uri().to_string())
    }

    /// Every version and delete marker of exactly `key`, newest first.
    pub(super) async fn versions_of(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| classify("ListObjectVersions", key, e))?;
            for v in page.versions().iter().filter(|v| v.key() == Some(key)) {
                out.push(ObjectVersion {
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    last_modified: to_system_time(v.last_modified()),
                    size: v.size().unwrap_or(0).max(0) as u64,
                    is_latest: v.is_latest().unwrap_or(false),
                    is_delete_marker: false,
                });
            }
            for m in page
                .delete_markers()
                .iter()
                .filter(|m| m.key() == Some(key))
            {
                out.push(ObjectVersion {
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    last_modified: to_system_time(m.last_modified()),
                    size: 0,
                    is_latest: m.is_latest().unwrap_or(false),
                    is_delete_marker: true,
                });
            }
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            // Keys after ours sort after it: once the listing has moved past, stop.
            match page.next_key_marker() {
                Some(k) if k == key => {
                    key_marker = Some(k.to_string());
                    version_marker = page.next_version_id_marker().map(str::to_string);
                }
                _ => break,
            }
        }
        // Newest first; the current one first among equal times.
        out.sort_by_key(|v| std::cmp::Reverse((v.last_modified, v.is_latest)));
        Ok(out)
    }

    /// CopyObject of `key` at `version_id` onto `key`, with that version's metadata and tags.
    pub(super) async fn copy_version_onto(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<String, StoreError> {
        let source = format!(
            "{}?versionId={}",
            copy_source(&self.bucket, key),
            percent_encoding::utf8_percent_encode(version_id, percent_encoding::NON_ALPHANUMERIC)
        );
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(source)
            .metadata_directive(MetadataDirective::Copy)
            .tagging_directive(TaggingDirective::Copy)
            .set_acl(self.acl())
            .send()
            .await
            .map_err(|e| classify("CopyObject", key, e))?;
        Ok(out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .unwrap_or_default()
            .to_string())
    }

    /// RestoreObject of `key`.
    pub(super) async fn restore_object(
        &self,
        key: &str,
        req: &RestoreRequest,
    ) -> Result<(), StoreError> {
        let mut restore = SdkRestore::builder().days(req.days);
        if let Some(tier) = &req.tier {
            let job = GlacierJobParameters::builder()
                .tier(Tier::from(tier.as_str()))
                .build()
                .map_err(|e| StoreError::invalid(e.to_string()))?;
            restore = restore.glacier_job_parameters(job);
        }
        self.client
            .restore_object()
            .bucket(&self.bucket)
            .key(key)
            .restore_request(restore.build())
            .send()
            .await
            .map_err(|e| classify("RestoreObject", key, e))?;
        Ok(())
    }

    /// The `x-amz-restore` header of `key` (HeadObject), if it has one.
    pub(super) async fn restore_header(&self, key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("HeadObject", key, e))?;
        Ok(out.restore().map(str::to_string))
    }

    /// One fact about the bucket; `None` when S3 has no such configuration.
    pub(super) async fn fact(&self, fact: &BucketFact) -> Result<Option<String>, StoreError> {
        let b = &self.bucket;
        let c = &self.client;
        match fact {
            BucketFact::Region => {
                let out = c.get_bucket_location().bucket(b).send().await;
                let out = out.map_err(|e| classify("GetBucketLocation", "", e))?;
                // S3 answers nothing for us-east-1, and "EU" for the oldest EU buckets.
                Ok(Some(match out.location_constraint().map(|l| l.as_str()) {
                    None | Some("") => "us-east-1".to_string(),
                    Some("EU") => "eu-west-1".to_string(),
                    Some(l) => l.to_string(),
                }))
            }
            BucketFact::Versioning => match c.get_bucket_versioning().bucket(b).send().await {
                Ok(out) => Ok(out.status().map(|s| s.as_str().to_string())),
                Err(e) => match unread_ok_body(&e) {
                    Some(body) => Ok(xml_text(&body, "Status").map(str::to_string)),
                    None => Err(classify("GetBucketVersioning", "", e)),
                },
            },
            BucketFact::Encryption => {
                let out = c.get_bucket_encryption().bucket(b).send().await;
                let absent = ["ServerSideEncryptionConfigurationNotFoundError"];
                Ok(absent_or(out, "GetBucketEncryption", &absent)?
                    .and_then(|o| o.server_side_encryption_configuration().cloned())
                    .map(|conf| config_json::encryption(conf.rules())))
            }
            BucketFact::Lifecycle => {
                let out = c
                    .get_bucket_lifecycle_configuration()
                    .bucket(b)
                    .send()
                    .await;
                let absent = ["NoSuchLifecycleConfiguration"];
                Ok(absent_or(out, "GetBucketLifecycleConfiguration", &absent)?
                    .filter(|o| !o.rules().is_empty())
                    .map(|o| config_json::lifecycle(o.rules())))
            }
            BucketFact::Policy => {
                let out = c.get_bucket_policy().bucket(b).send().await;
                Ok(absent_or(out, "GetBucketPolicy", &["NoSuchBucketPolicy"])?
                    .and_then(|o| o.policy().map(str::to_string)))
            }
            BucketFact::Logging => {
                let out = c.get_bucket_logging().bucket(b).send().await;
                let out = out.map_err(|e| classify("GetBucketLogging", "", e))?;
                Ok(out
                    .logging_enabled()
                    .map(|l| config_json::logging(l.target_bucket(), l.target_prefix())))
            }
            BucketFact::Notification => self.notification().await,
            BucketFact::Tag(key) => {
                let out = c.get_bucket_tagging().bucket(b).send().await;
                Ok(
                    absent_or(out, "GetBucketTagging", &["NoSuchTagSet"])?.and_then(|o| {
                        o.tag_set()
                            .iter()
                            .find(|t| t.key() == key)
                            .map(|t| t.value().to_string())
                    }),
                )
            }
        }
    }

    async fn notification(&self) -> Result<Option<String>, StoreError> {
        use config_json::notification_target as target;
        let sent = self
            .client
            .get_bucket_notification_configuration()
            .bucket(&self.bucket)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            // An empty root element, under whatever name, is an empty configuration.
            Err(e) if unread_ok_body(&e).is_some_and(|b| b.trim_end().ends_with("/>")) => {
                return Ok(None)
            }
            Err(e) => return Err(classify("GetBucketNotificationConfiguration", "", e)),
        };
        let topics = out.topic_configurations().iter();
        let topics =
            topics.map(|t| target("TopicArn", t.topic_arn(), t.id(), t.events(), t.filter()));
        let queues = out.queue_configurations().iter();
        let queues =
            queues.map(|q| target("QueueArn", q.queue_arn(), q.id(), q.events(), q.filter()));
        let lambdas = out.lambda_function_configurations().iter().map(|l| {
            let arn = l.lambda_function_arn();
            target("LambdaFunctionArn", arn, l.id(), l.events(), l.filter())
        });
        Ok(config_json::notification(
            topics.collect(),
            queues.collect(),
            lambdas.collect(),
            out.event_bridge_configuration().is_some(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_element_text() {
        let xml = r#"<?xml version="1.0"?><GetBucketVersioningResponse xmlns="x"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert_eq!(xml_text(xml, "Status"), Some("Enabled"));
        assert_eq!(xml_text("<A/>", "Status"), None);
    }
}
