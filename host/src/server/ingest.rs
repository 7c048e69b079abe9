//! `POST /api/v1/jobs/{id}/ingest`: records for a running job with an `http` source, as a JSON
//! array (strings or `{"key", "value", "timestamp"}`) or as text lines. 202 when the job took
//! them all; 429 when its buffer (bounded in records and bytes) cannot take them all (none
//! taken: retry later) or the job's ingest rate quota is spent.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::auth::Caller;
use super::error::ErrorCode;
use super::jobs::{job_id, tenant_job};
use super::{ApiError, AppState};
use crate::source::http::Ingested;

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

async fn ingest(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = job_id(&id)?;
    tenant_job(&state, caller.id, id).await?;
    let body = body?;
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
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
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
    match buffer.offer(records) {
        Ok(n) => Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": n })))),
        Err(full) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Backpressure,
            format!(
                "job {id}'s buffer can take {} more records of {} and {} more bytes of {} (source_buffer_bytes_max; it empties at every batch); nothing was taken: retry, or send fewer records at a time",
                full.free, full.capacity, full.free_bytes, full.bytes_max
            ),
        )),
    }
}
