//! The edge in front of a real moto: the current Rust SDK's CloudWatch calls (rpcv2Cbor) work
//! through it, so downstream's publisher and the collector's query path meet end to end; other
//! services pass through unchanged.

mod common;

use collector::epoch_ms as now_ms;
use collector::{RunMetrics, Window};
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

/// Out of file descriptors, the edge's accept loop backs off instead of spinning a core, and
/// serves again once descriptors are free. The check runs in a process of its own (this test
/// binary again, that one test), whose descriptor limit it lowers.
#[test]
fn out_of_file_descriptors_the_edge_backs_off_and_serves_again() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "edge_under_a_low_descriptor_limit",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a process of its own by out_of_file_descriptors_the_edge_backs_off_and_serves_again"]
async fn edge_under_a_low_descriptor_limit() {
    use std::io::{Read, Write};
    use std::time::Duration;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let edge = sandbox::edge::Edge::new("127.0.0.1:9".parse().unwrap());
    let stop = sandbox::ShutdownTrigger::new();
    let serving = tokio::spawn(edge.serve(listener, stop.shutdown()));

    // A limit a little above what is open now; clients connect until none is left.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    limit.rlim_cur = open + 24;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let mut clients = Vec::new();
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(stream) => clients.push(stream),
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "{error}");
                break;
            }
        }
    }
    assert!(clients.len() >= 4, "{} clients", clients.len());
    // One more connection, on a descriptor a client frees: it waits for an accept that has no
    // descriptor to take.
    clients.pop();
    clients.push(std::net::TcpStream::connect(addr).unwrap());

    // Meanwhile the process stays nearly idle (an accept loop that spins uses a whole core).
    let cpu = || {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    let before = cpu();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu() - before;
    assert!(
        used < Duration::from_millis(300),
        "{used:?} of CPU in one second"
    );

    // Descriptors free again: the edge serves (API Gateway's 403 for a path it does not serve).
    clients.clear();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer:?}");
    stop.stop();
    serving.await.unwrap();
}

/// moto serves on the listener it is handed: with this process still holding the port (so moto
/// could not bind it itself), it answers there. Nothing can take the port between its choice
/// and moto listening, as happened when sandboxes started side by side.
#[test]
fn moto_serves_on_the_listener_it_is_handed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = sandbox::moto::command(&common::root(), &listener)
        .unwrap()
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut answered = false;
    while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if sandbox::moto::answers(addr) {
            answered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(listener);
    assert!(
        answered,
        "moto did not answer on the listener (exited: {exited:?})"
    );
}
