//! Stopping the sandbox's parts, one way for all. Whoever ends a run holds a
//! [`ShutdownTrigger`]; each part that runs until then (the edge's accept loop, each shard's
//! poller, each function worker's supervisor) holds a [`Shutdown`] made from it, which it checks
//! between steps and awaits while it waits.

use std::time::Duration;

use tokio::sync::watch;

/// Ends the run of every [`Shutdown`] made from it, when told to or when dropped.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Default for ShutdownTrigger {
    fn default() -> Self {
        ShutdownTrigger(watch::channel(false).0)
    }
}

impl ShutdownTrigger {
    /// A stop nothing listens to yet.
    pub fn new() -> ShutdownTrigger {
        ShutdownTrigger::default()
    }

    /// A listener for a part that runs until this stop.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }

    /// Tells every listener to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// A part's view of its [`ShutdownTrigger`].
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Whether the part should stop now.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Completes when the part should stop.
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Waits for `delay`, or less when the part should stop meanwhile.
    pub async fn sleep(&mut self, delay: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = self.stopped() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_every_wait_and_so_does_dropping_it() {
        let stop = ShutdownTrigger::new();
        let mut a = stop.shutdown();
        let b = a.clone();
        assert!(!a.is_stopping());
        let started = tokio::time::Instant::now();
        let waiting = tokio::spawn(async move {
            a.sleep(Duration::from_secs(60)).await;
            a
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.stop();
        let mut a = waiting.await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(a.is_stopping() && b.is_stopping());
        a.stopped().await;

        let dropped = ShutdownTrigger::new();
        let mut c = dropped.shutdown();
        drop(dropped);
        assert!(c.is_stopping());
        c.stopped().await;
    }
}
