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
