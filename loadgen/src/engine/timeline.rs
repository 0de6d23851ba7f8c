//! The run's per-second load: the live counters sampled at whole seconds of the wall clock.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::runfile::LoadSample;

use super::Live;

/// The per-second load, as sampled so far.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    samples: Vec<LoadSample>,
    /// Counters at the last sample.
    requests: u64,
    failures: u64,
    offered: u64,
    vus_min: Option<u64>,
    vus_max: u64,
}

impl Timeline {
    /// Adds the second ending now, at `t_ms`, with the VUs iterating now.
    fn sample(&mut self, live: &Live, t_ms: i64, arrival: bool) {
        let vus = live.active_vus.load(Ordering::Relaxed);
        self.push(live, t_ms, vus, arrival);
        self.vus_min = Some(self.vus_min.map_or(vus, |m| m.min(vus)));
        self.vus_max = self.vus_max.max(vus);
    }

    /// The counters since the last sample, as the second at `t_ms` with `vus` VUs.
    fn push(&mut self, live: &Live, t_ms: i64, vus: u64, arrival: bool) {
        let requests = live.requests.load(Ordering::Relaxed);
        let failures = live.failures.load(Ordering::Relaxed);
        let offered = live.offered.load(Ordering::Relaxed);
        self.samples.push(LoadSample {
            t_ms,
            vus,
            requests: requests - self.requests,
            failures: failures - self.failures,
            offered: arrival.then(|| offered - self.offered),
        });
        (self.requests, self.failures, self.offered) = (requests, failures, offered);
    }

    /// Once every VU has stopped: adds the last, partial second if it saw requests (with the
    /// previous second's VU count, else `vus`), and returns the samples and the fewest and most
    /// VUs seen iterating (`vus` when no second was sampled).
    pub(super) fn finish(
        mut self,
        live: &Live,
        start_ms: i64,
        vus: u64,
        arrival: bool,
    ) -> (Vec<LoadSample>, (u64, u64)) {
        if live.requests.load(Ordering::Relaxed) > self.requests {
            let t_ms = start_ms.div_euclid(1000) * 1000 + self.samples.len() as i64 * 1000;
            let last = self.samples.last().map_or(vus, |s| s.vus);
            self.push(live, t_ms, last, arrival);
        }
        let seen = self.vus_min.map_or((vus, vus), |min| (min, self.vus_max));
        (self.samples, seen)
    }
}

/// Samples the live counters once a second, until aborted.
/// Samples are whole seconds of the wall clock (the first one partial, from the start), so that
/// they line up with the pipeline's per-second metrics.
pub(super) async fn sample_timeline(
    live: Arc<Live>,
    start_ms: i64,
    timeline: Arc<Mutex<Timeline>>,
    arrival: bool,
) {
    let first_second = start_ms.div_euclid(1000) * 1000;
    let until_next = Duration::from_millis((first_second + 1000 - start_ms) as u64);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + until_next,
        Duration::from_secs(1),
    );
    let mut second = 0i64;
    loop {
        ticker.tick().await;
        if let Ok(mut timeline) = timeline.lock() {
            timeline.sample(&live, first_second + second * 1000, arrival);
        }
        second += 1;
    }
}
