//! The command lines' shared rules (feature `cli`): `--help` and `--version` print and exit 0; a
//! bad flag is one line on stderr, `<program>: <what is wrong>`, and exit code 2; an error is one
//! line too ([`one_line`]); every tool exits with one of [`Exit`]'s codes and runs on a runtime
//! built by [`runtime`].

use std::process::ExitCode;

/// The exit codes of every command of the toolkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, and the verdict is good.
    Success,
    /// An error stopped the command.
    Error,
    /// A bad flag or input, refused before any work.
    BadInput,
    /// Done, and the verdict is not good: drained short, over-counted, timed out, lost, not
    /// sustained.
    NotComplete,
    /// A threshold (or a comparison's gate) was crossed, as in k6.
    ThresholdCrossed,
    /// The run was cut short by a signal and reports what it did until then, as in k6.
    Aborted,
    /// Interrupted (Ctrl-C) before there was a result to report.
    Interrupted,
}

impl Exit {
    /// The process's exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::BadInput => 2,
            Exit::NotComplete => 3,
            Exit::ThresholdCrossed => 99,
            Exit::Aborted => 105,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// Says `error` (its whole chain) on one line as `program: ...` and returns [`Exit::Error`].
pub fn fail(program: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {error:#}");
    Exit::Error.into()
}

/// The tokio runtime a command runs on: `threads` worker threads (`None`: one, on the calling
/// thread). A runtime that cannot start is said on one line, with [`Exit::Error`].
pub fn runtime(program: &str, threads: Option<usize>) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = match threads {
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n.max(1));
            builder
        }
        None => tokio::runtime::Builder::new_current_thread(),
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| fail(program, format_args!("starting the runtime: {e}")))
}

/// Parses this process's arguments into `P`, or says why not and returns the exit code for
/// `main` to return.
pub fn parse<P: clap::Parser>(program: &str) -> Result<P, ExitCode> {
    parse_from(program, std::env::args_os())
}

/// As [`parse`], from `args` (the first is the program's name): for a subcommand parsed on its
/// own.
pub fn parse_from<P: clap::Parser>(
    program: &str,
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<P, ExitCode> {
    P::try_parse_from(args).map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        eprintln!("{program}: {}", first_line(&e.render().to_string()));
        Exit::BadInput.into()
    })
}

pub use crate::error::one_line;

/// A time on the command line: epoch milliseconds, or RFC 3339 (`2026-11-26T08:00:00Z`);
/// epoch ms.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is neither epoch ms nor an RFC 3339 time: {e}"))
        .and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .map_err(|_| format!("{text:?} is before 1970"))
        })
}

/// A duration above zero (humantime's spelling: 5s, 250ms, 1m).
pub fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than 0".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// The first line of clap's message, without its `error: ` prefix.
fn first_line(text: &str) -> &str {
    text.lines()
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Chain(&'static str, Option<Box<Chain>>);
    impl std::fmt::Display for Chain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Chain {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|c| c as _)
        }
    }

    #[test]
    fn an_error_and_its_causes_in_one_line_without_repeats() {
        let leaf = Chain("Connection refused (os error 111)", None);
        let middle = Chain("io error", Some(Box::new(leaf)));
        let top = Chain("dispatch failure: io error", Some(Box::new(middle)));
        assert_eq!(
            one_line(&top),
            "dispatch failure: io error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn times_are_epoch_ms_or_rfc3339() {
        assert_eq!(parse_time("1795680000000"), Ok(1_795_680_000_000));
        assert_eq!(parse_time("2026-11-26T08:00:00Z"), Ok(1_795_680_000_000));
        assert!(parse_time("yesterday")
            .unwrap_err()
            .contains("neither epoch ms"));
        assert_eq!(
            positive_duration("0s"),
            Err("must be more than 0".to_owned())
        );
    }

    #[test]
    fn one_line_without_the_prefix() {
        assert_eq!(
            first_line("error: unexpected argument '--bins' found\n\nUsage: x\n"),
            "unexpected argument '--bins' found"
        );
        assert_eq!(first_line(""), "bad arguments");
    }
}
