//! Each request's timings, as k6 splits them, gathered into one set of HdrHistograms per response
//! status for the whole run ([`Trends`]): memory grows with neither the run's length nor, beyond
//! a few hundred bytes each, the number of VUs. Each VU adds its samples through a
//! [`TrendBuffer`], a few dozen at a time (and at least once a second, so that a second's
//! durations reach the interval log within about a second of its end).
//!
//! | trend | from | to |
//! | --- | --- | --- |
//! | `http_req_blocked` | the request's turn | a connection ready (a new one: DNS, TCP, TLS) |
//! | `http_req_connecting` | TCP connect's start | its end (0 on a kept-alive connection) |
//! | `http_req_tls_handshaking` | the TLS handshake's start | its end (0 without TLS or reused) |
//! | `http_req_sending` | the request's first byte written | its last |
//! | `http_req_waiting` | the request written | the answer's first byte |
//! | `http_req_receiving` | the answer's first byte | its last |
//! | `http_req_duration` | sending + waiting + receiving | |
//! | `iteration_duration` | the iteration's start (arrival rate: its scheduled start) | its end |
//!
//! Status 0 is a request without an answer (refused, timed out, cut), as in k6.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest value the histograms track, µs (longer ones are counted as this).
pub const MAX_TRACKED_US: u64 = 3_600_000_000;
/// HdrHistogram precision: 3 significant figures (0.1 % relative error).
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// A new, empty histogram of µs (1 µs to [`MAX_TRACKED_US`], [`SIGNIFICANT_FIGURES`]).
pub fn duration_histogram() -> Histogram<u64> {
    // Bounds are constants within HdrHistogram's limits: construction cannot fail.
    Histogram::new_with_bounds(1, MAX_TRACKED_US, SIGNIFICANT_FIGURES)
        .unwrap_or_else(|_| Histogram::new(SIGNIFICANT_FIGURES).unwrap_or_else(|_| unreachable!()))
}

/// One of k6's timing trends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trend {
    /// `http_req_blocked`.
    Blocked,
    /// `http_req_connecting`.
    Connecting,
    /// `http_req_tls_handshaking`.
    TlsHandshaking,
    /// `http_req_sending`.
    Sending,
    /// `http_req_waiting`.
    Waiting,
    /// `http_req_receiving`.
    Receiving,
    /// `http_req_duration`.
    Duration,
    /// `iteration_duration`.
    Iteration,
}

impl Trend {
    /// Every trend, in k6's order of names.
    pub const ALL: [Trend; 8] = [
        Trend::Blocked,
        Trend::Connecting,
        Trend::Duration,
        Trend::Receiving,
        Trend::Sending,
        Trend::TlsHandshaking,
        Trend::Waiting,
        Trend::Iteration,
    ];

    /// k6's metric name.
    pub fn name(self) -> &'static str {
        match self {
            Trend::Blocked => "http_req_blocked",
            Trend::Connecting => "http_req_connecting",
            Trend::TlsHandshaking => "http_req_tls_handshaking",
            Trend::Sending => "http_req_sending",
            Trend::Waiting => "http_req_waiting",
            Trend::Receiving => "http_req_receiving",
            Trend::Duration => "http_req_duration",
            Trend::Iteration => "iteration_duration",
        }
    }

    /// The trend named `name`.
    pub fn named(name: &str) -> Option<Trend> {
        Trend::ALL.into_iter().find(|t| t.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One request's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timings {
    /// Its status (0: no answer).
    pub status: u16,
    /// `http_req_blocked`.
    pub blocked: Duration,
    /// `http_req_connecting`.
    pub connecting: Duration,
    /// `http_req_tls_handshaking`.
    pub tls_handshaking: Duration,
    /// `http_req_sending`.
    pub sending: Duration,
    /// `http_req_waiting`.
    pub waiting: Duration,
    /// `http_req_receiving`.
    pub receiving: Duration,
    /// `iteration_duration`.
    pub iteration: Duration,
}

impl Timings {
    /// `http_req_duration`: sending, waiting and receiving.
    pub fn duration(&self) -> Duration {
        self.sending + self.waiting + self.receiving
    }

    fn value(&self, trend: Trend) -> Duration {
        match trend {
            Trend::Blocked => self.blocked,
            Trend::Connecting => self.connecting,
            Trend::TlsHandshaking => self.tls_handshaking,
            Trend::Sending => self.sending,
            Trend::Waiting => self.waiting,
            Trend::Receiving => self.receiving,
            Trend::Duration => self.duration(),
            Trend::Iteration => self.iteration,
        }
    }
}

/// A histogram value, µs, within the tracked range.
/// A duration in µs within the tracked range. Zero stays zero (a reused connection's connecting
/// time): k6 reports it as `0`, and HdrHistogram records 0 exactly.
fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).min(MAX_TRACKED_US)
}

