//! `sandbox up`: moto, the edge, (optionally) the CDK app deployed through the edge, then
//! everything that was deployed brought to life: function workers, API routes, pollers. Until
//! the shutdown future completes; then every process it started is stopped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use contract::outputs::{key, StackOutputs, DEFAULT_STACK_NAME};
use serde_json::json;

use crate::apigateway::{Route, Routes};
use crate::awsjson::AwsJson;
use crate::discover::{discover, fetch_code, unpack, Deployed};
use crate::edge::{CallStat, Edge};
use crate::instance::OUTPUTS;
use crate::invoke::Functions;
use crate::lambda::{
    ConcurrencyLimit, FunctionHost, FunctionSpec, KillAfterAnswer, LogSink, INIT_TIMEOUT,
};
use crate::moto::Moto;
use crate::pollers::wake::Wakes;
use crate::pollers::{poll_shard, OnFailure, PollerConfig, Shard};
use crate::quota::{Limits, Profile};
use crate::ShutdownTrigger;

/// The outputs file of the sandbox's own deploy, in the state folder.
const CDK_OUTPUTS: &str = "cdk-outputs.json";

/// moto's account, the sandbox's region.
pub const ACCOUNT: &str = "123456789012";
/// The sandbox's region.
pub const REGION: &str = "us-east-1";

/// How to bring the sandbox up.
#[derive(Debug, Clone)]
pub struct UpConfig {
    /// The repository (for .venv, cdk/).
    pub root: PathBuf,
    /// The edge's port on 127.0.0.1.
    pub port: u16,
    /// Deploy the CDK app first.
    pub deploy: bool,
    /// The functions' binaries for the deploy (`LAMBDA_DIST_PATH`).
    pub dist: PathBuf,
    /// Deploy with `HOT_DEPLOY`: functions' code in the `hot-reload` bucket under their
    /// `<dist>/<fn>` paths, run from there and restarted when it changes.
    pub hot: bool,
    /// Worker processes per function.
    pub concurrency: usize,
    /// Where state goes: outputs.json, functions' code, the pid file.
    pub state: PathBuf,
    /// Fault injection: `(name, fraction)` kills the worker of every function whose name
    /// contains `name` (any case) right after it answers that fraction of its invocations.
    pub kill_workers: Vec<(String, f64)>,
    /// The seed of fault injection's draws (printed, so that a run can be repeated).
    pub seed: u64,
    /// Publish Lambda's own metrics to CloudWatch every second ([`crate::publish`]).
    pub lambda_metrics: bool,
    /// What-if: `(name, delay)` adds the delay to each invocation of every function whose name
    /// contains `name` (any case).
    pub delays: Vec<(String, std::time::Duration)>,
    /// What-if: `(name, cpu time)` makes each invocation of every function whose name contains
    /// `name` spend that much CPU time in its handler (`SANDBOX_BURN` in its environment).
    pub burns: Vec<(String, std::time::Duration)>,
    /// What-if: `(name, bytes)` makes each invocation of every function whose name contains
    /// `name` keep that many bytes more while its worker lives (`SANDBOX_LEAK_BYTES`).
    pub leaks: Vec<(String, u64)>,
    /// Each function's workers get Lambda's CPU share and memory limit ([`crate::lambda::cgroup`]).
    pub cpu_share: bool,
    /// The clock and quotas kept: the default profile's, or AWS's ([`crate::quota`]).
    pub profile: Profile,
}

impl UpConfig {
    /// The delay added to each invocation of `function` (the longest that names it).
    pub fn delay(&self, function: &str) -> std::time::Duration {
        naming(&self.delays, function).max().unwrap_or_default()
    }

    /// The fraction of `function`'s answers whose worker fault injection kills.
    pub fn kill_fraction(&self, function: &str) -> f64 {
        naming(&self.kill_workers, function).fold(0.0, f64::max)
    }
}

/// The values of the `(name, value)` settings whose name `function`'s contains (any case).
fn naming<'a, T: Copy>(
    settings: &'a [(String, T)],
    function: &str,
) -> impl Iterator<Item = T> + 'a {
    let function = function.to_ascii_lowercase();
    settings
        .iter()
        .filter(move |(name, _)| function.contains(&name.to_ascii_lowercase()))
        .map(|(_, value)| *value)
}

