//! The `user.s3.*` names that are requests rather than stored attributes: presigned URLs,
//! versions and reverts, restores of archived objects, and the bucket's facts on the root.
//!
//! Design note: none of these is listed by `listxattr`, so `getfattr -d`, `cp --preserve=xattr`
//! and `rsync -X` neither ask S3 for them nor copy them; they are read and written by name
//! only. Each is computed when asked (a presigned URL is signed locally, the rest cost one or
//! two requests), never cached, and never at mount time. A revert changes the object behind
//! the kernel's back, so the inode takes the new version's headers and the kernel's cached
//! attributes are dropped; the next open sees a new ETag and drops the cached pages.

use std::sync::Arc;

use super::Attributes;
use crate::error::{FsError, FsResult};
use crate::fs::inode::{Inode, ROOT_INO};
use crate::fs::xattr::rfc3339;
use crate::storage::ops::is_archived;
use crate::storage::{BucketFact, ObjectVersion, RestoreRequest};

/// A presigned GET URL of the file's current version.
pub const PRESIGNED_URL: &str = "user.s3.presigned-url";
/// The file's versions, one per line, newest first.
pub const VERSIONS: &str = "user.s3.versions";
/// Written with a version id: makes that version current again.
pub const REVERT: &str = "user.s3.revert";
/// The restore state of an archived object; written to request a restore.
pub const RESTORE: &str = "user.s3.restore";
/// Prefix of the bucket's facts, on the mount's root.
pub const BUCKET_PREFIX: &str = "user.s3.bucket.";

/// Whether `name` is one of the names handled here.
pub fn handles(name: &str) -> bool {
    [PRESIGNED_URL, VERSIONS, REVERT, RESTORE].contains(&name) || name.starts_with(BUCKET_PREFIX)
}

fn no_data() -> FsError {
    FsError::new(libc::ENODATA, "no such attribute")
}

/// The bucket fact a `user.s3.bucket.*` name designates.
fn bucket_fact(name: &str) -> Option<BucketFact> {
    let fact = match name.strip_prefix(BUCKET_PREFIX)? {
        "region" => BucketFact::Region,
        "versioning" => BucketFact::Versioning,
        "encryption" => BucketFact::Encryption,
        "lifecycle" => BucketFact::Lifecycle,
        "policy" => BucketFact::Policy,
        "logging" => BucketFact::Logging,
        "notification" => BucketFact::Notification,
        other => BucketFact::Tag(other.strip_prefix("tag.")?.to_string()),
    };
    Some(fact)
}

/// One line of `user.s3.versions`: id, last-modified, size, flags (`-` when none).
pub fn version_line(v: &ObjectVersion) -> String {
    let mut flags = Vec::new();
    if v.is_latest {
        flags.push("latest");
    }
    if v.is_delete_marker {
        flags.push("delete-marker");
    }
    let flags = if flags.is_empty() {
        "-".to_string()
    } else {
        flags.join(",")
    };
    format!(
        "{} {} {} {flags}\n",
        v.version_id,
        rfc3339(v.last_modified),
        v.size
    )
}

/// Parses `days=N[,tier=Standard|Bulk|Expedited]`.
pub fn parse_restore(value: &str) -> FsResult<RestoreRequest> {
    let invalid = || {
        FsError::new(
            libc::EINVAL,
            "user.s3.restore takes days=N[,tier=Standard|Bulk|Expedited]",
        )
    };
    let (mut days, mut tier) = (None, None);
    for part in value.trim().split(',') {
        match part.trim().split_once('=').ok_or_else(invalid)? {
            ("days", n) => {
                days = Some(
                    n.parse::<i32>()
                        .ok()
                        .filter(|d| *d > 0)
                        .ok_or_else(invalid)?,
                )
            }
            ("tier", t @ ("Standard" | "Bulk" | "Expedited")) => tier = Some(t.to_string()),
            _ => return Err(invalid()),
        }
    }
    Ok(RestoreRequest {
        days: days.ok_or_else(invalid)?,
        tier,
    })
}

/// The restore state from an `x-amz-restore` header: `in-progress`, `restored until <RFC
/// 3339>`, or `not-restored` without one.
pub fn restore_state(header: Option<&str>) -> String {
    let Some(h) = header else {
        return "not-restored".to_string();
    };
    if h.contains("ongoing-request=\"true\"") {
        return "in-progress".to_string();
    }
    let expiry = h
        .split_once("expiry-date=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .and_then(|d| {
            aws_smithy_types::DateTime::from_str(d, aws_smithy_types::date_time::Format::HttpDate)
                .ok()
        })
        .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok());
    match expiry {
        Some(t) => format!("restored until {t}"),
        None => "restored".to_string(),
    }
}