/// One request's timings as they wait in a VU's buffer: each trend's histogram value, µs (the
/// tracked range fits a `u32`), in 56 bytes where the `Duration`s took 136.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    status: u16,
    micros: [u32; 8],
}

impl Sample {
    fn of(at: Instant, timings: &Timings) -> Sample {
        Sample {
            at,
            status: timings.status,
            micros: values(timings),
        }
    }
}

/// Each trend's histogram value of one request, µs, in the trends' order.
fn values(timings: &Timings) -> [u32; 8] {
    let mut values = [0u32; 8];
    for trend in Trend::ALL {
        // At most MAX_TRACKED_US, which fits.
        values[trend.index()] = micros(timings.value(trend)) as u32;
    }
    values
}

/// One histogram per trend, µs.
#[derive(Debug, Clone)]
pub struct TrendSet {
    histograms: [Histogram<u64>; 8],
}

impl Default for TrendSet {
    fn default() -> Self {
        TrendSet {
            histograms: std::array::from_fn(|_| duration_histogram()),
        }
    }
}

impl TrendSet {
    /// The histogram of `trend`, µs.
    pub fn get(&self, trend: Trend) -> &Histogram<u64> {
        &self.histograms[trend.index()]
    }

    /// The histogram of `trend`, to add to.
    pub fn get_mut(&mut self, trend: Trend) -> &mut Histogram<u64> {
        &mut self.histograms[trend.index()]
    }

    /// Adds one request.
    pub fn record(&mut self, timings: &Timings) {
        self.record_values(&values(timings));
    }

    /// Adds one request's values, µs, one per trend.
    fn record_values(&mut self, values: &[u32; 8]) {
        for (histogram, &value) in self.histograms.iter_mut().zip(values) {
            // In range by the clamp in `micros`.
            let _ = histogram.record(u64::from(value));
        }
    }

    /// Adds another set.
    pub fn add(&mut self, other: &TrendSet) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            // Same bounds and precision: adding cannot fail.
            let _ = mine.add(theirs);
        }
    }

    /// Requests counted.
    pub fn requests(&self) -> u64 {
        self.get(Trend::Duration).len()
    }
}

/// The run's trends by response status, and what the interval log still has to write.
#[derive(Debug, Default)]
pub struct Trends {
    by_status: Mutex<BTreeMap<u16, TrendSet>>,
    /// `http_req_duration` per second of the run (`--hdr-log`), by the second's start.
    seconds: Option<Mutex<BTreeMap<Instant, Histogram<u64>>>>,
    /// The run's start, which the seconds count from.
    origin: Option<Instant>,
    /// With the seconds kept: for each VU's buffer, the second (from the origin, plus one) of
    /// the oldest sample it holds, 0 when it holds none. A second is taken for the log only
    /// once no buffer holds a sample of it, so each second is written once, whole, in order.
    holders: Mutex<Vec<Arc<AtomicU64>>>,
}

impl Trends {
    /// No samples yet; with `per_second_from`, `http_req_duration` is also kept second by
    /// second from that instant, for the interval log to take ([`Trends::take_seconds_before`]).
    pub fn new(per_second_from: Option<Instant>) -> Arc<Trends> {
        Arc::new(Trends {
            by_status: Mutex::default(),
            seconds: per_second_from.map(|_| Mutex::default()),
            origin: per_second_from,
            holders: Mutex::default(),
        })
    }

