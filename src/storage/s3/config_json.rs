//! The bucket's configurations as JSON, from the SDK's types.
//!
//! Design note: the shape is the AWS CLI's (`aws s3api get-bucket-encryption` and the like):
//! PascalCase keys named as in S3's XML, absent fields left out, lists as arrays. Only the
//! fields people read are carried (the rules' actions and filters, targets and events); the
//! policy needs no conversion, it is JSON already.

use aws_sdk_s3::types::{
    FilterRule, LifecycleRule, LifecycleRuleFilter, NotificationConfigurationFilter,
    ServerSideEncryptionRule,
};
use serde_json::{json, Map, Value};

/// An object of the pairs whose value is not null.
fn object(pairs: Vec<(&str, Value)>) -> Value {
    let map: Map<String, Value> = pairs
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Value::Object(map)
}

fn date(d: Option<&aws_smithy_types::DateTime>) -> Value {
    d.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

/// GetBucketEncryption's rules.
pub(super) fn encryption(rules: &[ServerSideEncryptionRule]) -> String {
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let default = r.apply_server_side_encryption_by_default().map(|d| {
                object(vec![
                    ("SSEAlgorithm", json!(d.sse_algorithm().as_str())),
                    ("KMSMasterKeyID", json!(d.kms_master_key_id())),
                ])
            });
            object(vec![
                ("ApplyServerSideEncryptionByDefault", json!(default)),
                ("BucketKeyEnabled", json!(r.bucket_key_enabled())),
            ])
        })
        .collect();
    json!({ "Rules": rules }).to_string()
}

fn lifecycle_filter(f: &LifecycleRuleFilter) -> Value {
    let tag = |t: &aws_sdk_s3::types::Tag| json!({"Key": t.key(), "Value": t.value()});
    let and = f.and().map(|a| {
        object(vec![
            ("Prefix", json!(a.prefix())),
            (
                "Tags",
                match a.tags() {
                    [] => Value::Null,
                    tags => tags.iter().map(tag).collect(),
                },
            ),
            ("ObjectSizeGreaterThan", json!(a.object_size_greater_than())),
            ("ObjectSizeLessThan", json!(a.object_size_less_than())),
        ])
    });
    object(vec![
        ("Prefix", json!(f.prefix())),
        ("Tag", f.tag().map_or(Value::Null, tag)),
        ("ObjectSizeGreaterThan", json!(f.object_size_greater_than())),
        ("ObjectSizeLessThan", json!(f.object_size_less_than())),
        ("And", json!(and)),
    ])
}

// Rules written before filters existed carry a top-level Prefix; the CLI shows it too.
#[allow(deprecated)]
fn lifecycle_rule(r: &LifecycleRule) -> Value {
    let expiration = r.expiration().map(|e| {
        object(vec![
            ("Date", date(e.date())),
            ("Days", json!(e.days())),
            (
                "ExpiredObjectDeleteMarker",
                json!(e.expired_object_delete_marker()),
            ),
        ])
    });
    let transitions: Vec<Value> = r
        .transitions()
        .iter()
        .map(|t| {
            object(vec![
                ("Date", date(t.date())),
                ("Days", json!(t.days())),
                ("StorageClass", json!(t.storage_class().map(|c| c.as_str()))),
            ])
        })
        .collect();
    let noncurrent_transitions: Vec<Value> = r
        .noncurrent_version_transitions()
        .iter()
        .map(|t| {
            object(vec![
                ("NoncurrentDays", json!(t.noncurrent_days())),
                ("StorageClass", json!(t.storage_class().map(|c| c.as_str()))),
            ])
        })
        .collect();
    let none_if_empty = |v: Vec<Value>| if v.is_empty() { Value::Null } else { json!(v) };
    object(vec![
        ("ID", json!(r.id())),
        ("Status", json!(r.status().as_str())),
        ("Prefix", json!(r.prefix())),
        ("Filter", r.filter().map_or(Value::Null, lifecycle_filter)),
        ("Expiration", json!(expiration)),
        ("Transitions", none_if_empty(transitions)),
        (
            "NoncurrentVersionExpiration",
            json!(r
                .noncurrent_version_expiration()
                .map(|e| object(vec![("NoncurrentDays", json!(e.noncurrent_days()))]))),
        ),
        (
            "NoncurrentVersionTransitions",
            none_if_empty(noncurrent_transitions),
        ),
        (
            "AbortIncompleteMultipartUpload",
            json!(r.abort_incomplete_multipart_upload().map(|a| object(vec![(
                "DaysAfterInitiation",
                json!(a.days_after_initiation())
            )]))),
        ),
    ])
}

