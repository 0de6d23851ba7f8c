//! The sandbox's what-ifs that run inside a function: `sandbox up --burn FUNCTION=5ms` puts
//! [`contract::lambda::BURN_VAR`] in the function's environment, and each invocation then spends
//! that much CPU time (measured on the thread's CPU clock, so at one full core it is that much
//! wall time, and at Lambda's CPU share for a smaller memory size proportionally more) before
//! the handler's own work. On AWS the variable is absent and nothing is spent.

use std::sync::OnceLock;
use std::time::Duration;

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

    #[test]
    fn a_burn_spends_the_cpu_time_it_is_given() {
        let before = thread_cpu().unwrap();
        burn(Duration::from_millis(20));
        let spent = thread_cpu().unwrap() - before;
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
    }
}