    /// A VU's buffer into these trends.
    pub fn buffer(self: &Arc<Self>) -> TrendBuffer {
        let held = self.origin.map(|_| {
            let held = Arc::new(AtomicU64::new(0));
            self.holders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(held.clone());
            held
        });
        TrendBuffer {
            shared: self.clone(),
            pending: Vec::with_capacity(TrendBuffer::CAPACITY),
            held,
        }
    }

    /// Every sample added so far, by status.
    pub fn by_status(&self) -> BTreeMap<u16, TrendSet> {
        self.by_status
            .lock()
            .map(|b| b.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The start of the second `at` falls in, counting whole seconds from the origin.
    fn second_of(&self, at: Instant) -> Option<Instant> {
        let origin = self.origin?;
        let whole = at.saturating_duration_since(origin).as_secs();
        Some(origin + Duration::from_secs(whole))
    }

    /// The start of the oldest second a VU's buffer still holds samples of (buffers of ended
    /// VUs are forgotten).
    fn oldest_held(&self) -> Option<Instant> {
        let origin = self.origin?;
        let mut holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
        holders.retain(|held| Arc::strong_count(held) > 1);
        let oldest = holders
            .iter()
            .map(|held| held.load(Ordering::Acquire))
            .filter(|&second| second > 0)
            .min()?;
        Some(origin + Duration::from_secs(oldest - 1))
    }

    /// The per-second `http_req_duration` histograms of the seconds that started before
    /// `before` and that no VU still holds samples of, in order, removed from what is kept.
    pub fn take_seconds_before(&self, before: Instant) -> Vec<(Instant, Histogram<u64>)> {
        let Some(seconds) = &self.seconds else {
            return Vec::new();
        };
        let before = self.oldest_held().map_or(before, |held| held.min(before));
        let mut seconds = seconds.lock().unwrap_or_else(|p| p.into_inner());
        let later = seconds.split_off(&before);
        std::mem::replace(&mut *seconds, later)
            .into_iter()
            .collect()
    }

    fn add(&self, pending: &mut Vec<Sample>) {
        {
            let mut by_status = self.by_status.lock().unwrap_or_else(|p| p.into_inner());
            for sample in pending.iter() {
                by_status
                    .entry(sample.status)
                    .or_default()
                    .record_values(&sample.micros);
            }
        }
        if let Some(seconds) = &self.seconds {
            let mut seconds = seconds.lock().unwrap_or_else(|p| p.into_inner());
            for sample in pending.iter() {
                if let Some(second) = self.second_of(sample.at) {
                    let histogram = seconds.entry(second).or_insert_with(duration_histogram);
                    let _ = histogram.record(u64::from(sample.micros[Trend::Duration.index()]));
                }
            }
        }
        pending.clear();
    }
}

/// One VU's samples on their way to the run's trends: added under their lock a few dozen at a
/// time, when a new second starts, and when the VU ends (dropped).
#[derive(Debug)]
pub struct TrendBuffer {
    shared: Arc<Trends>,
    pending: Vec<Sample>,
    /// With the seconds kept: the oldest second held (see `Trends::holders`).
    held: Option<Arc<AtomicU64>>,
}

impl TrendBuffer {
    /// Samples held before they are added.
    pub const CAPACITY: usize = 32;

    /// Records one request's timings, ended at `at`.
    pub fn record(&mut self, at: Instant, timings: Timings) {
        let new_second = self
            .pending
            .first()
            .is_some_and(|first| self.shared.second_of(first.at) != self.shared.second_of(at));
        if new_second {
            self.flush();
        }
        if self.pending.is_empty() {
            if let (Some(held), Some(origin)) = (&self.held, self.shared.origin) {
                let second = at.saturating_duration_since(origin).as_secs();
                held.store(second + 1, Ordering::Release);
            }
        }
        self.pending.push(Sample::of(at, &timings));
        if self.pending.len() == Self::CAPACITY {
            self.flush();
        }
    }

    /// Adds what is held to the run's trends.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.shared.add(&mut self.pending);
            if let Some(held) = &self.held {
                held.store(0, Ordering::Release);
            }
        }
    }
}

