//! The AWS subcommands' flags validated into what they run, before anything runs (ripgrep's low
//! arguments into high ones): every check made, every file read, every default and every name
//! from `--outputs` filled in. A failure is the one line a bad flag gets (exit 2); once a
//! configuration exists, only the work itself can fail.

use std::path::PathBuf;

use contract::outputs::key;
use contract::runfile::{RunFile, CLOCK_SLACK_MS};
use contract::threshold::Threshold;

use crate::lambda::Function;
use crate::opts::{apply_outputs, AuditOpts, AwsOpts, WaitOpts};
use crate::push::{RemoteWrite, OUTPUT};
use crate::throttles::Resources;
use crate::wait::WaitConfig;

/// `collector wait`, validated.
#[derive(Debug, Clone)]
pub struct Wait {
    /// Where to reach CloudWatch.
    pub aws: AwsOpts,
    /// Where the export goes (checked writable).
    pub out: PathBuf,
    /// The run file, when one was given.
    pub run: Option<RunFile>,
    /// The run id to wait for.
    pub run_id: String,
    /// The metric namespace.
    pub namespace: String,
    /// The window, the expected count and the wait's timing.
    pub wait: WaitConfig,
    /// Judged on the export once the wait is over.
    pub thresholds: Vec<Threshold>,
    /// Where to push the pipeline's series, when asked.
    pub push: Option<RemoteWrite>,
    /// The functions whose Lambda metrics the export carries.
    pub functions: Vec<Function>,
    /// The stack's resources whose throttle metrics the export carries.
    pub resources: Resources,
}

/// `collector audit`, validated.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Where to reach DynamoDB.
    pub aws: AwsOpts,
    /// The run file (its ids).
    pub run: RunFile,
    /// The table.
    pub table: String,
    /// Where the audit goes, when asked (checked writable).
    pub out: Option<PathBuf>,
}

/// Reads a run file, saying which file was wrong.
pub fn read_run_file(path: &std::path::Path) -> Result<RunFile, String> {
    let text = contract::file::read_text(path)
        .map_err(|e| format!("reading the run file {}: {e}", path.display()))?;
    RunFile::from_json(&text)
        .map_err(|e| format!("{} is not a loadgen run file: {e}", path.display()))
}

/// Refuses a run whose requests went elsewhere than the stack's API (`api`): its table cannot
/// account for them, and an earlier run's items could pass for them.
fn check_endpoint(run: &RunFile, api: &str) -> Result<(), String> {
    if contract::outputs::is_under_api(api, &run.run.endpoint) {
        return Ok(());
    }
    Err(format!(
        "the run's requests went to {}, not to this stack's API {api} (--outputs): its table \
         cannot account for them; pass --any-endpoint if that URL reaches this stack",
        run.run.endpoint
    ))
}

impl WaitOpts {
    /// The validated wait: from the run file when given (its run id, window and accepted
    /// count), else from --run-id, --since and --expected; the namespace and AWS endpoint from
    /// the flags, else --outputs.
    pub fn into_config(mut self) -> Result<Wait, String> {
        let namespace = &mut self.namespace;
        let mut functions: Vec<Function> = self
            .functions
            .iter()
            .map(|name| Function {
                role: name.clone(),
                name: name.clone(),
            })
            .collect();
        let mut resources = Resources::default();
        let run = self.run.as_deref().map(read_run_file).transpose()?;
        let any_endpoint = self.any_endpoint;
        apply_outputs(&mut self.aws, &self.stack, |outputs| {
            if let (Some(run), Ok(api), false) =
                (&run, outputs.get(key::API_ENDPOINT), any_endpoint)
            {
                check_endpoint(run, api)?;
            }
            if namespace.is_none() {
                *namespace = outputs.get(key::NAMESPACE).ok().map(str::to_owned);
            }
            resources = Resources::from_outputs(outputs);
            if functions.is_empty() {
                functions = contract::lambda::ROLES
                    .iter()
                    .filter_map(|(role, output)| {
                        Some(Function {
                            role: (*role).to_owned(),
                            name: outputs.get(output).ok()?.to_owned(),
                        })
                    })
                    .collect();
            }
            Ok(())
        })?;
        contract::file::check_writable(&self.out).map_err(|e| format!("--out {e}"))?;
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if until <= since {
                return Err(format!("--until ({until}) must be after --since ({since})"));
            }
        }
        let push = match self.output.as_deref() {
            None => None,
            Some(OUTPUT) => Some(RemoteWrite::from_env(&|name| std::env::var(name).ok())?),
            Some(other) => return Err(format!("--output {other:?}: the outputs are {OUTPUT}")),
        };
        let (run_id, since_ms, expected) = match &run {
            Some(file) => (
                file.run.run_id.clone(),
                file.run.start_ms - CLOCK_SLACK_MS,
                Some(file.run.requests_accepted),
            ),
            None => (
                self.run_id.ok_or("--run-id or --run is required")?,
                self.since.ok_or("--since is required with --run-id")?,
                self.expected,
            ),
        };
        Ok(Wait {
            aws: self.aws,
            out: self.out,
            run,
            run_id,
            namespace: self
                .namespace
                .unwrap_or_else(|| contract::metrics::NAMESPACE.to_owned()),
            wait: WaitConfig {
                since_ms,
                until_ms: self.until,
                expected,
                poll: self.poll,
                quiet: self.quiet,
                timeout: self.timeout,
                progress: !self.no_progress,
            },
            thresholds: self.thresholds,
            push,
            resources: Resources {
                functions: functions.iter().map(|f| f.name.clone()).collect(),
                ..resources
            },
            functions,
        })
    }
}

impl AuditOpts {
    /// The validated audit: the run file read, the table from the flag or --outputs, --out
    /// writable, and the run's requests sent to the stack's API (unless --any-endpoint).
    pub fn into_config(mut self) -> Result<Audit, String> {
        if let Some(out) = &self.out {
            contract::file::check_writable(out).map_err(|e| format!("--out {e}"))?;
        }
        let run = read_run_file(&self.run)?;
        let (table, any) = (&mut self.table, self.any_endpoint);
        apply_outputs(&mut self.aws, &self.stack, |outputs| {
            if table.is_none() {
                *table = Some(outputs.get(key::TABLE)?.to_owned());
            }
            match outputs.get(key::API_ENDPOINT) {
                Ok(api) if !any => check_endpoint(&run, api),
                _ => Ok(()),
            }
        })?;
        Ok(Audit {
            aws: self.aws,
            run,
            table: self.table.ok_or("--table or --outputs is required")?,
            out: self.out,
        })
    }
}
