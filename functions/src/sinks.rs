//! The small traits the handlers run over. The SDK adapters in [`crate::aws`] implement them for
//! Kinesis, DynamoDB and CloudWatch; tests implement them with hand-written fakes.

use std::future::Future;

use contract::Item;

use crate::error::{MetricError, PutError, StoreError};
use crate::metrics::MetricDatum;

/// Where upstream puts records: a Kinesis stream.
pub trait RecordSink: Send + Sync {
    /// Puts one record; `Ok` only once the record is in the stream.
    fn put_record(
        &self,
        partition_key: &str,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), PutError>> + Send;
}

/// Where midstream writes items: a DynamoDB table.
pub trait ItemStore: Send + Sync {
    /// Most items one call takes (BatchWriteItem's limit).
    const MAX_BATCH: usize = 25;

    /// Writes up to [`Self::MAX_BATCH`] items with distinct ids in one call; returns the ids of
    /// the items the table did not process (to be retried).
    fn write_batch(
        &self,
        items: &[Item],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// Where metrics go: CloudWatch.
pub trait MetricSink: Send + Sync {
    /// Publishes one request's worth of data (already within the API's limits).
    fn put_metric_data(
        &self,
        namespace: &str,
        data: &[MetricDatum],
    ) -> impl Future<Output = Result<(), MetricError>> + Send;
}

// A shared reference works wherever the value does (tests keep the fake to inspect it).
impl<T: RecordSink> RecordSink for &T {
    fn put_record(
        &self,
        partition_key: &str,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), PutError>> + Send {
        (**self).put_record(partition_key, data)
    }
}

impl<T: ItemStore> ItemStore for &T {
    const MAX_BATCH: usize = T::MAX_BATCH;

    fn write_batch(
        &self,
        items: &[Item],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        (**self).write_batch(items)
    }
}

impl<T: MetricSink> MetricSink for &T {
    fn put_metric_data(
        &self,
        namespace: &str,
        data: &[MetricDatum],
    ) -> impl Future<Output = Result<(), MetricError>> + Send {
        (**self).put_metric_data(namespace, data)
    }
}
