//! `collector wait -o experimental-prometheus-rw`: the pipeline's own series pushed to a
//! Prometheus remote-write receiver, beside the `k6_*` series `loadgen -o
//! experimental-prometheus-rw` pushes, so that one dashboard shows the load and the pipeline.
//! Configured by k6's environment: `K6_PROMETHEUS_RW_SERVER_URL` (http; default
//! `http://localhost:9090/api/v1/write`) and `K6_PROMETHEUS_RW_PUSH_INTERVAL` (5s).
//!
//! While the wait polls, every push interval: `pipeline_processed_total`,
//! `pipeline_accepted_total` and `pipeline_backlog` (accepted, not yet measured). Once the
//! export is built, the run second by second at the seconds' own timestamps:
//! `pipeline_processed_per_second`, `pipeline_latency_p99` / `_avg` / `_max` (seconds, as k6
//! writes times, labelled `hop="end_to_end"`, or the hop's metric name for each hop's p99), and
//! the run's totals: `pipeline_redelivered_total`, `pipeline_over_counted_total`, and
//! `pipeline_lost_total` when the loss is known. Every series carries `testid`, the run id (the
//! label k6's dashboards filter on; loadgen labels its series so too).
//!
//! Pushing never holds up the wait: it runs beside the polls, a failed push is retried twice
//! and then counted, and the count is said at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use contract::buckets::LatencyHistogram;
use contract::export::LatencyExport;
use contract::remote_write::{self, TimeSeries};
use contract::run::Run;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The one output name, k6's.
pub const OUTPUT: &str = "experimental-prometheus-rw";

/// Where and how often to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWrite {
    /// The receiver.
    pub url: hyper::Uri,
    /// Time between live pushes.
    pub push_interval: Duration,
}

impl RemoteWrite {
    /// The output as k6's environment configures it; the error is the one line to print.
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Result<RemoteWrite, String> {
        let text = env(remote_write::URL_VAR).unwrap_or_else(|| remote_write::DEFAULT_URL.into());
        let url: hyper::Uri = text
            .parse()
            .map_err(|e| format!("{} {text:?}: {e}", remote_write::URL_VAR))?;
        match url.scheme_str() {
            Some("http") if url.host().is_some() => {}
            Some("https") => {
                return Err(format!(
                    "{} {text:?}: the collector pushes over plain http (a local Prometheus or \
                     an agent beside it)",
                    remote_write::URL_VAR
                ))
            }
            _ => {
                return Err(format!(
                    "{} {text:?}: not an http URL",
                    remote_write::URL_VAR
                ))
            }
        }
        let push_interval =
            remote_write::push_interval(env(remote_write::INTERVAL_VAR).as_deref())?;
        Ok(RemoteWrite { url, push_interval })
    }
}

/// How the pushes went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Pushes the receiver took.
    pub ok: u64,
    /// Pushes given up after their retries.
    pub failed: u64,
}

/// Pushes one run's series.
pub struct Pusher {
    output: RemoteWrite,
    client: Client<HttpConnector, Full<Bytes>>,
    run_id: String,
    /// The pushes so far.
    pub pushed: Pushed,
    said: bool,
}

impl Pusher {
    /// A pusher for `run_id`'s series.
    pub fn new(output: RemoteWrite, run_id: &str) -> Pusher {
        Pusher {
            output,
            client: Client::builder(TokioExecutor::new()).build_http(),
            run_id: run_id.to_owned(),
            pushed: Pushed::default(),
            said: false,
        }
    }

    /// Pushes `series` (nothing when empty), with two retries; a push given up is counted and
    /// said once on stderr.
    pub async fn push(&mut self, series: Vec<TimeSeries>) {
        if series.is_empty() {
            return;
        }
        let body = Bytes::from(remote_write::encode(series));
        for attempt in 0..3u64 {
            match self.send(body.clone()).await {
                Ok(()) => {
                    self.pushed.ok += 1;
                    return;
                }
                Err(e) if attempt == 2 => {
                    self.pushed.failed += 1;
                    if !std::mem::replace(&mut self.said, true) {
                        eprintln!(
                            "collector: {OUTPUT}: a push to {} failed ({e}); the wait goes on, \
                             failed pushes are counted",
                            self.output.url
                        );
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await,
            }
        }
    }

    async fn send(&self, body: Bytes) -> Result<(), String> {
        let mut request = hyper::Request::post(self.output.url.clone());
        for (name, value) in remote_write::HEADERS {
            request = request.header(name, value);
        }
        let request = request
            .header("User-Agent", "collector")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| "no answer within 10 s".to_owned())?
            .map_err(|e| contract::one_line(&e))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(format!("answered {status}")),
        }
    }

    /// Pushes the live series every push interval until `processed` closes, then once more.
    pub async fn follow(
        &mut self,
        mut processed: tokio::sync::watch::Receiver<u64>,
        accepted: Option<u64>,
    ) {
        let mut ticker = tokio::time::interval(self.output.push_interval);
        ticker.tick().await;
        loop {
            let open = tokio::select! {
                _ = ticker.tick() => true,
                changed = processed.wait_for(|_| false) => changed.is_ok(),
            };
            let now = *processed.borrow();
            let series = live_series(&self.run_id, now, accepted, contract::epoch_ms());
            self.push(series).await;
            if !open {
                return;
            }
        }
    }
}

