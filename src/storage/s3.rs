//! [`ObjectStore`] over aws-sdk-s3.
//!
//! Design note: one `aws_sdk_s3::Client` is shared by every request; it pools connections, so
//! requests issued in parallel on the tokio runtime reuse keep-alive connections. Credentials
//! and region come from aws-config's default chain (environment, profiles, SSO, web identity,
//! instance roles), overridden by flags. Request checksums are only sent when an operation
//! requires them: S3-compatible servers that do not understand aws-chunked framing would
//! otherwise store it as part of the object. Every SDK error is classified once, into a
//! [`StoreError`] (in `s3/classify.rs`); no SDK type leaves this module.
//!
//! Layout: this file is the `ObjectStore` impl block, whose methods each build one SDK
//! request; the client set-up (credentials, region, retries, timeouts) is `client.rs`, error
//! classification `classify.rs`, and the requests beyond reading and writing objects
//! `extras.rs` (the impl block only forwards to them).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, EncodingType, MetadataDirective, ObjectCannedAcl,
    ServerSideEncryption, StorageClass, Tag, Tagging, TaggingDirective,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use tracing::info;

use self::classify::classify;
use super::{
    BucketFact, ByteChunks, ListPage, ListedObject, ObjectMeta, ObjectStore, ObjectVersion,
    PutOptions, RestoreRequest, StoreError, VersionMarker, VersionPage,
};

mod account;
mod classify;
mod client;
mod config_json;
mod extras;
mod profile;
mod transport;
mod unsigned;

pub use self::account::S3Account;
pub use self::client::S3Settings;
pub use self::extras::DEFAULT_PRESIGN_EXPIRY;

pub use self::profile::{check_profile, ProfileError};
pub use self::transport::Transport;

/// The aws-sdk-s3 implementation of [`ObjectStore`].
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    /// The same client without the mount-wide headers (see `extras.rs`): presigns URLs.
    presigner: Client,
    bucket: String,
    settings: S3Settings,
    region: String,
    /// Multipart uploads whose abort failed (server unreachable): retried in the background
    /// so no upload is left behind once the server is back.
    pending_aborts: Arc<Mutex<Vec<(String, String)>>>,
}

/// How often failed aborts are retried, and for how long before giving up (S3 lifecycle
/// rules for incomplete uploads are the backstop after that).
const ABORT_RETRY_EVERY: Duration = Duration::from_secs(2);
const ABORT_RETRY_FOR: Duration = Duration::from_secs(30 * 60);

impl S3Store {
    async fn try_abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| classify("AbortMultipartUpload", key, e))?;
        Ok(())
    }

    /// Remembers an upload whose abort failed and makes sure a task retries it.
    fn queue_abort(&self, key: &str, upload_id: &str) {
        let first = {
            let mut pending = self.pending_aborts.lock().unwrap();
            pending.push((key.to_string(), upload_id.to_string()));
            pending.len() == 1
        };
        if !first {
            return; // a retry task is already running
        }
        let store = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            while started.elapsed() < ABORT_RETRY_FOR {
                tokio::time::sleep(ABORT_RETRY_EVERY).await;
                let batch: Vec<_> = store.pending_aborts.lock().unwrap().clone();
                for (key, id) in batch {
                    let done = match store.try_abort(&key, &id).await {
                        Ok(()) => true,
                        Err(e) => e.is_not_found(),
                    };
                    if done {
                        info!(key = %key, "aborted a multipart upload left by an earlier failure");
                        store
                            .pending_aborts
                            .lock()
                            .unwrap()
                            .retain(|(_, i)| *i != id);
                    }
                }
                if store.pending_aborts.lock().unwrap().is_empty() {
                    return;
                }
            }
            let left = std::mem::take(&mut *store.pending_aborts.lock().unwrap());
            for (key, id) in left {
                tracing::warn!(key = %key, "gave up aborting multipart upload {id}");
            }
        });
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The canned ACL of `--acl`.
    fn acl(&self) -> Option<ObjectCannedAcl> {
        self.settings.acl.as_deref().map(ObjectCannedAcl::from)
    }

    fn put_fields(&self, opts: &PutOptions) -> PutFields {
        PutFields {
            content_type: opts.content_type.clone(),
            metadata: if opts.metadata.is_empty() {
                None
            } else {
                Some(opts.metadata.clone())
            },
            storage_class: self
                .settings
                .storage_class
                .as_deref()
                .map(StorageClass::from),
            sse: self.settings.sse.as_deref().map(ServerSideEncryption::from),
            kms_key: self.settings.sse_kms_key_id.clone(),
            acl: self.acl(),
        }
    }
}

