//! What the sandbox's tests share: moto behind an edge, SDK configuration, function specs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sandbox::apigateway::Routes;
use sandbox::edge::Edge;
use sandbox::lambda::FunctionSpec;
use sandbox::moto::Moto;

/// The repository.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A function binary built beside this test (`cargo test --workspace` builds them).
pub fn function_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} not found: build the functions first (cargo build -p functions)",
        path.display()
    );
    path
}

/// The bash custom runtime in tests/fixtures.
pub fn bash_runtime() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bash-runtime.sh")
}

/// SDK configuration for an endpoint, with moto's dummy credentials.
pub async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    testkit::aws::sdk_config(functions::aws::loader(), endpoint).await
}

/// A function spec for tests.
pub fn spec(
    name: &str,
    executable: PathBuf,
    env: &[(&str, &str)],
    timeout_ms: u64,
    concurrency: usize,
) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
        executable,
        environment: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout: Duration::from_millis(timeout_ms),
        concurrency,
        memory_mb: 256,
        init_timeout: Duration::from_secs(1),
        reload_on_change: false,
        delay: std::time::Duration::ZERO,
        kill_after_answer: Default::default(),
        concurrency_limit: None,
        group: None,
    }
}

/// moto with an edge in front, on loopback ports.
pub struct Stack {
    pub moto: Moto,
    /// The edge's `host:port`.
    pub addr: String,
    /// `http://<addr>`.
    pub edge_url: String,
    /// The functions Lambda's Invoke API reaches through the edge.
    pub functions: Arc<sandbox::invoke::Functions>,
    stop: sandbox::ShutdownTrigger,
    edge: tokio::task::JoinHandle<()>,
}

impl Stack {
    /// Starts moto and an edge serving `routes`.
    pub async fn start(routes: Arc<Routes>) -> Stack {
        Stack::with_budget(routes, sandbox::edge::limits::BODY_BUDGET).await
    }

    /// Starts moto and an edge serving `routes` that holds at most `budget` bytes of bodies.
    pub async fn with_budget(routes: Arc<Routes>, budget: usize) -> Stack {
        Stack::with_quotas(routes, budget, None).await
    }

    /// Starts moto and an edge that keeps the aws profile's quotas at `scale`; returns them too.
    pub async fn aws_profile(
        routes: Arc<Routes>,
        scale: f64,
    ) -> (Stack, Arc<sandbox::quota::Limits>) {
        let moto = Moto::start(&root()).await.expect("start moto");
        let api = sandbox::awsjson::AwsJson::new(moto.addr, "us-east-1");
        let limits = Arc::new(
            sandbox::quota::Profile::aws(scale)
                .limits("123456789012", api)
                .unwrap(),
        );
        let stack = Stack::serve(
            moto,
            routes,
            sandbox::edge::limits::BODY_BUDGET,
            Some(limits.clone()),
        )
        .await;
        (stack, limits)
    }

    async fn with_quotas(
        routes: Arc<Routes>,
        budget: usize,
        quotas: Option<Arc<sandbox::quota::Limits>>,
    ) -> Stack {
        let moto = Moto::start(&root()).await.expect("start moto");
        Stack::serve(moto, routes, budget, quotas).await
    }

    async fn serve(
        moto: Moto,
        routes: Arc<Routes>,
        budget: usize,
        quotas: Option<Arc<sandbox::quota::Limits>>,
    ) -> Stack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = sandbox::ShutdownTrigger::new();
        let edge = Edge::with_quotas(moto.addr, routes, budget, quotas);
        let functions = edge.functions();
        let edge = tokio::spawn(edge.serve(listener, stop.shutdown()));
        Stack {
            moto,
            functions,
            edge_url: format!("http://{addr}"),
            addr,
            stop,
            edge,
        }
    }

    /// Stops the edge and moto.
    pub async fn stop(self) {
        self.stop.stop();
        let _ = self.edge.await;
        self.moto.stop().await;
    }
}

/// What a function needs to call the AWS APIs at `endpoint` (moto's dummy credentials), then
/// `extra`.
pub fn function_env<'a>(
    endpoint: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    env.extend_from_slice(extra);
    env
}

/// Creates the pipeline's one-shard `KinesisStream`; returns the Kinesis client.
pub async fn kinesis_with_stream(sdk: &aws_config::SdkConfig) -> aws_sdk_kinesis::Client {
    let kinesis = aws_sdk_kinesis::Client::new(sdk);
    testkit::aws::create_stream(&kinesis, "KinesisStream").await;
    kinesis
}
