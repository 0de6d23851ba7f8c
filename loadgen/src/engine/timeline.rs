//! The run's per-second load: the live counters sampled at whole seconds of the wall clock.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::runfile::LoadSample;

use super::Live;

/// The per-second load, as sampled so far.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    pub(super) samples: Vec<LoadSample>,
    /// Counters at the last sample.
    pub(super) requests: u64,
    pub(super) failures: u64,
    pub(super) offered: u64,
    pub(super) vus_min: Option<u64>,
    pub(super) vus_max: u64,
}

impl Timeline {
    fn sample(&mut self, live: &Live, t_ms: i64, arrival: bool) {
        let requests = live.requests.load(Ordering::Relaxed);
        let failures = live.failures.load(Ordering::Relaxed);
        let offered = live.offered.load(Ordering::Relaxed);
        let vus = live.active_vus.load(Ordering::Relaxed);
        self.samples.push(LoadSample {
            t_ms,
            vus,
            requests: requests - self.requests,
            failures: failures - self.failures,
            offered: arrival.then(|| offered - self.offered),
        });
        (self.requests, self.failures, self.offered) = (requests, failures, offered);
        self.vus_min = Some(self.vus_min.map_or(vus, |m| m.min(vus)));
        self.vus_max = self.vus_max.max(vus);
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