/// Sets the fields every kind of upload sets alike (see [`PutFields`]) on a PutObject,
/// CreateMultipartUpload or CopyObject request builder: the SDK's builders share no trait, so
/// a macro stands in for one.
macro_rules! with_put_fields {
    ($store:expr, $opts:expr, $builder:expr) => {{
        let f = $store.put_fields($opts);
        $builder
            .set_content_type(f.content_type)
            .set_metadata(f.metadata)
            .set_storage_class(f.storage_class)
            .set_server_side_encryption(f.sse)
            .set_ssekms_key_id(f.kms_key)
            .set_acl(f.acl)
    }};
}

/// The fields every kind of upload sets alike.
struct PutFields {
    content_type: Option<String>,
    metadata: Option<HashMap<String, String>>,
    storage_class: Option<StorageClass>,
    sse: Option<ServerSideEncryption>,
    kms_key: Option<String>,
    acl: Option<ObjectCannedAcl>,
}

fn to_system_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// An [`ObjectMeta`] from the headers of a `HeadObject` or `GetObject` output (the two SDK
/// types have the same accessors but no common trait).
macro_rules! object_meta {
    ($out:expr, $size:expr) => {
        ObjectMeta {
            size: $size,
            last_modified: to_system_time($out.last_modified()),
            etag: $out.e_tag().unwrap_or_default().to_string(),
            content_type: $out.content_type().map(str::to_string),
            storage_class: $out.storage_class().map(|c| c.as_str().to_string()),
            version_id: $out.version_id().map(str::to_string),
            metadata: $out
                .metadata()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
}

fn byte_chunks(body: ByteStream, key: String) -> ByteChunks {
    Box::pin(futures::stream::unfold(
        (body, key),
        |(mut body, key)| async move {
            match body.next().await {
                None => None,
                Some(Ok(bytes)) => Some((Ok(bytes), (body, key))),
                Some(Err(e)) => Some((
                    Err(StoreError::other(format!("reading body of {key}: {e}"))),
                    (body, key),
                )),
            }
        },
    ))
}

// After the macro above, which it uses.
mod versioned;

impl S3Store {
    /// `CopyObject` of `src_key` onto `dst_key`, only while the source's ETag is `if_match`
    /// when one is given; metadata and tags copied, or replaced by `replace`.
    async fn copy_object(
        &self,
        src_key: &str,
        if_match: Option<&str>,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        let base = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(dst_key)
            .copy_source(copy_source(&self.bucket, src_key))
            .set_copy_source_if_match(if_match.map(str::to_string));
        let base = match replace.and_then(|o| o.tags.as_deref()) {
            Some(tags) => base
                .tagging_directive(TaggingDirective::Replace)
                .set_tagging(tagging_header(tags)),
            None => base.tagging_directive(TaggingDirective::Copy),
        };
        let req = match replace {
            Some(opts) => with_put_fields!(
                self,
                opts,
                base.metadata_directive(MetadataDirective::Replace)
            ),
            None => base
                .metadata_directive(MetadataDirective::Copy)
                .set_acl(self.acl()),
        };
        let out = req
            .send()
            .await
            .map_err(|e| classify("CopyObject", dst_key, e))?;
        Ok(out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .unwrap_or_default()
            .to_string())
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<ListPage, StoreError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_string))
            .set_continuation_token(token)
            .set_max_keys(max_keys)
            // Keys may hold characters XML 1.0 cannot carry (control characters): ask for
            // URL-encoded keys, and decode them when the server says it encoded them.
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| classify("ListObjectsV2", prefix, e))?;
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        let decode = |k: &str| decode_key(k, encoded);
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ListedObject {
                    key: decode(o.key()?),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: to_system_time(o.last_modified()),
                    etag: o.e_tag().unwrap_or_default().to_string(),
                    storage_class: o.storage_class().map(|c| c.as_str().to_string()),
                })
            })
            .collect();
        let prefixes = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(decode))
            .collect();
        let next_token = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage {
            objects,
            prefixes,
            next_token,
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("HeadObject", key, e))?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        Ok(object_meta!(out, size))
    }

    async fn head_and_start(
        &self,
        key: &str,
        len: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", len.max(1) - 1))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            // 416: the object is empty (a range of an empty object cannot be satisfied).
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(416) => {
                return Ok((self.head(key).await?, Box::pin(futures::stream::empty())));
            }
            Err(e) => return Err(classify("GetObject", key, e)),
        };
        // "bytes 0-4095/4096": the total after the slash; without a Content-Range the server
        // sent the whole object.
        let size = match out.content_range() {
            Some(range) => match range.rsplit('/').next().and_then(|t| t.parse::<u64>().ok()) {
                Some(total) => total,
                // "bytes 0-99/*": the total is unknown; a HEAD tells it.
                None => {
                    // The body is only the HEAD's version's start if the ETags agree: a
                    // write in between must not put one version's bytes under the other's.
                    let meta = self.head(key).await?;
                    let body = if out.e_tag() == Some(meta.etag.as_str()) {
                        byte_chunks(out.body, key.to_string())
                    } else {
                        Box::pin(futures::stream::empty())
                    };
                    return Ok((meta, body));
                }
            },
            None => out.content_length().unwrap_or(0).max(0) as u64,
        };
        let meta = object_meta!(out, size);
        Ok((meta, byte_chunks(out.body, key.to_string())))
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks, StoreError> {
        if range.is_empty() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("GetObject", key, e))?;
        Ok(byte_chunks(out.body, key.to_string()))
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> Result<String, StoreError> {
        let req = with_put_fields!(
            self,
            opts,
            self.client.put_object().bucket(&self.bucket).key(key)
        );
        let out = req
            .set_tagging(opts.tags.as_deref().and_then(tagging_header))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("PutObject", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> Result<String, StoreError> {
        let req = with_put_fields!(
            self,
            opts,
            self.client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
        );
        let out = req
            .set_tagging(opts.tags.as_deref().and_then(tagging_header))
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", key, e))?;
        out.upload_id()
            .map(str::to_string)
            .ok_or_else(|| StoreError::other(format!("no upload id for {key}")))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("UploadPart", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src_key: &str,
        src_etag: &str,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part_copy()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .copy_source(copy_source(&self.bucket, src_key))
            .copy_source_if_match(src_etag)
            .copy_source_range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|e| classify("UploadPartCopy", key, e))?;
        Ok(out
            .copy_part_result()
            .and_then(|r| r.e_tag())
            .unwrap_or_default()
            .to_string())
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<String, StoreError> {
        let parts = parts
            .iter()
            .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
            .collect();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("CompleteMultipartUpload", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        match self.try_abort(key, upload_id).await {
            Err(e) if !e.is_not_found() => {
                self.queue_abort(key, upload_id);
                Err(e)
            }
            _ => Ok(()),
        }
    }

    async fn copy(
        &self,
        src_key: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        self.copy_object(src_key, None, dst_key, replace).await
    }

    async fn copy_if_match(
        &self,
        src_key: &str,
        src_etag: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        self.copy_object(src_key, Some(src_etag), dst_key, replace)
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("DeleteObject", key, e))?;
        Ok(())
    }

    async fn get_tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObjectTagging", key, e))?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> Result<(), StoreError> {
        let tag_set = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::invalid(e.to_string()))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|e| StoreError::invalid(e.to_string()))?;
        if tags.is_empty() {
            // An empty PutObjectTagging is valid S3 but not understood by every server;
            // DeleteObjectTagging says the same thing everywhere.
            self.client
                .delete_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| classify("DeleteObjectTagging", key, e))?;
            return Ok(());
        }
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| classify("PutObjectTagging", key, e))?;
        Ok(())
    }

    async fn presign_get(&self, key: &str, version_id: Option<&str>) -> Result<String, StoreError> {
        self.presign_get_url(key, version_id).await
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        self.versions_of(key).await
    }

    async fn copy_version(&self, key: &str, version_id: &str) -> Result<String, StoreError> {
        self.copy_version_onto(key, version_id).await
    }

    async fn list_versions_page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<VersionMarker>,
    ) -> Result<VersionPage, StoreError> {
        self.versions_page(prefix, delimiter, marker).await
    }

    async fn head_version(&self, key: &str, version_id: &str) -> Result<ObjectMeta, StoreError> {
        self.head_at(key, version_id).await
    }

    async fn get_version(
        &self,
        key: &str,
        version_id: &str,
        range: Range<u64>,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        self.get_at(key, version_id, range).await
    }

    async fn get_version_tags(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.tags_at(key, version_id).await
    }

    async fn restore(&self, key: &str, req: &RestoreRequest) -> Result<(), StoreError> {
        self.restore_object(key, req).await
    }

    async fn restore_status(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.restore_header(key).await
    }

    async fn bucket_fact(&self, fact: &BucketFact) -> Result<Option<String>, StoreError> {
        self.fact(fact).await
    }

    async fn retry_pending(&self) {
        let batch: Vec<_> = self.pending_aborts.lock().unwrap().clone();
        for (key, id) in batch {
            match self.try_abort(&key, &id).await {
                Err(e) if !e.is_not_found() => {
                    tracing::warn!(key = %key, "multipart upload {id} is left behind: {e}")
                }
                // Aborted now, or gone already.
                _ => {
                    info!(key = %key, "aborted a multipart upload left by an earlier failure");
                    self.pending_aborts
                        .lock()
                        .unwrap()
                        .retain(|(_, i)| *i != id);
                }
            }
        }
    }

    async fn check_access(&self) -> Result<(), StoreError> {
        // ListObjectsV2 (not HeadBucket): its error body carries a code, so a missing bucket,
        // a refused key and a denied permission can be told apart.
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(1)
            .encoding_type(EncodingType::Url)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| classify("ListObjectsV2", "", e))?;
        Ok(())
    }
}

/// A key from a listing asked for with `encoding-type=url`: decoded when the server says it
/// encoded it (`+` is a space there).
fn decode_key(key: &str, encoded: bool) -> String {
    match encoded {
        true => percent_encoding::percent_decode_str(&key.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned(),
        false => key.to_string(),
    }
}

/// `CopySource` header value: `bucket/key`, URL-encoded as S3 expects.
/// The `x-amz-tagging` value of a tag set (`k1=v1&k2=v2`, URL-encoded); `None` when empty.
fn tagging_header(tags: &[(String, String)]) -> Option<String> {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let enc = |s: &str| utf8_percent_encode(s, KEEP).to_string();
    let pairs: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("&"))
}

fn copy_source(bucket: &str, key: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!("{bucket}/{}", utf8_percent_encode(key, KEEP))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn copy_source_encodes_special_characters() {
        assert_eq!(copy_source("b", "a b/c+d%"), "b/a%20b/c%2Bd%25");
        assert_eq!(copy_source("b", "ü"), "b/%C3%BC");
    }
}
