//! `/api/v1/udfs`: a tenant's UDF modules. An upload waits its turn in the compile queue (per
//! tenant and for the server), is validated and compiled in a child process under the tenant's
//! time limit, and is stored as the next version of its name with its quotas checked in the
//! insert's transaction; only then is its compiled artifact kept. Versions are immutable.
//! Another tenant's module answers 404, as a missing one.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, ErrorCode};
use super::{ApiError, AppState, blocking};
use crate::registry::{ModuleQuota, ModuleVersion, VersionRef, check_name};

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

/// A UDF a module exports.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModuleUdf {
    /// The function's name.
    pub name: String,
    /// `map`, `flat_map`, `filter` or `reduce`.
    pub kind: String,
    /// For a reduce: whether the module exports its inverse too.
    pub has_inverse: bool,
}

/// A module version.
#[derive(Serialize, ToSchema)]
pub struct ModuleView {
    /// Its name.
    pub name: String,
    /// 1, 2, ... per name.
    pub version: i64,
    /// SHA-256 of the `.wasm`, hex.
    pub sha256: String,
    /// Size of the `.wasm`.
    pub size_bytes: i64,
    /// The UDFs it exports.
    pub udfs: Vec<ModuleUdf>,
    /// When it was uploaded (ms since the epoch).
    pub created_ms: i64,
    /// Size of its compiled artifact (counts against compiled_bytes_max).
    pub artifact_bytes: i64,
    /// On an upload of bytes a version already has: that it was not stored again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn view(m: &ModuleVersion) -> ModuleView {
    ModuleView {
        name: m.name.clone(),
        version: m.version,
        sha256: m.sha256.clone(),
        size_bytes: m.size_bytes,
        udfs: serde_json::from_str(&m.manifest_json).unwrap_or_default(),
        created_ms: m.created_ms,
        artifact_bytes: m.artifact_bytes,
        note: None,
    }
}

fn version_ref(v: &str) -> Result<VersionRef, ApiError> {
    super::jobs::version_ref(v).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadVersion, e))
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
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadMultipart, m);
    let mut form = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| bad(e.body_text()))?;
    while let Some(field) = form.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, e.body_text())
        } else {
            bad(e.body_text())
        }
    })? {
        if field.file_name().is_some() || field.name() == Some("file") {
            return field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, e.body_text())
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

/// Stores a checked module as the next version of `name` (its quotas checked again in the
/// insert's transaction, so concurrent uploads cannot pass them together), then keeps it in the
/// compile cache: only a stored module is kept. Blocking.
pub(super) fn store_checked(
    state: &AppState,
    tenant_id: i64,
    name: &str,
    wasm: &[u8],
    checked: crate::runtime::Checked,
    quotas: &super::quotas::Quotas,
) -> Result<ModuleVersion, ApiError> {
    let manifest = serde_json::to_string(&checked.module.manifest().udfs).expect("a manifest serializes");
    let stored = state.registry.add_module_version(
        tenant_id,
        name,
        wasm,
        &manifest,
        checked.artifact_bytes as i64,
        ModuleQuota {
            module_bytes_max: quotas.module_bytes_max,
            compiled_bytes_max: quotas.compiled_bytes_max,
        },
    )?;
    if !stored.already_stored {
        state.runtime.keep(checked);
    }
    Ok(stored)
}

/// The tenant's compile queue.
fn tenant_compiles(state: &AppState, tenant_id: i64, max: usize) -> Arc<tokio::sync::Semaphore> {
    let mut m = state
        .tenant_compiles
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    m.entry(tenant_id)
        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(max.max(1))))
        .clone()
}

/// How long an upload waits for its turn to compile before it is refused (retry).
const COMPILE_QUEUE_WAIT: Duration = Duration::from_secs(20);

/// A `.wasm` module as bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // documents binary bodies
pub struct Wasm(Vec<u8>);

