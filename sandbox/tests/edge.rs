//! The edge in front of a real moto: the current Rust SDK's CloudWatch calls (rpcv2Cbor) work
//! through it, so downstream's publisher and the collector's query path meet end to end; other
//! services pass through unchanged.

mod common;

use collector::epoch_ms as now_ms;
use collector::query::{RunMetrics, Window};
use common::{sdk, Stack};
use contract::metrics::{Hop, DIM_BUCKET, DIM_RUN_ID, LATENCY, LATENCY_BUCKET};
use contract::Bucket;
use functions::aws::cloudwatch::CloudWatchSink;
use functions::metrics::{MetricBatch, Unit};
use functions::sinks::MetricSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_put_metric_data_is_gzipped_by_the_sdk_and_still_arrives() {
    let running = Stack::start(Default::default()).await;
    let sdk = sdk(&running.edge_url).await;
    let sink = CloudWatchSink::new(aws_sdk_cloudwatch::Client::new(&sdk));
    // 400 loops with 400 different latencies, each counted in its own bucket: a body of tens
    // of kilobytes, which the SDK compresses (over 10 KB) before the edge reads it.
    let now = now_ms();
    let mut batch = MetricBatch::new();
    for latency in 0..400 {
        let run = [(DIM_RUN_ID, "gzip")];
        batch.add(LATENCY, Unit::Milliseconds, &run, latency);
        let label = Bucket::of(latency).label();
        batch.add(
            LATENCY_BUCKET,
            Unit::Milliseconds,
            &[(DIM_RUN_ID, "gzip"), (DIM_BUCKET, &label)],
            latency,
        );
    }
    sink.put_metric_data("Pipeline/Gzip", &batch.into_data(now))
        .await
        .expect("a compressed PutMetricData through the edge");
    let metrics = RunMetrics {
        api: collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk)),
        namespace: "Pipeline/Gzip".into(),
        run_id: "gzip".into(),
    };
    let window = Window {
        start_ms: now - 120_000,
        end_ms: now + 120_000,
    };
    assert_eq!(metrics.processed(window).await.unwrap(), 400);
    let (histogram, _) = metrics.histogram(window, 0.0, 399.0).await.unwrap();
    assert_eq!(histogram.count(), 400);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstreams_metrics_are_read_back_by_the_collector_through_the_edge() {
    let running = Stack::start(Default::default()).await;
    let sdk = sdk(&running.edge_url).await;
    let sink = CloudWatchSink::new(aws_sdk_cloudwatch::Client::new(&sdk));

    // What downstream publishes for 6 loops of run "edge": 120 ms x3, 95 ms x2, 400 ms.
    let now = now_ms();
    let mut batch = MetricBatch::new();
    for latency in [120, 120, 120, 95, 95, 400] {
        let run = [(DIM_RUN_ID, "edge")];
        batch.add(LATENCY, Unit::Milliseconds, &run, latency);
        batch.add(
            Hop::StoreToDownstream.metric_name(),
            Unit::Milliseconds,
            &run,
            latency / 2,
        );
        let label = Bucket::of(latency).label();
        batch.add(
            LATENCY_BUCKET,
            Unit::Milliseconds,
            &[(DIM_RUN_ID, "edge"), (DIM_BUCKET, &label)],
            latency,
        );
    }
    sink.put_metric_data("Pipeline/Edge", &batch.into_data(now))
        .await
        .expect("PutMetricData through the edge");

    let metrics = RunMetrics {
        api: collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk)),
        namespace: "Pipeline/Edge".into(),
        run_id: "edge".into(),
    };
    let window = Window {
        start_ms: now - 120_000,
        end_ms: now + 120_000,
    };
    assert_eq!(
        metrics
            .processed(window)
            .await
            .expect("GetMetricData through the edge"),
        6
    );
    let latency = metrics.summary(LATENCY, window).await.unwrap();
    assert_eq!(
        (
            latency.count,
            latency.sum_ms,
            latency.min_ms,
            latency.max_ms
        ),
        (6, 950.0, 95.0, 400.0)
    );
    let rows = metrics.per_second(window).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 6);
    assert!((rows[0].average_ms - 950.0 / 6.0).abs() < 1e-9, "{rows:?}");
    let (histogram, seconds) = metrics
        .histogram(window, latency.min_ms, latency.max_ms)
        .await
        .unwrap();
    assert_eq!(histogram.count(), 6);
    assert_eq!(seconds.values().map(|h| h.count()).sum::<u64>(), 6);
    let p50 = histogram.percentile(50.0).unwrap();
    assert!(
        (p50 - 120.0).abs() / 120.0 <= 0.02,
        "p50 {p50} is within 2 % of 120 ms"
    );
    let hops = metrics.hops(window).await.unwrap();
    assert_eq!(hops[Hop::StoreToDownstream.metric_name()].count, 6);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_services_pass_through_unchanged() {
    let running = Stack::start(Default::default()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk(&running.edge_url).await);
    kinesis
        .create_stream()
        .stream_name("S")
        .shard_count(1)
        .send()
        .await
        .expect("CreateStream through the edge");
    let sink = functions::aws::kinesis::KinesisSink::new(kinesis.clone(), "S".into());
    functions::sinks::RecordSink::put_record(&sink, "k", b"through the edge".to_vec())
        .await
        .unwrap();
    let streams = kinesis.list_streams().send().await.unwrap();
    assert_eq!(streams.stream_names(), ["S"]);
    let error = kinesis
        .describe_stream()
        .stream_name("missing")
        .send()
        .await
        .unwrap_err();
    assert!(error_chain(&error).contains("ResourceNotFound"));
    running.stop().await;
}

fn error_chain<E: std::error::Error>(error: &E) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}
