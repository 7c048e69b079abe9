//! `POST /api/v1/jobs/{id}/swap`: a stage calls another version of its UDF. On a running job
//! (map, flat_map, filter) the swap happens between two batches, from the next one on (a
//! hot-swap); on a stopped job any UDF stage, reduces included, takes the new version at its
//! next start, and stateful stages go on from their checkpointed state (it is stored as data,
//! by function, not by version). Either way the new version is checked before anything
//! changes, and the stage's effective version is recorded (a restart runs it).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, ErrorCode};
use super::jobs::{check_blocking, job_id, tenant_job, version_ref};
use super::supervisors::effective_spec;
use super::{ApiError, AppState, blocking};
use crate::engine::context::UdfHandle;
use crate::registry::StageUdf;
use crate::supervisor::{Command, Swap};

/// A swap's answer.
#[derive(Serialize, ToSchema)]
pub struct Swapped {
    /// The stage.
    pub stage: usize,
    /// `module@version` it runs now.
    pub udf: String,
    /// The first batch the new version processes.
    pub effective_batch: u64,
}

/// A hot-swap request.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwapRequest {
    /// The stage's index in the spec's `stages`.
    stage: usize,
    /// `module@version` or `module@latest` of the tenant.
    udf: String,
}

pub(super) fn not_running(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::NotRunning,
        format!("job {id} is not running; start it first (POST /api/v1/jobs/{id}/start)"),
    )
}

/// Swaps a stage's UDF version: on a running job (map, flat_map, filter) from the next batch
/// on; on a stopped job (any UDF stage, reduces too) from its next start, state carried over.
/// The new version must have the same function with the same kind; it is checked before
/// anything changes, and the stage's new effective version is recorded (a restart runs it).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/swap", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    request_body(content = SwapRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "swapped from `effective_batch` on", body = Swapped),
        (status = 400, description = "refused before anything changed", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "a reduce stage of a running job (stop it first), or the job is being started", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn swap(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<SwapRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Swapped>, ApiError> {
    let id = job_id(&id)?;
    let row = tenant_job(&state, caller.id, id).await?;
    let Json(req) = body?;
    let bad = |code, msg: String| ApiError::new(StatusCode::BAD_REQUEST, code, msg);
    let Some(stage) = state
        .jobs
        .with(caller.id, id, |e| {
            (!e.state().is_over()).then(|| e.stages.get(req.stage).cloned())
        })
        .flatten()
    else {
        let quotas = state.quotas_for(&caller);
        return swap_stopped(state, caller.id, id, req, quotas).await;
    };
    let Some((kind, function)) = stage.flatten() else {
        if !calls_udf(&row, req.stage) {
            return Err(bad(
                ErrorCode::NotAUdfStage,
                format!("stage {} does not call a UDF (or does not exist)", req.stage),
            ));
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Running,
            format!(
                "stage {} of job {id} does not call a map, flat_map or filter UDF (or does not exist); a reduce UDF is swapped while the job is stopped (POST /api/v1/jobs/{id}/stop), and its state carries over",
                req.stage
            ),
        ));
    };
    let (name, version) = req.udf.split_once('@').unwrap_or((req.udf.as_str(), "latest"));
    let wanted = version_ref(version).map_err(|e| bad(ErrorCode::BadVersion, e))?;
    let (name, quotas) = (name.to_owned(), state.quotas_for(&caller));
    let req_udf = req.udf.clone();
    let st = state.clone();
    let (label, version, module) = blocking(move || {
        let Some((m, wasm)) = st.registry.module(caller.id, &name, wanted)? else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::NoModule,
                format!(
                    "no module `{}`: {}",
                    req_udf,
                    st.registry.versions_of(caller.id, &name)?
                ),
            ));
        };
        let label = format!("{name}@{}", m.version);
        Ok((label.clone(), m.version, st.runtime.load(&label, &wasm)?))
    })
    .await?;
    match module.manifest().get(&function) {
        Some(u) if u.kind == kind => {}
        _ => {
            return Err(bad(
                ErrorCode::Incompatible,
                format!(
                    "{label} has no {kind} UDF named `{function}` (it has: {}); nothing changed",
                    module.manifest().describe()
                ),
            ));
        }
    }
    let udf = UdfHandle {
        module,
        function,
        limits: quotas.call_limits(&state.runtime.config().default_limits),
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if !state.jobs.send(
        caller.id,
        id,
        Command::Swap(Swap {
            stage: req.stage,
            udf,
            reply,
        }),
    ) {
        return Err(not_running(id));
    }
    let batch = answer
        .await
        .map_err(|_| not_running(id))?
        .map_err(|e| bad(ErrorCode::NotAUdfStage, e))?;
    if let Some(kept) = state.jobs.with(caller.id, id, |e| e.kept.clone()) {
        kept.event(
            "swapped",
            Some(batch),
            format!("stage {} runs {label} from batch {batch}", req.stage),
        );
    }
    let module_name = label.rsplit_once('@').map(|(n, _)| n.to_owned()).unwrap_or_default();
    let stage_index = req.stage as i64;
    state
        .db(move |r| r.record_swap(caller.id, id, stage_index, &module_name, version, batch as i64))
        .await?;
    Ok(Json(Swapped {
        stage: req.stage,
        udf: label,
        effective_batch: batch,
    }))
}

