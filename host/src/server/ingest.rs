//! `POST /api/v1/jobs/{id}/ingest`: records for a running job with an `http` source, as a JSON
//! array (strings or `{"key", "value", "timestamp"}`) or as text lines. 202 when the job took
//! them all, which means they are in the job's ingest log on disk (a crash loses none of them);
//! 429 when its buffer (bounded in records and bytes) or its log (bounded by what no checkpoint
//! covers yet) cannot take them all, or its ingest rate quota is spent; 503 when the disk is
//! full or failed. In every refusal none was taken: retry later.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, ErrorCode};
use super::jobs::{job_id, tenant_job};
use super::{ApiError, AppState};
use crate::source::http::{Full, Ingested, Refused};

/// Largest ingest request body.
pub const INGEST_BYTES_MAX: usize = 16 << 20;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route(
        "/api/v1/jobs/{id}/ingest",
        post(ingest).layer(axum::extract::DefaultBodyLimit::max(INGEST_BYTES_MAX)),
    )
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

/// The records of a request body.
fn records(json: bool, body: &[u8]) -> Result<Vec<Ingested>, ApiError> {
    if json {
        let items: Vec<IngestItem> = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadJson,
                format!("expected a JSON array of strings or {{\"key\", \"value\", \"timestamp\"}} objects: {e}"),
            )
        })?;
        Ok(items
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
            .collect())
    } else {
        Ok(body
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .map(|l| Ingested {
                key: None,
                value: l.to_vec(),
                timestamp_ms: None,
            })
            .collect())
    }
}

/// How many records an ingest took.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// All the request's records.
    pub accepted: usize,
}

/// One record sent as JSON: a text value, or an object with a key and a timestamp.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the JSON form of `IngestItem`
pub enum IngestJson {
    /// A value (text).
    Value(String),
    /// A record.
    Record(IngestRecordDoc),
}

/// A record sent as a JSON object.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the JSON form of `IngestRecord`
pub struct IngestRecordDoc {
    /// Its key.
    key: Option<String>,
    /// Its value.
    value: String,
    /// Its timestamp, ms (default: arrival time).
    timestamp: Option<i64>,
}

/// Sends records to a running job with an `http` source: text lines, or a JSON array.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/ingest", tag = "runs",
    params(("id" = i64, Path, description = "the job's id", minimum = 1)),
    request_body(content(
        (String = "text/plain"),
        (Vec<IngestJson> = "application/json"),
    )),
    responses(
        (status = 202, description = "all records taken and on disk; they go into the next batch", body = Accepted),
        (status = 400, description = "no records, bad JSON, or no http source", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "the job does not run", body = ErrorBody),
        (status = 413, description = "the body is over 16 MiB", body = ErrorBody),
        (status = 429, description = "the buffer or the ingest log is full, or the ingest rate quota spent; nothing taken, retry", body = ErrorBody),
        (status = 503, description = "the disk is full or failed (disk_full, io_error); nothing taken, retry", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn ingest(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id).await?;
    let buffer = state
        .jobs
        .with(caller.id, id, |e| {
            (!e.state().is_over()).then(|| e.kept.ingest.get().cloned())
        })
        .flatten();
    let Some(buffer) = buffer else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NotRunning,
            format!("job {id} is not running; start it first (POST /api/v1/jobs/{id}/start)"),
        ));
    };
    let Some(buffer) = buffer else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::NoHttpSource,
            format!("job {id} does not read from an `http` source"),
        ));
    };
    let headers = request.headers();
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // A body larger than the room left is refused without being kept: it is read and thrown
    // away chunk by chunk (so the client gets its answer), and a full buffer costs the server
    // no memory, however much is sent at it.
    let length: Option<usize> = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if let Some(length) = length
        && length > buffer.room().free_bytes
    {
        use futures_util::StreamExt;
        let mut chunks = request.into_body().into_data_stream();
        while let Some(Ok(_)) = chunks.next().await {}
        return Err(full(id, buffer.room()));
    }
    let body = axum::body::Bytes::from_request(request, &state).await?;
    let records = records(json, &body)?;
    if records.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::EmptyBody,
            "the body holds no records: send text lines, or a JSON array with Content-Type: application/json",
        ));
    }
    let max = state.quotas_for(&caller).ingest_records_per_s_max;
    state.ingest_rates.take(id, records.len() as u64, max)?;
    match buffer.take(records).await {
        Ok(accepted) => Ok((StatusCode::ACCEPTED, Json(Accepted { accepted }))),
        Err(Refused::Full(room)) => Err(full(id, room)),
        Err(Refused::LogFull { uncovered, max }) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Backpressure,
            format!(
                "job {id}'s ingest log holds {uncovered} bytes no checkpoint covers yet, and these records would take it over {max} (ingest_log_bytes_max); nothing was taken: retry after its next checkpoint"
            ),
        )),
        Err(Refused::Storage { disk_full, message }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            if disk_full {
                ErrorCode::DiskFull
            } else {
                ErrorCode::IoError
            },
            format!("job {id}'s ingest log could not be written ({message}); nothing was taken: retry later"),
        )),
        Err(Refused::Closed) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NotRunning,
            format!("job {id} stopped while the records were sent; nothing was taken: start it and send them again"),
        )),
    }
}

/// 429: the job's buffer cannot take the request.
fn full(id: i64, room: Full) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Backpressure,
        format!(
            "job {id}'s buffer can take {} more records of {} and {} more bytes of {} (source_buffer_bytes_max; it empties at every batch); nothing was taken: retry, or send fewer records at a time",
            room.free, room.capacity, room.free_bytes, room.bytes_max
        ),
    )
}
