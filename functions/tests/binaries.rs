//! The real function binaries stop at init, with a message that says what is missing, when
//! their environment is incomplete.

use std::process::Command;

fn run(binary: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run the function binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_variable_stops_the_function_at_init() {
    let (code, stderr) = run(env!("CARGO_BIN_EXE_upstream"), &[]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(
            "STREAM_NAME is not set: the upstream function needs the Kinesis stream name"
        ),
        "{stderr}"
    );
    let (code, stderr) = run(env!("CARGO_BIN_EXE_midstream"), &[("STREAM_NAME", "S")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("TABLE_NAME is not set"), "{stderr}");
}
