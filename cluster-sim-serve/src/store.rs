//! Check history and the maintenance lock in SQLite, so both survive a restart. Old results
//! go by age and by count per check.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::error::ServeError;
use super::status::Status;

/// How long results are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Results older than this go.
    pub max_age: Duration,
    /// At most this many results per check are kept (the newest).
    pub max_per_check: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_per_check: 10_000,
        }
    }
}

/// One node's part of a check result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeResult {
    /// Node name.
    pub node: String,
    /// Its status.
    pub status: Status,
    /// The command's exit code, when it ended by itself.
    pub code: Option<i64>,
    /// Whether the deadline passed.
    pub timed_out: bool,
    /// The value an output parser found.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    /// Why the command could not run, when it could not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The tail of stdout and stderr.
    pub output: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// One run of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Row id (increasing).
    pub id: i64,
    /// Check name.
    pub check: String,
    /// When it finished, in Unix milliseconds.
    pub at_ms: i64,
    /// The worst status of its nodes.
    pub status: Status,
    /// Whether the status differs from the previous result's.
    pub changed: bool,
    /// Whether it was asked for (`POST .../run`) rather than scheduled.
    pub forced: bool,
    /// One line: the worst node and what it said.
    pub summary: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Per node.
    pub nodes: Vec<NodeResult>,
}

/// The maintenance lock: while held, scheduled checks don't run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Why.
    pub reason: String,
    /// Since when, in Unix milliseconds.
    pub since_ms: i64,
}

/// Now in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The database. One connection behind a mutex: writes are a few a second at most.
pub struct Store {
    conn: Mutex<Connection>,
    path: String,
    retention: Retention,
    inserts: Mutex<u64>,
}

/// Results between prunes: pruning after every insert would scan for nothing.
const PRUNE_EVERY: u64 = 200;

