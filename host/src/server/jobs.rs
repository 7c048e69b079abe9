//! `/api/v1/jobs`: a tenant's jobs. A spec is checked (every problem, with paths) against the
//! tenant's own UDF modules, whose versions are pinned at creation (`@latest` resolves then),
//! and against the tenant's quotas (admission); `validate` is the same check without storing.

use std::sync::{Arc, Mutex};

use axum::extract::rejection::StringRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, ErrorCode, Problem};
use super::quotas::Quotas;
use super::{ApiError, AppState, blocking};
use crate::job::plan::{PlannedReducer, PlannedStage};
use crate::job::spec::JobSpec;
use crate::job::{self, ModuleResolver, SpecErrors};
use crate::registry::{JobRow, StageUdf, VersionRef};
use crate::runtime::LoadedModule;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/jobs", get(list).post(create))
        .route("/api/v1/jobs/validate", post(validate))
        .route("/api/v1/jobs/{id}", get(get_one).delete(delete))
}

/// A version reference: a number or `latest`.
pub(super) fn version_ref(v: &str) -> Result<VersionRef, String> {
    match v {
        "latest" => Ok(VersionRef::Latest),
        n => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(VersionRef::Exact)
            .ok_or_else(|| format!("version {n:?} is not a number or `latest`")),
    }
}

/// A tenant's uploaded modules as the spec's UDF references see them; records what it pins.
/// With `pins` (a stored job), references resolve to the pinned versions only: `@latest` means
/// the newest version the job pinned, not the newest uploaded.
pub(super) struct TenantModules<'a> {
    pub state: &'a AppState,
    pub tenant_id: i64,
    pub pinned: Mutex<Vec<(String, i64)>>,
    pub pins: Option<Vec<(String, i64)>>,
}

impl ModuleResolver for TenantModules<'_> {
    fn resolve(&self, reference: &str) -> Result<Arc<LoadedModule>, String> {
        let (name, version) = reference.split_once('@').unwrap_or((reference, "latest"));
        let mut wanted = version_ref(version).map_err(|e| format!("`{reference}`: {e}"))?;
        if let Some(pins) = &self.pins {
            let pinned = pins.iter().filter(|(m, _)| m == name).map(|(_, v)| *v);
            wanted = match wanted {
                VersionRef::Latest => VersionRef::Exact(
                    pinned
                        .max()
                        .ok_or_else(|| format!("the job pins no version of `{name}`"))?,
                ),
                VersionRef::Exact(v) if pins.contains(&(name.to_owned(), v)) => VersionRef::Exact(v),
                VersionRef::Exact(v) => return Err(format!("the job does not pin `{name}@{v}`")),
            };
        }
        let found = self
            .state
            .registry
            .module(self.tenant_id, name, wanted)
            .map_err(|e| e.to_string())?;
        let Some((m, wasm)) = found else {
            let known = self
                .state
                .registry
                .versions_of(self.tenant_id, name)
                .unwrap_or_default();
            return Err(format!("no module `{reference}`: {known}"));
        };
        let module = self
            .state
            .runtime
            .load(&format!("{name}@{}", m.version), &wasm)
            .map_err(|e| e.to_string())?;
        let mut pinned = self.pinned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !pinned.contains(&(name.to_owned(), m.version)) {
            pinned.push((name.to_owned(), m.version));
        }
        Ok(module)
    }
}

pub(super) fn invalid(errors: SpecErrors) -> ApiError {
    let problems = errors
        .0
        .iter()
        .map(|e| Problem {
            path: e.path.clone(),
            message: e.message.clone(),
        })
        .collect();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidSpec,
        errors.to_string().trim_end(),
    )
    .with_problems(problems)
}

