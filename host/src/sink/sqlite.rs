//! `sqlite`: each output batch's records as rows of a table in a SQLite file, with the batch's
//! id committed in the same transaction: a batch the job re-runs after a crash (from its
//! checkpoint) finds its id committed and is skipped, so every batch is in the table exactly
//! once. `sluice run` writes a file of the user's choice; server jobs write their tenant's own
//! database (`DATA_DIR/tenants/TENANT.db`), readable through the API.
//!
//! Rows: `job, batch, seq, time_ms, key TEXT, value` (an INTEGER, REAL, TEXT or BLOB by the
//! stream's value type), keyed by `(job, batch, seq)`. The batch's refused records go into
//! `sluice_dead_letters` in the same transaction, so each is reported once.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Sink;
use crate::batch::RecordBatch;
use crate::engine::{DeadLetter, Tick};
use crate::job::spec::ValueType;

/// Checks a table name: 1 to 64 characters a-z, 0-9 and '_', starting with a letter or '_'.
pub fn check_table(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("sqlite_")
        && !name.starts_with("sluice_");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "table name {name:?} is invalid: use 1 to 64 characters a-z, 0-9 and '_', starting with a letter or '_' (not sqlite_ or sluice_)"
        ))
    }
}

/// Writes batches into a table.
pub struct SqliteSink {
    conn: Connection,
    table: String,
    job: i64,
    ty: ValueType,
    /// Largest size the file may grow to (the tenant's quota), if any.
    bytes_max: Option<u64>,
    path: std::path::PathBuf,
}

impl SqliteSink {
    /// Opens (or creates, mode 0600) `path` and the table, for job `job`.
    pub fn open(
        path: &Path,
        table: &str,
        job: i64,
        ty: ValueType,
        bytes_max: Option<u64>,
    ) -> std::io::Result<SqliteSink> {
        check_table(table).map_err(std::io::Error::other)?;
        if !path.exists() {
            let mut opts = std::fs::OpenOptions::new();
            opts.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            opts.open(path)?;
        }
        let io = |e: rusqlite::Error| std::io::Error::other(format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(io)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(io)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(io)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(io)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS sluice_commits (tbl TEXT NOT NULL, job INTEGER NOT NULL, batch INTEGER NOT NULL, committed_ms INTEGER NOT NULL, PRIMARY KEY (tbl, job, batch));
             CREATE TABLE IF NOT EXISTS sluice_dead_letters (tbl TEXT NOT NULL, job INTEGER NOT NULL, batch INTEGER NOT NULL, stage TEXT NOT NULL, idx INTEGER NOT NULL, key TEXT, value TEXT NOT NULL, error TEXT NOT NULL, PRIMARY KEY (tbl, job, batch, stage, idx));
             CREATE TABLE IF NOT EXISTS \"{table}\" (job INTEGER NOT NULL, batch INTEGER NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, key TEXT, value, PRIMARY KEY (job, batch, seq));"
        ))
        .map_err(io)?;
        Ok(SqliteSink {
            conn,
            table: table.to_owned(),
            job,
            ty,
            bytes_max,
            path: path.to_owned(),
        })
    }
}

fn value_sql(v: &[u8], ty: ValueType) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match (ty, <[u8; 8]>::try_from(v)) {
        (ValueType::I64, Ok(a)) => Value::Integer(i64::from_le_bytes(a)),
        (ValueType::F64, Ok(a)) => Value::Real(f64::from_le_bytes(a)),
        (ValueType::Text, _) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        _ => Value::Blob(v.to_vec()),
    }
}

impl Sink for SqliteSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        self.commit(tick, Some(batch), &[])
    }

    fn write_batch(
        &mut self,
        tick: Tick,
        batch: Option<&RecordBatch>,
        dead_letters: &[DeadLetter],
    ) -> std::io::Result<()> {
        if batch.is_none() && dead_letters.is_empty() {
            return Ok(());
        }
        self.commit(tick, batch, dead_letters)
    }
}

impl SqliteSink {
    /// Batch `tick`'s rows, refused records and id, in one transaction; nothing if its id is
    /// committed already.
    fn commit(&mut self, tick: Tick, batch: Option<&RecordBatch>, dead_letters: &[DeadLetter]) -> std::io::Result<()> {
        if let Some(max) = self.bytes_max {
            let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
                + std::fs::metadata(self.path.with_extension("db-wal"))
                    .map(|m| m.len())
                    .unwrap_or(0);
            if size > max {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "the output database is {size} bytes, over the quota sink_db_bytes_max ({max}); delete old rows or ask for a larger quota"
                    ),
                ));
            }
        }
        crate::failpoints::storage("sqlite sink")?;
        let io = |e: rusqlite::Error| {
            let kind = match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => std::io::ErrorKind::StorageFull,
                _ => std::io::ErrorKind::Other,
            };
            std::io::Error::new(kind, format!("{}: {e}", self.path.display()))
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io)?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT batch FROM sluice_commits WHERE tbl = ?1 AND job = ?2 AND batch = ?3",
                params![self.table, self.job, tick.batch_id as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(io)?;
        if done.is_some() {
            return Ok(());
        }
        if let Some(batch) = batch {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO \"{}\" (job, batch, seq, time_ms, key, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    self.table
                ))
                .map_err(io)?;
            for (seq, r) in batch.iter().enumerate() {
                let key = r.key.map(|k| String::from_utf8_lossy(k).into_owned());
                insert
                    .execute(params![
                        self.job,
                        tick.batch_id as i64,
                        seq as i64,
                        tick.time_ms,
                        key,
                        value_sql(r.value, self.ty)
                    ])
                    .map_err(io)?;
            }
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO sluice_dead_letters (tbl, job, batch, stage, idx, key, value, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(io)?;
            for d in dead_letters {
                insert
                    .execute(params![
                        self.table,
                        self.job,
                        tick.batch_id as i64,
                        d.stage,
                        d.index,
                        d.key,
                        d.value,
                        d.error
                    ])
                    .map_err(io)?;
            }
        }
        tx.execute(
            "INSERT INTO sluice_commits (tbl, job, batch, committed_ms) VALUES (?1, ?2, ?3, ?4)",
            params![self.table, self.job, tick.batch_id as i64, crate::registry::now_ms()],
        )
        .map_err(io)?;
        tx.commit().map_err(io)
    }
}

