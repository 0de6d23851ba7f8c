//! What a function's invocations add up to between two publications of Lambda's metrics, and
//! the `START`, `END` and `REPORT` lines Lambda writes around each invocation.
//!
//! The numbers are Lambda's: `Duration` from the moment the worker took the invocation to its
//! answer; `Init Duration`, on a worker's first invocation, from its process's start to its
//! first `/next`; `Max Memory Used`, the process's peak resident memory (`VmHWM`); `Billed
//! Duration` as [`contract::lambda::billed_ms`] rounds it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What one function did since the last [`Telemetry::take`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Invocations that ended (answered, failed, timed out, crashed).
    pub invocations: u64,
    /// Those that did not end in an answer.
    pub errors: u64,
    /// Invocations refused for lack of concurrency (never started).
    pub throttles: u64,
    /// Each one's duration, ms.
    pub durations_ms: Vec<f64>,
    /// Most invocations in flight at once.
    pub concurrency_max: u32,
    /// Each cold start's init duration, ms.
    pub init_ms: Vec<f64>,
    /// The highest peak memory of a worker that ended an invocation, MB.
    pub memory_max_mb: Option<u64>,
    /// The iterator age of each batch an event source mapping handed over, ms.
    pub iterator_age_ms: Vec<f64>,
    /// The function's configured memory, MB.
    pub memory_size_mb: u32,
}

impl Tally {
    /// Nothing happened.
    pub fn is_empty(&self) -> bool {
        self.invocations == 0
            && self.throttles == 0
            && self.concurrency_max == 0
            && self.iterator_age_ms.is_empty()
    }
}

/// One ended invocation, as the `REPORT` line tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// From the worker taking it to its end.
    pub duration: Duration,
    /// The worker's init, when this was its first invocation.
    pub init: Option<Duration>,
    /// The worker's peak memory, MB, when it could be read.
    pub memory_used_mb: Option<u64>,
    /// It did not end in an answer (a function error, a timeout, a crash).
    pub failed: bool,
    /// The `Status` Lambda adds when the runtime did not finish it (`timeout`, `error`).
    pub status: Option<&'static str>,
}

/// One function's tally, shared by its workers and its pollers.
#[derive(Debug)]
pub struct Telemetry {
    memory_mb: AtomicU32,
    in_flight: AtomicU32,
    tally: Mutex<Tally>,
}

impl Telemetry {
    /// A function configured with `memory_mb`.
    pub fn new(memory_mb: u32) -> Telemetry {
        Telemetry {
            memory_mb: memory_mb.into(),
            in_flight: AtomicU32::new(0),
            tally: Mutex::new(Tally::default()),
        }
    }

