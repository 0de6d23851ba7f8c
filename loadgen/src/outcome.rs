//! What one request came to: a response, or why it failed. The client produces them and the
//! statistics count them.

/// What came back for one request, and how long its exchange took, as k6 splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body bytes received.
    pub body_bytes: usize,
    /// Writing the request (k6's `http_req_sending`).
    pub sending: std::time::Duration,
    /// From the request written to the answer's first byte (`http_req_waiting`).
    pub waiting: std::time::Duration,
    /// From the first byte to the last (`http_req_receiving`).
    pub receiving: std::time::Duration,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// An HTTP status other than 2xx.
    Status(u16),
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection was refused.
    Refused,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// TLS failed.
    Tls,
    /// Another connect failure.
    Connect,
    /// The response broke HTTP.
    Protocol,
}

impl FailureKind {
    /// The kind an I/O error stands for, when it names one.
    pub fn from_io(error: &std::io::Error) -> Option<FailureKind> {
        use std::io::ErrorKind::*;
        match error.kind() {
            ConnectionRefused => Some(FailureKind::Refused),
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                Some(FailureKind::Reset)
            }
            TimedOut => Some(FailureKind::Timeout),
            _ => None,
        }
    }

    /// Whether the request never went out: no connection was made (refused, DNS, TLS or
    /// another connect failure), so the API cannot have seen it.
    pub fn never_sent(self) -> bool {
        matches!(
            self,
            FailureKind::Refused | FailureKind::Dns | FailureKind::Tls | FailureKind::Connect
        )
    }

    /// The kind named `label` (what [`FailureKind::label`] writes).
    pub fn from_label(label: &str) -> Option<FailureKind> {
        if let Some(code) = label.strip_prefix("status_") {
            return code.parse().ok().map(FailureKind::Status);
        }
        Some(match label {
            "timeout" => FailureKind::Timeout,
            "refused" => FailureKind::Refused,
            "reset" => FailureKind::Reset,
            "dns" => FailureKind::Dns,
            "tls" => FailureKind::Tls,
            "connect" => FailureKind::Connect,
            "protocol" => FailureKind::Protocol,
            _ => return None,
        })
    }

    /// The kind's name in summaries and run files (`status_500`, `timeout`, ...).
    pub fn label(self) -> String {
        match self {
            FailureKind::Status(code) => format!("status_{code}"),
            FailureKind::Timeout => "timeout".into(),
            FailureKind::Refused => "refused".into(),
            FailureKind::Reset => "reset".into(),
            FailureKind::Dns => "dns".into(),
            FailureKind::Tls => "tls".into(),
            FailureKind::Connect => "connect".into(),
            FailureKind::Protocol => "protocol".into(),
        }
    }
}
