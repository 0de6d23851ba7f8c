//! `collector audit`: checks the run's items in the table against the requests loadgen saw
//! accepted, and names the ones that never arrived.
//!
//! The metrics count what downstream measured; a request measured twice (a batch delivered to
//! downstream again) and one lost can cancel out in a count. The table holds each request once,
//! keyed by its id, so asking it for every accepted id (BatchGetItem, 100 keys a call, the key
//! and `received_at` projected) tells exactly which were stored. The accepted ids come from the
//! run file (`accepted_ids`, run file version 2).
//!
//! An item counts as this run's only when upstream received it within the run's window (give
//! or take [`contract::runfile::CLOCK_SLACK_MS`]): an item of the same id received at another
//! time belongs to another run that used the same run id, and is counted as `stale`, never as
//! stored. The requests that went out and were not accepted (run file version 5) are looked up
//! too: those in the table were written by the API although its answer was an error or never
//! came, which explains a pipeline count above the accepted one.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use contract::runfile::{RunFile, RunInfo};
use serde::Serialize;

/// Most keys one BatchGetItem call takes.
pub const MAX_KEYS: usize = 100;

/// Waits before asking again for keys the table left unprocessed (then the audit fails).
pub const UNPROCESSED_BACKOFF: [Duration; 6] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
];

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DynamoDB BatchGetItem failed: {0}")]
pub struct LookupError(pub String);

/// An item the table holds: its id and when upstream received its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The item's id.
    pub id: String,
    /// Its `received_at`, epoch ms (`None` when the item lacks it).
    pub received_at_ms: Option<i64>,
}

/// What one lookup answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Items that are in the table.
    pub present: Vec<Stored>,
    /// Ids the table did not look up this time (to ask again).
    pub unprocessed: Vec<String>,
}

/// BatchGetItem by id, as a small trait: the SDK implements it, tests fake it.
pub trait ItemKeys: Send + Sync {
    /// Looks up at most [`MAX_KEYS`] distinct ids.
    fn lookup(&self, ids: &[String]) -> impl Future<Output = Result<Found, LookupError>> + Send;
}

/// The audit's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// The run audited.
    pub run_id: String,
    /// Requests the API accepted (ids in the run file).
    pub accepted: u64,
    /// Of those, in the table, received within the run's window.
    pub stored: u64,
    /// Accepted and not in the table as this run's.
    pub lost: u64,
    /// Their ids, in the run's order.
    pub lost_ids: Vec<String>,
    /// Of the lost, those whose id the table holds from another time: an item received outside
    /// this run's window, so another run used this run id (and these requests may never have
    /// reached this stack).
    pub stale: u64,
    /// Their ids.
    pub stale_ids: Vec<String>,
    /// Requests sent and not accepted (an error answer, a timeout, cut off) that the table holds
    /// all the same: the API wrote them and its answer was lost. `None` for run files before
    /// version 5, which do not list them.
    pub unaccepted_stored: Option<u64>,
    /// Their ids.
    pub unaccepted_stored_ids: Vec<String>,
}

impl Audit {
    /// Whether every accepted request is in the table as this run's.
    pub fn complete(&self) -> bool {
        self.lost == 0
    }
}

/// Why an audit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The run file has no ids (version 1).
    #[error(
        "the run file (version {0}) has no accepted ids; run file version 2 (this loadgen) has them"
    )]
    NoIds(u32),
    /// The table could not be read.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The table kept leaving keys unprocessed.
    #[error("DynamoDB left {0} keys unprocessed after every retry")]
    Unprocessed(usize),
}

/// How a set of ids stands in the table.
#[derive(Debug, Default)]
struct Tally {
    count: u64,
    /// In the table, received within the run's window.
    fresh: Vec<String>,
    /// Not in the table as this run's.
    missing: Vec<String>,
    /// Of the missing, in the table from another time.
    stale: Vec<String>,
}

/// Looks up every id of `ids` in `table`, 100 at a time.
async fn tally<T: ItemKeys>(
    ids: impl Iterator<Item = String>,
    run: &RunInfo,
    table: &T,
) -> Result<Tally, AuditError> {
    let mut tally = Tally::default();
    let mut chunk = Vec::with_capacity(MAX_KEYS);
    let mut all = ids.peekable();
    while all.peek().is_some() {
        chunk.clear();
        chunk.extend(all.by_ref().take(MAX_KEYS));
        tally.count += chunk.len() as u64;
        let present = lookup_all(table, &chunk).await?;
        for id in chunk.drain(..) {
            match present.get(&id) {
                Some(received) if received.is_some_and(|at| run.holds(at)) => tally.fresh.push(id),
                Some(_) => {
                    tally.stale.push(id.clone());
                    tally.missing.push(id);
                }
                None => tally.missing.push(id),
            }
        }
    }
    Ok(tally)
}

