//! downstream's behaviour over fake metrics, from a real DynamoDB stream event fixture.

mod common;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use common::{clock, fixture, FakeMetrics, NOW_MS};
use contract::metrics::NAMESPACE;
use contract::Bucket;
use functions::downstream::Downstream;
use functions::metrics::{Unit, MAX_VALUES_PER_METRIC};

fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect()
}

/// `(value, count)` pairs of one datum.
fn pairs(metrics: &FakeMetrics, name: &str, dims: &[(&str, &str)]) -> Vec<(f64, f64)> {
    let data = metrics.find(name, dims);
    assert_eq!(data.len(), 1, "{name} {dims:?}: {data:?}");
    data[0]
        .values
        .iter()
        .copied()
        .zip(data[0].counts.iter().copied())
        .collect()
}

#[tokio::test]
async fn inserts_are_measured_and_modifies_counted_as_redelivered_in_one_call() {
    let metrics = FakeMetrics::accepting();
    let response = Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(fixture("dynamodb-event.json"))
        .await
        .unwrap();
    assert!(failures(&response).is_empty());
    let calls = metrics.calls();
    assert_eq!(calls.len(), 1, "one PutMetricData per invocation");
    assert_eq!(calls[0].0, NAMESPACE);

    // INSERT run1-0-0 sent at NOW-110 is measured; MODIFY run1-1-0 (the item written again)
    // is counted, not measured a second time; REMOVE ignored.
    let run = [("RunId", "run1")];
    assert_eq!(pairs(&metrics, "Latency", &run), [(110.0, 1.0)]);
    assert_eq!(
        pairs(&metrics, "ClientToKinesisLatency", &run),
        [(22.0, 1.0)]
    );
    assert_eq!(
        pairs(&metrics, "KinesisToStoreLatency", &run),
        [(18.0, 1.0)]
    );
    assert_eq!(
        pairs(&metrics, "StoreToDownstreamLatency", &run),
        [(70.0, 1.0)]
    );
    let label = Bucket::of(110).label();
    assert_eq!(
        pairs(
            &metrics,
            "LatencyBucket",
            &[("RunId", "run1"), ("Bucket", &label)]
        ),
        [(110.0, 1.0)]
    );
    // Each hop's latency is counted in its own buckets too.
    for (hop, value) in [
        ("ClientToKinesisLatency", 22),
        ("KinesisToStoreLatency", 18),
        ("StoreToDownstreamLatency", 70),
    ] {
        let label = Bucket::of(value).label();
        assert_eq!(
            pairs(
                &metrics,
                "HopLatencyBucket",
                &[("RunId", "run1"), ("Hop", hop), ("Bucket", &label)]
            ),
            [(value as f64, 1.0)],
            "{hop}"
        );
    }
    let redelivered = metrics.find("RedeliveredRecords", &run);
    assert_eq!(redelivered.len(), 1);
    assert_eq!(
        (redelivered[0].unit, redelivered[0].sample_count()),
        (Unit::Count, 1.0)
    );
    assert!(metrics
        .find(
            "LatencyBucket",
            &[("RunId", "run1"), ("Bucket", &Bucket::of(200).label())]
        )
        .is_empty());
    for datum in metrics.data() {
        assert_eq!(datum.timestamp_ms, NOW_MS);
        assert_eq!(datum.storage_resolution_s, 1);
    }
}

#[tokio::test]
async fn an_item_without_run_id_or_hop_times_still_has_its_latency() {
    let metrics = FakeMetrics::accepting();
    Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(fixture("dynamodb-event.json"))
        .await
        .unwrap();
    // "legacy", sent at NOW-1100, no run id and no hop times.
    assert_eq!(pairs(&metrics, "Latency", &[]), [(1100.0, 1.0)]);
    assert!(metrics.find("ClientToKinesisLatency", &[]).is_empty());
    let label = Bucket::of(1100).label();
    assert_eq!(
        pairs(&metrics, "LatencyBucket", &[("Bucket", &label)]),
        [(1100.0, 1.0)]
    );
}