/// Brings the sandbox up, says where it is, runs until `shutdown`, then stops everything. moto
/// ending on its own (killed, crashed) stops everything too, with an error naming it: the
/// sandbox does not serve on without its AWS APIs.
pub async fn up(
    config: UpConfig,
    logs: LogSink,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state)
        .with_context(|| format!("creating {}", config.state.display()))?;
    // A deploy's outputs from an earlier run describe resources this fresh moto does not have.
    let _ = std::fs::remove_file(config.state.join(CDK_OUTPUTS));
    let moto = Moto::start(&config.root).await?;
    let routes: Arc<Routes> = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
        .await
        .with_context(|| {
            format!(
                "port {} is taken: stop what uses it, or pass --port",
                config.port
            )
        })?;
    let edge_url = format!("http://127.0.0.1:{}", config.port);
    let stop_edge = ShutdownTrigger::new();
    logs("sandbox", &config.profile.describe());
    let quotas = config
        .profile
        .limits(ACCOUNT, AwsJson::new(moto.addr, REGION))
        .map(Arc::new);
    let edge = Edge::with_quotas(
        moto.addr,
        routes.clone(),
        crate::edge::limits::BODY_BUDGET,
        quotas.clone(),
    );
    let serving = tokio::spawn(edge.clone().serve(listener, stop_edge.shutdown()));

    let until = async {
        tokio::select! {
            _ = shutdown => {}
            _ = moto.exited() => {}
        }
    };
    let mut result = run(
        &config,
        &moto,
        &edge_url,
        (routes, edge.functions(), quotas.clone(), edge.wakes()),
        logs.clone(),
        until,
    )
    .await;
    // Whatever failed first (a call to moto, or the wait), moto's end is the cause to name.
    if let Some(how) = moto.ended() {
        logs("sandbox", &format!("{how}: stopping the sandbox"));
        result = Err(anyhow::anyhow!(
            "{how}; the sandbox cannot serve without it and has stopped everything"
        ));
    }
    stop_edge.stop();
    let _ = serving.await;
    for line in call_table(&edge.call_stats()).lines() {
        logs("sandbox", line);
    }
    if let Some(quotas) = &quotas {
        let refused = quotas.summary();
        if refused.is_empty() {
            logs("sandbox", "quotas: nothing was throttled");
        }
        for line in refused {
            logs("sandbox", &format!("quotas: throttled {line}"));
        }
    }
    moto.stop().await;
    let _ = std::fs::remove_file(config.state.join(OUTPUTS));
    result
}

/// moto's answers by operation, slowest in total first: where the sandbox spends its time.
pub fn call_table(calls: &BTreeMap<String, CallStat>) -> String {
    let mut rows: Vec<_> = calls.iter().collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1.total));
    let mut table = format!(
        "moto's answers by operation (through the edge):\n{:<48} {:>8} {:>9} {:>9} {:>9}",
        "operation", "calls", "mean ms", "max ms", "total s"
    );
    for (name, stat) in rows {
        let _ = write!(
            table,
            "\n{:<48} {:>8} {:>9.2} {:>9.1} {:>9.2}",
            name,
            stat.count,
            stat.total.as_secs_f64() * 1000.0 / stat.count.max(1) as f64,
            stat.max.as_secs_f64() * 1000.0,
            stat.total.as_secs_f64()
        );
    }
    table
}

/// The folder a hot-reload function's code key names (LocalStack's `hot-reload` bucket: the key
/// is a local path holding `bootstrap`), if it is one.
pub fn hot_reload_dir(key: &str) -> Option<PathBuf> {
    [key.to_owned(), format!("/{key}")]
        .into_iter()
        .map(PathBuf::from)
        .find(|dir| dir.is_absolute() && dir.join("bootstrap").is_file())
}

/// A setting that names a function the stack does not have: bad input (exit 2), said once the
/// deploy shows which functions there are.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSetting(pub String);

