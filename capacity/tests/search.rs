//! The search against simulated pipelines with a known ceiling: it finds the ceiling within the
//! precision, names the hop that saturates, and ends on its own.

use std::collections::BTreeMap;
use std::time::Duration;

use capacity::search::{limiting_quota, search, Pipeline, SearchConfig};
use contract::capacity::CapacityStep;

const STEP_S: f64 = 20.0;

/// A pipeline that completes at most `ceiling` loops per second. Below it, the latency of
/// `KinesisToStoreLatency` grows with the load (queueing in front of the table); above it, the
/// backlog grows by the excess every second and every request waits behind it.
struct Simulated {
    ceiling: f64,
    /// Steps run, by rate.
    rates: Vec<f64>,
}

impl Pipeline for Simulated {
    async fn run_step(&mut self, run_id: &str, rate: f64) -> anyhow::Result<CapacityStep> {
        let mut step = self.unthrottled(run_id, rate);
        // A shard that takes 100 records/s refuses the excess (as at quota scale 0.1); past
        // it, the API answers 5xx for what upstream's retries could not place.
        if rate > 100.0 {
            let refused = ((rate - 100.0) * STEP_S) as u64;
            step.throttled.insert(
                "WriteProvisionedThroughputExceeded KinesisStream".into(),
                refused,
            );
            step.throttled
                .insert("5XXError PipelineApi".into(), refused / 10 + 1);
        }
        Ok(step)
    }
}

impl Simulated {
    fn unthrottled(&mut self, run_id: &str, rate: f64) -> CapacityStep {
        self.rates.push(rate);
        let accepted = (rate * STEP_S).round() as u64;
        let load = (rate / self.ceiling).min(1.0);
        let completed = rate.min(self.ceiling);
        // Over the second half of the load, the backlog grows by the excess.
        let growth = ((rate - completed) * STEP_S / 2.0).round() as i64;
        // Waiting behind the backlog at the end of the load, ms.
        let queueing = (rate - completed) * STEP_S / self.ceiling * 1000.0;
        let hops = BTreeMap::from([
            ("ClientToKinesisLatency".to_owned(), 30.0 + 5.0 * load),
            (
                "KinesisToStoreLatency".to_owned(),
                20.0 + 300.0 * load.powi(4) + queueing,
            ),
            ("StoreToDownstreamLatency".to_owned(), 60.0 + 10.0 * load),
        ]);
        let p99: f64 = hops.values().sum();
        CapacityStep {
            run_id: run_id.to_owned(),
            rate_per_s: rate,
            scheduled: accepted,
            dropped: 0,
            sent: accepted,
            accepted,
            failed: 0,
            accepted_per_s: rate,
            completed_per_s: completed,
            processed: accepted,
            lost: Some(0),
            backlog_growth: growth,
            drain_s: queueing / 1000.0,
            p50_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
            hop_p99_ms: hops,
            throttled: BTreeMap::new(),
            sustained: false,
            reasons: Vec::new(),
        }
    }
}

fn config() -> SearchConfig {
    SearchConfig {
        start_rate: 20.0,
        max_rate: 10_000.0,
        growth: 1.5,
        precision: 0.1,
        step: Duration::from_secs_f64(STEP_S),
        slo_ms: 1000.0,
        time_limit: Duration::from_secs(600),
        poll_lag_s: 0.05,
    }
}

