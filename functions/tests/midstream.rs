//! midstream's behaviour over a fake table and fake metrics, from a real Kinesis event fixture.

mod common;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use common::{clock, fixture, FakeMetrics, FakeTable, NOW_MS};
use contract::metrics::{DIM_FUNCTION, MALFORMED_RECORDS, NAMESPACE};
use contract::{KinesisRecord, Request};
use functions::error::StoreError;
use functions::events::KinesisPayload;
use functions::metrics::Unit;
use functions::midstream::Midstream;

/// An event of records with these ids (data per the contract), sequence numbers 1, 2, ...
/// The fixture as the midstream binary reads it.
fn kinesis_fixture() -> KinesisEvent {
    fixture::<KinesisPayload>("kinesis-event.json").0
}

fn event_with_ids(ids: &[&str]) -> KinesisEvent {
    let mut event = kinesis_fixture();
    let template = event.records[0].clone();
    event.records = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut record = template.clone();
            let request = Request {
                id: id.to_string(),
                message: "m".into(),
                timestamp_ms: 1_795_678_799_000 + i as i64,
                run_id: Some("run1".into()),
            };
            record.kinesis.data.0 = KinesisRecord::new(request, 1_795_678_799_500).encode();
            record.kinesis.sequence_number = format!("{:03}", i + 1);
            record.kinesis.partition_key = id.to_string();
            record
        })
        .collect();
    event
}

fn failures(response: &KinesisEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn the_fixture_batch_is_written_with_every_time_and_the_malformed_record_counted() {
    let table = FakeTable::accepting();
    let metrics = FakeMetrics::accepting();
    let function = Midstream::new(&table, &metrics, NAMESPACE.into(), clock);
    let response = function.handle(kinesis_fixture()).await;
    assert!(failures(&response).is_empty());

    let calls = table.calls();
    assert_eq!(calls.len(), 1);
    let items = &calls[0];
    assert_eq!(
        items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["run1-0-0", "run1-1-0", "legacy"]
    );
    let first = &items[0];
    assert_eq!(first.timestamp_ms, 1_795_678_799_990);
    assert_eq!(first.run_id.as_deref(), Some("run1"));
    assert_eq!(first.received_at_ms, Some(1_795_678_800_001));
    assert_eq!(first.kinesis_arrival_ms, Some(1_795_678_800_012));
    assert_eq!(first.stored_at_ms, Some(NOW_MS));
    // The AWS sample's seconds-based payload, without run id, still flows; its arrival time
    // (`1795678800.03` in the event) is 30 ms past the second, not 3.
    assert_eq!(items[2].timestamp_ms, 1_795_678_799_000);
    assert_eq!(items[2].kinesis_arrival_ms, Some(1_795_678_800_030));
    assert_eq!(items[2].run_id, None);

    let counted = metrics.find("MalformedRecords", &[("Function", "midstream")]);
    assert_eq!(counted.len(), 1);
    assert_eq!(
        (counted[0].unit, counted[0].sample_count()),
        (Unit::Count, 1.0)
    );
    assert_eq!(metrics.calls()[0].0, NAMESPACE);
}

#[tokio::test]
async fn a_clean_batch_publishes_no_metric() {
    let table = FakeTable::accepting();
    let metrics = FakeMetrics::accepting();
    let function = Midstream::new(&table, &metrics, NAMESPACE.into(), clock);
    function.handle(event_with_ids(&["a", "b"])).await;
    assert!(metrics.calls().is_empty());
}

#[tokio::test]
async fn large_batches_go_out_25_at_a_time_in_order() {
    let ids: Vec<String> = (0..60).map(|i| format!("id-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let table = FakeTable::accepting();
    let metrics = FakeMetrics::accepting();
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event_with_ids(&ids))
        .await;
    assert!(failures(&response).is_empty());
    let sizes: Vec<usize> = table.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, [25, 25, 10]);
    assert_eq!(table.call_ids().concat(), ids);
}

#[tokio::test]
async fn a_repeated_id_starts_the_next_request_so_both_writes_happen_in_order() {
    let table = FakeTable::accepting();
    let metrics = FakeMetrics::accepting();
    Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event_with_ids(&["a", "b", "a", "c", "c"]))
        .await;
    assert_eq!(
        table.call_ids(),
        [vec!["a", "b"], vec!["a", "c"], vec!["c"]]
    );
    let calls = table.calls();
    assert_eq!(
        calls[0][0].timestamp_ms + 2,
        calls[1][0].timestamp_ms,
        "the later record is written later"
    );
}