/// Refuses a `--delay`, `--burn`, `--leak` or `--kill-workers` whose name matches no deployed
/// function: it would change nothing and record nothing.
fn check_named_functions(config: &UpConfig, deployed: &Deployed) -> Result<(), BadSetting> {
    let names: Vec<String> = deployed
        .functions
        .iter()
        .map(|f| f.name.to_ascii_lowercase())
        .collect();
    let settings = (config.delays.iter().map(|(name, _)| ("--delay", name)))
        .chain(config.burns.iter().map(|(name, _)| ("--burn", name)))
        .chain(config.leaks.iter().map(|(name, _)| ("--leak", name)))
        .chain(
            config
                .kill_workers
                .iter()
                .map(|(name, _)| ("--kill-workers", name)),
        );
    for (flag, name) in settings {
        let wanted = name.to_ascii_lowercase();
        if !names.iter().any(|n| n.contains(&wanted)) {
            let listed: Vec<&str> = deployed.functions.iter().map(|f| f.name.as_str()).collect();
            return Err(BadSetting(format!(
                "{flag} {name:?} names no deployed function (they are {})",
                listed.join(", ")
            )));
        }
    }
    Ok(())
}

/// moto builds each service's request router on the service's first call (a second or so in
/// all): one cheap call to each service the pipeline uses makes that happen now, not in the first
/// second of a benchmark.
async fn warm_up(api: &AwsJson) {
    for (service, target) in [
        ("kinesis", "Kinesis_20131202.ListStreams"),
        ("dynamodb", "DynamoDB_20120810.ListTables"),
        ("dynamodb", "DynamoDBStreams_20120810.ListStreams"),
        ("monitoring", "GraniteServiceVersion20100801.ListMetrics"),
    ] {
        if let Err(error) = api.call(service, target, &json!({})).await {
            tracing::debug!(%error, "warming up {target}");
        }
    }
}

/// The steps of a run, in order: deploy (with `--deploy`), wait for what is deployed, start the
/// functions, route the API and Lambda's Invoke API to them, start the pollers, write the
/// outputs; then serve until `shutdown`, and stop the pollers before the functions they invoke.
async fn run(
    config: &UpConfig,
    moto: &Moto,
    edge_url: &str,
    (routes, functions, quotas, wakes): (
        Arc<Routes>,
        Arc<Functions>,
        Option<Arc<Limits>>,
        Arc<Wakes>,
    ),
    logs: LogSink,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let cdk_outputs = config.state.join(CDK_OUTPUTS);
    if config.deploy {
        // Stopping mid-deploy drops the deploy, which stops the CDK CLI and all it started.
        tokio::select! {
            deployed = deploy(config, &cdk_outputs, &logs) => deployed?,
            _ = shutdown.as_mut() => {
                logs("sandbox", "stopped during the deploy");
                return Ok(());
            }
        }
    }
    let api = AwsJson::new(moto.addr, REGION);
    let Some(deployed) = wait_for_deploy(&api, edge_url, &logs, &mut shutdown).await? else {
        return Ok(());
    };
    warm_up(&api).await;
    check_named_functions(config, &deployed)?;
    let hosts = start_functions(config, &api, &deployed, edge_url, &logs).await?;
    for function in deployed.functions.iter() {
        if let (Some(reserved), true) = (function.reserved_concurrency, config.profile.is_aws()) {
            logs(
                &function.name,
                &format!("reserved concurrency {reserved}: invocations past it are throttled"),
            );
        }
    }
    routes.set(api_routes(&deployed, &hosts));
    functions.set(hosts.values().cloned(), logs.clone());
    let stop_pollers = ShutdownTrigger::new();
    let pollers = start_pollers(
        (&api, &deployed, &hosts),
        (&config.profile, &quotas, &wakes),
        &logs,
        &stop_pollers,
    )
    .await?;
    let stop_publishing = ShutdownTrigger::new();
    // Lambda's metrics unless told not to; what the quotas refused whenever they are kept.
    let published_hosts = match config.lambda_metrics {
        true => hosts.values().cloned().collect(),
        false => Vec::new(),
    };
    let publishing = (config.lambda_metrics || quotas.is_some()).then(|| {
        tokio::spawn(crate::publish::publish_lambda_metrics(
            api.clone(),
            published_hosts,
            quotas.clone(),
            logs.clone(),
            stop_publishing.shutdown(),
        ))
    });
    let outputs = write_outputs(config, &deployed, &cdk_outputs, edge_url)?;
    logs(
        "sandbox",
        &format!(
            "ready: {} functions, {} pollers; API {}; AWS endpoint {edge_url}; outputs in {}",
            hosts.len(),
            pollers.len(),
            outputs.get(key::API_ENDPOINT).unwrap_or_default(),
            config.state.join(OUTPUTS).display()
        ),
    );

    shutdown.await;
    logs("sandbox", "stopping");
    stop_pollers.stop();
    for poller in pollers {
        let _ = poller.await;
    }
    for host in hosts.values() {
        host.stop().await;
    }
    // What the last second did is published too.
    stop_publishing.stop();
    if let Some(publishing) = publishing {
        let _ = publishing.await;
    }
    Ok(())
}

