//! What is deployed, read from moto's APIs, so that the CDK stack stays the single source of
//! truth: functions (environment, timeout, memory, code), event source mappings, and REST API
//! routes with their proxy integrations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::awsjson::{AwsJson, CallError};
use crate::pollers::{Expiry, SourceKind, StartingPosition};

/// A deployed function.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedFunction {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Timeout.
    pub timeout: Duration,
    /// Memory, MB.
    pub memory_mb: u32,
    /// Its environment variables.
    pub environment: BTreeMap<String, String>,
    /// The S3 key its code zip was created from.
    pub code_key: Option<String>,
    /// Its `ReservedConcurrentExecutions`, if it has one.
    pub reserved_concurrency: Option<u32>,
}

/// A deployed event source mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedMapping {
    /// The function's ARN.
    pub function_arn: String,
    /// The stream's ARN.
    pub source_arn: String,
    /// Kinesis or a DynamoDB stream.
    pub kind: SourceKind,
    /// Batch size.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`: how long to gather records before invoking.
    pub batching_window: std::time::Duration,
    /// Where it starts.
    pub starting_position: StartingPosition,
    /// Bisect on function error.
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts` and `MaximumRecordAgeInSeconds`.
    pub expiry: Expiry,
    /// ReportBatchItemFailures.
    pub report_batch_item_failures: bool,
    /// `DestinationConfig.OnFailure.Destination`: where a given-up batch is recorded.
    pub on_failure: Option<String>,
    /// Enabled.
    pub enabled: bool,
}

/// A deployed REST API method with a Lambda proxy integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedRoute {
    /// The API's id.
    pub api_id: String,
    /// The API's name.
    pub api_name: String,
    /// The stage (moto ignores stages in CloudFormation: `prod` when it has none).
    pub stage: String,
    /// Resource path.
    pub path: String,
    /// HTTP method.
    pub method: String,
    /// The integration's function ARN.
    pub function_arn: String,
}

/// Everything the sandbox runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployed {
    /// Functions.
    pub functions: Vec<DeployedFunction>,
    /// Event source mappings.
    pub mappings: Vec<DeployedMapping>,
    /// API routes.
    pub routes: Vec<DeployedRoute>,
}

/// The stage used when the emulator reports none.
pub const DEFAULT_STAGE: &str = "prod";

/// Reads what is deployed.
pub async fn discover(api: &AwsJson) -> Result<Deployed, CallError> {
    Ok(Deployed {
        functions: functions(api).await?,
        mappings: mappings(api).await?,
        routes: routes(api).await?,
    })
}

/// The functions, each with its configuration and where its code is.
async fn functions(api: &AwsJson) -> Result<Vec<DeployedFunction>, CallError> {
    let mut functions = Vec::new();
    let listed = api.rest_json("lambda", "/2015-03-31/functions/").await?;
    for f in listed["Functions"].as_array().into_iter().flatten() {
        let name = f["FunctionName"].as_str().unwrap_or_default().to_owned();
        let full = api
            .rest_json("lambda", &format!("/2015-03-31/functions/{name}"))
            .await?;
        let code_key = full["Code"]["Location"]
            .as_str()
            .and_then(|l| l.split_once(".amazonaws.com/"))
            .map(|(_, key)| key.to_owned());
        functions.push(DeployedFunction {
            arn: f["FunctionArn"].as_str().unwrap_or_default().to_owned(),
            timeout: Duration::from_secs(f["Timeout"].as_u64().unwrap_or(3)),
            memory_mb: f["MemorySize"].as_u64().unwrap_or(128) as u32,
            environment: f["Environment"]["Variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            code_key,
            reserved_concurrency: full["Concurrency"]["ReservedConcurrentExecutions"]
                .as_u64()
                .map(|n| n.min(u64::from(u32::MAX)) as u32),
            name,
        });
    }
    Ok(functions)
}

/// The event source mappings, with Lambda's settings for each.
async fn mappings(api: &AwsJson) -> Result<Vec<DeployedMapping>, CallError> {
    let mut mappings_found = Vec::new();
    let mappings = api
        .rest_json("lambda", "/2015-03-31/event-source-mappings/")
        .await?;
    for m in mappings["EventSourceMappings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let source_arn = m["EventSourceArn"].as_str().unwrap_or_default().to_owned();
        let kind = if source_arn.starts_with("arn:aws:kinesis:") {
            SourceKind::Kinesis
        } else {
            SourceKind::DynamoDbStream
        };
        mappings_found.push(DeployedMapping {
            function_arn: m["FunctionArn"].as_str().unwrap_or_default().to_owned(),
            kind,
            source_arn,
            batch_size: m["BatchSize"].as_u64().unwrap_or(100) as usize,
            batching_window: std::time::Duration::from_secs(
                m["MaximumBatchingWindowInSeconds"].as_u64().unwrap_or(0),
            ),
            starting_position: if m["StartingPosition"] == "LATEST" {
                StartingPosition::Latest
            } else {
                StartingPosition::TrimHorizon
            },
            bisect_on_error: m["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
            expiry: Expiry::from_mapping(m),
            report_batch_item_failures: m["FunctionResponseTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
            on_failure: m["DestinationConfig"]["OnFailure"]["Destination"]
                .as_str()
                .filter(|arn| !arn.is_empty())
                .map(str::to_owned),
            enabled: m["State"]
                .as_str()
                .is_none_or(|s| s == "Enabled" || s == "Enabling"),
        });
    }
    Ok(mappings_found)
}

/// API Gateway's Lambda proxy routes: each REST API's stage, resources and methods.
async fn routes(api: &AwsJson) -> Result<Vec<DeployedRoute>, CallError> {
    let mut routes = Vec::new();
    let apis = api.rest_json("apigateway", "/restapis").await?;
    for rest_api in apis["item"].as_array().into_iter().flatten() {
        let id = rest_api["id"].as_str().unwrap_or_default();
        let stages = api
            .rest_json("apigateway", &format!("/restapis/{id}/stages"))
            .await
            .unwrap_or(Value::Null);
        let stage = stages["item"][0]["stageName"]
            .as_str()
            .unwrap_or(DEFAULT_STAGE)
            .to_owned();
        let resources = api
            .rest_json("apigateway", &format!("/restapis/{id}/resources"))
            .await?;
        for resource in resources["item"].as_array().into_iter().flatten() {
            for method in resource["resourceMethods"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(m, _)| m)
            {
                let rid = resource["id"].as_str().unwrap_or_default();
                let detail = api
                    .rest_json(
                        "apigateway",
                        &format!("/restapis/{id}/resources/{rid}/methods/{method}"),
                    )
                    .await?;
                let integration = &detail["methodIntegration"];
                if integration["type"] != "AWS_PROXY" {
                    continue;
                }
                if let Some(function_arn) =
                    integration["uri"].as_str().and_then(integration_function)
                {
                    routes.push(DeployedRoute {
                        api_id: id.to_owned(),
                        api_name: rest_api["name"].as_str().unwrap_or(id).to_owned(),
                        stage: stage.clone(),
                        path: resource["path"].as_str().unwrap_or("/").to_owned(),
                        method: method.clone(),
                        function_arn,
                    });
                }
            }
        }
    }
    Ok(routes)
}

/// The function ARN in a Lambda proxy integration URI (`...:lambda:path/2015-03-31/functions/<arn>/invocations`).
pub fn integration_function(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("/functions/")?;
    rest.strip_suffix("/invocations").map(str::to_owned)
}

/// A function's code zip from the emulator's S3: CDK's asset bucket first, then any bucket that
/// has the key.
pub async fn fetch_code(
    api: &AwsJson,
    key: &str,
    account: &str,
    region: &str,
) -> Result<Bytes, CallError> {
    let cdk_bucket = format!("cdk-hnb659fds-assets-{account}-{region}");
    if let Ok(zip) = api
        .rest("s3", http::Method::GET, &format!("/{cdk_bucket}/{key}"))
        .await
    {
        return Ok(zip);
    }
    let listing = api.rest("s3", http::Method::GET, "/").await?;
    let listing = String::from_utf8_lossy(&listing);
    let mut last = CallError::Transport {
        target: key.to_owned(),
        message: "no bucket holds the code".into(),
    };
    for bucket in listing
        .split("<Name>")
        .skip(1)
        .filter_map(|s| s.split_once("</Name>").map(|(n, _)| n))
    {
        match api
            .rest("s3", http::Method::GET, &format!("/{bucket}/{key}"))
            .await
        {
            Ok(zip) => return Ok(zip),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Unpacks a code zip into `dir` ([`crate::unzip`]: each file with its Unix mode, as Lambda
/// does) and returns its executable `bootstrap`.
pub fn unpack(zip: &[u8], dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    crate::unzip::unzip(zip, dir)
        .map_err(|e| e.context(format!("unpacking the code zip into {}", dir.display())))?;
    let bootstrap = dir.join("bootstrap");
    anyhow::ensure!(
        bootstrap.exists(),
        "the code zip has no bootstrap at its root"
    );
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))?;
    Ok(bootstrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_is_read_from_the_integration_uri() {
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:Up/invocations";
        assert_eq!(
            integration_function(uri).as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:Up")
        );
        assert_eq!(integration_function("http://example.com/"), None);
    }
}