#[tokio::test(start_paused = true)]
async fn unprocessed_items_are_retried_until_written() {
    let table = FakeTable::scripted(|call, items| {
        Ok(match call {
            0 => vec!["b".to_string(), "c".to_string()],
            1 => {
                assert_eq!(
                    items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
                    ["b", "c"]
                );
                vec!["c".to_string()]
            }
            _ => vec![],
        })
    });
    let metrics = FakeMetrics::accepting();
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event_with_ids(&["a", "b", "c"]))
        .await;
    assert!(failures(&response).is_empty());
    assert_eq!(
        table.call_ids(),
        [vec!["a", "b", "c"], vec!["b", "c"], vec!["c"]]
    );
}

#[tokio::test(start_paused = true)]
async fn what_cannot_be_written_is_reported_with_every_later_record_and_nothing_after_is_written() {
    // 30 records: request 1 holds id-0..id-24, request 2 id-25..id-29; the table never takes id-3.
    let ids: Vec<String> = (0..30).map(|i| format!("id-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let table = FakeTable::scripted(|_, items| {
        Ok(items
            .iter()
            .filter(|i| i.id == "id-3")
            .map(|i| i.id.clone())
            .collect())
    });
    let metrics = FakeMetrics::accepting();
    let started = tokio::time::Instant::now();
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event_with_ids(&ids))
        .await;
    // id-3 is sequence 004; request 2 (sequences 026..030) is reported, not written.
    let expected: Vec<String> = ["004", "026", "027", "028", "029", "030"]
        .map(String::from)
        .to_vec();
    assert_eq!(failures(&response), expected);
    let calls = table.call_ids();
    assert_eq!(calls.len(), 6, "one write and five retries");
    assert!(calls[1..].iter().all(|c| c == &["id-3"]));
    assert!(!calls.concat().contains(&"id-25".to_string()));
    assert_eq!(
        started.elapsed().as_millis(),
        775,
        "backoff 25+50+100+200+400 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_table_call_is_retried_and_then_reported() {
    let table = FakeTable::scripted(|call, _| {
        if call < 2 {
            Err(StoreError::Failed("ThrottlingException".into()))
        } else {
            Ok(vec![])
        }
    });
    let metrics = FakeMetrics::accepting();
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event_with_ids(&["a", "b"]))
        .await;
    assert!(failures(&response).is_empty());
    assert_eq!(table.calls().len(), 3);

    let table = FakeTable::scripted(|_, _| Err(StoreError::Failed("AccessDeniedException".into())));
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event_with_ids(&["a", "b"]))
        .await;
    assert_eq!(failures(&response), ["001", "002"]);
}

#[tokio::test]
async fn failing_to_count_malformed_records_does_not_fail_the_batch() {
    let table = FakeTable::accepting();
    let metrics = FakeMetrics::failing_when(|_| true);
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(kinesis_fixture())
        .await;
    assert!(failures(&response).is_empty());
    assert_eq!(metrics.calls().len(), 1);
    assert_eq!(table.calls()[0].len(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_item_the_table_refuses_is_passed_over_and_the_rest_written() {
    // DynamoDB refuses a whole BatchWriteItem for one item it cannot take (too large).
    let table = FakeTable::scripted(|_, items| {
        if items.iter().any(|i| i.id == "poison") {
            Err(StoreError::Rejected(
                "ValidationException: Item size has exceeded".into(),
            ))
        } else {
            Ok(vec![])
        }
    });
    let metrics = FakeMetrics::accepting();
    let ids = ["a", "b", "c", "poison", "d", "e"];
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event_with_ids(&ids))
        .await;
    assert!(failures(&response).is_empty(), "the shard moves on");
    let written: Vec<String> = table
        .calls()
        .iter()
        .filter(|items| !items.iter().any(|i| i.id == "poison"))
        .flat_map(|items| items.iter().map(|i| i.id.clone()))
        .collect();
    assert_eq!(written, ["a", "b", "c", "d", "e"], "each once, in order");
    assert_eq!(
        table
            .calls()
            .iter()
            .filter(|c| c.len() == 1 && c[0].id == "poison")
            .count(),
        1,
        "the refused item is tried alone once, never retried"
    );
    let counted = metrics.find(MALFORMED_RECORDS, &[(DIM_FUNCTION, "midstream")]);
    assert_eq!(
        counted
            .iter()
            .map(|d| d.counts.iter().sum::<f64>())
            .sum::<f64>(),
        1.0
    );
}
