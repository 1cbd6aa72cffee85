//! Metrics: what the mount asked of S3 and how it went, kept in atomics and shown two ways.
//!
//! * `--log-metrics[=SECONDS]` logs a summary of each interval (requests, bytes, errors,
//!   retries and latency percentiles per S3 operation, block-cache hits and misses).
//! * `--metrics-addr 127.0.0.1:PORT` serves the totals in the Prometheus text format
//!   (`GET /metrics`) from a tiny HTTP/1.0 responder on the tokio runtime.
//!
//! Design note: recording is a handful of relaxed atomic adds per S3 request, so it is always
//! on ([`crate::storage::metered::MeteredStore`] feeds it). Latencies go into a fixed
//! log-scale histogram (4 buckets per doubling, 100 µs to ~105 s), which gives percentiles
//! within ~10% without storing samples; Prometheus gets every 4th bucket boundary (powers of
//! two) as a normal histogram, plus lifetime quantiles as gauges for people who read the
//! endpoint by eye. The block-cache counters live in the cache itself and are read through a
//! callback at render time.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

use crate::storage::StoreError;

/// The S3 operations s3mount sends, as label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    ListObjectsV2,
    HeadObject,
    GetObject,
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    CopyObject,
    DeleteObject,
    GetObjectTagging,
    PutObjectTagging,
}

impl Op {
    /// Every operation, in the order metrics are shown.
    pub const ALL: [Op; 13] = [
        Op::ListObjectsV2,
        Op::HeadObject,
        Op::GetObject,
        Op::PutObject,
        Op::CreateMultipartUpload,
        Op::UploadPart,
        Op::UploadPartCopy,
        Op::CompleteMultipartUpload,
        Op::AbortMultipartUpload,
        Op::CopyObject,
        Op::DeleteObject,
        Op::GetObjectTagging,
        Op::PutObjectTagging,
    ];

    /// The S3 API name.
    pub fn name(self) -> &'static str {
        match self {
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::HeadObject => "HeadObject",
            Op::GetObject => "GetObject",
            Op::PutObject => "PutObject",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::CopyObject => "CopyObject",
            Op::DeleteObject => "DeleteObject",
            Op::GetObjectTagging => "GetObjectTagging",
            Op::PutObjectTagging => "PutObjectTagging",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The kinds of failure counted separately (label `error`).
pub const ERROR_KINDS: [&str; 13] = [
    "not_found",
    "no_such_bucket",
    "precondition_failed",
    "access_denied",
    "bad_credentials",
    "no_credentials",
    "connect",
    "timeout",
    "throttled",
    "invalid",
    "not_implemented",
    "other",
    "server",
];

/// The `error` label of a store error.
pub fn error_kind(err: &StoreError) -> &'static str {
    ERROR_KINDS[error_index(err)]
}

fn error_index(err: &StoreError) -> usize {
    match err {
        StoreError::NotFound => 0,
        StoreError::NoSuchBucket => 1,
        StoreError::PreconditionFailed => 2,
        StoreError::AccessDenied(_) => 3,
        StoreError::BadCredentials(_) => 4,
        StoreError::NoCredentials(_) => 5,
        StoreError::Connect(_) => 6,
        StoreError::Timeout(_) => 7,
        StoreError::Throttled(_) => 8,
        StoreError::Invalid(_) => 9,
        StoreError::NotImplemented(_) => 10,
        StoreError::Other(_) => 11,
        StoreError::Server(_) => 12,
    }
}

// ----- latency histogram -------------------------------------------------------------------

/// Smallest bucket bound, in microseconds.
const BASE_US: f64 = 100.0;
/// Buckets per doubling.
const PER_DOUBLING: i32 = 4;
/// Number of finite bounds: 100 µs · 2^(i/4) for i in 0..=80, so up to ~105 s.
const BOUNDS: usize = 81;

/// Upper bound of fine bucket `i`, in microseconds.
fn bound_us(i: usize) -> f64 {
    BASE_US * 2f64.powf(i as f64 / PER_DOUBLING as f64)
}

/// The fine bucket a latency falls into (`BOUNDS` = above the last bound).
fn bucket_of(d: Duration) -> usize {
    let us = d.as_secs_f64() * 1e6;
    if us <= BASE_US {
        return 0;
    }
    let i = ((us / BASE_US).log2() * PER_DOUBLING as f64).ceil() as usize;
    // Guard against rounding at the exact bounds.
    let i = if i > 0 && us <= bound_us(i - 1) {
        i - 1
    } else {
        i
    };
    i.min(BOUNDS)
}

struct Histogram {
    buckets: [AtomicU64; BOUNDS + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }

