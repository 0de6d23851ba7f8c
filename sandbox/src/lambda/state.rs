//! One worker's state as its Runtime API and its supervisor share it: the invocation in flight,
//! the generation that retires an idle worker, and the queue to give a job back to.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

use super::telemetry::{peak_memory_mb, Ended, Telemetry};
use super::{InvokeError, LogSink};

pub(super) type Reply = oneshot::Sender<Result<Bytes, InvokeError>>;

pub(super) struct Job {
    pub(super) payload: Bytes,
    pub(super) reply: Reply,
}

pub(super) struct InFlight {
    pub(super) request_id: String,
    pub(super) payload: Bytes,
    pub(super) deadline: Instant,
    pub(super) reply: Reply,
    /// When the worker took it.
    pub(super) started: Instant,
    /// The worker's init, when this is its first invocation.
    pub(super) init: Option<Duration>,
}

/// One worker's Runtime API state.
pub(super) struct Worker {
    pub(super) current: Mutex<Option<InFlight>>,
    pub(super) changed: Notify,
    /// Bumped (under `current`'s lock) when an idle worker is retired for a new binary: a
    /// `/next` begun before it takes no job, and a job it took anyway goes back to the queue.
    pub(super) generation: watch::Sender<u64>,
    /// The function's queue, for a job taken by a retired worker's `/next`.
    pub(super) requeue: mpsc::WeakSender<Job>,
    /// Set (then `changed` notified) when fault injection wants the process killed.
    pub(super) kill: AtomicBool,
    /// The function's name, for its log lines.
    pub(super) name: String,
    /// Where Lambda's lines go.
    pub(super) logs: LogSink,
    /// The function's tally of Lambda's metrics.
    pub(super) telemetry: Arc<Telemetry>,
    /// The current process's pid (0 before the first).
    pub(super) pid: AtomicU32,
    /// When the current process started, until its first `/next` takes it (its init).
    pub(super) spawned: Mutex<Option<Instant>>,
    /// What-if: µs added to each invocation before the process gets it.
    pub(super) delay_us: std::sync::atomic::AtomicU64,
}

impl Worker {
    /// Puts a job back on the function's queue, without waiting (so that cancelling the caller
    /// cannot lose it).
    pub(super) fn send_back(&self, job: Job) {
        let Some(queue) = self.requeue.upgrade() else {
            let _ = job.reply.send(Err(InvokeError::Stopped));
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(job)) = queue.try_send(job) {
            tokio::spawn(async move {
                let _ = queue.send(job).await;
            });
        }
    }

    /// Sends an invocation handed to a replaced process back to the queue.
    pub(super) fn requeue_current(&self) {
        let job = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            current.take().map(|c| Job {
                payload: c.payload,
                reply: c.reply,
            })
        };
        if job.is_some() {
            self.telemetry.no_longer_in_flight();
        }
        if let Some(job) = job {
            self.send_back(job);
        }
    }

    /// Retires the worker if no invocation is in flight: its pending `/next` gives up, and no
    /// job can reach it any more. Returns whether it did.
    pub(super) fn retire_if_idle(&self) -> bool {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_some() {
            return false;
        }
        self.generation.send_modify(|g| *g += 1);
        true
    }

    pub(super) fn finish(
        &self,
        request_id: Option<&str>,
        result: Result<Bytes, InvokeError>,
    ) -> bool {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let matches = match (&*current, request_id) {
            (Some(job), Some(id)) => job.request_id == id,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if matches {
            if let Some(job) = current.take() {
                self.report(&job, &result);
                let _ = job.reply.send(result);
            }
            self.changed.notify_waiters();
        }
        matches
    }

    /// A process started: its init runs until its first `/next`.
    pub(super) fn spawned(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
        *self.spawned.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// The process's init, the first time it asks for an invocation.
    pub(super) fn take_init(&self) -> Option<Duration> {
        let spawned = self
            .spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        spawned.map(|at| at.elapsed())
    }

    /// Lambda's lines and metrics for an invocation that ended.
    fn report(&self, job: &InFlight, result: &Result<Bytes, InvokeError>) {
        let status = match result {
            // A throttled invocation never reaches a worker; a stopped one ends unreported.
            Err(InvokeError::Stopped | InvokeError::Throttled(_)) => {
                self.telemetry.no_longer_in_flight();
                return;
            }
            Err(InvokeError::Timeout(_)) => Some("timeout"),
            Err(InvokeError::Crashed(_) | InvokeError::Killed) => Some("error"),
            Ok(_) | Err(InvokeError::Function { .. }) => None,
        };
        let pid = self.pid.load(Ordering::Relaxed);
        let lines = self.telemetry.ended(&Ended {
            request_id: &job.request_id,
            duration: job.started.elapsed(),
            init: job.init,
            memory_used_mb: (pid != 0).then(|| peak_memory_mb(pid)).flatten(),
            failed: result.is_err(),
            status,
        });
        for line in lines {
            (self.logs)(&self.name, &line);
        }
    }
}
