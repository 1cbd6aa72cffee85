//! The extended-attribute scheme: what `getfattr -d` shows for an object.
//!
//! All names live in the `user.` namespace (the only one `getfattr -d` lists by default):
//! - `user.s3.tag.<key>`: one per object tag (GetObjectTagging);
//! - `user.s3.meta.<key>`: one per user-metadata entry (`x-amz-meta-<key>`), except
//!   `x-amz-meta-xattr`, which holds the other `user.*` attributes (see [`super::s3fs_xattr`])
//!   and is shown as them;
//! - read-only facts: `user.s3.etag`, `user.s3.content-type`, `user.s3.storage-class`,
//!   `user.s3.last-modified` (RFC 3339, UTC) and `user.s3.version-id` (when there is one).

use std::collections::HashMap;
use std::time::SystemTime;

use super::s3fs_xattr;
use crate::error::{FsError, FsResult};
use crate::storage::ObjectMeta;

/// S3 allows at most 10 tags per object.
pub const MAX_TAGS: usize = 10;
/// Longest tag key S3 accepts, in characters.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value S3 accepts, in characters.
pub const MAX_TAG_VALUE: usize = 256;
/// setxattr(2) flag: fail if the attribute exists.
pub const XATTR_CREATE: i32 = 1;
/// setxattr(2) flag: fail if the attribute does not exist.
pub const XATTR_REPLACE: i32 = 2;

/// What a `user.s3.*` name designates, for writing.
pub enum Target<'a> {
    /// An object tag.
    Tag(&'a str),
    /// A user-metadata entry (lower-cased, as S3 stores it).
    Meta(String),
    /// The Content-Type.
    ContentType,
}

/// What `name` designates for writing; EPERM for a read-only fact, ENOTSUP otherwise.
pub fn target(name: &str) -> FsResult<Target<'_>> {
    if let Some(k) = name.strip_prefix(TAG_PREFIX) {
        if k.is_empty() {
            return Err(FsError::new(libc::EINVAL, "empty tag key"));
        }
        Ok(Target::Tag(k))
    } else if let Some(k) = name.strip_prefix(META_PREFIX) {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FsError::new(
                libc::EINVAL,
                "metadata keys must be printable ASCII",
            ));
        }
        // S3 stores metadata keys in lower case.
        let k = k.to_ascii_lowercase();
        if k == s3fs_xattr::HEADER {
            return Err(FsError::new(
                libc::EPERM,
                "x-amz-meta-xattr holds the other user.* attributes; set those instead",
            ));
        }
        Ok(Target::Meta(k))
    } else if name == CONTENT_TYPE {
        Ok(Target::ContentType)
    } else if [ETAG, STORAGE_CLASS, LAST_MODIFIED, VERSION_ID].contains(&name) {
        Err(FsError::new(libc::EPERM, format!("{name} is read-only")))
    } else {
        Err(FsError::new(
            libc::ENOTSUP,
            format!("only user.s3.tag.*, user.s3.meta.* and {CONTENT_TYPE} can be set"),
        ))
    }
}

/// Applies setxattr(2)'s XATTR_CREATE / XATTR_REPLACE to an attribute that `exists` or not.
pub fn check_flags(exists: bool, flags: i32) -> FsResult<()> {
    if flags & XATTR_CREATE != 0 && exists {
        return Err(FsError::new(libc::EEXIST, "attribute exists"));
    }
    if flags & XATTR_REPLACE != 0 && !exists {
        return Err(FsError::new(libc::ENODATA, "no such attribute"));
    }
    Ok(())
}

/// Sets tag `key` in `tags` (or removes it, with `value = None`) within S3's limits.
pub fn edit_tags(
    tags: &mut Vec<(String, String)>,
    key: &str,
    value: Option<&str>,
    flags: i32,
) -> FsResult<()> {
    let pos = tags.iter().position(|(k, _)| k == key);
    check_flags(pos.is_some(), flags)?;
    match (value, pos) {
        (Some(v), _) if key.chars().count() > MAX_TAG_KEY || v.chars().count() > MAX_TAG_VALUE => {
            tracing::warn!(key, "refusing a tag over S3's size limits");
            Err(FsError::new(
                libc::E2BIG,
                format!("S3 tag keys hold {MAX_TAG_KEY} and values {MAX_TAG_VALUE} characters"),
            ))
        }
        (Some(v), Some(i)) => {
            tags[i].1 = v.to_string();
            Ok(())
        }
        (Some(_), None) if tags.len() >= MAX_TAGS => {
            tracing::warn!(key, "refusing an 11th tag");
            Err(FsError::new(libc::ENOSPC, "S3 allows 10 tags per object"))
        }
        (Some(v), None) => {
            tags.push((key.to_string(), v.to_string()));
            Ok(())
        }
        (None, Some(i)) => {
            tags.remove(i);
            Ok(())
        }
        (None, None) => Err(FsError::new(libc::ENODATA, "no such tag")),
    }
}