/// What is deployed in moto; when nothing is yet, waits for a deploy through the edge (moto
/// creates a stack's resources within the one call that deploys it, so what is found is the
/// whole stack). `None` when `shutdown` comes first.
async fn wait_for_deploy(
    api: &AwsJson,
    edge_url: &str,
    logs: &LogSink,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<Option<Deployed>> {
    let mut deployed = discover(api).await.context("reading what is deployed")?;
    if !deployed.functions.is_empty() {
        return Ok(Some(deployed));
    }
    logs(
        "sandbox",
        &format!(
            "waiting for a deploy through the edge (or pass --deploy); in cdk/, after `make \
             lambdas`: export AWS_ENDPOINT_URL={edge_url} AWS_ENDPOINT_URL_S3={edge_url} \
             AWS_REGION={REGION} PIPELINE_TARGET=sandbox LAMBDA_DIST_PATH=$PWD/../dist; npx \
             cdklocal bootstrap && npx cdklocal deploy --require-approval never --method=direct"
        ),
    );
    while deployed.functions.is_empty() {
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        deployed = discover(api).await.context("reading what is deployed")?;
    }
    logs("sandbox", "found a deploy");
    Ok(Some(deployed))
}

/// The sandbox's control groups when `--cpu-share` asks for them; `None`, said in one line, when
/// they cannot be written here.
fn cpu_shares(config: &UpConfig, logs: &LogSink) -> Option<Arc<crate::lambda::cgroup::CpuShares>> {
    if !config.cpu_share {
        return None;
    }
    crate::lambda::cgroup::CpuShares::create()
        .map(Arc::new)
        .inspect_err(|why| {
            logs(
                "sandbox",
                &format!(
                    "control groups cannot be written here ({why}): the functions run without \
                     Lambda's CPU share and memory limit"
                ),
            )
        })
        .ok()
}

/// `--burn` and `--leak`: the CPU time `function` spends and the memory it keeps in each
/// invocation, in its environment.
fn set_whatifs(
    config: &UpConfig,
    function: &str,
    environment: &mut BTreeMap<String, String>,
    logs: &LogSink,
) {
    let burn = naming(&config.burns, function).max().unwrap_or_default();
    if !burn.is_zero() {
        environment.insert(
            contract::lambda::BURN_VAR.to_owned(),
            burn.as_micros().to_string(),
        );
        logs(
            function,
            &format!("what-if: each invocation burns {burn:?} of CPU in its handler"),
        );
    }
    let leak = naming(&config.leaks, function).max().unwrap_or_default();
    if leak > 0 {
        environment.insert(contract::lambda::LEAK_VAR.to_owned(), leak.to_string());
        logs(
            function,
            &format!(
                "what-if: each invocation keeps {:.1} MB more while its worker lives",
                leak as f64 / f64::from(1 << 20)
            ),
        );
    }
}

/// `function`'s workers' control groups, said on its log.
fn function_group(
    shares: &Arc<crate::lambda::cgroup::CpuShares>,
    function: &crate::discover::DeployedFunction,
    workers: usize,
    logs: &LogSink,
) -> anyhow::Result<Arc<crate::lambda::cgroup::FunctionGroup>> {
    let group = shares
        .function(&function.name, function.memory_mb, workers)
        .map_err(anyhow::Error::msg)?;
    let mb = group.memory_mb();
    logs(
        &function.name,
        &format!(
            "CPU share {:.3} of a core and a {mb} MB memory limit (Lambda's for {mb} MB)",
            crate::lambda::cgroup::cpu_share(mb)
        ),
    );
    Ok(Arc::new(group))
}

/// A function's `bootstrap` and whether it is hot-reloaded: its code unpacked from S3, or run
/// from the folder its key names (said on its log).
async fn function_code(
    config: &UpConfig,
    api: &AwsJson,
    function: &crate::discover::DeployedFunction,
    logs: &LogSink,
) -> anyhow::Result<(PathBuf, bool)> {
    let key = function
        .code_key
        .as_deref()
        .with_context(|| format!("{} has no code in S3", function.name))?;
    if let Some(dir) = hot_reload_dir(key) {
        let executable = dir.join("bootstrap");
        logs(
            &function.name,
            &format!("hot reload: running {}", executable.display()),
        );
        return Ok((executable, true));
    }
    let zip = fetch_code(api, key, ACCOUNT, REGION)
        .await
        .with_context(|| format!("fetching {}'s code", function.name))?;
    let dir = config.state.join("functions").join(&function.name);
    Ok((unpack(&zip, &dir)?, false))
}

/// A function's environment: its own, pointed at the edge, with the what-ifs that name it.
fn function_environment(
    config: &UpConfig,
    function: &crate::discover::DeployedFunction,
    edge_url: &str,
    logs: &LogSink,
) -> BTreeMap<String, String> {
    let mut environment = function.environment.clone();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", edge_url),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ] {
        environment.insert(k.to_owned(), v.to_owned());
    }
    set_whatifs(config, &function.name, &mut environment, logs);
    environment
}

