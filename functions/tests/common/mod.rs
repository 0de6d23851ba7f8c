//! Hand-written fakes of the handlers' traits, and fixture loading.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Mutex;

use contract::Item;
use functions::error::{MetricError, PutError, StoreError};
use functions::metrics::MetricDatum;
use functions::sinks::{ItemStore, MetricSink, RecordSink};

/// The fixed "now" every test clock returns, epoch ms.
pub const NOW_MS: i64 = 1_795_678_800_100;

/// A clock stopped at [`NOW_MS`].
pub fn clock() -> i64 {
    NOW_MS
}

/// Reads `tests/fixtures/<name>` into an event type.
pub fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

type PutScript = Box<dyn Fn(usize) -> Result<(), PutError> + Send + Sync>;

/// A Kinesis stand-in: records every put, answers from a script (by call index).
pub struct FakeStream {
    pub puts: Mutex<Vec<(String, Vec<u8>)>>,
    script: PutScript,
}

impl FakeStream {
    pub fn accepting() -> Self {
        Self::scripted(|_| Ok(()))
    }

    pub fn scripted(
        script: impl Fn(usize) -> Result<(), PutError> + Send + Sync + 'static,
    ) -> Self {
        FakeStream {
            puts: Mutex::new(Vec::new()),
            script: Box::new(script),
        }
    }

    pub fn put_count(&self) -> usize {
        self.puts.lock().unwrap().len()
    }
}

impl RecordSink for FakeStream {
    async fn put_record(&self, partition_key: &str, data: Vec<u8>) -> Result<(), PutError> {
        let mut puts = self.puts.lock().unwrap();
        puts.push((partition_key.to_owned(), data));
        (self.script)(puts.len() - 1)
    }
}

type StoreScript = Box<dyn Fn(usize, &[Item]) -> Result<Vec<String>, StoreError> + Send + Sync>;

/// A DynamoDB stand-in: checks each call against BatchWriteItem's rules, records it, answers
/// from a script (call index, items) with the unprocessed ids.
pub struct FakeTable {
    pub calls: Mutex<Vec<Vec<Item>>>,
    script: StoreScript,
}

impl FakeTable {
    pub fn accepting() -> Self {
        Self::scripted(|_, _| Ok(Vec::new()))
    }

    pub fn scripted(
        script: impl Fn(usize, &[Item]) -> Result<Vec<String>, StoreError> + Send + Sync + 'static,
    ) -> Self {
        FakeTable {
            calls: Mutex::new(Vec::new()),
            script: Box::new(script),
        }
    }

    pub fn calls(&self) -> Vec<Vec<Item>> {
        self.calls.lock().unwrap().clone()
    }

    /// Ids of every call, in order.
    pub fn call_ids(&self) -> Vec<Vec<String>> {
        self.calls()
            .iter()
            .map(|items| items.iter().map(|i| i.id.clone()).collect())
            .collect()
    }
}

impl ItemStore for FakeTable {
    async fn write_batch(&self, items: &[Item]) -> Result<Vec<String>, StoreError> {
        assert!(
            !items.is_empty() && items.len() <= 25,
            "BatchWriteItem takes 1 to 25 items, got {}",
            items.len()
        );
        let ids: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids.len(),
            items.len(),
            "BatchWriteItem refuses one key twice in a request"
        );
        let mut calls = self.calls.lock().unwrap();
        calls.push(items.to_vec());
        (self.script)(calls.len() - 1, items)
    }
}

/// A CloudWatch stand-in: records every PutMetricData call, fails the calls the script says.
pub struct FakeMetrics {
    pub calls: Mutex<Vec<(String, Vec<MetricDatum>)>>,
    fail: Box<dyn Fn(usize) -> bool + Send + Sync>,
}

impl FakeMetrics {
    pub fn accepting() -> Self {
        Self::failing_when(|_| false)
    }

    pub fn failing_when(fail: impl Fn(usize) -> bool + Send + Sync + 'static) -> Self {
        FakeMetrics {
            calls: Mutex::new(Vec::new()),
            fail: Box::new(fail),
        }
    }

    pub fn calls(&self) -> Vec<(String, Vec<MetricDatum>)> {
        self.calls.lock().unwrap().clone()
    }

    /// Every datum of every call.
    pub fn data(&self) -> Vec<MetricDatum> {
        self.calls()
            .into_iter()
            .flat_map(|(_, data)| data)
            .collect()
    }

    /// The data of one metric with exactly these dimensions.
    pub fn find(&self, name: &str, dimensions: &[(&str, &str)]) -> Vec<MetricDatum> {
        self.data()
            .into_iter()
            .filter(|d| {
                d.name == name
                    && d.dimensions.len() == dimensions.len()
                    && d.dimensions
                        .iter()
                        .zip(dimensions)
                        .all(|((k, v), (ek, ev))| k == ek && v == ev)
            })
            .collect()
    }
}

impl MetricSink for FakeMetrics {
    async fn put_metric_data(
        &self,
        namespace: &str,
        data: &[MetricDatum],
    ) -> Result<(), MetricError> {
        let mut calls = self.calls.lock().unwrap();
        calls.push((namespace.to_owned(), data.to_vec()));
        if (self.fail)(calls.len() - 1) {
            Err(MetricError("service unavailable".into()))
        } else {
            Ok(())
        }
    }
}

/// SDK configuration for moto at `endpoint`, built like the functions build theirs.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    testkit::aws::sdk_config(functions::aws::loader(), endpoint).await
}
