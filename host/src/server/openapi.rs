//! The OpenAPI 3.1 document of the API, generated from the handlers and their types (utoipa),
//! the job spec's fields included, and served at `/api/v1/openapi.json` without a token (it is
//! not a secret; client generators and Swagger UI fetch it unauthenticated).
//!
//! The answers every route can give (401 without a token, 408 past the request time limit, 413
//! over the body limit, 431 over the header limits, 503 at the request cap) are added to each
//! operation here, so the document matches what the layers do.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// `{"status": "ok"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Whether the server answers (no token needed).
#[utoipa::path(get, path = "/api/v1/health", tag = "server",
    responses((status = 200, description = "the server answers", body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// This document (no token needed).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "server",
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)))]
pub async fn serve() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document())
}

/// The document as JSON text (made once).
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().expect("the document serializes"))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice",
        description = "Micro-batch stream processing with sandboxed WebAssembly UDFs: tenants, UDF modules, jobs and their runs. Every route but health and this document takes `Authorization: Bearer TOKEN`. Errors answer `{\"error\": {\"code\", \"message\"}}`.",
    ),
    paths(
        health,
        serve,
        super::metrics::metrics,
        super::tenants::create,
        super::tenants::list,
        super::tenants::get_one,
        super::tenants::patch,
        super::tenants::me,
        super::tenants::issue_token,
        super::udfs::upload,
        super::udfs::list,
        super::udfs::get_one,
        super::udfs::download,
        super::udfs::delete,
        super::jobs::create,
        super::jobs::list,
        super::jobs::validate,
        super::jobs::get_one,
        super::jobs::delete,
        super::runs::start,
        super::runs::stop,
        super::runs::batches,
        super::runs::rates,
        super::runs::output,
        super::runs::output_stream,
        super::runs::dead_letters,
        super::swap::swap,
        super::runs::checkpoints,
        super::runs::rows,
        super::runs::delete_checkpoints,
        super::runs::logs,
        super::runs::events,
        super::ingest::ingest,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Bearer, &CommonAnswers, &Links),
    tags(
        (name = "server", description = "health, metrics, this document"),
        (name = "tenants", description = "tenants, their tokens and quotas (admin)"),
        (name = "udfs", description = "a tenant's UDF modules and their versions"),
        (name = "jobs", description = "a tenant's job specs"),
        (name = "runs", description = "running jobs: start, stop, hot-swap, ingest, batches, output"),
    ),
)]
struct ApiDoc;

/// The bearer token scheme.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token (sl_...): the admin's is in DATA_DIR/admin-token"))
                    .build(),
            ),
        );
    }
}

/// Unique operation ids (`post_api_v1_jobs_id_start`), and links from what creates a job or a
/// module version to the operations on it, so stateful clients (and fuzzers) follow real ids.
struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        let id_of = |method: &str, path: &str| {
            let words: String = path
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            format!("{method}_{words}")
        };
        let mut job_ops = Vec::new();
        let mut version_ops = Vec::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ] {
                let Some(op) = op else { continue };
                let id = id_of(method, path);
                op.operation_id = Some(id.clone());
                if path.starts_with("/api/v1/jobs/{id}") {
                    job_ops.push(id);
                } else if path.starts_with("/api/v1/udfs/{name}/{version}") {
                    version_ops.push(id);
                }
            }
        }
        let mut link = |path: &str, status: &str, ops: &[String], params: &[(&str, &str)]| {
            let Some(op) = openapi.paths.paths.get_mut(path).and_then(|i| i.post.as_mut()) else {
                return;
            };
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) else {
                return;
            };
            for target in ops {
                let mut l = LinkBuilder::new().operation_id(target.clone());
                for (name, value) in params {
                    l = l.parameter(*name, *value);
                }
                response.links.insert(target.clone(), RefOr::T(l.build()));
            }
        };
        link("/api/v1/jobs", "201", &job_ops, &[("id", "$response.body#/id")]);
        link(
            "/api/v1/udfs/{name}",
            "201",
            &version_ops,
            &[("name", "$response.body#/name"), ("version", "$response.body#/version")],
        );
    }
}

/// The answers the layers can give on any route.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description));
                };
                add("408", "the request took longer than the server's request time limit");
                add("431", "too many or too large request headers");
                add("503", "the server is at its request cap; retry");
                if op.security.is_some() {
                    add("401", "no token, or an unknown one");
                }
                if op.request_body.is_some() {
                    add("413", "the body is larger than this route takes");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn the_document_describes_every_route_and_the_job_spec() {
        let doc: Value = serde_json::from_str(super::document()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 27, "{:?}", paths.keys().collect::<Vec<_>>());
        let spec = &doc["components"]["schemas"]["JobSpec"];
        assert_eq!(
            spec["additionalProperties"], false,
            "unknown fields are refused: {spec}"
        );
        for field in ["name", "batch_interval", "source", "stages", "sink", "on_bad_record"] {
            assert!(spec["properties"].get(field).is_some(), "JobSpec.{field}: {spec}");
        }
        // An output value is a number or text (an object would make clients refuse real answers).
        let value = &doc["components"]["schemas"]["OutputRecord"]["properties"]["value"]["type"];
        assert_eq!(value, &serde_json::json!(["number", "string", "null"]), "{value}");
        let sources = doc["components"]["schemas"]["SourceSpec"].to_string();
        for source in ["generator", "nexmark", "http", "socket", "union"] {
            assert!(sources.contains(source), "{source} in {sources}");
        }
        let version = paths["/api/v1/udfs/{name}/{version}"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "version")
            .unwrap()
            .clone();
        assert_eq!(version["schema"]["pattern"], "^([1-9][0-9]{0,17}|latest)$");
        let start = &paths["/api/v1/jobs/{id}/start"]["post"];
        for status in ["200", "401", "404", "409", "408", "503"] {
            assert!(start["responses"].get(status).is_some(), "start answers {status}");
        }
        assert!(
            paths["/api/v1/health"]["get"].get("security").is_none(),
            "health needs no token"
        );
    }
}
