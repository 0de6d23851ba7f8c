//! [`ItemStore`] over DynamoDB BatchWriteItem.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use contract::item::attr;
use contract::Item;

use super::describe;
use crate::error::StoreError;
use crate::sinks::ItemStore;

/// Writes items into one table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store writing to `table`.
    pub fn new(client: Client, table: String) -> Self {
        DynamoStore { client, table }
    }
}

impl ItemStore for DynamoStore {
    async fn write_batch(&self, items: &[Item]) -> Result<Vec<String>, StoreError> {
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let put = PutRequest::builder()
                .set_item(Some(item.to_sdk_attributes()))
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.table, requests)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("ValidationException") => StoreError::Rejected(describe(&e)),
                _ => StoreError::Failed(describe(&e)),
            })?;
        let unprocessed = output
            .unprocessed_items
            .and_then(|mut tables| tables.remove(&self.table))
            .unwrap_or_default();
        Ok(unprocessed
            .into_iter()
            .filter_map(|request| request.put_request)
            .filter_map(|put| match put.item.get(attr::ID) {
                Some(AttributeValue::S(id)) => Some(id.clone()),
                _ => None,
            })
            .collect())
    }
}