/// A row of a job's table: `(batch, seq, time_ms, key, value as JSON)`.
pub type Row = (i64, i64, i64, Option<String>, serde_json::Value);

/// Rows of a job's table, for the API, in order of `(batch, seq)` after `(after, after_seq)`,
/// at most `limit`.
pub fn read_rows(
    path: &Path,
    table: &str,
    job: i64,
    (after, after_seq): (i64, i64),
    limit: usize,
) -> Result<Vec<Row>, String> {
    check_table(table)?;
    if !path.exists() {
        return Ok(Vec::new());
    }
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| e.to_string())?;
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            params![table],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare(&format!(
            "SELECT batch, seq, time_ms, key, value FROM \"{table}\" WHERE job = ?1 AND (batch > ?2 OR (batch = ?2 AND seq > ?3)) ORDER BY batch, seq LIMIT ?4"
        ))
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map(params![job, after, after_seq, limit as i64], |r| {
            use rusqlite::types::ValueRef;
            let value = match r.get_ref(4)? {
                ValueRef::Integer(i) => serde_json::Value::from(i),
                ValueRef::Real(f) => serde_json::Value::from(f),
                ValueRef::Text(t) => serde_json::Value::from(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => serde_json::Value::from(hex::encode(b)),
                ValueRef::Null => serde_json::Value::Null,
            };
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, value))
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// A job's refused records in the database: the newest `limit` (oldest first), and how many
/// there are in all.
pub fn read_dead_letters(path: &Path, job: i64, limit: usize) -> Result<(Vec<DeadLetter>, u64), String> {
    if !path.exists() {
        return Ok((Vec::new(), 0));
    }
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| e.to_string())?;
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sluice_dead_letters')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if !exists {
        return Ok((Vec::new(), 0));
    }
    let total: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sluice_dead_letters WHERE job = ?1",
            params![job],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare(
            "SELECT batch, stage, idx, key, value, error FROM sluice_dead_letters WHERE job = ?1 ORDER BY batch DESC, stage DESC, idx DESC LIMIT ?2",
        )
        .map_err(|e| e.to_string())?;
    let mut letters = stmt
        .query_map(params![job, limit as i64], |r| {
            Ok(DeadLetter {
                batch_id: r.get::<_, i64>(0)? as u64,
                stage: r.get(1)?,
                index: r.get(2)?,
                key: r.get(3)?,
                value: r.get(4)?,
                error: r.get(5)?,
            })
        })
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    letters.reverse();
    Ok((letters, total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_written_once_however_often_it_comes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.db");
        let mut sink = SqliteSink::open(&path, "counts", 3, ValueType::I64, None).unwrap();
        let mut b = RecordBatch::new();
        b.push(Some(b"a"), &5i64.to_le_bytes(), 0);
        b.push(None, &7i64.to_le_bytes(), 0);
        let tick = |k| Tick {
            batch_id: k,
            time_ms: k as i64 * 1000,
        };
        sink.write(tick(1), &b).unwrap();
        sink.write(tick(1), &b).unwrap();
        sink.write(tick(2), &b).unwrap();
        let rows = read_rows(&path, "counts", 3, (0, i64::MAX), 100).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], (1, 0, 1000, Some("a".to_owned()), serde_json::json!(5)));
        assert_eq!(read_rows(&path, "counts", 3, (1, i64::MAX), 100).unwrap().len(), 2);
        let page = read_rows(&path, "counts", 3, (0, i64::MAX), 1).unwrap();
        let next = read_rows(&path, "counts", 3, (page[0].0, page[0].1), 10).unwrap();
        assert_eq!(
            next.len(),
            3,
            "a page may end inside a batch; the next goes on from its row"
        );
        assert!(
            read_rows(&path, "counts", 4, (0, i64::MAX), 100).unwrap().is_empty(),
            "another job's rows"
        );
        assert!(SqliteSink::open(&path, "sqlite_master", 3, ValueType::I64, None).is_err());
        let mut full = SqliteSink::open(&path, "counts", 3, ValueType::I64, Some(10)).unwrap();
        let e = full.write(tick(3), &b).unwrap_err().to_string();
        assert!(e.contains("sink_db_bytes_max"), "{e}");
    }
}