/// Problems of a spec that only the server has: it reads and writes no files of its host.
fn server_only_problems(spec: &job::JobSpec) -> Vec<job::SpecError> {
    use crate::job::spec::{SinkSpec, SourceSpec};
    let mut out = Vec::new();
    let err = |path: &str, message: &str| job::SpecError {
        path: path.into(),
        message: message.into(),
    };
    if !spec.modules.is_empty() {
        out.push(err(
            "modules",
            "the server takes UDFs from the tenant's uploads (POST /api/v1/udfs/NAME), not from `modules`",
        ));
    }
    fn files(s: &SourceSpec) -> bool {
        match s {
            SourceSpec::Batches { .. } | SourceSpec::Directory { .. } => true,
            SourceSpec::Union(parts) => parts.iter().any(files),
            SourceSpec::Socket { .. }
            | SourceSpec::Generator { .. }
            | SourceSpec::Nexmark(_)
            | SourceSpec::Http { .. }
            | SourceSpec::Kafka(_) => false,
        }
    }
    if files(&spec.source) {
        out.push(err(
            "source",
            "the server reads no files of its host: use `http`, `socket` or `generator` (files are for `sluice run`)",
        ));
    }
    match &spec.sink {
        SinkSpec::Print { .. } | SinkSpec::Sqlite { path: None, .. } | SinkSpec::Kafka(_) => {}
        SinkSpec::Sqlite { path: Some(_), .. } => out.push(err(
            "sink.sqlite.path",
            "the server writes the table into the tenant's own database (read it with GET /api/v1/jobs/ID/rows): drop `path`",
        )),
        _ => out.push(err(
            "sink",
            "the server keeps a job's output for the API (GET /api/v1/jobs/ID/output): use `print`, `sqlite` with a `table` (exactly once), or `kafka` to an allowed broker",
        )),
    }
    if spec.dead_letter.is_some() {
        out.push(err(
            "dead_letter",
            "the server keeps refused records for the API (GET /api/v1/jobs/ID/dead-letters); drop `dead_letter`",
        ));
    }
    out
}

/// Checks a spec for a tenant (against the job's pins, if given, and the tenant's quotas): the
/// plan and the module versions it pins, or every problem. Blocking.
pub(super) fn check_blocking(
    state: &AppState,
    tenant_id: i64,
    text: &str,
    pins: Option<Vec<(String, i64)>>,
    quotas: &Quotas,
) -> Result<(job::JobPlan, Vec<(String, i64)>), ApiError> {
    let modules = TenantModules {
        state,
        tenant_id,
        pinned: Mutex::new(Vec::new()),
        pins,
    };
    let extra = Mutex::new(Vec::new());
    let plan = job::check_text(text, false, &modules, |spec| {
        let mut p = server_only_problems(spec);
        p.extend(super::admission::problems(spec, quotas, &state.sockets));
        *extra.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = p;
    });
    let mut problems = match &plan {
        Ok(_) => Vec::new(),
        Err(SpecErrors(p)) => p.clone(),
    };
    problems.extend(extra.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
    match plan {
        Ok(plan) if problems.is_empty() => {
            let mut pinned = modules
                .pinned
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pinned.sort();
            Ok((plan, pinned))
        }
        _ => Err(invalid(SpecErrors(problems))),
    }
}

/// The module version each UDF stage of a checked plan runs.
pub(super) fn stage_udfs(plan: &job::JobPlan) -> Vec<StageUdf> {
    plan.stages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            PlannedStage::Udf { udf, .. }
            | PlannedStage::ReduceByKey {
                reducer: PlannedReducer::Udf { udf, .. },
                ..
            }
            | PlannedStage::UpdateStateByKey {
                reducer: PlannedReducer::Udf { udf, .. },
                ..
            }
            | PlannedStage::ReduceWindow {
                reducer: PlannedReducer::Udf { udf, .. },
                ..
            } => {
                let (module, version) = udf.module.label().rsplit_once('@')?;
                Some(StageUdf {
                    stage: i,
                    module: module.to_owned(),
                    version: version.parse().ok()?,
                })
            }
            _ => None,
        })
        .collect()
}

/// A module version a job pins.
#[derive(Serialize, ToSchema)]
pub struct Pin {
    /// The module.
    pub module: String,
    /// The version.
    pub version: i64,
}

/// The module version a UDF stage runs now.
#[derive(Serialize, ToSchema)]
pub struct StageVersion {
    /// The stage's index in `stages`.
    pub stage: usize,
    /// `module@version`.
    pub udf: String,
}

/// A hot-swap of a job.
#[derive(Serialize, ToSchema)]
pub struct SwapView {
    /// The stage.
    pub stage: i64,
    /// `module@version` swapped in.
    pub udf: String,
    /// The first batch it ran.
    pub batch: i64,
}

/// The run of a job in this process.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    /// `starting`, `running`, `paused`, `stopping`, `stopped` or `failed`.
    pub state: String,
    /// Records refused in this run (dead letters).
    pub dead_letters_total: u64,
    /// Dead letters dropped to stay within `dead_letter_bytes_max`.
    pub dead_letters_dropped: u64,
    /// The checkpoint this run resumed from (its batch), if it did.
    pub restored_from_batch: Option<u64>,
    /// The run's last checkpoint.
    pub last_checkpoint: Option<crate::checkpoint::CheckpointInfo>,
    /// While its storage fails: why it is paused.
    pub paused: Option<PauseView>,
}

