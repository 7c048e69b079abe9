//! Checkpoints in SQLite: at a batch boundary, a job's last completed batch, its source's
//! position, the state of every stateful operator (incremental deltas, see `engine/state.rs`)
//! and the UDF versions it ran, written in one transaction, so a job resumes after a crash where
//! its last checkpoint left it.
//!
//! State rows carry the checkpoint from which they hold (`from_ckpt`) and the one that replaced
//! them (`to_ckpt`), so each of the last `keep` checkpoints can be read back whole while a new
//! one writes only what changed. Pruning deletes what no kept checkpoint can see. Named blobs
//! (a window's per-batch partials) are a row each; the entries of keyed maps are written as
//! runs (one blob of puts and removals per map and checkpoint, a few MiB at most each), read
//! back in order: a base from a full snapshot, then what each incremental checkpoint changed,
//! as an LSM tree keeps them. Once the incremental runs outweigh the base, the next checkpoint
//! is a full one (`wants_full`), so reading back stays bounded.
//!
//! The file is the registry's sibling on the server (`checkpoints.db`, one file for all jobs)
//! and the `--checkpoint FILE` of `sluice run`.

mod group_commit;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::engine::ops::StateKind;
use crate::engine::state::{StateDelta, StoredState, key_bytes, key_from_bytes};

/// The layout version of checkpoints this binary writes and reads (2: keyed entries in runs).
pub const FORMAT: u32 = 2;

/// Bytes of one run of keyed entries at most (a larger delta takes several).
const RUN_BYTES_MAX: usize = 4 << 20;

/// What a checkpoint records besides operator state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// `FORMAT` of the binary that wrote it.
    pub format: u32,
    /// The last batch it covers.
    pub batch_id: u64,
    /// That batch's time, ms.
    pub time_ms: i64,
    /// The job's time zero (batch `k` is at `zero_ms + k * interval`).
    pub zero_ms: i64,
    /// The source's position after that batch (`null`: it cannot go back).
    pub source: Option<serde_json::Value>,
    /// The stateful operators, by stage name, with what their state is.
    pub operators: Vec<(String, StateKind)>,
    /// The UDF version each UDF stage ran (`stage name`, `module@version`).
    pub udfs: Vec<(String, String)>,
}

/// A checkpoint as listed.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CheckpointInfo {
    /// Its id (increasing).
    pub id: i64,
    /// The last batch it covers.
    pub batch_id: u64,
    /// That batch's time, ms since the epoch.
    pub time_ms: i64,
    /// When it was written, ms since the epoch.
    pub created_ms: i64,
    /// Bytes of state it wrote (what changed since the one before).
    pub bytes: u64,
    /// How long writing it took, ms.
    pub write_ms: f64,
}

/// A checkpoint as read back: what it records, and each operator's state by stage name.
pub type Restored = (CheckpointMeta, HashMap<String, StoredState>);

/// A checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// SQLite failed (disk full, I/O error, corruption).
    #[error("checkpoint store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file could not be made private.
    #[error("checkpoint store: {0}")]
    Io(#[from] std::io::Error),
    /// What is stored does not read back.
    #[error("checkpoint store: {0}")]
    Corrupt(String),
    /// The file is not a checkpoint store (or one of a newer binary).
    #[error("{0} is not a checkpoint store of this sluice ({1}); nothing was changed in it")]
    Foreign(String, String),
}

