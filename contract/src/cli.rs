//! The command lines' shared rule (feature `cli`): `--help` and `--version` print and exit 0; a
//! bad flag is one line on stderr, `<program>: <what is wrong>`, and exit code 2.

use std::process::ExitCode;

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
        ExitCode::from(2)
    })
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

    #[test]
    fn one_line_without_the_prefix() {
        assert_eq!(
            first_line("error: unexpected argument '--bins' found\n\nUsage: x\n"),
            "unexpected argument '--bins' found"
        );
        assert_eq!(first_line(""), "bad arguments");
    }
}