/// A host for each deployed function, by ARN: its code unpacked from S3 (or, hot-reloaded, run
/// from the folder its key names), its environment pointed at the edge.
async fn start_functions(
    config: &UpConfig,
    api: &AwsJson,
    deployed: &Deployed,
    edge_url: &str,
    logs: &LogSink,
) -> anyhow::Result<BTreeMap<String, Arc<FunctionHost>>> {
    let mut hosts = BTreeMap::new();
    let reserved: u32 = deployed
        .functions
        .iter()
        .filter_map(|f| f.reserved_concurrency)
        .sum();
    let account = crate::lambda::AccountConcurrency::new(
        contract::quota::LAMBDA_ACCOUNT_CONCURRENCY,
        reserved,
    );
    let shares = cpu_shares(config, logs);
    for function in &deployed.functions {
        let (executable, hot) = function_code(config, api, function, logs).await?;
        let environment = function_environment(config, function, edge_url, logs);
        let group = match &shares {
            Some(shares) => Some(function_group(shares, function, config.concurrency, logs)?),
            None => None,
        };
        let spec = FunctionSpec {
            name: function.name.clone(),
            arn: function.arn.clone(),
            executable,
            environment,
            timeout: function.timeout,
            concurrency: config.concurrency,
            memory_mb: function.memory_mb,
            init_timeout: INIT_TIMEOUT,
            reload_on_change: hot,
            delay: config.delay(&function.name),
            kill_after_answer: KillAfterAnswer::new(
                config.kill_fraction(&function.name),
                // Each function its own sequence of draws from the one seed.
                function.name.bytes().fold(config.seed, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                }),
            ),
            concurrency_limit: config.profile.is_aws().then(|| ConcurrencyLimit {
                reserved: function.reserved_concurrency,
                account: account.clone(),
            }),
            group,
        };
        if !spec.delay.is_zero() {
            logs(
                &function.name,
                &format!("what-if: each invocation is delayed by {:?}", spec.delay),
            );
        }
        if spec.kill_after_answer.fraction > 0.0 {
            logs(
                &function.name,
                &format!(
                    "fault injection: a worker is killed after {:.0} % of its answers, drawn \
                     with seed {} (repeat with --seed {})",
                    spec.kill_after_answer.fraction * 100.0,
                    config.seed,
                    config.seed
                ),
            );
        }
        hosts.insert(
            function.arn.clone(),
            FunctionHost::start(spec, logs.clone()).await?,
        );
    }
    Ok(hosts)
}