/// Whether stage `stage` of the job calls a UDF (its own, or its reduce's).
fn calls_udf(job: &crate::registry::JobRow, stage: usize) -> bool {
    let spec: serde_json::Value = serde_json::from_str(&job.spec_json).unwrap_or_default();
    spec["stages"][stage]
        .as_object()
        .and_then(|s| s.values().next())
        .is_some_and(|op| op.get("udf").is_some() || op["reduce"].get("udf").is_some())
}

/// The swap of a stopped job: checked by checking the whole spec with the new version, and
/// recorded as the stage's effective version, which its next start runs.
async fn swap_stopped(
    state: Arc<AppState>,
    tenant_id: i64,
    id: i64,
    req: SwapRequest,
    quotas: super::quotas::Quotas,
) -> Result<Json<Swapped>, ApiError> {
    let bad = |code, msg: String| ApiError::new(StatusCode::BAD_REQUEST, code, msg);
    let (name, version) = req.udf.split_once('@').unwrap_or((req.udf.as_str(), "latest"));
    let wanted = version_ref(version).map_err(|e| bad(ErrorCode::BadVersion, e))?;
    let name = name.to_owned();
    let st = state.clone();
    blocking(move || {
        // No start of the job can begin while this runs.
        let _held = st.jobs.hold_for_delete(id)?;
        let job = st
            .registry
            .job(tenant_id, id)?
            .ok_or_else(|| ApiError::not_found("job"))?;
        let Some((m, _)) = st.registry.module(tenant_id, &name, wanted)? else {
            return Err(bad(
                ErrorCode::NoModule,
                format!(
                    "no module `{}`: {}",
                    req.udf,
                    st.registry.versions_of(tenant_id, &name)?
                ),
            ));
        };
        if !calls_udf(&job, req.stage) {
            return Err(bad(
                ErrorCode::NotAUdfStage,
                format!("stage {} does not call a UDF (or does not exist)", req.stage),
            ));
        }
        let mut candidate = job.clone();
        candidate.stage_udfs.retain(|s| s.stage != req.stage);
        candidate.stage_udfs.push(StageUdf {
            stage: req.stage,
            module: name.clone(),
            version: m.version,
        });
        let mut pins = job.udfs.clone();
        pins.push((name.clone(), m.version));
        let label = format!("{name}@{}", m.version);
        // The whole job checked with the new version: its problems (400) if it does not fit.
        check_blocking(&st, tenant_id, &effective_spec(&candidate), Some(pins), &quotas)?;
        let next = st
            .checkpoints
            .list(id)
            .ok()
            .and_then(|c| c.first().map(|c| c.batch_id + 1))
            .unwrap_or(1);
        st.registry
            .record_swap(tenant_id, id, req.stage as i64, &name, m.version, next as i64)?;
        Ok(Json(Swapped {
            stage: req.stage,
            udf: label,
            effective_batch: next,
        }))
    })
    .await
}
