//! Bad flags are one line on stderr and exit 2, before anything is loaded.

use std::process::Command;

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    let crate_folder = env!("CARGO_MANIFEST_DIR");
    let cases: [(&[&str], &str); 9] = [
        (
            &["--url", "http://127.0.0.1:1/", "--out", crate_folder],
            "holds source code (Cargo.toml or src/): name a folder for results",
        ),
        (
            &["--url", "http://127.0.0.1:1/", "--growth", "1"],
            "--growth must be above 1",
        ),
        (
            &["--url", "http://127.0.0.1:1/", "--max-rate", "0"],
            "--start-rate and --max-rate must be above 0",
        ),
        (
            &[
                "--url",
                "http://127.0.0.1:1/",
                "--start-rate",
                "50",
                "--max-rate",
                "10",
            ],
            "--max-rate must be at least --start-rate",
        ),
        (
            &["--url", "http://127.0.0.1:1/", "--precision", "0.5"],
            "--precision must be from 1 to 100",
        ),
        (
            &["--url", "http://127.0.0.1:1/", "--step", "0s"],
            "must be more than 0",
        ),
        (&["--url", "ftp://x/"], "ftp://x/"),
        (
            &[
                "--url",
                "http://127.0.0.1:1/",
                "--out",
                "/dev/null/capacity",
            ],
            "--out /dev/null/capacity: Not a directory",
        ),
        (&[], "no API URL"),
    ];
    for (args, said) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_capacity"))
            .args(args)
            .env_remove("API_ENDPOINT")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("capacity: ") && stderr.contains(said),
            "{args:?}: {stderr}"
        );
    }
}

/// SIGTERM (CI, systemd, a container stop) is an interruption as Ctrl-C is: the step under way
/// stops, the line is said, exit 130, nothing written.
#[test]
fn sigterm_during_a_step_is_an_interruption() {
    let out = std::env::temp_dir().join(format!("capacity-term-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // A port with nothing listening: every request fails at once, the step runs on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_capacity"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--step",
            "60s",
        ])
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Signalled once it handles SIGTERM (its bit in /proc's SigCgt mask), not after a guess.
    let handles_term = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
        status.ok().is_some_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !handles_term() {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM never handled"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill with a PID this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("capacity: interrupted"), "{stderr}");
    assert!(!out.join("capacity.json").exists());
    let _ = std::fs::remove_dir_all(&out);
}
