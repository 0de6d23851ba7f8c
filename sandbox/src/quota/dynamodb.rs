//! DynamoDB's write quota, kept at the edge: a new on-demand table of
//! [`contract::quota::DYNAMODB_NEW_TABLE_PARTITIONS`] partitions, each taking so many write
//! units a second, and the table its own total. An item costs one write unit per KiB of its
//! size (attribute names and values, as DynamoDB counts them), at least one; it goes to the
//! partition its partition key's MD5 falls in. Over the quota, `BatchWriteItem` writes what
//! fits and returns the rest in `UnprocessedItems`, or answers AWS's 400
//! `ProvisionedThroughputExceededException` when nothing fits; `PutItem` is the 400.

use std::collections::HashMap;
use std::sync::Mutex;

use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use super::window::PerSecond;
use super::{Admission, Merge};

/// The size DynamoDB counts for an attribute value in its JSON form (`{"S": "..."}`): strings
/// and binaries by their bytes, numbers by their digits (about one byte per two, plus one),
/// sets and lists by their members plus 3 bytes, maps by names and values plus 3.
pub fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 1;
    };
    let text = || inner.as_str().unwrap_or_default();
    match kind.as_str() {
        "S" => text().len(),
        "N" => text().trim_start_matches('-').len().div_ceil(2) + 1,
        "B" => super::kinesis::decoded_len(text()),
        "BOOL" | "NULL" => 1,
        "SS" | "NS" | "BS" => {
            let members = inner.as_array().into_iter().flatten();
            3 + members
                .map(|m| value_size(&json!({ &kind[..1]: m })))
                .sum::<usize>()
        }
        "L" => {
            3 + inner
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| 1 + value_size(v))
                .sum::<usize>()
        }
        "M" => 3 + inner.as_object().map_or(0, item_size),
        _ => 1,
    }
}

/// An item's size: its attribute names and values.
pub fn item_size(item: &Map<String, Value>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// The write units an item costs: one per KiB, at least one.
pub fn write_units(item: &Map<String, Value>) -> f64 {
    item_size(item)
        .div_ceil(contract::quota::DYNAMODB_WRITE_UNIT_BYTES)
        .max(1) as f64
}

/// One table's partitions and its total, for the current second.
struct Table {
    hash_key: String,
    partitions: Vec<PerSecond>,
    total: PerSecond,
}

/// The write quotas of every table written through the edge.
pub struct DynamoDbWrites {
    partition_units: f64,
    table_units: f64,
    tables: Mutex<HashMap<String, Table>>,
}

/// The 400 DynamoDB answers when nothing of a write fits.
pub fn refusal() -> Admission {
    Admission::Refused(
        400,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": contract::quota::DYNAMODB_THROTTLE_MESSAGE,
        }),
    )
}

/// What the quota refused of one call.
#[derive(Debug, Default, PartialEq)]
pub struct Refused {
    /// Items refused, by table.
    pub items: Vec<(String, usize)>,
    /// The whole call was refused.
    pub whole: bool,
}

impl DynamoDbWrites {
    /// Quotas of `partition_units` a second per partition and `table_units` per table.
    pub fn new(partition_units: f64, table_units: f64) -> DynamoDbWrites {
        DynamoDbWrites {
            partition_units,
            table_units,
            tables: Mutex::default(),
        }
    }

    /// The write units a table takes a second.
    pub fn table_units(&self) -> f64 {
        self.table_units
    }

    /// Whether `table`'s key is known.
    pub fn knows(&self, table: &str) -> bool {
        self.lock().contains_key(table)
    }

