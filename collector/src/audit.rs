//! `collector audit`: checks the run's items in the table against the requests loadgen saw
//! accepted, and names the ones that never arrived.
//!
//! The metrics count what downstream measured; a request measured twice (a batch delivered to
//! downstream again) and one lost can cancel out in a count. The table holds each request once,
//! keyed by its id, so asking it for every accepted id (BatchGetItem, 100 keys a call, only the
//! key projected) tells exactly which were stored. The accepted ids come from the run file
//! (`accepted_ids`, run file version 2).

use std::future::Future;
use std::time::Duration;

use contract::runfile::RunFile;
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

/// What one lookup answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Ids that are in the table.
    pub present: Vec<String>,
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
    /// Of those, in the table.
    pub stored: u64,
    /// Accepted and not in the table.
    pub lost: u64,
    /// Their ids, in the run's order.
    pub lost_ids: Vec<String>,
}

impl Audit {
    /// Whether every accepted request is in the table.
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

/// Looks up every accepted id of `run` in `table`.
pub async fn audit<T: ItemKeys>(run: &RunFile, table: &T) -> Result<Audit, AuditError> {
    let ids = run
        .accepted_ids
        .as_ref()
        .ok_or(AuditError::NoIds(run.version))?;
    let run_id = run.run.run_id.as_str();
    let mut accepted = 0u64;
    let mut lost_ids = Vec::new();
    let mut chunk = Vec::with_capacity(MAX_KEYS);
    let mut all = ids.ids(run_id).peekable();
    while all.peek().is_some() {
        chunk.clear();
        chunk.extend(all.by_ref().take(MAX_KEYS));
        accepted += chunk.len() as u64;
        let present = lookup_all(table, &chunk).await?;
        lost_ids.extend(chunk.iter().filter(|id| !present.contains(*id)).cloned());
    }
    Ok(Audit {
        run_id: run_id.to_owned(),
        accepted,
        stored: accepted - lost_ids.len() as u64,
        lost: lost_ids.len() as u64,
        lost_ids,
    })
}

/// The ids of `chunk` that are in the table, asking again for unprocessed keys.
async fn lookup_all<T: ItemKeys>(
    table: &T,
    chunk: &[String],
) -> Result<std::collections::HashSet<String>, AuditError> {
    let mut present = std::collections::HashSet::with_capacity(chunk.len());
    let mut pending = chunk.to_vec();
    let mut backoff = UNPROCESSED_BACKOFF.iter();
    loop {
        let found = table.lookup(&pending).await?;
        present.extend(found.present);
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

/// The audit in words: one line, and the first lost ids.
pub fn summary(audit: &Audit) -> String {
    let mut text = format!(
        "audit of run {}: {} accepted, {} stored, {} lost",
        audit.run_id, audit.accepted, audit.stored, audit.lost
    );
    if !audit.lost_ids.is_empty() {
        const SHOWN: usize = 20;
        let shown: Vec<&str> = audit
            .lost_ids
            .iter()
            .take(SHOWN)
            .map(String::as_str)
            .collect();
        text.push_str(&format!(": {}", shown.join(", ")));
        if audit.lost_ids.len() > SHOWN {
            text.push_str(&format!(" and {} more", audit.lost_ids.len() - SHOWN));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use contract::runfile::AcceptedIds;

    use super::*;

    /// A table holding `stored`; leaves the last key of each of the first `stingy` calls
    /// unprocessed.
    struct Fake {
        stored: HashSet<String>,
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
                    .cloned()
                    .collect(),
                unprocessed,
            })
        }
    }

    fn run(ids: AcceptedIds) -> RunFile {
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
        let ids = AcceptedIds {
            ranges: vec![[0, 0, 150], [1, 0, 100]],
        };
        let mut stored: HashSet<String> = ids.ids("r").collect();
        stored.remove("r-0-149");
        stored.remove("r-1-7");
        stored.insert("r-9-9".into()); // not accepted: not the audit's concern
        let table = Fake {
            stored,
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
        assert!(summary(&audit).ends_with("2 lost: r-0-149, r-1-7"));
    }

    #[tokio::test]
    async fn a_version_1_run_file_cannot_be_audited() {
        let mut file = run(AcceptedIds::default());
        file.version = 1;
        file.accepted_ids = None;
        let table = Fake {
            stored: HashSet::new(),
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
        let ids = AcceptedIds {
            ranges: vec![[0, 0, 3]],
        };
        let err = audit(&run(ids), &Never).await.unwrap_err();
        assert!(err.to_string().contains("3 keys unprocessed"), "{err}");
    }
}
