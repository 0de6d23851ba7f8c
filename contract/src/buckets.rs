//! The latency bucket scheme: per-request percentiles from per-bucket counts, on every backend.
//!
//! CloudWatch percentile statistics exist on AWS only; LocalStack and moto answer SampleCount,
//! Sum, Minimum and Maximum. So downstream also counts each latency into a bucket (one metric per
//! bucket, the bucket's lower bound in the `Bucket` dimension) and the collector reads the
//! SampleCount of each bucket to rebuild the distribution.
//!
//! Buckets are whole milliseconds `[lower, upper]` with `upper = max(lower, ⌊lower × 1.038⌋)` and the
//! next bucket starting at `upper + 1`. Hence:
//! - below 27 ms every bucket is one millisecond wide, so percentiles are exact to the
//!   millisecond there (the contract promises exactness below 10 ms);
//! - a bucket's representative value `2·lower·upper / (lower + upper)` is within
//!   `(upper − lower) / (upper + lower) ≤ 0.038 / 2.038 < 1.9 %` of every value in the bucket, so a
//!   percentile read from the buckets is within 2 % of the exact nearest-rank percentile;
//! - every bucket spans a ratio of more than 1.038, so any range `[a, 100·a]` (two decades) touches
//!   at most `⌈ln 100 / ln 1.038⌉ + 1 = 125` buckets (the contract allows 150).
//!
//! Both bounds are proven by property tests in `tests/buckets.rs`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Bucket growth ratio, as a fraction: upper ≤ lower × 1038 / 1000.
const RATIO_NUM: u64 = 1038;
const RATIO_DEN: u64 = 1000;

/// Latencies at or above this (about 35 years, in ms) share the last bucket.
pub const MAX_TRACKED_MS: u64 = 1 << 40;

/// Below this latency, in milliseconds, buckets are one millisecond wide.
pub const EXACT_BELOW_MS: u64 = 27;

fn lower_bounds() -> &'static [u64] {
    static BOUNDS: OnceLock<Vec<u64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut bounds = Vec::with_capacity(800);
        let mut lower = 0u64;
        while lower < MAX_TRACKED_MS {
            bounds.push(lower);
            lower = upper_of(lower) + 1;
        }
        bounds.push(MAX_TRACKED_MS);
        bounds
    })
}

fn upper_of(lower: u64) -> u64 {
    (lower * RATIO_NUM / RATIO_DEN).max(lower)
}

/// One latency bucket, identified by its index in the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket(u32);

impl Bucket {
    /// The bucket that holds `latency_ms`. Negative latencies (a client clock ahead of the
    /// function's) fall into the first bucket, `[0, 0]`.
    pub fn of(latency_ms: i64) -> Bucket {
        let v = u64::try_from(latency_ms).unwrap_or(0);
        let bounds = lower_bounds();
        // The last lower bound <= v.
        let index = bounds.partition_point(|&lower| lower <= v) - 1;
        Bucket(index as u32)
    }

    /// The bucket with index `index`, if the scheme has one.
    pub fn from_index(index: u32) -> Option<Bucket> {
        ((index as usize) < lower_bounds().len()).then_some(Bucket(index))
    }

    /// The bucket's index in the scheme, from 0.
    pub fn index(self) -> u32 {
        self.0
    }

    /// Smallest latency in the bucket, ms.
    pub fn lower_ms(self) -> u64 {
        lower_bounds()[self.0 as usize]
    }

    /// Largest latency in the bucket, ms (inclusive); `u64::MAX` for the last bucket.
    pub fn upper_ms(self) -> u64 {
        lower_bounds()
            .get(self.0 as usize + 1)
            .map_or(u64::MAX, |next| next - 1)
    }

    /// The value that stands for the bucket: the one closest, relatively, to every value in it.
    pub fn representative_ms(self) -> f64 {
        let (lo, hi) = (self.lower_ms() as f64, self.upper_ms() as f64);
        if self.upper_ms() == u64::MAX {
            lo
        } else if lo + hi == 0.0 {
            0.0
        } else {
            2.0 * lo * hi / (lo + hi)
        }
    }

    /// The `Bucket` dimension value: the lower bound in ms, in decimal.
    pub fn label(self) -> String {
        self.lower_ms().to_string()
    }

    /// The bucket whose label is `label`, if it is one of the scheme's.
    pub fn from_label(label: &str) -> Option<Bucket> {
        let lower: u64 = label.parse().ok()?;
        let bounds = lower_bounds();
        bounds
            .binary_search(&lower)
            .ok()
            .map(|index| Bucket(index as u32))
    }
}

/// The 1-based rank of the nearest-rank `p`-th percentile among `n` values: ⌈p·n/100⌉, at least 1.
pub fn nearest_rank(p: f64, n: u64) -> u64 {
    let rank = (p.clamp(0.0, 100.0) * n as f64 / 100.0).ceil() as u64;
    rank.clamp(1, n.max(1))
}

