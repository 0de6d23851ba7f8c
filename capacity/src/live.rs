//! The pipeline itself as the search loads it: each step is a loadgen run at a constant arrival
//! rate, then `collector wait` until every accepted request has come through (or the drain
//! gives up), then the step's export, both kept in the output folder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use collector::api::MetricsApi;
use collector::wait::{self, Clock, WaitConfig};
use collector::RunMetrics;
use contract::capacity::CapacityStep;
use loadgen::config::{Config, Executor};
use loadgen::endpoint::Endpoint;
use loadgen::Stop;

use crate::search::Pipeline;
use crate::step::measure;

/// How each step loads and drains the pipeline.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// The API to POST to.
    pub endpoint: Endpoint,
    /// Each step's load.
    pub step: Duration,
    /// Most VUs a step may use to keep its starts on time.
    pub max_vus: u64,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// The metric namespace.
    pub namespace: String,
    /// Time between the drain's polls.
    pub poll: Duration,
    /// No new datapoint for this long ends a drain short.
    pub quiet: Duration,
    /// A drain gives up after this long.
    pub drain_timeout: Duration,
    /// Where each step's run file and export go.
    pub out: PathBuf,
    /// The stack's resources, whose throttle metrics each step records.
    pub resources: collector::throttles::Resources,
}

/// The live pipeline: loadgen in this process, CloudWatch through `api`.
pub struct Live<A> {
    config: LiveConfig,
    api: A,
    /// Raised on Ctrl-C: the step under way stops starting iterations.
    pub stop: Arc<Stop>,
}

impl<A: MetricsApi> Live<A> {
    /// A pipeline to search.
    pub fn new(config: LiveConfig, api: A) -> Self {
        Live {
            config,
            api,
            stop: Stop::new(),
        }
    }

    /// Where the pipeline's metrics are read.
    pub fn api(&self) -> &A {
        &self.api
    }
}

impl<A: MetricsApi> Pipeline for Live<A> {
    async fn run_step(&mut self, run_id: &str, rate: f64) -> anyhow::Result<CapacityStep> {
        let c = &self.config;
        let run_path = c.out.join(format!("{run_id}.run.json"));
        let load = Config {
            endpoint: c.endpoint.clone(),
            executor: Executor::ConstantArrivalRate {
                rate,
                duration: c.step,
                max_vus: c.max_vus,
            },
            run_id: run_id.to_owned(),
            message: "capacity search".to_owned(),
            max_duration: Duration::from_secs(4),
            thresholds: Vec::new(),
            summary_export: Some(run_path),
            timeout: Duration::from_secs(30),
            graceful_stop: Duration::from_secs(10),
            insecure: c.insecure,
            threads: 1,
            progress: false,
            json: false,
            segment: Default::default(),
            start_at_ms: None,
            lambda: None,
            reports: Default::default(),
        };
        let summary = loadgen::run(load, self.stop.clone())
            .await
            .with_context(|| format!("step {run_id}: the load"))?;
        anyhow::ensure!(!self.stop.requested(), "interrupted");
        let run = summary.run_file();
        let metrics = RunMetrics {
            api: &self.api,
            namespace: c.namespace.clone(),
            run_id: run_id.to_owned(),
        };
        let waited = WaitConfig::for_run(&run, c.poll, c.quiet, c.drain_timeout);
        let clock = Clock::starting_at(contract::epoch_ms());
        let (_, export) = wait::drain(&metrics, &waited, Some(&run), clock)
            .await
            .with_context(|| format!("step {run_id}: draining the pipeline"))?;
        let export_path = c.out.join(format!("{run_id}.timestamps.json"));
        std::fs::write(&export_path, export.to_json())
            .with_context(|| format!("writing {}", export_path.display()))?;
        let mut step = measure(rate, c.step, &run, &export);
        let window = collector::Window {
            start_ms: run.run.start_ms,
            end_ms: contract::epoch_ms() + 1000,
        };
        let throttles = collector::throttles::view(&self.api, &c.resources, window).await;
        step.throttled = throttles
            .rows
            .iter()
            .filter(|r| r.total > 0)
            .map(|r| (format!("{} {}", r.metric, r.resource), r.total))
            .collect();
        Ok(step)
    }
}