#[tokio::test]
async fn finds_a_known_ceiling_within_10_percent_and_the_hop_that_gives() {
    for ceiling in [37.0, 180.0, 1234.0] {
        let mut pipeline = Simulated {
            ceiling,
            rates: Vec::new(),
        };
        let mut heard = 0;
        let file = search(&mut pipeline, &config(), "sim", |_| heard += 1)
            .await
            .unwrap();
        let found = file.sustained_loops_per_s.expect("a sustained rate");
        // Within 10 % either way: a rate a little over the ceiling builds a backlog too small
        // to see in one step.
        assert!(
            (found - ceiling).abs() <= 0.1 * ceiling,
            "ceiling {ceiling}: found {found} ({:?})",
            pipeline.rates
        );
        let limit = file.limit_rate_per_s.expect("a limit");
        let rate = file.sustained_rate_per_s.unwrap();
        assert!(
            limit > ceiling && limit <= rate * 1.1 + 1e-9,
            "{limit} {rate}"
        );
        assert_eq!(heard, file.steps.len());
        assert!(file.steps.len() <= 16, "{} steps", file.steps.len());
        let hop = file.saturating_hop.clone().expect("a hop saturates");
        assert_eq!(hop.grew_most, "KinesisToStoreLatency");
        assert_eq!(hop.first_to_grow.as_deref(), Some("KinesisToStoreLatency"));
        assert!(
            file.ended.starts_with("found within 10 %"),
            "{}",
            file.ended
        );
        // Step ids are the prefix and the step's index.
        assert_eq!(file.steps[0].run_id, "sim-s0");
        let line = capacity::page::verdict(&file);
        assert!(
            line.starts_with(&format!("capacity: {found:.1} loops/s sustained")),
            "{line}"
        );
        assert!(
            line.contains("first to saturate: KinesisToStoreLatency"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_pipeline_faster_than_the_highest_rate_ends_there() {
    let mut pipeline = Simulated {
        ceiling: 1e9,
        rates: Vec::new(),
    };
    let config = SearchConfig {
        max_rate: 100.0,
        ..config()
    };
    let file = search(&mut pipeline, &config, "fast", |_| {})
        .await
        .unwrap();
    assert_eq!(file.sustained_rate_per_s, Some(100.0));
    assert_eq!(file.limit_rate_per_s, None);
    assert!(file.ended.contains("highest rate"), "{}", file.ended);
    assert_eq!(file.saturating_hop, None, "no limit, so nothing saturated");
    assert_eq!(pipeline.rates, [20.0, 30.0, 45.0, 67.5, 100.0]);
}

#[tokio::test]
async fn a_pipeline_slower_than_the_first_step_is_searched_downwards() {
    let mut pipeline = Simulated {
        ceiling: 7.0,
        rates: Vec::new(),
    };
    let file = search(&mut pipeline, &config(), "slow", |_| {})
        .await
        .unwrap();
    let found = file.sustained_loops_per_s.unwrap();
    assert!((found - 7.0).abs() <= 0.7, "{found} {:?}", pipeline.rates);
    assert!(pipeline.rates[0] == 20.0 && pipeline.rates[1] < 20.0);
}

#[tokio::test]
async fn the_time_limit_ends_the_search_before_a_step_that_would_not_fit() {
    let mut pipeline = Simulated {
        ceiling: 1e9,
        rates: Vec::new(),
    };
    // Each step costs at least twice its load until one has run: a 20 s step does not fit in
    // 30 s, so nothing runs.
    let config = SearchConfig {
        time_limit: Duration::from_secs(30),
        ..config()
    };
    let file = search(&mut pipeline, &config, "short", |_| {})
        .await
        .unwrap();
    assert!(pipeline.rates.is_empty());
    assert!(file.ended.starts_with("time limit"), "{}", file.ended);
    assert_eq!(file.sustained_loops_per_s, None);
}

#[tokio::test]
async fn the_quota_hit_first_is_named_with_what_would_lift_it() {
    let mut pipeline = Simulated {
        ceiling: 1234.0,
        rates: Vec::new(),
    };
    let file = search(&mut pipeline, &config(), "sim", |_| {})
        .await
        .unwrap();
    let hit = limiting_quota(&file.steps, Some("aws at quota scale 0.1")).expect("a quota hit");
    // The lowest rate tried over 100/s, and the quota, not the 5xx it caused.
    let lowest_over = file
        .steps
        .iter()
        .map(|s| s.rate_per_s)
        .filter(|r| *r > 100.0)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(hit.rate_per_s, lowest_over);
    assert_eq!(hit.metric, "WriteProvisionedThroughputExceeded");
    assert_eq!(hit.resource, "KinesisStream");
    assert_eq!(
        hit.quota,
        "Kinesis write quota per shard: 1,000 records/s on AWS; here, at quota scale 0.1: 100"
    );
    assert!(hit.lift.contains("more shards"), "{}", hit.lift);
    let mut file = file;
    file.limiting_quota = Some(hit);
    let said = capacity::page::verdict(&file);
    assert!(
        said.contains("the quota that gave: Kinesis records refused (write quota), from"),
        "{said}"
    );
    // Without throttles, nothing is named.
    let quiet: Vec<CapacityStep> = file
        .steps
        .iter()
        .cloned()
        .map(|mut s| {
            s.throttled.clear();
            s
        })
        .collect();
    assert_eq!(limiting_quota(&quiet, None), None);
}