/// Looks up every accepted id of `run` in `table`, and every id it sent and saw refused.
pub async fn audit<T: ItemKeys>(run: &RunFile, table: &T) -> Result<Audit, AuditError> {
    let ids = run
        .accepted_ids
        .as_ref()
        .ok_or(AuditError::NoIds(run.version))?;
    let run_id = run.run.run_id.as_str();
    let accepted = tally(ids.ids(run_id), &run.run, table).await?;
    let unaccepted = match &run.unaccepted_ids {
        Some(ids) => Some(tally(ids.ids(run_id), &run.run, table).await?),
        None => None,
    };
    Ok(Audit {
        run_id: run_id.to_owned(),
        accepted: accepted.count,
        stored: accepted.fresh.len() as u64,
        lost: accepted.missing.len() as u64,
        lost_ids: accepted.missing,
        stale: accepted.stale.len() as u64,
        stale_ids: accepted.stale,
        unaccepted_stored: unaccepted.as_ref().map(|t| t.fresh.len() as u64),
        unaccepted_stored_ids: unaccepted.map(|t| t.fresh).unwrap_or_default(),
    })
}

/// The items of `chunk` that are in the table, by id, asking again for unprocessed keys.
async fn lookup_all<T: ItemKeys>(
    table: &T,
    chunk: &[String],
) -> Result<HashMap<String, Option<i64>>, AuditError> {
    let mut present = HashMap::with_capacity(chunk.len());
    let mut pending = chunk.to_vec();
    let mut backoff = UNPROCESSED_BACKOFF.iter();
    loop {
        let found = table.lookup(&pending).await?;
        present.extend(found.present.into_iter().map(|s| (s.id, s.received_at_ms)));
        if found.unprocessed.is_empty() {
            return Ok(present);
        }
        pending = found.unprocessed;
        match backoff.next() {
            Some(delay) => tokio::time::sleep(*delay).await,
            None => return Err(AuditError::Unprocessed(pending.len())),
        }
    }
}

