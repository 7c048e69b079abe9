//! Running a tenant's jobs in the server: `start` resolves the job's pinned module versions,
//! opens its source and runs it on a tokio task (`run::run`); `stop` ends it after the batch in
//! flight. Each running job keeps its recent batch reports and output records for the API.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::auth::Caller;
use super::jobs::{check_blocking, job_id, tenant_job, view};
use super::metrics::JobMetrics;
use super::{ApiError, AppState};
use crate::engine::SystemClock;
use crate::engine::context::UdfHandle;
use crate::job::plan::PlannedStage;
use crate::registry::VersionRef;
use crate::run::{BatchReport, RunIo, RunOptions, Swap, run};
use crate::sink::memory::{MemorySink, Recent};
use crate::source::http::{IngestBuffer, Ingested};
use sluice_abi::UdfKind;

/// Reports and output records kept per job.
const RECENT_MAX: usize = 1000;
/// Largest ingest request body.
const INGEST_BYTES_MAX: usize = 16 << 20;

/// A job running in this process.
pub struct Running {
    tenant_id: i64,
    /// Where records sent over HTTP go, for an `http` source.
    ingest: Option<Arc<IngestBuffer>>,
    /// What it did since it started.
    metrics: Arc<Mutex<JobMetrics>>,
    /// Output records as they are made, for live streams.
    live: tokio::sync::broadcast::Sender<serde_json::Value>,
    /// Where hot-swaps go, and per stage the UDF kind and function it calls (if any).
    swaps: Option<tokio::sync::mpsc::UnboundedSender<Swap>>,
    stages: Vec<Option<(UdfKind, String)>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    reports: Arc<Mutex<VecDeque<BatchReport>>>,
    output: Recent,
}

/// The jobs running in this process, by id.
#[derive(Default)]
pub struct RunningJobs(Mutex<HashMap<i64, Running>>, AtomicBool);

impl RunningJobs {
    /// Each running job's tenant, id and metrics.
    pub fn metrics(&self) -> Vec<(i64, i64, Arc<Mutex<JobMetrics>>)> {
        let jobs = self.0.lock().expect("jobs lock");
        let mut v: Vec<_> = jobs
            .iter()
            .filter(|(_, r)| !r.task.is_finished())
            .map(|(id, r)| (r.tenant_id, *id, r.metrics.clone()))
            .collect();
        v.sort_by_key(|(t, id, _)| (*t, *id));
        v
    }

    /// Stops every job after its batch in flight, for the server's shutdown; their status stays
    /// `running` so the next start resumes them.
    pub async fn stop_all(&self) {
        self.1.store(true, Ordering::SeqCst);
        let jobs: Vec<Running> = self.0.lock().expect("jobs lock").drain().map(|(_, r)| r).collect();
        for r in &jobs {
            let _ = r.stop.send(true);
        }
        for r in jobs {
            let _ = r.task.await;
        }
    }

    /// Whether job `id` runs.
    pub fn is_running(&self, id: i64) -> bool {
        self.0
            .lock()
            .expect("jobs lock")
            .get(&id)
            .is_some_and(|r| !r.task.is_finished())
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/jobs/{id}/start", post(start))
        .route("/api/v1/jobs/{id}/stop", post(stop))
        .route("/api/v1/jobs/{id}/batches", get(batches))
        .route("/api/v1/jobs/{id}/rates", get(rates))
        .route("/api/v1/jobs/{id}/output", get(output))
        .route("/api/v1/jobs/{id}/output/stream", get(output_stream))
        .route("/api/v1/jobs/{id}/swap", post(swap))
        .route(
            "/api/v1/jobs/{id}/ingest",
            post(ingest).layer(axum::extract::DefaultBodyLimit::max(INGEST_BYTES_MAX)),
        )
}

async fn start(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id)?;
    start_job(&state, caller.id, id).await?;
    let job = tenant_job(&state, caller.id, id)?;
    Ok(Json(view(&job)))
}

