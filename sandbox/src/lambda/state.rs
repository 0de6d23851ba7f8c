//! One worker's state as its Runtime API and its supervisor share it: the invocation in flight,
//! the generation that retires an idle worker, and the queue to give a job back to.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

use super::InvokeError;

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
                let _ = job.reply.send(result);
            }
            self.changed.notify_waiters();
        }
        matches
    }
}
