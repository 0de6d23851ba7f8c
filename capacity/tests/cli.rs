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
