//! Prometheus remote write (protocol 1.0), as k6's `experimental-prometheus-rw` output speaks it:
//! a `WriteRequest` of time series (Prometheus' `prompb` messages, protobuf), compressed with
//! snappy's block format, POSTed with [`HEADERS`]. loadgen pushes the load's series this way
//! and the collector the pipeline's, so that one Prometheus (and one dashboard) holds both.

/// The protocol's messages.
mod wire {
    /// A batch of series.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// One series: its labels (`__name__` among them, sorted by name) and samples.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Sorted by name.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Its samples, oldest first.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// A label.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Its name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Its value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A value at a time.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// When, epoch ms.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

pub use wire::{Label, Sample, TimeSeries, WriteRequest};

/// The request headers a remote-write receiver expects.
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// The environment variable naming the receiver, k6's.
pub const URL_VAR: &str = "K6_PROMETHEUS_RW_SERVER_URL";
/// Its default, k6's.
pub const DEFAULT_URL: &str = "http://localhost:9090/api/v1/write";
/// The environment variable setting the time between pushes, k6's.
pub const INTERVAL_VAR: &str = "K6_PROMETHEUS_RW_PUSH_INTERVAL";

/// The shortest push interval taken: below it the pushes cost more CPU than the load.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The push interval `K6_PROMETHEUS_RW_PUSH_INTERVAL` says (k6's default: 5 s); the error is the
/// line to print.
pub fn push_interval(value: Option<&str>) -> Result<std::time::Duration, String> {
    match value {
        None => Ok(std::time::Duration::from_secs(5)),
        Some(text) => humantime::parse_duration(text)
            .ok()
            .filter(|d| *d >= MIN_INTERVAL)
            .ok_or_else(|| format!("{INTERVAL_VAR} {text:?} is not a duration of at least 100ms")),
    }
}

impl TimeSeries {
    /// The series `name` with `labels`, and one sample.
    pub fn one(name: &str, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) -> TimeSeries {
        TimeSeries::of(name, labels, vec![(timestamp_ms, value)])
    }

    /// The series `name` with `labels`, and `samples` (epoch ms, value), oldest first.
    pub fn of(name: &str, labels: &[(&str, &str)], samples: Vec<(i64, f64)>) -> TimeSeries {
        let mut all: Vec<Label> = labels
            .iter()
            .map(|(n, v)| Label {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect();
        all.push(Label {
            name: "__name__".into(),
            value: name.to_owned(),
        });
        all.sort_by(|a, b| a.name.cmp(&b.name));
        TimeSeries {
            labels: all,
            samples: samples
                .into_iter()
                .map(|(timestamp, value)| Sample { value, timestamp })
                .collect(),
        }
    }

    /// The value of the label `name`, if it has one.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }
}

/// `series` as a request body: protobuf, snappy-compressed.
pub fn encode(series: Vec<TimeSeries>) -> Vec<u8> {
    let body = prost::Message::encode_to_vec(&WriteRequest { timeseries: series });
    snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("snappy compresses any buffer that fits in memory")
}

/// A request body back into its series (what a receiver does; for tests).
pub fn decode(body: &[u8]) -> Result<Vec<TimeSeries>, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    let request: WriteRequest =
        prost::Message::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))?;
    Ok(request.timeseries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_decodes_to_the_series_with_sorted_labels() {
        let series = vec![TimeSeries::of(
            "pipeline_processed_total",
            &[("run_id", "r1"), ("hop", "x")],
            vec![(1000, 1.0), (2000, 3.0)],
        )];
        let back = decode(&encode(series.clone())).unwrap();
        assert_eq!(back, series);
        let names: Vec<&str> = back[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "hop", "run_id"]);
        assert_eq!(back[0].label("run_id"), Some("r1"));
    }
}
