//! Running a tenant's jobs through the API: start and stop go to the job table
//! (`supervisors.rs`); batches, rates, output (also live, as Server-Sent Events), dead
//! letters, UDF logs and events are read from what the run keeps (`kept.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, ErrorCode};
use super::jobs::{JobView, job_id, tenant_job, view};
use super::kept::{JobEvent, Kept, KeptDeadLetter, KeptLogs};
use super::swap::not_running;
use super::{ApiError, AppState, blocking};
use crate::checkpoint::CheckpointInfo;
use crate::supervisor::BatchReport;

/// Dead letters read from a tenant's database for one answer at most.
const DEAD_LETTERS_READ_MAX: usize = 10_000;

/// How long `stop` waits for the batch in flight before answering with the job as it is.
const STOP_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/jobs/{id}/start", post(start))
        .route("/api/v1/jobs/{id}/stop", post(stop))
        .route("/api/v1/jobs/{id}/batches", get(batches))
        .route("/api/v1/jobs/{id}/rates", get(rates))
        .route("/api/v1/jobs/{id}/output", get(output))
        .route("/api/v1/jobs/{id}/output/stream", get(output_stream))
        .route("/api/v1/jobs/{id}/dead-letters", get(dead_letters))
        .route("/api/v1/jobs/{id}/logs", get(logs))
        .route("/api/v1/jobs/{id}/events", get(events))
        .route("/api/v1/jobs/{id}/swap", post(super::swap::swap))
        .route("/api/v1/jobs/{id}/rows", get(rows))
        .route(
            "/api/v1/jobs/{id}/checkpoints",
            get(checkpoints).delete(delete_checkpoints),
        )
}

/// Starts a job: checked again against the tenant's quotas of today, on the UDF versions its
/// stages run now; answers once the run is past `starting`.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/start", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the job, running (or failed at once)", body = JobView),
        (status = 400, description = "the spec no longer passes its checks", body = ErrorBody),
        (status = 403, description = "over a quota (instances_max)", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "the job runs or is stopping", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn start(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(&id)?;
    let tenant_id = caller.id;
    let st = state.clone();
    blocking(move || st.jobs.start(&st, &caller, id, false)).await?;
    // Answer once the run is past `starting` (running, or failed at once).
    if let Some(mut watch) = state.jobs.with(tenant_id, id, |e| e.watch()) {
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            watch.wait_for(|s| !matches!(s, crate::supervisor::JobState::Starting)),
        )
        .await;
    }
    let job = tenant_job(&state, tenant_id, id).await?;
    Ok(Json(view(&job)))
}

/// Stops a job after its batch in flight; answers once it stopped (or after 30 s).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/stop", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the job", body = JobView),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn stop(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id).await?;
    if let Some(mut watch) = state.jobs.stop(caller.id, id)? {
        let _ = tokio::time::timeout(STOP_WAIT, watch.wait_for(|s| s.is_over())).await;
    }
    let job = tenant_job(&state, caller.id, id).await?;
    Ok(Json(view(&job)))
}

/// What a tenant's job keeps, or nothing if it never ran in this process.
async fn kept(state: &Arc<AppState>, tenant_id: i64, id: &str) -> Result<Option<Arc<Kept>>, ApiError> {
    let id = job_id(id)?;
    tenant_job(state, tenant_id, id).await?;
    Ok(state.jobs.with(tenant_id, id, |e| e.kept.clone()))
}

/// Which batch reports.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchesQuery {
    /// Only the reports after the newest one of this batch (all, when none of it is kept); to
    /// poll for new batches.
    #[serde(default)]
    #[param(minimum = 0)]
    after: Option<u64>,
    /// At most this many, the newest (default: all that are kept).
    #[serde(default)]
    #[param(minimum = 0)]
    limit: Option<usize>,
}

/// The job's recent batch reports, oldest first (bounded by reports_bytes_max).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/batches", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1), BatchesQuery),
    responses(
        (status = 200, description = "the reports", body = Vec<BatchReport>),
        (status = 400, description = "a bad query", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn batches(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<BatchesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<BatchReport>>, ApiError> {
    let axum::extract::Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadBody, e.body_text()))?;
    Ok(Json(
        kept(&state, caller.id, &id)
            .await?
            .map(|k| k.reports_after(q.after, q.limit.unwrap_or(usize::MAX)))
            .unwrap_or_default(),
    ))
}

/// The UDFs' log lines (from the SDK's `log`) and the job's errors (failures, refused records),
/// oldest first, bounded by `udf_log_bytes_max`; kept across the job's runs in this process.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/logs", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the log lines", body = KeptLogs),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn logs(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<KeptLogs>, ApiError> {
    Ok(Json(
        kept(&state, caller.id, &id)
            .await?
            .map(|k| k.log_lines())
            .unwrap_or(KeptLogs {
                total: 0,
                dropped: 0,
                lines: Vec::new(),
            }),
    ))
}

