//! The server's table of job supervisors: starting a job (checked against its tenant's quotas,
//! reserved in the table, a new run generation in the registry, a supervisor spawned), stopping
//! it, swapping a UDF, resuming jobs at boot, and shutting them all down. Handlers only call
//! these and read snapshots; the supervisor alone changes a run's state, and writes it to the
//! registry under its run's generation, so a finished run can never overwrite a newer one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use axum::http::StatusCode;
use sluice_abi::UdfKind;

use super::error::ErrorCode;
use super::jobs::check_blocking;
use super::kept::{Kept, KeptSink};
use super::quotas::Quotas;
use super::{ApiError, AppState};
use crate::engine::SystemClock;
use crate::engine::workers::{Lanes, Workers};
use crate::job::plan::PlannedStage;
use crate::registry::{JobRow, Registry};
use crate::runtime::InstanceBudget;
use crate::source::SourceLimits;
use crate::supervisor::{self, BatchReport, Command, Ended, Job, JobState, Observer};

/// Boots in a row that may restart a job that never completes a batch; then it is failed.
pub const RESTARTS_WITHOUT_BATCH_MAX: i64 = 3;
/// Checkpoints kept per job.
pub const CHECKPOINTS_KEPT: usize = 3;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A job of the table: its latest run in this process.
pub struct Entry {
    /// Its tenant.
    pub tenant_id: i64,
    /// Its run's generation.
    pub generation: i64,
    /// What the run keeps for the API.
    pub kept: Arc<Kept>,
    /// Per stage, the UDF kind and function it calls (if any), for swaps.
    pub stages: Vec<Option<(UdfKind, String)>>,
    handle: supervisor::Handle,
}

impl Entry {
    /// The run's state now.
    pub fn state(&self) -> JobState {
        self.handle.state()
    }

    /// A receiver of the run's state.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<JobState> {
        self.handle.watch()
    }
}

/// The jobs this process runs (and ran: a stopped run's reports stay readable until the next
/// start or the job's deletion).
#[derive(Default)]
pub struct JobTable {
    jobs: Mutex<HashMap<i64, Entry>>,
    /// Ids being started (checked, not yet in `jobs`).
    starting: Mutex<std::collections::HashSet<i64>>,
    lanes: Lanes,
    budgets: Mutex<HashMap<i64, Weak<InstanceBudget>>>,
    shutting_down: AtomicBool,
}

impl JobTable {
    /// Runs `f` on job `id`'s entry if it is the tenant's.
    pub fn with<T>(&self, tenant_id: i64, id: i64, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        lock(&self.jobs).get(&id).filter(|e| e.tenant_id == tenant_id).map(f)
    }

    /// Each job's tenant, id, state and kept data, by tenant and id.
    pub fn snapshot(&self) -> Vec<(i64, i64, JobState, Arc<Kept>)> {
        let mut v: Vec<_> = lock(&self.jobs)
            .iter()
            .map(|(id, e)| (e.tenant_id, *id, e.state(), e.kept.clone()))
            .collect();
        v.sort_by_key(|(t, id, _, _)| (*t, *id));
        v
    }

    /// How many tenant lanes have running jobs.
    pub fn lanes(&self) -> usize {
        self.lanes.active()
    }