/// Why a job is paused: its storage failed; it resumes from its last checkpoint by itself once
/// storage works again.
#[derive(Serialize, ToSchema)]
pub struct PauseView {
    /// `disk_full` or `io_error`.
    pub code: String,
    /// What failed.
    pub reason: String,
}

/// A job.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    /// Its id (never reused).
    pub id: i64,
    /// Its name.
    pub name: String,
    /// `created`, `starting`, `running`, `paused` (its storage failed; see `run.paused`),
    /// `stopped` or `failed`.
    pub status: String,
    /// Why it failed.
    pub last_error: Option<String>,
    /// The module versions it pins.
    pub udfs: Vec<Pin>,
    /// The version each UDF stage runs now (a hot-swap changes it; a restart runs it).
    pub stage_udfs: Vec<StageVersion>,
    /// The spec as created.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// Its hot-swaps (in `GET /jobs/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swaps: Option<Vec<SwapView>>,
    /// Its run in this process (in `GET /jobs/{id}` only, once it ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunView>,
}

fn pins(udfs: &[(String, i64)]) -> Vec<Pin> {
    udfs.iter()
        .map(|(m, v)| Pin {
            module: m.clone(),
            version: *v,
        })
        .collect()
}

pub(super) fn view(j: &JobRow) -> JobView {
    JobView {
        id: j.id,
        name: j.name.clone(),
        status: j.status.clone(),
        last_error: j.last_error.clone(),
        udfs: pins(&j.udfs),
        stage_udfs: j
            .stage_udfs
            .iter()
            .map(|s| StageVersion {
                stage: s.stage,
                udf: format!("{}@{}", s.module, s.version),
            })
            .collect(),
        spec: serde_json::from_str(&j.spec_json).unwrap_or_default(),
        created_ms: j.created_ms,
        swaps: None,
        run: None,
    }
}

/// What a valid spec would pin.
#[derive(Serialize, ToSchema)]
pub struct Validated {
    /// Always true (an invalid spec answers 400 with its problems).
    pub valid: bool,
    /// The job's name.
    pub name: String,
    /// The module versions it would pin.
    pub udfs: Vec<Pin>,
}

/// Whether a request's body is YAML (`Content-Type: application/yaml`, `application/x-yaml`,
/// `text/yaml` or `text/x-yaml`); anything else is read as JSON.
fn is_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            matches!(
                t.trim().to_ascii_lowercase().as_str(),
                "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
            )
        })
}

/// A spec body as JSON text: UTF-8, not empty; YAML bodies are turned into JSON (the spec is
/// stored and shown as JSON).
fn spec_text(headers: &HeaderMap, body: Result<String, StringRejection>) -> Result<String, ApiError> {
    let text = body?;
    if text.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::EmptyBody,
            "send the job spec (JSON, or YAML with Content-Type: application/yaml) as the body; see docs/job-spec.md",
        ));
    }
    if !is_yaml(headers) {
        return Ok(text);
    }
    let value: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
        invalid(SpecErrors(vec![job::SpecError {
            path: String::new(),
            message: format!("not valid YAML: {e}"),
        }]))
    })?;
    Ok(serde_json::to_string(&value).expect("a JSON value serializes"))
}

