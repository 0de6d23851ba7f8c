//! `--hdr-log FILE`: request durations (`http_req_duration`, µs) as an HdrHistogram interval log,
//! one interval per second of the run: the text format wrt2, HdrHistogram's own tools and
//! plotters read (a `#[StartTime: ...]` header, a legend, then per interval its start offset,
//! length, maximum and the histogram, compressed and base64-encoded: HdrHistogram's V2 encoding
//! with DEFLATE). Each second is written within about two seconds of its end, so the file can be
//! followed while the run goes on; memory holds only the seconds not yet written.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use crate::trends::Trends;

/// An open interval log.
pub struct HdrLog {
    file: std::io::BufWriter<std::fs::File>,
    serializer: V2DeflateSerializer,
    /// The run's start, which the intervals' offsets count from.
    origin: Instant,
    /// Why the log stopped, once a write failed: nothing more is written, and the run ends
    /// saying so.
    broken: Option<String>,
}

impl HdrLog {
    /// Creates `path` and writes the log's header for a run that started at `origin`
    /// (`started`, the wall clock's reading then).
    pub fn create(path: &Path, origin: Instant, started: SystemTime) -> std::io::Result<HdrLog> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment("[Histogram log format version 1.3]")
            .add_comment("[loadgen: http_req_duration, microseconds, one interval a second]")
            .with_start_time(started)
            .begin_log_with(&mut file, &mut serializer)?;
        writeln!(
            file,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HdrLog {
            file,
            serializer,
            origin,
            broken: None,
        })
    }

    /// Writes the second that started at `second`.
    fn write(&mut self, second: Instant, histogram: &Histogram<u64>) -> std::io::Result<()> {
        let mut log =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.file, &mut self.serializer)?;
        log.write_histogram(
            histogram,
            second.saturating_duration_since(self.origin),
            Duration::from_secs(1),
            None,
        )
        .map_err(|e| std::io::Error::other(format!("{e:?}")))
    }

    /// Writes the seconds of `trends` that started before `before`.
    pub fn write_before(&mut self, trends: &Trends, before: Instant) -> std::io::Result<()> {
        for (second, histogram) in trends.take_seconds_before(before) {
            self.write(second, &histogram)?;
        }
        self.file.flush()
    }

    /// Writes every second that is left and closes the log; the error is why the log is not
    /// whole.
    pub fn finish(mut self, trends: &Trends) -> Result<(), String> {
        if let Some(broken) = self.broken {
            return Err(broken);
        }
        self.write_before(
            trends,
            Instant::now() + Duration::from_secs(3600 * 24 * 365),
        )
        .map_err(|e| e.to_string())
    }
}

/// Writes each second of `trends` into `log` about two seconds after it ended, until aborted.
pub async fn follow(log: Arc<tokio::sync::Mutex<Option<HdrLog>>>, trends: Arc<Trends>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let mut log = log.lock().await;
        if let Some(open) = log.as_mut().filter(|open| open.broken.is_none()) {
            if let Err(error) = open.write_before(&trends, Instant::now() - Duration::from_secs(2))
            {
                eprintln!("loadgen: --hdr-log: {error}; the log stops here");
                open.broken = Some(format!("{error} during the run; the log stops there"));
            }
        }
    }
}
