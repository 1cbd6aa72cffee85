//! The Prometheus text exposition (format 0.0.4) of a [`Snapshot`], written by the
//! `prometheus-client` crate's encoder.
//!
//! Design note: the counters live in our own atomics (see `registry`), so they are handed to
//! the encoder as a [`Collector`] over one snapshot, built per scrape: the crate takes care of
//! names (`_total` for counters), label escaping, number formatting and histogram layout.
//! Prometheus gets every 4th bound of the fine latency histogram (powers of two from 100 µs)
//! as a normal histogram, plus lifetime quantiles as gauges for people who read the endpoint
//! by eye. Series of error kinds that never happened are left out.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::data::tier::TierStats;

use super::registry::{bound_us, HistSnapshot, OpSnapshot, Snapshot, BOUNDS, PER_DOUBLING};

/// The `Content-Type` of what [`render_prometheus`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Renders `snap` in the Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(snap: &Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snap.clone())));
    let mut out = String::with_capacity(16 << 10);
    // Writing into a String cannot fail, and the collector itself never fails.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// Every metric of one snapshot, for the encoder.
#[derive(Debug)]
struct SnapshotCollector(Snapshot);

type Field = fn(&OpSnapshot) -> u64;

/// The per-operation counters: (name without `_total`, help, value).
const OP_COUNTERS: [(&str, &str, Field); 4] = [
    (
        "s3mount_requests",
        "S3 requests completed (successful or not), by operation.",
        |o| o.requests,
    ),
    (
        "s3mount_request_retries",
        "Extra attempts the SDK made after a retryable failure, by operation.",
        |o| o.retries,
    ),
    (
        "s3mount_received_bytes",
        "Body bytes received from S3, by operation.",
        |o| o.bytes_in,
    ),
    (
        "s3mount_sent_bytes",
        "Body bytes sent to S3, by operation.",
        |o| o.bytes_out,
    ),
];

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let snap = &self.0;
        let mut m = encoder.encode_descriptor(
            "s3mount_build_info",
            "s3mount version.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1i64)
            .encode(m.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;
        let m = encoder.encode_descriptor(
            "s3mount_uptime_seconds",
            "Seconds since the mount started.",
            None,
            MetricType::Gauge,
        )?;
        // Milliseconds are precise enough, and keep the number short.
        ConstGauge::new((snap.uptime.as_secs_f64() * 1e3).round() / 1e3).encode(m)?;

        for (name, help, field) in OP_COUNTERS {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for o in &snap.ops {
                ConstCounter::new(field(o))
                    .encode(m.encode_family(&[("operation", o.op.name())])?)?;
            }
        }

        let mut m = encoder.encode_descriptor(
            "s3mount_request_errors",
            "S3 requests that failed, by operation and kind (not_found is normal for lookups \
             of names that do not exist).",
            None,
            MetricType::Counter,
        )?;
        for o in &snap.ops {
            for (&label, &n) in snap.error_labels.iter().zip(&o.errors) {
                if n > 0 {
                    let labels = [("operation", o.op.name()), ("error", label)];
                    ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                }
            }
        }

        let mut m = encoder.encode_descriptor(
            "s3mount_requests_in_flight",
            "S3 requests sent and not yet answered.",
            None,
            MetricType::Gauge,
        )?;
        for o in &snap.ops {
            ConstGauge::new(o.in_flight.max(0))
                .encode(m.encode_family(&[("operation", o.op.name())])?)?;
        }

        self.encode_latency(&mut encoder)?;

        if let Some((hits, misses)) = snap.cache {
            let m = encoder.encode_descriptor(
                "s3mount_block_cache_hits",
                "Block reads served from the memory cache.",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(hits).encode(m)?;
            let m = encoder.encode_descriptor(
                "s3mount_block_cache_misses",
                "Block reads that had to wait for S3.",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(misses).encode(m)?;
        }
        if let Some(n) = snap.inodes {
            let m = encoder.encode_descriptor(
                "s3mount_inodes",
                "Inodes in the table: those the kernel holds, and what listings taught.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(n as i64).encode(m)?;
        }
        self.encode_tiers(&mut encoder)
    }
}

type TierField = fn(&TierStats) -> u64;

/// The per-tier counters: (name without `_total`, help, value).
const TIER_COUNTERS: [(&str, &str, TierField); 7] = [
    (
        "s3mount_tier_hits",
        "Blocks missing from memory served by a block tier, by tier.",
        |t| t.hits,
    ),
    (
        "s3mount_tier_misses",
        "Blocks a tier was asked for and did not serve (absent or dropped), by tier.",
        |t| t.misses,
    ),
    (
        "s3mount_tier_read_bytes",
        "Bytes served by a tier, by tier.",
        |t| t.bytes_read,
    ),
    (
        "s3mount_tier_written_bytes",
        "Bytes stored in a tier, by tier.",
        |t| t.bytes_written,
    ),
    (
        "s3mount_tier_evictions",
        "Blocks removed from a tier to stay within its bound, by tier.",
        |t| t.evictions,
    ),
    (
        "s3mount_tier_checksum_failures",
        "Blocks a tier dropped as damaged (checksum, length), by tier.",
        |t| t.checksum_failures,
    ),
    (
        "s3mount_tier_skipped",
        "Blocks not stored in a tier (queue full, disk nearly full, write error), by tier.",
        |t| t.skipped,
    ),
];

impl SnapshotCollector {
    /// The counters of every block tier, and the bytes each holds.
    fn encode_tiers(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let tiers = &self.0.tiers;
        if tiers.is_empty() {
            return Ok(());
        }
        for (name, help, field) in TIER_COUNTERS {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (tier, stats) in tiers {
                ConstCounter::new(field(stats)).encode(m.encode_family(&[("tier", *tier)])?)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "s3mount_tier_held_bytes",
            "Bytes a tier holds now, by tier.",
            None,
            MetricType::Gauge,
        )?;
        for (tier, stats) in tiers {
            ConstGauge::new(stats.bytes_held as i64)
                .encode(m.encode_family(&[("tier", *tier)])?)?;
        }
        Ok(())
    }
}

impl SnapshotCollector {
    /// The latency histogram and quantile gauges of every operation.
    fn encode_latency(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let snap = &self.0;
        let mut m = encoder.encode_descriptor(
            "s3mount_request_duration_seconds",
            "Time from sending an S3 request to its response headers (retries included), by \
             operation.",
            None,
            MetricType::Histogram,
        )?;
        for o in &snap.ops {
            let buckets = coarse_buckets(&o.latency);
            m.encode_family(&[("operation", o.op.name())])?
                .encode_histogram::<NoLabelSet>(
                    o.latency.sum().as_secs_f64(),
                    o.latency.count(),
                    &buckets,
                    None,
                )?;
        }

        let mut m = encoder.encode_descriptor(
            "s3mount_request_duration_quantile_seconds",
            "Latency percentiles since the mount started, estimated from the histogram, by \
             operation.",
            None,
            MetricType::Gauge,
        )?;
        for o in &snap.ops {
            for (q, label) in [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")] {
                if let Some(v) = o.latency.quantile(q) {
                    let labels = [("operation", o.op.name()), ("quantile", label)];
                    ConstGauge::new(v.as_secs_f64()).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// The histogram at every 4th fine bound (100 µs · 2^k, in seconds), each with the samples
/// since the previous one (not cumulative: the encoder adds them up). Samples above the last
/// bound only count in `+Inf`, which the encoder writes from the total count.
fn coarse_buckets(h: &HistSnapshot) -> Vec<(f64, u64)> {
    let step = PER_DOUBLING as usize;
    let mut out = Vec::with_capacity(BOUNDS / step + 1);
    let mut pending = 0u64;
    for (i, n) in h.buckets.iter().enumerate().take(BOUNDS) {
        pending += n;
        if i % step == 0 {
            // bound_us(i) is 100 · 2^(i/4) exactly for these i; divide once so that the
            // bound prints as the short decimal it is (0.0016, not 0.0016000000000000001).
            debug_assert_eq!(bound_us(i), 100.0 * (1u64 << (i / step)) as f64);
            out.push(((100u64 << (i / step)) as f64 / 1e6, pending));
            pending = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::metrics::{Metrics, Op};

    const LABELS: [&str; 3] = ["not_found", "throttled", "other"];

    fn sample_text() -> String {
        let m = Metrics::new(&LABELS);
        m.set_cache_stats(|| Some((7, 3)));
        m.start(Op::GetObject);
        m.finish(Op::GetObject, Duration::from_millis(3), 2, None);
        m.add_bytes_in(Op::GetObject, 1234);
        m.start(Op::HeadObject);
        m.finish(Op::HeadObject, Duration::from_millis(1), 0, Some(0));
        m.start(Op::PutObject);
        m.finish(Op::PutObject, Duration::from_secs(500), 0, Some(1));
        m.start(Op::UploadPart);
        render_prometheus(&m.snapshot())
    }

    #[test]
    fn renders_the_tier_counters_and_logs_a_line_per_tier() {
        let m = Metrics::new(&LABELS);
        let stats = |hits| TierStats {
            hits,
            misses: 2,
            bytes_read: 3 << 20,
            evictions: 4,
            checksum_failures: 1,
            bytes_held: 5 << 20,
            ..TierStats::default()
        };
        let before = {
            m.set_tier_stats(move || vec![("disk", stats(10))]);
            m.snapshot()
        };
        m.set_tier_stats(move || vec![("disk", stats(25))]);
        let text = render_prometheus(&m.snapshot());
        assert!(
            text.contains("s3mount_tier_hits_total{tier=\"disk\"} 25\n"),
            "{text}"
        );
        assert!(text.contains("s3mount_tier_evictions_total{tier=\"disk\"} 4\n"));
        assert!(text.contains("s3mount_tier_checksum_failures_total{tier=\"disk\"} 1\n"));
        assert!(text.contains("s3mount_tier_held_bytes{tier=\"disk\"} 5242880\n"));
        let lines = crate::metrics::summary_lines(&m.snapshot().since(&before));
        assert!(
            lines[1].starts_with("metrics: disk cache 15 hits, 0 misses, 0 B read"),
            "{lines:?}"
        );
        assert!(lines[1].ends_with(", 5.0 MiB held"), "{lines:?}");
        let bare = render_prometheus(&Metrics::new(&LABELS).snapshot());
        assert!(!bare.contains("s3mount_tier_"), "no tier, no series");
    }

    #[test]
    fn renders_prometheus_text() {
        let text = sample_text();
        assert!(text.contains("# TYPE s3mount_requests_total counter\n"));
        assert!(text.contains("s3mount_requests_total{operation=\"GetObject\"} 1\n"));
        assert!(text.contains("s3mount_request_retries_total{operation=\"GetObject\"} 2\n"));
        assert!(text.contains("s3mount_received_bytes_total{operation=\"GetObject\"} 1234\n"));
        assert!(text.contains(
            "s3mount_request_errors_total{operation=\"HeadObject\",error=\"not_found\"} 1\n"
        ));
        assert!(text.contains(
            "s3mount_request_errors_total{operation=\"PutObject\",error=\"throttled\"} 1\n"
        ));
        assert!(
            !text.contains("error=\"other\""),
            "kinds that never happened"
        );
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"GetObject\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.0016\"} 0\n"
        ));
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.0032\"} 1\n"
        ));
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"PutObject\",le=\"104.8576\"} 0\n"
        ));
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"PutObject\",le=\"+Inf\"} 1\n"
        ));
        assert!(
            text.contains("s3mount_request_duration_seconds_count{operation=\"GetObject\"} 1\n")
        );
        assert!(text.contains(
            "s3mount_request_duration_quantile_seconds{operation=\"GetObject\",quantile=\"0.99\"}"
        ));
        assert!(text.contains("s3mount_requests_in_flight{operation=\"UploadPart\"} 1\n"));
        assert!(text.contains("s3mount_block_cache_hits_total 7\n"));
        assert!(text.contains("s3mount_block_cache_misses_total 3\n"));
        assert!(text.contains(&format!(
            "s3mount_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }

    /// Checks `text` against the grammar of the text format 0.0.4: every family has one HELP
    /// and one TYPE line before its samples, every sample belongs to the family declared last
    /// (with `_bucket`/`_sum`/`_count` for histograms), names and labels are well formed,
    /// values are numbers, and histogram buckets are cumulative and end with `+Inf` = count.
    /// Returns the samples by series.
    fn valid_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    fn labels_of(s: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let (name, after) = rest.split_once("=\"").expect("label=\"value\"");
            assert!(valid_name(name), "label name {name:?}");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().expect("closing quote") {
                    (_, '\\') => match chars.next().expect("escape").1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => panic!("bad escape \\{c}"),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            out.push((name.to_string(), value));
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        out
    }

    fn sample_value(line: &str, value: &str) -> f64 {
        match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        }
    }

    fn parse_exposition(text: &str) -> HashMap<String, f64> {
        assert!(text.ends_with('\n'));
        let mut samples = HashMap::new();
        let mut declared: HashMap<String, String> = HashMap::new();
        let mut current: Option<(String, String)> = None; // (family, type)
        let mut help_for: Option<String> = None;
        let mut cumulative: HashMap<String, f64> = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').expect("HELP name text");
                assert!(valid_name(name), "{line}");
                help_for = Some(name.to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert_eq!(help_for.take().as_deref(), Some(name), "HELP before TYPE");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                assert!(
                    declared.insert(name.into(), kind.into()).is_none(),
                    "{name} declared twice"
                );
                current = Some((name.to_string(), kind.to_string()));
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value = sample_value(line, value);
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels_of(rest.strip_suffix('}').expect("}"))),
                None => (series, Vec::new()),
            };
            assert!(valid_name(name), "{line}");
            let (family, kind) = current.as_ref().expect("a sample before any TYPE");
            let suffix = name
                .strip_prefix(family.as_str())
                .expect("sample of its family");
            match kind.as_str() {
                "histogram" => {
                    assert!(["_bucket", "_sum", "_count"].contains(&suffix), "{line}")
                }
                _ => assert_eq!(suffix, "", "{line}"),
            }
            if suffix == "_bucket" {
                let le = &labels.last().expect("le label").1;
                let others: Vec<_> = labels[..labels.len() - 1].to_vec();
                let key = format!("{name}{others:?}");
                let previous = cumulative.insert(key.clone(), value).unwrap_or(0.0);
                assert!(value >= previous, "buckets are cumulative: {line}");
                if le == "+Inf" {
                    cumulative.remove(&key);
                } else {
                    le.parse::<f64>().expect("numeric le");
                }
            }
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "duplicate series {series}"
            );
        }
        assert!(
            cumulative.is_empty(),
            "a histogram without +Inf: {cumulative:?}"
        );
        samples
    }

    #[test]
    fn output_is_valid_exposition_text() {
        let samples = parse_exposition(&sample_text());
        for op in Op::ALL {
            let name = op.name();
            let count =
                samples[&format!("s3mount_request_duration_seconds_count{{operation=\"{name}\"}}")];
            let inf = samples[&format!(
                "s3mount_request_duration_seconds_bucket{{operation=\"{name}\",le=\"+Inf\"}}"
            )];
            assert_eq!(count, inf, "{name}");
            assert_eq!(
                samples[&format!("s3mount_requests_total{{operation=\"{name}\"}}")],
                count,
                "{name}"
            );
        }
        // The checker itself rejects what is not exposition text.
        for bad in [
            "s3mount_x 1\n",
            "# HELP a x\n# TYPE a counter\na{b=\"1\"} one\n",
            "# HELP a x\n# TYPE a counter\nb 1\n",
            "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n",
        ] {
            let parsed = std::panic::catch_unwind(|| parse_exposition(bad));
            assert!(parsed.is_err(), "accepted {bad:?}");
        }
        // An empty registry is valid too.
        let empty = parse_exposition(&render_prometheus(&Metrics::new(&[]).snapshot()));
        assert_eq!(
            empty["s3mount_requests_total{operation=\"GetObject\"}"],
            0.0
        );
        assert!(!empty.keys().any(|k| k.contains("block_cache")));
    }
}
