//! The end-of-test summary as k6 prints it: metric names, dotted columns,
//! `avg min med max p(90) p(95)`, plus p(99), failures by kind and accepted vs sent.

use std::io::{self, Write};

use super::Summary;
use crate::threshold::Aggregation;

const NAME_WIDTH: usize = 31;

/// The status check's name.
pub(crate) const STATUS_CHECK: &str = "status is 200";

/// The duration check's name for a limit of `max`.
pub(crate) fn duration_check(max: std::time::Duration) -> String {
    format!("duration < {}", humantime::format_duration(max))
}

impl Summary {
    /// Renders the summary.
    pub fn render(&self, out: &mut impl Write) -> io::Result<()> {
        let s = &self.stats;
        writeln!(out)?;
        check_line(out, STATUS_CHECK, s.status_check)?;
        check_line(out, &duration_check(self.max_duration), s.duration_check)?;
        writeln!(out)?;
        let rate_line = |(yes, no): (u64, u64)| {
            let total = yes + no;
            let pct = if total == 0 {
                0.0
            } else {
                yes as f64 * 100.0 / total as f64
            };
            format!("{:<6} ✓ {:<9} ✗ {}", format!("{pct:.2}%"), yes, no)
        };
        let checks = (
            s.status_check.0 + s.duration_check.0,
            s.status_check.1 + s.duration_check.1,
        );
        metric(out, "checks", &rate_line(checks))?;
        metric(
            out,
            "data_received",
            &format!(
                "{:<6} {}/s",
                bytes(s.bytes_received as f64),
                bytes(self.per_second(s.bytes_received))
            ),
        )?;
        metric(
            out,
            "data_sent",
            &format!(
                "{:<6} {}/s",
                bytes(s.bytes_sent as f64),
                bytes(self.per_second(s.bytes_sent))
            ),
        )?;
        if let Some(dropped) = self.dropped {
            metric(
                out,
                "dropped_iterations",
                &counter(dropped, self.per_second(dropped)),
            )?;
        }
        if s.interrupted > 0 {
            metric(
                out,
                "interrupted_iterations",
                &format!(
                    "{} (abandoned in flight: accepted or not, unknown)",
                    s.interrupted
                ),
            )?;
        }
        let trend = match self.duration_ms(Aggregation::Avg) {
            None => "no requests".to_owned(),
            Some(_) => [
                ("avg", Aggregation::Avg),
                ("min", Aggregation::Min),
                ("med", Aggregation::Med),
                ("max", Aggregation::Max),
                ("p(90)", Aggregation::Percentile(90.0)),
                ("p(95)", Aggregation::Percentile(95.0)),
                ("p(99)", Aggregation::Percentile(99.0)),
            ]
            .iter()
            .map(|(name, agg)| {
                format!("{name}={}", duration(self.duration_ms(*agg).unwrap_or(0.0)))
            })
            .collect::<Vec<_>>()
            .join(" "),
        };
        metric(out, "http_req_duration", &trend)?;
        metric(
            out,
            "http_req_failed",
            &rate_line((s.http_failed, s.requests - s.http_failed)),
        )?;
        metric(
            out,
            "http_reqs",
            &counter(s.requests, self.per_second(s.requests)),
        )?;
        metric(
            out,
            "iterations",
            &counter(s.requests, self.per_second(s.requests)),
        )?;
        metric(
            out,
            "vus",
            &format!(
                "{:<6} min={:<6} max={}",
                self.vus_seen.1, self.vus_seen.0, self.vus_seen.1
            ),
        )?;
        metric(
            out,
            "vus_max",
            &format!(
                "{:<6} min={:<6} max={}",
                self.vus_max, self.vus_max, self.vus_max
            ),
        )?;
        writeln!(out)?;
        let failures = if s.failures.is_empty() {
            "none".to_owned()
        } else {
            s.failures
                .iter()
                .map(|(k, n)| format!("{}={n}", k.label()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        metric(out, "failures", &failures)?;
        metric(
            out,
            "accepted (2xx)",
            &if s.unsent == 0 {
                format!("{} of {} sent", s.accepted, s.requests)
            } else {
                format!(
                    "{} of {} sent ({} attempted, {} never sent: no connection)",
                    s.accepted,
                    s.sent(),
                    s.requests,
                    s.unsent
                )
            },
        )?;
        if let Some(scheduled) = self.scheduled {
            let started = scheduled.saturating_sub(self.dropped.unwrap_or(0));
            let pct = if scheduled == 0 {
                100.0
            } else {
                started as f64 * 100.0 / scheduled as f64
            };
            metric(
                out,
                "schedule",
                &format!("{started} of {scheduled} scheduled starts on time ({pct:.1}%)"),
            )?;
        }
        metric(
            out,
            "run",
            &format!("{} {} {}", self.run_id, self.executor, self.endpoint),
        )?;
        if let Some(first) = self.segments.first() {
            let of = first.count();
            let names: Vec<String> = self.segments.iter().map(ToString::to_string).collect();
            let whole = if self.segments.len() as u64 == of {
                format!("all {of} workers")
            } else {
                format!("{} of {of} workers: not the whole run", self.segments.len())
            };
            metric(out, "segments", &format!("{} ({whole})", names.join(" ")))?;
        }
        if let Some(why) = &self.aborted {
            metric(
                out,
                "aborted",
                &format!("{why}: the counts are the run's up to then"),
            )?;
        }
        if !self.thresholds.is_empty() {
            writeln!(out)?;
            writeln!(out, "     thresholds:")?;
            for (threshold, passed, value) in &self.thresholds {
                let mark = if *passed { '✓' } else { '✗' };
                let seen =
                    value.map_or("no data".to_owned(), |v| format_value(&threshold.metric, v));
                writeln!(out, "       {mark} {} (was {seen})", threshold.source)?;
            }
        }
        writeln!(out)
    }
}

fn metric(out: &mut impl Write, name: &str, value: &str) -> io::Result<()> {
    writeln!(out, "     {name:.<NAME_WIDTH$}: {value}")
}

fn check_line(out: &mut impl Write, name: &str, (passed, failed): (u64, u64)) -> io::Result<()> {
    if failed == 0 {
        writeln!(out, "     ✓ {name}")
    } else {
        let pct = passed * 100 / (passed + failed);
        writeln!(out, "     ✗ {name}")?;
        writeln!(out, "      ↳  {pct}% — ✓ {passed} / ✗ {failed}")
    }
}

fn counter(n: u64, per_second: f64) -> String {
    format!("{:<6} {}/s", n, trim(per_second, 2))
}

/// A number with at most `decimals` decimals, trailing zeros dropped (k6's style).
fn trim(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A duration in ms as k6 prints it: `512.43µs`, `9.31ms`, `1.2s`, `1m30s`.
pub fn duration(ms: f64) -> String {
    if ms < 1.0 {
        format!("{}µs", trim(ms * 1000.0, 2))
    } else if ms < 1000.0 {
        format!("{}ms", trim(ms, 2))
    } else if ms < 60_000.0 {
        format!("{}s", trim(ms / 1000.0, 2))
    } else {
        let minutes = (ms / 60_000.0).floor();
        format!(
            "{}m{}s",
            minutes,
            trim((ms - minutes * 60_000.0) / 1000.0, 2)
        )
    }
}

/// Bytes with SI units, as k6 prints them: `512 B`, `25 kB`, `1.2 MB`.
pub fn bytes(n: f64) -> String {
    let (value, unit) = if n < 1e3 {
        (n, "B")
    } else if n < 1e6 {
        (n / 1e3, "kB")
    } else if n < 1e9 {
        (n / 1e6, "MB")
    } else {
        (n / 1e9, "GB")
    };
    format!("{} {unit}", trim(value, if value < 10.0 { 1 } else { 0 }))
}

fn format_value(metric: &str, value: f64) -> String {
    match metric {
        "http_req_duration" | "iteration_duration" => duration(value),
        "http_req_failed" | "checks" => format!("{:.2}%", value * 100.0),
        _ => trim(value, 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_k6() {
        assert_eq!(duration(0.51243), "512.43µs");
        assert_eq!(duration(9.31), "9.31ms");
        assert_eq!(duration(8.4), "8.4ms");
        assert_eq!(duration(1200.0), "1.2s");
        assert_eq!(duration(90_000.0), "1m30s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(25_400.0), "25 kB");
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
        assert_eq!(trim(20.0, 2), "20");
    }
}

#[cfg(test)]
mod snapshot {
    use std::time::Duration;

    use super::*;
    use crate::client::Response;
    use crate::stats::{Durations, FailureKind, Stats};

    #[test]
    fn renders_exactly() {
        let mut stats = Stats::default();
        let durations = Durations::new();
        let mut buffer = durations.buffer();
        let max = Duration::from_secs(4);
        let mut record = |outcome, elapsed| {
            stats.record(&outcome, elapsed, 100, max);
            buffer.record(elapsed);
        };
        for ms in 1..=100u64 {
            record(
                Ok(Response {
                    status: 200,
                    body_bytes: 21,
                }),
                Duration::from_millis(ms),
            );
        }
        record(
            Ok(Response {
                status: 500,
                body_bytes: 20,
            }),
            Duration::from_secs(5),
        );
        record(Err(FailureKind::Timeout), Duration::from_secs(60));
        drop(buffer);
        let mut summary = Summary {
            run_id: "snap".into(),
            endpoint: "http://127.0.0.1:4599/prod/".into(),
            executor: "constant-vus",
            vus_max: 10,
            vus_seen: (10, 10),
            stats,
            durations_us: durations.snapshot(),
            elapsed: Duration::from_secs(10),
            start_ms: 0,
            end_ms: 10_000,
            dropped: None,
            scheduled: None,
            timeline: Vec::new(),
            max_duration: max,
            thresholds: Vec::new(),
            segments: Vec::new(),
            aborted: None,
        };
        summary.judge(&[crate::threshold::parse("http_req_duration:p(95)<500").unwrap()]);
        let mut out = Vec::new();
        summary.render(&mut out).unwrap();
        let expected = "
     ✗ status is 200
      ↳  98% — ✓ 100 / ✗ 2
     ✗ duration < 4s
      ↳  99% — ✓ 101 / ✗ 1

     checks.........................: 98.53% ✓ 201       ✗ 3
     data_received..................: 2.1 kB 212 B/s
     data_sent......................: 10 kB  1 kB/s
     http_req_duration..............: avg=686.9ms min=1ms med=51.01ms max=1m0.03s p(90)=92.03ms p(95)=97.02ms p(99)=5s
     http_req_failed................: 1.96%  ✓ 2         ✗ 100
     http_reqs......................: 102    10.2/s
     iterations.....................: 102    10.2/s
     vus............................: 10     min=10     max=10
     vus_max........................: 10     min=10     max=10

     failures.......................: status_500=1 timeout=1
     accepted (2xx).................: 100 of 102 sent
     run............................: snap constant-vus http://127.0.0.1:4599/prod/

     thresholds:
       ✓ http_req_duration:p(95)<500 (was 97.02ms)

";
        // 102 samples: 1..=100 ms, 5 s, 60 s. Mean 686.8 ms; median rank 51 = 51 ms; p(99)
        // rank 101 = 5 s (HdrHistogram reports each bucket's highest equivalent value).
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
