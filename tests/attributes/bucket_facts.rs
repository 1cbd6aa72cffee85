//! `user.s3.bucket.*` on the mount's root: each fact once absent (ENODATA) and once set
//! through the SDK (no caching: read when asked), read-only (EPERM), not listed, and only on
//! the root.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLoggingStatus, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, LoggingEnabled, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging,
};

use super::*;

fn fact(mount: &Mount, name: &str) -> Result<String, i32> {
    get_xattr(mount.path(), &format!("user.s3.bucket.{name}"))
        .map(|v| String::from_utf8(v).unwrap())
        .map_err(|e| errno(&e))
}

#[tokio::test]
async fn bucket_facts_on_the_root() {
    let Env { s3, bucket, mount } = Env::new().await;
    let c = bucket.client();
    let b = bucket.name();

    assert_eq!(fact(&mount, "region"), Ok("us-east-1".to_string()));
    for absent in [
        "versioning",
        "lifecycle",
        "policy",
        "logging",
        "notification",
        "tag.team",
    ] {
        assert_eq!(
            fact(&mount, absent),
            Err(libc::ENODATA),
            "{absent} before it is set"
        );
    }

    bucket.set_versioning("Enabled").await;
    assert_eq!(fact(&mount, "versioning"), Ok("Enabled".to_string()));
    bucket.set_versioning("Suspended").await;
    assert_eq!(fact(&mount, "versioning"), Ok("Suspended".to_string()));

    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .unwrap();
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .build();
    c.put_bucket_encryption()
        .bucket(b)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let enc: serde_json::Value =
        serde_json::from_str(&fact(&mount, "encryption").unwrap()).unwrap();
    assert_eq!(
        enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );

    let rule = LifecycleRule::builder()
        .id("expire-logs")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
        .expiration(LifecycleExpiration::builder().days(30).build())
        .build()
        .unwrap();
    c.put_bucket_lifecycle_configuration()
        .bucket(b)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let lc: serde_json::Value = serde_json::from_str(&fact(&mount, "lifecycle").unwrap()).unwrap();
    assert_eq!(lc["Rules"][0]["ID"], "expire-logs");
    assert_eq!(lc["Rules"][0]["Filter"]["Prefix"], "logs/");
    assert_eq!(lc["Rules"][0]["Expiration"]["Days"], 30);

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}}]}}"#
    );
    c.put_bucket_policy()
        .bucket(b)
        .policy(&policy)
        .send()
        .await
        .unwrap();
    let got: serde_json::Value = serde_json::from_str(&fact(&mount, "policy").unwrap()).unwrap();
    assert_eq!(
        got,
        serde_json::from_str::<serde_json::Value>(&policy).unwrap()
    );

    let logs = s3.new_bucket().await;
    c.put_bucket_acl()
        .bucket(logs.name())
        .acl(aws_sdk_s3::types::BucketCannedAcl::from(
            "log-delivery-write",
        ))
        .send()
        .await
        .unwrap();
    let target = LoggingEnabled::builder()
        .target_bucket(logs.name())
        .target_prefix("access/")
        .build()
        .unwrap();
    c.put_bucket_logging()
        .bucket(b)
        .bucket_logging_status(
            BucketLoggingStatus::builder()
                .logging_enabled(target)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let lg: serde_json::Value = serde_json::from_str(&fact(&mount, "logging").unwrap()).unwrap();
    assert_eq!(lg["LoggingEnabled"]["TargetBucket"], logs.name());
    assert_eq!(lg["LoggingEnabled"]["TargetPrefix"], "access/");

    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("team").value("storage").build().unwrap())
        .build()
        .unwrap();
    c.put_bucket_tagging()
        .bucket(b)
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    assert_eq!(fact(&mount, "tag.team"), Ok("storage".to_string()));
    assert_eq!(fact(&mount, "tag.other"), Err(libc::ENODATA));

    // Read-only, not listed, and only on the root.
    for name in ["region", "policy", "tag.team", "tag.new"] {
        assert_errno(
            set_xattr(mount.path(), &format!("user.s3.bucket.{name}"), b"x", 0),
            libc::EPERM,
            name,
        );
    }
    assert_errno(
        remove_xattr(mount.path(), "user.s3.bucket.policy"),
        libc::EPERM,
        "remove",
    );
    assert!(!list_xattr(mount.path())
        .iter()
        .any(|n| n.starts_with("user.s3.bucket.")));
    must_write(&mount.join("f"), b"x");
    assert_errno(
        get_xattr(&mount.join("f"), "user.s3.bucket.region"),
        libc::ENODATA,
        "on a file",
    );
    assert_eq!(
        getfattr_value(mount.path(), "user.s3.bucket.versioning").unwrap(),
        "Suspended"
    );
}

#[tokio::test]
async fn notification_configuration_as_json() {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = Env::new().await;
    assert_eq!(fact(&mount, "notification"), Err(libc::ENODATA));
    let queue = QueueConfiguration::builder()
        .id("new-objects")
        .queue_arn("arn:aws:sqs:us-east-1:123456789012:uploads")
        .events(Event::S3ObjectCreated)
        .build()
        .unwrap();
    bucket
        .client()
        .put_bucket_notification_configuration()
        .bucket(bucket.name())
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let n: serde_json::Value =
        serde_json::from_str(&fact(&mount, "notification").unwrap()).unwrap();
    let q = &n["QueueConfigurations"][0];
    assert_eq!(q["Id"], "new-objects");
    assert_eq!(q["QueueArn"], "arn:aws:sqs:us-east-1:123456789012:uploads");
    assert_eq!(q["Events"][0], "s3:ObjectCreated:*");
}
