//! `sluice serve`: the platform's HTTP server. Today it serves the REST API's first resources
//! (health, tenants, UDF modules) over the SQLite registry; jobs, hot-swap, ingest, metrics and
//! the console are the rest of the control-plane issue.
//!
//! `router(state)` builds the whole API, so tests can drive it in-process, and the binary serves
//! it on a TCP listener with graceful shutdown.

mod auth;
mod error;
mod jobs;
pub mod metrics;
pub mod quotas;
mod runs;
mod tenants;
mod udfs;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;

pub use error::ApiError;

use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeConfig};

/// The OpenAPI document of the API (`host/api/openapi.json`), served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../api/openapi.json");

/// Prints a line on stdout, ignoring a closed stdout: the server must not die because whoever
/// started it stopped reading.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($t)*);
        let _ = out.flush();
    }};
}

/// `GET /api/v1/openapi.json` (any valid token, as every `/api/v1` call but health).
async fn openapi(_caller: auth::Caller) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// What the handlers share.
pub struct AppState {
    /// Tenants, tokens, modules.
    pub registry: Registry,
    /// The wasm runtime (validates and compiles uploads, runs jobs).
    pub runtime: Arc<Runtime>,
    /// Jobs running in this process.
    pub running: runs::RunningJobs,
    /// What each tenant may use.
    pub quotas: quotas::Quotas,
    /// Ingest rates per job.
    pub ingest_rates: quotas::IngestRates,
    /// The server's own figures.
    pub metrics: metrics::ServerMetrics,
}

/// The API.
pub fn router(state: Arc<AppState>) -> Router {
    let module_bytes_max = state.runtime.config().module_bytes_max;
    Router::new()
        .route(
            "/api/v1/health",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(tenants::routes())
        .merge(udfs::routes(module_bytes_max))
        .merge(jobs::routes())
        .merge(runs::routes())
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// Where the registry and the compile cache live.
    pub data_dir: PathBuf,
    /// What each tenant may use.
    pub quotas: quotas::Quotas,
    /// On first start, also create a `demo` tenant with the example UDFs and a running job.
    pub demo: bool,
}

/// The demo job: the seed's scenario 1 on generated visits.
const DEMO_JOB: &str = r#"{
  "name": "demo: visits per user, last 60 s",
  "batch_interval": "1s",
  "source": { "generator": { "format": "visits", "rate_per_s": 2000 } },
  "stages": [
    { "map": { "udf": "examples@latest", "function": "parse_visit", "value": "i64" } },
    { "reduce_by_key_and_window": { "length": "60s", "slide": "1s", "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }
  ],
  "sink": { "print": { "records": 10 } }
}"#;

/// Creates the demo tenant (token in `DATA_DIR/demo-token`), uploads the example UDFs and
/// creates and marks running the demo job; the boot restarts it like any running job.
fn seed_demo(state: &AppState, data_dir: &std::path::Path) -> Result<()> {
    let tenant = state.registry.create_tenant("demo", false)?;
    let token = state.registry.issue_token(tenant.id)?;
    write_private(&data_dir.join("demo-token"), token.as_bytes())?;
    let module = state.runtime.load("examples@1", sluice_udf_artifacts::EXAMPLES)?;
    let manifest = serde_json::to_string(&module.manifest().udfs)?;
    state
        .registry
        .add_module_version(tenant.id, "examples", sluice_udf_artifacts::EXAMPLES, &manifest)?;
    let (plan, pins) = jobs::check_blocking(state, tenant.id, DEMO_JOB, None)
        .map_err(|e| anyhow::anyhow!("the demo job does not check: {e:?}"))?;
    let job = state.registry.create_job(tenant.id, &plan.spec.name, DEMO_JOB, &pins)?;
    state.registry.set_job_status(tenant.id, job.id, "running", None)?;
    Ok(())
}

/// Opens the data directory (creating the admin tenant and its token on first start) and serves
/// until Ctrl-C or SIGTERM.
pub fn serve(options: ServeOptions) -> Result<()> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create the data directory {}", options.data_dir.display()))?;
    let registry = Registry::open(&options.data_dir.join("registry.db"))?;
    let token_file = options.data_dir.join("admin-token");
    if !registry.has_admin()? {
        let admin = registry.create_tenant("admin", true)?;
        let token = registry.issue_token(admin.id)?;
        write_private(&token_file, token.as_bytes())?;
        say!(
            "first start: the admin token is in {} (keep it secret)",
            token_file.display()
        );
    }
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        cache_dir: Some(options.data_dir.join("cache")),
        ..RuntimeConfig::default()
    })?);
    let state = Arc::new(AppState {
        registry,
        runtime,
        running: Default::default(),
        quotas: options.quotas.clone(),
        ingest_rates: Default::default(),
        metrics: Default::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener.local_addr()?;
        if options.demo && !state.registry.tenant_exists("demo")? {
            let st = state.clone();
            let dir = options.data_dir.clone();
            tokio::task::spawn_blocking(move || seed_demo(&st, &dir)).await??;
        }
        say!(
            "sluice is listening on http://{addr} (API at http://{addr}/api/v1; admin token: {})",
            token_file.display()
        );
        if options.demo {
            let token_file = options.data_dir.join("demo-token");
            let token = std::fs::read_to_string(&token_file)?;
            let tenant = state
                .registry
                .authenticate(token.trim())?
                .context("the demo token is not valid")?;
            if let Some(job) = state.registry.list_jobs(tenant.id)?.first() {
                say!(
                    "demo job {}: curl -H \"Authorization: Bearer $(cat {})\" http://{addr}/api/v1/jobs/{}/output",
                    job.id,
                    token_file.display(),
                    job.id
                );
            }
        }
        // Jobs that were running when the server last stopped start again.
        for (tenant_id, id) in state.registry.jobs_with_status("running")? {
            if let Err(e) = runs::start_job(&state, tenant_id, id).await {
                tracing::error!("job {id} could not start again: {e:?}");
                state.registry.set_job_status(
                    tenant_id,
                    id,
                    "failed",
                    Some("could not start again after a restart; see the server log"),
                )?;
            }
        }
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(shutdown())
            .await?;
        // Running jobs finish their batch and stop; they resume on the next start.
        state.running.stop_all().await;
        Ok(())
    })
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(bytes)
}
