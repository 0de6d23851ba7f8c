//! loadgen against an in-process server on a loopback port: counts, payloads, schedules and
//! failures as a user would check them.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{closed_port, closing_server, idle_closing_server, run, Mode, Server};
use contract::runfile::RunFile;
use contract::Request;
use loadgen::stats::FailureKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterations_are_exact_and_every_payload_follows_the_contract() {
    let server = Server::start(Mode::Ok).await;
    let before = loadgen::epoch_ms();
    let summary = run(&[
        &server.url(),
        "--iterations",
        "57",
        "--vus",
        "5",
        "--run-id",
        "exact",
    ])
    .await;
    let after = loadgen::epoch_ms();
    assert_eq!(summary.stats.requests, 57);
    assert_eq!(summary.stats.accepted, 57);
    let seen = server.seen();
    assert_eq!(
        seen.len(),
        57,
        "the server saw exactly --iterations requests"
    );

    let mut ids = HashSet::new();
    let mut vus = BTreeSet::new();
    for request in &seen {
        let parsed = Request::parse(&request.body).expect("a contract payload");
        assert_eq!(parsed.run_id.as_deref(), Some("exact"));
        assert_eq!(parsed.message, "Hello from loadgen");
        assert!(
            (before..=after).contains(&parsed.timestamp_ms),
            "timestamp in ms at send"
        );
        let parts: Vec<&str> = parsed.id.split('-').collect();
        assert_eq!(parts.len(), 3, "{}", parsed.id);
        assert_eq!(parts[0], "exact");
        vus.insert(parts[1].parse::<u32>().unwrap());
        assert!(ids.insert(parsed.id.clone()), "duplicate id {}", parsed.id);
    }
    assert_eq!(vus, (0..5).collect(), "all five VUs worked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_vus_follow_the_stages() {
    let server = Server::start(Mode::Delay(Duration::from_millis(20))).await;
    let summary = run(&[
        &server.url(),
        "--stage",
        "1s:4",
        "--stage",
        "1s:4",
        "--stage",
        "1s:0",
    ])
    .await;
    assert_eq!(summary.vus_max, 4);
    // Which VUs the server saw in a window of the run, in seconds from the run's own start (the
    // id's middle part is the VU).
    let vus_in = |from: f64, to: f64| -> BTreeSet<u32> {
        server
            .seen()
            .iter()
            .filter(|s| (from..to).contains(&((s.at_epoch_ms - summary.start_ms) as f64 / 1000.0)))
            .map(|s| {
                let id = Request::parse(&s.body).unwrap().id;
                id.rsplit('-').nth(1).unwrap().parse().unwrap()
            })
            .collect()
    };
    // Windows wide enough for a loaded machine's stalls: the ramp calls for at most 2 VUs in
    // the first half second, 4 on the plateau, and fewer than 2 from 2.6 s.
    let early = vus_in(0.0, 0.5);
    assert!(
        !early.is_empty() && early.len() <= 2,
        "ramp starts near 0 VUs: {early:?}"
    );
    assert_eq!(vus_in(1.1, 1.9), (0..4).collect(), "plateau at 4 VUs");
    assert!(vus_in(2.6, 3.0).len() <= 3, "ramp down toward 0 VUs");
    let timeline_max = summary.timeline.iter().map(|s| s.vus).max().unwrap();
    assert_eq!(timeline_max, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_arrival_rate_holds_the_rate() {
    let server = Server::start(Mode::Ok).await;
    let summary = run(&[
        &server.url(),
        "--rate",
        "200",
        "--duration",
        "5s",
        "--max-vus",
        "20",
    ])
    .await;
    let sent = summary.stats.requests;
    let dropped = summary.dropped.unwrap();
    assert_eq!(summary.scheduled, Some(1000), "200/s for 5 s");
    assert_eq!(sent + dropped, 1000, "every start is sent or dropped");
    // A fast server answers in about a millisecond: only a stall of the machine itself (this
    // one is shared) leaves a start without a free VU.
    assert!(
        dropped <= 50,
        "20 VUs keep up with a fast server: {dropped} dropped"
    );
    assert_eq!(server.seen().len() as u64, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_rate_run_lasts_its_duration_not_to_its_last_start() {
    let server = Server::start(Mode::Ok).await;
    let summary = run(&[&server.url(), "--rate", "1", "--duration", "3s"]).await;
    // Starts at 0, 1 and 2 s; the run ends at 3 s, so its rate is 1/s, not 3 over 2 s.
    assert_eq!(summary.stats.requests, 3);
    assert!(
        summary.elapsed >= Duration::from_secs(3),
        "ended at {:?}",
        summary.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_arrival_rate_starts_the_area_under_its_curve() {
    let server = Server::start(Mode::Ok).await;
    let file = std::env::temp_dir().join(format!("loadgen-ramp-{}.json", std::process::id()));
    // 0 → 200/s over 2 s, 200/s for 1 s, down to 0 over 1 s: 200 + 200 + 100 starts.
    let summary = run(&[
        &server.url(),
        "--rate",
        "0",
        "--stage",
        "2s:200",
        "--stage",
        "1s:200",
        "--stage",
        "1s:0",
        // Headroom for a stall of the (shared) machine: 50 VUs absorb a quarter second at 200/s.
        "--max-vus",
        "50",
        "--summary-export",
        file.to_str().unwrap(),
    ])
    .await;
    let (sent, dropped) = (summary.stats.requests, summary.dropped.unwrap());
    assert_eq!(summary.executor, "ramping-arrival-rate");
    assert_eq!(summary.scheduled, Some(500));
    assert_eq!(sent + dropped, 500, "every start is sent or dropped");
    assert!(
        dropped <= 25,
        "within 5 % of the schedule: {dropped} dropped"
    );
    let run_file = RunFile::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(run_file.run.executor, "ramping-arrival-rate");
    assert_eq!(run_file.run.scheduled_iterations, Some(500));
    let offered: Vec<u64> = run_file
        .timeline
        .iter()
        .map(|s| s.offered.expect("offered per second"))
        .collect();
    assert_eq!(offered.iter().sum::<u64>(), 500, "{offered:?}");
    // Each second of the wall clock follows the curve: its starts are the area under the rate
    // over that second (the first and last seconds partial), give or take a start sampled
    // across a second's edge.
    let schedule = loadgen::schedule::RateSchedule {
        start_rate: 0.0,
        stages: [(2, 200.0), (1, 200.0), (1, 0.0)]
            .into_iter()
            .map(|(s, target)| loadgen::schedule::RateStage {
                duration: Duration::from_secs(s),
                target,
            })
            .collect(),
    };
    for sample in &run_file.timeline {
        let from = (sample.t_ms - run_file.run.start_ms).max(0) as f64 / 1000.0;
        let to = (sample.t_ms + 1000 - run_file.run.start_ms).max(0) as f64 / 1000.0;
        let expected = schedule.area_until(Duration::from_secs_f64(to))
            - schedule.area_until(Duration::from_secs_f64(from));
        let got = sample.offered.unwrap() as f64;
        assert!(
            (got - expected).abs() <= 15.0,
            "second {}: {got} offered, the curve says {expected:.1}: {offered:?}",
            sample.t_ms
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_rate_counts_what_it_could_not_start_and_measures_from_the_schedule() {
    // One VU, 100 ms per request, 50 starts per second: most starts find no free VU.
    let server = Server::start(Mode::Delay(Duration::from_millis(100))).await;
    let summary = run(&[
        &server.url(),
        "--rate",
        "50",
        "--duration",
        "2s",
        "--max-vus",
        "1",
    ])
    .await;
    let (sent, dropped) = (summary.stats.requests, summary.dropped.unwrap());
    // At most one request per 100 ms fits in 2 s (fewer when the machine is busy).
    assert!(
        (1..=21).contains(&sent),
        "about 2 s / 100 ms requests, sent {sent}"
    );
    assert!(dropped >= 79, "the rest are dropped: {dropped}");
    assert_eq!(
        sent + dropped,
        100,
        "every scheduled start is sent or dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_closed_connections_timeouts_and_refusals_are_counted_by_kind() {
    let server = Server::start(Mode::FailEvery(4)).await;
    let summary = run(&[&server.url(), "--iterations", "40", "--vus", "1"]).await;
    assert_eq!(
        summary.stats.failures,
        BTreeMap::from([(FailureKind::Status(500), 10)])
    );
    assert_eq!(
        (summary.stats.accepted, summary.stats.http_failed),
        (30, 10)
    );

    let (addr, task) = closing_server().await;
    let summary = run(&[
        &format!("http://{addr}/"),
        "--iterations",
        "5",
        "--vus",
        "1",
    ])
    .await;
    assert_eq!(
        summary.stats.failures,
        BTreeMap::from([(FailureKind::Reset, 5)])
    );
    task.abort();

    let slow = Server::start(Mode::Delay(Duration::from_secs(5))).await;
    let summary = run(&[
        &slow.url(),
        "--iterations",
        "2",
        "--vus",
        "2",
        "--timeout",
        "200ms",
    ])
    .await;
    assert_eq!(
        summary.stats.failures,
        BTreeMap::from([(FailureKind::Timeout, 2)])
    );

    let url = format!("http://127.0.0.1:{}/", closed_port());
    let summary = run(&[&url, "--iterations", "3", "--vus", "1"]).await;
    assert_eq!(
        summary.stats.failures,
        BTreeMap::from([(FailureKind::Refused, 3)])
    );
    assert_eq!(summary.stats.accepted, 0);
    // Attempted, not sent: the API never saw them.
    let file = summary.run_file();
    assert_eq!(
        (file.run.requests_attempted, file.run.requests_sent),
        (Some(3), 0)
    );
    let mut text = Vec::new();
    summary
        .render(loadgen::SummaryMode::Compact, &mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("0 of 0 sent (3 attempted, 3 never sent: no connection)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_closed_while_idle_is_replaced_not_failed() {
    // One VU, 5 starts a second: it idles about 200 ms between requests, and the server closes
    // a connection idle for 20 ms.
    let (addr, connections, task) = idle_closing_server(Duration::from_millis(20)).await;
    let summary = run(&[
        &format!("http://{addr}/prod/"),
        "--rate",
        "5",
        "--duration",
        "1s",
        "--vus",
        "1",
    ])
    .await;
    assert!(
        summary.stats.failures.is_empty(),
        "{:?}",
        summary.stats.failures
    );
    // 5 unless a stalled machine kept the VU busy past a start (then that start is dropped).
    assert!(summary.stats.accepted >= 3, "{}", summary.stats.accepted);
    assert_eq!(
        connections.load(Ordering::Relaxed),
        summary.stats.accepted,
        "a new connection for each request"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_sent_as_basic_auth_and_never_printed() {
    let server = Server::start(Mode::Ok).await;
    let url = format!("http://Aladdin:open%20sesame@{}/prod/", server.addr);
    let summary = run(&[&url, "--iterations", "2", "--vus", "1"]).await;
    assert_eq!(summary.stats.accepted, 2);
    for seen in server.seen() {
        assert_eq!(seen.host, Some(server.addr.to_string()));
        assert_eq!(
            seen.authorization.as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
    }
    let mut text = Vec::new();
    summary
        .render(loadgen::SummaryMode::Compact, &mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    let file = serde_json::to_string(&summary.run_file()).unwrap();
    for shown in [&text, &file] {
        assert!(!shown.contains("sesame"), "{shown}");
        assert!(shown.contains("Aladdin:***@"), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_file_round_trips_with_what_the_collector_needs() {
    let server = Server::start(Mode::FailEvery(5)).await;
    let dir = testkit::Scratch::new("loadgen-run");
    let path = dir.join("run.json");
    let summary = run(&[
        &server.url(),
        "--iterations",
        "50",
        "--vus",
        "2",
        "--run-id",
        "export",
        "--summary-export",
        path.to_str().unwrap(),
    ])
    .await;
    let file = RunFile::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file, summary.run_file());
    assert_eq!(file.run.run_id, "export");
    assert_eq!(file.run.endpoint, server.url());
    assert_eq!(
        (file.run.requests_sent, file.run.requests_accepted),
        (50, 40)
    );
    assert_eq!(
        file.run.failures,
        BTreeMap::from([("status_500".to_owned(), 10)])
    );
    assert_eq!(file.run.vus_max, 2);
    assert!(file.run.start_ms <= file.run.end_ms);
    let trends = file.trends.as_ref().expect("version 6 has every trend");
    let requests: u64 = trends
        .by_status
        .values()
        .map(|t| t["http_req_duration"].iter().map(|[_, n]| n).sum::<u64>())
        .sum();
    assert_eq!(requests, 50);
    assert_eq!(trends.by_status.keys().collect::<Vec<_>>(), ["200", "500"]);
    // k6's shapes and number types: a count is an integer, a rate's fraction is `value`.
    assert_eq!(file.metrics["http_reqs"]["count"], serde_json::json!(50));
    assert_eq!(
        file.metrics["http_req_failed"]["passes"],
        serde_json::json!(10)
    );
    assert_eq!(
        file.metrics["http_req_failed"]["value"],
        serde_json::json!(0.2)
    );
    let p95 = file.metrics["http_req_duration"]["p(95)"].as_f64().unwrap();
    let max = file.metrics["http_req_duration"]["max"].as_f64().unwrap();
    assert!(p95 > 0.0 && p95 <= max);
    assert_eq!(file.timeline.iter().map(|s| s.requests).sum::<u64>(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_are_judged() {
    let server = Server::start(Mode::FailEvery(2)).await;
    let summary = run(&[
        &server.url(),
        "--iterations",
        "20",
        "--threshold",
        "http_req_failed:rate<0.01",
        "--threshold",
        "http_req_duration:p(95)<60000",
    ])
    .await;
    assert!(!summary.passed());
    let verdicts: Vec<bool> = summary.thresholds.iter().map(|j| j.passed).collect();
    assert_eq!(verdicts, [false, true]);
}
