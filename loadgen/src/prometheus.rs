//! `-o experimental-prometheus-rw`: the run's metrics pushed live to a Prometheus remote-write
//! endpoint, under the series names and labels k6's own output uses (`k6_http_reqs_total`,
//! `k6_http_req_duration_p99`, `k6_vus`, `k6_checks_rate`, ...: read off real k6 1.1.0 pushing into
//! Prometheus), so that a k6 user's dashboards and alerts keep working. Configured as k6 is, by
//! its environment: `K6_PROMETHEUS_RW_SERVER_URL` (default `http://localhost:9090/api/v1/write`),
//! `K6_PROMETHEUS_RW_PUSH_INTERVAL` (5s), `K6_PROMETHEUS_RW_TREND_STATS` (`p(99)`).
//!
//! Counters are totals since the start, trends their statistics over every request so far (in
//! seconds, as k6 converts times), rates the fraction so far: each push is the run up to then.
//! Pushing never slows the load: one task builds and sends one request at a time from the run's
//! shared counters, a failed push is retried twice and then dropped and counted, and the last
//! push, after the run, completes before the summary is printed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::client::{Client, ConnectTimings, Connection};
use crate::config::RemoteWrite;
use crate::engine::Counters;
use crate::summary_options::TrendStat;
use crate::trends::{Trend, TrendSet, Trends};

use contract::remote_write::{self, TimeSeries};

/// How the pushes went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Pushes the endpoint took.
    pub ok: u64,
    /// Pushes dropped after their retries.
    pub failed: u64,
}

/// What a push reads: the run's shared counters and trends, and what the run is.
pub struct Source {
    /// The live counters.
    pub live: Arc<Counters>,
    /// The timings so far.
    pub trends: Arc<Trends>,
    /// The load's URL (the `url` and `name` labels).
    pub url: String,
    /// The VUs the run may use.
    pub vus_max: u64,
    /// The duration check's limit, µs.
    pub max_duration_us: u64,
    /// The duration check's name.
    pub duration_check: String,
    /// Whether the run has dropped iterations to report (an arrival-rate executor).
    pub arrival: bool,
    /// The run id, as the `testid` label every series carries (the tag k6's dashboards filter
    /// on: `k6 run --tag testid=...`).
    pub testid: String,
}

/// A trend statistic's suffix on a series name: `p99`, `p99.9` → `p999`, `avg`.
fn suffix(stat: &TrendStat) -> String {
    stat.name().replace(['(', ')', '.'], "")
}

/// A trend statistic of `histogram` (µs), in seconds (a count as it is).
fn stat_value(histogram: &hdrhistogram::Histogram<u64>, stat: &TrendStat) -> f64 {
    let us = match stat {
        TrendStat::Avg => histogram.mean(),
        TrendStat::Min => histogram.min() as f64,
        TrendStat::Med => histogram.value_at_quantile(0.5) as f64,
        TrendStat::Max => histogram.max() as f64,
        TrendStat::Count => return histogram.len() as f64,
        TrendStat::Percentile(p) => histogram.value_at_quantile(p / 100.0) as f64,
    };
    us / 1e6
}

/// The series of one push, as they are built: each carries the `testid` label and the push's
/// time.
struct Batch<'a> {
    series: Vec<TimeSeries>,
    testid: &'a str,
    now_ms: i64,
}

impl Batch<'_> {
    fn push(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let mut labels = labels.to_vec();
        labels.push(("testid", self.testid));
        self.series
            .push(TimeSeries::one(name, &labels, value, self.now_ms));
    }
}

/// What the checks count, added up over the statuses.
#[derive(Default)]
struct Requests {
    /// Every request's timings.
    all: TrendSet,
    /// Requests answered.
    count: u64,
    /// Of those, with status 200 (the status check).
    ok: u64,
    /// Of those, within the duration check's limit.
    quick: u64,
}

impl Source {
    /// Every series k6 pushes for this run so far, at `now_ms`.
    pub fn series(&self, trend_stats: &[TrendStat], now_ms: i64) -> Vec<TimeSeries> {
        let mut batch = Batch {
            series: Vec::new(),
            testid: &self.testid,
            now_ms,
        };
        let requests = self.request_series(&mut batch, trend_stats);
        self.run_series(&mut batch, trend_stats, &requests);
        batch.series
    }

