//! [`S3Account`]: the account-wide requests of an `--all-buckets` mount (ListBuckets,
//! CreateBucket, DeleteBucket, HeadBucket), and one [`S3Store`] per bucket.
//!
//! Design note: the account's client is signed for the region of `--region` (or the
//! environment or profile; else us-east-1): that is where ListBuckets goes and where
//! `mkdir` creates buckets. Each bucket is reached in its own region, whatever `--region`
//! says: the `HeadBucket` that proves the bucket exists names it (`x-amz-bucket-region`, also
//! on a redirect), and a server that names none (some S3-compatible ones) is taken to serve
//! every bucket from the account's region. The shared config (credentials) is loaded once;
//! every bucket's store gets the same flags (storage class, encryption, ACL, headers).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3::Client;
use aws_types::SdkConfig;
use tracing::debug;

use super::classify::classify;
use super::client::{build_client, load_sdk_config};
use super::{to_system_time, S3Settings, S3Store};
use crate::storage::account::{BucketInfo, Buckets};
use crate::storage::{ObjectStore, StoreError};

/// The region S3 creates a bucket in when no location constraint is sent.
const DEFAULT_REGION: &str = "us-east-1";

/// The account reached with the mount's settings.
pub struct S3Account {
    sdk_config: SdkConfig,
    settings: S3Settings,
    /// Where ListBuckets and CreateBucket go.
    region: String,
    client: Client,
}

impl S3Account {
    /// Loads credentials and the configured region; sends no request.
    pub async fn connect(settings: S3Settings) -> Result<Self, StoreError> {
        let sdk_config = load_sdk_config(&settings).await;
        let region = sdk_config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let client = build_client(
            &sdk_config,
            &settings,
            &region,
            settings.max_attempts,
            false,
        );
        Ok(S3Account {
            sdk_config,
            settings,
            region,
            client,
        })
    }

    /// The region new buckets are created in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `HeadBucket`: the bucket's region, or why it cannot be reached.
    async fn bucket_region(&self, name: &str) -> Result<String, StoreError> {
        let err = match self.client.head_bucket().bucket(name).send().await {
            Ok(out) => {
                let region = out.bucket_region().unwrap_or(&self.region);
                return Ok(region.to_string());
            }
            Err(err) => err,
        };
        let named = err
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string);
        let status = err.raw_response().map(|r| r.status().as_u16());
        match (status, named) {
            // A HEAD answer has no body, so no error code: its status says it all.
            (Some(404), _) => Err(StoreError::no_such_bucket()),
            // Another region (301) or not ours to HEAD (403): the bucket is there.
            (_, Some(region)) => Ok(region),
            _ => Err(classify("HeadBucket", name, err)),
        }
    }
}

#[async_trait]
impl Buckets for S3Account {
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_buckets()
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify("ListBuckets", "", e))?;
            found.extend(out.buckets().iter().filter_map(|b| {
                Some(BucketInfo {
                    name: b.name()?.to_string(),
                    created: b.creation_date().map(|t| to_system_time(Some(t))),
                })
            }));
            match out.continuation_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    async fn create_bucket(&self, name: &str) -> Result<(), StoreError> {
        let config = (self.region != DEFAULT_REGION).then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                .build()
        });
        self.client
            .create_bucket()
            .bucket(name)
            .set_create_bucket_configuration(config)
            .send()
            .await
            .map_err(|e| classify("CreateBucket", name, e))?;
        Ok(())
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        // The bucket may live in another region than the account's client.
        let region = self.bucket_region(name).await?;
        let client = build_client(
            &self.sdk_config,
            &self.settings,
            &region,
            self.settings.max_attempts,
            false,
        );
        client
            .delete_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| classify("DeleteBucket", name, e))?;
        Ok(())
    }

    async fn open_bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let region = self.bucket_region(name).await?;
        debug!(bucket = name, %region, "bucket opened");
        let attempts = self.settings.max_attempts;
        let build =
            |headers| build_client(&self.sdk_config, &self.settings, &region, attempts, headers);
        Ok(Arc::new(S3Store {
            client: build(true),
            presigner: build(false),
            bucket: name.to_string(),
            settings: self.settings.clone(),
            region: region.clone(),
            pending_aborts: Arc::new(Mutex::new(Vec::new())),
        }))
    }
}
