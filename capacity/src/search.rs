//! The search: steps of constant arrival rate, growing by a factor until one is not sustained,
//! then halving the interval between the highest sustained rate and the lowest unsustained one
//! until they are within the precision, all within a time limit.

use std::future::Future;
use std::time::{Duration, Instant};

use contract::capacity::{CapacityFile, CapacityStep, QuotaHit, SaturatingHop, CAPACITY_VERSION};

use crate::step::judge;

/// How to search.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// The first step's rate, per second.
    pub start_rate: f64,
    /// The highest rate to try, per second.
    pub max_rate: f64,
    /// Each step's rate over the last one's while every step is sustained (above 1).
    pub growth: f64,
    /// Refining stops when the lowest unsustained rate is within this fraction above the highest
    /// sustained one.
    pub precision: f64,
    /// Each step's load.
    pub step: Duration,
    /// The end-to-end p99 a sustained step stays within, ms.
    pub slo_ms: f64,
    /// The whole search, drains included, ends within this; a step that would not fit is not
    /// started.
    pub time_limit: Duration,
    /// How long a record may wait for its poller, seconds ([`crate::step::poll_lag_s`]): the
    /// backlog seen second by second moves by that many seconds' arrivals without growing.
    pub poll_lag_s: f64,
}

/// A pipeline the search can load: one step of `rate` per second under `run_id`, drained and
/// measured (not yet judged).
pub trait Pipeline {
    /// Runs one step.
    fn run_step(
        &mut self,
        run_id: &str,
        rate: f64,
    ) -> impl Future<Output = anyhow::Result<CapacityStep>>;
}

/// Searches; `seen` hears of each step as it is judged.
pub async fn search<P: Pipeline>(
    pipeline: &mut P,
    config: &SearchConfig,
    run_prefix: &str,
    mut seen: impl FnMut(&CapacityStep),
) -> anyhow::Result<CapacityFile> {
    let started = Instant::now();
    let mut steps: Vec<CapacityStep> = Vec::new();
    // A step's cost so far: the longest one, at first twice the load.
    let mut longest = config.step * 2;
    let mut good: Option<f64> = None;
    let mut bad: Option<f64> = None;
    let mut rate = config.start_rate.min(config.max_rate);
    let ended = loop {
        if started.elapsed() + longest > config.time_limit {
            break format!(
                "time limit ({}) reached",
                humantime::format_duration(config.time_limit)
            );
        }
        let began = Instant::now();
        let run_id = format!("{run_prefix}-s{}", steps.len());
        let mut step = pipeline.run_step(&run_id, rate).await?;
        judge(&mut step, config.slo_ms, config.poll_lag_s);
        longest = longest.max(began.elapsed());
        seen(&step);
        let sustained = step.sustained;
        steps.push(step);
        if sustained {
            good = Some(good.map_or(rate, |g| g.max(rate)));
        } else {
            bad = Some(bad.map_or(rate, |b| b.min(rate)));
        }
        rate = match next_rate(good, bad, config) {
            Ok(next) => next,
            Err(ended) => break ended,
        };
    };
    let best = steps
        .iter()
        .filter(|s| s.sustained)
        .max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    Ok(CapacityFile {
        version: CAPACITY_VERSION,
        run_prefix: run_prefix.to_owned(),
        slo_ms: config.slo_ms,
        step_duration_s: config.step.as_secs_f64(),
        // Sustained: every request accepted in the step came through, with the backlog level, so
        // the pipeline completed loops as fast as the API accepted them.
        sustained_loops_per_s: best.map(|s| s.accepted_per_s),
        sustained_rate_per_s: best.map(|s| s.rate_per_s),
        limit_rate_per_s: bad,
        ended,
        saturating_hop: bad.and_then(|_| saturating_hop(&steps)),
        limiting_quota: None,
        steps,
    })
}