/// The deployed API methods whose functions run here.
fn api_routes(deployed: &Deployed, hosts: &BTreeMap<String, Arc<FunctionHost>>) -> Vec<Route> {
    deployed
        .routes
        .iter()
        .filter_map(|r| {
            Some(Route {
                api_id: r.api_id.clone(),
                api_name: r.api_name.clone(),
                stage: r.stage.clone(),
                resource_path: r.path.clone(),
                method: r.method.clone(),
                function: hosts.get(&r.function_arn)?.clone(),
            })
        })
        .collect()
}

/// A poller for each shard of each enabled mapping whose function runs here, until `stop`.
async fn start_pollers(
    (api, deployed, hosts): (&AwsJson, &Deployed, &BTreeMap<String, Arc<FunctionHost>>),
    (profile, quotas, wakes): (&Profile, &Option<Arc<Limits>>, &Wakes),
    logs: &LogSink,
    stop: &ShutdownTrigger,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut pollers = Vec::new();
    for mapping in deployed.mappings.iter().filter(|m| m.enabled) {
        let Some(host) = hosts.get(&mapping.function_arn) else {
            continue;
        };
        let poller_config = PollerConfig {
            kind: mapping.kind,
            source_arn: mapping.source_arn.clone(),
            batch_size: mapping.batch_size,
            batching_window: mapping.batching_window,
            bisect_on_error: mapping.bisect_on_error,
            report_batch_item_failures: mapping.report_batch_item_failures,
            region: REGION.into(),
            expiry: mapping.expiry,
            function_arn: mapping.function_arn.clone(),
            on_failure: mapping
                .on_failure
                .as_deref()
                .map(|arn| OnFailure::in_moto(api.clone(), arn)),
            cadence: profile.cadence(mapping.kind),
            quotas: quotas.clone(),
            wake: None,
        };
        let name = host.name().to_owned();
        for shard in Shard::open_all(
            api,
            mapping.kind,
            &mapping.source_arn,
            mapping.starting_position,
        )
        .await?
        {
            let mut config = poller_config.clone();
            // Woken on write in the default profile; the aws profile keeps Lambda's cadence.
            if !profile.is_aws() {
                config.wake = Some(wakes.register(mapping.kind, &mapping.source_arn));
            }
            pollers.push(tokio::spawn(poll_shard(
                config,
                shard,
                host.clone(),
                logs.clone(),
                name.clone(),
                stop.shutdown(),
            )));
        }
    }
    Ok(pollers)
}

/// Writes `<state>/outputs.json`: whole, then renamed, so that a reader polling for the file
/// never sees half of it.
fn write_outputs(
    config: &UpConfig,
    deployed: &Deployed,
    cdk_outputs: &Path,
    edge_url: &str,
) -> anyhow::Result<StackOutputs> {
    let mut outputs = outputs(deployed, cdk_outputs, edge_url);
    let profile = match config.profile.is_aws() {
        true => format!("aws at quota scale {}", config.profile.scale),
        false => "default".to_owned(),
    };
    outputs
        .values
        .insert(key::SANDBOX_PROFILE.to_owned(), profile);
    let partial = config.state.join("outputs.json.partial");
    std::fs::write(&partial, outputs.to_json())?;
    std::fs::rename(&partial, config.state.join(OUTPUTS))?;
    Ok(outputs)
}