/// Starts a tenant's job: its pinned versions, its source, a `run` task. Also used at boot for
/// the jobs that were running when the server stopped.
pub async fn start_job(state: &Arc<AppState>, tenant_id: i64, id: i64) -> Result<(), ApiError> {
    let job = tenant_job(state, tenant_id, id)?;
    if state.running.is_running(id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "running",
            format!("job {id} is running already"),
        ));
    }
    let checked = {
        let state = state.clone();
        let (spec, pins) = (job.spec_json.clone(), job.udfs.clone());
        tokio::task::spawn_blocking(move || check_blocking(&state, tenant_id, &spec, Some(pins))).await
    };
    let (plan, _) = checked.map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "starting the job failed; see the server log",
        )
    })??;
    let source = crate::source::open(&plan.spec.source, plan.batch_ms)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "source", e.to_string()))?;
    let ingest = source.ingest();
    let metrics: Arc<Mutex<JobMetrics>> = Arc::default();
    let output: Recent = Arc::default();
    let reports: Arc<Mutex<VecDeque<BatchReport>>> = Arc::default();
    let (live, _) = tokio::sync::broadcast::channel(RECENT_MAX);
    let sink = Box::new(MemorySink::new(
        output.clone(),
        RECENT_MAX,
        plan.output_type,
        live.clone(),
    ));
    let io = RunIo {
        source,
        sink,
        dead_letters: Box::new(std::io::sink()),
        clock: Arc::new(SystemClock),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (swap_tx, swap_rx) = tokio::sync::mpsc::unbounded_channel();
    let limits = state.quotas.call_limits(&state.runtime.config().default_limits);
    let options = RunOptions {
        batches: None,
        workers: None,
        stop: Some(stop_rx),
        swaps: Some(swap_rx),
        limits: Some(limits),
    };
    let stages: Vec<Option<(UdfKind, String)>> = plan
        .stages
        .iter()
        .map(|s| match s {
            PlannedStage::Udf { kind, udf, .. } => Some((*kind, udf.function.clone())),
            _ => None,
        })
        .collect();
    state.registry.set_job_status(tenant_id, id, "running", None)?;
    let task = {
        let (state, reports, metrics) = (state.clone(), reports.clone(), metrics.clone());
        tokio::spawn(async move {
            let result = run(&plan, state.runtime.clone(), io, options, |r| {
                metrics.lock().expect("metrics lock").observe(r);
                let mut recent = reports.lock().expect("reports lock");
                if recent.len() == RECENT_MAX {
                    recent.pop_front();
                }
                recent.push_back(r.clone());
            })
            .await;
            let (status, error) = match result {
                // Stopped by the server's shutdown: it stays `running`, to start again on boot.
                Ok(_) if state.running.1.load(Ordering::SeqCst) => ("running", None),
                Ok(_) => ("stopped", None),
                Err(e) => {
                    if let crate::run::RunError::Engine(crate::engine::EngineError::Udf { source, .. }) = &e {
                        *state
                            .metrics
                            .failures
                            .lock()
                            .expect("failures lock")
                            .entry(source.code().to_owned())
                            .or_default() += 1;
                    }
                    ("failed", Some(e.to_string()))
                }
            };
            if let Err(e) = state.registry.set_job_status(tenant_id, id, status, error.as_deref()) {
                tracing::error!("job {id}: could not record its status: {e}");
            }
        })
    };
    state.running.0.lock().expect("jobs lock").insert(
        id,
        Running {
            tenant_id,
            ingest,
            metrics,
            live,
            swaps: Some(swap_tx),
            stages,
            stop: stop_tx,
            task,
            reports,
            output,
        },
    );
    Ok(())
}

/// The running entry of a tenant's job, if it is theirs.
fn entry<T>(state: &AppState, tenant_id: i64, id: i64, f: impl FnOnce(&Running) -> T) -> Option<T> {
    state
        .running
        .0
        .lock()
        .expect("jobs lock")
        .get(&id)
        .filter(|r| r.tenant_id == tenant_id)
        .map(f)
}

