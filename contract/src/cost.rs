//! What a run would cost on AWS: the usage a run's files show, priced from one table of list
//! prices (`contract/prices/us-east-1.json`, with the month it was read and where from),
//! overridable by a file of the same shape for another region or a discount.
//!
//! Usage comes from the run model and Lambda's own metrics in the export
//! ([`crate::lambda::LambdaView`]); every line says how its quantity was counted, because
//! several are estimates (stated next to them): the functions' log volume, the requests'
//! sizes, the collector's own reads when the export does not record them.

use serde::{Deserialize, Serialize};

use crate::lambda::{FunctionMetrics, LambdaView};
use crate::run::Run;

/// The prices shipped with the toolkit.
pub const DEFAULT_PRICES: &str = include_str!("../prices/us-east-1.json");
/// Version of the price file format.
pub const PRICES_VERSION: u32 = 1;
/// What each invocation writes to CloudWatch Logs: Lambda's START, END and REPORT lines
/// (about 330 bytes here), the functions log nothing else when all goes well.
pub const LOG_BYTES_PER_INVOCATION: f64 = 350.0;
/// Hours in a month, as CloudWatch pro-rates custom metrics.
const HOURS_PER_MONTH: f64 = 730.0;

/// A price file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceFile {
    /// [`PRICES_VERSION`].
    pub version: u32,
    /// The region the prices are for.
    pub region: String,
    /// Their currency.
    pub currency: String,
    /// When they were read (`YYYY-MM`).
    pub as_of: String,
    /// What they include and leave out.
    #[serde(default)]
    pub note: String,
    /// Where they were read.
    #[serde(default)]
    pub sources: Vec<String>,
    /// The prices.
    pub prices: Prices,
}

/// List prices, each per the unit its name says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// API Gateway REST API, per million requests.
    pub api_gateway_rest_per_million_requests: f64,
    /// Lambda, per million requests.
    pub lambda_per_million_requests: f64,
    /// Lambda, per GB-second of billed duration (x86).
    pub lambda_per_gb_second: f64,
    /// Kinesis Data Streams (provisioned), per shard-hour.
    pub kinesis_per_shard_hour: f64,
    /// Kinesis, per million PUT payload units (25 KB each).
    pub kinesis_per_million_put_payload_units: f64,
    /// DynamoDB on-demand, per million write request units.
    pub dynamodb_per_million_write_request_units: f64,
    /// CloudWatch custom metric, per metric-month (pro rata by the hour).
    pub cloudwatch_per_metric_month: f64,
    /// CloudWatch PutMetricData, per thousand requests.
    pub cloudwatch_per_thousand_put_metric_data_requests: f64,
    /// CloudWatch GetMetricData, per thousand metrics requested.
    pub cloudwatch_per_thousand_get_metric_data_metrics: f64,
    /// CloudWatch Logs, per GB ingested.
    pub cloudwatch_logs_per_gb_ingested: f64,
}

impl PriceFile {
    /// The shipped prices.
    pub fn shipped() -> PriceFile {
        PriceFile::parse(DEFAULT_PRICES).expect("the shipped price file parses")
    }

    /// Parses and checks a price file: its version, and every price a finite number, not
    /// negative.
    pub fn parse(text: &str) -> Result<PriceFile, String> {
        let file: PriceFile =
            serde_json::from_str(text).map_err(|e| format!("not a price file: {e}"))?;
        if file.version != PRICES_VERSION {
            return Err(format!(
                "price file version {} (this collector reads {PRICES_VERSION})",
                file.version
            ));
        }
        let prices = serde_json::to_value(&file.prices).map_err(|e| e.to_string())?;
        for (name, value) in prices.as_object().into_iter().flatten() {
            match value.as_f64() {
                Some(v) if v.is_finite() && v >= 0.0 => {}
                _ => return Err(format!("price {name} is {value}: a number, 0 or more")),
            }
        }
        Ok(file)
    }
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// What is billed.
    pub item: &'static str,
    /// How much of it.
    pub quantity: f64,
    /// In what unit.
    pub unit: &'static str,
    /// Its cost.
    pub cost: f64,
    /// How the quantity was counted.
    pub counted: String,
}

/// What the run would cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// The prices' region, currency and month.
    pub region: String,
    /// Currency.
    pub currency: String,
    /// When the prices were read.
    pub as_of: String,
    /// Each item.
    pub lines: Vec<Line>,
    /// Their sum.
    pub total: f64,
    /// The sum per 1,000 loops processed.
    pub per_thousand_loops: Option<f64>,
}

