//! `/api/v1/jobs`: a tenant's jobs. A spec is checked (every problem, with paths) against the
//! tenant's own UDF modules, whose versions are pinned at creation (`@latest` resolves then);
//! `validate` is the same check without storing. Running jobs from the server comes next.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::job::{self, ModuleResolver, SpecErrors};
use crate::registry::{JobRow, VersionRef};
use crate::runtime::LoadedModule;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/jobs", get(list).post(create))
        .route("/api/v1/jobs/validate", post(validate))
        .route("/api/v1/jobs/{id}", get(get_one).delete(delete))
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
        let mut wanted = match version {
            "latest" => VersionRef::Latest,
            v => VersionRef::Exact(
                v.parse()
                    .map_err(|_| format!("`{reference}`: the version must be a number or `latest`"))?,
            ),
        };
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
            return Err(format!(
                "no module `{reference}` in this tenant; upload it with POST /api/v1/udfs/{name}"
            ));
        };
        let module = self
            .state
            .runtime
            .load(&format!("{name}@{}", m.version), &wasm)
            .map_err(|e| e.to_string())?;
        let mut pinned = self.pinned.lock().expect("pins lock");
        if !pinned.contains(&(name.to_owned(), m.version)) {
            pinned.push((name.to_owned(), m.version));
        }
        Ok(module)
    }
}

pub(super) fn invalid(errors: SpecErrors) -> ApiError {
    let problems: Vec<_> = errors
        .0
        .iter()
        .map(|e| json!({ "path": e.path, "message": e.message }))
        .collect();
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_spec", errors.to_string().trim_end())
        .with_details(json!({ "problems": problems }))
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
            SourceSpec::Socket { .. } | SourceSpec::Generator { .. } | SourceSpec::Http { .. } => false,
        }
    }
    if files(&spec.source) {
        out.push(err(
            "source",
            "the server reads no files of its host: use `http`, `socket` or `generator` (files are for `sluice run`)",
        ));
    }
    if !matches!(spec.sink, SinkSpec::Print { .. }) {
        out.push(err(
            "sink",
            "the server keeps a job's output for the API (GET /api/v1/jobs/ID/output): use `print`",
        ));
    }
    if spec.dead_letter.is_some() {
        out.push(err(
            "dead_letter",
            "the server keeps refused records with the job's batches; drop `dead_letter`",
        ));
    }
    out
}

/// Checks a spec for a tenant (against the job's pins, if given): the plan and the module
/// versions it pins, or every problem.
pub(super) fn check_blocking(
    state: &AppState,
    tenant_id: i64,
    text: &str,
    pins: Option<Vec<(String, i64)>>,
) -> Result<(job::JobPlan, Vec<(String, i64)>), ApiError> {
    let modules = TenantModules {
        state,
        tenant_id,
        pinned: Mutex::new(Vec::new()),
        pins,
    };
    let extra = Mutex::new(Vec::new());
    let plan = job::check_text(text, false, &modules, |spec| {
        *extra.lock().expect("problems lock") = server_only_problems(spec);
    });
    let mut problems = match &plan {
        Ok(_) => Vec::new(),
        Err(SpecErrors(p)) => p.clone(),
    };
    problems.extend(extra.into_inner().expect("problems lock"));
    match plan {
        Ok(plan) if problems.is_empty() => {
            let mut pinned = modules.pinned.into_inner().expect("pins lock");
            pinned.sort();
            Ok((plan, pinned))
        }
        _ => Err(invalid(SpecErrors(problems))),
    }
}

/// `check_blocking` off the request path.
async fn check(state: &Arc<AppState>, tenant_id: i64, text: String) -> Result<(String, Vec<(String, i64)>), ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        check_blocking(&state, tenant_id, &text, None).map(|(plan, pinned)| (plan.spec.name, pinned))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "checking the spec failed; see the server log",
        )
    })?
}

pub(super) fn view(j: &JobRow) -> serde_json::Value {
    json!({
        "id": j.id,
        "name": j.name,
        "status": j.status,
        "last_error": j.last_error,
        "udfs": j.udfs.iter().map(|(m, v)| json!({ "module": m, "version": v })).collect::<Vec<_>>(),
        "spec": serde_json::from_str::<serde_json::Value>(&j.spec_json).unwrap_or_default(),
        "created_ms": j.created_ms,
    })
}

async fn validate(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (name, pinned) = check(&state, caller.id, body).await?;
    Ok(Json(
        json!({ "valid": true, "name": name, "udfs": pinned.iter().map(|(m, v)| json!({ "module": m, "version": v })).collect::<Vec<_>>() }),
    ))
}

async fn create(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: String,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let jobs = state.registry.list_jobs(caller.id)?.len();
    if jobs >= state.quotas.jobs_max {
        return Err(super::quotas::exceeded(
            "jobs_max",
            format!(
                "the tenant has {jobs} jobs, the quota is {} (delete a job first)",
                state.quotas.jobs_max
            ),
        ));
    }
    let (name, pinned) = check(&state, caller.id, body.clone()).await?;
    let job = state.registry.create_job(caller.id, &name, &body, &pinned)?;
    Ok((StatusCode::CREATED, Json(view(&job))))
}

async fn list(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!(
        state
            .registry
            .list_jobs(caller.id)?
            .iter()
            .map(view)
            .collect::<Vec<_>>()
    )))
}

/// The tenant's job `id`, or 404 (also when it is another tenant's).
pub(super) fn tenant_job(state: &AppState, tenant_id: i64, id: i64) -> Result<JobRow, ApiError> {
    state
        .registry
        .job(tenant_id, id)?
        .ok_or_else(|| ApiError::not_found("job"))
}

pub(super) fn job_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("job"))
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = job_id(&id)?;
    match state.registry.job(caller.id, id)? {
        Some(j) => {
            let mut v = view(&j);
            let swaps = state.registry.job_swaps(caller.id, id)?;
            v["swaps"] = json!(
                swaps
                    .iter()
                    .map(
                        |(stage, m, ver, batch)| json!({ "stage": stage, "udf": format!("{m}@{ver}"), "batch": batch })
                    )
                    .collect::<Vec<_>>()
            );
            Ok(Json(v))
        }
        None => Err(ApiError::not_found("job")),
    }
}

async fn delete(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = job_id(&id)?;
    if state.running.is_running(id) && state.registry.job(caller.id, id)?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "running",
            format!("job {id} is running; stop it first (POST /api/v1/jobs/{id}/stop)"),
        ));
    }
    if state.registry.delete_job(caller.id, id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("job"))
    }
}
