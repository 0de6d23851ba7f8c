//! capacity: how much load the pipeline takes and which hop gives first; and `tune`, which
//! memory size is cheapest for the speed needed.
//!
//! The search offers the pipeline steps of constant arrival rate (loadgen in this process), each
//! under its own run id, waits until each step has drained (the collector's wait), and judges
//! it: sustained when nothing failed or was lost, the schedule held, the end-to-end p99 stayed
//! within the SLO and the backlog did not keep growing. The rate grows by a factor while steps
//! are sustained, then the interval between the highest sustained and the lowest unsustained
//! rate is halved until it is within the precision, all within a time limit. The hop whose p99
//! grew first and most names the stage that gives first.
//!
//! # Layout
//! - [`opts`]: the flags, validated into a search and a pipeline to search.
//! - [`live_opts`]: the flags naming the pipeline and its drains, shared with `tune`.
//! - [`search`]: the search over any [`search::Pipeline`], and the saturating hop.
//! - [`step`]: one step measured from its run file and export, and judged.
//! - [`live`]: the pipeline itself: loadgen, then the collector's wait.
//! - [`page`]: the verdict line, the step lines and the HTML page.
//! - [`tune`]: the `tune` command: one step per memory size, and the size to pick.

pub mod live;
pub mod live_opts;
pub mod opts;
pub mod page;
pub mod search;
mod step;
pub mod tune;
