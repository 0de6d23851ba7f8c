//! Kinesis's per-shard write quota, kept at the edge: a record goes to the shard whose hash-key
//! range holds the MD5 of its partition key (or its `ExplicitHashKey`), as Kinesis routes it,
//! and each shard takes so many records and bytes (data and partition key) a second. Over the
//! quota, `PutRecord` is AWS's 400 `ProvisionedThroughputExceededException`, and `PutRecords`
//! a 200 whose refused records carry that `ErrorCode` while the rest are written.

use std::collections::HashMap;
use std::sync::Mutex;

use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use super::window::PerSecond;
use super::{Admission, Merge};

/// A shard and its range of 128-bit hash keys (inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRange {
    /// `shardId-000000000000`.
    pub id: String,
    /// First hash key.
    pub start: u128,
    /// Last hash key.
    pub end: u128,
}

impl ShardRange {
    /// The open shards in a `ListShards` answer.
    pub fn from_list_shards(answer: &Value) -> Vec<ShardRange> {
        let key = |v: &Value| v.as_str().and_then(|s| s.parse::<u128>().ok());
        answer["Shards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["SequenceNumberRange"]["EndingSequenceNumber"].is_null())
            .filter_map(|s| {
                Some(ShardRange {
                    id: s["ShardId"].as_str()?.to_owned(),
                    start: key(&s["HashKeyRange"]["StartingHashKey"])?,
                    end: key(&s["HashKeyRange"]["EndingHashKey"])?,
                })
            })
            .collect()
    }
}

/// A partition key's 128-bit hash key: its MD5 as a big-endian number, as Kinesis computes it.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// The index of the shard whose range holds `key` (the last shard if none does).
pub fn shard_of(ranges: &[ShardRange], key: u128) -> usize {
    ranges
        .iter()
        .position(|r| r.start <= key && key <= r.end)
        .unwrap_or(ranges.len().saturating_sub(1))
}

/// The bytes a base64 text decodes to.
pub fn decoded_len(base64: &str) -> usize {
    let padding = base64.bytes().rev().take_while(|b| *b == b'=').count();
    (base64.len() / 4 * 3).saturating_sub(padding)
}

/// One stream's shards and each shard's quota for the current second.
struct Stream {
    ranges: Vec<ShardRange>,
    records: Vec<PerSecond>,
    bytes: Vec<PerSecond>,
}

/// The write quotas of every stream written through the edge.
pub struct KinesisWrites {
    records_per_shard: f64,
    bytes_per_shard: f64,
    account: String,
    streams: Mutex<HashMap<String, Stream>>,
}

/// A record as the quota sees it: which shard, how many bytes.
struct Sized {
    key: u128,
    bytes: f64,
}

impl Sized {
    fn of(record: &Value) -> Sized {
        let partition_key = record["PartitionKey"].as_str().unwrap_or_default();
        let key = record["ExplicitHashKey"]
            .as_str()
            .and_then(|k| k.parse::<u128>().ok())
            .unwrap_or_else(|| hash_key(partition_key));
        let data = decoded_len(record["Data"].as_str().unwrap_or_default());
        Sized {
            key,
            bytes: (data + partition_key.len()) as f64,
        }
    }
}

/// The stream a Kinesis call names (`StreamName`, or the name in `StreamARN`).
pub fn stream_named(body: &Value) -> Option<String> {
    body["StreamName"].as_str().map(str::to_owned).or_else(|| {
        body["StreamARN"]
            .as_str()
            .map(|arn| crate::pollers::kinesis_stream_name(arn).to_owned())
    })
}

impl KinesisWrites {
    /// Quotas of `records_per_shard` and `bytes_per_shard` a second, in `account`'s streams.
    pub fn new(records_per_shard: f64, bytes_per_shard: f64, account: &str) -> KinesisWrites {
        KinesisWrites {
            records_per_shard,
            bytes_per_shard,
            account: account.to_owned(),
            streams: Mutex::default(),
        }
    }

    /// The records a shard takes a second.
    pub fn records_per_shard(&self) -> f64 {
        self.records_per_shard
    }

