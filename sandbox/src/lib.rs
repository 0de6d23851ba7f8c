//! sandbox: the whole pipeline on one machine, without Docker or an AWS account.
//!
//! In progress (issue 6). What exists:
//! - [`edge`]: one port for every AWS API call, forwarded to moto, with CloudWatch's rpcv2Cbor
//!   protocol translated to moto's JSON protocol, so the current Rust SDK works unmodified;
//! - [`moto`]: moto started from the project's venv on a free loopback port, stopped by PID.
//!
//! Still to come: the Lambda runtime API and workers, the event source mapping pollers, API
//! Gateway on the edge, `sandbox up` and `make bench`.

pub mod edge;
pub mod moto;