/// What the run would cost at `prices`; `Err` says why it cannot be estimated (no Lambda
/// metrics in the export).
pub fn estimate(
    run: &Run,
    prices: &PriceFile,
    metrics_requested: Option<u64>,
) -> Result<Estimate, String> {
    let lambda: &LambdaView = run
        .export
        .lambda
        .as_ref()
        .ok_or("the export has no Lambda metrics (an export before version 4)")?;
    if let Some(why) = &lambda.unavailable {
        return Err(format!("Lambda's metrics are not available: {why}"));
    }
    let lines = lines(&Usage::of(run, lambda, metrics_requested), &prices.prices);
    let total = lines.iter().map(|l| l.cost).sum();
    Ok(Estimate {
        region: prices.region.clone(),
        currency: prices.currency.clone(),
        as_of: prices.as_of.clone(),
        lines,
        total,
        per_thousand_loops: (run.processed() > 0).then(|| total / run.processed() as f64 * 1000.0),
    })
}

/// What a run used of each billed item, counted from the run and Lambda's metrics.
#[derive(Debug, Clone, Copy)]
struct Usage {
    requests: u64,
    invocations: u64,
    gb_seconds: f64,
    /// The hours the run spans, rounded up (at least 1).
    hours: f64,
    accepted: u64,
    written: u64,
    custom_metrics: u64,
    put_metric_data: u64,
    metrics_requested: Option<u64>,
    log_gb: f64,
}

impl Usage {
    fn of(run: &Run, lambda: &LambdaView, metrics_requested: Option<u64>) -> Usage {
        let invocations: u64 = lambda.functions.iter().map(|f| f.invocations).sum();
        let gb_seconds: f64 = lambda
            .functions
            .iter()
            .map(FunctionMetrics::billed_gb_seconds)
            .sum();
        Usage {
            requests: run.load.map_or(run.processed(), |r| r.run.requests_sent),
            invocations,
            gb_seconds,
            hours: run
                .active_window()
                .map_or(1.0, |(s, e)| ((e - s) as f64 / 3_600_000.0).ceil().max(1.0)),
            accepted: run.accepted().unwrap_or(run.processed()),
            written: run.processed() + run.redelivered(),
            custom_metrics: custom_metrics(run),
            put_metric_data: lambda
                .functions
                .iter()
                .find(|f| f.role == "downstream")
                .map_or(0, |f| f.invocations),
            metrics_requested,
            log_gb: invocations as f64 * LOG_BYTES_PER_INVOCATION / 1e9,
        }
    }
}

/// The bill's lines: each item's usage at its price, and how it was counted.
fn lines(u: &Usage, p: &Prices) -> Vec<Line> {
    let per_million = |n: f64, price: f64| n / 1e6 * price;
    let mut lines = vec![
        Line {
            item: "API Gateway REST requests",
            quantity: u.requests as f64,
            unit: "requests",
            cost: per_million(u.requests as f64, p.api_gateway_rest_per_million_requests),
            counted: "every request loadgen sent".into(),
        },
        Line {
            item: "Lambda requests",
            quantity: u.invocations as f64,
            unit: "invocations",
            cost: per_million(u.invocations as f64, p.lambda_per_million_requests),
            counted: "Invocations of the three functions".into(),
        },
        Line {
            item: "Lambda duration",
            quantity: u.gb_seconds,
            unit: "GB-seconds",
            cost: u.gb_seconds * p.lambda_per_gb_second,
            counted: "Duration sum, each rounded up to the ms, plus init, times memory size".into(),
        },
        Line {
            item: "Kinesis shard-hours",
            quantity: u.hours,
            unit: "shard-hours",
            cost: u.hours * p.kinesis_per_shard_hour,
            counted: "1 shard for the hours the run spans, rounded up".into(),
        },
        Line {
            item: "Kinesis PUT payload units",
            quantity: u.accepted as f64,
            unit: "25 KB units",
            cost: per_million(u.accepted as f64, p.kinesis_per_million_put_payload_units),
            counted: "one per accepted request (each record is under 25 KB)".into(),
        },
        Line {
            item: "DynamoDB writes",
            quantity: u.written as f64,
            unit: "write request units",
            cost: per_million(u.written as f64, p.dynamodb_per_million_write_request_units),
            counted: "items processed plus rewritten (each under 1 KB); the stream's reads by \
                      Lambda are free"
                .into(),
        },
        Line {
            item: "CloudWatch custom metrics",
            quantity: u.custom_metrics as f64,
            unit: "metrics",
            cost: u.custom_metrics as f64 * p.cloudwatch_per_metric_month / HOURS_PER_MONTH
                * u.hours,
            counted: format!(
                "the run's metrics, pro rata for {:.0} h of a 730 h month",
                u.hours
            ),
        },
        Line {
            item: "CloudWatch PutMetricData",
            quantity: u.put_metric_data as f64,
            unit: "requests",
            cost: u.put_metric_data as f64 / 1000.0
                * p.cloudwatch_per_thousand_put_metric_data_requests,
            counted: "one per downstream invocation".into(),
        },
    ];
    if let Some(metrics) = u.metrics_requested {
        lines.push(Line {
            item: "CloudWatch GetMetricData",
            quantity: metrics as f64,
            unit: "metrics requested",
            cost: metrics as f64 / 1000.0 * p.cloudwatch_per_thousand_get_metric_data_metrics,
            counted: "the collector's queries for this run".into(),
        });
    }
    lines.push(Line {
        item: "CloudWatch Logs ingestion",
        quantity: u.log_gb,
        unit: "GB",
        cost: u.log_gb * p.cloudwatch_logs_per_gb_ingested,
        counted: format!(
            "about {LOG_BYTES_PER_INVOCATION:.0} bytes per invocation (START, END, REPORT)"
        ),
    });
    lines
}

