//! The `--log-metrics[=SECONDS]` log lines: a summary of each interval (requests, bytes,
//! errors, retries and latency percentiles per S3 operation, block-cache hits and misses).
//!
//! Design note: the periodic task only compares two snapshots, so it costs nothing between
//! ticks; it runs until its shutdown token is cancelled (the mount's teardown does that, then
//! logs the lifetime totals itself).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::registry::{Metrics, Snapshot};

/// Target of the summary lines.
pub const LOG_TARGET: &str = "s3mount::metrics";

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.1}ms", d.as_secs_f64() * 1e3),
        None => "-".into(),
    }
}

/// The lines `--log-metrics` logs for one interval: a summary, then one line per operation
/// that ran.
pub fn summary_lines(delta: &Snapshot) -> Vec<String> {
    let requests: u64 = delta.ops.iter().map(|o| o.requests).sum();
    let errors: u64 = delta.ops.iter().map(|o| o.error_total()).sum();
    let retries: u64 = delta.ops.iter().map(|o| o.retries).sum();
    let bytes_in: u64 = delta.ops.iter().map(|o| o.bytes_in).sum();
    let bytes_out: u64 = delta.ops.iter().map(|o| o.bytes_out).sum();
    let cache = match delta.cache {
        Some((h, m)) if h + m > 0 => format!(
            "; block cache {h} hits, {m} misses ({:.0}% hits)",
            100.0 * h as f64 / (h + m) as f64
        ),
        Some((h, m)) => format!("; block cache {h} hits, {m} misses"),
        None => String::new(),
    };
    let mut lines = vec![format!(
        "metrics for the last {:.0}s: {requests} S3 requests, {errors} errors, {retries} \
         retries, {} received, {} sent{cache}",
        delta.uptime.as_secs_f64(),
        human_bytes(bytes_in),
        human_bytes(bytes_out)
    )];
    for (name, t) in &delta.tiers {
        lines.push(format!(
            "metrics: {name} cache {} hits, {} misses, {} read, {} written, {} evictions, {} \
             checksum failures, {} skipped, {} held",
            t.hits,
            t.misses,
            human_bytes(t.bytes_read),
            human_bytes(t.bytes_written),
            t.evictions,
            t.checksum_failures,
            t.skipped,
            human_bytes(t.bytes_held)
        ));
    }
    for o in delta.ops.iter().filter(|o| o.requests > 0) {
        let mut line = format!(
            "metrics: {} {} requests, p50 {} p90 {} p99 {}",
            o.op.name(),
            o.requests,
            ms(o.latency.quantile(0.5)),
            ms(o.latency.quantile(0.9)),
            ms(o.latency.quantile(0.99)),
        );
        if o.bytes_in > 0 {
            let _ = write!(line, ", {} received", human_bytes(o.bytes_in));
        }
        if o.bytes_out > 0 {
            let _ = write!(line, ", {} sent", human_bytes(o.bytes_out));
        }
        if o.error_total() > 0 {
            let kinds: Vec<String> = delta
                .error_labels
                .iter()
                .zip(o.errors.iter().copied())
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            let _ = write!(line, ", errors {}", kinds.join(" "));
        }
        if o.retries > 0 {
            let _ = write!(line, ", {} retries", o.retries);
        }
        lines.push(line);
    }
    lines
}

/// Logs a summary every `interval` until `shutdown` is cancelled.
pub async fn log_periodically(
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut last = metrics.snapshot();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = metrics.snapshot();
        for line in summary_lines(&now.since(&last)) {
            info!(target: LOG_TARGET, "{line}");
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Op;

    #[test]
    fn summarises_an_interval() {
        let m = Metrics::new(&["not_found", "throttled"]);
        let before = m.snapshot();
        m.start(Op::GetObject);
        m.finish(Op::GetObject, Duration::from_millis(5), 0, None);
        m.add_bytes_in(Op::GetObject, 2 << 20);
        m.start(Op::HeadObject);
        m.finish(Op::HeadObject, Duration::from_millis(5), 3, Some(1));
        let lines = summary_lines(&m.snapshot().since(&before));
        assert!(
            lines[0].contains("2 S3 requests, 1 errors, 3 retries"),
            "{lines:?}"
        );
        assert!(lines[0].contains("2.0 MiB received"), "{lines:?}");
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("metrics: HeadObject 1 requests"),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with(", errors throttled=1, 3 retries"),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("metrics: GetObject 1 requests"),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn stops_when_told() {
        let metrics = Arc::new(Metrics::new(&[]));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(log_periodically(
            metrics,
            Duration::from_millis(20),
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(70)).await;
        assert!(!task.is_finished(), "runs until told to stop");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the task ends once cancelled")
            .expect("the task does not panic");
    }
}