async fn stop(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id)?;
    let running = {
        let mut jobs = state.running.0.lock().expect("jobs lock");
        match jobs.get(&id) {
            Some(r) if r.tenant_id == caller.id => jobs.remove(&id),
            _ => None,
        }
    };
    if let Some(r) = running {
        let _ = r.stop.send(true);
        let _ = r.task.await;
        // Keep what it produced readable after the stop.
        state.running.0.lock().expect("jobs lock").insert(
            id,
            Running {
                tenant_id: r.tenant_id,
                ingest: None,
                metrics: r.metrics,
                live: tokio::sync::broadcast::channel(1).0, // streams of a stopped job end
                swaps: None,
                stages: r.stages,
                stop: r.stop,
                task: tokio::spawn(async {}),
                reports: r.reports,
                output: r.output,
            },
        );
    }
    let job = tenant_job(&state, caller.id, id)?;
    Ok(Json(view(&job)))
}

/// A copy of what a tenant's job keeps (`pick`), or nothing if it never ran in this process.
fn recent<T: Clone + serde::Serialize>(
    state: &AppState,
    tenant_id: i64,
    id: &str,
    pick: impl FnOnce(&Running) -> Vec<T>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = job_id(id)?;
    tenant_job(state, tenant_id, id)?;
    Ok(Json(json!(entry(state, tenant_id, id, pick).unwrap_or_default())))
}

async fn batches(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    recent(&state, caller.id, &id, |r| {
        r.reports.lock().expect("reports lock").iter().cloned().collect()
    })
}

async fn output(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    recent(&state, caller.id, &id, |r| {
        r.output.lock().expect("output lock").iter().cloned().collect()
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapRequest {
    /// The stage's index in the spec's `stages`.
    stage: usize,
    /// `module@version` or `module@latest` of the tenant.
    udf: String,
}

/// Hot-swap: a running job's stage calls another version of its UDF from the next batch on.
/// The new version must have the same function with the same kind; it is checked before
/// anything changes, and the batch where it took effect is recorded.
async fn swap(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<SwapRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id)?;
    let Json(req) = body?;
    let bad = |code, msg: String| ApiError::new(StatusCode::BAD_REQUEST, code, msg);
    let target = entry(&state, caller.id, id, |r| {
        (r.swaps.clone(), r.stages.get(req.stage).cloned())
    });
    let Some((Some(sender), stage)) = target.filter(|_| state.running.is_running(id)) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("job {id} is not running; start it first"),
        ));
    };
    let Some(Some((kind, function))) = stage else {
        return Err(bad(
            "not_a_udf_stage",
            format!("stage {} does not call a UDF (or does not exist)", req.stage),
        ));
    };
    let (name, version) = req.udf.split_once('@').unwrap_or((req.udf.as_str(), "latest"));
    let wanted = match version {
        "latest" => VersionRef::Latest,
        v => VersionRef::Exact(
            v.parse()
                .map_err(|_| bad("bad_version", format!("version {v:?} is not a number or `latest`")))?,
        ),
    };
    let (m, wasm) = state
        .registry
        .module(caller.id, name, wanted)?
        .ok_or_else(|| bad("no_module", format!("no module `{}` in this tenant", req.udf)))?;
    let label = format!("{name}@{}", m.version);
    let module = {
        let runtime = state.runtime.clone();
        let label = label.clone();
        tokio::task::spawn_blocking(move || runtime.load(&label, &wasm))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "loading the module failed",
                )
            })??
    };
    match module.manifest().get(&function) {
        Some(u) if u.kind == kind => {}
        _ => {
            return Err(bad(
                "incompatible",
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
        limits: state.quotas.call_limits(&state.runtime.config().default_limits),
    };
    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
    sender
        .send(Swap {
            stage: req.stage,
            udf,
            reply: reply_tx,
        })
        .map_err(|_| ApiError::new(StatusCode::CONFLICT, "not_running", format!("job {id} stopped")))?;
    let batch = reply_rx
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_running",
                format!("job {id} stopped before the swap"),
            )
        })?
        .map_err(|e| bad("not_a_udf_stage", e))?;
    state
        .registry
        .record_swap(caller.id, id, req.stage as i64, name, m.version, batch as i64)?;
    Ok(Json(
        json!({ "stage": req.stage, "udf": label, "effective_batch": batch }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum IngestItem {
    Value(String),
    Record(IngestRecord),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestRecord {
    #[serde(default)]
    key: Option<String>,
    value: String,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// HTTP ingest: records for a running job with an `http` source, as a JSON array (strings or
/// `{"key", "value", "timestamp"}`) or as text lines. 202 when the job took them all; 429 when
/// its buffer cannot take them all (none taken: retry later).
async fn ingest(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id)?;
    let body = body?;
    let buffer = entry(&state, caller.id, id, |r| r.ingest.clone()).filter(|_| state.running.is_running(id));
    let Some(buffer) = buffer else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("job {id} is not running; start it first"),
        ));
    };
    let Some(buffer) = buffer else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_http_source",
            format!("job {id} does not read from an `http` source"),
        ));
    };
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let records: Vec<Ingested> = if json {
        let items: Vec<IngestItem> = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("expected a JSON array of strings or {{\"key\", \"value\", \"timestamp\"}} objects: {e}"),
            )
        })?;
        items
            .into_iter()
            .map(|i| match i {
                IngestItem::Value(v) => Ingested {
                    key: None,
                    value: v.into_bytes(),
                    timestamp_ms: None,
                },
                IngestItem::Record(r) => Ingested {
                    key: r.key.map(String::into_bytes),
                    value: r.value.into_bytes(),
                    timestamp_ms: r.timestamp,
                },
            })
            .collect()
    } else {
        body.split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .map(|l| Ingested {
                key: None,
                value: l.to_vec(),
                timestamp_ms: None,
            })
            .collect()
    };
    state
        .ingest_rates
        .take(id, records.len() as u64, state.quotas.ingest_records_per_s_max)?;
    match buffer.offer(records) {
        Ok(n) => Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": n })))),
        Err(full) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "backpressure",
            format!(
                "job {id}'s buffer can take {} more records of {} (it empties at every batch); nothing was taken: retry, or send fewer records at a time",
                full.free, full.capacity
            ),
        )),
    }
}

