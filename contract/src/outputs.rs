//! The stack's outputs file: what `cdk deploy --outputs-file FILE` writes, and what `sandbox up`
//! writes as `<state>/outputs.json`. loadgen reads its API endpoint (`--outputs`), the collector
//! its AWS endpoint, table and namespace (`--outputs`).
//!
//! ```text
//! {"PipelineStack": {"ApiGatewayMethodEndpoint": "http://127.0.0.1:4599/prod/",
//!                    "AwsEndpointUrl": "http://localhost:4599", "DynamoDBTableName": "...",
//!                    "KinesisStreamName": "...", "MetricNamespace": "...", "Environment": "..."}}
//! ```
//!
//! A key matches when it equals the output's name or ends with it (CDK prefixes the logical ids
//! of outputs declared in nested constructs). `AwsEndpointUrl` is the sandbox's own: on AWS there
//! is none, and on LocalStack it is the user's `AWS_ENDPOINT_URL`.

use std::collections::BTreeMap;

/// The stack's name unless `STACK_NAME` says otherwise.
pub const DEFAULT_STACK_NAME: &str = "PipelineStack";

/// The outputs' names.
pub mod key {
    /// The URL to POST requests to (stage included, trailing slash).
    pub const API_ENDPOINT: &str = "ApiGatewayMethodEndpoint";
    /// The AWS endpoint the stack lives behind (the sandbox's edge); absent on AWS.
    pub const AWS_ENDPOINT_URL: &str = "AwsEndpointUrl";
    /// The DynamoDB table.
    pub const TABLE: &str = "DynamoDBTableName";
    /// The Kinesis stream.
    pub const STREAM: &str = "KinesisStreamName";
    /// The metrics' namespace.
    pub const NAMESPACE: &str = "MetricNamespace";
    /// `AWS`, `LocalStack` or `Sandbox`.
    pub const ENVIRONMENT: &str = "Environment";
    /// The loadgen worker function `loadgen --lambda N` invokes (deployed with
    /// `LOADGEN_WORKER=true`).
    pub const LOADGEN_WORKER: &str = "LoadgenWorkerFunctionName";
    /// The REST API's name (API Gateway's metrics are by `ApiName`).
    pub const API_NAME: &str = "ApiName";
    /// The sandbox's profile: `default`, or `aws at quota scale F` (the sandbox only).
    pub const SANDBOX_PROFILE: &str = "SandboxProfile";
    /// The SQS queue the event source mappings record given-up batches in.
    pub const FAILED_BATCHES: &str = "FailedBatchesQueueUrl";
    /// The upstream function's name (Lambda's metrics are by function name).
    pub const UPSTREAM_FUNCTION: &str = "UpstreamFunctionName";
    /// The midstream function's name.
    pub const MIDSTREAM_FUNCTION: &str = "MidstreamFunctionName";
    /// The downstream function's name.
    pub const DOWNSTREAM_FUNCTION: &str = "DownstreamFunctionName";
}

/// Whether `url` (where a run's requests went) is the API at `api` (the stack's
/// [`key::API_ENDPOINT`]) or a path under it: the same scheme, host and port, user info aside,
/// `localhost`, `127.0.0.1` and `[::1]` taken as one host.
pub fn is_under_api(api: &str, url: &str) -> bool {
    fn parts(url: &str) -> Option<(String, String, String)> {
        let (scheme, rest) = url.trim().split_once("://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host.to_ascii_lowercase();
        let host = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .find_map(|local| {
                host.strip_prefix(local)
                    .map(|port| format!("loopback{port}"))
            })
            .unwrap_or(host);
        let path = format!("{}/", path.trim_end_matches('/'));
        Some((scheme.to_ascii_lowercase(), host, path))
    }
    match (parts(api), parts(url)) {
        (Some((scheme, host, path)), Some((s, h, p))) => {
            scheme == s && host == h && p.starts_with(&path)
        }
        _ => false,
    }
}

/// One stack's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackOutputs {
    /// The stack's name (the file's top-level key).
    pub stack: String,
    /// Output name → value.
    pub values: BTreeMap<String, String>,
}