    /// Learns `table`'s partition key.
    pub fn add_table(&self, table: &str, hash_key: &str) {
        let partitions = contract::quota::DYNAMODB_NEW_TABLE_PARTITIONS;
        self.lock().insert(
            table.to_owned(),
            Table {
                hash_key: hash_key.to_owned(),
                partitions: vec![PerSecond::new(self.partition_units); partitions],
                total: PerSecond::new(self.table_units),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Table>> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a write of `item` (or a delete of `key`) to `table` fits now; taken if it does.
    fn admit(&self, table: &str, item: &Map<String, Value>, now_ms: u64) -> bool {
        let mut tables = self.lock();
        let Some(table) = tables.get_mut(table) else {
            return true;
        };
        let key = item
            .get(&table.hash_key)
            .and_then(|v| v.as_object())
            .and_then(|o| o.values().next())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default();
        let digest = Md5::digest(key.as_bytes());
        let partition = usize::from(digest[0]) * table.partitions.len() / 256;
        let units = write_units(item);
        let fits =
            table.partitions[partition].fits(now_ms, units) && table.total.fits(now_ms, units);
        if fits {
            table.partitions[partition].take(now_ms, units);
            table.total.take(now_ms, units);
        }
        fits
    }

    /// `PutItem`: forwarded, or refused with the 400.
    pub fn put_item(&self, body: &Value, now_ms: u64) -> (Admission, Refused) {
        let table = body["TableName"].as_str().unwrap_or_default();
        let item = body["Item"].as_object().cloned().unwrap_or_default();
        if self.admit(table, &item, now_ms) {
            return (Admission::Whole, Refused::default());
        }
        let refused = Refused {
            items: vec![(table.to_owned(), 1)],
            whole: true,
        };
        (refusal(), refused)
    }

    /// `BatchWriteItem`: what fits forwarded, the rest in `UnprocessedItems`; the 400 when
    /// nothing fits.
    pub fn batch_write(&self, body: &Value, now_ms: u64) -> (Admission, Refused) {
        let requests = body["RequestItems"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut admitted = Map::new();
        let mut unprocessed = Map::new();
        let mut refused = Refused::default();
        for (table, writes) in &requests {
            let (mut kept, mut left) = (Vec::new(), Vec::new());
            for write in writes.as_array().into_iter().flatten() {
                let item = write["PutRequest"]["Item"]
                    .as_object()
                    .or_else(|| write["DeleteRequest"]["Key"].as_object())
                    .cloned()
                    .unwrap_or_default();
                if self.admit(table, &item, now_ms) {
                    kept.push(write.clone());
                } else {
                    left.push(write.clone());
                }
            }
            if !left.is_empty() {
                refused.items.push((table.clone(), left.len()));
                unprocessed.insert(table.clone(), Value::Array(left));
            }
            if !kept.is_empty() {
                admitted.insert(table.clone(), Value::Array(kept));
            }
        }
        if unprocessed.is_empty() {
            return (Admission::Whole, refused);
        }
        if admitted.is_empty() {
            refused.whole = true;
            return (refusal(), refused);
        }
        let mut forwarded = body.as_object().cloned().unwrap_or_default();
        forwarded.insert("RequestItems".into(), Value::Object(admitted));
        (
            Admission::Part(Value::Object(forwarded), Merge::Unprocessed(unprocessed)),
            refused,
        )
    }
}

/// A `BatchWriteItem` answer with the refused writes added to its `UnprocessedItems`.
pub fn merge_unprocessed(refused: Map<String, Value>, mut answer: Value) -> Value {
    if !answer["UnprocessedItems"].is_object() {
        answer["UnprocessedItems"] = json!({});
    }
    for (table, writes) in refused {
        let entry = &mut answer["UnprocessedItems"][&table];
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let (Some(list), Some(more)) = (entry.as_array_mut(), writes.as_array()) {
            list.extend(more.iter().cloned());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str) -> Value {
        json!({"PutRequest": {"Item": {"id": {"S": id}, "message": {"S": "hello"}}}})
    }

    #[test]
    fn items_cost_a_write_unit_per_kib() {
        let small = json!({"id": {"S": "abc"}, "n": {"N": "12345"}});
        assert_eq!(item_size(small.as_object().unwrap()), 2 + 3 + 1 + 4);
        assert_eq!(write_units(small.as_object().unwrap()), 1.0);
        let big = json!({"id": {"S": "x".repeat(2000)}});
        assert_eq!(write_units(big.as_object().unwrap()), 2.0);
    }

    #[test]
    fn a_batch_over_the_quota_returns_the_rest_unprocessed() {
        // One unit a partition, four partitions, three units a table: a batch of 25 writes.
        let writes = DynamoDbWrites::new(1.0, 3.0);
        writes.add_table("t", "id");
        let items: Vec<Value> = (0..25).map(|i| put(&format!("id-{i}"))).collect();
        let body = json!({"RequestItems": {"t": items}});
        let (admission, refused) = writes.batch_write(&body, 9_000);
        let Admission::Part(forwarded, merge) = admission else {
            panic!("not split")
        };
        let sent = forwarded["RequestItems"]["t"].as_array().unwrap().len();
        assert!((1..=3).contains(&sent), "{sent} written");
        assert_eq!(refused.items, vec![("t".to_owned(), 25 - sent)]);
        let answer = merge.apply(json!({"UnprocessedItems": {}}));
        assert_eq!(
            answer["UnprocessedItems"]["t"].as_array().unwrap().len(),
            25 - sent
        );
        // The same second: nothing fits, the whole call is refused.
        let (again, refused) = writes.batch_write(&body, 9_500);
        assert!(refused.whole);
        let Admission::Refused(400, error) = again else {
            panic!("not refused")
        };
        assert!(error["__type"]
            .as_str()
            .unwrap()
            .ends_with("#ProvisionedThroughputExceededException"));
        // The next second takes writes again.
        assert!(matches!(
            writes
                .put_item(
                    &json!({"TableName": "t", "Item": {"id": {"S": "z"}}}),
                    10_000
                )
                .0,
            Admission::Whole
        ));
    }
}
