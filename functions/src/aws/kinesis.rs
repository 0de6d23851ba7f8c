//! [`RecordSink`] over Kinesis PutRecord.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::Client;

use super::describe;
use crate::error::PutError;
use crate::sinks::RecordSink;

/// Puts records into one stream, named by name or ARN.
#[derive(Debug, Clone)]
pub struct KinesisSink {
    client: Client,
    stream: String,
}

impl KinesisSink {
    /// A sink for `stream` (a stream name, or an ARN starting with `arn:`).
    pub fn new(client: Client, stream: String) -> Self {
        KinesisSink { client, stream }
    }
}

impl RecordSink for KinesisSink {
    async fn put_record(&self, partition_key: &str, data: Vec<u8>) -> Result<(), PutError> {
        let request = self
            .client
            .put_record()
            .partition_key(partition_key)
            .data(Blob::new(data));
        let request = if self.stream.starts_with("arn:") {
            request.stream_arn(&self.stream)
        } else {
            request.stream_name(&self.stream)
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let throttled = error.as_service_error().is_some_and(|e| {
                    e.is_provisioned_throughput_exceeded_exception()
                        || e.is_kms_throttling_exception()
                });
                let message = describe(&error);
                Err(if throttled {
                    PutError::Throttled(message)
                } else {
                    PutError::Failed(message)
                })
            }
        }
    }
}
