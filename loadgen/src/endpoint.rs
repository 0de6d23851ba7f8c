//! The target URL: parsed once, with what each connection needs.

use std::path::Path;

use contract::outputs::{key, StackOutputs};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use percent_encoding::percent_decode_str;

use crate::error::ConfigError;

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The whole URL, as parsed (credentials included: it is not for printing, which
    /// [`Endpoint`]'s `Display` is).
    pub uri: Uri,
    /// The URL without its credentials: what HTTP/2 sends.
    pub uri_without_credentials: Uri,
    /// Whether to speak TLS.
    pub tls: bool,
    /// Host name or address, without brackets.
    pub host: String,
    /// Port (80 or 443 when the URL has none).
    pub port: u16,
    /// The Host header / :authority: host and port, without credentials.
    pub authority: Authority,
    /// Path and query, `/` when the URL has none.
    pub path: PathAndQuery,
    /// `Basic ...` from the URL's `user:password@`, as k6 and curl send it.
    pub authorization: Option<String>,
    /// `user:***@` (or `user@`, or nothing): the credentials as they are shown.
    shown_user: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
        let tls = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            Some(s) => return Err(format!("scheme {s} is not http or https")),
            None => return Err("it has no scheme: start it with http:// or https://".into()),
        };
        let given = uri.authority().cloned().ok_or("it has no host")?;
        let (credentials, host_port) = match given.as_str().rsplit_once('@') {
            Some((credentials, host_port)) => (Some(credentials), host_port),
            None => (None, given.as_str()),
        };
        let authority: Authority = host_port.parse().map_err(|e| format!("{e}"))?;
        let (authorization, shown_user) = match credentials {
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |text| percent_decode_str(text).collect::<Vec<u8>>();
                let pair = [decode(user), b":".to_vec(), decode(password)].concat();
                let shown = match userinfo.contains(':') {
                    true => format!("{user}:***@"),
                    false => format!("{user}@"),
                };
                (Some(format!("Basic {}", STANDARD.encode(pair))), shown)
            }
            None => (None, String::new()),
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err("it has no host".into());
        }
        // The port as written (after an IPv6 address's bracket): http's parser reads a port
        // past 65535 as no port at all, which would quietly mean 80.
        let written = host_port
            .rsplit_once(']')
            .map_or(host_port, |(_, rest)| rest)
            .rsplit_once(':')
            .map(|(_, port)| port);
        let port = match written {
            None | Some("") => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(format!("port {text} is not from 1 to 65535")),
            },
        };
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri_without_credentials = Uri::builder()
            .scheme(if tls { Scheme::HTTPS } else { Scheme::HTTP })
            .authority(authority.clone())
            .path_and_query(path.clone())
            .build()
            .map_err(|e| format!("{e}"))?;
        Ok(Endpoint {
            uri,
            uri_without_credentials,
            tls,
            host,
            port,
            authority,
            path,
            authorization,
            shown_user,
        })
    }
}

/// The URL with its password, if any, written as `***`: for summaries and run files.
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(
            f,
            "{scheme}://{}{}{}",
            self.shown_user, self.authority, self.path
        )
    }
}

/// The API URL in a `cdk deploy --outputs-file` JSON ([`contract::outputs`]): the
/// `ApiGatewayMethodEndpoint` output of the one stack, or of `STACK_NAME` when set.
pub fn from_outputs_file(path: &Path, stack: Option<&str>) -> Result<String, ConfigError> {
    output(path, stack, key::API_ENDPOINT)
}

/// Output `name` of the one stack (or of `stack`) in a `cdk deploy --outputs-file` JSON.
pub fn output(path: &Path, stack: Option<&str>, name: &str) -> Result<String, ConfigError> {
    let fail = |reason: String| ConfigError::Outputs {
        path: path.to_owned(),
        reason,
    };
    let text = contract::file::read_text(path).map_err(|e| fail(e.to_string()))?;
    let outputs = StackOutputs::parse(&text, stack).map_err(fail)?;
    outputs.get(name).map(str::to_owned).map_err(fail)
}

/// An [`Endpoint`] as data: its whole URL (credentials included), parsed again when read.
pub mod as_url {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Endpoint;

    /// Writes the whole URL.
    pub fn serialize<S: Serializer>(endpoint: &Endpoint, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&endpoint.uri.to_string())
    }

    /// Reads a URL as `Endpoint::parse` does.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Endpoint, D::Error> {
        let url = String::deserialize(deserializer)?;
        Endpoint::parse(&url).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_connections_need() {
        let e = Endpoint::parse("https://abc.execute-api.us-east-1.amazonaws.com/prod/").unwrap();
        assert!(e.tls);
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("abc.execute-api.us-east-1.amazonaws.com", 443, "/prod/")
        );
        let e = Endpoint::parse("http://127.0.0.1:4599").unwrap();
        assert_eq!(
            (e.tls, e.port, e.path.as_str(), e.authority.as_str()),
            (false, 4599, "/", "127.0.0.1:4599")
        );
        let e = Endpoint::parse("http://[::1]:8080/x?y=1").unwrap();
        assert_eq!((e.host.as_str(), e.path.as_str()), ("::1", "/x?y=1"));
        assert!(Endpoint::parse("ftp://x/")
            .unwrap_err()
            .contains("not http"));
        assert!(Endpoint::parse("localhost:4566").is_err());
        for url in ["http://127.0.0.1:99999/", "http://127.0.0.1:0/"] {
            let err = Endpoint::parse(url).unwrap_err();
            assert!(err.contains("is not from 1 to 65535"), "{url}: {err}");
        }
        assert!(Endpoint::parse("/prod/").unwrap_err().contains("no scheme"));
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_are_not_printed() {
        let e = Endpoint::parse("http://Aladdin:open%20sesame@127.0.0.1:4599/prod/").unwrap();
        // RFC 7617's example.
        assert_eq!(
            e.authorization.as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(e.authority.as_str(), "127.0.0.1:4599");
        assert_eq!(e.to_string(), "http://Aladdin:***@127.0.0.1:4599/prod/");
        assert_eq!(
            e.uri_without_credentials.to_string(),
            "http://127.0.0.1:4599/prod/"
        );
        let e = Endpoint::parse("https://token@example.com/").unwrap();
        assert_eq!(e.authorization.as_deref(), Some("Basic dG9rZW46"));
        assert_eq!(e.to_string(), "https://token@example.com/");
        let e = Endpoint::parse("http://127.0.0.1:4599/prod/?a=1").unwrap();
        assert_eq!(e.authorization, None);
        assert_eq!(e.to_string(), "http://127.0.0.1:4599/prod/?a=1");
    }

    #[test]
    fn reads_the_cdk_outputs_file() {
        let dir = std::env::temp_dir().join(format!("loadgen-outputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("outputs.json");
        std::fs::write(
            &path,
            r#"{"PipelineStack":{"KinesisStreamName":"KinesisStream","ApiGatewayMethodEndpoint":"http://127.0.0.1:4599/prod/"}}"#,
        )
        .unwrap();
        assert_eq!(
            from_outputs_file(&path, None).unwrap(),
            "http://127.0.0.1:4599/prod/"
        );
        std::fs::write(&path, r#"{"S":{"Other":"x"}}"#).unwrap();
        let err = from_outputs_file(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("has no output ApiGatewayMethodEndpoint"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