/// GetBucketLifecycleConfiguration's rules.
pub(super) fn lifecycle(rules: &[LifecycleRule]) -> String {
    let rules: Vec<Value> = rules.iter().map(lifecycle_rule).collect();
    json!({ "Rules": rules }).to_string()
}

/// GetBucketLogging's target.
pub(super) fn logging(bucket: &str, prefix: &str) -> String {
    json!({ "LoggingEnabled": { "TargetBucket": bucket, "TargetPrefix": prefix } }).to_string()
}

fn filter(f: Option<&NotificationConfigurationFilter>) -> Value {
    let rule = |r: &FilterRule| {
        object(vec![
            ("Name", json!(r.name().map(|n| n.as_str()))),
            ("Value", json!(r.value())),
        ])
    };
    match f.and_then(|f| f.key()) {
        Some(k) => {
            json!({ "Key": { "FilterRules": k.filter_rules().iter().map(rule).collect::<Vec<_>>() } })
        }
        None => Value::Null,
    }
}

/// One notification target: its id, ARN (under `arn_name`), events and key filter.
pub(super) fn notification_target(
    arn_name: &str,
    arn: &str,
    id: Option<&str>,
    events: &[aws_sdk_s3::types::Event],
    f: Option<&NotificationConfigurationFilter>,
) -> Value {
    object(vec![
        ("Id", json!(id)),
        (arn_name, json!(arn)),
        ("Events", events.iter().map(|e| json!(e.as_str())).collect()),
        ("Filter", filter(f)),
    ])
}

/// GetBucketNotificationConfiguration, from its lists of targets; `None` when all are empty.
pub(super) fn notification(
    topics: Vec<Value>,
    queues: Vec<Value>,
    lambdas: Vec<Value>,
    event_bridge: bool,
) -> Option<String> {
    if topics.is_empty() && queues.is_empty() && lambdas.is_empty() && !event_bridge {
        return None;
    }
    let list = |v: Vec<Value>| if v.is_empty() { Value::Null } else { json!(v) };
    let out = object(vec![
        ("TopicConfigurations", list(topics)),
        ("QueueConfigurations", list(queues)),
        ("LambdaFunctionConfigurations", list(lambdas)),
        (
            "EventBridgeConfiguration",
            if event_bridge { json!({}) } else { Value::Null },
        ),
    ]);
    Some(out.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::{
        ExpirationStatus, LifecycleExpiration, ServerSideEncryption, ServerSideEncryptionByDefault,
    };

    #[test]
    fn encryption_has_the_cli_shape() {
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(
            encryption(&[rule]),
            r#"{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}"#
        );
    }

    #[test]
    fn lifecycle_leaves_absent_fields_out() {
        let rule = LifecycleRule::builder()
            .id("old")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
            .expiration(LifecycleExpiration::builder().days(30).build())
            .build()
            .unwrap();
        let v: Value = serde_json::from_str(&lifecycle(&[rule])).unwrap();
        assert_eq!(
            v,
            json!({"Rules":[{"ID":"old","Status":"Enabled","Filter":{"Prefix":"logs/"},
                             "Expiration":{"Days":30}}]})
        );
        assert_eq!(notification(vec![], vec![], vec![], false), None);
    }
}
