//! Lambda's `UpdateFunctionConfiguration` for the functions the sandbox runs (`PUT
//! /2015-03-31/functions/{name}/configuration`): moto keeps the configuration, so
//! `GetFunctionConfiguration` answers with what was set; a `MemorySize` the call sets also
//! reaches the function's workers once moto has taken it ([`FunctionHost::set_memory`]: the CPU
//! share and memory limit at once, each worker replaced by one of the new size the next time it
//! is idle, as Lambda moves to new execution environments). A size Lambda refuses (not a whole
//! number from 128 to 10,240) gets Lambda's 400 and reaches neither.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::invoke::{error, percent_decode, Functions};
use crate::lambda::FunctionHost;

const PREFIX: &str = "/2015-03-31/functions/";
const SUFFIX: &str = "/configuration";
/// Lambda's smallest and largest memory sizes, MB.
pub const MEMORY_MB: std::ops::RangeInclusive<u64> = 128..=10_240;

/// A memory size to apply once moto has taken the call.
pub struct MemoryUpdate {
    host: Arc<FunctionHost>,
    memory_mb: u32,
}

impl MemoryUpdate {
    /// Applies the size to the function's workers; `Err` is the answer to give instead of
    /// moto's (the sandbox could not set the limits).
    pub fn apply(self) -> Result<(), Box<Response<Full<Bytes>>>> {
        self.host.set_memory(self.memory_mb).map_err(|reason| {
            Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                &format!(
                    "{}: the memory size {} MB could not be applied: {reason}",
                    self.host.name(),
                    self.memory_mb
                ),
            ))
        })
    }
}

/// For an `UpdateFunctionConfiguration` call to a function the sandbox runs: `Ok(Some)` when it
/// sets a memory size, `Ok(None)` when it does not (or is another call), `Err` with Lambda's
/// answer when the size is one Lambda refuses.
pub fn memory_update(
    functions: &Functions,
    method: &http::Method,
    path: &str,
    body: &[u8],
) -> Result<Option<MemoryUpdate>, Box<Response<Full<Bytes>>>> {
    if method != http::Method::PUT {
        return Ok(None);
    }
    let Some(name) = path
        .strip_prefix(PREFIX)
        .and_then(|p| p.strip_suffix(SUFFIX))
        .filter(|n| !n.is_empty() && !n.contains('/'))
    else {
        return Ok(None);
    };
    let Some(host) = functions.host(&percent_decode(name)) else {
        return Ok(None);
    };
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(size) = json.get("MemorySize") else {
        return Ok(None);
    };
    let memory_mb = size
        .as_u64()
        .filter(|mb| MEMORY_MB.contains(mb))
        .ok_or_else(|| refused(size))?;
    Ok(Some(MemoryUpdate {
        host,
        memory_mb: memory_mb as u32,
    }))
}

/// Lambda's answer to a memory size out of its range.
fn refused(size: &serde_json::Value) -> Box<Response<Full<Bytes>>> {
    let bound = match size.as_f64() {
        Some(mb) if mb > *MEMORY_MB.end() as f64 => {
            format!("less than or equal to {}", MEMORY_MB.end())
        }
        Some(mb) if mb >= *MEMORY_MB.start() as f64 => "a whole number".to_owned(),
        _ => format!("greater than or equal to {}", MEMORY_MB.start()),
    };
    Box::new(error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{size}' at 'memorySize' failed to satisfy \
             constraint: Member must have value {bound}"
        ),
    ))
}