/// What happened to the job in this process (started, restored from a checkpoint, swapped,
/// paused, resumed, failed, stopped), oldest first: the markers of the console's charts.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the events", body = Vec<JobEvent>),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn events(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<JobEvent>>, ApiError> {
    Ok(Json(
        kept(&state, caller.id, &id)
            .await?
            .map(|k| k.events())
            .unwrap_or_default(),
    ))
}

/// The job's last output records, oldest first (bounded by output_records_max and
/// output_bytes_max; values over 16 KiB are cut and say so).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/output", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the records", body = Vec<OutputRecord>),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn output(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let body = kept(&state, caller.id, &id)
        .await?
        .map(|k| k.output_json())
        .unwrap_or_else(|| "[]".into());
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

/// Which rows of a job's table.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Rows after this batch (default 0: from the first) ...
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// ... or, with this, after this row of that batch (its `seq`; to go on from the last row
    /// of a page).
    #[serde(default)]
    #[param(minimum = 0)]
    after_seq: Option<i64>,
    /// At most this many rows (default 1,000; at most 10,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 10000)]
    limit: Option<usize>,
}

/// A row of a job's table.
#[derive(Serialize, ToSchema)]
pub struct Row {
    /// The batch it came out of.
    pub batch: i64,
    /// Its place in the batch, from 0.
    pub seq: i64,
    /// The batch's time, ms since the epoch.
    pub time: i64,
    /// Its key.
    pub key: Option<String>,
    /// Its value (a number or text; bytes as hex).
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

/// The rows a job's `sqlite` sink committed (exactly once per batch), oldest first.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/rows", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1), RowsQuery),
    responses(
        (status = 200, description = "the rows", body = Vec<Row>),
        (status = 400, description = "the job has no sqlite sink, or a bad query", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn rows(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<RowsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Row>>, ApiError> {
    let id = job_id(&id)?;
    let job = tenant_job(&state, caller.id, id).await?;
    let axum::extract::Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadBody, e.body_text()))?;
    let spec: serde_json::Value = serde_json::from_str(&job.spec_json).unwrap_or_default();
    let Some(table) = spec["sink"]["sqlite"]["table"].as_str().map(str::to_owned) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadBody,
            format!("job {id} has no sqlite sink; its output is at GET /api/v1/jobs/{id}/output"),
        ));
    };
    let path = state.tenant_db(caller.id);
    let limit = q.limit.unwrap_or(1000).min(10_000);
    let rows = blocking(move || {
        crate::sink::sqlite::read_rows(&path, &table, id, (q.after, q.after_seq.unwrap_or(i64::MAX)), limit)
            .map_err(|e| ApiError::internal("reading a job's rows", e))
    })
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(batch, seq, time, key, value)| Row {
                batch,
                seq,
                time,
                key,
                value,
            })
            .collect(),
    ))
}

/// The job's checkpoints (the last few are kept), newest first.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/checkpoints", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the checkpoints", body = Vec<CheckpointInfo>),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn checkpoints(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<CheckpointInfo>>, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id).await?;
    let st = state.clone();
    let list = blocking(move || {
        st.checkpoints
            .list(id)
            .map_err(|e| ApiError::internal("the checkpoint store", e))
    })
    .await?;
    Ok(Json(list))
}

/// Deletes a stopped job's checkpoints: its next start begins from scratch (batch 1, empty
/// state).
#[utoipa::path(delete, path = "/api/v1/jobs/{id}/checkpoints", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "the job runs; stop it first", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn delete_checkpoints(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id).await?;
    let st = state.clone();
    blocking(move || {
        // Held like a delete: no start of it begins meanwhile.
        let _held = st.jobs.hold_for_delete(id)?;
        st.checkpoints
            .delete(id)
            .map_err(|e| ApiError::internal("the checkpoint store", e))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refused records of a job: for a job with a `sqlite` sink, every one it ever refused (kept in
/// its table's database with each batch's commit, so each is there once); otherwise its run's.
#[derive(Serialize, ToSchema)]
pub struct DeadLetters {
    /// Records refused (by all runs for a `sqlite` sink, else by this run).
    pub total: u64,
    /// Dead letters not shown (oldest first) to stay within dead_letter_bytes_max.
    pub dropped: u64,
    /// The dead letters kept, oldest first.
    pub dead_letters: Vec<KeptDeadLetter>,
}

/// The records the job refused (under `on_bad_record: skip`), with stage, batch and error.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/dead-letters", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the dead letters", body = DeadLetters),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn dead_letters(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<DeadLetters>, ApiError> {
    let job = tenant_job(&state, caller.id, job_id(&id)?).await?;
    let committed = serde_json::from_str::<serde_json::Value>(&job.spec_json)
        .ok()
        .is_some_and(|s| s["sink"]["sqlite"].is_object());
    if committed {
        let (db, bytes_max) = (
            state.tenant_db(caller.id),
            state.quotas_for(&caller).dead_letter_bytes_max,
        );
        return blocking(move || {
            let (letters, total) = crate::sink::sqlite::read_dead_letters(&db, job.id, DEAD_LETTERS_READ_MAX)
                .map_err(|e| ApiError::internal("the tenant's database", e))?;
            // The newest that fit in dead_letter_bytes_max, oldest first.
            let mut shown: Vec<KeptDeadLetter> = Vec::new();
            let mut bytes = 0;
            for l in letters.iter().rev() {
                let k = KeptDeadLetter::of(l);
                bytes += k.size();
                if bytes > bytes_max {
                    break;
                }
                shown.push(k);
            }
            shown.reverse();
            Ok(Json(DeadLetters {
                total,
                dropped: total - shown.len() as u64,
                dead_letters: shown,
            }))
        })
        .await;
    }
    let (dead_letters, total, dropped) = kept(&state, caller.id, &id)
        .await?
        .map(|k| k.dead_letters())
        .unwrap_or_default();
    Ok(Json(DeadLetters {
        total,
        dropped,
        dead_letters,
    }))
}

/// An output record.
#[derive(Serialize, ToSchema)]
pub struct OutputRecord {
    /// The batch it came out of.
    pub batch: u64,
    /// The batch's time, ms since the epoch.
    pub time: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its value: a number for numeric streams, else text (cut at 16 KiB).
    #[schema(schema_with = output_value_schema)]
    pub value: serde_json::Value,
    /// When the value was cut: its full size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_cut_from_bytes: Option<usize>,
}

/// An output value's schema: a number (`i64` or `f64` streams; `null` for an `f64` that is not a
/// finite number) or text.
fn output_value_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::String, Type::Null]))
        .description(Some("a number for numeric streams, else text (cut at 16 KiB)"))
        .build()
}

