//! The DynamoDB item midstream writes and downstream reads from the table's stream.
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `id` | S | the request id, the table's key |
//! | `message` | S | the request message |
//! | `timestamp` | N | client send time, epoch ms |
//! | `run_id` | S | the load-test run, when the request had one |
//! | `received_at` | N | upstream accepted the request, epoch ms |
//! | `kinesis_arrival` | N | the Kinesis record's ApproximateArrivalTimestamp, epoch ms |
//! | `stored_at` | N | midstream wrote the item, epoch ms |
//!
//! Readers need `id`, `message` and `timestamp`; the three hop times are optional so that an
//! item written by another writer still yields its end-to-end latency.

use crate::error::ItemError;

/// Attribute names, as stored.
pub mod attr {
    /// `id` (S), the table's partition key.
    pub const ID: &str = "id";
    /// `message` (S).
    pub const MESSAGE: &str = "message";
    /// `timestamp` (N, epoch ms).
    pub const TIMESTAMP: &str = "timestamp";
    /// `run_id` (S), optional.
    pub const RUN_ID: &str = "run_id";
    /// `received_at` (N, epoch ms).
    pub const RECEIVED_AT: &str = "received_at";
    /// `kinesis_arrival` (N, epoch ms).
    pub const KINESIS_ARRIVAL: &str = "kinesis_arrival";
    /// `stored_at` (N, epoch ms).
    pub const STORED_AT: &str = "stored_at";
}

/// One pipeline item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Request id (table key).
    pub id: String,
    /// Request message.
    pub message: String,
    /// Client send time, epoch ms.
    pub timestamp_ms: i64,
    /// Load-test run id.
    pub run_id: Option<String>,
    /// Upstream accepted the request, epoch ms.
    pub received_at_ms: Option<i64>,
    /// The record arrived in Kinesis, epoch ms.
    pub kinesis_arrival_ms: Option<i64>,
    /// Midstream wrote the item, epoch ms.
    pub stored_at_ms: Option<i64>,
}

/// One attribute as read from some attribute-map representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr<'a> {
    /// A string (`S`).
    S(&'a str),
    /// A number (`N`), in DynamoDB's decimal string form.
    N(&'a str),
    /// Any other DynamoDB type.
    Other,
}

/// A map of DynamoDB attributes that an [`Item`] can be read from: the SDK's map (feature
/// `dynamodb`) and a stream image (feature `streams`).
pub trait AttributeSource {
    /// The attribute called `name`, if present.
    fn attribute(&self, name: &str) -> Option<Attr<'_>>;
}

impl Item {
    /// Reads an item from an attribute map, naming the first attribute that breaks the contract.
    pub fn from_attributes<A: AttributeSource + ?Sized>(attrs: &A) -> Result<Item, ItemError> {
        Ok(Item {
            id: string(attrs, attr::ID)?.ok_or(ItemError::Missing(attr::ID))?,
            message: string(attrs, attr::MESSAGE)?.ok_or(ItemError::Missing(attr::MESSAGE))?,
            timestamp_ms: integer(attrs, attr::TIMESTAMP)?
                .ok_or(ItemError::Missing(attr::TIMESTAMP))?,
            run_id: string(attrs, attr::RUN_ID)?,
            received_at_ms: integer(attrs, attr::RECEIVED_AT)?,
            kinesis_arrival_ms: integer(attrs, attr::KINESIS_ARRIVAL)?,
            stored_at_ms: integer(attrs, attr::STORED_AT)?,
        })
    }

    /// Every attribute the item has, as `(name, value)` with its DynamoDB type.
    pub fn attributes(&self) -> Vec<(&'static str, Attr<'_>)> {
        let mut out = vec![
            (attr::ID, Attr::S(&self.id)),
            (attr::MESSAGE, Attr::S(&self.message)),
        ];
        if let Some(run_id) = &self.run_id {
            out.push((attr::RUN_ID, Attr::S(run_id)));
        }
        out
    }

    /// The item's number attributes, as `(name, value)`.
    pub fn numbers(&self) -> Vec<(&'static str, i64)> {
        let mut out = vec![(attr::TIMESTAMP, self.timestamp_ms)];
        for (name, value) in [
            (attr::RECEIVED_AT, self.received_at_ms),
            (attr::KINESIS_ARRIVAL, self.kinesis_arrival_ms),
            (attr::STORED_AT, self.stored_at_ms),
        ] {
            if let Some(v) = value {
                out.push((name, v));
            }
        }
        out
    }
}

fn string<A: AttributeSource + ?Sized>(
    attrs: &A,
    name: &'static str,
) -> Result<Option<String>, ItemError> {
    match attrs.attribute(name) {
        None => Ok(None),
        Some(Attr::S(s)) => Ok(Some(s.to_owned())),
        Some(_) => Err(ItemError::WrongType {
            name,
            expected: "S",
        }),
    }
}

fn integer<A: AttributeSource + ?Sized>(
    attrs: &A,
    name: &'static str,
) -> Result<Option<i64>, ItemError> {
    match attrs.attribute(name) {
        None => Ok(None),
        Some(Attr::N(n)) => n.parse().map(Some).map_err(|_| ItemError::NotAnInteger {
            name,
            value: n.to_owned(),
        }),
        Some(_) => Err(ItemError::WrongType {
            name,
            expected: "N",
        }),
    }
}

impl AttributeSource for std::collections::HashMap<&str, Attr<'_>> {
    fn attribute(&self, name: &str) -> Option<Attr<'_>> {
        self.get(name).copied()
    }
}

