//! The OpenAPI document of the API, served at `/api/v1/openapi.json` without a token (it is not
//! a secret; client generators and Swagger UI fetch it unauthenticated).

/// The document.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}