#[tokio::test]
async fn a_new_request_that_reused_an_id_is_measured_not_taken_for_a_rewrite() {
    // The MODIFY's old image is an earlier request with the same id (a run id given twice):
    // received a minute before. The new request is a loop of its own and is measured.
    let mut event: Event = fixture("dynamodb-event.json");
    let modify = &mut event.records[1];
    assert_eq!(modify.event_name, "MODIFY");
    for attribute in ["timestamp", "received_at"] {
        if let Some(serde_dynamo::AttributeValue::N(n)) = modify.change.old_image.get_mut(attribute)
        {
            *n = (n.parse::<i64>().unwrap() - 60_000).to_string();
        }
    }
    let metrics = FakeMetrics::accepting();
    Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(event)
        .await
        .unwrap();
    let run = [("RunId", "run1")];
    // run1-0-0 (110 ms) and run1-1-0, sent at NOW-200, both measured; nothing redelivered.
    assert_eq!(
        pairs(&metrics, "Latency", &run),
        [(110.0, 1.0), (200.0, 1.0)]
    );
    assert!(metrics.find("RedeliveredRecords", &run).is_empty());
}

#[tokio::test]
async fn records_that_cannot_be_measured_are_counted_not_failed() {
    let mut event: Event = fixture("dynamodb-event.json");
    // A KEYS_ONLY stream record: no NewImage.
    let mut keys_only = event.records[0].clone();
    keys_only.change.new_image = Default::default();
    keys_only.change.sequence_number = Some("999".into());
    event.records.push(keys_only);
    let metrics = FakeMetrics::accepting();
    let response = Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(event)
        .await
        .unwrap();
    assert!(failures(&response).is_empty());
    let counted = metrics.find("MalformedRecords", &[("Function", "downstream")]);
    assert_eq!(counted.len(), 1);
    assert_eq!(
        (counted[0].unit, counted[0].sample_count()),
        (Unit::Count, 2.0)
    );
}

#[tokio::test]
async fn a_failed_publish_reports_every_measured_record() {
    let metrics = FakeMetrics::failing_when(|_| true);
    let response = Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(fixture("dynamodb-event.json"))
        .await
        .unwrap();
    // INSERT, MODIFY (its redelivery count) and the legacy INSERT; not the REMOVE (3) nor the
    // malformed record (5).
    let seq = |i: u32| format!("4000000000000000000{i:04}");
    assert_eq!(failures(&response), [seq(1), seq(2), seq(4)]);
}

#[tokio::test]
async fn a_failed_record_without_sequence_number_fails_the_invocation() {
    let mut event: Event = fixture("dynamodb-event.json");
    event.records[0].change.sequence_number = None;
    let metrics = FakeMetrics::failing_when(|_| true);
    let error = Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(event)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("has no sequence number"),
        "{error}"
    );
}

#[tokio::test]
async fn many_distinct_latencies_are_split_within_the_api_limits_and_nothing_is_lost() {
    let mut event: Event = fixture("dynamodb-event.json");
    let template = event.records[0].clone();
    event.records = (0..400)
        .map(|i| {
            let mut record = template.clone();
            let ts = contract::item::attr::TIMESTAMP.to_string();
            record.change.new_image.insert(
                ts,
                serde_dynamo::AttributeValue::N((NOW_MS - 1000 - i).to_string()),
            );
            record.change.sequence_number = Some(i.to_string());
            record
        })
        .collect();
    let metrics = FakeMetrics::accepting();
    Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(event)
        .await
        .unwrap();
    let calls = metrics.calls();
    assert_eq!(
        calls.len(),
        3,
        "400 distinct latencies need 3 requests of at most 150"
    );
    let mut latency_samples = 0.0;
    for (_, data) in &calls {
        for datum in data {
            assert!(datum.values.len() <= MAX_VALUES_PER_METRIC);
            if datum.name == "Latency" {
                latency_samples += datum.sample_count();
            }
        }
    }
    assert_eq!(latency_samples, 400.0);
}