/// The series pushed while the wait polls: `processed` so far of `accepted`, at `now_ms`.
pub fn live_series(
    run_id: &str,
    processed: u64,
    accepted: Option<u64>,
    now_ms: i64,
) -> Vec<TimeSeries> {
    let labels = [("testid", run_id)];
    let mut series = vec![TimeSeries::one(
        "pipeline_processed_total",
        &labels,
        processed as f64,
        now_ms,
    )];
    if let Some(accepted) = accepted {
        series.push(TimeSeries::one(
            "pipeline_accepted_total",
            &labels,
            accepted as f64,
            now_ms,
        ));
        series.push(TimeSeries::one(
            "pipeline_backlog",
            &labels,
            accepted.saturating_sub(processed) as f64,
            now_ms,
        ));
    }
    series
}

/// The series pushed once the export is built: the run second by second, and its totals at
/// `now_ms`. `hop_seconds` holds each hop's histograms by second.
pub fn run_series(
    run: &Run<'_>,
    hop_seconds: &BTreeMap<String, BTreeMap<i64, LatencyHistogram>>,
    now_ms: i64,
) -> Vec<TimeSeries> {
    let export: &LatencyExport = run.export;
    let run_id = export.run.run_id.as_str();
    let labels = [("testid", run_id)];
    let end_to_end = [("hop", "end_to_end"), ("testid", run_id)];
    let rows = &export.per_second;
    let seconds = |value: &dyn Fn(&contract::export::SecondRow) -> Option<f64>| {
        rows.iter()
            .filter_map(|r| value(r).map(|v| (r.timestamp_ms, v)))
            .collect::<Vec<_>>()
    };
    let mut series = vec![
        TimeSeries::of(
            "pipeline_processed_per_second",
            &labels,
            seconds(&|r| Some(r.count as f64)),
        ),
        TimeSeries::of(
            "pipeline_latency_p99",
            &end_to_end,
            seconds(&|r| r.p99_ms.map(|ms| ms / 1000.0)),
        ),
        TimeSeries::of(
            "pipeline_latency_avg",
            &end_to_end,
            seconds(&|r| Some(r.average_ms / 1000.0).filter(|v| v.is_finite())),
        ),
        TimeSeries::of(
            "pipeline_latency_max",
            &end_to_end,
            seconds(&|r| Some(r.maximum_ms / 1000.0).filter(|v| v.is_finite())),
        ),
    ];
    for (hop, by_second) in hop_seconds {
        let samples: Vec<(i64, f64)> = by_second
            .iter()
            .filter_map(|(t, h)| h.percentile(99.0).map(|ms| (*t, ms / 1000.0)))
            .collect();
        series.push(TimeSeries::of(
            "pipeline_latency_p99",
            &[("hop", hop.as_str()), ("testid", run_id)],
            samples,
        ));
    }
    series.push(TimeSeries::one(
        "pipeline_processed_total",
        &labels,
        run.processed() as f64,
        now_ms,
    ));
    series.push(TimeSeries::one(
        "pipeline_redelivered_total",
        &labels,
        run.redelivered() as f64,
        now_ms,
    ));
    series.push(TimeSeries::one(
        "pipeline_over_counted_total",
        &labels,
        run.over_counted().unwrap_or(0) as f64,
        now_ms,
    ));
    if let Some(lost) = run.lost() {
        series.push(TimeSeries::one(
            "pipeline_lost_total",
            &labels,
            lost as f64,
            now_ms,
        ));
    }
    series.retain(|s| !s.samples.is_empty());
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_output_reads_k6s_environment_and_refuses_what_it_cannot_push_to() {
        let default = RemoteWrite::from_env(&env(&[])).unwrap();
        assert_eq!(default.url, "http://localhost:9090/api/v1/write");
        assert_eq!(default.push_interval, Duration::from_secs(5));
        let set = RemoteWrite::from_env(&env(&[
            (
                "K6_PROMETHEUS_RW_SERVER_URL",
                "http://127.0.0.1:9/api/v1/write",
            ),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "250ms"),
        ]))
        .unwrap();
        assert_eq!(set.push_interval, Duration::from_millis(250));
        for (var, value, said) in [
            ("K6_PROMETHEUS_RW_SERVER_URL", "ftp://x/", "not an http URL"),
            ("K6_PROMETHEUS_RW_SERVER_URL", "https://x/", "plain http"),
            (
                "K6_PROMETHEUS_RW_PUSH_INTERVAL",
                "0s",
                "not a duration of at least 100ms",
            ),
        ] {
            let error = RemoteWrite::from_env(&env(&[(var, value)])).unwrap_err();
            assert!(error.contains(said) && error.starts_with(var), "{error}");
        }
    }

    #[test]
    fn the_backlog_is_what_was_accepted_and_not_yet_measured() {
        let series = live_series("r", 70, Some(100), 5_000);
        let value = |name: &str| {
            series
                .iter()
                .find(|s| s.label("__name__") == Some(name))
                .map(|s| s.samples[0].value)
        };
        assert_eq!(value("pipeline_processed_total"), Some(70.0));
        assert_eq!(value("pipeline_backlog"), Some(30.0));
        assert!(series.iter().all(|s| s.label("testid") == Some("r")));
        assert_eq!(
            live_series("r", 7, None, 0).len(),
            1,
            "no backlog without a count"
        );
    }
}