/// The job's output records as they are made, as Server-Sent Events (`event: record`, the
/// record's JSON as data; `event: lagged` with the number of records a slow reader missed).
async fn output_stream(
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
    use tokio::sync::broadcast::error::RecvError;
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id)?;
    let rx = entry(&state, caller.id, id, |r| r.live.subscribe()).filter(|_| state.running.is_running(id));
    let Some(rx) = rx else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("job {id} is not running; start it first"),
        ));
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(record) => Event::default().event("record").data(record.to_string()),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Aggregate figures over the job's recent batches (up to the last 1,000): input and output
/// records per second of batch time, and mean and maximum processing time and scheduling delay.
async fn rates(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id)?;
    let reports = entry(&state, caller.id, id, |r| {
        r.reports
            .lock()
            .expect("reports lock")
            .iter()
            .cloned()
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    let n = reports.len();
    let span_s = match (reports.first(), reports.last()) {
        (Some(first), Some(last)) if n > 1 => (last.time_ms - first.time_ms) as f64 / 1e3 * n as f64 / (n - 1) as f64,
        _ => 0.0,
    };
    let sum = |f: fn(&BatchReport) -> f64| reports.iter().map(f).sum::<f64>();
    let max = |f: fn(&BatchReport) -> f64| reports.iter().map(f).fold(0.0, f64::max);
    let per_s = |total: f64| if span_s > 0.0 { total / span_s } else { 0.0 };
    let mean = |total: f64| if n > 0 { total / n as f64 } else { 0.0 };
    Ok(Json(json!({
        "batches": n,
        "input_records_per_s": per_s(sum(|r| r.records_in as f64)),
        "output_records_per_s": per_s(sum(|r| r.records_out.unwrap_or(0) as f64)),
        "processing_ms_mean": mean(sum(|r| r.processing_ms)),
        "processing_ms_max": max(|r| r.processing_ms),
        "scheduling_delay_ms_mean": mean(sum(|r| r.scheduling_delay_ms)),
        "scheduling_delay_ms_max": max(|r| r.scheduling_delay_ms),
    })))
}
