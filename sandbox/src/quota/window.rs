//! The two ways AWS counts a rate quota: per wall-clock second (Kinesis, DynamoDB), and as a
//! token bucket (API Gateway).

use std::time::Instant;

/// Up to `limit` units in each wall-clock second; the next second starts from zero. One
/// request larger than the whole limit is taken in a second that has taken nothing yet, so a
/// scaled-down quota never refuses a request forever for its size alone (sizes are AWS's, only
/// rates are scaled).
#[derive(Debug, Clone)]
pub struct PerSecond {
    limit: f64,
    second: u64,
    used: f64,
}

impl PerSecond {
    /// A quota of `limit` units a second.
    pub fn new(limit: f64) -> PerSecond {
        PerSecond {
            limit,
            second: 0,
            used: 0.0,
        }
    }

    /// The units a second.
    pub fn limit(&self) -> f64 {
        self.limit
    }

    fn roll(&mut self, now_ms: u64) {
        let second = now_ms / 1000;
        if second != self.second {
            self.second = second;
            self.used = 0.0;
        }
    }

    /// Whether `units` more fit in the second of `now_ms`.
    pub fn fits(&mut self, now_ms: u64, units: f64) -> bool {
        self.roll(now_ms);
        self.used + units <= self.limit + 1e-9 || (self.used == 0.0 && units > self.limit)
    }

    /// Takes `units` from the second of `now_ms` (call after [`PerSecond::fits`]).
    pub fn take(&mut self, now_ms: u64, units: f64) {
        self.roll(now_ms);
        self.used += units;
    }

    /// Takes `units` if they fit; whether they did.
    pub fn try_take(&mut self, now_ms: u64, units: f64) -> bool {
        let fits = self.fits(now_ms, units);
        if fits {
            self.take(now_ms, units);
        }
        fits
    }

    /// Milliseconds from `now_ms` until the next second starts.
    pub fn ms_to_next_second(now_ms: u64) -> u64 {
        1000 - now_ms % 1000
    }
}

/// A token bucket: `burst` tokens at most, refilled at `rate` a second; each request takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            at: now,
        }
    }

    /// Takes a token at `now` if there is one; whether there was.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_second_takes_its_limit_and_the_next_starts_afresh() {
        let mut quota = PerSecond::new(100.0);
        let second = 1_800_000_000_000;
        let taken = (0..101).filter(|i| quota.try_take(second + i, 1.0)).count();
        assert_eq!(taken, 100, "the 101st record in a second is refused");
        assert!(quota.try_take(second + 1000, 1.0), "and taken the next");
        assert_eq!(PerSecond::ms_to_next_second(second + 250), 750);
    }

    #[test]
    fn one_request_over_the_whole_limit_passes_alone_in_a_fresh_second() {
        let mut quota = PerSecond::new(1000.0);
        assert!(quota.try_take(5_000, 4000.0));
        assert!(!quota.try_take(5_001, 1.0));
        assert!(!quota.try_take(5_002, 4000.0));
        assert!(quota.try_take(6_000, 4000.0));
    }

    #[test]
    fn the_bucket_spends_its_burst_then_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5.0, start);
        assert_eq!((0..8).filter(|_| bucket.try_take(start)).count(), 5);
        // A second later, 10 more at most (the burst caps it at 5).
        let later = start + Duration::from_secs(1);
        assert_eq!((0..8).filter(|_| bucket.try_take(later)).count(), 5);
        // 100 ms later: one token.
        let soon = later + Duration::from_millis(100);
        assert_eq!((0..3).filter(|_| bucket.try_take(soon)).count(), 1);
    }
}