impl Attributes {
    /// The value of one of the names handled here.
    pub(super) async fn s3_op_get(&self, node: &Inode, name: &str) -> FsResult<Vec<u8>> {
        if name.starts_with(BUCKET_PREFIX) {
            // On the root; with --all-buckets, on each bucket's directory at the top.
            let top = self.config.buckets_at_root && node.parent == ROOT_INO && node.is_dir();
            let fact = bucket_fact(name).filter(|_| node.ino == ROOT_INO || top);
            let fact = fact.ok_or_else(no_data)?;
            let value = self.store.bucket_fact_at(&node.key, &fact).await?;
            return value.map(String::into_bytes).ok_or_else(no_data);
        }
        if node.is_dir() || name == REVERT {
            return Err(no_data());
        }
        self.files.commit_pending(node.ino).await?;
        let meta = self.meta_of(node).await?;
        match name {
            PRESIGNED_URL => {
                let version = meta.version_id.as_deref().filter(|v| *v != "null");
                let url = self.store.presign_get(&node.key, version).await?;
                Ok(url.into_bytes())
            }
            VERSIONS => {
                if self
                    .store
                    .bucket_fact_at(&node.key, &BucketFact::Versioning)
                    .await?
                    .is_none()
                {
                    return Err(no_data()); // never versioned
                }
                let versions = self.store.list_versions(&node.key).await?;
                Ok(versions
                    .iter()
                    .map(version_line)
                    .collect::<String>()
                    .into_bytes())
            }
            _ => {
                let header = self.store.restore_status(&node.key).await?;
                if header.is_none() && !is_archived(meta.storage_class.as_deref(), None) {
                    return Err(no_data());
                }
                Ok(restore_state(header.as_deref()).into_bytes())
            }
        }
    }

    /// Writes one of the names handled here.
    pub(super) async fn s3_op_set(&self, ino: u64, name: &str, value: &[u8]) -> FsResult<()> {
        if name.starts_with(BUCKET_PREFIX) || name == PRESIGNED_URL || name == VERSIONS {
            return Err(FsError::new(libc::EPERM, format!("{name} is read-only")));
        }
        self.config.check_writable()?;
        let node = self.ns.node(ino)?;
        if node.is_dir() {
            return Err(FsError::new(libc::ENOTSUP, format!("{name} is for files")));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| FsError::new(libc::EINVAL, "the value must be text"))?
            .trim();
        if name == RESTORE {
            let req = parse_restore(value)?;
            self.files.commit_pending(ino).await?;
            tracing::info!(key = %node.key, days = req.days, tier = ?req.tier, "restore requested");
            return Ok(self.store.restore(&node.key, &req).await?);
        }
        self.revert(&node, value).await
    }

    /// Makes version `version_id` of `node`'s object current again.
    async fn revert(&self, node: &Inode, version_id: &str) -> FsResult<()> {
        if version_id.is_empty() {
            return Err(FsError::new(
                libc::EINVAL,
                "user.s3.revert takes a version id",
            ));
        }
        if self.writes.is_local(node.ino) {
            return Err(FsError::new(
                libc::EBUSY,
                "the file is open for writing; close it before reverting",
            ));
        }
        if self
            .store
            .bucket_fact_at(&node.key, &BucketFact::Versioning)
            .await?
            .is_none()
        {
            return Err(FsError::new(
                libc::ENOTSUP,
                "the bucket is not versioned: there is no version to revert to",
            ));
        }
        self.store.copy_version(&node.key, version_id).await?;
        tracing::info!(key = %node.key, version_id, "reverted to an earlier version");
        let meta = Arc::new(self.store.head(&node.key).await?);
        self.ns.refresh_written(node, meta);
        if let Some(n) = self.ns.table().get_mut(node.ino) {
            n.tags = None;
        }
        self.files.invalidate_kernel_attrs(node.ino);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn formats_version_lines() {
        let v = ObjectVersion {
            version_id: "abc".into(),
            last_modified: SystemTime::UNIX_EPOCH + Duration::from_secs(86400),
            size: 12,
            is_latest: true,
            is_delete_marker: false,
        };
        assert_eq!(version_line(&v), "abc 1970-01-02T00:00:00Z 12 latest\n");
        let m = ObjectVersion {
            is_latest: false,
            is_delete_marker: true,
            size: 0,
            ..v
        };
        assert_eq!(
            version_line(&m),
            "abc 1970-01-02T00:00:00Z 0 delete-marker\n"
        );
    }

    #[test]
    fn parses_restore_requests() {
        let r = parse_restore("days=7,tier=Bulk").unwrap();
        assert_eq!((r.days, r.tier.as_deref()), (7, Some("Bulk")));
        assert_eq!(parse_restore("days=1").unwrap().tier, None);
        for bad in [
            "",
            "days=0",
            "days=x",
            "tier=Bulk",
            "days=1,tier=Fast",
            "weeks=1",
        ] {
            assert_eq!(parse_restore(bad).unwrap_err().errno, libc::EINVAL, "{bad}");
        }
    }

    #[test]
    fn reads_restore_headers() {
        assert_eq!(restore_state(None), "not-restored");
        assert_eq!(
            restore_state(Some("ongoing-request=\"true\"")),
            "in-progress"
        );
        assert_eq!(
            restore_state(Some(
                "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\""
            )),
            "restored until 2012-12-21T00:00:00Z"
        );
    }

    #[test]
    fn names_bucket_facts() {
        assert_eq!(
            bucket_fact("user.s3.bucket.region"),
            Some(BucketFact::Region)
        );
        assert_eq!(
            bucket_fact("user.s3.bucket.tag.team"),
            Some(BucketFact::Tag("team".into()))
        );
        assert_eq!(bucket_fact("user.s3.bucket.other"), None);
        assert!(handles(VERSIONS) && handles("user.s3.bucket.policy") && !handles("user.s3.etag"));
    }
}
