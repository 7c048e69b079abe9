//! `/api/v1/tenants`: admins create tenants (each with a first API token, shown once), list
//! them, and set a tenant's quotas (`PATCH`, partial: `null` returns a quota to the server's
//! default).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ErrorCode;
use super::{ApiError, AppState};
use crate::registry::Tenant;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    /// 1 to 64 characters a-z, 0-9, '-' and '_', starting with a letter.
    name: String,
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/tenants", post(create).get(list))
        .route("/api/v1/tenants/{id}", get(get_one).patch(patch))
}

fn admin(caller: &Tenant, what: &str) -> Result<(), ApiError> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(what))
    }
}

fn view(state: &AppState, t: &Tenant) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "is_admin": t.is_admin,
        "quotas": state.quotas_for(t),
        "quota_overrides": t.quotas_json.as_deref().and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()).unwrap_or(json!({})),
    })
}

fn tenant_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found("tenant"))
}

async fn create(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: Result<Json<NewTenant>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    admin(&caller, "creating a tenant")?;
    let Json(new) = body?;
    let (tenant, token) = state
        .db(move |r| {
            let tenant = r.create_tenant(&new.name, false)?;
            let token = r.issue_token(tenant.id)?;
            Ok((tenant, token))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "tenant": { "id": tenant.id, "name": tenant.name }, "token": token })),
    ))
}

async fn list(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> Result<Json<serde_json::Value>, ApiError> {
    admin(&caller, "listing tenants")?;
    let tenants = state.db(|r| r.list_tenants()).await?;
    Ok(Json(json!(tenants.iter().map(|t| view(&state, t)).collect::<Vec<_>>())))
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    admin(&caller, "reading a tenant")?;
    let id = tenant_id(&id)?;
    let t = state
        .db(move |r| r.tenant(id))
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(view(&state, &t)))
}

/// Sets some of a tenant's quotas; the answer holds its quotas now. Running jobs keep the
/// quotas they started with; the next start of a job (and every new spec) uses the new ones.
async fn patch(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    admin(&caller, "setting a tenant's quotas")?;
    let id = tenant_id(&id)?;
    let Json(patch) = body?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadQuotas, m);
    let serde_json::Value::Object(patch) = patch else {
        return Err(bad(
            "send a JSON object of quota names and values (null: back to the server's default)".into(),
        ));
    };
    let t = state
        .db(move |r| r.tenant(id))
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut overrides = t
        .quotas_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(j).ok())
        .unwrap_or_default();
    for (k, v) in patch {
        if v.is_null() {
            overrides.remove(&k);
        } else {
            overrides.insert(k, v);
        }
    }
    let overrides = serde_json::Value::Object(overrides);
    state.quotas.with_overrides(&overrides).map_err(bad)?;
    let text = overrides.to_string();
    let t = state
        .db(move |r| {
            r.set_tenant_quotas(id, &text)?;
            r.tenant(id)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(view(&state, &t)))
}
