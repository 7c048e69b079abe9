//! API errors: one shape everywhere, `{"error": {"code": "...", "message": "..."}}`, with a
//! stable machine code (`ErrorCode`, one enum) and a message that names the problem and what to
//! do. Errors become responses here and nowhere else; internals (SQL, paths) are logged, never
//! sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::registry::RegistryError;
use crate::runtime::LoadError;

/// The machine-readable codes of error answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No such thing (or another tenant's: the answer is the same).
    NotFound,
    /// No token, or an unknown one.
    Unauthorized,
    /// The token may not do this.
    Forbidden,
    /// A name breaks the naming rules.
    InvalidName,
    /// The thing exists already.
    Conflict,
    /// A module version is pinned by a job.
    InUse,
    /// The server failed (see its log).
    Internal,
    /// The module was refused.
    InvalidModule,
    /// Compiling took longer than the tenant's limit.
    CompileTimeout,
    /// The body is not the JSON asked for.
    BadJson,
    /// The body is larger than the route takes.
    TooLarge,
    /// The body could not be read (not UTF-8, cut off).
    BadBody,
    /// The body is empty where records or a document are needed.
    EmptyBody,
    /// The multipart body has no file part.
    BadMultipart,
    /// Over a quota (the message names it).
    Quota,
    /// The job spec has problems (each in `problems`, with its path).
    InvalidSpec,
    /// The job runs already.
    Running,
    /// The job is stopping; retry when it stopped.
    Stopping,
    /// The job does not run.
    NotRunning,
    /// A version is neither a number nor `latest`.
    BadVersion,
    /// No module of that name or version.
    NoModule,
    /// The new version lacks the stage's function or kind.
    Incompatible,
    /// The stage calls no UDF.
    NotAUdfStage,
    /// The job has no `http` source.
    NoHttpSource,
    /// The job's buffer is full; retry.
    Backpressure,
    /// The server has no room for this now (instance pool, compile queue); retry later.
    Capacity,
    /// The server's disk is full: nothing was stored; retry when there is room.
    DiskFull,
    /// The server's storage failed: nothing was stored; retry later.
    IoError,
    /// The server is shutting down.
    ShuttingDown,
    /// The route exists, but not with this method.
    MethodNotAllowed,
    /// The request's headers are too many or too large.
    HeadersTooLarge,
    /// The server is at its request limit; retry.
    Overloaded,
    /// The request took longer than the server's request time limit.
    Timeout,
    /// Quotas that could not work or unknown quota names.
    BadQuotas,
}

/// One problem of a job spec, at its path.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Where in the spec (`stages[2].window.slide`; empty: the whole spec).
    pub path: String,
    /// What is wrong, and what to write instead where that helps.
    pub message: String,
}

/// What an error answer says.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable machine code.
    pub code: ErrorCode,
    /// What was wrong and what to do, for people.
    pub message: String,
    /// For `invalid_spec`: every problem of the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<Problem>>,
}

/// The body of every error answer.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    problems: Option<Vec<Problem>>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: None,
        }
    }

    /// The same error with a spec's problems.
    pub fn with_problems(mut self, problems: Vec<Problem>) -> ApiError {
        self.problems = Some(problems);
        self
    }

    /// 404: the thing does not exist (or belongs to another tenant: the answer is the same).
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no such {what}"))
    }

    /// 401: no token, or an unknown one.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send a valid API token as `Authorization: Bearer TOKEN`",
        )
    }

    /// 403: the token may not do this.
    pub fn forbidden(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("{what} needs an admin token"),
        )
    }

    /// 500: the server failed; the detail goes to the log only.
    pub fn internal(what: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!("{what}: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("{what} failed; see the server log"),
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                problems: self.problems,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            RegistryError::InvalidName { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidName, e.to_string())
            }
            RegistryError::TenantExists(_) => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, e.to_string()),
            RegistryError::InUse { .. } => ApiError::new(StatusCode::CONFLICT, ErrorCode::InUse, e.to_string()),
            RegistryError::Quota { .. } => ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Quota, e.to_string()),
            other => ApiError::internal("the registry", other),
        }
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> ApiError {
        let (status, code) = match e {
            LoadError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::InvalidModule),
            LoadError::CompileTimeout { .. } | LoadError::CompilerDied(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::CompileTimeout)
            }
            LoadError::Capacity(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Capacity),
            _ => (StatusCode::BAD_REQUEST, ErrorCode::InvalidModule),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> ApiError {
        let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::TooLarge
        } else {
            ErrorCode::BadJson
        };
        ApiError::new(status, code, e.body_text())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> ApiError {
        body_error(e.status(), e.body_text())
    }
}

impl From<axum::extract::rejection::StringRejection> for ApiError {
    fn from(e: axum::extract::rejection::StringRejection) -> ApiError {
        body_error(e.status(), e.body_text())
    }
}

fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            ErrorCode::TooLarge,
            format!("{text}: the body is larger than this route takes"),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadBody,
            format!("{text} (JSON and text bodies must be UTF-8)"),
        )
    }
}
