//! `/api/v1/udfs`: a tenant's UDF modules. An upload is validated and compiled off the request
//! path (on a blocking thread) before it is stored as the next version of its name; versions are
//! immutable. Another tenant's module answers 404, as a missing one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::registry::{ModuleVersion, VersionRef, check_name};

pub fn routes(module_bytes_max: usize) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/udfs", get(list))
        .route(
            "/api/v1/udfs/{name}",
            axum::routing::post(upload).layer(DefaultBodyLimit::max(module_bytes_max)),
        )
        .route("/api/v1/udfs/{name}/{version}", get(get_one).delete(delete))
        .route("/api/v1/udfs/{name}/{version}/wasm", get(download))
}

fn view(m: &ModuleVersion) -> serde_json::Value {
    json!({
        "name": m.name,
        "version": m.version,
        "sha256": m.sha256,
        "size_bytes": m.size_bytes,
        "udfs": serde_json::from_str::<serde_json::Value>(&m.manifest_json).unwrap_or_default(),
        "created_ms": m.created_ms,
    })
}

fn version_ref(v: &str) -> Result<VersionRef, ApiError> {
    match v {
        "latest" => Ok(VersionRef::Latest),
        n => n.parse::<i64>().map(VersionRef::Exact).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_version",
                format!("version {n:?} is not a number or `latest`"),
            )
        }),
    }
}

/// The uploaded module: the raw body, or the first file of a `multipart/form-data` body.
async fn module_bytes(state: &Arc<AppState>, request: axum::extract::Request) -> Result<Bytes, ApiError> {
    use axum::extract::FromRequest;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        return Bytes::from_request(request, state)
            .await
            .map_err(|e: BytesRejection| e.into());
    }
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", m);
    let mut form = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| bad(e.body_text()))?;
    while let Some(field) = form.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text())
        } else {
            bad(e.body_text())
        }
    })? {
        if field.file_name().is_some() || field.name() == Some("file") {
            return field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text())
                } else {
                    bad(e.body_text())
                }
            });
        }
    }
    Err(bad(
        "the multipart body has no file part: send the .wasm as a part named `file`".into(),
    ))
}

async fn upload(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    check_name("module", &name)?;
    let bytes = module_bytes(&state, request).await?;
    let used = state.registry.module_bytes(caller.id)?;
    let max = state.quotas.module_bytes_max;
    if used + bytes.len() as i64 > max {
        return Err(super::quotas::exceeded(
            "module_bytes_max",
            format!(
                "the tenant stores {used} bytes of modules, this one has {}, the quota is {max} (delete old versions)",
                bytes.len()
            ),
        ));
    }
    let runtime = state.runtime.clone();
    let label = format!("{name}@upload");
    let wasm = bytes.clone();
    // Compiling runs on a blocking thread with a time limit: past it the upload is refused (the
    // compiler thread finishes in the background; Cranelift cannot be interrupted).
    let limit_ms = state.quotas.compile_time_ms_max;
    let compile = tokio::task::spawn_blocking(move || runtime.load(&label, &wasm));
    let module = match tokio::time::timeout(std::time::Duration::from_millis(limit_ms), compile).await {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "compile_timeout",
                format!(
                    "compiling the module took longer than the limit of {limit_ms} ms (compile_time_ms_max); make it smaller or simpler"
                ),
            ));
        }
        Ok(joined) => joined.map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the compiler failed; see the server log",
            )
        })??,
    };
    let manifest = serde_json::to_string(&module.manifest().udfs).expect("a manifest serializes");
    let stored = state.registry.add_module_version(caller.id, &name, &bytes, &manifest)?;
    Ok((StatusCode::CREATED, Json(view(&stored))))
}

async fn list(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> Result<Json<serde_json::Value>, ApiError> {
    let modules = state.registry.list_modules(caller.id)?;
    Ok(Json(json!(modules.iter().map(view).collect::<Vec<_>>())))
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match state.registry.module(caller.id, &name, version_ref(&version)?)? {
        Some((m, _)) => Ok(Json(view(&m))),
        None => Err(ApiError::not_found("module version")),
    }
}

async fn download(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    match state.registry.module(caller.id, &name, version_ref(&version)?)? {
        Some((_, wasm)) => Ok(([(header::CONTENT_TYPE, "application/wasm")], wasm)),
        None => Err(ApiError::not_found("module version")),
    }
}

async fn delete(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let VersionRef::Exact(v) = version_ref(&version)? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_version",
            "delete a version by its number, not `latest`",
        ));
    };
    if state.registry.delete_module_version(caller.id, &name, v)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("module version"))
    }
}
