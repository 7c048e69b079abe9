//! `/api/v1/tenants`: admins create tenants, each with a first API token (shown once).

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::Caller;
use super::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/tenants", post(create))
}

async fn create(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: Result<Json<NewTenant>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if !caller.is_admin {
        return Err(ApiError::forbidden("creating a tenant"));
    }
    let Json(new) = body?;
    let tenant = state.registry.create_tenant(&new.name, false)?;
    let token = state.registry.issue_token(tenant.id)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "tenant": { "id": tenant.id, "name": tenant.name }, "token": token })),
    ))
}