/// The custom metrics the run created: one per latency metric with data, one per bucket the
/// end-to-end and each hop's latencies touched, and `RedeliveredRecords` when anything was
/// rewritten.
fn custom_metrics(run: &Run) -> u64 {
    let export = run.export;
    let latency = u64::from(export.latency.count > 0);
    let hops = export.hops.values().filter(|h| h.count > 0).count() as u64;
    let buckets = export.histogram.buckets().count() as u64;
    let hop_buckets: u64 = export
        .hop_histograms
        .values()
        .map(|h| h.buckets().count() as u64)
        .sum();
    latency + hops + buckets + hop_buckets + u64::from(export.run.redelivered > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_prices_parse_and_a_bad_file_says_why() {
        let shipped = PriceFile::shipped();
        assert_eq!(shipped.region, "us-east-1");
        assert!(shipped.prices.lambda_per_gb_second > 0.0);
        assert!(PriceFile::parse("{")
            .unwrap_err()
            .starts_with("not a price file"));
        let negative = DEFAULT_PRICES.replace(
            "\"kinesis_per_shard_hour\": 0.015",
            "\"kinesis_per_shard_hour\": -1",
        );
        assert_ne!(negative, DEFAULT_PRICES);
        assert!(PriceFile::parse(&negative)
            .unwrap_err()
            .contains("kinesis_per_shard_hour"));
        let unknown = DEFAULT_PRICES.replace("\"lambda_per_gb_second\"", "\"lambda_per_gb_hour\"");
        assert!(PriceFile::parse(&unknown).is_err());
        let future = DEFAULT_PRICES.replace("\"version\": 1", "\"version\": 9");
        assert!(PriceFile::parse(&future).unwrap_err().contains("version 9"));
    }

    #[test]
    fn each_line_is_its_usage_at_its_price() {
        let p = PriceFile::shipped().prices;
        let usage = Usage {
            requests: 2_000_000,
            invocations: 3_000_000,
            gb_seconds: 10.0,
            hours: 2.0,
            accepted: 1_000_000,
            written: 1_000_000,
            custom_metrics: 365,
            put_metric_data: 1000,
            metrics_requested: Some(2000),
            log_gb: 0.5,
        };
        let lines = lines(&usage, &p);
        let cost = |item: &str| {
            lines
                .iter()
                .find(|l| l.item == item)
                .unwrap_or_else(|| panic!("no {item}"))
                .cost
        };
        let near = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(near(
            cost("API Gateway REST requests"),
            2.0 * p.api_gateway_rest_per_million_requests
        ));
        assert!(near(
            cost("Lambda requests"),
            3.0 * p.lambda_per_million_requests
        ));
        assert!(near(cost("Lambda duration"), 10.0 * p.lambda_per_gb_second));
        assert!(near(
            cost("Kinesis shard-hours"),
            2.0 * p.kinesis_per_shard_hour
        ));
        assert!(near(
            cost("Kinesis PUT payload units"),
            p.kinesis_per_million_put_payload_units
        ));
        assert!(near(
            cost("DynamoDB writes"),
            p.dynamodb_per_million_write_request_units
        ));
        // 365 metrics for 2 h of a 730 h month: one metric-month.
        assert!(near(
            cost("CloudWatch custom metrics"),
            p.cloudwatch_per_metric_month
        ));
        assert!(near(
            cost("CloudWatch PutMetricData"),
            p.cloudwatch_per_thousand_put_metric_data_requests
        ));
        assert!(near(
            cost("CloudWatch GetMetricData"),
            2.0 * p.cloudwatch_per_thousand_get_metric_data_metrics
        ));
        assert!(near(
            cost("CloudWatch Logs ingestion"),
            0.5 * p.cloudwatch_logs_per_gb_ingested
        ));
        let without = lines_without_queries(&usage, &p);
        assert_eq!(without, lines.len() - 1);
    }

    fn lines_without_queries(usage: &Usage, p: &Prices) -> usize {
        let usage = Usage {
            metrics_requested: None,
            ..*usage
        };
        lines(&usage, p).len()
    }
}
