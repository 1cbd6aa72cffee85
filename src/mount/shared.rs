//! Opening the shared tier (`--cache-xz BUCKET`) before mounting.
//!
//! Design note: the cache bucket gets a store of its own, with the source's connection flags
//! (endpoint, region, profile, credentials) but no storage class (an Express directory bucket
//! takes none other than its own) and two attempts per request, so that a failing tier is
//! given up quickly (the tier then falls back to the source; see
//! [`crate::data::shared_cache`]). One listing proves, before mounting, that the bucket exists
//! and may be listed: a bucket that does not exist, or that we may not use, refuses the mount
//! with one line. A bucket that does not answer in time does not: the mount goes on, and the
//! tier is retried (and skipped while it fails) as it would be after an outage.

use std::sync::Arc;

use tracing::{info, warn};

use super::checks::STARTUP_LIMIT;
use crate::cli::Args;
use crate::data::shared_cache::{SharedCache, SharedCacheConfig};
use crate::startup::StartupError;
use crate::storage::s3::{S3Settings, S3Store};
use crate::storage::{BucketLocation, ErrorKind, ObjectStore, StoreError};

/// Attempts per request to the cache bucket.
const ATTEMPTS: u32 = 2;

/// Connects to the `--cache-xz` bucket, when there is one, and checks it.
pub(super) async fn open_shared_cache(
    args: &Args,
    source: &BucketLocation,
    block_size: u64,
) -> Result<Option<Arc<SharedCache>>, StartupError> {
    let Some(bucket) = args.cache_xz.clone() else {
        return Ok(None);
    };
    let endpoint = args.endpoint_url.as_deref().unwrap_or("aws");
    let config = SharedCacheConfig {
        bucket: bucket.clone(),
        source: format!("{endpoint}\n{}\n{block_size}", source.bucket),
    };
    let location = BucketLocation {
        bucket: bucket.clone(),
        prefix: String::new(),
    };
    let refuse = |e: StoreError| StartupError::Bucket {
        message: explain(&e, &bucket, args.endpoint_url.as_deref()),
        source: Box::new(e),
    };
    let connect = S3Store::connect(&location, cache_settings(args));
    let store = match tokio::time::timeout(STARTUP_LIMIT, connect).await {
        Ok(store) => store.map_err(refuse)?,
        Err(_) => return Err(refuse(StoreError::timeout("no answer in time"))),
    };
    let why = match tokio::time::timeout(STARTUP_LIMIT, store.check_access()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) if refuses_the_mount(&e) => return Err(refuse(e)),
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", STARTUP_LIMIT.as_secs())),
    };
    match why {
        None => info!(%bucket, "shared cache bucket reachable"),
        Some(why) => warn!(
            %bucket,
            "the cache bucket does not answer ({why}); mounting anyway: blocks come from the \
             source bucket until it does"
        ),
    }
    Ok(Some(SharedCache::new(
        Arc::new(store) as Arc<dyn ObjectStore>,
        &config,
    )))
}

/// The source's connection settings, with fewer attempts and none of the source's object or
/// billing settings: no storage class, ACL, encryption key, expected owner or requester-pays
/// (the cache bucket is the mount owner's, and its objects are not the user's data).
fn cache_settings(args: &Args) -> S3Settings {
    let mut settings = args.s3_settings();
    settings.storage_class = None;
    settings.acl = None;
    settings.sse = None;
    settings.sse_kms_key_id = None;
    settings.expected_bucket_owner = None;
    settings.requester_pays = false;
    settings.max_attempts = ATTEMPTS;
    settings
}

/// Whether a failed check means the bucket cannot be used at all (rather than not now).
fn refuses_the_mount(e: &StoreError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NoSuchBucket
            | ErrorKind::NotFound
            | ErrorKind::AccessDenied
            | ErrorKind::BadCredentials
            | ErrorKind::NoCredentials
            | ErrorKind::Invalid
    )
}

/// The one line that says what is wrong with the cache bucket.
fn explain(e: &StoreError, bucket: &str, endpoint: Option<&str>) -> String {
    let endpoint = endpoint.unwrap_or("the AWS S3 endpoint");
    match e.kind() {
        ErrorKind::NoSuchBucket | ErrorKind::NotFound => format!(
            "cache bucket '{bucket}' (--cache-xz) does not exist at {endpoint}: create it, or \
             check the name"
        ),
        ErrorKind::AccessDenied => format!(
            "access denied to cache bucket '{bucket}' (--cache-xz) ({}): the credentials in use \
             must be able to list, read and write it",
            e.message()
        ),
        _ => format!("cannot use cache bucket '{bucket}' (--cache-xz) at {endpoint}: {e}"),
    }
}
