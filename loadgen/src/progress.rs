//! The live progress line on stderr (only when stderr is a terminal): elapsed, VUs, requests,
//! rate, errors.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Counters;

/// A drawn progress line and the task that updates it.
pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

/// Starts drawing, if stderr is a terminal.
pub fn start(live: Arc<Counters>, planned: Duration) -> Option<Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let drawn = bar.clone();
    let task = tokio::spawn(async move {
        let start = Instant::now();
        let mut last = (Instant::now(), 0u64);
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        loop {
            ticker.tick().await;
            let requests = live.requests.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate =
                (requests - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
            last = (now, requests);
            drawn.set_message(format!(
                "{:>4.0}s/{}s  vus {}  requests {}  {:.0}/s  errors {}",
                start.elapsed().as_secs_f64(),
                planned.as_secs(),
                live.active_vus.load(Ordering::Relaxed),
                requests,
                rate,
                live.failures.load(Ordering::Relaxed),
            ));
            drawn.tick();
        }
    });
    Some(Progress { bar, task })
}

impl Progress {
    /// Stops drawing and clears the line.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