    /// The HTTP series, one set per response status, with k6's request tags.
    fn request_series(&self, batch: &mut Batch<'_>, trend_stats: &[TrendStat]) -> Requests {
        let proto = if self.live.http2.load(Ordering::Relaxed) {
            "HTTP/2.0"
        } else {
            "HTTP/1.1"
        };
        let mut requests = Requests::default();
        for (status, set) in &self.trends.by_status() {
            requests.all.add(set);
            let status_text = status.to_string();
            let expected = (200..400).contains(status).to_string();
            let mut labels = vec![
                ("expected_response", expected.as_str()),
                ("method", "POST"),
                ("name", self.url.as_str()),
                ("proto", proto),
                ("scenario", "default"),
                ("status", status_text.as_str()),
                ("url", self.url.as_str()),
            ];
            // k6's error_code tag: 1000 + the status for a 4xx or 5xx; a request without a
            // response is 1000, k6's generic error (loadgen does not tell k6's network codes
            // apart).
            let error_code = match status {
                0 => Some("1000".to_owned()),
                400.. => Some((1000 + u32::from(*status)).to_string()),
                _ => None,
            };
            if let Some(code) = &error_code {
                labels.push(("error_code", code.as_str()));
            }
            let n = set.requests();
            requests.count += n;
            if *status == 200 {
                requests.ok += n;
            }
            requests.quick += if *status == 0 {
                n
            } else {
                set.get(Trend::Duration)
                    .count_between(0, self.max_duration_us.saturating_sub(1))
            };
            batch.push("k6_http_reqs_total", &labels, n as f64);
            let failed = if *status == 0 || *status >= 400 {
                1.0
            } else {
                0.0
            };
            batch.push("k6_http_req_failed_rate", &labels, failed);
            for trend in Trend::ALL {
                if trend == Trend::Iteration {
                    continue;
                }
                for stat in trend_stats {
                    let name = format!("k6_{}_{}", trend.name(), suffix(stat));
                    batch.push(&name, &labels, stat_value(set.get(trend), stat));
                }
            }
        }
        requests
    }

    /// The run's own series: iterations and their duration, the checks, data, dropped
    /// iterations and VUs.
    fn run_series(&self, batch: &mut Batch<'_>, trend_stats: &[TrendStat], requests: &Requests) {
        let scenario = [("scenario", "default")];
        if requests.count > 0 {
            for stat in trend_stats {
                let name = format!("k6_iteration_duration_{}", suffix(stat));
                let value = stat_value(requests.all.get(Trend::Iteration), stat);
                batch.push(&name, &scenario, value);
            }
            let checks = [
                ("status is 200", requests.ok),
                (self.duration_check.as_str(), requests.quick),
            ];
            for (check, passes) in checks {
                let labels = [("check", check), ("scenario", "default")];
                let rate = passes as f64 / requests.count as f64;
                batch.push("k6_checks_rate", &labels, rate);
            }
        }
        let live = &self.live;
        batch.push("k6_iterations_total", &scenario, requests.count as f64);
        let sent = live.bytes_sent.load(Ordering::Relaxed) as f64;
        let received = live.bytes_received.load(Ordering::Relaxed) as f64;
        batch.push("k6_data_sent_total", &scenario, sent);
        batch.push("k6_data_received_total", &scenario, received);
        if self.arrival {
            let dropped = live.dropped.load(Ordering::Relaxed) as f64;
            batch.push("k6_dropped_iterations_total", &scenario, dropped);
        }
        let vus = live.active_vus.load(Ordering::Relaxed) as f64;
        batch.push("k6_vus", &[], vus);
        batch.push("k6_vus_max", &[], self.vus_max as f64);
    }
}

/// The longest one push may take, connecting (DNS, TCP, TLS) and sending included.
pub const PUSH_BOUND: Duration = Duration::from_secs(10);

/// Pushes `series` as one remote-write request: snappy-compressed protobuf, within
/// [`PUSH_BOUND`] from the first byte of the connection to the last of the answer.
pub async fn push_once(
    client: &Client,
    connection: &mut Option<Connection>,
    series: Vec<TimeSeries>,
) -> Result<(), String> {
    let body = Bytes::from(remote_write::encode(series));
    let pushed = tokio::time::timeout(PUSH_BOUND, async {
        let open = match connection.as_mut() {
            Some(open) => open.is_open().await,
            None => false,
        };
        if !open {
            let mut timings = ConnectTimings::default();
            *connection = Some(
                client
                    .connect(&mut timings)
                    .await
                    .map_err(|kind| format!("cannot connect: {}", kind.label()))?,
            );
        }
        let Some(open) = connection.as_mut() else {
            return Err("no connection".to_owned());
        };
        match client.send(open, body).await {
            Ok(response) if (200..300).contains(&response.status) => Ok(()),
            Ok(response) => Err(format!("answered {}", response.status)),
            Err(kind) => Err(kind.label()),
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {} s", PUSH_BOUND.as_secs())));
    if pushed.is_err() {
        *connection = None;
    }
    pushed
}

/// The remote-write client: k6's headers.
pub fn client(output: &RemoteWrite) -> Result<Client, String> {
    Client::with_headers(
        &output.url,
        false,
        &[
            remote_write::HEADERS[0],
            remote_write::HEADERS[1],
            remote_write::HEADERS[2],
            ("User-Agent", "loadgen"),
        ],
    )
}

/// A push of the run so far, with two retries; the error of the last attempt.
pub async fn push(
    client: &Client,
    connection: &mut Option<Connection>,
    source: &Source,
    output: &RemoteWrite,
) -> Result<(), String> {
    let series = source.series(&output.trend_stats, crate::epoch_ms());
    let mut attempt = 0;
    loop {
        match push_once(client, connection, series.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt == 2 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
}
