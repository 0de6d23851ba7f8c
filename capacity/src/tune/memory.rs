//! Reading and setting a function's memory size: Lambda's `GetFunctionConfiguration` and
//! `UpdateFunctionConfiguration`, the same calls on AWS and on the sandbox's Lambda API.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::LastUpdateStatus;

/// How long an update may stay `InProgress` before tuning gives up.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(120);
/// Time between reads of an update's status.
const UPDATE_POLL: Duration = Duration::from_secs(1);

/// Where functions' memory sizes are read and set.
pub trait MemoryControl {
    /// The function's memory size, MB.
    fn memory_mb(&self, function: &str) -> impl Future<Output = anyhow::Result<u32>>;
    /// Sets the function's memory size, MB, and returns once the function runs with it.
    fn set_memory_mb(&self, function: &str, mb: u32) -> impl Future<Output = anyhow::Result<()>>;
}

/// The function's configuration (`GetFunctionConfiguration`), its error in one line.
async fn configuration(
    client: &aws_sdk_lambda::Client,
    function: &str,
) -> anyhow::Result<GetFunctionConfigurationOutput> {
    client
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", contract::one_line(&e)))
        .with_context(|| format!("reading {function}'s configuration"))
}

impl MemoryControl for aws_sdk_lambda::Client {
    async fn memory_mb(&self, function: &str) -> anyhow::Result<u32> {
        let configuration = configuration(self, function).await?;
        let mb = configuration
            .memory_size
            .with_context(|| format!("{function}'s configuration has no MemorySize"))?;
        Ok(u32::try_from(mb)?)
    }

    async fn set_memory_mb(&self, function: &str, mb: u32) -> anyhow::Result<()> {
        self.update_function_configuration()
            .function_name(function)
            .memory_size(i32::try_from(mb)?)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", contract::one_line(&e)))
            .with_context(|| format!("setting {function} to {mb} MB"))?;
        // Lambda applies the change in the background: the function runs with the new size once
        // the update is no longer in progress.
        let started = Instant::now();
        loop {
            let configuration = configuration(self, function).await?;
            match configuration.last_update_status {
                Some(LastUpdateStatus::InProgress) => {}
                Some(LastUpdateStatus::Failed) => anyhow::bail!(
                    "setting {function} to {mb} MB failed: {}",
                    configuration.last_update_status_reason.unwrap_or_default()
                ),
                _ => return Ok(()),
            }
            anyhow::ensure!(
                started.elapsed() < UPDATE_TIMEOUT,
                "setting {function} to {mb} MB: still in progress after {} s",
                UPDATE_TIMEOUT.as_secs()
            );
            tokio::time::sleep(UPDATE_POLL).await;
        }
    }
}
