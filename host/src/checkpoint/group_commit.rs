//! Group commit: checkpoints that several jobs write at once share one SQLite transaction, so
//! one `fsync` makes a whole group durable instead of one each in turn behind the store's lock.
//! Whoever finds the connection free leads: it takes every write waiting (its own among them),
//! runs each in a savepoint of one transaction (a write that fails rolls back alone), commits,
//! and hands each writer its result. The others wait for their result or for the connection to
//! come free, and then lead the next group.

use std::sync::{Arc, Condvar, Mutex, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::{CheckpointError, CheckpointInfo};

/// One checkpoint's statements, run inside the group's transaction.
pub(super) type Work = Box<dyn FnOnce(&Connection) -> Result<CheckpointInfo, CheckpointError> + Send>;

type Outcome = Result<CheckpointInfo, CheckpointError>;

#[derive(Default)]
struct Slot {
    result: Mutex<Option<Outcome>>,
    ready: Condvar,
}

/// The writes waiting for the next group.
#[derive(Default)]
pub(super) struct GroupCommit {
    waiting: Mutex<Vec<(Work, Arc<Slot>)>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl GroupCommit {
    /// Runs `work` in the next group committed on `conn`; returns once that group is durable.
    pub(super) fn run(&self, conn: &Mutex<Connection>, work: Work) -> Outcome {
        let slot = Arc::new(Slot::default());
        lock(&self.waiting).push((work, slot.clone()));
        loop {
            if let Some(outcome) = lock(&slot.result).take() {
                return outcome;
            }
            match conn.try_lock() {
                Ok(mut c) => self.lead(&mut c),
                Err(TryLockError::Poisoned(p)) => self.lead(&mut p.into_inner()),
                Err(TryLockError::WouldBlock) => {
                    let result = lock(&slot.result);
                    if result.is_none() {
                        // Woken by the leader that holds this write, or soon after the
                        // connection comes free to lead the next group.
                        drop(
                            slot.ready
                                .wait_timeout(result, Duration::from_millis(1))
                                .unwrap_or_else(std::sync::PoisonError::into_inner),
                        );
                    }
                }
            }
        }
    }

    /// Commits every waiting write as one group.
    fn lead(&self, conn: &mut Connection) {
        let group = std::mem::take(&mut *lock(&self.waiting));
        if group.is_empty() {
            return;
        }
        let (works, slots): (Vec<Work>, Vec<Arc<Slot>>) = group.into_iter().unzip();
        let outcomes = commit(conn, works);
        for (i, slot) in slots.iter().enumerate() {
            let outcome = match &outcomes {
                Ok(each) => each[i].as_ref().map(Clone::clone).map_err(again),
                Err(e) => Err(again(e)),
            };
            *lock(&slot.result) = Some(outcome);
            slot.ready.notify_all();
        }
    }
}

/// Runs the works in savepoints of one transaction and commits it.
fn commit(conn: &mut Connection, works: Vec<Work>) -> Result<Vec<Outcome>, CheckpointError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(works.len());
    for work in works {
        let sp = tx.savepoint()?;
        let outcome = work(&sp);
        if outcome.is_ok() {
            sp.commit()?;
        }
        // A failed write's savepoint rolls back when dropped.
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// The same error again, for each writer of a group (the kinds `kind()` reads are kept).
fn again(e: &CheckpointError) -> CheckpointError {
    match e {
        CheckpointError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
            CheckpointError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        CheckpointError::Sqlite(other) => CheckpointError::Io(std::io::Error::other(other.to_string())),
        CheckpointError::Io(io) => CheckpointError::Io(std::io::Error::new(io.kind(), io.to_string())),
        CheckpointError::Corrupt(s) => CheckpointError::Corrupt(s.clone()),
        CheckpointError::Foreign(a, b) => CheckpointError::Foreign(a.clone(), b.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: i64) -> CheckpointInfo {
        CheckpointInfo {
            id,
            batch_id: id as u64,
            time_ms: 0,
            created_ms: 0,
            bytes: 0,
            write_ms: 0.0,
        }
    }

    #[test]
    fn writes_at_once_share_commits_and_a_failed_one_rolls_back_alone() {
        let conn = Mutex::new(Connection::open_in_memory().unwrap());
        lock(&conn).execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let group = Arc::new(GroupCommit::default());
        let conn = Arc::new(conn);
        let threads: Vec<_> = (0..16i64)
            .map(|i| {
                let (group, conn) = (group.clone(), conn.clone());
                std::thread::spawn(move || {
                    group.run(
                        &conn,
                        Box::new(move |c: &Connection| {
                            c.execute("INSERT INTO t (v) VALUES (?1)", [i])?;
                            if i == 7 {
                                return Err(CheckpointError::Corrupt("seven".into()));
                            }
                            Ok(info(i))
                        }),
                    )
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (i, o) in outcomes.iter().enumerate() {
            match o {
                Ok(info) => assert_eq!(info.id, i as i64),
                Err(e) => assert_eq!((i, e.kind()), (7, "corrupt")),
            }
        }
        let rows: Vec<i64> = lock(&conn)
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, (0..16).filter(|i| *i != 7).collect::<Vec<_>>());
    }
}
