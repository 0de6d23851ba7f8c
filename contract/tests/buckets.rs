//! Property tests of the bucket scheme's two promises (see `contract::buckets`).

use contract::buckets::{nearest_rank, Bucket, LatencyHistogram};
use proptest::prelude::*;

/// Latencies as a pipeline produces them: mostly one mode, some tail, some tiny values.
fn latencies() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(
        prop_oneof![0i64..10, 10i64..1_000, 1_000i64..120_000, 0i64..50_000_000,],
        1..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Percentiles from bucket counts are exact below 10 ms and within 2 % from 10 ms on.
    #[test]
    fn percentiles_within_two_percent(values in latencies(), p in 0.0f64..=100.0) {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let mut h = LatencyHistogram::new();
        for &v in &values {
            h.record(v);
        }
        for p in [p, 50.0, 90.0, 95.0, 99.0, 100.0] {
            let exact = sorted[nearest_rank(p, sorted.len() as u64) as usize - 1] as f64;
            let estimate = h.percentile(p).unwrap();
            if exact < 10.0 {
                prop_assert_eq!(estimate, exact, "p{}", p);
            } else {
                let error = (estimate - exact).abs() / exact;
                prop_assert!(error <= 0.02, "p{}: exact {} estimate {} error {}", p, exact, estimate, error);
            }
        }
    }

    /// A run whose latencies span two decades touches at most 150 buckets.
    #[test]
    fn two_decades_touch_at_most_150_buckets(low in 0i64..10_000_000_000) {
        let first = Bucket::of(low);
        let last = Bucket::of(low.max(1) * 100);
        let touched = last.index() - first.index() + 1;
        prop_assert!(touched <= 150, "{}..{} ms touches {} buckets", low, low.max(1) * 100, touched);
    }

    /// Every latency lies inside its bucket, and labels name buckets uniquely.
    #[test]
    fn every_value_lies_in_its_bucket(v in 0i64..(1i64 << 41)) {
        let b = Bucket::of(v);
        prop_assert!(b.lower_ms() <= v as u64 && v as u64 <= b.upper_ms());
        prop_assert_eq!(Bucket::from_label(&b.label()), Some(b));
    }
}

/// The same bound, exhaustively, for every integer latency up to ten minutes.
#[test]
fn every_bucket_below_ten_minutes_is_within_bound() {
    let mut v = 10i64;
    while v < 600_000 {
        let b = Bucket::of(v);
        let rep = b.representative_ms();
        for x in [b.lower_ms(), b.upper_ms()] {
            let x = x as f64;
            assert!((rep - x).abs() / x <= 0.02, "bucket {b:?}: {rep} vs {x}");
        }
        v = b.upper_ms() as i64 + 1;
    }
}
