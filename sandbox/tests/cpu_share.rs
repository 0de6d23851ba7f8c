//! Lambda's CPU share and memory limit in the sandbox: a function's workers run in a Linux
//! control group with (memory size / 1,769 MB) of a core and its memory size as a limit. This
//! machine mounts the cgroup controllers writable; a machine that does not fails here with the
//! reason (the sandbox itself says it in one line and runs without).

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{bash_runtime, spec};
use sandbox::lambda::cgroup::{cpu_share, CpuShares};
use sandbox::lambda::{FunctionHost, InvokeError, LogSink};

fn quiet() -> LogSink {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    Arc::new(move |_: &str, line: &str| lines.lock().unwrap().push(line.to_owned()))
}

/// The CPU seconds a `spin` invocation's child got in its 2 s: `times`' `0m0.290s 0m0.004s`.
fn cpu_seconds(answer: &[u8]) -> f64 {
    String::from_utf8_lossy(answer)
        .split_whitespace()
        .map(|t| {
            let (m, s) = t.trim_end_matches('s').split_once('m').unwrap();
            m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_gets_its_memory_size_s_share_of_a_core() {
    let shares = Arc::new(CpuShares::create().expect("control groups writable on this machine"));
    let memory_mb = 256;
    let mut limited = spec("spin", bash_runtime(), &[("MODE", "spin")], 10_000, 1);
    limited.memory_mb = memory_mb;
    limited.group = Some(Arc::new(shares.function("spin", memory_mb, 1).unwrap()));
    let host = FunctionHost::start(limited, quiet()).await.unwrap();
    let answer = host.invoke(Bytes::from_static(b"{}")).await.unwrap();
    host.stop().await;
    // 2 s of a busy loop at 256 MB's share (0.145 of a core): about 0.29 s of CPU. A busy
    // machine can only give less; the quota makes more impossible (one period's slack).
    let per_second = cpu_seconds(&answer) / 2.0;
    let share = cpu_share(memory_mb);
    assert!((share - 0.1447).abs() < 1e-3);
    assert!(
        per_second <= share * 1.15 && per_second >= share * 0.3,
        "{per_second:.3} of a core, share {share:.3}"
    );

    // Without the group the same loop gets most of a core.
    let free = spec("free", bash_runtime(), &[("MODE", "spin")], 10_000, 1);
    let host = FunctionHost::start(free, quiet()).await.unwrap();
    let answer = host.invoke(Bytes::from_static(b"{}")).await.unwrap();
    host.stop().await;
    assert!(
        cpu_seconds(&answer) / 2.0 > share * 2.0,
        "unlimited: {:.3} of a core",
        cpu_seconds(&answer) / 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_past_its_memory_size_is_killed_and_reported_as_lambda_does() {
    let shares = Arc::new(CpuShares::create().expect("control groups writable on this machine"));
    let mut hog = spec("hog", bash_runtime(), &[("MODE", "hog")], 20_000, 1);
    hog.memory_mb = 128;
    hog.group = Some(Arc::new(shares.function("hog", 128, 1).unwrap()));
    let host = FunctionHost::start(hog, quiet()).await.unwrap();
    let outcome = host.invoke(Bytes::from_static(b"{}")).await;
    host.stop().await;
    assert_eq!(
        outcome,
        Err(InvokeError::Crashed(
            "Runtime exited with error: signal: killed (out of memory: over the function's 128 \
             MB)"
            .into()
        ))
    );
}

#[test]
fn the_groups_are_removed_when_the_sandbox_is_done_with_them() {
    let shares = Arc::new(CpuShares::create().unwrap());
    let group = shares.function("gone", 512, 2).unwrap();
    let prefix = format!("sandbox-{}-", std::process::id());
    let ours = || -> Vec<String> {
        std::fs::read_dir("/sys/fs/cgroup/cpu")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&prefix))
                    .filter(|n| {
                        std::path::Path::new("/sys/fs/cgroup/cpu")
                            .join(n)
                            .join("gone")
                            .exists()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists();
    if v1 {
        let own = ours();
        assert_eq!(own.len(), 1, "{own:?}");
        let quota = std::fs::read_to_string(format!(
            "/sys/fs/cgroup/cpu/{}/gone/worker-1/cpu.cfs_quota_us",
            own[0]
        ))
        .unwrap();
        assert_eq!(
            quota.trim(),
            "5788",
            "512 MB: 0.289 of a 20 ms period, each worker"
        );
    }
    drop(group);
    drop(shares);
    if v1 {
        assert!(ours().is_empty(), "sandbox-<pid>-<n> removed");
    }
}

/// `UpdateFunctionConfiguration`'s memory size reaches the workers: a busy loop at 128 MB gets
/// 128 MB's share; set to 1,769 MB, the next invocation (in a worker started with the new
/// size, which it is told in `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`) gets several times more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_memory_size_reaches_the_next_worker_with_its_share() {
    let shares = Arc::new(CpuShares::create().expect("control groups writable on this machine"));
    let mut small = spec("resized", bash_runtime(), &[("MODE", "spin")], 10_000, 1);
    small.memory_mb = 128;
    small.group = Some(Arc::new(shares.function("resized", 128, 1).unwrap()));
    let host = FunctionHost::start(small, quiet()).await.unwrap();
    let before = cpu_seconds(&host.invoke(Bytes::from_static(b"{}")).await.unwrap()) / 2.0;
    host.set_memory(1769).unwrap();
    assert_eq!(host.memory_mb(), 1769);
    let after = cpu_seconds(&host.invoke(Bytes::from_static(b"{}")).await.unwrap()) / 2.0;
    host.stop().await;
    assert!(
        before <= cpu_share(128) * 1.15,
        "{before:.3} of a core at 128 MB"
    );
    // 1,769 MB is a whole core's share: on a busy 2-core machine at least twice 128 MB's.
    assert!(
        after > before * 2.0,
        "{after:.3} of a core at 1,769 MB, {before:.3} at 128 MB"
    );
}
