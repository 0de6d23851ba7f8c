//! What each VU counts (outcomes by kind, checks, bytes, accepted ids), merged at the end. The
//! timings go to [`crate::trends`].

use std::collections::BTreeMap;
use std::time::Duration;

use contract::runfile::IdRanges;

pub use crate::outcome::FailureKind;
use crate::outcome::Response;

/// One VU's counts, or the merge of several.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Requests attempted and finished, whatever the outcome (k6's `http_reqs`).
    pub requests: u64,
    /// Of those, never sent: no connection could be made ([`FailureKind::never_sent`]).
    pub unsent: u64,
    /// Requests answered 2xx.
    pub accepted: u64,
    /// Requests that failed, by kind (a non-2xx status is a failure).
    pub failures: BTreeMap<FailureKind, u64>,
    /// k6's `http_req_failed`: transport failures and statuses outside 200-399.
    pub http_failed: u64,
    /// Check `status is 200`: passes and fails.
    pub status_check: (u64, u64),
    /// Check `duration < max`: passes and fails.
    pub duration_check: (u64, u64),
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Which requests were answered 2xx, by VU and iteration.
    pub accepted_ids: IdRanges,
    /// Which requests went out and were not answered 2xx (an error status, a timeout, a cut
    /// connection, interrupted in flight): the API may have taken them all the same.
    pub unaccepted_ids: IdRanges,
    /// Requests abandoned in flight (a second Ctrl-C, or the graceful stop ran out): sent or
    /// not, accepted or not, nobody knows.
    pub interrupted: u64,
}

impl Stats {
    /// Requests that went out on a connection (attempted minus never sent).
    pub fn sent(&self) -> u64 {
        self.requests - self.unsent
    }

    /// Counts one request's outcome, judges its duration, and counts the body bytes it sent
    /// (only when a response proves the body went out). The duration itself goes to
    /// [`DurationBuffer::record`].
    pub fn record(
        &mut self,
        outcome: &Result<Response, FailureKind>,
        elapsed: Duration,
        sent: usize,
        max_duration: Duration,
    ) {
        self.requests += 1;
        match outcome {
            Ok(response) => {
                self.bytes_sent += sent as u64;
                self.bytes_received += response.body_bytes as u64;
                if (200..300).contains(&response.status) {
                    self.accepted += 1;
                } else {
                    *self
                        .failures
                        .entry(FailureKind::Status(response.status))
                        .or_insert(0) += 1;
                }
                if !(200..400).contains(&response.status) {
                    self.http_failed += 1;
                }
                tally(&mut self.status_check, response.status == 200);
            }
            Err(kind) => {
                *self.failures.entry(*kind).or_insert(0) += 1;
                if kind.never_sent() {
                    self.unsent += 1;
                }
                self.http_failed += 1;
                tally(&mut self.status_check, false);
            }
        }
        // The check judges the response time alone, as k6's `r.timings.duration < 4000` does:
        // a quick 5xx passes it, and a request without a response (k6 reports a duration of
        // 0 for it) passes too; the status check is the one that fails.
        let quick = match outcome {
            Ok(_) => elapsed < max_duration,
            Err(_) => true,
        };
        tally(&mut self.duration_check, quick);
    }

    /// Adds another VU's counts.
    pub fn merge(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.unsent += other.unsent;
        self.accepted += other.accepted;
        for (kind, n) in &other.failures {
            *self.failures.entry(*kind).or_insert(0) += n;
        }
        self.http_failed += other.http_failed;
        self.status_check.0 += other.status_check.0;
        self.status_check.1 += other.status_check.1;
        self.duration_check.0 += other.duration_check.0;
        self.duration_check.1 += other.duration_check.1;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.accepted_ids.merge(&other.accepted_ids);
        self.unaccepted_ids.merge(&other.unaccepted_ids);
        self.interrupted += other.interrupted;
    }

    /// Failed requests, all kinds.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

fn tally(check: &mut (u64, u64), passed: bool) {
    if passed {
        check.0 += 1;
    } else {
        check.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_by_kind_and_merges() {
        let max = Duration::from_secs(4);
        let ok = Ok(Response {
            status: 200,
            body_bytes: 21,
            ..Default::default()
        });
        let mut a = Stats::default();
        a.record(&ok, Duration::from_millis(3), 100, max);
        a.record(
            &Ok(Response {
                status: 500,
                body_bytes: 5,
                ..Default::default()
            }),
            Duration::from_millis(5),
            100,
            max,
        );
        a.record(
            &Ok(Response {
                status: 302,
                body_bytes: 0,
                ..Default::default()
            }),
            Duration::from_secs(5),
            100,
            max,
        );
        let mut b = Stats::default();
        b.record(
            &Err(FailureKind::Timeout),
            Duration::from_secs(60),
            100,
            max,
        );
        b.record(
            &Err(FailureKind::Refused),
            Duration::from_micros(10),
            100,
            max,
        );
        a.merge(&b);
        assert_eq!(
            (a.requests, a.accepted, a.failed(), a.http_failed),
            (5, 1, 4, 3)
        );
        assert_eq!(a.failures[&FailureKind::Status(500)], 1);
        assert_eq!(a.failures[&FailureKind::Status(302)], 1);
        assert_eq!(a.status_check, (1, 4));
        // The duration check judges the time alone, as k6's does: the quick 200 and 500 pass,
        // the 5 s 302 fails, and the timeout and refusal have no response (k6: duration 0).
        assert_eq!(a.duration_check, (4, 1));
        assert_eq!((a.bytes_sent, a.bytes_received), (300, 26));
        assert_eq!(FailureKind::Status(503).label(), "status_503");
    }
}
