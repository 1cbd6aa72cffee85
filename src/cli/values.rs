//! Parsing and checking of flag values and of BUCKET: each value outside what works is
//! refused with the valid range or the rule it breaks, never silently adjusted.
//!
//! Design note: the parsers here are clap `value_parser`s, so a bad value is a usage error
//! (exit status 2) in clap's usual form; BUCKET is checked when the mount starts, as a
//! [`StartupError`] line (exit status 1), before any request.

use crate::startup::StartupError;
use crate::storage::BucketLocation;

/// Smallest `--part-size`: one cache block; smaller GETs cost more in requests than they save.
pub(super) const MIN_READ_PART: u64 = 256 << 10;
/// Smallest multipart upload part S3 accepts (all but the last).
pub(super) const MIN_WRITE_PART: u64 = 5 << 20;
/// Largest part S3 accepts.
pub(super) const MAX_PART: u64 = 5 << 30;

/// A parser for a size in bytes within `min..=max`, with an optional binary suffix
/// (`KiB`, `MiB`, `GiB`, or `K`, `M`, `G`).
pub(super) fn byte_size(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone {
    move |s: &str| {
        let t = s.trim();
        let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let shift = match t[digits.len()..].to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kib" => 10,
            "m" | "mib" => 20,
            "g" | "gib" => 30,
            other => return Err(format!("unknown unit '{other}': use KiB, MiB or GiB")),
        };
        let value = digits
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
            .ok_or_else(|| format!("'{s}' is not a size in bytes"))?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "{value} bytes is outside the valid range, {} to {}",
                human_bytes(min),
                human_bytes(max)
            ))
        }
    }
}

/// `5 MiB (5242880 bytes)`.
fn human_bytes(n: u64) -> String {
    let (value, unit) = match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => (n >> 30, "GiB"),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => (n >> 20, "MiB"),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => (n >> 10, "KiB"),
        n => return format!("{n} bytes"),
    };
    format!("{value} {unit} ({n} bytes)")
}

/// A parser for a number of seconds, at least `min`.
pub(super) fn seconds(min: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number of seconds"))?;
        match v.is_finite() && v >= min {
            true => Ok(v),
            false if min > 0.0 => Err(format!("must be more than 0 seconds, not {s}")),
            false => Err(format!("must be 0 seconds or more, not {s}")),
        }
    }
}

/// `--endpoint-url`: an http or https URL with a host. The SDK would take `127.0.0.1:9000`
/// for a URI with scheme `127.0.0.1` and fail later, deep in a request.
pub(super) fn parse_endpoint_url(s: &str) -> Result<String, String> {
    let hint = |why: &str| {
        let bare = s.split("://").last().unwrap_or(s);
        format!("{why}: write it as http://{bare} or https://{bare}")
    };
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| hint("the URL has no scheme"))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(hint(&format!("'{scheme}' is not http or https")));
    }
    let no_host = || "the URL has no host: write it as http://HOST:PORT".to_string();
    if rest.is_empty() || rest.starts_with('/') {
        return Err(no_host());
    }
    let uri: http::Uri = s.parse().map_err(|e| format!("not a valid URL ({e})"))?;
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(s.to_string()),
        _ => Err(no_host()),
    }
}

/// `--as-of TIME`: an RFC 3339 time (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00+02:00`),
/// not in the future.
pub(super) fn parse_as_of(s: &str) -> Result<std::time::SystemTime, String> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let t = DateTime::from_str(s.trim(), Format::DateTimeWithOffset)
        .ok()
        .and_then(|t| std::time::SystemTime::try_from(t).ok())
        .ok_or_else(|| {
            "not an RFC 3339 time: use e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00"
                .to_string()
        })?;
    if t > std::time::SystemTime::now() {
        return Err("the time is in the future: a mount of the past needs a past time".into());
    }
    Ok(t)
}

pub(super) fn parse_octal(s: &str) -> Result<u16, StartupError> {
    u16::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| StartupError::NotOctalMode { value: s.into() })
}

