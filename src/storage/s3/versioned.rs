//! The requests of a point-in-time mount: `ListObjectVersions` pages with a prefix and a
//! delimiter, and `HeadObject`, ranged `GetObject` and `GetObjectTagging` of one version.
//!
//! Design note: methods of [`S3Store`] that the `ObjectStore` impl in `s3.rs` forwards to
//! (as `extras.rs` does). Keys come back URL-encoded when the server says so, as in
//! ListObjectsV2; the next page's key marker is sent back decoded, as S3 expects it.

use std::ops::Range;

use aws_sdk_s3::types::EncodingType;

use super::classify::classify;
use super::{byte_chunks, decode_key, to_system_time, S3Store};
use crate::storage::{
    ByteChunks, ObjectMeta, StoreError, VersionEntry, VersionMarker, VersionPage,
};

/// The size of the whole object from a ranged GET's `Content-Range` (`bytes 0-9/1234`), or
/// the body's length when the server sent it all; `None` when the total is unknown (`/*`).
fn total_size(content_range: Option<&str>, content_length: Option<i64>) -> Option<u64> {
    match content_range {
        Some(r) => r.rsplit('/').next().and_then(|t| t.parse::<u64>().ok()),
        None => Some(content_length.unwrap_or(0).max(0) as u64),
    }
}

impl S3Store {
    /// One page of `ListObjectVersions` under `prefix`, from `marker`.
    pub(super) async fn versions_page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<VersionMarker>,
    ) -> Result<VersionPage, StoreError> {
        let (key_marker, version_marker) = match marker {
            Some(m) => (Some(m.key), m.version_id),
            None => (None, None),
        };
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_string))
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| classify("ListObjectVersions", prefix, e))?;
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        let mut entries = Vec::new();
        for v in out.versions() {
            let Some(key) = v.key() else { continue };
            entries.push(VersionEntry {
                key: decode_key(key, encoded),
                version_id: v.version_id().unwrap_or("null").to_string(),
                last_modified: to_system_time(v.last_modified()),
                size: v.size().unwrap_or(0).max(0) as u64,
                etag: v.e_tag().unwrap_or_default().to_string(),
                storage_class: v.storage_class().map(|c| c.as_str().to_string()),
                is_latest: v.is_latest().unwrap_or(false),
                is_delete_marker: false,
            });
        }
        for m in out.delete_markers() {
            let Some(key) = m.key() else { continue };
            entries.push(VersionEntry {
                key: decode_key(key, encoded),
                version_id: m.version_id().unwrap_or("null").to_string(),
                last_modified: to_system_time(m.last_modified()),
                size: 0,
                etag: String::new(),
                storage_class: None,
                is_latest: m.is_latest().unwrap_or(false),
                is_delete_marker: true,
            });
        }
        let prefixes = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(|p| decode_key(p, encoded)))
            .collect();
        let next = match out.is_truncated().unwrap_or(false) {
            true => out.next_key_marker().map(|k| VersionMarker {
                key: decode_key(k, encoded),
                version_id: out.next_version_id_marker().map(str::to_string),
            }),
            false => None,
        };
        Ok(VersionPage {
            entries,
            prefixes,
            next,
        })
    }

    /// `HeadObject` of `key` at `version_id`.
    pub(super) async fn head_at(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| classify("HeadObject", key, e))?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        Ok(object_meta!(out, size))
    }

    /// Ranged `GetObject` of `key` at `version_id`, with the version's headers.
    pub(super) async fn get_at(
        &self,
        key: &str,
        version_id: &str,
        range: Range<u64>,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .range(format!("bytes={}-{}", range.start, range.end.max(1) - 1))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            // 416: the range starts at or past the end (an empty object, from 0).
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(416) => {
                let meta = self.head_at(key, version_id).await?;
                return Ok((meta, Box::pin(futures::stream::empty())));
            }
            Err(e) => return Err(classify("GetObject", key, e)),
        };
        let size = match total_size(out.content_range(), out.content_length()) {
            Some(size) => size,
            None => self.head_at(key, version_id).await?.size,
        };
        let meta = object_meta!(out, size);
        Ok((meta, byte_chunks(out.body, key.to_string())))
    }

    /// `GetObjectTagging` of `key` at `version_id`.
    pub(super) async fn tags_at(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| classify("GetObjectTagging", key, e))?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_size_of_a_ranged_answer() {
        assert_eq!(total_size(Some("bytes 0-9/1234"), Some(10)), Some(1234));
        assert_eq!(total_size(Some("bytes 0-9/*"), Some(10)), None);
        assert_eq!(total_size(None, Some(7)), Some(7));
    }

    #[test]
    fn decodes_keys_only_when_encoded() {
        assert_eq!(decode_key("a+b%2Fc%0A", true), "a b/c\n");
        assert_eq!(decode_key("a+b%2F", false), "a+b%2F");
    }
}
