//! The counters: per S3 operation, requests, errors by kind, retries, bytes, requests in
//! flight and a latency histogram, all in relaxed atomics.
//!
//! Design note: latencies go into a fixed log-scale histogram (4 buckets per doubling, 100 µs
//! to ~105 s), which gives percentiles within ~10% without storing samples. The error kinds
//! are not known here: the caller names them once, at construction, as a list of labels
//! (the storage layer's `ErrorKind::LABELS`), and reports each failure by its index in that
//! list, so this module depends on nothing of the storage layer.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::data::tier::TierStats;

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
    ListObjectVersions,
    RestoreObject,
    /// The bucket's configuration (GetBucketLocation, GetBucketVersioning, ...).
    GetBucketConfiguration,
}

impl Op {
    /// Every operation, in the order metrics are shown.
    pub const ALL: [Op; 16] = [
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
        Op::ListObjectVersions,
        Op::RestoreObject,
        Op::GetBucketConfiguration,
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
            Op::ListObjectVersions => "ListObjectVersions",
            Op::RestoreObject => "RestoreObject",
            Op::GetBucketConfiguration => "GetBucketConfiguration",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

// ----- latency histogram -------------------------------------------------------------------

/// Smallest bucket bound, in microseconds.
const BASE_US: f64 = 100.0;
/// Buckets per doubling.
pub(super) const PER_DOUBLING: i32 = 4;
/// Number of finite bounds: 100 µs · 2^(i/4) for i in 0..=80, so up to ~105 s.
pub(super) const BOUNDS: usize = 81;

/// Upper bound of fine bucket `i`, in microseconds.
pub(super) fn bound_us(i: usize) -> f64 {
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
    /// Samples per fine bucket; the last one is above the last bound.
    pub(super) buckets: [u64; BOUNDS + 1],
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
    /// One counter per error label.
    errors: Box<[AtomicU64]>,
    retries: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    in_flight: AtomicI64,
    latency: Histogram,
}

impl OpMetrics {
    fn new(error_kinds: usize) -> Self {
        OpMetrics {
            requests: AtomicU64::new(0),
            errors: (0..error_kinds).map(|_| AtomicU64::new(0)).collect(),
            retries: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            latency: Histogram::new(),
        }
    }
}

type CacheStatsFn = Box<dyn Fn() -> Option<(u64, u64)> + Send + Sync>;
type InodeCountFn = Box<dyn Fn() -> Option<u64> + Send + Sync>;
type TierStatsFn = Box<dyn Fn() -> Vec<(&'static str, TierStats)> + Send + Sync>;

/// All counters of one mount.
pub struct Metrics {
    ops: [OpMetrics; Op::ALL.len()],
    error_labels: &'static [&'static str],
    cache_stats: Mutex<Option<CacheStatsFn>>,
    tier_stats: Mutex<Option<TierStatsFn>>,
    inode_count: Mutex<Option<InodeCountFn>>,
    started: Instant,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Totals for one operation at one moment.
#[derive(Clone, Debug)]
pub struct OpSnapshot {
    pub op: Op,
    pub requests: u64,
    /// Failed requests per error kind, in the order of [`Snapshot::error_labels`].
    pub errors: Vec<u64>,
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
            errors: self
                .errors
                .iter()
                .zip(&earlier.errors)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
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
    /// The `error` label of each kind counted in [`OpSnapshot::errors`].
    pub error_labels: &'static [&'static str],
    /// Block-cache (hits, misses), when a cache is attached.
    pub cache: Option<(u64, u64)>,
    /// Counters of each block tier behind the memory cache (the disk cache), by name.
    pub tiers: Vec<(&'static str, TierStats)>,
    /// Inodes in the table now, when a filesystem is attached.
    pub inodes: Option<u64>,
    pub uptime: Duration,
}

/// What a tier did between two snapshots (`bytes_held` is the later value).
fn tier_since(now: &TierStats, then: &TierStats) -> TierStats {
    TierStats {
        hits: now.hits.saturating_sub(then.hits),
        misses: now.misses.saturating_sub(then.misses),
        bytes_read: now.bytes_read.saturating_sub(then.bytes_read),
        bytes_written: now.bytes_written.saturating_sub(then.bytes_written),
        evictions: now.evictions.saturating_sub(then.evictions),
        checksum_failures: now.checksum_failures.saturating_sub(then.checksum_failures),
        skipped: now.skipped.saturating_sub(then.skipped),
        bytes_held: now.bytes_held,
    }
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
            error_labels: self.error_labels,
            cache: match (self.cache, earlier.cache) {
                (Some((h, m)), Some((h0, m0))) => {
                    Some((h.saturating_sub(h0), m.saturating_sub(m0)))
                }
                (c, _) => c,
            },
            tiers: self
                .tiers
                .iter()
                .map(|(name, now)| {
                    let then = earlier.tiers.iter().find(|(n, _)| n == name);
                    (*name, then.map_or(*now, |(_, then)| tier_since(now, then)))
                })
                .collect(),
            inodes: self.inodes,
            uptime: self.uptime.saturating_sub(earlier.uptime),
        }
    }

    /// The snapshot of one operation.
    pub fn op(&self, op: Op) -> &OpSnapshot {
        &self.ops[op.index()]
    }
}

impl Metrics {
    /// Counters for a mount whose failures are of the kinds `error_labels` names (the
    /// `error` label values; [`Metrics::finish`] takes an index into this list).
    pub fn new(error_labels: &'static [&'static str]) -> Self {
        Metrics {
            ops: std::array::from_fn(|_| OpMetrics::new(error_labels.len())),
            error_labels,
            cache_stats: Mutex::new(None),
            tier_stats: Mutex::new(None),
            inode_count: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// Where to read block-cache (hits, misses) from; `None` from the callback means the
    /// cache is gone (the filesystem is shutting down).
    pub fn set_cache_stats(&self, f: impl Fn() -> Option<(u64, u64)> + Send + Sync + 'static) {
        *self.cache_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    /// Where to read the block tiers' counters from.
    pub fn set_tier_stats(
        &self,
        f: impl Fn() -> Vec<(&'static str, TierStats)> + Send + Sync + 'static,
    ) {
        *self.tier_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    /// Where to read the number of inodes in the table from (`None`: the filesystem is gone).
    pub fn set_inode_count(&self, f: impl Fn() -> Option<u64> + Send + Sync + 'static) {
        *self.inode_count.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    /// A request is about to be sent.
    pub fn start(&self, op: Op) {
        self.ops[op.index()]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A request finished (its response headers arrived, or it failed): `latency` is the time
    /// since [`Metrics::start`], `retries` the attempts beyond the first, `error` the index of
    /// the failure's kind in the labels given to [`Metrics::new`].
    pub fn finish(&self, op: Op, latency: Duration, retries: u64, error: Option<usize>) {
        let m = &self.ops[op.index()];
        m.in_flight.fetch_sub(1, Ordering::Relaxed);
        m.requests.fetch_add(1, Ordering::Relaxed);
        m.retries.fetch_add(retries, Ordering::Relaxed);
        m.latency.record(latency);
        if let Some(kind) = error {
            match m.errors.get(kind) {
                Some(counter) => counter.fetch_add(1, Ordering::Relaxed),
                None => {
                    debug_assert!(false, "error kind {kind} has no label");
                    0
                }
            };
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
        let tiers = self
            .tier_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|f| f())
            .unwrap_or_default();
        Snapshot {
            ops: Op::ALL
                .iter()
                .map(|&op| {
                    let m = &self.ops[op.index()];
                    OpSnapshot {
                        op,
                        requests: m.requests.load(Ordering::Relaxed),
                        errors: m.errors.iter().map(|n| n.load(Ordering::Relaxed)).collect(),
                        retries: m.retries.load(Ordering::Relaxed),
                        bytes_in: m.bytes_in.load(Ordering::Relaxed),
                        bytes_out: m.bytes_out.load(Ordering::Relaxed),
                        in_flight: m.in_flight.load(Ordering::Relaxed),
                        latency: m.latency.snapshot(),
                    }
                })
                .collect(),
            error_labels: self.error_labels,
            cache,
            tiers,
            inodes: self
                .inode_count
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .and_then(|f| f()),
            uptime: self.started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: [&str; 2] = ["not_found", "throttled"];

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
    fn counts_errors_by_the_given_labels() {
        let m = Metrics::new(&LABELS);
        let before = m.snapshot();
        m.start(Op::HeadObject);
        m.finish(Op::HeadObject, Duration::from_millis(1), 0, Some(0));
        m.start(Op::HeadObject);
        m.finish(Op::HeadObject, Duration::from_millis(1), 4, Some(1));
        m.start(Op::HeadObject);
        m.finish(Op::HeadObject, Duration::from_millis(1), 0, Some(1));
        let delta = m.snapshot().since(&before);
        assert_eq!(delta.error_labels, LABELS);
        let head = delta.op(Op::HeadObject);
        assert_eq!(head.errors, vec![1, 2]);
        assert_eq!(head.error_total(), 3);
        assert_eq!(head.requests, 3);
        assert_eq!(head.retries, 4);
        assert_eq!(head.in_flight, 0);
        assert_eq!(delta.op(Op::GetObject).error_total(), 0);
    }
}
