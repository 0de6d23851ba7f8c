//! The arrival-rate curve: when each iteration of an open-model run starts.
//!
//! The rate is piecewise linear: from `start_rate`, each stage moves it linearly to its target
//! over its duration (k6's `ramping-arrival-rate`; a constant rate is one flat stage). Iteration
//! `n` (from 0) starts at the moment the area under the curve reaches `n`, so the starts in any
//! interval are the area over it, to within one, and the whole run starts `⌈area⌉` iterations.

use std::time::Duration;

/// One stage of the rate curve: reach `target` iterations per second, linearly, over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateStage {
    /// How long the ramp takes.
    pub duration: Duration,
    /// Iterations per second at its end.
    pub target: f64,
}

/// A piecewise-linear arrival rate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateSchedule {
    /// Iterations per second at the start.
    pub start_rate: f64,
    /// The ramps, in order.
    pub stages: Vec<RateStage>,
}

impl RateSchedule {
    /// A constant `rate` for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> RateSchedule {
        RateSchedule {
            start_rate: rate,
            stages: vec![RateStage {
                duration,
                target: rate,
            }],
        }
    }

    /// The schedule's length.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Each stage as `(start offset, length in s, rate at its start, rate at its end)`.
    fn pieces(&self) -> impl Iterator<Item = (f64, f64, f64, f64)> + '_ {
        let mut at = 0.0;
        let mut from = self.start_rate;
        self.stages.iter().map(move |stage| {
            let piece = (at, stage.duration.as_secs_f64(), from, stage.target);
            at += stage.duration.as_secs_f64();
            from = stage.target;
            piece
        })
    }

    /// The rate `elapsed` into the run (0 after the end).
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        let t = elapsed.as_secs_f64();
        for (start, length, from, to) in self.pieces() {
            if t < start + length {
                return from + (to - from) * (t - start) / length;
            }
        }
        0.0
    }

    /// Iterations scheduled between the start and `elapsed`: the area under the curve.
    pub fn area_until(&self, elapsed: Duration) -> f64 {
        let t = elapsed.as_secs_f64();
        let mut area = 0.0;
        for (start, length, from, to) in self.pieces() {
            let within = (t - start).clamp(0.0, length);
            if within <= 0.0 {
                break;
            }
            let rate_there = from + (to - from) * within / length;
            area += (from + rate_there) / 2.0 * within;
        }
        area
    }

    /// Iterations the whole schedule starts.
    pub fn total(&self) -> u64 {
        let area = self.area_until(self.duration());
        // Starts are at areas 0, 1, 2, ... strictly before the end.
        let whole = area.ceil();
        if whole <= 0.0 {
            0
        } else {
            whole as u64
        }
    }

    /// When iteration `n` starts, as an offset from the run's start; `None` when the schedule
    /// ends first.
    pub fn start_of(&self, n: u64) -> Option<Duration> {
        let mut remaining = n as f64;
        for (start, length, from, to) in self.pieces() {
            let area = (from + to) / 2.0 * length;
            if remaining < area {
                // Solve from·t + k·t²/2 = remaining for t in [0, length], k = (to − from)/length,
                // in the form that stays exact when k is 0 or tiny.
                let k = (to - from) / length;
                let root = (from * from + 2.0 * k * remaining).max(0.0).sqrt();
                let t = if from + root > 0.0 {
                    2.0 * remaining / (from + root)
                } else {
                    0.0
                };
                return Some(Duration::from_secs_f64(start + t.min(length)));
            }
            remaining -= area;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> RateSchedule {
        // 0 → 200/s over 30 s, 200/s for 60 s, 200 → 0 over 10 s: 3000 + 12000 + 1000.
        RateSchedule {
            start_rate: 0.0,
            stages: vec![
                RateStage {
                    duration: Duration::from_secs(30),
                    target: 200.0,
                },
                RateStage {
                    duration: Duration::from_secs(60),
                    target: 200.0,
                },
                RateStage {
                    duration: Duration::from_secs(10),
                    target: 0.0,
                },
            ],
        }
    }

    #[test]
    fn the_iterations_are_the_area_under_the_curve() {
        let schedule = ramp();
        assert_eq!(schedule.total(), 16_000);
        let starts = (0..).map_while(|n| schedule.start_of(n)).count();
        assert_eq!(starts, 16_000);
        assert_eq!(
            RateSchedule::constant(50.0, Duration::from_secs(4)).total(),
            200
        );
    }

    #[test]
    fn starts_follow_the_rate() {
        let schedule = ramp();
        // Half way up the first ramp the area is 750 (a quarter of the ramp's 3000).
        let t = schedule.start_of(750).unwrap().as_secs_f64();
        assert!((t - 15.0).abs() < 1e-6, "{t}");
        assert!((schedule.rate_at(Duration::from_secs(15)) - 100.0).abs() < 1e-9);
        // On the flat part, 200 per second.
        let a = schedule.start_of(5_000).unwrap().as_secs_f64();
        let b = schedule.start_of(5_200).unwrap().as_secs_f64();
        assert!((b - a - 1.0).abs() < 1e-6, "{a} {b}");
        // Starts are in order, and every second's starts match the area over it to within one.
        let mut previous = Duration::ZERO;
        let mut per_second = vec![0u64; 100];
        for n in 0..schedule.total() {
            let at = schedule.start_of(n).unwrap();
            assert!(at >= previous);
            previous = at;
            per_second[at.as_secs() as usize] += 1;
        }
        for (second, count) in per_second.iter().enumerate() {
            let area = schedule.area_until(Duration::from_secs(second as u64 + 1))
                - schedule.area_until(Duration::from_secs(second as u64));
            assert!(
                (*count as f64 - area).abs() <= 1.0,
                "second {second}: {count} vs {area}"
            );
        }
    }

    #[test]
    fn a_schedule_that_stays_at_zero_starts_nothing() {
        let schedule = RateSchedule {
            start_rate: 0.0,
            stages: vec![RateStage {
                duration: Duration::from_secs(10),
                target: 0.0,
            }],
        };
        assert_eq!(schedule.total(), 0);
        assert_eq!(schedule.start_of(0), None);
    }
}
