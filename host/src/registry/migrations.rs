//! The registry's schema, as numbered migrations. Migration `i` (from 0) brings the schema from
//! version `i` to `i + 1`; `PRAGMA user_version` holds the version. Never edit a released
//! migration: add a new one.

use rusqlite::Connection;

use super::RegistryError;

/// The migrations, in order.
pub const MIGRATIONS: &[&str] = &[
    // 1: tenants, their tokens (hashed), their UDF module versions.
    "CREATE TABLE tenants (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL
     );
     CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        sha256 BLOB NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL
     );
     CREATE TABLE udf_modules (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        wasm BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        UNIQUE (tenant_id, name, version)
     );",
    // 2: jobs, and the module versions each pins.
    "CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        last_error TEXT,
        created_ms INTEGER NOT NULL
     );
     CREATE TABLE job_udfs (
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        module TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (job_id, module, version)
     );",
    // 3: hot-swaps, with the batch where each took effect.
    "CREATE TABLE swaps (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        stage INTEGER NOT NULL,
        module TEXT NOT NULL,
        version INTEGER NOT NULL,
        batch_id INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
     );",
    // 4: job ids are never reused (AUTOINCREMENT); each run of a job has a generation, so a
    // finished run cannot overwrite a newer one's status; boots that restarted a job without it
    // completing a batch are counted; the effective UDF version of each UDF stage (a hot-swap
    // changes it, a restart uses it); per-tenant quota overrides; compiled artifact sizes.
    "CREATE TABLE jobs_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        last_error TEXT,
        created_ms INTEGER NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0,
        boot_attempts INTEGER NOT NULL DEFAULT 0
     );
     INSERT INTO jobs_new (id, tenant_id, name, spec, status, last_error, created_ms)
        SELECT id, tenant_id, name, spec, status, last_error, created_ms FROM jobs;
     DROP TABLE jobs;
     ALTER TABLE jobs_new RENAME TO jobs;
     CREATE TABLE job_stage_udfs (
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        stage INTEGER NOT NULL,
        module TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (job_id, stage)
     );
     ALTER TABLE tenants ADD COLUMN quotas TEXT;
     ALTER TABLE udf_modules ADD COLUMN artifact_bytes INTEGER NOT NULL DEFAULT 0;",
];

/// Applies the migrations the database has not had yet, each in its own transaction. Foreign
/// keys are off while they run (a table rebuild drops and renames a table others reference, as
/// SQLite's own procedure for schema changes does) and checked before they are turned back on.
pub fn migrate(conn: &mut Connection) -> Result<(), RegistryError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(RegistryError::TooNew { found, known });
    }
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some(table) = broken {
            return Err(RegistryError::Integrity(format!(
                "migration {} left a broken foreign key in {table}",
                i + 1
            )));
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}
