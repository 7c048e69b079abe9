//! Jobs in the registry: a tenant's job specs with the UDF module versions each pins, the
//! effective UDF version of each UDF stage (a hot-swap changes it in the same transaction that
//! records the swap; a restart runs it), and the job's status, written only by the run whose
//! generation is current.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Registry, RegistryError, now_ms};

/// A stored job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    /// Its id (never reused).
    pub id: i64,
    /// Its name (from the spec).
    pub name: String,
    /// The spec as submitted (JSON).
    pub spec_json: String,
    /// `created`, `starting`, `running`, `stopped`, `failed`.
    pub status: String,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// The module versions it pins, `(module, version)`.
    pub udfs: Vec<(String, i64)>,
    /// The module version each UDF stage runs now.
    pub stage_udfs: Vec<StageUdf>,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// The generation of its latest run (0: never started).
    pub generation: i64,
}

/// The module version a UDF stage runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageUdf {
    /// The stage's index in the spec.
    pub stage: usize,
    /// The module.
    pub module: String,
    /// Its version.
    pub version: i64,
}

/// A hot-swap of a job: stage `stage` ran `module@version` from batch `batch_id` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swap {
    /// The stage.
    pub stage: i64,
    /// The module.
    pub module: String,
    /// The version swapped in.
    pub version: i64,
    /// The first batch it ran.
    pub batch_id: i64,
}

/// A job that was starting or running when the server stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobToResume {
    /// Its tenant.
    pub tenant_id: i64,
    /// Its id.
    pub id: i64,
    /// Boots in a row that restarted it without it completing a batch.
    pub boot_attempts: i64,
}

const COLUMNS: &str = "id, name, spec, status, last_error, created_ms, generation";

/// A job from `SELECT {COLUMNS}`, without its pins.
fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        name: r.get(1)?,
        spec_json: r.get(2)?,
        status: r.get(3)?,
        last_error: r.get(4)?,
        udfs: Vec::new(),
        stage_udfs: Vec::new(),
        created_ms: r.get(5)?,
        generation: r.get(6)?,
    })
}