    /// Holds job `id` for its deletion: `409` if a run of it is on or starting; while the
    /// guard lives no start of it begins, and dropping the guard forgets what was kept of it.
    pub fn hold_for_delete(&self, id: i64) -> Result<DeleteGuard<'_>, ApiError> {
        let mut starting = lock(&self.starting);
        let live = starting.contains(&id) || lock(&self.jobs).get(&id).is_some_and(|e| !e.state().is_over());
        if live {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Running,
                format!("job {id} is running; stop it first (POST /api/v1/jobs/{id}/stop)"),
            ));
        }
        starting.insert(id);
        Ok(DeleteGuard { table: self, id })
    }

    fn budget(&self, tenant_id: i64, max: usize) -> Arc<InstanceBudget> {
        let mut budgets = lock(&self.budgets);
        budgets.retain(|_, b| b.strong_count() > 0);
        if let Some(b) = budgets.get(&tenant_id).and_then(Weak::upgrade) {
            return b;
        }
        let b = InstanceBudget::new(max);
        budgets.insert(tenant_id, Arc::downgrade(&b));
        b
    }

    /// Starts a tenant's job (blocking: call off the async workers). The spec is checked again
    /// now, with the effective UDF versions and the tenant's quotas of today; `409` if a run of
    /// it is not over, `503` once the server shuts down.
    pub fn start(
        &self,
        state: &Arc<AppState>,
        tenant: &crate::registry::Tenant,
        id: i64,
        at_boot: bool,
    ) -> Result<(), ApiError> {
        let quotas = state.quotas_for(tenant);
        let job = state
            .registry
            .job(tenant.id, id)?
            .ok_or_else(|| ApiError::not_found("job"))?;
        // Reserve the id first: of concurrent starts, one goes on and the others get 409.
        {
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(shutting_down());
            }
            let mut starting = lock(&self.starting);
            let busy = lock(&self.jobs).get(&id).map(|e| e.state());
            match busy {
                Some(JobState::Stopping) => {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        ErrorCode::Stopping,
                        format!("job {id} is stopping; start it again once it stopped"),
                    ));
                }
                Some(s) if !s.is_over() => return Err(running(id)),
                _ if starting.contains(&id) => return Err(running(id)),
                _ => {}
            }
            starting.insert(id);
        }
        let started = self.start_reserved(state, tenant.id, &job, &quotas, at_boot);
        lock(&self.starting).remove(&id);
        started
    }

    fn start_reserved(
        &self,
        state: &Arc<AppState>,
        tenant_id: i64,
        job: &JobRow,
        quotas: &Quotas,
        at_boot: bool,
    ) -> Result<(), ApiError> {
        let id = job.id;
        let (plan, _) = check_blocking(state, tenant_id, &effective_spec(job), Some(job.udfs.clone()), quotas)?;
        let tenant_budget = self.budget(tenant_id, quotas.instances_max);
        let lane = self.lanes.get(tenant_id, quotas.cpu_workers_max);
        // Admission of instances: the run reserves what its workers may hold at most (one
        // instance per module and worker thread), so no other run can take them from it.
        let needs = plan.modules().len() * lane.current_num_threads();
        let Some(budget) = tenant_budget.reserve(needs) else {
            return Err(super::quotas::exceeded(
                "instances_max",
                format!(
                    "this job may need {needs} warm instances ({} modules x {} workers) and the tenant's running jobs reserve {} of {}; stop a job first",
                    plan.modules().len(),
                    lane.current_num_threads(),
                    tenant_budget.used(),
                    tenant_budget.max()
                ),
            ));
        };
        let generation = state
            .registry
            .begin_run(tenant_id, id, !at_boot)?
            .ok_or_else(|| ApiError::not_found("job"))?;
        let kept = Kept::new(quotas);
        if let Some(before) = lock(&self.jobs).get(&id).map(|e| e.kept.clone()) {
            kept.carry_over(&before);
        }
        let stages = plan
            .stages
            .iter()
            .map(|s| match s {
                PlannedStage::Udf { kind, udf, .. } => Some((*kind, udf.function.clone())),
                _ => None,
            })
            .collect();
        let limits = quotas.call_limits(&state.runtime.config().default_limits);
        let source_limits = SourceLimits {
            buffer_records_max: quotas.batch_records_max.min(usize::MAX as u64) as usize,
            buffer_bytes_max: quotas.source_buffer_bytes_max,
            line_bytes_max: quotas.socket_line_bytes_max,
            connect_timeout_ms: 2_000,
            ingest_log_bytes_max: quotas.ingest_log_bytes_max,
        };
        let ingest_log = state.ingest_log_dir(id);
        let runtime = state.runtime.clone();
        let checkpointing = crate::supervisor::Checkpointing {
            store: state.checkpoints.clone(),
            job: id,
            every_batches: plan.checkpoint_every_batches(),
            keep: CHECKPOINTS_KEPT,
        };
        let table = match &job.spec_json.parse::<serde_json::Value>() {
            Ok(v) => v["sink"]["sqlite"]["table"].as_str().map(str::to_owned),
            Err(_) => None,
        };
        let kafka_sink = match &plan.spec.sink {
            crate::job::spec::SinkSpec::Kafka(k) => Some(k.clone()),
            _ => None,
        };
        let tenant_db = state.tenant_db(tenant_id);
        let sink_db_bytes_max = quotas.sink_db_bytes_max;
        let build = {
            let kept = kept.clone();
            let records_max = quotas.output_records_max;
            move || -> Result<Job, String> {
                let kept_sink = Box::new(KeptSink {
                    kept: kept.clone(),
                    ty: plan.output_type,
                    records_max,
                });
                let sink: Box<dyn crate::sink::Sink> = match table {
                    Some(table) => {
                        let db = crate::sink::sqlite::SqliteSink::open(
                            &tenant_db,
                            &table,
                            id,
                            plan.output_type,
                            Some(sink_db_bytes_max),
                        )
                        .map_err(|e| format!("sink: {e}"))?;
                        Box::new(crate::sink::Both(kept_sink, Box::new(db)))
                    }
                    None => match kafka_sink {
                        Some(k) => {
                            // Its own per job, fixed across runs; a tenant cannot name another's.
                            let id = format!("sluice-t{tenant_id}-j{id}");
                            let kafka = crate::sink::kafka::KafkaSink::new(&k, plan.output_type, id);
                            Box::new(crate::sink::Both(kept_sink, Box::new(kafka)))
                        }
                        None => kept_sink,
                    },
                };
                let source =
                    crate::source::open_with(&plan.spec.source, plan.batch_ms, source_limits, Some(&ingest_log))
                        .map_err(|e| format!("source: {e}"))?;
                if let Some(buffer) = source.ingest() {
                    let _ = kept.ingest.set(buffer);
                }
                let pipeline = plan.pipeline_on(runtime, &limits, Workers::on(lane, budget));
                Ok(Job {
                    pipeline,
                    batch_ms: plan.batch_ms,
                    source,
                    sink,
                    dead_letters: Box::new(kept),
                    checkpointing: Some(checkpointing),
                    max_refused: plan.spec.max_refused.unwrap_or_default(),
                })
            }
        };
        let observer = RunObserver {
            registry: state.registry.clone(),
            failures: state.metrics.clone(),
            job_id: id,
            generation,
            kept: kept.clone(),
            progressed: false,
            paused: false,
        };
        let handle = supervisor::spawn(
            supervisor::Options {
                batches: None,
                name: job.name.clone(),
                poll_ms: 1_000,
            },
            Arc::new(SystemClock),
            build,
            observer,
        );
        let mut jobs = lock(&self.jobs);
        if self.shutting_down.load(Ordering::SeqCst) {
            // The server began shutting down while this run was starting: it ends with the
            // others (and stays `running`, to be resumed).
            handle.send(Command::Shutdown);
        }
        jobs.insert(
            id,
            Entry {
                tenant_id,
                generation,
                kept,
                stages,
                handle,
            },
        );
        Ok(())
    }

    /// Asks a tenant's job to stop after its batch in flight; the receiver sees the run end.
    /// `None` if no run of it is on; `409` while it is being started.
    pub fn stop(&self, tenant_id: i64, id: i64) -> Result<Option<tokio::sync::watch::Receiver<JobState>>, ApiError> {
        let starting = lock(&self.starting);
        let jobs = lock(&self.jobs);
        if starting.contains(&id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Running,
                format!("job {id} is being started (or deleted); stop it once it runs"),
            ));
        }
        let Some(e) = jobs.get(&id).filter(|e| e.tenant_id == tenant_id) else {
            return Ok(None);
        };
        if e.state().is_over() {
            return Ok(None);
        }
        e.handle.send(Command::Stop);
        Ok(Some(e.handle.watch()))
    }

    /// Sends a command to a tenant's running job; `false` if no run of it is on.
    pub fn send(&self, tenant_id: i64, id: i64, command: Command) -> bool {
        let jobs = lock(&self.jobs);
        match jobs
            .get(&id)
            .filter(|e| e.tenant_id == tenant_id && !e.state().is_over())
        {
            Some(e) => e.handle.send(command),
            None => false,
        }
    }

    /// The server shuts down: no job starts any more, every run stops after its batch in
    /// flight (staying `running` in the registry, to be resumed at the next start), and every
    /// live stream ends. Returns the runs' state receivers, to wait for them.
    pub fn shutdown(&self) -> Vec<tokio::sync::watch::Receiver<JobState>> {
        self.shutting_down.store(true, Ordering::SeqCst);
        let jobs = lock(&self.jobs);
        let mut waits = Vec::new();
        for e in jobs.values() {
            e.kept.close_live();
            if !e.state().is_over() {
                e.handle.send(Command::Shutdown);
                waits.push(e.handle.watch());
            }
        }
        waits
    }

    /// Resumes the jobs that were starting or running when the server last stopped (blocking).
    /// A job restarted `RESTARTS_WITHOUT_BATCH_MAX` boots in a row without completing a batch
    /// is failed instead: no spec can crash-loop the server.
    pub fn resume(&self, state: &Arc<AppState>) -> Result<(), crate::registry::RegistryError> {
        for job in state.registry.jobs_to_resume()? {
            if job.boot_attempts >= RESTARTS_WITHOUT_BATCH_MAX {
                let reason = format!(
                    "crashed the server {} times on start (it was restarted that many times without completing a batch); fix the job and start it again",
                    job.boot_attempts
                );
                tracing::error!("job {}: {reason}", job.id);
                state
                    .registry
                    .set_job_status(job.tenant_id, job.id, "failed", Some(&reason))?;
                continue;
            }
            state.registry.count_boot_attempt(job.id)?;
            let Some(tenant) = state.registry.tenant(job.tenant_id)? else {
                continue;
            };
            let started = self.start(state, &tenant, job.id, true);
            if started.is_ok() {
                // The API answers once the resumed jobs are past `starting`.
                let watch = self.with(tenant.id, job.id, |e| e.watch());
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while let Some(w) = &watch
                    && matches!(*w.borrow(), JobState::Starting)
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
            if let Err(e) = started {
                tracing::error!("job {} could not start again: {e:?}", job.id);
                state.registry.set_job_status(
                    job.tenant_id,
                    job.id,
                    "failed",
                    Some(&format!("could not start again after a restart: {}", e.message())),
                )?;
            }
        }
        Ok(())
    }
}