/// Up to 20 ids, then how many more.
fn some_of(ids: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

impl Audit {
    /// The audit in words: one line, the first lost ids, and what explains them or a count
    /// above the accepted one.
    pub fn summary(&self) -> String {
        let audit = self;
        let mut text = format!(
            "audit of run {}: {} accepted, {} stored, {} lost",
            audit.run_id, audit.accepted, audit.stored, audit.lost
        );
        if !audit.lost_ids.is_empty() {
            text.push_str(&format!(": {}", some_of(&audit.lost_ids)));
        }
        if audit.stale > 0 {
            text.push_str(&format!(
                "; {} of the lost ids hold an item received outside this run's window, so another \
                 run used run id {} and its items cannot stand for this run's: give each run its own \
                 id ({})",
                audit.stale,
                audit.run_id,
                some_of(&audit.stale_ids)
            ));
        }
        if let Some(n @ 1..) = audit.unaccepted_stored {
            text.push_str(&format!(
                "; {n} requests answered with an error (or not at all) reached the table all the \
                 same: the pipeline processed them ({})",
                some_of(&audit.unaccepted_stored_ids)
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use contract::runfile::IdRanges;

    use super::*;

    /// A table holding `stored` (received within the run's window, at 0 ms, unless `stale`);
    /// leaves the last key of each of the first `stingy` calls unprocessed.
    struct Fake {
        stored: HashSet<String>,
        stale: HashSet<String>,
        stingy: Mutex<u32>,
        calls: Mutex<Vec<usize>>,
    }

    impl ItemKeys for Fake {
        async fn lookup(&self, ids: &[String]) -> Result<Found, LookupError> {
            assert!(ids.len() <= MAX_KEYS);
            self.calls.lock().unwrap().push(ids.len());
            let mut stingy = self.stingy.lock().unwrap();
            let (asked, unprocessed) = if *stingy > 0 && ids.len() > 1 {
                *stingy -= 1;
                (&ids[..ids.len() - 1], ids[ids.len() - 1..].to_vec())
            } else {
                (ids, Vec::new())
            };
            Ok(Found {
                present: asked
                    .iter()
                    .filter(|id| self.stored.contains(*id))
                    .map(|id| Stored {
                        id: id.clone(),
                        received_at_ms: Some(if self.stale.contains(id) { -60_000 } else { 0 }),
                    })
                    .collect(),
                unprocessed,
            })
        }
    }

    fn run(ids: IdRanges) -> RunFile {
        let text = r#"{"version":2,"run":{"run_id":"r","endpoint":"http://x/","executor":"constant-vus",
            "start_ms":0,"end_ms":1,"vus_max":2,"requests_sent":0,"requests_accepted":0,
            "failures":{},"dropped_iterations":0},"metrics":{},
            "histogram":{"unit":"us","significant_figures":3,"buckets":[]},"timeline":[]}"#;
        let mut file = RunFile::from_json(text).unwrap();
        file.accepted_ids = Some(ids);
        file
    }

    #[tokio::test(start_paused = true)]
    async fn names_every_accepted_id_missing_from_the_table() {
        let ids = IdRanges {
            ranges: vec![[0, 0, 150], [1, 0, 100]],
        };
        let mut stored: HashSet<String> = ids.ids("r").collect();
        stored.remove("r-0-149");
        stored.remove("r-1-7");
        stored.insert("r-9-9".into()); // not accepted: not the audit's concern
        let table = Fake {
            stored,
            stale: HashSet::new(),
            stingy: Mutex::new(2),
            calls: Mutex::new(Vec::new()),
        };
        let audit = audit(&run(ids), &table).await.unwrap();
        assert_eq!((audit.accepted, audit.stored, audit.lost), (250, 248, 2));
        assert_eq!(audit.lost_ids, ["r-0-149", "r-1-7"]);
        assert!(!audit.complete());
        assert_eq!(
            *table.calls.lock().unwrap(),
            [100, 1, 100, 1, 50],
            "100 keys a call; unprocessed keys asked again"
        );
        assert!(audit.summary().ends_with("2 lost: r-0-149, r-1-7"));
        assert_eq!(audit.stale, 0);
        assert_eq!(audit.unaccepted_stored, None, "a version 2 file lists none");
    }

    #[tokio::test]
    async fn an_item_of_another_run_with_the_same_id_is_not_this_runs() {
        // The run's requests went elsewhere; an earlier run with the same run id left items
        // with these ids, received a minute before this run started.
        let ids = IdRanges {
            ranges: vec![[0, 0, 40]],
        };
        let stored: HashSet<String> = ids.ids("r").collect();
        let table = Fake {
            stale: stored.clone(),
            stored,
            stingy: Mutex::new(0),
            calls: Mutex::new(Vec::new()),
        };
        let audit = audit(&run(ids), &table).await.unwrap();
        assert_eq!(
            (audit.accepted, audit.stored, audit.lost, audit.stale),
            (40, 0, 40, 40)
        );
        assert!(!audit.complete());
        let said = audit.summary();
        assert!(
            said.contains("40 of the lost ids hold an item received outside this run's window"),
            "{said}"
        );
    }

    #[tokio::test]
    async fn requests_answered_with_an_error_that_reached_the_table_are_named() {
        let mut file = run(IdRanges {
            ranges: vec![[0, 0, 3], [0, 4, 6]],
        });
        file.unaccepted_ids = Some(IdRanges {
            ranges: vec![[0, 3, 4], [0, 6, 8]],
        });
        let stored: HashSet<String> = [
            "r-0-0", "r-0-1", "r-0-2", "r-0-3", "r-0-4", "r-0-5", "r-0-7",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let table = Fake {
            stored,
            stale: HashSet::new(),
            stingy: Mutex::new(0),
            calls: Mutex::new(Vec::new()),
        };
        let audit = audit(&file, &table).await.unwrap();
        assert!(audit.complete());
        assert_eq!(audit.unaccepted_stored, Some(2));
        assert_eq!(audit.unaccepted_stored_ids, ["r-0-3", "r-0-7"]);
        let said = audit.summary();
        assert!(
            said.ends_with("2 requests answered with an error (or not at all) reached the table all the same: the pipeline processed them (r-0-3, r-0-7)"),
            "{said}"
        );
    }

    #[tokio::test]
    async fn a_version_1_run_file_cannot_be_audited() {
        let mut file = run(IdRanges::default());
        file.version = 1;
        file.accepted_ids = None;
        let table = Fake {
            stored: HashSet::new(),
            stale: HashSet::new(),
            stingy: Mutex::new(0),
            calls: Mutex::new(Vec::new()),
        };
        let err = audit(&file, &table).await.unwrap_err();
        assert!(err.to_string().contains("version 1"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_table_that_never_answers_every_key_fails_the_audit() {
        struct Never;
        impl ItemKeys for Never {
            async fn lookup(&self, ids: &[String]) -> Result<Found, LookupError> {
                Ok(Found {
                    present: Vec::new(),
                    unprocessed: ids.to_vec(),
                })
            }
        }
        let ids = IdRanges {
            ranges: vec![[0, 0, 3]],
        };
        let err = audit(&run(ids), &Never).await.unwrap_err();
        assert!(err.to_string().contains("3 keys unprocessed"), "{err}");
    }
}