impl StackOutputs {
    /// Reads the outputs of the one stack in `text`, or of `stack` when the file has several.
    pub fn parse(text: &str, stack: Option<&str>) -> Result<StackOutputs, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let stacks = json
            .as_object()
            .ok_or("not a cdk outputs file (expected {stack: {output: value}})")?;
        let (name, outputs) = match stack {
            Some(name) => stacks
                .get_key_value(name)
                .ok_or_else(|| format!("no stack {name:?} in it (it has {})", names(stacks)))?,
            None if stacks.len() == 1 => stacks.iter().next().ok_or("no stack in it")?,
            None => {
                return Err(format!(
                    "it has {} stacks ({}); name one (STACK_NAME)",
                    stacks.len(),
                    names(stacks)
                ))
            }
        };
        let values = outputs
            .as_object()
            .ok_or_else(|| format!("stack {name:?} holds no outputs object"))?
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect();
        Ok(StackOutputs {
            stack: name.clone(),
            values,
        })
    }

    /// The value of output `name` (exactly, or a key ending in it); an error when none or
    /// several match.
    pub fn get(&self, name: &str) -> Result<&str, String> {
        if let Some(value) = self.values.get(name) {
            return Ok(value);
        }
        let found: Vec<(&String, &String)> = self
            .values
            .iter()
            .filter(|(k, _)| k.ends_with(name))
            .collect();
        match found.as_slice() {
            [(_, value)] => Ok(value),
            [] => Err(format!(
                "stack {:?} has no output {name} (it has {})",
                self.stack,
                self.values.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            _ => Err(format!(
                "stack {:?} has several outputs ending in {name} ({})",
                self.stack,
                found
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The file's text for these outputs.
    pub fn to_json(&self) -> String {
        let stack: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut file = serde_json::Map::new();
        file.insert(self.stack.clone(), serde_json::Value::Object(stack));
        serde_json::to_string_pretty(&serde_json::Value::Object(file)).unwrap_or_default()
    }
}

fn names(stacks: &serde_json::Map<String, serde_json::Value>) -> String {
    stacks.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_s_url_is_the_api_or_under_it() {
        let api = "http://127.0.0.1:4599/prod/";
        for url in [
            "http://127.0.0.1:4599/prod/",
            "http://127.0.0.1:4599/prod",
            "http://localhost:4599/prod/",
            "HTTP://user:***@127.0.0.1:4599/prod/items",
        ] {
            assert!(is_under_api(api, url), "{url}");
        }
        for url in [
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:4599/",
            "http://127.0.0.1:4599/production/",
            "https://127.0.0.1:4599/prod/",
            "not a url",
        ] {
            assert!(!is_under_api(api, url), "{url}");
        }
    }

    #[test]
    fn reads_one_stack_and_finds_prefixed_keys() {
        let text = r#"{"PipelineStack":{"ApiGatewayMethodEndpoint":"http://127.0.0.1:4599/prod/",
            "NestedDynamoDBTableName":"T","n":3}}"#;
        let outputs = StackOutputs::parse(text, None).unwrap();
        assert_eq!(outputs.stack, "PipelineStack");
        assert_eq!(
            outputs.get(key::API_ENDPOINT).unwrap(),
            "http://127.0.0.1:4599/prod/"
        );
        assert_eq!(outputs.get(key::TABLE).unwrap(), "T");
        let err = outputs.get(key::AWS_ENDPOINT_URL).unwrap_err();
        assert!(err.contains("no output AwsEndpointUrl"), "{err}");
        assert_eq!(
            StackOutputs::parse(&outputs.to_json(), Some("PipelineStack")).unwrap(),
            outputs
        );
    }

    #[test]
    fn several_stacks_need_a_name() {
        let text = r#"{"A":{"x":"1"},"B":{"x":"2"}}"#;
        let err = StackOutputs::parse(text, None).unwrap_err();
        assert!(err.contains("2 stacks (A, B)"), "{err}");
        assert_eq!(
            StackOutputs::parse(text, Some("B"))
                .unwrap()
                .get("x")
                .unwrap(),
            "2"
        );
        let err = StackOutputs::parse(text, Some("C")).unwrap_err();
        assert!(err.contains("no stack \"C\""), "{err}");
        assert!(StackOutputs::parse("[1]", None).is_err());
        assert!(StackOutputs::parse("{", None)
            .unwrap_err()
            .starts_with("not JSON"));
    }
}