    fn record(&self, d: Duration) {
        self.buckets[bucket_of(d)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            d.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    fn snapshot(&self) -> HistSnapshot {
        HistSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// A copy of a histogram at one moment.
#[derive(Clone, Debug)]
pub struct HistSnapshot {
    buckets: [u64; BOUNDS + 1],
    sum_us: u64,
}

impl HistSnapshot {
    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Sum of all samples.
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_us)
    }

    /// The samples recorded since `earlier`.
    pub fn since(&self, earlier: &HistSnapshot) -> HistSnapshot {
        HistSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(earlier.buckets[i])),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    /// Estimated `q` quantile (0..=1), interpolating inside the bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * count as f64).max(1.0);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let lower = if i == 0 { 0.0 } else { bound_us(i - 1) };
                if i == BOUNDS {
                    return Some(Duration::from_secs_f64(lower / 1e6));
                }
                let upper = bound_us(i);
                let frac = (rank - seen as f64) / n as f64;
                return Some(Duration::from_secs_f64(
                    (lower + (upper - lower) * frac) / 1e6,
                ));
            }
            seen += n;
        }
        None
    }
}

// ----- registry ----------------------------------------------------------------------------

struct OpMetrics {
    requests: AtomicU64,
    errors: [AtomicU64; ERROR_KINDS.len()],
    retries: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    in_flight: AtomicI64,
    latency: Histogram,
}

impl OpMetrics {
    fn new() -> Self {
        OpMetrics {
            requests: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            retries: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            latency: Histogram::new(),
        }
    }
}

type CacheStatsFn = Box<dyn Fn() -> Option<(u64, u64)> + Send + Sync>;

/// All counters of one mount.
pub struct Metrics {
    ops: [OpMetrics; Op::ALL.len()],
    cache_stats: Mutex<Option<CacheStatsFn>>,
    started: Instant,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Totals for one operation at one moment.
#[derive(Clone, Debug)]
pub struct OpSnapshot {
    pub op: Op,
    pub requests: u64,
    pub errors: [u64; ERROR_KINDS.len()],
    pub retries: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub in_flight: i64,
    pub latency: HistSnapshot,
}

impl OpSnapshot {
    /// Failed requests, all kinds together.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    fn since(&self, earlier: &OpSnapshot) -> OpSnapshot {
        OpSnapshot {
            op: self.op,
            requests: self.requests.saturating_sub(earlier.requests),
            errors: std::array::from_fn(|i| self.errors[i].saturating_sub(earlier.errors[i])),
            retries: self.retries.saturating_sub(earlier.retries),
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
            in_flight: self.in_flight,
            latency: self.latency.since(&earlier.latency),
        }
    }
}

/// Every counter at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub ops: Vec<OpSnapshot>,
    /// Block-cache (hits, misses), when a cache is attached.
    pub cache: Option<(u64, u64)>,
    pub uptime: Duration,
}