/// A job held for its deletion (see `JobTable::hold_for_delete`).
pub struct DeleteGuard<'a> {
    table: &'a JobTable,
    id: i64,
}

impl DeleteGuard<'_> {
    /// The job was deleted: everything kept for it in this process goes too.
    pub fn deleted(self) {
        lock(&self.table.jobs).remove(&self.id);
    }
}

impl Drop for DeleteGuard<'_> {
    fn drop(&mut self) {
        lock(&self.table.starting).remove(&self.id);
    }
}

fn running(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::Running,
        format!("job {id} is running already"),
    )
}

fn shutting_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ShuttingDown,
        "the server is shutting down; jobs resume when it starts again",
    )
}

/// The job's spec with each UDF stage (its `udf`, or its reduce's) on its effective version
/// (what the last swap put there), which is what a (re)start runs.
pub fn effective_spec(job: &JobRow) -> String {
    let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(&job.spec_json) else {
        return job.spec_json.clone();
    };
    for s in &job.stage_udfs {
        if let Some(serde_json::Value::Object(stage)) = spec.get_mut("stages").and_then(|v| v.get_mut(s.stage))
            && let Some((_, serde_json::Value::Object(op))) = stage.iter_mut().next()
        {
            let label = serde_json::Value::from(format!("{}@{}", s.module, s.version));
            if op.contains_key("udf") {
                op.insert("udf".into(), label);
            } else if let Some(serde_json::Value::Object(reduce)) = op.get_mut("reduce")
                && reduce.contains_key("udf")
            {
                reduce.insert("udf".into(), label);
            }
        }
    }
    spec.to_string()
}