#[cfg(feature = "dynamodb")]
mod sdk {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::{Attr, AttributeSource, Item};

    impl AttributeSource for HashMap<String, AttributeValue> {
        fn attribute(&self, name: &str) -> Option<Attr<'_>> {
            self.get(name).map(|v| match v {
                AttributeValue::S(s) => Attr::S(s),
                AttributeValue::N(n) => Attr::N(n),
                _ => Attr::Other,
            })
        }
    }

    impl Item {
        /// The item as the SDK's attribute map, ready for PutItem or BatchWriteItem.
        pub fn to_sdk_attributes(&self) -> HashMap<String, AttributeValue> {
            let mut map = HashMap::with_capacity(7);
            for (name, value) in self.attributes() {
                if let Attr::S(s) = value {
                    map.insert(name.to_owned(), AttributeValue::S(s.to_owned()));
                }
            }
            for (name, value) in self.numbers() {
                map.insert(name.to_owned(), AttributeValue::N(value.to_string()));
            }
            map
        }
    }
}

#[cfg(feature = "streams")]
impl AttributeSource for serde_dynamo::Item {
    fn attribute(&self, name: &str) -> Option<Attr<'_>> {
        self.get(name).map(|v| match v {
            serde_dynamo::AttributeValue::S(s) => Attr::S(s),
            serde_dynamo::AttributeValue::N(n) => Attr::N(n),
            _ => Attr::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[cfg(any(feature = "dynamodb", feature = "streams"))]
    fn full() -> Item {
        Item {
            id: "r-1-2".into(),
            message: "m".into(),
            timestamp_ms: 1_000,
            run_id: Some("r".into()),
            received_at_ms: Some(1_010),
            kinesis_arrival_ms: Some(1_020),
            stored_at_ms: Some(1_030),
        }
    }

    #[test]
    fn reads_the_minimum_and_names_what_is_wrong() {
        let mut attrs: HashMap<&str, Attr> = HashMap::new();
        attrs.insert("id", Attr::S("a"));
        attrs.insert("message", Attr::S("m"));
        assert_eq!(
            Item::from_attributes(&attrs).unwrap_err().to_string(),
            "item has no `timestamp` attribute"
        );
        attrs.insert("timestamp", Attr::S("12"));
        assert_eq!(
            Item::from_attributes(&attrs).unwrap_err().to_string(),
            "item attribute `timestamp` must be of type N"
        );
        attrs.insert("timestamp", Attr::N("12.5"));
        assert_eq!(
            Item::from_attributes(&attrs).unwrap_err().to_string(),
            "item attribute `timestamp` must be an integer, found \"12.5\""
        );
        attrs.insert("timestamp", Attr::N("12"));
        let item = Item::from_attributes(&attrs).unwrap();
        assert_eq!(item.timestamp_ms, 12);
        assert_eq!((item.run_id, item.stored_at_ms), (None, None));
        attrs.insert("stored_at", Attr::Other);
        assert!(Item::from_attributes(&attrs).is_err());
    }

    #[cfg(feature = "dynamodb")]
    #[test]
    fn round_trips_through_the_sdk_map() {
        use aws_sdk_dynamodb::types::AttributeValue;
        let item = full();
        let map = item.to_sdk_attributes();
        assert_eq!(map.len(), 7);
        assert_eq!(map["timestamp"], AttributeValue::N("1000".into()));
        assert_eq!(map["run_id"], AttributeValue::S("r".into()));
        assert_eq!(Item::from_attributes(&map).unwrap(), item);
        let bare = Item {
            run_id: None,
            received_at_ms: None,
            kinesis_arrival_ms: None,
            stored_at_ms: None,
            ..item
        };
        let map = bare.to_sdk_attributes();
        assert_eq!(map.len(), 3);
        assert_eq!(Item::from_attributes(&map).unwrap(), bare);
    }

    #[cfg(feature = "streams")]
    #[test]
    fn reads_a_stream_image() {
        let image: serde_dynamo::Item = serde_json::from_str(
            r#"{"id":{"S":"r-1-2"},"message":{"S":"m"},"timestamp":{"N":"1000"},"run_id":{"S":"r"},
                "received_at":{"N":"1010"},"kinesis_arrival":{"N":"1020"},"stored_at":{"N":"1030"}}"#,
        )
        .unwrap();
        assert_eq!(Item::from_attributes(&image).unwrap(), full());
    }
}
