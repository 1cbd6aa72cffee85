//! [`Bucket`]: one bucket of a server, with seeding and inspection helpers that panic with the
//! SDK's error on failure.

#![allow(dead_code)]

use super::*;

/// URL-encode a tag key or value for the `x-amz-tagging` header.
pub fn encode_tag(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One bucket on an [`S3Server`]; every helper panics with the SDK's error on failure.
#[derive(Clone)]
pub struct Bucket {
    pub(crate) client: Client,
    pub(crate) name: String,
}

impl Bucket {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// PutObject with no metadata or tags.
    pub async fn put(&self, key: &str, bytes: impl AsRef<[u8]>) {
        self.put_with(key, bytes, &[], &[], None).await
    }

    /// PutObject with user metadata (`x-amz-meta-K: V`), tags and an optional content type.
    pub async fn put_with(
        &self,
        key: &str,
        bytes: impl AsRef<[u8]>,
        metadata: &[(&str, &str)],
        tags: &[(&str, &str)],
        content_type: Option<&str>,
    ) {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(bytes.as_ref().to_vec()));
        if !metadata.is_empty() {
            let map: HashMap<String, String> = metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            req = req.set_metadata(Some(map));
        }
        if !tags.is_empty() {
            let tagging = tags
                .iter()
                .map(|(k, v)| format!("{}={}", encode_tag(k), encode_tag(v)))
                .collect::<Vec<_>>()
                .join("&");
            req = req.tagging(tagging);
        }
        if let Some(ct) = content_type {
            req = req.content_type(ct);
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("put {}/{key}: {}", self.name, DisplayErrorContext(&e)));
    }

    /// The object's bytes (panics if it does not exist).
    pub async fn get(&self, key: &str) -> Vec<u8> {
        self.try_get(key)
            .await
            .unwrap_or_else(|| panic!("get {}/{key}: no such key", self.name))
    }

    /// The object's bytes, or None if there is no such key.
    pub async fn try_get(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Some(
                out.body
                    .collect()
                    .await
                    .unwrap_or_else(|e| panic!("read body of {}/{key}: {e}", self.name))
                    .into_bytes()
                    .to_vec(),
            ),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => None,
            Err(e) => panic!("get {}/{key}: {}", self.name, DisplayErrorContext(&e)),
        }
    }

    /// Whether the key exists (HeadObject).
    pub async fn exists(&self, key: &str) -> bool {
        self.head(key).await.is_some()
    }

    /// HeadObject, or None if there is no such key.
    pub async fn head(
        &self,
        key: &str,
    ) -> Option<aws_sdk_s3::operation::head_object::HeadObjectOutput> {
        match self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Some(out),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => None,
            Err(e) => panic!("head {}/{key}: {}", self.name, DisplayErrorContext(&e)),
        }
    }

    /// The object's user metadata (keys without the `x-amz-meta-` prefix).
    pub async fn metadata(&self, key: &str) -> HashMap<String, String> {
        self.head(key)
            .await
            .unwrap_or_else(|| panic!("metadata {}/{key}: no such key", self.name))
            .metadata()
            .cloned()
            .unwrap_or_default()
    }

    /// The object's tags, sorted by key.
    pub async fn tags(&self, key: &str) -> Vec<(String, String)> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("tags {}/{key}: {}", self.name, DisplayErrorContext(&e)));
        let mut tags: Vec<(String, String)> = out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        tags.sort();
        tags
    }

    pub async fn delete(&self, key: &str) {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete {}/{key}: {}", self.name, DisplayErrorContext(&e)));
    }

    /// Every key under `prefix` (all pages, no delimiter), in S3's order.
    pub async fn list_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("list {}/{prefix}: {}", self.name, DisplayErrorContext(&e))
                });
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys
    }
}

impl Bucket {
    /// PutBucketVersioning: `Enabled` or `Suspended`.
    pub async fn set_versioning(&self, status: &str) {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        let conf = VersioningConfiguration::builder()
            .status(BucketVersioningStatus::from(status))
            .build();
        self.client
            .put_bucket_versioning()
            .bucket(&self.name)
            .versioning_configuration(conf)
            .send()
            .await
            .unwrap_or_else(|e| panic!("versioning {}: {}", self.name, DisplayErrorContext(&e)));
    }

    /// PutObject with metadata and tags; returns the new version id (versioned buckets).
    pub async fn put_version(
        &self,
        key: &str,
        bytes: impl AsRef<[u8]>,
        metadata: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> String {
        let meta: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let tagging: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("{}={}", encode_tag(k), encode_tag(v)))
            .collect();
        let out = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .set_metadata((!meta.is_empty()).then_some(meta))
            .set_tagging((!tagging.is_empty()).then(|| tagging.join("&")))
            .body(ByteStream::from(bytes.as_ref().to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {}/{key}: {}", self.name, DisplayErrorContext(&e)));
        out.version_id().expect("a versioned bucket").to_string()
    }

    /// How many versions and delete markers `key` has.
    pub async fn version_count(&self, key: &str) -> usize {
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.name)
            .prefix(key)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("versions {}/{key}: {}", self.name, DisplayErrorContext(&e))
            });
        let versions = out.versions().iter().filter(|v| v.key() == Some(key));
        let markers = out.delete_markers().iter().filter(|m| m.key() == Some(key));
        versions.count() + markers.count()
    }
}

/// Deterministic pseudo-random bytes (xorshift), for large test objects.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A handle on bucket `name` at `endpoint` with a client of its own, for threads that run
/// their own tokio runtime (a client's pooled connections belong to the runtime that made them).
pub fn bucket_with_own_client(endpoint: &str, name: &str) -> Bucket {
    Bucket {
        client: s3_client(endpoint),
        name: name.to_string(),
    }
}

/// The ETag of `key` (panics if it does not exist).
pub async fn etag(bucket: &Bucket, key: &str) -> String {
    bucket
        .head(key)
        .await
        .unwrap_or_else(|| panic!("{key} should exist"))
        .e_tag()
        .unwrap_or_default()
        .to_string()
}

/// The Content-Type of `key` (panics if it does not exist).
pub async fn content_type(bucket: &Bucket, key: &str) -> String {
    bucket
        .head(key)
        .await
        .unwrap_or_else(|| panic!("{key} should exist"))
        .content_type()
        .unwrap_or_default()
        .to_string()
}

/// Tag pairs as [`Bucket::tags`] returns them: owned and sorted.
pub fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}