/// Splits `BUCKET` (and `--prefix`) into a bucket location.
pub fn parse_location(bucket: &str, prefix: Option<&str>) -> Result<BucketLocation, StartupError> {
    let rest = strip_scheme(bucket)?;
    let (name, inline_prefix) = match rest.split_once('/') {
        Some((n, p)) => (n, p),
        None => (rest, ""),
    };
    if name.is_empty() {
        return Err(StartupError::NoBucketName {
            bucket: bucket.into(),
        });
    }
    if let Err(reason) = check_bucket_name(name) {
        return Err(StartupError::InvalidBucketName {
            name: name.into(),
            reason,
        });
    }
    if !inline_prefix.is_empty() && prefix.is_some() {
        return Err(StartupError::PrefixTwice);
    }
    let mut p = prefix
        .unwrap_or(inline_prefix)
        .trim_start_matches('/')
        .to_string();
    if !p.is_empty() && !p.ends_with('/') {
        p.push('/');
    }
    Ok(BucketLocation {
        bucket: name.to_string(),
        prefix: p,
    })
}

/// `BUCKET` without its `s3://`; anything else with a `:` is a mistyped URI.
fn strip_scheme(bucket: &str) -> Result<&str, StartupError> {
    if let Some(rest) = bucket
        .get(..5)
        .filter(|s| s.eq_ignore_ascii_case("s3://"))
        .map(|_| &bucket[5..])
    {
        return Ok(rest);
    }
    let Some((scheme, rest)) = bucket.split_once(':') else {
        return Ok(bucket);
    };
    let reason = if scheme.eq_ignore_ascii_case("s3") {
        format!("write s3://{}", rest.trim_start_matches('/'))
    } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        "give the bucket's name here and the server with --endpoint-url".to_string()
    } else {
        "':' cannot appear in a bucket name".to_string()
    };
    Err(StartupError::InvalidBucketUri {
        bucket: bucket.into(),
        reason,
    })
}

/// S3's naming rules for buckets: 3 to 63 characters, lowercase letters, digits, dots and
/// hyphens, a letter or digit at each end, no `..`, not an IP address. Returns why not.
pub(crate) fn check_bucket_name(name: &str) -> Result<(), String> {
    const RULE: &str = "bucket names are 3 to 63 lowercase letters, digits, dots and hyphens";
    if let Some(c) = name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'))
    {
        let what = match c {
            'A'..='Z' => format!("uppercase letters ('{c}') are not allowed"),
            _ => format!("'{c}' is not allowed"),
        };
        return Err(format!("{what}; {RULE}"));
    }
    if !(3..=63).contains(&name.len()) {
        return Err(format!("it has {} characters; {RULE}", name.len()));
    }
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ends_ok(name.chars().next()) || !ends_ok(name.chars().last()) {
        return Err("it must begin and end with a letter or a digit".into());
    }
    if name.contains("..") {
        return Err("it must not contain two dots in a row".into());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it must not look like an IP address".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_forms() {
        let l = parse_location("s3://bkt/p/q", None).unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("bkt", "p/q/"));
        let l = parse_location("S3://bkt", None).unwrap();
        assert_eq!(l.bucket, "bkt");
        let l = parse_location("bkt", Some("x")).unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("bkt", "x/"));
        let l = parse_location("bkt/", None).unwrap();
        assert_eq!(l.prefix, "");
        assert!(parse_location("s3://", None).is_err());
        assert!(parse_location("bkt/p", Some("q")).is_err());
        let l = parse_location("my.bucket-1--usw2-az1--x-s3", None).unwrap();
        assert_eq!(l.bucket, "my.bucket-1--usw2-az1--x-s3");
    }

    #[test]
    fn mistyped_buckets_say_why() {
        let err = |b: &str| parse_location(b, None).unwrap_err().to_string();
        assert_eq!(
            err("s3:/photos"),
            "'s3:/photos' is not a bucket name or an s3:// URI: write s3://photos"
        );
        assert!(err("s3:photos/x").ends_with("write s3://photos/x"));
        assert!(err("https://photos.s3.amazonaws.com").contains("--endpoint-url"));
        assert_eq!(
            err("Photos_Bad"),
            "'Photos_Bad' is not a valid bucket name: uppercase letters ('P') are not \
             allowed; bucket names are 3 to 63 lowercase letters, digits, dots and hyphens"
        );
        assert!(err("photos_bad").contains("'_' is not allowed"));
        assert!(err("ab").contains("it has 2 characters"));
        assert!(err(&"a".repeat(64)).contains("it has 64 characters"));
        assert!(err("-photos").contains("begin and end"));
        assert!(err("pho..tos").contains("two dots"));
        assert!(err("192.168.1.1").contains("IP address"));
    }
}
