//! Jobs in the registry: a tenant's job specs with the UDF module versions each pins. A module
//! version a job pins cannot be deleted.

use rusqlite::{OptionalExtension, params};

use super::{Registry, RegistryError, now_ms};

/// A stored job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    /// Its id.
    pub id: i64,
    /// Its name (from the spec).
    pub name: String,
    /// The spec as submitted (JSON).
    pub spec_json: String,
    /// `created`, `running`, `stopped`, `failed`.
    pub status: String,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// The module versions it pins, `(module, version)`.
    pub udfs: Vec<(String, i64)>,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
}

/// A job from `SELECT id, name, spec, status, last_error, created_ms`, without its pins.
fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        name: r.get(1)?,
        spec_json: r.get(2)?,
        status: r.get(3)?,
        last_error: r.get(4)?,
        udfs: Vec::new(),
        created_ms: r.get(5)?,
    })
}

impl Registry {
    /// Stores a job with the module versions it pins.
    pub fn create_job(
        &self,
        tenant_id: i64,
        name: &str,
        spec_json: &str,
        udfs: &[(String, i64)],
    ) -> Result<JobRow, RegistryError> {
        let created_ms = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO jobs (tenant_id, name, spec, status, created_ms) VALUES (?1, ?2, ?3, 'created', ?4)",
            params![tenant_id, name, spec_json, created_ms],
        )?;
        let id = tx.last_insert_rowid();
        for (module, version) in udfs {
            tx.execute(
                "INSERT OR IGNORE INTO job_udfs (job_id, module, version) VALUES (?1, ?2, ?3)",
                params![id, module, version],
            )?;
        }
        tx.commit()?;
        Ok(JobRow {
            id,
            name: name.to_owned(),
            spec_json: spec_json.to_owned(),
            status: "created".into(),
            last_error: None,
            udfs: udfs.to_vec(),
            created_ms,
        })
    }

    fn job_udfs(&self, conn: &rusqlite::Connection, job_id: i64) -> Result<Vec<(String, i64)>, RegistryError> {
        let mut stmt =
            conn.prepare("SELECT module, version FROM job_udfs WHERE job_id = ?1 ORDER BY module, version")?;
        let rows = stmt.query_map(params![job_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A tenant's job, if it exists (for this tenant).
    pub fn job(&self, tenant_id: i64, id: i64) -> Result<Option<JobRow>, RegistryError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT id, name, spec, status, last_error, created_ms FROM jobs WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id, id],
                job_row,
            )
            .optional()?;
        match row {
            Some(mut job) => {
                job.udfs = self.job_udfs(&conn, job.id)?;
                Ok(Some(job))
            }
            None => Ok(None),
        }
    }

    /// A tenant's jobs, oldest first.
    pub fn list_jobs(&self, tenant_id: i64) -> Result<Vec<JobRow>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, spec, status, last_error, created_ms FROM jobs WHERE tenant_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![tenant_id], job_row)?;
        let mut jobs: Vec<JobRow> = rows.collect::<Result<_, _>>()?;
        for job in &mut jobs {
            job.udfs = self.job_udfs(&conn, job.id)?;
        }
        Ok(jobs)
    }

    /// Records a job's status (and why it failed).
    pub fn set_job_status(
        &self,
        tenant_id: i64,
        id: i64,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.conn().execute(
            "UPDATE jobs SET status = ?3, last_error = ?4 WHERE tenant_id = ?1 AND id = ?2",
            params![tenant_id, id, status, last_error],
        )?;
        Ok(())
    }

    /// Records a hot-swap of a tenant's job: stage `stage` runs `module@version` from batch
    /// `batch_id` on; the version is pinned from then on.
    pub fn record_swap(
        &self,
        tenant_id: i64,
        job_id: i64,
        stage: i64,
        module: &str,
        version: i64,
        batch_id: i64,
    ) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let owned: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE tenant_id = ?1 AND id = ?2)",
            params![tenant_id, job_id],
            |r| r.get(0),
        )?;
        if owned {
            tx.execute(
                "INSERT INTO swaps (job_id, stage, module, version, batch_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![job_id, stage, module, version, batch_id, now_ms()],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO job_udfs (job_id, module, version) VALUES (?1, ?2, ?3)",
                params![job_id, module, version],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A tenant's job's hot-swaps, oldest first: `(stage, module, version, batch_id)`.
    pub fn job_swaps(&self, tenant_id: i64, job_id: i64) -> Result<Vec<(i64, String, i64, i64)>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT s.stage, s.module, s.version, s.batch_id FROM swaps s JOIN jobs j ON j.id = s.job_id
             WHERE j.tenant_id = ?1 AND s.job_id = ?2 ORDER BY s.id",
        )?;
        let rows = stmt.query_map(params![tenant_id, job_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every tenant's jobs with this status, `(tenant_id, job_id)`: for the server's boot only
    /// (restarting the jobs that were running); it is not a tenant-facing query.
    pub fn jobs_with_status(&self, status: &str) -> Result<Vec<(i64, i64)>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT tenant_id, id FROM jobs WHERE status = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![status], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a tenant's job; `false` if it did not exist (for this tenant).
    pub fn delete_job(&self, tenant_id: i64, id: i64) -> Result<bool, RegistryError> {
        Ok(self.conn().execute(
            "DELETE FROM jobs WHERE tenant_id = ?1 AND id = ?2",
            params![tenant_id, id],
        )? > 0)
    }

    /// The tenant's jobs that pin this module version, `(id, name)`.
    pub fn jobs_using(&self, tenant_id: i64, module: &str, version: i64) -> Result<Vec<(i64, String)>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT j.id, j.name FROM jobs j JOIN job_udfs u ON u.job_id = j.id
             WHERE j.tenant_id = ?1 AND u.module = ?2 AND u.version = ?3 ORDER BY j.id",
        )?;
        let rows = stmt.query_map(params![tenant_id, module, version], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Registry;

    #[test]
    fn jobs_pin_versions_and_stay_with_their_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("registry.db")).unwrap();
        let a = r.create_tenant("acme", false).unwrap();
        let b = r.create_tenant("globex", false).unwrap();
        let job = r.create_job(a.id, "wc", "{}", &[("words".into(), 2)]).unwrap();
        assert_eq!(r.job(a.id, job.id).unwrap().unwrap().udfs, [("words".to_owned(), 2)]);
        assert_eq!(r.job(b.id, job.id).unwrap(), None);
        assert!(r.list_jobs(b.id).unwrap().is_empty());
        assert_eq!(r.jobs_using(a.id, "words", 2).unwrap(), [(job.id, "wc".to_owned())]);
        assert!(r.jobs_using(a.id, "words", 1).unwrap().is_empty());
        assert!(!r.delete_job(b.id, job.id).unwrap());
        assert!(r.delete_job(a.id, job.id).unwrap());
        assert!(
            r.jobs_using(a.id, "words", 2).unwrap().is_empty(),
            "the pins go with the job"
        );
    }
}
