//! loadgen's errors: bad configuration (exit 2) and failures to finish a run (exit 1). A failed
//! request is not an error: it is counted by kind.

use std::path::PathBuf;

use thiserror::Error;

/// Why the flags do not make a run.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// No URL from any source.
    #[error(
        "no URL: pass one as the argument or --url, point --outputs at a `cdk deploy --outputs-file` \
         JSON, or set API_ENDPOINT"
    )]
    NoEndpoint,
    /// The URL does not parse or is not http(s).
    #[error("bad URL {url:?} (from {origin}): {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Where it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The outputs file cannot be used.
    #[error("--outputs {}: {reason}", path.display())]
    Outputs {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A threshold does not parse.
    #[error("--threshold {text:?}: {reason}")]
    Threshold {
        /// The threshold as given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// Any other bad value.
    #[error("{0}")]
    Invalid(String),
}