/// What a server run tells the registry and the API, from its supervisor's thread.
struct RunObserver {
    registry: Arc<Registry>,
    failures: Arc<super::metrics::ServerMetrics>,
    job_id: i64,
    generation: i64,
    kept: Arc<Kept>,
    progressed: bool,
    /// Whether the run is paused (its next `Running` is a resume).
    paused: bool,
}

impl RunObserver {
    fn write(&self, status: &str, error: Option<&str>) {
        match self
            .registry
            .set_run_status(self.job_id, self.generation, status, error)
        {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                "job {}: run {} is not the newest; its status {status} is not recorded",
                self.job_id,
                self.generation
            ),
            Err(e) => tracing::error!("job {}: could not record its status {status}: {e}", self.job_id),
        }
    }
}

impl Observer for RunObserver {
    fn on_state(&mut self, state: &JobState, ended: Option<&Ended>) {
        match (state, ended) {
            (JobState::Running, _) => {
                if std::mem::take(&mut self.paused) {
                    self.kept
                        .event("resumed", None, "storage works again; resumed from the last checkpoint");
                } else {
                    self.kept.event("started", None, "the run started");
                }
                self.write("running", None)
            }
            (JobState::Paused { code, reason }, _) => {
                self.paused = true;
                self.kept.event("paused", None, format!("{code}: {reason}"));
                self.kept.error(0, "", format!("paused ({code}): {reason}"));
            }
            (JobState::Stopped, Some(Ended::Shutdown)) => {
                // Stays `running`, to be resumed; a clean shutdown is not a crash.
                if let Err(e) = self.registry.run_made_progress(self.job_id, self.generation) {
                    tracing::error!("job {}: {e}", self.job_id);
                }
                self.kept.close_live();
            }
            (JobState::Stopped, _) => {
                self.kept.event("stopped", None, "the run stopped");
                self.write("stopped", None);
                let _ = self.registry.run_made_progress(self.job_id, self.generation);
                self.kept.close_live();
            }
            (JobState::Failed { reason }, ended) => {
                if let Some(Ended::Failed {
                    udf_failure: Some(kind),
                    ..
                }) = ended
                {
                    self.failures.count_failure(kind);
                }
                self.kept.event("failed", None, reason.clone());
                self.kept.error(0, "", format!("the job failed: {reason}"));
                self.write("failed", Some(reason));
                self.kept.close_live();
            }
            _ => {}
        }
    }

    fn on_restored(&mut self, meta: &crate::checkpoint::CheckpointMeta) {
        tracing::info!(
            "job {}: resumed from its checkpoint of batch {}",
            self.job_id,
            meta.batch_id
        );
        *lock(&self.kept.restored_from) = Some(meta.batch_id);
        self.kept.event(
            "restored",
            Some(meta.batch_id),
            format!("resumed from its checkpoint of batch {}", meta.batch_id),
        );
    }

    fn on_checkpoint(&mut self, info: &crate::checkpoint::CheckpointInfo) {
        *lock(&self.kept.last_checkpoint) = Some(info.clone());
    }

    fn on_batch(&mut self, report: &BatchReport) {
        self.kept.push_report(report);
        if !self.progressed {
            self.progressed = true;
            if let Err(e) = self.registry.run_made_progress(self.job_id, self.generation) {
                tracing::error!("job {}: {e}", self.job_id);
            }
        }
    }
}
