//! The tuning itself: for each memory size, set it, run one step at the arrival rate, judge it,
//! and read what Lambda's metrics say of each function over it.

use std::collections::BTreeMap;
use std::time::Duration;

use collector::api::MetricsApi;
use collector::lambda::Function;
use collector::Window;
use contract::cost::PriceFile;
use contract::lambda::LambdaView;
use contract::tune::{TuneFile, TuneFunction, TuneStep, TUNE_VERSION};

use crate::search::Pipeline;
use crate::step::judge;
use crate::tune::memory::MemoryControl;
use crate::tune::opts::TuneConfig;

/// Lambda's metrics on AWS come by the minute.
const MINUTE_MS: i64 = 60_000;

/// Each function's memory size now, MB, by role: what tuning sets back at the end.
pub async fn current_sizes<C: MemoryControl>(
    control: &C,
    functions: &[Function],
) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut sizes = BTreeMap::new();
    for f in functions {
        sizes.insert(f.role.clone(), control.memory_mb(&f.name).await?);
    }
    Ok(sizes)
}

/// Sets every tuned function back to its size in `current`.
pub async fn restore<C: MemoryControl>(
    control: &C,
    config: &TuneConfig,
    current: &BTreeMap<String, u32>,
) -> anyhow::Result<()> {
    for f in &config.tuned {
        if let Some(&mb) = current.get(&f.role) {
            control.set_memory_mb(&f.name, mb).await?;
        }
    }
    Ok(())
}

/// Runs one step per size on `pipeline` (whose metrics `api` reads), the tuned functions set
/// through `control`; `seen` hears of each step as it is judged. The sizes are not restored
/// here ([`restore`]).
pub async fn tune<P: Pipeline, A: MetricsApi, C: MemoryControl>(
    pipeline: &mut P,
    api: &A,
    control: &C,
    config: &TuneConfig,
    current: &BTreeMap<String, u32>,
    mut seen: impl FnMut(&TuneStep),
) -> anyhow::Result<TuneFile> {
    let prices = PriceFile::shipped();
    let mut steps = Vec::new();
    for &mb in &config.sizes {
        let mut sizes = current.clone();
        for f in &config.tuned {
            control.set_memory_mb(&f.name, mb).await?;
            sizes.insert(f.role.clone(), mb);
        }
        if config.on_aws {
            // On a whole minute: the minute's metrics are this step's alone.
            let now = contract::epoch_ms();
            let next = (now / MINUTE_MS + 1) * MINUTE_MS;
            tokio::time::sleep(Duration::from_millis((next - now) as u64)).await;
        }
        let began_ms = contract::epoch_ms();
        let run_id = format!("{}-m{mb}", config.run_prefix);
        let mut load = pipeline.run_step(&run_id, config.rate).await?;
        judge(&mut load, config.slo_ms, config.poll_lag_s);
        let p99_noise_ms = p99_noise(&config.live.out.join(format!("{run_id}.timestamps.json")));
        tokio::time::sleep(config.settle).await;
        let (resolution_s, window) = metrics_window(config.on_aws, began_ms, contract::epoch_ms());
        let view = collector::lambda::view_in(api, &config.functions, window, resolution_s).await;
        let mut step = priced(mb, sizes, load, &view, &prices);
        step.p99_noise_ms = p99_noise_ms;
        seen(&step);
        steps.push(step);
    }
    let current_step = config.sizes.iter().copied().find(|&mb| {
        config
            .tuned
            .iter()
            .all(|f| current.get(&f.role) == Some(&mb))
    });
    let mut file = TuneFile {
        version: TUNE_VERSION,
        run_prefix: config.run_prefix.clone(),
        tuned: config.tuned.iter().map(|f| f.role.clone()).collect(),
        rate_per_s: config.rate,
        step_duration_s: config.live.step.as_secs_f64(),
        slo_ms: config.slo_ms,
        current_mb: current.clone(),
        prices: format!("{}, list prices of {}", prices.region, prices.as_of),
        steps,
        cheapest: None,
        fastest: None,
        current_step,
    };
    file.recommend();
    Ok(file)
}

/// The 95 % half-width of a step's end-to-end p99, from the histogram in its export (written by
/// the step): `None` when it cannot be read or has too few requests.
fn p99_noise(export: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(export).ok()?;
    let export = contract::export::LatencyExport::from_json(&text).ok()?;
    collector::noise::percentile(&export.histogram, 99.0)
        .ok()
        .map(|e| e.uncertainty())
}

/// The window Lambda's metrics of a step are read over, with its resolution (seconds): the
/// sandbox keeps them by the second, from the step's start to now; AWS by the minute, from the
/// minute the step started on to the end of the minute now is in.
fn metrics_window(on_aws: bool, began_ms: i64, now_ms: i64) -> (u32, Window) {
    let unit = if on_aws { MINUTE_MS } else { 1000 };
    let start_ms = began_ms.div_euclid(unit) * unit;
    let end_ms = (now_ms.div_euclid(unit) + 1) * unit;
    ((unit / 1000) as u32, Window { start_ms, end_ms })
}

/// A step with its functions' numbers and its Lambda cost.
fn priced(
    mb: u32,
    sizes: BTreeMap<String, u32>,
    load: contract::capacity::CapacityStep,
    view: &LambdaView,
    prices: &PriceFile,
) -> TuneStep {
    let functions: Vec<TuneFunction> = view
        .functions
        .iter()
        .map(|f| TuneFunction {
            role: f.role.clone(),
            memory_mb: sizes.get(&f.role).copied().unwrap_or_default(),
            invocations: f.invocations,
            duration_p50_ms: f.duration_p50_ms,
            duration_p99_ms: f.duration_p99_ms,
            billed_gb_seconds: contract::lambda::FunctionMetrics {
                memory_size_mb: sizes.get(&f.role).map(|&mb| f64::from(mb)),
                ..f.clone()
            }
            .billed_gb_seconds(),
            cold_starts: f.cold_starts.unwrap_or(0),
            init_avg_ms: f.init_avg_ms,
        })
        .collect();
    let lambda_cost = (!functions.is_empty()).then(|| {
        functions
            .iter()
            .map(|f| {
                f.invocations as f64 / 1e6 * prices.prices.lambda_per_million_requests
                    + f.billed_gb_seconds * prices.prices.lambda_per_gb_second
            })
            .sum::<f64>()
    });
    let cost_per_1000_loops = lambda_cost
        .filter(|_| load.processed > 0)
        .map(|cost| cost / load.processed as f64 * 1000.0);
    TuneStep {
        memory_mb: mb,
        sizes,
        p99_noise_ms: None,
        usable: load.sustained,
        load,
        functions,
        lambda_unavailable: view.unavailable.clone(),
        lambda_cost,
        cost_per_1000_loops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_s_metrics_are_read_by_the_second_here_and_by_the_minute_on_aws() {
        let (s, w) = metrics_window(false, 1_000_000_123_456, 1_000_000_150_001);
        assert_eq!(
            (s, w.start_ms, w.end_ms),
            (1, 1_000_000_123_000, 1_000_000_151_000)
        );
        let (s, w) = metrics_window(true, 1_000_000_100_000, 1_000_000_170_000);
        assert_eq!(
            (s, w.start_ms, w.end_ms),
            (60, 1_000_000_080_000, 1_000_000_200_000)
        );
    }
}