fn fill(conn: &rusqlite::Connection, job: &mut JobRow) -> Result<(), RegistryError> {
    let mut stmt =
        conn.prepare_cached("SELECT module, version FROM job_udfs WHERE job_id = ?1 ORDER BY module, version")?;
    job.udfs = stmt
        .query_map(params![job.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut stmt =
        conn.prepare_cached("SELECT stage, module, version FROM job_stage_udfs WHERE job_id = ?1 ORDER BY stage")?;
    job.stage_udfs = stmt
        .query_map(params![job.id], |r| {
            Ok(StageUdf {
                stage: r.get::<_, i64>(0)? as usize,
                module: r.get(1)?,
                version: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(())
}

impl Registry {
    /// Stores a job with the module versions it pins and the version each UDF stage runs,
    /// unless the tenant has `jobs_max` jobs already (counted in the same transaction, so
    /// concurrent creates cannot pass the quota together).
    pub fn create_job(
        &self,
        tenant_id: i64,
        name: &str,
        spec_json: &str,
        udfs: &[(String, i64)],
        stage_udfs: &[StageUdf],
        jobs_max: usize,
    ) -> Result<JobRow, RegistryError> {
        let created_ms = now_ms();
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let jobs: i64 = tx.query_row(
            "SELECT COUNT(*) FROM jobs WHERE tenant_id = ?1",
            params![tenant_id],
            |r| r.get(0),
        )?;
        if jobs as usize >= jobs_max {
            return Err(RegistryError::Quota {
                quota: "jobs_max",
                detail: format!("the tenant has {jobs} jobs, the quota is {jobs_max} (delete a job first)"),
            });
        }
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
        for s in stage_udfs {
            tx.execute(
                "INSERT INTO job_stage_udfs (job_id, stage, module, version) VALUES (?1, ?2, ?3, ?4)",
                params![id, s.stage as i64, s.module, s.version],
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
            stage_udfs: stage_udfs.to_vec(),
            created_ms,
            generation: 0,
        })
    }

    /// A tenant's job, if it exists (for this tenant).
    pub fn job(&self, tenant_id: i64, id: i64) -> Result<Option<JobRow>, RegistryError> {
        let conn = self.reader();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE tenant_id = ?1 AND id = ?2"),
                params![tenant_id, id],
                job_row,
            )
            .optional()?;
        match row {
            Some(mut job) => {
                fill(&conn, &mut job)?;
                Ok(Some(job))
            }
            None => Ok(None),
        }
    }

    /// A tenant's jobs, oldest first.
    pub fn list_jobs(&self, tenant_id: i64) -> Result<Vec<JobRow>, RegistryError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM jobs WHERE tenant_id = ?1 ORDER BY id"))?;
        let rows = stmt.query_map(params![tenant_id], job_row)?;
        let mut jobs: Vec<JobRow> = rows.collect::<Result<_, _>>()?;
        for job in &mut jobs {
            fill(&conn, job)?;
        }
        Ok(jobs)
    }

    /// Records a job's status (and why it failed) whatever run it is in: for the server's boot
    /// and the demo seeding, before any run of it exists.
    pub fn set_job_status(
        &self,
        tenant_id: i64,
        id: i64,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.writer().execute(
            "UPDATE jobs SET status = ?3, last_error = ?4 WHERE tenant_id = ?1 AND id = ?2",
            params![tenant_id, id, status, last_error],
        )?;
        Ok(())
    }

    /// Begins a new run of a tenant's job: its generation goes up by one and its status becomes
    /// `starting`; a start asked for by a person (`fresh`) also clears the count of boots that
    /// restarted it without progress. Returns the new generation, or `None` if there is no such
    /// job.
    pub fn begin_run(&self, tenant_id: i64, id: i64, fresh: bool) -> Result<Option<i64>, RegistryError> {
        Ok(self
            .writer()
            .query_row(
                "UPDATE jobs SET generation = generation + 1, status = 'starting', last_error = NULL,
                    boot_attempts = CASE WHEN ?3 THEN 0 ELSE boot_attempts END
                 WHERE tenant_id = ?1 AND id = ?2 RETURNING generation",
                params![tenant_id, id, fresh],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the status of run `generation` of job `id`; nothing changes (and `false` comes
    /// back) if a newer run has begun since, so a finished run never overwrites a newer one.
    pub fn set_run_status(
        &self,
        id: i64,
        generation: i64,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<bool, RegistryError> {
        Ok(self.writer().execute(
            "UPDATE jobs SET status = ?3, last_error = ?4 WHERE id = ?1 AND generation = ?2",
            params![id, generation, status, last_error],
        )? > 0)
    }

    /// Run `generation` of job `id` completed a batch (or stopped cleanly): the boots that
    /// restarted it without progress start counting from 0 again.
    pub fn run_made_progress(&self, id: i64, generation: i64) -> Result<(), RegistryError> {
        self.writer().execute(
            "UPDATE jobs SET boot_attempts = 0 WHERE id = ?1 AND generation = ?2 AND boot_attempts <> 0",
            params![id, generation],
        )?;
        Ok(())
    }

    /// Every tenant's jobs that were starting or running when the server last stopped: for the
    /// server's boot only, not a tenant-facing query.
    pub fn jobs_to_resume(&self) -> Result<Vec<JobToResume>, RegistryError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT tenant_id, id, boot_attempts FROM jobs WHERE status IN ('starting', 'running') ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(JobToResume {
                tenant_id: r.get(0)?,
                id: r.get(1)?,
                boot_attempts: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts one more boot that restarts job `id` (before it runs): the count comes back.
    pub fn count_boot_attempt(&self, id: i64) -> Result<i64, RegistryError> {
        Ok(self.writer().query_row(
            "UPDATE jobs SET boot_attempts = boot_attempts + 1 WHERE id = ?1 RETURNING boot_attempts",
            params![id],
            |r| r.get(0),
        )?)
    }

    /// Records a hot-swap of a tenant's job: stage `stage` runs `module@version` from batch
    /// `batch_id` on. In one transaction: the swap, the pin, and the stage's effective version
    /// (which a restart runs). `false` if the job is not the tenant's.
    pub fn record_swap(
        &self,
        tenant_id: i64,
        job_id: i64,
        stage: i64,
        module: &str,
        version: i64,
        batch_id: i64,
    ) -> Result<bool, RegistryError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
            tx.execute(
                "INSERT OR REPLACE INTO job_stage_udfs (job_id, stage, module, version) VALUES (?1, ?2, ?3, ?4)",
                params![job_id, stage, module, version],
            )?;
        }
        tx.commit()?;
        Ok(owned)
    }

    /// A tenant's job's hot-swaps, oldest first.
    pub fn job_swaps(&self, tenant_id: i64, job_id: i64) -> Result<Vec<Swap>, RegistryError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT s.stage, s.module, s.version, s.batch_id FROM swaps s JOIN jobs j ON j.id = s.job_id
             WHERE j.tenant_id = ?1 AND s.job_id = ?2 ORDER BY s.id",
        )?;
        let rows = stmt.query_map(params![tenant_id, job_id], |r| {
            Ok(Swap {
                stage: r.get(0)?,
                module: r.get(1)?,
                version: r.get(2)?,
                batch_id: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a tenant's job with everything stored for it (pins, stage versions, swaps);
    /// `false` if it did not exist (for this tenant).
    pub fn delete_job(&self, tenant_id: i64, id: i64) -> Result<bool, RegistryError> {
        Ok(self.writer().execute(
            "DELETE FROM jobs WHERE tenant_id = ?1 AND id = ?2",
            params![tenant_id, id],
        )? > 0)
    }

    /// The tenant's jobs that pin this module version, `(id, name)`.
    pub fn jobs_using(&self, tenant_id: i64, module: &str, version: i64) -> Result<Vec<(i64, String)>, RegistryError> {
        let conn = self.reader();
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
        let job = r.create_job(a.id, "wc", "{}", &[("words".into(), 2)], &[], 10).unwrap();
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

#[cfg(test)]
mod run_tests {
    use super::super::Registry;
    use super::StageUdf;

    #[test]
    fn ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("registry.db")).unwrap();
        let a = r.create_tenant("acme", false).unwrap();
        let first = r.create_job(a.id, "one", "{}", &[], &[], 10).unwrap();
        assert!(r.delete_job(a.id, first.id).unwrap());
        let second = r.create_job(a.id, "two", "{}", &[], &[], 10).unwrap();
        assert_ne!(first.id, second.id);
    }

    #[test]
    fn only_the_current_run_writes_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("registry.db")).unwrap();
        let a = r.create_tenant("acme", false).unwrap();
        let job = r.create_job(a.id, "j", "{}", &[], &[], 10).unwrap();
        let old = r.begin_run(a.id, job.id, false).unwrap().unwrap();
        let new = r.begin_run(a.id, job.id, false).unwrap().unwrap();
        assert_eq!(new, old + 1);
        assert!(r.set_run_status(job.id, new, "running", None).unwrap());
        assert!(
            !r.set_run_status(job.id, old, "stopped", None).unwrap(),
            "the old run is ignored"
        );
        assert_eq!(r.job(a.id, job.id).unwrap().unwrap().status, "running");
        assert_eq!(
            r.begin_run(a.id + 1, job.id, false).unwrap(),
            None,
            "another tenant's job"
        );
    }

    #[test]
    fn a_swap_changes_the_stages_effective_version_with_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("registry.db")).unwrap();
        let a = r.create_tenant("acme", false).unwrap();
        let stage = |v| StageUdf {
            stage: 0,
            module: "m".into(),
            version: v,
        };
        let job = r
            .create_job(a.id, "j", "{}", &[("m".into(), 1)], &[stage(1)], 10)
            .unwrap();
        assert!(r.record_swap(a.id, job.id, 0, "m", 2, 9).unwrap());
        let got = r.job(a.id, job.id).unwrap().unwrap();
        assert_eq!(got.stage_udfs, [stage(2)]);
        assert_eq!(got.udfs, [("m".to_owned(), 1), ("m".to_owned(), 2)]);
        assert!(!r.record_swap(a.id + 1, job.id, 0, "m", 3, 9).unwrap());
    }

    #[test]
    fn boots_without_progress_are_counted_until_a_batch_completes() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("registry.db")).unwrap();
        let a = r.create_tenant("acme", false).unwrap();
        let job = r.create_job(a.id, "j", "{}", &[], &[], 10).unwrap();
        let generation = r.begin_run(a.id, job.id, false).unwrap().unwrap();
        assert_eq!(r.jobs_to_resume().unwrap()[0].boot_attempts, 0);
        assert_eq!(r.count_boot_attempt(job.id).unwrap(), 1);
        assert_eq!(r.count_boot_attempt(job.id).unwrap(), 2);
        r.run_made_progress(job.id, generation).unwrap();
        assert_eq!(r.jobs_to_resume().unwrap()[0].boot_attempts, 0);
        r.count_boot_attempt(job.id).unwrap();
        r.begin_run(a.id, job.id, false).unwrap();
        assert_eq!(
            r.jobs_to_resume().unwrap()[0].boot_attempts,
            1,
            "a boot's start keeps the count"
        );
        r.begin_run(a.id, job.id, true).unwrap();
        assert_eq!(
            r.jobs_to_resume().unwrap()[0].boot_attempts,
            0,
            "a person's start clears it"
        );
    }
}