/// The next step's rate from the highest sustained rate (`good`) and the lowest unsustained one
/// (`bad`) so far: grow until a step fails, shrink until one holds, then bisect; `Err` says why
/// the search is over.
fn next_rate(good: Option<f64>, bad: Option<f64>, config: &SearchConfig) -> Result<f64, String> {
    match (good, bad) {
        (Some(g), None) if g >= config.max_rate => Err(format!(
            "the highest rate, {} per second, was sustained",
            config.max_rate
        )),
        (Some(g), None) => Ok((g * config.growth).min(config.max_rate)),
        (None, Some(b)) if b / config.growth < 1.0 => {
            Err("not even 1 request per second was sustained".to_owned())
        }
        (None, Some(b)) => Ok(b / config.growth),
        (Some(g), Some(b)) if b <= g * (1.0 + config.precision) => Err(format!(
            "found within {:.0} %: sustained {g:.1}/s, not {b:.1}/s",
            config.precision * 100.0
        )),
        (Some(g), Some(b)) => Ok((g + b) / 2.0),
        (None, None) => unreachable!("a step was judged"),
    }
}

/// The quota that gave: at the limit (the lowest unsustained step, else the highest step that
/// counted any throttle), the throttle that counted most, a quota before a 5xx (a 5xx is what a
/// throttle caused); named with the lowest rate at which it first counted. `profile` is the
/// sandbox's (`SandboxProfile`), for the scale in force.
pub fn limiting_quota(steps: &[CapacityStep], profile: Option<&str>) -> Option<QuotaHit> {
    let mut by_rate: Vec<&CapacityStep> = steps.iter().collect();
    by_rate.sort_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    let limit = by_rate
        .iter()
        .find(|s| !s.sustained && !s.throttled.is_empty())
        .or_else(|| by_rate.iter().rev().find(|s| !s.throttled.is_empty()))?;
    let is_5xx = |key: &str| key.starts_with(contract::quota::API_5XX);
    let (key, _) = limit
        .throttled
        .iter()
        .max_by_key(|(k, &n)| (!is_5xx(k), n))?;
    let (rate_per_s, refused) = by_rate
        .iter()
        .find_map(|s| Some((s.rate_per_s, *s.throttled.get(key)?)))?;
    let (metric, resource) = key.split_once(' ').unwrap_or((key, ""));
    let label = contract::quota::THROTTLE_METRICS
        .iter()
        .find(|t| t.metric == metric)
        .map_or(metric, |t| t.label);
    let (quota, lift) =
        contract::quota::advice(metric, profile.and_then(contract::quota::profile_scale));
    Some(QuotaHit {
        rate_per_s,
        label: label.to_owned(),
        metric: metric.to_owned(),
        resource: resource.to_owned(),
        refused,
        quota,
        lift: lift.to_owned(),
    })
}

/// The hop that gave first: from the lowest step to the limit (the lowest unsustained step,
/// else the highest step), the hop whose p99 first passed twice its starting value (and 10 ms
/// more), and the one whose p99 grew most.
pub fn saturating_hop(steps: &[CapacityStep]) -> Option<SaturatingHop> {
    let mut by_rate: Vec<&CapacityStep> = steps.iter().collect();
    by_rate.sort_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    let base = by_rate.first()?;
    let limit = by_rate
        .iter()
        .find(|s| !s.sustained)
        .or(by_rate.last())
        .copied()?;
    let grew_most = base
        .hop_p99_ms
        .iter()
        .filter_map(|(hop, &from)| Some((hop, from, *limit.hop_p99_ms.get(hop)?)))
        .max_by(|a, b| (a.2 - a.1).total_cmp(&(b.2 - b.1)))?;
    let first_to_grow = by_rate
        .iter()
        .take_while(|s| s.rate_per_s <= limit.rate_per_s)
        .find_map(|s| {
            base.hop_p99_ms
                .iter()
                .filter_map(|(hop, &from)| {
                    let now = *s.hop_p99_ms.get(hop)?;
                    (now > 2.0 * from && now > from + 10.0).then_some((hop, now / from.max(1.0)))
                })
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(hop, _)| hop.clone())
        });
    Some(SaturatingHop {
        first_to_grow,
        grew_most: grew_most.0.clone(),
        p99_ms: [grew_most.1, grew_most.2],
    })
}
