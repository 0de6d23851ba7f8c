//! How the summaries are shaped, as k6's options name it: the text mode (`--summary-mode`) and
//! the statistics each trend is shown as (`--summary-trend-stats`, and the live output's
//! `K6_PROMETHEUS_RW_TREND_STATS`).

/// How the end-of-test summary is printed (k6's `--summary-mode`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SummaryMode {
    /// k6 1.x's default: thresholds, checks, and the metrics by group, timings in brief.
    #[default]
    Compact,
    /// As compact, with every timing trend.
    Full,
    /// k6 0.x's summary: one line per metric.
    Legacy,
}

/// One statistic of a trend in the summaries (k6's `summaryTrendStats`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TrendStat {
    /// `avg`.
    Avg,
    /// `min`.
    Min,
    /// `med`.
    Med,
    /// `max`.
    Max,
    /// `count`.
    Count,
    /// `p(N)`.
    Percentile(f64),
}

impl TrendStat {
    /// k6's default: `avg,min,med,max,p(90),p(95)`.
    pub fn defaults() -> Vec<TrendStat> {
        vec![
            TrendStat::Avg,
            TrendStat::Min,
            TrendStat::Med,
            TrendStat::Max,
            TrendStat::Percentile(90.0),
            TrendStat::Percentile(95.0),
        ]
    }

    /// Reads `avg`, `min`, `med`, `max`, `count` or `p(N)`.
    pub fn parse(text: &str) -> Result<TrendStat, String> {
        if let Some(n) = contract::threshold::percentile(text.trim()) {
            return n.map(TrendStat::Percentile);
        }
        Ok(match text.trim() {
            "avg" => TrendStat::Avg,
            "min" => TrendStat::Min,
            "med" => TrendStat::Med,
            "max" => TrendStat::Max,
            "count" => TrendStat::Count,
            other => {
                return Err(format!(
                    "{other:?} is not avg, min, med, max, count or p(N)"
                ))
            }
        })
    }

    /// Its name in k6's summaries: `p(99.9)`, `avg`.
    pub fn name(&self) -> String {
        match self {
            TrendStat::Avg => "avg".into(),
            TrendStat::Min => "min".into(),
            TrendStat::Med => "med".into(),
            TrendStat::Max => "max".into(),
            TrendStat::Count => "count".into(),
            TrendStat::Percentile(p) => format!("p({})", contract::threshold::format_value(*p)),
        }
    }
}
