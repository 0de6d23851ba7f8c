//! loadgen's thresholds: k6's syntax (`contract::threshold`) over its HTTP metrics.
//!
//! | metric | kind | aggregations |
//! | --- | --- | --- |
//! | `http_req_duration`, `iteration_duration`, `http_req_blocked`, `http_req_connecting`, `http_req_tls_handshaking`, `http_req_sending`, `http_req_waiting`, `http_req_receiving` | trend (ms) | `avg` `min` `med` `max` `p(N)` |
//! | `http_req_failed`, `checks` | rate (0..1) | `rate` |
//! | `http_reqs`, `iterations`, `dropped_iterations`, `data_sent`, `data_received` | counter | `count` `rate` (per second) |
//! | `vus`, `vus_max` | gauge | `value` |

use contract::threshold::Kind;
pub use contract::threshold::{Aggregation, Judged, MetricSource, Threshold};

use crate::error::ConfigError;

/// The metrics a loadgen threshold may name.
pub const METRICS: [(&str, Kind); 17] = [
    ("http_req_duration", Kind::Trend),
    ("iteration_duration", Kind::Trend),
    ("http_req_blocked", Kind::Trend),
    ("http_req_connecting", Kind::Trend),
    ("http_req_tls_handshaking", Kind::Trend),
    ("http_req_sending", Kind::Trend),
    ("http_req_waiting", Kind::Trend),
    ("http_req_receiving", Kind::Trend),
    ("http_req_failed", Kind::Rate),
    ("checks", Kind::Rate),
    ("http_reqs", Kind::Counter),
    ("iterations", Kind::Counter),
    ("dropped_iterations", Kind::Counter),
    ("data_sent", Kind::Counter),
    ("data_received", Kind::Counter),
    ("vus", Kind::Gauge),
    ("vus_max", Kind::Gauge),
];

/// Parses a threshold on loadgen's metrics.
pub fn parse(text: &str) -> Result<Threshold, ConfigError> {
    Threshold::parse(text, &METRICS).map_err(|e| ConfigError::Threshold {
        text: e.text,
        reason: e.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::threshold::Op;

    struct Fixed;
    impl MetricSource for Fixed {
        fn aggregate(&self, metric: &str, aggregation: Aggregation) -> Option<f64> {
            match (metric, aggregation) {
                ("http_req_duration", Aggregation::Percentile(95.0)) => Some(420.0),
                ("http_req_failed", Aggregation::Rate) => Some(0.02),
                _ => None,
            }
        }
    }

    #[test]
    fn parses_k6_syntax() {
        let t = parse("http_req_duration: p(95) < 500").unwrap();
        assert_eq!(
            (t.aggregation, t.op, t.value),
            (Aggregation::Percentile(95.0), Op::Lt, 500.0)
        );
        let t = parse("http_req_failed:rate<=0.01").unwrap();
        assert_eq!((t.aggregation, t.op), (Aggregation::Rate, Op::Le));
        assert_eq!(parse("http_reqs:count>=100").unwrap().op, Op::Ge);
        assert_eq!(parse("checks:rate==1").unwrap().op, Op::Eq);
        assert_eq!(
            parse("http_req_duration:p(99.9)<2000").unwrap().aggregation,
            Aggregation::Percentile(99.9)
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        for (text, reason) in [
            ("p(95)<500", "expected METRIC:EXPRESSION"),
            ("http_req_duration:p(95)", "no comparison"),
            ("http_req_duration:p(95)<fast", "is not a finite number"),
            (
                "http_req_duration:p(99)<NaN",
                "\"NaN\" is not a finite number",
            ),
            ("http_req_duration:p(99)<inf", "is not a finite number"),
            ("http_req_duration:p(x)<1", "not a percentile"),
            ("http_req_duration:p(101)<1", "between p(0) and p(100)"),
            ("http_req_duration:rate<1", "has no such aggregation"),
            ("http_req_failed:avg<1", "has no such aggregation"),
            ("latency:avg<1", "unknown metric"),
            ("http_reqs:sum>1", "unknown aggregation"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn judges_and_fails_without_data() {
        let judged = |text: &str| {
            let j = parse(text).unwrap().judge(&Fixed);
            (j.passed, j.value)
        };
        assert_eq!(judged("http_req_duration:p(95)<500"), (true, Some(420.0)));
        assert_eq!(judged("http_req_failed:rate<0.01"), (false, Some(0.02)));
        assert_eq!(judged("http_req_duration:avg<500"), (false, None));
    }
}
