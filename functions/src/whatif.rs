//! The sandbox's what-ifs that run inside a function, each set in the function's environment by
//! `sandbox up` and absent on AWS (where nothing happens):
//!
//! - `--burn FUNCTION=5ms` ([`contract::lambda::BURN_VAR`]): each invocation spends that much CPU
//!   time (measured on the thread's CPU clock, so at one full core it is that much wall time, and
//!   at Lambda's CPU share for a smaller memory size proportionally more) before the handler's
//!   own work;
//! - `--leak FUNCTION=40MB` ([`contract::lambda::LEAK_VAR`]): each invocation keeps that many
//!   more bytes, written, for as long as its process lives, as a leaking handler would; past
//!   the function's memory size (with `--cpu-share`) the process is killed, the invocation
//!   fails and is retried on a fresh one.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Runs the what-ifs the environment sets, once per invocation, before the handler's work.
pub fn each_invocation() {
    burn(burn_per_invocation());
    leak(leak_per_invocation());
}

/// The CPU time each invocation spends, from the environment (read once).
pub fn burn_per_invocation() -> Duration {
    static BURN: OnceLock<Duration> = OnceLock::new();
    *BURN.get_or_init(|| {
        std::env::var(contract::lambda::BURN_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_micros)
    })
}

/// The bytes each invocation keeps, from the environment (read once).
pub fn leak_per_invocation() -> usize {
    static LEAK: OnceLock<usize> = OnceLock::new();
    *LEAK.get_or_init(|| {
        std::env::var(contract::lambda::LEAK_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0)
    })
}

/// Keeps `bytes` more, written (so that they are resident), until the process ends.
pub fn leak(bytes: usize) {
    static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    if bytes == 0 {
        return;
    }
    let block = vec![0x5a_u8; bytes];
    KEPT.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(std::hint::black_box(block));
}

/// Spends `cpu` of this thread's CPU time, busy.
pub fn burn(cpu: Duration) {
    if cpu.is_zero() {
        return;
    }
    let Some(start) = thread_cpu() else {
        return;
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while thread_cpu().is_some_and(|now| now.saturating_sub(start) < cpu) {
        for _ in 0..1_000 {
            x = std::hint::black_box(x.rotate_left(7) ^ x.wrapping_mul(31));
        }
    }
}

/// This thread's CPU time so far.
fn thread_cpu() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (read == 0).then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's resident memory, MB (`VmRSS`).
    fn resident_mb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        kb / 1024
    }

    #[test]
    fn a_leak_stays_resident() {
        let before = resident_mb();
        leak(64 << 20);
        let after = resident_mb();
        assert!(after >= before + 60, "{before} MB, then {after} MB");
    }

    #[test]
    fn a_burn_spends_the_cpu_time_it_is_given() {
        let before = thread_cpu().unwrap();
        burn(Duration::from_millis(20));
        let spent = thread_cpu().unwrap() - before;
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
    }
}