impl Snapshot {
    /// The counts that happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            ops: self
                .ops
                .iter()
                .zip(&earlier.ops)
                .map(|(now, then)| now.since(then))
                .collect(),
            cache: match (self.cache, earlier.cache) {
                (Some((h, m)), Some((h0, m0))) => {
                    Some((h.saturating_sub(h0), m.saturating_sub(m0)))
                }
                (c, _) => c,
            },
            uptime: self.uptime.saturating_sub(earlier.uptime),
        }
    }

    /// The snapshot of one operation.
    pub fn op(&self, op: Op) -> &OpSnapshot {
        &self.ops[op.index()]
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            ops: std::array::from_fn(|_| OpMetrics::new()),
            cache_stats: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// Where to read block-cache (hits, misses) from; `None` from the callback means the
    /// cache is gone (the filesystem is shutting down).
    pub fn set_cache_stats(&self, f: impl Fn() -> Option<(u64, u64)> + Send + Sync + 'static) {
        *self.cache_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    /// A request is about to be sent.
    pub fn start(&self, op: Op) {
        self.ops[op.index()]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A request finished (its response headers arrived, or it failed): `latency` is the time
    /// since [`Metrics::start`], `retries` the attempts beyond the first.
    pub fn finish(&self, op: Op, latency: Duration, retries: u64, error: Option<&StoreError>) {
        let m = &self.ops[op.index()];
        m.in_flight.fetch_sub(1, Ordering::Relaxed);
        m.requests.fetch_add(1, Ordering::Relaxed);
        m.retries.fetch_add(retries, Ordering::Relaxed);
        m.latency.record(latency);
        if let Some(e) = error {
            m.errors[error_index(e)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Body bytes received from S3.
    pub fn add_bytes_in(&self, op: Op, n: u64) {
        self.ops[op.index()]
            .bytes_in
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Body bytes sent to S3.
    pub fn add_bytes_out(&self, op: Op, n: u64) {
        self.ops[op.index()]
            .bytes_out
            .fetch_add(n, Ordering::Relaxed);
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> Snapshot {
        let cache = self
            .cache_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|f| f());
        Snapshot {
            ops: Op::ALL
                .iter()
                .map(|&op| {
                    let m = &self.ops[op.index()];
                    OpSnapshot {
                        op,
                        requests: m.requests.load(Ordering::Relaxed),
                        errors: std::array::from_fn(|i| m.errors[i].load(Ordering::Relaxed)),
                        retries: m.retries.load(Ordering::Relaxed),
                        bytes_in: m.bytes_in.load(Ordering::Relaxed),
                        bytes_out: m.bytes_out.load(Ordering::Relaxed),
                        in_flight: m.in_flight.load(Ordering::Relaxed),
                        latency: m.latency.snapshot(),
                    }
                })
                .collect(),
            cache,
            uptime: self.started.elapsed(),
        }
    }
}

// ----- Prometheus text format --------------------------------------------------------------

fn secs(us: f64) -> String {
    // Shortest exact-enough representation: bounds are 100 µs · 2^k.
    let s = format!("{:.6}", us / 1e6);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Renders `snap` in the Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(snap: &Snapshot) -> String {
    let mut out = String::with_capacity(16 << 10);
    let w = &mut out;
    let _ = writeln!(
        w,
        "# HELP s3mount_build_info s3mount version.\n# TYPE s3mount_build_info gauge\n\
         s3mount_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        w,
        "# HELP s3mount_uptime_seconds Seconds since the mount started.\n\
         # TYPE s3mount_uptime_seconds gauge\ns3mount_uptime_seconds {:.3}",
        snap.uptime.as_secs_f64()
    );

    type Field = fn(&OpSnapshot) -> u64;
    let counters: [(&str, &str, Field); 4] = [
        (
            "s3mount_requests_total",
            "S3 requests completed (successful or not), by operation.",
            |o| o.requests,
        ),
        (
            "s3mount_request_retries_total",
            "Extra attempts the SDK made after a retryable failure, by operation.",
            |o| o.retries,
        ),
        (
            "s3mount_received_bytes_total",
            "Body bytes received from S3, by operation.",
            |o| o.bytes_in,
        ),
        (
            "s3mount_sent_bytes_total",
            "Body bytes sent to S3, by operation.",
            |o| o.bytes_out,
        ),
    ];
    for (name, help, field) in counters {
        let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} counter");
        for o in &snap.ops {
            let _ = writeln!(w, "{name}{{operation=\"{}\"}} {}", o.op.name(), field(o));
        }
    }

    let _ = writeln!(
        w,
        "# HELP s3mount_request_errors_total S3 requests that failed, by operation and kind \
         (not_found is normal for lookups of names that do not exist).\n\
         # TYPE s3mount_request_errors_total counter"
    );
    for o in &snap.ops {
        for (i, kind) in ERROR_KINDS.iter().enumerate() {
            if o.errors[i] > 0 {
                let _ = writeln!(
                    w,
                    "s3mount_request_errors_total{{operation=\"{}\",error=\"{kind}\"}} {}",
                    o.op.name(),
                    o.errors[i]
                );
            }
        }
    }

    let _ = writeln!(
        w,
        "# HELP s3mount_requests_in_flight S3 requests sent and not yet answered.\n\
         # TYPE s3mount_requests_in_flight gauge"
    );
    for o in &snap.ops {
        let _ = writeln!(
            w,
            "s3mount_requests_in_flight{{operation=\"{}\"}} {}",
            o.op.name(),
            o.in_flight.max(0)
        );
    }

    let _ = writeln!(
        w,
        "# HELP s3mount_request_duration_seconds Time from sending an S3 request to its \
         response headers (retries included), by operation.\n\
         # TYPE s3mount_request_duration_seconds histogram"
    );
    for o in &snap.ops {
        let name = o.op.name();
        let mut cumulative = 0u64;
        for (i, n) in o.latency.buckets.iter().enumerate().take(BOUNDS) {
            cumulative += n;
            if i % PER_DOUBLING as usize == 0 {
                let _ = writeln!(
                    w,
                    "s3mount_request_duration_seconds_bucket{{operation=\"{name}\",le=\"{}\"}} \
                     {cumulative}",
                    secs(bound_us(i))
                );
            }
        }
        let count = o.latency.count();
        let _ = writeln!(
            w,
            "s3mount_request_duration_seconds_bucket{{operation=\"{name}\",le=\"+Inf\"}} {count}\n\
             s3mount_request_duration_seconds_sum{{operation=\"{name}\"}} {:.6}\n\
             s3mount_request_duration_seconds_count{{operation=\"{name}\"}} {count}",
            o.latency.sum().as_secs_f64()
        );
    }

    let _ = writeln!(
        w,
        "# HELP s3mount_request_duration_quantile_seconds Latency percentiles since the mount \
         started, estimated from the histogram, by operation.\n\
         # TYPE s3mount_request_duration_quantile_seconds gauge"
    );
    for o in &snap.ops {
        for q in ["0.5", "0.9", "0.99"] {
            if let Some(v) = o.latency.quantile(q.parse().unwrap_or(0.5)) {
                let _ = writeln!(
                    w,
                    "s3mount_request_duration_quantile_seconds{{operation=\"{}\",quantile=\"{q}\"}} \
                     {:.6}",
                    o.op.name(),
                    v.as_secs_f64()
                );
            }
        }
    }

    if let Some((hits, misses)) = snap.cache {
        let _ = writeln!(
            w,
            "# HELP s3mount_block_cache_hits_total Block reads served from the memory cache.\n\
             # TYPE s3mount_block_cache_hits_total counter\n\
             s3mount_block_cache_hits_total {hits}\n\
             # HELP s3mount_block_cache_misses_total Block reads that had to wait for S3.\n\
             # TYPE s3mount_block_cache_misses_total counter\n\
             s3mount_block_cache_misses_total {misses}"
        );
    }
    out
}

// ----- log summary -------------------------------------------------------------------------

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
            let kinds: Vec<String> = ERROR_KINDS
                .iter()
                .zip(o.errors)
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

/// Logs a summary every `interval` until the runtime shuts down.
pub async fn log_periodically(metrics: Arc<Metrics>, interval: Duration) {
    let mut last = metrics.snapshot();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = metrics.snapshot();
        for line in summary_lines(&now.since(&last)) {
            info!(target: "s3mount::metrics", "{line}");
        }
        last = now;
    }
}

// ----- HTTP endpoint -----------------------------------------------------------------------

/// Checks a `--metrics-addr` and binds it. Non-loopback addresses are refused unless
/// `allow_remote`: the endpoint has no authentication, and object traffic patterns can be
/// sensitive.
pub fn bind(addr: SocketAddr, allow_remote: bool) -> Result<std::net::TcpListener, String> {
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "refusing to serve metrics on {addr}, which is not a loopback address: use \
             127.0.0.1:PORT, or pass --metrics-allow-remote to expose them to the network"
        ));
    }
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on --metrics-addr {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on --metrics-addr {addr}: {e}"))?;
    Ok(listener)
}

/// Serves `GET /metrics` (and `/`) on `listener` until the runtime shuts down. Must be
/// spawned on a tokio runtime.
pub async fn serve(listener: std::net::TcpListener, metrics: Arc<Metrics>) {
    let addr = listener.local_addr().ok();
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!("metrics endpoint disabled: {e}");
            return;
        }
    };
    info!(addr = ?addr, "serving Prometheus metrics at http://{}/metrics", addr.map(|a| a.to_string()).unwrap_or_default());
    // A handful of scrapers at most; more connections wait for a slot.
    let slots = Arc::new(tokio::sync::Semaphore::new(8));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                debug!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) =
                tokio::time::timeout(Duration::from_secs(10), answer(stream, &metrics)).await
            {
                debug!(%peer, "metrics endpoint: client too slow: {e}");
            }
        });
    }
}

