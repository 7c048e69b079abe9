//! `/api/v1/tenants`: admins create tenants (each with a first API token, shown once), list
//! them, issue more tokens, and set a tenant's quotas (`PATCH`, partial: `null` returns a quota
//! to the server's default). `/api/v1/me`: any caller's own tenant (the console signs in with
//! it).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, ErrorCode};
use super::quotas::Quotas;
use super::{ApiError, AppState};
use crate::registry::Tenant;

/// A tenant to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1 to 64 characters a-z, 0-9, '-' and '_', starting with a letter.
    name: String,
}

/// A tenant's id and name.
#[derive(Serialize, ToSchema)]
pub struct TenantRef {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// A created tenant with its first token (shown this once; only its hash is kept).
#[derive(Serialize, ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: TenantRef,
    /// Its API token.
    pub token: String,
}

/// A tenant as admins see it.
#[derive(Serialize, ToSchema)]
pub struct TenantView {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Whether it is an admin.
    pub is_admin: bool,
    /// Its quotas now: the server's defaults with its overrides.
    pub quotas: Quotas,
    /// The quotas set for it alone.
    #[schema(value_type = Object)]
    pub quota_overrides: serde_json::Value,
}

/// A new token of a tenant (shown this once; only its hash is kept).
#[derive(Serialize, ToSchema)]
pub struct IssuedToken {
    /// The tenant.
    pub tenant_id: i64,
    /// The API token.
    pub token: String,
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/tenants", post(create).get(list))
        .route("/api/v1/tenants/{id}", get(get_one).patch(patch))
        .route("/api/v1/tenants/{id}/tokens", post(issue_token))
}

/// The caller's own tenant, with its quotas now.
#[utoipa::path(get, path = "/api/v1/me", tag = "tenants",
    responses(
        (status = 200, description = "the caller's tenant", body = TenantView),
        (status = 401, description = "no token, or not a token of this server", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn me(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> Json<TenantView> {
    Json(view(&state, &caller))
}

/// Issues another API token of a tenant (admin); the tenant's other tokens stay valid.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/tokens", tag = "tenants",
    params(("id" = i64, Path, description = "the tenant's id", minimum = 1)),
    responses(
        (status = 201, description = "the new token, shown this once", body = IssuedToken),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "no such tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn issue_token(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    admin(&caller, "issuing a token")?;
    let id = tenant_id(&id)?;
    let token = state
        .db(move |r| match r.tenant(id)? {
            Some(_) => r.issue_token(id).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok((StatusCode::CREATED, Json(IssuedToken { tenant_id: id, token })))
}

fn admin(caller: &Tenant, what: &str) -> Result<(), ApiError> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(what))
    }
}

fn view(state: &AppState, t: &Tenant) -> TenantView {
    TenantView {
        id: t.id,
        name: t.name.clone(),
        is_admin: t.is_admin,
        quotas: state.quotas_for(t),
        quota_overrides: t
            .quotas_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_else(|| serde_json::json!({})),
    }
}

fn tenant_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found("tenant"))
}

/// Creates a tenant (admin).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants",
    request_body(content = NewTenant, content_type = "application/json"),
    responses(
        (status = 201, description = "created, with its first token", body = CreatedTenant),
        (status = 400, description = "bad name or body", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: Result<Json<NewTenant>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
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
        Json(CreatedTenant {
            tenant: TenantRef {
                id: tenant.id,
                name: tenant.name,
            },
            token,
        }),
    ))
}

/// Every tenant with its quotas (admin).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses(
        (status = 200, description = "the tenants", body = Vec<TenantView>),
        (status = 403, description = "not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    admin(&caller, "listing tenants")?;
    let tenants = state.db(|r| r.list_tenants()).await?;
    Ok(Json(tenants.iter().map(|t| view(&state, t)).collect()))
}

/// A tenant with its quotas (admin).
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = i64, Path, description = "the tenant's id", minimum = 1)),
    responses(
        (status = 200, description = "the tenant", body = TenantView),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "no such tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn get_one(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    admin(&caller, "reading a tenant")?;
    let id = tenant_id(&id)?;
    let t = state
        .db(move |r| r.tenant(id))
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(view(&state, &t)))
}

/// Sets some of a tenant's quotas (admin); `null` returns one to the server's default. Running
/// jobs keep the quotas they started with; new specs and the next start of a job use the new
/// ones.
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = i64, Path, description = "the tenant's id", minimum = 1)),
    request_body(content = Quotas, content_type = "application/json", description = "some quotas by name"),
    responses(
        (status = 200, description = "the tenant, with its quotas now", body = TenantView),
        (status = 400, description = "unknown quota names, wrong types, or quotas that could not work", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "no such tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn patch(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<TenantView>, ApiError> {
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
