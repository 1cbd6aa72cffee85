//! What s3mount asks of S3 beyond reading and writing objects: presigned URLs, versions,
//! restores of archived objects and the bucket's configuration.
//!
//! Design note: these are the store's answers in plain types; the filesystem turns them into
//! extended attributes (`fs/s3_ops.rs`). The bucket's configurations come back as JSON text
//! already, shaped like the AWS CLI's `aws s3api get-bucket-*` output (PascalCase keys), so
//! that users can read them with the tools they know (`jq`).

use std::time::SystemTime;

/// One entry of `ListObjectVersions` for one key: a version or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Version id (`null` for the version written while versioning was off or suspended).
    pub version_id: String,
    /// When it was written.
    pub last_modified: SystemTime,
    /// Size in bytes (0 for a delete marker).
    pub size: u64,
    /// Whether it is the current version.
    pub is_latest: bool,
    /// Whether it is a delete marker.
    pub is_delete_marker: bool,
}

/// A fact about the bucket, read on demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BucketFact {
    /// The bucket's region (GetBucketLocation).
    Region,
    /// `Enabled` or `Suspended` (GetBucketVersioning); absent if never set.
    Versioning,
    /// GetBucketEncryption, as JSON.
    Encryption,
    /// GetBucketLifecycleConfiguration, as JSON.
    Lifecycle,
    /// GetBucketPolicy: the policy document itself.
    Policy,
    /// GetBucketLogging, as JSON; absent when logging is off.
    Logging,
    /// GetBucketNotificationConfiguration, as JSON; absent when nothing is configured.
    Notification,
    /// The value of one bucket tag (GetBucketTagging).
    Tag(String),
}

/// A restore request: how many days the restored copy stays, and the retrieval tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreRequest {
    /// Days the restored copy is kept.
    pub days: i32,
    /// `Standard`, `Bulk` or `Expedited`; `None` lets S3 choose (Standard).
    pub tier: Option<String>,
}

/// Storage classes whose objects must be restored before they can be read.
pub fn is_archived(storage_class: Option<&str>, archive_status: Option<&str>) -> bool {
    matches!(storage_class, Some("GLACIER" | "DEEP_ARCHIVE"))
        || matches!(
            archive_status,
            Some("ARCHIVE_ACCESS" | "DEEP_ARCHIVE_ACCESS")
        )
}
