//! The bearer token of a request: the tenant it acts for. Every `/api/v1` route but health and
//! the OpenAPI document takes a `Caller`, so a request without a valid token never reaches a
//! handler. The token check reads through the registry's read connections, off the async
//! workers, and never waits behind a write.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::registry::Tenant;

/// The tenant a request acts for.
pub struct Caller(pub Tenant);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Caller, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(ApiError::unauthorized)?;
        match state.db(move |r| r.authenticate(&token)).await? {
            Some(t) => Ok(Caller(t)),
            None => Err(ApiError::unauthorized()),
        }
    }
}
