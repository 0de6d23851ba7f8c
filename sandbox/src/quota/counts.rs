//! What the quotas refused, counted by the metric AWS publishes it under, for CloudWatch each
//! second and for the sandbox's closing summary.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One metric of one resource (`AWS/Kinesis`, `WriteProvisionedThroughputExceeded`,
/// `StreamName` = the stream).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Counted {
    /// The namespace.
    pub namespace: &'static str,
    /// The metric.
    pub metric: &'static str,
    /// Its dimensions.
    pub dimensions: Vec<(&'static str, String)>,
}

/// Counts by metric, since the last [`Counts::take`] and in all.
#[derive(Debug, Default)]
pub struct Counts {
    inner: Mutex<(BTreeMap<Counted, f64>, BTreeMap<Counted, f64>)>,
}

impl Counts {
    /// Adds `n` to `what`.
    pub fn add(&self, what: Counted, n: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.1.entry(what.clone()).or_default() += n;
        *inner.0.entry(what).or_default() += n;
    }

    /// What was counted since the last call.
    pub fn take(&self) -> BTreeMap<Counted, f64> {
        std::mem::take(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// Everything counted since the start.
    pub fn totals(&self) -> BTreeMap<Counted, f64> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_empties_the_second_and_keeps_the_totals() {
        let counts = Counts::default();
        let what = Counted {
            namespace: "AWS/Kinesis",
            metric: "WriteProvisionedThroughputExceeded",
            dimensions: vec![("StreamName", "s".into())],
        };
        counts.add(what.clone(), 3.0);
        counts.add(what.clone(), 2.0);
        assert_eq!(counts.take()[&what], 5.0);
        assert!(counts.take().is_empty());
        counts.add(what.clone(), 1.0);
        assert_eq!(counts.totals()[&what], 6.0);
    }
}