/// The job's output records as they are made, as Server-Sent Events (`event: record`, the
/// record's JSON as data; `event: lagged` with the number of records a slow reader missed). The
/// stream ends when the run ends or the server shuts down.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/output/stream", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "Server-Sent Events: `record` (a record's JSON) and `lagged` (records missed)", body = String, content_type = "text/event-stream"),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "the job does not run", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn output_stream(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;
    use tokio::sync::broadcast::error::RecvError;
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id).await?;
    let rx = state
        .jobs
        .with(caller.id, id, |e| {
            (!e.state().is_over()).then(|| e.kept.subscribe()).flatten()
        })
        .flatten();
    let Some(rx) = rx else {
        return Err(not_running(id));
    };
    let mut shutdown = state.shutdown.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(record) => Event::default().event("record").data(&*record),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    })
    .take_until(async move {
        let _ = shutdown.wait_for(|s| *s).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Aggregate figures over the job's recent batches (up to the last 1,000): input and output
/// records per second of batch time, and mean and maximum processing time and scheduling delay.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/rates", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    responses(
        (status = 200, description = "the figures", body = Rates),
        (status = 404, description = "no such job", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn rates(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Rates>, ApiError> {
    let reports = kept(&state, caller.id, &id)
        .await?
        .map(|k| k.reports())
        .unwrap_or_default();
    Ok(Json(rates_of(&reports)))
}

/// Figures over a job's recent batches.
#[derive(Serialize, ToSchema)]
pub struct Rates {
    /// Batches the figures are over.
    pub batches: usize,
    /// Input records per second of batch time.
    pub input_records_per_s: f64,
    /// Output records per second of batch time.
    pub output_records_per_s: f64,
    /// Mean processing time, ms.
    pub processing_ms_mean: f64,
    /// Longest processing time, ms.
    pub processing_ms_max: f64,
    /// Mean scheduling delay, ms.
    pub scheduling_delay_ms_mean: f64,
    /// Longest scheduling delay, ms.
    pub scheduling_delay_ms_max: f64,
}

/// The figures of `rates` over `reports`.
pub(super) fn rates_of(reports: &[BatchReport]) -> Rates {
    let n = reports.len();
    let span_s = match (reports.first(), reports.last()) {
        (Some(first), Some(last)) if n > 1 => (last.time_ms - first.time_ms) as f64 / 1e3 * n as f64 / (n - 1) as f64,
        _ => 0.0,
    };
    let sum = |f: fn(&BatchReport) -> f64| reports.iter().map(f).sum::<f64>();
    let max = |f: fn(&BatchReport) -> f64| reports.iter().map(f).fold(0.0, f64::max);
    let per_s = |total: f64| if span_s > 0.0 { total / span_s } else { 0.0 };
    let mean = |total: f64| if n > 0 { total / n as f64 } else { 0.0 };
    Rates {
        batches: n,
        input_records_per_s: per_s(sum(|r| r.records_in as f64)),
        output_records_per_s: per_s(sum(|r| r.records_out.unwrap_or(0) as f64)),
        processing_ms_mean: mean(sum(|r| r.processing_ms)),
        processing_ms_max: max(|r| r.processing_ms),
        scheduling_delay_ms_mean: mean(sum(|r| r.scheduling_delay_ms)),
        scheduling_delay_ms_max: max(|r| r.scheduling_delay_ms),
    }
}