impl Store {
    /// Opens (or makes) the database.
    pub fn open(path: &Path, retention: Retention) -> Result<Store, ServeError> {
        let name = path.display().to_string();
        let db = |source| ServeError::Db {
            path: name.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS results (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 check_name TEXT NOT NULL,
                 at_ms INTEGER NOT NULL,
                 status TEXT NOT NULL,
                 changed INTEGER NOT NULL,
                 forced INTEGER NOT NULL,
                 summary TEXT NOT NULL,
                 duration_ms INTEGER NOT NULL,
                 nodes TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS results_by_check ON results (check_name, id);
             CREATE TABLE IF NOT EXISTS maintenance (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 reason TEXT NOT NULL,
                 since_ms INTEGER NOT NULL
             );",
        )
        .map_err(db)?;
        let store = Store {
            conn: Mutex::new(conn),
            path: name,
            retention,
            inserts: Mutex::new(0),
        };
        store.prune()?;
        Ok(store)
    }

    fn err(&self, source: rusqlite::Error) -> ServeError {
        ServeError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves a result; fills in its id.
    pub fn insert(&self, r: &mut CheckResult) -> Result<(), ServeError> {
        let nodes = serde_json::to_string(&r.nodes).unwrap_or_else(|_| "[]".into());
        {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO results (check_name, at_ms, status, changed, forced, summary, duration_ms, nodes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    r.check,
                    r.at_ms,
                    r.status.as_str(),
                    r.changed,
                    r.forced,
                    r.summary,
                    r.duration_ms as i64,
                    nodes
                ],
            )
            .map_err(|e| self.err(e))?;
            r.id = conn.last_insert_rowid();
        }
        let due = {
            let mut n = self.inserts.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            if *n >= PRUNE_EVERY {
                *n = 0;
                true
            } else {
                false
            }
        };
        if due {
            self.prune()?;
        }
        Ok(())
    }

    /// Removes results past the retention.
    pub fn prune(&self) -> Result<(), ServeError> {
        let cutoff = now_ms() - self.retention.max_age.as_millis() as i64;
        let conn = self.conn();
        conn.execute("DELETE FROM results WHERE at_ms < ?1", params![cutoff])
            .map_err(|e| self.err(e))?;
        // Per check, everything older than its newest `max_per_check`.
        conn.execute(
            "DELETE FROM results WHERE id IN (
                 SELECT id FROM (
                     SELECT id, ROW_NUMBER() OVER (PARTITION BY check_name ORDER BY id DESC) AS n
                     FROM results
                 ) WHERE n > ?1
             )",
            params![self.retention.max_per_check],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CheckResult> {
        let status: String = row.get(3)?;
        let nodes: String = row.get(8)?;
        Ok(CheckResult {
            id: row.get(0)?,
            check: row.get(1)?,
            at_ms: row.get(2)?,
            status: status.parse().unwrap_or(Status::Unknown),
            changed: row.get(4)?,
            forced: row.get(5)?,
            summary: row.get(6)?,
            duration_ms: row.get::<_, i64>(7)?.max(0) as u64,
            nodes: serde_json::from_str(&nodes).unwrap_or_default(),
        })
    }

    /// A check's newest results, newest first.
    pub fn history(&self, check: &str, limit: u32) -> Result<Vec<CheckResult>, ServeError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT id, check_name, at_ms, status, changed, forced, summary, duration_ms, nodes
                 FROM results WHERE check_name = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![check, limit], Self::row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// A check's newest result and when its status last changed (Unix ms).
    pub fn latest(&self, check: &str) -> Result<Option<(CheckResult, i64)>, ServeError> {
        let Some(last) = self.history(check, 1)?.pop() else {
            return Ok(None);
        };
        let conn = self.conn();
        let since: Option<i64> = conn
            .query_row(
                "SELECT MAX(at_ms) FROM results WHERE check_name = ?1 AND changed = 1",
                params![check],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        let since = since.unwrap_or(last.at_ms);
        Ok(Some((last, since)))
    }

    /// The maintenance lock, if held.
    pub fn maintenance(&self) -> Result<Option<Maintenance>, ServeError> {
        self.conn()
            .query_row(
                "SELECT reason, since_ms FROM maintenance WHERE id = 1",
                [],
                |r| {
                    Ok(Maintenance {
                        reason: r.get(0)?,
                        since_ms: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Takes the lock; `false` when it is already held.
    pub fn take_maintenance(&self, m: &Maintenance) -> Result<bool, ServeError> {
        let n = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO maintenance (id, reason, since_ms) VALUES (1, ?1, ?2)",
                params![m.reason, m.since_ms],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Releases the lock; `false` when it was not held.
    pub fn release_maintenance(&self) -> Result<bool, ServeError> {
        let n = self
            .conn()
            .execute("DELETE FROM maintenance WHERE id = 1", [])
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(check: &str, at_ms: i64, status: Status, changed: bool) -> CheckResult {
        CheckResult {
            id: 0,
            check: check.into(),
            at_ms,
            status,
            changed,
            forced: false,
            summary: "s".into(),
            duration_ms: 3,
            nodes: vec![],
        }
    }

    #[test]
    fn keeps_history_across_opens_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let keep3 = Retention {
            max_age: Duration::from_secs(3600),
            max_per_check: 3,
        };
        {
            let s = Store::open(&path, keep3).unwrap();
            let now = now_ms();
            for (i, st) in [Status::Ok, Status::Ok, Status::Error, Status::Error]
                .into_iter()
                .enumerate()
            {
                s.insert(&mut result("a", now + i as i64, st, i == 2))
                    .unwrap();
            }
            // Older than the retention: goes at the next prune.
            s.insert(&mut result("b", now - 7_200_000, Status::Ok, true))
                .unwrap();
            assert!(s
                .take_maintenance(&Maintenance {
                    reason: "upgrade".into(),
                    since_ms: now
                })
                .unwrap());
            assert!(!s
                .take_maintenance(&Maintenance {
                    reason: "again".into(),
                    since_ms: now
                })
                .unwrap());
        }
        let s = Store::open(&path, keep3).unwrap();
        let h = s.history("a", 10).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].status, Status::Error);
        let (last, since) = s.latest("a").unwrap().unwrap();
        assert_eq!(since, h[1].at_ms);
        assert_eq!(last.id, h[0].id);
        assert!(s.history("b", 10).unwrap().is_empty());
        assert_eq!(s.maintenance().unwrap().unwrap().reason, "upgrade");
        assert!(s.release_maintenance().unwrap());
        assert!(!s.release_maintenance().unwrap());
    }
}