/// Deploys the CDK app through the edge on `config.port` (`cdk bootstrap`,
/// `cdk deploy --method=direct`), with `config.dist` as `LAMBDA_DIST_PATH` and the CDK output
/// under `config.state`. Dropped before it ends (the sandbox stopping), it stops the CDK CLI
/// and everything the CLI started.
pub async fn deploy(config: &UpConfig, outputs_file: &Path, logs: &LogSink) -> anyhow::Result<()> {
    // moto's S3 needs `localhost` in the endpoint for path-style addressing.
    let endpoint = format!("http://localhost:{}", config.port);
    let cdk = config.root.join("cdk");
    let cli = cdk.join("node_modules/.bin/cdk");
    anyhow::ensure!(
        cli.exists(),
        "the CDK CLI is not installed: run `make cdk-deps`"
    );
    for args in [
        vec!["bootstrap".to_owned(), format!("aws://{ACCOUNT}/{REGION}")],
        vec![
            "deploy".into(),
            "--require-approval".into(),
            "never".into(),
            "--method=direct".into(),
            "--outputs-file".into(),
            outputs_file.display().to_string(),
        ],
    ] {
        let mut command = crate::group::command_in_own_group(&cli);
        command
            .args(&args)
            .args(["--no-notices", "--output"])
            .arg(config.state.join("cdk.out"))
            .current_dir(&cdk)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ENDPOINT_URL_S3", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env_remove("AWS_PROFILE")
            .env("PIPELINE_TARGET", "sandbox")
            .env("LAMBDA_DIST_PATH", &config.dist)
            .env("HOT_DEPLOY", if config.hot { "true" } else { "false" })
            .env("CDK_DISABLE_VERSION_CHECK", "1")
            .env("CDK_DISABLE_CLI_TELEMETRY", "true");
        let running = crate::group::Group::spawn(command).context("running the CDK CLI")?;
        logs(
            "sandbox",
            &format!("cdk {} (process group {})", args[0], running.id()),
        );
        let output = running.output().await.context("running the CDK CLI")?;
        anyhow::ensure!(
            output.status.success(),
            "cdk {} failed:\n{}{}",
            args[0],
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The stack's name: `STACK_NAME` (as the CDK app reads it), else the contract's default.
pub fn stack_name() -> String {
    std::env::var("STACK_NAME")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_STACK_NAME.to_owned())
}

/// The outputs file `cdk deploy --outputs-file` would write, with the real local API endpoint
/// (moto ignores stages, so its own is wrong), the edge as the AWS endpoint, and the names a
/// deploy's own outputs file may lack (a `cdklocal deploy` without `--outputs-file`) read from
/// the deployed functions' environment.
fn outputs(deployed: &Deployed, cdk_outputs: &Path, edge_url: &str) -> StackOutputs {
    let stack = stack_name();
    let mut outputs = std::fs::read_to_string(cdk_outputs)
        .ok()
        .and_then(|text| StackOutputs::parse(&text, Some(&stack)).ok())
        .unwrap_or_else(|| StackOutputs {
            stack,
            values: Default::default(),
        });
    // CDK's own RestApi output (`ApiEndpoint<hash>`) holds moto's stageless URL: drop it.
    outputs
        .values
        .retain(|key, _| !key.starts_with("ApiEndpoint"));
    let stage = deployed.routes.first().map_or("prod", |r| r.stage.as_str());
    let mut set = |key: &str, value: String| outputs.values.insert(key.to_owned(), value);
    set(key::API_ENDPOINT, format!("{edge_url}/{stage}/"));
    set(key::ENVIRONMENT, "Sandbox".to_owned());
    set(key::AWS_ENDPOINT_URL, edge_url.to_owned());
    if let Some(route) = deployed.routes.first() {
        outputs
            .values
            .entry(key::API_NAME.to_owned())
            .or_insert_with(|| route.api_name.clone());
    }
    for (var, key) in [
        ("STREAM_NAME", key::STREAM),
        ("TABLE_NAME", key::TABLE),
        ("METRIC_NAMESPACE", key::NAMESPACE),
    ] {
        if outputs.get(key).is_err() {
            if let Some(value) = deployed
                .functions
                .iter()
                .find_map(|f| f.environment.get(var))
            {
                outputs.values.insert(key.to_owned(), value.clone());
            }
        }
    }
    // Lambda's metrics are by function name: each role's function, when the deploy did not
    // name it (a stack deployed without these outputs).
    for (role, key) in contract::lambda::ROLES {
        if outputs.get(key).is_err() {
            if let Some(function) = deployed
                .functions
                .iter()
                .find(|f| f.name.to_ascii_lowercase().contains(role))
            {
                outputs.values.insert(key.to_owned(), function.name.clone());
            }
        }
    }
    outputs
}