/// Prefix of tag attributes.
pub const TAG_PREFIX: &str = "user.s3.tag.";
/// Prefix of user-metadata attributes.
pub const META_PREFIX: &str = "user.s3.meta.";
/// The ETag fact.
pub const ETAG: &str = "user.s3.etag";
/// The Content-Type fact (writable once writes exist).
pub const CONTENT_TYPE: &str = "user.s3.content-type";
/// The storage-class fact.
pub const STORAGE_CLASS: &str = "user.s3.storage-class";
/// The last-modified fact.
pub const LAST_MODIFIED: &str = "user.s3.last-modified";
/// The version-id fact.
pub const VERSION_ID: &str = "user.s3.version-id";

/// Whether answering `name` needs the object's tags.
pub fn needs_tags(name: &str) -> bool {
    name.starts_with(TAG_PREFIX)
}

/// The facts and metadata of an object as (name, value) pairs, in a stable order.
pub fn facts(meta: &ObjectMeta) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(ETAG.to_string(), meta.etag.as_bytes().to_vec())];
    if let Some(ct) = &meta.content_type {
        out.push((CONTENT_TYPE.to_string(), ct.as_bytes().to_vec()));
    }
    out.push((
        STORAGE_CLASS.to_string(),
        meta.storage_class
            .as_deref()
            .unwrap_or("STANDARD")
            .as_bytes()
            .to_vec(),
    ));
    out.push((
        LAST_MODIFIED.to_string(),
        rfc3339(meta.last_modified).into_bytes(),
    ));
    if let Some(v) = meta.version_id.as_deref().filter(|v| *v != "null") {
        out.push((VERSION_ID.to_string(), v.as_bytes().to_vec()));
    }
    out.extend(metadata_attrs(&meta.metadata));
    out
}

/// The `user.s3.meta.*` attributes of user metadata `metadata`, sorted by key (what a
/// directory's marker shows).
pub fn metadata_attrs(metadata: &HashMap<String, String>) -> Vec<(String, Vec<u8>)> {
    let mut metas: Vec<_> = metadata
        .iter()
        .filter(|(k, _)| *k != s3fs_xattr::HEADER)
        .collect();
    metas.sort();
    metas
        .into_iter()
        .map(|(k, v)| (format!("{META_PREFIX}{k}"), v.as_bytes().to_vec()))
        .collect()
}

/// Every attribute of an object: its facts and metadata, then its tags.
pub fn all(meta: &ObjectMeta, tags: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    let mut out = facts(meta);
    for (k, v) in tags {
        out.push((format!("{TAG_PREFIX}{k}"), v.as_bytes().to_vec()));
    }
    out
}

/// The `listxattr` buffer: each name followed by a NUL.
pub fn name_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
    }
    out
}

/// Formats a time as RFC 3339 in UTC, seconds precision (`2024-01-31T12:00:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_199);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn lists_facts_metadata_and_tags() {
        let meta = ObjectMeta {
            size: 1,
            last_modified: SystemTime::UNIX_EPOCH,
            etag: "\"abc\"".into(),
            content_type: Some("text/plain".into()),
            storage_class: None,
            version_id: None,
            metadata: HashMap::from([("color".into(), "blue".into())]),
        };
        let names: Vec<String> = all(&meta, &[("team".into(), "x".into())])
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                ETAG,
                CONTENT_TYPE,
                STORAGE_CLASS,
                LAST_MODIFIED,
                "user.s3.meta.color",
                "user.s3.tag.team"
            ]
        );
        assert_eq!(name_list(["a", "bc"]), b"a\0bc\0");
    }
}