/// Counts of latencies per bucket. Memory grows with the buckets touched, not the samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: BTreeMap<Bucket, u64>,
    total: u64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one latency, ms.
    pub fn record(&mut self, latency_ms: i64) {
        self.add(Bucket::of(latency_ms), 1);
    }

    /// Adds `count` samples to `bucket`.
    pub fn add(&mut self, bucket: Bucket, count: u64) {
        if count > 0 {
            *self.counts.entry(bucket).or_insert(0) += count;
            self.total += count;
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (&bucket, &count) in &other.counts {
            self.add(bucket, count);
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Whether no sample was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The buckets touched, in ascending order, with their counts.
    pub fn buckets(&self) -> impl Iterator<Item = (Bucket, u64)> + '_ {
        self.counts.iter().map(|(&b, &c)| (b, c))
    }

    /// The nearest-rank `p`-th percentile (0..=100) in ms, as the representative of the bucket
    /// that holds it; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.bucket_at_rank(nearest_rank(p, self.total))
            .map(Bucket::representative_ms)
    }

    /// The bucket holding the `rank`-th smallest sample (1-based); `None` past the last.
    pub fn bucket_at_rank(&self, rank: u64) -> Option<Bucket> {
        let mut seen = 0;
        for (&bucket, &count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(bucket);
            }
        }
        None
    }

    /// Sample standard deviation, ms, taking each sample as its bucket's representative;
    /// `None` below two samples.
    pub fn std_dev(&self) -> Option<f64> {
        if self.total < 2 {
            return None;
        }
        let n = self.total as f64;
        let mean = self
            .buckets()
            .map(|(b, c)| b.representative_ms() * c as f64)
            .sum::<f64>()
            / n;
        let squares: f64 = self
            .buckets()
            .map(|(b, c)| (b.representative_ms() - mean).powi(2) * c as f64)
            .sum();
        Some((squares / (n - 1.0)).sqrt())
    }
}

/// Wire form of one histogram row: the bucket's bounds (ms, inclusive) and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCount {
    /// Smallest latency in the bucket, ms.
    pub lower_ms: u64,
    /// Largest latency in the bucket, ms.
    pub upper_ms: u64,
    /// Samples in the bucket.
    pub count: u64,
}

impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.buckets().map(|(b, count)| BucketCount {
            lower_ms: b.lower_ms(),
            upper_ms: b.upper_ms(),
            count,
        }))
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let rows = Vec::<BucketCount>::deserialize(deserializer)?;
        let mut histogram = LatencyHistogram::new();
        for row in rows {
            let bucket = Bucket::from_label(&row.lower_ms.to_string()).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{} ms is not the lower bound of a latency bucket",
                    row.lower_ms
                ))
            })?;
            histogram.add(bucket, row.count);
        }
        Ok(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_starts_exact_and_grows_by_at_most_3_8_percent() {
        for ms in 0..EXACT_BELOW_MS {
            let b = Bucket::of(ms as i64);
            assert_eq!((b.lower_ms(), b.upper_ms()), (ms, ms));
            assert_eq!(b.representative_ms(), ms as f64);
        }
        let b = Bucket::of(1000);
        assert!(b.lower_ms() <= 1000 && 1000 <= b.upper_ms());
        assert!(b.upper_ms() as f64 <= b.lower_ms() as f64 * 1.038);
        assert_eq!(Bucket::of(-5), Bucket::of(0));
        assert_eq!(Bucket::of(i64::MAX).upper_ms(), u64::MAX);
    }

    #[test]
    fn labels_round_trip_and_reject_strangers() {
        let b = Bucket::of(12_345);
        assert_eq!(Bucket::from_label(&b.label()), Some(b));
        assert_eq!(Bucket::from_label("abc"), None);
        assert_eq!(Bucket::from_index(b.index()), Some(b));
        assert_eq!(Bucket::from_index(u32::MAX), None);
        assert_eq!(Bucket::from_label(&(b.lower_ms() + 1).to_string()), None);
    }

    #[test]
    fn nearest_rank_matches_its_definition() {
        assert_eq!(nearest_rank(50.0, 4), 2);
        assert_eq!(nearest_rank(50.0, 5), 3);
        assert_eq!(nearest_rank(99.0, 100), 99);
        assert_eq!(nearest_rank(0.0, 10), 1);
        assert_eq!(nearest_rank(100.0, 10), 10);
        assert_eq!(nearest_rank(90.0, 1), 1);
    }

    #[test]
    fn histogram_percentiles_and_json() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.percentile(50.0), None);
        for ms in [1, 2, 3, 4, 100] {
            h.record(ms);
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.percentile(50.0), Some(3.0));
        let p100 = h.percentile(100.0).unwrap();
        assert!((p100 - 100.0).abs() / 100.0 < 0.02, "{p100}");
        let json = serde_json::to_string(&h).unwrap();
        assert!(
            json.starts_with(r#"[{"lower_ms":1,"upper_ms":1,"count":1},"#),
            "{json}"
        );
        let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        let err = serde_json::from_str::<LatencyHistogram>(
            r#"[{"lower_ms":1001,"upper_ms":1,"count":1}]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not the lower bound"), "{err}");
    }
}