impl CheckpointError {
    /// A short word for the kind of failure (`disk_full`, `io_error`, `corrupt`).
    pub fn kind(&self) -> &'static str {
        match self {
            CheckpointError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                rusqlite::ErrorCode::DiskFull => "disk_full",
                rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen => "io_error",
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase => "corrupt",
                _ => "io_error",
            },
            CheckpointError::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => "disk_full",
            CheckpointError::Io(_) => "io_error",
            CheckpointError::Corrupt(_) | CheckpointError::Foreign(..) => "corrupt",
            CheckpointError::Sqlite(_) => "io_error",
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job INTEGER NOT NULL,
    batch_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    write_ms REAL NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_job ON checkpoints (job, id);
CREATE TABLE IF NOT EXISTS state_blobs (
    job INTEGER NOT NULL,
    op TEXT NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    from_ckpt INTEGER NOT NULL,
    to_ckpt INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS state_blobs_live ON state_blobs (job, op, name) WHERE to_ckpt IS NULL;
CREATE INDEX IF NOT EXISTS state_blobs_job ON state_blobs (job, to_ckpt);
CREATE TABLE IF NOT EXISTS state_runs (
    job INTEGER NOT NULL,
    op TEXT NOT NULL,
    map TEXT NOT NULL,
    base INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    data BLOB NOT NULL,
    from_ckpt INTEGER NOT NULL,
    to_ckpt INTEGER
);
CREATE INDEX IF NOT EXISTS state_runs_job ON state_runs (job, to_ckpt);
CREATE TABLE IF NOT EXISTS source_cuts (
    job INTEGER NOT NULL,
    batch_id INTEGER NOT NULL,
    cut TEXT NOT NULL,
    PRIMARY KEY (job, batch_id)
);
";

/// Appends one keyed entry to a run: a put (with its value) or a removal.
fn put_entry(run: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    run.push(u8::from(value.is_some()));
    run.extend_from_slice(&(key.len() as u32).to_le_bytes());
    run.extend_from_slice(key);
    if let Some(v) = value {
        run.extend_from_slice(&(v.len() as u32).to_le_bytes());
        run.extend_from_slice(v);
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    (rest.len() >= n).then(|| {
        let (a, b) = rest.split_at(n);
        *rest = b;
        a
    })
}

fn take_len(rest: &mut &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(take(rest, 4)?.try_into().ok()?) as usize)
}

/// Applies a run's entries to `map`.
fn apply_run(mut run: &[u8], map: &mut crate::engine::keyed::KeyedMap) -> Result<(), String> {
    let short = || "a run of keyed entries is cut short".to_owned();
    while !run.is_empty() {
        let put = take(&mut run, 1).ok_or_else(short)?[0] == 1;
        let n = take_len(&mut run).ok_or_else(short)?;
        let key = key_from_bytes(take(&mut run, n).ok_or_else(short)?).map_err(|e| e.0)?;
        if put {
            let n = take_len(&mut run).ok_or_else(short)?;
            map.insert(key, take(&mut run, n).ok_or_else(short)?.to_vec());
        } else {
            map.remove(&key);
        }
    }
    Ok(())
}

/// The application id in the file's header: a checkpoint store, not some other SQLite file.
const APPLICATION_ID: i32 = 0x536c_4350; // "SlCP"

/// A checkpoint store (one SQLite file).
#[derive(Debug)]
pub struct CheckpointStore {
    conn: Mutex<Connection>,
    group: group_commit::GroupCommit,
    path: String,
}

fn now_ms() -> i64 {
    crate::registry::now_ms()
}

impl CheckpointStore {
    /// Opens (or creates, mode 0600) a checkpoint store. A file that is not one (another SQLite
    /// database, or not SQLite at all) is refused and left as it is.
    pub fn open(path: &Path) -> Result<CheckpointStore, CheckpointError> {
        let shown = path.display().to_string();
        let existed = path.exists() && std::fs::metadata(path)?.len() > 0;
        if !existed {
            let mut opts = std::fs::OpenOptions::new();
            opts.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            opts.open(path)?;
        }
        let conn = Connection::open(path)?;
        let foreign = |why: String| CheckpointError::Foreign(shown.clone(), why);
        if existed {
            let id: i32 = conn
                .query_row("PRAGMA application_id", [], |r| r.get(0))
                .map_err(|e| foreign(e.to_string()))?;
            // An empty database (no table, no id) is one this code began to make and was
            // stopped (killed) before it set its id: nothing in it to lose, so it is made now.
            let tables: i64 = conn
                .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(|e| foreign(e.to_string()))?;
            if id != APPLICATION_ID && !(id == 0 && tables == 0) {
                return Err(foreign(format!("its application id is {id:#x}")));
            }
            let ok: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| foreign(e.to_string()))?;
            if ok != "ok" {
                return Err(foreign(format!("it fails its integrity check: {ok}")));
            }
        }
        // The id first: a file that has a header has its id.
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(CheckpointStore {
            conn: Mutex::new(conn),
            group: group_commit::GroupCommit::default(),
            path: shown,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Its file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Writes a checkpoint of `job` in one transaction: `meta`, and each operator's state
    /// `deltas` (by stage name); keeps the last `keep` checkpoints of the job. Checkpoints other
    /// jobs write at the same time share the transaction (`group_commit`); this returns once
    /// it is committed.
    pub fn write(
        &self,
        job: i64,
        meta: &CheckpointMeta,
        deltas: Vec<(String, StateDelta)>,
        keep: usize,
    ) -> Result<CheckpointInfo, CheckpointError> {
        let started = Instant::now();
        crate::failpoints::storage("checkpoint")?;
        let bytes: usize = deltas.iter().map(|(_, d)| d.bytes()).sum();
        let meta_json = serde_json::to_string(meta).map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
        let created_ms = now_ms();
        let (batch_id, time_ms) = (meta.batch_id, meta.time_ms);
        let work = move |tx: &Connection| -> Result<CheckpointInfo, CheckpointError> {
            tx.execute(
            "INSERT INTO checkpoints (job, batch_id, time_ms, created_ms, bytes, write_ms, meta) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
            params![job, batch_id as i64, time_ms, created_ms, bytes as i64, meta_json],
        )?;
            let c = tx.last_insert_rowid();
            {
                let mut close_blob = tx.prepare_cached(
                    "UPDATE state_blobs SET to_ckpt = ?4 WHERE job = ?1 AND op = ?2 AND name = ?3 AND to_ckpt IS NULL",
                )?;
                let mut put_blob = tx.prepare_cached(
                    "INSERT INTO state_blobs (job, op, name, value, from_ckpt) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut put_run = tx.prepare_cached(
                "INSERT INTO state_runs (job, op, map, base, bytes, data, from_ckpt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
                for (op, delta) in deltas {
                    if delta.full {
                        tx.execute(
                            "UPDATE state_blobs SET to_ckpt = ?3 WHERE job = ?1 AND op = ?2 AND to_ckpt IS NULL",
                            params![job, op, c],
                        )?;
                        tx.execute(
                            "UPDATE state_runs SET to_ckpt = ?3 WHERE job = ?1 AND op = ?2 AND to_ckpt IS NULL",
                            params![job, op, c],
                        )?;
                    }
                    for name in &delta.removed_blobs {
                        close_blob.execute(params![job, op, name, c])?;
                    }
                    for (name, value) in &delta.put_blobs {
                        close_blob.execute(params![job, op, name, c])?;
                        put_blob.execute(params![job, op, name, value, c])?;
                    }
                    // Each map's removals, then its puts (as `StoredState::apply`), in runs.
                    let mut runs: HashMap<&str, Vec<u8>> = HashMap::new();
                    let mut flush = |map: &str, run: &mut Vec<u8>| -> rusqlite::Result<()> {
                        if !run.is_empty() {
                            put_run.execute(params![job, op, map, delta.full, run.len() as i64, &run[..], c])?;
                            run.clear();
                        }
                        Ok(())
                    };
                    let entries = delta
                        .removed_keys
                        .iter()
                        .map(|(m, k)| (m, k, None))
                        .chain(delta.put_keys.iter().map(|(m, k, v)| (m, k, Some(&v[..]))));
                    for (map, key, value) in entries {
                        let run = runs.entry(map.as_str()).or_default();
                        put_entry(run, &key_bytes(key), value);
                        if run.len() >= RUN_BYTES_MAX {
                            flush(map, run)?;
                        }
                    }
                    for (map, run) in &mut runs {
                        flush(map, run)?;
                    }
                }
            }
            // The cuts of batches this checkpoint covers are not needed again.
            tx.execute(
                "DELETE FROM source_cuts WHERE job = ?1 AND batch_id <= ?2",
                params![job, batch_id as i64],
            )?;
            // Keep the last `keep`: rows that the oldest kept checkpoint no longer sees go.
            let oldest: Option<i64> = tx
                .query_row(
                    "SELECT id FROM checkpoints WHERE job = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
                    params![job, keep.max(1) as i64 - 1],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(oldest) = oldest {
                tx.execute(
                    "DELETE FROM checkpoints WHERE job = ?1 AND id < ?2",
                    params![job, oldest],
                )?;
                tx.execute(
                    "DELETE FROM state_blobs WHERE job = ?1 AND to_ckpt IS NOT NULL AND to_ckpt <= ?2",
                    params![job, oldest],
                )?;
                tx.execute(
                    "DELETE FROM state_runs WHERE job = ?1 AND to_ckpt IS NOT NULL AND to_ckpt <= ?2",
                    params![job, oldest],
                )?;
            }
            let write_ms = started.elapsed().as_secs_f64() * 1e3;
            tx.execute(
                "UPDATE checkpoints SET write_ms = ?2 WHERE id = ?1",
                params![c, write_ms],
            )?;
            Ok(CheckpointInfo {
                id: c,
                batch_id,
                time_ms,
                created_ms,
                bytes: bytes as u64,
                write_ms,
            })
        };
        self.group.run(&self.conn, Box::new(work))
    }

    /// The job's checkpoints, newest first.
    pub fn list(&self, job: i64) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, batch_id, time_ms, created_ms, bytes, write_ms FROM checkpoints WHERE job = ?1 ORDER BY id DESC",
        )?;
        let rows = stmt.query_map(params![job], |r| {
            Ok(CheckpointInfo {
                id: r.get(0)?,
                batch_id: r.get::<_, i64>(1)? as u64,
                time_ms: r.get(2)?,
                created_ms: r.get(3)?,
                bytes: r.get::<_, i64>(4)? as u64,
                write_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The job's latest checkpoint with every operator's state, if it has one.
    pub fn latest(&self, job: i64) -> Result<Option<Restored>, CheckpointError> {
        let conn = self.conn();
        let row: Option<(i64, String)> = conn
            .query_row(
                "SELECT id, meta FROM checkpoints WHERE job = ?1 ORDER BY id DESC LIMIT 1",
                params![job],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((c, meta)) = row else { return Ok(None) };
        let meta: CheckpointMeta =
            serde_json::from_str(&meta).map_err(|e| CheckpointError::Corrupt(format!("checkpoint {c}: {e}")))?;
        if meta.format != FORMAT {
            return Err(CheckpointError::Corrupt(format!(
                "checkpoint {c} has format {}, this binary reads {FORMAT}",
                meta.format
            )));
        }
        let mut states: HashMap<String, StoredState> = HashMap::new();
        let visible = "job = ?1 AND from_ckpt <= ?2 AND (to_ckpt IS NULL OR to_ckpt > ?2)";
        let mut stmt = conn.prepare(&format!("SELECT op, name, value FROM state_blobs WHERE {visible}"))?;
        let mut rows = stmt.query(params![job, c])?;
        while let Some(r) = rows.next()? {
            let op: String = r.get(0)?;
            states.entry(op).or_default().blobs.insert(r.get(1)?, r.get(2)?);
        }
        let mut stmt = conn.prepare(&format!(
            "SELECT op, map, data FROM state_runs WHERE {visible} ORDER BY from_ckpt, rowid"
        ))?;
        let mut rows = stmt.query(params![job, c])?;
        while let Some(r) = rows.next()? {
            let op: String = r.get(0)?;
            let map: String = r.get(1)?;
            let data = r
                .get_ref(2)?
                .as_blob()
                .map_err(|e| CheckpointError::Corrupt(format!("checkpoint {c}: {e}")))?;
            let into = states.entry(op).or_default().maps.entry(map).or_default();
            apply_run(data, into).map_err(|e| CheckpointError::Corrupt(format!("checkpoint {c}: {e}")))?;
        }
        for s in states.values_mut() {
            s.maps.retain(|_, m| !m.is_empty());
        }
        Ok(Some((meta, states)))
    }

    /// Logs what batch `batch_id` took from a source that cannot cut it again from a position
    /// alone (`Source::cut`); on disk when this returns.
    pub fn log_cut(&self, job: i64, batch_id: u64, cut: &serde_json::Value) -> Result<(), CheckpointError> {
        crate::failpoints::storage("batch log")?;
        self.conn().execute(
            "INSERT OR REPLACE INTO source_cuts (job, batch_id, cut) VALUES (?1, ?2, ?3)",
            params![job, batch_id as i64, cut.to_string()],
        )?;
        Ok(())
    }

    /// The logged cuts of the job's batches after `batch_id`, in order.
    pub fn cuts_after(&self, job: i64, batch_id: u64) -> Result<Vec<(u64, serde_json::Value)>, CheckpointError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT batch_id, cut FROM source_cuts WHERE job = ?1 AND batch_id > ?2 ORDER BY batch_id")?;
        let rows = stmt.query_map(params![job, batch_id as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })?;
        rows.map(|r| {
            let (b, text) = r?;
            let cut = serde_json::from_str(&text)
                .map_err(|e| CheckpointError::Corrupt(format!("the cut of batch {b}: {e}")))?;
            Ok((b, cut))
        })
        .collect()
    }

    /// Whether the job's next checkpoint should be a full one: what incremental checkpoints
    /// wrote since the last full one outweighs it (or they are many), so reading back would
    /// cost more than writing the whole state again.
    pub fn wants_full(&self, job: i64) -> Result<bool, CheckpointError> {
        let (base, incremental, runs): (i64, i64, i64) = self.conn().query_row(
            "SELECT COALESCE(SUM(CASE WHEN base THEN bytes END), 0), COALESCE(SUM(CASE WHEN base THEN 0 ELSE bytes END), 0), COUNT(*)
             FROM state_runs WHERE job = ?1 AND to_ckpt IS NULL",
            params![job],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(incremental > base.max(1 << 20) || runs > 256)
    }

    /// Deletes every checkpoint of the job (it starts from scratch next time, or it is gone).
    pub fn delete(&self, job: i64) -> Result<(), CheckpointError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for table in ["checkpoints", "state_blobs", "state_runs", "source_cuts"] {
            tx.execute(&format!("DELETE FROM {table} WHERE job = ?1"), params![job])?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Checks that a checkpoint's operators are the job's: the same stateful stages, with state of
/// the same kind and shape. The error says what differs and what to do.
pub fn check_operators(meta: &CheckpointMeta, now: &[(String, StateKind)]) -> Result<(), String> {
    if meta.operators == now {
        return Ok(());
    }
    let describe = |ops: &[(String, StateKind)]| {
        if ops.is_empty() {
            "no stateful stage".to_owned()
        } else {
            ops.iter()
                .map(|(name, k)| format!("{name} ({}, format {})", k.shape, k.format))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    Err(format!(
        "the job's stateful stages no longer match its checkpoint of batch {}: the checkpoint has {}, the spec now has {}; restore the spec, or delete the job's checkpoints to start it from scratch",
        meta.batch_id,
        describe(&meta.operators),
        describe(now)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyed::KeyedMap;

    fn meta(batch_id: u64) -> CheckpointMeta {
        CheckpointMeta {
            format: FORMAT,
            batch_id,
            time_ms: batch_id as i64 * 1000,
            zero_ms: 0,
            source: Some(serde_json::json!({ "rng": "7" })),
            operators: vec![],
            udfs: vec![],
        }
    }

    fn key(s: &str) -> crate::engine::keyed::Key {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn incremental_checkpoints_read_back_whole_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&dir.path().join("c.db")).unwrap();
        let full = StateDelta {
            full: true,
            put_blobs: vec![("b1".into(), vec![1]), ("b2".into(), vec![2])],
            put_keys: vec![("m".into(), key("a"), vec![1]), ("m".into(), None, vec![0])],
            ..StateDelta::default()
        };
        store.write(7, &meta(10), vec![("op".into(), full)], 2).unwrap();
        let step = StateDelta {
            full: false,
            put_blobs: vec![("b3".into(), vec![3])],
            removed_blobs: vec!["b1".into()],
            put_keys: vec![("m".into(), key("a"), vec![9])],
            removed_keys: vec![("m".into(), None)],
        };
        let info = store.write(7, &meta(20), vec![("op".into(), step)], 2).unwrap();
        assert_eq!(info.batch_id, 20);
        let (m, states) = store.latest(7).unwrap().unwrap();
        assert_eq!(m.batch_id, 20);
        let s = &states["op"];
        assert_eq!(s.blobs.keys().collect::<Vec<_>>(), ["b2", "b3"]);
        let mut expected = KeyedMap::default();
        expected.insert(key("a"), vec![9]);
        assert_eq!(s.maps["m"], expected);
        for b in 3..6 {
            store
                .write(7, &meta(b * 10), vec![("op".into(), StateDelta::default())], 2)
                .unwrap();
        }
        assert_eq!(store.list(7).unwrap().len(), 2, "the last 2 are kept");
        let (_, states) = store.latest(7).unwrap().unwrap();
        assert_eq!(
            states["op"].maps["m"], expected,
            "state carries over untouched checkpoints"
        );
        assert!(store.latest(8).unwrap().is_none(), "jobs are apart");
        store.delete(7).unwrap();
        assert!(store.latest(7).unwrap().is_none());
    }

    #[test]
    fn a_foreign_or_corrupt_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.db");
        rusqlite::Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let before = std::fs::read(&other).unwrap();
        let e = CheckpointStore::open(&other).err().unwrap();
        assert!(matches!(e, CheckpointError::Foreign(..)), "{e}");
        assert_eq!(std::fs::read(&other).unwrap(), before, "nothing was written");
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"this is not a database at all, not even close......").unwrap();
        let e = CheckpointStore::open(&garbage).err().unwrap();
        assert!(e.to_string().contains("is not a checkpoint store"), "{e}");
    }

    /// A store whose making was cut short (killed after SQLite wrote its header, before the
    /// id): an empty database, which is made into a store, as a new file is.
    #[test]
    fn a_store_cut_short_while_it_was_made_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        drop(conn);
        assert!(std::fs::metadata(&path).unwrap().len() > 0, "it has a header");
        let store = CheckpointStore::open(&path).expect("an empty database is taken");
        drop(store);
        CheckpointStore::open(&path).expect("and is a store now");
    }
}
