//! The API's limits as layers, and the answers of the layers in the API's error shape: a
//! request time limit, a cap on requests in flight (more get 503 at once), a bound on request
//! headers (431), and JSON bodies for the bare answers axum and tower give (405, 413, 408).

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;

use super::ApiError;
use super::config::ServerSettings;
use super::error::ErrorCode;

/// Headers a request may have, and their bytes together.
const HEADERS_MAX: usize = 100;
const HEADER_BYTES_MAX: usize = 16 << 10;

/// The answer for a route that exists with other methods.
pub async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on this route (see the Allow header and the OpenAPI document)"),
    )
}

async fn header_limits(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if headers.len() > HEADERS_MAX || bytes > HEADER_BYTES_MAX {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} headers of {bytes} bytes; the server takes at most {HEADERS_MAX} headers of {HEADER_BYTES_MAX} bytes",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Gives error answers that are not JSON yet (from layers and axum itself) the API's shape.
async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "this method is not allowed on this route"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::TooLarge, "the body is larger than this route takes"),
        StatusCode::REQUEST_TIMEOUT => (
            ErrorCode::Timeout,
            "the request took longer than the server's request time limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::BadBody, "this content type is not taken here"),
        _ => (ErrorCode::BadBody, "the request could not be handled"),
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, ApiError::new(status, code, message)).into_response()
}

/// `routes` with the server's request limits. `body_bytes_max` bounds every body (routes take
/// less: 2 MB for JSON, 16 MiB for ingest, the module limit for uploads).
pub fn limits(routes: Router, settings: &ServerSettings, body_bytes_max: usize) -> Router {
    let request_time = Duration::from_millis(settings.request_timeout_ms);
    routes
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|err: tower::BoxError| async move {
                    if err.is::<tower::load_shed::error::Overloaded>() {
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            ErrorCode::Overloaded,
                            "the server is handling as many requests as it takes (requests_concurrent_max); retry",
                        )
                    } else {
                        ApiError::internal("a request layer", err)
                    }
                }))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    settings.requests_concurrent_max.max(1),
                )),
        )
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_bytes_max))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_time,
        ))
        .layer(axum::middleware::from_fn(header_limits))
        .layer(axum::middleware::from_fn(json_errors))
}