async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 << 10 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics" | "/") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render_prometheus(&metrics.snapshot()),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: metrics are at /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD are supported\n".to_string(),
        ),
    };
    let mut response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_their_bounds() {
        assert_eq!(bucket_of(Duration::from_micros(50)), 0);
        assert_eq!(bucket_of(Duration::from_micros(100)), 0);
        assert_eq!(bucket_of(Duration::from_micros(101)), 1);
        assert_eq!(bucket_of(Duration::from_micros(200)), 4);
        assert_eq!(bucket_of(Duration::from_micros(201)), 5);
        assert_eq!(bucket_of(Duration::from_secs(1000)), BOUNDS);
        for i in 0..BOUNDS {
            let below = Duration::from_secs_f64(bound_us(i) * 0.999 / 1e6);
            let above = Duration::from_secs_f64(bound_us(i) * 1.001 / 1e6);
            assert_eq!(bucket_of(below), i, "below bound {i}");
            assert_eq!(bucket_of(above), i + 1, "above bound {i}");
        }
    }

    #[test]
    fn quantiles_are_close() {
        let h = Histogram::new();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        let p50 = s.quantile(0.5).unwrap().as_secs_f64() * 1e3;
        let p99 = s.quantile(0.99).unwrap().as_secs_f64() * 1e3;
        assert!((45.0..=56.0).contains(&p50), "p50 {p50}");
        assert!((90.0..=110.0).contains(&p99), "p99 {p99}");
        assert!(Histogram::new().snapshot().quantile(0.5).is_none());
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.set_cache_stats(|| Some((7, 3)));
        m.start(Op::GetObject);
        m.finish(Op::GetObject, Duration::from_millis(3), 2, None);
        m.add_bytes_in(Op::GetObject, 1234);
        m.start(Op::HeadObject);
        m.finish(
            Op::HeadObject,
            Duration::from_millis(1),
            0,
            Some(&StoreError::NotFound),
        );
        let text = render_prometheus(&m.snapshot());
        assert!(text.contains("s3mount_requests_total{operation=\"GetObject\"} 1\n"));
        assert!(text.contains("s3mount_request_retries_total{operation=\"GetObject\"} 2\n"));
        assert!(text.contains("s3mount_received_bytes_total{operation=\"GetObject\"} 1234\n"));
        assert!(text.contains(
            "s3mount_request_errors_total{operation=\"HeadObject\",error=\"not_found\"} 1\n"
        ));
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"GetObject\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.0016\"} 0\n"
        ));
        assert!(text.contains(
            "s3mount_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.0032\"} 1\n"
        ));
        assert!(text.contains("s3mount_block_cache_hits_total 7\n"));
        assert!(text.contains("s3mount_block_cache_misses_total 3\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad line {line:?}");
        }
    }

    #[test]
    fn summarises_an_interval() {
        let m = Metrics::new();
        let before = m.snapshot();
        m.start(Op::GetObject);
        m.finish(Op::GetObject, Duration::from_millis(5), 0, None);
        m.add_bytes_in(Op::GetObject, 2 << 20);
        let lines = summary_lines(&m.snapshot().since(&before));
        assert!(lines[0].contains("1 S3 requests"), "{lines:?}");
        assert!(lines[0].contains("2.0 MiB received"), "{lines:?}");
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].starts_with("metrics: GetObject 1 requests"),
            "{lines:?}"
        );
    }

    #[test]
    fn refuses_non_loopback_addresses() {
        let err = bind("0.0.0.0:0".parse().unwrap(), false).unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(bind("127.0.0.1:0".parse().unwrap(), false).is_ok());
    }
}