impl Drop for TrendBuffer {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(status: u16, waiting_ms: u64) -> Timings {
        Timings {
            status,
            waiting: Duration::from_millis(waiting_ms),
            sending: Duration::from_micros(10),
            iteration: Duration::from_millis(waiting_ms + 1),
            ..Default::default()
        }
    }

    #[test]
    fn every_vus_samples_reach_the_runs_trends_by_status() {
        let origin = Instant::now();
        let trends = Trends::new(Some(origin));
        let mut buffers: Vec<TrendBuffer> = (0..3).map(|_| trends.buffer()).collect();
        for (vu, buffer) in buffers.iter_mut().enumerate() {
            for i in 0..40u64 {
                let status = if i % 10 == 0 { 500 } else { 200 };
                buffer.record(origin, timings(status, vu as u64 + 1));
            }
        }
        // Full buffers were added as they filled; the rest waits for the VU's end.
        let so_far: u64 = trends.by_status().values().map(TrendSet::requests).sum();
        assert_eq!(so_far, 3 * 32);
        drop(buffers);
        let all = trends.by_status();
        assert_eq!(all[&200].requests(), 3 * 36);
        assert_eq!(all[&500].requests(), 3 * 4);
        let waiting = all[&200].get(Trend::Waiting);
        assert_eq!((waiting.min(), waiting.max()), (1000, 3001));
        // http_req_duration is sending + waiting + receiving.
        assert_eq!(all[&200].get(Trend::Duration).min(), 1010);
    }

    #[test]
    fn a_new_second_flushes_so_the_interval_log_is_never_late_by_more_than_a_second() {
        let origin = Instant::now();
        let trends = Trends::new(Some(origin));
        let mut buffer = trends.buffer();
        buffer.record(origin, timings(200, 5));
        buffer.record(origin + Duration::from_millis(999), timings(200, 6));
        assert!(trends
            .take_seconds_before(origin + Duration::from_secs(1))
            .is_empty());
        // A sample in the next second sends the first second's on.
        buffer.record(origin + Duration::from_millis(1000), timings(200, 7));
        let first = trends.take_seconds_before(origin + Duration::from_secs(1));
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].0, first[0].1.len()), (origin, 2));
        drop(buffer);
        let second = trends.take_seconds_before(origin + Duration::from_secs(10));
        assert_eq!(second[0].0, origin + Duration::from_secs(1));
        assert_eq!(Trend::named("http_req_waiting"), Some(Trend::Waiting));
    }

    #[test]
    fn a_second_a_quiet_vu_still_holds_is_not_taken_until_it_lets_go() {
        let origin = Instant::now();
        let trends = Trends::new(Some(origin));
        let mut quiet = trends.buffer();
        let mut busy = trends.buffer();
        quiet.record(origin + Duration::from_millis(500), timings(200, 5));
        for i in 0..5u64 {
            busy.record(origin + Duration::from_secs(i), timings(200, 1));
        }
        // The busy VU moved on to second 4; the quiet one still holds a sample of second 0.
        assert!(trends
            .take_seconds_before(origin + Duration::from_secs(3))
            .is_empty());
        drop(quiet);
        let taken = trends.take_seconds_before(origin + Duration::from_secs(3));
        let seconds: Vec<_> = taken.iter().map(|(at, h)| (*at, h.len())).collect();
        assert_eq!(
            seconds,
            vec![
                (origin, 2),
                (origin + Duration::from_secs(1), 1),
                (origin + Duration::from_secs(2), 1),
            ],
            "second 0 whole, once, with the quiet VU's sample"
        );
    }

    #[test]
    fn a_buffered_sample_is_56_bytes() {
        // 32 of them per VU: the size is most of a VU's memory.
        assert_eq!(std::mem::size_of::<Sample>(), 56);
        let sample = Sample::of(Instant::now(), &timings(200, 3));
        assert_eq!(sample.micros[Trend::Waiting.index()], 3000);
        assert_eq!(sample.micros[Trend::Duration.index()], 3010);
        assert_eq!(
            sample.micros[Trend::Blocked.index()],
            0,
            "no time is 0, as k6 writes it"
        );
    }
}
