//! sandbox: the whole pipeline on one machine, without Docker or an AWS account.
//!
//! - [`edge`]: one port for every AWS API call, forwarded to moto, with CloudWatch's rpcv2Cbor
//!   protocol translated to moto's JSON protocol, so the current Rust SDK works unmodified;
//! - [`moto`]: moto started from the project's venv on a free loopback port, stopped by PID;
//! - [`lambda`]: the Lambda data plane: worker processes running the real `bootstrap` binaries, each
//!   behind its own Runtime API server, with timeouts and crashes handled as Lambda does.
//!
//! - [`pollers`]: event source mappings for Kinesis and DynamoDB streams (in-order batches, partial
//!   batch failures, bisect on error, retries and record age as the mapping says, then discarded,
//!   logged and recorded in the mapping's on-failure destination), over [`awsjson`] calls to moto;
//! - [`apigateway`]: REST proxy integrations served on the edge under the stage path;
//! - [`invoke`]: Lambda's Invoke API on the edge, for the functions the sandbox runs;
//! - [`publish`]: Lambda's own metrics (`AWS/Lambda`, `LambdaInsights`) into moto's
//!   CloudWatch, once a second;
//! - [`quota`]: the profiles: the default (fast, no quotas) or AWS's polling cadence and
//!   quotas, enforced at the edge, in the pollers and in the functions' hosts.
//!
//! - [`discover`]: what is deployed (functions, code, mappings, routes), read from moto, and each
//!   function's code zip unpacked by [`unzip`];
//! - [`up`]: `sandbox up`, all of the above together, with the CDK app deployed through the edge;
//! - [`instance`]: one sandbox per state folder, and `sandbox down` signalling only it;
//! - [`group`]: a child with children of its own (the CDK CLI), stopped as a whole;
//! - [`ShutdownTrigger`] and [`Shutdown`]: how every part that runs until the end is told to
//!   stop.

pub mod apigateway;
pub mod awsjson;
pub mod configure;
pub mod discover;
pub mod edge;
pub mod group;
pub mod instance;
pub mod invoke;
pub mod lambda;
pub mod moto;
pub mod pollers;
pub mod publish;
pub mod quota;
mod shutdown;
mod unzip;
pub mod up;

pub use shutdown::{Shutdown, ShutdownTrigger};

/// Makes a child process die with the sandbox (Linux `PR_SET_PDEATHSIG`), so that nothing it
/// started outlives it, even when it is killed without the chance to stop them.
pub(crate) fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing and touches no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