    /// Whether `stream`'s shards are known.
    pub fn knows(&self, stream: &str) -> bool {
        self.lock().contains_key(stream)
    }

    /// Learns `stream`'s shards.
    pub fn add_stream(&self, stream: &str, ranges: Vec<ShardRange>) {
        let n = ranges.len();
        self.lock().insert(
            stream.to_owned(),
            Stream {
                ranges,
                records: vec![PerSecond::new(self.records_per_shard); n],
                bytes: vec![PerSecond::new(self.bytes_per_shard); n],
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For each record in order: admitted (`None`), or refused by the quota of this shard.
    fn admit(&self, stream: &str, records: &[Sized], now_ms: u64) -> Vec<Option<String>> {
        let mut streams = self.lock();
        let Some(stream) = streams.get_mut(stream) else {
            return vec![None; records.len()];
        };
        if stream.ranges.is_empty() {
            return vec![None; records.len()];
        }
        records
            .iter()
            .map(|record| {
                let shard = shard_of(&stream.ranges, record.key);
                let fits = stream.records[shard].fits(now_ms, 1.0)
                    && stream.bytes[shard].fits(now_ms, record.bytes);
                if fits {
                    stream.records[shard].take(now_ms, 1.0);
                    stream.bytes[shard].take(now_ms, record.bytes);
                    None
                } else {
                    Some(stream.ranges[shard].id.clone())
                }
            })
            .collect()
    }

    /// `PutRecord`: forwarded, or refused with AWS's 400.
    pub fn put_record(&self, stream: &str, body: &Value, now_ms: u64) -> (Admission, usize) {
        match self
            .admit(stream, &[Sized::of(body)], now_ms)
            .pop()
            .flatten()
        {
            None => (Admission::Whole, 0),
            Some(shard) => (
                Admission::Refused(
                    400,
                    json!({
                        "__type": "ProvisionedThroughputExceededException",
                        "message": contract::quota::kinesis_write_refusal(&shard, stream, &self.account),
                    }),
                ),
                1,
            ),
        }
    }

    /// `PutRecords`: the admitted records forwarded, the refused ones answered with their
    /// `ErrorCode`; and how many were refused.
    pub fn put_records(&self, stream: &str, body: &Value, now_ms: u64) -> (Admission, usize) {
        let records = body["Records"].as_array().cloned().unwrap_or_default();
        let sized: Vec<Sized> = records.iter().map(Sized::of).collect();
        let verdicts = self.admit(stream, &sized, now_ms);
        let refused = verdicts.iter().filter(|v| v.is_some()).count();
        if refused == 0 {
            return (Admission::Whole, 0);
        }
        let entries: Vec<Option<Value>> = verdicts
            .iter()
            .map(|v| {
                v.as_ref().map(|shard| {
                    json!({
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": contract::quota::kinesis_write_refusal(shard, stream, &self.account),
                    })
                })
            })
            .collect();
        let admitted: Vec<Value> = records
            .into_iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.is_none())
            .map(|(r, _)| r)
            .collect();
        if admitted.is_empty() {
            // Nothing to write: the answer is whole here.
            let answer =
                Merge::Records(entries).apply(json!({"Records": [], "FailedRecordCount": 0}));
            return (Admission::Answered(answer), refused);
        }
        let mut forwarded: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
        forwarded.insert("Records".into(), Value::Array(admitted));
        (
            Admission::Part(Value::Object(forwarded), Merge::Records(entries)),
            refused,
        )
    }
}

/// A `PutRecords` answer with the refused records' entries put back in their places.
pub fn merge_records(entries: Vec<Option<Value>>, mut answer: Value) -> Value {
    let mut written = answer["Records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter();
    let refused = entries.iter().filter(|e| e.is_some()).count() as u64;
    let failed = answer["FailedRecordCount"].as_u64().unwrap_or(0) + refused;
    let merged: Vec<Value> = entries
        .into_iter()
        .map(|e| e.unwrap_or_else(|| written.next().unwrap_or(Value::Null)))
        .collect();
    answer["Records"] = Value::Array(merged);
    answer["FailedRecordCount"] = json!(failed);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_shards() -> Vec<ShardRange> {
        let half = u128::MAX / 2;
        vec![
            ShardRange {
                id: "shardId-000000000000".into(),
                start: 0,
                end: half,
            },
            ShardRange {
                id: "shardId-000000000001".into(),
                start: half + 1,
                end: u128::MAX,
            },
        ]
    }

    #[test]
    fn records_go_to_shards_by_the_md5_of_their_partition_key() {
        // MD5("a") = 0cc175b9...: the lower half; MD5("b") = 92eb5ffe...: the upper half.
        assert_eq!(hash_key("a") >> 120, 0x0c);
        assert_eq!(shard_of(&two_shards(), hash_key("a")), 0);
        assert_eq!(shard_of(&two_shards(), hash_key("b")), 1);
        assert_eq!(decoded_len("aGVsbG8="), 5);
        assert_eq!(decoded_len("aGk="), 2);
    }

    #[test]
    fn a_shard_at_scale_a_tenth_refuses_the_101st_record_in_a_second() {
        let writes = KinesisWrites::new(100.0, 104_857.6, "123456789012");
        writes.add_stream("s", two_shards());
        let record = json!({"PartitionKey": "a", "Data": "aGVsbG8="});
        let second = 1_800_000_000_000;
        let refused: usize = (0..101)
            .map(|i| writes.put_record("s", &record, second + i).1)
            .sum();
        assert_eq!(refused, 1);
        let (admission, _) = writes.put_record("s", &record, second + 500);
        let Admission::Refused(400, error) = admission else {
            panic!("not refused")
        };
        assert_eq!(error["__type"], "ProvisionedThroughputExceededException");
        assert_eq!(
            error["message"],
            "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012."
        );
        // The other shard has its own quota; the next second takes the record again.
        let other = json!({"PartitionKey": "b", "Data": "aGVsbG8="});
        assert_eq!(writes.put_record("s", &other, second + 500).1, 0);
        assert_eq!(writes.put_record("s", &record, second + 1000).1, 0);
    }

    #[test]
    fn put_records_writes_what_fits_and_answers_the_rest_in_place() {
        let writes = KinesisWrites::new(2.0, 1e9, "123456789012");
        writes.add_stream("s", two_shards());
        let body = json!({"StreamName": "s", "Records": [
            {"PartitionKey": "a", "Data": "AA=="},
            {"PartitionKey": "a", "Data": "AQ=="},
            {"PartitionKey": "a", "Data": "Ag=="},
            {"PartitionKey": "b", "Data": "Aw=="},
        ]});
        let (admission, refused) = writes.put_records("s", &body, 7_000);
        assert_eq!(refused, 1);
        let Admission::Part(forwarded, merge) = admission else {
            panic!("not split")
        };
        let sent: Vec<&str> = forwarded["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Data"].as_str().unwrap())
            .collect();
        assert_eq!(sent, ["AA==", "AQ==", "Aw=="]);
        let moto = json!({"FailedRecordCount": 0, "Records": [
            {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
            {"SequenceNumber": "2", "ShardId": "shardId-000000000000"},
            {"SequenceNumber": "3", "ShardId": "shardId-000000000001"},
        ]});
        let answer = merge.apply(moto);
        assert_eq!(answer["FailedRecordCount"], 1);
        assert_eq!(answer["Records"][1]["SequenceNumber"], "2");
        assert_eq!(
            answer["Records"][2]["ErrorCode"],
            "ProvisionedThroughputExceededException"
        );
        assert_eq!(answer["Records"][3]["SequenceNumber"], "3");
    }

    #[test]
    fn open_shards_are_read_from_list_shards() {
        let answer = json!({"Shards": [
            {"ShardId": "shardId-000000000000", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "99"},
             "SequenceNumberRange": {"StartingSequenceNumber": "1"}},
            {"ShardId": "shardId-000000000001", "HashKeyRange": {"StartingHashKey": "100", "EndingHashKey": "199"},
             "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "5"}},
        ]});
        let ranges = ShardRange::from_list_shards(&answer);
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0].end, 99);
    }
}