/// Checks a job spec against the tenant's modules and quotas without storing it.
#[utoipa::path(post, path = "/api/v1/jobs/validate", tag = "jobs",
    request_body(content(
        (JobSpec = "application/json"),
        (JobSpec = "application/yaml"),
    ), description = "the job spec (docs/job-spec.md), as JSON or YAML"),
    responses(
        (status = 200, description = "the spec is valid", body = Validated),
        (status = 400, description = "every problem of the spec, with its path", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn validate(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Result<String, StringRejection>,
) -> Result<Json<Validated>, ApiError> {
    let text = spec_text(&headers, body)?;
    let quotas = state.quotas_for(&caller);
    let st = state.clone();
    let (plan, pinned) = blocking(move || check_blocking(&st, caller.id, &text, None, &quotas)).await?;
    Ok(Json(Validated {
        valid: true,
        name: plan.spec.name,
        udfs: pins(&pinned),
    }))
}

/// Creates a job from its spec, pinning the module versions it names (`@latest` resolves now).
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body(content = JobSpec, content_type = "application/json", description = "the job spec (docs/job-spec.md); YAML is taken too, with `Content-Type: application/yaml`",
        example = json!({
            "name": "visits per user", "batch_interval": "1s",
            "source": { "http": {} },
            "stages": [ { "key_by": { "field": 0 } }, { "set_value": 1 }, { "reduce_by_key_and_window": { "length": "60s", "reduce": { "builtin": "sum", "inverse": true } } } ],
            "sink": { "print": {} }
        })),
    responses(
        (status = 201, description = "created", body = JobView),
        (status = 400, description = "every problem of the spec, with its path", body = ErrorBody),
        (status = 403, description = "over the quota jobs_max", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Result<String, StringRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let text = spec_text(&headers, body)?;
    let quotas = state.quotas_for(&caller);
    let st = state.clone();
    let job = blocking(move || {
        let (plan, pinned) = check_blocking(&st, caller.id, &text, None, &quotas)?;
        // The jobs quota is counted in the insert's own transaction.
        Ok(st.registry.create_job(
            caller.id,
            &plan.spec.name,
            &text,
            &pinned,
            &stage_udfs(&plan),
            quotas.jobs_max,
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view(&job))))
}

/// The tenant's jobs, oldest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 200, description = "the jobs", body = Vec<JobView>)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let jobs = state.db(move |r| r.list_jobs(caller.id)).await?;
    Ok(Json(
        jobs.iter()
            .map(|j| {
                let mut v = view(j);
                let paused = state.jobs.with(caller.id, j.id, |e| {
                    matches!(e.state(), crate::supervisor::JobState::Paused { .. })
                });
                if paused == Some(true) {
                    v.status = "paused".into();
                }
                v
            })
            .collect(),
    ))
}

/// The tenant's job `id`, or 404 (also when it is another tenant's).
pub(super) async fn tenant_job(state: &Arc<AppState>, tenant_id: i64, id: i64) -> Result<JobRow, ApiError> {
    state
        .db(move |r| r.job(tenant_id, id))
        .await?
        .ok_or_else(|| ApiError::not_found("job"))
}

pub(super) fn job_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found("job"))
}

/// A job, with its hot-swaps and its run in this process.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the job", body = JobView),
        (status = 404, description = "no such job (or another tenant's)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn get_one(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(&id)?;
    let (job, swaps) = state
        .db(move |r| {
            let job = r.job(caller.id, id)?;
            let swaps = if job.is_some() {
                r.job_swaps(caller.id, id)?
            } else {
                Vec::new()
            };
            Ok((job, swaps))
        })
        .await?;
    let job = job.ok_or_else(|| ApiError::not_found("job"))?;
    let mut v = view(&job);
    v.swaps = Some(
        swaps
            .iter()
            .map(|s| SwapView {
                stage: s.stage,
                udf: format!("{}@{}", s.module, s.version),
                batch: s.batch_id,
            })
            .collect(),
    );
    v.run = state.jobs.with(caller.id, id, |e| {
        let (_, total, dropped) = e.kept.dead_letters();
        let run_state = e.state();
        RunView {
            paused: match &run_state {
                crate::supervisor::JobState::Paused { code, reason } => Some(PauseView {
                    code: (*code).to_owned(),
                    reason: reason.clone(),
                }),
                _ => None,
            },
            state: run_state.word().to_owned(),
            dead_letters_total: total,
            dead_letters_dropped: dropped,
            restored_from_batch: *e
                .kept
                .restored_from
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            last_checkpoint: e
                .kept
                .last_checkpoint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    });
    if v.run.as_ref().is_some_and(|r| r.paused.is_some()) {
        v.status = "paused".into();
    }
    Ok(Json(v))
}

/// Deletes a stopped job with everything kept for it.
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "the job runs; stop it first", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id).await?;
    // Held from here to the row's deletion: no start of it can begin in between.
    let st = state.clone();
    let deleted = blocking(move || {
        let guard = st.jobs.hold_for_delete(id)?;
        if st.registry.delete_job(caller.id, id)? {
            if let Err(e) = st.checkpoints.delete(id) {
                tracing::error!("job {id}: its checkpoints could not be deleted: {e}");
            }
            match std::fs::remove_dir_all(st.ingest_log_dir(id)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::error!("job {id}: its ingest log could not be deleted: {e}");
                }
                _ => {}
            }
            // Everything kept for it in this process goes with it.
            guard.deleted();
            st.ingest_rates.forget(id);
            Ok(true)
        } else {
            Ok(false)
        }
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("job"))
    }
}