/// A module upload as a form.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart form
pub struct WasmForm {
    /// The `.wasm` file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Uploads a module as the next version of its name: validated, compiled (in a child process
/// under the tenant's time limit) and checked before it is stored.
#[utoipa::path(post, path = "/api/v1/udfs/{name}", tag = "udfs",
    params(
        ("name" = String, Path, description = "the module's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
    ),
    request_body(content(
        (Wasm = "application/wasm"),
        (Wasm = "application/octet-stream"),
        (WasmForm = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "stored as the next version", body = ModuleView),
        (status = 200, description = "the same bytes are already a version of this module: that one (see `note`)", body = ModuleView),
        (status = 400, description = "the module was refused (the message says why)", body = ErrorBody),
        (status = 403, description = "over a quota (module_bytes_max, compiled_bytes_max)", body = ErrorBody),
        (status = 413, description = "over the module size limit", body = ErrorBody),
        (status = 422, description = "compiling took longer than compile_time_ms_max (or ran out of memory)", body = ErrorBody),
        (status = 429, description = "the tenant's compile queue is busy; retry", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn upload(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<ModuleView>), ApiError> {
    check_name("module", &name)?;
    let bytes = module_bytes(&state, request).await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::EmptyBody,
            "send the module's .wasm bytes as the body (or as the `file` part of a multipart form)",
        ));
    }
    // The same bytes again: that version, no new one.
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let (n, tenant) = (name.clone(), caller.id);
    if let Some(same) = state.db(move |r| r.version_with_sha256(tenant, &n, &sha256)).await? {
        return Ok(same_bytes(&same));
    }
    let quotas = state.quotas_for(&caller);
    let used = state.db(move |r| r.module_bytes(caller.id)).await?;
    if used + bytes.len() as i64 > quotas.module_bytes_max {
        return Err(super::quotas::exceeded(
            "module_bytes_max",
            format!(
                "the tenant stores {used} bytes of modules, this one has {}, the quota is {} (delete old versions)",
                bytes.len(),
                quotas.module_bytes_max
            ),
        ));
    }
    // Compiles queue: one tenant's at a time per its quota, and the server's at most
    // compiles_concurrent_max; a compile past its time limit is killed (422), so the queue moves.
    let busy = |what: &str| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Capacity,
            format!("{what}; retry in a few seconds"),
        )
    };
    let mine = tenant_compiles(&state, caller.id, quotas.compiles_concurrent_max);
    let _mine = tokio::time::timeout(COMPILE_QUEUE_WAIT, mine.acquire_owned())
        .await
        .map_err(|_| busy("the tenant's uploads are compiling (compiles_concurrent_max)"))?
        .map_err(|e| ApiError::internal("the compile queue", e))?;
    let _all = tokio::time::timeout(COMPILE_QUEUE_WAIT, state.compiles.clone().acquire_owned())
        .await
        .map_err(|_| busy("the server is compiling as many uploads as it takes"))?
        .map_err(|e| ApiError::internal("the compile queue", e))?;
    let st = state.clone();
    let stored = blocking(move || {
        // The permits go with the compile: a client that hangs up does not free its place.
        let _permits = (_mine, _all);
        let checked = st
            .runtime
            .check_within(&format!("{name}@upload"), &bytes, Some(quotas.compile_time_ms_max))?;
        store_checked(&st, caller.id, &name, &bytes, checked, &quotas)
    })
    .await?;
    if stored.already_stored {
        // Another upload of the same bytes was stored meanwhile.
        return Ok(same_bytes(&stored));
    }
    Ok((StatusCode::CREATED, Json(view(&stored))))
}

/// The answer to an upload of bytes version `m` already has: that version, and a note.
fn same_bytes(m: &ModuleVersion) -> (StatusCode, Json<ModuleView>) {
    let mut v = view(m);
    v.note = Some(format!(
        "these bytes are already {}@{}: no new version was made",
        m.name, m.version
    ));
    (StatusCode::OK, Json(v))
}

/// The tenant's module versions.
#[utoipa::path(get, path = "/api/v1/udfs", tag = "udfs",
    responses((status = 200, description = "the versions, by name and version", body = Vec<ModuleView>)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ModuleView>>, ApiError> {
    let modules = state.db(move |r| r.list_modules(caller.id)).await?;
    Ok(Json(modules.iter().map(view).collect()))
}

/// A module version.
#[utoipa::path(get, path = "/api/v1/udfs/{name}/{version}", tag = "udfs",
    params(
        ("name" = String, Path, description = "the module's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
        ("version" = String, Path, description = "a version number, or `latest`", pattern = "^([1-9][0-9]{0,17}|latest)$"),
    ),
    responses(
        (status = 200, description = "the version", body = ModuleView),
        (status = 400, description = "not a version", body = ErrorBody),
        (status = 404, description = "no such module version", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn get_one(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModuleView>, ApiError> {
    let wanted = version_ref(&version)?;
    match state.db(move |r| r.module(caller.id, &name, wanted)).await? {
        Some((m, _)) => Ok(Json(view(&m))),
        None => Err(ApiError::not_found("module version")),
    }
}

/// A module version's `.wasm`.
#[utoipa::path(get, path = "/api/v1/udfs/{name}/{version}/wasm", tag = "udfs",
    params(
        ("name" = String, Path, description = "the module's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
        ("version" = String, Path, description = "a version number, or `latest`", pattern = "^([1-9][0-9]{0,17}|latest)$"),
    ),
    responses(
        (status = 200, description = "the module", body = Wasm, content_type = "application/wasm"),
        (status = 400, description = "not a version", body = ErrorBody),
        (status = 404, description = "no such module version", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn download(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let wanted = version_ref(&version)?;
    match state.db(move |r| r.module(caller.id, &name, wanted)).await? {
        Some((_, wasm)) => Ok(([(header::CONTENT_TYPE, "application/wasm")], wasm)),
        None => Err(ApiError::not_found("module version")),
    }
}

/// Deletes a module version no job pins (its compiled artifact goes too).
#[utoipa::path(delete, path = "/api/v1/udfs/{name}/{version}", tag = "udfs",
    params(
        ("name" = String, Path, description = "the module's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
        ("version" = String, Path, description = "a version number, or `latest`", pattern = "^([1-9][0-9]{0,17}|latest)$"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "not a version number", body = ErrorBody),
        (status = 404, description = "no such module version", body = ErrorBody),
        (status = 409, description = "a job pins it", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let VersionRef::Exact(v) = version_ref(&version)? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadVersion,
            "delete a version by its number, not `latest`",
        ));
    };
    let st = state.clone();
    let deleted = blocking(move || {
        let Some(sha) = st.registry.delete_module_version(caller.id, &name, v)? else {
            return Ok(false);
        };
        // Its compiled artifact goes too, unless some tenant stores the same bytes.
        if !st.registry.module_hash_stored(&sha)?
            && let Some(hash) = hex::decode(&sha).ok().and_then(|h| <[u8; 32]>::try_from(h).ok())
        {
            st.runtime.forget(&hash);
        }
        Ok(true)
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("module version"))
    }
}
