//! Building the SDK client: credentials, region, retries, timeouts and the mount-wide
//! headers, from [`S3Settings`].
//!
//! Design note: an explicit `--profile` gets the profile's own credentials provider, so it
//! wins over keys in the environment, as in the AWS CLI. When no region is configured
//! anywhere, one `HeadBucket` (two attempts at most) discovers the bucket's: S3 names it in
//! `x-amz-bucket-region`, even on a redirect or an access-denied answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::Client;
use aws_types::SdkConfig;
use tracing::{debug, info};

use super::extras::{MountHeaders, DEFAULT_PRESIGN_EXPIRY};
use super::S3Store;
use crate::storage::{BucketLocation, StoreError};

/// How to reach the store. Every field is optional; `None` means "the AWS default".
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// Region from the command line; wins over the environment and profiles.
    pub region: Option<String>,
    /// Custom endpoint (S3-compatible servers).
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), which local servers need.
    pub force_path_style: bool,
    /// Shared-config profile name.
    pub profile: Option<String>,
    /// Send unsigned (anonymous) requests.
    pub no_sign_request: bool,
    /// Storage class for uploads; `None` lets the bucket decide (STANDARD).
    pub storage_class: Option<String>,
    /// Server-side encryption for uploads (`AES256` or `aws:kms`).
    pub sse: Option<String>,
    /// KMS key id with `sse = aws:kms`.
    pub sse_kms_key_id: Option<String>,
    /// Attempts per request (first try included). Default 5: S3 throttles in bursts.
    pub max_attempts: u32,
    /// Connect timeout. Default 10 s: long enough for a slow network, short enough that a dead
    /// endpoint fails the mount (or an operation) quickly.
    pub connect_timeout: Duration,
    /// Read timeout for one attempt (time without receiving data). Default 30 s.
    pub read_timeout: Duration,
    /// Lifetime of presigned URLs. Default 1 hour.
    pub presign_expiry: Duration,
    /// Canned ACL for new objects (`private`, `public-read`, ...).
    pub acl: Option<String>,
    /// Send `x-amz-request-payer: requester` on every request.
    pub requester_pays: bool,
    /// Send `x-amz-expected-bucket-owner` with this account on every request.
    pub expected_bucket_owner: Option<String>,
}

impl S3Settings {
    /// Settings with the documented defaults and nothing else set.
    pub fn new() -> Self {
        S3Settings {
            max_attempts: 5,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            presign_expiry: DEFAULT_PRESIGN_EXPIRY,
            ..Default::default()
        }
    }
}

impl S3Store {
    /// Builds a client for `location`, resolving credentials and region. Does no request except,
    /// when no region is configured anywhere, one `HeadBucket` to discover the bucket's region.
    pub async fn connect(
        location: &BucketLocation,
        settings: S3Settings,
    ) -> Result<Self, StoreError> {
        let sdk_config = load_sdk_config(&settings).await;
        let region = match sdk_config.region() {
            Some(r) => r.to_string(),
            None => {
                let probe = build_client(&sdk_config, &settings, "us-east-1", 2, true);
                discover_region(&probe, &location.bucket).await
            }
        };
        info!(bucket = %location.bucket, %region, endpoint = ?settings.endpoint_url, "S3 client ready");
        let attempts = settings.max_attempts;
        Ok(S3Store {
            client: build_client(&sdk_config, &settings, &region, attempts, true),
            presigner: build_client(&sdk_config, &settings, &region, attempts, false),
            bucket: location.bucket.clone(),
            settings,
            region,
            pending_aborts: Arc::new(Mutex::new(Vec::new())),
        })
    }
}

/// The shared config: credentials (the profile's own provider with `--profile`; none with
/// `--no-sign-request`) and the region of the flags, environment or profile.
pub(super) async fn load_sdk_config(settings: &S3Settings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &settings.profile {
        let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(profile)
            .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if settings.no_sign_request {
        loader = loader.no_credentials();
    }
    loader.load().await
}

/// A client for `region` with `attempts` per request (at most `settings.max_attempts`), with
/// or without the mount-wide headers (`--requester-pays`, `--expected-bucket-owner`).
pub(super) fn build_client(
    sdk_config: &SdkConfig,
    settings: &S3Settings,
    region: &str,
    attempts: u32,
    headers: bool,
) -> Client {
    let attempts = attempts.min(settings.max_attempts).max(1);
    let retry = aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(attempts);
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout)
        .build();
    let mut b = aws_sdk_s3::config::Builder::from(sdk_config)
        .region(Region::new(region.to_string()))
        .force_path_style(settings.force_path_style)
        .retry_config(retry)
        .timeout_config(timeouts)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // Reports each request's attempts and HTTP status to `MeteredStore`.
        .interceptor(crate::storage::metered::SdkObserver)
        .interceptor(super::unsigned::UnsignedOverHttps);
    if let Some(url) = &settings.endpoint_url {
        b = b.endpoint_url(url);
    }
    if let Some(h) = MountHeaders::for_settings(settings).filter(|_| headers) {
        b = b.interceptor(h);
    }
    Client::from_conf(b.build())
}

/// The bucket's region as `HeadBucket` names it; us-east-1 when nothing says.
async fn discover_region(probe: &Client, bucket: &str) -> String {
    let discovered = match probe.head_bucket().bucket(bucket).send().await {
        Ok(out) => out.bucket_region().map(str::to_string),
        Err(err) => err
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string),
    };
    debug!(?discovered, "region discovery");
    discovered.unwrap_or_else(|| "us-east-1".to_string())
}