    /// The function's memory size changed (`UpdateFunctionConfiguration`): the REPORT lines and
    /// `total_memory` say the new size from now on.
    pub fn set_memory_mb(&self, memory_mb: u32) {
        self.memory_mb.store(memory_mb, Ordering::Relaxed);
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker took an invocation: Lambda's `START` line.
    pub fn started(&self, request_id: &str) -> String {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let mut tally = self.tally();
        tally.concurrency_max = tally.concurrency_max.max(now);
        format!("START RequestId: {request_id} Version: $LATEST")
    }

    /// An invocation ended: Lambda's `END` and `REPORT` lines.
    pub fn ended(&self, ended: &Ended) -> [String; 2] {
        self.no_longer_in_flight();
        let duration_ms = ended.duration.as_secs_f64() * 1000.0;
        let init_ms = ended.init.map(|d| d.as_secs_f64() * 1000.0);
        {
            let mut tally = self.tally();
            tally.invocations += 1;
            tally.errors += u64::from(ended.failed);
            tally.durations_ms.push(duration_ms);
            tally.init_ms.extend(init_ms);
            if let Some(used) = ended.memory_used_mb {
                tally.memory_max_mb = Some(tally.memory_max_mb.map_or(used, |m| m.max(used)));
            }
        }
        let mut report = format!(
            "REPORT RequestId: {}\tDuration: {duration_ms:.2} ms\tBilled Duration: {} ms\t\
             Memory Size: {} MB\tMax Memory Used: {} MB",
            ended.request_id,
            contract::lambda::billed_ms(duration_ms, init_ms),
            self.memory_mb.load(Ordering::Relaxed),
            ended
                .memory_used_mb
                .map_or_else(|| "-".to_owned(), |m| m.to_string()),
        );
        if let Some(init_ms) = init_ms {
            report.push_str(&format!("\tInit Duration: {init_ms:.2} ms"));
        }
        if let Some(status) = ended.status {
            report.push_str(&format!("\tStatus: {status}"));
        }
        [format!("END RequestId: {}", ended.request_id), report]
    }

    /// An invocation a worker took is no longer in flight: it ended, or went back to the queue
    /// unfinished (its worker was replaced).
    pub fn no_longer_in_flight(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// An invocation was throttled (Lambda's `Throttles`).
    pub fn throttled(&self) {
        self.tally().throttles += 1;
    }

    /// An event source mapping handed the function a batch whose last record reached the
    /// stream `age` ago.
    pub fn batch_delivered(&self, age: Duration) {
        self.tally()
            .iterator_age_ms
            .push(age.as_secs_f64() * 1000.0);
    }

    /// What happened since the last call; the concurrency maximum starts again from what is in
    /// flight now.
    pub fn take(&self) -> Tally {
        let mut tally = self.tally();
        let mut taken = std::mem::take(&mut *tally);
        tally.concurrency_max = self.in_flight.load(Ordering::Relaxed);
        taken.memory_size_mb = self.memory_mb.load(Ordering::Relaxed);
        taken
    }
}

/// A process's peak resident memory, MB (`VmHWM` in `/proc/PID/status`), rounded up.
pub fn peak_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_are_lambdas() {
        let telemetry = Telemetry::new(128);
        assert_eq!(
            telemetry.started("r-1"),
            "START RequestId: r-1 Version: $LATEST"
        );
        let [end, report] = telemetry.ended(&Ended {
            request_id: "r-1",
            duration: Duration::from_micros(12_346),
            init: Some(Duration::from_micros(4_500)),
            memory_used_mb: Some(21),
            failed: false,
            status: None,
        });
        assert_eq!(end, "END RequestId: r-1");
        assert_eq!(
            report,
            "REPORT RequestId: r-1\tDuration: 12.35 ms\tBilled Duration: 17 ms\tMemory Size: \
             128 MB\tMax Memory Used: 21 MB\tInit Duration: 4.50 ms"
        );
        let [_, timed_out] = telemetry.ended(&Ended {
            request_id: "r-2",
            duration: Duration::from_secs(3),
            init: None,
            memory_used_mb: None,
            failed: true,
            status: Some("timeout"),
        });
        assert!(
            timed_out.ends_with("Max Memory Used: - MB\tStatus: timeout"),
            "{timed_out}"
        );
    }

    #[test]
    fn a_tally_counts_what_happened_since_the_last_one() {
        let telemetry = Telemetry::new(128);
        telemetry.started("a");
        telemetry.started("b");
        let ended = |id, failed| Ended {
            request_id: id,
            duration: Duration::from_millis(2),
            init: None,
            memory_used_mb: Some(30),
            failed,
            status: None,
        };
        telemetry.ended(&ended("a", false));
        telemetry.batch_delivered(Duration::from_millis(40));
        let tally = telemetry.take();
        assert_eq!(tally.invocations, 1);
        assert_eq!(tally.errors, 0);
        assert_eq!(tally.concurrency_max, 2);
        assert_eq!(tally.memory_max_mb, Some(30));
        assert_eq!(tally.iterator_age_ms, vec![40.0]);
        // One still in flight: the next tally starts from it.
        let next = telemetry.take();
        assert_eq!(next.concurrency_max, 1);
        assert_eq!(next.invocations, 0);
        telemetry.ended(&ended("b", true));
        let last = telemetry.take();
        assert_eq!((last.invocations, last.errors), (1, 1));
        assert!(telemetry.take().is_empty());
    }

    #[test]
    fn reads_this_process_s_peak_memory() {
        let mb = peak_memory_mb(std::process::id()).unwrap();
        assert!(mb > 0 && mb < 64 * 1024, "{mb}");
    }
}
