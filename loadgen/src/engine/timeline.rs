//! The run's per-second load, counted where it happens: each request in the second it completed
//! and each arrival-rate start in the second it was scheduled, by the VU or dispatcher itself, so
//! the seconds are exact however busy the machine is (a sampler task starved by 15,000 VUs saw
//! only some of them). Only the VUs iterating are sampled, at whole seconds of the wall clock;
//! a second without a sample carries the last one forward.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::runfile::LoadSample;

use super::Counters;

/// No sample of the VUs in this second.
const UNSAMPLED: u64 = u64::MAX;

#[derive(Debug)]
struct Slot {
    requests: AtomicU64,
    failures: AtomicU64,
    offered: AtomicU64,
    vus: AtomicU64,
}

/// The run's seconds: whole seconds of the wall clock from the one the run started in (the
/// first partial), so that they line up with the pipeline's per-second metrics.
#[derive(Debug)]
pub(super) struct Seconds {
    /// The run's start.
    origin: Instant,
    /// Milliseconds from the first whole second to the run's start.
    offset_ms: u64,
    /// Start of the first second, epoch ms.
    first_ms: i64,
    slots: Box<[Slot]>,
}

impl Seconds {
    /// The seconds of a run that started at `origin` (`start_ms`, epoch ms) and lasts at most
    /// `length` (a later event counts in the last second).
    pub(super) fn new(origin: Instant, start_ms: i64, length: Duration) -> Seconds {
        let first_ms = start_ms.div_euclid(1000) * 1000;
        let count = (length.as_secs() + 3) as usize;
        Seconds {
            origin,
            offset_ms: (start_ms - first_ms) as u64,
            first_ms,
            slots: (0..count)
                .map(|_| Slot {
                    requests: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    offered: AtomicU64::new(0),
                    vus: AtomicU64::new(UNSAMPLED),
                })
                .collect(),
        }
    }

    fn slot(&self, at: Instant) -> &Slot {
        let ms = self.offset_ms + at.saturating_duration_since(self.origin).as_millis() as u64;
        let index = ((ms / 1000) as usize).min(self.slots.len() - 1);
        &self.slots[index]
    }

    /// A request completed at `at`.
    pub(super) fn request(&self, at: Instant, failed: bool) {
        let slot = self.slot(at);
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            slot.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An arrival-rate start scheduled at `at`, dropped or not.
    pub(super) fn offered(&self, at: Instant) {
        self.slot(at).offered.fetch_add(1, Ordering::Relaxed);
    }

    /// The run as seconds, up to the last one with a request or a start; and the fewest and
    /// most VUs sampled (`vus` when none was).
    pub(super) fn samples(&self, vus: u64, arrival: bool) -> (Vec<LoadSample>, (u64, u64)) {
        let used = self
            .slots
            .iter()
            .rposition(|s| {
                s.requests.load(Ordering::Relaxed) > 0 || s.offered.load(Ordering::Relaxed) > 0
            })
            .map_or(0, |last| last + 1);
        let mut seen: Option<(u64, u64)> = None;
        let mut last_vus = None;
        let samples = self.slots[..used]
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let sampled = slot.vus.load(Ordering::Relaxed);
                if sampled != UNSAMPLED {
                    seen = Some(seen.map_or((sampled, sampled), |(lo, hi)| {
                        (lo.min(sampled), hi.max(sampled))
                    }));
                    last_vus = Some(sampled);
                }
                LoadSample {
                    t_ms: self.first_ms + i as i64 * 1000,
                    vus: last_vus.unwrap_or(vus),
                    requests: slot.requests.load(Ordering::Relaxed),
                    failures: slot.failures.load(Ordering::Relaxed),
                    offered: arrival.then(|| slot.offered.load(Ordering::Relaxed)),
                }
            })
            .collect();
        (samples, seen.unwrap_or((vus, vus)))
    }
}

/// Samples the VUs iterating at the end of each whole second, until aborted.
pub(super) async fn sample_vus(live: Arc<Counters>, seconds: Arc<Seconds>) {
    let until_next = Duration::from_millis(1000 - seconds.offset_ms);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::from_std(seconds.origin) + until_next,
        Duration::from_secs(1),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // The second that has just ended, by the tick's own time (it may fire late).
        let ended = ticker.tick().await.into_std() - Duration::from_millis(1);
        let vus = live.active_vus.load(Ordering::Relaxed);
        seconds.slot(ended).vus.store(vus, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_counts_in_the_second_it_completed() {
        let origin = Instant::now();
        // Started 400 ms into a second.
        let seconds = Seconds::new(origin, 10_400, Duration::from_secs(5));
        let at = |ms: u64| origin + Duration::from_millis(ms);
        seconds.request(at(0), false);
        seconds.request(at(599), true);
        seconds.request(at(600), false);
        seconds.request(at(2_700), false);
        seconds.offered(at(100));
        seconds.slot(at(599)).vus.store(7, Ordering::Relaxed);
        // Long past the run's length: the last second.
        seconds.request(at(60_000), false);
        let (samples, seen) = seconds.samples(10, true);
        let counts: Vec<_> = samples
            .iter()
            .map(|s| (s.t_ms, s.requests, s.failures, s.offered, s.vus))
            .collect();
        assert_eq!(
            counts,
            [
                (10_000, 2, 1, Some(1), 7),
                (11_000, 1, 0, Some(0), 7),
                (12_000, 0, 0, Some(0), 7),
                (13_000, 1, 0, Some(0), 7),
                (14_000, 0, 0, Some(0), 7),
                (15_000, 0, 0, Some(0), 7),
                (16_000, 0, 0, Some(0), 7),
                (17_000, 1, 0, Some(0), 7),
            ]
        );
        assert_eq!(seen, (7, 7));
        let (_, seen) = Seconds::new(origin, 0, Duration::ZERO).samples(3, false);
        assert_eq!(seen, (3, 3), "no sample: the configured VUs");
    }
}
