//! The tables of what AWS would say about a run: Lambda's own metrics per function, and what the
//! run would cost (both "not available" and why, when they cannot be said).

use contract::cost::Estimate;
use serde::Serialize;

use crate::table::TableData;

/// What the run would cost on AWS, or why that cannot be said.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cost {
    /// The estimate.
    Estimated(Estimate),
    /// Why there is none.
    Unavailable {
        /// The reason.
        unavailable: String,
    },
}

/// Lambda's own metrics, a row per function; "not available" and why, when there are none.
pub(crate) fn lambda_table(view: &contract::lambda::LambdaView) -> TableData {
    const TITLE: &str = "Lambda's own metrics per function (AWS/Lambda; cold starts and memory: \
                         LambdaInsights)";
    if let Some(why) = &view.unavailable {
        return TableData {
            title: TITLE,
            header: vec!["function"],
            rows: vec![vec![format!("not available: {why}")]],
            numeric: Vec::new(),
        };
    }
    let n = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    TableData {
        title: TITLE,
        header: vec![
            "function",
            "invocations",
            "errors",
            "throttles",
            "duration p50 ms",
            "p99 ms",
            "max ms",
            "concurrency",
            "cold starts",
            "init mean ms",
            "memory MB",
            "iterator age max ms",
        ],
        rows: view
            .functions
            .iter()
            .map(|f| {
                vec![
                    f.role.clone(),
                    f.invocations.to_string(),
                    f.errors.to_string(),
                    f.throttles.to_string(),
                    n(f.duration_p50_ms),
                    n(f.duration_p99_ms),
                    n(f.duration_max_ms),
                    f.concurrency_max
                        .map_or("-".to_owned(), |c| format!("{c:.0}")),
                    f.cold_starts.map_or("-".to_owned(), |c| c.to_string()),
                    n(f.init_avg_ms),
                    f.memory_max_mb
                        .map_or("-".to_owned(), |m| format!("{m:.0}")),
                    n(f.iterator_age_max_ms),
                ]
            })
            .collect(),
        numeric: (1..12).collect(),
    }
}

/// AWS's throttle metrics over the run, a row per metric and resource that counted any (all
/// of them in `--json`), with what the figures mean (AWS's own, or the sandbox's profile and scale); "not available" and why, when none.
pub(crate) fn throttle_table(view: &contract::quota::ThrottleView) -> TableData {
    const TITLE: &str = "Throttles: which limit gave";
    if let Some(why) = &view.unavailable {
        return TableData {
            title: TITLE,
            header: vec!["limit"],
            rows: vec![vec![format!("not available: {why}")]],
            numeric: Vec::new(),
        };
    }
    let mut rows: Vec<Vec<String>> = view
        .rows
        .iter()
        .filter(|r| r.total > 0)
        .map(|r| {
            let busiest = r.per_second.iter().map(|(_, n)| *n).max().unwrap_or(0);
            vec![
                r.label.clone(),
                r.resource.clone(),
                format!("{} {}", r.namespace, r.metric),
                r.total.to_string(),
                busiest.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        rows.push(vec!["nothing throttled".to_owned()]);
    }
    rows.push(vec![format!("({})", view.meaning())]);
    TableData {
        title: TITLE,
        header: vec![
            "limit",
            "resource",
            "AWS metric",
            "total",
            "most in a second",
        ],
        rows,
        numeric: vec![3, 4],
    }
}

/// The run's cost on AWS, line by line, with how each quantity was counted.
pub(crate) fn cost_table(cost: &Cost) -> TableData {
    const TITLE: &str = "What this run would cost on AWS (list prices, no free tier)";
    let estimate = match cost {
        Cost::Estimated(estimate) => estimate,
        Cost::Unavailable { unavailable } => {
            return TableData {
                title: TITLE,
                header: vec!["cost"],
                rows: vec![vec![format!("not available: {unavailable}")]],
                numeric: Vec::new(),
            }
        }
    };
    let money = |v: f64| format!("{v:.6}");
    let mut rows: Vec<Vec<String>> = estimate
        .lines
        .iter()
        .map(|l| {
            vec![
                l.item.to_owned(),
                if l.quantity.fract() == 0.0 {
                    format!("{:.0}", l.quantity)
                } else {
                    format!("{:.4}", l.quantity)
                },
                l.unit.to_owned(),
                money(l.cost),
                l.counted.clone(),
            ]
        })
        .collect();
    rows.push(vec![
        format!(
            "total ({}, {}, prices of {})",
            estimate.region, estimate.currency, estimate.as_of
        ),
        String::new(),
        String::new(),
        money(estimate.total),
        String::new(),
    ]);
    if let Some(per) = estimate.per_thousand_loops {
        rows.push(vec![
            "per 1,000 loops".to_owned(),
            String::new(),
            String::new(),
            money(per),
            String::new(),
        ]);
    }
    TableData {
        title: TITLE,
        header: vec!["item", "quantity", "unit", "cost", "how counted"],
        rows,
        numeric: vec![1, 3],
    }
}
