//! The target URL: parsed once, with what each connection needs.

use std::path::Path;

use contract::outputs::{key, StackOutputs};

use http::uri::{Authority, PathAndQuery, Scheme, Uri};

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
        let authorization = credentials.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let pair = [
                percent_decode(user),
                b":".to_vec(),
                percent_decode(password),
            ]
            .concat();
            format!("Basic {}", base64(&pair))
        });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err("it has no host".into());
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
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
        })
    }
}

/// The URL with its password, if any, written as `***`: for summaries and run files.
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = self.uri.authority().map_or("", |a| a.as_str());
        let user = match given.rsplit_once('@') {
            Some((userinfo, _)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@"),
                None => format!("{userinfo}@"),
            },
            None => String::new(),
        };
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{user}{}{}", self.authority, self.path)
    }
}

/// `%XX` escapes decoded; anything else kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    fn base64_follows_rfc_4648() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(percent_decode("a%3Ab%zz%2"), b"a:b%zz%2");
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
