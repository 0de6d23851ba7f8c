//! Tuning: which memory size is cheapest for the speed needed? One step per memory size, at one
//! arrival rate, with the size set on the tuned functions through Lambda's
//! `UpdateFunctionConfiguration` (on AWS, or on the sandbox's Lambda API, where it sets the
//! workers' CPU share and memory limit); each step judged as a capacity step is, and priced from
//! Lambda's own metrics of it. The functions are set back to their sizes at the end, also on
//! an error or a signal.
//!
//! - [`opts`]: the flags, checked.
//! - [`memory`]: reading and setting a function's memory size.
//! - [`run`]: the steps.
//! - [`page`]: the table, the recommendation and the HTML page.

pub mod memory;
pub mod opts;
pub mod page;
pub mod run;
